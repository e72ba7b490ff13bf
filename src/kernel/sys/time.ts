/**
 * Clocks and sleeps. Readings come from the host's clocks written straight into the program's memory;
 * sleeps block the vCPU's thread in slices so that a stop request (timeout, API) ends them.
 */
import { nap } from '../nap.js';
import { E } from '../../abi/errno.js';
import * as libc from '../../host/libc.js';
import { PROT_WRITE } from '../../host/libc.js';
import type { Kernel } from '../kernel.js';
import { FORMULA_CLOCKS, hostNs, timekeeper } from '../../vdso/timekeeper.js';
import type { SyscallResult, SyscallTable } from '../types.js';

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_PROCESS_CPUTIME_ID = 2;
const CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_BOOTTIME = 7;
const CLOCK_TAI = 11;
/** Clocks a program may read (CPU-time clocks report the VMM thread's time, which includes the guest's). */
const VALID_CLOCKS = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11]);
const TIMER_ABSTIME = 1;

/**
 * The program's reading of `clock`, in nanoseconds: the sandbox's clock formula (the vDSO's, see
 * vdso/timekeeper.ts) for the clocks it answers, the host's for the rest (CPU time, MONOTONIC_RAW).
 */
export function nowNs(clock: number): bigint {
  return FORMULA_CLOCKS.has(clock) ? timekeeper().now(clock) : hostNs(clock);
}

/** Sleep until `deadlineNs` on `clock`; false when the VMM is asked to stop first. */
function sleepUntil(k: Kernel, clock: number, deadlineNs: bigint): boolean {
  for (;;) {
    const left = deadlineNs - nowNs(clock);
    if (left <= 0n) return true;
    if (k.stop.stopRequested()) return false;
    // Fractional milliseconds are fine; wake at least every 200 ms to notice a stop.
    nap(Math.min(200, Number(left) / 1e6));
  }
}

function readTimespec(k: Kernel, addr: number): bigint | null {
  const sec = k.mem.readBigU64(addr);
  const nsec = k.mem.readBigU64(addr + 8);
  if (BigInt.asIntN(64, sec) < 0n || nsec >= 1_000_000_000n) return null;
  return sec * 1_000_000_000n + nsec;
}

function writeTimespec(k: Kernel, addr: number, ns: bigint): void {
  const b = Buffer.alloc(16);
  b.writeBigInt64LE(ns / 1_000_000_000n, 0);
  b.writeBigInt64LE(ns % 1_000_000_000n, 8);
  k.mem.write(addr, b);
}

function clockNanosleep(k: Kernel, clock: number, flags: number, reqAddr: number, remAddr: number): SyscallResult {
  if (clock !== CLOCK_REALTIME && clock !== CLOCK_MONOTONIC && clock !== CLOCK_BOOTTIME && clock !== CLOCK_TAI) {
    return clock === CLOCK_PROCESS_CPUTIME_ID || clock === CLOCK_THREAD_CPUTIME_ID ? -E.EOPNOTSUPP : -E.EINVAL;
  }
  const req = readTimespec(k, reqAddr);
  if (req === null) return -E.EINVAL;
  const start = nowNs(clock);
  let deadline = flags & TIMER_ABSTIME ? req : start + req;
  const restart = k.sleepRestart;
  k.sleepRestart = null;
  if (restart && !(flags & TIMER_ABSTIME) && restart.clock === clock && restart.reqAddr === reqAddr) deadline = restart.deadlineNs;
  if (k.threads?.threaded) {
    // Threads: park; the kernel answers 0 at the deadline (converted to the monotonic ms clock).
    return { kind: 'park', park: { kind: 'sleep', deadline: performance.now() + Number(deadline - start) / 1e6 } };
  }
  if (!sleepUntil(k, clock, deadline)) {
    if (remAddr && !(flags & TIMER_ABSTIME)) {
      const left = deadline - nowNs(clock);
      writeTimespec(k, remAddr, left > 0n ? left : 0n);
    }
    // A pause restarts the call afterwards: with the deadline it had.
    if (!(flags & TIMER_ABSTIME)) k.sleepRestart = { clock, reqAddr, deadlineNs: deadline };
    return { kind: 'stop' };
  }
  return 0;
}

export const timeSyscalls: SyscallTable = {
  clock_gettime: (k, a) => {
    const clock = a.i32(0);
    if (!VALID_CLOCKS.has(clock)) return -E.EINVAL;
    if (FORMULA_CLOCKS.has(clock)) {
      writeTimespec(k, a.u64(1), nowNs(clock));
      return 0;
    }
    const rc = libc.clockGettime(clock, k.mem.hostPtr(a.u64(1), 16, PROT_WRITE));
    return rc < 0 ? -libc.errno() : 0;
  },
  clock_getres: (k, a) => {
    const clock = a.i32(0);
    if (!VALID_CLOCKS.has(clock)) return -E.EINVAL;
    if (a.u64(1) === 0) return 0;
    const rc = libc.clockGetres(clock, k.mem.hostPtr(a.u64(1), 16, PROT_WRITE));
    return rc < 0 ? -libc.errno() : 0;
  },
  gettimeofday: (k, a) => {
    const tv = a.u64(0);
    if (tv) {
      const us = nowNs(CLOCK_REALTIME) / 1000n;
      const b = Buffer.alloc(16);
      b.writeBigInt64LE(us / 1_000_000n, 0);
      b.writeBigInt64LE(us % 1_000_000n, 8);
      k.mem.write(tv, b);
    }
    const tz = a.u64(1);
    if (tz) k.mem.write(tz, new Uint8Array(8)); // UTC, no DST
    return 0;
  },
  time: (k, a) => {
    const t = Number(nowNs(CLOCK_REALTIME) / 1_000_000_000n);
    if (a.u64(0)) k.mem.writeU64(a.u64(0), t);
    return t;
  },
  nanosleep: (k, a) => clockNanosleep(k, CLOCK_MONOTONIC, 0, a.u64(0), a.u64(1)),
  clock_nanosleep: (k, a) => {
    return clockNanosleep(k, a.i32(0), a.i32(1), a.u64(2), a.u64(3));
  },
};
