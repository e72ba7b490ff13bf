/**
 * eventfd2: a 64-bit counter as a file. With one thread a read of a zero counter (or a write that
 * would overflow it) can only wait for the VMM to stop, as a real single-threaded program would hang;
 * EFD_NONBLOCK answers EAGAIN instead.
 */
import { napUntil } from '../nap.js';
import { E } from '../../abi/errno.js';
import { S_IFREG, type StatInfo } from '../../abi/stat.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { StopSignal } from './host.js';
import { O_NONBLOCK, POLLIN, POLLOUT, type FileOps, type OpenFile } from './file.js';

export const EFD_SEMAPHORE = 1;
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
const MAX = 0xffff_ffff_ffff_fffen;

export class EventFd implements FileOps {
  readonly kind = 'eventfd';
  readonly name = 'anon_inode:[eventfd]';
  /** The counter and EFD_SEMAPHORE (a checkpoint saves both). */
  count: bigint;
  readonly semaphore: boolean;
  private readonly mem: GuestMemory;
  private readonly stop: StopSignal;

  constructor(initial: number, flags: number, mem: GuestMemory, stop: StopSignal) {
    this.count = BigInt(initial >>> 0);
    this.semaphore = (flags & EFD_SEMAPHORE) !== 0;
    this.mem = mem;
    this.stop = stop;
  }

  private hang(f: OpenFile): number | 'stop' | 'block' {
    if (f.flags & O_NONBLOCK) return -E.EAGAIN;
    if (this.stop.mustNotBlock?.()) return 'block';
    napUntil(Infinity, () => this.stop.stopRequested());
    return 'stop';
  }

  read(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    if (length < 8) return -E.EINVAL;
    this.mem.writable(addr, 8);
    if (this.count === 0n) return this.hang(f);
    const v = this.semaphore ? 1n : this.count;
    this.count -= v;
    this.mem.writeU64(addr, v);
    return 8;
  }

  write(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    if (length < 8) return -E.EINVAL;
    const v = this.mem.readBigU64(addr);
    if (v === 0xffff_ffff_ffff_ffffn) return -E.EINVAL;
    if (this.count + v > MAX) return this.hang(f);
    this.count += v;
    return 8;
  }

  pollEvents(): number {
    return (this.count > 0n ? POLLIN : 0) | (this.count < MAX ? POLLOUT : 0);
  }

  stat(): StatInfo {
    return { dev: 0x0e, ino: 1, nlink: 1, mode: S_IFREG | 0o600, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 4096, blocks: 0, atime: [0, 0], mtime: [0, 0], ctime: [0, 0] };
  }
}
