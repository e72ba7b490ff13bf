// build: -pthread
// A CPU-bound job split over T threads: usage cpupar THREADS ITERATIONS. Prints "cpupar <seconds> <sum>".
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long iters;
static void *work(void *arg) {
    uint64_t x = (uint64_t)(uintptr_t)arg + 1;
    for (long i = 0; i < iters; i++) x = x * 6364136223846793005ull + 1442695040888963407ull;
    return (void *)(uintptr_t)x;
}

int main(int argc, char **argv) {
    int t = argc > 1 ? atoi(argv[1]) : 2;
    long total = argc > 2 ? atol(argv[2]) : 400000000;
    iters = total / t;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pthread_t th[64];
    for (int i = 0; i < t; i++) pthread_create(&th[i], NULL, work, (void *)(uintptr_t)i);
    uint64_t sum = 0;
    for (int i = 0; i < t; i++) { void *r; pthread_join(th[i], &r); sum += (uintptr_t)r; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("cpupar %.6f %llu\n", (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9, (unsigned long long)sum);
    return 0;
}
