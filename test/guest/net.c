// build: -pthread
// Linux socket semantics over loopback only: AF_UNIX stream, datagram and seqpacket sockets (path,
// abstract and autobound names, socketpair, SCM_RIGHTS and SCM_CREDENTIALS between processes,
// SO_PEERCRED), TCP over 127.0.0.1 and ::1 (100 KB echoed both ways through a forked child and
// through threads, half-close, resets, nonblocking connect, options), a dual-stack IPv6 listener
// taking an IPv4 connection, UDP (addresses, connect, boundaries, recvmmsg/sendmmsg, ICMP refusals),
// and the errors each of these answers, with the exact errno Linux gives.
//
// Prints one line per check, in a fixed order: `ok NAME` or `FAIL NAME: detail` (errnos as
// `ENAME (n)`), then `done N` (N checks); exits 0 when every check passed, else 1. The output holds
// no port, pid, address or path that varies from run to run (those are only compared), so it is
// byte-identical natively on Linux and in mapvisor. Every check is bounded: alarm(10) per check
// (a check that times out fails, its children are SIGKILLed and the next check runs); every child
// arms its own alarm(10). The fds a check leaves open are closed before the next one.
//
// Only loopback addresses and ephemeral ports (bind to port 0) are used, except that the dual-stack
// check listens on in6addr_any (an ephemeral port too). Abstract unix names end in the pid; path
// names are DIR/net-PID-TAG, DIR being argv[1] (default /tmp), so a native run can use a mkdtemp dir.
//
//   net [DIR]        run every check
//   net netcheck     connect(2) a TCP socket to 192.0.2.1:80 (TEST-NET-1) and print only
//                    `connect 192.0.2.1: ENAME` (or `connect 192.0.2.1: connected`): a sandbox with no
//                    outside network answers ENETUNREACH; natively the answer depends on the host.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------
 * Output and bookkeeping
 * ---------------------------------------------------------------------------------------------- */

static int checks, failures, reported;
static const char *current = "start";
static const char *dir = "/tmp";
static pid_t mypid;
static int in_child;
static char *kidmsg; // shared with children: why a child failed (MAP_SHARED, one page)

#define MAX_KIDS 8
static pid_t kids[MAX_KIDS];
static int nkids;
static sigjmp_buf check_jmp;

/** printf to fd 1 with one write (no stdio buffer for a child to inherit and flush twice). */
static void say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  for (int off = 0; off < n;) {
    ssize_t w = write(1, buf + off, n - off);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;
    }
    off += w;
  }
}

/** "ENAME (n)", from one of 8 rotating buffers (several may appear in one message). */
static const char *en(int e) {
  static char bufs[8][48];
  static int k;
  char *b = bufs[k++ & 7];
  const char *n = strerrorname_np(e);
  snprintf(b, 48, "%s (%d)", n ? n : "E?", e);
  return b;
}

static void ok(void) {
  if (reported++) return;
  checks++;
  say("ok %s\n", current);
}

/** Reports the current check as failed; in a forked child, records why and exits 1 instead. */
static void fail(const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (in_child) {
    snprintf(kidmsg, 4096, "child: %s", detail);
    _exit(1);
  }
  if (reported++) return;
  checks++;
  failures++;
  say("FAIL %s: %s\n", current, detail);
}

// In a check function (void): on failure, report and return. In a child, fail() exits instead.
#define REQ(c, ...)       \
  do {                    \
    if (!(c)) {           \
      fail(__VA_ARGS__);  \
      return;             \
    }                     \
  } while (0)
/** A call that must succeed (result >= 0). */
#define SYS(x)                                         \
  do {                                                 \
    if ((long)(x) < 0) {                               \
      fail("%s: %s", #x, en(errno));                   \
      return;                                          \
    }                                                  \
  } while (0)
/** A call that must fail with errno E. */
#define ERR(x, E)                                                                 \
  do {                                                                            \
    errno = 0;                                                                    \
    long r_ = (long)(x);                                                          \
    if (r_ != -1) {                                                               \
      fail("%s returned %ld, expected %s", #x, r_, en(E));                        \
      return;                                                                     \
    }                                                                             \
    if (errno != (E)) {                                                           \
      fail("%s: got %s, expected %s", #x, en(errno), en(E));                      \
      return;                                                                     \
    }                                                                             \
  } while (0)
/** A call that must return exactly V. */
#define EQ(x, V)                                                                               \
  do {                                                                                         \
    errno = 0;                                                                                 \
    long r_ = (long)(x);                                                                       \
    if (r_ != (long)(V)) {                                                                     \
      if (r_ == -1) fail("%s: %s, expected %ld", #x, en(errno), (long)(V));                    \
      else fail("%s returned %ld, expected %ld", #x, r_, (long)(V));                           \
      return;                                                                                  \
    }                                                                                          \
  } while (0)

static void on_alarm(int sig) {
  (void)sig;
  siglongjmp(check_jmp, 1);
}

static pid_t xfork(void) {
  pid_t p = fork();
  if (p > 0 && nkids < MAX_KIDS) kids[nkids++] = p;
  if (p == 0) {
    in_child = 1;
    nkids = 0;
    signal(SIGALRM, SIG_DFL);
    alarm(10);
  }
  return p;
}

static pid_t wait_for(pid_t pid, int *st) {
  pid_t r;
  do r = waitpid(pid, st, 0);
  while (r == -1 && errno == EINTR);
  return r;
}

/** Reaps a child of the check: 1 when it exited 0, else reports why (its own message) and 0. */
static int reap(pid_t pid) {
  int st = 0;
  pid_t r = wait_for(pid, &st);
  for (int i = 0; i < nkids; i++)
    if (kids[i] == pid) kids[i] = -1;
  if (r != pid) return fail("waitpid: %s", en(errno)), 0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 1;
  if (WIFEXITED(st) && kidmsg[0]) return fail("%s", kidmsg), 0;
  if (WIFEXITED(st)) return fail("child exited %d", WEXITSTATUS(st)), 0;
  return fail("child killed by signal %d (%s)", WTERMSIG(st), sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?"), 0;
}

static void run(const char *name, void (*fn)(void)) {
  current = name;
  reported = 0;
  nkids = 0;
  kidmsg[0] = 0;
  if (sigsetjmp(check_jmp, 1) == 0) {
    alarm(10);
    fn();
    alarm(0);
  } else {
    fail("timed out after 10 s");
  }
  alarm(0);
  for (int i = 0; i < nkids; i++)
    if (kids[i] > 0) {
      kill(kids[i], SIGKILL);
      wait_for(kids[i], NULL);
    }
  if (!reported) fail("the check reported nothing");
  for (int fd = 3; fd < 1024; fd++) close(fd);
  signal(SIGPIPE, SIG_IGN);
}

/* ------------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/** Reads exactly n bytes unless EOF or an error comes first; returns how many it got (-1: error before any). */
static ssize_t readn(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return got ? (ssize_t)got : -1;
    if (r == 0) break;
    got += r;
  }
  return got;
}

static int writen(int fd, const void *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = write(fd, (const char *)buf + put, n - put);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    put += w;
  }
  return 0;
}

/** poll(2) with the events every readiness check asks for; returns revents (-1: poll failed). */
#define PEV (POLLIN | POLLOUT | POLLRDHUP | POLLPRI)
static int pmask(int fd, int timeout) {
  struct pollfd p = {fd, PEV, 0};
  int r = poll(&p, 1, timeout);
  if (r < 0) return -1;
  return p.revents;
}

/** Waits (up to 5 s) for fd to be readable; 1 when it is. */
static int wait_in(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, 5000) == 1 && (p.revents & POLLIN);
}

static const char *pnames(int m) {
  static char bufs[4][128];
  static int k;
  char *b = bufs[k++ & 3];
  if (m < 0) return "poll failed";
  b[0] = 0;
  static const struct { int bit; const char *name; } names[] = {{POLLIN, "POLLIN"}, {POLLPRI, "POLLPRI"}, {POLLOUT, "POLLOUT"}, {POLLERR, "POLLERR"}, {POLLHUP, "POLLHUP"}, {POLLNVAL, "POLLNVAL"}, {POLLRDHUP, "POLLRDHUP"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (m & names[i].bit) {
      snprintf(b + strlen(b), 128 - strlen(b), "%s%s", b[0] ? "|" : "", names[i].name);
      m &= ~names[i].bit;
    }
  if (m) snprintf(b + strlen(b), 128 - strlen(b), "%s0x%x", b[0] ? "|" : "", m);
  if (!b[0]) strcpy(b, "0");
  return b;
}

/** poll's answer (events PEV, no wait) must be exactly `want`. */
#define PMASK(fd, want, what)                                                                      \
  do {                                                                                             \
    int m_ = pmask(fd, 0);                                                                         \
    REQ(m_ == (want), "%s: poll gives %s, expected %s", what, pnames(m_), pnames(want));           \
  } while (0)

static int geti(int fd, int level, int name, int *val) {
  socklen_t len = sizeof *val;
  *val = -12345;
  int r = getsockopt(fd, level, name, val, &len);
  if (r == 0 && len != sizeof(int)) {
    errno = EMSGSIZE;
    return -2;
  }
  return r;
}
/** getsockopt of an int option must answer V (and optlen 4). */
#define GETI(fd, level, name, V)                                                                       \
  do {                                                                                                 \
    int v_;                                                                                            \
    int r_ = geti(fd, level, name, &v_);                                                               \
    REQ(r_ == 0, "getsockopt(%s): %s", #name, r_ == -2 ? "optlen is not 4" : en(errno));              \
    REQ(v_ == (V), "getsockopt(%s) = %d, expected %d", #name, v_, (int)(V));                           \
  } while (0)
#define SETI(fd, level, name, V)                                                                       \
  do {                                                                                                 \
    int v_ = (V);                                                                                      \
    REQ(setsockopt(fd, level, name, &v_, sizeof v_) == 0, "setsockopt(%s, %d): %s", #name, v_, en(errno)); \
  } while (0)

/** DIR/net-PID-TAG, unlinked first; returns the address length Linux reports for it. */
static socklen_t upath(struct sockaddr_un *a, const char *tag) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  snprintf(a->sun_path, sizeof a->sun_path, "%s/net-%d-%s", dir, (int)mypid, tag);
  unlink(a->sun_path);
  return offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1;
}

/** The abstract name "\0mapvisor-net-PID-TAG" (no trailing NUL: the length says where it ends). */
static socklen_t uabs(struct sockaddr_un *a, const char *tag) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "mapvisor-net-%d-%s", (int)mypid, tag);
  return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static int same_addr(const void *a, socklen_t alen, const void *b, socklen_t blen) {
  return alen == blen && memcmp(a, b, alen) == 0;
}

static void lo4(struct sockaddr_in *a, int port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->sin_port = htons(port);
}

static void lo6(struct sockaddr_in6 *a, int port) {
  memset(a, 0, sizeof *a);
  a->sin6_family = AF_INET6;
  a->sin6_addr = in6addr_loopback;
  a->sin6_port = htons(port);
}

/** A listening socket (backlog 16) on a fresh ephemeral port of `a` (whose port is filled in). */
static int listener(int family, int type, void *a, socklen_t len) {
  int fd = socket(family, type, 0);
  if (fd < 0) return -1;
  if (bind(fd, a, len) < 0 || listen(fd, 16) < 0 || getsockname(fd, a, &len) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static int connect_to(int family, int type, const void *a, socklen_t len) {
  int fd = socket(family, type, 0);
  if (fd < 0) return -1;
  if (connect(fd, a, len) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/** A connected TCP pair over 127.0.0.1: *c the client, *s the accepted socket. */
static int tcp_pair(int *c, int *s) {
  struct sockaddr_in a;
  lo4(&a, 0);
  int l = listener(AF_INET, SOCK_STREAM, &a, sizeof a);
  if (l < 0) return -1;
  *c = connect_to(AF_INET, SOCK_STREAM, &a, sizeof a);
  if (*c < 0) return -1;
  *s = accept(l, NULL, NULL);
  int e = errno;
  close(l);
  errno = e;
  return *s < 0 ? -1 : 0;
}

/** Starts a thread that takes no signal (SIGALRM must reach the main thread). */
static int spawn(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int r = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return r;
}

/* ---- 100 KB both ways: a writer thread sends the pattern then SHUT_WR; the caller reads it back ---- */

#define BIG (100 * 1024)
static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 9) + 1); }

struct writer {
  int fd;
  int err; // errno of the failed write, or 0
};

static void *writer_main(void *arg) {
  struct writer *w = arg;
  static unsigned char buf[BIG];
  for (size_t i = 0; i < BIG; i++) buf[i] = pattern(i);
  // Odd-sized pieces, so that the reader sees them split and joined.
  for (size_t off = 0; off < BIG;) {
    size_t n = BIG - off < 7001 ? BIG - off : 7001;
    ssize_t r = write(w->fd, buf + off, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      w->err = r < 0 ? errno : EIO;
      return NULL;
    }
    off += r;
  }
  if (shutdown(w->fd, SHUT_WR) < 0) w->err = errno;
  return NULL;
}

/** Echoes everything read from fd until EOF, then closes it; 0 or an errno. */
static int echo_loop(int fd) {
  char buf[16384];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    if (r == 0) break;
    if (writen(fd, buf, r) < 0) return errno;
  }
  close(fd);
  return 0;
}

/** Sends BIG bytes through fd (a thread writes while this reads) and checks they come back. */
static void exchange_big(int fd) {
  struct writer w = {fd, 0};
  pthread_t t;
  REQ(spawn(&t, writer_main, &w) == 0, "pthread_create failed");
  static unsigned char got[BIG + 1];
  ssize_t n = readn(fd, got, sizeof got);
  int rerr = errno;
  pthread_join(t, NULL);
  REQ(w.err == 0, "writer thread: %s", en(w.err));
  REQ(n >= 0, "read: %s", en(rerr));
  REQ(n == BIG, "read %ld bytes back before EOF, expected %d", (long)n, BIG);
  for (size_t i = 0; i < BIG; i++) REQ(got[i] == pattern(i), "byte %zu came back wrong", i);
}

/* ------------------------------------------------------------------------------------------------
 * AF_UNIX SOCK_STREAM
 * ---------------------------------------------------------------------------------------------- */

static void t_unix_socketpair_echo(void) {
  int sv[2];
  char b[16];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  EQ(write(sv[0], "ping", 4), 4);
  EQ(read(sv[1], b, sizeof b), 4);
  REQ(!memcmp(b, "ping", 4), "wrong bytes one way");
  EQ(send(sv[1], "pong!", 5, 0), 5);
  EQ(recv(sv[0], b, sizeof b, 0), 5);
  REQ(!memcmp(b, "pong!", 5), "wrong bytes the other way");
  // A stream joins writes: two writes, one read.
  EQ(write(sv[0], "ab", 2), 2);
  EQ(write(sv[0], "cd", 2), 2);
  EQ(read(sv[1], b, sizeof b), 4);
  REQ(!memcmp(b, "abcd", 4), "joined bytes wrong");
  ok();
}

static void t_unix_socketpair_flags(void) {
  int sv[2];
  SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv));
  for (int i = 0; i < 2; i++) {
    EQ(fcntl(sv[i], F_GETFD), FD_CLOEXEC);
    REQ(fcntl(sv[i], F_GETFL) & O_NONBLOCK, "O_NONBLOCK missing on sv[%d]", i);
    REQ((fcntl(sv[i], F_GETFL) & O_ACCMODE) == O_RDWR, "not O_RDWR");
  }
  struct stat st;
  SYS(fstat(sv[0], &st));
  REQ(S_ISSOCK(st.st_mode), "fstat: not S_ISSOCK (mode 0%o)", st.st_mode);
  ERR(socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
  ok();
}

static void t_unix_100k_fork(void) {
  int sv[2];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  pid_t p = xfork();
  SYS(p);
  if (p == 0) {
    close(sv[0]);
    int e = echo_loop(sv[1]);
    if (e) fail("echo: %s", en(e));
    _exit(0);
  }
  close(sv[1]);
  exchange_big(sv[0]);
  if (reported) return; // the runner kills the child
  if (!reap(p)) return;
  ok();
}

static void t_unix_bind_path(void) {
  struct sockaddr_un a;
  socklen_t len = upath(&a, "bind");
  int fd;
  SYS(fd = socket(AF_UNIX, SOCK_STREAM, 0));
  struct stat st;
  ERR(stat(a.sun_path, &st), ENOENT);
  SYS(bind(fd, (struct sockaddr *)&a, len));
  SYS(stat(a.sun_path, &st));
  REQ(S_ISSOCK(st.st_mode), "the bound name is not S_ISSOCK (mode 0%o)", st.st_mode);
  // The file outlives the socket: close does not unlink it.
  close(fd);
  SYS(stat(a.sun_path, &st));
  REQ(S_ISSOCK(st.st_mode), "after close: not S_ISSOCK");
  SYS(unlink(a.sun_path));
  ok();
}

static void t_unix_accept4_flags(void) {
  struct sockaddr_un a;
  socklen_t len = upath(&a, "acc");
  int l, c, s;
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(connect(c, (struct sockaddr *)&a, len));
  ERR(accept4(l, NULL, NULL, 0x40000000), EINVAL);
  SYS(s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK));
  EQ(fcntl(s, F_GETFD), FD_CLOEXEC);
  REQ(fcntl(s, F_GETFL) & O_NONBLOCK, "accepted socket lacks O_NONBLOCK");
  EQ(fcntl(l, F_GETFD), 0);
  REQ(!(fcntl(l, F_GETFL) & O_NONBLOCK), "the listener became O_NONBLOCK");
  EQ(write(c, "hello", 5), 5);
  char b[8];
  EQ(read(s, b, sizeof b), 5);
  ERR(read(s, b, sizeof b), EAGAIN);
  unlink(a.sun_path);
  ok();
}

static void t_unix_names_path(void) {
  struct sockaddr_un a, g;
  socklen_t want = upath(&a, "names"), gl;
  int l, c, s;
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  // An unbound socket's name is just the family.
  gl = sizeof g;
  SYS(getsockname(l, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof(sa_family_t) && g.sun_family == AF_UNIX, "unbound getsockname: len %u", (unsigned)gl);
  // Bound with the whole structure's size: Linux keeps the name up to its NUL.
  SYS(bind(l, (struct sockaddr *)&a, sizeof a));
  SYS(listen(l, 4));
  gl = sizeof g;
  SYS(getsockname(l, (struct sockaddr *)&g, &gl));
  REQ(gl == want, "listener getsockname len %u, expected %u (offsetof sun_path + strlen + 1)", (unsigned)gl, (unsigned)want);
  REQ(same_addr(&g, gl, &a, want), "listener getsockname: another name");
  ERR(getpeername(l, (struct sockaddr *)&g, &gl), ENOTCONN);
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(connect(c, (struct sockaddr *)&a, want));
  SYS(s = accept(l, (struct sockaddr *)&g, (gl = sizeof g, &gl)));
  REQ(gl == sizeof(sa_family_t), "accept's peer address of an unbound client: len %u, expected 2", (unsigned)gl);
  gl = sizeof g;
  SYS(getpeername(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, want), "client getpeername is not the listener's name (len %u)", (unsigned)gl);
  gl = sizeof g;
  SYS(getsockname(c, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof(sa_family_t), "client getsockname len %u, expected 2", (unsigned)gl);
  gl = sizeof g;
  SYS(getsockname(s, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, want), "accepted socket's getsockname is not the listener's name (len %u)", (unsigned)gl);
  gl = sizeof g;
  SYS(getpeername(s, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof(sa_family_t), "accepted getpeername len %u, expected 2", (unsigned)gl);
  // A short buffer gets a truncated name and the full length.
  gl = 4;
  memset(&g, 0x55, sizeof g);
  SYS(getsockname(l, (struct sockaddr *)&g, &gl));
  REQ(gl == want, "getsockname with a 4-byte buffer reports len %u, expected %u", (unsigned)gl, (unsigned)want);
  REQ(((unsigned char *)&g)[4] == 0x55, "getsockname wrote past the 4-byte buffer");
  unlink(a.sun_path);
  ok();
}

static void t_unix_names_abstract(void) {
  struct sockaddr_un a, b, g;
  socklen_t alen = uabs(&a, "srv"), blen = uabs(&b, "cli"), gl;
  int l, c, s;
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, alen));
  SYS(listen(l, 4));
  gl = sizeof g;
  SYS(getsockname(l, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, alen), "listener getsockname: len %u, expected %u, or other bytes", (unsigned)gl, (unsigned)alen);
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(c, (struct sockaddr *)&b, blen));
  SYS(connect(c, (struct sockaddr *)&a, alen));
  SYS(s = accept(l, (struct sockaddr *)&g, (gl = sizeof g, &gl)));
  REQ(same_addr(&g, gl, &b, blen), "accept's peer address is not the client's abstract name (len %u, expected %u)", (unsigned)gl, (unsigned)blen);
  gl = sizeof g;
  SYS(getpeername(s, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &b, blen), "accepted getpeername is not the client's name");
  gl = sizeof g;
  SYS(getpeername(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, alen), "client getpeername is not the listener's name");
  gl = sizeof g;
  SYS(getsockname(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &b, blen), "client getsockname is not its own name");
  // The name is exactly its bytes: one more byte is another name, nobody listens there.
  int d;
  SYS(d = socket(AF_UNIX, SOCK_STREAM, 0));
  ERR(connect(d, (struct sockaddr *)&a, alen + 1), ECONNREFUSED);
  // An abstract name leaves nothing in the filesystem and is free again once closed.
  close(l);
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, alen));
  ok();
}

static void t_unix_autobind(void) {
  struct sockaddr_un g;
  socklen_t gl = sizeof g;
  int fd;
  SYS(fd = socket(AF_UNIX, SOCK_STREAM, 0));
  sa_family_t fam = AF_UNIX;
  SYS(bind(fd, (struct sockaddr *)&fam, sizeof fam));
  SYS(getsockname(fd, (struct sockaddr *)&g, &gl));
  REQ(gl == offsetof(struct sockaddr_un, sun_path) + 6, "autobound name: len %u, expected 8 (NUL + 5 hex digits)", (unsigned)gl);
  REQ(g.sun_path[0] == 0, "autobound name is not abstract");
  for (int i = 1; i < 6; i++) REQ(strchr("0123456789abcdef", g.sun_path[i]) && g.sun_path[i], "autobound name: byte %d is not a lowercase hex digit", i);
  SYS(listen(fd, 1));
  int c;
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(connect(c, (struct sockaddr *)&g, gl));
  ok();
}

static void t_unix_connect_errors(void) {
  struct sockaddr_un a;
  socklen_t len;
  int c, s;
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  len = upath(&a, "none");
  ERR(connect(c, (struct sockaddr *)&a, len), ENOENT);
  // A socket file whose socket is gone.
  len = upath(&a, "stale");
  SYS(s = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  close(s);
  ERR(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
  unlink(a.sun_path);
  // Bound, not listening.
  SYS(s = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  ERR(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
  unlink(a.sun_path);
  // A regular file.
  len = upath(&a, "file");
  int f;
  SYS(f = open(a.sun_path, O_CREAT | O_WRONLY, 0600));
  ERR(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
  unlink(a.sun_path);
  // An abstract name nobody bound.
  len = uabs(&a, "nobody");
  ERR(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
  // A datagram socket cannot listen; a stream connect to the abstract name of a datagram socket is
  // refused (abstract names are per socket type: nothing of this type has the name).
  len = uabs(&a, "dgram");
  SYS(s = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  ERR(listen(s, 1), EOPNOTSUPP);
  ERR(connect(c, (struct sockaddr *)&a, len), ECONNREFUSED);
  // A path bound by a datagram socket: the wrong type.
  len = upath(&a, "dpath");
  SYS(s = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  ERR(connect(c, (struct sockaddr *)&a, len), EPROTOTYPE);
  unlink(a.sun_path);
  // An address of the wrong family / too short.
  struct sockaddr_in in;
  lo4(&in, 1);
  ERR(connect(c, (struct sockaddr *)&in, sizeof in), EINVAL);
  ERR(connect(c, (struct sockaddr *)&a, 1), EINVAL);
  ok();
}

static void t_unix_bind_errors(void) {
  struct sockaddr_un a, b;
  socklen_t len = upath(&a, "inuse"), blen;
  int s, t;
  SYS(s = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  SYS(t = socket(AF_UNIX, SOCK_STREAM, 0));
  ERR(bind(t, (struct sockaddr *)&a, len), EADDRINUSE);
  close(s); // the stale file still blocks the name
  ERR(bind(t, (struct sockaddr *)&a, len), EADDRINUSE);
  unlink(a.sun_path);
  len = upath(&a, "regular");
  close(open(a.sun_path, O_CREAT | O_WRONLY, 0600));
  ERR(bind(t, (struct sockaddr *)&a, len), EADDRINUSE);
  unlink(a.sun_path);
  // An abstract name in use. Abstract names are per socket type: a datagram socket can take the
  // name a stream socket holds.
  blen = uabs(&b, "inuse");
  SYS(s = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(s, (struct sockaddr *)&b, blen));
  ERR(bind(t, (struct sockaddr *)&b, blen), EADDRINUSE);
  int d, d2;
  SYS(d = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(d, (struct sockaddr *)&b, blen));
  SYS(d2 = socket(AF_UNIX, SOCK_DGRAM, 0));
  ERR(bind(d2, (struct sockaddr *)&b, blen), EADDRINUSE);
  // A bound socket cannot be bound again.
  len = upath(&a, "twice");
  SYS(bind(t, (struct sockaddr *)&a, len));
  blen = uabs(&b, "twice");
  ERR(bind(t, (struct sockaddr *)&b, blen), EINVAL);
  unlink(a.sun_path);
  // A directory that does not exist.
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof a.sun_path, "%s/net-%d-nodir/x", dir, (int)mypid);
  SYS(s = socket(AF_UNIX, SOCK_STREAM, 0));
  ERR(bind(s, (struct sockaddr *)&a, sizeof a), ENOENT);
  ok();
}

static void t_unix_shutdown_wr(void) {
  int sv[2];
  char b[16];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  EQ(write(sv[0], "last", 4), 4);
  SYS(shutdown(sv[0], SHUT_WR));
  EQ(read(sv[1], b, sizeof b), 4);
  EQ(read(sv[1], b, sizeof b), 0);
  EQ(read(sv[1], b, sizeof b), 0);
  // The other way still works.
  EQ(write(sv[1], "reply", 5), 5);
  EQ(read(sv[0], b, sizeof b), 5);
  REQ(!memcmp(b, "reply", 5), "reply garbled");
  ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
  // SHUT_RD on the other: its reads see EOF at once, even with the peer's data pending.
  EQ(write(sv[1], "zz", 2), 2);
  SYS(shutdown(sv[0], SHUT_RD));
  ERR(shutdown(sv[0], 7), EINVAL);
  // AF_UNIX does not check: shutdown of an unconnected socket succeeds (TCP says ENOTCONN).
  int c;
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  EQ(shutdown(c, SHUT_WR), 0);
  ok();
}

static volatile sig_atomic_t sigpipes;
static void on_sigpipe(int s) {
  (void)s;
  sigpipes++;
}

static void t_unix_epipe(void) {
  int sv[2];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  close(sv[1]);
  struct sigaction sa = {0};
  sa.sa_handler = on_sigpipe;
  SYS(sigaction(SIGPIPE, &sa, NULL));
  sigpipes = 0;
  ERR(write(sv[0], "x", 1), EPIPE);
  REQ(sigpipes == 1, "write to a closed peer raised %d SIGPIPEs, expected 1", (int)sigpipes);
  ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
  REQ(sigpipes == 1, "send(MSG_NOSIGNAL) raised SIGPIPE");
  signal(SIGPIPE, SIG_IGN);
  ERR(write(sv[0], "x", 1), EPIPE);
  char b[4];
  EQ(read(sv[0], b, sizeof b), 0);
  ok();
}

static void t_unix_close_unread(void) {
  // Closing a stream socket with unread data makes the peer's next read ECONNRESET (then EOF).
  int sv[2];
  char b[4];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  EQ(write(sv[0], "lost", 4), 4);
  close(sv[1]);
  ERR(read(sv[0], b, sizeof b), ECONNRESET);
  EQ(read(sv[0], b, sizeof b), 0);
  ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
  // Without unread data: EOF at once.
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  close(sv[1]);
  EQ(read(sv[0], b, sizeof b), 0);
  ok();
}

static void t_unix_listener_close(void) {
  // A pending (never accepted) connection whose listener closes is reset.
  struct sockaddr_un a;
  socklen_t len = uabs(&a, "lclose");
  int l, c;
  char b[4];
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(connect(c, (struct sockaddr *)&a, len));
  close(l);
  ERR(read(c, b, sizeof b), ECONNRESET);
  EQ(read(c, b, sizeof b), 0);
  ok();
}

static void t_unix_nonblock(void) {
  int sv[2], l;
  char b[4];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ERR(recv(sv[0], b, sizeof b, MSG_DONTWAIT), EAGAIN);
  SYS(fcntl(sv[0], F_SETFL, O_NONBLOCK));
  ERR(recv(sv[0], b, sizeof b, 0), EAGAIN);
  ERR(read(sv[0], b, sizeof b), EAGAIN);
  struct sockaddr_un a;
  socklen_t len = uabs(&a, "nb");
  SYS(l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  ERR(accept(l, NULL, NULL), EAGAIN);
  // Filling the send buffer: a nonblocking writer gets EAGAIN after a partial write.
  static char big[1 << 16];
  long total = 0;
  for (int i = 0; i < 10000; i++) {
    ssize_t w = write(sv[0], big, sizeof big);
    if (w < 0) {
      REQ(errno == EAGAIN, "filling: %s, expected EAGAIN", en(errno));
      break;
    }
    total += w;
  }
  REQ(total > 0, "nothing could be written");
  PMASK(sv[0], 0, "full writer");
  ok();
}

static void t_unix_rcvtimeo(void) {
  int sv[2];
  char b[4];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  struct timeval tv = {0, 100 * 1000};
  SYS(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
  double t0 = now_ms();
  ERR(recv(sv[0], b, sizeof b, 0), EAGAIN);
  double dt = now_ms() - t0;
  REQ(dt >= 90 && dt < 5000, "SO_RCVTIMEO of 100 ms returned after %.0f ms", dt);
  struct timeval bad = {0, 2000000};
  ERR(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad), EDOM);
  ok();
}

static void t_unix_poll(void) {
  int sv[2], u;
  SYS(u = socket(AF_UNIX, SOCK_STREAM, 0));
  PMASK(u, POLLOUT | POLLHUP, "unconnected stream socket");
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  PMASK(sv[0], POLLOUT, "idle");
  EQ(write(sv[1], "x", 1), 1);
  PMASK(sv[0], POLLIN | POLLOUT, "data pending");
  SYS(shutdown(sv[1], SHUT_WR));
  PMASK(sv[0], POLLIN | POLLOUT | POLLRDHUP, "data pending, peer did SHUT_WR");
  char b[4];
  EQ(read(sv[0], b, sizeof b), 1);
  PMASK(sv[0], POLLIN | POLLOUT | POLLRDHUP, "peer did SHUT_WR");
  PMASK(sv[1], POLLOUT, "after own SHUT_WR");
  close(sv[1]);
  PMASK(sv[0], POLLIN | POLLOUT | POLLRDHUP | POLLHUP, "peer closed");
  // A listener: nothing, then POLLIN for a pending connection.
  struct sockaddr_un a;
  socklen_t len = uabs(&a, "poll");
  int l, c;
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  PMASK(l, 0, "idle listener");
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(connect(c, (struct sockaddr *)&a, len));
  PMASK(l, POLLIN, "listener with a pending connection");
  ok();
}

static void t_unix_epoll_listen(void) {
  struct sockaddr_un a;
  socklen_t len = upath(&a, "epoll");
  int l, c, ep;
  SYS(l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  SYS(ep = epoll_create1(EPOLL_CLOEXEC));
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77}, out[2];
  SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
  EQ(epoll_wait(ep, out, 2, 0), 0);
  SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(connect(c, (struct sockaddr *)&a, len));
  EQ(epoll_wait(ep, out, 2, 2000), 1);
  REQ(out[0].data.u64 == 77 && out[0].events == EPOLLIN, "event 0x%x data %llu", out[0].events, (unsigned long long)out[0].data.u64);
  int s;
  SYS(s = accept(l, NULL, NULL));
  EQ(epoll_wait(ep, out, 2, 0), 0);
  // The accepted socket: EPOLLRDHUP when the peer shuts its writing side.
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = 88;
  SYS(epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
  EQ(epoll_wait(ep, out, 2, 0), 0);
  SYS(shutdown(c, SHUT_WR));
  EQ(epoll_wait(ep, out, 2, 2000), 1);
  REQ(out[0].data.u64 == 88 && out[0].events == (EPOLLIN | EPOLLRDHUP), "after SHUT_WR: events 0x%x data %llu", out[0].events, (unsigned long long)out[0].data.u64);
  unlink(a.sun_path);
  ok();
}

static void t_unix_peercred(void) {
  int sv[2];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  struct ucred cr;
  socklen_t len = sizeof cr;
  SYS(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cr, &len));
  REQ(len == sizeof cr, "optlen %u", (unsigned)len);
  REQ(cr.pid == getpid(), "socketpair peer pid is not getpid()");
  REQ(cr.uid == getuid() && cr.gid == getgid(), "socketpair peer uid/gid are not getuid()/getgid()");
  // An unconnected socket has no peer credentials.
  int u;
  SYS(u = socket(AF_UNIX, SOCK_STREAM, 0));
  len = sizeof cr;
  SYS(getsockopt(u, SOL_SOCKET, SO_PEERCRED, &cr, &len));
  REQ(cr.pid == 0 && cr.uid == (uid_t)-1 && cr.gid == (gid_t)-1, "unconnected: pid %d uid %d gid %d, expected 0 -1 -1", (int)cr.pid, (int)cr.uid, (int)cr.gid);
  ok();
}

static void t_unix_peercred_fork(void) {
  struct sockaddr_un a;
  socklen_t len = upath(&a, "cred");
  int l;
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  pid_t parent = getpid();
  pid_t p = xfork();
  SYS(p);
  if (p == 0) {
    int c;
    SYS(c = socket(AF_UNIX, SOCK_STREAM, 0));
    SYS(connect(c, (struct sockaddr *)&a, len));
    struct ucred cr;
    socklen_t cl = sizeof cr;
    SYS(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
    REQ(cr.pid == parent, "the client's SO_PEERCRED pid is not the listener's creator");
    EQ(write(c, "x", 1), 1);
    char b;
    EQ(read(c, &b, 1), 0);
    _exit(0);
  }
  int s;
  SYS(s = accept(l, NULL, NULL));
  struct ucred cr;
  socklen_t cl = sizeof cr;
  SYS(getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl));
  REQ(cr.pid == p, "SO_PEERCRED pid is not the child's (fork's return value)");
  REQ(cr.uid == getuid() && cr.gid == getgid(), "SO_PEERCRED uid/gid");
  char b;
  EQ(read(s, &b, 1), 1);
  close(s);
  if (!reap(p)) return;
  unlink(a.sun_path);
  ok();
}

static void t_unix_sockopts(void) {
  int sv[2], l, d, q;
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  GETI(sv[0], SOL_SOCKET, SO_TYPE, SOCK_STREAM);
  GETI(sv[0], SOL_SOCKET, SO_DOMAIN, AF_UNIX);
  GETI(sv[0], SOL_SOCKET, SO_PROTOCOL, 0);
  GETI(sv[0], SOL_SOCKET, SO_ERROR, 0);
  GETI(sv[0], SOL_SOCKET, SO_ACCEPTCONN, 0);
  GETI(sv[0], SOL_SOCKET, SO_PASSCRED, 0);
  int v;
  REQ(geti(sv[0], SOL_SOCKET, SO_SNDBUF, &v) == 0 && v > 0, "SO_SNDBUF not > 0");
  REQ(geti(sv[0], SOL_SOCKET, SO_RCVBUF, &v) == 0 && v > 0, "SO_RCVBUF not > 0");
  struct sockaddr_un a;
  socklen_t len = uabs(&a, "opts");
  SYS(l = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  GETI(l, SOL_SOCKET, SO_ACCEPTCONN, 1);
  SYS(d = socket(AF_UNIX, SOCK_DGRAM, 0));
  GETI(d, SOL_SOCKET, SO_TYPE, SOCK_DGRAM);
  SYS(q = socket(AF_UNIX, SOCK_SEQPACKET, 0));
  GETI(q, SOL_SOCKET, SO_TYPE, SOCK_SEQPACKET);
  // A socket option on a non-socket.
  int p[2];
  SYS(pipe(p));
  socklen_t ol = sizeof v;
  ERR(getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, &ol), ENOTSOCK);
  ok();
}

static void t_unix_enoprotoopt(void) {
  int sv[2], v = 1;
  socklen_t len = sizeof v;
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  ERR(getsockopt(sv[0], SOL_SOCKET, 9999, &v, &len), ENOPROTOOPT);
  ERR(setsockopt(sv[0], SOL_SOCKET, 9999, &v, sizeof v), ENOPROTOOPT);
  // Another level: AF_UNIX has no options of its own.
  len = sizeof v;
  ERR(getsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &v, &len), EOPNOTSUPP);
  ERR(setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &v, sizeof v), EOPNOTSUPP);
  // An int option with a short optlen.
  ERR(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, 1), EINVAL);
  ok();
}

static void t_unix_fionread(void) {
  int sv[2], n = -1;
  char buf[200];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  SYS(ioctl(sv[1], FIONREAD, &n));
  REQ(n == 0, "FIONREAD of an empty socket = %d", n);
  memset(buf, 'q', sizeof buf);
  EQ(write(sv[0], buf, 100), 100);
  EQ(write(sv[0], buf, 23), 23);
  SYS(ioctl(sv[1], FIONREAD, &n));
  REQ(n == 123, "FIONREAD = %d, expected 123 (two writes of 100 and 23)", n);
  EQ(read(sv[1], buf, 23), 23);
  SYS(ioctl(sv[1], FIONREAD, &n));
  REQ(n == 100, "FIONREAD after reading 23 = %d, expected 100", n);
  // MSG_PEEK leaves the bytes.
  EQ(recv(sv[1], buf, 10, MSG_PEEK), 10);
  SYS(ioctl(sv[1], FIONREAD, &n));
  REQ(n == 100, "FIONREAD after MSG_PEEK = %d, expected 100", n);
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * SCM_RIGHTS and SCM_CREDENTIALS
 * ---------------------------------------------------------------------------------------------- */

static int send_fds(int sock, const int *fds, int nfds, const char *data) {
  char ctrl[CMSG_SPACE(sizeof(int) * 4)];
  memset(ctrl, 0, sizeof ctrl);
  struct iovec iov = {(void *)data, strlen(data)};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctrl;
  m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  return sendmsg(sock, &m, 0);
}

/** Receives data and up to 4 fds; returns the byte count, fds in out[], their number in *n. */
static ssize_t recv_fds(int sock, char *buf, size_t size, int *out, int *n, int flags, int *mflags) {
  char ctrl[CMSG_SPACE(sizeof(int) * 4)];
  struct iovec iov = {buf, size};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = ctrl;
  m.msg_controllen = sizeof ctrl;
  *n = 0;
  ssize_t r = recvmsg(sock, &m, flags);
  if (r < 0) return r;
  *mflags = m.msg_flags;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
      *n = -1;
      return r;
    }
    int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (int i = 0; i < k && *n < 4; i++) memcpy(&out[(*n)++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
  }
  return r;
}

static void t_scm_rights_fork(void) {
  int sv[2];
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  static const char msg[] = "written through the passed fd";
  pid_t p = xfork();
  SYS(p);
  if (p == 0) {
    close(sv[0]);
    char b[8];
    int fds[4], n, mf;
    ssize_t r = recv_fds(sv[1], b, sizeof b, fds, &n, MSG_CMSG_CLOEXEC, &mf);
    REQ(r == 1 && b[0] == 'F', "recvmsg got %ld bytes (%s)", (long)r, r < 0 ? en(errno) : "");
    REQ(n == 1, "%d fds arrived, expected 1", n);
    EQ(fcntl(fds[0], F_GETFD), FD_CLOEXEC);
    EQ(fcntl(fds[0], F_GETFL) & O_ACCMODE, O_WRONLY);
    REQ(writen(fds[0], msg, sizeof msg - 1) == 0, "write through the passed fd: %s", en(errno));
    _exit(0);
  }
  close(sv[1]);
  int pp[2];
  SYS(pipe(pp));
  SYS(send_fds(sv[0], &pp[1], 1, "F"));
  close(pp[1]); // the only write end left is the one in flight
  char b[64];
  EQ(readn(pp[0], b, sizeof msg - 1), sizeof msg - 1);
  REQ(!memcmp(b, msg, sizeof msg - 1), "the pipe carried other bytes");
  EQ(read(pp[0], b, sizeof b), 0); // EOF: the child's copy was the last write end
  if (!reap(p)) return;
  ok();
}

static void t_scm_rights_local(void) {
  int sv[2], pp[2];
  SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
  SYS(pipe(pp));
  SYS(send_fds(sv[0], pp, 2, "two"));
  char b[8];
  int fds[4], n, mf;
  ssize_t r = recv_fds(sv[1], b, sizeof b, fds, &n, 0, &mf);
  REQ(r == 3, "recvmsg returned %ld", (long)r);
  REQ(n == 2, "%d fds arrived, expected 2", n);
  REQ(fds[0] != pp[0] && fds[1] != pp[1] && fds[0] != fds[1], "received fds reuse numbers still open");
  EQ(fcntl(fds[0], F_GETFD), 0);
  struct stat s1, s2;
  SYS(fstat(fds[0], &s1));
  SYS(fstat(pp[0], &s2));
  REQ(s1.st_ino == s2.st_ino && s1.st_dev == s2.st_dev, "the received fd is another file");
  EQ(write(fds[1], "via", 3), 3);
  EQ(read(pp[0], b, sizeof b), 3);
  // An fd that is not open cannot be sent.
  int bad = 999;
  ERR(send_fds(sv[0], &bad, 1, "x"), EBADF);
  ok();
}

static void t_scm_credentials(void) {
  int sv[2], on = 1;
  SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
  SYS(setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
  GETI(sv[0], SOL_SOCKET, SO_PASSCRED, 1);
  pid_t p = xfork();
  SYS(p);
  if (p == 0) {
    close(sv[0]);
    EQ(write(sv[1], "hi", 2), 2); // no control data: the kernel adds the credentials
    char b;
    EQ(read(sv[1], &b, 1), 1);
    // Explicit credentials of its own.
    struct ucred cr = {getpid(), getuid(), getgid()};
    char ctrl[CMSG_SPACE(sizeof cr)];
    memset(ctrl, 0, sizeof ctrl);
    struct iovec iov = {"yo", 2};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CREDENTIALS;
    c->cmsg_len = CMSG_LEN(sizeof cr);
    memcpy(CMSG_DATA(c), &cr, sizeof cr);
    EQ(sendmsg(sv[1], &m, 0), 2);
    EQ(read(sv[1], &b, 1), 0);
    _exit(0);
  }
  close(sv[1]);
  for (int round = 0; round < 2; round++) {
    char b[8], ctrl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {b, sizeof b};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    EQ(recvmsg(sv[0], &m, 0), 2);
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    REQ(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS, "round %d: no SCM_CREDENTIALS", round);
    REQ(c->cmsg_len == CMSG_LEN(sizeof(struct ucred)), "round %d: cmsg_len %zu", round, (size_t)c->cmsg_len);
    struct ucred cr;
    memcpy(&cr, CMSG_DATA(c), sizeof cr);
    REQ(cr.pid == p, "round %d: credentials pid is not the child's (fork's return value)", round);
    REQ(cr.uid == getuid() && cr.gid == getgid(), "round %d: credentials uid/gid", round);
    REQ(!(m.msg_flags & MSG_CTRUNC), "round %d: MSG_CTRUNC", round);
    if (round == 0) EQ(write(sv[0], "k", 1), 1);
  }
  close(sv[0]);
  if (!reap(p)) return;
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * AF_UNIX SOCK_DGRAM and SOCK_SEQPACKET
 * ---------------------------------------------------------------------------------------------- */

static void t_unix_dgram_boundaries(void) {
  int sv[2], n;
  char b[64];
  SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
  EQ(send(sv[0], "a", 1, 0), 1);
  EQ(send(sv[0], "bb", 2, 0), 2);
  EQ(send(sv[0], "", 0, 0), 0);
  EQ(send(sv[0], "ccc", 3, 0), 3);
  SYS(ioctl(sv[1], FIONREAD, &n));
  REQ(n == 1, "FIONREAD = %d, expected 1 (the first datagram's size)", n);
  EQ(recv(sv[1], b, sizeof b, 0), 1);
  EQ(recv(sv[1], b, sizeof b, 0), 2);
  REQ(!memcmp(b, "bb", 2), "second datagram garbled");
  EQ(recv(sv[1], b, sizeof b, 0), 0); // an empty datagram, not EOF
  EQ(recv(sv[1], b, sizeof b, 0), 3);
  ERR(recv(sv[1], b, sizeof b, MSG_DONTWAIT), EAGAIN);
  // The other way, and close: a datagram socket has no EOF; a send to a closed peer is refused.
  EQ(send(sv[1], "back", 4, 0), 4);
  EQ(recv(sv[0], b, sizeof b, 0), 4);
  close(sv[1]);
  ERR(send(sv[0], "x", 1, MSG_NOSIGNAL), ECONNREFUSED);
  ok();
}

static void t_unix_dgram_recvfrom(void) {
  struct sockaddr_un ra, sa, g;
  socklen_t rl = upath(&ra, "drecv"), sl = upath(&sa, "dsend"), gl;
  int r, s, u;
  char b[16];
  SYS(r = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(r, (struct sockaddr *)&ra, rl));
  SYS(s = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(s, (struct sockaddr *)&sa, sl));
  EQ(sendto(s, "hello", 5, 0, (struct sockaddr *)&ra, rl), 5);
  gl = sizeof g;
  memset(&g, 0, sizeof g);
  EQ(recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&g, &gl), 5);
  REQ(same_addr(&g, gl, &sa, sl), "recvfrom's address is not the sender's path (len %u, expected %u)", (unsigned)gl, (unsigned)sl);
  // Reply to the address recvfrom gave.
  EQ(sendto(r, "back", 4, 0, (struct sockaddr *)&g, gl), 4);
  EQ(recv(s, b, sizeof b, 0), 4);
  // An unbound sender has no address: recvfrom reports length 0.
  SYS(u = socket(AF_UNIX, SOCK_DGRAM, 0));
  EQ(sendto(u, "anon", 4, 0, (struct sockaddr *)&ra, rl), 4);
  gl = sizeof g;
  EQ(recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&g, &gl), 4);
  REQ(gl == 0, "recvfrom from an unbound sender: len %u, expected 0", (unsigned)gl);
  // An abstract sender.
  struct sockaddr_un xa;
  socklen_t xl = uabs(&xa, "dsend");
  int x;
  SYS(x = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(x, (struct sockaddr *)&xa, xl));
  EQ(sendto(x, "abs", 3, 0, (struct sockaddr *)&ra, rl), 3);
  gl = sizeof g;
  EQ(recvfrom(r, b, sizeof b, 0, (struct sockaddr *)&g, &gl), 3);
  REQ(same_addr(&g, gl, &xa, xl), "recvfrom's address is not the abstract sender's name");
  unlink(ra.sun_path);
  unlink(sa.sun_path);
  ok();
}

static void t_unix_dgram_trunc(void) {
  int sv[2];
  char b[16];
  SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
  EQ(send(sv[0], "0123456789", 10, 0), 10);
  EQ(send(sv[0], "next", 4, 0), 4);
  EQ(send(sv[0], "abcdefghij", 10, 0), 10);
  EQ(recv(sv[1], b, 4, 0), 4); // the other 6 bytes are dropped
  REQ(!memcmp(b, "0123", 4), "truncated datagram garbled");
  EQ(recv(sv[1], b, sizeof b, 0), 4);
  REQ(!memcmp(b, "next", 4), "the rest of a truncated datagram was not dropped");
  struct iovec iov = {b, 3};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EQ(recvmsg(sv[1], &m, MSG_TRUNC | MSG_PEEK), 10); // MSG_TRUNC: the real length
  REQ(m.msg_flags & MSG_TRUNC, "msg_flags lacks MSG_TRUNC (0x%x)", m.msg_flags);
  m.msg_flags = 0;
  EQ(recvmsg(sv[1], &m, 0), 3);
  REQ(m.msg_flags & MSG_TRUNC, "msg_flags lacks MSG_TRUNC without the flag (0x%x)", m.msg_flags);
  ok();
}

static void t_unix_dgram_sendto_errors(void) {
  struct sockaddr_un a;
  socklen_t len;
  int d, s;
  SYS(d = socket(AF_UNIX, SOCK_DGRAM, 0));
  len = upath(&a, "dnone");
  ERR(sendto(d, "x", 1, 0, (struct sockaddr *)&a, len), ENOENT);
  // A socket file whose socket is gone.
  len = upath(&a, "dstale");
  SYS(s = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  close(s);
  ERR(sendto(d, "x", 1, 0, (struct sockaddr *)&a, len), ECONNREFUSED);
  unlink(a.sun_path);
  // An abstract name nobody bound.
  len = uabs(&a, "dnobody");
  ERR(sendto(d, "x", 1, 0, (struct sockaddr *)&a, len), ECONNREFUSED);
  // A name held by a stream socket: the wrong type.
  len = upath(&a, "dstream");
  SYS(s = socket(AF_UNIX, SOCK_STREAM, 0));
  SYS(bind(s, (struct sockaddr *)&a, len));
  SYS(listen(s, 1));
  ERR(sendto(d, "x", 1, 0, (struct sockaddr *)&a, len), EPROTOTYPE);
  unlink(a.sun_path);
  // No address and not connected.
  ERR(send(d, "x", 1, 0), ENOTCONN);
  ok();
}

static void t_unix_dgram_connect(void) {
  struct sockaddr_un ra, g;
  socklen_t rl = uabs(&ra, "dconn"), gl;
  int r, c, o;
  char b[8];
  SYS(r = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(r, (struct sockaddr *)&ra, rl));
  SYS(c = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(connect(c, (struct sockaddr *)&ra, rl));
  gl = sizeof g;
  SYS(getpeername(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &ra, rl), "getpeername of a connected datagram socket");
  EQ(send(c, "one", 3, 0), 3);
  EQ(write(c, "two", 3), 3);
  EQ(recv(r, b, sizeof b, 0), 3);
  EQ(recv(r, b, sizeof b, 0), 3);
  // A socket connected to someone else accepts datagrams only from that peer.
  struct sockaddr_un ca;
  socklen_t cl = uabs(&ca, "dconn-c");
  int c2;
  SYS(c2 = socket(AF_UNIX, SOCK_DGRAM, 0));
  SYS(bind(c2, (struct sockaddr *)&ca, cl));
  SYS(connect(c2, (struct sockaddr *)&ra, rl));
  SYS(o = socket(AF_UNIX, SOCK_DGRAM, 0));
  ERR(sendto(o, "x", 1, 0, (struct sockaddr *)&ca, cl), EPERM);
  // The receiver goes away: the next send is refused and disconnects.
  close(r);
  ERR(send(c, "x", 1, MSG_NOSIGNAL), ECONNREFUSED);
  ERR(send(c, "x", 1, MSG_NOSIGNAL), ENOTCONN);
  // connect to AF_UNSPEC dissolves the association.
  struct sockaddr unspec = {.sa_family = AF_UNSPEC};
  SYS(connect(c2, &unspec, sizeof unspec));
  gl = sizeof g;
  ERR(getpeername(c2, (struct sockaddr *)&g, &gl), ENOTCONN);
  ok();
}

static void t_unix_seqpacket(void) {
  struct sockaddr_un a;
  socklen_t len = uabs(&a, "seq");
  int l, c, s;
  char b[16];
  SYS(l = socket(AF_UNIX, SOCK_SEQPACKET, 0));
  SYS(bind(l, (struct sockaddr *)&a, len));
  SYS(listen(l, 4));
  SYS(c = socket(AF_UNIX, SOCK_SEQPACKET, 0));
  SYS(connect(c, (struct sockaddr *)&a, len));
  SYS(s = accept(l, NULL, NULL));
  GETI(s, SOL_SOCKET, SO_TYPE, SOCK_SEQPACKET);
  EQ(send(c, "one", 3, 0), 3);
  EQ(send(c, "two!", 4, 0), 4);
  EQ(send(c, "0123456789", 10, 0), 10);
  EQ(recv(s, b, sizeof b, 0), 3);
  EQ(recv(s, b, sizeof b, 0), 4);
  REQ(!memcmp(b, "two!", 4), "second record garbled");
  struct iovec iov = {b, 4};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EQ(recvmsg(s, &m, 0), 4);
  REQ(m.msg_flags & MSG_TRUNC, "a truncated record lacks MSG_TRUNC (0x%x)", m.msg_flags);
  EQ(send(s, "back", 4, 0), 4);
  EQ(recv(c, b, sizeof b, 0), 4);
  close(c);
  EQ(recv(s, b, sizeof b, 0), 0);
  ERR(send(s, "x", 1, MSG_NOSIGNAL), EPIPE);
  // A seqpacket socketpair.
  int sv[2];
  SYS(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
  EQ(write(sv[0], "ab", 2), 2);
  EQ(write(sv[0], "cd", 2), 2);
  EQ(read(sv[1], b, sizeof b), 2);
  EQ(read(sv[1], b, sizeof b), 2);
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * TCP over 127.0.0.1
 * ---------------------------------------------------------------------------------------------- */

static void t_tcp_listen_name(void) {
  struct sockaddr_in a, g;
  socklen_t gl = sizeof g;
  int fd;
  SYS(fd = socket(AF_INET, SOCK_STREAM, 0));
  SYS(getsockname(fd, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof g && g.sin_family == AF_INET && g.sin_port == 0 && g.sin_addr.s_addr == 0, "unbound getsockname is not 0.0.0.0:0");
  lo4(&a, 0);
  SYS(bind(fd, (struct sockaddr *)&a, sizeof a));
  gl = sizeof g;
  SYS(getsockname(fd, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof g, "getsockname len %u", (unsigned)gl);
  REQ(g.sin_port != 0, "bind to port 0 chose no port");
  REQ(g.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "bound address is not 127.0.0.1");
  SYS(listen(fd, 8));
  struct sockaddr_in g2;
  gl = sizeof g2;
  SYS(getsockname(fd, (struct sockaddr *)&g2, &gl));
  REQ(g2.sin_port == g.sin_port, "listen changed the port");
  ERR(getpeername(fd, (struct sockaddr *)&g2, &gl), ENOTCONN);
  // listen without bind picks a port too.
  int u;
  SYS(u = socket(AF_INET, SOCK_STREAM, 0));
  SYS(listen(u, 1));
  gl = sizeof g2;
  SYS(getsockname(u, (struct sockaddr *)&g2, &gl));
  REQ(g2.sin_port != 0, "listen without bind chose no port");
  ok();
}

static void t_tcp_names(void) {
  struct sockaddr_in a, g, cn, peer;
  socklen_t gl;
  lo4(&a, 0);
  int l, c, s;
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  SYS(c = connect_to(AF_INET, SOCK_STREAM, &a, sizeof a));
  gl = sizeof peer;
  SYS(s = accept(l, (struct sockaddr *)&peer, &gl));
  REQ(gl == sizeof peer && peer.sin_family == AF_INET, "accept's address: len %u", (unsigned)gl);
  gl = sizeof cn;
  SYS(getsockname(c, (struct sockaddr *)&cn, &gl));
  REQ(cn.sin_port != 0 && cn.sin_port != a.sin_port, "the client's port is 0 or the listener's");
  REQ(cn.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "the client's address is not 127.0.0.1");
  REQ(peer.sin_port == cn.sin_port && peer.sin_addr.s_addr == cn.sin_addr.s_addr, "accept's address is not the client's getsockname");
  gl = sizeof g;
  SYS(getpeername(s, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &peer, sizeof peer), "getpeername of the accepted socket is not the client's getsockname");
  gl = sizeof g;
  SYS(getpeername(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, sizeof a), "the client's getpeername is not the listener's address");
  gl = sizeof g;
  SYS(getsockname(s, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, sizeof a), "the accepted socket's getsockname is not the listener's address");
  EQ(write(c, "hi", 2), 2);
  char b[4];
  EQ(readn(s, b, 2), 2);
  ok();
}

static void t_tcp_100k_fork(void) {
  struct sockaddr_in a;
  lo4(&a, 0);
  int l, c;
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  pid_t p = xfork();
  SYS(p);
  if (p == 0) {
    int s;
    SYS(s = accept(l, NULL, NULL));
    close(l);
    int e = echo_loop(s);
    if (e) fail("echo: %s", en(e));
    _exit(0);
  }
  close(l);
  SYS(c = connect_to(AF_INET, SOCK_STREAM, &a, sizeof a));
  exchange_big(c);
  if (reported) return; // the runner kills the child
  if (!reap(p)) return;
  ok();
}

static void t_tcp_half_close(void) {
  int c, s;
  char b[16];
  SYS(tcp_pair(&c, &s));
  EQ(write(c, "request", 7), 7);
  SYS(shutdown(c, SHUT_WR));
  EQ(readn(s, b, sizeof b), 7); // the data, then EOF
  EQ(read(s, b, sizeof b), 0);
  EQ(write(s, "response", 8), 8);
  EQ(readn(c, b, 8), 8);
  REQ(!memcmp(b, "response", 8), "response garbled");
  ERR(send(c, "x", 1, MSG_NOSIGNAL), EPIPE);
  close(s);
  EQ(read(c, b, sizeof b), 0);
  ok();
}

static void t_tcp_refused(void) {
  // A port held by a bound socket that does not listen: nobody else can take it, a SYN is reset.
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  lo4(&a, 0);
  int h, c;
  SYS(h = socket(AF_INET, SOCK_STREAM, 0));
  SYS(bind(h, (struct sockaddr *)&a, sizeof a));
  SYS(getsockname(h, (struct sockaddr *)&a, &len));
  SYS(c = socket(AF_INET, SOCK_STREAM, 0));
  ERR(connect(c, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
  GETI(c, SOL_SOCKET, SO_ERROR, 0);
  // Nonblocking: EINPROGRESS, then SO_ERROR says ECONNREFUSED.
  int n;
  SYS(n = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ERR(connect(n, (struct sockaddr *)&a, sizeof a), EINPROGRESS);
  struct pollfd p = {n, POLLOUT, 0};
  EQ(poll(&p, 1, 5000), 1);
  REQ((p.revents & (POLLOUT | POLLERR | POLLHUP)) == (POLLOUT | POLLERR | POLLHUP), "refused nonblocking connect: poll gives %s", pnames(p.revents));
  GETI(n, SOL_SOCKET, SO_ERROR, ECONNREFUSED);
  GETI(n, SOL_SOCKET, SO_ERROR, 0); // read once, then cleared
  ok();
}

static void t_tcp_bind_errors(void) {
  struct sockaddr_in a;
  lo4(&a, 0);
  int l, t, one = 1;
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  SYS(t = socket(AF_INET, SOCK_STREAM, 0));
  ERR(bind(t, (struct sockaddr *)&a, sizeof a), EADDRINUSE);
  // SO_REUSEADDR does not let a second socket bind a listening port.
  SYS(setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  ERR(bind(t, (struct sockaddr *)&a, sizeof a), EADDRINUSE);
  // Bound once, not twice.
  struct sockaddr_in z;
  lo4(&z, 0);
  SYS(bind(t, (struct sockaddr *)&z, sizeof z));
  ERR(bind(t, (struct sockaddr *)&z, sizeof z), EINVAL);
  // An address no interface has.
  int u;
  SYS(u = socket(AF_INET, SOCK_STREAM, 0));
  z.sin_addr.s_addr = inet_addr("203.0.113.7");
  ERR(bind(u, (struct sockaddr *)&z, sizeof z), EADDRNOTAVAIL);
  // Too short an address; the wrong family.
  lo4(&z, 0);
  ERR(bind(u, (struct sockaddr *)&z, sizeof z - 1), EINVAL);
  struct sockaddr_in6 s6;
  lo6(&s6, 0);
  ERR(bind(u, (struct sockaddr *)&s6, sizeof s6), EAFNOSUPPORT);
  ok();
}

static void t_tcp_reuseaddr_rebind(void) {
  // After a connection on the port closed (the server side closing first: TIME_WAIT), a new
  // listener with SO_REUSEADDR binds the same port.
  struct sockaddr_in a;
  lo4(&a, 0);
  int l, c, s, one = 1;
  SYS(l = socket(AF_INET, SOCK_STREAM, 0));
  SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  socklen_t len = sizeof a;
  SYS(bind(l, (struct sockaddr *)&a, sizeof a));
  SYS(getsockname(l, (struct sockaddr *)&a, &len));
  SYS(listen(l, 4));
  SYS(c = connect_to(AF_INET, SOCK_STREAM, &a, sizeof a));
  SYS(s = accept(l, NULL, NULL));
  close(s);
  char b[4];
  EQ(read(c, b, sizeof b), 0);
  close(c);
  close(l);
  int n;
  SYS(n = socket(AF_INET, SOCK_STREAM, 0));
  SYS(setsockopt(n, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
  SYS(bind(n, (struct sockaddr *)&a, sizeof a));
  SYS(listen(n, 4));
  ok();
}

static void t_tcp_sockopts(void) {
  int c, s, l, v;
  SYS(tcp_pair(&c, &s));
  GETI(c, SOL_SOCKET, SO_REUSEADDR, 0);
  SETI(c, SOL_SOCKET, SO_REUSEADDR, 1);
  GETI(c, SOL_SOCKET, SO_REUSEADDR, 1);
  GETI(c, IPPROTO_TCP, TCP_NODELAY, 0);
  SETI(c, IPPROTO_TCP, TCP_NODELAY, 1);
  GETI(c, IPPROTO_TCP, TCP_NODELAY, 1);
  SETI(c, IPPROTO_TCP, TCP_NODELAY, 0);
  GETI(c, IPPROTO_TCP, TCP_NODELAY, 0);
  SETI(c, SOL_SOCKET, SO_KEEPALIVE, 7);
  GETI(c, SOL_SOCKET, SO_KEEPALIVE, 1);
  REQ(geti(c, SOL_SOCKET, SO_RCVBUF, &v) == 0 && v > 0, "SO_RCVBUF not > 0");
  REQ(geti(c, SOL_SOCKET, SO_SNDBUF, &v) == 0 && v > 0, "SO_SNDBUF not > 0");
  GETI(c, SOL_SOCKET, SO_TYPE, SOCK_STREAM);
  GETI(c, SOL_SOCKET, SO_DOMAIN, AF_INET);
  GETI(c, SOL_SOCKET, SO_PROTOCOL, IPPROTO_TCP);
  GETI(c, SOL_SOCKET, SO_ERROR, 0);
  GETI(c, SOL_SOCKET, SO_ACCEPTCONN, 0);
  GETI(s, SOL_SOCKET, SO_ACCEPTCONN, 0);
  SYS(l = socket(AF_INET, SOCK_STREAM, 0));
  SYS(listen(l, 1));
  GETI(l, SOL_SOCKET, SO_ACCEPTCONN, 1);
  struct linger lg = {7, 7};
  socklen_t len = sizeof lg;
  SYS(getsockopt(c, SOL_SOCKET, SO_LINGER, &lg, &len));
  REQ(len == sizeof lg && lg.l_onoff == 0 && lg.l_linger == 0, "default SO_LINGER is not {0, 0}");
  // A larger buffer than asked is fine; no optlen check on a too-big buffer for ints.
  long big = -1;
  len = sizeof big;
  SYS(getsockopt(c, SOL_SOCKET, SO_TYPE, &big, &len));
  REQ(len == sizeof(int), "getsockopt(SO_TYPE) with an 8-byte buffer: optlen %u, expected 4", (unsigned)len);
  ok();
}

static void t_tcp_enoprotoopt(void) {
  int fd, v = 1;
  socklen_t len = sizeof v;
  SYS(fd = socket(AF_INET, SOCK_STREAM, 0));
  ERR(getsockopt(fd, SOL_SOCKET, 9999, &v, &len), ENOPROTOOPT);
  ERR(getsockopt(fd, IPPROTO_TCP, 9999, &v, &len), ENOPROTOOPT);
  ERR(getsockopt(fd, IPPROTO_IP, 9999, &v, &len), ENOPROTOOPT);
  ERR(getsockopt(fd, 9999, 1, &v, &len), EOPNOTSUPP);
  ERR(setsockopt(fd, SOL_SOCKET, 9999, &v, sizeof v), ENOPROTOOPT);
  ERR(setsockopt(fd, IPPROTO_TCP, 9999, &v, sizeof v), ENOPROTOOPT);
  ERR(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, 1), EINVAL);
  len = (socklen_t)-1; // a negative optlen
  ERR(getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len), EINVAL);
  ok();
}

static void t_tcp_nonblock_connect(void) {
  struct sockaddr_in a, g, cn;
  lo4(&a, 0);
  int l, c, s;
  socklen_t gl;
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  SYS(c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
  ERR(connect(c, (struct sockaddr *)&a, sizeof a), EINPROGRESS);
  struct pollfd p = {c, POLLOUT, 0};
  EQ(poll(&p, 1, 5000), 1);
  REQ(p.revents == POLLOUT, "poll gives %s, expected POLLOUT", pnames(p.revents));
  GETI(c, SOL_SOCKET, SO_ERROR, 0);
  gl = sizeof g;
  SYS(getpeername(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, sizeof a), "getpeername after the connect is not the listener");
  // The socket is still "connecting" for connect(2) until it is called again: once 0, then EISCONN.
  EQ(connect(c, (struct sockaddr *)&a, sizeof a), 0);
  ERR(connect(c, (struct sockaddr *)&a, sizeof a), EISCONN);
  gl = sizeof g;
  SYS(s = accept(l, (struct sockaddr *)&g, &gl));
  gl = sizeof cn;
  SYS(getsockname(c, (struct sockaddr *)&cn, &gl));
  REQ(same_addr(&g, sizeof g, &cn, gl), "accept's address is not the client's getsockname");
  ok();
}

static void t_tcp_accept_eagain(void) {
  struct sockaddr_in a;
  lo4(&a, 0);
  int l, c;
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  SYS(fcntl(l, F_SETFL, O_NONBLOCK));
  ERR(accept(l, NULL, NULL), EAGAIN);
  ERR(accept4(l, NULL, NULL, SOCK_CLOEXEC), EAGAIN);
  SYS(c = connect_to(AF_INET, SOCK_STREAM, &a, sizeof a));
  REQ(wait_in(l), "the listener did not become readable");
  int s;
  SYS(s = accept4(l, NULL, NULL, SOCK_NONBLOCK));
  REQ(fcntl(s, F_GETFL) & O_NONBLOCK, "accept4(SOCK_NONBLOCK) gave a blocking socket");
  ERR(accept(l, NULL, NULL), EAGAIN);
  // A socket that does not listen cannot accept.
  ERR(accept(c, NULL, NULL), EINVAL);
  ok();
}

static void t_tcp_linger_reset(void) {
  int c, s;
  char b[8];
  SYS(tcp_pair(&c, &s));
  struct linger lg = {1, 0};
  SYS(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
  socklen_t len = sizeof lg;
  SYS(getsockopt(c, SOL_SOCKET, SO_LINGER, &lg, &len));
  REQ(lg.l_onoff == 1 && lg.l_linger == 0, "SO_LINGER reads back {%d, %d}", lg.l_onoff, lg.l_linger);
  close(c);
  ERR(read(s, b, sizeof b), ECONNRESET);
  EQ(read(s, b, sizeof b), 0);
  ERR(send(s, "x", 1, MSG_NOSIGNAL), EPIPE);
  ok();
}

static void t_tcp_close_unread(void) {
  // Closing with unread data sends a reset instead of a FIN.
  int c, s;
  char b[8];
  SYS(tcp_pair(&c, &s));
  EQ(write(c, "unread", 6), 6);
  REQ(wait_in(s), "the data did not arrive");
  close(s);
  ERR(read(c, b, sizeof b), ECONNRESET);
  ok();
}

static void t_tcp_fionread_peek(void) {
  int c, s, n = -1;
  char b[16];
  SYS(tcp_pair(&c, &s));
  SYS(ioctl(s, FIONREAD, &n));
  REQ(n == 0, "FIONREAD of an idle socket = %d", n);
  EQ(write(c, "0123456789", 10), 10);
  REQ(wait_in(s), "the data did not arrive");
  SYS(ioctl(s, FIONREAD, &n));
  REQ(n == 10, "FIONREAD = %d, expected 10", n);
  EQ(recv(s, b, 4, MSG_PEEK), 4);
  EQ(recv(s, b, sizeof b, MSG_PEEK), 10);
  SYS(ioctl(s, FIONREAD, &n));
  REQ(n == 10, "FIONREAD after MSG_PEEK = %d, expected 10", n);
  EQ(recv(s, b, 3, 0), 3);
  REQ(!memcmp(b, "012", 3), "data garbled");
  SYS(ioctl(s, FIONREAD, &n));
  REQ(n == 7, "FIONREAD after reading 3 = %d, expected 7", n);
  int l;
  struct sockaddr_in a;
  lo4(&a, 0);
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  ERR(ioctl(l, FIONREAD, &n), EINVAL);
  ok();
}

static void t_tcp_waitall(void) {
  // MSG_WAITALL waits for the whole amount, which a child sends in three pieces.
  struct sockaddr_in a;
  lo4(&a, 0);
  int l, s;
  SYS(l = listener(AF_INET, SOCK_STREAM, &a, sizeof a));
  pid_t p = xfork();
  SYS(p);
  if (p == 0) {
    int c;
    SYS(c = connect_to(AF_INET, SOCK_STREAM, &a, sizeof a));
    const char *parts[3] = {"abc", "defgh", "ij"};
    for (int i = 0; i < 3; i++) {
      msleep(20);
      EQ(write(c, parts[i], strlen(parts[i])), (long)strlen(parts[i]));
    }
    char b;
    EQ(read(c, &b, 1), 0);
    _exit(0);
  }
  SYS(s = accept(l, NULL, NULL));
  char b[16];
  EQ(recv(s, b, 10, MSG_WAITALL), 10);
  REQ(!memcmp(b, "abcdefghij", 10), "data garbled");
  close(s);
  if (!reap(p)) return;
  ok();
}

static void t_tcp_unconnected(void) {
  int t, u;
  char b[4];
  struct sockaddr_in g;
  socklen_t gl = sizeof g;
  SYS(t = socket(AF_INET, SOCK_STREAM, 0));
  ERR(send(t, "x", 1, MSG_NOSIGNAL), EPIPE);
  ERR(recv(t, b, sizeof b, 0), ENOTCONN);
  ERR(getpeername(t, (struct sockaddr *)&g, &gl), ENOTCONN);
  ERR(shutdown(t, SHUT_RDWR), ENOTCONN);
  ERR(accept(t, NULL, NULL), EINVAL);
  SYS(u = socket(AF_INET, SOCK_DGRAM, 0));
  ERR(listen(u, 1), EOPNOTSUPP);
  ERR(accept(u, NULL, NULL), EOPNOTSUPP);
  ok();
}

static void t_tcp_poll(void) {
  int t, c, s;
  SYS(t = socket(AF_INET, SOCK_STREAM, 0));
  PMASK(t, POLLOUT | POLLHUP, "unconnected TCP socket");
  SYS(tcp_pair(&c, &s));
  PMASK(c, POLLOUT, "idle connection");
  EQ(write(s, "x", 1), 1);
  REQ(wait_in(c), "the data did not arrive");
  PMASK(c, POLLIN | POLLOUT, "data pending");
  SYS(shutdown(s, SHUT_WR));
  struct pollfd p = {c, POLLRDHUP, 0};
  EQ(poll(&p, 1, 5000), 1);
  PMASK(c, POLLIN | POLLOUT | POLLRDHUP, "data pending, peer did SHUT_WR");
  PMASK(s, POLLOUT, "after own SHUT_WR");
  SYS(shutdown(c, SHUT_WR));
  p.fd = s;
  p.events = POLLRDHUP;
  EQ(poll(&p, 1, 5000), 1);
  PMASK(s, POLLIN | POLLOUT | POLLRDHUP | POLLHUP, "both directions shut");
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * TCP over ::1, and dual stack
 * ---------------------------------------------------------------------------------------------- */

struct echo_srv {
  int l;
  int err;
};
static void *echo_srv_main(void *arg) {
  struct echo_srv *e = arg;
  int s = accept(e->l, NULL, NULL);
  if (s < 0) {
    e->err = errno;
    return NULL;
  }
  e->err = echo_loop(s);
  return NULL;
}

static void t_tcp6_loopback(void) {
  struct sockaddr_in6 a, g, cn;
  socklen_t gl;
  lo6(&a, 0);
  int l, c, s;
  SYS(l = listener(AF_INET6, SOCK_STREAM, &a, sizeof a));
  REQ(a.sin6_port != 0 && IN6_IS_ADDR_LOOPBACK(&a.sin6_addr) && a.sin6_scope_id == 0, "listener name is not [::1]:port");
  SYS(c = connect_to(AF_INET6, SOCK_STREAM, &a, sizeof a));
  gl = sizeof g;
  SYS(s = accept(l, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof g && g.sin6_family == AF_INET6, "accept's address: len %u, expected 28", (unsigned)gl);
  gl = sizeof cn;
  SYS(getsockname(c, (struct sockaddr *)&cn, &gl));
  REQ(IN6_IS_ADDR_LOOPBACK(&cn.sin6_addr) && cn.sin6_port == g.sin6_port, "accept's address is not the client's getsockname");
  gl = sizeof g;
  SYS(getpeername(c, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &a, sizeof a), "the client's getpeername is not the listener's name");
  GETI(s, SOL_SOCKET, SO_DOMAIN, AF_INET6);
  close(s);
  close(c);
  // 100 KB both ways: an echo thread, a writer thread, and this one reading.
  struct echo_srv e = {l, 0};
  pthread_t t;
  REQ(spawn(&t, echo_srv_main, &e) == 0, "pthread_create failed");
  SYS(c = connect_to(AF_INET6, SOCK_STREAM, &a, sizeof a));
  exchange_big(c);
  pthread_join(t, NULL);
  if (reported) return;
  REQ(e.err == 0, "echo thread: %s", en(e.err));
  ok();
}

static void t_tcp6_dualstack(void) {
  struct sockaddr_in6 a, g;
  int l, c, s, off = 0;
  SYS(l = socket(AF_INET6, SOCK_STREAM, 0));
  GETI(l, IPPROTO_IPV6, IPV6_V6ONLY, 0);
  SYS(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off));
  GETI(l, IPPROTO_IPV6, IPV6_V6ONLY, 0);
  memset(&a, 0, sizeof a);
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_any;
  SYS(bind(l, (struct sockaddr *)&a, sizeof a));
  socklen_t gl = sizeof a;
  SYS(getsockname(l, (struct sockaddr *)&a, &gl));
  SYS(listen(l, 4));
  struct sockaddr_in v4, cn;
  lo4(&v4, ntohs(a.sin6_port));
  SYS(c = connect_to(AF_INET, SOCK_STREAM, &v4, sizeof v4));
  gl = sizeof g;
  SYS(s = accept(l, (struct sockaddr *)&g, &gl));
  REQ(gl == sizeof g && g.sin6_family == AF_INET6, "accept's address: len %u family %d", (unsigned)gl, g.sin6_family);
  static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  REQ(!memcmp(&g.sin6_addr, mapped, 16), "the peer address is not ::ffff:127.0.0.1");
  gl = sizeof cn;
  SYS(getsockname(c, (struct sockaddr *)&cn, &gl));
  REQ(g.sin6_port == cn.sin_port, "the peer port is not the client's port");
  gl = sizeof g;
  SYS(getsockname(s, (struct sockaddr *)&g, &gl));
  REQ(!memcmp(&g.sin6_addr, mapped, 16) && g.sin6_port == a.sin6_port, "the accepted socket's name is not [::ffff:127.0.0.1]:listener port");
  GETI(s, SOL_SOCKET, SO_DOMAIN, AF_INET6);
  EQ(write(c, "v4", 2), 2);
  char b[4];
  EQ(readn(s, b, 2), 2);
  // IPV6_V6ONLY cannot change once bound; set on a fresh socket it reads back 1.
  int on = 1;
  ERR(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on), EINVAL);
  int f;
  SYS(f = socket(AF_INET6, SOCK_STREAM, 0));
  SYS(setsockopt(f, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on));
  GETI(f, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * UDP over 127.0.0.1
 * ---------------------------------------------------------------------------------------------- */

static int udp_bound(struct sockaddr_in *a) {
  lo4(a, 0);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  socklen_t len = sizeof *a;
  if (bind(fd, (struct sockaddr *)a, sizeof *a) < 0 || getsockname(fd, (struct sockaddr *)a, &len) < 0) return -1;
  return fd;
}

static void t_udp_sendto(void) {
  struct sockaddr_in a, b, g;
  socklen_t gl;
  int x, y, u;
  char buf[16];
  SYS(x = udp_bound(&a));
  SYS(y = udp_bound(&b));
  REQ(a.sin_port != 0 && a.sin_port != b.sin_port, "ports not distinct");
  EQ(sendto(x, "hello", 5, 0, (struct sockaddr *)&b, sizeof b), 5);
  gl = sizeof g;
  EQ(recvfrom(y, buf, sizeof buf, 0, (struct sockaddr *)&g, &gl), 5);
  REQ(same_addr(&g, gl, &a, sizeof a), "recvfrom's address is not the sender's getsockname");
  EQ(sendto(y, "reply", 5, 0, (struct sockaddr *)&g, gl), 5);
  gl = sizeof g;
  EQ(recvfrom(x, buf, sizeof buf, 0, (struct sockaddr *)&g, &gl), 5);
  REQ(same_addr(&g, gl, &b, sizeof b), "the reply's address is not the replier's");
  // An unbound sender gets a port (and address) on its first sendto.
  SYS(u = socket(AF_INET, SOCK_DGRAM, 0));
  EQ(sendto(u, "auto", 4, 0, (struct sockaddr *)&b, sizeof b), 4);
  struct sockaddr_in un;
  gl = sizeof un;
  SYS(getsockname(u, (struct sockaddr *)&un, &gl));
  REQ(un.sin_port != 0, "no port after sendto");
  gl = sizeof g;
  EQ(recvfrom(y, buf, sizeof buf, 0, (struct sockaddr *)&g, &gl), 4);
  REQ(g.sin_port == un.sin_port && g.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "the sender port does not match its getsockname");
  ERR(send(x, "x", 1, 0), EDESTADDRREQ);
  ERR(recv(x, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
  ok();
}

static void t_udp_connect(void) {
  struct sockaddr_in a, b, g;
  socklen_t gl;
  int x, y, z;
  char buf[16];
  SYS(x = udp_bound(&a));
  SYS(y = udp_bound(&b));
  SYS(connect(x, (struct sockaddr *)&b, sizeof b));
  gl = sizeof g;
  SYS(getpeername(x, (struct sockaddr *)&g, &gl));
  REQ(same_addr(&g, gl, &b, sizeof b), "getpeername is not the connected address");
  EQ(send(x, "ping", 4, 0), 4);
  EQ(recv(y, buf, sizeof buf, 0), 4);
  // A datagram from a third socket does not reach the connected one; its peer's does.
  struct sockaddr_in c3;
  SYS(z = udp_bound(&c3));
  EQ(sendto(z, "stranger", 8, 0, (struct sockaddr *)&a, sizeof a), 8);
  EQ(sendto(y, "peer", 4, 0, (struct sockaddr *)&a, sizeof a), 4);
  EQ(recv(x, buf, sizeof buf, 0), 4);
  REQ(!memcmp(buf, "peer", 4), "a connected UDP socket took a datagram from another address");
  // sendto with an address on a connected UDP socket goes to that address.
  EQ(sendto(x, "direct", 6, 0, (struct sockaddr *)&c3, sizeof c3), 6);
  EQ(recv(z, buf, sizeof buf, 0), 6);
  // AF_UNSPEC disconnects.
  struct sockaddr unspec = {.sa_family = AF_UNSPEC};
  SYS(connect(x, &unspec, sizeof unspec));
  gl = sizeof g;
  ERR(getpeername(x, (struct sockaddr *)&g, &gl), ENOTCONN);
  ok();
}

static void t_udp_boundaries(void) {
  struct sockaddr_in a, b;
  int x, y, n;
  static char big[1000], buf[2000];
  memset(big, 'u', sizeof big);
  SYS(x = udp_bound(&a));
  SYS(y = udp_bound(&b));
  SYS(connect(x, (struct sockaddr *)&b, sizeof b));
  EQ(send(x, big, 1, 0), 1);
  EQ(send(x, big, 100, 0), 100);
  EQ(send(x, big, 0, 0), 0);
  EQ(send(x, big, 1000, 0), 1000);
  EQ(send(x, "0123456789", 10, 0), 10);
  REQ(wait_in(y), "nothing arrived");
  SYS(ioctl(y, FIONREAD, &n));
  REQ(n == 1, "FIONREAD = %d, expected 1 (the first datagram's size)", n);
  EQ(recv(y, buf, sizeof buf, 0), 1);
  EQ(recv(y, buf, sizeof buf, 0), 100);
  EQ(recv(y, buf, sizeof buf, 0), 0);
  EQ(recv(y, buf, sizeof buf, 0), 1000);
  struct iovec iov = {buf, 4};
  struct msghdr m = {0};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  EQ(recvmsg(y, &m, MSG_TRUNC), 10);
  REQ(m.msg_flags & MSG_TRUNC, "msg_flags lacks MSG_TRUNC (0x%x)", m.msg_flags);
  ERR(recv(y, buf, sizeof buf, MSG_DONTWAIT), EAGAIN);
  // A datagram larger than the maximum.
  static char huge[70000];
  ERR(send(x, huge, sizeof huge, 0), EMSGSIZE);
  ok();
}

static void t_udp_mmsg(void) {
  struct sockaddr_in a, b;
  int x, y;
  SYS(x = udp_bound(&a));
  SYS(y = udp_bound(&b));
  const char *texts[3] = {"first", "second!", "3"};
  struct mmsghdr out[3], in[3];
  struct iovec oiov[3], iiov[3];
  char bufs[3][32];
  struct sockaddr_in from[3];
  memset(out, 0, sizeof out);
  memset(in, 0, sizeof in);
  for (int i = 0; i < 3; i++) {
    oiov[i].iov_base = (void *)texts[i];
    oiov[i].iov_len = strlen(texts[i]);
    out[i].msg_hdr.msg_iov = &oiov[i];
    out[i].msg_hdr.msg_iovlen = 1;
    out[i].msg_hdr.msg_name = &b;
    out[i].msg_hdr.msg_namelen = sizeof b;
    iiov[i].iov_base = bufs[i];
    iiov[i].iov_len = sizeof bufs[i];
    in[i].msg_hdr.msg_iov = &iiov[i];
    in[i].msg_hdr.msg_iovlen = 1;
    in[i].msg_hdr.msg_name = &from[i];
    in[i].msg_hdr.msg_namelen = sizeof from[i];
  }
  EQ(sendmmsg(x, out, 3, 0), 3);
  for (int i = 0; i < 3; i++) REQ(out[i].msg_len == strlen(texts[i]), "sendmmsg msg_len[%d] = %u", i, out[i].msg_len);
  EQ(recvmmsg(y, in, 3, 0, NULL), 3);
  for (int i = 0; i < 3; i++) {
    REQ(in[i].msg_len == strlen(texts[i]) && !memcmp(bufs[i], texts[i], in[i].msg_len), "recvmmsg message %d: %u bytes, or other bytes", i, in[i].msg_len);
    REQ(same_addr(&from[i], in[i].msg_hdr.msg_namelen, &a, sizeof a), "recvmmsg message %d: the sender address is not the sender's", i);
  }
  // Nothing left: a nonblocking recvmmsg says EAGAIN.
  ERR(recvmmsg(y, in, 3, MSG_DONTWAIT, NULL), EAGAIN);
  // MSG_WAITFORONE: returns what is there after the first.
  EQ(sendmmsg(x, out, 2, 0), 2);
  REQ(wait_in(y), "nothing arrived");
  msleep(20);
  for (int i = 0; i < 3; i++) in[i].msg_hdr.msg_namelen = sizeof from[i];
  EQ(recvmmsg(y, in, 3, MSG_WAITFORONE, NULL), 2);
  ok();
}

static void t_udp_refused(void) {
  // A connected UDP socket hears the ICMP port unreachable: the next call says ECONNREFUSED.
  struct sockaddr_in a;
  int h, c;
  char b[4];
  SYS(h = udp_bound(&a));
  close(h); // the port is free now (and ephemeral: nobody else is likely to take it at once)
  SYS(c = socket(AF_INET, SOCK_DGRAM, 0));
  SYS(connect(c, (struct sockaddr *)&a, sizeof a));
  EQ(send(c, "x", 1, 0), 1);
  ERR(recv(c, b, sizeof b, 0), ECONNREFUSED);
  ERR(recv(c, b, sizeof b, MSG_DONTWAIT), EAGAIN); // the error is reported once
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * socket(2) itself
 * ---------------------------------------------------------------------------------------------- */

static void t_socket_errors(void) {
  ERR(socket(12345, SOCK_STREAM, 0), EAFNOSUPPORT);
  ERR(socket(AF_INET, SOCK_STREAM, IPPROTO_UDP), EPROTONOSUPPORT);
  ERR(socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
  ERR(socket(AF_UNIX, SOCK_STREAM, 7), EPROTONOSUPPORT);
  ERR(socket(AF_INET, 77, 0), EINVAL);
  ERR(socket(AF_INET, SOCK_STREAM | 0x10000000, 0), EINVAL);
  int fd;
  SYS(fd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP));
  SYS(fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP));
  SYS(fd = socket(AF_UNIX, SOCK_STREAM, PF_UNIX));
  int p[2];
  SYS(pipe(p));
  struct sockaddr_in g;
  socklen_t gl = sizeof g;
  ERR(getsockname(p[0], (struct sockaddr *)&g, &gl), ENOTSOCK);
  ERR(send(p[1], "x", 1, 0), ENOTSOCK);
  ERR(listen(p[0], 1), ENOTSOCK);
  ERR(accept(p[0], NULL, NULL), ENOTSOCK);
  ERR(getsockname(999, (struct sockaddr *)&g, &gl), EBADF);
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * netcheck mode, main
 * ---------------------------------------------------------------------------------------------- */

static void on_netcheck_alarm(int s) { (void)s; }

static int netcheck(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_netcheck_alarm; // no SA_RESTART: a hung connect returns EINTR after 10 s
  sigaction(SIGALRM, &sa, NULL);
  alarm(10);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    say("connect 192.0.2.1: socket %s\n", strerrorname_np(errno));
    return 0;
  }
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(80);
  a.sin_addr.s_addr = inet_addr("192.0.2.1");
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) say("connect 192.0.2.1: connected\n");
  else say("connect 192.0.2.1: %s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "E?");
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "netcheck") == 0) return netcheck();
  if (argc > 2 || (argc == 2 && argv[1][0] != '/')) {
    say("usage: net [DIR (absolute, default /tmp)] | net netcheck\n");
    return 2;
  }
  if (argc == 2) dir = argv[1];
  if (strlen(dir) > 70) {
    say("net: DIR is too long for sun_path (at most 70 bytes)\n");
    return 2;
  }
  mypid = getpid();
  kidmsg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (kidmsg == MAP_FAILED) {
    say("net: mmap: %s\n", en(errno));
    return 1;
  }
  struct sigaction sa = {0};
  sa.sa_handler = on_alarm; // no SA_RESTART
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);

  run("unix-socketpair-echo", t_unix_socketpair_echo);
  run("unix-socketpair-flags", t_unix_socketpair_flags);
  run("unix-stream-100k-fork", t_unix_100k_fork);
  run("unix-bind-path", t_unix_bind_path);
  run("unix-accept4-flags", t_unix_accept4_flags);
  run("unix-names-path", t_unix_names_path);
  run("unix-names-abstract", t_unix_names_abstract);
  run("unix-autobind", t_unix_autobind);
  run("unix-connect-errors", t_unix_connect_errors);
  run("unix-bind-errors", t_unix_bind_errors);
  run("unix-shutdown", t_unix_shutdown_wr);
  run("unix-epipe-sigpipe", t_unix_epipe);
  run("unix-close-unread-reset", t_unix_close_unread);
  run("unix-listener-close-reset", t_unix_listener_close);
  run("unix-nonblock-eagain", t_unix_nonblock);
  run("unix-rcvtimeo", t_unix_rcvtimeo);
  run("unix-poll", t_unix_poll);
  run("unix-epoll-listen", t_unix_epoll_listen);
  run("unix-peercred", t_unix_peercred);
  run("unix-peercred-fork", t_unix_peercred_fork);
  run("unix-sockopts", t_unix_sockopts);
  run("unix-enoprotoopt", t_unix_enoprotoopt);
  run("unix-fionread", t_unix_fionread);
  run("scm-rights-fork", t_scm_rights_fork);
  run("scm-rights-local", t_scm_rights_local);
  run("scm-credentials", t_scm_credentials);
  run("unix-dgram-boundaries", t_unix_dgram_boundaries);
  run("unix-dgram-recvfrom", t_unix_dgram_recvfrom);
  run("unix-dgram-trunc", t_unix_dgram_trunc);
  run("unix-dgram-sendto-errors", t_unix_dgram_sendto_errors);
  run("unix-dgram-connect", t_unix_dgram_connect);
  run("unix-seqpacket", t_unix_seqpacket);
  run("tcp-listen-name", t_tcp_listen_name);
  run("tcp-names", t_tcp_names);
  run("tcp-100k-fork", t_tcp_100k_fork);
  run("tcp-half-close", t_tcp_half_close);
  run("tcp-refused", t_tcp_refused);
  run("tcp-bind-errors", t_tcp_bind_errors);
  run("tcp-reuseaddr-rebind", t_tcp_reuseaddr_rebind);
  run("tcp-sockopts", t_tcp_sockopts);
  run("tcp-enoprotoopt", t_tcp_enoprotoopt);
  run("tcp-nonblock-connect", t_tcp_nonblock_connect);
  run("tcp-accept-eagain", t_tcp_accept_eagain);
  run("tcp-linger-reset", t_tcp_linger_reset);
  run("tcp-close-unread-reset", t_tcp_close_unread);
  run("tcp-fionread-peek", t_tcp_fionread_peek);
  run("tcp-waitall", t_tcp_waitall);
  run("tcp-unconnected", t_tcp_unconnected);
  run("tcp-poll", t_tcp_poll);
  run("tcp6-loopback", t_tcp6_loopback);
  run("tcp6-dualstack", t_tcp6_dualstack);
  run("udp-sendto-recvfrom", t_udp_sendto);
  run("udp-connect", t_udp_connect);
  run("udp-boundaries", t_udp_boundaries);
  run("udp-mmsg", t_udp_mmsg);
  run("udp-refused", t_udp_refused);
  run("socket-errors", t_socket_errors);

  say("done %d\n", checks);
  return failures ? 1 : 0;
}
