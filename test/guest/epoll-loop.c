// epoll-loop: an epoll watching another that watches it back, and itself through a dup: ELOOP and EINVAL,
// as Linux answers (the kernel once recursed until its stack ran out). Prints the results; a test
// compares them with the same program run natively.
#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <sys/epoll.h>
int main(){ int a = epoll_create1(0), b = epoll_create1(0); struct epoll_event e = {EPOLLIN, {0}};
 int r1 = epoll_ctl(a, EPOLL_CTL_ADD, b, &e); int r2 = epoll_ctl(b, EPOLL_CTL_ADD, a, &e); int e2 = errno;
 int d = dup(a); int r3 = epoll_ctl(a, EPOLL_CTL_ADD, d, &e); int e3 = errno;
 struct epoll_event out[4]; int n = epoll_wait(a, out, 4, 0);
 printf("%d %d/%d %d/%d wait=%d\n", r1, r2, e2, r3, e3, n); return 0; }
