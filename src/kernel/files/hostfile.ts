/**
 * A file or directory of a host mount (src/kernel/vfs/mounts.ts), open: a host fd the kernel reads and
 * writes with pread/pwrite straight between the host file and guest memory. The position is the open
 * description's (f.pos), and O_APPEND is done here (the host fd is opened without it), so F_SETFL can
 * change it as on Linux. Readiness is that of a regular file (always ready).
 */
import { E } from '../../abi/errno.js';
import { S_IFDIR, S_IFMT, type StatInfo } from '../../abi/stat.js';
import * as libc from '../../host/libc.js';
import { PROT_READ, PROT_WRITE } from '../../host/libc.js';
import type { GuestMemory } from '../../mm/guest.js';
import { hostStatInfo, h, type Mount } from '../vfs/mounts.js';
import { O_APPEND, POLLIN, POLLOUT, type FileOps, type OpenFile } from './file.js';

const F_GETFL = 3;
const F_SETFL = 4;

export class HostFile implements FileOps {
  readonly kind = 'hostfile';
  /** The host fd (O_PATH for an O_PATH open). */
  readonly fd: number;
  /** The path the sandbox opened it by. */
  readonly name: string;
  readonly mount: Mount;
  readonly isDir: boolean;
  /** Locks (flock, fcntl) are kept per host file (device and inode), as for files of the image. */
  readonly lockKey: string;
  private readonly mem: GuestMemory;
  private closed = false;

  private readonly counter: { openFiles: number } | null;

  constructor(fd: number, name: string, mount: Mount, mem: GuestMemory, counter: { openFiles: number } | null = null) {
    this.counter = counter;
    if (counter) counter.openFiles++;
    this.fd = fd;
    this.name = name;
    this.mount = mount;
    this.mem = mem;
    const st = this.hostStat();
    this.isDir = typeof st !== 'number' && (st.mode & S_IFMT) === S_IFDIR;
    this.lockKey = typeof st === 'number' ? `hostfd:${fd}` : `host:${st.dev}:${st.ino}`;
  }

  hostStat(): StatInfo | number {
    const b = Buffer.alloc(144);
    if (libc.fstat(this.fd, b) !== 0) {
      // fstat of an O_PATH fd works since Linux 3.6; keep the errno otherwise.
      return -libc.errno();
    }
    return hostStatInfo(b);
  }

  size(): number {
    const s = this.hostStat();
    return typeof s === 'number' ? 0 : s.size;
  }

  read(f: OpenFile, addr: number, length: number, offset: number | null): number {
    if (this.isDir) return -E.EISDIR;
    if (length === 0) return 0;
    return this.readHost(f, this.mem.hostPtr(addr, length, PROT_WRITE), length, offset);
  }

  write(f: OpenFile, addr: number, length: number, offset: number | null): number {
    if (this.mount.readonly) return -E.EROFS;
    if (this.isDir) return -E.EISDIR;
    if (length === 0) return 0;
    return this.writeHost(f, this.mem.hostPtr(addr, length, PROT_READ), length, offset);
  }

  /** read() into host memory at `dst` at `offset` (or the position): sendfile and copy_file_range. */
  readHost(f: OpenFile, dst: number, length: number, offset: number | null): number {
    if (this.isDir) return -E.EISDIR;
    const pos = offset ?? f.pos;
    const n = libc.pread(this.fd, dst, length, pos);
    if (n < 0) return -libc.errno();
    if (offset === null) f.pos = pos + n;
    return n;
  }

  /** write() from host memory at `src`. */
  writeHost(f: OpenFile, src: number, length: number, offset: number | null): number {
    if (this.mount.readonly) return -E.EROFS;
    if (this.isDir) return -E.EISDIR;
    if (length === 0) return 0;
    if (f.flags & O_APPEND && offset === null) return this.append(f, src, length);
    const pos = offset ?? f.pos;
    const done = writeAll(length, (at) => libc.pwrite(this.fd, src + at, length - at, pos + at));
    if (offset === null && done > 0) f.pos = pos + done;
    return done;
  }

  /**
   * An O_APPEND write: the host appends (O_APPEND set on the host fd for it), so writers on the host
   * appending to the same file interleave whole writes, as two Linux processes do.
   */
  private append(f: OpenFile, src: number, length: number): number {
    const fl = libc.fcntl(this.fd, F_GETFL, 0);
    if (fl >= 0 && !(fl & O_APPEND)) libc.fcntl(this.fd, F_SETFL, fl | O_APPEND);
    let done: number;
    try {
      done = writeAll(length, (at) => libc.write(this.fd, src + at, length - at));
    } finally {
      // Back without O_APPEND: positional writes (pwrite, a later F_SETFL without O_APPEND) go where asked.
      if (fl >= 0 && !(fl & O_APPEND)) libc.fcntl(this.fd, F_SETFL, fl);
    }
    if (done < 0) return done;
    const end = libc.lseek(this.fd, 0, 1);
    f.pos = end >= 0 ? end : f.pos + done;
    return done;
  }

  /** getdents64 into guest memory: the host's entries (host inode numbers), f.pos the host's cookie. */
  getdents(f: OpenFile, addr: number, count: number): number {
    if (!this.isDir) return -E.ENOTDIR;
    if (count <= 0) return -E.EINVAL;
    const n = Math.min(count, 1 << 20);
    const dst = this.mem.hostPtr(addr, n, PROT_WRITE);
    if (libc.lseek(this.fd, f.pos, 0) < 0) return -libc.errno();
    const r = h.getdents64(this.fd, dst, n);
    if (r < 0) return -libc.errno();
    const at = libc.lseek(this.fd, 0, 1);
    if (at >= 0) f.pos = at;
    return r;
  }

  stat(): StatInfo {
    const s = this.hostStat();
    if (typeof s !== 'number') return s;
    // (fstat of an open fd does not fail; should the host say otherwise, an empty file of no device)
    return { dev: 0, ino: 0, nlink: 0, mode: this.isDir ? S_IFDIR : 0o100000, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 4096, blocks: 0, atime: [0, 0], mtime: [0, 0], ctime: [0, 0] };
  }

  pollEvents(): number {
    return POLLIN | POLLOUT;
  }

  release(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.counter) this.counter.openFiles--;
    libc.close(this.fd);
  }
}

/**
 * A host write of `length` bytes in as many calls as it takes (`call(done)` writes from byte `done`):
 * the bytes written, or -errno when the first call fails (EINTR is retried).
 */
function writeAll(length: number, call: (done: number) => number): number {
  let done = 0;
  while (done < length) {
    const n = call(done);
    if (n < 0) {
      const err = libc.errno();
      if (err === E.EINTR) continue;
      return done === 0 ? -err : done;
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}
