// hostile: makes system calls from code that is not the program's ELF text. It copies the bytes of
// `mov $39,%eax; syscall; ret` (getpid) into
//   anon   an anonymous RWX page from mmap,
//   wx     an anonymous RW page, then mprotect'ed to R+X (a JIT's W^X dance),
//   stack  a buffer on the stack made executable with mprotect,
//   high   a page mapped with MAP_FIXED_NOREPLACE above 4 GiB (the instruction pointer's high half
//          is not 0),
// and calls each, after the same from a page mapped at 0x10000000 (low: below 4 GiB, which tells a
// refusal of code above 4 GiB from one of all code outside the ELF). Every call must be intercepted and answered by mapvisor's kernel like any other
// system call: each prints `NAME getpid=1` (the program is pid 1 in its own view, what libc's
// getpid() says too: `libc getpid=1`). Exit 0, or 1 with a FAIL line if a step cannot be set up.
// A host getpid would return the host pid (not 1); a refused call kills the program (SIGSYS).
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static const unsigned char GETPID_CODE[] = {
    0xb8, 39, 0, 0, 0,  // mov $39, %eax
    0x0f, 0x05,         // syscall
    0xc3,               // ret
};

typedef long (*fn_t)(void);

static int failed;

static void call(const char *name, void *code) {
    printf("%s: calling code at %p\n", name, code);
    fflush(stdout);
    long r = ((fn_t)code)();
    printf("%s getpid=%ld\n", name, r);
    fflush(stdout);
}

static void fail(const char *what) {
    printf("FAIL %s\n", what);
    fflush(stdout);
    failed = 1;
}

int main(void) {
    printf("libc getpid=%ld\n", (long)getpid());

    // low: an RWX page below 4 GiB, first
    void *lw = (void *)(uintptr_t)0x10000000UL;
    void *l = mmap(lw, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (l == MAP_FAILED || l != lw) {
        fail("mmap at 0x10000000");
    } else {
        memcpy(l, GETPID_CODE, sizeof GETPID_CODE);
        call("low", l);
    }

    // anon: an RWX anonymous page (wherever mmap puts it)
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fail("mmap RWX");
    } else {
        memcpy(p, GETPID_CODE, sizeof GETPID_CODE);
        call("anon", p);
    }

    // wx: written while RW, executed after mprotect to R+X
    void *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) {
        fail("mmap RW");
    } else {
        memcpy(q, GETPID_CODE, sizeof GETPID_CODE);
        if (mprotect(q, 4096, PROT_READ | PROT_EXEC) != 0)
            fail("mprotect R+X");
        else
            call("wx", q);
    }

    // stack: a page inside a stack buffer made executable
    unsigned char buf[3 * 4096];
    uintptr_t page = ((uintptr_t)buf + 4095) & ~(uintptr_t)4095;
    memcpy((void *)page, GETPID_CODE, sizeof GETPID_CODE);
    if (mprotect((void *)page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC) != 0)
        fail("mprotect stack RWX");
    else
        call("stack", (void *)page);

    // high: above 4 GiB (but inside the default 16 GiB address space)
    void *want = (void *)(uintptr_t)0x300000000UL;
    void *h = mmap(want, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (h == MAP_FAILED || h != want) {
        fail("mmap above 4 GiB");
    } else {
        memcpy(h, GETPID_CODE, sizeof GETPID_CODE);
        call("high", h);
    }

    printf(failed ? "syscall-anon FAILED\n" : "syscall-anon done\n");
    return failed;
}
