# compat: make + gcc: a multi-file C program with a header, a static library, dependency files and parallel jobs; built, rebuilt after an edit, and run
# packages: make,gcc,libc6-dev,binutils,dash,sed,grep,mawk
# quick: no
# timeout: 600
set -eu
cp -r /compat/make.d proj
cd proj
make -s -j2
./calc 6 7
make -s          # nothing to do
echo "int scale(int x) { return 3 * x; }" > scale.c
make -j2 2>&1
./calc 6 7
ar t libcalc.a | sort
nm -g --defined-only calc | mawk '{print $3}' | grep -E '^(add|mul|scale|main)$' | sort
make -s check
make -s clean
ls
echo "exit $?"
