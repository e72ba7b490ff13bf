/**
 * Open file descriptions and the fd table. A description (OpenFile) is shared by every fd that dup()s
 * it and holds the status flags and position; the table maps numbers to descriptions with per-fd
 * FD_CLOEXEC, as Linux does.
 */
import { E } from '../../abi/errno.js';
import type { StatInfo } from '../../abi/stat.js';

export const O_ACCMODE = 0o3;
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
/** Flags F_SETFL may change. */
export const SETFL_MASK = O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME;

export const POLLIN = 0x001;
export const POLLPRI = 0x002;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDHUP = 0x2000;

/**
 * What a kind of file can do. Guest buffers are passed as guest addresses: the file copies between
 * its data and guest memory (checked) itself, so data need not pass through JavaScript.
 * Results are byte counts or -errno.
 */
export interface FileOps {
  readonly kind: string;
  read?(f: OpenFile, addr: number, length: number, offset: number | null): number | 'stop' | 'block';
  write?(f: OpenFile, addr: number, length: number, offset: number | null): number | 'stop' | 'block';
  ioctl?(f: OpenFile, request: number, arg: number): number;
  stat(f: OpenFile): StatInfo;
  /** The host fd to poll for readiness, when there is one. */
  readonly hostFd?: number;
  /** Readiness without blocking (POLLIN|POLLOUT...) for files that are not host fds. */
  pollEvents?(f: OpenFile): number;
  /** Called when the last fd referring to the description is closed. */
  release?(): void;
  /** A name for /proc/self/fd and strace. */
  readonly name: string;
}

export class OpenFile {
  readonly ops: FileOps;
  flags: number;
  pos = 0;
  private refs = 0;
  constructor(ops: FileOps, flags: number) {
    this.ops = ops;
    this.flags = flags;
  }
  get readable(): boolean {
    return (this.flags & O_ACCMODE) !== O_WRONLY && !(this.flags & O_PATH);
  }
  get writable(): boolean {
    return (this.flags & O_ACCMODE) !== O_RDONLY && !(this.flags & O_PATH);
  }
  ref(): this {
    this.refs++;
    return this;
  }
  unref(): void {
    if (--this.refs === 0) {
      OpenFile.lastClose?.(this);
      this.ops.release?.();
    }
  }
  /** Called when a description's last fd closes (files/locks.ts: its flock and OFD locks go). */
  static lastClose: ((f: OpenFile) => void) | null = null;
  /** Let go of a description no fd ever held (an open that did not complete): release what it holds. */
  discard(): void {
    if (this.refs === 0) this.ops.release?.();
  }
}

interface Slot {
  file: OpenFile;
  cloexec: boolean;
}

export class FdTable {
  private readonly slots = new Map<number, Slot>();
  /** RLIMIT_NOFILE: fds are below this. */
  limit: number;

  constructor(limit = 1024) {
    this.limit = limit;
  }

  get(fd: number): OpenFile | undefined {
    return this.slots.get(fd)?.file;
  }

  cloexec(fd: number): boolean {
    return this.slots.get(fd)?.cloexec ?? false;
  }

  setCloexec(fd: number, on: boolean): void {
    const s = this.slots.get(fd);
    if (s) s.cloexec = on;
  }

  /** Install `file` at the lowest free fd >= min; -EMFILE when full. */
  install(file: OpenFile, cloexec: boolean, min = 0): number {
    for (let fd = min; fd < this.limit; fd++) {
      if (!this.slots.has(fd)) {
        this.slots.set(fd, { file: file.ref(), cloexec });
        return fd;
      }
    }
    return -E.EMFILE;
  }

  /** Install two new descriptions (pipe2, socketpair): both fds, or -errno with neither installed (and both released). */
  installPair(a: OpenFile, b: OpenFile, cloexec: boolean): [number, number] | number {
    const fa = this.install(a, cloexec);
    if (fa < 0) {
      a.discard();
      b.discard();
      return fa;
    }
    const fb = this.install(b, cloexec);
    if (fb < 0) {
      this.close(fa);
      b.discard();
      return fb;
    }
    return [fa, fb];
  }

  /** Install at exactly `fd`, closing what was there (dup2). */
  installAt(fd: number, file: OpenFile, cloexec: boolean): number {
    if (fd < 0 || fd >= this.limit) return -E.EBADF;
    file.ref();
    this.close(fd);
    this.slots.set(fd, { file, cloexec });
    return fd;
  }

  close(fd: number): number {
    const s = this.slots.get(fd);
    if (!s) return -E.EBADF;
    this.slots.delete(fd);
    s.file.unref();
    return 0;
  }

  /** A fork's child: the same descriptions (shared offsets and flags), the same fds and close-on-exec bits. */
  fork(): FdTable {
    const t = new FdTable(this.limit);
    for (const [fd, s] of this.slots) t.slots.set(fd, { file: s.file.ref(), cloexec: s.cloexec });
    return t;
  }

  /** execve: close every fd marked close-on-exec. */
  closeOnExec(): void {
    for (const [fd, s] of [...this.slots]) if (s.cloexec) this.close(fd);
  }

  closeAll(): void {
    for (const fd of [...this.slots.keys()]) this.close(fd);
  }

  entries(): Array<[number, OpenFile]> {
    return [...this.slots.entries()].sort((a, b) => a[0] - b[0]).map(([fd, s]) => [fd, s.file]);
  }
}
