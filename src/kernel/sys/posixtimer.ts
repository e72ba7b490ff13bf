/**
 * POSIX per-process timers: timer_create, timer_settime, timer_gettime, timer_getoverrun, timer_delete,
 * on CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI and the two _ALARM clocks (which run as
 * their base clocks: there is no suspend). A timer is kept as a deadline on the VMM's monotonic ms clock
 * (an absolute TIMER_ABSTIME value is converted through the timer's clock, as clock_nanosleep does) and
 * fired by the server with the interval timers (Procs.fireTimers): its signal carries si_code SI_TIMER,
 * si_timerid, si_overrun and sigev_value. While that signal is still pending, further expiries only count
 * as overruns (timer_getoverrun), as on Linux. Timers are not inherited by fork and are deleted by execve.
 *
 * Partial: SIGEV_THREAD_ID's signal goes to the process, not to the thread named (per-thread delivery
 * is not modelled, as for tgkill); CPU-time clocks (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
 * a pid's or thread's clock) answer ENOSYS and are counted as unimplemented in --stats.
 */
import { E } from '../../abi/errno.js';
import { SYS } from '../../abi/sysno.js';
import type { Kernel } from '../kernel.js';
import type { ProcessTable } from '../procs.js';
import type { SigInfo } from '../signal-frame.js';
import type { SyscallResult, SyscallTable } from '../types.js';
import { nowNs } from './time.js';

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_PROCESS_CPUTIME_ID = 2;
const CLOCK_THREAD_CPUTIME_ID = 3;
const CLOCK_MONOTONIC_RAW = 4;
const CLOCK_REALTIME_COARSE = 5;
const CLOCK_MONOTONIC_COARSE = 6;
const CLOCK_BOOTTIME = 7;
const CLOCK_REALTIME_ALARM = 8;
const CLOCK_BOOTTIME_ALARM = 9;
const CLOCK_TAI = 11;
/** The clock a timer's absolute values are read on. */
const BASE: Record<number, number> = {
  [CLOCK_REALTIME]: CLOCK_REALTIME,
  [CLOCK_MONOTONIC]: CLOCK_MONOTONIC,
  [CLOCK_BOOTTIME]: CLOCK_BOOTTIME,
  [CLOCK_REALTIME_ALARM]: CLOCK_REALTIME,
  [CLOCK_BOOTTIME_ALARM]: CLOCK_BOOTTIME,
  [CLOCK_TAI]: CLOCK_TAI,
};

const SIGEV_SIGNAL = 0;
const SIGEV_NONE = 1;
const SIGEV_THREAD_ID = 4;
const SIGALRM = 14;
const NSIG = 64;
const SI_TIMER = -2;
const TIMER_ABSTIME = 1;
const DELAYTIMER_MAX = 0x7fffffff;

interface PosixTimer {
  id: number;
  clock: number;
  notify: number;
  signo: number;
  value: bigint;
  /** Next expiry (performance.now() ms), or null when disarmed. */
  deadline: number | null;
  intervalMs: number;
  /** Expiries while the last signal was still pending, and the count the last delivery carried. */
  overrun: number;
  lastOverrun: number;
  /** The siginfo of the last signal sent (while pending, its si_overrun is kept current). */
  queued: SigInfo | null;
}

const TIMERS = new WeakMap<Kernel, Map<number, PosixTimer>>();

function timersOf(k: Kernel): Map<number, PosixTimer> {
  let m = TIMERS.get(k);
  if (!m) TIMERS.set(k, (m = new Map()));
  return m;
}

/** execve: the process's POSIX timers are deleted. */
export function deletePosixTimers(k: Kernel): void {
  TIMERS.delete(k);
}

function isCpuClock(clock: number): boolean {
  return clock === CLOCK_PROCESS_CPUTIME_ID || clock === CLOCK_THREAD_CPUTIME_ID || clock < 0;
}

function create(k: Kernel, clock: number, sevAddr: number, idAddr: number): SyscallResult {
  if (isCpuClock(clock)) {
    k.stats.unimplemented(SYS.timer_create);
    return -E.ENOSYS;
  }
  // Clocks Linux has but cannot arm a timer on: EOPNOTSUPP; unknown ones: EINVAL.
  if (clock === CLOCK_MONOTONIC_RAW || clock === CLOCK_REALTIME_COARSE || clock === CLOCK_MONOTONIC_COARSE) return -E.EOPNOTSUPP;
  if (BASE[clock] === undefined) return -E.EINVAL;
  let notify = SIGEV_SIGNAL;
  let signo = SIGALRM;
  let value: bigint | null = null;
  if (sevAddr !== 0) {
    const b = k.mem.read(sevAddr, 20);
    const dv = new DataView(b.buffer, b.byteOffset, 20);
    value = dv.getBigUint64(0, true);
    signo = dv.getInt32(8, true);
    notify = dv.getInt32(12, true);
    if (notify !== SIGEV_SIGNAL && notify !== SIGEV_NONE && notify !== SIGEV_THREAD_ID) return -E.EINVAL;
    if (notify === SIGEV_THREAD_ID) {
      const tid = dv.getInt32(16, true);
      if (!(k.threads ? k.threads.of(k).some((t) => t.tid === tid) : tid === k.identity.pid)) return -E.EINVAL;
    }
    if (notify !== SIGEV_NONE && (signo < 1 || signo > NSIG)) return -E.EINVAL;
  }
  const timers = timersOf(k);
  let id = 0;
  while (timers.has(id)) id++;
  k.mem.writable(idAddr, 4);
  const dv = new DataView(new ArrayBuffer(4));
  dv.setInt32(0, id, true);
  k.mem.write(idAddr, new Uint8Array(dv.buffer));
  timers.set(id, { id, clock, notify, signo, value: value ?? BigInt(id), deadline: null, intervalMs: 0, overrun: 0, lastOverrun: 0, queued: null });
  return 0;
}

/** struct itimerspec from the program: [interval, value] in ns, or null when a field is out of range. */
function readItimerspec(k: Kernel, addr: number): [bigint, bigint] | null {
  const b = k.mem.read(addr, 32);
  const dv = new DataView(b.buffer, b.byteOffset, 32);
  const f = (o: number): bigint | null => {
    const sec = dv.getBigInt64(o, true);
    const nsec = dv.getBigInt64(o + 8, true);
    return sec < 0n || nsec < 0n || nsec >= 1_000_000_000n ? null : sec * 1_000_000_000n + nsec;
  };
  const interval = f(0);
  const value = f(16);
  return interval === null || value === null ? null : [interval, value];
}

function writeItimerspec(k: Kernel, addr: number, t: PosixTimer): void {
  const left = t.deadline === null ? 0n : BigInt(Math.max(1, Math.round((t.deadline - performance.now()) * 1e6)));
  const interval = t.deadline === null ? 0n : BigInt(Math.round(t.intervalMs * 1e6));
  const b = new Uint8Array(32);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, interval / 1_000_000_000n, true);
  dv.setBigInt64(8, interval % 1_000_000_000n, true);
  dv.setBigInt64(16, left / 1_000_000_000n, true);
  dv.setBigInt64(24, left % 1_000_000_000n, true);
  k.mem.write(addr, b);
}

function settime(k: Kernel, id: number, flags: number, newAddr: number, oldAddr: number): SyscallResult {
  const t = timersOf(k).get(id);
  if (!t) return -E.EINVAL;
  if (newAddr === 0) return -E.EINVAL;
  const next = readItimerspec(k, newAddr);
  if (next === null) return -E.EINVAL;
  if (oldAddr !== 0) writeItimerspec(k, oldAddr, t);
  const [interval, value] = next;
  t.overrun = 0;
  if (value === 0n) {
    t.deadline = null;
    t.intervalMs = 0;
    return 0;
  }
  const now = performance.now();
  const inMs = flags & TIMER_ABSTIME ? Number(value - nowNs(BASE[t.clock]!)) / 1e6 : Number(value) / 1e6;
  t.deadline = now + Math.max(0, inMs);
  t.intervalMs = Number(interval) / 1e6;
  // A lone program is served from now on, so that the timer can fire while it runs (as alarm does).
  if (k.threads && !k.threads.threaded) {
    k.threads.threaded = true;
    return { kind: 'threaded', result: 0 };
  }
  return 0;
}

/**
 * Fire `k`'s timers that are due at `now` (performance.now() ms); returns the next deadline, or
 * Infinity. Called by Procs.fireTimers.
 */
export function firePosixTimers(procs: Pick<ProcessTable, 'signal'>, k: Kernel, now: number): number {
  const timers = TIMERS.get(k);
  if (!timers) return Infinity;
  let next = Infinity;
  for (const t of timers.values()) {
    if (t.deadline === null) continue;
    if (t.deadline <= now) {
      let missed = 0;
      if (t.intervalMs > 0) {
        missed = Math.floor((now - t.deadline) / t.intervalMs);
        t.deadline += (missed + 1) * t.intervalMs;
      } else t.deadline = null;
      if (t.notify !== SIGEV_NONE) {
        // Still pending from this timer: the expiry is an overrun, reported by the signal when it is
        // delivered (si_overrun) and by timer_getoverrun after.
        const pending = t.queued !== null && (k.signals.pending & (1n << BigInt(t.signo - 1))) !== 0n && k.signals.pendingInfo.get(t.signo) === t.queued;
        if (pending) {
          t.overrun = Math.min(DELAYTIMER_MAX, t.overrun + 1 + missed);
          t.queued!.uid = t.overrun;
        } else {
          t.overrun = Math.min(DELAYTIMER_MAX, missed);
          t.queued = { signo: t.signo, code: SI_TIMER, pid: t.id, uid: t.overrun, value: t.value };
          procs.signal(k, t.signo, t.queued);
        }
        t.lastOverrun = t.overrun;
      } else t.lastOverrun = missed;
    }
    if (t.deadline !== null && t.deadline < next) next = t.deadline;
  }
  return next;
}

export const posixTimerSyscalls: SyscallTable = {
  timer_create: (k, a) => create(k, a.i32(0), a.u64(1), a.u64(2)),
  timer_settime: (k, a) => settime(k, a.i32(0), a.i32(1), a.u64(2), a.u64(3)),
  timer_gettime: (k, a) => {
    const t = timersOf(k).get(a.i32(0));
    if (!t) return -E.EINVAL;
    writeItimerspec(k, a.u64(1), t);
    return 0;
  },
  timer_getoverrun: (k, a) => {
    const t = timersOf(k).get(a.i32(0));
    return t ? t.lastOverrun : -E.EINVAL;
  },
  timer_delete: (k, a) => {
    const timers = timersOf(k);
    return timers.delete(a.i32(0)) ? 0 : -E.EINVAL;
  },
};
