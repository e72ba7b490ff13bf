/**
 * The host C library, reached through koffi. Every function that takes or returns memory uses
 * `uintptr_t` (a JavaScript number: user-space addresses fit in 47 bits), so the VMM can pass
 * guest-window addresses straight to the host kernel without copying through JavaScript.
 *
 * This module only binds; callers check results and turn `-1` into typed errors with `errno()`.
 */
import koffi from 'koffi';

const lib = koffi.load('libc.so.6');

export const open = lib.func('int open(const char *path, int flags, int mode)') as (
  path: string,
  flags: number,
  mode: number,
) => number;
export const close = lib.func('int close(int fd)') as (fd: number) => number;

/** ioctl with a pointer argument (a Buffer the kernel reads or writes). */
export const ioctlPtr = lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as (
  fd: number,
  request: number,
  arg: Buffer | null,
) => number;
/** ioctl with an integer argument. */
export const ioctlInt = lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (
  fd: number,
  request: number,
  arg: number,
) => number;
/** ioctl with an address argument (memory outside the JavaScript heap). */
export const ioctlAddr = lib.func('ioctl', 'int', ['int', 'unsigned long', 'uintptr_t']) as (
  fd: number,
  request: number,
  arg: number,
) => number;

/** mmap(2); returns the address, or -1 on failure (declared intptr_t so that MAP_FAILED is -1). */
export const mmap = lib.func(
  'intptr_t mmap(uintptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)',
) as (addr: number, length: number, prot: number, flags: number, fd: number, offset: number) => number;
export const munmap = lib.func('int munmap(uintptr_t addr, size_t length)') as (addr: number, length: number) => number;
export const mprotect = lib.func('int mprotect(uintptr_t addr, size_t length, int prot)') as (
  addr: number,
  length: number,
  prot: number,
) => number;
export const madvise = lib.func('int madvise(uintptr_t addr, size_t length, int advice)') as (
  addr: number,
  length: number,
  advice: number,
) => number;
export const msync = lib.func('int msync(uintptr_t addr, size_t length, int flags)') as (
  addr: number,
  length: number,
  flags: number,
) => number;
/** prctl(2) with one argument (PR_SET_PDEATHSIG: the signal this process gets when its parent dies). */
export const prctl = lib.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)') as (
  option: number,
  arg2: number,
  arg3?: number,
  arg4?: number,
  arg5?: number,
) => number;
export const PR_SET_PDEATHSIG = 1;
export const memfdCreate = lib.func('int memfd_create(const char *name, unsigned int flags)') as (
  name: string,
  flags: number,
) => number;
export const ftruncate = lib.func('int ftruncate(int fd, int64_t length)') as (fd: number, length: number) => number;

/** read(2) into a Buffer (small reads: an eventfd's counter). */
export const readBuf = lib.func('read', 'intptr_t', ['int', 'void *', 'size_t']) as (fd: number, buf: Buffer, count: number) => number;
/** write(2) from a Buffer. */
export const writeBuf = lib.func('write', 'intptr_t', ['int', 'void *', 'size_t']) as (fd: number, buf: Buffer, count: number) => number;
export const eventfd = lib.func('int eventfd(unsigned int initval, int flags)') as (initval: number, flags: number) => number;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const read = lib.func('intptr_t read(int fd, uintptr_t buf, size_t count)') as (
  fd: number,
  buf: number,
  count: number,
) => number;
export const write = lib.func('intptr_t write(int fd, uintptr_t buf, size_t count)') as (
  fd: number,
  buf: number,
  count: number,
) => number;
export const pread = lib.func('intptr_t pread(int fd, uintptr_t buf, size_t count, int64_t offset)') as (
  fd: number,
  buf: number,
  count: number,
  offset: number,
) => number;
export const pwrite = lib.func('intptr_t pwrite(int fd, uintptr_t buf, size_t count, int64_t offset)') as (
  fd: number,
  buf: number,
  count: number,
  offset: number,
) => number;
/** pwrite(2) from a Buffer (small writes: the vDSO's data page). */
export const pwriteBuf = lib.func('pwrite', 'intptr_t', ['int', 'void *', 'size_t', 'int64_t']) as (fd: number, buf: Buffer, count: number, offset: number) => number;
/** preadv(2)/pwritev(2) over a Buffer of struct iovec (16 bytes each: base, len). */
export const preadv = lib.func('intptr_t preadv(int fd, void *iov, int iovcnt, int64_t offset)') as (
  fd: number,
  iov: Buffer,
  iovcnt: number,
  offset: number,
) => number;
export const pwritev = lib.func('intptr_t pwritev(int fd, void *iov, int iovcnt, int64_t offset)') as (
  fd: number,
  iov: Buffer,
  iovcnt: number,
  offset: number,
) => number;
export const fdatasync = lib.func('int fdatasync(int fd)') as (fd: number) => number;
/** poll(2) over a Buffer of struct pollfd (8 bytes each: fd i32, events i16, revents i16). */
export const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)') as (
  fds: Buffer,
  nfds: number,
  timeout: number,
) => number;
export const isatty = lib.func('int isatty(int fd)') as (fd: number) => number;

export const memmove = lib.func('uintptr_t memmove(uintptr_t dst, uintptr_t src, size_t n)') as (
  dst: number,
  src: number,
  n: number,
) => number;
export const memset = lib.func('uintptr_t memset(uintptr_t dst, int c, size_t n)') as (
  dst: number,
  c: number,
  n: number,
) => number;

export const pthreadSelf = lib.func('unsigned long pthread_self()') as () => number | bigint;
export const pthreadKill = lib.func('int pthread_kill(unsigned long thread, int sig)') as (
  thread: number | bigint,
  sig: number,
) => number;
/** sigaction(2) over a Buffer holding glibc's struct sigaction (152 bytes on x86-64). */
export const sigaction = lib.func('int sigaction(int sig, void *act, void *oldact)') as (
  sig: number,
  act: Buffer | null,
  oldact: Buffer | null,
) => number;
export const dlsym = lib.func('uintptr_t dlsym(uintptr_t handle, const char *symbol)') as (
  handle: number,
  symbol: string,
) => number;
export const gettid = lib.func('int gettid()') as () => number;
/** syscall(2) with one argument, for calls glibc has no wrapper for (userfaultfd). */
export const syscall1 = lib.func('syscall', 'long', ['long', 'long']) as (nr: number, a: number) => number;

/** The calling thread's errno after the last libc call made through koffi. */
export function errno(): number {
  return koffi.errno();
}

// memmove(p, 0, 0) returns p untouched: the cheapest way to turn an address into a koffi pointer.
const toPointer = lib.func('memmove', 'void *', ['uintptr_t', 'uintptr_t', 'size_t']) as (
  dst: number,
  src: number,
  n: number,
) => unknown;

/** An ArrayBuffer over host memory at `addr` (at most 4 GiB: koffi's limit). */
export function view(addr: number, length: number): ArrayBuffer {
  return koffi.view(toPointer(addr, 0, 0), length) as ArrayBuffer;
}

// Constants of the host ABI (x86-64 Linux) used by the VMM itself.
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MADV_DONTNEED = 4;
export const MS_SYNC = 4;
export const MFD_CLOEXEC = 1;

export const fallocate = lib.func('int fallocate(int fd, int mode, int64_t offset, int64_t len)') as (
  fd: number,
  mode: number,
  offset: number,
  len: number,
) => number;
export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;

export const clockGettime = lib.func('int clock_gettime(int clockid, uintptr_t ts)') as (clockid: number, ts: number) => number;
export const clockGetres = lib.func('int clock_getres(int clockid, uintptr_t ts)') as (clockid: number, ts: number) => number;
export const clockNanosleep = lib.func(
  'int clock_nanosleep(int clockid, int flags, uintptr_t request, uintptr_t remain)',
) as (clockid: number, flags: number, request: number, remain: number) => number;
export const getrandom = lib.func('intptr_t getrandom(uintptr_t buf, size_t len, unsigned int flags)') as (
  buf: number,
  len: number,
  flags: number,
) => number;
export const pipe2 = lib.func('int pipe2(_Out_ int *fds, int flags)') as (fds: number[], flags: number) => number;
export const fcntl = lib.func('int fcntl(int fd, int cmd, int arg)') as (fd: number, cmd: number, arg: number) => number;
export const fstat = lib.func('int fstat(int fd, void *buf)') as (fd: number, buf: Buffer) => number;
export const flock = lib.func('int flock(int fd, int operation)') as (fd: number, op: number) => number;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const fsync = lib.func('int fsync(int fd)') as (fd: number) => number;

/** syscall(2) with three integer arguments (tgkill). */
export const syscall3 = lib.func('syscall', 'long', ['long', 'long', 'long', 'long']) as (nr: number, a: number, b: number, c: number) => number;
/** futex(2) on a word at a host address: FUTEX_WAIT with an optional relative timeout, FUTEX_WAKE. */
const futexCall = lib.func('syscall', 'long', ['long', 'uintptr_t', 'int', 'int', 'uintptr_t', 'uintptr_t', 'int']) as (
  nr: number,
  addr: number,
  op: number,
  val: number,
  timeout: number,
  addr2: number,
  val3: number,
) => number;
const SYS_futex = 202;
export const FUTEX_WAIT = 0;
export const FUTEX_WAKE = 1;
/** Sleep while the 32-bit word at `addr` is `val`, at most `timeoutAddr`'s timespec (0: forever). Shared (not private) futex. */
export function futexWait(addr: number, val: number, timeoutAddr: number): number {
  return futexCall(SYS_futex, addr, FUTEX_WAIT, val, timeoutAddr, 0, 0);
}
/** Wake up to `n` waiters on the word at `addr`. */
export function futexWake(addr: number, n: number): number {
  return futexCall(SYS_futex, addr, FUTEX_WAKE, n, 0, 0, 0);
}

export const lseek = lib.func('int64_t lseek(int fd, int64_t offset, int whence)') as (fd: number, offset: number, whence: number) => number;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;
/** copy_file_range(2) between explicit offsets (passed as 8-byte buffers the kernel advances). */
export const copyFileRange = lib.func('intptr_t copy_file_range(int fdIn, void *offIn, int fdOut, void *offOut, size_t len, unsigned int flags)') as (
  fdIn: number,
  offIn: Buffer,
  fdOut: number,
  offOut: Buffer,
  len: number,
  flags: number,
) => number;
/** sendfile(2): copy from `fdIn` at *offIn (an 8-byte buffer the kernel advances) to `fdOut` at its file position. */
export const sendfile = lib.func('intptr_t sendfile(int fdOut, int fdIn, void *offIn, size_t count)') as (fdOut: number, fdIn: number, offIn: Buffer, count: number) => number;
/** waitpid(2) without the status (WNOHANG = 1): reaps a child that ended; 0 while it runs, -1 when not ours. */
export const waitpidNoStatus = lib.func('int waitpid(int pid, void *status, int options)') as (pid: number, status: null, options: number) => number;
export const WNOHANG = 1;
/** dup(2): a new fd for the same open file (a fork's child keeps shared memory of its own). */
export const dup = lib.func('int dup(int fd)') as (fd: number) => number;
