/** A read-only file whose contents the kernel makes at open time (/proc files). */
import { E } from '../../abi/errno.js';
import { S_IFREG, type StatInfo } from '../../abi/stat.js';
import type { GuestMemory } from '../../mm/guest.js';
import { POLLIN, type FileOps, type OpenFile } from './file.js';

export class MemFile implements FileOps {
  readonly kind = 'proc';
  readonly name: string;
  private readonly data: Uint8Array;
  private readonly mem: GuestMemory;
  private readonly ino: number;

  constructor(name: string, content: string | Uint8Array, mem: GuestMemory, ino: number) {
    this.name = name;
    this.data = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    this.mem = mem;
    this.ino = ino;
  }

  read(f: OpenFile, addr: number, length: number, offset: number | null): number {
    const pos = offset ?? f.pos;
    const n = Math.max(0, Math.min(length, this.data.length - pos));
    if (n > 0) this.mem.write(addr, this.data.subarray(pos, pos + n));
    if (offset === null) f.pos += n;
    return n;
  }

  write(): number {
    return -E.EACCES;
  }

  size(): number {
    return this.data.length;
  }

  pollEvents(): number {
    return POLLIN;
  }

  stat(): StatInfo {
    const now = Math.floor(Date.now() / 1000);
    return {
      dev: 0x04, ino: this.ino, nlink: 1, mode: S_IFREG | 0o444, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 1024, blocks: 0,
      atime: [now, 0], mtime: [now, 0], ctime: [now, 0],
    };
  }
}
