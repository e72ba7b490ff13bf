# compat: file locking between processes: flock(1) exclusive/shared/nonblocking, fcntl record locks (python's fcntl.lockf and F_GETLK), perl's flock, lock release on exit
# packages: util-linux,python3-minimal,perl-base,dash
# quick: yes
# timeout: 120
set -eu
touch lockfile
# flock(1): a holder in the background, then contenders.
flock lockfile -c 'echo holder-start > holder.txt; sleep 1; echo holder-end >> holder.txt' &
sleep 0.3
flock -n lockfile -c 'echo got-it' || echo "flock -n: busy (status $?)"
flock -s -n lockfile -c 'echo shared-got-it' || echo "flock -s -n: busy"
flock -w 5 lockfile -c 'echo waited-for-lock; cat holder.txt'
wait
flock -s lockfile -c 'flock -s -n lockfile -c "echo two shared holders"'
flock -s lockfile -c 'flock -n -x lockfile -c "echo never" || echo "exclusive refused while shared held"'
# An fd-based flock through exec'd children: the lock belongs to the open file description.
exec 9>lockfile
flock -x 9
flock -n lockfile -c 'echo never' || echo "held by fd 9 of the shell"
flock -u 9
flock -n lockfile -c 'echo released by flock -u'
exec 9>&-
# fcntl record locks (POSIX): byte ranges, F_GETLK reporting the holder, release when the holder exits.
python3 - <<'PY'
import fcntl, os, struct, subprocess, sys, time
fd = os.open("records", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"x" * 100)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)          # bytes 0..9
fcntl.lockf(fd, fcntl.LOCK_SH, 10, 50)         # bytes 50..59
child = r'''
import fcntl, os, struct, sys, errno
fd = os.open("records", os.O_RDWR)
def probe(kind, start, length):
    try:
        fcntl.lockf(fd, kind | fcntl.LOCK_NB, length, start)
        fcntl.lockf(fd, fcntl.LOCK_UN, length, start)
        return "free"
    except OSError as e:
        return errno.errorcode[e.errno]
print("child: ex 0-9", probe(fcntl.LOCK_EX, 0, 10))
print("child: ex 10-19", probe(fcntl.LOCK_EX, 10, 10))
print("child: sh 50-59", probe(fcntl.LOCK_SH, 50, 10))
print("child: ex 55-64", probe(fcntl.LOCK_EX, 55, 10))
lk = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 10, 0)
t, w, s, l, pid = struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, lk))
print("child: F_GETLK type", {fcntl.F_WRLCK: "W", fcntl.F_RDLCK: "R", fcntl.F_UNLCK: "U"}[t], "start", s, "len", l, "holder is parent", pid == os.getppid())
'''
sys.stdout.flush()
subprocess.run([sys.executable, "-c", child], check=True)
fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)
subprocess.run([sys.executable, "-c", child], check=True)
# A lock dies with its process: a child takes one and exits; then it is free.
fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
pid = os.fork()
if pid == 0:
    fd2 = os.open("records", os.O_RDWR)
    fcntl.lockf(fd2, fcntl.LOCK_EX, 0, 0)
    os._exit(0)
os.waitpid(pid, 0)
fd3 = os.open("records", os.O_RDWR)
fcntl.lockf(fd3, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)
print("whole-file lock free after the holder exited")
# Closing any fd of the file drops the process's POSIX locks on it.
os.close(fd3)
r = subprocess.run([sys.executable, "-c", "import fcntl,os; fd=os.open('records', os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX|fcntl.LOCK_NB, 0, 0); print('child got the whole file after close')"])
print("status", r.returncode)
PY
# perl's flock on the same file as flock(1), across a fork.
perl -e '
use Fcntl qw(:flock);
open(my $fh, ">>", "lockfile") or die;
flock($fh, LOCK_EX) or die;
my $pid = fork();
if ($pid == 0) {
    open(my $g, ">>", "lockfile") or die;
    print flock($g, LOCK_EX | LOCK_NB) ? "child: got it\n" : "child: busy\n";
    exit 0;
}
waitpid($pid, 0);
flock($fh, LOCK_UN);
my $r = system("flock", "-n", "lockfile", "-c", "echo flock after perl unlocked");
print "system status ", $r >> 8, "\n";
'
echo "exit $?"
