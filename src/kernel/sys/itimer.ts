/**
 * alarm, setitimer and getitimer (ITIMER_REAL): a per-process deadline on the monotonic clock. The
 * server fires it (SIGALRM to the process, re-armed when it has an interval); a single-threaded
 * program that arms one is served from then on, so the timer can fire while it runs.
 */
import { E } from '../../abi/errno.js';
import { SYS } from '../../abi/sysno.js';
import type { Kernel } from '../kernel.js';
import type { SyscallResult, SyscallTable } from '../types.js';

const ITIMER_REAL = 0;
const ITIMER_VIRTUAL = 1;
const ITIMER_PROF = 2;
/** struct itimerval: it_interval {sec, usec}, it_value {sec, usec}: 32 bytes. */
const ITIMERVAL_SIZE = 32;

/** The timer as struct itimerval, in µs: [interval, remaining value]. */
function current(k: Kernel): [number, number] {
  const t = k.itimer;
  if (!t) return [0, 0];
  return [Math.round(t.intervalMs * 1000), Math.max(1, Math.round((t.deadline - performance.now()) * 1000))];
}

function writeItimerval(k: Kernel, addr: number, [interval, value]: [number, number]): void {
  const b = new Uint8Array(ITIMERVAL_SIZE);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, BigInt(Math.floor(interval / 1e6)), true);
  dv.setBigInt64(8, BigInt(interval % 1e6), true);
  dv.setBigInt64(16, BigInt(Math.floor(value / 1e6)), true);
  dv.setBigInt64(24, BigInt(value % 1e6), true);
  k.mem.write(addr, b);
}

/** Arm (valueMs > 0) or disarm the timer; the first arming of a lone program makes it served. */
function arm(k: Kernel, valueMs: number, intervalMs: number, result: number): SyscallResult {
  k.itimer = valueMs > 0 ? { deadline: performance.now() + valueMs, intervalMs } : null;
  if (k.itimer && k.threads && !k.threads.threaded) {
    k.threads.threaded = true;
    return { kind: 'threaded', result };
  }
  return result;
}

function notReal(k: Kernel, nr: number, which: number): number | null {
  if (which === ITIMER_REAL) return null;
  if (which === ITIMER_VIRTUAL || which === ITIMER_PROF) {
    k.stats.unimplemented(nr); // CPU-time timers are not kept
    return -E.ENOSYS;
  }
  return -E.EINVAL;
}

export const itimerSyscalls: SyscallTable = {
  alarm: (k, a) => {
    const secs = a.u32(0);
    const left = k.itimer ? Math.ceil((k.itimer.deadline - performance.now()) / 1000) : 0;
    return arm(k, secs * 1000, 0, Math.max(k.itimer ? 1 : 0, left));
  },
  getitimer: (k, a) => {
    const bad = notReal(k, SYS.getitimer, a.i32(0));
    if (bad !== null) return bad;
    writeItimerval(k, a.u64(1), current(k));
    return 0;
  },
  setitimer: (k, a) => {
    const bad = notReal(k, SYS.setitimer, a.i32(0));
    if (bad !== null) return bad;
    let next: [number, number] | null = null;
    if (a.u64(1)) {
      const b = k.mem.read(a.u64(1), ITIMERVAL_SIZE);
      const dv = new DataView(b.buffer, b.byteOffset, ITIMERVAL_SIZE);
      const f = (o: number): number => Number(dv.getBigInt64(o, true));
      if (f(8) < 0 || f(8) >= 1e6 || f(24) < 0 || f(24) >= 1e6 || f(0) < 0 || f(16) < 0) return -E.EINVAL;
      next = [f(0) * 1000 + f(8) / 1000, f(16) * 1000 + f(24) / 1000];
    }
    if (a.u64(2)) writeItimerval(k, a.u64(2), current(k));
    return next ? arm(k, next[1], next[0], 0) : 0;
  },
};
