// build: -pthread
// The process model: fork and copy-on-write, shared anonymous memory, wait4/waitid/WNOHANG, SIGCHLD
// (handler and SIG_IGN auto-reaping), pipes between processes, SIGPIPE, execve of itself (argv, envp,
// O_CLOEXEC, signal dispositions, pid kept), execve errors, process groups and sessions, vfork,
// orphans reparented, exit_group of a multithreaded child, fork from a thread.
//
// Prints one line per check, in a fixed order and without pids: `ok NAME`, `FAIL NAME: detail` or
// `skip NAME: reason`, then `procs: all N checks passed` (exit 0) or `procs: K of N checks FAILED`
// (exit 1). A check is bounded in time, so that a broken kernel makes it fail rather than hang: every
// child arms alarm(10); after 30 s the parent's watchdog SIGKILLs the check's children (the check then
// fails, saying so) and after 40 s it prints `FAIL NAME: timed out` and ends the program. The watchdog
// is alarm(30) where alarm works, else (ENOSYS; noted on stderr) a thread of the parent started at the
// beginning, so that every fork is then from a two-thread process.
//
//   procs                       run every check
//   procs exec-child ARG        (what the exec check runs) prints its argv, env, fds, signals, pid
//   procs exit-code N           _exit(N) (what the vfork+exec check runs)
//
// In mapvisor run it from an image (.cache/images/shell.img holds it as /guest/procs): the exec checks
// re-execute argv[0] (or /proc/self/exe when argv[0] has no slash), and two checks need a writable /tmp.
// Natively: pid 1 semantics (the orphan check) hold under `unshare -fp --mount-proc ./procs`; without a
// pid namespace the orphan may be adopted by a subreaper and its line says so.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ------------------------------------------------------------------------------------------------
 * Output and bookkeeping
 * ---------------------------------------------------------------------------------------------- */

static int checks, failures;
static const char *volatile current = "start";
static const char *self_path;

/** The watchdog's state: the children of the current check, and whether it killed them. */
#define MAX_KIDS 16
static volatile pid_t kids[MAX_KIDS];
static volatile int nkids;
static volatile int watchdog_fired;

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

static void ok(void) {
  checks++;
  say("ok %s\n", current);
}
static void fail(const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  checks++;
  failures++;
  say("FAIL %s: %s%s\n", current, detail, watchdog_fired ? " (the watchdog SIGKILLed the check's children after 30 s)" : "");
}
static void skip(const char *why) { say("skip %s: %s\n", current, why); }

/** The watchdog's first stage: SIGKILL the check's children, so that its waits return and it fails. */
static void watchdog_kill(void) {
  watchdog_fired = 1;
  for (int i = 0; i < nkids && i < MAX_KIDS; i++) {
    kill(-kids[i], SIGKILL); // its group, when it made one
    kill(kids[i], SIGKILL);
  }
}

/** The last stage: the check itself is stuck; the program ends. */
static void watchdog_end(void) {
  char buf[256];
  int n = snprintf(buf, sizeof buf, "FAIL %s: timed out after 40 s\nprocs: stopped by the watchdog\n", current);
  if (n > 0) (void)!write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
  _exit(1);
}

static void on_watchdog(int sig) {
  (void)sig;
  if (watchdog_fired) watchdog_end();
  watchdog_kill();
  alarm(10);
}

static int have_alarm;
static volatile unsigned generation;

static double now_ms(void);

/** The watchdog where alarm does not work: a thread that looks at the current check every 100 ms. */
static void *watchdog_thread(void *arg) {
  (void)arg;
  // Take no signal meant for the process: a SIGCHLD a check waits for in sigsuspend must reach the
  // main thread (POSIX lets the kernel give a process-directed signal to any thread not blocking it).
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  unsigned gen = generation;
  double since = now_ms();
  for (;;) {
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    if (gen != generation) {
      gen = generation;
      since = now_ms();
      continue;
    }
    if (gen == 0) continue; // between checks
    double t = now_ms() - since;
    if (t > 40000) watchdog_end();
    if (t > 30000 && !watchdog_fired) watchdog_kill();
  }
  return NULL;
}

static void begin(const char *name) {
  current = name;
  nkids = 0;
  watchdog_fired = 0;
  generation = generation + 1 ? generation + 1 : 1;
  if (have_alarm) alarm(30);
}

/** fork, remembering the child for the watchdog. */
static pid_t xfork(void) {
  pid_t p = fork();
  if (p > 0 && nkids < MAX_KIDS) kids[nkids++] = p;
  return p;
}

/** First thing in every child: the watchdog is the parent's; a child just dies of SIGALRM in 10 s. */
static void child_start(void) {
  signal(SIGALRM, SIG_DFL);
  alarm(10);
}

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/** waitpid, retried on EINTR. */
static pid_t wait_for(pid_t pid, int *st, int flags) {
  pid_t r;
  do r = waitpid(pid, st, flags);
  while (r == -1 && errno == EINTR);
  return r;
}

static const char *describe(int st) {
  static char buf[64];
  if (WIFEXITED(st)) snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) snprintf(buf, sizeof buf, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else snprintf(buf, sizeof buf, "status 0x%x", st);
  return buf;
}

/** Reaps `pid`, which must exit with status 0; returns 1 when it did, else reports the failure. */
static int reap_ok(pid_t pid, const char *what) {
  int st = 0;
  pid_t r = wait_for(pid, &st, 0);
  if (r != pid) return fail("waitpid(%s) returned %d (%s)", what, (int)r, strerror(errno)), 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("%s %s", what, describe(st)), 0;
  return 1;
}

static int read_full(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return (int)got;
    got += r;
  }
  return (int)got;
}

static int write_full(int fd, const void *buf, size_t n) {
  size_t put = 0;
  while (put < n) {
    ssize_t w = write(fd, (const char *)buf + put, n - put);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    put += w;
  }
  return 0;
}

/** Blocks until one byte arrives on fd (0: it did; -1: EOF or error). */
static int await_byte(int fd) {
  char c;
  return read_full(fd, &c, 1) == 1 ? 0 : -1;
}
static void send_byte(int fd) { (void)!write(fd, "x", 1); }

/* ------------------------------------------------------------------------------------------------
 * fork and memory
 * ---------------------------------------------------------------------------------------------- */

static char bss_buf[8192];
static char data_buf[64] = "initialized data";
#define PAGE 4096

/** The regions a COW check looks at; bit i of a mask stands for region i. */
enum { R_BSS, R_DATA, R_HEAP_SMALL, R_HEAP_BIG, R_STACK, R_ANON0, R_ANON1, R_ANON2, R_COUNT };
static const char *const region_names[R_COUNT] = {"bss", "data", "small heap", "big heap (mmap'd by malloc)", "stack", "anon page touched before fork", "anon page first written by the parent after fork", "anon page first written by the child after fork"};

static void mask_names(unsigned mask, char *out, size_t size) {
  out[0] = 0;
  for (int i = 0; i < R_COUNT; i++)
    if (mask & (1u << i)) snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? ", " : "", region_names[i]);
}

static void check_fork_cow(void) {
  begin("fork-cow");
  char stack_buf[2048];
  char *small = malloc(100), *big = malloc(512 * 1024);
  char *anon = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (!small || !big || anon == MAP_FAILED) return fail("allocation failed");
  // Before the fork: 'P' everywhere but in anon pages 1 and 2, which are never touched before it.
  memset(bss_buf, 'P', sizeof bss_buf);
  memset(data_buf, 'P', sizeof data_buf);
  memset(small, 'P', 100);
  memset(big, 'P', 512 * 1024);
  memset(stack_buf, 'P', sizeof stack_buf);
  memset(anon, 'P', PAGE);
  char *r[R_COUNT] = {bss_buf, data_buf, small, big, stack_buf, anon, anon + PAGE, anon + 2 * PAGE};
  size_t len[R_COUNT] = {sizeof bss_buf, sizeof data_buf, 100, 512 * 1024, sizeof stack_buf, PAGE, PAGE, PAGE};
  // `expect`: the byte every region should hold, per region.
#define SCAN(mask, expect)                                                        \
  do {                                                                            \
    for (int i = 0; i < R_COUNT; i++)                                              \
      for (size_t k = 0; k < len[i]; k += 97)                                      \
        if (r[i][k] != (expect)[i] || r[i][len[i] - 1] != (expect)[i]) {           \
          (mask) |= 1u << i;                                                       \
          break;                                                                   \
        }                                                                          \
  } while (0)
  int p2c[2], c2p[2];
  if (pipe(p2c) || pipe(c2p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(p2c[1]);
    close(c2p[0]);
    unsigned bad = 0;
    // The parent has written 'Q' into everything, including anon page 1: none of it shows here.
    if (await_byte(p2c[0])) _exit(100);
    const char before[R_COUNT] = {'P', 'P', 'P', 'P', 'P', 'P', 0, 0};
    SCAN(bad, before);
    for (int i = 0; i < R_COUNT; i++) memset(r[i], 'C', len[i]);
    const char mine[R_COUNT] = {'C', 'C', 'C', 'C', 'C', 'C', 'C', 'C'};
    SCAN(bad, mine);
    send_byte(c2p[1]);
    // The parent checks its copy, then writes again; still only 'C' here.
    if (await_byte(p2c[0])) _exit(101);
    SCAN(bad, mine);
    write_full(c2p[1], &bad, sizeof bad);
    _exit(0);
  }
  close(p2c[0]);
  close(c2p[1]);
  for (int i = 0; i < R_COUNT; i++)
    if (i != R_ANON2) memset(r[i], 'Q', len[i]);
  send_byte(p2c[1]);
  unsigned bad = 0;
  if (await_byte(c2p[0])) fail("the child ended early (no sync byte)");
  const char mine[R_COUNT] = {'Q', 'Q', 'Q', 'Q', 'Q', 'Q', 'Q', 0};
  SCAN(bad, mine);
  for (int i = 0; i < R_COUNT; i++) memset(r[i], 'R', len[i]);
  send_byte(p2c[1]);
  unsigned child_bad = 0;
  int got = read_full(c2p[0], &child_bad, sizeof child_bad);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  close(p2c[1]);
  close(c2p[0]);
  munmap(anon, 4 * PAGE);
  free(small);
  free(big);
  char names[512];
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (bad) return mask_names(bad, names, sizeof names), fail("the child's writes showed in the parent's %s", names);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) return fail("child %s (100, 101: it lost its sync pipe)", describe(st));
  if (got != sizeof child_bad) return fail("the child did not report what it saw");
  if (child_bad) return mask_names(child_bad, names, sizeof names), fail("the parent's writes (or the child's own lost) showed in the child's %s", names);
  ok();
#undef SCAN
}

static void check_shared_anon(void) {
  begin("fork-shared-anon");
  volatile long *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return fail("mmap: %s", strerror(errno));
  volatile long *page1 = (volatile long *)((char *)m + PAGE); // first touched after the fork, by the child
  m[0] = 1;
  m[1] = 0;
  int p2c[2], c2p[2];
  if (pipe(p2c) || pipe(c2p)) return fail("pipe: %s", strerror(errno));
  const long N = 100000;
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    int bad = 0;
    if (m[0] != 1) bad |= 1;
    m[0] = 2;
    *page1 = 77;
    send_byte(c2p[1]);
    if (await_byte(p2c[0])) _exit(100);
    if (m[0] != 3) bad |= 2; // the parent's write after the fork
    for (long i = 0; i < N; i++) __atomic_fetch_add(&m[1], 1, __ATOMIC_SEQ_CST);
    _exit(bad);
  }
  if (await_byte(c2p[0])) return fail("the child ended early");
  long saw0 = m[0], saw1 = *page1;
  m[0] = 3;
  send_byte(p2c[1]);
  for (long i = 0; i < N; i++) __atomic_fetch_add(&m[1], 1, __ATOMIC_SEQ_CST);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  long total = m[1];
  close(p2c[0]), close(p2c[1]), close(c2p[0]), close(c2p[1]);
  munmap((void *)m, 2 * PAGE);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (saw0 != 2) return fail("the parent read %ld where the child wrote 2", saw0);
  if (saw1 != 77) return fail("a page first touched by the child after the fork: the parent read %ld, not 77", saw1);
  if (!WIFEXITED(st) || WEXITSTATUS(st)) return fail("child %s (1: did not see the pre-fork value, 2: did not see the parent's write)", describe(st));
  if (total != 2 * N) return fail("atomic increments from both processes: %ld, expected %ld", total, 2 * N);
  ok();
}

static void check_getppid(void) {
  begin("getppid");
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    pid_t ids[2] = {getpid(), getppid()};
    write_full(p[1], ids, sizeof ids);
    _exit(0);
  }
  close(p[1]);
  pid_t ids[2] = {0, 0};
  int n = read_full(p[0], ids, sizeof ids);
  close(p[0]);
  if (!reap_ok(pid, "child")) return;
  if (n != sizeof ids) return fail("read %d bytes from the child", n);
  if (ids[0] != pid) return fail("the child's getpid is not what fork returned");
  if (ids[1] != getpid()) return fail("the child's getppid is not the parent's getpid");
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * wait
 * ---------------------------------------------------------------------------------------------- */

static void check_wait4_status(void) {
  begin("wait4-exit-status");
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) _exit(42);
  int st = -1;
  struct rusage ru;
  pid_t w;
  do w = wait4(pid, &st, 0, &ru);
  while (w == -1 && errno == EINTR);
  if (w != pid) return fail("wait4 returned %d (%s), not the child's pid", (int)w, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 42) return fail("child %s, expected exited 42", describe(st));
  errno = 0;
  if (wait4(pid, &st, 0, NULL) != -1 || errno != ECHILD) return fail("a second wait4 for the reaped child: %s, expected ECHILD", strerror(errno));
  ok();
}

static void check_wait_specific(void) {
  begin("wait-specific-pid");
  pid_t a = xfork();
  if (a < 0) return fail("fork: %s", strerror(errno));
  if (a == 0) {
    child_start();
    msleep(100);
    _exit(1);
  }
  pid_t b = xfork();
  if (b < 0) return fail("fork: %s", strerror(errno));
  if (b == 0) _exit(2);
  int st = 0;
  pid_t w = wait_for(a, &st, 0); // b exits first, but the wait is for a
  if (w != a || !WIFEXITED(st) || WEXITSTATUS(st) != 1) {
    wait_for(b, &st, 0);
    return fail("waitpid(a) returned %s, %s", w == a ? "a" : w == b ? "b" : "neither", describe(st));
  }
  w = wait_for(-1, &st, 0);
  if (w != b || !WIFEXITED(st) || WEXITSTATUS(st) != 2) return fail("waitpid(-1) after: %s, %s", w == b ? "b" : "not b", describe(st));
  errno = 0;
  if (wait_for(-1, &st, WNOHANG) != -1 || errno != ECHILD) return fail("waitpid(-1, WNOHANG) with no children: %s, expected ECHILD", strerror(errno));
  ok();
}

static void check_killed(void) {
  begin("wait-signaled-sigkill");
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    send_byte(p[1]);
    for (;;) pause();
  }
  close(p[1]);
  await_byte(p[0]);
  close(p[0]);
  if (kill(pid, SIGKILL)) return fail("kill: %s", strerror(errno));
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) return fail("child %s, expected killed by SIGKILL", describe(st));
  ok();
}

static void check_wnohang(void) {
  begin("wait-wnohang");
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(p[1]);
    char c;
    _exit(read(p[0], &c, 1) == 1 && c == 'g' ? 0 : 1); // runs until the parent says go
  }
  close(p[0]);
  int st = 0;
  pid_t w = wait_for(pid, &st, WNOHANG);
  pid_t w2 = wait_for(-1, &st, WNOHANG);
  (void)!write(p[1], "g", 1);
  close(p[1]);
  if (!reap_ok(pid, "child")) return;
  if (w != 0) return fail("waitpid(pid, WNOHANG) on a running child returned %d (%s), expected 0", (int)w, w < 0 ? strerror(errno) : "");
  if (w2 != 0) return fail("waitpid(-1, WNOHANG) on a running child returned %d, expected 0", (int)w2);
  ok();
}

static void check_waitid(void) {
  begin("waitid");
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) _exit(7);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  do r = waitid(P_ALL, 0, &si, WEXITED);
  while (r == -1 && errno == EINTR);
  if (r != 0) return fail("waitid(P_ALL, WEXITED): %s", strerror(errno));
  if (si.si_pid != pid) return fail("si_pid is not the child's pid");
  if (si.si_signo != SIGCHLD) return fail("si_signo %d, expected SIGCHLD", si.si_signo);
  if (si.si_code != CLD_EXITED) return fail("si_code %d, expected CLD_EXITED (%d)", si.si_code, CLD_EXITED);
  if (si.si_status != 7) return fail("si_status %d, expected 7", si.si_status);
  ok();
}

static void check_waitid_nowait(void) {
  begin("waitid-wnowait-killed");
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    for (;;) pause();
  }
  kill(pid, SIGTERM);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r;
  do r = waitid(P_PID, pid, &si, WEXITED | WNOWAIT);
  while (r == -1 && errno == EINTR);
  if (r != 0) return wait_for(pid, NULL, 0), fail("waitid(P_PID, WEXITED|WNOWAIT): %s", strerror(errno));
  if (si.si_pid != pid || si.si_code != CLD_KILLED || si.si_status != SIGTERM) return wait_for(pid, NULL, 0), fail("WNOWAIT: si_code %d si_status %d, expected CLD_KILLED (%d) and SIGTERM", si.si_code, si.si_status, CLD_KILLED);
  // WNOWAIT left it waitable: waitpid still reaps it.
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid after WNOWAIT returned %d (%s)", (int)w, strerror(errno));
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM) return fail("child %s, expected killed by SIGTERM", describe(st));
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * SIGCHLD
 * ---------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t chld_count, chld_code, chld_status;
static volatile pid_t chld_pid;

static void on_chld(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  chld_pid = si->si_pid;
  chld_code = si->si_code;
  chld_status = si->si_status;
  chld_count++;
}

static void check_sigchld_handler(void) {
  begin("sigchld-handler");
  struct sigaction sa = {0}, old;
  sa.sa_sigaction = on_chld;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, &old);
  sigset_t block, prev;
  sigemptyset(&block);
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &prev);
  chld_count = 0;
  pid_t pid = xfork();
  if (pid < 0) return sigprocmask(SIG_SETMASK, &prev, NULL), sigaction(SIGCHLD, &old, NULL), fail("fork: %s", strerror(errno));
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &prev, NULL);
    _exit(5);
  }
  sigset_t wait_mask = prev;
  sigdelset(&wait_mask, SIGCHLD);
  while (chld_count == 0) sigsuspend(&wait_mask); // the parent's watchdog bounds this
  sigprocmask(SIG_SETMASK, &prev, NULL);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  sigaction(SIGCHLD, &old, NULL);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (chld_pid != pid) return fail("the handler's si_pid is not the child's pid");
  if (chld_code != CLD_EXITED || chld_status != 5) return fail("the handler saw si_code %d si_status %d, expected CLD_EXITED (%d) and 5", (int)chld_code, (int)chld_status, CLD_EXITED);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 5) return fail("child %s, expected exited 5", describe(st));
  ok();
}

static void check_sigchld_ignored(void) {
  begin("sigchld-ignored-autoreap");
  struct sigaction sa = {0}, old;
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, &old);
  pid_t pid = xfork();
  if (pid < 0) return sigaction(SIGCHLD, &old, NULL), fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    msleep(50);
    _exit(0);
  }
  // wait blocks until the child ends, then, the child having been reaped by the kernel, ECHILD.
  int st = 0;
  errno = 0;
  pid_t w = wait_for(-1, &st, 0);
  int err = errno;
  sigaction(SIGCHLD, &old, NULL);
  if (w != -1 || err != ECHILD) return fail("wait returned %d (%s), expected -1 ECHILD", (int)w, w == -1 ? strerror(err) : describe(st));
  errno = 0;
  if (kill(pid, 0) != -1 || errno != ESRCH) return fail("the auto-reaped child still exists (kill 0: %s)", strerror(errno));
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * Signals across processes
 * ---------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t usr1_seen;
static void on_usr1(int sig) {
  (void)sig;
  usr1_seen = 1;
}

static void check_kill_handler(void) {
  begin("kill-to-handler");
  int ready[2], back[2];
  if (pipe(ready) || pipe(back)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    sigset_t block, empty;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, NULL);
    signal(SIGUSR1, on_usr1);
    send_byte(ready[1]);
    sigemptyset(&empty);
    while (!usr1_seen) sigsuspend(&empty);
    send_byte(back[1]);
    _exit(0);
  }
  close(ready[1]);
  close(back[1]);
  await_byte(ready[0]);
  int k = kill(pid, SIGUSR1);
  int got = await_byte(back[0]) == 0;
  close(ready[0]);
  close(back[0]);
  if (!reap_ok(pid, "child")) return;
  if (k) return fail("kill(pid, SIGUSR1): %s", strerror(errno));
  if (!got) return fail("the child's handler did not report");
  ok();
}

static void check_sigpipe(void) {
  begin("sigpipe");
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    signal(SIGPIPE, SIG_DFL);
    close(p[0]);
    char buf[4096];
    memset(buf, 'w', sizeof buf);
    for (int i = 0; i < 100000; i++)
      if (write(p[1], buf, sizeof buf) < 0) _exit(errno == EPIPE ? 3 : 4); // SIGPIPE should have killed us
    _exit(5);
  }
  close(p[0]); // the only reader left is gone
  close(p[1]);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGPIPE) return fail("writer %s, expected killed by SIGPIPE (exit 3: EPIPE without the signal)", describe(st));
  // With SIGPIPE ignored, the write fails with EPIPE instead.
  int q[2];
  if (pipe(q)) return fail("pipe: %s", strerror(errno));
  close(q[0]);
  void (*prev)(int) = signal(SIGPIPE, SIG_IGN);
  errno = 0;
  ssize_t n = write(q[1], "x", 1);
  int err = errno;
  signal(SIGPIPE, prev);
  close(q[1]);
  if (n != -1 || err != EPIPE) return fail("write with SIGPIPE ignored: %zd (%s), expected EPIPE", n, strerror(err));
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * Pipes and files across fork
 * ---------------------------------------------------------------------------------------------- */

static uint8_t pattern(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static void check_pipe_100k(void) {
  begin("pipe-100k");
  const size_t TOTAL = 100 * 1024;
  uint32_t want = 2166136261u;
  for (size_t i = 0; i < TOTAL; i++) want = (want ^ pattern(i)) * 16777619u;
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(p[0]);
    static uint8_t buf[8192];
    // Writes of uneven sizes, so that they do not line up with the pipe's pages.
    for (size_t off = 0, chunk = 1; off < TOTAL; off += chunk, chunk = chunk * 7 % 8191 + 1) {
      if (chunk > TOTAL - off) chunk = TOTAL - off;
      for (size_t k = 0; k < chunk; k++) buf[k] = pattern(off + k);
      if (write_full(p[1], buf, chunk)) _exit(1);
    }
    _exit(0);
  }
  close(p[1]);
  size_t got = 0;
  uint32_t sum = 2166136261u;
  uint8_t buf[3000];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t k = 0; k < n; k++) sum = (sum ^ buf[k]) * 16777619u;
    got += n;
  }
  close(p[0]);
  if (!reap_ok(pid, "writer")) return;
  if (got != TOTAL) return fail("read %zu bytes, expected %zu", got, TOTAL);
  if (sum != want) return fail("checksum %08x, expected %08x", sum, want);
  ok();
}

static int tmp_usable(void) {
  struct stat st;
  return stat("/tmp", &st) == 0 && S_ISDIR(st.st_mode) && access("/tmp", W_OK | X_OK) == 0;
}

static void check_shared_offset(void) {
  begin("fork-shared-file-offset");
  if (!tmp_usable()) return skip("no writable /tmp");
  char path[64];
  snprintf(path, sizeof path, "/tmp/procs-offset-%d", (int)getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return fail("open %s: %s", "/tmp file", strerror(errno));
  unlink(path);
  pid_t pid = xfork();
  if (pid < 0) return close(fd), fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    _exit(write(fd, "child,", 6) == 6 ? 0 : 1);
  }
  if (!reap_ok(pid, "child")) return (void)close(fd);
  // The open file description, and so its offset, is shared: the parent's write lands after the child's.
  off_t off = lseek(fd, 0, SEEK_CUR);
  int w = write(fd, "parent", 6);
  char buf[32] = {0};
  int n = pread(fd, buf, sizeof buf - 1, 0);
  close(fd);
  if (off != 6) return fail("the parent's offset after the child wrote 6 bytes: %lld", (long long)off);
  if (w != 6 || n != 12 || strcmp(buf, "child,parent") != 0) return fail("file holds \"%s\", expected \"child,parent\"", buf);
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * execve
 * ---------------------------------------------------------------------------------------------- */

#define EXEC_ARG "hello world"
#define EXEC_ENV "PROCS_VAR=forty two"

/** `procs exec-child ARG`: what the exec check's child becomes. Its stdout is the parent's pipe. */
static int exec_child(int argc, char **argv) {
  char line[512] = "argv:";
  for (int i = 0; i < argc; i++) snprintf(line + strlen(line), sizeof line - strlen(line), "%s%s", i ? "|" : " ", argv[i]);
  say("%s\n", line);
  int envc = 0;
  for (char **e = environ; e && *e; e++) envc++;
  say("env: %d %s\n", envc, getenv("PROCS_VAR") ? getenv("PROCS_VAR") : "(unset)");
  // fd 10 was dup2'd without O_CLOEXEC: still open, holding what the child wrote before the exec.
  char buf[32] = {0};
  int fl = fcntl(10, F_GETFD);
  if (fl < 0) say("fd10: %s\n", strerror(errno));
  else {
    int n = read(10, buf, sizeof buf - 1);
    say("fd10: flags %d read %d %s\n", fl, n, n > 0 ? buf : "");
  }
  // fd 11 had O_CLOEXEC: closed by the exec.
  errno = 0;
  int r = fcntl(11, F_GETFD);
  say("fd11: %s\n", r == -1 && errno == EBADF ? "EBADF" : "still open");
  // A caught signal is reset to SIG_DFL by exec; an ignored one stays ignored; the mask is kept.
  struct sigaction a1, a2;
  sigaction(SIGUSR1, NULL, &a1);
  sigaction(SIGUSR2, NULL, &a2);
  sigset_t mask;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  say("signals: usr1=%s usr2=%s int=%s\n", a1.sa_handler == SIG_DFL ? "default" : "not-default", a2.sa_handler == SIG_IGN ? "ignored" : "not-ignored",
      sigismember(&mask, SIGINT) ? "blocked" : "unblocked");
  say("pid: %d\n", (int)getpid());
  return 0;
}

static void check_exec_self(void) {
  begin("execve-self-dup2-cloexec");
  int out[2], data[2];
  if (pipe(out) || pipe(data)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(out[0]);
    if (dup2(out[1], 1) != 1) _exit(120);
    close(out[1]);
    if (write_full(data[1], "inherited", 9)) _exit(121);
    close(data[1]);
    if (dup2(data[0], 10) != 10) _exit(122); // dup2 never sets FD_CLOEXEC
    if (dup3(data[0], 11, O_CLOEXEC) != 11) _exit(123);
    close(data[0]);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGINT);
    sigprocmask(SIG_BLOCK, &m, NULL);
    char *args[] = {"procs-exec", "exec-child", EXEC_ARG, NULL};
    char *envs[] = {EXEC_ENV, NULL};
    execve(self_path, args, envs);
    _exit(124);
  }
  close(out[1]);
  close(data[0]);
  close(data[1]);
  char got[2048] = {0};
  int n = read_full(out[0], got, sizeof got - 1);
  close(out[0]);
  got[n > 0 ? n : 0] = 0;
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (WIFEXITED(st) && WEXITSTATUS(st) >= 120) return fail("the child failed before or in execve (exit %d: 124 is execve %s)", WEXITSTATUS(st), self_path);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("exec'd child %s", describe(st));
  char want[1024];
  snprintf(want, sizeof want,
           "argv: procs-exec|exec-child|" EXEC_ARG "\n"
           "env: 1 forty two\n"
           "fd10: flags 0 read 9 inherited\n"
           "fd11: EBADF\n"
           "signals: usr1=default usr2=ignored int=blocked\n"
           "pid: %d\n",
           (int)pid);
  if (strcmp(got, want) != 0) {
    // Report the first line that differs (lines are short and hold no pid but the last).
    const char *g = got, *x = want;
    while (*g && *g == *x) g++, x++;
    while (g > got && g[-1] != '\n') g--, x--;
    char gl[160], xl[160];
    snprintf(gl, sizeof gl, "%.*s", (int)strcspn(g, "\n"), g);
    snprintf(xl, sizeof xl, "%.*s", (int)strcspn(x, "\n"), x);
    if (!strncmp(xl, "pid:", 4) && !strncmp(gl, "pid:", 4)) return fail("the pid changed across execve");
    return fail("the exec'd child printed \"%s\", expected \"%s\"", gl, xl);
  }
  ok();
}

/** Runs execve(path) in a child; returns the errno it failed with (0: it succeeded, -1: other trouble). */
static int exec_errno(const char *path) {
  pid_t pid = xfork();
  if (pid < 0) return -1;
  if (pid == 0) {
    child_start();
    char *args[] = {(char *)path, NULL};
    char *envs[] = {NULL};
    execve(path, args, envs);
    _exit(errno < 200 ? errno : 200);
  }
  int st = 0;
  if (wait_for(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

static void check_exec_enoent(void) {
  begin("execve-enoent");
  int e = exec_errno("/nonexistent/procs-no-such-program");
  if (e != ENOENT) return fail("execve of a missing path: %s, expected ENOENT", e > 0 ? strerror(e) : "no errno");
  ok();
}

static void check_exec_eacces(void) {
  begin("execve-eacces");
  if (!tmp_usable()) return skip("no writable /tmp");
  char path[64];
  snprintf(path, sizeof path, "/tmp/procs-noexec-%d", (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return fail("create %s: %s", "/tmp file", strerror(errno));
  (void)!write(fd, "#!/bin/sh\nexit 0\n", 17);
  fchmod(fd, 0644); // whatever the umask
  close(fd);
  int e = exec_errno(path);
  unlink(path);
  if (e != EACCES) return fail("execve of a mode-0644 file: %s, expected EACCES", e > 0 ? strerror(e) : e == 0 ? "it ran" : "no errno");
  e = exec_errno("/tmp");
  if (e != EACCES) return fail("execve of a directory: %s, expected EACCES", e > 0 ? strerror(e) : "no errno");
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * Process groups and sessions
 * ---------------------------------------------------------------------------------------------- */

static void check_pgrp_kill(void) {
  begin("setpgid-kill-group");
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(p[0]);
    if (setpgid(0, 0) != 0) _exit(1);
    if (getpgrp() != getpid() || getpgid(0) != getpid()) _exit(2);
    send_byte(p[1]);
    for (;;) pause();
  }
  close(p[1]);
  int ready = await_byte(p[0]) == 0;
  close(p[0]);
  if (!ready) {
    int st = 0;
    wait_for(pid, &st, 0);
    return fail("child %s before it was ready (1: setpgid failed, 2: getpgrp/getpgid not its pid)", describe(st));
  }
  pid_t pg = getpgid(pid);
  int k = kill(-pid, SIGTERM);
  int ke = errno;
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (pg != pid) return fail("getpgid(child) from the parent is not the child's pid");
  if (k) return fail("kill(-pgid, SIGTERM): %s", strerror(ke));
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGTERM) return fail("child %s, expected killed by SIGTERM", describe(st));
  if (getpgrp() == pid) return fail("the parent is in the child's group");
  ok();
}

static void check_setsid(void) {
  begin("setsid");
  int ready[2], go[2];
  if (pipe(ready) || pipe(go)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(ready[0]);
    close(go[1]);
    pid_t s = setsid();
    if (s != getpid()) _exit(1);
    if (getsid(0) != getpid()) _exit(2);
    if (getpgrp() != getpid()) _exit(3);
    errno = 0;
    if (setsid() != -1 || errno != EPERM) _exit(4); // a group leader cannot make another session
    send_byte(ready[1]);
    await_byte(go[0]);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  int r = await_byte(ready[0]);
  pid_t sid = r == 0 ? getsid(pid) : -1;
  close(go[1]);
  close(ready[0]);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return fail("child %s (1: setsid did not return its pid, 2: getsid(0), 3: getpgrp, 4: a second setsid did not fail EPERM)", describe(st));
  if (sid != pid) return fail("getsid(child) from the parent is not the child's pid");
  if (getsid(0) == pid) return fail("the parent moved to the child's session");
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * vfork
 * ---------------------------------------------------------------------------------------------- */

static volatile int vfork_stage;

static void check_vfork(void) {
  begin("vfork-suspends-parent");
  vfork_stage = 0;
  double t0 = now_ms();
  pid_t pid = vfork();
  if (pid < 0) return fail("vfork: %s", strerror(errno));
  if (pid == 0) {
    // Only async-signal-safe calls and writes to volatile memory: the parent's memory is ours.
    vfork_stage = 1;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    vfork_stage = 2;
    _exit(3);
  }
  double dt = now_ms() - t0;
  int stage = vfork_stage;
  kids[nkids++] = pid;
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 3) return fail("child %s, expected exited 3", describe(st));
  if (dt < 90) fail("vfork returned in the parent before the child's _exit (the child sleeps 100 ms)");
  else ok();
  current = "vfork-shares-memory";
  if (stage != 2) return fail("the child's writes are not in the parent's memory (stage %d): vfork shares memory until _exit or execve", stage);
  ok();
}

/* Job control: SIGSTOP stops a child (WUNTRACED reports it), SIGCONT continues it (WCONTINUED). */
static void check_stop_cont(void) {
  begin("stop-continue");
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    for (;;) pause();
  }
  kids[nkids++] = pid;
  int st = 0;
  if (kill(pid, SIGSTOP)) return fail("kill SIGSTOP: %s", strerror(errno));
  pid_t w = waitpid(pid, &st, WUNTRACED);
  if (w != pid || !WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP) return kill(pid, SIGKILL), wait_for(pid, &st, 0), fail("after SIGSTOP: waitpid %d, %s", (int)w, describe(st));
  if (kill(pid, SIGCONT)) return fail("kill SIGCONT: %s", strerror(errno));
  w = waitpid(pid, &st, WCONTINUED);
  if (w != pid || !WIFCONTINUED(st)) return kill(pid, SIGKILL), wait_for(pid, &st, 0), fail("after SIGCONT: waitpid %d, %s", (int)w, describe(st));
  kill(pid, SIGKILL);
  w = wait_for(pid, &st, 0);
  if (w != pid || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) return fail("after SIGKILL: %s", describe(st));
  ok();
}

static void check_vfork_exec(void) {
  begin("vfork-execve");
  pid_t pid = vfork();
  if (pid < 0) return fail("vfork: %s", strerror(errno));
  if (pid == 0) {
    char *args[] = {"procs", "exit-code", "5", NULL};
    char *envs[] = {NULL};
    execve(self_path, args, envs);
    _exit(127);
  }
  kids[nkids++] = pid;
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 5) return fail("child %s, expected exited 5 (127: execve failed)", describe(st));
  ok();
}

/* ------------------------------------------------------------------------------------------------
 * Orphans
 * ---------------------------------------------------------------------------------------------- */

static void check_orphan(void) {
  begin("orphan-reparent");
  int p[2];
  if (pipe(p)) return fail("pipe: %s", strerror(errno));
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) {
    child_start();
    close(p[0]);
    pid_t me = getpid();
    pid_t g = xfork();
    if (g < 0) _exit(2);
    if (g == 0) {
      alarm(10);
      // Wait for our parent to exit, then report who adopted us.
      for (int i = 0; i < 1000 && getppid() == me; i++) msleep(5);
      pid_t msg[3] = {getpid(), getppid(), me};
      write_full(p[1], msg, sizeof msg);
      _exit(0);
    }
    _exit(0);
  }
  close(p[1]);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  pid_t msg[3] = {0, 0, 0};
  int n = read_full(p[0], msg, sizeof msg);
  close(p[0]);
  if (n == sizeof msg && msg[1] == getpid()) wait_for(msg[0], NULL, 0); // we are the reaper (pid 1, a subreaper)
  if (w != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return fail("the middle child: %s", w == pid ? describe(st) : strerror(errno));
  if (n != sizeof msg) return fail("the grandchild did not report (read %d bytes)", n);
  if (msg[1] == msg[2]) return fail("after 5 s the grandchild's getppid is still its exited parent's pid");
  if (msg[1] == 0) return fail("the grandchild's getppid is 0");
  if (msg[1] == 1 || msg[1] == getpid()) return ok();
  // Natively outside a pid namespace a subreaper (systemd --user, a container's init) may adopt it.
  checks++;
  say("ok %s (adopted by a subreaper, not pid 1)\n", current);
}

/* ------------------------------------------------------------------------------------------------
 * Threads and processes
 * ---------------------------------------------------------------------------------------------- */

static volatile int spin_forever = 1;

static void *spinner(void *arg) {
  (void)arg;
  volatile unsigned long n = 0;
  while (spin_forever) n++;
  return NULL;
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

static void *reader(void *arg) {
  char c;
  (void)!read(*(int *)arg, &c, 1); // nobody writes: blocked until the process ends
  return NULL;
}

static void *exiter(void *arg) {
  msleep(50);
  _exit((int)(intptr_t)arg); // glibc's _exit is exit_group: every thread ends
  return NULL;
}

/**
 * A child with a spinning thread and two blocked ones (pause, read of a pipe nobody writes);
 * `from_thread`: a fourth thread calls _exit(3), else main exit(4)s. One spinner only: a sandbox with
 * fewer vCPUs than spinning threads may never run the exiting one.
 */
static void threaded_child(int from_thread) {
  child_start();
  static int p[2];
  if (pipe(p)) _exit(102);
  pthread_t t;
  if (pthread_create(&t, NULL, spinner, NULL) || pthread_create(&t, NULL, sleeper, NULL) || pthread_create(&t, NULL, reader, &p[0])) _exit(100);
  if (from_thread) {
    if (pthread_create(&t, NULL, exiter, (void *)(intptr_t)3)) _exit(101);
    for (;;) pause();
  }
  msleep(50);
  exit(4);
}

static void check_exit_group(int from_thread) {
  begin(from_thread ? "exit-group-from-thread" : "exit-from-main-with-threads");
  pid_t pid = xfork();
  if (pid < 0) return fail("fork: %s", strerror(errno));
  if (pid == 0) threaded_child(from_thread);
  int st = 0;
  pid_t w = wait_for(pid, &st, 0);
  int want = from_thread ? 3 : 4;
  if (w != pid) return fail("waitpid returned %d (%s)", (int)w, strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != want) return fail("child %s, expected exited %d (14: SIGALRM, its threads kept it alive)", describe(st), want);
  ok();
}

struct fork_thread_result {
  pid_t pid, waited;
  int status, err;
};

static void *forking_thread(void *arg) {
  struct fork_thread_result *r = arg;
  r->pid = xfork();
  if (r->pid == 0) {
    child_start();
    // Only this thread exists in the child; it can still make a thread of its own.
    pthread_t t;
    spin_forever = 0;
    if (pthread_create(&t, NULL, spinner, NULL) || pthread_join(t, NULL)) _exit(1);
    _exit(9);
  }
  if (r->pid < 0) return r->err = errno, NULL;
  r->waited = wait_for(r->pid, &r->status, 0);
  r->err = errno;
  return NULL;
}

static void check_fork_from_thread(void) {
  begin("fork-from-thread");
  struct fork_thread_result r = {0, 0, 0, 0};
  pthread_t t;
  if (pthread_create(&t, NULL, forking_thread, &r)) return fail("pthread_create failed");
  pthread_join(t, NULL);
  if (r.pid < 0) return fail("fork in a thread: %s", strerror(r.err));
  if (r.waited != r.pid) return fail("waitpid in the thread returned %d (%s)", (int)r.waited, strerror(r.err));
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 9) return fail("child %s, expected exited 9", describe(r.status));
  ok();
}

/* ------------------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "exec-child") == 0) return exec_child(argc, argv);
  if (argc >= 3 && strcmp(argv[1], "exit-code") == 0) _exit(atoi(argv[2]));
  if (argc >= 2) {
    say("usage: procs [exec-child ARG | exit-code N]\n");
    return 2;
  }
  self_path = argv[0] && strchr(argv[0], '/') && access(argv[0], X_OK) == 0 ? argv[0] : "/proc/self/exe";
  signal(SIGALRM, on_watchdog);
  errno = 0;
  have_alarm = !(alarm(0) == (unsigned)-1 && errno == ENOSYS);
  if (!have_alarm) {
    pthread_t t;
    const char *note = pthread_create(&t, NULL, watchdog_thread, NULL) == 0 ? "procs: alarm() fails with ENOSYS: a watchdog thread bounds each check\n"
                                                                          : "procs: alarm() fails with ENOSYS and no watchdog thread could start: checks are not bounded in time\n";
    (void)!write(2, note, strlen(note));
  }
  signal(SIGCHLD, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);

  check_fork_cow();
  check_shared_anon();
  check_getppid();
  check_wait4_status();
  check_wait_specific();
  check_killed();
  check_stop_cont();
  check_wnohang();
  check_waitid();
  check_waitid_nowait();
  check_sigchld_handler();
  check_sigchld_ignored();
  check_kill_handler();
  check_pipe_100k();
  check_sigpipe();
  check_shared_offset();
  check_exec_self();
  check_exec_enoent();
  check_exec_eacces();
  check_pgrp_kill();
  check_setsid();
  check_vfork();
  check_vfork_exec();
  check_orphan();
  check_exit_group(1);
  check_exit_group(0);
  check_fork_from_thread();
  alarm(0);
  generation = 0;

  // Nothing may be left to wait for.
  current = "no-children-left";
  errno = 0;
  nkids = 0;
  if (wait_for(-1, NULL, WNOHANG) == -1 && errno == ECHILD) ok();
  else fail("a child is left over: %s", errno ? strerror(errno) : "waitpid returned one");

  if (failures) say("procs: %d of %d checks FAILED\n", failures, checks);
  else say("procs: all %d checks passed\n", checks);
  return failures ? 1 : 0;
}
