// build: -pthread
// Threads as vCPUs: 8 threads increment shared counters under a mutex (exact total), a condition-
// variable ping-pong of N rounds, thread-local storage per thread, and a fault in a thread delivered
// to a SIGSEGV handler that longjmps out. usage: threads [ROUNDS]. Prints "threads ok".
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s\n", msg); exit(1); } } while (0)
#define NTHREADS 8
#define ITERS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter, counter2;
static __thread long mine;

static void *adder(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        counter2 += id;
        pthread_mutex_unlock(&lock);
        mine++;
    }
    return (void *)mine;
}

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pc = PTHREAD_COND_INITIALIZER;
static int turn, rounds;

static void *pong(void *arg) {
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&pm);
        while (turn != 1) pthread_cond_wait(&pc, &pm);
        turn = 0;
        pthread_cond_signal(&pc);
        pthread_mutex_unlock(&pm);
    }
    return NULL;
}

static sigjmp_buf jb;
static volatile int faulted;
static void on_segv(int sig) { (void)sig; faulted = 1; siglongjmp(jb, 1); }

static void *crasher(void *arg) {
    (void)arg;
    signal(SIGSEGV, on_segv);
    if (sigsetjmp(jb, 1) == 0) {
        volatile int *p = (int *)8;
        *p = 1;
    }
    return (void *)(long)syscall(SYS_gettid);
}

int main(int argc, char **argv) {
    rounds = argc > 1 ? atoi(argv[1]) : 10000;
    pthread_t t[NTHREADS];
    for (long i = 0; i < NTHREADS; i++) CHECK(pthread_create(&t[i], NULL, adder, (void *)i) == 0, "pthread_create");
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0, "pthread_join");
        CHECK((long)r == ITERS, "thread-local counter");
    }
    CHECK(counter == (long)NTHREADS * ITERS, "mutex-protected counter is exact");
    CHECK(counter2 == (long)ITERS * (NTHREADS * (NTHREADS - 1) / 2), "second counter is exact");
    printf("counters ok: %ld\n", counter);

    pthread_t p;
    CHECK(pthread_create(&p, NULL, pong, NULL) == 0, "pthread_create pong");
    for (int i = 0; i < rounds; i++) {
        pthread_mutex_lock(&pm);
        turn = 1;
        pthread_cond_signal(&pc);
        while (turn != 0) pthread_cond_wait(&pc, &pm);
        pthread_mutex_unlock(&pm);
    }
    CHECK(pthread_join(p, NULL) == 0, "join pong");
    printf("ping-pong ok: %d rounds\n", rounds);

    pthread_t c;
    void *tid;
    CHECK(pthread_create(&c, NULL, crasher, NULL) == 0 && pthread_join(c, &tid) == 0, "crasher");
    CHECK(faulted && (long)tid != getpid(), "a thread's fault reached its handler");
    printf("threads ok\n");
    return 0;
}
