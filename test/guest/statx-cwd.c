// statx-cwd: statx and newfstatat of the working directory by an empty path (AT_EMPTY_PATH with
// AT_FDCWD). Without a disk image mapvisor has no inode for it: ENOENT, never a VMM failure (the
// kernel once dereferenced the missing file system: found by the syscall fuzzer). Prints the results.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(void) {
    struct statx sx;
    struct stat st;
    int a = statx(AT_FDCWD, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx);
    int ea = errno;
    int b = fstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH);
    int eb = errno;
    printf("statx %d %s, fstatat %d %s\n", a, a ? strerror(ea) : "ok", b, b ? strerror(eb) : "ok");
    return 0;
}
