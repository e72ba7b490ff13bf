// A write-heavy file-system workload for the storage tests: thousands of files created, written,
// renamed and deleted; a directory grown past one block; a fragmented file grown past the extent
// tree's first level; truncates down and up. Prints "fsstress ok <checksum>" where the checksum covers
// every byte the program leaves behind, so the host can verify them with debugfs.
// usage: fsstress DIR [NFILES]
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIE(...) do { printf("FAIL: "); printf(__VA_ARGS__); printf(" (%s)\n", strerror(errno)); exit(1); } while (0)

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }

static void fill(char *buf, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) buf[i] = (char)((seed + i * 131) >> 3);
}

static void write_file(const char *path, size_t n, uint64_t seed) {
    static char buf[1 << 20];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) DIE("create %s", path);
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < sizeof buf ? n - done : sizeof buf;
        fill(buf, k, seed + done);
        if (write(fd, buf, k) != (ssize_t)k) DIE("write %s", path);
        done += k;
    }
    if (close(fd)) DIE("close %s", path);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: fsstress DIR [NFILES]\n"); return 2; }
    const char *dir = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 3000;
    char path[512], path2[512];
    if (mkdir(dir, 0755) && errno != EEXIST) DIE("mkdir %s", dir);
    snprintf(path, sizeof path, "%s/big", dir);
    if (mkdir(path, 0755)) DIE("mkdir %s", path);
    // Many files in one directory (grows past one block, and past the htree threshold).
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/big/file-with-a-longish-name-%06d", dir, i);
        write_file(path, rnd() % 5000, i);
    }
    // Rename half, delete a third.
    for (int i = 0; i < n; i += 2) {
        snprintf(path, sizeof path, "%s/big/file-with-a-longish-name-%06d", dir, i);
        snprintf(path2, sizeof path2, "%s/big/renamed-%06d", dir, i);
        if (rename(path, path2)) DIE("rename %s", path);
    }
    for (int i = 1; i < n; i += 6) { // odd: never renamed
        snprintf(path, sizeof path, "%s/big/file-with-a-longish-name-%06d", dir, i);
        if (unlink(path)) DIE("unlink %s", path);
    }
    // Nested directories, created and removed.
    for (int i = 0; i < 200; i++) {
        snprintf(path, sizeof path, "%s/d%03d", dir, i);
        if (mkdir(path, 0700)) DIE("mkdir %s", path);
        snprintf(path2, sizeof path2, "%s/d%03d/inner", dir, i);
        if (mkdir(path2, 0700)) DIE("mkdir %s", path2);
        if (i % 2 == 0) { if (rmdir(path2) || rmdir(path)) DIE("rmdir %s", path); }
    }
    // Fragmented files: interleaved 4 KiB appends to 4 files, so each gets many extents.
    int fds[4];
    for (int f = 0; f < 4; f++) {
        snprintf(path, sizeof path, "%s/frag%d", dir, f);
        fds[f] = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
        if (fds[f] < 0) DIE("create %s", path);
    }
    char block[4096];
    for (int r = 0; r < 600; r++)
        for (int f = 0; f < 4; f++) {
            fill(block, sizeof block, (uint64_t)r * 4 + f);
            if (write(fds[f], block, sizeof block) != sizeof block) DIE("append frag%d", f);
        }
    for (int f = 0; f < 4; f++) if (fsync(fds[f]) || close(fds[f])) DIE("fsync/close frag%d", f);
    // Truncate down and up.
    snprintf(path, sizeof path, "%s/frag3", dir);
    if (truncate(path, 10000) || truncate(path, 3 * 1024 * 1024)) DIE("truncate %s", path);
    // A checksum over what is left: file names and contents, read back.
    uint64_t sum = 0;
    static char buf[1 << 16];
    const char *subs[] = { "big", "." };
    for (int s = 0; s < 2; s++) {
        snprintf(path, sizeof path, "%s/%s", dir, subs[s]);
        DIR *d = opendir(path);
        if (!d) DIE("opendir %s", path);
        struct dirent *e;
        int count = 0;
        while ((e = readdir(d))) {
            count++;
            snprintf(path2, sizeof path2, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(path2, &st)) DIE("lstat %s", path2);
            if (!S_ISREG(st.st_mode)) continue;
            // Each file adds its own hash, so the total does not depend on readdir's order.
            uint64_t h = 1469598103934665603ull;
            for (const char *c = e->d_name; *c; c++) h = h * 31 + (unsigned char)*c;
            int fd = open(path2, O_RDONLY);
            if (fd < 0) DIE("open %s", path2);
            ssize_t k;
            while ((k = read(fd, buf, sizeof buf)) > 0) for (ssize_t i = 0; i < k; i++) h = h * 131 + (unsigned char)buf[i];
            if (k < 0) DIE("read %s", path2);
            close(fd);
            sum += h;
        }
        closedir(d);
        if (s == 0 && count < n / 2) DIE("readdir of big found only %d entries", count);
    }
    printf("fsstress ok %016llx\n", (unsigned long long)sum);
    return 0;
}
