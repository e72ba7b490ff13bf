// pipe2 inside one program, and the /dev devices: prints "pipes ok" when every check passes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s (%s)\n", msg, strerror(errno)); return 1; } } while (0)

int main(void) {
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2");
    CHECK(fcntl(p[0], F_GETFD) == FD_CLOEXEC, "O_CLOEXEC on the read end");
    char big[100000];
    memset(big, 'x', sizeof big);
    // A pipe holds 64 KiB: a non-blocking write fills it and then answers EAGAIN.
    CHECK(fcntl(p[1], F_SETFL, O_NONBLOCK) == 0, "F_SETFL O_NONBLOCK");
    ssize_t n = write(p[1], big, sizeof big);
    CHECK(n == 65536, "partial write fills the pipe");
    CHECK(write(p[1], big, 1) == -1 && errno == EAGAIN, "full pipe answers EAGAIN");
    char buf[70000];
    CHECK(read(p[0], buf, sizeof buf) == 65536, "read what was written");
    CHECK(write(p[1], "hello", 5) == 5, "write");
    CHECK(close(p[1]) == 0, "close write end");
    CHECK(read(p[0], buf, sizeof buf) == 5 && memcmp(buf, "hello", 5) == 0, "read hello");
    CHECK(read(p[0], buf, sizeof buf) == 0, "EOF after the writer closed");
    close(p[0]);

    // Writing with no reader: EPIPE when SIGPIPE is ignored.
    CHECK(pipe(p) == 0, "pipe");
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    CHECK(write(p[1], "x", 1) == -1 && errno == EPIPE, "EPIPE without a reader");
    close(p[1]);

    int fd = open("/dev/null", O_RDWR);
    CHECK(fd >= 0, "open /dev/null");
    CHECK(write(fd, "abc", 3) == 3, "write /dev/null");
    CHECK(read(fd, buf, 10) == 0, "read /dev/null is EOF");
    close(fd);
    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 1, 100);
    CHECK(fd >= 0 && read(fd, buf, 100) == 100, "read /dev/zero");
    for (int i = 0; i < 100; i++) CHECK(buf[i] == 0, "zeros from /dev/zero");
    close(fd);
    fd = open("/dev/full", O_WRONLY);
    CHECK(fd >= 0 && write(fd, "x", 1) == -1 && errno == ENOSPC, "/dev/full answers ENOSPC");
    close(fd);
    fd = open("/dev/urandom", O_RDONLY);
    CHECK(fd >= 0 && read(fd, buf, 64) == 64, "read /dev/urandom");
    close(fd);
    CHECK(open("/no/such/file", O_RDONLY) == -1 && errno == ENOENT, "missing file is ENOENT");
    int d = dup(1);
    CHECK(d > 2 && dup2(d, 9) == 9 && close(d) == 0, "dup, dup2");
    CHECK(write(9, "pipes ok\n", 9) == 9, "write through a dup2'd stdout");
    return 0;
}
