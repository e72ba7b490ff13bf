/**
 * The pool of vCPU workers (see vcpu-worker.ts): idle workers wait in their cell; an assignment is a
 * message on the worker's port plus the cell's word, so a worker blocked in Atomics.wait picks it up
 * without an event loop. The pool keeps a few workers started ahead of need, since a new one takes
 * tens of milliseconds to start.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ContextHandle } from '../platform/platform.js';

export const POOL = { IDLE: 0, ASSIGNED: 1, CLOSE: 2 } as const;
/** A worker's cell: its state, whether it has started (modules loaded), and a word to nap on. */
export const POOL_CELL = { state: 0, ready: 1, nap: 2 } as const;

export interface Assignment {
  context: ContextHandle;
  slot: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
}

interface Member {
  cell: Int32Array;
  port: MessagePort;
  worker: Worker;
}

export class WorkerPool {
  private readonly members: Member[] = [];
  /** Workers started so far (for --stats). */
  started = 0;

  constructor(
    private readonly cpuGate: SharedArrayBuffer,
    /** Idle workers to keep ready once threads or processes are in use. */
    private readonly spare: number,
  ) {}

  private spawn(): Member {
    const cell = new Int32Array(new SharedArrayBuffer(16));
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./vcpu-worker.js', import.meta.url), {
      workerData: { cell: cell.buffer, port: port2, cpuGate: this.cpuGate },
      transferList: [port2],
    });
    worker.unref();
    const m = { cell, port: port1, worker };
    this.members.push(m);
    this.started++;
    return m;
  }

  /** Run a thread on an idle worker (a new one if none is idle), and keep spares started. */
  run(a: Assignment): void {
    const m = this.members.find((x) => Atomics.load(x.cell, 0) === POOL.IDLE) ?? this.spawn();
    Atomics.store(m.cell, 0, POOL.ASSIGNED); // taken: before the message, so no one else takes it
    m.port.postMessage(a);
    Atomics.notify(m.cell, 0);
    this.topUp();
  }

  /** Start workers until `spare` are idle. */
  topUp(): void {
    let idle = this.members.filter((x) => Atomics.load(x.cell, 0) === POOL.IDLE).length;
    while (idle < this.spare) {
      this.spawn();
      idle++;
    }
  }

  /**
   * Let every worker end (a busy one as soon as its thread is done). A worker still loading its
   * modules is waited for (a few tens of ms at most): the VMM's thread ending would stop it in the
   * middle of loading koffi, which aborts the whole host process.
   */
  close(): void {
    for (const m of this.members) {
      Atomics.store(m.cell, POOL_CELL.state, POOL.CLOSE);
      Atomics.notify(m.cell, POOL_CELL.state);
    }
    const until = performance.now() + 5000;
    for (const m of this.members) {
      while (Atomics.load(m.cell, POOL_CELL.ready) === 0 && performance.now() < until) Atomics.wait(m.cell, POOL_CELL.ready, 0, 50);
      m.port.close();
    }
  }
}
