// build: -pthread
// also: musl
// The vDSO: glibc finds it through AT_SYSINFO_EHDR and answers clock_gettime, gettimeofday, time and
// getcpu from it; its clocks agree with the system calls' and never go back, across threads too.
// Prints one "ok NAME" or "FAIL NAME: why" line per check; exits 1 on any failure. `loop N` times N
// clock_gettime calls through the vDSO and through the system call (for the benchmark); `clock N MS`
// prints CLOCK_MONOTONIC (read through the vDSO) N times, every MS ms, and "BACK" if it ever went back
// (for the checkpoint test).
#define _GNU_SOURCE
#include <elf.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define CHECK(name, cond, ...)                                  \
  do {                                                          \
    if (cond) printf("ok %s\n", name);                          \
    else {                                                      \
      printf("FAIL %s: ", name);                                \
      printf(__VA_ARGS__);                                      \
      printf("\n");                                             \
      failures++;                                               \
    }                                                           \
  } while (0)

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t sys_clock(clockid_t c) {
  struct timespec t;
  syscall(SYS_clock_gettime, c, &t);
  return ns(t);
}

static int64_t vdso_clock(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return ns(t);
}

/* Looks up a symbol in the vDSO's dynamic symbol table (as a libc would). */
static void *vdso_sym(const char *name) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)getauxval(AT_SYSINFO_EHDR);
  if (!eh) return NULL;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)((const char *)eh + eh->e_phoff);
  const Elf64_Dyn *dyn = NULL;
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_DYNAMIC) dyn = (const Elf64_Dyn *)((const char *)eh + ph[i].p_offset);
  if (!dyn) return NULL;
  const Elf64_Sym *sym = NULL;
  const char *str = NULL;
  const uint32_t *hash = NULL;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_SYMTAB) sym = (const Elf64_Sym *)((const char *)eh + dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_STRTAB) str = (const char *)eh + dyn->d_un.d_ptr;
    if (dyn->d_tag == DT_HASH) hash = (const uint32_t *)((const char *)eh + dyn->d_un.d_ptr);
  }
  if (!sym || !str || !hash) return NULL;
  for (uint32_t i = 0; i < hash[1]; i++)
    if (sym[i].st_shndx != SHN_UNDEF && strcmp(str + sym[i].st_name, name) == 0) return (char *)eh + sym[i].st_value;
  return NULL;
}

static volatile int stop_threads;
static void *hammer(void *arg) {
  int64_t last = 0, back = 0;
  while (!stop_threads) {
    int64_t t = vdso_clock(CLOCK_MONOTONIC);
    if (t < last) back++;
    last = t;
  }
  return (void *)(intptr_t)back;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "loop") == 0) {
    long n = atol(argv[2]);
    struct timespec t;
    int64_t a = sys_clock(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t b = sys_clock(CLOCK_MONOTONIC);
    long m = n / 100 > 0 ? n / 100 : 1;
    for (long i = 0; i < m; i++) syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    int64_t c = sys_clock(CLOCK_MONOTONIC);
    printf("vdso_ns_per_call %.1f\nsyscall_ns_per_call %.1f\n", (double)(b - a) / n, (double)(c - b) / m);
    return 0;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 4 && strcmp(argv[1], "clock") == 0) {
    long n = atol(argv[2]), ms = atol(argv[3]);
    int64_t prev = 0;
    for (long i = 0; i < n; i++) {
      int64_t t = vdso_clock(CLOCK_MONOTONIC);
      printf("%s%lld\n", t < prev ? "BACK " : "", (long long)t);
      prev = t;
      struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
      nanosleep(&d, NULL);
    }
    return 0;
  }

  const void *eh = (const void *)getauxval(AT_SYSINFO_EHDR);
  CHECK("auxv", eh != NULL, "AT_SYSINFO_EHDR is 0");
  CHECK("elf", eh && memcmp(eh, ELFMAG, SELFMAG) == 0, "no ELF header at AT_SYSINFO_EHDR");
  CHECK("symbols", vdso_sym("__vdso_clock_gettime") && vdso_sym("__vdso_gettimeofday") && vdso_sym("__vdso_time") && vdso_sym("__vdso_getcpu"),
        "a __vdso_ symbol is missing");

  /* The vDSO and the system call read the same clock: each reading lies between the other's. */
  static const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI, CLOCK_MONOTONIC_COARSE, CLOCK_REALTIME_COARSE};
  static const char *names[] = {"realtime", "monotonic", "boottime", "tai", "monotonic_coarse", "realtime_coarse"};
  for (unsigned i = 0; i < sizeof clocks / sizeof *clocks; i++) {
    int64_t a = sys_clock(clocks[i]), b = vdso_clock(clocks[i]), c = sys_clock(clocks[i]);
    char name[64];
    snprintf(name, sizeof name, "agree_%s", names[i]);
    CHECK(name, a <= b && b <= c, "syscall %lld, vdso %lld, syscall %lld", (long long)a, (long long)b, (long long)c);
  }
  /* Wall time is the host's: within a second of gettimeofday and time(). */
  struct timeval tv;
  gettimeofday(&tv, NULL);
  time_t t0 = time(NULL);
  int64_t real = vdso_clock(CLOCK_REALTIME) / 1000000000;
  CHECK("gettimeofday", tv.tv_sec <= real && real - tv.tv_sec <= 1, "gettimeofday %ld, realtime %lld", (long)tv.tv_sec, (long long)real);
  CHECK("time", t0 <= real && real - t0 <= 1, "time %ld, realtime %lld", (long)t0, (long long)real);
  CHECK("tai", vdso_clock(CLOCK_TAI) >= vdso_clock(CLOCK_REALTIME) - 1000000, "TAI behind REALTIME");

  /* Monotonic: a million readings never go back, and track a 50 ms sleep. */
  int64_t last = 0, back = 0;
  for (int i = 0; i < 1000000; i++) {
    int64_t t = vdso_clock(CLOCK_MONOTONIC);
    if (t < last) back++;
    last = t;
  }
  CHECK("monotonic", back == 0, "%lld readings went back", (long long)back);
  int64_t before = vdso_clock(CLOCK_MONOTONIC);
  struct timespec nap = {0, 50000000};
  nanosleep(&nap, NULL);
  int64_t slept = vdso_clock(CLOCK_MONOTONIC) - before;
  CHECK("sleep", slept >= 50000000 && slept < 2000000000, "a 50 ms sleep measured %lld ns", (long long)slept);

  /* Threads read it at once; none sees time go back, and the main thread's readings stay ordered. */
  pthread_t th[3];
  for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, hammer, NULL);
  nanosleep(&nap, NULL);
  int64_t m1 = vdso_clock(CLOCK_MONOTONIC);
  nanosleep(&nap, NULL);
  stop_threads = 1;
  long tback = 0;
  for (int i = 0; i < 3; i++) {
    void *r;
    pthread_join(th[i], &r);
    tback += (long)(intptr_t)r;
  }
  CHECK("threads", tback == 0 && vdso_clock(CLOCK_MONOTONIC) > m1, "%ld readings went back", tback);

  /* getcpu: the vDSO answers as the system call does. */
  unsigned cpu = 99, node = 99, scpu = 98, snode = 98;
  long (*vgetcpu)(unsigned *, unsigned *, void *) = (long (*)(unsigned *, unsigned *, void *))vdso_sym("__vdso_getcpu");
  long r1 = vgetcpu ? vgetcpu(&cpu, &node, NULL) : -1;
  long r2 = syscall(SYS_getcpu, &scpu, &snode, NULL);
  CHECK("getcpu", r1 == 0 && r2 == 0 && cpu == scpu && node == snode && (long)cpu < sysconf(_SC_NPROCESSORS_ONLN),
        "vdso %ld cpu %u node %u, syscall %ld cpu %u node %u", r1, cpu, node, r2, scpu, snode);
  CHECK("sched_getcpu", sched_getcpu() >= 0, "sched_getcpu failed");

  /* clock_getres: 1 ns for the fine clocks. */
  struct timespec res;
  CHECK("getres", clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec == 1, "res %ld.%09ld", (long)res.tv_sec, res.tv_nsec);
  /* A clock the vDSO does not answer goes to the kernel. */
  struct timespec cpu_t;
  CHECK("cputime", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_t) == 0 && ns(cpu_t) > 0, "CLOCK_PROCESS_CPUTIME_ID failed");
  CHECK("bad_clock", clock_gettime((clockid_t)12345, &cpu_t) == -1, "clock 12345 accepted");

  printf("%s\n", failures ? "FAILED" : "ALL OK");
  return failures ? 1 : 0;
}
