// Checkpoint benchmark program: touch MIB mebibytes of heap, print "ready", then print a counter every
// 10 ms (so a restore's time to its first output line can be measured), dirtying PAGES pages of the heap
// at each tick (default 1; MIB*256/1000 dirties 1% of it every 100 ms). usage: toucher MIB [PAGES]
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 0) : 64;
    size_t per_tick = argc > 2 ? strtoul(argv[2], 0, 0) : 1;
    size_t pages = (mib << 20) / 4096, next = 0;
    uint8_t *p = malloc(mib << 20);
    for (size_t i = 0; i < mib << 20; i += 4096) p[i] = (uint8_t)(i >> 12) | 1; // non-zero: real data
    printf("ready\n");
    fflush(stdout);
    for (long i = 0;; i++) {
        for (size_t k = 0; k < per_tick; k++, next = (next + 1) % pages) p[next * 4096]++; // keep dirtying
        printf("%ld\n", i);
        fflush(stdout);
        struct timespec t = { 0, 10 * 1000 * 1000 };
        nanosleep(&t, NULL);
    }
}
