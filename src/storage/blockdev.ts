/**
 * Access to a disk image. The file system code reads and writes its metadata in place through
 * `bytes()` (a live view), reports every write with `dirty()`, and asks for durability with
 * `flush()`. Two devices share this interface: `MappedImage` (the image mmapped once; the zero-copy
 * data path uses its `base` address) and `BufferDev` (an in-memory image, for tests). A block-cache
 * device for the baseline mode implements the same interface.
 */
import * as nodefs from 'node:fs';
import * as libc from '../host/libc.js';
import { MapvisorError } from '../errors.js';

export interface BlockDev {
  /** Size of the device in bytes. */
  readonly size: number;
  /** True when writes are refused (the file system then opens read-only). */
  readonly readOnly: boolean;
  /**
   * A live view of `length` bytes at `offset`, for reading and for writing metadata in place.
   * Never crosses a 4 KiB boundary unless the device is a mapping. Throws RangeError outside the device.
   */
  bytes(offset: number, length: number): Uint8Array;
  /** A write was made through bytes() in this range. */
  dirty(offset: number, length: number): void;
  /** Makes the range (default: everything) durable. */
  flush(offset?: number, length?: number): void;
  /**
   * Like bytes(), for a caller that will overwrite the whole range: a block device need not read the
   * old contents first (as a guest kernel's page cache does not for a full-page write).
   */
  overwrite?(offset: number, length: number): Uint8Array;
  /** Make [offset, offset+length) zero, reported as written (a device may do it without touching its pages). */
  zero?(offset: number, length: number): void;
}

function checkRange(dev: { size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > dev.size) {
    throw new RangeError(`device access out of range: offset ${offset} length ${length} (device size ${dev.size})`);
  }
}

/** A device over a Uint8Array (tests, small images). */
export class BufferDev implements BlockDev {
  readonly size: number;
  readonly readOnly: boolean;
  /** Number of dirty() calls (tests use it to check that reads do not write). */
  dirtyCalls = 0;
  constructor(
    readonly buffer: Uint8Array,
    opts: { readOnly?: boolean } = {},
  ) {
    this.size = buffer.length;
    this.readOnly = opts.readOnly ?? false;
  }
  bytes(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    return this.buffer.subarray(offset, offset + length);
  }
  dirty(offset: number, length: number): void {
    checkRange(this, offset, length);
    if (this.readOnly) throw new RangeError('write to a read-only device');
    this.dirtyCalls++;
  }
  flush(): void {}
}

/** How an image is mapped: shared read-write, private copy-on-write (writes never reach the file), or read-only. */
export type MapMode = 'rw' | 'cow' | 'ro';

const CHUNK = 1 << 30; // views are made per GiB (koffi's views are at most 4 GiB)
const PAGE = 4096;

/**
 * Views of a host mapping of `size` bytes at `base`, for the file system's in-place access: one view
 * per GiB (koffi's views are at most 4 GiB), made on first use and kept; a range across a GiB boundary
 * gets a one-off view. The caller checks the range.
 */
export class MappingViews {
  private readonly chunks: Uint8Array[] = [];
  constructor(
    private readonly base: number,
    private readonly size: number,
  ) {}

  view(offset: number, length: number): Uint8Array {
    const c = Math.floor(offset / CHUNK);
    const start = c * CHUNK;
    if (offset + length > start + CHUNK) return new Uint8Array(libc.view(this.base + offset, length));
    let chunk = this.chunks[c];
    if (chunk === undefined) {
      chunk = new Uint8Array(libc.view(this.base + start, Math.min(CHUNK, this.size - start)));
      this.chunks[c] = chunk;
    }
    return chunk.subarray(offset - start, offset - start + length);
  }
}

/** An image file mmapped once. `base` is the host address of byte 0 of the image. */
export class MappedImage implements BlockDev {
  readonly size: number;
  readonly readOnly: boolean;
  readonly mode: MapMode;
  readonly path: string;
  private baseAddr: number;
  private views: MappingViews;

  private constructor(path: string, base: number, size: number, mode: MapMode) {
    this.path = path;
    this.baseAddr = base;
    this.views = new MappingViews(base, size);
    this.size = size;
    this.mode = mode;
    this.readOnly = mode === 'ro';
  }

  /** Host address of the mapping (for memmove between the image and guest memory). */
  get base(): number {
    if (this.baseAddr === 0) throw new RangeError('image is closed');
    return this.baseAddr;
  }

  static open(path: string, mode: MapMode = 'rw'): MappedImage {
    let fd: number;
    try {
      fd = nodefs.openSync(path, mode === 'rw' ? 'r+' : 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new MapvisorError(
        'EIMAGE',
        `cannot open the disk image ${path}: ${code}`,
        code === 'EACCES' || code === 'EROFS' ? 'make the image writable or open it read-only' : 'check the image path',
      );
    }
    try {
      const st = nodefs.fstatSync(fd);
      if (!st.isFile() && !st.isBlockDevice()) {
        throw new MapvisorError('EIMAGE', `the disk image ${path} is not a regular file`, 'give the path of an ext4 image file');
      }
      const size = st.size;
      if (size < 2048) {
        throw new MapvisorError('EIMAGE', `the disk image ${path} is too small (${size} bytes) to hold an ext4 file system`, 'create it with mkfs.ext4');
      }
      const prot = mode === 'ro' ? libc.PROT_READ : libc.PROT_READ | libc.PROT_WRITE;
      const flags = mode === 'rw' ? libc.MAP_SHARED : libc.MAP_PRIVATE;
      const addr = libc.mmap(0, size, prot, flags | libc.MAP_NORESERVE, fd, 0);
      if (addr === -1 || addr === 0) {
        const err = libc.errno();
        throw new MapvisorError('EIMAGE', `cannot map the disk image ${path} (errno ${err})`, 'check that the image is a regular file on a local file system');
      }
      return new MappedImage(path, addr, size, mode);
    } finally {
      nodefs.closeSync(fd);
    }
  }

  bytes(offset: number, length: number): Uint8Array {
    if (this.baseAddr === 0) throw new RangeError('image is closed');
    checkRange(this, offset, length);
    return this.views.view(offset, length);
  }

  dirty(offset: number, length: number): void {
    checkRange(this, offset, length);
    if (this.readOnly) throw new RangeError('write to a read-only image');
  }

  flush(offset = 0, length = this.size - offset): void {
    if (this.baseAddr === 0 || this.mode !== 'rw') return;
    checkRange(this, offset, length);
    const start = Math.floor(offset / PAGE) * PAGE;
    const end = Math.min(this.size, offset + length);
    if (end <= start) return;
    if (libc.msync(this.baseAddr + start, end - start, libc.MS_SYNC) !== 0) {
      throw new MapvisorError('EIMAGE', `cannot write the disk image ${this.path} back (errno ${libc.errno()})`, 'check free space on the host file system');
    }
  }

  /**
   * Unmaps the image; every view handed out before becomes invalid. Not durable: no msync (the writes
   * stay in the host page cache, where another process mapping the image sees them: a hand-over).
   */
  close(durable = true): void {
    if (this.baseAddr === 0) return;
    if (durable) this.flush();
    this.views = new MappingViews(0, 0);
    libc.munmap(this.baseAddr, this.size);
    this.baseAddr = 0;
  }
}
