// hostile: attacks the memory between the stub and user space, [0x100000, 0x380000). On the process
// platform that is the control area the stub shares with the supervisor (mapvisor's kernel), writable
// by the program; on kvm it is the VMM's supervisor area, where the first write faults (SIGSEGV).
// `hostile-ctl MODE [ARG]`:
//
//   smash zero|ones|random [SEED]   overwrite the whole area with a pattern
//   forge-exit [STATUS]             claim in the header that the process exited with STATUS (default 0)
//   forge-signal [SIGNO]            claim it was killed by signal SIGNO (default 200, not a signal)
//   forge-posted                    post a bogus event kind (99) on thread slot 0
//   forge-ops                       queue memory-map ops for the stub: spawn threads on every slot,
//                                   unmap all of user space, map the control memfd (fd 3) over it
//
// and then pause (~0.3 s of spinning), make a system call (getpid, its result written to stdout with a
// raw write) and spin forever without system calls. The program must never get anything out of this: it dies by a signal
// or is killed by --timeout, and mapvisor must exit 128+N with one `mapvisor: ` line, never crash.
// The offsets are those of src/platform/process/stub/abi.h.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTL_ADDR 0x100000UL
#define CTL_END 0x380000UL
#define H_DEAD 0x08
#define H_EXIT_KIND 0x0c
#define H_EXIT_VALUE 0x10
#define H_OPS_HEAD 0x28
#define H_OPS_DONE 0x30
#define OPS_OFF 0x1000
#define OPS_CAP 1024
#define OP_SIZE 48
#define SLOTS_OFF 0x10000
#define S_STATE 0x000
#define S_KIND 0x004
#define OPK_MAP 1
#define OPK_UNMAP 3
#define OPK_SPAWN 4

#define U8(off) ((volatile uint8_t *)(CTL_ADDR + (off)))
#define I32(off) ((volatile int32_t *)(CTL_ADDR + (off)))
#define U32(off) ((volatile uint32_t *)(CTL_ADDR + (off)))
#define U64(off) ((volatile uint64_t *)(CTL_ADDR + (off)))

static long raw_syscall3(long nr, long a, long b, long c) {
    long r = nr;
    __asm__ volatile("syscall" : "+a"(r) : "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

// After the attack: a pause without system calls (so that the supervisor, which looks at the area while
// the program runs, sees the damage before the next event rewrites any of it), then one system call,
// its answer reported with another, then spin.
static void __attribute__((noreturn)) after(void) {
    for (volatile unsigned long i = 0; i < 300000000UL; i++) {
    }
    long pid = raw_syscall3(39, 0, 0, 0);
    char line[64] = "after the attack getpid=";
    size_t n = strlen(line);
    if (pid < 0) {
        line[n++] = '-';
        pid = -pid;
    }
    char digits[24];
    int d = 0;
    do digits[d++] = (char)('0' + pid % 10); while ((pid /= 10) > 0 && d < 20);
    while (d > 0) line[n++] = digits[--d];
    line[n++] = '\n';
    raw_syscall3(1, 1, (long)line, (long)n);
    for (volatile unsigned long i = 0;; i++) {
    }
}

static void say(const char *s) {
    printf("%s\n", s);
    fflush(stdout);
}

static void put_op(uint64_t i, uint32_t kind, uint32_t prot, uint32_t flags, int32_t fd, uint64_t addr, uint64_t len, uint64_t arg) {
    uint64_t at = OPS_OFF + (i % OPS_CAP) * OP_SIZE;
    *U32(at + 0) = kind;
    *U32(at + 4) = prot;
    *U32(at + 8) = flags;
    *I32(at + 12) = fd;
    *U64(at + 16) = addr;
    *U64(at + 24) = len;
    *U64(at + 32) = 0;
    *U64(at + 40) = arg;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : NULL;
    if (strcmp(mode, "smash") == 0) {
        const char *pattern = arg ? arg : "random";
        unsigned long seed = argc > 3 ? strtoul(argv[3], NULL, 0) : 1;
        printf("smashing [%#lx, %#lx) with %s (seed %lu)\n", CTL_ADDR, CTL_END, pattern, seed);
        fflush(stdout);
        volatile uint64_t *p = (volatile uint64_t *)CTL_ADDR;
        volatile uint64_t *end = (volatile uint64_t *)CTL_END;
        if (strcmp(pattern, "zero") == 0) {
            for (; p < end; p++) *p = 0;
        } else if (strcmp(pattern, "ones") == 0) {
            for (; p < end; p++) *p = ~0UL;
        } else {
            uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;  // xorshift64
            for (; p < end; p++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *p = x;
            }
        }
        after();
    }
    if (strcmp(mode, "forge-exit") == 0) {
        int status = arg ? atoi(arg) : 0;
        printf("forging: exited with status %d\n", status);
        fflush(stdout);
        *I32(H_EXIT_KIND) = 1;
        *I32(H_EXIT_VALUE) = status;
        *I32(H_DEAD) = 1;
        after();
    }
    if (strcmp(mode, "forge-signal") == 0) {
        int signo = arg ? atoi(arg) : 200;
        printf("forging: killed by signal %d\n", signo);
        fflush(stdout);
        *I32(H_EXIT_KIND) = 2;
        *I32(H_EXIT_VALUE) = signo;
        *I32(H_DEAD) = 1;
        after();
    }
    if (strcmp(mode, "forge-posted") == 0) {
        say("forging: event 99 posted on slot 0");
        *I32(SLOTS_OFF + S_KIND) = 99;
        *I32(SLOTS_OFF + S_STATE) = 1;  // ST_POSTED
        after();
    }
    if (strcmp(mode, "forge-ops") == 0) {
        say("forging: ops (spawn on every slot, unmap user space, map the control memfd)");
        uint64_t head = *U64(H_OPS_HEAD);
        uint64_t i = head;
        for (uint64_t s = 0; s < 64; s++) put_op(i++, OPK_SPAWN, 0, 0, 0, 0, 0, s);
        put_op(i++, OPK_MAP, 7, 1, 3, 0x400000, 0x280000, 0);           // fd 3 RWX shared at user start
        put_op(i++, OPK_UNMAP, 0, 0, 0, 0x400000, 0x7fffffbff000UL, 0);  // all of user space
        *U64(H_OPS_HEAD) = i;
        after();
    }
    fprintf(stderr, "usage: hostile-ctl smash zero|ones|random [SEED] | forge-exit [STATUS] | forge-signal [SIGNO] | forge-posted | forge-ops\n");
    return 2;
}
