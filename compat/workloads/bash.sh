# compat: bash: loops, pipelines, here-docs, read, arithmetic, arrays, functions, traps, jobs, subshells
# packages: diffutils,sed,dash
# quick: yes
# timeout: 120
set -u

echo "== loops and arithmetic"
sum=0
for ((i = 1; i <= 100; i++)); do ((sum += i * i)); done
echo "sum of squares 1..100 = $sum"
n=27 steps=0
while ((n != 1)); do
  if ((n % 2)); then n=$((3 * n + 1)); else n=$((n / 2)); fi
  steps=$((steps + 1))
done
echo "collatz(27) takes $steps steps"
echo "powers: $((2 ** 10)) $((2 ** 62)) $(((1 << 63) - 1)) $((-7 / 2)) $((-7 % 2)) $((0x1f + 010 + 2#101))"
x=5; until [ $x -le 0 ]; do printf '%d ' $x; x=$((x - 2)); done; echo
for w in alpha "beta gamma" delta; do echo "[$w]"; done

echo "== pipelines"
printf '%s\n' pear apple fig banana apple cherry fig fig | sort | uniq -c | sort -k1,1nr -k2 | head -3
seq 1 20 | paste - - - - | tr '\t' '+' | while read -r line; do echo "$line = $((line))"; done
false | true | (exit 5); echo "PIPESTATUS ${PIPESTATUS[*]}"
set -o pipefail; false | true; echo "pipefail status $?"; set +o pipefail
echo "a b c" | { read -r one two three; echo "$three $two $one"; }

echo "== here-docs and here-strings"
name=world
cat <<EOT
hello $name
  tab-kept	$(echo substituted) $((6 * 7))
EOT
cat <<'EOT'
literal $name $(not run)
EOT
cat <<-EOT
	leading tabs stripped for $name
	EOT
tr a-z A-Z <<<"here string $name"
while IFS=: read -r user _ uid rest; do
  [ "$uid" = 0 ] && echo "uid 0 is $user"
done </etc/passwd

echo "== read"
IFS=, read -r -a parts <<<"one,two,,four"
echo "${#parts[@]} parts: ${parts[*]}"
read -r -d '' -a words <<<"multi
line  input" || true
echo "words: ${words[*]}"
printf 'x\0y\0z\0' | while IFS= read -r -d '' item; do printf '<%s>' "$item"; done; echo
read -r -n 3 first <<<"abcdef"; echo "first three: $first"

echo "== arrays and strings"
declare -a arr=(zero one two three)
arr+=(four)
echo "${#arr[@]} ${arr[2]} ${arr[@]:1:2} ${!arr[*]}"
declare -A map=([red]=1 [green]=2 [blue]=3)
for k in $(printf '%s\n' "${!map[@]}" | sort); do echo "$k=${map[$k]}"; done
s="The quick brown fox"
echo "${s^^} ${s,,} ${#s} ${s:4:5} ${s/quick/slow} ${s//o/0} ${s#* } ${s%% *}"
f=/usr/lib/archive.tar.gz; echo "${f##*/} ${f%/*} ${f%%.*} ${f#*.}"
unset maybe; echo "${maybe:-default} ${maybe-unset} ${maybe+set}"
printf '%5s|%-5s|%05d|%x|%o|%e|%.3f|%q\n' ab cd 42 255 8 12345.678 3.14159 "a b'c"

echo "== functions, local, return, recursion"
fact() { local n=$1; if ((n <= 1)); then echo 1; else echo $((n * $(fact $((n - 1))))); fi; }
echo "20! = $(fact 20)"
counter=0
bump() { local counter=100; counter=$((counter + 1)); echo "inner $counter"; }
bump; echo "outer $counter"
rv() { return "$1"; }; rv 42; echo "returned $?"
fib() { local a=0 b=1 i; for ((i = 0; i < $1; i++)); do local t=$((a + b)); a=$b; b=$t; done; echo $a; }
echo "fib(90) = $(fib 90)"

echo "== case, conditionals, globs"
for v in apple 42 Zebra "" x.txt; do
  case $v in
    [0-9]*) echo "'$v' number" ;;
    [A-Z]*) echo "'$v' capital" ;;
    *.txt) echo "'$v' text file" ;;
    "") echo "empty" ;;
    *) echo "'$v' other" ;;
  esac
done
[[ "abc123" =~ ^([a-z]+)([0-9]+)$ ]] && echo "regex ${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
[[ -d /out && ! -e /out/nothing && /compat/bash.sh -nt /nonexistent ]] && echo "tests ok"
mkdir -p globs && touch globs/{a,b,c}.txt globs/d.log globs/.hidden
echo globs/*.txt; shopt -s dotglob nullglob; echo globs/*; echo globs/*.none; shopt -u dotglob nullglob
echo {1..5} {a..e..2} {01..03} x{y,z}w

echo "== subshells, command substitution, process substitution"
v=outer; (v=inner; echo "sub $v"); echo "parent $v"
echo "nested $(echo "level1 $(echo "level2 $(echo level3)")")"
diff <(seq 1 5) <(seq 1 5 | sed 3d) && echo same || echo "diff status $?"
paste <(seq 3) <(seq 4 6) <(echo a; echo b; echo c)
echo "lines: $(wc -l < /etc/passwd | tr -d ' ')" >/dev/null
exec 3>fd3.txt; echo "via fd 3" >&3; exec 3>&-; cat fd3.txt
{ echo stdout-line; echo stderr-line >&2; } 2>&1 | sort

echo "== traps"
trap 'echo "EXIT trap of subshell"' EXIT
(trap 'echo "caught USR1"' USR1; kill -USR1 $BASHPID; echo "after USR1")
( trap 'echo "ERR at line $LINENO"' ERR; false; echo "continues after ERR" )
( trap 'echo "TERM trapped"; exit 3' TERM; kill -TERM $BASHPID; echo not reached ); echo "subshell status $?"
( trap 'echo "INT trapped"' INT; kill -INT $BASHPID; echo "after INT" )
trap - EXIT
trap 'echo "RETURN from $FUNCNAME"' RETURN; g() { :; }; g; trap - RETURN

echo "== jobs and wait"
for i in 3 1 2; do (sleep "0.$i"; echo "job $i" >>jobs.txt) & done
wait
sort -o jobs.txt jobs.txt; cat jobs.txt  # (appended in the order the jobs end)
sleep 0.1 & p=$!; wait $p; echo "waited status $?"
(exit 7) & wait $!; echo "background exit $?"
sleep 5 & k=$!; kill $k; wait $k; echo "killed status $?"
coproc UPPER { tr a-z A-Z; }
echo "through coproc" >&"${UPPER[1]}"; exec {UPPER[1]}>&-
read -r line <&"${UPPER[0]}"; echo "$line"; wait

echo "== files written"
for i in $(seq 1 50); do echo "line $i $((i * i % 17))"; done >loop.txt
printf '%s\n' "${arr[@]}" >array.txt
sort -t' ' -k3,3n -k2,2nr loop.txt | head -5
set -- a "b c" d; echo "$# args: $*"; shift; echo "after shift: $1"
echo "done"
exit 3
