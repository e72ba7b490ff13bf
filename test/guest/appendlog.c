// Appends "one" to a log file on the image, says "ready", sleeps, appends "two", and prints the log:
// a checkpoint taken while it sleeps must restore the file system as it was then (the log with "one").
// usage: appendlog PATH [SLEEP_MS]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "/data/log";
    long ms = argc > 2 ? atol(argv[2]) : 1500;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(fd, "one\n", 4) != 4) { perror("append one"); return 1; }
    close(fd);
    printf("ready\n");
    fflush(stdout);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, "two\n", 4) != 4) { perror("append two"); return 1; }
    close(fd);
    char buf[256];
    fd = open(path, O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) { perror("read"); return 1; }
    fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}
