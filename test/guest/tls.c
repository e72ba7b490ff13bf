// tls: checks __thread variables (initialized, zero-initialized, and errno).
// Thread-local storage is addressed through %fs, so this only works when the
// FS base set by arch_prctl(ARCH_SET_FS) during libc startup took effect.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static __thread long tls_init = 0x1234567890abcdefL;   // .tdata
static __thread int tls_zero[64];                       // .tbss
static __thread char tls_str[16] = "thread-local";

static int fails;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } } while (0)

// noinline so the compiler must really go through %fs each time.
__attribute__((noinline)) static long *addr_init(void) { return &tls_init; }

int main(void) {
    printf("checking initialized __thread long\n");
    CHECK(tls_init == 0x1234567890abcdefL, "tls_init = %lx", tls_init);
    CHECK(*addr_init() == tls_init, "address of tls_init inconsistent");
    CHECK(strcmp(tls_str, "thread-local") == 0, "tls_str = '%s'", tls_str);

    printf("checking zero-initialized __thread array\n");
    for (int i = 0; i < 64; i++)
        CHECK(tls_zero[i] == 0, "tls_zero[%d] = %d", i, tls_zero[i]);

    printf("checking writes to __thread variables stick\n");
    tls_init += 1;
    for (int i = 0; i < 64; i++) tls_zero[i] = i * 3;
    CHECK(*addr_init() == 0x1234567890abcdf0L, "tls_init after += 1 = %lx", tls_init);
    for (int i = 0; i < 64; i++)
        CHECK(tls_zero[i] == i * 3, "tls_zero[%d] = %d after write", i, tls_zero[i]);

    printf("checking the thread pointer (%%fs:0 points to itself)\n");
    uintptr_t tp;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
    CHECK(tp != 0, "%%fs:0 is 0");
    CHECK((uintptr_t)&tls_init < tp && tp - (uintptr_t)&tls_init < 65536,
          "tls_init at %p not just below thread pointer %p", (void *)&tls_init, (void *)tp);

    printf("checking errno (a __thread variable in libc)\n");
    errno = 0;
    CHECK(close(-1) == -1, "close(-1) succeeded");
    CHECK(errno == EBADF, "errno after close(-1) = %d, want EBADF", errno);
    errno = 12345;
    CHECK(errno == 12345, "errno write did not stick");

    if (fails) {
        printf("tls FAILED (%d checks)\n", fails);
        return 1;
    }
    printf("tls ok\n");
    return 0;
}
