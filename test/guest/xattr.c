// xattr: extended attributes read from the image (getxattr, lgetxattr, fgetxattr, listxattr), the
// answers of setxattr/removexattr, copy_file_range between files of the image, /dev/fd, and
// fcntl(F_GETPIPE_SZ).
// Usage: xattr DIR  (DIR/f has user.small=hello in the inode and user.big = 300 'b's in the xattr
// block, set by the test with debugfs ea_set; DIR/link -> f; DIR is writable).
// Prints one line per check; exits 1 on the first failure.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static void check(int ok, const char *what) {
  if (!ok) {
    printf("FAIL %s (errno %d %s)\n", what, errno, strerror(errno));
    exit(1);
  }
  printf("ok %s\n", what);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  char f[512], link[512], g[512], h[512];
  snprintf(f, sizeof f, "%s/f", argv[1]);
  snprintf(link, sizeof link, "%s/link", argv[1]);
  snprintf(g, sizeof g, "%s/g", argv[1]);
  snprintf(h, sizeof h, "%s/h", argv[1]);
  char buf[1024];

  // get: size query, value, too small, missing, bad namespace, bad name
  check(getxattr(f, "user.small", NULL, 0) == 5, "getxattr size 0 gives the length");
  ssize_t n = getxattr(f, "user.small", buf, sizeof buf);
  check(n == 5 && memcmp(buf, "hello", 5) == 0, "getxattr reads an in-inode value");
  n = getxattr(f, "user.big", buf, sizeof buf);
  int allb = n == 300;
  for (int i = 0; i < n; i++) allb &= buf[i] == 'b';
  check(allb, "getxattr reads a value from the xattr block");
  check(getxattr(f, "user.small", buf, 2) == -1 && errno == ERANGE, "a short buffer is ERANGE");
  check(getxattr(f, "user.none", buf, sizeof buf) == -1 && errno == ENODATA, "a missing name is ENODATA");
  check(getxattr(f, "system.posix_acl_access", buf, sizeof buf) == -1 && errno == ENODATA, "no ACL is ENODATA");
  check(getxattr(f, "bogus.x", buf, sizeof buf) == -1 && errno == EOPNOTSUPP, "an unknown namespace is EOPNOTSUPP");
  check(getxattr(f, "", buf, sizeof buf) == -1 && errno == ERANGE, "an empty name is ERANGE");
  check(getxattr("/nonexistent", "user.small", buf, sizeof buf) == -1 && errno == ENOENT, "a missing file is ENOENT");
  check(getxattr(link, "user.small", buf, sizeof buf) == 5, "getxattr follows a symlink");
  check(lgetxattr(link, "user.small", buf, sizeof buf) == -1 && errno == ENODATA, "lgetxattr does not");
  int fd = open(f, O_RDONLY);
  check(fd >= 0 && fgetxattr(fd, "user.small", buf, sizeof buf) == 5, "fgetxattr on an open file");
  check(getxattr("/dev/null", "user.x", buf, sizeof buf) == -1 && errno == ENODATA, "/dev/null has none");

  // list
  n = listxattr(f, NULL, 0);
  check(n == (ssize_t)(sizeof "user.small" + sizeof "user.big"), "listxattr size 0 gives the length");
  n = listxattr(f, buf, sizeof buf);
  check(n == 20 && strcmp(buf, "user.small") == 0 && strcmp(buf + 11, "user.big") == 0, "listxattr: inode names, then block names");
  check(listxattr(f, buf, 5) == -1 && errno == ERANGE, "listxattr into a short buffer is ERANGE");
  check(flistxattr(fd, buf, sizeof buf) == 20, "flistxattr");
  check(llistxattr(link, buf, sizeof buf) == 0, "llistxattr of a symlink without attributes is empty");
  int p[2];
  check(pipe(p) == 0 && flistxattr(p[0], buf, sizeof buf) == 0, "a pipe lists none");
  check(fcntl(p[0], F_GETPIPE_SZ) == 65536 && fcntl(p[1], F_GETPIPE_SZ) == 65536, "F_GETPIPE_SZ of a pipe is its capacity");
  check(fcntl(fd, F_GETPIPE_SZ) == -1 && errno == EBADF, "F_GETPIPE_SZ of a file is EBADF");
  check(fgetxattr(p[0], "user.x", buf, sizeof buf) == -1 && errno == ENODATA, "a pipe has no user.* attributes (ENODATA)");
  check(fsetxattr(p[0], "user.x", "v", 1, 0) == -1 && errno == EPERM, "nor may it get one (EPERM)");
  check(lsetxattr(link, "user.x", "v", 1, 0) == -1 && errno == EPERM, "nor may a symlink (EPERM)");

  // set and remove: checked, then refused
  check(setxattr(f, "user.new", "v", 1, 4) == -1 && errno == EINVAL, "bad setxattr flags are EINVAL");
  check(setxattr(f, "user.small", "v", 1, XATTR_CREATE) == -1 && errno == EEXIST, "XATTR_CREATE of an existing name is EEXIST");
  check(setxattr(f, "user.none", "v", 1, XATTR_REPLACE) == -1 && errno == ENODATA, "XATTR_REPLACE of a missing name is ENODATA");
  check(setxattr(f, "user.new", "v", 1, 0) == -1 && errno == EOPNOTSUPP, "setting is EOPNOTSUPP");
  check(removexattr(f, "user.none") == -1 && errno == ENODATA, "removing a missing name is ENODATA");
  check(removexattr(f, "user.small") == -1 && errno == EOPNOTSUPP, "removing is EOPNOTSUPP");
  check(getxattr(f, "user.small", buf, sizeof buf) == 5, "the attributes are unchanged");

  // copy_file_range
  int out = open(g, O_RDWR | O_CREAT | O_TRUNC, 0644);
  int src = open(h, O_RDWR | O_CREAT | O_TRUNC, 0644);
  char data[10000];
  for (int i = 0; i < (int)sizeof data; i++) data[i] = (char)(i * 7);
  check(write(src, data, sizeof data) == sizeof data && lseek(src, 0, SEEK_SET) == 0, "source written");
  check(copy_file_range(src, NULL, out, NULL, 4000, 0) == 4000, "copy_file_range from the positions");
  check(lseek(src, 0, SEEK_CUR) == 4000 && lseek(out, 0, SEEK_CUR) == 4000, "both positions advanced");
  loff_t oi = 9000, oo = 100;
  check(copy_file_range(src, &oi, out, &oo, 5000, 0) == 1000 && oi == 10000 && oo == 1100, "copy_file_range stops at the source's end, updates the offsets");
  check(lseek(src, 0, SEEK_CUR) == 4000, "an offset given leaves the position");
  char back[4000];
  check(pread(out, back, 4000, 0) == 4000 && memcmp(back, data, 100) == 0 && memcmp(back + 100, data + 9000, 1000) == 0 && memcmp(back + 1100, data + 1100, 2900) == 0, "the bytes copied are the source's");
  oi = 10000;
  check(copy_file_range(src, &oi, out, NULL, 10, 0) == 0, "at the end it copies nothing");
  check(copy_file_range(src, NULL, out, NULL, 10, 1) == -1 && errno == EINVAL, "flags are EINVAL");
  oi = 0;
  oo = 10;
  check(copy_file_range(src, &oi, src, &oo, 100, 0) == -1 && errno == EINVAL, "overlapping ranges of one file are EINVAL");
  check(copy_file_range(src, NULL, p[1], NULL, 10, 0) == -1 && errno == EINVAL, "to a pipe is EINVAL");
  check(copy_file_range(fd, NULL, out, NULL, 10, 0) >= 0 && copy_file_range(out, NULL, fd, NULL, 10, 0) == -1 && errno == EBADF, "to a read-only file is EBADF");
  int app = open(g, O_WRONLY | O_APPEND);
  check(copy_file_range(src, NULL, app, NULL, 10, 0) == -1 && errno == EBADF, "to an O_APPEND file is EBADF");
  int dir = open(argv[1], O_RDONLY | O_DIRECTORY);
  check(copy_file_range(dir, NULL, out, NULL, 10, 0) == -1 && errno == EISDIR, "from a directory is EISDIR");

  // /dev/fd and /dev/stdin
  char path[64];
  snprintf(path, sizeof path, "/dev/fd/%d", fd);
  int again = open(path, O_RDONLY);
  struct stat a, b;
  check(again >= 0 && fstat(again, &a) == 0 && fstat(fd, &b) == 0 && a.st_ino == b.st_ino, "/dev/fd/N opens the file of fd N");
  check(write(p[1], "piped", 5) == 5, "pipe written");
  snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
  int pr = open(path, O_RDONLY);
  check(pr >= 0 && read(pr, buf, 5) == 5 && memcmp(buf, "piped", 5) == 0, "/dev/fd/N of a pipe reads the pipe");
  check(stat("/dev/stdin", &a) == 0 && fstat(0, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev, "/dev/stdin is fd 0");
  check(stat("/dev/fd", &a) == 0 && S_ISDIR(a.st_mode), "/dev/fd is a directory");
  printf("xattr ok\n");
  return 0;
}
