// hostile: writes to guest address 0x1000, where the VMM keeps its page
// tables. User code must never reach them: must die with SIGSEGV (exit 139).
// (Natively the page is simply unmapped, which also gives SIGSEGV.)
#include <stdint.h>
#include <stdio.h>

int main(void) {
    volatile uint64_t *pt = (volatile uint64_t *)(uintptr_t)0x1000;
    printf("writing to %p\n", (void *)pt);
    fflush(stdout);
    pt[0] = 0x8000000000000087ULL;  // a would-be huge-page PML4 entry
    printf("wrote to the page tables: not stopped!\n");
    return 0;
}
