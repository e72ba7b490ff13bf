# compat: grep, sed and gawk over a generated tree of text files
# packages: grep,sed,gawk,findutils,dash
# quick: yes
# timeout: 120
set -u
LC_ALL=C; export LC_ALL
mkdir -p corpus/logs corpus/src corpus/docs
# A deterministic corpus: web-server-like logs, C-like sources, prose.
gawk 'BEGIN {
  srand(42)
  split("GET POST PUT DELETE", m, " "); split("/ /index.html /api/items /api/users /static/app.js /login", p, " ")
  split("200 200 200 201 301 404 500", s, " ")
  for (f = 1; f <= 3; f++) {
    out = "corpus/logs/access" f ".log"
    for (i = 1; i <= 400; i++)
      printf "10.0.%d.%d - - [%02d/Jan/2024:%02d:%02d:%02d] \"%s %s HTTP/1.1\" %s %d\n", f, int(rand() * 50), f, int(rand() * 24), int(rand() * 60), int(rand() * 60), m[1 + int(rand() * 4)], p[1 + int(rand() * 6)], s[1 + int(rand() * 7)], int(rand() * 5000) > out
  }
  for (f = 1; f <= 4; f++) {
    out = "corpus/src/mod" f ".c"
    printf "#include <stdio.h>\n/* module %d */\n", f > out
    for (i = 1; i <= 30; i++)
      printf "static int func_%d_%d(int x) { return x * %d; } // TODO: check %d\n", f, i, i, (i % 7 == 0) > out
  }
}'
cat >corpus/docs/prose.txt <<'TXT'
It was the best of times, it was the worst of times,
it was the age of wisdom, it was the age of foolishness,
it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness,
it was the spring of hope, it was the winter of despair.
Ünïcödé line: naïve café résumé
TXT
printf 'tab\tseparated\tvalues\nsecond\trow\there\n' >corpus/docs/table.tsv

echo "== grep"
grep -r -c 'HTTP' corpus | sort
grep -rl 'TODO: check 1' corpus | sort
grep -rn -w 'season' corpus/docs
grep -E -o '"(GET|POST) /api/[a-z]+' corpus/logs/access1.log | sort | uniq -c | sort -k1,1nr -k2
grep -v -c ' 200 ' corpus/logs/access2.log; grep -i -c 'it was' corpus/docs/prose.txt
grep -r --include='*.c' -h -o 'func_[0-9]_1[0-9]' corpus | sort | tail -3
grep -P -o '\d+(?= HTTP)' corpus/logs/access3.log 2>/dev/null | head -1 || echo "(no -P)"
grep -A1 -B1 -m1 'foolishness' corpus/docs/prose.txt; grep -x 'it was.*despair\.' corpus/docs/prose.txt
grep -q nothing-here corpus/docs/prose.txt; echo "grep -q miss status $?"; grep -s x /nonexistent; echo "missing file status $?"
grep -F -f <(printf 'wisdom\nhope\n') corpus/docs/prose.txt | wc -l; grep -c 'é' corpus/docs/prose.txt

echo "== sed"
sed -n '2,4p' corpus/docs/prose.txt | sed 's/it was/IT WAS/2'
sed -E 's/^([0-9.]+) .*"([A-Z]+) ([^ ]+).*" ([0-9]+) ([0-9]+)$/\4 \2 \3 \5/' corpus/logs/access1.log | head -3
sed '/worst/,/belief/d' corpus/docs/prose.txt
sed -n '$=' corpus/logs/access1.log; sed -n '/season/{=;p}' corpus/docs/prose.txt
sed '1!G;h;$!d' corpus/docs/table.tsv; sed = corpus/docs/table.tsv | sed 'N;s/\n/: /'
cp -a corpus edited
sed -i 's/TODO: check 1/DONE/' edited/src/*.c
sed -i.bak -e '1i\/* edited copy */' -e '$a\/* end */' edited/src/mod1.c
grep -c DONE edited/src/*.c; head -2 edited/src/mod1.c; tail -1 edited/src/mod1.c; ls edited/src
sed -e 'y/abc/xyz/' -e 's/\(w[a-z]*\)/<\1>/g' corpus/docs/prose.txt | head -2
printf 'a\nb\nc\nd\n' | sed -n 'n;p'; printf 'k=v\n#c\nx = y\n' | sed -E '/^#/d; s/ *= */=/'

echo "== gawk"
gawk '{ split($4, t, ":"); hour[t[2]]++; bytes[$9] += $10 } END {
  n = asorti(bytes, codes); for (i = 1; i <= n; i++) printf "status %s bytes %d\n", codes[i], bytes[codes[i]]
  busiest = ""; for (h in hour) if (busiest == "" || hour[h] > hour[busiest] || (hour[h] == hour[busiest] && h < busiest)) busiest = h
  print "busiest hour", busiest, hour[busiest] }' corpus/logs/*.log
gawk -F'\t' -v OFS='|' '{ $1 = toupper($1); print NR, NF, $0 }' corpus/docs/table.tsv
gawk '{ for (i = 1; i <= NF; i++) { w = tolower($i); gsub(/[^a-z]/, "", w); if (w != "") c[w]++ } }
  END { PROCINFO["sorted_in"] = "@val_num_desc"; n = 0; for (w in c) if (n++ < 5) print c[w], w }' corpus/docs/prose.txt
gawk 'BEGIN { printf "%.6f %d %s %s %x\n", atan2(0, -1), int(-3.7), substr("abcdef", 2, 3), sprintf("%05.1f", 3.14159), 255
  s = "a-b-c"; n = split(s, parts, "-"); print n, parts[3], length(s), index(s, "c"), match("foobar", /o+/), RSTART, RLENGTH
  x = "hello world"; sub(/o/, "0", x); gsub(/l/, "L", x); print x, toupper(substr(x, 1, 1))
  print strftime("%Y-%m-%d %H:%M:%S", 1700000000, 1), mktime("2024 02 29 12 00 00") > 0
  print gensub(/([a-z]+)-([a-z]+)/, "\\2+\\1", "g", "ab-cd ef-gh")
  "echo from command" | getline line; close("echo from command"); print line
  while ((getline l < "corpus/docs/table.tsv") > 0) k++; print k, "lines read"
  r = system("exit 3"); print "system returned", r
  print (length(ENVIRON["HOME"]) > 0), 2 ** 53 + 1, 1e300 * 10, -0 }'
gawk 'FNR == 1 { files++ } /TODO: check 1/ { todo[FILENAME]++ } END { for (f in todo) print f, todo[f] | "sort"; close("sort"); print files, "files" }' corpus/src/*.c
gawk 'BEGIN { RS = ""; FS = "\n" } { print NR": "NF" lines" }' corpus/docs/prose.txt
gawk '{ print > ("split-" ($9 >= 400 ? "error" : "ok") ".txt") }' corpus/logs/access1.log
wc -l split-*.txt
echo "== results"
gawk '{ s += $NF } END { print s }' corpus/logs/*.log >total-bytes.txt
cat total-bytes.txt
