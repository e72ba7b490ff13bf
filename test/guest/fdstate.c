// Kernel objects in a checkpoint: bytes waiting in a pipe, a dup()ed fd sharing the pipe's read end, an
// eventfd's counter, an epoll instance watching the pipe, a periodic timerfd. Sets them up, prints
// "ready", sleeps MS ms (a checkpoint is taken meanwhile), then writes more to the pipe, waits on the
// epoll, reads the pipe back through the dup, the eventfd and the timer.
// usage: fdstate [MS]. Prints "fd ok: hello world 5 epoll 42 timer yes".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 1500;
    int p[2];
    if (pipe(p) != 0) return 1;
    if (write(p[1], "hello ", 6) != 6) return 2;
    int r2 = dup(p[0]);
    int e = eventfd(5, 0);
    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 42 };
    if (r2 < 0 || e < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev) != 0) return 3;
    int tf = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = { { 0, 100000000 }, { 0, 100000000 } };
    if (tf < 0 || timerfd_settime(tf, 0, &its, NULL) != 0) return 8;
    printf("ready\n");
    fflush(stdout);
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
    if (write(p[1], "world", 5) != 5) return 4;
    struct epoll_event got = { 0 };
    if (epoll_wait(ep, &got, 1, 1000) != 1) return 9;
    char buf[32] = { 0 };
    if (read(r2, buf, 11) != 11) return 5;
    unsigned long long v = 0;
    if (read(e, &v, 8) != 8) return 6;
    unsigned long long ticks = 0;
    if (read(tf, &ticks, 8) != 8) return 10;
    printf("fd ok: %s %llu epoll %llu timer %s\n", buf, v, (unsigned long long)got.data.u64, ticks >= 1 ? "yes" : "no");
    return strcmp(buf, "hello world") == 0 && v == 5 && got.data.u64 == 42 && ticks >= 1 ? 0 : 7;
}
