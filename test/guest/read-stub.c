// hostile: reads every page from 0x0 up to and including the VMM's supervisor
// area at 0x3000 (page tables, GDT/IDT, syscall stub). None of it may be
// readable from user mode: must die with SIGSEGV (exit 139) on the first read.
#include <stdint.h>
#include <stdio.h>

int main(void) {
    unsigned long sum = 0;
    for (uintptr_t a = 0x3000;; a -= 0x1000) {  // the supervisor area first
        printf("reading %#lx\n", (unsigned long)a);
        fflush(stdout);
        sum += *(volatile unsigned long *)a;
        if (a == 0) break;
    }
    printf("read low memory (sum %lx): not stopped!\n", sum);
    return 0;
}
