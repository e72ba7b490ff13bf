/*
 * The process platform's stub: the only code of ours that runs inside the sandboxed host process.
 *
 * Why it exists: the process platform runs a Linux x86-64 program as a real host process, but every
 * system call it makes must reach mapvisor's own kernel (the supervisor, a Node process) instead of the
 * host's. This stub is what the supervisor starts (a tiny static ELF, no libc). It locks itself down
 * (namespaces, an empty root, no new privileges, a seccomp filter) and then turns every system call,
 * fault and "kick" of the program into an event in a shared-memory control area, waits for the
 * supervisor's answer, and resumes the program with the registers the supervisor chose. This is
 * gVisor's "systrap" platform (pkg/sentry/platform/systrap), reduced to what mapvisor needs.
 *
 * The contract with the supervisor (layout, states, events) is abi.h; read it first.
 *
 * Security model: the program runs in this same address space and can write everything here, the
 * control area included, and can jump into any of our code. None of that is a way out, because the
 * seccomp filter allows host system calls only from the stub's text and only a short allowlist of them
 * (install_seccomp); every other system call traps (SIGSYS) into the handler below, which only forwards
 * it. So the values read from the control area are validated only to keep the stub from crashing on a
 * supervisor bug; a program that scribbles on them can at worst kill its own process.
 *
 * Built freestanding (scripts/build-process-stub.mjs): no libc, raw system calls, our own memcpy/memset.
 */
#include "abi.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

/* ---- Linux x86-64 numbers (arch/x86/entry/syscalls/syscall_64.tbl and the uapi headers) ---- */
#define NR_write 1
#define NR_close 3
#define NR_mmap 9
#define NR_mprotect 10
#define NR_munmap 11
#define NR_rt_sigaction 13
#define NR_rt_sigprocmask 14
#define NR_rt_sigreturn 15
#define NR_sched_yield 24
#define NR_clone 56
#define NR_exit 60
#define NR_wait4 61
#define NR_chdir 80
#define NR_sigaltstack 131
#define NR_pivot_root 155
#define NR_prctl 157
#define NR_arch_prctl 158
#define NR_mount 165
#define NR_umount2 166
#define NR_gettid 186
#define NR_futex 202
#define NR_exit_group 231
#define NR_openat 257
#define NR_unshare 272
#define NR_prlimit64 302
#define NR_seccomp 317
#define NR_close_range 436

#define EINTR 4
#define AT_FDCWD (-100)
#define O_WRONLY 1
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_SHARED 1
#define MAP_PRIVATE 2
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_FIXED_NOREPLACE 0x100000
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define SIG_SETMASK 2
#define SIGILL 4
#define SIGTRAP 5
#define SIGBUS 7
#define SIGFPE 8
#define SIGKILL 9
#define SIGSEGV 11
#define SIGCHLD 17
#define SIGSYS 31
#define SA_SIGINFO 0x4
#define SA_ONSTACK 0x08000000
#define SA_RESTORER 0x04000000
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS */
#define PR_SET_PDEATHSIG 1
#define PR_SET_DUMPABLE 4
#define PR_SET_NO_NEW_PRIVS 38
#define RLIMIT_CORE 4
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_NEWNS 0x20000
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define CLONE_CHILD_CLEARTID 0x200000
#define CLONE_NEWUTS 0x04000000
#define CLONE_NEWIPC 0x08000000
#define CLONE_NEWUSER 0x10000000
#define CLONE_NEWPID 0x20000000
#define CLONE_NEWNET 0x40000000
#define MS_NOSUID 2
#define MS_NODEV 4
#define MS_NOEXEC 8
#define MS_REC 0x4000
#define MS_PRIVATE 0x40000
#define MNT_DETACH 2
#define WALL 0x40000000 /* __WALL */
#define AT_NULL 0
#define AT_HWCAP2 26
#define HWCAP2_FSGSBASE 2
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#define SECCOMP_RET_TRAP 0x00030000U
#define SECCOMP_RET_ALLOW 0x7fff0000U
#define AUDIT_ARCH_X86_64 0xc000003eU
#define X32_SYSCALL_BIT 0x40000000U
#define FP_XSTATE_MAGIC1 0x46505853U /* arch/x86/include/uapi/asm/sigcontext.h */

/* The only clone the stub's text may make (the seccomp filter checks for exactly these flags). */
#define THREAD_CLONE_FLAGS (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | \
                            CLONE_SYSVSEM | CLONE_CHILD_CLEARTID)
#define USER_START 0x400000UL
#define USER_CANONICAL_END 0x800000000000UL /* 47-bit user space: wrfsbase takes anything below */
#define USER_SPACE_END 0x7ffffffff000UL     /* TASK_SIZE_MAX with 4-level paging (and the default
                                             * mapping limit with 5-level paging) */
#define STUB_SPIN 3000                      /* `pause` iterations before sleeping in FUTEX_WAIT */

/* ---- kernel structures (x86-64 uapi) ---- */

/* struct sigcontext_64 (arch/x86/include/uapi/asm/sigcontext.h) */
struct sigcontext64 {
  u64 r8, r9, r10, r11, r12, r13, r14, r15;
  u64 rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp;
  u64 rip, eflags;
  u16 cs, gs, fs, ss;
  u64 err, trapno, oldmask, cr2;
  u64 fpstate; /* pointer to the FXSAVE/XSAVE image */
  u64 reserved1[8];
};

struct kstack {
  u64 ss_sp;
  int ss_flags;
  int pad;
  u64 ss_size;
};

/* struct ucontext as the kernel lays it out in the rt_sigframe (arch/x86/include/asm/sigframe.h,
 * include/uapi/asm-generic/ucontext.h): uc_sigmask is the 8-byte kernel sigset_t. */
struct kucontext {
  u64 uc_flags;
  u64 uc_link;
  struct kstack uc_stack;
  struct sigcontext64 uc_mcontext;
  u64 uc_sigmask;
};

/* The head of siginfo_t (include/uapi/asm-generic/siginfo.h): the union starts at 16 on 64-bit. */
struct ksiginfo {
  int si_signo;
  int si_errno;
  int si_code;
  int pad;
  union {
    u64 addr; /* SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP: si_addr */
    struct {
      u64 call_addr; /* SIGSYS: si_call_addr */
      int syscall;   /* si_syscall */
      u32 arch;      /* si_arch */
    } sys;
  } u;
};

/* struct sigaction as rt_sigaction takes it (kernel_sigaction; sigset of 8 bytes) */
struct ksigaction {
  void *handler;
  u64 flags;
  void *restorer;
  u64 mask;
};

struct sock_filter {
  u16 code;
  u8 jt;
  u8 jf;
  u32 k;
};

struct sock_fprog {
  u16 len;
  struct sock_filter *filter;
};

/* ---- raw system calls ---- */

static inline long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define sys0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

static void __attribute__((noreturn)) sys_exit_group(int code) {
  for (;;) sys1(NR_exit_group, code);
}
static void __attribute__((noreturn)) sys_exit_thread(void) {
  for (;;) sys1(NR_exit, 0);
}
/* Crash the whole process: every handler runs with all signals blocked, so the kernel makes the
 * SIGILL fatal (kernel/signal.c force_sig_info_to_task resets a blocked forced signal to SIG_DFL). */
static void __attribute__((noreturn)) die(void) {
  for (;;) __builtin_trap();
}

/* ---- freestanding memory functions (gcc may emit calls to these) ---- */

void *memcpy(void *dst, const void *src, u64 n) {
  void *d = dst;
  __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
  return dst;
}
void *memmove(void *dst, const void *src, u64 n) {
  u8 *d = dst;
  const u8 *s = src;
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  while (n--) d[n] = s[n];
  return dst;
}
void *memset(void *dst, int c, u64 n) {
  void *d = dst;
  __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
  return dst;
}

/* ---- the control area ---- */

#define CTL(off) (CTL_ADDR + (off))
#define SLOT(s) (CTL_ADDR + SLOTS_OFF + (u64)(s) * SLOT_SIZE)
#define ALT(s) (CTL_ADDR + ALT_OFF + (u64)(s) * ALT_SIZE)
#define I32(addr) ((int *)(addr))
#define U64(addr) ((u64 *)(addr))
/* Every access to shared words goes through these: one access each (no re-reads a concurrent writer
 * could change between a check and a use), and sequentially consistent where the protocol needs it. */
#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define READ(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define WRITE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* The supervisor is another process: the futexes are shared (no FUTEX_PRIVATE_FLAG). */
static void futex_wake(int *addr, int n) {
  sys3(NR_futex, addr, FUTEX_WAKE, n);
}
static void futex_wait(int *addr, int val) {
  sys4(NR_futex, addr, FUTEX_WAIT, val, 0);
}

/* ---- per-thread state private to the stub (.bss; the program can write it too, to its own harm) ---- */

char stub_setup_stack[16384] __attribute__((aligned(64)));
__asm__(".globl stub_setup_stack_top\n.set stub_setup_stack_top, stub_setup_stack + 16384");

static int have_fsgsbase; /* user-mode rd/wr{fs,gs}base enabled by the kernel (AT_HWCAP2) */
static u32 mxcsr_mask;    /* the CPU's MXCSR_MASK: bits a loaded MXCSR may have (others #GP) */
/* The fs/gs bases each thread last set, reported when the CPU cannot tell us (no FSGSBASE; without it
 * the program cannot change them either, except through us). */
static u64 fs_cache[MAX_THREADS], gs_cache[MAX_THREADS];

extern char __executable_start[], __etext[];
extern void stub_restorer(void);
extern void __attribute__((noreturn)) stub_enter(struct kucontext *uc);
extern long stub_clone_thread(u64 flags, void *newsp, int *ctid, long slot);

/* ---- set-up failures ---- */

static void __attribute__((noreturn)) setup_fail(int step, long ret) {
  STORE(I32(CTL(H_SETUP_ERRNO)), (int)-ret);
  STORE(I32(CTL(H_SETUP_STEP)), step);
  STORE(I32(CTL(H_DEAD)), 1);
  futex_wake(I32(CTL(H_DEAD)), 0x7fffffff);
  futex_wake(I32(CTL(H_READY)), 0x7fffffff);
  sys_exit_group(125);
}
static void check(int step, long ret) {
  if (ret < 0) setup_fail(step, ret);
}

/* ---- fs / gs bases ---- */

static void set_fs(int s, u64 v) {
  if (have_fsgsbase && v < USER_CANONICAL_END)
    __asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
  else if (sys2(NR_arch_prctl, ARCH_SET_FS, v) < 0)
    return; /* not a user address: keep the old base */
  fs_cache[s] = v;
}
static void set_gs(int s, u64 v) {
  if (have_fsgsbase && v < USER_CANONICAL_END)
    __asm__ volatile("wrgsbase %0" : : "r"(v) : "memory");
  else if (sys2(NR_arch_prctl, ARCH_SET_GS, v) < 0)
    return;
  gs_cache[s] = v;
}
static u64 get_fs(int s) {
  u64 v;
  if (!have_fsgsbase) return fs_cache[s];
  __asm__ volatile("rdfsbase %0" : "=r"(v));
  return v;
}
static u64 get_gs(int s) {
  u64 v;
  if (!have_fsgsbase) return gs_cache[s];
  __asm__ volatile("rdgsbase %0" : "=r"(v));
  return v;
}

/* ---- the ops ring ---- */

static void ops_lock(void) {
  int *lock = I32(CTL(H_OPS_LOCK));
  for (u32 i = 1;; i++) {
    int expected = 0;
    if (__atomic_compare_exchange_n(lock, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    __builtin_ia32_pause();
    if ((i & 0xfff) == 0) sys0(NR_sched_yield); /* the holder may be descheduled */
  }
}

static void spawn_thread(u64 s) {
  if (s < 1 || s >= MAX_THREADS) return;
  int *gone = I32(SLOT(s) + S_GONE);
  /* A host thread may still be on this slot's stack (it clears S_GONE when it has exited): two threads
   * on one stack would crash, and its exit would clear the new thread's S_GONE. The supervisor must wait
   * for S_GONE == 0 before reusing a slot. */
  if (LOAD(gone) != 0) return;
  STORE(gone, 1);
  u64 sp = (ALT(s) + ALT_SIZE - 64) & ~15UL;
  if (stub_clone_thread(THREAD_CLONE_FLAGS, (void *)sp, gone, (long)s) < 0) STORE(gone, 0);
}

/* Apply the ops in [H_OPS_DONE, H_OPS_HEAD): the supervisor's memory-map changes. Any stub thread may
 * do it (the one that posted an event, before it resumes); the lock keeps them in order. */
static void apply_ops(void) {
  u64 *headp = U64(CTL(H_OPS_HEAD)), *donep = U64(CTL(H_OPS_DONE));
  if (LOAD(donep) == LOAD(headp)) return;
  ops_lock();
  u64 head = LOAD(headp), done = LOAD(donep);
  if (head - done > OPS_CAP) {
    /* corrupted (or head < done): drop everything rather than apply garbage */
    STORE(donep, head);
  } else {
    for (u64 i = done; i != head; i++) {
      u64 op = CTL(OPS_OFF) + (i % OPS_CAP) * OP_SIZE;
      u32 kind = READ(I32(op + OP_KIND));
      u32 prot = READ(I32(op + OP_PROT));
      u32 flags = READ(I32(op + OP_FLAGS));
      int fd = READ(I32(op + OP_FD));
      u64 addr = READ(U64(op + OP_ADDR));
      u64 len = READ(U64(op + OP_LEN));
      u64 offset = READ(U64(op + OP_OFFSET));
      u64 arg = READ(U64(op + OP_ARG));
      /* Below USER_START live the stub and the control area: never touch them. */
      int in_user = addr >= USER_START && addr + len >= addr;
      switch (kind) {
      case OPK_MAP:
        if (in_user && fd >= FIRST_MAP_FD && fd <= LAST_MAP_FD &&
            (flags == MAP_SHARED || flags == MAP_PRIVATE))
          sys6(NR_mmap, (long)addr, (long)len, prot, flags | MAP_FIXED, fd, (long)offset);
        break;
      case OPK_PROTECT:
        if (in_user) sys3(NR_mprotect, addr, len, prot);
        break;
      case OPK_UNMAP:
        if (in_user) sys2(NR_munmap, addr, len);
        break;
      case OPK_SPAWN:
        spawn_thread(arg);
        break;
      }
      STORE(donep, i + 1);
    }
  }
  __atomic_store_n(I32(CTL(H_OPS_LOCK)), 0, __ATOMIC_RELEASE);
}

/* ---- posting an event and waiting for the answer ---- */

/* Post event `kind` on slot s and wait until the supervisor answers (S_STATE leaves ST_POSTED).
 * Mirror image of the supervisor's side: a Dekker-style handshake on S_STATE and the *_SLEEPING words,
 * all sequentially consistent, so that whichever side goes to sleep is seen by the other and woken. */
static int post_wait(u64 sl, int kind) {
  int *state = I32(sl + S_STATE);
  int *stub_sleeping = I32(sl + S_STUB_SLEEPING);
  STORE(I32(sl + S_KIND), kind);
  STORE(state, ST_POSTED);
  if (LOAD(I32(sl + S_SUP_SLEEPING)) != 0) futex_wake(state, 1);
  int st;
  for (int i = 0; i < STUB_SPIN; i++) {
    if ((st = LOAD(state)) != ST_POSTED) return st;
    __builtin_ia32_pause();
  }
  for (;;) {
    STORE(stub_sleeping, 1);
    if ((st = LOAD(state)) != ST_POSTED) break;
    if (LOAD(I32(CTL(H_DEAD))) != 0) sys_exit_group(137);
    futex_wait(state, ST_POSTED);
    STORE(stub_sleeping, 0);
    if ((st = LOAD(state)) != ST_POSTED) return st;
  }
  STORE(stub_sleeping, 0);
  return st;
}

/* ---- FPU images ---- */

/* Copy the hardware part of an FXSAVE image (bytes 0..463; 464..511 are the software-reserved bytes
 * where the kernel keeps its XSAVE signature, _fpx_sw_bytes) and make its MXCSR loadable: a reserved
 * MXCSR bit would make the kernel's FXRSTOR/XRSTOR fault and rt_sigreturn kill the process. */
static void load_fxsave(u8 *dst, const u8 *src) {
  memcpy(dst, src, 464);
  u32 *mxcsr = (u32 *)(dst + 24);
  *mxcsr &= mxcsr_mask;
}

/* ---- entering program code ---- */

/* Enter program code on slot s for the first time: build the ucontext part of a kernel rt_sigframe on
 * the thread's alternate stack, filled from S_REGS / S_FXSAVE, and rt_sigreturn into it. This is the
 * inverse of setup_rt_frame (arch/x86/kernel/signal_64.c); restore_sigcontext forces cs/ss to user
 * selectors and only lets the FIX_EFLAGS bits of rflags through, and fpu__restore_sig
 * (arch/x86/kernel/fpu/signal.c) loads a bare FXSAVE image (no FP_XSTATE_MAGIC1) with FXRSTOR and
 * resets every other XSAVE component. The frame goes low in the alternate stack: a spawned thread is
 * running its C code at the top of the same region. */
/* The slot's register record (struct kvm_regs order) into a signal frame's sigcontext. */
static void regs_to_mcontext(struct sigcontext64 *mc, const u64 *r) {
  mc->rax = READ(&r[0]);
  mc->rbx = READ(&r[1]);
  mc->rcx = READ(&r[2]);
  mc->rdx = READ(&r[3]);
  mc->rsi = READ(&r[4]);
  mc->rdi = READ(&r[5]);
  mc->rsp = READ(&r[6]);
  mc->rbp = READ(&r[7]);
  mc->r8 = READ(&r[8]);
  mc->r9 = READ(&r[9]);
  mc->r10 = READ(&r[10]);
  mc->r11 = READ(&r[11]);
  mc->r12 = READ(&r[12]);
  mc->r13 = READ(&r[13]);
  mc->r14 = READ(&r[14]);
  mc->r15 = READ(&r[15]);
  mc->rip = READ(&r[16]);
  mc->eflags = READ(&r[17]);
}

static void __attribute__((noreturn)) enter_user(int s) {
  u64 sl = SLOT(s);
  u64 base = ALT(s);
  struct kucontext *uc = (struct kucontext *)(base + 0x400);
  u8 *fp = (u8 *)(base + 0xc00); /* 64-byte aligned, as XRSTOR needs (FXRSTOR needs 16) */
  const u64 *r = U64(sl + S_REGS);
  struct sigcontext64 *mc = &uc->uc_mcontext;

  memset(uc, 0, sizeof *uc);
  uc->uc_stack.ss_sp = base; /* rt_sigreturn re-applies this sigaltstack (restore_altstack) */
  uc->uc_stack.ss_size = ALT_SIZE;
  regs_to_mcontext(mc, r);
  mc->cs = 0x33; /* __USER_CS */
  mc->ss = 0x2b; /* __USER_DS */
  int flags = READ(I32(sl + S_FLAGS));
  if (flags & F_FPU) {
    memset(fp, 0, 512);
    load_fxsave(fp, (const u8 *)(sl + S_FXSAVE));
    mc->fpstate = (u64)fp;
  } else {
    mc->fpstate = 0; /* no image: rt_sigreturn gives the thread the initial FPU state (fcw 0x37f,
                      * mxcsr 0x1f80; fpu__restore_sig -> fpu__clear_user_states) */
  }
  uc->uc_sigmask = 0; /* the program runs with no host signal blocked */

  if (flags & F_FS) set_fs(s, READ(U64(sl + S_FS_BASE)));
  if (flags & F_GS) set_gs(s, READ(U64(sl + S_GS_BASE)));
  WRITE(I32(sl + S_FLAGS), 0);
  STORE(I32(sl + S_STATE), ST_USER);
  stub_enter(uc);
}

/* Where every host thread of the program starts (the main thread on slot 0, spawned ones from
 * stub_clone_thread): announce EV_START and wait for the first registers. Runs with every signal
 * blocked (inherited), so nothing can interrupt it before rt_sigreturn sets uc_sigmask = 0. */
void __attribute__((noreturn, used)) stub_thread_main(long s) {
  u64 sl = SLOT(s);
  if (s != 0) {
    /* clone(CLONE_VM) gave this thread no alternate stack (kernel/fork.c: sas_ss_reset) */
    struct kstack ss = {.ss_sp = ALT(s), .ss_flags = 0, .ss_size = ALT_SIZE};
    if (sys2(NR_sigaltstack, &ss, 0) < 0) die();
  }
  /* A clone inherits its parent's fs/gs bases; start every thread from a known 0. */
  set_fs(s, 0);
  set_gs(s, 0);
  STORE(I32(sl + S_NSTID), (int)sys0(NR_gettid));
  int st = post_wait(sl, EV_START);
  for (;;) {
    switch (st) {
    case ST_RESUME:
      apply_ops();
      enter_user(s);
    case ST_APPLY:
      apply_ops();
      st = post_wait(sl, EV_APPLIED);
      break;
    case ST_EXIT:
      sys_exit_thread(); /* CLONE_CHILD_CLEARTID clears S_GONE and wakes it */
    default:
      die();
    }
  }
}

/* ---- the signal handler: system calls, faults and kicks ---- */

/* For SIGSYS, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP and KICK_SIGNAL, on the thread's alternate stack
 * with every signal blocked. Turns the interrupted state (the kernel's rt_sigframe) into an event,
 * waits for the supervisor, writes its answer back into the frame and returns through stub_restorer's
 * rt_sigreturn. */
static void stub_handler(int sig, struct ksiginfo *info, struct kucontext *uc) {
  /* The slot is the alternate stack we are on. */
  char here;
  u64 off = (u64)&here - (CTL_ADDR + ALT_OFF);
  if (off >= (u64)MAX_THREADS * ALT_SIZE) die();
  int s = (int)(off / ALT_SIZE);
  u64 sl = SLOT(s);
  struct sigcontext64 *mc = &uc->uc_mcontext;
  u64 *r = U64(sl + S_REGS);

  WRITE(&r[0], mc->rax);
  WRITE(&r[1], mc->rbx);
  WRITE(&r[2], mc->rcx);
  WRITE(&r[3], mc->rdx);
  WRITE(&r[4], mc->rsi);
  WRITE(&r[5], mc->rdi);
  WRITE(&r[6], mc->rsp);
  WRITE(&r[7], mc->rbp);
  WRITE(&r[8], mc->r8);
  WRITE(&r[9], mc->r9);
  WRITE(&r[10], mc->r10);
  WRITE(&r[11], mc->r11);
  WRITE(&r[12], mc->r12);
  WRITE(&r[13], mc->r13);
  WRITE(&r[14], mc->r14);
  WRITE(&r[15], mc->r15);
  WRITE(&r[16], mc->rip);
  WRITE(&r[17], mc->eflags);

  int kind;
  if (sig == SIGSYS && info->si_code == SYS_SECCOMP) {
    /* SECCOMP_RET_TRAP rolled the registers back (kernel/seccomp.c: syscall_rollback), so rax already
     * holds the number; si_syscall is the number the filter saw. rip/rcx point after the `syscall`. */
    kind = EV_SYSCALL;
    WRITE(&r[0], (u64)(long)info->u.sys.syscall);
  } else if (sig == KICK_SIGNAL) {
    kind = EV_INTERRUPT;
  } else {
    kind = EV_FAULT;
    WRITE(I32(sl + S_SIGNO), sig);
    WRITE(I32(sl + S_SICODE), info->si_code);
    WRITE(U64(sl + S_ADDR), info->u.addr);
    WRITE(U64(sl + S_TRAPNO), mc->trapno);
    WRITE(U64(sl + S_ERR), mc->err);
  }
  WRITE(U64(sl + S_FS_BASE), get_fs(s));
  WRITE(U64(sl + S_GS_BASE), get_gs(s));
  u8 *fp = (u8 *)mc->fpstate;
  if (fp)
    memcpy((void *)(sl + S_FXSAVE), fp, 512);
  else
    memset((void *)(sl + S_FXSAVE), 0, 512);

  int st = post_wait(sl, kind);
  for (;;) {
    if (st == ST_APPLY) {
      apply_ops();
      st = post_wait(sl, EV_APPLIED);
      continue;
    }
    if (st == ST_EXIT) sys_exit_thread();
    if (st != ST_RESUME) die();
    break;
  }

  apply_ops();
  regs_to_mcontext(mc, r);
  int flags = READ(I32(sl + S_FLAGS));
  if ((flags & F_FPU) && fp) {
    load_fxsave(fp, (const u8 *)(sl + S_FXSAVE));
    /* An XSAVE image (the kernel's signature in the software-reserved bytes): make XRSTOR take x87 and
     * SSE from it even if they were in their init state when the signal came (XSTATE_BV bits 0, 1;
     * arch/x86/kernel/fpu/signal.c does the same in save_xstate_epilog). */
    if (*(u32 *)(fp + 464) == FP_XSTATE_MAGIC1) *(u64 *)(fp + 512) |= 3;
  }
  if (flags & F_FS) set_fs(s, READ(U64(sl + S_FS_BASE)));
  if (flags & F_GS) set_gs(s, READ(U64(sl + S_GS_BASE)));
  WRITE(I32(sl + S_FLAGS), 0);
  STORE(I32(sl + S_STATE), ST_USER);
}

/* ---- set-up ---- */

/* The seccomp filter, classic BPF over struct seccomp_data (include/uapi/linux/seccomp.h): nr at 0,
 * arch at 4, instruction_pointer at 8, args[i] at 16 + 8i; little-endian, so the low half of a 64-bit
 * field is at its offset and the high half at +4. A tiny assembler with symbolic jump targets. */
enum { L_NEXT, L_ALLOW, L_KILL, L_TRAP, L_FUTEX, L_MMAP, L_CLONE, L_ARCH, L_COUNT };
#define BPF_LD_ABS 0x20 /* BPF_LD | BPF_W | BPF_ABS */
#define BPF_JEQ_K 0x15  /* BPF_JMP | BPF_JEQ | BPF_K */
#define BPF_JGT_K 0x25
#define BPF_JGE_K 0x35
#define BPF_JSET_K 0x45
#define BPF_RET_K 0x06
#define SD_NR 0
#define SD_ARCH 4
#define SD_IP_LO 8
#define SD_IP_HI 12
#define SD_ARG_LO(i) (16 + 8 * (i))
#define SD_ARG_HI(i) (20 + 8 * (i))

struct bpf_asm {
  struct sock_filter ins[80];
  u8 jt[80], jf[80];
  int label[L_COUNT];
  int n;
};
static void bpf(struct bpf_asm *a, u16 code, u32 k, int jt, int jf) {
  if (a->n >= 80) die();
  a->ins[a->n] = (struct sock_filter){code, 0, 0, k};
  a->jt[a->n] = (u8)jt;
  a->jf[a->n] = (u8)jf;
  a->n++;
}
static void bpf_label(struct bpf_asm *a, int l) {
  a->label[l] = a->n;
}
/* jump offset from instruction i to label l: forward only, at most 255 (classic BPF) */
static u8 bpf_offset(struct bpf_asm *a, int i, int l) {
  if (l == L_NEXT) return 0;
  int off = a->label[l] - i - 1;
  if (off < 0 || off > 255) die();
  return (u8)off;
}
static void bpf_link(struct bpf_asm *a) {
  for (int i = 0; i < a->n; i++) {
    u16 c = a->ins[i].code;
    if (c != BPF_JEQ_K && c != BPF_JGT_K && c != BPF_JGE_K && c != BPF_JSET_K) continue;
    a->ins[i].jt = bpf_offset(a, i, a->jt[i]);
    a->ins[i].jf = bpf_offset(a, i, a->jf[i]);
  }
}

static long install_seccomp(void) {
  static struct bpf_asm a; /* .bss: keeps the setup stack small */
  u64 text_start = (u64)__executable_start, text_end = (u64)__etext;
  a.n = 0;
  /* 32-bit entry points (int 0x80, sysenter, 32-bit code) and the x32 ABI: never */
  bpf(&a, BPF_LD_ABS, SD_ARCH, 0, 0);
  bpf(&a, BPF_JEQ_K, AUDIT_ARCH_X86_64, L_NEXT, L_KILL);
  bpf(&a, BPF_LD_ABS, SD_NR, 0, 0);
  bpf(&a, BPF_JSET_K, X32_SYSCALL_BIT, L_KILL, L_NEXT);
  /* an instruction pointer outside user space (at or above 2^47): the vsyscall page (emulated by
   * the kernel at 0xffffffffff600000) and anything non-canonical */
  bpf(&a, BPF_LD_ABS, SD_IP_HI, 0, 0);
  bpf(&a, BPF_JGE_K, 0x8000, L_KILL, L_NEXT);
  /* above 4 GiB: program code (user space reaches up to the --space size), never the stub's */
  bpf(&a, BPF_JEQ_K, 0, L_NEXT, L_TRAP);
  /* the stub's own text gets the allowlist; everything else traps to the supervisor. The recorded
   * instruction pointer is the one after the `syscall`, so the end is inclusive. */
  bpf(&a, BPF_LD_ABS, SD_IP_LO, 0, 0);
  bpf(&a, BPF_JGE_K, (u32)text_start, L_NEXT, L_TRAP);
  bpf(&a, BPF_JGT_K, (u32)text_end, L_TRAP, L_NEXT);
  bpf(&a, BPF_LD_ABS, SD_NR, 0, 0);
  bpf(&a, BPF_JEQ_K, NR_rt_sigreturn, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_mprotect, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_munmap, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_exit, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_exit_group, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_gettid, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_sched_yield, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_sigaltstack, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_futex, L_FUTEX, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_mmap, L_MMAP, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_clone, L_CLONE, L_NEXT);
  bpf(&a, BPF_JEQ_K, NR_arch_prctl, L_ARCH, L_KILL);
  /* futex: only the two operations the stub uses (op is an int: the high half is ignored by the
   * kernel, but insist on 0 anyway) */
  bpf_label(&a, L_FUTEX);
  bpf(&a, BPF_LD_ABS, SD_ARG_LO(1), 0, 0);
  bpf(&a, BPF_JEQ_K, FUTEX_WAIT, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, FUTEX_WAKE, L_ALLOW, L_KILL);
  /* mmap: files the supervisor gave us only (no anonymous memory, never the control memfd, fd 3).
   * The kernel truncates fd to 32 bits (fget takes an unsigned int), so the high half must be 0. */
  bpf_label(&a, L_MMAP);
  bpf(&a, BPF_LD_ABS, SD_ARG_LO(3), 0, 0);
  bpf(&a, BPF_JSET_K, MAP_ANONYMOUS, L_KILL, L_NEXT);
  bpf(&a, BPF_LD_ABS, SD_ARG_HI(4), 0, 0);
  bpf(&a, BPF_JEQ_K, 0, L_NEXT, L_KILL);
  bpf(&a, BPF_LD_ABS, SD_ARG_LO(4), 0, 0);
  bpf(&a, BPF_JGE_K, FIRST_MAP_FD, L_NEXT, L_KILL);
  bpf(&a, BPF_JGT_K, LAST_MAP_FD, L_KILL, L_ALLOW);
  /* clone: threads, with exactly the stub's flags */
  bpf_label(&a, L_CLONE);
  bpf(&a, BPF_LD_ABS, SD_ARG_HI(0), 0, 0);
  bpf(&a, BPF_JEQ_K, 0, L_NEXT, L_KILL);
  bpf(&a, BPF_LD_ABS, SD_ARG_LO(0), 0, 0);
  bpf(&a, BPF_JEQ_K, THREAD_CLONE_FLAGS, L_ALLOW, L_KILL);
  /* arch_prctl: setting fs / gs only */
  bpf_label(&a, L_ARCH);
  bpf(&a, BPF_LD_ABS, SD_ARG_HI(0), 0, 0);
  bpf(&a, BPF_JEQ_K, 0, L_NEXT, L_KILL);
  bpf(&a, BPF_LD_ABS, SD_ARG_LO(0), 0, 0);
  bpf(&a, BPF_JEQ_K, ARCH_SET_FS, L_ALLOW, L_NEXT);
  bpf(&a, BPF_JEQ_K, ARCH_SET_GS, L_ALLOW, L_KILL);
  bpf_label(&a, L_ALLOW);
  bpf(&a, BPF_RET_K, SECCOMP_RET_ALLOW, 0, 0);
  bpf_label(&a, L_KILL);
  bpf(&a, BPF_RET_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
  bpf_label(&a, L_TRAP);
  bpf(&a, BPF_RET_K, SECCOMP_RET_TRAP, 0, 0);
  bpf_link(&a);
  /* the text must lie in the low 4 GiB for the 32-bit compares above (it is at 0x10000) */
  if (text_end >> 32) die();
  struct sock_fprog prog = {(u16)a.n, a.ins};
  return sys3(NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* write(2) a whole string to a /proc file */
static long write_file(const char *path, const char *text) {
  long fd = sys4(NR_openat, AT_FDCWD, path, O_WRONLY, 0);
  if (fd < 0) return fd;
  u64 n = 0;
  while (text[n]) n++;
  long r = sys3(NR_write, fd, text, n);
  sys1(NR_close, fd);
  if (r < 0) return r;
  return r == (long)n ? 0 : -5 /* EIO */;
}

/* "0 <id> 1\n" for uid_map / gid_map */
static void id_map_line(char *buf, u32 id) {
  char digits[10];
  int n = 0;
  do digits[n++] = (char)('0' + id % 10), id /= 10;
  while (id);
  char *p = buf;
  *p++ = '0';
  *p++ = ' ';
  while (n) *p++ = digits[--n];
  *p++ = ' ';
  *p++ = '1';
  *p++ = '\n';
  *p = 0;
}

/* The outer process: the parent of the program's process, outside its pid namespace. It waits for the
 * program's process to end and reports how, so the supervisor learns it even though that process was
 * pid 1 of its own namespace. It reads nothing from the control area: the program can write it. */
static void __attribute__((noreturn)) outer(int child) {
  for (int fd = CTL_FD; fd <= LAST_MAP_FD; fd++) sys1(NR_close, fd); /* the mapping stays */
  STORE(I32(CTL(H_INNER_PID)), child);
  futex_wake(I32(CTL(H_INNER_PID)), 0x7fffffff);
  int status = 0;
  long r;
  do r = sys4(NR_wait4, child, &status, WALL, 0);
  while (r == -EINTR);
  if (r != child) {
    STORE(I32(CTL(H_EXIT_KIND)), 2); /* cannot happen; report "killed" rather than hang the supervisor */
    STORE(I32(CTL(H_EXIT_VALUE)), SIGKILL);
  } else if ((status & 0x7f) == 0) {
    STORE(I32(CTL(H_EXIT_KIND)), 1);
    STORE(I32(CTL(H_EXIT_VALUE)), (status >> 8) & 0xff);
  } else {
    STORE(I32(CTL(H_EXIT_KIND)), 2);
    STORE(I32(CTL(H_EXIT_VALUE)), status & 0x7f);
  }
  STORE(I32(CTL(H_DEAD)), 1);
  futex_wake(I32(CTL(H_DEAD)), 0x7fffffff);
  futex_wake(I32(CTL(H_READY)), 0x7fffffff);
  for (int s = 0; s < MAX_THREADS; s++) {
    futex_wake(I32(SLOT(s) + S_STATE), 0x7fffffff);
    /* the last thread of a dying process does not clear its CLONE_CHILD_CLEARTID word (mm_release) */
    futex_wake(I32(SLOT(s) + S_GONE), 0x7fffffff);
  }
  sys_exit_group(0);
}

void __attribute__((noreturn, used)) stub_main(u64 *initial_sp) {
  /* auxv: after argc, argv[], NULL, envp[], NULL */
  u64 *p = initial_sp + 1 + initial_sp[0] + 1;
  while (*p) p++;
  for (p++; p[0] != AT_NULL; p += 2)
    if (p[0] == AT_HWCAP2) have_fsgsbase = (p[1] & HWCAP2_FSGSBASE) != 0;
  {
    u8 fx[512 + 16];
    u8 *a = (u8 *)(((u64)fx + 15) & ~15UL);
    memset(a, 0, 512);
    __asm__ volatile("fxsave64 %0" : "=m"(*(u8(*)[512])a));
    mxcsr_mask = *(u32 *)(a + 28);
    if (mxcsr_mask == 0) mxcsr_mask = 0xffbf; /* Intel SDM 11.6.6: 0 means the default mask */
  }

  /* No signal may interrupt the set-up or the thread start; rt_sigreturn into the program unblocks. */
  u64 all = ~0UL;
  sys4(NR_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);

  /* 1. the control area */
  long m = sys6(NR_mmap, CTL_ADDR, CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
                CTL_FD, 0);
  if (m != (long)CTL_ADDR) sys_exit_group(125);
  if (LOAD(I32(CTL(H_MAGIC))) != (int)CTL_MAGIC || LOAD(I32(CTL(H_VERSION))) != (int)ABI_VERSION)
    setup_fail(SETUP_MAGIC, 0);
  int namespaces = LOAD(I32(CTL(H_NAMESPACES))) != 0; /* anything but an explicit 0: the safe choice */
  u32 uid = (u32)LOAD(I32(CTL(H_UID))), gid = (u32)LOAD(I32(CTL(H_GID)));

  /* 2. no file descriptors but the control memfd and the files to map */
  if (sys3(NR_close_range, LAST_MAP_FD + 1, ~0U, 0) < 0)
    for (int fd = LAST_MAP_FD + 1; fd < 1024; fd++) sys1(NR_close, fd);
  for (int fd = 0; fd < 3; fd++) sys1(NR_close, fd);
  /* the map fds the supervisor did not give (whatever its process left open at those numbers) */
  u32 given = LOAD(I32(CTL(H_MAP_FDS)));
  for (int fd = FIRST_MAP_FD + (given <= (u32)(LAST_MAP_FD - FIRST_MAP_FD + 1) ? (int)given : 0); fd <= LAST_MAP_FD; fd++) sys1(NR_close, fd);

  /* 3. die with the supervisor; never dump core. (Failures here have no step of their own: they are
   * reported as SETUP_NNP, the step of the other process-attribute prctls.) */
  check(SETUP_NNP, sys2(NR_prctl, PR_SET_PDEATHSIG, SIGKILL));
  u64 no_core[2] = {0, 0};
  check(SETUP_NNP, sys4(NR_prlimit64, 0, RLIMIT_CORE, no_core, 0));

  /* 4. fresh namespaces, in which we are root mapped to the supervisor's uid/gid */
  if (namespaces) {
    check(SETUP_UNSHARE, sys1(NR_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
                                              CLONE_NEWUTS | CLONE_NEWPID));
    char line[32];
    check(SETUP_IDMAP, write_file("/proc/self/setgroups", "deny"));
    id_map_line(line, uid);
    check(SETUP_IDMAP, write_file("/proc/self/uid_map", line));
    id_map_line(line, gid);
    check(SETUP_IDMAP, write_file("/proc/self/gid_map", line));
    /* changing credentials may clear the parent-death signal (kernel/cred.c commit_creds): set again */
    check(SETUP_NNP, sys2(NR_prctl, PR_SET_PDEATHSIG, SIGKILL));
  }

  /* 5. fork: the outer process stays behind to report the program's end; the inner one (pid 1 of the
   * new pid namespace) becomes the program's process. */
  STORE(I32(CTL(H_INNER_PID)), 0);
  long child = sys5(NR_clone, SIGCHLD, 0, 0, 0, 0);
  check(SETUP_FORK, child);
  if (child > 0) outer((int)child);

  check(SETUP_NNP, sys2(NR_prctl, PR_SET_PDEATHSIG, SIGKILL)); /* reset by fork */
  if (namespaces) {
    /* An empty, read-only root: bubblewrap's recipe (a tmpfs, pivot_root(".", ".") onto it, then
     * detach the old root stacked on top; see also pivot_root(2)). */
    check(SETUP_MOUNT, sys5(NR_mount, 0, "/", 0, MS_REC | MS_PRIVATE, 0));
    check(SETUP_MOUNT, sys5(NR_mount, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                            "size=16k,mode=0555"));
    check(SETUP_PIVOT, sys1(NR_chdir, "/tmp"));
    check(SETUP_PIVOT, sys2(NR_pivot_root, ".", "."));
    check(SETUP_PIVOT, sys2(NR_umount2, ".", MNT_DETACH));
    check(SETUP_PIVOT, sys1(NR_chdir, "/"));
  }
  /* Nothing of the host's in user space: the kernel-made stack, [vdso] and [vvar] lie above
   * USER_START, where only what the supervisor orders mapped may be (the stub no longer uses them:
   * _start left that stack, and handlers have SA_RESTORER). [vsyscall] is no mapping and stays; the
   * seccomp filter kills its system calls. */
  sys2(NR_munmap, USER_START, USER_SPACE_END - USER_START);
  /* only now: a non-dumpable process's /proc/self files belong to (host) root, which would have made
   * the uid_map writes above fail */
  check(SETUP_NNP, sys2(NR_prctl, PR_SET_DUMPABLE, 0));

  /* 6. the handlers, on each thread's alternate stack, with every signal blocked while they run */
  static const int sigs[] = {SIGSYS, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, KICK_SIGNAL};
  struct ksigaction act = {
      .handler = (void *)stub_handler,
      .flags = SA_SIGINFO | SA_ONSTACK | SA_RESTORER,
      .restorer = (void *)stub_restorer,
      .mask = ~0UL,
  };
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    check(SETUP_SIGNALS, sys4(NR_rt_sigaction, sigs[i], &act, 0, 8));
  struct kstack ss = {.ss_sp = ALT(0), .ss_flags = 0, .ss_size = ALT_SIZE};
  check(SETUP_SIGNALS, sys2(NR_sigaltstack, &ss, 0));

  /* 7. lock down */
  check(SETUP_NNP, sys2(NR_prctl, PR_SET_NO_NEW_PRIVS, 1));
  check(SETUP_SECCOMP, install_seccomp());

  /* H_INNER_PID must be there when the supervisor sees H_READY: wait for the outer process to write it */
  while (LOAD(I32(CTL(H_INNER_PID))) == 0) futex_wait(I32(CTL(H_INNER_PID)), 0);
  STORE(I32(CTL(H_READY)), 1);
  futex_wake(I32(CTL(H_READY)), 0x7fffffff);

  /* 8. the main thread, on slot 0 */
  stub_thread_main(0);
}
