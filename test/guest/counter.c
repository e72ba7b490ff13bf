// A counting program for checkpoint tests: prints 1, 2, 3 ... N, one line every INTERVAL ms, keeping its
// count in heap memory and a TLS variable (both must survive a checkpoint), and an open file it appends
// the same lines to when given one. usage: counter N [INTERVAL_MS [FILE]]
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static __thread long tls_count;

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100;
    long ms = argc > 2 ? atol(argv[2]) : 20;
    int fd = argc > 3 ? open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
    long *heap = malloc(1 << 20); // a megabyte of heap, so memory matters
    memset(heap, 0, 1 << 20);
    for (long i = 1; i <= n; i++) {
        heap[i % 1000] = i;
        tls_count = i;
        char line[32];
        int len = snprintf(line, sizeof line, "%ld\n", heap[i % 1000] == i && tls_count == i ? i : -1);
        if (write(1, line, len) != len) return 1;
        if (fd >= 0 && write(fd, line, len) != len) return 1;
        struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&t, NULL);
    }
    return 0;
}
