// File locks between processes, as Linux answers: flock (per open file description: shared, exclusive,
// LOCK_NB, conversion, inherited through fork, dropped at the last close), fcntl POSIX record locks
// (byte ranges, split and merged, F_GETLK naming the holder's pid, dropped by any close of the file
// and by the holder's end, F_SETLKW waiting), and OFD locks (F_OFD_*). One line per check; the same
// as natively.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *F = "/tmp/locks-test";
static const char *en(int r) { return r == 0 ? "ok" : errno == EAGAIN ? "EAGAIN" : errno == EINVAL ? "EINVAL" : errno == EBADF ? "EBADF" : strerror(errno); }

static int setlk(int fd, int cmd, short type, off_t start, off_t len) {
    struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &l);
}
static void getlk(const char *who, int fd, int cmd, short type, off_t start, off_t len, pid_t expect) {
    struct flock l = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    int r = fcntl(fd, cmd, &l);
    printf("%s: %s type %s start %ld len %ld pid %s\n", who, en(r), l.l_type == F_UNLCK ? "U" : l.l_type == F_RDLCK ? "R" : "W", (long)l.l_start, (long)l.l_len,
           l.l_type == F_UNLCK ? "-" : l.l_pid == expect ? "holder" : l.l_pid == -1 ? "-1" : "other");
}
/* Run `f` in a child (a different process) and print its line. */
#define IN_CHILD(code) do { fflush(stdout); pid_t p_ = fork(); if (p_ == 0) { code; fflush(stdout); _exit(0); } waitpid(p_, NULL, 0); } while (0)

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fd = open(F, O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "0123456789012345678901234567890123456789", 40);
    int other = open(F, O_RDWR);
    printf("flock ex: %s\n", en(flock(fd, LOCK_EX)));
    printf("flock ex by another description: %s\n", en(flock(other, LOCK_EX | LOCK_NB)));
    printf("flock sh by another description: %s\n", en(flock(other, LOCK_SH | LOCK_NB)));
    IN_CHILD(printf("child: flock on the inherited description: %s\n", en(flock(fd, LOCK_EX | LOCK_NB))));
    IN_CHILD(int o = open(F, O_RDONLY); printf("child: flock sh on its own description: %s\n", en(flock(o, LOCK_SH | LOCK_NB))));
    printf("convert to sh: %s; another sh: %s\n", en(flock(fd, LOCK_SH)), en(flock(other, LOCK_SH | LOCK_NB)));
    printf("ex while another holds sh: %s\n", en(flock(fd, LOCK_EX | LOCK_NB)));
    printf("unlock other: %s; ex now: %s\n", en(flock(other, LOCK_UN)), en(flock(fd, LOCK_EX | LOCK_NB)));
    int dup_ = dup(fd);
    close(fd);
    printf("after closing one of two fds: %s\n", en(flock(other, LOCK_EX | LOCK_NB)));
    close(dup_);
    printf("after the last close: %s\n", en(flock(other, LOCK_EX | LOCK_NB)));
    flock(other, LOCK_UN);
    printf("bad op: %s\n", en(flock(other, 0)));

    fd = open(F, O_RDWR);
    printf("posix wr 0-9: %s, rd 20-29: %s\n", en(setlk(fd, F_SETLK, F_WRLCK, 0, 10)), en(setlk(fd, F_SETLK, F_RDLCK, 20, 10)));
    printf("own locks never conflict: %s\n", en(setlk(other, F_SETLK, F_WRLCK, 0, 40)));
    setlk(fd, F_SETLK, F_UNLCK, 0, 0);
    setlk(fd, F_SETLK, F_WRLCK, 0, 10);
    setlk(fd, F_SETLK, F_RDLCK, 20, 10);
    pid_t me = getpid();
    IN_CHILD(getlk("child: getlk wr 5-14", open(F, O_RDWR), F_GETLK, F_WRLCK, 5, 10, me));
    IN_CHILD(getlk("child: getlk rd 20-24", open(F, O_RDWR), F_GETLK, F_RDLCK, 20, 5, me));
    IN_CHILD(getlk("child: getlk wr 25-34", open(F, O_RDWR), F_GETLK, F_WRLCK, 25, 10, me));
    IN_CHILD(getlk("child: getlk wr 10-19", open(F, O_RDWR), F_GETLK, F_WRLCK, 10, 10, me));
    IN_CHILD(int o = open(F, O_RDWR); printf("child: setlk rd 22-23: %s; wr 30-39: %s; wr 9-9: %s\n", en(setlk(o, F_SETLK, F_RDLCK, 22, 2)), en(setlk(o, F_SETLK, F_WRLCK, 30, 10)), en(setlk(o, F_SETLK, F_WRLCK, 9, 1))));
    /* split: unlock the middle of 0-9; merge: 10-19 joins 0-..? */
    setlk(fd, F_SETLK, F_UNLCK, 3, 4);
    IN_CHILD(getlk("child: after unlocking 3-6, getlk wr 0-9", open(F, O_RDWR), F_GETLK, F_WRLCK, 0, 10, me));
    IN_CHILD(getlk("child: getlk wr 3-6", open(F, O_RDWR), F_GETLK, F_WRLCK, 3, 4, me));
    setlk(fd, F_SETLK, F_WRLCK, 3, 4);
    setlk(fd, F_SETLK, F_WRLCK, 10, 5);
    IN_CHILD(getlk("child: merged, getlk wr 0-39", open(F, O_RDWR), F_GETLK, F_WRLCK, 0, 0, me));
    printf("unlocked region getlk by owner: ");
    getlk("self", fd, F_GETLK, F_WRLCK, 0, 40, me);
    int d2 = open(F, O_RDONLY);
    close(d2); /* any close of the file drops the process's POSIX locks */
    IN_CHILD(getlk("child: after the holder closed another fd", open(F, O_RDWR), F_GETLK, F_WRLCK, 0, 0, me));
    setlk(fd, F_SETLK, F_WRLCK, 0, 0);
    int d3 = open(F, O_RDONLY), dn = open("/dev/null", O_RDONLY);
    dup2(dn, d3); /* closes an fd of the file: the locks go */
    IN_CHILD(getlk("child: after the holder dup2'd over another fd", open(F, O_RDWR), F_GETLK, F_WRLCK, 0, 0, me));
    close(dn);
    close(d3);
    printf("wr lock on a read-only fd: %s\n", (d2 = open(F, O_RDONLY), en(setlk(d2, F_SETLK, F_WRLCK, 0, 1))));
    printf("bad type: %s\n", en(setlk(fd, F_SETLK, 7, 0, 1)));

    /* F_SETLKW waits until the holder (a child) lets go; the lock goes with its end. */
    int pfd[2];
    pipe(pfd);
    pid_t c = fork();
    if (c == 0) {
        int o = open(F, O_RDWR);
        setlk(o, F_SETLK, F_WRLCK, 0, 0);
        write(pfd[1], "x", 1);
        usleep(200000);
        _exit(0); /* the lock goes with the process */
    }
    char ch;
    read(pfd[0], &ch, 1);
    printf("while the child holds it: %s\n", en(setlk(fd, F_SETLK, F_WRLCK, 0, 0)));
    printf("F_SETLKW: %s\n", en(setlk(fd, F_SETLKW, F_WRLCK, 0, 0)));
    waitpid(c, NULL, 0);
    setlk(fd, F_SETLK, F_UNLCK, 0, 0);

    /* OFD locks: owned by the description. */
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10, .l_pid = 0};
    printf("ofd wr 0-9: %s\n", en(fcntl(fd, F_OFD_SETLK, &l)));
    l.l_pid = 5;
    printf("ofd with l_pid set: %s\n", en(fcntl(fd, F_OFD_SETLK, &l)));
    int o2 = open(F, O_RDWR);
    printf("ofd by another description of this process: %s\n", en(setlk(o2, F_OFD_SETLK, F_WRLCK, 5, 1)));
    getlk("ofd getlk by another description", o2, F_OFD_GETLK, F_WRLCK, 0, 40, me);
    close(o2);
    close(fd);
    fd = open(F, O_RDWR);
    printf("after the last close of the description: %s\n", en(setlk(fd, F_OFD_SETLK, F_WRLCK, 0, 10)));
    unlink(F);
    return 0;
}
