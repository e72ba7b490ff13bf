/*
 * fsseq: a seeded random sequence of file-system operations, with the program's own model of what
 * the files must hold (issue 15's write-path model, through a program in the sandbox).
 *
 *   fsseq SEED NOPS DIR
 *
 * In DIR (made if missing) it keeps:
 *   - four append-only logs (log0..log3): random chunks appended, fsync'ed at random points; after each
 *     fsync returns it prints `sync logK SIZE HASH` (HASH: FNV-1a 64 of the whole file), so whoever
 *     kills it knows what must have survived;
 *   - a scratch tree: create, write at an offset, append, truncate, fallocate, mkdir, unlink, rename,
 *     link, symlink, chmod, utimes, rmdir, with ENOSPC (and EOPNOTSUPP from fallocate) accepted and
 *     the model left alone (a short write counts what it wrote).
 * After NOPS operations it prints the model: `file PATH SIZE HASH MODE` for every name of every file,
 * `symlink PATH TARGET`, `dir PATH`, then `done`. Any other failure prints `FAIL ...` and exits 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

typedef uint64_t u64;
static u64 rs;
static u64 rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }
static u64 below(u64 n) { return n ? rnd() % n : 0; }

static u64 fnv(const unsigned char *p, size_t n) {
  u64 h = 14695981039346656037ULL;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
  return h;
}

static void fail(const char *what, const char *path) {
  printf("FAIL %s %s: %s\n", what, path, strerror(errno));
  fflush(stdout);
  exit(1);
}

/* ---- the model: inodes (shared by hard links) and names ---- */
#define MAXINO 256
#define MAXNAME 512
struct ino { unsigned char *data; size_t len; int mode; int used; };
struct name { char path[96]; int kind; /* 0 none, 1 file, 2 dir, 3 symlink */ int ino; char target[80]; };
static struct ino inos[MAXINO];
static struct name names[MAXNAME];
static char dir0[64];
static int serial;

static int new_ino(void) { for (int i = 0; i < MAXINO; i++) if (!inos[i].used) { memset(&inos[i], 0, sizeof inos[i]); inos[i].used = 1; inos[i].mode = 0644; return i; } return -1; }
static int new_name(void) { for (int i = 0; i < MAXNAME; i++) if (!names[i].kind) return i; return -1; }
static int pick(int kind) {
  int n = 0;
  for (int i = 0; i < MAXNAME; i++) if (names[i].kind == kind) n++;
  if (!n) return -1;
  int k = (int)below((u64)n);
  for (int i = 0; i < MAXNAME; i++) if (names[i].kind == kind && k-- == 0) return i;
  return -1;
}
static int links_of(int ino) { int n = 0; for (int i = 0; i < MAXNAME; i++) if (names[i].kind == 1 && names[i].ino == ino) n++; return n; }
static void drop_name(int i) {
  int ino = names[i].ino, kind = names[i].kind;
  names[i].kind = 0;
  if (kind == 1 && links_of(ino) == 0) { free(inos[ino].data); inos[ino].used = 0; }
}
static void new_path(char *out, size_t n, const char *prefix) {
  int d = pick(2);
  snprintf(out, n, "%s/%s%d", d >= 0 && below(2) ? names[d].path : dir0, prefix, serial++);
}
static int enospc(void) { return errno == ENOSPC || errno == EDQUOT; }
static void fill(unsigned char *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rnd(); }

/* Write into a file of the model: what was written lands in the model (a short write counts). */
static void model_write(int ino, size_t off, const unsigned char *buf, size_t n) {
  struct ino *f = &inos[ino];
  if (off + n > f->len) { f->data = realloc(f->data, off + n); memset(f->data + f->len, 0, off + n - f->len); f->len = off + n; }
  memcpy(f->data + off, buf, n);
}
static void model_resize(int ino, size_t len) {
  struct ino *f = &inos[ino];
  f->data = realloc(f->data, len ? len : 1);
  if (len > f->len) memset(f->data + f->len, 0, len - f->len);
  f->len = len;
}

/* ---- the logs ---- */
static int logfd[4];
static u64 loglen[4];
static unsigned char *logdata[4];

static void log_op(void) {
  int k = (int)below(4);
  size_t n = 1 + below(below(2) ? 512 : 16384);
  unsigned char *buf = malloc(n);
  fill(buf, n);
  ssize_t w = write(logfd[k], buf, n);
  if (w < 0 && !enospc()) fail("append", "log");
  if (w > 0) {
    logdata[k] = realloc(logdata[k], loglen[k] + (size_t)w);
    memcpy(logdata[k] + loglen[k], buf, (size_t)w);
    loglen[k] += (u64)w;
  }
  free(buf);
  if (below(3) == 0) {
    if (fsync(logfd[k]) < 0) fail("fsync", "log");
    printf("sync log%d %llu %016llx\n", k, (unsigned long long)loglen[k], (unsigned long long)fnv(logdata[k], loglen[k]));
    fflush(stdout);
  }
}

static void scratch_op(void) {
  char p[96], q[96];
  int k = (int)below(100), i, fd;
  if (k < 12) { /* create */
    new_path(p, sizeof p, "f");
    int n = new_name(), ino = new_ino();
    if (n < 0 || ino < 0) { if (ino >= 0) inos[ino].used = 0; return; }
    fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) { inos[ino].used = 0; if (enospc()) return; fail("create", p); }
    close(fd);
    strcpy(names[n].path, p); names[n].kind = 1; names[n].ino = ino;
  } else if (k < 40) { /* write at an offset (or append) */
    if ((i = pick(1)) < 0) return;
    struct ino *f = &inos[names[i].ino];
    size_t off = k < 30 ? (size_t)below(f->len + 32768) : f->len, n = 1 + below(32768);
    unsigned char *buf = malloc(n);
    fill(buf, n);
    fd = open(names[i].path, O_WRONLY);
    if (fd < 0) fail("open", names[i].path);
    ssize_t w = pwrite(fd, buf, n, (off_t)off);
    if (w < 0 && !enospc()) fail("pwrite", names[i].path);
    if (w > 0) model_write(names[i].ino, off, buf, (size_t)w);
    if (below(4) == 0 && fsync(fd) < 0) fail("fsync", names[i].path);
    close(fd);
    free(buf);
  } else if (k < 47) { /* truncate */
    if ((i = pick(1)) < 0) return;
    size_t len = below(2) ? (size_t)below(inos[names[i].ino].len + 1) : inos[names[i].ino].len + below(16384);
    if (truncate(names[i].path, (off_t)len) < 0) { if (enospc()) return; fail("truncate", names[i].path); }
    model_resize(names[i].ino, len);
  } else if (k < 52) { /* fallocate, growing the size unless KEEP_SIZE */
    if ((i = pick(1)) < 0) return;
    int keep = (int)below(2);
    size_t off = (size_t)below(inos[names[i].ino].len + 32768), len = 1 + below(32768);
    fd = open(names[i].path, O_WRONLY);
    if (fd < 0) fail("open", names[i].path);
    if (fallocate(fd, keep ? FALLOC_FL_KEEP_SIZE : 0, (off_t)off, (off_t)len) < 0) {
      if (!enospc() && errno != EOPNOTSUPP) fail("fallocate", names[i].path);
    } else if (!keep && off + len > inos[names[i].ino].len) model_resize(names[i].ino, off + len);
    close(fd);
  } else if (k < 60) { /* mkdir */
    new_path(p, sizeof p, "d");
    if (strlen(p) > 60) return;
    int n = new_name();
    if (n < 0) return;
    if (mkdir(p, 0755) < 0) { if (enospc()) return; fail("mkdir", p); }
    strcpy(names[n].path, p); names[n].kind = 2;
  } else if (k < 68) { /* unlink */
    if ((i = pick(below(4) ? 1 : 3)) < 0) return;
    if (unlink(names[i].path) < 0) fail("unlink", names[i].path);
    drop_name(i);
  } else if (k < 78) { /* rename a file (onto a new name) */
    if ((i = pick(1)) < 0) return;
    new_path(q, sizeof q, "r");
    if (rename(names[i].path, q) < 0) { if (enospc()) return; fail("rename", names[i].path); }
    strcpy(names[i].path, q);
  } else if (k < 84) { /* link */
    if ((i = pick(1)) < 0) return;
    new_path(q, sizeof q, "l");
    int n = new_name();
    if (n < 0) return;
    if (link(names[i].path, q) < 0) { if (enospc()) return; fail("link", names[i].path); }
    strcpy(names[n].path, q); names[n].kind = 1; names[n].ino = names[i].ino;
  } else if (k < 89) { /* symlink */
    new_path(p, sizeof p, "s");
    int n = new_name();
    if (n < 0) return;
    char t[80];
    size_t tl = 1 + below(70);
    for (size_t j = 0; j < tl; j++) t[j] = "abcdefghij/._-"[below(14)];
    t[tl] = 0;
    if (symlink(t, p) < 0) { if (enospc()) return; fail("symlink", p); }
    strcpy(names[n].path, p); names[n].kind = 3; strcpy(names[n].target, t);
  } else if (k < 93) { /* chmod */
    if ((i = pick(1)) < 0) return;
    int mode = (int)below(01000);
    if (chmod(names[i].path, (mode_t)mode) < 0) fail("chmod", names[i].path);
    inos[names[i].ino].mode = mode;
  } else if (k < 96) { /* utimes */
    if ((i = pick(1)) < 0) return;
    struct timeval tv[2] = {{(time_t)below(1u << 30), 0}, {(time_t)below(1u << 30), (suseconds_t)below(1000000)}};
    if (utimes(names[i].path, tv) < 0) fail("utimes", names[i].path);
  } else { /* rmdir an empty directory */
    if ((i = pick(2)) < 0) return;
    size_t pl = strlen(names[i].path);
    for (int j = 0; j < MAXNAME; j++) if (names[j].kind && j != i && !strncmp(names[j].path, names[i].path, pl) && names[j].path[pl] == '/') return;
    if (rmdir(names[i].path) < 0) fail("rmdir", names[i].path);
    drop_name(i);
  }
}

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: fsseq SEED NOPS DIR\n"); return 2; }
  rs = strtoull(argv[1], NULL, 0) * 0x9E3779B97F4A7C15ULL | 1;
  long nops = strtol(argv[2], NULL, 0);
  snprintf(dir0, sizeof dir0, "%s", argv[3]);
  if (mkdir(dir0, 0755) < 0 && errno != EEXIST) fail("mkdir", dir0);
  for (int k = 0; k < 4; k++) {
    char p[96];
    snprintf(p, sizeof p, "%s/log%d", dir0, k);
    logfd[k] = open(p, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0644);
    if (logfd[k] < 0) fail("open", p);
  }
  for (long op = 0; op < nops; op++) {
    if (below(4) == 0) log_op();
    else scratch_op();
  }
  for (int i = 0; i < MAXNAME; i++) {
    if (names[i].kind == 1) {
      struct ino *f = &inos[names[i].ino];
      printf("file %s %zu %016llx %o\n", names[i].path, f->len, (unsigned long long)fnv(f->data, f->len), f->mode);
    } else if (names[i].kind == 2) printf("dir %s\n", names[i].path);
    else if (names[i].kind == 3) printf("symlink %s %s\n", names[i].path, names[i].target);
  }
  for (int k = 0; k < 4; k++) printf("file %s/log%d %llu %016llx 644\n", dir0, k, (unsigned long long)loglen[k], (unsigned long long)fnv(logdata[k], loglen[k]));
  printf("done\n");
  return 0;
}
