// build: -pthread
/*
 * A system-call fuzzer for mapvisor (issue 15). Usage:
 *
 *   fuzz-syscalls --sandboxed SEED [CALLS [THREADS]] [--log]
 *
 * NEVER run it on a host: it unlinks/renames/chmods real paths such as /dev/null. --sandboxed is required.
 *
 * Each of THREADS threads (default 2) issues CALLS (default 2000) random system calls whose arguments
 * come from generators that know the types: fds this program opened (files under /tmp/fz, /dev/null,
 * pipes, eventfds, epoll, timerfd) and wild fds; pointers into its scratch buffer, NULL, wild pointers
 * (below user space, kernel and non-canonical addresses, its own code, a hole it munmapped, a page it
 * made read-only), buffers that straddle into the hole; lengths near 0/1/4095/4096/2^31/2^63/-1; random
 * and all-ones flags; iovecs into unmapped/read-only memory and overlapping iovecs; plus random system
 * call numbers 0..450 outside a deny list, with generic arguments. Calls are chosen so that a correct
 * kernel cannot hurt the fuzzer: every fd it makes is non-blocking, waits have tiny timeouts, it never
 * closes or dup2s onto 0..2, mmap/munmap/mprotect/mremap/madvise with MAP_FIXED-like effects only touch
 * a "playground" it mapped for that, output buffers only point into a scratch area bounded by an
 * unmapped page (so a huge length cannot overwrite the fuzzer's own data).
 *
 * Checks after every call: the read-only page still holds its pattern (a kernel that wrote through a
 * read-only mapping is a finding: "fuzz: FINDING ..." and exit 3). A SIGSEGV/SIGBUS in the fuzzer is a
 * finding (the kernel returned something wrong instead of EFAULT): it prints the call in progress and
 * dies by the signal. A watchdog thread reports a call stuck for 10 s ("fuzz: STUCK ...", exit 4).
 *
 * Output: one line per thread `fuzz: thread T: N calls, E errors by errno EBADF=.. ...`, then
 * `fuzz ok SEED`, exit 0. With --log every call and its result is printed, one line each:
 * `T<t> #<i> name(args) = result`.
 */
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
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MAXT 64
#define SCRATCH_PAGES 16
#define PG_PAGES 64

typedef unsigned long u64;

static long raw6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
  return ret;
}

/* ---------- output (raw write on fd 1, never malloc) ---------- */
static volatile int outlock;
static void lock(volatile int *l) { while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) raw6(SYS_sched_yield, 0, 0, 0, 0, 0, 0); }
static void unlock(volatile int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }
static void out_raw(int fd, const char *s, size_t n) {
  while (n > 0) {
    long w = raw6(SYS_write, fd, (long)s, (long)n, 0, 0, 0);
    if (w <= 0) return;
    s += w; n -= (size_t)w;
  }
}
static void say(const char *fmt, ...) {
  char b[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof b - 1) n = sizeof b - 1;
  lock(&outlock);
  out_raw(1, b, (size_t)n);
  unlock(&outlock);
}

/* ---------- random ---------- */
typedef struct { u64 s; } rng_t;
static u64 rnd(rng_t *r) { /* splitmix64 */
  u64 z = (r->s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static u64 below(rng_t *r, u64 n) { return n ? rnd(r) % n : 0; }
static int chance(rng_t *r, int pct) { return (int)below(r, 100) < pct; }

/* ---------- shared state ---------- */
static unsigned char *scratch;   /* SCRATCH_PAGES RW, then one unmapped page (the hole), then a RO page */
static unsigned char *hole;
static unsigned char *ropage;
static unsigned char *playground; /* PG_PAGES pages the fuzzer mmaps/munmaps/mprotects freely */
static u64 brk0;
static int logmode;
static u64 seed;

#define MAXFD 256
static volatile int fdlock;
static int fds[MAXFD];
static int nfds;
static void fd_add(long fd) {
  if (fd < 3 || fd > 100000) return;
  lock(&fdlock);
  if (nfds < MAXFD) fds[nfds++] = (int)fd;
  unlock(&fdlock);
}
static void fd_del(int fd) {
  lock(&fdlock);
  for (int i = 0; i < nfds; i++) if (fds[i] == fd) { fds[i] = fds[--nfds]; break; }
  unlock(&fdlock);
}
static int fd_any(rng_t *r) {
  int fd = -1;
  lock(&fdlock);
  if (nfds) fd = fds[below(r, (u64)nfds)];
  unlock(&fdlock);
  return fd;
}

/* per-thread state */
typedef struct {
  int t;
  rng_t r;
  u64 calls, errors;
  u64 errs[4096];
  volatile u64 progress;     /* call index, watched by the watchdog */
  volatile int done;
  char pending[512];         /* the call in progress, for crash/stuck reports */
  u64 lastmap, lastmaplen;   /* this thread's own kernel-placed mapping */
  unsigned char *ctl;        /* per-thread control memory for structured arguments (never a kernel output) */
  unsigned char *alt;        /* per-thread sigaltstack area */
} th_t;
static th_t *ths[MAXT];
static int nthreads;

/* ---------- generators ---------- */
static const char *const paths[] = {
  "/tmp/fz/a", "/tmp/fz/b", "/tmp/fz/c", "/tmp/fz/d", "/tmp/fz/d/e", "/tmp/fz/d/f", "/tmp/fz", "/tmp",
  "/dev/null", "/", ".", "..", "", "/nonexistent/x", "/tmp/fz/a/", "/tmp/fz/./d/../a", "a", "d", "d/e",
  "/proc/self/maps", "/dev/zero", "//tmp///fz//b",
};
#define NPATHS (sizeof paths / sizeof paths[0])
static char longpath[8192];

static u64 gen_len(rng_t *r) {
  static const u64 v[] = {0, 1, 2, 7, 8, 16, 64, 100, 4095, 4096, 4097, 8192, 65536, 0x7fffffff, 0x80000000UL,
                          0xffffffffUL, 0x100000000UL, 0x7fffffffffffffffUL, 0x8000000000000000UL, ~0UL, ~0UL - 1};
  if (chance(r, 25)) return below(r, 200);
  if (chance(r, 10)) return rnd(r);
  return v[below(r, sizeof v / sizeof v[0])];
}
static u64 gen_small_len(rng_t *r) { /* for outputs that are not bounded by a guard page */
  return chance(r, 80) ? below(r, 4097) : gen_len(r);
}
static u64 gen_flags(rng_t *r) {
  switch (below(r, 6)) {
  case 0: return 0;
  case 1: return ~0UL;
  case 2: return 0xffffffffUL;
  case 3: return 1UL << below(r, 64);
  case 4: return rnd(r);
  default: return rnd(r) & 0xffff;
  }
}
static int gen_fd(rng_t *r) {
  static const long wild[] = {-1, -9, -100, 100000, 0x7fffffff, (long)0x80000000U, 65536, 1 << 20, -0x7fffffff};
  if (chance(r, 85)) { int fd = fd_any(r); if (fd >= 0) return fd; }
  return (int)wild[below(r, sizeof wild / sizeof wild[0])];
}
/* Wild pointers: never anything the fuzzer owns except read-only memory. */
static u64 gen_wild(rng_t *r) {
  static const u64 v[] = {0, 1, 0x1000, 0x10000, 0x100000, 0xfff, 0x800000000000UL, 0xffff800000000000UL,
                          0xffffffff81000000UL, 0xfffffffffffff000UL, ~0UL, 0x0000800000000000UL - 0x1000 * 0 + 8,
                          0x4000000000000000UL, 0xdead0000UL};
  switch (below(r, 4)) {
  case 0: return (u64)hole + below(r, PAGE);
  case 1: return (u64)ropage + below(r, PAGE);
  case 2: return (u64)(void *)&gen_wild; /* our own code */
  default: return v[below(r, sizeof v / sizeof v[0])];
  }
}
/* A pointer for the kernel to write to or read from. */
static u64 gen_ptr(rng_t *r, th_t *th) {
  int k = (int)below(r, 100);
  if (k < 55) return (u64)scratch + below(r, SCRATCH_PAGES * PAGE);            /* valid (maybe straddling the hole) */
  if (k < 65) return (u64)scratch + SCRATCH_PAGES * PAGE - 1 - below(r, 64);  /* right before the hole */
  if (k < 70) return (u64)playground + below(r, PG_PAGES * PAGE);             /* maybe mapped, maybe not */
  if (k < 73 && th->lastmap) return th->lastmap + below(r, th->lastmaplen | 1);
  return gen_wild(r);
}
static u64 gen_path(rng_t *r, th_t *th) {
  int k = (int)below(r, 100);
  if (k < 75) return (u64)paths[below(r, NPATHS)];
  if (k < 80) return (u64)longpath + below(r, 8);
  if (k < 90) { /* a path copied right up to the hole, with no NUL before it */
    const char *p = paths[below(r, NPATHS)];
    size_t n = strlen(p);
    unsigned char *at = scratch + SCRATCH_PAGES * PAGE - n;
    memcpy(at, p, n);
    return (u64)at;
  }
  return gen_ptr(r, th);
}
/* Fill an iovec array in the thread's ctl memory (or the scratch area) with bases into scratch, the hole,
 * the read-only page or wild addresses; sometimes overlapping. Returns the array address. */
static u64 gen_iov(rng_t *r, th_t *th, int *cnt) {
  int n = chance(r, 10) ? (int)gen_len(r) : (int)below(r, 9);
  int fill = n < 0 || n > 64 ? 64 : n;
  struct iovec *v = chance(r, 85) ? (struct iovec *)th->ctl : (struct iovec *)(scratch + below(r, 8) * PAGE);
  for (int i = 0; i < fill; i++) {
    int k = (int)below(r, 10);
    if (k < 6) v[i].iov_base = scratch + below(r, SCRATCH_PAGES * PAGE);
    else if (k < 7) v[i].iov_base = i ? v[i - 1].iov_base : scratch; /* overlapping */
    else v[i].iov_base = (void *)gen_wild(r);
    v[i].iov_len = chance(r, 85) ? below(r, 5000) : gen_len(r);
  }
  *cnt = n;
  if (chance(r, 5)) return gen_wild(r);
  return (u64)v;
}
static u64 gen_pg_addr(rng_t *r) {
  if (chance(r, 8)) return gen_wild(r) & ~(PAGE - 1) ; /* munmap/mprotect of unowned low/kernel memory: must be refused or harmless */
  return (u64)playground + below(r, PG_PAGES) * PAGE + (chance(r, 5) ? below(r, PAGE) : 0);
}
static u64 gen_pg_len(rng_t *r, u64 addr) {
  if (addr < (u64)playground || addr >= (u64)playground + PG_PAGES * PAGE) return chance(r, 50) ? PAGE : gen_len(r);
  u64 room = (u64)playground + PG_PAGES * PAGE - addr;
  if (chance(r, 5)) return 0;
  return 1 + below(r, room);
}
static int wild_addr_ok(u64 a) { /* munmap/mprotect targets outside the playground: only ones we own nothing at */
  return a < 0x200000 || a >= 0x800000000000UL;
}

/* ---------- the calls ---------- */
static long do_call(th_t *th, char *desc, size_t dn) {
  rng_t *r = &th->r;
  u64 a[6] = {0};
  const char *name = NULL;
  long nr = -1;
  int k = (int)below(r, 74);
  int exec_in_child = 0;
#define ARGS(n) nr = (n); name = #n
  switch (k) {
  case 0: case 1: ARGS(SYS_read); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); break;
  case 2: case 3: ARGS(SYS_write); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); break;
  case 4: ARGS(SYS_pread64); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); a[3] = chance(r, 70) ? below(r, 70000) : gen_len(r); break;
  case 5: ARGS(SYS_pwrite64); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); a[3] = chance(r, 70) ? below(r, 70000) : gen_len(r); break;
  case 6: { int c; ARGS(SYS_readv); a[0] = gen_fd(r); a[1] = gen_iov(r, th, &c); a[2] = (u64)(long)c; break; }
  case 7: { int c; ARGS(SYS_writev); a[0] = gen_fd(r); a[1] = gen_iov(r, th, &c); a[2] = (u64)(long)c; break; }
  case 8: ARGS(SYS_lseek); a[0] = gen_fd(r); a[1] = chance(r, 60) ? below(r, 10000) : gen_len(r); a[2] = chance(r, 80) ? below(r, 5) : gen_flags(r); break;
  case 9: case 10: ARGS(SYS_open); a[0] = gen_path(r, th);
    a[1] = (chance(r, 70) ? (below(r, 3) | (chance(r, 50) ? O_CREAT : 0) | (chance(r, 20) ? O_TRUNC : 0) | (chance(r, 10) ? O_DIRECTORY : 0) | (chance(r, 10) ? O_APPEND : 0)) : gen_flags(r)) | O_NONBLOCK;
    a[2] = chance(r, 80) ? 0644 : gen_flags(r); break;
  case 11: ARGS(SYS_openat); a[0] = chance(r, 50) ? (u64)(long)AT_FDCWD : (u64)(long)gen_fd(r); a[1] = gen_path(r, th);
    a[2] = (chance(r, 70) ? (below(r, 3) | (chance(r, 50) ? O_CREAT : 0) | (chance(r, 10) ? O_PATH : 0) | (chance(r, 10) ? O_TMPFILE : 0)) : gen_flags(r)) | O_NONBLOCK;
    a[3] = chance(r, 80) ? 0600 : gen_flags(r); break;
  case 12: { ARGS(SYS_close); int fd = gen_fd(r); a[0] = (u64)(long)fd; break; }
  case 13: ARGS(SYS_dup); a[0] = gen_fd(r); break;
  case 14: ARGS(SYS_dup2); a[0] = gen_fd(r); a[1] = chance(r, 70) ? (u64)(100 + below(r, 30)) : (u64)(long)gen_fd(r); break;
  case 15: ARGS(SYS_dup3); a[0] = gen_fd(r); a[1] = chance(r, 70) ? (u64)(100 + below(r, 30)) : (u64)(long)gen_fd(r); a[2] = chance(r, 70) ? (chance(r, 50) ? O_CLOEXEC : 0) : gen_flags(r); break;
  case 16: { ARGS(SYS_fcntl); a[0] = gen_fd(r);
    static const int cmds[] = {F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK, F_GETOWN, F_DUPFD_CLOEXEC,
                               F_GETPIPE_SZ, F_SETPIPE_SZ, F_GETSIG, F_ADD_SEALS, F_GET_SEALS, 1034 /* F_GETLEASE */, 9999, -1};
    int c = cmds[below(r, sizeof cmds / sizeof cmds[0])];
    a[1] = (u64)(long)c;
    if (c == F_SETFL) a[2] = (gen_flags(r) | O_NONBLOCK) & ~(u64)O_ASYNC;
    else if (c == F_GETLK || c == F_SETLK) a[2] = gen_ptr(r, th);
    else if (c == F_DUPFD || c == F_DUPFD_CLOEXEC) a[2] = chance(r, 70) ? 100 + below(r, 50) : gen_len(r);
    else a[2] = gen_flags(r);
    break; }
  case 17: ARGS(SYS_fstat); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); break;
  case 18: ARGS(SYS_stat); a[0] = gen_path(r, th); a[1] = gen_ptr(r, th); break;
  case 19: ARGS(SYS_lstat); a[0] = gen_path(r, th); a[1] = gen_ptr(r, th); break;
  case 20: ARGS(SYS_newfstatat); a[0] = chance(r, 50) ? (u64)(long)AT_FDCWD : (u64)(long)gen_fd(r); a[1] = gen_path(r, th); a[2] = gen_ptr(r, th);
    a[3] = chance(r, 70) ? (chance(r, 50) ? AT_EMPTY_PATH : 0) | (chance(r, 30) ? AT_SYMLINK_NOFOLLOW : 0) : gen_flags(r); break;
  case 21: ARGS(SYS_statx); a[0] = chance(r, 50) ? (u64)(long)AT_FDCWD : (u64)(long)gen_fd(r); a[1] = gen_path(r, th);
    a[2] = chance(r, 70) ? (chance(r, 50) ? AT_EMPTY_PATH : 0) : gen_flags(r); a[3] = gen_flags(r); a[4] = gen_ptr(r, th); break;
  case 22: ARGS(SYS_getdents64); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); break;
  case 23: ARGS(SYS_mkdir); a[0] = gen_path(r, th); a[1] = chance(r, 80) ? 0755 : gen_flags(r); break;
  case 24: ARGS(SYS_rmdir); a[0] = gen_path(r, th); break;
  case 25: ARGS(SYS_unlink); a[0] = gen_path(r, th); break;
  case 26: ARGS(SYS_rename); a[0] = gen_path(r, th); a[1] = gen_path(r, th); break;
  case 27: ARGS(SYS_truncate); a[0] = gen_path(r, th); a[1] = chance(r, 70) ? below(r, 100000) : gen_len(r); break;
  case 28: ARGS(SYS_ftruncate); a[0] = gen_fd(r); a[1] = chance(r, 70) ? below(r, 100000) : gen_len(r); break;
  case 29: ARGS(SYS_fsync); a[0] = gen_fd(r); break;
  case 30: { ARGS(SYS_mmap);
    int fixed = chance(r, 50);
    u64 addr = fixed ? (u64)playground + below(r, PG_PAGES) * PAGE : (chance(r, 70) ? 0 : gen_wild(r));
    u64 len = fixed ? 1 + below(r, (u64)playground + PG_PAGES * PAGE - addr) : (chance(r, 60) ? 1 + below(r, 16 * PAGE) : gen_len(r));
    u64 prot = chance(r, 80) ? below(r, 8) : gen_flags(r);
    u64 fl = chance(r, 80) ? (chance(r, 50) ? MAP_PRIVATE : MAP_SHARED) | (chance(r, 60) ? MAP_ANONYMOUS : 0) | (chance(r, 10) ? MAP_NORESERVE : 0)
                           | (chance(r, 10) && len <= 16 * PAGE ? MAP_POPULATE : 0) | (chance(r, 5) ? MAP_FIXED_NOREPLACE : 0)
                           : (gen_flags(r) & ~(u64)(MAP_FIXED | MAP_FIXED_NOREPLACE | MAP_POPULATE | MAP_GROWSDOWN | MAP_STACK | MAP_LOCKED));
    if (fixed) fl = (fl & ~(u64)MAP_FIXED_NOREPLACE) | MAP_FIXED;
    a[0] = addr; a[1] = len; a[2] = prot; a[3] = fl; a[4] = (u64)(long)(chance(r, 50) ? -1 : gen_fd(r)); a[5] = chance(r, 80) ? below(r, 4) * PAGE : gen_len(r);
    break; }
  case 31: { ARGS(SYS_munmap); u64 ad = gen_pg_addr(r); a[0] = ad; a[1] = gen_pg_len(r, ad);
    if (!(ad >= (u64)playground && ad < (u64)playground + PG_PAGES * PAGE) && !wild_addr_ok(ad)) a[0] = 0x1000;
    if (th->lastmap && chance(r, 20)) { a[0] = th->lastmap; a[1] = th->lastmaplen; th->lastmap = 0; }
    break; }
  case 32: { ARGS(SYS_mprotect); u64 ad = gen_pg_addr(r); a[0] = ad; a[1] = gen_pg_len(r, ad); a[2] = chance(r, 80) ? below(r, 8) : gen_flags(r);
    if (!(ad >= (u64)playground && ad < (u64)playground + PG_PAGES * PAGE) && !wild_addr_ok(ad)) a[0] = 0x1000;
    /* never PROT_GROWSDOWN/UP on the playground: could extend past it */
    a[2] &= ~(u64)(PROT_GROWSDOWN | PROT_GROWSUP);
    break; }
  case 33: { ARGS(SYS_mremap); u64 ad = (u64)playground + below(r, PG_PAGES) * PAGE; u64 room = (u64)playground + PG_PAGES * PAGE - ad;
    a[0] = ad; a[1] = chance(r, 10) ? 0 : 1 + below(r, room);
    u64 fl = chance(r, 80) ? below(r, 8) & (MREMAP_MAYMOVE | MREMAP_FIXED | 4 /* DONTUNMAP */) : gen_flags(r);
    a[3] = fl;
    if (fl & MREMAP_FIXED) { /* new place inside the playground, new size bounded by it */
      u64 na = (u64)playground + below(r, PG_PAGES) * PAGE; a[4] = na; a[2] = 1 + below(r, (u64)playground + PG_PAGES * PAGE - na);
    } else if (fl & MREMAP_MAYMOVE) a[2] = chance(r, 70) ? 1 + below(r, 32 * PAGE) : gen_len(r);
    else a[2] = 1 + below(r, room);
    break; }
  case 34: { ARGS(SYS_madvise); u64 ad = gen_pg_addr(r); a[0] = ad; a[1] = gen_pg_len(r, ad); a[2] = chance(r, 80) ? below(r, 25) : gen_flags(r);
    if (!(ad >= (u64)playground && ad < (u64)playground + PG_PAGES * PAGE)) { a[0] = wild_addr_ok(ad) ? ad : 0x1000; }
    break; }
  case 35: { ARGS(SYS_brk); int c = (int)below(r, 4);
    a[0] = c == 0 ? 0 : c == 1 ? brk0 + below(r, 64) * PAGE : c == 2 ? brk0 + below(r, 64) * PAGE + below(r, PAGE) : (chance(r, 50) ? 0x1000 : 0xffff800000000000UL);
    break; }
  case 36: ARGS(SYS_pipe2); a[0] = chance(r, 80) ? (u64)th->ctl + 2048 : gen_ptr(r, th); a[1] = (chance(r, 70) ? (chance(r, 50) ? O_CLOEXEC : 0) : gen_flags(r) & ~(u64)O_DIRECT) | O_NONBLOCK; break;
  case 37: ARGS(SYS_eventfd2); a[0] = chance(r, 70) ? below(r, 10) : gen_flags(r); a[1] = (chance(r, 70) ? below(r, 2) : gen_flags(r)) | EFD_NONBLOCK; break;
  case 38: ARGS(SYS_epoll_create1); a[0] = chance(r, 80) ? (chance(r, 50) ? EPOLL_CLOEXEC : 0) : gen_flags(r); break;
  case 39: { ARGS(SYS_epoll_ctl); a[0] = gen_fd(r); a[1] = chance(r, 80) ? 1 + below(r, 3) : gen_flags(r); a[2] = gen_fd(r);
    u64 *ev = (u64 *)(th->ctl + 3000); ev[0] = (rnd(r) & 0xffffffffUL) & ~(u64)(1U << 30) /* no EPOLLWAKEUP */; ev[1] = rnd(r);
    a[3] = chance(r, 80) ? (u64)th->ctl + 3000 + (chance(r, 10) ? 4 : 0) : gen_wild(r);
    break; }
  case 40: ARGS(SYS_epoll_wait); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = chance(r, 80) ? below(r, 64) : gen_len(r); a[3] = 0; break;
  case 41: ARGS(SYS_timerfd_create); a[0] = chance(r, 80) ? below(r, 2) : gen_flags(r); a[1] = (chance(r, 70) ? 0 : gen_flags(r)) | TFD_NONBLOCK; break;
  case 42: { ARGS(SYS_timerfd_settime); a[0] = gen_fd(r); a[1] = chance(r, 70) ? below(r, 2) : gen_flags(r);
    long *its = (long *)(th->ctl + 3100);
    its[0] = (long)below(r, 2); its[1] = chance(r, 80) ? (long)below(r, 1000000) : (long)gen_len(r);
    its[2] = (long)below(r, 2); its[3] = chance(r, 80) ? (long)below(r, 1000000) : (long)gen_len(r);
    a[2] = chance(r, 85) ? (u64)its : gen_wild(r); a[3] = chance(r, 50) ? 0 : gen_ptr(r, th); break; }
  case 43: { ARGS(SYS_poll); int n = (int)below(r, 8); short *p = (short *)(th->ctl + 3200);
    for (int i = 0; i < n; i++) { ((int *)p)[2 * i] = gen_fd(r); p[4 * i + 2] = (short)rnd(r); p[4 * i + 3] = 0; }
    a[0] = chance(r, 85) ? (u64)p : gen_wild(r); a[1] = chance(r, 90) ? (u64)n : gen_len(r); a[2] = 0; break; }
  case 44: { ARGS(SYS_select); u64 *sets = (u64 *)(th->ctl + 3400); /* 3 x 128 bytes */
    for (int i = 0; i < 48; i++) sets[i] = chance(r, 50) ? 0 : rnd(r) & ~7UL; /* never 0..2 */
    long *tv = (long *)(th->ctl + 3800); tv[0] = 0; tv[1] = chance(r, 90) ? 0 : -1;
    a[0] = chance(r, 80) ? below(r, 1025) : gen_len(r);
    for (int i = 0; i < 3; i++) a[1 + i] = chance(r, 30) ? 0 : chance(r, 85) ? (u64)(sets + 16 * i) : gen_wild(r);
    a[4] = (u64)tv; break; }
  case 45: ARGS(SYS_getcwd); a[0] = gen_ptr(r, th); a[1] = gen_len(r); break;
  case 46: ARGS(SYS_chdir); a[0] = gen_path(r, th); break;
  case 47: ARGS(SYS_uname); a[0] = gen_ptr(r, th); break;
  case 48: ARGS(SYS_getrandom); a[0] = gen_ptr(r, th); a[1] = gen_len(r); a[2] = (chance(r, 80) ? below(r, 8) : gen_flags(r)) | 1 /* GRND_NONBLOCK */; break;
  case 49: ARGS(SYS_clock_gettime); a[0] = chance(r, 80) ? below(r, 12) : gen_flags(r); a[1] = gen_ptr(r, th); break;
  case 50: { ARGS(SYS_nanosleep); long *ts = (long *)(th->ctl + 3900); ts[0] = chance(r, 95) ? 0 : -1;
    ts[1] = chance(r, 90) ? (long)below(r, 200000) : chance(r, 50) ? 1000000000L : -1;
    a[0] = chance(r, 90) ? (u64)ts : gen_wild(r); a[1] = chance(r, 50) ? 0 : gen_ptr(r, th); break; }
  case 51: { ARGS(SYS_futex); int *w = (int *)(th->ctl + 3950); u64 uaddr = chance(r, 80) ? (u64)w : gen_ptr(r, th);
    int op = (int)below(r, 6); long *ts = (long *)(th->ctl + 3960); ts[0] = 0; ts[1] = (long)below(r, 100000);
    u64 priv = chance(r, 50) ? 128 : 0;
    if (op == 0) { a[1] = 0 | priv; a[2] = chance(r, 50) ? (u64)*w : rnd(r); a[3] = (u64)ts; }          /* WAIT, relative tiny timeout */
    else if (op == 1) { a[1] = 9 | priv; a[2] = (u64)*w; a[3] = (u64)ts; a[5] = ~0U; }               /* WAIT_BITSET, absolute (past) */
    else if (op == 2) { a[1] = 1 | priv; a[2] = chance(r, 80) ? below(r, 4) : gen_flags(r); }         /* WAKE */
    else if (op == 3) { a[1] = 10 | priv; a[2] = below(r, 4); a[5] = chance(r, 50) ? ~0U : 0; }      /* WAKE_BITSET */
    else if (op == 4) { a[1] = 4 | priv; a[2] = below(r, 3); a[3] = below(r, 3); a[4] = chance(r, 50) ? (u64)(w + 1) : gen_ptr(r, th); a[5] = rnd(r) & 1; } /* CMP_REQUEUE */
    else { a[1] = 5 | priv; a[2] = below(r, 3); a[3] = below(r, 3); a[4] = chance(r, 50) ? (u64)(w + 1) : gen_ptr(r, th); a[5] = rnd(r) & 0xffffffff; } /* WAKE_OP */
    if (op == 0 && chance(r, 10)) a[3] = gen_wild(r); /* a bad timeout pointer: must be EFAULT (but a NULL = forever: never) */
    if (a[3] == 0 && (op == 0 || op == 1)) a[3] = (u64)ts;
    a[0] = uaddr; break; }
  case 52: ARGS(SYS_sched_yield); break;
  case 53: { int c = (int)below(r, 4); if (c == 0) { ARGS(SYS_getpid); } else if (c == 1) { ARGS(SYS_gettid); } else if (c == 2) { ARGS(SYS_sysinfo); a[0] = gen_ptr(r, th); } else { ARGS(SYS_umask); a[0] = chance(r, 80) ? 022 : gen_flags(r); } break; }
  case 54: ARGS(SYS_getrlimit); a[0] = chance(r, 80) ? below(r, 16) : gen_flags(r); a[1] = gen_ptr(r, th); break;
  case 55: ARGS(SYS_prlimit64); a[0] = chance(r, 80) ? 0 : gen_flags(r); a[1] = chance(r, 80) ? below(r, 16) : gen_flags(r); a[2] = 0; a[3] = gen_ptr(r, th); break; /* GET only */
  case 56: { ARGS(SYS_rt_sigprocmask); u64 *set = (u64 *)(th->ctl + 4000); *set = rnd(r) & ~((1UL << (SIGSEGV - 1)) | (1UL << (SIGBUS - 1)));
    a[0] = chance(r, 80) ? below(r, 3) : gen_flags(r); a[1] = chance(r, 20) ? 0 : chance(r, 85) ? (u64)set : gen_wild(r); a[2] = chance(r, 50) ? 0 : gen_ptr(r, th); a[3] = chance(r, 90) ? 8 : gen_len(r); break; }
  case 57: { ARGS(SYS_sigaltstack); u64 *ss = (u64 *)(th->ctl + 4024);
    ss[0] = (u64)th->alt; ss[1] = chance(r, 70) ? 0 : chance(r, 50) ? 2 /* SS_DISABLE */ : gen_flags(r); ss[2] = chance(r, 80) ? 16384 : gen_len(r);
    if (ss[1] != 0 && ss[1] != 2) ss[0] = (u64)th->alt; /* any flags: base stays ours */
    if (ss[2] > 16384) ss[2] = chance(r, 50) ? 16384 : 100; /* never claim more than the area */
    a[0] = chance(r, 30) ? 0 : chance(r, 90) ? (u64)ss : gen_wild(r); a[1] = chance(r, 50) ? 0 : gen_ptr(r, th); break; }
  case 58: { ARGS(SYS_rt_sigaction); /* SIG_IGN for most, SIG_DFL only for ignore-by-default signals */
    static const int dfl_ok[] = {SIGCHLD, SIGURG, SIGWINCH, SIGCONT};
    int sig; u64 handler;
    if (chance(r, 50)) { sig = dfl_ok[below(r, 4)]; handler = chance(r, 50) ? 0 : 1; }
    else { do sig = 1 + (int)below(r, 64); while (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGABRT || sig == SIGSYS || sig == 32 || sig == 33); handler = 1; }
    if (chance(r, 5)) { sig = chance(r, 50) ? SIGKILL : (int)gen_flags(r); handler = 1; } /* (SIG_DFL on a number that happens to be SIGPIPE would end the fuzzer at its next broken pipe) */
    u64 *act = (u64 *)(th->ctl + 4048); act[0] = handler; act[1] = chance(r, 80) ? 0x04000000 /* SA_RESTORER */ : (gen_flags(r) & ~(u64)0x4 /* SA_SIGINFO irrelevant */); act[2] = 0; act[3] = rnd(r);
    a[0] = (u64)(long)sig; a[1] = chance(r, 20) ? 0 : chance(r, 90) ? (u64)act : (chance(r, 50) ? 0x800000000000UL : 0xfffffffffffff000UL) + below(r, PAGE); /* (never a readable wild act: its bytes would become SIGPIPE's disposition, and the fuzzer would shoot itself; the hole may be mapped by then) */ a[2] = chance(r, 50) ? 0 : gen_ptr(r, th); a[3] = chance(r, 90) ? 8 : gen_len(r); break; }
  case 59: ARGS(SYS_arch_prctl); a[0] = chance(r, 50) ? 0x1003 /* GET_FS */ : chance(r, 50) ? 0x1004 /* GET_GS */ : 0x1011 /* GET_CPUID */; a[1] = gen_ptr(r, th); break;
  case 60: { ARGS(SYS_ioctl); a[0] = gen_fd(r); u64 req;
    static const u64 reqs[] = {0x5401 /* TCGETS */, 0x541B /* FIONREAD */, 0x5450 /* FIONCLEX */, 0x5451 /* FIOCLEX */, 0x5452 /* FIOASYNC? no: FIOASYNC is 0x5452 */, 0x80086601 /* FS_IOC_GETFLAGS */, 0x40086602, 0x5413 /* TIOCGWINSZ */, 0x540F};
    do { req = chance(r, 50) ? reqs[below(r, sizeof reqs / sizeof reqs[0])] : chance(r, 50) ? (rnd(r) & 0xffffffff) : rnd(r); } while ((req & 0xffffffff) == 0x5421 /* FIONBIO */ || (req & 0xffffffff) == 0x5452 /* FIOASYNC */ || (req & 0xffffffff) == 0x5423 /* FIOSETOWN */ || (req & 0xffffffff) == 0x8901 || (req & 0xffffffff) == 0x8902 || (req & 0xffffffff) == 0x5412 /* TIOCSTI */);
    a[1] = req; a[2] = chance(r, 80) ? gen_ptr(r, th) : gen_flags(r); break; }
  /* Processes: children that exit at once (or try an execve of a random path first), waits that
   * never block for long, harmless signals to random pids and groups, groups and sessions. */
  /* (clone with exit signal 0: the fuzzer's own SIGCHLD disposition may be a wild handler) */
  case 61: ARGS(SYS_clone); break;
  case 62: ARGS(SYS_clone); exec_in_child = 1; break;
  case 63: ARGS(SYS_wait4); a[0] = chance(r, 60) ? (u64)-1L : chance(r, 50) ? below(r, 64) : gen_flags(r); a[1] = gen_ptr(r, th);
    a[2] = 1 /* WNOHANG */ | (chance(r, 20) ? (gen_flags(r) & ~(u64)0) : 0); a[3] = chance(r, 70) ? 0 : gen_ptr(r, th); break;
  case 64: { ARGS(SYS_kill); /* signal 0 or an invalid one: every disposition here may be a wild handler */
    /* Not the fuzzer itself or its group: other pids, which are its children or nobody. */
    long self = raw6(SYS_getpid, 0, 0, 0, 0, 0, 0), p;
    do p = chance(r, 90) ? 2 + (long)below(r, 62) : -(2 + (long)below(r, 62)); while (p == self || p == -self);
    a[0] = (u64)p;
    a[1] = chance(r, 90) ? 0 : (u64)(65 + below(r, 1000)); break; }
  case 65: { int c = (int)below(r, 4);
    if (c == 0) { ARGS(SYS_setpgid); a[0] = chance(r, 50) ? 0 : below(r, 64); a[1] = chance(r, 50) ? 0 : chance(r, 80) ? below(r, 64) : gen_flags(r); }
    else if (c == 1) { ARGS(SYS_getpgid); a[0] = chance(r, 80) ? below(r, 64) : gen_flags(r); }
    else if (c == 2) { ARGS(SYS_setsid); }
    else { ARGS(SYS_getsid); a[0] = chance(r, 80) ? below(r, 64) : gen_flags(r); }
    break; }
  case 66: ARGS(SYS_waitid); a[0] = chance(r, 80) ? below(r, 4) : gen_flags(r); a[1] = chance(r, 70) ? below(r, 64) : gen_flags(r); a[2] = gen_ptr(r, th);
    a[3] = 1 /* WNOHANG */ | (chance(r, 80) ? 4 /* WEXITED */ : gen_flags(r)); a[4] = chance(r, 70) ? 0 : gen_ptr(r, th); break;
  /* Sockets: always non-blocking (SOCK_NONBLOCK, MSG_DONTWAIT), so no call can wait forever; names
   * and messages are built in the second page of the thread's control area. */
  case 67: { ARGS(SYS_socket); static const int dom[] = {1, 2, 10, 16, 0, 17, 44};
    a[0] = chance(r, 90) ? dom[below(r, 7)] : gen_flags(r);
    a[1] = (chance(r, 90) ? (u64)(1 + below(r, 5)) : gen_flags(r) & ~(u64)0xf) | 04000 /* SOCK_NONBLOCK */ | (chance(r, 50) ? 02000000 : 0);
    a[2] = chance(r, 70) ? 0 : chance(r, 50) ? below(r, 20) : gen_flags(r); break; }
  case 68: ARGS(SYS_socketpair); a[0] = chance(r, 85) ? 1 : chance(r, 50) ? 2 : gen_flags(r);
    a[1] = (chance(r, 90) ? (u64)(1 + below(r, 5)) : gen_flags(r) & ~(u64)0xf) | 04000; a[2] = chance(r, 90) ? 0 : gen_flags(r);
    a[3] = chance(r, 85) ? (u64)th->ctl + 2048 : gen_ptr(r, th); break;
  case 69: { unsigned char *sa = th->ctl + 4400; /* a socket address of some family, or garbage */
    int fam = (int)below(r, 5); memset(sa, 0, 128);
    if (fam == 0) { sa[0] = 1; const char *p = chance(r, 50) ? "/tmp/fz.sock" : "\0fz"; memcpy(sa + 2, p, 13); if (chance(r, 20)) for (int i = 2; i < 110; i++) sa[i] = (unsigned char)rnd(r); }
    else if (fam == 1) { sa[0] = 2; sa[2] = (unsigned char)below(r, 4); sa[3] = (unsigned char)rnd(r); sa[4] = chance(r, 80) ? 127 : (unsigned char)rnd(r); sa[7] = 1; }
    else if (fam == 2) { sa[0] = 10; sa[3] = (unsigned char)rnd(r); if (chance(r, 70)) sa[23] = 1; else for (int i = 8; i < 24; i++) sa[i] = (unsigned char)rnd(r); }
    else for (int i = 0; i < 128; i++) sa[i] = (unsigned char)rnd(r);
    static const u64 lens[] = {0, 1, 2, 3, 12, 16, 24, 28, 110, 111, 128, 129, 0x7fffffff, 0xffffffff};
    u64 sp = chance(r, 85) ? (u64)sa : gen_ptr(r, th), len = lens[below(r, sizeof lens / sizeof lens[0])];
    uint32_t *lenp = (uint32_t *)(th->ctl + 5300); *lenp = chance(r, 80) ? 128 : (uint32_t)rnd(r);
    u64 lp = chance(r, 85) ? (u64)lenp : gen_ptr(r, th);
    switch (below(r, 7)) {
    case 0: ARGS(SYS_bind); a[0] = gen_fd(r); a[1] = sp; a[2] = len; break;
    case 1: ARGS(SYS_connect); a[0] = gen_fd(r); a[1] = sp; a[2] = len; break;
    case 2: ARGS(SYS_listen); a[0] = gen_fd(r); a[1] = chance(r, 80) ? below(r, 16) : gen_flags(r); break;
    case 3: ARGS(SYS_accept4); a[0] = gen_fd(r); a[1] = chance(r, 30) ? 0 : sp; a[2] = lp; a[3] = (chance(r, 80) ? 0 : gen_flags(r) & ~(u64)04000) | 04000; break;
    case 4: ARGS(SYS_shutdown); a[0] = gen_fd(r); a[1] = chance(r, 80) ? below(r, 3) : gen_flags(r); break;
    case 5: ARGS(SYS_getsockname); a[0] = gen_fd(r); a[1] = sp; a[2] = lp; break;
    default: ARGS(SYS_getpeername); a[0] = gen_fd(r); a[1] = sp; a[2] = lp; break;
    }
    break; }
  case 70: case 71: { /* data: plain, addressed, and with ancillary data (descriptors, credentials, garbage) */
    unsigned char *sa = th->ctl + 4400; u64 *mh = (u64 *)(th->ctl + 4600); unsigned char *cm = th->ctl + 4700;
    int c; u64 iov = gen_iov(r, th, &c);
    memset(cm, 0, 256);
    u64 cl = 0;
    if (chance(r, 40)) { /* SCM_RIGHTS with some of our fds, or SCM_CREDENTIALS, or garbage */
      u64 *h = (u64 *)cm; int kind = (int)below(r, 3);
      if (kind == 0) { int n = 1 + (int)below(r, 4); h[0] = 16 + 4 * (u64)n; ((int *)cm)[2] = 1; ((int *)cm)[3] = 1; for (int i = 0; i < n; i++) ((int *)(cm + 16))[i] = gen_fd(r); cl = 16 + ((4 * (u64)n + 7) & ~7UL); }
      else if (kind == 1) { h[0] = 28; ((int *)cm)[2] = 1; ((int *)cm)[3] = 2; ((int *)(cm + 16))[0] = (int)raw6(SYS_getpid, 0, 0, 0, 0, 0, 0); cl = 32; }
      else { for (int i = 0; i < 64; i++) cm[i] = (unsigned char)rnd(r); cl = chance(r, 50) ? 64 : gen_len(r); }
    }
    mh[0] = chance(r, 50) ? (u64)sa : 0; mh[1] = chance(r, 80) ? 16 : gen_len(r) & 0xffffffff; mh[2] = iov; mh[3] = (u64)(long)c;
    mh[4] = chance(r, 80) ? (u64)cm : gen_ptr(r, th); mh[5] = chance(r, 90) ? (cl ? cl : 256) : gen_len(r); mh[6] = 0;
    u64 flags = (chance(r, 80) ? below(r, 0x8000) & ~(u64)0x100 /* no MSG_WAITALL */ : gen_flags(r)) | 0x40 /* MSG_DONTWAIT */;
    u64 mp = chance(r, 90) ? (u64)mh : gen_ptr(r, th);
    u64 *mm = (u64 *)(th->ctl + 5000); for (int i = 0; i < 3; i++) { memcpy(mm + i * 8, mh, 56); mm[i * 8 + 7] = 0; }
    switch (below(r, 6)) {
    case 0: ARGS(SYS_sendto); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); a[3] = flags; a[4] = chance(r, 50) ? (u64)sa : 0; a[5] = chance(r, 80) ? 16 : gen_len(r); break;
    case 1: ARGS(SYS_recvfrom); a[0] = gen_fd(r); a[1] = gen_ptr(r, th); a[2] = gen_len(r); a[3] = flags; a[4] = chance(r, 50) ? (u64)sa : 0; a[5] = (u64)th->ctl + 5300; break;
    case 2: ARGS(SYS_sendmsg); a[0] = gen_fd(r); a[1] = mp; a[2] = flags; break;
    case 3: ARGS(SYS_recvmsg); a[0] = gen_fd(r); a[1] = mp; a[2] = flags; break;
    case 4: ARGS(SYS_sendmmsg); a[0] = gen_fd(r); a[1] = chance(r, 90) ? (u64)mm : gen_ptr(r, th); a[2] = chance(r, 80) ? below(r, 4) : gen_len(r); a[3] = flags; break;
    default: ARGS(SYS_recvmmsg); a[0] = gen_fd(r); a[1] = chance(r, 90) ? (u64)mm : gen_ptr(r, th); a[2] = chance(r, 80) ? below(r, 4) : gen_len(r); a[3] = flags; a[4] = 0; break;
    }
    break; }
  case 72: case 73: { /* options: the levels and names programs use, and wild ones */
    static const int lev[] = {1, 6, 17, 0, 41, 255, -1};
    unsigned char *ov = th->ctl + 5400; for (int i = 0; i < 32; i++) ov[i] = chance(r, 70) ? (i == 0 ? (unsigned char)below(r, 3) : 0) : (unsigned char)rnd(r);
    uint32_t *lenp = (uint32_t *)(th->ctl + 5300); *lenp = chance(r, 80) ? 4 * (uint32_t)below(r, 5) : (uint32_t)rnd(r);
    if (chance(r, 50)) { ARGS(SYS_setsockopt); a[4] = chance(r, 80) ? 4 * below(r, 5) : gen_len(r); }
    else { ARGS(SYS_getsockopt); a[4] = chance(r, 85) ? (u64)lenp : gen_ptr(r, th); }
    a[0] = gen_fd(r); a[1] = chance(r, 90) ? (u64)(long)lev[below(r, 7)] : gen_flags(r); a[2] = chance(r, 85) ? below(r, 70) : gen_flags(r);
    a[3] = chance(r, 85) ? (u64)ov : gen_ptr(r, th);
    /* (no SO_RCVTIMEO/SNDTIMEO changes matter: every socket call here is non-blocking) */
    break; }
  default: { /* a random number outside the deny list, generic arguments */
    static const short deny[] = {
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 28, 29, 30, 31, 32, 33, 34, 35, 37, 38,
      39, 41, 43, 53, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 76, 77, 79, 80, 82, 83, 84, 85, 87, 95,
      97, 99, 101, 103, 105, 106, 109, 112, 113, 114, 116, 117, 119, 122, 123, 126, 128, 129, 130, 131, 133, 134, 135, 141, 142, 144,
      151, 153, 154, 155, 156, 157, 158, 159, 160, 161, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175, 176, 177, 178,
      179, 180, 186, 200, 202, 203, 205, 208, 209, 210, 213, 216, 218, 219, 220, 222, 223, 227, 228, 230, 231, 232, 233, 234, 237, 238,
      240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 253, 256, 257, 259, 262, 270, 271, 272, 273, 279, 281, 282, 283, 284,
      286, 288, 289, 290, 291, 292, 293, 294, 297, 298, 299, 302, 304, 305, 308, 310, 311, 313, 314, 317, 318, 319, 320, 321, 322, 323,
      329, 330, 331, 332, 333, 334, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433, 434, 435, 436, 437, 438, 440, 441, 442, 443, 444,
      445, 446, 447, 448, 449, 450};
    long n;
    for (;;) {
      n = (long)below(r, 451);
      int bad = 0;
      for (size_t i = 0; i < sizeof deny / sizeof deny[0]; i++) if (deny[i] == n) { bad = 1; break; }
      if (!bad) break;
    }
    nr = n; name = NULL;
    for (int i = 0; i < 6; i++) {
      int c = (int)below(r, 6);
      a[i] = c == 0 ? (u64)(long)gen_fd(r) : c == 1 ? gen_ptr(r, th) : c == 2 ? gen_len(r) : c == 3 ? gen_flags(r) : c == 4 ? gen_path(r, th) : below(r, 16);
    }
    break; }
  }
  if (name && strncmp(name, "SYS_", 4) == 0) name += 4;
  char nb[32];
  if (!name) { snprintf(nb, sizeof nb, "syscall_%ld", nr); name = nb; }
  snprintf(desc, dn, "%s(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)", name, a[0], a[1], a[2], a[3], a[4], a[5]);
  if (logmode) snprintf(th->pending, sizeof th->pending, "T%d #%lu %s", th->t, (unsigned long)th->progress, desc);
  else memcpy(th->pending, desc, strlen(desc) + 1 < sizeof th->pending ? strlen(desc) + 1 : sizeof th->pending);

  long ret = raw6(nr, (long)a[0], (long)a[1], (long)a[2], (long)a[3], (long)a[4], (long)a[5]);
  if (nr == SYS_clone && a[0] == 0 && ret == 0) {
    /* The child: a call or two, then gone (an execve of a random path, when asked; it fails, or runs
     * whatever the path names with wild arguments, which then ends on its own or by the timeout). */
    raw6(SYS_getppid, 0, 0, 0, 0, 0, 0);
    if (exec_in_child) raw6(SYS_execve, (long)gen_path(r, th), (long)gen_ptr(r, th), (long)gen_ptr(r, th), 0, 0, 0);
    raw6(SYS_exit_group, exec_in_child ? 127 : 0, 0, 0, 0, 0, 0);
  }

  /* bookkeeping */
  if (ret >= 0) {
    if (nr == SYS_open || nr == SYS_openat || nr == SYS_dup || nr == SYS_dup2 || nr == SYS_dup3 || nr == SYS_eventfd2 || nr == SYS_epoll_create1 || nr == SYS_timerfd_create ||
        (nr == SYS_fcntl && ((long)a[1] == F_DUPFD || (long)a[1] == F_DUPFD_CLOEXEC))) fd_add(ret);
    if (nr == SYS_dup2 || nr == SYS_dup3) { /* the target was replaced: it is still ours */ }
    if (nr == SYS_pipe2 && a[0] == (u64)th->ctl + 2048) { int *p = (int *)(th->ctl + 2048); fd_add(p[0]); fd_add(p[1]); }
    if (nr == SYS_socket || nr == SYS_accept4) fd_add(ret);
    if (nr == SYS_socketpair && a[3] == (u64)th->ctl + 2048) { int *p = (int *)(th->ctl + 2048); fd_add(p[0]); fd_add(p[1]); }
    if (nr == SYS_close) fd_del((int)a[0]);
    if (nr == SYS_mmap && !(a[3] & MAP_FIXED)) {
      u64 m = (u64)ret;
      if (m >= (u64)playground && m < (u64)playground + PG_PAGES * PAGE) { /* placed in a playground hole: fine */ }
      else {
        if (th->lastmap) raw6(SYS_munmap, (long)th->lastmap, (long)th->lastmaplen, 0, 0, 0, 0);
        th->lastmap = m; th->lastmaplen = a[1];
      }
    }
    if (nr == SYS_mremap && (u64)ret != a[0]) {
      u64 m = (u64)ret;
      if (!(m >= (u64)playground && m < (u64)playground + PG_PAGES * PAGE)) {
        if (th->lastmap) raw6(SYS_munmap, (long)th->lastmap, (long)th->lastmaplen, 0, 0, 0, 0);
        th->lastmap = m; th->lastmaplen = a[2];
      }
    }
  }
  return ret;
}

/* ---------- checks, crash and stuck reports ---------- */
static unsigned char ropattern(size_t i) { return (unsigned char)(i * 31 + 7); }
static int ro_intact(void) {
  for (size_t i = 0; i < PAGE; i++) if (ropage[i] != ropattern(i)) return 0;
  return 1;
}
static __thread th_t *self;
static void on_fault(int sig) {
  char b[768];
  int n = snprintf(b, sizeof b, "fuzz: CRASH signal %d in thread %d during call #%lu: %s (seed %lu)\n", sig, self ? self->t : -1,
                   self ? (unsigned long)self->progress : 0UL, self ? self->pending : "?", (unsigned long)seed);
  out_raw(1, b, (size_t)(n > 0 ? n : 0));
  signal(sig, SIG_DFL);
  raise(sig);
}

static const char *errname(int e) {
  switch (e) {
#define E(x) case x: return #x;
  E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT)
  E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(EFBIG) E(ENOSPC) E(ESPIPE)
  E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(ENAMETOOLONG) E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA) E(EOVERFLOW) E(ENOTSOCK)
  E(EOPNOTSUPP) E(ETIMEDOUT) E(EDESTADDRREQ) E(EAFNOSUPPORT) E(ENOTCONN) E(EPROTONOSUPPORT)
#undef E
  default: return NULL;
  }
}

static void *worker(void *p) {
  th_t *th = p;
  self = th;
  /* our own alternate stack for the crash handler */
  stack_t ss = {.ss_sp = th->alt + 16384, .ss_size = 16384, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  char desc[400];
  u64 calls = th->calls;
  th->calls = 0;
  for (u64 i = 0; i < calls; i++) {
    th->progress = i;
    long ret = do_call(th, desc, sizeof desc);
    th->calls++;
    if (ret < 0 && ret > -4096) { th->errors++; th->errs[-ret]++; }
    if (logmode) {
      const char *en = ret < 0 && ret > -4096 ? errname((int)-ret) : NULL;
      if (ret < 0 && ret > -4096) say("T%d #%lu %s = -1 %s\n", th->t, (unsigned long)i, desc, en ? en : "E?");
      else say("T%d #%lu %s = %#lx\n", th->t, (unsigned long)i, desc, (unsigned long)ret);
    }
    if (!ro_intact()) {
      say("fuzz: FINDING: the read-only page at %p was modified by thread %d call #%lu: %s = %ld (seed %lu)\n", (void *)ropage, th->t,
          (unsigned long)i, desc, ret, (unsigned long)seed);
      _exit(3);
    }
  }
  th->done = 1;
  return NULL;
}

static void *watchdog(void *p) {
  (void)p;
  u64 last[MAXT];
  int still[MAXT];
  for (int i = 0; i < nthreads; i++) { last[i] = ~0UL; still[i] = 0; }
  for (;;) {
    struct timespec ts = {0, 250000000};
    nanosleep(&ts, NULL);
    int alldone = 1;
    for (int i = 0; i < nthreads; i++) {
      if (ths[i]->done) continue;
      alldone = 0;
      if (ths[i]->progress == last[i]) {
        if (++still[i] == 40) { /* 10 s in one call */
          say("fuzz: STUCK thread %d in call #%lu for 10 s: %s (seed %lu)\n", i, (unsigned long)last[i], ths[i]->pending, (unsigned long)seed);
          _exit(4);
        }
      } else { last[i] = ths[i]->progress; still[i] = 0; }
    }
    if (alldone) return NULL;
  }
}

static void *map_or_die(u64 len) {
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { say("fuzz: setup: mmap failed: %s\n", strerror(errno)); exit(2); }
  return m;
}

int main(int argc, char **argv) {
  u64 calls = 2000;
  int threads = 2;
  int pos = 0, sandboxed = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--log") == 0) { logmode = 1; continue; }
    if (strcmp(argv[i], "--sandboxed") == 0) { sandboxed = 1; continue; }
    u64 v = strtoull(argv[i], NULL, 0);
    if (pos == 0) seed = v; else if (pos == 1) calls = v; else if (pos == 2) threads = (int)v;
    pos++;
  }
  if (!sandboxed) { say("fuzz: refusing to run without --sandboxed: it unlinks, renames and chmods real paths (/dev/null, /tmp, /) -- run it only under mapvisor\n"); return 2; }
  if (pos == 0) { say("usage: fuzz-syscalls SEED [CALLS [THREADS]] [--log]\n"); return 2; }
  if (threads < 1) threads = 1;
  if (threads > MAXT) threads = MAXT;
  nthreads = threads;

  signal(SIGPIPE, SIG_IGN);
  signal(SIGIO, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
  signal(SIGALRM, SIG_IGN);
  signal(SIGTTOU, SIG_IGN);
  signal(SIGTTIN, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_ONSTACK | SA_NODEFER;
  sigaction(SIGSEGV, &sa, NULL);
  sigaction(SIGBUS, &sa, NULL);
  sigaction(SIGILL, &sa, NULL);
  sigaction(SIGFPE, &sa, NULL);

  /* scratch (RW) | hole (unmapped) | read-only page | hole */
  unsigned char *area = map_or_die((SCRATCH_PAGES + 3) * PAGE);
  scratch = area;
  hole = area + SCRATCH_PAGES * PAGE;
  ropage = hole + PAGE;
  for (size_t i = 0; i < PAGE; i++) ropage[i] = ropattern(i);
  if (munmap(hole, PAGE) || munmap(ropage + PAGE, PAGE) || mprotect(ropage, PAGE, PROT_READ)) {
    say("fuzz: setup: munmap/mprotect failed: %s\n", strerror(errno));
    return 2;
  }
  playground = map_or_die(PG_PAGES * PAGE);
  brk0 = (u64)raw6(SYS_brk, 0, 0, 0, 0, 0, 0);
  memset(longpath, 'x', sizeof longpath - 1);
  for (size_t i = 0; i < sizeof longpath - 1; i += 100) longpath[i] = '/';

  mkdir("/tmp", 0777);
  mkdir("/tmp/fz", 0777);
  mkdir("/tmp/fz/d", 0777);
  static const char *const initial[] = {"/tmp/fz/a", "/tmp/fz/b", "/tmp/fz/d/e", "/dev/null"};
  for (int i = 0; i < 4; i++) {
    int fd = open(initial[i], O_RDWR | O_CREAT | O_NONBLOCK, 0644);
    if (fd >= 0) { if (i < 3) (void)!write(fd, "hello fuzz\n", 11); fd_add(fd); }
  }
  int dfd = open("/tmp/fz", O_RDONLY | O_DIRECTORY | O_NONBLOCK);
  fd_add(dfd);
  int pp[2];
  if (pipe2(pp, O_NONBLOCK) == 0) { fd_add(pp[0]); fd_add(pp[1]); }
  fd_add(raw6(SYS_eventfd2, 1, EFD_NONBLOCK, 0, 0, 0, 0));
  fd_add(raw6(SYS_epoll_create1, 0, 0, 0, 0, 0, 0));
  fd_add(raw6(SYS_timerfd_create, CLOCK_MONOTONIC, TFD_NONBLOCK, 0, 0, 0, 0));

  pthread_t tids[MAXT];
  for (int t = 0; t < threads; t++) {
    th_t *th = map_or_die((sizeof(th_t) + PAGE - 1) & ~(PAGE - 1));
    th->t = t;
    th->r.s = seed * 0x100000001B3ULL + (u64)t * 0x9E3779B97F4A7C15ULL + 1;
    th->calls = calls;
    th->ctl = map_or_die(2 * PAGE);
    th->alt = map_or_die(32768);
    ths[t] = th;
  }
  for (int t = 0; t < threads; t++) {
    int e = pthread_create(&tids[t], NULL, worker, ths[t]);
    if (e) { say("fuzz: setup: pthread_create: %s\n", strerror(e)); return 2; }
  }
  pthread_t wd;
  pthread_create(&wd, NULL, watchdog, NULL);
  for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  pthread_join(wd, NULL);

  for (int t = 0; t < threads; t++) {
    th_t *th = ths[t];
    char b[900];
    int n = snprintf(b, sizeof b, "fuzz: thread %d: %lu calls, %lu errors by errno", t, (unsigned long)th->calls, (unsigned long)th->errors);
    for (int e = 1; e < 4096 && n < (int)sizeof b - 40; e++) {
      if (!th->errs[e]) continue;
      const char *en = errname(e);
      if (en) n += snprintf(b + n, sizeof b - (size_t)n, " %s=%lu", en, (unsigned long)th->errs[e]);
      else n += snprintf(b + n, sizeof b - (size_t)n, " %d=%lu", e, (unsigned long)th->errs[e]);
    }
    say("%s\n", b);
  }
  say("fuzz ok %lu\n", (unsigned long)seed);
  return 0;
}
