// One long relative sleep, measured by the program itself: a pause of the sandbox in the middle must not
// make it sleep longer than asked (the restarted call keeps its deadline). usage: sleeper MS.
// Prints "slept N ms".
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 1500;
    long t0 = now_ms();
    struct timespec req = { ms / 1000, (ms % 1000) * 1000000L };
    if (nanosleep(&req, NULL) != 0) return 1;
    printf("slept %ld ms\n", now_ms() - t0);
    return 0;
}
