/** Block the calling thread for `ms` milliseconds (Atomics.wait on a private cell: no CPU used). */
const cell = new Int32Array(new SharedArrayBuffer(4));
export function sleepMs(ms: number): void {
  Atomics.wait(cell, 0, 0, ms);
}
