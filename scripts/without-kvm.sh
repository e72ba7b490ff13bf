#!/bin/bash
# Run a command as on a host without /dev/kvm, to check that mapvisor (and its test suite) works there:
#   scripts/without-kvm.sh node scripts/test.mjs
# As root: the script re-runs itself in a private mount namespace (unshare -m, private propagation)
# and mounts there a fresh /dev holding every entry of the host's /dev but kvm. The host's /dev is
# never touched.
set -e
if [ "$1" != "--in-private-namespace" ]; then
  exec unshare --mount --propagation private "$0" --in-private-namespace "$@"
fi
shift
old=$(mktemp -d)
# --rbind: the host's /dev with its submounts (devpts, shm, mqueue). Every entry but kvm is put back in
# the fresh /dev: links as links, the rest bound (so ptys, /dev/shm and the like work as on the host).
mount --rbind /dev "$old"
mount -t tmpfs -o mode=755 none /dev
for p in "$old"/* "$old"/.[!.]*; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  n=${p##*/}
  [ "$n" = kvm ] && continue
  # ptmx finds its devpts next to itself: a bound device node has no "pts" beside it, a link to it does.
  if [ "$n" = ptmx ]; then ln -s pts/ptmx /dev/ptmx; continue; fi
  if [ -L "$p" ]; then ln -s "$(readlink "$p")" "/dev/$n"
  elif [ -d "$p" ]; then mkdir "/dev/$n"; mount --rbind "$p" "/dev/$n"
  else touch "/dev/$n"; mount --bind "$p" "/dev/$n"; fi
done
exec "$@"
