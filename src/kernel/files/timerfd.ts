/**
 * timerfd: a timer as a file. read() returns the number of expirations since the last read (u64), or
 * waits for the next one: with threads the caller is parked until then; with one thread the wait is a
 * sleep (ended by a stop request).
 */
import { nap } from '../nap.js';
import { E } from '../../abi/errno.js';
import { S_IFREG, type StatInfo } from '../../abi/stat.js';
import * as libc from '../../host/libc.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { StopSignal } from './host.js';
import { O_NONBLOCK, POLLIN, type FileOps, type OpenFile } from './file.js';

export const TFD_CLOEXEC = 0o2000000;
export const TFD_NONBLOCK = 0o4000;
export const TFD_TIMER_ABSTIME = 1;

const scratchAddr = libc.mmap(0, 4096, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
const scratch = new DataView(libc.view(scratchAddr, 16));
/** The host's `clock` in ns. */
export function clockNowNs(clock: number): bigint {
  libc.clockGettime(clock, scratchAddr);
  return scratch.getBigInt64(0, true) * 1_000_000_000n + scratch.getBigInt64(8, true);
}

export class TimerFd implements FileOps {
  readonly kind = 'timerfd';
  readonly name = 'anon_inode:[timerfd]';
  readonly clock: number;
  /** Next expiry on `clock` (ns), 0 = disarmed; interval (ns), 0 = one-shot. */
  private next = 0n;
  private interval = 0n;
  private readonly mem: GuestMemory;
  private readonly stop: StopSignal;

  constructor(clock: number, mem: GuestMemory, stop: StopSignal) {
    this.clock = clock;
    this.mem = mem;
    this.stop = stop;
  }

  /** Expirations up to now, advancing the timer. */
  private expirations(): bigint {
    if (this.next === 0n) return 0n;
    const now = clockNowNs(this.clock);
    if (now < this.next) return 0n;
    if (this.interval === 0n) {
      this.next = 0n;
      return 1n;
    }
    const n = (now - this.next) / this.interval + 1n;
    this.next += n * this.interval;
    return n;
  }

  /** For a checkpoint: the time left to the next expiry (ns; null when disarmed) and the interval. */
  save(): { remainingNs: bigint | null; intervalNs: bigint } {
    return { remainingNs: this.next === 0n ? null : this.next - clockNowNs(this.clock), intervalNs: this.interval };
  }

  /** From a checkpoint: armed with the time it had left (expirations missed meanwhile count on read). */
  load(s: { remainingNs: bigint | null; intervalNs: bigint }): void {
    this.interval = s.intervalNs;
    this.next = s.remainingNs === null ? 0n : clockNowNs(this.clock) + s.remainingNs;
  }

  /** ms until the next expiry (performance.now clock), or Infinity when disarmed. */
  msUntilNext(): number {
    if (this.next === 0n) return Infinity;
    return Math.max(0, Number(this.next - clockNowNs(this.clock)) / 1e6);
  }

  settime(flags: number, value: bigint, interval: bigint): [bigint, bigint] {
    const old: [bigint, bigint] = [this.next === 0n ? 0n : this.next - clockNowNs(this.clock), this.interval];
    this.interval = interval;
    if (value === 0n) this.next = 0n;
    else this.next = flags & TFD_TIMER_ABSTIME ? value : clockNowNs(this.clock) + value;
    return old;
  }

  gettime(): [bigint, bigint] {
    this.expirations();
    return [this.next === 0n ? 0n : this.next - clockNowNs(this.clock), this.interval];
  }

  read(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    if (length < 8) return -E.EINVAL;
    this.mem.writable(addr, 8);
    for (;;) {
      const n = this.expirations();
      if (n > 0n) {
        this.mem.writeU64(addr, n);
        return 8;
      }
      if (f.flags & O_NONBLOCK) return -E.EAGAIN;
      if (this.stop.mustNotBlock?.()) return 'block';
      if (this.stop.stopRequested()) return 'stop';
      nap(Math.min(200, this.msUntilNext()));
    }
  }

  pollEvents(): number {
    if (this.next === 0n) return 0;
    return clockNowNs(this.clock) >= this.next ? POLLIN : 0;
  }

  stat(): StatInfo {
    return { dev: 0x0e, ino: 2, nlink: 1, mode: S_IFREG | 0o600, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 4096, blocks: 0, atime: [0, 0], mtime: [0, 0], ctime: [0, 0] };
  }
}
