/**
 * A thread's own worker (threaded programs), whatever the platform: run the guest, post each exit to the kernel's thread, sleep
 * until it answers, repeat. Runs no kernel code.
 */
import { workerData } from 'node:worker_threads';
import * as libc from '../host/libc.js';
import { Doorbell, Slot, ST } from '../kernel/mailbox.js';
import type { ContextHandle } from '../platform/platform.js';
import { attachContext } from '../platform/select.js';

interface VcpuWorkerData {
  /** The thread's context, as its platform describes it. */
  context: ContextHandle;
  slot: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  /** Int32Array [running vCPUs, limit]: --cpus bounds how many run guest code at once. */
  cpuGate: SharedArrayBuffer;
}

const d = workerData as VcpuWorkerData;
const slot = new Slot(d.slot);
const bell = new Doorbell(d.doorbell);
const gate = new Int32Array(d.cpuGate);

/** Take one of the --cpus places to run guest code (sleeping while all are taken). */
function acquire(): void {
  for (;;) {
    const n = Atomics.load(gate, 0);
    if (n < Atomics.load(gate, 1)) {
      if (Atomics.compareExchange(gate, 0, n, n + 1) === n) return;
      continue;
    }
    Atomics.wait(gate, 0, n, 100);
  }
}
function release(): void {
  Atomics.sub(gate, 0, 1);
  Atomics.notify(gate, 0, 1);
}

const cpu = attachContext(d.context);
slot.thread = Number(libc.pthreadSelf());

function leave(): never {
  slot.gone = true;
  process.exit(0);
}

for (;;) {
  // Wait for the kernel to let this vCPU run (a new thread starts in RESUME).
  for (let s = slot.state; s !== ST.RESUME; s = slot.state) {
    if (s === ST.TERMINATE) leave();
    slot.waitWhile(s, 1000);
  }
  if (Atomics.compareExchange(slot.i32, 0, ST.RESUME, ST.RUNNING) !== ST.RESUME) leave();
  acquire();
  const exit = cpu.enter();
  release();
  slot.put(exit);
  // Post the exit unless the kernel meanwhile told every vCPU to stop.
  if (Atomics.compareExchange(slot.i32, 0, ST.RUNNING, ST.EXITED) !== ST.RUNNING) leave();
  Atomics.notify(slot.i32, 0);
  bell.ring();
  slot.waitWhile(ST.EXITED);
}
