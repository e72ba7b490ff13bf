// Two processes map one file MAP_SHARED, each with its own mmap (not inherited through fork): a store
// by one is seen by the other at once, without msync, as in Linux's page cache (sqlite's WAL index
// works so between processes). Then the stores reach the file (read() after munmap).
// usage: sharedmap PATH
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s (%s)\n", msg, strerror(errno)); return 1; } } while (0)

static volatile int *map(const char *path) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return NULL;
    void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

/** Wait up to 5 s for *p == v. */
static int until(volatile int *p, int v) {
    for (int i = 0; i < 5000; i++) {
        if (*p == v) return 1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/data/shared";
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && ftruncate(fd, 8192) == 0, "create");
    close(fd);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        volatile int *q = map(path);
        if (!q) _exit(2);
        q[1] = 42;                       // the parent sees it
        if (!until(&q[0], 7)) _exit(3);  // the parent's store
        q[1024 + 5] = 99;                // the second page
        _exit(0);
    }
    volatile int *p = map(path);
    CHECK(p != NULL, "mmap");
    CHECK(until(&p[1], 42), "the parent sees the child's store at once");
    p[0] = 7;
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child saw the parent's store");
    CHECK(p[1024 + 5] == 99, "the child's store to the second page");
    CHECK(munmap((void *)p, 8192) == 0, "munmap");
    int v[2] = {0, 0};
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, v, sizeof v, 0) == sizeof v, "read back");
    CHECK(v[0] == 7 && v[1] == 42, "the stores reached the file");
    printf("sharedmap ok\n");
    return 0;
}
