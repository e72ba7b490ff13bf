// eventfd, prctl names, getcpu, membarrier, sched affinity, two unimplemented calls (ENOSYS): prints
// "ok enosys" and "misc ok".
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHECK(c, msg) do { if (!(c)) { printf("FAIL: %s (%s)\n", msg, strerror(errno)); return 1; } } while (0)

int main(void) {
    int e = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(e >= 0, "eventfd");
    uint64_t v = 4;
    CHECK(write(e, &v, 8) == 8, "eventfd write");
    CHECK(read(e, &v, 8) == 8 && v == 7, "eventfd read sums");
    CHECK(read(e, &v, 8) == -1 && errno == EAGAIN, "empty nonblocking eventfd is EAGAIN");
    int s = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
    CHECK(read(s, &v, 8) == 8 && v == 1 && read(s, &v, 8) == 8 && v == 1, "semaphore eventfd");
    CHECK(read(s, &v, 8) == -1 && errno == EAGAIN, "semaphore drained");
    char name[16] = {0};
    CHECK(prctl(PR_SET_NAME, "worker-7") == 0 && prctl(PR_GET_NAME, name) == 0 && !strcmp(name, "worker-7"), "prctl name");
    unsigned cpu = 99, node = 99;
    CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu == 0 && node == 0, "getcpu");
    long q = syscall(SYS_membarrier, 0, 0, 0);
    CHECK(q >= 0, "membarrier query");
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1, "sched_getaffinity");
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0, "sched_setaffinity");
    // Calls mapvisor does not implement answer ENOSYS (and are counted in --stats), as on a kernel without them.
    long ctx = 0;
    CHECK(syscall(SYS_io_setup, 1, &ctx) == -1 && errno == ENOSYS, "io_setup answers ENOSYS");
    CHECK(syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0) == -1 && errno == ENOSYS, "kcmp answers ENOSYS");
    printf("ok enosys\n");
    printf("misc ok\n");
    return 0;
}
