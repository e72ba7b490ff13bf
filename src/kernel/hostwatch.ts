/**
 * Host events for parked calls. With several threads or processes a call that waits is parked and
 * retried when something changes in the sandbox; a host event (a connection to a published port, data
 * on a host socket, input on a host stream) changes nothing the kernel sees until it looks. The host
 * watcher is a thread that polls the host fds parked calls wait on and rings the kernel's doorbell
 * when one is ready, so such a call is answered at once instead of at the next periodic retry.
 */
import { Worker } from 'node:worker_threads';
import * as libc from '../host/libc.js';
import { CELLS_BYTES, W } from './hostwatch-layout.js';
import { POLLIN, POLLOUT, POLLPRI } from './files/file.js';

/** A host fd and the poll events a parked call waits for on it. */
export type HostInterest = [fd: number, events: number];

/** The host fds whose events can change a file's readiness for `events` (a host fd, a published listener). */
export function interestOf(ops: { hostFd?: number; hostWatch?(dir: 'in' | 'out'): number[] }, events: number): HostInterest[] {
  const want = events & (POLLIN | POLLPRI | POLLOUT);
  if (ops.hostFd !== undefined) return want ? [[ops.hostFd, want]] : [];
  const out: HostInterest[] = [];
  if (ops.hostWatch && events & POLLIN) for (const fd of ops.hostWatch('in')) out.push([fd, POLLIN]);
  if (ops.hostWatch && events & POLLOUT) for (const fd of ops.hostWatch('out')) out.push([fd, POLLOUT]);
  return out;
}

/** A lone thread's wait: until one of `list` is ready or `ms` pass. */
export function waitHost(list: HostInterest[], ms: number): void {
  const pfd = Buffer.alloc(8 * list.length);
  list.forEach(([fd, ev], i) => {
    pfd.writeInt32LE(fd, 8 * i);
    pfd.writeInt16LE(ev, 8 * i + 4);
  });
  libc.poll(pfd, list.length, Math.max(0, Math.floor(ms)));
}

export class HostWatcher {
  private readonly cells = new Int32Array(new SharedArrayBuffer(CELLS_BYTES));
  private readonly wakeFd: number;
  private readonly worker: Worker;
  private current = '';
  private readonly one = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

  constructor(doorbell: SharedArrayBuffer) {
    this.wakeFd = libc.eventfd(0, libc.EFD_CLOEXEC | libc.EFD_NONBLOCK);
    if (this.wakeFd < 0) throw new Error(`eventfd failed (errno ${libc.errno()})`);
    this.worker = new Worker(new URL('./hostwatch-worker.js', import.meta.url), { workerData: { cells: this.cells.buffer, doorbell, wakeFd: this.wakeFd } });
    this.worker.unref();
  }

  private seenRings = 0;
  /** Whether the watcher rang since the last call (parked calls are then retried). */
  rang(): boolean {
    const r = Atomics.load(this.cells, W.RINGS);
    if (r === this.seenRings) return false;
    this.seenRings = r;
    return true;
  }

  /** The kernel is about to wait: watch these (and count every ring so far as looked at). */
  update(list: HostInterest[]): void {
    const key = list.map(([fd, ev]) => `${fd}:${ev}`).join(',');
    if (key !== this.current) {
      this.current = key;
      const n = Math.min(list.length, W.MAX);
      for (let i = 0; i < n; i++) {
        Atomics.store(this.cells, W.LIST + 2 * i, list[i]![0]);
        Atomics.store(this.cells, W.LIST + 2 * i + 1, list[i]![1]);
      }
      Atomics.store(this.cells, W.COUNT, n);
      libc.writeBuf(this.wakeFd, this.one, 8);
    }
    Atomics.store(this.cells, W.ACKED, Atomics.load(this.cells, W.RINGS));
    Atomics.notify(this.cells, W.ACKED);
  }

  close(): void {
    // A thread ended in the middle of loading koffi aborts the whole host process (as the vCPU pool
    // found): let it finish loading first (it takes tens of milliseconds, once).
    const until = performance.now() + 5000;
    while (Atomics.load(this.cells, W.READY) === 0 && performance.now() < until) Atomics.wait(this.cells, W.READY, 0, 50);
    Atomics.store(this.cells, W.QUIT, 1);
    Atomics.notify(this.cells, W.ACKED);
    libc.writeBuf(this.wakeFd, this.one, 8); // the thread wakes, sees QUIT, closes the eventfd and ends
  }
}
