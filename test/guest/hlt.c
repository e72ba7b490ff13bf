// hostile: executes the privileged HLT instruction in user mode (CPL 3).
// On Linux this raises #GP, delivered as SIGSEGV (exit 139).
#include <stdio.h>

int main(void) {
    printf("executing hlt\n");
    fflush(stdout);
    __asm__ volatile("hlt");
    printf("hlt returned: not stopped!\n");
    return 0;
}
