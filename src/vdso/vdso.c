/*
 * mapvisor's vDSO: clock_gettime, gettimeofday, time, clock_getres and getcpu answered inside the
 * program, from the TSC and the calibration the kernel keeps in the page below this image (vdso.h).
 * What it cannot answer (CPU-time clocks, MONOTONIC_RAW, an unknown clock, a page not yet valid)
 * it asks the kernel with the system call, exactly as Linux's vDSO falls back. Built with
 * -nostdlib -fPIC into one PT_LOAD (vdso.lds); no relocations, no data, no GOT.
 */
#include <stddef.h>
#include <stdint.h>
#include "vdso.h"

_Static_assert(offsetof(struct vdso_data, seq) == 0, "seq");
_Static_assert(offsetof(struct vdso_data, flags) == 4, "flags");
_Static_assert(offsetof(struct vdso_data, tsc_base) == 8, "tsc_base");
_Static_assert(offsetof(struct vdso_data, mono_base_ns) == 16, "mono_base_ns");
_Static_assert(offsetof(struct vdso_data, mult) == 24, "mult");
_Static_assert(offsetof(struct vdso_data, shift) == 32, "shift");
_Static_assert(offsetof(struct vdso_data, ncpus) == 36, "ncpus");
_Static_assert(offsetof(struct vdso_data, real_offset_ns) == 40, "real_offset_ns");
_Static_assert(offsetof(struct vdso_data, boot_offset_ns) == 48, "boot_offset_ns");
_Static_assert(offsetof(struct vdso_data, tai_offset_ns) == 56, "tai_offset_ns");
_Static_assert(offsetof(struct vdso_data, coarse_res_ns) == 64, "coarse_res_ns");
_Static_assert(sizeof(struct vdso_data) == VDSO_DATA_SIZE, "size");

struct ts { int64_t sec, nsec; };
struct tv { int64_t sec, usec; };

#define NSEC 1000000000ll
enum {
  CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1, CLOCK_REALTIME_COARSE = 5, CLOCK_MONOTONIC_COARSE = 6,
  CLOCK_BOOTTIME = 7, CLOCK_TAI = 11,
};
enum { SYS_gettimeofday = 96, SYS_time = 201, SYS_clock_gettime = 228, SYS_clock_getres = 229, SYS_getcpu = 309 };

/* Defined by vdso.lds one page below the ELF header: reached PC-relative, so no relocation. */
extern const volatile struct vdso_data vdso_vvar __attribute__((visibility("hidden")));
static inline const volatile struct vdso_data *data(void) { return &vdso_vvar; }

static inline long sys2(long nr, long a, long b) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
  return ret;
}
static inline long sys3(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

static inline uint64_t rdtsc_ordered(void) {
  uint32_t lo, hi;
  __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
  return ((uint64_t)hi << 32) | lo;
}

/* CLOCK_MONOTONIC in ns and the three offsets, read consistently; 0 when the page is not valid. */
static int read_clock(int64_t *mono, int64_t *real_off, int64_t *boot_off, int64_t *tai_off) {
  const volatile struct vdso_data *d = data();
  for (;;) {
    uint32_t seq = d->seq;
    __asm__ volatile("" ::: "memory");
    if (seq & 1) { __builtin_ia32_pause(); continue; }
    if (!(d->flags & VDSO_FLAG_TSC)) return 0;
    uint64_t base = d->tsc_base, mult = d->mult;
    uint32_t shift = d->shift;
    int64_t mbase = (int64_t)d->mono_base_ns;
    *real_off = d->real_offset_ns;
    *boot_off = d->boot_offset_ns;
    *tai_off = d->tai_offset_ns;
    uint64_t now = rdtsc_ordered();
    __asm__ volatile("" ::: "memory");
    if (d->seq != seq) continue;
    /* A TSC a little behind the base (read on another CPU just before an update) counts as the base. */
    uint64_t delta = now > base ? now - base : 0;
    *mono = mbase + (int64_t)(((unsigned __int128)delta * mult) >> shift);
    return 1;
  }
}

static int clock_ns(int clk, int64_t *ns) {
  int64_t mono, real_off, boot_off, tai_off;
  switch (clk) {
  case CLOCK_REALTIME: case CLOCK_MONOTONIC: case CLOCK_REALTIME_COARSE: case CLOCK_MONOTONIC_COARSE:
  case CLOCK_BOOTTIME: case CLOCK_TAI:
    break;
  default:
    return 0;
  }
  if (!read_clock(&mono, &real_off, &boot_off, &tai_off)) return 0;
  switch (clk) {
  case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_COARSE: *ns = mono; break;
  case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: *ns = mono + real_off; break;
  case CLOCK_BOOTTIME: *ns = mono + boot_off; break;
  default: *ns = mono + real_off + tai_off; break;
  }
  return 1;
}

int __vdso_clock_gettime(int clk, struct ts *t) {
  int64_t ns;
  if (!clock_ns(clk, &ns)) return (int)sys2(SYS_clock_gettime, clk, (long)t);
  t->sec = ns / NSEC;
  t->nsec = ns % NSEC;
  return 0;
}

int __vdso_gettimeofday(struct tv *tv, void *tz) {
  int64_t ns;
  if (!clock_ns(CLOCK_REALTIME, &ns)) return (int)sys2(SYS_gettimeofday, (long)tv, (long)tz);
  if (tv) {
    tv->sec = ns / NSEC;
    tv->usec = (ns % NSEC) / 1000;
  }
  if (tz) {
    /* struct timezone: UTC, no DST (what the kernel's gettimeofday answers too). */
    ((int *)tz)[0] = 0;
    ((int *)tz)[1] = 0;
  }
  return 0;
}

int64_t __vdso_time(int64_t *t) {
  int64_t ns;
  if (!clock_ns(CLOCK_REALTIME, &ns)) return sys2(SYS_time, (long)t, 0);
  int64_t s = ns / NSEC;
  if (t) *t = s;
  return s;
}

int __vdso_clock_getres(int clk, struct ts *res) {
  const volatile struct vdso_data *d = data();
  if (!(d->flags & VDSO_FLAG_TSC)) return (int)sys2(SYS_clock_getres, clk, (long)res);
  int64_t r;
  switch (clk) {
  case CLOCK_REALTIME: case CLOCK_MONOTONIC: case CLOCK_BOOTTIME: case CLOCK_TAI: r = 1; break;
  case CLOCK_REALTIME_COARSE: case CLOCK_MONOTONIC_COARSE: r = (int64_t)d->coarse_res_ns; break;
  default: return (int)sys2(SYS_clock_getres, clk, (long)res);
  }
  if (res) {
    res->sec = 0;
    res->nsec = r;
  }
  return 0;
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache) {
  const volatile struct vdso_data *d = data();
  uint32_t flags = d->flags;
  unsigned c;
  if (flags & VDSO_FLAG_CPU_AUX && d->ncpus) {
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    c = (aux & 0xfff) % d->ncpus;
  } else if (flags & VDSO_FLAG_CPU_ZERO) {
    c = 0;
  } else {
    return sys3(SYS_getcpu, (long)cpu, (long)node, (long)cache);
  }
  if (cpu) *cpu = c;
  if (node) *node = 0;
  return 0;
}

/* The names glibc and musl look up (with version LINUX_2.6), and the plain ones Linux also exports. */
int clock_gettime(int, struct ts *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct tv *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
int64_t time(int64_t *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct ts *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
