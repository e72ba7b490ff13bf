// build: -pthread
// Thread churn: 25 rounds of 8 threads created and joined, 200 threads in all, far more than the VM's
// vCPUs (64): the vCPUs of ended threads must be reused. Each thread checks its TLS starts at zero and
// the FPU control word it inherits. usage: threadchurn [ROUNDS]. Prints "churn ok: N threads".
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static __thread long tls;

static void *work(void *arg) {
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    if (tls != 0 || cw != 0x37f) return (void *)-1L;
    tls = (long)arg;
    return (void *)(tls * 2);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 25;
    long n = 0;
    for (int r = 0; r < rounds; r++) {
        pthread_t t[8];
        for (long i = 0; i < 8; i++)
            if (pthread_create(&t[i], NULL, work, (void *)(i + 1))) { printf("FAIL: pthread_create in round %d\n", r); return 1; }
        for (long i = 0; i < 8; i++) {
            void *res;
            pthread_join(t[i], &res);
            if ((long)res != (i + 1) * 2) { printf("FAIL: thread %ld of round %d returned %ld\n", i, r, (long)res); return 1; }
            n++;
        }
    }
    printf("churn ok: %ld threads\n", n);
    return 0;
}
