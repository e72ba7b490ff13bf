// build: -pthread
// rseq as Linux answers it: glibc's registration, EBUSY/EPERM/EINVAL for a second one, unregistering,
// a registration of our own with cpu_id_start/cpu_id written, a critical section interrupted by a
// signal restarting at its abort_ip (the handler sees abort_ip), rseq_cs cleared by a signal outside
// the section, a bad abort signature killing with SIGSEGV, a fork keeping the registration, an exec
// and a new thread starting without one. Prints one line per check; the same as natively.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define SIG 0x53053053u

static long rs(void *a, unsigned len, int flags, unsigned sig) {
    long r = syscall(SYS_rseq, a, len, flags, sig);
    return r < 0 ? -errno : r;
}
static const char *en(long r) { return r >= 0 ? "0" : r == -EBUSY ? "EBUSY" : r == -EPERM ? "EPERM" : r == -EINVAL ? "EINVAL" : r == -ENOSYS ? "ENOSYS" : r == -EFAULT ? "EFAULT" : "other"; }

static struct rseq *glibc_area(void) { return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset); }
static unsigned getcpu_now(void) { unsigned c = 999; syscall(SYS_getcpu, &c, NULL, NULL); return c; }

/* A critical section that spins until it is aborted (or the handler gives up). */
extern char cs_start[], cs_post[], cs_abort[];
static volatile int giveup;
long cs_run(struct rseq *r, struct rseq_cs *cs);
__asm__(".text\n"
        ".globl cs_run\n"
        "cs_run:\n"
        "  movq %rsi, 8(%rdi)\n"
        ".globl cs_start\n"
        "cs_start:\n"
        "  cmpl $0, giveup(%rip)\n"
        "  je cs_start\n"
        ".globl cs_post\n"
        "cs_post:\n"
        "  xorl %eax, %eax\n"
        "  ret\n"
        "  .long 0x53053053\n"
        ".globl cs_abort\n"
        "cs_abort:\n"
        "  movl $1, %eax\n"
        "  ret\n");

static volatile int handled, rip_was_abort, rip_in_section;
static void on_alarm(int sig, siginfo_t *si, void *ucv) {
    (void)sig; (void)si;
    ucontext_t *uc = ucv;
    handled++;
    char *rip = (char *)uc->uc_mcontext.gregs[REG_RIP];
    if (rip == cs_abort) rip_was_abort = 1;
    if (rip >= cs_start && rip < cs_post) rip_in_section = 1;
    if (handled >= 200) giveup = 1;
}
static void on_usr1(int sig) { (void)sig; }

static void timer_on(void) {
    struct itimerval it = {{0, 5000}, {0, 5000}};
    setitimer(ITIMER_REAL, &it, NULL);
}
static void timer_off(void) {
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

static struct rseq own __attribute__((aligned(32)));
static char spare[64] __attribute__((aligned(32)));

static void *thread_main(void *arg) {
    (void)arg;
    struct rseq *g = glibc_area();
    printf("thread: glibc registered its area: %s\n", (int)g->cpu_id >= 0 ? "yes" : "no");
    printf("thread: its area again: %s\n", en(rs(g, 32, 0, SIG)));
    return NULL;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && !strcmp(argv[1], "after-exec")) {
        printf("after exec: glibc registered its area: %s\n", (int)glibc_area()->cpu_id >= 0 ? "yes" : "no");
        return 0;
    }
    struct rseq *g = glibc_area();
    printf("glibc rseq size %u, registered: %s\n", __rseq_size, (int)g->cpu_id >= 0 ? "yes" : "no");
    int agree = 0;
    for (int i = 0; i < 20 && !agree; i++) agree = g->cpu_id == getcpu_now() && g->cpu_id_start == g->cpu_id;
    printf("cpu_id is getcpu's: %s\n", agree ? "yes" : "no");
    printf("same area again: %s\n", en(rs(g, 32, 0, SIG)));
    printf("same area, other signature: %s\n", en(rs(g, 32, 0, SIG + 1)));
    printf("other area: %s\n", en(rs(&own, 32, 0, SIG)));
    printf("unknown flag: %s\n", en(rs(g, 32, 2, SIG)));
    printf("unregister, other signature: %s\n", en(rs(g, 32, RSEQ_FLAG_UNREGISTER, SIG + 1)));
    printf("unregister, other length: %s\n", en(rs(g, 16, RSEQ_FLAG_UNREGISTER, SIG)));
    printf("unregister, other area: %s\n", en(rs(&own, 32, RSEQ_FLAG_UNREGISTER, SIG)));
    printf("unregister, extra flag: %s\n", en(rs(g, 32, RSEQ_FLAG_UNREGISTER | 2, SIG)));
    printf("unregister: %s\n", en(rs(g, 32, RSEQ_FLAG_UNREGISTER, SIG)));
    printf("after unregister: cpu_id_start %u cpu_id %d\n", g->cpu_id_start, (int)g->cpu_id);
    printf("unregister again: %s\n", en(rs(g, 32, RSEQ_FLAG_UNREGISTER, SIG)));
    printf("register length 16: %s\n", en(rs(&own, 16, 0, SIG)));
    printf("register misaligned: %s\n", en(rs(spare + 8, 32, 0, SIG)));
    own.cpu_id_start = 77; own.cpu_id = 77;
    printf("register our own: %s\n", en(rs(&own, 32, 0, SIG)));
    agree = 0;
    for (int i = 0; i < 20 && !agree; i++) agree = own.cpu_id == getcpu_now() && own.cpu_id_start == own.cpu_id;
    printf("our cpu_id is getcpu's: %s\n", agree ? "yes" : "no");

    struct sigaction sa = {0};
    sa.sa_sigaction = on_alarm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGUSR1, on_usr1);

    struct rseq_cs cs = {0, 0, (uintptr_t)cs_start, (uintptr_t)(cs_post - cs_start), (uintptr_t)cs_abort};
    timer_on();
    long ab = cs_run(&own, &cs);
    timer_off();
    // Natively a preemption may abort the section before the signal comes: then the handler never sees it.
    printf("critical section interrupted: %s; a handler saw an ip inside it: %s; rseq_cs cleared: %s\n", ab == 1 ? "aborted" : "ran on", rip_in_section ? "yes" : "no", own.rseq_cs == 0 ? "yes" : "no");
    printf("(host-dependent) the handler saw abort_ip: %s\n", rip_was_abort ? "yes" : "no");

    own.rseq_cs = (uintptr_t)&cs;
    raise(SIGUSR1);
    printf("a signal outside the section clears rseq_cs: %s\n", own.rseq_cs == 0 ? "yes" : "no");

    pid_t p = fork();
    if (p == 0) {
        printf("fork child: registration kept: %s\n", en(rs(&own, 32, 0, SIG)));
        struct rseq_cs bad = cs;
        bad.abort_ip = (uintptr_t)cs_abort + 1; /* the 4 bytes before it are not the signature */
        giveup = 0; handled = 0;
        timer_on();
        cs_run(&own, &bad);
        printf("fork child: bad signature survived\n");
        _exit(0);
    }
    int st = 0;
    waitpid(p, &st, 0);
    printf("bad abort signature: %s\n", WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "exited");

    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);

    fflush(stdout);
    execl("/proc/self/exe", argv[0], "after-exec", (char *)NULL);
    printf("exec failed: %s\n", strerror(errno));
    return 1;
}
