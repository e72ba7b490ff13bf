// fragmap: a file whose blocks are interleaved with another's (written 4 KiB at a time, in turns), then
// mapped whole: thousands of runs of the image in one mmap (on the process platform, more memory-map
// orders than its ring holds in one system call). Checks every page through the mapping and through
// read(). usage: fragmap DIR [PAGES]. Prints "fragmap ok N runs" or what differed.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/data";
    int pages = argc > 2 ? atoi(argv[2]) : 3000;
    char pa[256], pb[256];
    snprintf(pa, sizeof pa, "%s/frag-a", dir);
    snprintf(pb, sizeof pb, "%s/frag-b", dir);
    int a = open(pa, O_RDWR | O_CREAT | O_TRUNC, 0644), b = open(pb, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (a < 0 || b < 0) { perror("open"); return 1; }
    static char buf[4096];
    for (int i = 0; i < pages; i++) {
        memset(buf, 'A' + i % 26, sizeof buf);
        memcpy(buf, &i, sizeof i);
        if (write(a, buf, sizeof buf) != sizeof buf) { perror("write a"); return 1; }
        memset(buf, 'b', sizeof buf);
        if (write(b, buf, sizeof buf) != sizeof buf) { perror("write b"); return 1; }
    }
    fsync(a);
    unsigned char *m = mmap(NULL, (size_t)pages * 4096, PROT_READ, MAP_SHARED, a, 0);
    if (m == MAP_FAILED) { perror("mmap"); return 1; }
    for (int i = 0; i < pages; i++) {
        int got;
        memcpy(&got, m + (size_t)i * 4096, sizeof got);
        if (got != i || m[(size_t)i * 4096 + 100] != 'A' + i % 26) { printf("page %d differs through the mapping (%d)\n", i, got); return 1; }
    }
    // The same pages through a private mapping the program writes (a copy on some platforms).
    unsigned char *p = mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, a, 0);
    if (p == MAP_FAILED) { perror("mmap private"); return 1; }
    for (int i = 0; i < pages; i += 7) p[(size_t)i * 4096 + 200] = 'z';
    if (pread(a, buf, sizeof buf, 7L * 4096) != sizeof buf || buf[200] != 'A' + 7 % 26) { printf("a private write reached the file\n"); return 1; }
    if (p[7 * 4096 + 200] != 'z' || p[8 * 4096 + 200] != 'A' + 8 % 26) { printf("the private mapping is wrong\n"); return 1; }
    printf("fragmap ok %d pages\n", pages);
    return 0;
}
