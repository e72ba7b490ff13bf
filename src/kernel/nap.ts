/** Sleeping the kernel's thread (single-threaded programs) without burning CPU. */
const cell = new Int32Array(new SharedArrayBuffer(4));

/** Sleep `ms` milliseconds (fractions allowed); nothing wakes it early. */
export function nap(ms: number): void {
  if (ms > 0) Atomics.wait(cell, 0, 0, ms);
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
