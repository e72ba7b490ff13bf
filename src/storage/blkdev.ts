/**
 * `--storage blk`: the conventional baseline. The same ext4 code reaches the image through a virtual
 * block device with a VMM-side page cache of its own, as a guest kernel with a block driver and a
 * page cache would: the image is never mapped; 4 KiB blocks ("sectors" of the virtual device) are
 * read into a bounded LRU cache with pread/preadv and written back with pwrite/pwritev.
 *
 *  - The cache lives in host memory allocated with mmap (anonymous, page-aligned), so every cached
 *    block has a host address (`blockAddr`) the syscall layer can memmove to and from guest memory,
 *    and O_DIRECT (cache=none) can read straight into it.
 *  - Misses read one block, or a run of consecutive missing blocks with one preadv: `loadRange`
 *    (what a caller that knows the range asks for) and a sequential readahead on misses (as Linux's
 *    read_ahead_kb, 128 KiB by default; `readaheadBytes: 0` turns it off).
 *  - Dirty blocks are written back on flush() (whole device or a range), on eviction and at close(),
 *    consecutive dirty blocks coalesced into one pwritev; flush() ends with fdatasync.
 *  - 'cow' opens the image read-only and keeps written blocks in a private overlay (the cache, then a
 *    Map of evicted dirty blocks): nothing is ever written to the image.
 *
 * Lifetime of views and addresses (the pin protocol). `bytes()` returns a live view of the cached
 * block and `blockAddr()` its host address; both stay valid only while the block stays in the
 * cache. The syscall layer brackets every file-system call with `pin()` / `unpin()` (a nesting
 * counter; `withPin` does it): while pinned, no block touched since the outermost pin() is evicted
 * or moved, so every view taken during one Ext4 call stays valid for the whole call. Blocks not
 * touched in the current pin may still be evicted (they cannot be referenced by the current call);
 * when every cached block has been touched, the cache grows past its bound into overflow memory and
 * shrinks back (evicting in LRU order, writing dirty blocks back) at the outermost unpin(). Outside
 * a pin, a view or an address may be invalidated by any later call into the device.
 */
import * as nodefs from 'node:fs';
import * as libc from '../host/libc.js';
import { E, errnoName } from '../abi/errno.js';
import { MapvisorError, UsageError } from '../errors.js';
import type { BlockDev, MapMode } from './blockdev.js';

/** Block size of the virtual device ("sector" size) and of the cache. */
export const BLOCK_SIZE = 4096;
/** Default cache size (--storage blk). */
export const DEFAULT_CACHE_BYTES = 256 * 2 ** 20;
/** Smallest cache accepted: one Ext4 call can touch a dozen metadata blocks. */
export const MIN_CACHE_BLOCKS = 16;
/** Default readahead on sequential misses: Linux's read_ahead_kb default (128 KiB). */
export const DEFAULT_READAHEAD_BYTES = 128 * 1024;
/** O_DIRECT on x86-64 Linux. */
export const O_DIRECT = 0o40000;

const LOG_BLOCK = 12;
/** Most iovecs in one preadv/pwritev (IOV_MAX): a coalesced request covers at most 4 MiB. */
const IOV_MAX = 1024;
const IOVEC_SIZE = 16;
/** Largest single cache arena (koffi views are at most 4 GiB; 1 GiB keeps each view modest). */
const ARENA_MAX_SLOTS = (1 << 30) / BLOCK_SIZE;
/** Smallest overflow arena added while pinned. */
const OVERFLOW_MIN_SLOTS = 256;
const NONE = -1;
const TWO32 = 2 ** 32;

const { EINTR, EINVAL, EACCES, EROFS, ENOSPC } = E;

export interface BlockImageOptions {
  /** 'rw' (O_RDWR, write-back), 'ro' (writes refused) or 'cow' (O_RDONLY, writes kept in a private overlay). */
  mode: MapMode;
  /** Bound of the block cache in bytes (rounded down to 4 KiB blocks). Default 256 MiB. */
  cacheBytes: number;
  /** O_DIRECT (cache=none): bypass the host page cache. Needs a host file system that supports it. */
  direct: boolean;
  /** Most bytes read ahead on a sequential miss (0: none). Default 128 KiB. */
  readaheadBytes: number;
}

export interface BlockImageStats {
  /** Host I/O requests: preads + pwrites (a coalesced preadv/pwritev counts once). */
  requests: number;
  readRequests: number;
  writeRequests: number;
  bytesRead: number;
  bytesWritten: number;
  /** Block lookups (bytes(), blockAddr(), loadRange()) served from the cache. */
  hits: number;
  /** Block lookups that had to wait for the image (each read alone or in a coalesced run). */
  misses: number;
  /** Blocks loaded by readahead before anyone asked for them. */
  prefetched: number;
  evictions: number;
  /** Bytes of blocks in the cache (may exceed the bound only while pinned). */
  cachedBytes: number;
  /** Bytes of dirty blocks in the cache. */
  dirtyBytes: number;
  /** cow: bytes of written blocks kept in the private overlay outside the cache. */
  overlayBytes: number;
  /** Syncs issued (fdatasync). */
  syncs: number;
}

type Counters = Omit<BlockImageStats, 'requests' | 'cachedBytes' | 'dirtyBytes' | 'overlayBytes'>;

function zeroCounters(): Counters {
  return { readRequests: 0, writeRequests: 0, bytesRead: 0, bytesWritten: 0, hits: 0, misses: 0, prefetched: 0, evictions: 0, syncs: 0 };
}

interface Arena {
  addr: number;
  bytes: number;
  firstSlot: number;
  slots: number;
  buffer: ArrayBuffer;
}

function imageError(message: string, fix: string): MapvisorError {
  return new MapvisorError('EIMAGE', message, fix);
}

/** An image file behind a virtual block device with a bounded LRU cache of 4 KiB blocks. */
export class BlockImage implements BlockDev {
  readonly path: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly mode: MapMode;
  readonly direct: boolean;
  /** Cache bound in blocks (cacheBytes / 4096, at most the image's block count). */
  readonly capacity: number;
  private fd: number;
  private readonly blocks: number;
  private readonly tailBytes: number; // bytes of the last block inside the image (4096 unless the size is unaligned)
  private readonly raMax: number;

  // Slots: slot i is 4 KiB of host memory at slotAddr[i]; slots [0, capacity) are the primary arena(s).
  private arenas: Arena[] = [];
  private totalSlots = 0;
  private slotAddr = new Float64Array(0);
  private slotBlock = new Float64Array(0);
  private slotEpoch = new Float64Array(0);
  private slotDirty = new Uint8Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  private views: (Uint8Array | undefined)[] = [];
  private primaryFree: number[] = [];
  private overflowFree: number[] = [];
  private head = NONE; // most recently used
  private tail = NONE; // least recently used
  private readonly map = new Map<number, number>(); // block -> slot
  private readonly dirtySet = new Set<number>(); // dirty blocks in the cache
  private readonly overlay = new Map<number, Uint8Array>(); // cow: evicted dirty blocks
  private readonly iov = Buffer.alloc(IOV_MAX * IOVEC_SIZE);
  private readonly emptyView = new Uint8Array(0);

  private pinDepth = 0;
  private epoch = 0;
  private unsynced = false;
  private raNext = NONE;
  private raWindow = 1;
  private st: Counters = zeroCounters();

  private constructor(path: string, fd: number, size: number, o: BlockImageOptions) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.mode = o.mode;
    this.readOnly = o.mode === 'ro';
    this.direct = o.direct;
    this.blocks = Math.ceil(size / BLOCK_SIZE);
    this.tailBytes = size - (this.blocks - 1) * BLOCK_SIZE;
    // A cache larger than the image would never fill: it is bounded by the image's block count.
    this.capacity = Math.min(Math.floor(o.cacheBytes / BLOCK_SIZE), Math.max(this.blocks, MIN_CACHE_BLOCKS));
    this.raMax = Math.max(1, Math.min(IOV_MAX, Math.floor(o.readaheadBytes / BLOCK_SIZE)));
    for (let left = this.capacity; left > 0; ) {
      const n = Math.min(left, ARENA_MAX_SLOTS);
      this.addArena(n, true);
      left -= n;
    }
  }

  /**
   * Opens an image file as a block device. Throws MapvisorError for an image it cannot open, an
   * option out of range, or O_DIRECT on a file system that refuses it.
   */
  static open(path: string, opts: Partial<BlockImageOptions> = {}): BlockImage {
    const o: BlockImageOptions = {
      mode: opts.mode ?? 'rw',
      cacheBytes: opts.cacheBytes ?? DEFAULT_CACHE_BYTES,
      direct: opts.direct ?? false,
      readaheadBytes: opts.readaheadBytes ?? DEFAULT_READAHEAD_BYTES,
    };
    if (o.mode !== 'rw' && o.mode !== 'ro' && o.mode !== 'cow') {
      throw new UsageError(`unknown image mode ${String(o.mode)}`, "use 'rw', 'ro' or 'cow'");
    }
    if (!Number.isSafeInteger(o.cacheBytes) || o.cacheBytes < MIN_CACHE_BLOCKS * BLOCK_SIZE) {
      throw new UsageError(`block cache of ${o.cacheBytes} bytes is too small`, `give at least ${(MIN_CACHE_BLOCKS * BLOCK_SIZE) / 1024} KiB`);
    }
    if (!Number.isSafeInteger(o.readaheadBytes) || o.readaheadBytes < 0) {
      throw new UsageError(`readahead of ${o.readaheadBytes} bytes is not a size`, 'give a byte count >= 0');
    }
    const base = (o.mode === 'rw' ? libc.O_RDWR : libc.O_RDONLY) | libc.O_CLOEXEC;
    const fd = libc.open(path, base | (o.direct ? O_DIRECT : 0), 0);
    if (fd < 0) {
      const err = libc.errno();
      if (o.direct && err === EINVAL) {
        // Is it O_DIRECT that the file system refuses, or the open itself?
        const probe = libc.open(path, base, 0);
        if (probe >= 0) {
          libc.close(probe);
          throw directRefused(path);
        }
      }
      throw openError(path, err);
    }
    let dev: BlockImage | undefined;
    try {
      const st = nodefs.fstatSync(fd);
      if (!st.isFile() && !st.isBlockDevice()) {
        throw imageError(`the disk image ${path} is not a regular file`, 'give the path of an ext4 image file');
      }
      const size = st.size;
      if (size < 2048) {
        throw imageError(`the disk image ${path} is too small (${size} bytes) to hold an ext4 file system`, 'create it with mkfs.ext4');
      }
      if (o.direct && size % BLOCK_SIZE !== 0) {
        throw imageError(
          `the disk image ${path} is ${size} bytes, not a whole number of 4 KiB blocks, which cache=none (O_DIRECT) needs`,
          'grow it to a multiple of 4096 bytes (truncate -s), or drop cache=none',
        );
      }
      dev = new BlockImage(path, fd, size, o);
      if (o.direct) dev.probeDirect();
      return dev;
    } catch (e) {
      if (dev) dev.release();
      else libc.close(fd);
      throw e;
    }
  }

  // ------------------------------------------------------------------ BlockDev

  bytes(offset: number, length: number): Uint8Array {
    this.checkRange(offset, length);
    if (length === 0) return this.emptyView;
    const block = offset >>> 0 === offset ? offset >>> LOG_BLOCK : Math.floor(offset / BLOCK_SIZE);
    const inner = offset - block * BLOCK_SIZE;
    if (inner + length > BLOCK_SIZE) {
      throw new RangeError(`block device access crosses a 4 KiB boundary: offset ${offset} length ${length}`);
    }
    const view = this.viewOf(this.lookup(block));
    return inner === 0 && length === BLOCK_SIZE ? view : view.subarray(inner, inner + length);
  }

  dirty(offset: number, length: number): void {
    this.checkRange(offset, length);
    if (this.readOnly) throw new RangeError('write to a read-only image');
    if (length === 0) return;
    const first = Math.floor(offset / BLOCK_SIZE);
    const last = Math.floor((offset + length - 1) / BLOCK_SIZE);
    for (let b = first; b <= last; b++) {
      const s = this.map.get(b);
      if (s === undefined) {
        throw new RangeError(`dirty() for block ${b}, which is not in the cache: its view was evicted (pin() the device around each file-system call)`);
      }
      if (this.slotDirty[s] === 0) {
        this.slotDirty[s] = 1;
        this.dirtySet.add(b);
      }
    }
  }

  /** Writes dirty blocks of the range (default: all) back with coalesced pwrites, then fdatasync (rw). */
  flush(offset = 0, length = this.size - offset): void {
    if (this.fd < 0 || this.mode !== 'rw') return;
    this.checkRange(offset, length);
    if (this.dirtySet.size > 0 && length > 0) {
      const first = Math.floor(offset / BLOCK_SIZE);
      const end = Math.ceil((offset + length) / BLOCK_SIZE);
      const todo: number[] = [];
      if (end - first < this.dirtySet.size) {
        for (let b = first; b < end; b++) if (this.dirtySet.has(b)) todo.push(b);
      } else {
        for (const b of this.dirtySet) if (b >= first && b < end) todo.push(b);
        todo.sort((a, b) => a - b);
      }
      for (let i = 0; i < todo.length; ) {
        let j = i + 1;
        while (j < todo.length && todo[j] === todo[j - 1]! + 1 && j - i < IOV_MAX) j++;
        this.writeRun(todo[i]!, j - i);
        i = j;
      }
    }
    if (this.unsynced) {
      if (libc.fdatasync(this.fd) !== 0) {
        const err = libc.errno();
        throw imageError(`cannot write the disk image ${this.path} back (fdatasync: errno ${err})`, 'check free space and the health of the host file system');
      }
      this.st.syncs++;
      this.unsynced = false;
    }
  }

  // ------------------------------------------------------------------ the pin protocol

  /** Starts (or nests) a file-system call: blocks touched from now on stay put until the outermost unpin(). */
  pin(): void {
    if (this.pinDepth++ === 0) this.epoch++;
  }

  /** Ends a pin(); the outermost one shrinks the cache back to its bound. */
  unpin(): void {
    if (this.pinDepth === 0) throw new Error('BlockImage.unpin() without pin()');
    if (--this.pinDepth === 0 && this.fd >= 0) this.shrink();
  }

  /** Nesting depth of pin(). */
  get pinned(): number {
    return this.pinDepth;
  }

  // ------------------------------------------------------------------ host addresses and ranges

  /** Host address of the cached copy of `block` (4 KiB units), loading it on a miss. Valid under pin(). */
  blockAddr(block: number): number {
    if (this.fd < 0) throw new RangeError('image is closed');
    if (!Number.isSafeInteger(block) || block < 0 || block >= this.blocks) {
      throw new RangeError(`block ${block} out of range (device of ${this.blocks} blocks)`);
    }
    return this.slotAddr[this.lookup(block)]!;
  }

  /**
   * Host address of `block` for a caller that overwrites the whole block (all 4096 bytes, or up to
   * the end of the image for a partial last block) and then calls dirty(): on a miss the block is
   * not read from the image (as a kernel skips the read for a full-page write). Valid under pin().
   */
  /** BlockDev.overwrite: a whole aligned block is not read first; anything else is bytes(). */
  overwrite(offset: number, length: number): Uint8Array {
    if (offset % BLOCK_SIZE !== 0 || length !== BLOCK_SIZE) return this.bytes(offset, length);
    const addr = this.blockAddrForOverwrite(offset / BLOCK_SIZE);
    return new Uint8Array(libc.view(addr, BLOCK_SIZE));
  }

  blockAddrForOverwrite(block: number): number {
    if (this.fd < 0) throw new RangeError('image is closed');
    if (!Number.isSafeInteger(block) || block < 0 || block >= this.blocks) {
      throw new RangeError(`block ${block} out of range (device of ${this.blocks} blocks)`);
    }
    const s = this.map.get(block);
    if (s !== undefined) {
      this.st.hits++;
      this.touch(s);
      return this.slotAddr[s]!;
    }
    this.st.misses++;
    if (this.overlay.has(block)) return this.slotAddr[this.fromOverlay(block)]!;
    const n = this.allocSlot();
    if (this.blockBytes(block) < BLOCK_SIZE) libc.memset(this.slotAddr[n]!, 0, BLOCK_SIZE);
    this.insert(block, n);
    return this.slotAddr[n]!;
  }

  /**
   * Makes the blocks covering [offset, offset+length) cached, reading the missing ones with as few
   * requests as possible (one preadv per run of consecutive missing blocks). Not pinned, at most the
   * cache bound is loaded (the start of the range). Returns the number of blocks that were read.
   */
  loadRange(offset: number, length: number): number {
    this.checkRange(offset, length);
    if (length === 0) return 0;
    const first = Math.floor(offset / BLOCK_SIZE);
    let end = Math.ceil((offset + length) / BLOCK_SIZE);
    if (this.pinDepth === 0) end = Math.min(end, first + this.capacity);
    let loaded = 0;
    for (let b = first; b < end; ) {
      const s = this.map.get(b);
      if (s !== undefined) {
        this.st.hits++;
        this.touch(s);
        b++;
        continue;
      }
      if (this.overlay.has(b)) {
        this.st.misses++;
        this.fromOverlay(b);
        b++;
        continue;
      }
      let e = b + 1;
      while (e < end && e - b < IOV_MAX && !this.map.has(e) && !this.overlay.has(e)) e++;
      this.st.misses += e - b;
      this.readRun(b, e - b);
      loaded += e - b;
      b = e;
    }
    return loaded;
  }

  stats(): BlockImageStats {
    const s = this.st;
    return {
      requests: s.readRequests + s.writeRequests,
      readRequests: s.readRequests,
      writeRequests: s.writeRequests,
      bytesRead: s.bytesRead,
      bytesWritten: s.bytesWritten,
      hits: s.hits,
      misses: s.misses,
      prefetched: s.prefetched,
      evictions: s.evictions,
      cachedBytes: this.map.size * BLOCK_SIZE,
      dirtyBytes: this.dirtySet.size * BLOCK_SIZE,
      overlayBytes: this.overlay.size * BLOCK_SIZE,
      syncs: s.syncs,
    };
  }

  /** Zeroes the counters (not the cache). */
  resetStats(): void {
    this.st = zeroCounters();
  }

  /**
   * Writes dirty blocks back (rw), then drops every cached block: the next accesses read the image
   * again (a cold cache). cow keeps its writes in the overlay. Not while pinned.
   */
  dropCache(): void {
    if (this.pinDepth > 0) throw new Error('BlockImage.dropCache() while pinned');
    this.flush();
    while (this.tail !== NONE) this.freeSlot(this.evict(this.tail));
    this.raNext = NONE;
  }

  /** Flushes (rw), then releases the cache and the file; every view and address handed out becomes invalid. */
  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      this.release();
    }
  }

  // ------------------------------------------------------------------ internals

  private checkRange(offset: number, length: number): void {
    if (this.fd < 0) throw new RangeError('image is closed');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`device access out of range: offset ${offset} length ${length} (device size ${this.size})`);
    }
  }

  private release(): void {
    for (const a of this.arenas) libc.munmap(a.addr, a.bytes);
    this.arenas = [];
    this.views = [];
    this.map.clear();
    this.dirtySet.clear();
    this.overlay.clear();
    this.head = this.tail = NONE;
    this.pinDepth = 0;
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }

  /** The slot holding `block` (a hit, or loaded now), marked most recently used. */
  private lookup(block: number): number {
    const s = this.map.get(block);
    if (s !== undefined) {
      this.st.hits++;
      if (this.pinDepth > 0) this.slotEpoch[s] = this.epoch;
      if (this.head !== s) this.moveToHead(s);
      return s;
    }
    this.st.misses++;
    if (this.overlay.has(block)) {
      this.raNext = NONE;
      return this.fromOverlay(block);
    }
    // Sequential readahead: a miss where the last one (or its readahead) ended doubles the window.
    let n = 1;
    if (block === this.raNext) {
      this.raWindow = Math.min(this.raWindow * 2, this.raMax);
      n = this.raWindow;
    } else this.raWindow = 1;
    if (n > 1) {
      const limit = Math.min(this.blocks, block + n, this.pinDepth === 0 ? block + this.capacity : Infinity);
      let e = block + 1;
      while (e < limit && !this.map.has(e) && !this.overlay.has(e)) e++;
      n = e - block;
    }
    this.readRun(block, n);
    this.st.prefetched += n - 1;
    this.raNext = block + n;
    return this.map.get(block)!;
  }

  private viewOf(s: number): Uint8Array {
    let v = this.views[s];
    if (v === undefined) {
      const a = this.arenaOf(s);
      v = new Uint8Array(a.buffer, (s - a.firstSlot) * BLOCK_SIZE, BLOCK_SIZE);
      this.views[s] = v;
    }
    return v;
  }

  private arenaOf(s: number): Arena {
    for (const a of this.arenas) if (s >= a.firstSlot && s < a.firstSlot + a.slots) return a;
    throw new RangeError(`cache slot ${s} out of range`);
  }

  // LRU list (doubly linked through slot indices).
  private unlink(s: number): void {
    const p = this.prev[s]!;
    const n = this.next[s]!;
    if (p !== NONE) this.next[p] = n;
    else this.head = n;
    if (n !== NONE) this.prev[n] = p;
    else this.tail = p;
  }
  private pushHead(s: number): void {
    this.prev[s] = NONE;
    this.next[s] = this.head;
    if (this.head !== NONE) this.prev[this.head] = s;
    this.head = s;
    if (this.tail === NONE) this.tail = s;
  }
  private moveToHead(s: number): void {
    this.unlink(s);
    this.pushHead(s);
  }
  private touch(s: number): void {
    if (this.pinDepth > 0) this.slotEpoch[s] = this.epoch;
    if (this.head !== s) this.moveToHead(s);
  }

  /** Puts `block` (its data already in slot s) in the cache as most recently used. */
  private insert(block: number, s: number): void {
    this.slotBlock[s] = block;
    this.slotDirty[s] = 0;
    this.slotEpoch[s] = this.epoch;
    this.map.set(block, s);
    this.pushHead(s);
  }

  /** A slot for a new block: a free one, an evicted one, or (pinned, nothing evictable) overflow memory. */
  private allocSlot(): number {
    const free = this.primaryFree.pop();
    if (free !== undefined) return free;
    const t = this.tail;
    if (t !== NONE && (this.pinDepth === 0 || this.slotEpoch[t] !== this.epoch)) return this.evict(t);
    const o = this.overflowFree.pop();
    if (o !== undefined) return o;
    this.addArena(Math.min(ARENA_MAX_SLOTS, Math.max(OVERFLOW_MIN_SLOTS, this.totalSlots)), false);
    return this.overflowFree.pop()!;
  }

  private freeSlot(s: number): void {
    this.slotBlock[s] = NONE;
    if (s < this.capacity) this.primaryFree.push(s);
    else this.overflowFree.push(s);
  }

  /** Removes the block in slot s from the cache (writing it back or keeping it in the overlay if dirty); returns the slot. */
  private evict(s: number): number {
    const block = this.slotBlock[s]!;
    if (this.slotDirty[s] !== 0) {
      if (this.mode === 'rw') this.writeBackAround(block);
      else {
        this.overlay.set(block, this.viewOf(s).slice());
        this.slotDirty[s] = 0;
        this.dirtySet.delete(block);
      }
    }
    this.unlink(s);
    this.map.delete(block);
    this.slotBlock[s] = NONE;
    this.st.evictions++;
    return s;
  }

  /** cow: brings an overlay block back into the cache (dirty, so it returns to the overlay when evicted). */
  private fromOverlay(block: number): number {
    const data = this.overlay.get(block)!;
    const s = this.allocSlot();
    this.viewOf(s).set(data);
    this.overlay.delete(block);
    this.insert(block, s);
    this.slotDirty[s] = 1;
    this.dirtySet.add(block);
    return s;
  }

  /** Writes back the run of consecutive dirty cached blocks around `block` (a write-back cluster). */
  private writeBackAround(block: number): void {
    let lo = block;
    let hi = block;
    while (hi - lo + 1 < IOV_MAX && this.isDirty(lo - 1)) lo--;
    while (hi - lo + 1 < IOV_MAX && this.isDirty(hi + 1)) hi++;
    this.writeRun(lo, hi - lo + 1);
  }

  private isDirty(b: number): boolean {
    return b >= 0 && this.dirtySet.has(b);
  }

  /** Reads blocks [first, first+n) (none cached) into new slots with one request and caches them. */
  private readRun(first: number, n: number): void {
    const slots: number[] = [];
    try {
      for (let i = 0; i < n; i++) slots.push(this.allocSlot());
      const addrs = slots.map((s) => this.slotAddr[s]!);
      const lens = slots.map((_, i) => this.blockBytes(first + i));
      const last = first + n - 1;
      if (lens[n - 1]! < BLOCK_SIZE) libc.memset(addrs[n - 1]! + lens[n - 1]!, 0, BLOCK_SIZE - lens[n - 1]!);
      this.transfer(false, first * BLOCK_SIZE, addrs, lens, last);
    } catch (e) {
      for (const s of slots) this.freeSlot(s);
      throw e;
    }
    for (let i = 0; i < n; i++) this.insert(first + i, slots[i]!);
  }

  /** Writes cached dirty blocks [first, first+n) back with one request; they stay cached, clean. */
  private writeRun(first: number, n: number): void {
    const addrs: number[] = [];
    const lens: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = this.map.get(first + i)!;
      addrs.push(this.slotAddr[s]!);
      lens.push(this.blockBytes(first + i));
    }
    this.transfer(true, first * BLOCK_SIZE, addrs, lens, first + n - 1);
    for (let i = 0; i < n; i++) {
      this.slotDirty[this.map.get(first + i)!] = 0;
      this.dirtySet.delete(first + i);
    }
    this.unsynced = true;
  }

  /** Bytes of `block` inside the image (4096 except for an unaligned last block). */
  private blockBytes(block: number): number {
    return block === this.blocks - 1 ? this.tailBytes : BLOCK_SIZE;
  }

  /** One pread/pwrite (one segment) or preadv/pwritev (several), retried on EINTR and short transfers. */
  private transfer(write: boolean, pos: number, addrs: number[], lens: number[], lastBlock: number): void {
    let i = 0;
    let skip = 0; // bytes of segment i already done
    while (i < addrs.length) {
      const cnt = Math.min(addrs.length - i, IOV_MAX);
      let r: number;
      if (cnt === 1) {
        r = write ? libc.pwrite(this.fd, addrs[i]! + skip, lens[i]! - skip, pos) : libc.pread(this.fd, addrs[i]! + skip, lens[i]! - skip, pos);
      } else {
        for (let k = 0; k < cnt; k++) {
          const a = addrs[i + k]! + (k === 0 ? skip : 0);
          const l = lens[i + k]! - (k === 0 ? skip : 0);
          const o = k * IOVEC_SIZE;
          this.iov.writeUInt32LE(a % TWO32, o);
          this.iov.writeUInt32LE(Math.floor(a / TWO32), o + 4);
          this.iov.writeUInt32LE(l, o + 8);
          this.iov.writeUInt32LE(0, o + 12);
        }
        r = write ? libc.pwritev(this.fd, this.iov, cnt, pos) : libc.preadv(this.fd, this.iov, cnt, pos);
      }
      if (write) this.st.writeRequests++;
      else this.st.readRequests++;
      if (r < 0) {
        const err = libc.errno();
        if (err === EINTR) continue;
        throw this.ioError(write, pos, lastBlock, err);
      }
      if (r === 0) {
        if (write) throw this.ioError(write, pos, lastBlock, ENOSPC);
        // End of file (the image shrank under us): the rest reads as zeros.
        for (; i < addrs.length; i++, skip = 0) libc.memset(addrs[i]! + skip, 0, lens[i]! - skip);
        return;
      }
      if (write) this.st.bytesWritten += r;
      else this.st.bytesRead += r;
      pos += r;
      for (let left = r; left > 0; ) {
        const rem = lens[i]! - skip;
        if (left >= rem) {
          left -= rem;
          i++;
          skip = 0;
        } else {
          skip += left;
          left = 0;
        }
      }
    }
  }

  private ioError(write: boolean, pos: number, lastBlock: number, err: number): MapvisorError {
    if (this.direct && err === EINVAL) return directRefused(this.path);
    const what = write ? 'write' : 'read';
    return imageError(
      `cannot ${what} the disk image ${this.path} at offset ${pos} (blocks up to ${lastBlock}; errno ${err})`,
      write && err === ENOSPC ? 'free space on the host file system' : 'check the image file and the health of the host disk',
    );
  }

  /** O_DIRECT: some file systems accept the open but refuse the I/O; find out now. */
  private probeDirect(): void {
    const s = this.allocSlot();
    try {
      const r = libc.pread(this.fd, this.slotAddr[s]!, BLOCK_SIZE, 0);
      if (r < 0) {
        const err = libc.errno();
        if (err === EINVAL) throw directRefused(this.path);
        throw this.ioError(false, 0, 0, err);
      }
    } finally {
      this.freeSlot(s);
    }
  }

  private addArena(slots: number, primary: boolean): void {
    const bytes = slots * BLOCK_SIZE;
    const addr = libc.mmap(0, bytes, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS | libc.MAP_NORESERVE, -1, 0);
    if (addr === -1 || addr === 0) {
      throw new MapvisorError('ENOMEM', `cannot allocate ${bytes} bytes for the block cache (errno ${libc.errno()})`, 'give a smaller cache size');
    }
    const firstSlot = this.totalSlots;
    this.arenas.push({ addr, bytes, firstSlot, slots, buffer: libc.view(addr, bytes) });
    const total = firstSlot + slots;
    const grow = <T extends Float64Array | Int32Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const a = make(total);
      a.set(old);
      return a;
    };
    this.slotAddr = grow(this.slotAddr, (n) => new Float64Array(n));
    this.slotBlock = grow(this.slotBlock, (n) => new Float64Array(n));
    this.slotEpoch = grow(this.slotEpoch, (n) => new Float64Array(n));
    this.slotDirty = grow(this.slotDirty, (n) => new Uint8Array(n));
    this.prev = grow(this.prev, (n) => new Int32Array(n));
    this.next = grow(this.next, (n) => new Int32Array(n));
    for (let k = 0; k < slots; k++) {
      const s = firstSlot + k;
      this.slotAddr[s] = addr + k * BLOCK_SIZE;
      this.slotBlock[s] = NONE;
    }
    // Free stacks pop from the end: push in reverse so that low slots are used first.
    const list = primary ? this.primaryFree : this.overflowFree;
    for (let s = total - 1; s >= firstSlot; s--) list.push(s);
    this.totalSlots = total;
  }

  /** After the outermost unpin: evict down to the bound, move overflow blocks into primary slots, release overflow memory. */
  private shrink(): void {
    while (this.map.size > this.capacity) this.freeSlot(this.evict(this.tail));
    if (this.totalSlots === this.capacity) return;
    for (let s = this.capacity; s < this.totalSlots; s++) {
      const block = this.slotBlock[s]!;
      if (block === NONE) continue;
      const d = this.primaryFree.pop()!;
      libc.memmove(this.slotAddr[d]!, this.slotAddr[s]!, BLOCK_SIZE);
      // d takes s's place in the LRU list.
      const p = this.prev[s]!;
      const n = this.next[s]!;
      this.prev[d] = p;
      this.next[d] = n;
      if (p !== NONE) this.next[p] = d;
      else this.head = d;
      if (n !== NONE) this.prev[n] = d;
      else this.tail = d;
      this.slotBlock[d] = block;
      this.slotDirty[d] = this.slotDirty[s]!;
      this.slotEpoch[d] = this.slotEpoch[s]!;
      this.map.set(block, d);
      this.slotBlock[s] = NONE;
      this.slotDirty[s] = 0;
    }
    // Overflow memory goes back to the host; the address space stays reserved for the next burst.
    this.overflowFree = [];
    for (const a of this.arenas) {
      if (a.firstSlot < this.capacity) continue;
      libc.madvise(a.addr, a.bytes, libc.MADV_DONTNEED);
      for (let s = a.firstSlot + a.slots - 1; s >= a.firstSlot; s--) this.overflowFree.push(s);
    }
  }
}

/** Runs `fn` with the device pinned when it supports pinning (BlockImage), as one file-system call. */
export function withPin<T>(dev: BlockDev, fn: () => T): T {
  if (!(dev instanceof BlockImage)) return fn();
  dev.pin();
  try {
    return fn();
  } finally {
    dev.unpin();
  }
}

function directRefused(path: string): MapvisorError {
  return imageError(
    `cache=none needs a host file system that supports O_DIRECT, and the one holding ${path} does not (tmpfs before Linux 6.6, ramfs)`,
    'put the image on ext4 or xfs, or drop cache=none',
  );
}

function openError(path: string, err: number): MapvisorError {
  return imageError(
    `cannot open the disk image ${path}: ${errnoName(err)}`,
    err === EACCES || err === EROFS ? 'make the image writable or open it read-only' : 'check the image path',
  );
}
