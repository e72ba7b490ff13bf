/**
 * Threads: each thread of the program is a vCPU of the same VM, sharing its memory window and this
 * kernel. The kernel stays single-owner: the vCPUs run in worker threads of their own and hand every
 * exit to the kernel's thread (serve.ts), so kernel state is never touched concurrently and a
 * memory-map change made by one thread is in place before any other thread's next exit is handled.
 *
 * This module keeps the thread table and the futex wait queues. A thread that waits (futex, sleep,
 * a blocking read) is "parked": its system call stays unanswered, its vCPU worker sleeps in
 * Atomics.wait (no CPU), and the kernel answers the call when the wait ends.
 */
import { E } from '../abi/errno.js';
import type { HostInterest } from './hostwatch.js';
import type { Context } from '../platform/platform.js';
import type { RegName } from '../platform/regs.js';
import type { Kernel } from './kernel.js';
import type { SyscallResult } from './types.js';

/** Why a parked thread waits, and how its call ends. */
export type Park =
  | { kind: 'futex'; uaddr: number; bitset: number; deadline: number; key?: string } // deadline: ms (performance.now), Infinity; key: a shared futex's (see futexKey)
  | { kind: 'sleep'; deadline: number }
  | { kind: 'retry'; deadline: number; onTimeout: number; host?: HostInterest[]; savedMask?: bigint } // re-run the call when anything changes (blocking I/O, poll, wait4); host: the host fds whose events can answer it; savedMask: the mask before a pselect6/ppoll/epoll_pwait's own, put back when the call ends
  | { kind: 'vfork'; deadline: number; child: number } // vfork: until the child execs or exits (answered with its pid)
  | { kind: 'signal'; deadline: number; onTimeout: number; savedMask: bigint | null }; // rt_sigsuspend, pause: until a signal is delivered

export interface Thread {
  tid: number;
  /** The process (thread group) the thread belongs to. */
  k: Kernel;
  cpu: Context;
  /** CLONE_CHILD_CLEARTID / set_tid_address: cleared and futex-woken when the thread exits. */
  clearTid: number;
  robustList: number;
  park: Park | null;
  /** Set when the kernel answered the thread's exit: its worker may run the vCPU again. */
  ready: boolean;
  /** A blocking open of a FIFO this thread waits in (the end it made, kept across the call's retries). */
  fifoWait?: import('./files/fifo.js').FifoWait | null;
  /** The thread's signal mask and alternate stack (per thread, as on Linux) while it is not current. */
  blocked: bigint;
  altStack: { sp: bigint; flags: number; size: bigint };
}

/** What the worker that owns the machine offers: a new vCPU for a new thread. */
/** A new thread's first registers: the parent's, as the syscall returns, with rax 0 and its own stack. */
export interface ThreadStart {
  regs: Partial<Record<RegName, bigint>>;
  fsBase: number;
}

export interface VcpuFactory {
  /**
   * A vCPU of process `k`'s machine for a new thread, starting with `start` and the FPU state of
   * `parent`: a vCPU whose thread ended is reused (KVM cannot destroy one), else a new one; null when
   * all are in use.
   */
  create(k: Kernel, start: ThreadStart, parent: Context): Context | null;
  /** Start running a vCPU in a thread of its own (threaded mode). */
  start(t: Thread): void;
}

export const CLONE_VM = 0x100;
export const CLONE_FS = 0x200;
export const CLONE_FILES = 0x400;
export const CLONE_SIGHAND = 0x800;
export const CLONE_THREAD = 0x10000;
export const CLONE_SYSVSEM = 0x40000;
export const CLONE_SETTLS = 0x80000;
export const CLONE_PARENT_SETTID = 0x100000;
export const CLONE_CHILD_CLEARTID = 0x200000;
export const CLONE_CHILD_SETTID = 0x1000000;
const CLONE_THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
/** Flags Linux accepts and ignores here: CLONE_DETACHED (musl's pthread_create passes it), CLONE_UNTRACED, CLONE_IO. */
const CLONE_IGNORED = 0x400000 | 0x800000 | 0x80000000;
const CLONE_KNOWN = CLONE_THREAD_FLAGS | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_IGNORED;

export interface CloneArgs {
  flags: number;
  stack: number;
  ptid: number;
  ctid: number;
  tls: number;
}

export class Threads {
  readonly byTid = new Map<number, Thread>();
  private nextTid = 2;
  /** True once a second thread exists: vCPUs then run in workers of their own (serve.ts). */
  threaded = false;
  current: Thread;
  private readonly factory: VcpuFactory;
  /** Threads created but not yet started (the server starts them when it takes over). */
  readonly unstarted: Thread[] = [];

  constructor(k: Kernel, main: Context, factory: VcpuFactory) {
    this.factory = factory;
    this.current = { tid: k.identity.pid, k, cpu: main, clearTid: 0, robustList: 0, park: null, ready: false, blocked: 0n, altStack: { sp: 0n, flags: 2, size: 0n } };
    k.curThread = this.current;
    this.byTid.set(k.identity.pid, this.current);
    this.nextTid = k.identity.pid + 1;
  }

  /** The tid the next thread gets (a checkpoint records it). */
  get nextThreadId(): number {
    return this.nextTid;
  }

  /** A new id from the one space threads and processes share (Linux's pids). */
  allocId(): number {
    return this.nextTid++;
  }

  /** The threads of process `k`. */
  of(k: Kernel): Thread[] {
    return [...this.byTid.values()].filter((t) => t.k === k);
  }

  /** How many threads process `k` has. */
  countOf(k: Kernel): number {
    let n = 0;
    for (const t of this.byTid.values()) if (t.k === k) n++;
    return n;
  }

  /** A context for a new thread on process `k`'s machine (a vfork child's runs on its parent's). */
  newContext(k: Kernel, start: ThreadStart, parent: Context): Context | null {
    return this.factory.create(k, start, parent);
  }

  /** The first thread of a new process (fork): its registers are set; it starts with the server. */
  addProcess(k: Kernel, cpu: Context, blocked: bigint): Thread {
    const t: Thread = { tid: k.identity.pid, k, cpu, clearTid: 0, robustList: 0, park: null, ready: true, blocked, altStack: { sp: 0n, flags: 2, size: 0n } };
    k.curThread = t;
    k.signals.blocked = blocked;
    this.byTid.set(t.tid, t);
    this.unstarted.push(t);
    this.threaded = true;
    return t;
  }

  /**
   * Replace the thread table with restored threads (a checkpoint of a threaded program): every thread
   * is unstarted, `current` is the one whose signal state the kernel holds.
   */
  restore(list: Thread[], nextTid: number, current: number): void {
    this.byTid.clear();
    for (const t of list) this.byTid.set(t.tid, t);
    this.current = this.byTid.get(current) ?? list[0]!;
    this.current.k.curThread = this.current;
    this.unstarted.splice(0, this.unstarted.length, ...list);
    this.nextTid = nextTid;
    this.threaded = true;
  }

  get count(): number {
    return this.byTid.size;
  }

  /** clone/clone3 for a thread: a new vCPU continuing after the call, with its own stack and TLS. */
  clone(k: Kernel, args: CloneArgs): SyscallResult {
    const f = args.flags;
    if ((f & CLONE_THREAD_FLAGS) !== CLONE_THREAD_FLAGS) return -E.ENOSYS; // new processes: not supported
    if (f & ~(CLONE_KNOWN | 0xff)) return -E.EINVAL;
    if ((f & 0xff) !== 0) return -E.EINVAL; // exit signal: threads have none
    if (!args.stack) return -E.EINVAL;
    const parent = this.current.cpu;
    if (f & CLONE_SETTLS && (!Number.isSafeInteger(args.tls) || args.tls >= 2 ** 47)) return -E.EPERM;
    // The child continues where the parent will: after the syscall, rax = 0, on its own stack.
    const regs: Partial<Record<RegName, bigint>> = {};
    for (const r of ['rbx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r12', 'r13', 'r14', 'r15', 'rcx', 'r11'] as const) regs[r] = parent.regBig(r);
    regs.rax = 0n;
    regs.rsp = BigInt(args.stack);
    regs.rip = parent.regBig('rcx');
    regs.rflags = (parent.regBig('r11') & 0x254dd5n) | 0x202n;
    const cpu = this.factory.create(k, { regs, fsBase: f & CLONE_SETTLS ? args.tls : parent.fsBase }, parent);
    if (!cpu) return -E.EAGAIN; // every vCPU the VM may have runs a thread
    const tid = this.nextTid++;
    if (f & CLONE_PARENT_SETTID) k.mem.writeU32(args.ptid, tid);
    // A new thread inherits the mask of the thread that made it and starts with no alternate stack.
    const t: Thread = {
      tid,
      k,
      cpu,
      clearTid: f & CLONE_CHILD_CLEARTID ? args.ctid : 0,
      robustList: 0,
      park: null,
      ready: true,
      blocked: k.signals.blocked,
      altStack: { sp: 0n, flags: 2, size: 0n },
    };
    if (f & CLONE_CHILD_SETTID) k.mem.writeU32(args.ctid, tid);
    this.byTid.set(tid, t);
    this.unstarted.push(t);
    this.threaded = true;
    return tid;
  }

  /** Make `t` the thread whose system call or fault the kernel handles: its signal mask and altstack. */
  switchTo(_k: Kernel, t: Thread): void {
    this.current = t;
    const k = t.k;
    k.activate();
    const was = k.curThread;
    if (was === t) return;
    if (was) {
      was.blocked = k.signals.blocked;
      was.altStack = k.signals.altStack;
    }
    k.signals.blocked = t.blocked;
    k.signals.altStack = t.altStack;
    k.curThread = t;
  }

  startPending(): void {
    for (const t of this.unstarted.splice(0)) this.factory.start(t);
  }

  /** The current thread ends: clear its child-tid word and wake one waiter there, as Linux does. */
  exitThread(_k: Kernel, t: Thread): void {
    const k = t.k;
    k.activate();
    if (t.clearTid && k.mem.ok(t.clearTid, 4, 2)) {
      k.mem.writeU32(t.clearTid, 0);
      this.wake(k, t.clearTid, 1, 0xffffffff);
    }
    this.byTid.delete(t.tid);
  }

  // ------------------------------------------------------------------ futex

  /**
   * Wake up to `n` threads waiting on `uaddr` whose bitset meets `bitset`; returns how many. A futex
   * word is per address space, unless it is a shared one (`key`: a word in a MAP_SHARED mapping, used
   * without FUTEX_PRIVATE_FLAG), which every process mapping the same page reaches (Linux's
   * inode/offset futex keys): POSIX semaphores and process-shared mutexes between processes.
   */
  wake(k: Kernel, uaddr: number, n: number, bitset: number, key?: string): number {
    let woken = 0;
    for (const t of this.byTid.values()) {
      if (woken >= n) break;
      const p = t.park;
      if (p?.kind === 'futex' && this.sameWord(t, p, k, uaddr, key) && (p.bitset & bitset) !== 0) {
        this.answer(t, 0);
        woken++;
      }
    }
    return woken;
  }

  /** Does the futex wait `p` of thread `t` wait on the word `uaddr` of `k` (shared futex key `key`)? */
  private sameWord(t: Thread, p: { uaddr: number; key?: string }, k: Kernel, uaddr: number, key: string | undefined): boolean {
    if (key !== undefined && p.key === key) return true;
    return t.k.space === k.space && p.uaddr === uaddr;
  }

  /** Move up to `n` waiters from `from` to `to` (FUTEX_REQUEUE); the keys are the words' shared futex keys. */
  requeue(k: Kernel, from: number, to: number, n: number, fromKey?: string, toKey?: string): number {
    let moved = 0;
    for (const t of this.byTid.values()) {
      if (moved >= n) break;
      const p = t.park;
      if (p?.kind === 'futex' && this.sameWord(t, p, k, from, fromKey)) {
        p.uaddr = to;
        p.key = toKey;
        moved++;
      }
    }
    return moved;
  }

  /** Answer a parked thread's system call with `result`; the server resumes it. */
  answer(t: Thread, result: number): void {
    t.park = null;
    if (t.fifoWait) {
      // An open of a FIFO that waited ends without it (EINTR, a timeout): its end goes.
      t.fifoWait.file.discard();
      t.fifoWait = null;
    }
    t.cpu.completeSyscall(result);
    t.ready = true;
  }

  /** The earliest deadline among parked threads (ms, performance.now), or Infinity. */
  nextDeadline(): number {
    let d = Infinity;
    for (const t of this.byTid.values()) if (t.park && t.park.deadline < d) d = t.park.deadline;
    return d;
  }
}
