// Signal handlers in one thread: synchronous faults delivered to handlers that siglongjmp out, a
// signal sent to oneself with SA_SIGINFO, the alternate stack, masking and pending delivery on
// unblock, SA_RESETHAND, and registers and FPU state surviving a handler. Prints "signals ok".
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s\n", msg); exit(1); } } while (0)

static sigjmp_buf jb;
static volatile sig_atomic_t got, got_code;
static volatile uintptr_t got_addr, handler_sp;
static char altstack[65536];

static void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got = sig;
    got_code = si->si_code;
    got_addr = (uintptr_t)si->si_addr;
    siglongjmp(jb, 1);
}

static void on_usr(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    got = sig;
    got_code = si->si_code;
    int local;
    handler_sp = (uintptr_t)&local;
    // Clobber FPU/SSE state inside the handler: the interrupted code must not see it.
    volatile double x = 1.0;
    for (int i = 0; i < 10; i++) x = x * 3.7 + 1.1;
}

static void install(int sig, void (*h)(int, siginfo_t *, void *), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction");
}

int main(void) {
    // 1. A null dereference reaches the SIGSEGV handler with si_addr 0, and siglongjmp gets out.
    install(SIGSEGV, on_fault, 0);
    if (sigsetjmp(jb, 1) == 0) {
        volatile int *p = (int *)0;
        (void)*p;
        CHECK(0, "no SIGSEGV");
    }
    CHECK(got == SIGSEGV && (got_code == SEGV_MAPERR || got_code == SEGV_ACCERR) && got_addr == 0, "SIGSEGV siginfo");
    // The mask was restored by siglongjmp: a second fault is delivered again.
    got = 0;
    if (sigsetjmp(jb, 1) == 0) {
        volatile int *p = (int *)0x1000;
        *p = 1;
        CHECK(0, "no second SIGSEGV");
    }
    CHECK(got == SIGSEGV && got_addr == 0x1000, "second SIGSEGV at 0x1000");

    // 2. Integer division by zero: SIGFPE, FPE_INTDIV.
    install(SIGFPE, on_fault, 0);
    got = 0;
    if (sigsetjmp(jb, 1) == 0) {
        volatile int z = 0;
        volatile int r = 7 / z;
        (void)r;
        CHECK(0, "no SIGFPE");
    }
    CHECK(got == SIGFPE && got_code == FPE_INTDIV, "SIGFPE siginfo");

    // 3. raise() with SA_SIGINFO: the handler runs and returns; registers and doubles survive.
    install(SIGUSR1, on_usr, 0);
    volatile double keep = 2.5;
    uint64_t r12;
    __asm__ volatile("mov $0x1122334455667788, %%r12" ::: "r12");
    got = 0;
    CHECK(raise(SIGUSR1) == 0, "raise");
    __asm__ volatile("mov %%r12, %0" : "=r"(r12));
    CHECK(got == SIGUSR1 && got_code == SI_TKILL, "SIGUSR1 delivered with SI_TKILL");
    CHECK(r12 == 0x1122334455667788ull, "r12 restored by rt_sigreturn");
    CHECK(keep * 2 == 5.0, "FPU state restored");

    // 4. The alternate stack.
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    CHECK(sigaltstack(&ss, NULL) == 0, "sigaltstack");
    install(SIGUSR2, on_usr, SA_ONSTACK);
    handler_sp = 0;
    raise(SIGUSR2);
    CHECK(handler_sp > (uintptr_t)altstack && handler_sp < (uintptr_t)altstack + sizeof altstack, "handler ran on the alternate stack");

    // 5. A blocked signal stays pending and arrives when unblocked.
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    CHECK(sigprocmask(SIG_BLOCK, &set, &old) == 0, "block");
    got = 0;
    raise(SIGUSR1);
    CHECK(got == 0, "blocked signal not delivered");
    sigset_t pend;
    sigpending(&pend);
    CHECK(sigismember(&pend, SIGUSR1) == 1, "sigpending shows the blocked signal");
    CHECK(sigprocmask(SIG_SETMASK, &old, NULL) == 0, "unblock");
    CHECK(got == SIGUSR1, "delivered on unblock");

    // 6. SA_RESETHAND: the second SIGUSR1 takes the default action, which is fatal; check the handler was reset.
    install(SIGUSR1, on_usr, SA_RESETHAND);
    got = 0;
    raise(SIGUSR1);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    CHECK(got == SIGUSR1 && now.sa_handler == SIG_DFL, "SA_RESETHAND");

    printf("signals ok\n");
    return 0;
}
