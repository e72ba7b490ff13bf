/**
 * The mailbox between a vCPU's worker thread and the kernel's thread: one small SharedArrayBuffer per
 * vCPU holding a state word and the decoded exit, plus a doorbell shared by all vCPUs. The registers
 * themselves need no copy: the kernel reads and writes them in the vCPU's kvm_run page, which every
 * thread of the process can see.
 */
import type { Exit } from '../platform/platform.js';

export const SLOT_BYTES = 128;
/** Spin iterations before a futex sleep (a few microseconds). */
const SPIN = 2000;
export const ST = { RUNNING: 0, EXITED: 1, RESUME: 2, TERMINATE: 3 } as const;
const I = { state: 0, kind: 1, vector: 2, hasCode: 3, code: 4, signal: 6, status: 7 } as const; // [5]: gone
const F = { rip: 0, cr2: 1, gpa: 2, thread: 3 } as const;
const KINDS = ['syscall', 'exception', 'memfault', 'interrupted', 'fatal', 'gone', 'damaged'] as const;

export class Slot {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab, 0, 16);
    this.f64 = new Float64Array(sab, 64, 8);
  }
  static create(): Slot {
    return new Slot(new SharedArrayBuffer(SLOT_BYTES));
  }
  get state(): number {
    return Atomics.load(this.i32, I.state);
  }
  set(state: number): void {
    Atomics.store(this.i32, I.state, state);
    Atomics.notify(this.i32, I.state);
  }
  /**
   * Sleep while the state is `state` (at most `ms`), after a short spin: the kernel usually answers
   * within microseconds, and a futex sleep and wake-up costs tens of them on a virtualized host.
   */
  waitWhile(state: number, ms = Infinity): void {
    for (let i = 0; i < SPIN; i++) if (Atomics.load(this.i32, I.state) !== state) return;
    Atomics.wait(this.i32, I.state, state, ms);
  }
  /** Set by the vCPU's worker as it ends. */
  get gone(): boolean {
    return Atomics.load(this.i32, 5) === 1;
  }
  set gone(v: boolean) {
    Atomics.store(this.i32, 5, v ? 1 : 0);
  }
  /** The vCPU's host thread (pthread_t), for kicks. */
  get thread(): number {
    return this.f64[F.thread]!;
  }
  set thread(t: number) {
    this.f64[F.thread] = t;
  }
  put(e: Exit): void {
    this.i32[I.kind] = KINDS.indexOf(e.kind);
    if (e.kind === 'exception') {
      this.i32[I.vector] = e.vector;
      this.i32[I.hasCode] = e.errorCode === null ? 0 : 1;
      this.i32[I.code] = e.errorCode ?? 0;
      this.f64[F.rip] = e.rip;
      this.f64[F.cr2] = e.cr2;
    } else if (e.kind === 'memfault') {
      this.f64[F.rip] = e.rip;
      this.f64[F.gpa] = e.gpa ?? NaN;
    } else if (e.kind === 'fatal') {
      this.f64[F.rip] = e.rip;
    } else if (e.kind === 'damaged') {
      this.f64[F.rip] = e.rip;
    } else if (e.kind === 'gone') {
      this.i32[I.signal] = e.signal ?? -1;
      this.i32[I.status] = e.status ?? -1;
    }
  }
  get(): Exit {
    switch (KINDS[this.i32[I.kind]!]) {
      case 'syscall':
        return { kind: 'syscall' };
      case 'exception':
        return { kind: 'exception', vector: this.i32[I.vector]!, errorCode: this.i32[I.hasCode] ? this.i32[I.code]! >>> 0 : null, rip: this.f64[F.rip]!, cr2: this.f64[F.cr2]! };
      case 'memfault': {
        const g = this.f64[F.gpa]!;
        return { kind: 'memfault', rip: this.f64[F.rip]!, gpa: Number.isNaN(g) ? null : g, write: null };
      }
      case 'interrupted':
        return { kind: 'interrupted' };
      case 'gone': {
        const signal = this.i32[I.signal]!;
        const status = this.i32[I.status]!;
        return { kind: 'gone', signal: signal < 0 ? null : signal, status: status < 0 ? null : status, reason: "the program's host process ended" };
      }
      case 'damaged':
        return { kind: 'damaged', reason: "the program damaged the stub's control area", rip: this.f64[F.rip]! };
      default:
        return { kind: 'fatal', reason: 'the vCPU failed', rip: this.f64[F.rip]! };
    }
  }
}

/** The doorbell: a counter every vCPU bumps when it posts an exit. */
export class Doorbell {
  readonly i32: Int32Array;
  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab, 0, 1);
  }
  static create(): Doorbell {
    return new Doorbell(new SharedArrayBuffer(4));
  }
  ring(): void {
    Atomics.add(this.i32, 0, 1);
    Atomics.notify(this.i32, 0);
  }
  get value(): number {
    return Atomics.load(this.i32, 0);
  }
  /** Sleep until a ring after `seen` (at most `ms`), after a short spin (see Slot.waitWhile). */
  wait(seen: number, ms: number): void {
    for (let i = 0; i < SPIN; i++) if (Atomics.load(this.i32, 0) !== seen) return;
    Atomics.wait(this.i32, 0, seen, ms);
  }
}
