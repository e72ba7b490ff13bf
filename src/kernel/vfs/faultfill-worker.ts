/**
 * The userfaultfd handler thread of blk mode's lazy file mappings (see faultfill.ts): wait for a
 * page fault, read the page's block from the image, install it with UFFDIO_COPY.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import * as libc from '../../host/libc.js';
import { UFFD_EVENT_PAGEFAULT, UFFD_MSG_SIZE, UFFDIO_COPY } from './faultfill.js';

const { uffd, imageFd, control, port } = workerData as { uffd: number; imageFd: number; control: SharedArrayBuffer; port: MessagePort };
const ctl = new Int32Array(control);
const PAGE = 4096;

interface Range {
  start: number;
  physical: Float64Array;
}
const ranges: Range[] = [];

function drain(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) ranges.push(m.message as Range);
}

function lookup(addr: number): number | null {
  for (let pass = 0; pass < 2; pass++) {
    for (let i = ranges.length - 1; i >= 0; i--) {
      const r = ranges[i]!;
      const idx = Math.floor((addr - r.start) / PAGE);
      if (idx >= 0 && idx < r.physical.length) return r.physical[idx]!;
    }
    drain();
  }
  return null;
}

// A page-aligned scratch page for the block read.
const scratch = libc.mmap(0, PAGE, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
const zero = new Uint8Array(libc.view(scratch, PAGE));
const msgAddr = libc.mmap(0, PAGE, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
const msgView = new DataView(libc.view(msgAddr, UFFD_MSG_SIZE));
const copy = Buffer.alloc(40);
const pfd = Buffer.alloc(8);
pfd.writeInt32LE(uffd, 0);
pfd.writeInt16LE(1 /* POLLIN */, 4);

while (Atomics.load(ctl, 0) === 0) {
  if (libc.poll(pfd, 1, 100) <= 0) continue;
  const n = libc.read(uffd, msgAddr, UFFD_MSG_SIZE);
  if (n !== UFFD_MSG_SIZE) continue; // EAGAIN: another wake-up took it
  if (msgView.getUint8(0) !== UFFD_EVENT_PAGEFAULT) continue;
  const addr = Number(msgView.getBigUint64(16, true));
  const page = addr - (addr % PAGE);
  const physical = lookup(page);
  if (physical === null || physical < 0) zero.fill(0);
  else if (libc.pread(imageFd, scratch, PAGE, physical) !== PAGE) zero.fill(0);
  copy.writeBigUInt64LE(BigInt(page), 0); // dst
  copy.writeBigUInt64LE(BigInt(scratch), 8); // src
  copy.writeBigUInt64LE(BigInt(PAGE), 16); // len
  copy.writeBigUInt64LE(0n, 24); // mode: wake the faulting thread
  libc.ioctlPtr(uffd, UFFDIO_COPY, copy); // EEXIST (a race with another fault on the page) is fine
  Atomics.add(ctl, 1, 1);
}
