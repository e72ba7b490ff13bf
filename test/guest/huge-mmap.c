// hostile: asks for 1 TiB of anonymous memory. Prints "mmap failed:
// <strerror>" and exits 3 if refused (expected with a small --mem: ENOMEM);
// exits 0 if it succeeds (a host with overcommit may allow it).
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>

int main(void) {
    size_t len = 1UL << 40;
    printf("mmap 1 TiB anonymous\n");
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        printf("mmap failed: %s\n", strerror(errno));
        return 3;
    }
    printf("mmap succeeded at %p\n", p);
    return 0;
}
