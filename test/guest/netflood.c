// A hostile program for the socket layer: it raises RLIMIT_NOFILE to its hard limit, then in turn
// creates sockets, TCP and AF_UNIX listeners, TCP and AF_UNIX connections to its own listeners that it
// never accepts (nonblocking connects filling the backlog), socketpairs, fills socket buffers without
// reading them, and makes unreachable SCM_RIGHTS cycles (a socketpair sent over itself, then closed).
// Each phase goes on until a call fails or a bound (100000 iterations; 4096 for TCP listeners and
// connections; 30000 SCM cycles), and frees everything before the next. It asserts nothing: it prints
// what stopped each phase, e.g.
//
//   nofile limit 20000
//   socket stopped at 19997: EMFILE
//   unix connect stopped at 9: EAGAIN
//   ...
//   netflood done
//
// and exits 0. The numbers differ between hosts and kernels; the point of running it in mapvisor is
// that the sandbox's memory stays bounded and every phase ends (natively it takes well under 5 s).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_ITER 100000
// TCP phases stop earlier: every listener and connection takes an ephemeral port of the host's
// loopback when run natively (Linux has ~28000), and bind/connect get slow as the range fills.
#define MAX_TCP 4096
// Unreachable SCM_RIGHTS cycles: each one leaves two sockets only a garbage collector can free.
#define MAX_SCM 30000

static int fds[2 * MAX_ITER + 16];
static int nfds;

static void say(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0) (void)!write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static const char *ename(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}

static void keep(int fd) {
  if (fd >= 0) fds[nfds++] = fd;
}

static void close_all(void) {
  for (int i = 0; i < nfds; i++) close(fds[i]);
  nfds = 0;
}

/** How a phase ended: at iteration n with errno e (what names the failing call when not obvious). */
static void stopped(const char *phase, int n, int e, const char *what) {
  if (what) say("%s stopped at %d: %s (%s)\n", phase, n, ename(e), what);
  else say("%s stopped at %d: %s\n", phase, n, ename(e));
}
static void unstopped(const char *phase, int max) { say("%s did not stop after %d\n", phase, max); }

static void lo4(struct sockaddr_in *a, int port) {
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a->sin_port = htons(port);
}

static void phase_sockets(void) {
  for (int i = 0; i < MAX_ITER; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return stopped("socket", i, errno, NULL), close_all();
    keep(fd);
  }
  unstopped("socket", MAX_ITER);
  close_all();
}

static void phase_listeners(void) {
  for (int i = 0; i < MAX_TCP; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return stopped("tcp listen", i, errno, "socket"), close_all();
    keep(fd);
    struct sockaddr_in a;
    lo4(&a, 0);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return stopped("tcp listen", i, errno, "bind"), close_all();
    if (listen(fd, 4) < 0) return stopped("tcp listen", i, errno, "listen"), close_all();
  }
  unstopped("tcp listen", MAX_TCP);
  close_all();
}

/** AF_UNIX listeners with autobound (abstract) names. */
static void phase_unix_listeners(void) {
  for (int i = 0; i < MAX_ITER; i++) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return stopped("unix listen", i, errno, "socket"), close_all();
    keep(fd);
    sa_family_t fam = AF_UNIX;
    if (bind(fd, (struct sockaddr *)&fam, sizeof fam) < 0) return stopped("unix listen", i, errno, "bind"), close_all();
    if (listen(fd, 4) < 0) return stopped("unix listen", i, errno, "listen"), close_all();
  }
  unstopped("unix listen", MAX_ITER);
  close_all();
}

/** Nonblocking connects to a listener (backlog 8) that never accepts. */
static void phase_tcp_connects(void) {
  struct sockaddr_in a;
  lo4(&a, 0);
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 8) < 0 || getsockname(l, (struct sockaddr *)&a, &len) < 0)
    return stopped("tcp connect", 0, errno, "listener"), close_all();
  keep(l);
  for (int i = 0; i < MAX_TCP; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return stopped("tcp connect", i, errno, "socket"), close_all();
    keep(fd);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) return stopped("tcp connect", i, errno, NULL), close_all();
  }
  unstopped("tcp connect", MAX_TCP);
  close_all();
}

static void phase_unix_connects(int type, const char *phase) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "mapvisor-netflood-%d-%d", (int)getpid(), type);
  socklen_t len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
  int l = socket(AF_UNIX, type, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 8) < 0) return stopped(phase, 0, errno, "listener"), close_all();
  keep(l);
  for (int i = 0; i < MAX_ITER; i++) {
    int fd = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
    if (fd < 0) return stopped(phase, i, errno, "socket"), close_all();
    keep(fd);
    if (connect(fd, (struct sockaddr *)&a, len) < 0) return stopped(phase, i, errno, NULL), close_all();
  }
  unstopped(phase, MAX_ITER);
  close_all();
}

static void phase_socketpairs(void) {
  for (int i = 0; i < MAX_ITER; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return stopped("socketpair", i, errno, NULL), close_all();
    keep(sv[0]);
    keep(sv[1]);
  }
  unstopped("socketpair", MAX_ITER);
  close_all();
}

/** Nonblocking writes of 4 KiB into fd until it says EAGAIN; returns the bytes written. */
static long fill(int fd, const char *phase, int report) {
  static char buf[4096];
  long total = 0;
  for (int i = 0; i < MAX_ITER; i++) {
    ssize_t w = send(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0) {
      if (report) stopped(phase, i, errno, NULL);
      return total;
    }
    total += w;
  }
  if (report) unstopped(phase, MAX_ITER);
  return total;
}

static void phase_fill(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
    keep(sv[0]);
    keep(sv[1]);
    fill(sv[0], "unix stream send", 1);
  } else stopped("unix stream send", 0, errno, "socketpair");
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0) {
    keep(sv[0]);
    keep(sv[1]);
    fill(sv[0], "unix dgram send", 1);
  } else stopped("unix dgram send", 0, errno, "socketpair");
  close_all();

  struct sockaddr_in a;
  lo4(&a, 0);
  socklen_t len = sizeof a;
  int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), s = -1;
  keep(l);
  keep(c);
  if (l >= 0 && c >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0 && getsockname(l, (struct sockaddr *)&a, &len) == 0 &&
      connect(c, (struct sockaddr *)&a, sizeof a) == 0 && (s = accept(l, NULL, NULL)) >= 0) {
    keep(s);
    fill(c, "tcp send", 1);
  } else stopped("tcp send", 0, errno, "setup");
  close_all();

  // UDP to an own socket that never reads: Linux drops what does not fit and never says EAGAIN.
  int u = socket(AF_INET, SOCK_DGRAM, 0), v = socket(AF_INET, SOCK_DGRAM, 0);
  keep(u);
  keep(v);
  lo4(&a, 0);
  len = sizeof a;
  if (u >= 0 && v >= 0 && bind(u, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(u, (struct sockaddr *)&a, &len) == 0 && connect(v, (struct sockaddr *)&a, sizeof a) == 0)
    fill(v, "udp send", 1);
  else stopped("udp send", 0, errno, "setup");
  close_all();

  // Many socketpairs, each full: at most 128 of them (natively a full pair holds ~200 KiB or more).
  long total = 0;
  int i;
  for (i = 0; i < 128; i++) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) break;
    keep(sv[0]);
    keep(sv[1]);
    total += fill(sv[0], NULL, 0);
  }
  say("filled %d socketpairs\n", i);
  (void)total;
  close_all();
}

/** A socket sent over itself and closed: an in-flight cycle only a garbage collector frees. */
static void phase_scm_cycles(void) {
  for (int i = 0; i < MAX_SCM; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0) return stopped("scm cycle", i, errno, "socketpair");
    char ctrl[CMSG_SPACE(sizeof(int) * 2)];
    memset(ctrl, 0, sizeof ctrl);
    struct iovec iov = {"c", 1};
    struct msghdr m = {0};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl;
    m.msg_controllen = sizeof ctrl;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * 2);
    memcpy(CMSG_DATA(c), sv, sizeof sv);
    // Both ends go into sv[1]'s queue (sent from sv[0]); then both are closed.
    int r = sendmsg(sv[0], &m, MSG_DONTWAIT);
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    if (r < 0) return stopped("scm cycle", i, e, NULL);
  }
  unstopped("scm cycle", MAX_SCM);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  alarm(60); // a last resort: every phase is bounded
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rlim_t want = rl.rlim_max;
    if (want == RLIM_INFINITY || want > 2 * MAX_ITER) want = 2 * MAX_ITER; // fds[] holds that many
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) say("setrlimit: %s\n", ename(errno));
    getrlimit(RLIMIT_NOFILE, &rl);
    say("nofile limit %llu\n", (unsigned long long)rl.rlim_cur);
  } else say("getrlimit: %s\n", ename(errno));
  phase_sockets();
  phase_listeners();
  phase_unix_listeners();
  phase_tcp_connects();
  phase_unix_connects(SOCK_STREAM, "unix connect");
  phase_unix_connects(SOCK_SEQPACKET, "unix seqpacket connect");
  phase_socketpairs();
  phase_fill();
  phase_scm_cycles();
  say("netflood done\n");
  return 0;
}
