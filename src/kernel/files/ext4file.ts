/**
 * Files and directories of the root file system. Data moves with one host memmove per contiguous run
 * between the image mapping and the program's memory: it never passes through JavaScript.
 */
import { E } from '../../abi/errno.js';
import type { StatInfo } from '../../abi/stat.js';
import * as libc from '../../host/libc.js';
import { PROT_READ, PROT_WRITE } from '../../host/libc.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { Ext4, Stat } from '../../storage/ext4/fs.js';
import { FsError } from '../../storage/ext4/errors.js';
import type { RootFs } from '../vfs/rootfs.js';
import { O_APPEND, POLLIN, POLLOUT, type FileOps, type OpenFile } from './file.js';

export { S_IFMT, S_IFDIR, S_IFREG } from '../../abi/stat.js';
import { S_IFMT, S_IFDIR } from '../../abi/stat.js';

/** Run `f`, turning a file-system error into -errno. */
export function fsCall(f: () => number): number {
  try {
    return f();
  } catch (e) {
    if (e instanceof FsError) return -e.errno;
    throw e;
  }
}

export function toStatInfo(s: Stat, dev: number): StatInfo {
  return {
    dev,
    ino: s.ino,
    nlink: s.nlink,
    mode: s.mode,
    uid: s.uid,
    gid: s.gid,
    rdev: s.rdev,
    size: s.size,
    blksize: s.blksize,
    blocks: s.blocks,
    atime: [s.atime.sec, s.atime.nsec],
    mtime: [s.mtime.sec, s.mtime.nsec],
    ctime: [s.ctime.sec, s.ctime.nsec],
  };
}

/** The device number the root file system reports (major 8, minor 1: "sda1"). */
export const ROOT_DEV = 0x801;

/** Bytes copied between the image and guest memory, for stats. */
export const ioCounters = { bytesRead: 0, bytesWritten: 0 };

export class Ext4File implements FileOps {
  readonly kind = 'ext4';
  readonly ino: number;
  readonly name: string;
  private readonly root: RootFs;
  private readonly mem: GuestMemory;

  constructor(root: RootFs, mem: GuestMemory, ino: number, path: string) {
    this.root = root;
    this.mem = mem;
    this.ino = ino;
    this.name = path;
    root.fs.iref(ino);
  }

  private get fs(): Ext4 {
    return this.root.fs;
  }

  get isDir(): boolean {
    return (this.fs.stat(this.ino).mode & S_IFMT) === S_IFDIR;
  }

  read(f: OpenFile, addr: number, length: number, offset: number | null): number {
    return this.readHost(f, (n) => this.mem.hostPtr(addr, n, PROT_WRITE), length, offset);
  }

  /** read() into host memory: `dst(n)` gives the host address of the n bytes to fill (sendfile's buffer, the program's memory). */
  readHost(f: OpenFile, dst0: (n: number) => number, length: number, offset: number | null): number {
    return fsCall(() => {
      const st = this.fs.stat(this.ino);
      if ((st.mode & S_IFMT) === S_IFDIR) return -E.EISDIR;
      const pos = offset ?? f.pos;
      const n = Math.max(0, Math.min(length, st.size - pos));
      if (n === 0) return 0;
      const dst = dst0(n);
      let o = 0;
      for (const r of this.fs.fileRuns(this.ino, pos, n)) {
        if (r.physical === null) libc.memset(dst + o, 0, r.length);
        else this.root.copyOut(r.physical, dst + o, r.length);
        o += r.length;
      }
      if (offset === null) f.pos += n;
      ioCounters.bytesRead += n;
      return n;
    });
  }

  write(f: OpenFile, addr: number, length: number, offset: number | null): number {
    if (this.fs.readOnly) return -E.EROFS;
    if (length === 0) return 0;
    return this.writeHost(f, this.mem.hostPtr(addr, length, PROT_READ), length, offset);
  }

  /** write() from host memory at `src`. */
  writeHost(f: OpenFile, src: number, length: number, offset: number | null): number {
    return fsCall(() => {
      if (this.fs.readOnly) return -E.EROFS;
      if (length === 0) return 0;
      const pos = offset ?? (f.flags & O_APPEND ? this.fs.stat(this.ino).size : f.pos);
      // Out of space part-way: write what fits and return the short count; -ENOSPC when nothing
      // fits (and then nothing was allocated).
      const n = this.fs.allocateRange(this.ino, pos, length, { partial: true });
      if (n === 0) return -E.ENOSPC;
      let o = 0;
      for (const r of this.fs.fileRuns(this.ino, pos, n)) {
        if (r.physical === null) throw new FsError(E.EIO, `inode ${this.ino}: hole after allocation`);
        this.root.copyIn(r.physical, src + o, r.length);
        o += r.length;
      }
      this.fs.commitWrite(this.ino, pos + n);
      this.root.onWrite?.(this.ino, pos, n, src);
      if (offset === null) f.pos = pos + n;
      ioCounters.bytesWritten += n;
      return n;
    });
  }

  stat(): StatInfo {
    return toStatInfo(this.fs.stat(this.ino), ROOT_DEV);
  }

  pollEvents(): number {
    return POLLIN | POLLOUT;
  }

  release(): void {
    this.fs.irelease(this.ino);
  }
}
