/** Waiting on host fds from the kernel's thread (a published port's listener, a host socket). */
import * as libc from '../../host/libc.js';

const POLLIN = 0x001;

/** Wait up to `timeoutMs` until one of `fds` is readable; true when one is. */
export function hostReadyAny(fds: number[], timeoutMs: number, events = POLLIN): boolean {
  if (fds.length === 0) return false;
  const pfd = Buffer.alloc(8 * fds.length);
  fds.forEach((fd, i) => {
    pfd.writeInt32LE(fd, i * 8);
    pfd.writeInt16LE(events, i * 8 + 4);
  });
  return libc.poll(pfd, fds.length, Math.max(0, Math.floor(timeoutMs))) > 0;
}

/** The events `fd` is ready for now (0: none, or a bad fd's POLLNVAL). */
export function hostEvents(fd: number, events: number): number {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  return libc.poll(pfd, 1, 0) > 0 ? pfd.readInt16LE(6) : 0;
}
