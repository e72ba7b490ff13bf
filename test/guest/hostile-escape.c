// hostile: system calls that try to get past mapvisor's kernel to the host's. `hostile-escape MODE`:
//
//   int80      `int $0x80` with eax=20 (i386 getpid)
//   sysenter   `sysenter` with eax=20 (i386 getpid; #UD on AMD CPUs in 64-bit mode)
//   vsyscall   calls the legacy vsyscall gettimeofday at 0xffffffffff600000
//   x32        `syscall` with rax = 39 | 0x40000000 (x32 getpid)
//   stub-jump [PATH]         finds a `syscall` instruction (0f 05) in the stub's text at 0x10000 (the
//                            process platform's stub; on kvm the VMM's supervisor area, where the
//                            read itself faults) and runs it with rax=257 (openat), rdi=AT_FDCWD,
//                            rsi=PATH (default /etc/hostname, a host file), rdx=O_RDONLY
//   stub-create PATH         the same with O_WRONLY|O_CREAT|O_TRUNC: tries to create a host file
//   block-kicks              rt_sigreturn through the stub with every signal blocked, then a spin:
//                            --timeout must still end it (137)
//   stub-syscall NR [ARG...]  the same `syscall` with rax=NR and up to six arguments (rdi rsi rdx r10
//                            r8 r9; numbers in C syntax): probes the arguments the filter checks for the
//                            stub's allowlist (mmap: no anonymous memory, never fd 3; clone: threads only;
//                            futex: WAIT/WAKE only; arch_prctl: SET_FS/SET_GS only)
//
// On the process platform the seccomp filter must kill every one of these with SIGSYS (exit 159) —
// sysenter may instead be SIGILL where the CPU refuses it. On kvm they must die by a signal (x32 may
// instead be refused with ENOSYS by mapvisor's kernel, like a host kernel without the x32 ABI: then it
// prints `x32 refused: ENOSYS` and exits 0). Whatever gets through prints a line ending in
// `not stopped!` (and, for stub-jump, the file's content between <<< and >>>) and exits 1.
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <ucontext.h>
#include <signal.h>
#include <unistd.h>

#define STUB_LO 0x10000UL
#define STUB_HI 0xf0000UL

static void say(const char *s) {
    printf("%s\n", s);
    fflush(stdout);
}

static int int80(void) {
    say("int $0x80 with eax=20 (i386 getpid)");
    long r = 20;
    __asm__ volatile("int $0x80" : "+a"(r) : : "rcx", "r11", "memory");
    printf("int $0x80 returned %ld: not stopped!\n", r);
    return 1;
}

static int sysenter(void) {
    say("sysenter with eax=20 (i386 getpid)");
    long r = 20;
    __asm__ volatile("sysenter" : "+a"(r) : : "rbx", "rcx", "rdx", "rsi", "rdi", "r11", "memory");
    printf("sysenter returned %ld: not stopped!\n", r);
    return 1;
}

static int vsyscall(void) {
    say("calling the vsyscall gettimeofday at 0xffffffffff600000");
    struct timeval tv = {0, 0};
    long (*volatile fn)(struct timeval *, void *) = (long (*)(struct timeval *, void *))0xffffffffff600000UL;
    long r = fn(&tv, NULL);
    printf("vsyscall gettimeofday returned %ld, tv_sec=%ld: not stopped!\n", r, (long)tv.tv_sec);
    return 1;
}

static int x32(void) {
    say("syscall with rax = 39 | 0x40000000 (x32 getpid)");
    long r = 39L | 0x40000000L;
    __asm__ volatile("syscall" : "+a"(r) : : "rcx", "r11", "memory");
    if (r == -ENOSYS) {
        say("x32 refused: ENOSYS");
        return 0;
    }
    printf("x32 getpid returned %ld: not stopped!\n", r);
    return 1;
}

// ---- stub-jump ----

static int is_exec_range(uint64_t lo, uint64_t hi) {
    return lo >= STUB_LO && hi <= STUB_HI && lo < hi;
}

// Look for `syscall; ret` (0f 05 c3) first, else any 0f 05, in [lo, hi).
static const unsigned char *scan(uint64_t lo, uint64_t hi, int want_ret) {
    for (uint64_t a = lo; a + 3 <= hi; a++) {
        const volatile unsigned char *b = (const volatile unsigned char *)a;
        if (b[0] == 0x0f && b[1] == 0x05 && (!want_ret || b[2] == 0xc3)) return (const unsigned char *)a;
    }
    return NULL;
}

// The stub's executable segments from its ELF header at 0x10000 (when there is one), else the whole
// range [0x10000, 0xf0000) from the start. Reads low memory: on kvm this faults (SIGSEGV).
static const unsigned char *find_syscall(int *gadget) {
    const volatile unsigned char *base = (const volatile unsigned char *)STUB_LO;
    printf("reading %#lx\n", STUB_LO);
    fflush(stdout);
    unsigned char ident[4] = {base[0], base[1], base[2], base[3]};
    uint64_t ranges[16][2];
    int n = 0;
    if (memcmp(ident, ELFMAG, SELFMAG) == 0) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)STUB_LO;
        if (eh->e_phoff < 4096 && eh->e_phentsize == sizeof(Elf64_Phdr) && eh->e_phnum < 16) {
            const Elf64_Phdr *ph = (const Elf64_Phdr *)(STUB_LO + eh->e_phoff);
            for (int i = 0; i < eh->e_phnum; i++) {
                if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X) && is_exec_range(ph[i].p_vaddr, ph[i].p_vaddr + ph[i].p_memsz)) {
                    ranges[n][0] = ph[i].p_vaddr;
                    ranges[n][1] = ph[i].p_vaddr + ph[i].p_memsz;
                    n++;
                }
            }
        }
    }
    if (n == 0) {
        ranges[0][0] = STUB_LO;
        ranges[0][1] = STUB_HI;
        n = 1;
    }
    for (int want_ret = 1; want_ret >= 0; want_ret--) {
        for (int i = 0; i < n; i++) {
            const unsigned char *p = scan(ranges[i][0], ranges[i][1], want_ret);
            if (p) {
                *gadget = want_ret;
                return p;
            }
        }
    }
    return NULL;
}

// Call a `syscall; ret` gadget: below the red zone, so the return address clobbers nothing of ours.
static long gadget_call(const void *g, long nr, const long a[6]) {
    long r = nr;
    register long rdi __asm__("rdi") = a[0];
    register long rsi __asm__("rsi") = a[1];
    register long rdx __asm__("rdx") = a[2];
    register long r10 __asm__("r10") = a[3];
    register long r8 __asm__("r8") = a[4];
    register long r9 __asm__("r9") = a[5];
    __asm__ volatile("sub $256, %%rsp\n\tcall *%[g]\n\tadd $256, %%rsp"
                     : "+a"(r), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r9)
                     : [g] "r"(g)
                     : "rcx", "r11", "memory");
    return r;
}

// Jump to the stub's `syscall` with these registers: no way back. The callee-saved registers all hold
// 231 (exit_group, on the allowlist): if the call were let through, the stub's code after it would run
// on and, when it takes a system-call number from one of them (its sys_exit_group loop does: rax =
// rbx), end the process with exit_group instead of a seccomp kill. A SIGSYS then means the filter
// refused this very call.
static void __attribute__((noreturn)) jump_syscall(const unsigned char *p, long nr, const long a[6]) {
    register long r10 __asm__("r10") = a[3];
    register long r8 __asm__("r8") = a[4];
    register long r9 __asm__("r9") = a[5];
    __asm__ volatile(
        "mov $231, %%ebx\n\tmov $231, %%ebp\n\tmov $231, %%r12d\n\t"
        "mov $231, %%r13d\n\tmov $231, %%r14d\n\tmov $231, %%r15d\n\tjmp *%%rcx"
        :
        : "c"(p), "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
        : "memory");
    __builtin_unreachable();
}

static int stub_syscall(int argc, char **argv) {
    long nr = strtol(argv[0], NULL, 0);
    long a[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 1; i < argc && i <= 6; i++) a[i - 1] = (long)strtoull(argv[i], NULL, 0);
    int gadget = 0;
    const unsigned char *p = find_syscall(&gadget);
    if (!p) {
        say("no syscall instruction found in [0x10000, 0xf0000)");
        return 2;
    }
    printf("found syscall at %p: system call %ld (%#lx, %#lx, %#lx, %#lx, %#lx, %#lx) there\n", (const void *)p, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    fflush(stdout);
    if (gadget) {
        long r = gadget_call(p, nr, a);
        printf("system call %ld through the stub returned %ld: not stopped!\n", nr, r);
        return 1;
    }
    jump_syscall(p, nr, a);
}

static int stub_jump(const char *path, int create) {
    int gadget = 0;
    const unsigned char *p = find_syscall(&gadget);
    if (!p) {
        say("no syscall instruction found in [0x10000, 0xf0000)");
        return 2;
    }
    long flags = create ? (O_WRONLY | O_CREAT | O_TRUNC) : O_RDONLY;
    printf("found %s at %p: openat(AT_FDCWD, \"%s\", %#lx) there\n", gadget ? "syscall; ret" : "syscall", (const void *)p, path, flags);
    fflush(stdout);
    const long a[6] = {AT_FDCWD, (long)path, flags, 0644, 0, 0};
    if (!gadget) jump_syscall(p, 257, a);
    long fd = gadget_call(p, 257, a);
    printf("openat through the stub returned %ld: not stopped!\n", fd);
    fflush(stdout);
    if (fd >= 0) {
        if (create) {
            const long w_args[6] = {fd, (long)"escaped\n", 8, 0, 0, 0};
            long w = gadget_call(p, 1, w_args);
            printf("wrote %ld bytes to the host file\n", w);
        } else {
            char buf[256];
            const long r_args[6] = {fd, (long)buf, sizeof buf - 1, 0, 0, 0};
            long r = gadget_call(p, 0, r_args);
            if (r >= 0) {
                buf[r] = 0;
                printf("content<<<%s>>>\n", buf);
            }
        }
    }
    return 1;
}

// block-kicks: rt_sigreturn (on the stub's allowlist) through the stub's `syscall`, with a frame whose
// signal mask blocks every signal and whose rip is a spin loop: the process platform can no longer
// interrupt the thread with its kick signal. `--timeout` must still end it (exit 137).
static void __attribute__((noreturn, used)) spin_forever(void) {
    for (;;) __asm__ volatile("pause");
}
static unsigned char spin_stack[16384] __attribute__((aligned(16)));
static int block_kicks(void) {
    int gadget = 0;
    const unsigned char *p = find_syscall(&gadget);
    if (!p) {
        say("no syscall instruction found in [0x10000, 0xf0000)");
        return 2;
    }
    static ucontext_t uc __attribute__((aligned(64)));
    memset(&uc, 0, sizeof uc);
    uc.uc_stack.ss_flags = SS_DISABLE;
    uc.uc_mcontext.gregs[REG_RIP] = (greg_t)spin_forever;
    uc.uc_mcontext.gregs[REG_RSP] = (greg_t)(spin_stack + sizeof spin_stack - 8);
    uc.uc_mcontext.gregs[REG_EFL] = 0x202;
    uc.uc_mcontext.gregs[REG_CSGSFS] = 0x33; // cs = __USER_CS
    memset(&uc.uc_sigmask, 0xff, sizeof uc.uc_sigmask);
    printf("rt_sigreturn through the stub at %p, every signal blocked, then spinning\n", (const void *)p);
    fflush(stdout);
    // rt_sigreturn reads its frame at rsp (the ucontext right after the popped return address).
    __asm__ volatile("mov %0, %%rsp\n\tmov $15, %%eax\n\tjmp *%1" : : "r"(&uc), "r"(p) : "memory");
    __builtin_unreachable();
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "block-kicks") == 0) return block_kicks();
    if (strcmp(mode, "int80") == 0) return int80();
    if (strcmp(mode, "sysenter") == 0) return sysenter();
    if (strcmp(mode, "vsyscall") == 0) return vsyscall();
    if (strcmp(mode, "x32") == 0) return x32();
    if (strcmp(mode, "stub-jump") == 0) return stub_jump(argc > 2 ? argv[2] : "/etc/hostname", 0);
    if (strcmp(mode, "stub-create") == 0 && argc > 2) return stub_jump(argv[2], 1);
    if (strcmp(mode, "stub-syscall") == 0 && argc > 2) return stub_syscall(argc - 2, argv + 2);
    fprintf(stderr, "usage: hostile-escape int80|sysenter|vsyscall|x32|stub-jump [PATH]|stub-create PATH|stub-syscall NR [ARG...]\n");
    return 2;
}
