/**
 * Sleeping the kernel's thread (single-threaded programs) without burning CPU. The sleep is an
 * Atomics.wait on a cell the VMM's owner bumps on a pause or stop request (wakeOn), so a sleeping
 * program pauses at once instead of at the end of its sleep slice.
 */
let cell: Int32Array = new Int32Array(new SharedArrayBuffer(4));
let index = 0;

/** Wake naps early whenever `c[i]` changes (the worker's control array: its wake counter). */
export function wakeOn(c: Int32Array, i: number): void {
  cell = c;
  index = i;
}

/** Sleep `ms` milliseconds (fractions allowed), or until the wake cell changes. */
export function nap(ms: number): void {
  if (ms > 0) Atomics.wait(cell, index, Atomics.load(cell, index), ms);
}

/** Sleep in slices of at most 200 ms until the deadline (ms, performance.now); false when stopped first. */
export function napUntil(deadline: number, stopped: () => boolean): boolean {
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return true;
    if (stopped()) return false;
    nap(Math.min(200, left));
  }
}
