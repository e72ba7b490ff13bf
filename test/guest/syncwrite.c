// Durability: write a record, fsync it, print "synced", then wait to be killed.
// usage: syncwrite PATH TEXT
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror("open"); return 1; }
    if (write(fd, argv[2], strlen(argv[2])) != (ssize_t)strlen(argv[2])) { perror("write"); return 1; }
    if (fsync(fd)) { perror("fsync"); return 1; }
    printf("synced\n");
    fflush(stdout);
    for (;;) sleep(1);
}
