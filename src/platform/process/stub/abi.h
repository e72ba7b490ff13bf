/*
 * The contract between the process platform's stub (stub.c, running inside the sandboxed host process)
 * and the supervisor (src/platform/process/*.ts, the TypeScript kernel's side). The same numbers are in
 * src/platform/process/abi.ts; test/unit/process-abi.test.ts checks that the two agree.
 *
 * Everything the supervisor reads from the control area is untrusted: the program can write all of it.
 *
 * Address layout of the sandboxed process (below USER_START = 4 MiB, which the kernel never maps):
 *   0x010000  the stub's own ELF (text, then data/bss), < 0x0f0000
 *   0x100000  the control area (CTL_SIZE bytes), a MAP_SHARED mapping of the control memfd (fd 3)
 *   0x400000  user space: whatever the kernel orders mapped (anonymous memfd, the image)
 *
 * File descriptors the stub is started with (everything else is closed at once):
 *   3 the control memfd   4 the anonymous-memory memfd   5.. other files the kernel maps (read-only
 *   where they can be: the image), listed by the supervisor; 0, 1, 2 are /dev/null and are closed.
 */
#ifndef MAPVISOR_STUB_ABI_H
#define MAPVISOR_STUB_ABI_H

#define STUB_LOAD_ADDR 0x10000UL
#define CTL_ADDR 0x100000UL
#define CTL_SIZE 0x280000UL
#define CTL_FD 3
#define FIRST_MAP_FD 4
#define LAST_MAP_FD 15

/* ---- header (offsets from CTL_ADDR) ---- */
#define H_MAGIC 0x00          /* u32 CTL_MAGIC, written by the supervisor */
#define CTL_MAGIC 0x4350564dU /* 'MVPC' */
#define H_VERSION 0x04        /* u32 ABI_VERSION */
#define ABI_VERSION 1U
#define H_DEAD 0x08           /* i32: the outer process sets 1 when the program's process is gone (futex-woken) */
#define H_EXIT_KIND 0x0c      /* i32: 1 exited (value = status), 2 killed by a signal (value = signal) */
#define H_EXIT_VALUE 0x10     /* i32 */
#define H_INNER_PID 0x14      /* i32: host pid of the program's process (written by the outer process) */
#define H_SETUP_STEP 0x18     /* i32: the set-up step that failed (SETUP_*), 0 = none */
#define H_SETUP_ERRNO 0x1c    /* i32: its errno */
#define H_READY 0x20          /* i32: 1 once the seccomp filter is installed (futex-woken) */
#define H_OPS_LOCK 0x24       /* i32: spin lock taken by a stub thread while it applies ops */
#define H_OPS_HEAD 0x28       /* u64: ops written so far (supervisor) */
#define H_OPS_DONE 0x30       /* u64: ops applied so far (stub) */
#define H_UID 0x38            /* u32: host uid to map to 0 in the user namespace (supervisor) */
#define H_GID 0x3c            /* u32: host gid */
#define H_NAMESPACES 0x40     /* u32: 1 = make fresh namespaces and an empty root (the default), 0 = not */
#define H_MAP_FDS 0x44        /* u32: how many map fds the supervisor gives (FIRST_MAP_FD..); the rest are closed */

/* set-up steps, for H_SETUP_STEP */
#define SETUP_MAP_CTL 1
#define SETUP_UNSHARE 2
#define SETUP_IDMAP 3
#define SETUP_FORK 4
#define SETUP_MOUNT 5
#define SETUP_PIVOT 6
#define SETUP_SIGNALS 7
#define SETUP_NNP 8
#define SETUP_SECCOMP 9
#define SETUP_MAGIC 10

/* ---- the ops ring: memory-map changes ordered by the kernel ---- */
#define OPS_OFF 0x1000
#define OPS_CAP 1024          /* entries; op i is at OPS_OFF + (i % OPS_CAP) * OP_SIZE */
#define OP_SIZE 48
/* op layout */
#define OP_KIND 0             /* u32 */
#define OP_PROT 4             /* u32 */
#define OP_FLAGS 8            /* u32: MAP_SHARED or MAP_PRIVATE (MAP_FIXED is added by the stub) */
#define OP_FD 12              /* i32: FIRST_MAP_FD..LAST_MAP_FD */
#define OP_ADDR 16            /* u64 */
#define OP_LEN 24             /* u64 */
#define OP_OFFSET 32          /* u64 */
#define OP_ARG 40             /* u64: OP_SPAWN: the thread slot */
#define OPK_MAP 1             /* mmap(addr, len, prot, flags|MAP_FIXED, fd, offset) */
#define OPK_PROTECT 2         /* mprotect(addr, len, prot) */
#define OPK_UNMAP 3           /* munmap(addr, len) */
#define OPK_SPAWN 4           /* start a host thread for slot OP_ARG */

/* ---- thread slots ---- */
#define SLOTS_OFF 0x10000
#define SLOT_SIZE 0x1000
#define MAX_THREADS 64
/* slot layout */
#define S_STATE 0x000         /* i32, futex word: ST_* */
#define S_KIND 0x004          /* i32: EV_* (valid in ST_POSTED) */
#define S_NSTID 0x008         /* i32: the thread's tid in its pid namespace (gettid) */
#define S_FLAGS 0x00c         /* i32: F_* (supervisor -> stub, with ST_RESUME) */
#define S_SUP_SLEEPING 0x010  /* i32: 1 while the supervisor sleeps in FUTEX_WAIT on S_STATE */
#define S_STUB_SLEEPING 0x014 /* i32: 1 while the stub sleeps in FUTEX_WAIT on S_STATE */
#define S_GONE 0x018          /* i32: CLONE_CHILD_CLEARTID word: 0 once the host thread has exited */
#define S_REGS 0x020          /* u64[18], struct kvm_regs order: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags */
#define S_FS_BASE 0x0b0       /* u64 */
#define S_GS_BASE 0x0b8       /* u64 */
#define S_SIGNO 0x0c0         /* i32: EV_FAULT: the host signal */
#define S_SICODE 0x0c4        /* i32: its si_code */
#define S_ADDR 0x0c8          /* u64: si_addr */
#define S_TRAPNO 0x0d0        /* u64: sigcontext trapno (the exception vector) */
#define S_ERR 0x0d8           /* u64: sigcontext err (the page-fault error code) */
#define S_FXSAVE 0x100        /* 512 bytes: the FXSAVE image of the x87/SSE state */
#define S_END 0x300
/* 0x300..0x1000 of a slot belong to the supervisor alone (the stub never reads or writes them) */
#define S_SUP_KICK 0x300      /* i32: a kick is pending for this thread (the supervisor's own flag) */

#define ST_USER 0             /* the thread runs program code (or has not started) */
#define ST_POSTED 1           /* the stub posted an event (S_KIND) and waits */
#define ST_RESUME 2           /* the supervisor answered: continue with S_REGS (and S_FXSAVE if F_FPU) */
#define ST_APPLY 3            /* the supervisor asks: apply pending ops, then post EV_APPLIED */
#define ST_EXIT 4             /* the supervisor asks: end this host thread */

#define EV_SYSCALL 1          /* a system call: S_REGS rax = its number, rcx/r11 as the `syscall` left them */
#define EV_FAULT 2            /* a synchronous fault (S_SIGNO, S_SICODE, S_ADDR, S_TRAPNO, S_ERR) */
#define EV_INTERRUPT 3        /* KICK_SIGNAL arrived: the supervisor asked this thread to stop */
#define EV_START 4            /* a new thread (or the first) is ready and waits for its first registers */
#define EV_APPLIED 5          /* ops applied (answer to ST_APPLY) */

#define F_FPU 1               /* S_FXSAVE changed: load it */
#define F_FS 2                /* S_FS_BASE changed: set it */
#define F_GS 4                /* S_GS_BASE changed: set it */

/* per-thread stacks: the signal (alternate) stack of thread i is [ALT_OFF + i*ALT_SIZE, +ALT_SIZE) */
#define ALT_OFF 0x50000
#define ALT_SIZE 0x8000

#define KICK_SIGNAL 40        /* SIGRTMIN+8 as the kernel numbers it */

#endif
