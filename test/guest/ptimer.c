// ptimer: POSIX timers (timer_create, timer_settime, timer_gettime, timer_getoverrun, timer_delete):
// a one-shot and a periodic timer signalling with SI_TIMER and sigev_value, overruns while the signal
// is blocked, SIGEV_NONE, TIMER_ABSTIME on CLOCK_REALTIME, and the EINVAL answers.
// Prints one line per check; exits 1 on the first failure.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t fired;
static volatile int code, timerid, overrun;
static void *volatile value;

static void on_timer(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  fired++;
  code = si->si_code;
  timerid = si->si_timerid;
  overrun = si->si_overrun;
  value = si->si_value.sival_ptr;
}

static void check(int ok, const char *what) {
  if (!ok) {
    printf("FAIL %s (errno %d %s)\n", what, errno, strerror(errno));
    exit(1);
  }
  printf("ok %s\n", what);
}

static void msleep(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, NULL);

  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGUSR1;
  sev.sigev_value.sival_ptr = (void *)0x1234abcd5678;
  timer_t t;
  check(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0, "timer_create on CLOCK_MONOTONIC");
  struct itimerspec its = {{0, 0}, {0, 50 * 1000000L}}, cur;
  check(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "a new timer is disarmed");
  struct itimerspec far = {{0, 0}, {20, 0}};
  check(timer_settime(t, 0, &far, NULL) == 0, "armed for 20 s");
  check(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec >= 15 && cur.it_value.tv_sec < 20 && cur.it_interval.tv_sec == 0, "timer_gettime counts down");
  check(timer_settime(t, 0, &its, NULL) == 0, "re-armed for 50 ms");
  for (int i = 0; i < 200 && !fired; i++) msleep(5);
  check(fired == 1, "it fired once");
  check(code == SI_TIMER, "si_code is SI_TIMER");
  check(value == (void *)0x1234abcd5678, "si_value is sigev_value");
  check(timerid >= 0, "si_timerid is set");
  check(timer_gettime(t, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0, "a one-shot timer is disarmed after");

  // Periodic, with the signal blocked: one signal, the rest counted as overruns.
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, &old);
  fired = 0;
  struct itimerspec per = {{0, 10 * 1000000L}, {0, 10 * 1000000L}};
  check(timer_settime(t, 0, &per, NULL) == 0, "armed every 10 ms");
  msleep(200);
  sigprocmask(SIG_SETMASK, &old, NULL);
  check(timer_getoverrun(t) >= overrun, "timer_getoverrun counts them too");
  struct itimerspec stop = {{0, 0}, {0, 0}};
  check(timer_settime(t, 0, &stop, &cur) == 0 && cur.it_interval.tv_nsec == 10 * 1000000L, "disarmed; the old value had the interval");
  check(fired == 1, "one signal while blocked");
  check(overrun >= 3 && overrun <= 25, "the other expiries are si_overrun");

  // SIGEV_NONE: no signal, but the time runs.
  struct sigevent none;
  memset(&none, 0, sizeof none);
  none.sigev_notify = SIGEV_NONE;
  timer_t n;
  check(timer_create(CLOCK_REALTIME, &none, &n) == 0, "a SIGEV_NONE timer");
  struct itimerspec sec = {{0, 0}, {1, 0}};
  check(timer_settime(n, 0, &sec, NULL) == 0, "armed for 1 s");
  msleep(100);
  check(timer_gettime(n, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 500 * 1000000L && cur.it_value.tv_nsec < 950 * 1000000L, "it counts down without a signal");

  // TIMER_ABSTIME on CLOCK_REALTIME.
  timer_t r;
  check(timer_create(CLOCK_REALTIME, &sev, &r) == 0, "a CLOCK_REALTIME timer");
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec abs = {{0, 0}, {now.tv_sec, now.tv_nsec}};
  abs.it_value.tv_nsec += 30 * 1000000L;
  if (abs.it_value.tv_nsec >= 1000000000L) {
    abs.it_value.tv_sec++;
    abs.it_value.tv_nsec -= 1000000000L;
  }
  fired = 0;
  check(timer_settime(r, TIMER_ABSTIME, &abs, NULL) == 0, "armed at an absolute time 30 ms ahead");
  for (int i = 0; i < 200 && !fired; i++) msleep(5);
  check(fired == 1, "it fired");

  // The errors.
  check(timer_delete(r) == 0, "timer_delete");
  check(timer_settime(r, 0, &its, NULL) == -1 && errno == EINVAL, "a deleted timer is EINVAL");
  check(timer_delete(r) == -1 && errno == EINVAL, "deleting it again is EINVAL");
  struct itimerspec bad = {{0, 0}, {0, 1000000000L}};
  check(timer_settime(t, 0, &bad, NULL) == -1 && errno == EINVAL, "tv_nsec of 1e9 is EINVAL");
  timer_t x;
  check(timer_create(CLOCK_MONOTONIC_RAW, &sev, &x) == -1 && errno == EOPNOTSUPP, "CLOCK_MONOTONIC_RAW is EOPNOTSUPP");
  check(timer_create(10, &sev, &x) == -1 && errno == EINVAL, "clock 10 is EINVAL");
  struct sigevent badsig = sev;
  badsig.sigev_signo = 99;
  check(timer_create(CLOCK_MONOTONIC, &badsig, &x) == -1 && errno == EINVAL, "signal 99 is EINVAL");
  printf("ptimer ok\n");
  return 0;
}
