// hostile: calls a function pointer to a canonical but surely unmapped
// address (just below the top of the user half). Must die with SIGSEGV (139).
#include <stdint.h>
#include <stdio.h>

int main(void) {
    void (*volatile fn)(void) = (void (*)(void))(uintptr_t)(0x700000000000UL - 0x1000);
    printf("calling %p\n", (void *)fn);
    fflush(stdout);
    fn();
    printf("returned from unmapped code: not stopped!\n");
    return 0;
}
