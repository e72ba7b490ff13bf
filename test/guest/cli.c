// hostile: executes CLI (disable interrupts) in user mode. With IOPL 0 this
// raises #GP, delivered as SIGSEGV (exit 139).
#include <stdio.h>

int main(void) {
    printf("executing cli\n");
    fflush(stdout);
    __asm__ volatile("cli");
    printf("cli returned: not stopped!\n");
    return 0;
}
