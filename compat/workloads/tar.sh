# compat: tar with gzip, xz and zstd: create, list, extract, compare; reproducible archives
# packages: tar,gzip,xz-utils,zstd,findutils,diffutils,gawk,dash
# quick: yes
# timeout: 180
set -u
mkdir -p src/docs src/bin src/data/nested/deep
for i in $(seq 1 40); do seq "$i" 3 2000 >"src/data/seq$i.txt"; done
head -c 300000 /compat/bash.sh /compat/coreutils.sh /compat/tar.sh >src/docs/scripts.txt
yes 'compressible line of text' | head -n 20000 >src/docs/repeat.txt
printf '#!/bin/sh\necho tool\n' >src/bin/tool; chmod 755 src/bin/tool
ln -s ../docs/repeat.txt src/bin/link
ln src/docs/repeat.txt src/data/hardlink
: >src/data/nested/deep/empty
chmod 700 src/data/nested
find src -exec touch -h -d '2023-05-01 10:00:00' {} +
# Reproducible archives: names sorted, fixed owner and times, no gzip name/time.
R=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@1682935200 --format=gnu)

echo "== create"
tar -cf plain.tar "${R[@]}" src
tar -czf gz.tgz "${R[@]}" src; GZIP=-n tar -cf - "${R[@]}" src | gzip -n -9 >gz9.tar.gz
tar -cJf xz.txz "${R[@]}" src; tar -cf - "${R[@]}" src | xz -T1 -6 >xz6.tar.xz
tar --zstd -cf zst.tar.zst "${R[@]}" src; tar -cf - "${R[@]}" src | zstd -q -T1 -19 -o zst19.tar.zst
tar -I 'gzip -n -1' -cf gz1.tgz "${R[@]}" src
ls -l --time-style=+ plain.tar | gawk '{print $5, $NF}'
for f in gz.tgz gz9.tar.gz xz.txz xz6.tar.xz zst.tar.zst zst19.tar.zst gz1.tgz; do
  printf '%s %s\n' "$f" "$(file_type=$(head -c 6 "$f" | od -An -tx1 | tr -d ' '); echo "$file_type")"
done
echo "all smaller than plain: $(for f in *.tgz *.gz *.txz *.xz *.zst; do [ "$(stat -c %s "$f")" -lt "$(stat -c %s plain.tar)" ] || echo "$f"; done | wc -l) exceptions"

echo "== list"
tar -tvf plain.tar --numeric-owner | gawk '{print $1, $2, $3, $NF}' | head -12
tar -tzf gz.tgz | wc -l; tar -tJf xz.txz | tail -3; tar --zstd -tf zst.tar.zst | grep -c seq
tar -tf zst19.tar.zst src/bin/link src/bin/tool

echo "== extract and compare"
for a in plain.tar gz.tgz gz9.tar.gz xz.txz xz6.tar.xz zst.tar.zst zst19.tar.zst gz1.tgz; do
  rm -rf /tmp/x && mkdir /tmp/x
  tar -xf "$a" -C /tmp/x
  if diff -r src /tmp/x/src >/dev/null && [ "$(stat -c %i /tmp/x/src/data/hardlink)" = "$(stat -c %i /tmp/x/src/docs/repeat.txt)" ] && [ "$(readlink /tmp/x/src/bin/link)" = ../docs/repeat.txt ]; then
    echo "$a: extracts to the same tree ($(stat -c '%a %Y' /tmp/x/src/data/nested /tmp/x/src/bin/tool | tr '\n' ' '))"
  else echo "$a: DIFFERENT"; fi
done
mkdir partial && tar -xzf gz.tgz -C partial --strip-components=2 src/docs && ls partial
mkdir wild && tar -xJf xz.txz -C wild --wildcards 'src/data/seq1*.txt' && ls wild/src/data | wc -l
tar -xOf plain.tar src/bin/tool; tar -xOzf gz.tgz src/data/seq40.txt | head -2

echo "== append, update, compressors alone"
cp plain.tar grow.tar; echo extra >extra.txt; touch -d '2023-05-01' extra.txt
tar -rf grow.tar "${R[@]}" extra.txt; tar -tf grow.tar | tail -1
gzip -n -c src/docs/repeat.txt >repeat.gz; gzip -l repeat.gz | gawk 'NR == 2 {print $1, $2}'; gzip -t repeat.gz && echo "gzip -t ok"
xz -T1 -c src/docs/scripts.txt >scripts.xz; xz -l --robot scripts.xz | gawk '$1 == "totals" {print $5}'; xz -dc scripts.xz | cmp - src/docs/scripts.txt && echo "xz round trip"
zstd -q -c src/docs/scripts.txt >scripts.zst; zstd -q -t scripts.zst && echo "zstd -t ok"; zstd -q -dc scripts.zst | sha256sum | cut -c1-16
printf 'not compressed' >bad.gz; gzip -t bad.gz 2>/dev/null; echo "gzip -t on junk: $?"
xz -t bad.gz 2>/dev/null; echo "xz -t on junk: $?"; zstd -q -t bad.gz 2>/dev/null; echo "zstd -t on junk: $?"
sha256sum *.tar *.tgz *.gz *.txz *.xz *.zst | cut -c1-16,65- | sort -k2
echo "done"
