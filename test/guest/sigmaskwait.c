// pselect6, ppoll and epoll_pwait with a signal mask of their own, as GNU make -j waits for its
// children: SIGCHLD blocked, then unblocked only while waiting. A child's exit must end the wait with
// EINTR after the handler ran, and the caller's mask is back afterwards (also after a timeout).
// One line per check; the same as natively.
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int got;
static void on_chld(int s) { (void)s; got++; }
static int chld_blocked(void) { sigset_t cur; sigprocmask(SIG_BLOCK, NULL, &cur); return sigismember(&cur, SIGCHLD); }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa = {0};
    sa.sa_handler = on_chld;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t block, empty;
    sigemptyset(&block);
    sigaddset(&block, SIGCHLD);
    sigemptyset(&empty);
    sigprocmask(SIG_BLOCK, &block, NULL);
    int p[2];
    pipe(p);
    for (int round = 0; round < 3; round++) {
        got = 0;
        pid_t c = fork();
        if (c == 0) { usleep(50000); _exit(0); }
        int r;
        const char *what;
        if (round == 0) {
            fd_set rs; FD_ZERO(&rs); FD_SET(p[0], &rs);
            struct timespec ts = {10, 0};
            r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, &empty);
            what = "pselect";
        } else if (round == 1) {
            struct pollfd pf = {p[0], POLLIN, 0};
            struct timespec ts = {10, 0};
            r = ppoll(&pf, 1, &ts, &empty);
            what = "ppoll";
        } else {
            int ep = epoll_create1(0);
            struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]}, out;
            epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
            r = epoll_pwait(ep, &out, 1, 10000, &empty);
            what = "epoll_pwait";
        }
        int e = errno;
        printf("%s: %d %s, handler ran %d, SIGCHLD blocked again %d\n", what, r, r < 0 ? strerror(e) : "-", got, chld_blocked());
        waitpid(c, NULL, 0);
    }
    /* A timeout puts the caller's mask back too. */
    fd_set rs; FD_ZERO(&rs); FD_SET(p[0], &rs);
    struct timespec ts = {0, 50000000};
    int r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, &empty);
    printf("pselect timeout: %d, SIGCHLD blocked again %d\n", r, chld_blocked());
    struct pollfd pf = {p[0], POLLIN, 0};
    r = ppoll(&pf, 1, &ts, &empty);
    printf("ppoll timeout: %d, SIGCHLD blocked again %d\n", r, chld_blocked());
    /* A signal already pending when the mask opens ends the call at once. */
    pid_t c = fork();
    if (c == 0) _exit(0);
    usleep(100000);
    got = 0;
    ts.tv_sec = 5;
    r = pselect(p[0] + 1, &rs, NULL, NULL, &ts, &empty);
    printf("pending before: %d %s, handler ran %d, blocked again %d\n", r, r < 0 ? strerror(errno) : "-", got, chld_blocked());
    waitpid(c, NULL, 0);
    return 0;
}
