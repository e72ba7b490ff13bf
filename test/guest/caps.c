// capget/capset with the v1/v2/v3 headers, capset only lowering, a dropped CAP_SETUID refusing setuid,
// an exec by root getting its capabilities back; pkey_alloc/pkey_free/pkey_mprotect as on a CPU without
// PKU. Prints one line per check, the same as natively when run as root (the sets themselves differ:
// the sandbox's root has fewer capabilities than the host's, so only relations are printed).
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long sc(long n, long a, long b, long c, long d) {
    long r = syscall(n, a, b, c, d);
    return r < 0 ? -errno : r;
}
static const char *en(long r) {
    static char buf[16];
    if (r >= 0) { snprintf(buf, sizeof buf, "%ld", r); return buf; }
    return r == -EPERM ? "EPERM" : r == -EINVAL ? "EINVAL" : r == -ESRCH ? "ESRCH" : r == -ENOSPC ? "ENOSPC" : r == -ENOSYS ? "ENOSYS" : r == -EFAULT ? "EFAULT" : r == -ENOMEM ? "ENOMEM" : "other";
}
#define BIT(c) (1u << (c))

static int get3(struct __user_cap_data_struct d[2]) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    return (int)sc(SYS_capget, (long)&h, (long)d, 0, 0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "after-exec")) {
        struct __user_cap_data_struct d[2];
        get3(d);
        printf("after exec: pkey_alloc %s\n", en(sc(SYS_pkey_alloc, 0, 0, 0, 0)));
        printf("after exec: CAP_SETUID effective %d, permitted == effective %d\n", !!(d[0].effective & BIT(CAP_SETUID)), d[0].permitted == d[0].effective && d[1].permitted == d[1].effective);
        return 0;
    }
    int root = getuid() == 0;
    struct __user_cap_header_struct h = {0x12345678, 0};
    struct __user_cap_data_struct d[2], d1[2];
    long r = sc(SYS_capget, (long)&h, (long)d, 0, 0);
    printf("bad version: %s, header now %#x\n", en(r), h.version);
    h.version = 0x12345678;
    r = sc(SYS_capget, (long)&h, 0, 0, 0);
    printf("bad version, no data: %s, header now %#x\n", en(r), h.version);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    printf("v3, no data: %s\n", en(sc(SYS_capget, (long)&h, 0, 0, 0)));
    h.pid = -1;
    printf("pid -1: %s\n", en(sc(SYS_capget, (long)&h, (long)d, 0, 0)));
    h.pid = 999999;
    printf("no such pid: %s\n", en(sc(SYS_capget, (long)&h, (long)d, 0, 0)));
    h.pid = 0;
    printf("v3: %s\n", en(sc(SYS_capget, (long)&h, (long)d, 0, 0)));
    printf("root has CAP_SETUID and CAP_CHOWN effective: %d; permitted ⊇ effective: %d; inheritable empty: %d\n",
           (d[0].effective & (BIT(CAP_SETUID) | BIT(CAP_CHOWN))) == (BIT(CAP_SETUID) | BIT(CAP_CHOWN)),
           (d[0].effective & ~d[0].permitted) == 0 && (d[1].effective & ~d[1].permitted) == 0, d[0].inheritable == 0 && d[1].inheritable == 0);
    memset(d1, 0xee, sizeof d1);
    h.version = _LINUX_CAPABILITY_VERSION_1;
    r = sc(SYS_capget, (long)&h, (long)d1, 0, 0);
    printf("v1: %s, first word the same %d, second untouched %d\n", en(r), d1[0].effective == d[0].effective && d1[0].permitted == d[0].permitted, d1[1].effective == 0xeeeeeeee);
    h.version = _LINUX_CAPABILITY_VERSION_2;
    r = sc(SYS_capget, (long)&h, (long)d1, 0, 0);
    printf("v2: %s, same as v3 %d\n", en(r), !memcmp(d, d1, sizeof d));
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = getpid();
    r = sc(SYS_capget, (long)&h, (long)d1, 0, 0);
    printf("by own pid: %s, same %d\n", en(r), !memcmp(d, d1, sizeof d));
    printf("PR_CAPBSET_READ CAP_SETUID %ld, cap 99 %s\n", (long)prctl(PR_CAPBSET_READ, CAP_SETUID), en(prctl(PR_CAPBSET_READ, 99) < 0 ? -errno : 0));
    if (!root) { printf("not root: the rest skipped\n"); return 0; }

    pid_t p = fork();
    if (p == 0) {
        struct __user_cap_header_struct hh = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct nd[2];
        memcpy(nd, d, sizeof nd);
        hh.pid = 1;
        printf("child: capset of another pid: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        hh.pid = 0;
        nd[0].effective &= ~BIT(CAP_SETUID);
        printf("child: capset lowering effective: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        printf("child: setuid(1000) without CAP_SETUID effective: %s\n", en(setuid(1000) < 0 ? -errno : 0));
        nd[0].effective |= BIT(CAP_SETUID);
        printf("child: raising effective back within permitted: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        nd[0].effective &= ~BIT(CAP_SETUID);
        nd[0].permitted &= ~BIT(CAP_SETUID);
        printf("child: dropping from permitted: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        nd[0].effective |= BIT(CAP_SETUID);
        printf("child: effective beyond permitted: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        nd[0].effective &= ~BIT(CAP_SETUID);
        nd[0].permitted |= BIT(CAP_SETUID);
        printf("child: raising permitted: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        nd[0].permitted &= ~BIT(CAP_SETUID);
        nd[0].inheritable |= BIT(CAP_CHOWN);
        printf("child: inheritable from permitted: %s\n", en(sc(SYS_capset, (long)&hh, (long)nd, 0, 0)));
        hh.version = _LINUX_CAPABILITY_VERSION_1;
        struct __user_cap_data_struct v1 = nd[0];
        printf("child: v1 capset (upper word cleared): %s\n", en(sc(SYS_capset, (long)&hh, (long)&v1, 0, 0)));
        hh.version = _LINUX_CAPABILITY_VERSION_3;
        struct __user_cap_data_struct now[2];
        get3(now);
        printf("child: upper words now empty %d, CAP_SETUID gone %d, CAP_CHOWN inheritable %d\n", now[1].effective == 0 && now[1].permitted == 0, !(now[0].permitted & BIT(CAP_SETUID)), !!(now[0].inheritable & BIT(CAP_CHOWN)));
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "after-exec", (char *)NULL);
        printf("exec failed: %s\n", strerror(errno));
        _exit(1);
    }
    int st;
    waitpid(p, &st, 0);
    p = fork();
    if (p == 0) {
        printf("child: setuid(1000) as root: %s\n", en(setuid(1000) < 0 ? -errno : 0));
        struct __user_cap_data_struct now[2];
        get3(now);
        printf("child: after setuid: effective %#x %#x permitted %#x %#x\n", now[0].effective, now[1].effective, now[0].permitted, now[1].permitted);
        printf("child: setuid(0) back: %s\n", en(setuid(0) < 0 ? -errno : 0));
        _exit(0);
    }
    waitpid(p, &st, 0);

    // Protection keys on a CPU without PKU.
    printf("pkey_alloc: %s\n", en(sc(SYS_pkey_alloc, 0, 0, 0, 0)));
    printf("pkey_alloc again: %s\n", en(sc(SYS_pkey_alloc, 0, 0, 0, 0)));
    printf("pkey_alloc flags 1: %s\n", en(sc(SYS_pkey_alloc, 1, 0, 0, 0)));
    printf("pkey_alloc rights 4: %s\n", en(sc(SYS_pkey_alloc, 0, 4, 0, 0)));
    printf("pkey_free 0: %s, 1: %s, -1: %s\n", en(sc(SYS_pkey_free, 0, 0, 0, 0)), en(sc(SYS_pkey_free, 1, 0, 0, 0)), en(sc(SYS_pkey_free, -1, 0, 0, 0)));
    char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 1;
    printf("pkey_mprotect key 0: %s, key 1: %s, key 16: %s\n", en(sc(SYS_pkey_mprotect, (long)m, 4096, PROT_READ, 0)), en(sc(SYS_pkey_mprotect, (long)m, 4096, PROT_READ, 1)), en(sc(SYS_pkey_mprotect, (long)m, 4096, PROT_READ, 16)));
    printf("pkey_mprotect key 1, length 0: %s; unaligned: %s\n", en(sc(SYS_pkey_mprotect, (long)m, 0, PROT_READ, 1)), en(sc(SYS_pkey_mprotect, (long)m + 1, 4096, PROT_READ, 1)));
    printf("pkey_mprotect key -1: %s\n", en(sc(SYS_pkey_mprotect, (long)m, 4096, PROT_READ, -1)));
    p = fork();
    if (p == 0) {
        m[0] = 2; /* read-only now: SIGSEGV */
        _exit(0);
    }
    waitpid(p, &st, 0);
    printf("write after pkey_mprotect(-1, PROT_READ): %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "no fault");
    p = fork();
    if (p == 0) {
        printf("fork child: pkey_alloc %s\n", en(sc(SYS_pkey_alloc, 0, 0, 0, 0)));
        fflush(stdout);
        execl("/proc/self/exe", argv[0], "after-exec", (char *)NULL);
        _exit(1);
    }
    waitpid(p, &st, 0);
    printf("pkey_mprotect key -1 unmapped: %s\n", en(sc(SYS_pkey_mprotect, (long)m + (1L << 30), 4096, PROT_READ, -1)));
    return 0;
}
