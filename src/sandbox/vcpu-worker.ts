/**
 * A thread's own worker (threaded programs), whatever the platform: run the guest, post each exit to
 * the kernel's thread, sleep until it answers, repeat. Runs no kernel code.
 *
 * Workers are pooled: starting one costs tens of milliseconds (a new JavaScript realm, koffi and the
 * platform modules), far more than a fork. When a worker's thread ends it waits for the next thread
 * to run (an assignment: a message on its port and a word in its pool cell), so a process that forks
 * and waits again and again reuses the same few workers.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import * as libc from '../host/libc.js';
import { Doorbell, Slot, ST } from '../kernel/mailbox.js';
import type { ContextHandle } from '../platform/platform.js';
import { attachContext } from '../platform/select.js';
import { POOL, POOL_CELL, type Assignment } from './pool.js';

interface VcpuWorkerData {
  /** The pool cell: [state], Int32. */
  cell: SharedArrayBuffer;
  /** Where assignments arrive. */
  port: MessagePort;
  /** Int32Array [running vCPUs, limit, waiting]: --cpus bounds how many run guest code at once. */
  cpuGate: SharedArrayBuffer;
}

const d = workerData as VcpuWorkerData;
const cell = new Int32Array(d.cell);
// Started (modules loaded): the pool may now let the VMM end without killing this worker mid-load.
Atomics.store(cell, POOL_CELL.ready, 1);
Atomics.notify(cell, POOL_CELL.ready);
const gate = new Int32Array(d.cpuGate);
const self = Number(libc.pthreadSelf());

/**
 * Take one of the --cpus places to run guest code (sleeping while all are taken). gate[2] counts the
 * threads waiting for a place: the kernel then kicks running ones now and then (time slices).
 */
function acquire(): void {
  let waiting = false;
  for (;;) {
    const n = Atomics.load(gate, 0);
    if (n < Atomics.load(gate, 1)) {
      if (Atomics.compareExchange(gate, 0, n, n + 1) === n) {
        if (waiting) Atomics.sub(gate, 2, 1);
        return;
      }
      continue;
    }
    if (!waiting) {
      waiting = true;
      Atomics.add(gate, 2, 1);
    }
    Atomics.wait(gate, 0, n, 100);
  }
}
function release(): void {
  Atomics.sub(gate, 0, 1);
  Atomics.notify(gate, 0, 1);
}

/** Run one thread's context until the kernel terminates it. */
function runThread(context: ContextHandle, slot: Slot, bell: Doorbell): void {
  const cpu = attachContext(context);
  slot.thread = self;
  for (;;) {
    // Wait for the kernel to let this vCPU run (a new thread starts in RESUME).
    for (let s = slot.state; s !== ST.RESUME; s = slot.state) {
      if (s === ST.TERMINATE) return;
      slot.waitWhile(s, 1000);
    }
    if (Atomics.compareExchange(slot.i32, 0, ST.RESUME, ST.RUNNING) !== ST.RESUME) return;
    acquire();
    const exit = cpu.enter();
    release();
    slot.put(exit);
    // Post the exit unless the kernel meanwhile told this vCPU to stop.
    if (Atomics.compareExchange(slot.i32, 0, ST.RUNNING, ST.EXITED) !== ST.RUNNING) return;
    Atomics.notify(slot.i32, 0);
    bell.ring();
    slot.waitWhile(ST.EXITED);
  }
}

for (;;) {
  // Wait for a thread to run, or for the pool to close.
  for (let s = Atomics.load(cell, 0); s !== POOL.ASSIGNED; s = Atomics.load(cell, 0)) {
    if (s === POOL.CLOSE) process.exit(0);
    Atomics.wait(cell, 0, s, 1000);
  }
  let m = receiveMessageOnPort(d.port);
  while (!m) {
    Atomics.wait(cell, POOL_CELL.nap, 0, 1); // the message follows the word closely
    m = receiveMessageOnPort(d.port);
  }
  const a = m.message as Assignment;
  const slot = new Slot(a.slot);
  try {
    runThread(a.context, slot, new Doorbell(a.doorbell));
  } finally {
    // Back to the pool first, then say the thread's worker is gone (the kernel may reuse its vCPU).
    Atomics.compareExchange(cell, 0, POOL.ASSIGNED, POOL.IDLE); // (not when the pool is closing)
    slot.gone = true;
    Atomics.notify(slot.i32, 0);
  }
}
