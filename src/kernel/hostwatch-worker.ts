/**
 * The host watcher's thread (see hostwatch.ts): poll the host fds that parked calls wait on, and ring
 * the kernel's doorbell when one is ready; then wait until the kernel has looked (its ack) before
 * polling again, so a level-triggered readiness is never rung twice for one look.
 */
import { workerData } from 'node:worker_threads';
import * as libc from '../host/libc.js';
import { W } from './hostwatch-layout.js';
import { POLLIN } from './files/file.js';

const { cells, doorbell, wakeFd } = workerData as { cells: SharedArrayBuffer; doorbell: SharedArrayBuffer; wakeFd: number };
const c = new Int32Array(cells);
const bell = new Int32Array(doorbell, 0, 1);
const drain = Buffer.alloc(8);
Atomics.store(c, W.READY, 1);
Atomics.notify(c, W.READY);

for (;;) {
  if (Atomics.load(c, W.QUIT)) {
    libc.close(wakeFd); // (ours to close: the kernel no longer touches it once it asked us to quit)
    break;
  }
  const n = Math.min(Atomics.load(c, W.COUNT), W.MAX);
  const pfd = Buffer.alloc(8 * (n + 1));
  pfd.writeInt32LE(wakeFd, 0);
  pfd.writeInt16LE(POLLIN, 4);
  for (let i = 0; i < n; i++) {
    pfd.writeInt32LE(Atomics.load(c, W.LIST + 2 * i), 8 * (i + 1));
    pfd.writeInt16LE(Atomics.load(c, W.LIST + 2 * i + 1), 8 * (i + 1) + 4);
  }
  const rc = libc.poll(pfd, n + 1, 1000);
  if (rc <= 0) continue;
  if (pfd.readInt16LE(6) !== 0) {
    // The list changed (or quit): take it again.
    libc.readBuf(wakeFd, drain, 8);
    continue;
  }
  // A host fd is ready: tell the kernel, and wait for it to look before polling again.
  const ring = Atomics.add(c, W.RINGS, 1) + 1;
  Atomics.add(bell, 0, 1);
  Atomics.notify(bell, 0);
  for (let acked = Atomics.load(c, W.ACKED); acked < ring && !Atomics.load(c, W.QUIT); acked = Atomics.load(c, W.ACKED)) {
    Atomics.wait(c, W.ACKED, acked, 200);
  }
}
