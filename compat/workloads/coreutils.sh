# compat: coreutils: ls -l, sort -n, cp -a, mv, ln -s, stat, du, df, date, env, id and friends
# packages: findutils,diffutils,sed,gawk,grep,tzdata,dash
# quick: yes
# timeout: 120
# Prints only fields that are the same on every run: file times are set with touch -d, df shows the
# mount point and that the numbers add up, date works on fixed instants (and checks the clock is sane).
set -u
T='2024-02-29 12:34:56'

echo "== make a tree"
mkdir -p src/sub/deeper src/empty
printf 'one\ntwo\nthree\n' >src/a.txt
seq 1 1000 >src/sub/numbers
head -c 100000 /dev/zero | tr '\0' 'x' >src/sub/deeper/big
printf '#!/bin/sh\necho script\n' >src/run.sh
chmod 755 src/run.sh; chmod 600 src/a.txt; chmod 2750 src/sub
ln -s a.txt src/link-to-a
ln -s ../nowhere src/dangling
ln src/sub/numbers src/hardlink
find src -exec touch -h -d "$T" {} +

echo "== ls"
ls -l --time-style=long-iso src | sed 1d
ls -lR --time-style=+%F_%T src | grep -v '^total'
ls -1 -a src; ls -d src/*/; ls -F src; ls -s1 --block-size=1 src/sub | sort -k2
ls -la --time-style=+%s src/empty | gawk '{print $1, $6, $7}'
ls -i src/hardlink src/sub/numbers | gawk '{print $1}' | uniq | wc -l

echo "== stat"
stat -c '%n %F %a %A %s %h %U:%G %Y' src/a.txt src/run.sh src/sub src/link-to-a src/dangling src/hardlink src/empty
stat -L -c '%n %F %s' src/link-to-a
stat -c '%y' src/a.txt
stat -f -c 'namelen %l type-known %T' /out | sed 's/type-known .*/type-known/'
stat --printf='%n has %b blocks of %B\n' src/sub/deeper/big | gawk '{print ($3 * $6 >= 100000) ? "blocks cover size" : "blocks too few"}'

echo "== cp -a, mv, ln, rm"
cp -a src copy
diff -r src copy && echo "cp -a: same content"
stat -c '%n %a %Y' copy/a.txt copy/run.sh copy/sub copy/link-to-a
readlink copy/link-to-a copy/dangling
[ "$(stat -c %i copy/hardlink)" = "$(stat -c %i copy/sub/numbers)" ] && echo "cp -a keeps hard links"
cp -r --preserve=mode src copy2 && stat -c '%n %a' copy2/run.sh copy2/sub
mv copy/a.txt copy/renamed.txt && mv copy/sub copy/moved && ls copy
mv -n copy/renamed.txt copy/run.sh; ls copy | tr '\n' ' '; echo
mv -f copy/renamed.txt copy/run.sh; cat copy/run.sh
ln -sf moved/numbers copy/nlink; readlink -f copy/nlink | sed "s|$PWD|.|"; head -2 copy/nlink
ln -sr copy/moved/deeper/big copy/rel; readlink copy/rel
rm -r copy2; rm copy/dangling; ls copy | tr '\n' ' '; echo
cp --backup=numbered src/a.txt copy/x; cp --backup=numbered src/a.txt copy/x; cp --backup=numbered src/a.txt copy/x; ls copy | grep x
install -m 0640 -D src/a.txt installed/deep/dir/a; stat -c '%a %s' installed/deep/dir/a

echo "== sort, uniq, cut, tr, wc, head, tail"
printf '10\n9\n100\n-3\n2.5\n1e3\n0x10\n' | sort -n | tr '\n' ' '; echo
printf '10\n9\n100\n-3\n2.5\n' | sort -rn | tr '\n' ' '; echo
printf '1K\n3M\n2G\n500\n' | sort -h | tr '\n' ' '; echo
printf 'b 2\na 10\nc 1\na 2\n' | sort -k1,1 -k2,2n | tr '\n' ';'; echo
seq 1 20 | sort -R --random-source=src/sub/numbers | head -3 | tr '\n' ' '; echo
printf 'x\nx\ny\nx\n' | uniq -c; printf 'b\na\nb\n' | sort -u
cut -d: -f1,3 /etc/passwd | head -2; echo "hello world" | cut -c 1-5
echo "Hello World" | tr 'a-z' 'A-Z' | tr -d 'O' | tr -s 'L'
wc src/a.txt src/sub/numbers; wc -c <src/sub/deeper/big
head -n 3 src/sub/numbers | tr '\n' ' '; tail -n 2 src/sub/numbers | tr '\n' ' '; tail -c 5 src/sub/numbers; echo
seq 10 | tac | tr '\n' ' '; echo; seq -s, -w 8 12; seq 0 0.25 1 | tr '\n' ' '; echo
printf 'a\tb\n' | expand -t 4 | cat -A; echo "fold this long line please" | fold -w 10
nl -ba src/a.txt; printf '1 a\n2 b\n' >j1; printf '1 x\n3 y\n' >j2; join -a1 j1 j2; comm <(printf 'a\nb\nc\n') <(printf 'b\nc\nd\n')
factor 1234567890 2147483647; numfmt --to=iec 1048576 123456789; echo "$((16#ff))" | numfmt --grouping
split -l 300 src/sub/numbers part.; wc -l part.* | tail -1; cat part.* | cmp - src/sub/numbers && echo "split joins back"

echo "== checksums and encodings"
sha256sum src/a.txt src/sub/numbers | sed 's|  .*/|  |'
md5sum src/sub/deeper/big | cut -d' ' -f1; b2sum -l 128 src/a.txt | cut -d' ' -f1; cksum src/a.txt
base64 src/a.txt; base64 src/a.txt | base64 -d | od -c | head -2; echo hi | base32
dd if=src/sub/numbers of=dd.out bs=100 skip=2 count=3 status=none; wc -c dd.out; od -An -tx1 -N8 dd.out
truncate -s 10K sparse; truncate -s -2K sparse; stat -c '%s' sparse
printf 'abc' | tee tee1 tee2 >/dev/null; cat tee1 tee2; echo

echo "== du and df"
du -s --apparent-size --block-size=1 src/sub/deeper; du -a -l --apparent-size -b src | sort -k2 | gawk '$2 !~ /\/(sub|empty)$|^src$/'
du -s src | gawk '{print ($1 >= 100) ? "du counts the big file" : "du too small"}'
df -P /out | gawk 'NR == 2 {print "mounted on", $6; print (($3 + $4) <= $2 && $2 > 0) ? "used + available <= size" : "df numbers do not add up"}'
df --output=target,itotal /out | gawk 'NR == 2 {print $1, ($2 > 0) ? "has inodes" : "no inodes"}'

echo "== date"
date -d "@1700000000"
date -u -d "$T" '+%s %A %j %U %Z'
date -d '2024-02-29 + 1 year' +%F; date -d '2023-12-31 23:59:59 + 1 second' '+%F %T'
date -d @0 --rfc-3339=seconds; date -d @86399 -R; date -d '2000-01-01' '+%G-W%V-%u'
touch now-file; now=$(date +%s); m=$(stat -c %Y now-file)
[ $((now - m)) -ge 0 ] && [ $((now - m)) -le 60 ] && [ "$now" -gt 1700000000 ] && echo "clock agrees with file times"
date +%Z; TZ=America/New_York date -d @1700000000 2>/dev/null || echo "(no zoneinfo)"

echo "== env, id, misc"
env | sort | grep -v '^_='
env -i FOO=bar /usr/bin/env; env -u HOME | grep -c '^HOME=' || true
id; id -u; id -gn; id -G; whoami; groups
printenv TZ LANG; pwd; basename /a/b/c.txt .txt; dirname /a/b/c.txt; realpath -m ../x/./y/..
nproc >/dev/null && echo "nproc ok"; uname -s -m; tty || true; logname 2>/dev/null || echo "no login name"
sleep 0.1; timeout 0.2 sleep 5; echo "timeout status $?"; true; false || echo "false status $?"
yes | head -3 | tr '\n' ' '; echo; printf '%s\n' "$(echo -e 'a\tb')"; test 3 -gt 2 && echo "test ok"
expr 6 \* 7; expr length "hello"; expr substr "hello" 2 3
mktemp -d /tmp/cmp.XXXXXX | grep -c '^/tmp/cmp\.' ; mktemp | grep -c '^/tmp/tmp\.'
chmod -R go-rwx src/sub; stat -c '%n %a' src/sub src/sub/numbers
mkfifo fifo; (echo through-fifo >fifo &); cat fifo; rm fifo
ls -l --time-style=+ . | gawk 'NR > 1 {print $1, $2, $5, $NF}'
echo "done"
