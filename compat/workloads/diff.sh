# compat: diffutils and patch: diff -u/-r/-q/-y, cmp -l/-s, diff3, patch applying the diffs
# packages: diffutils,patch,sed,dash,findutils,grep
# quick: yes
# timeout: 120
set -u
mkdir -p old/sub new/sub new/added
seq 1 30 >old/numbers
{ seq 1 9; echo ten; seq 11 24; seq 26 33; } >new/numbers
printf 'alpha\nbeta\ngamma\ndelta\n' >old/greek; printf 'alpha\nBETA\ngamma\ndelta\nepsilon\n' >new/greek
printf 'same\n' >old/sub/same; printf 'same\n' >new/sub/same
printf 'gone\n' >old/sub/removed; printf 'new\n' >new/added/file
printf 'no newline' >old/nonl; printf 'no newline\n' >new/nonl
printf '\x00\x01\x02binary' >old/bin; printf '\x00\x01\x03binary' >new/bin
find old new -exec touch -d '2024-01-01 00:00:00' {} +  # diff's headers show the times

echo "== diff"
diff old/numbers new/numbers; echo "status $?"
diff -u --label old --label new old/greek new/greek; echo "status $?"
diff -c --label a --label b old/greek new/greek | head -8
diff -q old new; echo "status $?"
diff -ru --label x --label y old/greek new/greek >greek.patch; wc -l greek.patch
diff -rN -u old new | grep -E '^(\+\+\+|---|@@|Only|diff|Binary)' | sed -E 's/\t.*//'
diff -y -W 40 old/greek new/greek; diff --brief old/sub/same new/sub/same; echo "same status $?"
diff -i <(echo HELLO) <(echo hello) && echo "-i ignores case"; diff -w <(echo 'a  b') <(echo 'a b') && echo "-w ignores space"
diff -B <(printf 'a\n\nb\n') <(printf 'a\nb\n') && echo "-B ignores blank lines"
diff --normal old/nonl new/nonl; diff -a old/bin new/bin | od -c | head -3; diff old/bin new/bin; echo "binary status $?"
diff old/numbers /nonexistent 2>/dev/null; echo "missing status $?"
diff --unchanged-line-format='=%L' --old-line-format='-%L' --new-line-format='+%L' old/greek new/greek
diff -e old/greek new/greek; diff --ifdef=NEW old/greek new/greek | head -8

echo "== cmp"
cmp old/numbers new/numbers; echo "status $?"
cmp -l old/bin new/bin; cmp -s old/sub/same new/sub/same; echo "same $?"; cmp -s old/bin new/bin; echo "differ $?"
cmp -n 2 old/bin new/bin && echo "first 2 bytes equal"; cmp -i 4 old/greek new/greek 2>&1 | head -1; cmp -b old/greek new/greek
cmp old/nonl new/nonl; echo "EOF status $?"

echo "== diff3 and patch"
printf 'a\nb\nc\nd\n' >base; printf 'a\nB\nc\nd\n' >mine; printf 'a\nb\nc\nD\n' >yours; printf 'a\nX\nc\nd\n' >theirs
diff3 mine base yours; echo "status $?"; diff3 -m mine base yours; echo "merge status $?"
diff3 -m -L mine -L base -L theirs mine base theirs; echo "conflict status $?"
cp -a old work
diff -ruN old new >tree.patch || true
(cd work && patch -p1 -s <../tree.patch); echo "patch status $?"
diff -r work new && echo "patched tree equals new"
patch -R -p1 -s -d work <tree.patch && diff -r work old && echo "reverse patch restores old"
cp old/greek g2; patch -s g2 greek.patch; cmp g2 new/greek && echo "single-file patch ok"
printf 'totally\ndifferent\n' >g3; patch -s -f --no-backup-if-mismatch g3 greek.patch >/dev/null 2>&1; echo "failing patch status $?"; ls g3*
sdiff -s -w 40 old/greek new/greek; echo "sdiff status $?"
echo "done"
