// Process creation cost, for npm run bench:procs: `forkbench MODE N [PROGRAM]` runs N rounds of
//   fork        fork, the child _exits, the parent waits
//   exec        fork, the child execs PROGRAM (default /bin/true), the parent waits
//   vfork-exec  vfork, the child execs PROGRAM, the parent waits
//   fork-resident  as fork, from a parent with PROGRAM (a number: MiB, default 1024) of anonymous
//               memory written (resident), to show how the cost grows with memory
// and prints `us_per_op X` (wall time per round, µs). A round that fails prints one line to stderr
// (`forkbench: ...`) and exits 1.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "fork") && strcmp(argv[1], "exec") && strcmp(argv[1], "vfork-exec") && strcmp(argv[1], "fork-resident")) || atol(argv[2]) <= 0) {
    fprintf(stderr, "usage: forkbench fork|exec|vfork-exec N [PROGRAM] | forkbench fork-resident N [MIB]\n");
    return 2;
  }
  const char *mode = argv[1];
  if (!strcmp(mode, "fork-resident")) {
    size_t mib = argc > 3 ? (size_t)atol(argv[3]) : 1024;
    char *mem = malloc(mib << 20);
    if (!mem) {
      fprintf(stderr, "forkbench: cannot allocate %zu MiB\n", mib);
      return 1;
    }
    for (size_t i = 0; i < mib << 20; i += 4096) mem[i] = (char)i;
    mode = "fork";
    argc = 3; // (the MiB argument is not a program)
  }
  long n = atol(argv[2]);
  char *prog = argc > 3 ? argv[3] : "/bin/true";
  char *args[] = {prog, NULL};
  char *envs[] = {NULL};
  int use_vfork = !strcmp(mode, "vfork-exec"), do_exec = strcmp(mode, "fork") != 0;
  double t0 = now_us();
  for (long i = 0; i < n; i++) {
    pid_t pid = use_vfork ? vfork() : fork();
    if (pid < 0) {
      fprintf(stderr, "forkbench: %s: %s\n", use_vfork ? "vfork" : "fork", strerror(errno));
      return 1;
    }
    if (pid == 0) {
      if (do_exec) execve(prog, args, envs);
      _exit(do_exec ? 127 : 0);
    }
    int st;
    pid_t w;
    do w = waitpid(pid, &st, 0);
    while (w == -1 && errno == EINTR);
    if (w != pid) {
      fprintf(stderr, "forkbench: waitpid: %s\n", w < 0 ? strerror(errno) : "returned another pid");
      return 1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      if (WIFEXITED(st) && WEXITSTATUS(st) == 127) fprintf(stderr, "forkbench: execve %s failed in the child\n", prog);
      else fprintf(stderr, "forkbench: the child ended with status 0x%x\n", st);
      return 1;
    }
  }
  printf("us_per_op %.2f\n", (now_us() - t0) / n);
  return 0;
}
