// hostile: executes ud2 via __builtin_trap() (#UD). Must die with SIGILL (132).
#include <stdio.h>

int main(void) {
    printf("executing ud2\n");
    fflush(stdout);
    __builtin_trap();
}
