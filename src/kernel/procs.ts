/**
 * The sandbox's processes: the table of thread groups (each a Kernel: its own address space, fds,
 * signal dispositions), their parent/child links, process groups and sessions, zombies and reaping,
 * and signals sent from one process to another.
 *
 * Every process is served by the same kernel thread (serve.ts), one exit at a time, so this table has
 * one owner. What needs the platform (a machine for a new process, stopping a process's vCPUs,
 * releasing its memory) is asked of the ProcessHost, which the worker that runs the sandbox provides.
 */
import { releaseMappedFiles } from './vfs/mapholds.js';
import { releaseProcessLocks } from './files/locks.js';
import { E } from '../abi/errno.js';
import { SIG, defaultAction } from '../abi/signals.js';
import type { Context } from '../platform/platform.js';
import type { Kernel } from './kernel.js';
import { SIG_DFL, SIG_IGN } from './signal-state.js';
import { CLD_EXITED, CLD_KILLED, SI_USER, type SigInfo } from './signal-frame.js';
import type { Thread, ThreadStart, Threads } from './threads.js';
import { deliverPending } from './task.js';
import { firePosixTimers } from './sys/posixtimer.js';

/** SA_NOCLDWAIT: children of a process with this flag on SIGCHLD are reaped as they end. */
const SA_NOCLDWAIT = 2n;
/** SA_NOCLDSTOP: no SIGCHLD when a child stops or continues. */
const SA_NOCLDSTOP = 1n;
const CLD_STOPPED = 5;
const CLD_CONTINUED = 6;
const SA_RESTART = 0x10000000n;

/** What the kernel asks of whoever runs the sandbox (the worker: it owns the platforms and the vCPU workers). */
export interface ProcessHost {
  /**
   * A child of `parent` as fork makes it: a machine of its own, a copy of the address space (private
   * memory copied, shared memory shared), and a first context with `cpu`'s registers and FPU state.
   * Returns the child's space, machine and context, or -errno.
   */
  forkSpace(parent: Kernel, start: ThreadStart, cpu: Context): ForkedSpace | number;
  /** Stop `t`'s vCPU for good (its worker ends). */
  stopThread(t: Thread): void;
  /**
   * A machine and empty address space for process `k` (a vfork child that execs leaves its parent's
   * memory), with a first context to load the new program's registers into.
   */
  newSpace(k: Kernel): ForkedSpace | number;
  /** Move thread `t` to context `cpu` (of another machine): its old worker stops, a new one runs it. */
  moveThread(t: Thread, cpu: Context): void;
  /** Give back what newSpace made (the exec failed before it was used). */
  dropSpace(s: ForkedSpace): void;
  /** Make `t` leave guest code soon, so that its exit is handled (a signal for it to deliver). */
  kick(t: Thread): void;
  /** Release process `k`'s machine and memory (its threads are gone). */
  release(k: Kernel): void;
  /** The sandbox's first process ended or was killed: the whole sandbox ends. */
  initEnded(status: number): void;
}

export interface ForkedSpace {
  space: Kernel['space'];
  cpu: Context;
  /** What the host runs the child on (Kernel.machine). */
  machine: unknown;
}

/** Wait statuses, as wait4 reports them. */
export const exitedStatus = (code: number): number => (code & 0xff) << 8;
export const signaledStatus = (sig: number): number => sig & 0x7f;

export class ProcessTable {
  readonly byPid = new Map<number, Kernel>();
  /** The most processes (live and zombie) the sandbox may hold: --pids. */
  limit: number;

  /**
   * The reaper orphans go to (pid 1): the program itself, or (--init) a process of the kernel's own
   * that runs no code, reaps every orphan as it ends and ignores every signal, as tini does.
   */
  readonly init: Kernel;
  /** Whether init is the kernel's own (--init) rather than the program. */
  readonly kernelInit: boolean;

  constructor(
    /** The sandbox's program: the sandbox ends when it does, with its status. */
    readonly main: Kernel,
    readonly threads: Threads,
    readonly host: ProcessHost,
    limit: number,
    kernelInit: Kernel | null = null,
  ) {
    this.limit = limit;
    this.foreground = main.pgid;
    this.init = kernelInit ?? main;
    this.kernelInit = kernelInit !== null;
    if (kernelInit) {
      this.add(kernelInit);
      main.parent = kernelInit;
      kernelInit.children.add(main);
    }
    this.add(main);
  }

  /**
   * Processes started from outside (spawn.ts: the OCI runtime's exec) have no parent in the sandbox:
   * as each ends it is reaped and this hears its wait status.
   */
  onDetachedExit: ((k: Kernel, status: number) => void) | null = null;

  /** The terminal's foreground process group (tcsetpgrp), when the sandbox's stdin is a terminal. */
  foreground = 1;

  /** tcsetpgrp: the group must exist in the sandbox (EPERM otherwise, as for another session's group). */
  setForeground(pgid: number): number {
    if (!this.live().some((p) => p.pgid === pgid)) return -E.EPERM;
    this.foreground = pgid;
    return 0;
  }

  add(k: Kernel): void {
    this.byPid.set(k.identity.pid, k);
    k.procs = this;
  }

  get count(): number {
    return this.byPid.size;
  }

  /** Processes that have not ended. */
  live(): Kernel[] {
    return [...this.byPid.values()].filter((k) => !k.zombie);
  }

  /** The process whose thread group id is `pid`, if it has not been reaped. */
  get(pid: number): Kernel | undefined {
    return this.byPid.get(pid);
  }

  /**
   * Process `k` ends with wait status `status` (exit_group, a fatal signal): its threads stop, its
   * files close, its memory goes, its children go to init, and its parent hears of it (SIGCHLD, or an
   * automatic reap when the parent ignores SIGCHLD or set SA_NOCLDWAIT).
   */
  exit(k: Kernel, status: number): void {
    if (k.zombie) return;
    // The caller may be another process's system call (kill): its memory is bound again after.
    const callers = k.mem.bound;
    try {
      this.exitProcess(k, status);
    } finally {
      k.mem.bind(callers);
    }
  }

  private exitProcess(k: Kernel, status: number): void {
    k.zombie = { status };
    for (const t of this.threads.of(k)) {
      this.host.stopThread(t);
      this.threads.byTid.delete(t.tid);
    }
    this.releaseVforkParent(k);
    k.activate();
    k.writeBackSharedMaps();
    k.sharedFileMaps.clear();
    k.fds.closeAll();
    k.close();
    releaseMappedFiles(k);
    releaseProcessLocks(k);
    this.host.release(k);
    k.released = true;
    if (k === this.main) {
      this.host.initEnded(status);
      return;
    }
    // Orphans go to init; a zombie orphan is init's to reap.
    for (const c of k.children) {
      c.parent = this.init;
      this.init.children.add(c);
      if (c.zombie) this.notifyParent(c);
    }
    k.children.clear();
    if (!k.parent) {
      this.byPid.delete(k.identity.pid);
      this.onDetachedExit?.(k, status);
      return;
    }
    this.notifyParent(k);
  }

  private notifyParent(k: Kernel): void {
    const p = k.parent;
    if (!p || p.zombie) return;
    if (p === this.init && this.kernelInit) {
      this.reap(k); // the kernel's init reaps every child as it ends
      return;
    }
    const act = p.signals.get(SIG.SIGCHLD);
    if (k.exitSignal === SIG.SIGCHLD && (act.handler === SIG_IGN || act.flags & SA_NOCLDWAIT)) {
      this.reap(k); // nobody will wait for it
      return;
    }
    if (k.exitSignal > 0) {
      const st = k.zombie!.status;
      const killed = (st & 0x7f) !== 0;
      this.signal(p, k.exitSignal, { signo: k.exitSignal, code: killed ? CLD_KILLED : CLD_EXITED, pid: k.identity.pid, uid: k.identity.uid, status: killed ? st & 0x7f : (st >> 8) & 0xff });
    }
  }

  /** Remove a zombie from the table (wait4 collected it). */
  reap(k: Kernel): void {
    this.byPid.delete(k.identity.pid);
    k.parent?.children.delete(k);
  }

  /** A vfork parent waits until its child execs or ends: let it go. */
  releaseVforkParent(child: Kernel): void {
    for (const t of this.threads.byTid.values()) {
      if (t.park?.kind === 'vfork' && t.park.child === child.identity.pid) this.threads.answer(t, child.identity.pid);
    }
  }

  /**
   * Send `sig` to process `target` (kill). Ignored signals are dropped; a default action that ends
   * the process ends it now; anything else is left pending for a thread that does not block it, which
   * is woken (a waiting call ends with EINTR, or restarts under SA_RESTART) or made to leave guest code.
   * The sandbox's init, like Linux's pid 1 in its namespace, ignores signals it has no handler for.
   */
  signal(target: Kernel, sig: number, info: SigInfo | null): number {
    if (sig === 0 || target.zombie) return 0;
    if (target === this.init && this.kernelInit) return 0; // the kernel's init takes no signals
    const act = target.signals.get(sig);
    const isInit = target === this.init;
    if (sig === SIG.SIGKILL) {
      if (!isInit) this.exit(target, signaledStatus(sig));
      return 0;
    }
    // SIGCONT continues a stopped process whatever its disposition; SIGSTOP stops one always.
    if (sig === SIG.SIGCONT) this.cont(target);
    if (sig === SIG.SIGSTOP) {
      if (!isInit) this.stop(target, sig);
      return 0;
    }
    const blocked = target.signals.isBlocked(sig) && this.threads.of(target).every((t) => this.blockedIn(t, sig));
    if (act.handler === SIG_IGN) return 0;
    if (act.handler === SIG_DFL) {
      const d = defaultAction(sig);
      if (d === 'stop' && !isInit && !blocked) this.stop(target, sig);
      if (d === 'ignore' || d === 'stop' || d === 'continue') return 0;
      if (isInit) return 0;
      if (!blocked) {
        this.exit(target, signaledStatus(sig));
        return 0;
      }
    }
    target.signals.pending |= 1n << BigInt(sig - 1);
    target.signals.pendingInfo.set(sig, info ?? { signo: sig, code: SI_USER });
    if (!blocked) this.wakeFor(target, sig, act.flags);
    return 0;
  }

  /** Is `sig` blocked in thread `t` (its mask lives in the kernel while it is the process's current thread)? */
  private blockedIn(t: Thread, sig: number): boolean {
    const mask = t.k.curThread === t ? t.k.signals.blocked : t.blocked;
    return (mask & (1n << BigInt(sig - 1))) !== 0n;
  }

  /**
   * Get a thread of `k` that does not block `sig` to deliver it: a waiting one ends its call (EINTR,
   * or a restart under SA_RESTART) and gets the frame now; a running one is made to leave guest code,
   * and its exit delivers it.
   */
  private wakeFor(k: Kernel, sig: number, flags: bigint): void {
    const candidates = this.threads.of(k).filter((t) => !this.blockedIn(t, sig));
    const t = candidates.find((c) => c.park && c.park.kind !== 'vfork') ?? candidates.find((c) => c.ready && !c.park);
    if (t) {
      let savedMask: bigint | null = null;
      const p = t.park;
      if (p) {
        if (p.kind === 'retry' && flags & SA_RESTART && p.savedMask === undefined) {
          t.park = null;
          t.cpu.restartSyscall();
          t.ready = true;
        } else {
          this.threads.answer(t, -E.EINTR);
          t.cpu.syscallReturnToRegs();
          // (pselect6, ppoll, epoll_pwait with a mask of their own: never restarted; the frame restores the caller's mask)
          if (p.kind === 'signal' || (p.kind === 'retry' && p.savedMask !== undefined)) savedMask = p.savedMask ?? null;
        }
      } else {
        t.cpu.syscallReturnToRegs();
      }
      this.deliverNow(t, savedMask);
      return;
    }
    const running = candidates.find((c) => !c.ready && !c.park);
    if (running) this.host.kick(running);
  }

  /** Build `t`'s signal frame now (it is stopped), then go back to the thread being served. */
  private deliverNow(t: Thread, savedMask: bigint | null): void {
    const cur = this.threads.current;
    this.threads.switchTo(t.k, t);
    const end = deliverPending(t.k, t.cpu, savedMask);
    if (cur !== t && this.threads.byTid.has(cur.tid)) this.threads.switchTo(cur.k, cur);
    else cur.k.activate();
    if (end) this.exit(t.k, end.kind === 'killed' ? signaledStatus(end.signal) : exitedStatus(0));
  }

  /**
   * Signals from the host (bit N: signal N): to the foreground process group, as a terminal sends
   * them. The sandbox's program as pid 1 with no handler for a terminating one ends by it (the host's
   * kill of a container), where Linux's namespace init would ignore it.
   */
  signalFromHost(mask: number, mainOnly = false): void {
    for (let sig = 1; sig < 32; sig++) {
      if (!(mask & (1 << sig))) continue;
      // mainOnly: the program's first process alone (runc's kill of a container without --all).
      const group = mainOnly ? [] : this.group(this.foreground);
      const targets = group.length ? group : [this.main];
      for (const t of targets) {
        if (t === this.init && !this.kernelInit) {
          const act = t.signals.get(sig);
          const d = defaultAction(sig);
          if (act.handler === SIG_DFL && (d === 'term' || d === 'core')) {
            this.exit(t, signaledStatus(sig));
            continue;
          }
        }
        this.signal(t, sig, { signo: sig, code: 0x80 /* SI_KERNEL */ });
      }
    }
  }

  /** Fire the interval timers (SIGALRM) and POSIX timers that are due; returns the next deadline (ms), or Infinity. */
  fireTimers(now: number): number {
    let next = Infinity;
    for (const k of this.live()) {
      next = Math.min(next, firePosixTimers(this, k, now));
      const t = k.itimer;
      if (!t) continue;
      if (t.deadline <= now) {
        k.itimer = t.intervalMs > 0 ? { deadline: now + t.intervalMs, intervalMs: t.intervalMs } : null;
        this.signal(k, SIG.SIGALRM, { signo: SIG.SIGALRM, code: 0x80 /* SI_KERNEL */ });
      }
      if (k.itimer && k.itimer.deadline < next) next = k.itimer.deadline;
    }
    return next;
  }

  /**
   * Job control: process `k` stops (SIGSTOP, or SIGTSTP/SIGTTIN/SIGTTOU by default). Its running
   * threads are kicked out of guest code and none is resumed until SIGCONT; its parent is told
   * (SIGCHLD with CLD_STOPPED, unless SA_NOCLDSTOP) and wait reports it under WUNTRACED.
   */
  stop(k: Kernel, sig: number): void {
    if (k.zombie || k.stopped) return;
    k.stopped = sig;
    k.stopReport = 'stopped';
    for (const t of this.threads.of(k)) if (!t.park && !t.ready) this.host.kick(t);
    this.notifyJob(k, CLD_STOPPED, sig);
  }

  /** SIGCONT: a stopped process runs again; its parent is told (CLD_CONTINUED) and wait reports it under WCONTINUED. */
  cont(k: Kernel): void {
    if (k.zombie || !k.stopped) return;
    k.stopped = 0;
    k.stopReport = 'continued';
    this.notifyJob(k, CLD_CONTINUED, SIG.SIGCONT);
  }

  private notifyJob(k: Kernel, code: number, status: number): void {
    const p = k.parent;
    if (!p || p.zombie || (p === this.init && this.kernelInit)) return;
    if (p.signals.get(SIG.SIGCHLD).flags & SA_NOCLDSTOP) return;
    this.signal(p, SIG.SIGCHLD, { signo: SIG.SIGCHLD, code, pid: k.identity.pid, uid: k.identity.uid, status });
  }

  /** Processes in group `pgid`. */
  group(pgid: number): Kernel[] {
    return this.live().filter((k) => k.pgid === pgid);
  }
}
