/**
 * blk mode, lazy file mappings: the pages of a file mapping are filled on first touch, as a guest
 * kernel's page-fault handler plus a block read would fill them. The mapping's memory is registered
 * with userfaultfd (MISSING mode); a guest touch of a missing page blocks the vCPU inside KVM_RUN, a
 * handler thread reads the block from the image (pread) and installs it with UFFDIO_COPY, and the
 * vCPU continues. The other way (--blk-mmap eager, the default) copies the whole mapping at mmap time;
 * `mapvisor bench` measures both.
 *
 * The handler thread learns the page → image offset table of each registration through a
 * MessagePort it drains synchronously, so it never waits for the kernel thread, which may itself be
 * the one blocked on a fault.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { MapvisorError } from '../../errors.js';
import * as libc from '../../host/libc.js';
import { IOWR } from '../../host/ioctl.js';
import { O_CLOEXEC, O_NONBLOCK } from '../files/file.js';


export const SYS_userfaultfd = 323;
const UFFDIO = 0xaa;
export const UFFD_API = 0xaa;
export const UFFDIO_API = IOWR(UFFDIO, 0x3f, 24); // struct uffdio_api { api, features, ioctls }
export const UFFDIO_REGISTER = IOWR(UFFDIO, 0x00, 32); // { start, len, mode, ioctls }
export const UFFDIO_COPY = IOWR(UFFDIO, 0x03, 40); // { dst, src, len, mode, copy }
export const UFFDIO_REGISTER_MODE_MISSING = 1;
export const UFFD_EVENT_PAGEFAULT = 0x12;
export const UFFD_MSG_SIZE = 32;

/** One registration: pages [start, start + 4096 * physical.length); physical[i] < 0 is a hole. */
export interface FillRange {
  start: number;
  physical: Float64Array;
}

export class FaultFiller {
  readonly uffd: number;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly control = new Int32Array(new SharedArrayBuffer(8)); // [0] stop, [1] pages filled

  constructor(imageFd: number) {
    this.uffd = libc.syscall1(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (this.uffd < 0) {
      throw new MapvisorError('EUFFD', `userfaultfd is not available (errno ${libc.errno()})`, 'run as root, set vm.unprivileged_userfaultfd=1, or use --blk-mmap eager');
    }
    const api = Buffer.alloc(24);
    api.writeBigUInt64LE(BigInt(UFFD_API), 0);
    if (libc.ioctlPtr(this.uffd, UFFDIO_API, api) !== 0) {
      libc.close(this.uffd);
      throw new MapvisorError('EUFFD', `userfaultfd API handshake failed (errno ${libc.errno()})`, 'use --blk-mmap eager');
    }
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./faultfill-worker.js', import.meta.url), {
      workerData: { uffd: this.uffd, imageFd, control: this.control.buffer, port: port2 },
      transferList: [port2],
    });
    this.worker.unref();
  }

  /** Pages filled so far. */
  get filled(): number {
    return Atomics.load(this.control, 1);
  }

  /** Register a mapping's memory; its pages are filled from `physical` on first touch. */
  register(range: FillRange, hostStart: number): void {
    // The table first, so the handler knows the range before any fault in it can happen.
    this.port.postMessage({ start: hostStart, physical: range.physical });
    const reg = Buffer.alloc(32);
    reg.writeBigUInt64LE(BigInt(hostStart), 0);
    reg.writeBigUInt64LE(BigInt(range.physical.length * 4096), 8);
    reg.writeBigUInt64LE(BigInt(UFFDIO_REGISTER_MODE_MISSING), 16);
    if (libc.ioctlPtr(this.uffd, UFFDIO_REGISTER, reg) !== 0) {
      throw new MapvisorError('EUFFD', `userfaultfd registration failed (errno ${libc.errno()})`, 'use --blk-mmap eager');
    }
  }

  close(): void {
    Atomics.store(this.control, 0, 1);
    void this.worker.terminate();
    this.port.close();
    libc.close(this.uffd);
  }
}
