// memstress: exercises the VMM's memory syscalls. Many rounds of anonymous
// mmap/munmap/mprotect with sizes from 4 KiB to 64 MiB, filling and verifying
// patterns; munmap of the middle of a mapping (both halves must keep their
// data, the hole must be free and come back zero-filled); mprotect read-only
// and back; mremap grow/shrink/move keeping contents; brk grow/shrink via
// sbrk; malloc/calloc/realloc/free of many sizes. Prints "memstress ok".
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define KiB (1024UL)
#define MiB (1024UL * KiB)
#define PAGE 4096UL

static int fails;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); fflush(stdout); fails++; } } while (0)
#define CHECK_OR_DIE(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf(" (%s)\n", strerror(errno)); exit(1); } } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {  // xorshift64*
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

// The pattern of the 8-byte word at byte offset off of a region with this seed.
static inline uint64_t pat(uint64_t seed, size_t off) { return (off * 0x100000001b3ULL) ^ seed; }

static void fill(void *p, size_t len, uint64_t seed) {
    uint64_t *w = p;
    for (size_t i = 0; i < len / 8; i++) w[i] = pat(seed, i * 8);
}

// Returns the byte offset of the first mismatching word, or (size_t)-1.
static size_t verify(const void *p, size_t len, uint64_t seed, size_t base_off) {
    const uint64_t *w = p;
    for (size_t i = 0; i < len / 8; i++)
        if (w[i] != pat(seed, base_off + i * 8)) return i * 8;
    return (size_t)-1;
}

static size_t first_nonzero(const void *p, size_t len) {
    const uint64_t *w = p;
    for (size_t i = 0; i < len / 8; i++)
        if (w[i]) return i * 8;
    return (size_t)-1;
}

static void *map(size_t len, int prot) {
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK_OR_DIE(p != MAP_FAILED, "mmap(%zu)", len);
    CHECK_OR_DIE(((uintptr_t)p & (PAGE - 1)) == 0, "mmap(%zu) returned unaligned %p", len, p);
    return p;
}

static void test_rounds(void) {
    static const size_t sizes[] = {4 * KiB, 8 * KiB, 12 * KiB, 64 * KiB, 1 * MiB,
                                   2 * MiB + 4 * KiB, 16 * MiB, 64 * MiB};
    printf("mmap/fill/verify/munmap rounds, 4 KiB .. 64 MiB\n");
    for (int round = 0; round < 3; round++) {
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            size_t len = sizes[k];
            uint8_t *p = map(len, PROT_READ | PROT_WRITE);
            size_t nz = first_nonzero(p, len);
            CHECK(nz == (size_t)-1, "fresh %zu-byte mapping not zero at +%zu", len, nz);
            uint64_t seed = rnd();
            fill(p, len, seed);
            size_t bad = verify(p, len, seed, 0);
            CHECK(bad == (size_t)-1, "%zu-byte mapping wrong at +%zu", len, bad);
            CHECK_OR_DIE(munmap(p, len) == 0, "munmap(%zu)", len);
        }
    }
}

static void test_many_small(void) {
    enum { NMAP = 512 };
    static uint8_t *ptr[NMAP];
    static size_t len[NMAP];
    static uint64_t seed[NMAP];
    printf("%d live mappings of 1..16 pages, unmapped in random order\n", NMAP);
    for (int i = 0; i < NMAP; i++) {
        len[i] = (1 + rnd() % 16) * PAGE;
        ptr[i] = map(len[i], PROT_READ | PROT_WRITE);
        seed[i] = rnd();
        fill(ptr[i], len[i], seed[i]);
    }
    for (int i = 0; i < NMAP; i++) {
        size_t bad = verify(ptr[i], len[i], seed[i], 0);
        CHECK(bad == (size_t)-1, "small mapping %d wrong at +%zu", i, bad);
    }
    for (int i = NMAP - 1; i > 0; i--) {  // shuffle, then unmap, checking the rest as we go
        int j = rnd() % (i + 1);
        uint8_t *tp = ptr[i]; ptr[i] = ptr[j]; ptr[j] = tp;
        size_t tl = len[i]; len[i] = len[j]; len[j] = tl;
        uint64_t ts = seed[i]; seed[i] = seed[j]; seed[j] = ts;
    }
    for (int i = 0; i < NMAP; i++) {
        CHECK_OR_DIE(munmap(ptr[i], len[i]) == 0, "munmap small %d", i);
        if (i % 64 == 0)
            for (int k = i + 1; k < NMAP; k++) {
                size_t bad = verify(ptr[k], len[k], seed[k], 0);
                CHECK(bad == (size_t)-1, "small mapping wrong at +%zu after unmapping others", bad);
            }
    }
}

// munmap the middle of a mapping: both halves keep their data; the hole is
// free (MAP_FIXED_NOREPLACE can claim it) and comes back zero-filled.
static void test_munmap_middle(size_t len, size_t hole_off, size_t hole_len) {
    printf("munmap middle: %zu bytes at +%zu of a %zu-byte mapping\n", hole_len, hole_off, len);
    uint8_t *p = map(len, PROT_READ | PROT_WRITE);
    uint64_t s = rnd();
    fill(p, len, s);
    CHECK_OR_DIE(munmap(p + hole_off, hole_len) == 0, "munmap middle");
    size_t bad = verify(p, hole_off, s, 0);
    CHECK(bad == (size_t)-1, "lower half wrong at +%zu", bad);
    size_t hi = hole_off + hole_len;
    bad = verify(p + hi, len - hi, s, hi);
    CHECK(bad == (size_t)-1, "upper half wrong at +%zu", hi + bad);
    uint8_t *q = mmap(p + hole_off, hole_len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(q == p + hole_off, "re-mapping the hole with MAP_FIXED_NOREPLACE gave %p (want %p): %s",
          (void *)q, (void *)(p + hole_off), q == MAP_FAILED ? strerror(errno) : "moved");
    if (q == p + hole_off) {
        size_t nz = first_nonzero(q, hole_len);
        CHECK(nz == (size_t)-1, "re-mapped hole not zero at +%zu (old data leaked?)", nz);
        fill(q, hole_len, s ^ 1);
        CHECK(verify(p, hole_off, s, 0) == (size_t)-1, "lower half changed after refilling hole");
        CHECK(verify(p + hi, len - hi, s, hi) == (size_t)-1, "upper half changed after refilling hole");
        CHECK_OR_DIE(munmap(p, len) == 0, "munmap whole after hole refill");
    } else {
        CHECK_OR_DIE(munmap(p, hole_off) == 0, "munmap lower");
        CHECK_OR_DIE(munmap(p + hi, len - hi) == 0, "munmap upper");
    }
    // MAP_FIXED_NOREPLACE on an occupied range must fail with EEXIST.
    uint8_t *r = map(2 * PAGE, PROT_READ | PROT_WRITE);
    void *e = mmap(r + PAGE, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(e == MAP_FAILED && errno == EEXIST, "MAP_FIXED_NOREPLACE over a mapping did not fail with EEXIST");
    munmap(r, 2 * PAGE);
}

// MAP_FIXED over an existing mapping replaces it with fresh zero pages.
static void test_map_fixed_replace(void) {
    printf("MAP_FIXED over part of a mapping gives zero pages, rest intact\n");
    size_t len = 64 * PAGE;
    uint8_t *p = map(len, PROT_READ | PROT_WRITE);
    uint64_t s = rnd();
    fill(p, len, s);
    void *q = mmap(p + 8 * PAGE, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK_OR_DIE(q == p + 8 * PAGE, "MAP_FIXED");
    CHECK(first_nonzero(q, 8 * PAGE) == (size_t)-1, "MAP_FIXED replacement not zero");
    CHECK(verify(p, 8 * PAGE, s, 0) == (size_t)-1, "data below MAP_FIXED replacement changed");
    CHECK(verify(p + 16 * PAGE, len - 16 * PAGE, s, 16 * PAGE) == (size_t)-1, "data above MAP_FIXED replacement changed");
    munmap(p, len);
}

static void test_mprotect(void) {
    printf("mprotect read-only and back, whole and partial\n");
    for (size_t len = 4 * KiB; len <= 16 * MiB; len *= 8) {
        uint8_t *p = map(len, PROT_READ | PROT_WRITE);
        uint64_t s = rnd();
        fill(p, len, s);
        CHECK_OR_DIE(mprotect(p, len, PROT_READ) == 0, "mprotect(%zu, PROT_READ)", len);
        CHECK(verify(p, len, s, 0) == (size_t)-1, "read-only %zu-byte mapping wrong", len);
        CHECK_OR_DIE(mprotect(p, len, PROT_READ | PROT_WRITE) == 0, "mprotect(%zu, RW)", len);
        fill(p, len, s ^ 2);
        CHECK(verify(p, len, s ^ 2, 0) == (size_t)-1, "re-writable %zu-byte mapping wrong", len);
        if (len >= 3 * PAGE) {  // protect only the middle page(s): splits the mapping in three
            CHECK_OR_DIE(mprotect(p + PAGE, len - 2 * PAGE, PROT_READ) == 0, "partial mprotect");
            p[0] ^= 0xff;             // first page still writable
            p[len - 1] ^= 0xff;       // last page still writable
            p[0] ^= 0xff;
            p[len - 1] ^= 0xff;
            CHECK(verify(p, len, s ^ 2, 0) == (size_t)-1, "data wrong after partial mprotect");
            CHECK_OR_DIE(mprotect(p, len, PROT_READ | PROT_WRITE) == 0, "mprotect back");
            p[len / 2] = 1;
        }
        CHECK_OR_DIE(munmap(p, len) == 0, "munmap");
    }
    // PROT_NONE reservation made accessible piecewise (how glibc makes thread stacks/arenas).
    printf("PROT_NONE reservation committed with mprotect\n");
    size_t rlen = 32 * MiB;
    uint8_t *r = map(rlen, PROT_NONE);
    for (size_t off = 0; off < rlen; off += 4 * MiB) {
        CHECK_OR_DIE(mprotect(r + off, 1 * MiB, PROT_READ | PROT_WRITE) == 0, "mprotect commit +%zu", off);
        CHECK(first_nonzero(r + off, 1 * MiB) == (size_t)-1, "committed memory not zero");
        fill(r + off, 1 * MiB, off);
    }
    for (size_t off = 0; off < rlen; off += 4 * MiB)
        CHECK(verify(r + off, 1 * MiB, off, 0) == (size_t)-1, "committed chunk +%zu wrong", off);
    CHECK_OR_DIE(munmap(r, rlen) == 0, "munmap reservation");
}

static void test_mremap(void) {
    printf("mremap grow/shrink/move keeping contents\n");
    size_t len = 1 * MiB;
    uint8_t *p = map(len, PROT_READ | PROT_WRITE);
    uint64_t s = rnd();
    fill(p, len, s);

    // Grow (may move).
    uint8_t *g = mremap(p, len, 4 * len, MREMAP_MAYMOVE);
    CHECK_OR_DIE(g != MAP_FAILED, "mremap grow");
    CHECK(verify(g, len, s, 0) == (size_t)-1, "contents lost on mremap grow");
    CHECK(first_nonzero(g + len, 3 * len) == (size_t)-1, "grown part not zero");
    fill(g + len, 3 * len, s ^ 3);

    // Shrink in place.
    uint8_t *sh = mremap(g, 4 * len, len / 2, 0);
    CHECK_OR_DIE(sh == g, "mremap shrink moved or failed");
    CHECK(verify(sh, len / 2, s, 0) == (size_t)-1, "contents lost on mremap shrink");

    // Grow where the next page is taken: must move (with MAYMOVE) or fail (without).
    uint8_t *blk = mmap(sh + len / 2, PAGE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    int blocked = blk == sh + len / 2 || (blk == MAP_FAILED && errno == EEXIST);
    if (blk == sh + len / 2) blk[0] = 0x5a;
    void *nm = mremap(sh, len / 2, 8 * len, 0);
    if (blocked)
        CHECK(nm == MAP_FAILED && errno == ENOMEM, "blocked mremap grow without MAYMOVE did not fail with ENOMEM");
    if (nm != MAP_FAILED) sh = nm;
    uint8_t *mv = mremap(sh, nm != MAP_FAILED ? 8 * len : len / 2, 8 * len, MREMAP_MAYMOVE);
    CHECK_OR_DIE(mv != MAP_FAILED, "mremap grow with MAYMOVE past a blocker");
    if (blocked) CHECK(mv != sh, "mremap grew in place over a blocker");
    CHECK(verify(mv, len / 2, s, 0) == (size_t)-1, "contents lost on mremap move");
    if (blk == sh + len / 2) {
        CHECK(blk[0] == 0x5a, "blocker page clobbered by mremap");
        munmap(blk, PAGE);
    }
    // The old range must be gone: MAP_FIXED_NOREPLACE can take it.
    void *old = mmap(sh, len / 2, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mv != sh) {
        CHECK(old == sh, "old range of a moved mremap still occupied");
        CHECK(old == MAP_FAILED || first_nonzero(old, len / 2) == (size_t)-1, "old range not zero after move");
    }
    if (old != MAP_FAILED && old != mv) munmap(old, len / 2);

    // Explicit move to a chosen address with MREMAP_FIXED.
    uint8_t *dst = map(2 * len, PROT_NONE);  // reserve a destination
    uint8_t *fx = mremap(mv, 8 * len, len / 2, MREMAP_MAYMOVE | MREMAP_FIXED, dst + len);
    CHECK_OR_DIE(fx == dst + len, "mremap MREMAP_FIXED");
    CHECK(verify(fx, len / 2, s, 0) == (size_t)-1, "contents lost on MREMAP_FIXED move");
    fx[0] ^= 1; fx[0] ^= 1;  // writable (took mv's protection, not the reservation's)
    munmap(dst, 2 * len);

    // Many grow-by-a-page steps, the way realloc of a big buffer behaves.
    size_t cur = PAGE;
    uint8_t *q = map(cur, PROT_READ | PROT_WRITE);
    q[0] = 0x77;
    for (int i = 0; i < 200; i++) {
        uint8_t *n2 = mremap(q, cur, cur + PAGE, MREMAP_MAYMOVE);
        CHECK_OR_DIE(n2 != MAP_FAILED, "mremap step %d", i);
        q = n2;
        q[cur] = (uint8_t)i;
        cur += PAGE;
    }
    CHECK(q[0] == 0x77, "first byte lost over mremap steps");
    for (int i = 0; i < 200; i++) CHECK(q[PAGE * (i + 1)] == (uint8_t)i, "mremap step %d byte lost", i);
    munmap(q, cur);
}

static void test_brk(void) {
    printf("brk grow/shrink via sbrk\n");
    fflush(stdout);
    // No stdio or malloc between here and the end of the test (they use brk).
    uint8_t *start = sbrk(0);
    CHECK_OR_DIE(start != (void *)-1, "sbrk(0)");
    size_t total = 0;
    for (int i = 0; i < 32; i++) {  // grow in odd-sized steps up to ~8 MiB
        size_t step = 256 * KiB + 123 * (size_t)i;
        uint8_t *old = sbrk(step);
        CHECK_OR_DIE(old != (void *)-1, "sbrk(+%zu)", step);
        CHECK(old == start + total, "sbrk returned %p, want %p", (void *)old, (void *)(start + total));
        total += step;
        memset(old, 0xa0 + (i & 15), step);
    }
    CHECK(sbrk(0) == start + total, "sbrk(0) after growth");
    size_t off = 0;
    for (int i = 0; i < 32; i++) {
        size_t step = 256 * KiB + 123 * (size_t)i;
        for (size_t k = 0; k < step; k += 511)
            if (start[off + k] != 0xa0 + (i & 15)) { CHECK(0, "brk byte wrong at +%zu", off + k); break; }
        off += step;
    }
    // Shrink by half, then regrow: the regrown part must be zero again.
    size_t half = total / 2;
    CHECK_OR_DIE(sbrk(-(intptr_t)(total - half)) != (void *)-1, "sbrk shrink");
    CHECK(sbrk(0) == start + half, "sbrk(0) after shrink");
    CHECK(start[0] == 0xa0 && start[half - 1] != 0, "data below the break lost on shrink");
    uint8_t *again = sbrk(total - half);
    CHECK_OR_DIE(again == start + half, "sbrk regrow");
    // Linux hands out zeroed pages here; glibc's calloc relies on fresh brk memory being zero.
    size_t first_page = ((uintptr_t)again + PAGE - 1) & ~(PAGE - 1);
    size_t nz = first_nonzero((void *)first_page, ((uintptr_t)(start + total) - first_page) & ~7UL);
    CHECK(nz == (size_t)-1, "regrown brk memory not zero at +%zu", nz);
    // Back to where we started.
    CHECK_OR_DIE(sbrk(-(intptr_t)total) != (void *)-1, "sbrk shrink to start");
    CHECK(sbrk(0) == start, "sbrk(0) not back at start");
    // brk() below the initial break fails (or is ignored); above works.
    CHECK_OR_DIE(brk(start + 3 * PAGE) == 0, "brk(start + 3 pages)");
    start[3 * PAGE - 1] = 1;
    CHECK_OR_DIE(brk(start) == 0, "brk(start)");
}

static void test_malloc(void) {
    enum { SLOTS = 256, OPS = 20000 };
    static uint8_t *blk[SLOTS];
    static size_t sz[SLOTS];
    printf("malloc/calloc/realloc/free: %d operations, sizes 1 B .. 1 MiB\n", OPS);
    for (int op = 0; op < OPS; op++) {
        int i = rnd() % SLOTS;
        if (blk[i]) {  // verify and free (or realloc)
            for (size_t k = 0; k < sz[i]; k += 1 + sz[i] / 64)
                if (blk[i][k] != (uint8_t)(i + k)) { CHECK(0, "malloc block %d wrong at +%zu", i, k); break; }
            if (rnd() % 4 == 0) {
                size_t nsz = 1 + (rnd() % (1 << (rnd() % 21)));
                uint8_t *n = realloc(blk[i], nsz);
                CHECK_OR_DIE(n != NULL, "realloc(%zu)", nsz);
                size_t keep = nsz < sz[i] ? nsz : sz[i];
                for (size_t k = 0; k < keep; k += 1 + keep / 64)
                    if (n[k] != (uint8_t)(i + k)) { CHECK(0, "realloc lost data at +%zu", k); break; }
                for (size_t k = 0; k < nsz; k++) n[k] = (uint8_t)(i + k);
                blk[i] = n;
                sz[i] = nsz;
                continue;
            }
            free(blk[i]);
            blk[i] = NULL;
        }
        size_t n = 1 + (rnd() % (1 << (rnd() % 21)));  // log-uniform-ish up to 1 MiB
        if (rnd() % 8 == 0) {
            blk[i] = calloc(1, n);
            CHECK_OR_DIE(blk[i] != NULL, "calloc(%zu)", n);
            for (size_t k = 0; k < n; k++)
                if (blk[i][k]) { CHECK(0, "calloc(%zu) not zero at +%zu", n, k); break; }
        } else {
            blk[i] = malloc(n);
            CHECK_OR_DIE(blk[i] != NULL, "malloc(%zu)", n);
        }
        sz[i] = n;
        for (size_t k = 0; k < n; k++) blk[i][k] = (uint8_t)(i + k);
    }
    for (int i = 0; i < SLOTS; i++) free(blk[i]);
}

int main(void) {
    printf("memstress start\n");
    test_rounds();
    test_many_small();
    test_munmap_middle(16 * PAGE, 5 * PAGE, 6 * PAGE);
    test_munmap_middle(8 * MiB, 3 * MiB, 2 * MiB);
    test_munmap_middle(4 * MiB + 3 * PAGE, 2 * MiB - PAGE, 2 * PAGE);
    test_map_fixed_replace();
    test_mprotect();
    test_mremap();
    test_brk();
    test_malloc();
    if (fails) {
        printf("memstress FAILED (%d checks)\n", fails);
        return 1;
    }
    printf("memstress ok\n");
    return 0;
}
