// Checkpoint benchmark program: touch MIB mebibytes of heap, print "ready", then print a counter every
// 10 ms (so a restore's time to its first output line can be measured). usage: toucher MIB
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoul(argv[1], 0, 0) : 64;
    uint8_t *p = malloc(mib << 20);
    for (size_t i = 0; i < mib << 20; i += 4096) p[i] = (uint8_t)(i >> 12) | 1; // non-zero: real data
    printf("ready\n");
    fflush(stdout);
    for (long i = 0;; i++) {
        p[(i * 4096) % (mib << 20)]++; // keep dirtying a little
        printf("%ld\n", i);
        fflush(stdout);
        struct timespec t = { 0, 10 * 1000 * 1000 };
        nanosleep(&t, NULL);
    }
}
