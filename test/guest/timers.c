// build: -pthread
// alarm, setitimer(ITIMER_REAL) with an interval and pause(), and three spinning threads that never make a
// system call next to a main thread that must still run (time slices when --cpus places are all taken).
#include <stdio.h>
#include <signal.h>
#include <unistd.h>
#include <sys/time.h>
#include <pthread.h>
static volatile int n;
static void h(int s) { (void)s; n++; }
static void *spin(void *a) { for (;;) ; return a; }
int main(void) {
  signal(SIGALRM, h);
  struct itimerval it = {{0, 20000}, {0, 20000}};
  setitimer(ITIMER_REAL, &it, NULL);
  while (n < 5) pause();
  struct itimerval z = {0};
  setitimer(ITIMER_REAL, &z, NULL);
  printf("itimer fired %d\n", n);
  alarm(1); unsigned left = alarm(0); printf("alarm left %u\n", left);
  pthread_t t[3]; for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, spin, NULL);
  usleep(100000);
  printf("main ran with 3 spinners\n");
  return 0;
}
