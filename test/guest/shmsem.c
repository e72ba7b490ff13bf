// build: -pthread
// What Python's multiprocessing needs between processes, checked as Linux answers it: POSIX named
// semaphores in /dev/shm (created, unlinked at once, still used: two of them must not share memory),
// sem_post in one process waking sem_wait in another (shared futexes on a shared file mapping), a
// process-shared mutex in MAP_SHARED|MAP_ANONYMOUS memory, a mapped file that is unlinked keeping its
// data while another file is written, and close_range. One line per check; the same as natively.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *en(long r) { return r >= 0 ? "0" : errno == EINVAL ? "EINVAL" : errno == EBADF ? "EBADF" : errno == ENOSYS ? "ENOSYS" : strerror(errno); }

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char na[64], nb[64];
    snprintf(na, sizeof na, "/mvtest-a-%d", getpid());
    snprintf(nb, sizeof nb, "/mvtest-b-%d", getpid());
    sem_t *a = sem_open(na, O_CREAT | O_EXCL, 0600, 0);
    printf("sem_open a: %s\n", a == SEM_FAILED ? strerror(errno) : "ok");
    sem_unlink(na);
    sem_t *b = sem_open(nb, O_CREAT | O_EXCL, 0600, 0);
    printf("sem_open b: %s\n", b == SEM_FAILED ? strerror(errno) : "ok");
    sem_unlink(nb);
    if (a == SEM_FAILED || b == SEM_FAILED) return 1;
    sem_post(a); sem_post(a); sem_post(a);
    int va = -1, vb = -1;
    sem_getvalue(a, &va); sem_getvalue(b, &vb);
    printf("unlinked semaphores are separate: a %d b %d\n", va, vb);

    pid_t p = fork();
    if (p == 0) {
        sem_wait(b); /* woken by the parent's post */
        sem_post(a);
        _exit(0);
    }
    usleep(100000);
    sem_post(b);
    int st;
    waitpid(p, &st, 0);
    sem_getvalue(a, &va);
    printf("a post in one process wakes a wait in another: child status %d, a %d\n", WEXITSTATUS(st), va);

    struct shared { pthread_mutex_t m; long counter; } *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&sh->m, &at);
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        if ((kids[i] = fork()) == 0) {
            for (int j = 0; j < 20000; j++) {
                pthread_mutex_lock(&sh->m);
                sh->counter++;
                if (j % 5000 == 0) usleep(1000); /* hold it a while: the others wait in the kernel */
                pthread_mutex_unlock(&sh->m);
            }
            _exit(0);
        }
    }
    for (int i = 0; i < 3; i++) waitpid(kids[i], NULL, 0);
    printf("process-shared mutex: counter %ld\n", sh->counter);

    const char *f1 = "/tmp/mvtest-mapped", *f2 = "/tmp/mvtest-other";
    int fd = open(f1, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char buf[8192];
    memset(buf, 'A', sizeof buf);
    write(fd, buf, sizeof buf);
    char *m = mmap(NULL, sizeof buf, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    unlink(f1);
    fd = open(f2, O_RDWR | O_CREAT | O_TRUNC, 0600);
    memset(buf, 'B', sizeof buf);
    write(fd, buf, sizeof buf);
    fsync(fd);
    close(fd);
    int intact = 1;
    for (size_t i = 0; i < sizeof buf; i++) if (m[i] != 'A') intact = 0;
    m[0] = 'Z';
    fd = open(f2, O_RDONLY);
    char c = 0;
    read(fd, &c, 1);
    close(fd);
    unlink(f2);
    printf("an unlinked mapped file keeps its data: %s; the new file is its own: %c\n", intact ? "yes" : "no", c);
    munmap(m, sizeof buf);

    int fds[6];
    for (int i = 0; i < 6; i++) fds[i] = open("/dev/null", O_RDONLY);
    int lo = fds[0], hi = fds[5];
    printf("close_range first > last: %s\n", en(syscall(SYS_close_range, hi, lo, 0)));
    printf("close_range bad flag: %s\n", en(syscall(SYS_close_range, lo, hi, 1)));
    long r = syscall(SYS_close_range, lo, lo + 1, 4);
    printf("close_range cloexec: %s, flags %d %d\n", en(r), fcntl(lo, F_GETFD), fcntl(lo + 2, F_GETFD));
    printf("close_range: %s\n", en(syscall(SYS_close_range, lo + 1, hi - 1, 0)));
    int open_after[6];
    for (int i = 0; i < 6; i++) open_after[i] = fcntl(fds[i], F_GETFD) >= 0;
    printf("open after: %d %d %d %d %d %d\n", open_after[0], open_after[1], open_after[2], open_after[3], open_after[4], open_after[5]);
    r = syscall(SYS_close_range, hi, ~0U, 2);
    printf("close_range to ~0 with unshare: %s, last open %d\n", en(r), fcntl(hi, F_GETFD) >= 0);
    return 0;
}
