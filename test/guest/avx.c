// build: -mavx2
// avx: if the CPU offers AVX2 (per CPUID, as the guest sees it), runs an AVX2
// vector sum and checks it. Also memcpy/strlen/memset/memcmp of large buffers,
// for which glibc picks AVX2/EVEX variants when offered. Prints "avx2 used" or
// "avx2 not offered"; exits 0 either way unless a computed value is wrong.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N (1 << 20)

static int fails;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fails++; } } while (0)

// Only called when AVX2 is present. The file is built with -mavx2 for this
// function; main below opts out (target "no-avx") so that, when the CPU does
// not offer AVX, main's own code has no VEX instructions that would #UD.
__attribute__((target("avx2"), noinline))
static int64_t avx2_sum(const int32_t *a, size_t n) {
    __m256i acc_lo = _mm256_setzero_si256(), acc_hi = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(a + i));
        acc_lo = _mm256_add_epi64(acc_lo, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
        acc_hi = _mm256_add_epi64(acc_hi, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
    }
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, _mm256_add_epi64(acc_lo, acc_hi));
    int64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
    for (size_t k = 0; k < (n & 7); k++) s += a[(n & ~(size_t)7) + k];  // tail
    return s;
}

__attribute__((target("no-avx")))
int main(void) {
    __builtin_cpu_init();
    int has_avx2 = __builtin_cpu_supports("avx2");

    // Large memcpy/strlen/memset/memcmp go through glibc's ifunc-selected
    // (AVX2 if offered) implementations.
    printf("checking memcpy/memset/memcmp/strlen of %d-byte buffers\n", 16 * N);
    size_t big = 16 * (size_t)N;
    char *src = malloc(big + 1), *dst = malloc(big + 1);
    if (!src || !dst) { printf("FAIL: malloc\n"); return 1; }
    for (size_t i = 0; i < big; i++) src[i] = (char)('a' + i % 26);
    src[big] = 0;
    memcpy(dst, src, big + 1);
    CHECK(memcmp(dst, src, big + 1) == 0, "memcmp after memcpy differs");
    for (size_t i = 0; i < big; i += 4093)
        CHECK(dst[i] == (char)('a' + i % 26), "dst[%zu] = %d", i, dst[i]);
    CHECK(strlen(dst) == big, "strlen = %zu, want %zu", strlen(dst), big);
    dst[big - 12345] = 0;
    CHECK(strlen(dst) == big - 12345, "strlen after cut = %zu", strlen(dst));
    memset(dst, 'z', big);
    CHECK(dst[0] == 'z' && dst[big / 2] == 'z' && dst[big - 1] == 'z', "memset");
    CHECK(memchr(dst, 'q', big) == NULL, "memchr found a stray byte");
    dst[big - 7] = 'q';
    CHECK(memchr(dst, 'q', big) == dst + big - 7, "memchr position");

    if (has_avx2) {
        printf("checking AVX2 vector sum of %d ints\n", N);
        int32_t *a = malloc(N * sizeof *a);
        if (!a) { printf("FAIL: malloc\n"); return 1; }
        int64_t want = 0;
        for (int i = 0; i < N; i++) {
            a[i] = (int32_t)((i * 2654435761u) >> 3) - (1 << 27);
            want += a[i];
        }
        int64_t got = avx2_sum(a, N);
        CHECK(got == want, "avx2 sum = %lld, want %lld", (long long)got, (long long)want);
        free(a);
    }
    free(src);
    free(dst);

    if (fails) {
        printf("avx FAILED (%d checks)\n", fails);
        return 1;
    }
    printf(has_avx2 ? "avx2 used\n" : "avx2 not offered\n");
    return 0;
}
