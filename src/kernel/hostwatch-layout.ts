/** The host watcher's shared cells (Int32Array indices). */
export const W = {
  /** Set to end the watcher. */
  QUIT: 0,
  /** Rings the watcher has made, and the last one the kernel has looked at. */
  RINGS: 1,
  ACKED: 2,
  /** Set by the thread once its modules (koffi) are loaded. */
  READY: 4,
  /** How many (fd, events) pairs follow. */
  COUNT: 3,
  LIST: 5,
  /** The most pairs watched (more are polled by the kernel's retries only). */
  MAX: 512,
} as const;

export const CELLS_BYTES = 4 * (W.LIST + 2 * W.MAX);
