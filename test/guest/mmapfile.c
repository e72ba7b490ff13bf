// File mappings on the image: MAP_SHARED stores reach the file (msync), MAP_PRIVATE stores do not,
// read() sees a shared mapping's stores, and a touch past the end of the file is SIGBUS.
// usage: mmapfile PATH [sigbus]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s (%s)\n", msg, strerror(errno)); return 1; } } while (0)

int main(int argc, char **argv) {
    const char *path = argv[1];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "open");
    CHECK(ftruncate(fd, 3 * 4096 + 100) == 0, "ftruncate");
    char *p = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(p != MAP_FAILED, "mmap shared");
    for (int i = 0; i < 3 * 4096 + 100; i++) CHECK(p[i] == 0, "a new file maps as zeros");
    memcpy(p, "shared mapping was here", 23);
    memcpy(p + 2 * 4096, "page three", 10);
    CHECK(msync(p, 4 * 4096, MS_SYNC) == 0, "msync");
    char buf[32] = {0};
    CHECK(pread(fd, buf, 23, 0) == 23 && memcmp(buf, "shared mapping was here", 23) == 0, "read() sees the mapping's stores");
    CHECK(pwrite(fd, "WRITE", 5, 4096) == 5, "pwrite");
    CHECK(memcmp(p + 4096, "WRITE", 5) == 0, "the mapping sees write()");
    char *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(q != MAP_FAILED, "mmap private");
    CHECK(memcmp(q, "shared", 6) == 0, "a private mapping starts with the file's bytes");
    memcpy(q, "PRIVATE", 7);
    CHECK(memcmp(p, "shared", 6) == 0, "private stores stay private");
    CHECK(munmap(q, 4096) == 0 && munmap(p, 4 * 4096) == 0, "munmap");
    printf("mmapfile ok\n");
    fflush(stdout);
    if (argc > 2) {
        char *r = mmap(NULL, 5 * 4096, PROT_READ, MAP_SHARED, fd, 0);
        CHECK(r != MAP_FAILED, "mmap again");
        volatile char c = r[3 * 4096 + 200]; // inside the last page, past EOF: zero, not a fault
        CHECK(c == 0, "bytes past EOF in the last page read as zero");
        printf("touching the page past the end of the file\n");
        fflush(stdout);
        c = r[4 * 4096]; // the fifth page lies wholly past EOF: SIGBUS
        (void)c;
        printf("FAIL: no SIGBUS\n");
        return 1;
    }
    return 0;
}
