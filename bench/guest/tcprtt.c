// build: -pthread
// tcprtt: the round trip of one byte between two threads of one process, over
//   tcp   a TCP connection on 127.0.0.1 (TCP_NODELAY both ends; the listener on an ephemeral port),
//   tcp6  the same on ::1,
//   unix  an AF_UNIX stream socketpair,
//   pipe  a pair of pipes (no sockets: the reference for what the hand-off between threads costs),
//   served  no round trip: N getppid calls while a second thread waits in read (a program with
//         threads: on mapvisor each call is handed to the kernel's thread, as the ping-pong's are).
// The main thread writes a byte and reads the echo; the other thread reads it and writes it back: 4
// system calls per round trip (write, read, read, write), two of which block. After 10 round trips
// of warm-up, N round trips are timed with CLOCK_MONOTONIC (start-up is not in the figure).
//
//   tcprtt MODE N   prints "tcprtt MODE rounds N us_per_rtt X syscalls_per_rtt 4"; exit 0, or 1 with
//                   "tcprtt: <call>: <error>" on stderr.
// Built by bench/net.ts (gcc -O2 -static -pthread) into .cache/bench/tcprtt.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long rounds;
static int echo_in, echo_out; // the echo thread's ends

static void die(const char *what) {
    fprintf(stderr, "tcprtt: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void put(int fd, char c) {
    for (;;) {
        ssize_t n = write(fd, &c, 1);
        if (n == 1) return;
        if (n < 0 && errno == EINTR) continue;
        die("write");
    }
}

static char get(int fd) {
    char c;
    for (;;) {
        ssize_t n = read(fd, &c, 1);
        if (n == 1) return c;
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) {
            errno = EPIPE;
            die("read (end of stream)");
        }
        die("read");
    }
}

static void *echo(void *arg) {
    (void)arg;
    for (long i = 0; i < rounds + 10; i++) put(echo_out, get(echo_in));
    return NULL;
}

static void nodelay(int fd) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt TCP_NODELAY");
}

/* A connected TCP pair on the loopback: *a (connect side), *b (accept side). */
static void tcp_pair(int family, int *a, int *b) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_addr = in6addr_loopback;
        len = sizeof *s6;
    }
    int l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (l < 0) die("socket");
    if (bind(l, (struct sockaddr *)&ss, len) < 0) die("bind");
    if (listen(l, 1) < 0) die("listen");
    socklen_t got = sizeof ss;
    if (getsockname(l, (struct sockaddr *)&ss, &got) < 0) die("getsockname");
    *a = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*a < 0) die("socket");
    if (connect(*a, (struct sockaddr *)&ss, got) < 0) die("connect");
    *b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    if (*b < 0) die("accept4");
    close(l);
    nodelay(*a);
    nodelay(*b);
}

static void *waiter(void *arg) {
    char c;
    (void)!read(*(int *)arg, &c, 1); // until main closes the other end
    return NULL;
}

/** getppid's cost in a program with a second thread (it waits in read the whole time). */
static int served(void) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) die("pipe2");
    pthread_t t;
    int e = pthread_create(&t, NULL, waiter, &p[0]);
    if (e) {
        errno = e;
        die("pthread_create");
    }
    for (int i = 0; i < 10; i++) syscall(SYS_getppid);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < rounds; i++) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(p[1]);
    pthread_join(t, NULL);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / rounds;
    printf("tcprtt served rounds %ld us_per_rtt %.3f syscalls_per_rtt 1\n", rounds, us);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tcprtt tcp|tcp6|unix|pipe|served N\n");
        return 2;
    }
    const char *mode = argv[1];
    rounds = strtol(argv[2], NULL, 0);
    if (rounds < 1) {
        fprintf(stderr, "tcprtt: N must be a positive number\n");
        return 2;
    }
    if (!strcmp(mode, "served")) return served();
    int my_out, my_in; // the main thread's ends
    if (!strcmp(mode, "tcp") || !strcmp(mode, "tcp6")) {
        int a, b;
        tcp_pair(!strcmp(mode, "tcp") ? AF_INET : AF_INET6, &a, &b);
        my_out = my_in = a;
        echo_in = echo_out = b;
    } else if (!strcmp(mode, "unix")) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
        my_out = my_in = sv[0];
        echo_in = echo_out = sv[1];
    } else if (!strcmp(mode, "pipe")) {
        int there[2], back[2];
        if (pipe2(there, O_CLOEXEC) < 0 || pipe2(back, O_CLOEXEC) < 0) die("pipe2");
        my_out = there[1];
        echo_in = there[0];
        echo_out = back[1];
        my_in = back[0];
    } else {
        fprintf(stderr, "tcprtt: unknown mode %s (tcp, tcp6, unix or pipe)\n", mode);
        return 2;
    }
    pthread_t t;
    int e = pthread_create(&t, NULL, echo, NULL);
    if (e) {
        errno = e;
        die("pthread_create");
    }
    for (int i = 0; i < 10; i++) {
        put(my_out, 'w');
        get(my_in);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < rounds; i++) {
        put(my_out, (char)i);
        if (get(my_in) != (char)i) {
            fprintf(stderr, "tcprtt: round %ld: the echo differs\n", i);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_join(t, NULL);
    double us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / rounds;
    printf("tcprtt %s rounds %ld us_per_rtt %.3f syscalls_per_rtt 4\n", mode, rounds, us);
    return 0;
}
