# compat: findutils: find -newer -exec, -type, -name, -size, -perm, -mtime, -printf, -delete; xargs
# packages: findutils,dash,sed,grep,diffutils
# quick: yes
# timeout: 120
set -u
mkdir -p tree/a/b/c tree/d tree/empty-dir
for i in 1 2 3 4 5 6; do printf 'file %d\n' "$i" >"tree/a/f$i.txt"; done
seq 1 5000 >tree/a/b/large.dat
printf 'x' >tree/a/b/c/tiny.log
: >tree/d/empty.txt
printf '#!/bin/sh\n' >tree/d/tool; chmod 755 tree/d/tool
chmod 640 tree/a/f2.txt; chmod 604 tree/a/f3.txt
ln -s ../a/f1.txt tree/d/link
find tree -exec touch -h -d '2020-01-01 00:00' {} +
touch -d '2021-06-15 12:00' tree/stamp
touch -d '2022-01-01' tree/a/f4.txt tree/a/b/large.dat
touch -d '2019-01-01' tree/a/f5.txt

echo "== basic"
find tree | sort
find tree -type f -name '*.txt' | sort
find tree -type d -empty; find tree -type f -empty | sort; find tree -type l
find tree -maxdepth 2 -mindepth 2 | sort
find tree -iname 'F[1-3]*' | sort
find tree -path '*/b/*' | sort; find tree -regex '.*/f[0-9]\.txt' | sort

echo "== -newer, -mtime, -exec"
find tree -newer tree/stamp | sort
find tree -type f ! -newer tree/stamp -name 'f*' | sort
find tree -newer tree/stamp -type f -exec wc -l {} \; | sort -k2
find tree -newer tree/stamp -type f -exec sh -c 'echo "$# files: $(printf "%s\\n" "$@" | sort | tr "\\n" " ")"' sh {} +
find tree -type f -mtime +2000 -name '*.txt' | sort
find tree -type f -newermt '2019-06-01' ! -newermt '2020-06-01' -name 'f*' | sort
find tree -name 'f*.txt' -execdir pwd \; | sort -u | sed "s|$PWD|.|"
find tree -name 'f6.txt' -ok echo never-asked \; </dev/null || true

echo "== size, perm, printf"
find tree -size +10k; find tree -size -2c -type f | sort; find tree -type f -size 7c | sort
find tree -perm -o=r -type f | sort; find tree -perm 640; find tree -perm /u=x -type f | sort
find tree -printf '%p %y %m %s %TY-%Tm-%Td %d\n' | sort
find tree -type l -printf '%p -> %l %Y\n' | sort
find tree/a -maxdepth 1 -type f -printf '%f\t%s\n' | sort -t$'\t' -k1,1

echo "== xargs, -print0, -delete, -prune"
find tree -type f -name '*.txt' -print0 | sort -z | xargs -0 cat
find tree -type f -print0 | xargs -0 -n 2 echo | wc -l
find tree -name '*.txt' | sort | xargs -I{} sh -c 'printf "%s:%s\n" {} $(wc -c <{})'
printf '1\n2\n3\n4\n5\n' | xargs -P 2 -n 1 sh -c 'echo $(($1 * $1)) >sq.$1' sh; cat sq.* | sort -n | tr '\n' ' '; echo
find tree -path tree/a/b -prune -o -type f -print | sort
cp -a tree copy
find copy -name '*.log' -delete; find copy -type d -empty -delete; find copy | sort
find copy -depth -name 'a' -type d | sort
find tree -type f -name 'f*' -exec grep -l 'file [246]' {} + | sort
find / -xdev -maxdepth 1 -name compat
echo "== files found, a listing"
find tree copy -printf '%y %m %p\n' | sort >listing.txt
wc -l listing.txt
