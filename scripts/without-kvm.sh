#!/bin/bash
# Run a command as on a host without /dev/kvm, to check that mapvisor (and its test suite) works there:
#   scripts/without-kvm.sh node scripts/test.mjs
# As root: the script re-runs itself in a private mount namespace (unshare -m, private propagation)
# and mounts there a fresh /dev holding only the usual devices, without kvm. The host's /dev is
# never touched.
set -e
if [ "$1" != "--in-private-namespace" ]; then
  exec unshare --mount --propagation private "$0" --in-private-namespace "$@"
fi
shift
old=$(mktemp -d)
mount --bind /dev "$old"
mount -t tmpfs none /dev
for d in null zero full random urandom tty; do touch /dev/$d; mount --bind "$old/$d" /dev/$d; done
mkdir -p /dev/shm /dev/pts
mount --bind "$old/shm" /dev/shm
mount --bind "$old/pts" /dev/pts
ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
exec "$@"
