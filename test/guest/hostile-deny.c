// hostile: asks mapvisor's kernel for things that would reach past the program, each of which must be
// refused (-1 / MAP_FAILED with an errno) while the program goes on. `hostile-deny MODE [ARG]`:
//
//   ptrace     ptrace(PTRACE_TRACEME), PTRACE_ATTACH to the parent and to pids 2..5, PTRACE_PEEKDATA,
//              process_vm_readv/process_vm_writev on pid 2
//   procmem    open("/proc/self/mem", O_RDWR), /proc/1/mem, /proc/self/root/etc/hostname
//   seccomp    prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT), seccomp(SECCOMP_SET_MODE_FILTER) with an
//              allow-all filter, seccomp(SECCOMP_SET_MODE_STRICT)
//   map-stub   mmap MAP_FIXED / MAP_FIXED_NOREPLACE at 0x10000 (the stub's text on the process
//              platform), at 0x100000 (its control area) and across 0x400000; munmap, mprotect, madvise
//              and mremap onto those; a mere hint of 0x10000 must give an address >= 0x400000
//   kill-host [PID]   kill(getppid(), SIGKILL) (when the parent is > 1), kill(2..5, SIGKILL),
//              tgkill(2, 2, SIGKILL), and kill/tgkill(PID, SIGUSR2) for a host pid PID (the test
//              runner's, which counts SIGUSR2s): each must fail (ESRCH). kill(1, 0) (the program
//              itself) must succeed.
//
// Each attempt prints one line `NAME = RESULT errno=E (TEXT)`. Then a system call must still work:
// `getpid=1`. The last line is `MODE: all refused` (exit 0), or `MODE: NOT REFUSED: N` (exit 1).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static int not_refused;

// A call that must fail: ok when it returned `bad` (-1 or MAP_FAILED).
static void refused(const char *name, long r, long bad) {
    int e = errno;
    if (r == bad) {
        printf("%s = %ld errno=%d (%s)\n", name, r, e, strerror(e));
    } else {
        printf("%s = %#lx: NOT REFUSED\n", name, r);
        not_refused++;
    }
    fflush(stdout);
}

static long sys(long nr, long a, long b, long c, long d, long e) {
    errno = 0;
    return syscall(nr, a, b, c, d, e);
}

static void do_ptrace(void) {
    refused("ptrace(PTRACE_TRACEME)", sys(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0, 0), -1);
    long ppid = getppid();
    printf("getppid=%ld\n", ppid);
    if (ppid > 1) refused("ptrace(PTRACE_ATTACH, ppid)", sys(SYS_ptrace, PTRACE_ATTACH, ppid, 0, 0, 0), -1);
    char name[64];
    for (long p = 2; p <= 5; p++) {
        snprintf(name, sizeof name, "ptrace(PTRACE_ATTACH, %ld)", p);
        refused(name, sys(SYS_ptrace, PTRACE_ATTACH, p, 0, 0, 0), -1);
        snprintf(name, sizeof name, "ptrace(PTRACE_SEIZE, %ld)", p);
        refused(name, sys(SYS_ptrace, PTRACE_SEIZE, p, 0, 0, 0), -1);
    }
    long word = 0;
    refused("ptrace(PTRACE_PEEKDATA, 2)", sys(SYS_ptrace, PTRACE_PEEKDATA, 2, (long)&word, (long)&word, 0), -1);
    char buf[64] = "x";
    struct iovec local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
    refused("process_vm_readv(2)", sys(SYS_process_vm_readv, 2, (long)&local, 1, (long)&remote, 1), -1);
    refused("process_vm_writev(2)", sys(SYS_process_vm_writev, 2, (long)&local, 1, (long)&remote, 1), -1);
}

static void do_procmem(void) {
    refused("open(/proc/self/mem, O_RDWR)", sys(SYS_openat, AT_FDCWD, (long)"/proc/self/mem", O_RDWR, 0, 0), -1);
    refused("open(/proc/1/mem, O_RDWR)", sys(SYS_openat, AT_FDCWD, (long)"/proc/1/mem", O_RDWR, 0, 0), -1);
    refused("open(/proc/self/mem, O_WRONLY)", sys(SYS_openat, AT_FDCWD, (long)"/proc/self/mem", O_WRONLY, 0, 0), -1);
    refused("open(/proc/self/root/etc/hostname)", sys(SYS_openat, AT_FDCWD, (long)"/proc/self/root/etc/hostname", O_RDONLY, 0, 0), -1);
}

static void do_seccomp(void) {
    refused("prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT)", sys(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0), -1);
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    refused("seccomp(SECCOMP_SET_MODE_FILTER, allow-all)", sys(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, (long)&prog, 0, 0), -1);
    refused("seccomp(SECCOMP_SET_MODE_STRICT)", sys(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0, 0, 0), -1);
    refused("prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)", sys(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, (long)&prog, 0, 0), -1);
}

static long mm(long addr, long len, long prot, long flags) {
    errno = 0;
    return syscall(SYS_mmap, addr, len, prot, flags, -1, 0L); /* all six: the offset must be 0, not what r9 held */
}

static void do_map_stub(void) {
    const long RW = PROT_READ | PROT_WRITE, PA = MAP_PRIVATE | MAP_ANONYMOUS;
    const long bad = (long)MAP_FAILED;
    refused("mmap(0x10000, FIXED)", mm(0x10000, 4096, RW, PA | MAP_FIXED), bad);
    refused("mmap(0x10000, FIXED_NOREPLACE)", mm(0x10000, 4096, RW, PA | MAP_FIXED_NOREPLACE), bad);
    refused("mmap(0x100000, FIXED)", mm(0x100000, 4096, RW, PA | MAP_FIXED), bad);
    refused("mmap(0x100000, 0x280000, FIXED)", mm(0x100000, 0x280000, RW | PROT_EXEC, PA | MAP_FIXED), bad);
    refused("mmap(0x3ff000, 8192, FIXED)", mm(0x3ff000, 8192, RW, PA | MAP_FIXED), bad);
    refused("munmap(0x100000, 0x280000)", sys(SYS_munmap, 0x100000, 0x280000, 0, 0, 0), -1);
    refused("munmap(0x10000, 4096)", sys(SYS_munmap, 0x10000, 4096, 0, 0, 0), -1);
    refused("mprotect(0x10000, 4096, PROT_NONE)", sys(SYS_mprotect, 0x10000, 4096, PROT_NONE, 0, 0), -1);
    refused("mprotect(0x100000, 4096, RWX)", sys(SYS_mprotect, 0x100000, 4096, RW | PROT_EXEC, 0, 0), -1);
    refused("madvise(0x100000, 0x280000, MADV_DONTNEED)", sys(SYS_madvise, 0x100000, 0x280000, MADV_DONTNEED, 0, 0), -1);
    long page = mm(0, 4096, RW, PA);
    if (page == bad) {
        printf("mmap of a page for mremap failed: errno=%d\n", errno);
        not_refused++;
    } else {
        refused("mremap(page -> 0x100000, MAYMOVE|FIXED)", sys(SYS_mremap, page, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, 0x100000), bad);
        refused("mremap(page -> 0x10000, MAYMOVE|FIXED)", sys(SYS_mremap, page, 4096, 4096, MREMAP_MAYMOVE | MREMAP_FIXED, 0x10000), bad);
    }
    long hint = mm(0x10000, 4096, RW, PA);
    if (hint == bad || (unsigned long)hint >= 0x400000UL) {
        printf("mmap(hint 0x10000) = %#lx (in user space)\n", hint);
    } else {
        printf("mmap(hint 0x10000) = %#lx: NOT REFUSED (below user space)\n", hint);
        not_refused++;
    }
}

static void do_kill_host(long host_pid) {
    long ppid = getppid();
    printf("getppid=%ld\n", ppid);
    if (ppid > 1)
        refused("kill(getppid(), SIGKILL)", sys(SYS_kill, ppid, SIGKILL, 0, 0, 0), -1);
    else
        printf("kill(getppid(), SIGKILL) skipped: the parent is %ld\n", ppid);
    char name[64];
    for (long p = 2; p <= 5; p++) {
        snprintf(name, sizeof name, "kill(%ld, SIGKILL)", p);
        refused(name, sys(SYS_kill, p, SIGKILL, 0, 0, 0), -1);
    }
    refused("tgkill(2, 2, SIGKILL)", sys(SYS_tgkill, 2, 2, SIGKILL, 0, 0), -1);
    refused("tkill(3, SIGKILL)", sys(SYS_tkill, 3, SIGKILL, 0, 0, 0), -1);
    if (host_pid > 1) {
        snprintf(name, sizeof name, "kill(%ld, SIGUSR2)", host_pid);
        refused(name, sys(SYS_kill, host_pid, SIGUSR2, 0, 0, 0), -1);
        snprintf(name, sizeof name, "tgkill(%ld, %ld, SIGUSR2)", host_pid, host_pid);
        refused(name, sys(SYS_tgkill, host_pid, host_pid, SIGUSR2, 0, 0), -1);
        snprintf(name, sizeof name, "rt_sigqueueinfo(%ld, SIGUSR2)", host_pid);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = SIGUSR2;
        si.si_code = SI_QUEUE;
        refused(name, sys(SYS_rt_sigqueueinfo, host_pid, SIGUSR2, (long)&si, 0, 0), -1);
    }
    errno = 0;
    long self = sys(SYS_kill, 1, 0, 0, 0, 0);
    printf("kill(1, 0) = %ld errno=%d\n", self, errno);
    if (self != 0) not_refused++;  // not a refusal to miss, but the kernel lost track of the program
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "ptrace") == 0)
        do_ptrace();
    else if (strcmp(mode, "procmem") == 0)
        do_procmem();
    else if (strcmp(mode, "seccomp") == 0)
        do_seccomp();
    else if (strcmp(mode, "map-stub") == 0)
        do_map_stub();
    else if (strcmp(mode, "kill-host") == 0)
        do_kill_host(argc > 2 ? strtol(argv[2], NULL, 10) : 0);
    else {
        fprintf(stderr, "usage: hostile-deny ptrace|procmem|seccomp|map-stub|kill-host [PID]\n");
        return 2;
    }
    printf("getpid=%ld\n", (long)getpid());
    if (not_refused) {
        printf("%s: NOT REFUSED: %d\n", mode, not_refused);
        return 1;
    }
    printf("%s: all refused\n", mode);
    return 0;
}
