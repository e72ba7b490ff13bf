// hostile: integer division by zero through a volatile (#DE). Must die with
// SIGFPE (exit 136).
#include <stdio.h>

int main(void) {
    volatile int zero = 0, x = 42;
    printf("dividing by zero\n");
    fflush(stdout);
    int q = x / zero;
    printf("42 / 0 = %d: not stopped!\n", q);
    return 0;
}
