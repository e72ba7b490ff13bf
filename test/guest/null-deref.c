// hostile: reads through a NULL pointer. Must die with SIGSEGV (exit 139).
#include <stdio.h>

int main(void) {
    volatile int *p = (volatile int *)0;
    printf("reading *NULL\n");
    fflush(stdout);
    int v = *p;
    printf("read %d from NULL: not stopped!\n", v);
    return 0;
}
