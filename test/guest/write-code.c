// hostile: writes to its own main function's code (text is mapped r-x).
// Must die with SIGSEGV (exit 139).
#include <stdio.h>

int main(void) {
    volatile unsigned char *code = (volatile unsigned char *)(void *)&main;
    printf("writing to main's code at %p\n", (void *)code);
    fflush(stdout);
    code[0] = 0xcc;
    printf("wrote to code: not stopped!\n");
    return 0;
}
