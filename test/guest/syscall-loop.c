// syscall-loop: calls syscall(SYS_getppid) N times (N = argv[1], default
// 100000) to measure the cost of one syscall round trip, then prints "done".
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 0) : 100000;
    long last = 0;
    for (long i = 0; i < n; i++)
        last = syscall(SYS_getppid);
    if (last < 0) {
        printf("getppid failed\n");
        return 1;
    }
    printf("done\n");
    return 0;
}
