/**
 * The memory window: the VMM's view of the program's whole address space, one host reservation
 * (PROT_NONE, MAP_NORESERVE). On the KVM platform it is also the guest's memory (one KVM memory slot
 * covers it); on the process platform every change is mirrored into the program's host process. Program memory appears and disappears by
 * host mmap(MAP_FIXED)/mprotect inside the reservation; KVM's MMU notifiers carry each change into the
 * VM before the next guest access, with no slot update.
 *
 * Invariant: the reservation never has a hole. Memory is released by mapping PROT_NONE over it
 * (atomically, MAP_FIXED), never by munmap, so no other host allocation can land inside the window
 * where the guest could reach it.
 *
 * This module trusts its callers: the region map (src/mm) decides what may be mapped where.
 */
import { HostError } from '../host/errors.js';
import * as libc from '../host/libc.js';
import { PAGE_SIZE } from './layout.js';

/**
 * Views of the window are made per 1 MiB chunk, on first use. V8 counts every view's length as
 * external memory and collects garbage under that pressure: 4 GiB views (koffi's limit) made each new
 * process's first system calls trigger full collections (a fork-and-wait loop spent a third of its
 * time in them). A call whose buffer crosses a chunk boundary gets a one-off view.
 */
const VIEW_CHUNK = 2 ** 20;

export class Window {
  /** Program memory is mapped here and, by subclasses, wherever else the program sees it. */
  readonly base: number;
  readonly size: number;
  private readonly chunks: Array<Uint8Array | undefined> = [];
  /** Host mmap/mprotect calls made on the window (a stats counter). */
  mapChanges = 0;

  protected constructor(base: number, size: number) {
    this.base = base;
    this.size = size;
  }

  /** Reserve `size` bytes of host address space (the KVM platform makes it guest-physical [0, size)). */
  static reserve(size: number): Window {
    return new Window(Window.reserveRange(size), size);
  }

  /** A PROT_NONE, MAP_NORESERVE reservation of `size` bytes: its address. */
  protected static reserveRange(size: number): number {
    const base = libc.mmap(
      0,
      size,
      libc.PROT_NONE,
      libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE,
      -1,
      0,
    );
    if (base === -1) throw new HostError(`reserving ${size} bytes of address space`, libc.errno());
    return base;
  }

  /** Adopt an existing reservation (another thread's view of the same window). */
  static attach(base: number, size: number): Window {
    return new Window(base, size);
  }

  hostAddr(guest: number): number {
    return this.base + guest;
  }

  private checkRange(guest: number, length: number): void {
    if (guest % PAGE_SIZE || length % PAGE_SIZE || guest < 0 || length <= 0 || guest + length > this.size) {
      throw new RangeError(`window range 0x${guest.toString(16)}+0x${length.toString(16)} is not page-aligned inside the window`);
    }
  }

  /** Map `length` bytes of `fd` at `offset` (MAP_SHARED or MAP_PRIVATE) at guest address `guest`. */
  mapFd(guest: number, length: number, prot: number, fd: number, offset: number, shared: boolean): void {
    this.checkRange(guest, length);
    const flags = (shared ? libc.MAP_SHARED : libc.MAP_PRIVATE) | libc.MAP_FIXED;
    const rc = libc.mmap(this.base + guest, length, prot, flags, fd, offset);
    this.mapChanges++;
    if (rc === -1) throw new HostError(`mmap into the window at 0x${guest.toString(16)}`, libc.errno());
  }

  /** Map fresh private zero pages (for the VMM's own areas: page tables, stubs). */
  mapZero(guest: number, length: number, prot: number): void {
    this.checkRange(guest, length);
    const flags = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_FIXED;
    this.mapChanges++;
    if (libc.mmap(this.base + guest, length, prot, flags, -1, 0) === -1) {
      throw new HostError(`mmap into the window at 0x${guest.toString(16)}`, libc.errno());
    }
  }

  /** Change the host protection of a mapped range. */
  protect(guest: number, length: number, prot: number): void {
    this.checkRange(guest, length);
    this.mapChanges++;
    if (libc.mprotect(this.base + guest, length, prot) !== 0) {
      throw new HostError(`mprotect in the window at 0x${guest.toString(16)}`, libc.errno());
    }
  }

  /** Give a range back to the reservation: PROT_NONE, no backing, no hole. */
  release(guest: number, length: number): void {
    this.checkRange(guest, length);
    const flags = libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE | libc.MAP_FIXED;
    this.mapChanges++;
    if (libc.mmap(this.base + guest, length, libc.PROT_NONE, flags, -1, 0) === -1) {
      throw new HostError(`releasing window range at 0x${guest.toString(16)}`, libc.errno());
    }
  }

  /** Unmap the whole reservation (after the VM is gone). */
  destroy(): void {
    this.chunks.length = 0;
    libc.munmap(this.base, this.size);
  }

  /**
   * Bytes of the window at guest address `guest`. The caller must have checked that the whole range is
   * mapped and readable (and writable, to write): touching PROT_NONE from the host kills the VMM.
   */
  bytes(guest: number, length: number): Uint8Array {
    const idx = Math.floor(guest / VIEW_CHUNK);
    const off = guest - idx * VIEW_CHUNK;
    if (off + length <= VIEW_CHUNK) {
      let chunk = this.chunks[idx];
      if (!chunk) {
        const len = Math.min(VIEW_CHUNK, this.size - idx * VIEW_CHUNK);
        chunk = new Uint8Array(libc.view(this.base + idx * VIEW_CHUNK, len));
        this.chunks[idx] = chunk;
      }
      return chunk.subarray(off, off + length);
    }
    // Crossing a 4 GiB boundary: a one-off view (rare).
    return new Uint8Array(libc.view(this.base + guest, length));
  }
}
