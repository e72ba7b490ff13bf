/**
 * Serving a threaded program: the kernel's thread waits on the doorbell, handles each vCPU's posted
 * exit in turn (so kernel state has one owner), answers parked calls when their wait ends, and lets
 * each vCPU's worker run again. See threads.ts for the model and mailbox.ts for the hand-off.
 */
import { nap } from './nap.js';
import { HostWatcher, type HostInterest } from './hostwatch.js';
import { E } from '../abi/errno.js';
import { kickTarget } from '../platform/kick.js';
import type { Kernel } from './kernel.js';
import { Doorbell, ST, type Slot } from './mailbox.js';
import { handleExit, type TaskEnd } from './task.js';
import type { Thread, Threads } from './threads.js';
import { exitedStatus, signaledStatus } from './procs.js';
import { signalName } from '../abi/signals.js';

export interface ThreadSlots {
  slotOf(t: Thread): Slot;
  readonly doorbell: Doorbell;
  /** Whether threads wait for one of the --cpus places to run (then running ones get time slices). */
  contended?(): boolean;
  /** Nothing to handle right now: do deferred work (close ended processes' machines, make spares). */
  idle?(): void;
}

/**
 * A time slice: while threads wait for a place to run guest code, every running thread is kicked out
 * this often, so that one that never makes a system call (a spinning loop) cannot keep its place.
 */
const SLICE_MS = 20;

const IDLE_MS = 50; // the longest the kernel sleeps without a doorbell (stop requests, timers)
const RETRY_MS = 10; // how often calls parked for host I/O are retried

/** Make a running thread leave the program (before its worker has run, requestExit alone does). */
export function kickThread(t: Thread, s: Slot): void {
  t.cpu.requestExit();
  if (s.thread) kickTarget(t.cpu.kickTarget(BigInt(s.thread)));
}

function stopAll(threads: Threads, slots: ThreadSlots, all: Thread[]): void {
  for (const t of all) {
    const s = slots.slotOf(t);
    s.set(ST.TERMINATE);
    if (!s.gone) kickThread(t, s); // a gone worker's thread may not exist any more
  }
  // Wait (briefly) until every vCPU has left KVM_RUN, before the machine is torn down.
  const until = performance.now() + 2000;
  while (all.some((t) => !slots.slotOf(t).gone) && performance.now() < until) {
    for (const t of all) {
      const s = slots.slotOf(t);
      if (!s.gone) kickThread(t, s);
    }
    nap(5);
  }
  void threads;
}

/** A pause (API: pause, checkpoint, stats): asked for by paused(), served by pause() once all are still. */
export interface PauseHooks {
  paused(): boolean;
  pause(): 'resume' | TaskEnd;
}

export function serveThreads(k: Kernel, threads: Threads, slots: ThreadSlots, hooks?: PauseHooks): TaskEnd {
  const everyone: Thread[] = [];
  const procs = k.procs;
  /**
   * A process other than the first ended (exit_group, a fatal signal): it becomes a zombie and the
   * sandbox goes on. The first process's end is the sandbox's.
   */
  const processEnded = (t: Thread, e: TaskEnd): TaskEnd | null => {
    if (!procs || t.k === procs.main || (e.kind !== 'exited' && e.kind !== 'killed')) return e;
    procs.exit(t.k, e.kind === 'exited' ? exitedStatus(e.status) : signaledStatus(e.signal));
    return null;
  };
  /** The first process ended while another's call was handled (a signal it could not take). */
  const initEnd = (): TaskEnd | null => {
    const st = procs?.main.zombie?.status;
    if (st === undefined) return null;
    return (st & 0x7f) !== 0 ? { kind: 'killed', signal: st & 0x7f, reason: `${signalName(st & 0x7f)}: the sandbox's program was killed` } : { kind: 'exited', status: (st >> 8) & 0xff };
  };
  const started = (): void => {
    for (const t of threads.unstarted) everyone.push(t);
    threads.startPending();
  };
  /** Made when a parked call first waits on a host fd (see hostwatch.ts). */
  let watcher: HostWatcher | null = null;
  const end = (e: TaskEnd): TaskEnd => {
    watcher?.close();
    stopAll(threads, slots, everyone);
    return e;
  };
  /** Handle `t`'s posted exit; a TaskEnd when the program ends. */
  const handlePosted = (t: Thread, s: Slot): TaskEnd | null => {
    threads.switchTo(t.k, t);
    const exit = s.get();
    t.cpu.noteExit(exit.kind);
    const r = handleExit(t.k, t.cpu, exit);
    return afterExit(t, r, s);
  };
  const afterExit = (t: Thread, r: ReturnType<typeof handleExit>, s: Slot): TaskEnd | null => {
    if (r === null || r.kind === 'threaded') {
      if (threads.byTid.get(t.tid) === t) t.ready = true; // (unless its process ended meanwhile)
    } else if (r.kind === 'park') {
      // The thread waits; its worker sleeps in its slot until the call is answered.
    } else if (r.kind === 'thread-exit') {
      threads.exitThread(t.k, t);
      t.cpu.release?.();
      s.set(ST.TERMINATE);
      if (threads.countOf(t.k) === 0) return processEnded(t, { kind: 'exited', status: r.status });
    } else {
      return processEnded(t, r);
    }
    return initEnd();
  };
  /**
   * Pause: let no thread run again, make the running ones leave the guest and handle their exits, until
   * every thread is answered-but-held (ready) or waiting in a call (parked); then serve the pause.
   */
  const pauseAll = (h: PauseHooks): TaskEnd | null => {
    for (;;) {
      if (k.stop.stopForGood?.() ?? k.stop.stopRequested()) return { kind: 'stopped' };
      const seen = slots.doorbell.value;
      let running = false;
      for (const t of [...threads.byTid.values()]) {
        if (t.park || t.ready || threads.byTid.get(t.tid) !== t) continue;
        const s = slots.slotOf(t);
        if (s.state === ST.EXITED) {
          const e = handlePosted(t, s);
          if (e) return e;
        } else {
          running = true;
          kickThread(t, s);
        }
      }
      if (threads.unstarted.length) started();
      if (!running) break;
      slots.doorbell.wait(seen, 5);
    }
    const p = h.pause();
    return p === 'resume' ? null : p;
  };
  started();
  let lastRetry = 0;
  let lastSlice = performance.now();
  for (;;) {
    if (k.stop.stopRequested()) return end({ kind: 'stopped' });
    const seen = slots.doorbell.value;
    if (threads.unstarted.length) started();
    if (hooks?.paused()) {
      const e = pauseAll(hooks);
      if (e) return end(e);
      continue;
    }
    // Let answered threads run (not those of a stopped process: they wait for SIGCONT).
    for (const t of threads.byTid.values()) {
      if (t.ready && !t.k.stopped) {
        t.ready = false;
        slots.slotOf(t).set(ST.RESUME);
      }
    }
    // Handle posted exits.
    let handled = false;
    for (const t of [...threads.byTid.values()]) {
      if (threads.byTid.get(t.tid) !== t) continue; // its process ended while this pass ran
      const s = slots.slotOf(t);
      if (s.state !== ST.EXITED || t.park || t.ready) continue;
      handled = true;
      const e = handlePosted(t, s);
      if (e) return end(e);
    }
    // Parked calls: time-outs, and retries of calls waiting for I/O; interval timers.
    const now = performance.now();
    const nextTimer = procs?.fireTimers(now) ?? Infinity;
    const fromHost = k.stop.takeSignals?.() ?? 0;
    if (fromHost && procs) procs.signalFromHost(fromHost);
    const toMain = k.stop.takeMainSignals?.() ?? 0;
    if (toMain && procs) procs.signalFromHost(toMain, true);
    {
      const e = initEnd();
      if (e) return end(e);
    }
    const retry = handled || now - lastRetry >= RETRY_MS || (watcher?.rang() ?? false);
    if (retry) lastRetry = now;
    for (const t of [...threads.byTid.values()]) {
      const p = t.park;
      if (!p || threads.byTid.get(t.tid) !== t) continue;
      if (p.deadline <= now) {
        // A pselect6/ppoll/epoll_pwait that times out puts the caller's mask back.
        if (p.kind === 'retry' && p.savedMask !== undefined) {
          if (t.k.curThread === t) t.k.signals.blocked = p.savedMask;
          else t.blocked = p.savedMask;
        }
        threads.answer(t, p.kind === 'futex' ? -E.ETIMEDOUT : p.kind === 'sleep' ? 0 : p.kind === 'vfork' ? p.child : p.onTimeout);
        continue;
      }
      if (p.kind === 'retry' && retry) {
        threads.switchTo(t.k, t);
        t.park = null;
        t.k.retrying = true;
        let r: ReturnType<typeof handleExit>;
        try {
          r = handleExit(t.k, t.cpu, { kind: 'syscall' });
        } finally {
          t.k.retrying = false;
        }
        if (r !== null && r.kind === 'park') {
          t.park = { ...p }; // still waiting: keep the original deadline
          continue;
        }
        const e = afterExit(t, r, slots.slotOf(t));
        if (e) return end(e);
      }
    }
    if ([...threads.byTid.values()].some((t) => t.ready && !t.k.stopped) || threads.unstarted.length) continue;
    const contended = slots.contended?.() ?? false;
    if (contended && now - lastSlice >= SLICE_MS) {
      lastSlice = now;
      for (const t of threads.byTid.values()) {
        const s = slots.slotOf(t);
        if (!t.park && !t.ready && s.state === ST.RUNNING && !s.gone) kickThread(t, s);
      }
    }
    slots.idle?.();
    if (slots.doorbell.value !== seen) continue; // an exit was posted meanwhile
    const parkedIo = [...threads.byTid.values()].some((t) => t.park?.kind === 'retry');
    // Host fds that parked calls wait on: the watcher rings the doorbell when one is ready.
    const host: HostInterest[] = [];
    for (const t of threads.byTid.values()) if (t.park?.kind === 'retry' && t.park.host) host.push(...t.park.host);
    if (host.length && !watcher) watcher = new HostWatcher(slots.doorbell.sab);
    watcher?.update(host);
    const wait = Math.max(0, Math.min(IDLE_MS, threads.nextDeadline() - performance.now(), parkedIo ? RETRY_MS : IDLE_MS, contended ? SLICE_MS : IDLE_MS, nextTimer - performance.now()));
    slots.doorbell.wait(seen, wait);
  }
}
