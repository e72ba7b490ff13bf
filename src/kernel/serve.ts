/**
 * Serving a threaded program: the kernel's thread waits on the doorbell, handles each vCPU's posted
 * exit in turn (so kernel state has one owner), answers parked calls when their wait ends, and lets
 * each vCPU's worker run again. See threads.ts for the model and mailbox.ts for the hand-off.
 */
import { nap } from './nap.js';
import { E } from '../abi/errno.js';
import { kickTarget } from '../platform/kick.js';
import type { Kernel } from './kernel.js';
import { Doorbell, ST, type Slot } from './mailbox.js';
import { handleExit, type TaskEnd } from './task.js';
import type { Thread, Threads } from './threads.js';

export interface ThreadSlots {
  slotOf(t: Thread): Slot;
  readonly doorbell: Doorbell;
}

const IDLE_MS = 50; // the longest the kernel sleeps without a doorbell (stop requests, timers)
const RETRY_MS = 10; // how often calls parked for host I/O are retried

/** Make a running thread leave the program (before its worker has run, requestExit alone does). */
function kickThread(t: Thread, s: Slot): void {
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
  const started = (): void => {
    for (const t of threads.unstarted) everyone.push(t);
    threads.startPending();
  };
  const end = (e: TaskEnd): TaskEnd => {
    stopAll(threads, slots, everyone);
    return e;
  };
  /** Handle `t`'s posted exit; a TaskEnd when the program ends. */
  const handlePosted = (t: Thread, s: Slot): TaskEnd | null => {
    threads.switchTo(k, t);
    const exit = s.get();
    t.cpu.noteExit(exit.kind);
    const r = handleExit(k, t.cpu, exit);
    if (r === null || r.kind === 'threaded') {
      t.ready = true;
    } else if (r.kind === 'park') {
      // The thread waits; its worker sleeps in its slot until the call is answered.
    } else if (r.kind === 'thread-exit') {
      threads.exitThread(k, t);
      t.cpu.release?.();
      s.set(ST.TERMINATE);
      if (threads.count === 0) return { kind: 'exited', status: r.status };
    } else {
      return r;
    }
    return null;
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
        if (t.park || t.ready) continue;
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
  for (;;) {
    if (k.stop.stopRequested()) return end({ kind: 'stopped' });
    const seen = slots.doorbell.value;
    if (threads.unstarted.length) started();
    if (hooks?.paused()) {
      const e = pauseAll(hooks);
      if (e) return end(e);
      continue;
    }
    // Let answered threads run.
    for (const t of threads.byTid.values()) {
      if (t.ready) {
        t.ready = false;
        slots.slotOf(t).set(ST.RESUME);
      }
    }
    // Handle posted exits.
    let handled = false;
    for (const t of [...threads.byTid.values()]) {
      const s = slots.slotOf(t);
      if (s.state !== ST.EXITED || t.park || t.ready) continue;
      handled = true;
      const e = handlePosted(t, s);
      if (e) return end(e);
    }
    // Parked calls: time-outs, and retries of calls waiting for I/O.
    const now = performance.now();
    const retry = handled || now - lastRetry >= RETRY_MS;
    if (retry) lastRetry = now;
    for (const t of [...threads.byTid.values()]) {
      const p = t.park;
      if (!p) continue;
      if (p.deadline <= now) {
        threads.answer(t, p.kind === 'futex' ? -E.ETIMEDOUT : p.kind === 'sleep' ? 0 : p.onTimeout);
        continue;
      }
      if (p.kind === 'retry' && retry) {
        threads.switchTo(k, t);
        t.park = null;
        const r = handleExit(k, t.cpu, { kind: 'syscall' });
        if (r === null || r.kind === 'threaded') t.ready = true;
        else if (r.kind === 'park') t.park = { ...p }; // still waiting: keep the original deadline
        else if (r.kind === 'thread-exit') {
          threads.exitThread(k, t);
          slots.slotOf(t).set(ST.TERMINATE);
          if (threads.count === 0) return end({ kind: 'exited', status: r.status });
        } else return end(r);
      }
    }
    if ([...threads.byTid.values()].some((t) => t.ready) || threads.unstarted.length) continue;
    const parkedIo = [...threads.byTid.values()].some((t) => t.park?.kind === 'retry');
    const wait = Math.max(0, Math.min(IDLE_MS, threads.nextDeadline() - performance.now(), parkedIo ? RETRY_MS : IDLE_MS));
    slots.doorbell.wait(seen, wait);
  }
}
