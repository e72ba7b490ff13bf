// build: -pthread
// A multithreaded counting program for checkpoint tests: 4 threads take turns (a mutex and a condition
// variable, so at any moment three of them wait in futex calls) and the one whose turn it is prints the
// next number with its thread id, then sleeps INTERVAL ms (nanosleep) before passing the turn on. Each
// thread keeps its own count in TLS; at the end main joins them all and checks the counts add up.
// usage: mtcounter N [INTERVAL_MS]. Prints "1 TID", "2 TID", ... "N TID", then "mt ok".
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NT 4

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long n, ms, next = 1;
static int turn;
static __thread long mine;

static void *worker(void *arg) {
    int id = (int)(long)arg;
    long tid = syscall(SYS_gettid);
    for (;;) {
        pthread_mutex_lock(&m);
        while (turn != id && next <= n) pthread_cond_wait(&c, &m);
        if (next > n) {
            pthread_mutex_unlock(&m);
            return (void *)mine;
        }
        long k = next++;
        mine++;
        char line[48];
        int len = snprintf(line, sizeof line, "%ld %ld\n", k, tid);
        if (write(1, line, len) != len) exit(1);
        struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&t, NULL);
        turn = (id + 1) % NT;
        pthread_cond_broadcast(&c);
        pthread_mutex_unlock(&m);
    }
}

int main(int argc, char **argv) {
    n = argc > 1 ? atol(argv[1]) : 40;
    ms = argc > 2 ? atol(argv[2]) : 20;
    pthread_t t[NT];
    for (long i = 0; i < NT; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i)) return 2;
    long total = 0;
    for (int i = 0; i < NT; i++) {
        void *r;
        pthread_join(t[i], &r);
        long want = n / NT + (i < n % NT ? 1 : 0);
        if ((long)r != want) {
            printf("FAIL: thread %d counted %ld, expected %ld\n", i, (long)r, want);
            return 1;
        }
        total += (long)r;
    }
    printf(total == n ? "mt ok\n" : "FAIL: total\n");
    return total == n ? 0 : 1;
}
