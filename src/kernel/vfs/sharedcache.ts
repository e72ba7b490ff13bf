/**
 * Writable MAP_SHARED mappings of image files where the program's processes hold the image read-only
 * (the process platform): the pages are a copy, and this cache makes it one copy for the whole sandbox.
 * One memfd, declared to every process of the sandbox before it starts, holds a slot per 2 MiB chunk
 * of a file that some process maps shared and writable; every process maps the same slot, so their
 * stores meet at once, as they do in Linux's page cache (sqlite's WAL index between processes).
 *
 * A slot's pages are filled from the file when first mapped, kept in step with write() (the root file
 * system's write hook), written back to the file on msync and munmap (SharedFileMaps) and dropped when
 * no process maps the chunk any more.
 */
import { MapvisorError } from '../../errors.js';
import * as libc from '../../host/libc.js';

/** The cache's backing id in every process's region map. */
export const CACHE_BACKING_ID = 5;

/** Bytes of a file per slot. */
export const CACHE_CHUNK = 2 * 2 ** 20;
const PAGE = 4096;
/** The memfd's size (slots: CACHE_SLOTS); its unused parts take no memory. */
const CACHE_SLOTS = 8192;

export interface CacheSlot {
  readonly ino: number;
  readonly chunk: number;
  /** Byte offset of the slot in the memfd. */
  readonly offset: number;
  /** Processes that map part of the chunk. */
  refs: number;
  /** Pages filled from the file (a page not filled yet is zero in the memfd). */
  readonly filled: Uint8Array;
}

export class SharedFileCache {
  readonly fd: number;
  /** The VMM's own mapping of the memfd (fills and write() updates go through it). */
  readonly base: number;
  private readonly slots = new Map<string, CacheSlot>();
  private readonly free: number[] = [];
  private next = 0;

  constructor() {
    const fd = libc.memfdCreate('mapvisor-shared-files', libc.MFD_CLOEXEC);
    if (fd < 0) throw new MapvisorError('ENOMEM', `cannot create the shared-file cache (memfd_create: errno ${libc.errno()})`, 'check the host memory limits');
    const size = CACHE_SLOTS * CACHE_CHUNK;
    if (libc.ftruncate(fd, size) !== 0) throw new MapvisorError('ENOMEM', `cannot size the shared-file cache (errno ${libc.errno()})`, 'check the host memory limits');
    const base = libc.mmap(0, size, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED | libc.MAP_NORESERVE, fd, 0);
    if (base === -1 || base === 0) throw new MapvisorError('ENOMEM', `cannot map the shared-file cache (errno ${libc.errno()})`, 'check the host memory limits');
    this.fd = fd;
    this.base = base;
  }

  /** The slot of chunk `chunk` of file `ino`, made (empty, unreferenced) when missing; null when the cache is full. */
  acquire(ino: number, chunk: number): CacheSlot | null {
    const key = `${ino}:${chunk}`;
    const have = this.slots.get(key);
    if (have) return have;
    const offset = this.free.pop() ?? (this.next < CACHE_SLOTS ? this.next++ * CACHE_CHUNK : -1);
    if (offset < 0) return null;
    const slot: CacheSlot = { ino, chunk, offset, refs: 0, filled: new Uint8Array(CACHE_CHUNK / PAGE) };
    this.slots.set(key, slot);
    return slot;
  }

  peek(ino: number, chunk: number): CacheSlot | undefined {
    return this.slots.get(`${ino}:${chunk}`);
  }

  /** A slot made by acquire() that no process came to map (its mapping failed): let it go. */
  dropIfUnused(slot: CacheSlot): void {
    if (slot.refs === 0) {
      slot.refs = 1;
      this.unref(slot);
    }
  }

  ref(slot: CacheSlot): void {
    slot.refs++;
  }

  /** One process fewer maps the slot; the last one gone frees it (its pages were written back). */
  unref(slot: CacheSlot): void {
    if (--slot.refs > 0) return;
    this.slots.delete(`${slot.ino}:${slot.chunk}`);
    libc.fallocate(this.fd, libc.FALLOC_FL_PUNCH_HOLE | libc.FALLOC_FL_KEEP_SIZE, slot.offset, CACHE_CHUNK);
    this.free.push(slot.offset);
  }

  /** write() put `len` bytes from host address `src` at `off` of file `ino`: cached pages follow. */
  refresh(ino: number, off: number, len: number, src: number): void {
    for (let c = Math.floor(off / CACHE_CHUNK); c * CACHE_CHUNK < off + len; c++) {
      const slot = this.peek(ino, c);
      if (!slot) continue;
      const s = Math.max(off, c * CACHE_CHUNK);
      const e = Math.min(off + len, (c + 1) * CACHE_CHUNK);
      libc.memmove(this.base + slot.offset + (s - c * CACHE_CHUNK), src + (s - off), e - s);
    }
  }

  /** Slots in use (for tests and stats). */
  get size(): number {
    return this.slots.size;
  }

  close(): void {
    libc.munmap(this.base, CACHE_SLOTS * CACHE_CHUNK);
    libc.close(this.fd);
    this.slots.clear();
  }
}
