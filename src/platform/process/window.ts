/**
 * The process platform's memory window: the VMM's view of the program's memory (a host reservation
 * like the KVM platform's, where the kernel reads and writes system-call buffers), and every change to
 * it ordered into the program's own process too, as an op the stub applies with the same mmap,
 * mprotect or munmap. The same files at the same offsets back both views: anonymous memory is one
 * memfd mapped MAP_SHARED on both sides, file data is the image's own pages on both sides.
 */
import { Window } from '../window.js';

/** What the process platform does with a change to the window. */
export interface OpSink {
  map(guest: number, length: number, prot: number, hostFd: number, offset: number, shared: boolean): void;
  protect(guest: number, length: number, prot: number): void;
  unmap(guest: number, length: number): void;
}

export class ProcessWindow extends Window {
  private readonly sink: OpSink;

  private constructor(base: number, size: number, sink: OpSink) {
    super(base, size);
    this.sink = sink;
  }

  static reserveMirrored(size: number, sink: OpSink): ProcessWindow {
    return new ProcessWindow(Window.reserveRange(size), size, sink);
  }

  override mapFd(guest: number, length: number, prot: number, fd: number, offset: number, shared: boolean): void {
    super.mapFd(guest, length, prot, fd, offset, shared);
    this.sink.map(guest, length, prot, fd, offset, shared);
  }

  override protect(guest: number, length: number, prot: number): void {
    super.protect(guest, length, prot);
    this.sink.protect(guest, length, prot);
  }

  override release(guest: number, length: number): void {
    super.release(guest, length);
    this.sink.unmap(guest, length);
  }

  /** Fresh private zero pages exist only in the VMM's view: the kernel never asks for them here. */
  override mapZero(): void {
    throw new Error('the process platform maps no private zero pages (anonymous memory is the memfd)');
  }
}
