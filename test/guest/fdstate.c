// Kernel objects in a checkpoint: bytes waiting in a pipe, a dup()ed fd sharing the pipe's read end, and
// an eventfd's counter. Sets them up, prints "ready", sleeps MS ms (a checkpoint is taken meanwhile),
// then writes more to the pipe, reads it all back through the dup, and reads the eventfd.
// usage: fdstate [MS]. Prints "fd ok: hello world 5".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long ms = argc > 1 ? atol(argv[1]) : 1500;
    int p[2];
    if (pipe(p) != 0) return 1;
    if (write(p[1], "hello ", 6) != 6) return 2;
    int r2 = dup(p[0]);
    int e = eventfd(5, 0);
    if (r2 < 0 || e < 0) return 3;
    printf("ready\n");
    fflush(stdout);
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&t, NULL);
    if (write(p[1], "world", 5) != 5) return 4;
    char buf[32] = { 0 };
    if (read(r2, buf, 11) != 11) return 5;
    unsigned long long v = 0;
    if (read(e, &v, 8) != 8) return 6;
    printf("fd ok: %s %llu\n", buf, v);
    return strcmp(buf, "hello world") == 0 && v == 5 ? 0 : 7;
}
