/**
 * pipe2 inside one program: a 64 KiB ring buffer in the kernel. A read of an empty pipe whose write
 * end is open (or a write to a full pipe) waits, as on Linux; with one thread nothing can change the
 * pipe meanwhile, so the wait ends only when the VMM is stopped (--timeout), exactly as a real
 * single-threaded program would hang. O_NONBLOCK answers EAGAIN instead.
 */
import { napUntil } from '../nap.js';
import { E } from '../../abi/errno.js';
import { S_IFIFO, type StatInfo } from '../../abi/stat.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { StopSignal } from './host.js';
import { O_NONBLOCK, POLLERR, POLLHUP, POLLIN, POLLOUT, type FileOps, type OpenFile } from './file.js';

export const PIPE_BUF_SIZE = 65536;

let nextPipeIno = 1;

export class PipeBuffer {
  readonly data = new Uint8Array(PIPE_BUF_SIZE);
  head = 0; // next byte to read
  length = 0;
  readers = 0;
  writers = 0;
  readonly ino = nextPipeIno++;

  /** The bytes waiting to be read, in order (a checkpoint saves them). */
  contents(): Uint8Array {
    const out = new Uint8Array(this.length);
    const first = Math.min(this.length, PIPE_BUF_SIZE - this.head);
    out.set(this.data.subarray(this.head, this.head + first));
    out.set(this.data.subarray(0, this.length - first), first);
    return out;
  }

  /** A pipe holding `bytes` (a restore), with no ends yet. */
  static holding(bytes: Uint8Array): PipeBuffer {
    if (bytes.length > PIPE_BUF_SIZE) throw new RangeError('more bytes than a pipe holds');
    const p = new PipeBuffer();
    p.data.set(bytes);
    p.length = bytes.length;
    return p;
  }
}

function waitForever(stop: StopSignal): 'stop' | 'block' {
  if (stop.mustNotBlock?.()) return 'block';
  napUntil(Infinity, () => stop.stopRequested());
  return 'stop';
}

function pipeStat(p: PipeBuffer): StatInfo {
  const now = Math.floor(Date.now() / 1000);
  return {
    dev: 0x0c, ino: p.ino, nlink: 1, mode: S_IFIFO | 0o600, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 4096, blocks: 0,
    atime: [now, 0], mtime: [now, 0], ctime: [now, 0],
  };
}

export class PipeReadEnd implements FileOps {
  readonly kind = 'pipe';
  readonly name: string;
  constructor(readonly p: PipeBuffer, private readonly mem: GuestMemory, private readonly stop: StopSignal) {
    p.readers++;
    this.name = `pipe:[${p.ino}]`;
  }
  read(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    const p = this.p;
    if (length === 0) return 0;
    if (p.length === 0) {
      if (p.writers === 0) return 0; // EOF
      if (f.flags & O_NONBLOCK) return -E.EAGAIN;
      return waitForever(this.stop);
    }
    const n = Math.min(length, p.length);
    const dst = this.mem.writable(addr, n);
    const first = Math.min(n, PIPE_BUF_SIZE - p.head);
    dst.set(p.data.subarray(p.head, p.head + first));
    if (n > first) dst.set(p.data.subarray(0, n - first), first);
    p.head = (p.head + n) % PIPE_BUF_SIZE;
    p.length -= n;
    return n;
  }
  pollEvents(): number {
    return (this.p.length > 0 ? POLLIN : 0) | (this.p.writers === 0 ? POLLHUP : 0);
  }
  stat(): StatInfo {
    return pipeStat(this.p);
  }
  release(): void {
    this.p.readers--;
  }
}

export class PipeWriteEnd implements FileOps {
  readonly kind = 'pipe';
  readonly name: string;
  /** Set when a write found no reader: the caller raises SIGPIPE. */
  brokenPipe = false;
  constructor(readonly p: PipeBuffer, private readonly mem: GuestMemory, private readonly stop: StopSignal) {
    p.writers++;
    this.name = `pipe:[${p.ino}]`;
  }
  write(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    const p = this.p;
    if (p.readers === 0) {
      this.brokenPipe = true;
      return -E.EPIPE;
    }
    if (length === 0) return 0;
    const room = PIPE_BUF_SIZE - p.length;
    if (room === 0) {
      if (f.flags & O_NONBLOCK) return -E.EAGAIN;
      return waitForever(this.stop);
    }
    const n = Math.min(length, room);
    const src = this.mem.read(addr, n);
    const tail = (p.head + p.length) % PIPE_BUF_SIZE;
    const first = Math.min(n, PIPE_BUF_SIZE - tail);
    p.data.set(src.subarray(0, first), tail);
    if (n > first) p.data.set(src.subarray(first, n), 0);
    p.length += n;
    return n;
  }
  pollEvents(): number {
    return (this.p.length < PIPE_BUF_SIZE ? POLLOUT : 0) | (this.p.readers === 0 ? POLLERR : 0);
  }
  stat(): StatInfo {
    return pipeStat(this.p);
  }
  release(): void {
    this.p.writers--;
  }
}

export function makePipe(mem: GuestMemory, stop: StopSignal): [PipeReadEnd, PipeWriteEnd] {
  const p = new PipeBuffer();
  return [new PipeReadEnd(p, mem, stop), new PipeWriteEnd(p, mem, stop)];
}
