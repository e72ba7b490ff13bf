// build: -pthread
// epoll over a pipe and an eventfd fed by another thread, timerfd, a timeout, and clock_nanosleep with
// TIMER_ABSTIME. Prints "epoll ok".
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s (%s)\n", msg, strerror(errno)); exit(1); } } while (0)

static int pfd[2], efd;

static void *feeder(void *x) {
    (void)x;
    struct timespec t = { 0, 50 * 1000 * 1000 };
    nanosleep(&t, NULL);
    CHECK(write(pfd[1], "ping", 4) == 4, "pipe write");
    uint64_t v = 5;
    CHECK(write(efd, &v, 8) == 8, "eventfd write");
    return NULL;
}

int main(void) {
    CHECK(pipe(pfd) == 0, "pipe");
    efd = eventfd(0, 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0, "epoll_create1");
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 111 };
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev) == 0, "add pipe");
    ev.data.u64 = 222;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == 0, "add eventfd");
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) == -1 && errno == EEXIST, "EEXIST");
    struct epoll_event out[4];
    CHECK(epoll_wait(ep, out, 4, 100) == 0, "timeout with nothing ready");
    pthread_t t;
    pthread_create(&t, NULL, feeder, NULL);
    int seen = 0;
    while (seen != 3) {
        int n = epoll_wait(ep, out, 4, 5000);
        CHECK(n > 0, "epoll_wait woke");
        for (int i = 0; i < n; i++) {
            if (out[i].data.u64 == 111) { char b[8]; CHECK(read(pfd[0], b, 8) == 4, "pipe read"); seen |= 1; }
            if (out[i].data.u64 == 222) { uint64_t v; CHECK(read(efd, &v, 8) == 8 && v == 5, "eventfd read"); seen |= 2; }
        }
    }
    pthread_join(t, NULL);
    int tf = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = { .it_interval = { 0, 10 * 1000 * 1000 }, .it_value = { 0, 10 * 1000 * 1000 } };
    CHECK(timerfd_settime(tf, 0, &its, NULL) == 0, "timerfd_settime");
    uint64_t exp = 0;
    CHECK(read(tf, &exp, 8) == 8 && exp >= 1, "timerfd read");
    struct timespec now, until;
    clock_gettime(CLOCK_MONOTONIC, &now);
    until = now;
    until.tv_nsec += 30 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
    CHECK(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == 0, "clock_nanosleep ABSTIME");
    clock_gettime(CLOCK_MONOTONIC, &now);
    CHECK(now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec), "slept until the deadline");
    printf("epoll ok\n");
    return 0;
}
