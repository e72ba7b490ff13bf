#!/bin/sh
# CRIU for `npm run bench:checkpoint` (optional; the tests do not need it). Debian 12's criu (3.17.1)
# stops on kernels >= 6.13 ("vdso: Unexpected rt vDSO area bounds": [vvar] is split in two there; CRIU
# handles it from 4.1). This installs Debian 13's criu 4.1.1 privately into DIR (default .cache/criu)
# with trixie's own glibc and loader, without touching the system's: bookworm's criu package supplies
# the other shared libraries. Needs root. usage: scripts/install-criu.sh [DIR]
set -e
dest=$(realpath -m "${1:-.cache/criu}")
apt-get install -y criu >/dev/null
mirror=$(awk '/^URIs:/ && $2 ~ /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb $mirror trixie main" > "$work/sources.list"
apt_opts="-o Dir::Etc::sourcelist=$work/sources.list -o Dir::Etc::sourceparts=- -o Dir::State::lists=$work/lists -o Dir::Cache=$work/cache"
echo "install-criu: apt-get update (trixie, private lists)"
apt-get $apt_opts update >/dev/null
(cd "$work" && apt-get $apt_opts download criu:amd64 libc6:amd64 >/dev/null 2>&1)
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
cat > "$dest/criu" <<WRAP
#!/bin/sh
exec $dest/usr/lib64/ld-linux-x86-64.so.2 --library-path $dest/usr/lib/x86_64-linux-gnu $dest/usr/sbin/criu "\$@"
WRAP
chmod +x "$dest/criu"
"$dest/criu" --version | head -1
"$dest/criu" check
