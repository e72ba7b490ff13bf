// cpu-loop: pure CPU work with no syscalls: iterates a 64-bit LCG N times
// (N = argv[1], default 100000000) and prints the final state so the compiler
// cannot drop the loop.
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 0) : 100000000L;
    uint64_t x = 1, acc = 0;
    for (long i = 0; i < n; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // Knuth's MMIX LCG
        acc ^= x >> 17;
    }
    printf("cpu-loop %ld iterations: %016" PRIx64 "\n", n, acc);
    return 0;
}
