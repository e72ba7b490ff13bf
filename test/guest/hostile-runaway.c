// build: -pthread
// hostile: never ends on its own. `hostile-runaway [THREADS]` spins in `for(;;)` without a system
// call, with THREADS-1 more threads (default 1: just the main thread) spinning the same way. Only
// --timeout stops it: mapvisor must kill it with SIGKILL (exit 137, one `mapvisor: ` line naming the
// timeout), and every host thread and process of the program must be gone afterwards.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *spin(void *arg) {
    (void)arg;
    for (volatile unsigned long i = 0;; i++) {
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 1; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, spin, NULL) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    }
    printf("spinning on %d thread(s)\n", n < 1 ? 1 : n);
    fflush(stdout);
    spin(NULL);
}
