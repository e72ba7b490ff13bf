/*
 * A stand-alone supervisor for the process platform's stub, in C: it exists so the stub (stub.c) can be
 * tested and measured without the TypeScript kernel. A development tool, run by hand as root; not part
 * of the build:
 *
 *   node scripts/build-process-stub.mjs
 *   gcc -O2 -o /tmp/stub-selftest src/platform/process/stub/selftest.c
 *   /tmp/stub-selftest [dist/stubs/mapvisor-stub]
 *
 * It plays the supervisor's side of abi.h: creates the control memfd and an "anonymous memory" memfd
 * holding small hand-written x86-64 programs, starts the stub, orders mappings through the ops ring and
 * serves the events (system calls, faults, kicks, thread starts). Checks: forwarded system calls and
 * their results, the FPU and fs-base hand-over, a page fault, a kick, a spawned thread, the sandbox
 * (namespaces, empty root, fds, seccomp), the escapes the seccomp filter must kill (int 0x80, x32,
 * vsyscall, forbidden calls from the stub's own text), and the cost of one forwarded getppid.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"

/* ---- the test programs: position-independent x86-64, copied to offset 0 of the memory memfd, which
 * is mapped at 0x400000 (code) and 0x500000 (stack) ---- */
#define CODE_ADDR 0x400000UL
#define STACK_ADDR 0x500000UL
#define STACK2_ADDR 0x508000UL
#define MEM_SIZE (1UL << 20)

__asm__(
    ".section .rodata.progs, \"a\"\n"
    /* getppid N (rdi) times, each must return 42; checks fcw/mxcsr and the fs base first;
     * then write(1, msg), exit_group(7). */
    "prog_loop:\n"
    "  fnstcw -8(%rsp)\n"
    "  movzwl -8(%rsp), %eax\n"
    "  cmp $0x37f, %eax\n"
    "  jne 8f\n"
    "  stmxcsr -16(%rsp)\n"
    "  mov -16(%rsp), %eax\n"
    "  cmp $0x1f80, %eax\n"
    "  jne 8f\n"
    "  mov %fs:0, %rax\n"
    "  movabs $0x1122334455667788, %rdx\n"
    "  cmp %rdx, %rax\n"
    "  jne 7f\n"
    "  mov %rdi, %r12\n"
    "1: mov $39, %eax\n"
    "  syscall\n"
    "  cmp $42, %rax\n"
    "  jne 9f\n"
    "  dec %r12\n"
    "  jnz 1b\n"
    "  mov $1, %eax\n"
    "  mov $1, %edi\n"
    "  lea prog_loop_msg(%rip), %rsi\n"
    "  mov $(prog_loop_msg_end - prog_loop_msg), %edx\n"
    "  syscall\n"
    "  mov $231, %eax\n"
    "  mov $7, %edi\n"
    "  syscall\n"
    "  ud2\n"
    "7: mov $97, %edi\n"
    "  jmp 6f\n"
    "8: mov $98, %edi\n"
    "  jmp 6f\n"
    "9: mov $99, %edi\n"
    "6: mov $231, %eax\n"
    "  syscall\n"
    "  ud2\n"
    "prog_loop_msg: .ascii \"hello from the sandboxed program\\n\"\n"
    "prog_loop_msg_end:\n"
    "  .balign 8\n"
    "prog_loop_fsdata: .quad 0x1122334455667788\n"
    "prog_loop_end:\n"

    /* xmm0 = pattern, ymm1 = all ones; read 0x1000 (the supervisor skips the instruction, sets rbx =
     * 77 and xmm0 = another pattern); check all three; exit_group(11) or a code saying what failed. */
    "prog_fault:\n"
    "  movabs $0x0123456789abcdef, %rax\n"
    "  movq %rax, %xmm0\n"
    "  vpcmpeqd %ymm1, %ymm1, %ymm1\n"
    "  mov $0x1000, %eax\n"
    "prog_fault_insn:\n"
    "  mov (%rax), %rbx\n"
    "  movq %xmm0, %rax\n"
    "  movabs $0xfedcba9876543210, %rdx\n"
    "  cmp %rdx, %rax\n"
    "  jne 1f\n"
    "  cmp $77, %rbx\n"
    "  jne 2f\n"
    "  vextractf128 $1, %ymm1, %xmm2\n"
    "  movq %xmm2, %rax\n"
    "  cmp $-1, %rax\n"
    "  jne 4f\n"
    "  mov $11, %edi\n"
    "  jmp 3f\n"
    "1: mov $96, %edi\n"
    "  jmp 3f\n"
    "2: mov $95, %edi\n"
    "  jmp 3f\n"
    "4: mov $94, %edi\n"
    "3: mov $231, %eax\n"
    "  syscall\n"
    "  ud2\n"
    "prog_fault_end:\n"

    /* spin until kicked; the supervisor then moves rip to prog_spin_exit */
    "prog_spin:\n"
    "1: jmp 1b\n"
    "prog_spin_exit:\n"
    "  mov $231, %eax\n"
    "  mov $5, %edi\n"
    "  syscall\n"
    "  ud2\n"
    "prog_spin_end:\n"

    /* main thread: system call 1000 (the supervisor spawns slot 1 and answers), exit_group(answer);
     * thread: gettid (answered 1234), spin until kicked, exit(that) */
    "prog_thread:\n"
    "  mov $1000, %eax\n"
    "  syscall\n"
    "  mov %rax, %rdi\n"
    "  mov $231, %eax\n"
    "  syscall\n"
    "  ud2\n"
    "prog_thread_t:\n"
    "  mov $186, %eax\n"
    "  syscall\n"
    "  mov %rax, %r12\n"
    "1: jmp 1b\n"
    "prog_thread_t_exit:\n"
    "  mov %r12, %rdi\n"
    "  mov $60, %eax\n"
    "  syscall\n"
    "  ud2\n"
    "prog_thread_end:\n"

    /* escapes: each must kill the process with SIGSYS */
    "prog_int80:\n"
    "  mov $20, %eax\n"
    "  int $0x80\n"
    "  ud2\n"
    "prog_int80_end:\n"
    "prog_x32:\n"
    "  mov $0x40000027, %eax\n"
    "  syscall\n"
    "  ud2\n"
    "prog_x32_end:\n"
    "prog_vsys:\n"
    "  xor %edi, %edi\n"
    "  xor %esi, %esi\n"
    "  mov $0xffffffffff600000, %rax\n"
    "  call *%rax\n"
    "  ud2\n"
    "prog_vsys_end:\n"
    /* jump to a `syscall` instruction in the stub's text (rbx), registers as the supervisor set them */
    "prog_stubjmp:\n"
    "  jmp *%rbx\n"
    "prog_stubjmp_path: .asciz \"/\"\n"
    "prog_stubjmp_end:\n"
    ".previous\n");

extern const char prog_loop[], prog_loop_msg[], prog_loop_fsdata[], prog_loop_end[];
extern const char prog_fault[], prog_fault_insn[], prog_fault_end[];
extern const char prog_spin[], prog_spin_exit[], prog_spin_end[];
extern const char prog_thread[], prog_thread_t[], prog_thread_t_exit[], prog_thread_end[];
extern const char prog_int80[], prog_int80_end[], prog_x32[], prog_x32_end[];
extern const char prog_vsys[], prog_vsys_end[], prog_stubjmp[], prog_stubjmp_path[], prog_stubjmp_end[];

/* ---- helpers ---- */

static const char *stub_path = "dist/stubs/mapvisor-stub";
static int failures;

#define CHECK(cond, ...)                                  \
  do {                                                    \
    if (!(cond)) {                                        \
      failures++;                                         \
      printf("  FAIL %s:%d: ", __FILE__, __LINE__);       \
      printf(__VA_ARGS__);                                \
      printf("\n");                                       \
    }                                                     \
  } while (0)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { R_RAX, R_RBX, R_RCX, R_RDX, R_RSI, R_RDI, R_RSP, R_RBP, R_R8, R_R9, R_R10, R_R11,
       R_R12, R_R13, R_R14, R_R15, R_RIP, R_RFLAGS };

struct sb {
  char *ctl;
  uint8_t *mem;
  int ctlfd, memfd;
  pid_t outer;
  int outer_status;
  int inner;
};

#define HDR32(b, off) ((int *)((b)->ctl + (off)))
#define HDR64(b, off) ((uint64_t *)((b)->ctl + (off)))
#define SL(b, s, off) ((b)->ctl + SLOTS_OFF + (s) * SLOT_SIZE + (off))
#define SL32(b, s, off) ((int *)SL(b, s, off))
#define SL64(b, s, off) ((uint64_t *)SL(b, s, off))
#define REGS(b, s) SL64(b, s, S_REGS)

static long futex(int *addr, int op, int val, double timeout) {
  struct timespec ts = {(time_t)timeout, (long)((timeout - (time_t)timeout) * 1e9)};
  return syscall(SYS_futex, addr, op, val, timeout > 0 ? &ts : NULL, NULL, 0);
}

static void sb_create(struct sb *b, int namespaces, const char *prog, const char *end) {
  memset(b, 0, sizeof *b);
  b->ctlfd = memfd_create("mapvisor-ctl", MFD_CLOEXEC);
  b->memfd = memfd_create("mapvisor-mem", MFD_CLOEXEC);
  if (b->ctlfd < 0 || b->memfd < 0 || ftruncate(b->ctlfd, CTL_SIZE) || ftruncate(b->memfd, MEM_SIZE)) {
    perror("memfd");
    exit(2);
  }
  b->ctl = mmap(NULL, CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b->ctlfd, 0);
  b->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, b->memfd, 0);
  if (b->ctl == MAP_FAILED || b->mem == MAP_FAILED) {
    perror("mmap");
    exit(2);
  }
  *(uint32_t *)(b->ctl + H_MAGIC) = CTL_MAGIC;
  *(uint32_t *)(b->ctl + H_VERSION) = ABI_VERSION;
  *(uint32_t *)(b->ctl + H_UID) = getuid();
  *(uint32_t *)(b->ctl + H_GID) = getgid();
  *(uint32_t *)(b->ctl + H_NAMESPACES) = namespaces;
  *(uint32_t *)(b->ctl + H_MAP_FDS) = 1; /* fd 4, the test memfd; the stub closes the rest */
  memcpy(b->mem, prog, end - prog);
}

static void sb_exec(struct sb *b) {
  b->outer = fork();
  if (b->outer == 0) {
    int c = fcntl(b->ctlfd, F_DUPFD, 100), m = fcntl(b->memfd, F_DUPFD, 101);
    dup2(c, CTL_FD);
    dup2(m, FIRST_MAP_FD);
    close(c);
    close(m);
    int n = open("/dev/null", O_RDWR);
    dup2(n, 0);
    dup2(n, 1);
    dup2(n, 2);
    if (n > 2) close(n);
    syscall(SYS_close_range, FIRST_MAP_FD + 1, ~0U, 0); /* fds 5..15 would stay open in the stub */
    char *argv[] = {"mapvisor-stub", NULL}, *envp[] = {NULL};
    execve(stub_path, argv, envp);
    _exit(126);
  }
}

static void sb_destroy(struct sb *b) {
  munmap(b->ctl, CTL_SIZE);
  munmap(b->mem, MEM_SIZE);
  close(b->ctlfd);
  close(b->memfd);
}

static int dead(struct sb *b) {
  return __atomic_load_n(HDR32(b, H_DEAD), __ATOMIC_SEQ_CST) != 0;
}

static int wait_ready(struct sb *b) {
  double end = now() + 5;
  for (;;) {
    if (__atomic_load_n(HDR32(b, H_READY), __ATOMIC_SEQ_CST)) return 0;
    if (dead(b) || now() > end) return -1;
    futex(HDR32(b, H_READY), FUTEX_WAIT, 0, 0.1);
  }
}

static void push_op(struct sb *b, uint32_t kind, uint32_t prot, uint32_t flags, int fd, uint64_t addr,
                    uint64_t len, uint64_t off, uint64_t arg) {
  uint64_t i = *HDR64(b, H_OPS_HEAD);
  char *op = b->ctl + OPS_OFF + (i % OPS_CAP) * OP_SIZE;
  *(uint32_t *)(op + OP_KIND) = kind;
  *(uint32_t *)(op + OP_PROT) = prot;
  *(uint32_t *)(op + OP_FLAGS) = flags;
  *(int32_t *)(op + OP_FD) = fd;
  *(uint64_t *)(op + OP_ADDR) = addr;
  *(uint64_t *)(op + OP_LEN) = len;
  *(uint64_t *)(op + OP_OFFSET) = off;
  *(uint64_t *)(op + OP_ARG) = arg;
  __atomic_store_n(HDR64(b, H_OPS_HEAD), i + 1, __ATOMIC_SEQ_CST);
}

/* The supervisor's wait: spin, then FUTEX_WAIT with S_SUP_SLEEPING set. Returns the event (S_KIND),
 * or -1 if the process died or nothing came within `timeout` seconds. */
static int sup_spin = 20000; /* ~0.5 ms on this machine (a `pause` is ~25 ns) */
static int wait_event(struct sb *b, int s, double timeout) {
  int *state = SL32(b, s, S_STATE), *sleeping = SL32(b, s, S_SUP_SLEEPING);
  for (int i = 0; i < sup_spin; i++) {
    if (__atomic_load_n(state, __ATOMIC_SEQ_CST) == ST_POSTED) return *SL32(b, s, S_KIND);
    __builtin_ia32_pause();
  }
  double end = now() + timeout;
  for (;;) {
    __atomic_store_n(sleeping, 1, __ATOMIC_SEQ_CST);
    int st = __atomic_load_n(state, __ATOMIC_SEQ_CST);
    if (st == ST_POSTED) break;
    if (dead(b) || now() > end) {
      __atomic_store_n(sleeping, 0, __ATOMIC_SEQ_CST);
      return -1;
    }
    futex(state, FUTEX_WAIT, st, 0.05);
    __atomic_store_n(sleeping, 0, __ATOMIC_SEQ_CST);
  }
  __atomic_store_n(sleeping, 0, __ATOMIC_SEQ_CST);
  return *SL32(b, s, S_KIND);
}

static void answer(struct sb *b, int s, int state) {
  __atomic_store_n(SL32(b, s, S_STATE), state, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(SL32(b, s, S_STUB_SLEEPING), __ATOMIC_SEQ_CST)) futex(SL32(b, s, S_STATE), FUTEX_WAKE, 1, 0);
}

/* Answer a system call the way Linux's sysret returns: rip = rcx, rflags = r11. */
static void answer_syscall(struct sb *b, int s, uint64_t ret) {
  uint64_t *r = REGS(b, s);
  r[R_RAX] = ret;
  r[R_RIP] = r[R_RCX];
  r[R_RFLAGS] = r[R_R11];
  answer(b, s, ST_RESUME);
}

/* The first registers of a thread: the default x87/SSE state (fcw 0x37f, mxcsr 0x1f80) */
static void first_regs(struct sb *b, int s, uint64_t rip, uint64_t rsp) {
  uint64_t *r = REGS(b, s);
  memset(r, 0, 18 * 8);
  r[R_RIP] = rip;
  r[R_RSP] = rsp;
  r[R_RFLAGS] = 0x202;
  uint8_t *fx = (uint8_t *)SL(b, s, S_FXSAVE);
  memset(fx, 0, 512);
  *(uint16_t *)fx = 0x37f;
  *(uint32_t *)(fx + 24) = 0x1f80;
  *SL32(b, s, S_FLAGS) = F_FPU;
}

/* Start a sandbox running prog: map it (code RWX at CODE_ADDR, a stack at STACK_ADDR), wait for EV_START
 * on slot 0 and give it its first registers (not yet resumed). */
static int sb_launch(struct sb *b, int namespaces, const char *prog, const char *end) {
  sb_create(b, namespaces, prog, end);
  sb_exec(b);
  if (wait_ready(b)) {
    printf("  stub set-up failed: step %d errno %d\n", *HDR32(b, H_SETUP_STEP), *HDR32(b, H_SETUP_ERRNO));
    return -1;
  }
  b->inner = *HDR32(b, H_INNER_PID);
  push_op(b, OPK_MAP, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, FIRST_MAP_FD, CODE_ADDR, 0x10000, 0, 0);
  push_op(b, OPK_MAP, PROT_READ | PROT_WRITE, MAP_SHARED, FIRST_MAP_FD, STACK_ADDR, 0x10000, 0x10000, 0);
  /* must be skipped: below USER_START, and a forbidden fd */
  push_op(b, OPK_MAP, PROT_READ, MAP_SHARED, FIRST_MAP_FD, 0x3f0000, 0x1000, 0, 0);
  push_op(b, OPK_MAP, PROT_READ, MAP_SHARED, CTL_FD, 0x600000, 0x1000, 0, 0);
  if (wait_event(b, 0, 5) != EV_START) {
    printf("  no EV_START on slot 0\n");
    return -1;
  }
  first_regs(b, 0, CODE_ADDR, STACK_ADDR + 0x8000);
  return 0;
}

/* Wait for the process to end; returns H_EXIT_KIND * 1000 + H_EXIT_VALUE, or -1. */
static int sb_finish(struct sb *b) {
  double end = now() + 5;
  while (!dead(b) && now() < end) futex(HDR32(b, H_DEAD), FUTEX_WAIT, 0, 0.1);
  int status = 0;
  if (!dead(b)) {
    kill(b->outer, SIGKILL);
    waitpid(b->outer, &status, 0);
    return -1;
  }
  waitpid(b->outer, &status, 0);
  b->outer_status = status;
  /* the outer process exits 0; before the fork there is no outer process: the stub exits 125 */
  if (*HDR32(b, H_SETUP_STEP) == 0) CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "outer process status %#x", status);
  return *HDR32(b, H_EXIT_KIND) * 1000 + *HDR32(b, H_EXIT_VALUE);
}

/* The host tid of the program thread whose tid in its pid namespace is nstid (NSpid in /proc). */
static int host_tid(int pid, int nstid) {
  char path[128];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  if (!d) return -1;
  int found = -1;
  struct dirent *e;
  while (found < 0 && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p2[300], line[256];
    snprintf(p2, sizeof p2, "/proc/%d/task/%s/status", pid, e->d_name);
    FILE *f = fopen(p2, "r");
    if (!f) continue;
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, "NSpid:", 6)) continue;
      char *last = strrchr(line, '\t');
      if (last && atoi(last + 1) == nstid) found = atoi(e->d_name);
    }
    fclose(f);
  }
  closedir(d);
  return found;
}

static int proc_status_field(int pid, const char *name) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  int v = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, name, strlen(name)) && line[strlen(name)] == ':') v = atoi(line + strlen(name) + 1);
  fclose(f);
  return v;
}

static int count_dir(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

static int mapped(int pid, unsigned long addr) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  int hit = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, e;
    if (sscanf(line, "%lx-%lx", &a, &e) == 2 && addr >= a && addr < e) hit = 1;
  }
  fclose(f);
  return hit;
}

/* mappings at or above 0x400000 other than [vsyscall]: only those the test ordered */
static int user_mappings(int pid) {
  char path[64], line[512];
  snprintf(path, sizeof path, "/proc/%d/maps", pid);
  FILE *f = fopen(path, "r");
  int n = 0;
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, e;
    if (sscanf(line, "%lx-%lx", &a, &e) == 2 && a >= CODE_ADDR && !strstr(line, "[vsyscall]")) n++;
  }
  fclose(f);
  return n;
}

/* ---- the tests ---- */

static void test_loop(int namespaces, long n, int fpu) {
  printf("== system calls (%s namespaces, %s): %ld forwarded getppid, write, exit_group\n",
         namespaces ? "with" : "without", fpu ? "FPU image given" : "no FPU image: initial state", n);
  struct sb b;
  if (sb_launch(&b, namespaces, prog_loop, prog_loop_end)) {
    failures++;
    sb_finish(&b);
    sb_destroy(&b);
    return;
  }
  uint64_t fsdata = CODE_ADDR + (prog_loop_fsdata - prog_loop);
  REGS(&b, 0)[R_RDI] = n;
  if (!fpu) *SL32(&b, 0, S_FLAGS) &= ~F_FPU;
  *SL64(&b, 0, S_FS_BASE) = fsdata;
  *SL32(&b, 0, S_FLAGS) |= F_FS;
  double t0 = now(), t1 = 0;
  answer(&b, 0, ST_RESUME);
  long calls = 0, slept = 0;
  double delays = 0;
  int exit_code = -1;
  for (;;) {
    int ev = wait_event(&b, 0, 5);
    if (ev != EV_SYSCALL) {
      CHECK(0, "event %d (signo %d, rip %#lx), expected a system call", ev, *SL32(&b, 0, S_SIGNO),
            (unsigned long)REGS(&b, 0)[R_RIP]);
      break;
    }
    uint64_t *r = REGS(&b, 0);
    if (r[R_RAX] == 39) {
      if (calls++ == 0) CHECK(*SL64(&b, 0, S_FS_BASE) == fsdata, "fs base %#lx", (unsigned long)*SL64(&b, 0, S_FS_BASE));
      if (calls % 10007 == 0) {
        /* now and then answer late, so that the stub gives up spinning and sleeps in FUTEX_WAIT */
        double d = now();
        usleep(3000);
        delays += now() - d;
        slept += __atomic_load_n(SL32(&b, 0, S_STUB_SLEEPING), __ATOMIC_SEQ_CST);
      }
      answer_syscall(&b, 0, 42);
    } else if (r[R_RAX] == 1) {
      t1 = now();
      uint64_t a = r[R_RSI], len = r[R_RDX];
      CHECK(r[R_RDI] == 1 && a >= CODE_ADDR && a + len <= CODE_ADDR + 0x10000, "write(%lu, %#lx, %lu)",
            (unsigned long)r[R_RDI], (unsigned long)a, (unsigned long)len);
      if (a >= CODE_ADDR && a + len <= CODE_ADDR + 0x10000) printf("  program wrote: %.*s", (int)len, b.mem + (a - CODE_ADDR));
      answer_syscall(&b, 0, len);
    } else if (r[R_RAX] == 231) {
      exit_code = (int)r[R_RDI];
      /* the sandbox, seen from the host while the program's process is stopped in a system call */
      CHECK(proc_status_field(b.inner, "Seccomp") == 2, "Seccomp: %d", proc_status_field(b.inner, "Seccomp"));
      CHECK(proc_status_field(b.inner, "NoNewPrivs") == 1, "NoNewPrivs");
      char path[64];
      snprintf(path, sizeof path, "/proc/%d/fd", b.inner);
      CHECK(count_dir(path) == 2, "the program's process has %d fds, expected 2 (3 and 4)", count_dir(path));
      if (namespaces) {
        snprintf(path, sizeof path, "/proc/%d/root", b.inner);
        CHECK(count_dir(path) == 0, "the root directory has %d entries, expected 0", count_dir(path));
        CHECK(*SL32(&b, 0, S_NSTID) == 1, "S_NSTID %d, expected 1 (pid 1 of a new pid namespace)", *SL32(&b, 0, S_NSTID));
      }
      CHECK(mapped(b.inner, CODE_ADDR) == 1, "the code is not mapped");
      CHECK(mapped(b.inner, 0x3f0000) == 0, "an op below USER_START was applied");
      CHECK(mapped(b.inner, 0x600000) == 0, "an op with the control fd was applied");
      CHECK(user_mappings(b.inner) == 2, "%d mappings above 0x400000, expected 2 (code, stack)", user_mappings(b.inner));
      CHECK(*HDR64(&b, H_OPS_DONE) == 4, "H_OPS_DONE %lu", (unsigned long)*HDR64(&b, H_OPS_DONE));
      kill(b.inner, SIGKILL);
      break;
    } else {
      CHECK(0, "unexpected system call %lu", (unsigned long)r[R_RAX]);
      break;
    }
  }
  CHECK(calls == n, "%ld getppid calls", calls);
  CHECK(slept == n / 10007, "the stub was asleep at %ld of %ld late answers", slept, n / 10007);
  t0 += delays; /* leave the deliberate delays out of the measure */
  CHECK(exit_code == 7, "exit_group(%d), expected 7 (99: a wrong answer, 98: fpu state, 97: fs base)", exit_code);
  int res = sb_finish(&b);
  CHECK(res == 2009, "exit kind/value %d, expected killed by SIGKILL", res);
  if (t1 > 0 && calls == n) printf("  %.2f us per forwarded getppid (round trip, %ld calls)\n", (t1 - t0) / n * 1e6, n);
  sb_destroy(&b);
}

static void test_fault(void) {
  printf("== a page fault, with FPU state in both directions\n");
  struct sb b;
  if (sb_launch(&b, 1, prog_fault, prog_fault_end)) {
    failures++;
    sb_finish(&b);
    sb_destroy(&b);
    return;
  }
  answer(&b, 0, ST_RESUME);
  int ev = wait_event(&b, 0, 5);
  uint64_t *r = REGS(&b, 0);
  uint64_t insn = CODE_ADDR + (prog_fault_insn - prog_fault);
  CHECK(ev == EV_FAULT, "event %d, expected EV_FAULT", ev);
  if (ev == EV_FAULT) {
    printf("  fault: signo %d si_code %d addr %#lx trapno %lu err %#lx rip %#lx\n", *SL32(&b, 0, S_SIGNO),
           *SL32(&b, 0, S_SICODE), (unsigned long)*SL64(&b, 0, S_ADDR), (unsigned long)*SL64(&b, 0, S_TRAPNO),
           (unsigned long)*SL64(&b, 0, S_ERR), (unsigned long)r[R_RIP]);
    CHECK(*SL32(&b, 0, S_SIGNO) == SIGSEGV && *SL64(&b, 0, S_ADDR) == 0x1000 && *SL64(&b, 0, S_TRAPNO) == 14,
          "the fault is not a SIGSEGV at 0x1000 with trapno 14");
    CHECK((*SL64(&b, 0, S_ERR) & 4) != 0, "page-fault error code without the user bit");
    CHECK(r[R_RIP] == insn, "rip %#lx, expected %#lx", (unsigned long)r[R_RIP], (unsigned long)insn);
    uint8_t *fx = (uint8_t *)SL(&b, 0, S_FXSAVE);
    CHECK(*(uint64_t *)(fx + 160) == 0x0123456789abcdefUL, "xmm0 %#lx in S_FXSAVE", (unsigned long)*(uint64_t *)(fx + 160));
    CHECK(*(uint32_t *)(fx + 24) == 0x1f80, "mxcsr %#x in S_FXSAVE", *(uint32_t *)(fx + 24));
    *(uint64_t *)(fx + 160) = 0xfedcba9876543210UL;
    memset(fx + 464, 0, 48); /* the stub must not depend on these bytes */
    r[R_RIP] = insn + 3;
    r[R_RBX] = 77;
    *SL32(&b, 0, S_FLAGS) = F_FPU;
    answer(&b, 0, ST_RESUME);
    ev = wait_event(&b, 0, 5);
    CHECK(ev == EV_SYSCALL && r[R_RAX] == 231, "event %d rax %lu, expected exit_group", ev, (unsigned long)r[R_RAX]);
    CHECK(r[R_RDI] == 11, "exit_group(%lu), expected 11 (96: xmm0, 95: rbx, 94: the upper half of ymm1)",
          (unsigned long)r[R_RDI]);
    answer(&b, 0, ST_EXIT); /* the last thread exits: the process exits with status 0 */
  }
  int res = sb_finish(&b);
  CHECK(res == 1000, "exit kind/value %d, expected exited 0", res);
  sb_destroy(&b);
}

static void test_kick(void) {
  printf("== a kick (tgkill KICK_SIGNAL) while the program spins\n");
  struct sb b;
  if (sb_launch(&b, 1, prog_spin, prog_spin_end)) {
    failures++;
    sb_finish(&b);
    sb_destroy(&b);
    return;
  }
  answer(&b, 0, ST_RESUME);
  usleep(20000);
  int tid = host_tid(b.inner, *SL32(&b, 0, S_NSTID));
  CHECK(tid == b.inner, "host tid %d, expected %d", tid, b.inner);
  double t0 = now();
  syscall(SYS_tgkill, b.inner, tid, KICK_SIGNAL);
  int ev = wait_event(&b, 0, 5);
  double t1 = now();
  uint64_t *r = REGS(&b, 0);
  CHECK(ev == EV_INTERRUPT, "event %d, expected EV_INTERRUPT", ev);
  CHECK(r[R_RIP] == CODE_ADDR, "rip %#lx", (unsigned long)r[R_RIP]);
  if (ev == EV_INTERRUPT) printf("  kick to event: %.1f us\n", (t1 - t0) * 1e6);
  r[R_RIP] = CODE_ADDR + (prog_spin_exit - prog_spin);
  answer(&b, 0, ST_RESUME);
  ev = wait_event(&b, 0, 5);
  CHECK(ev == EV_SYSCALL && r[R_RAX] == 231 && r[R_RDI] == 5, "event %d rax %lu rdi %lu", ev,
        (unsigned long)r[R_RAX], (unsigned long)r[R_RDI]);
  kill(b.inner, SIGKILL);
  int res = sb_finish(&b);
  CHECK(res == 2009, "exit kind/value %d", res);
  sb_destroy(&b);
}

static void test_thread(void) {
  printf("== a spawned thread (OPK_SPAWN slot 1): start, system call, kick, exit\n");
  struct sb b;
  if (sb_launch(&b, 1, prog_thread, prog_thread_end)) {
    failures++;
    sb_finish(&b);
    sb_destroy(&b);
    return;
  }
  answer(&b, 0, ST_RESUME);
  int ev = wait_event(&b, 0, 5);
  uint64_t *r0 = REGS(&b, 0), *r1 = REGS(&b, 1);
  CHECK(ev == EV_SYSCALL && r0[R_RAX] == 1000, "event %d rax %lu", ev, (unsigned long)r0[R_RAX]);
  push_op(&b, OPK_SPAWN, 0, 0, 0, 0, 0, 0, 1);
  answer(&b, 0, ST_APPLY);
  ev = wait_event(&b, 0, 5);
  CHECK(ev == EV_APPLIED, "event %d, expected EV_APPLIED", ev);
  ev = wait_event(&b, 1, 5);
  CHECK(ev == EV_START, "slot 1: event %d, expected EV_START", ev);
  CHECK(*SL32(&b, 1, S_GONE) == 1, "S_GONE %d", *SL32(&b, 1, S_GONE));
  int nstid = *SL32(&b, 1, S_NSTID);
  CHECK(nstid > 1, "slot 1 S_NSTID %d", nstid);
  first_regs(&b, 1, CODE_ADDR + (prog_thread_t - prog_thread), STACK2_ADDR + 0x8000);
  answer(&b, 1, ST_RESUME);
  ev = wait_event(&b, 1, 5);
  CHECK(ev == EV_SYSCALL && r1[R_RAX] == 186, "slot 1: event %d rax %lu", ev, (unsigned long)r1[R_RAX]);
  answer_syscall(&b, 1, 1234);
  usleep(20000);
  int tid = host_tid(b.inner, nstid);
  CHECK(tid > 0 && tid != b.inner, "slot 1 host tid %d", tid);
  syscall(SYS_tgkill, b.inner, tid, KICK_SIGNAL);
  ev = wait_event(&b, 1, 5);
  CHECK(ev == EV_INTERRUPT, "slot 1: event %d, expected EV_INTERRUPT", ev);
  r1[R_RIP] = CODE_ADDR + (prog_thread_t_exit - prog_thread);
  answer(&b, 1, ST_RESUME);
  ev = wait_event(&b, 1, 5);
  CHECK(ev == EV_SYSCALL && r1[R_RAX] == 60 && r1[R_RDI] == 1234, "slot 1: event %d rax %lu rdi %lu", ev,
        (unsigned long)r1[R_RAX], (unsigned long)r1[R_RDI]);
  answer(&b, 1, ST_EXIT);
  double end = now() + 5;
  while (__atomic_load_n(SL32(&b, 1, S_GONE), __ATOMIC_SEQ_CST) && now() < end) futex(SL32(&b, 1, S_GONE), FUTEX_WAIT, 1, 0.1);
  CHECK(*SL32(&b, 1, S_GONE) == 0, "S_GONE not cleared after the thread's exit");
  answer_syscall(&b, 0, 55);
  ev = wait_event(&b, 0, 5);
  CHECK(ev == EV_SYSCALL && r0[R_RAX] == 231 && r0[R_RDI] == 55, "event %d rax %lu rdi %lu", ev,
        (unsigned long)r0[R_RAX], (unsigned long)r0[R_RDI]);
  kill(b.inner, SIGKILL);
  int res = sb_finish(&b);
  CHECK(res == 2009, "exit kind/value %d", res);
  sb_destroy(&b);
}

/* An escape attempt: must end the process with SIGSYS (seccomp's KILL_PROCESS), no event. */
static void escape(const char *what, const char *prog, const char *end, const uint64_t *regs) {
  struct sb b;
  if (sb_launch(&b, 1, prog, end)) {
    failures++;
    sb_finish(&b);
    sb_destroy(&b);
    return;
  }
  uint64_t *r = REGS(&b, 0);
  if (regs)
    for (int i = 0; i < 16; i++) r[i] = regs[i];
  answer(&b, 0, ST_RESUME);
  int ev = wait_event(&b, 0, 2);
  if (ev >= 0) kill(b.inner, SIGKILL);
  int res = sb_finish(&b);
  printf("  %-48s %s\n", what, res == 2031 ? "killed by SIGSYS" : "NOT KILLED BY SIGSYS");
  CHECK(ev < 0, "%s: an event (%d, rax %lu, signo %d) instead of death", what, ev, (unsigned long)r[R_RAX],
        *SL32(&b, 0, S_SIGNO));
  CHECK(res == 2031, "%s: exit kind/value %d, expected killed by SIGSYS", what, res);
  sb_destroy(&b);
}

static uint64_t stub_syscall_insn(void) {
  char cmd[600], line[256];
  snprintf(cmd, sizeof cmd, "nm '%s'", stub_path);
  FILE *f = popen(cmd, "r");
  uint64_t a = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long v;
    char t, name[128];
    if (sscanf(line, "%lx %c %127s", &v, &t, name) == 3 && !strcmp(name, "stub_restorer")) a = v + 5; /* mov $15,%eax */
  }
  if (f) pclose(f);
  return a;
}

static void test_escapes(void) {
  printf("== escapes\n");
  escape("int $0x80", prog_int80, prog_int80_end, NULL);
  escape("x32 system call (nr | 0x40000000)", prog_x32, prog_x32_end, NULL);
  escape("vsyscall page", prog_vsys, prog_vsys_end, NULL);
  uint64_t sc = stub_syscall_insn();
  CHECK(sc != 0, "no stub_restorer in nm's output");
  if (!sc) return;
  uint64_t path = CODE_ADDR + (prog_stubjmp_path - prog_stubjmp);
  uint64_t r[16];
  /* openat(AT_FDCWD, "/", O_RDONLY) */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 257, r[R_RDI] = (uint64_t)-100, r[R_RSI] = path;
  escape("openat from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* getppid: harmless, but not on the list */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 39;
  escape("getppid from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* mmap(0, 4096, RW, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 9, r[R_RSI] = 4096, r[R_RDX] = 3, r[R_R10] = 0x22, r[R_R8] = (uint64_t)-1;
  escape("anonymous mmap from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* mmap of the control memfd */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 9, r[R_RSI] = 4096, r[R_RDX] = 3, r[R_R10] = 1, r[R_R8] = CTL_FD;
  escape("mmap of fd 3 from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* mmap of fd 4 | 1 << 32 (the kernel would see fd 4... or 3 for 3 | 1 << 32) */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 9, r[R_RSI] = 4096, r[R_RDX] = 3, r[R_R10] = 1, r[R_R8] = (1UL << 32) | CTL_FD;
  escape("mmap of fd 3 | 1<<32 from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* clone(SIGCHLD): a fork */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 56, r[R_RDI] = 17;
  escape("fork (clone SIGCHLD) from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* futex with another op (FUTEX_CMP_REQUEUE) */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 202, r[R_RDI] = CODE_ADDR, r[R_RSI] = 4;
  escape("futex(FUTEX_CMP_REQUEUE) from the stub's text", prog_stubjmp, prog_stubjmp_end, r);
  /* arch_prctl(ARCH_GET_FS) */
  memset(r, 0, sizeof r);
  r[R_RBX] = sc, r[R_RAX] = 158, r[R_RDI] = 0x1003, r[R_RSI] = STACK_ADDR;
  escape("arch_prctl(ARCH_GET_FS) from the stub's text", prog_stubjmp, prog_stubjmp_end, r);

  /* and a control: an allowed call from the stub's text (sched_yield) returns, then the program runs
   * into the ud2 after the restorer's syscall: a SIGILL fault event at sc + 2 */
  printf("  control: sched_yield from the stub's text is allowed\n");
  struct sb b;
  if (sb_launch(&b, 1, prog_stubjmp, prog_stubjmp_end) == 0) {
    uint64_t *rr = REGS(&b, 0);
    rr[R_RBX] = sc, rr[R_RAX] = 24;
    answer(&b, 0, ST_RESUME);
    int ev = wait_event(&b, 0, 2);
    CHECK(ev == EV_FAULT && *SL32(&b, 0, S_SIGNO) == SIGILL && rr[R_RIP] == sc + 2 && rr[R_RAX] == 0,
          "event %d signo %d rip %#lx rax %ld", ev, *SL32(&b, 0, S_SIGNO), (unsigned long)rr[R_RIP], (long)rr[R_RAX]);
    kill(b.inner, SIGKILL);
  } else {
    failures++;
  }
  sb_finish(&b);
  sb_destroy(&b);
}

static void test_bad_magic(void) {
  printf("== a control area with the wrong version: set-up failure reported\n");
  struct sb b;
  sb_create(&b, 1, prog_spin, prog_spin_end);
  *(uint32_t *)(b.ctl + H_VERSION) = 99;
  sb_exec(&b);
  CHECK(wait_ready(&b) < 0, "H_READY with a bad version");
  int res = sb_finish(&b);
  CHECK(*HDR32(&b, H_SETUP_STEP) == SETUP_MAGIC, "H_SETUP_STEP %d", *HDR32(&b, H_SETUP_STEP));
  /* a failure before the fork: no outer process to fill H_EXIT_*, the stub itself exits 125 */
  CHECK(res == 0 && WIFEXITED(b.outer_status) && WEXITSTATUS(b.outer_status) == 125,
        "exit kind/value %d, stub status %#x, expected the stub to exit 125", res, b.outer_status);
  sb_destroy(&b);
}

int main(int argc, char **argv) {
  if (argc > 1) stub_path = argv[1];
  if (getenv("SUP_SPIN")) sup_spin = atoi(getenv("SUP_SPIN")); /* the supervisor's spin, in `pause`s */
  int spin = sup_spin;
  setvbuf(stdout, NULL, _IONBF, 0);
  if (access(stub_path, X_OK)) {
    fprintf(stderr, "no stub at %s (node scripts/build-process-stub.mjs)\n", stub_path);
    return 2;
  }
  double t0 = now();
  for (int i = 0; i < 100000; i++) syscall(SYS_getppid);
  printf("native getppid: %.3f us\n", (now() - t0) / 100000 * 1e6);
  test_loop(1, 100000, 1);
  test_loop(0, 1000, 0);
  printf("(the supervisor does not spin: futex wake-ups every time)\n");
  sup_spin = 0;
  test_loop(1, 20000, 1);
  sup_spin = spin;
  test_fault();
  test_kick();
  test_thread();
  test_escapes();
  test_bad_magic();
  printf(failures ? "%d FAILURES\n" : "all passed\n", failures);
  return failures != 0;
}
