/**
 * A thread of a program on the process platform: a host thread of the program's process whose every
 * system call, fault and kick stops it in the stub's signal handler. The handler copies the thread's
 * registers into the thread's control slot and waits; this side reads and changes them there (the
 * slot plays the part of KVM's kvm_run sync area) and lets the thread go on.
 *
 * The hand-off is gVisor's systrap: each side spins briefly on the slot's state word, then sleeps in
 * FUTEX_WAIT, and wakes the other only when it says it sleeps.
 */
import type { Context, ContextHandle, ContextState, Exit, KickTarget } from '../platform.js';
import { FXSAVE_SIZE, REGS, REGS_SIZE, RFLAGS_FIXED, RFLAGS_USER_MASK, type RegName } from '../regs.js';
import { USER_START } from '../layout.js';
import {
  EV_APPLIED,
  EV_FAULT,
  EV_INTERRUPT,
  EV_SYSCALL,
  F_FPU,
  F_FS,
  F_GS,
  H_DEAD,
  S_ADDR,
  S_ERR,
  S_FLAGS,
  S_FS_BASE,
  S_FXSAVE,
  S_GONE,
  S_GS_BASE,
  S_KIND,
  S_NSTID,
  S_REGS,
  S_SICODE,
  S_SIGNO,
  S_STATE,
  S_STUB_SLEEPING,
  S_SUP_KICK,
  S_SUP_SLEEPING,
  S_TRAPNO,
  ST_APPLY,
  ST_EXIT,
  ST_POSTED,
  ST_RESUME,
} from './abi.js';
import { ControlArea } from './control.js';

const SIGSEGV = 11;
const SIGILL = 4;
const SI_KERNEL = 0x80;
/** The number a system call the host refused before interception is counted under (above any table). */
export const UNKNOWN_SYSCALL = 0xfff;
const SIGBUS = 7;
/**
 * Loads of the state word before the supervisor sleeps: about 20 µs, which a system call's round trip
 * fits, when the kernel's own thread waits (a single-threaded program). A threaded program's workers
 * spin ten times less: with more waiters than CPUs, spinning takes the CPU the other side needs.
 */
export const SPIN_SERVING = 20000;
export const SPIN_THREADED = 2000;
/** The longest sleep before the supervisor looks at the process's life and the kick flag again. */
const NAP_MS = 50;

/** Where to find the program's process, shared by every context of one platform. */
export interface ProcessInfo {
  /** Host pid of the program's process (0 until it exists). */
  pid(): number;
  /** How the program's process ended, from the host's word; null while it lives. */
  death(): Exit | null;
  /** Host tid of the thread whose tid in the program's pid namespace is `nsTid` (0 when unknown). */
  hostTid(nsTid: number): number;
  /** The stub's outer process and the program's process, for contexts attached in other threads. */
  pids(): { outer: number; inner: number };
}

export class ProcessContext implements Context {
  readonly id: number;
  readonly exitCounts = new Map<string, number>();
  private readonly ctl: ControlArea;
  private readonly off: number;
  private readonly spaceSize: number;
  private readonly info: ProcessInfo | null;
  /** Told by the platform: the kernel serves this context's exit now (it applies ops if the ring fills). */
  onServe: ((c: ProcessContext) => void) | null = null;

  serving(): void {
    this.onServe?.(this);
  }

  /**
   * Whether the VMM was told to stop. A thread that never posts again (a program that blocked the kick
   * signal through the stub's own rt_sigreturn) must not hold the VMM: the wait gives up and the
   * platform's close kills the process.
   */
  private readonly stopRequested: () => boolean;

  private readonly spin: number;

  constructor(id: number, ctl: ControlArea, spaceSize: number, info: ProcessInfo | null, stopRequested: () => boolean = () => false, spin = SPIN_SERVING) {
    this.stopRequested = stopRequested;
    this.spin = spin;
    this.id = id;
    this.ctl = ctl;
    this.off = ControlArea.slotOff(id);
    this.spaceSize = spaceSize;
    this.info = info;
  }

  // --- registers: the slot's record ---
  reg(name: RegName): number {
    return this.ctl.u64(this.off + S_REGS + REGS[name]);
  }
  regBig(name: RegName): bigint {
    return this.ctl.dv.getBigUint64(this.off + S_REGS + REGS[name], true);
  }
  setReg(name: RegName, v: number): void {
    if (v < 0) this.ctl.dv.setBigInt64(this.off + S_REGS + REGS[name], BigInt(v), true);
    else this.ctl.setU64(this.off + S_REGS + REGS[name], v);
  }
  setRegBig(name: RegName, v: bigint): void {
    this.ctl.dv.setBigUint64(this.off + S_REGS + REGS[name], BigInt.asUintN(64, v), true);
  }
  regI32(name: RegName): number {
    return this.ctl.dv.getInt32(this.off + S_REGS + REGS[name], true);
  }
  regU32(name: RegName): number {
    return this.ctl.dv.getUint32(this.off + S_REGS + REGS[name], true);
  }
  regI64(name: RegName): number {
    return Number(this.ctl.dv.getBigInt64(this.off + S_REGS + REGS[name], true));
  }
  private flag(f: number): void {
    this.ctl.store(this.off + S_FLAGS, this.ctl.load(this.off + S_FLAGS) | f);
  }
  get fsBase(): number {
    return this.ctl.u64(this.off + S_FS_BASE);
  }
  set fsBase(v: number) {
    this.ctl.setU64(this.off + S_FS_BASE, v);
    this.flag(F_FS);
  }
  get gsBase(): number {
    return this.ctl.u64(this.off + S_GS_BASE);
  }
  set gsBase(v: number) {
    this.ctl.setU64(this.off + S_GS_BASE, v);
    this.flag(F_GS);
  }
  getFxsave(): Uint8Array {
    return this.ctl.bytes.slice(this.off + S_FXSAVE, this.off + S_FXSAVE + FXSAVE_SIZE);
  }
  setFxsave(fx: Uint8Array): void {
    if (fx.length !== FXSAVE_SIZE) throw new RangeError(`an FXSAVE image is ${FXSAVE_SIZE} bytes`);
    this.ctl.bytes.set(fx, this.off + S_FXSAVE);
    // MXCSR's reserved bits would make the host's restore fail: keep the architectural ones.
    this.ctl.dv.setUint32(this.off + S_FXSAVE + 24, this.ctl.dv.getUint32(this.off + S_FXSAVE + 24, true) & 0xffff, true);
    this.flag(F_FPU);
  }

  // --- the system-call return paths: the stub restores every register, so only the record changes ---
  completeSyscall(result: number | bigint): void {
    if (typeof result === 'bigint') this.setRegBig('rax', result);
    else this.setReg('rax', result);
    this.setReg('rip', this.reg('rcx'));
    this.setReg('rflags', (this.reg('r11') & RFLAGS_USER_MASK) | RFLAGS_FIXED);
  }
  restartSyscall(): void {
    this.setReg('rip', this.reg('rcx') - 2); // `syscall` is two bytes: 0f 05
    this.setReg('rflags', (this.reg('r11') & RFLAGS_USER_MASK) | RFLAGS_FIXED);
  }
  syscallReturnToRegs(): void {}
  resumeUser(): void {}
  regsChanged(): void {}
  saveRegs(): Uint8Array {
    return this.ctl.bytes.slice(this.off + S_REGS, this.off + S_REGS + REGS_SIZE);
  }
  restoreRegs(saved: Uint8Array): void {
    this.ctl.bytes.set(saved.subarray(0, REGS_SIZE), this.off + S_REGS);
  }
  captureState(): ContextState {
    return { regs: this.saveRegs(), fsBase: this.fsBase, gsBase: this.gsBase, fpu: this.getFxsave() };
  }
  putState(s: ContextState): void {
    this.restoreRegs(s.regs);
    this.fsBase = s.fsBase;
    this.gsBase = s.gsBase;
    this.setFxsave(s.fpu);
  }

  requestExit(): void {
    this.ctl.store(this.off + S_SUP_KICK, 1);
  }
  noteExit(reason: string): void {
    this.exitCounts.set(reason, (this.exitCounts.get(reason) ?? 0) + 1);
  }
  kickTarget(pthread: bigint | null): KickTarget {
    const pid = this.info?.pid() ?? 0;
    const tid = this.id === 0 ? pid : (this.info?.hostTid(this.ctl.load(this.off + S_NSTID)) ?? 0);
    return { kind: 'process', pid, tid, thread: String(pthread ?? 0n) };
  }
  handle(): ContextHandle {
    const p = this.info?.pids() ?? { outer: 0, inner: 0 };
    return { kind: 'process', id: this.id, ctlAddr: this.ctl.addr, spaceSize: this.spaceSize, outerPid: p.outer, innerPid: p.inner };
  }

  /** The thread ended: its host thread may go (the slot can then be used again). */
  release(): void {
    if (this.ctl.load(this.off + S_STATE) === ST_POSTED) this.answer(ST_EXIT);
  }
  /** Whether the slot's host thread is gone (or never was). */
  get hostThreadGone(): boolean {
    return this.ctl.load(this.off + S_GONE) === 0;
  }

  /**
   * Whether the program's process is gone, and how it ended. The control area's word is only a hint
   * (the program can write it): the host's /proc says whether the process lives, and its exit status.
   */
  private dead(): Exit | null {
    if (this.ctl.load(H_DEAD) === 0 && !this.checkLife()) return null;
    return this.info?.death() ?? null;
  }

  private lastLifeCheck = 0;
  /** Every second or so, also ask the host (the outer process may have died without a word). */
  private checkLife(): boolean {
    const now = performance.now();
    if (now - this.lastLifeCheck < 1000) return false;
    this.lastLifeCheck = now;
    return true;
  }

  /** Give the stub its answer (a new state) and wake it if it sleeps. */
  private answer(state: number): void {
    this.ctl.store(this.off + S_STATE, state);
    if (this.ctl.load(this.off + S_STUB_SLEEPING) !== 0) this.ctl.wake(this.off + S_STATE);
  }

  /** Wait until the stub posts; null when it did, else why it never will. */
  private waitPosted(): Exit | null {
    const at = this.off + S_STATE;
    for (let i = 0; i < this.spin; i++) if (this.ctl.load(at) === ST_POSTED) return null;
    for (;;) {
      const s = this.ctl.load(at);
      if (s === ST_POSTED) return null;
      const gone = this.dead();
      if (gone) return gone;
      if (this.stopRequested()) return { kind: 'interrupted' };
      this.ctl.store(this.off + S_SUP_SLEEPING, 1);
      if (this.ctl.load(at) === s) this.ctl.wait(at, s, NAP_MS);
      this.ctl.store(this.off + S_SUP_SLEEPING, 0);
    }
  }

  /** Wait until the thread has posted (its start, at first); null, or why it never will. */
  waitStarted(): Exit | null {
    return this.waitPosted();
  }

  /** Ask the stub, waiting in its handler, to apply the ops ring now (the ring is full). */
  applyOps(): Exit | null {
    if (this.ctl.load(this.off + S_STATE) !== ST_POSTED) return null;
    const kind = this.ctl.load(this.off + S_KIND);
    this.answer(ST_APPLY);
    const r = this.waitPosted();
    // The stub overwrote the event kind with EV_APPLIED: put the pending event back.
    if (r === null && this.ctl.load(this.off + S_KIND) === EV_APPLIED) this.ctl.store(this.off + S_KIND, kind);
    return r;
  }

  enter(): Exit {
    if (this.ctl.load(this.off + S_SUP_KICK) !== 0) {
      this.ctl.store(this.off + S_SUP_KICK, 0);
      this.noteExit('interrupted');
      return { kind: 'interrupted' };
    }
    // A thread that has not started yet posts EV_START first.
    if (this.ctl.load(this.off + S_STATE) !== ST_POSTED) {
      const gone = this.waitPosted();
      if (gone) return gone;
    }
    this.answer(ST_RESUME);
    const gone = this.waitPosted();
    if (gone) return gone;
    return this.decode();
  }

  private decode(): Exit {
    const kind = this.ctl.load(this.off + S_KIND);
    switch (kind) {
      case EV_SYSCALL:
        this.noteExit('syscall');
        return { kind: 'syscall' };
      case EV_INTERRUPT:
        this.noteExit('interrupted');
        return { kind: 'interrupted' };
      case EV_FAULT:
        this.noteExit('fault');
        return this.fault();
      default:
        // Only the program can have written this: it damaged the stub's control area.
        this.noteExit('damaged');
        return { kind: 'damaged', reason: `the stub's control area holds event ${kind}, which no stub posts`, rip: this.reg('rip') };
    }
  }

  /** A host signal for a fault, as the exit the kernel knows from the KVM platform. */
  private fault(): Exit {
    const signo = this.ctl.load(this.off + S_SIGNO);
    const trapno = this.ctl.u64(this.off + S_TRAPNO);
    const vector = trapno < 32 ? trapno : 13;
    const addr = this.ctl.u64(this.off + S_ADDR);
    const err = this.ctl.u64(this.off + S_ERR) % 2 ** 32;
    const rip = this.reg('rip');
    const inUser = addr >= USER_START && addr < this.spaceSize;
    if (signo === SIGILL && this.ctl.load(this.off + S_SICODE) === SI_KERNEL && trapno === 0) {
      // This host kernel refuses some unassigned system-call numbers (335 among them) with SIGILL
      // before seccomp sees them, and the number is lost (rax is -1). The call is as unknown to the
      // kernel as to Linux: it answers ENOSYS, counted under a number no table has.
      this.setReg('rax', UNKNOWN_SYSCALL);
      return { kind: 'syscall' };
    }
    if ((signo === SIGSEGV || signo === SIGBUS) && (vector === 14 || signo === SIGBUS) && inUser) {
      return { kind: 'memfault', rip, gpa: addr, write: (err & 2) !== 0 };
    }
    if (signo === SIGBUS && vector !== 17) return { kind: 'memfault', rip, gpa: inUser ? addr : null, write: null };
    return { kind: 'exception', vector, errorCode: vector === 14 || vector === 13 || vector === 17 ? err : null, rip, cr2: vector === 14 ? addr : 0 };
  }
}
