// Storage benchmark workloads, timed inside the program (clock_gettime around the loop only).
//   readbench seq FILE BLOCK        read() the whole file in BLOCK-byte reads
//   readbench pread FILE N          N random 4 KiB pread()s
//   readbench map FILE N [cold]     N random 4 KiB reads (memcpy) through a MAP_SHARED mapping,
//                                   after touching every page once (unless cold)
//   readbench hold FILE             map the file, touch every page, print "ready", wait (memory sharing)
//   readbench readhold FILE         read() the whole file in 1 MiB blocks, print "ready", wait
//   readbench write FILE N EVERY    N random 4 KiB pwrite()s into the file, fdatasync every EVERY writes
// Prints: "<op> <bytes> <seconds>" and a checksum so nothing is optimized away.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: readbench seq|pread|map|hold FILE [ARG]\n"); return 2; }
    const char *op = argv[1];
    int fd = open(argv[2], !strcmp(op, "write") ? O_RDWR : O_RDONLY);
    if (fd < 0) { perror("open"); return 1; }
    struct stat st;
    fstat(fd, &st);
    size_t size = st.st_size, pages = size / 4096;
    static char buf[1 << 20] __attribute__((aligned(4096)));
    uint64_t sum = 0;
    double t0 = now();
    size_t bytes = 0;
    if (!strcmp(op, "seq")) {
        size_t bs = argc > 3 ? strtoul(argv[3], 0, 0) : 4096;
        ssize_t n;
        while ((n = read(fd, buf, bs)) > 0) { bytes += n; sum += (unsigned char)buf[n - 1]; }
    } else if (!strcmp(op, "pread")) {
        long n = argc > 3 ? atol(argv[3]) : 10000;
        for (long i = 0; i < n; i++) {
            if (pread(fd, buf, 4096, (rnd() % pages) * 4096) != 4096) { perror("pread"); return 1; }
            sum += (unsigned char)buf[100];
            bytes += 4096;
        }
    } else if (!strcmp(op, "write")) {
        long n = argc > 3 ? atol(argv[3]) : 10000;
        long every = argc > 4 ? atol(argv[4]) : 16;
        memset(buf, 0x5a, 4096);
        for (long i = 0; i < n; i++) {
            buf[0] = (char)i;
            if (pwrite(fd, buf, 4096, (rnd() % pages) * 4096) != 4096) { perror("pwrite"); return 1; }
            if (every > 0 && (i + 1) % every == 0 && fdatasync(fd)) { perror("fdatasync"); return 1; }
            bytes += 4096;
        }
    } else if (!strcmp(op, "readhold")) {
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) sum += (unsigned char)buf[n - 1];
        printf("ready %llu\n", (unsigned long long)sum);
        fflush(stdout);
        for (;;) pause();
    } else if (!strcmp(op, "map") || !strcmp(op, "hold")) {
        double tmap = now(); // a cold run is timed from the mmap call: its cost is part of the first touches
        char *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) { perror("mmap"); return 1; }
        if (!strcmp(op, "hold")) {
            for (size_t i = 0; i < size; i += 4096) sum += (unsigned char)p[i];
            printf("ready %llu\n", (unsigned long long)sum);
            fflush(stdout);
            for (;;) pause();
        }
        long n = argc > 3 ? atol(argv[3]) : 100000;
        // Warm up: touch every page once, so the timing is of steady-state loads (first touches cost a
        // host page fault natively and a shadow-MMU fault in a VM; "cold" runs measure those).
        int cold = argc > 4 && !strcmp(argv[4], "cold");
        if (!cold) for (size_t i = 0; i < size; i += 4096) sum += (unsigned char)p[i];
        t0 = cold ? tmap : now();
        for (long i = 0; i < n; i++) {
            memcpy(buf, p + (rnd() % pages) * 4096, 4096);
            sum += (unsigned char)buf[100];
            bytes += 4096;
        }
    } else { fprintf(stderr, "unknown op %s\n", op); return 2; }
    double t = now() - t0;
    printf("%s %zu %.6f %llu\n", op, bytes, t, (unsigned long long)sum);
    return 0;
}
