/**
 * A copy-on-write layer over a shared disk image: the image stays read-only and shared by every VM
 * that uses it (its unchanged pages are one copy in the host page cache), and the pages this VM
 * changes live in a layer file of its own.
 *
 * The layer file is sparse and as large as the image (rounded up to a page), plus one header page:
 * a page of the image that was changed is the page at the same offset of the layer, and a hole means
 * "the image's page". So the layer needs no map of its own (SEEK_DATA/SEEK_HOLE give it back at the
 * next open), it can be mapped page for page beside the image, and laying it over a copy of the image
 * (`flattenLayer`) gives the file system the VM saw.
 *
 * The VMM's view is one mapping of the image's size: the image MAP_PRIVATE (a write the file system
 * code makes before it reports it lands in a private page, never in the image), with every page that
 * is in the layer mapped MAP_SHARED from the layer file over it. A write through the view is reported
 * with `dirty()` (the page is then copied up: written to the layer and mapped from there); data and
 * zeros go in with `writeFrom()` and `zero()` (pages moved first with `prepareWrite()`: whole pages
 * need no copy). The program's own mappings
 * take each page from where it is now (`inLayer`); a MAP_SHARED one is copied up first
 * (`copyUp`), so that later writes reach it.
 *
 * Header (the page at `headerOffset`), little-endian:
 */
import { createHash } from 'node:crypto';
import * as nodefs from 'node:fs';
import { MapvisorError } from '../errors.js';
import * as libc from '../host/libc.js';
import { MappingViews, type BlockDev } from './blockdev.js';

const PAGE = 4096;

export const LAYER_MAGIC = 'MVLAYER1';
export const LAYER_VERSION = 1;
/** Byte offsets in the header page. */
export const LAYER_HEADER = {
  magic: 0, // 8 bytes, ASCII
  version: 8, // u32
  pageSize: 12, // u32
  imageSize: 16, // u64
  baseId: 24, // 32 bytes: SHA-256 of the image's identity (size and superblock)
  basePathLength: 56, // u16
  basePath: 58, // UTF-8, at most BASE_PATH_MAX bytes (for messages)
  size: 58 + 1024,
} as const;
const BASE_PATH_MAX = 1024;

const ENXIO = 6;

function pageUp(n: number): number {
  return Math.ceil(n / PAGE) * PAGE;
}

/** The identity of an image a layer is made over: its size and its superblock (which changes with any write). */
export function baseIdentity(fd: number, size: number): Buffer {
  const sb = Buffer.alloc(1024);
  nodefs.readSync(fd, sb, 0, 1024, 1024);
  return createHash('sha256').update(`${size}\0`).update(sb).digest();
}

export interface LayerHeader {
  version: number;
  pageSize: number;
  imageSize: number;
  baseId: Buffer;
  basePath: string;
}

export function encodeLayerHeader(h: LayerHeader): Buffer {
  const b = Buffer.alloc(PAGE);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  b.write(LAYER_MAGIC, LAYER_HEADER.magic, 'ascii');
  v.setUint32(LAYER_HEADER.version, h.version, true);
  v.setUint32(LAYER_HEADER.pageSize, h.pageSize, true);
  v.setBigUint64(LAYER_HEADER.imageSize, BigInt(h.imageSize), true);
  h.baseId.copy(b, LAYER_HEADER.baseId, 0, 32);
  const path = Buffer.from(h.basePath, 'utf8').subarray(0, BASE_PATH_MAX);
  v.setUint16(LAYER_HEADER.basePathLength, path.length, true);
  path.copy(b, LAYER_HEADER.basePath);
  return b;
}

export function decodeLayerHeader(b: Buffer): LayerHeader | null {
  if (b.length < LAYER_HEADER.size || b.toString('ascii', LAYER_HEADER.magic, LAYER_HEADER.magic + 8) !== LAYER_MAGIC) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const len = Math.min(v.getUint16(LAYER_HEADER.basePathLength, true), BASE_PATH_MAX);
  return {
    version: v.getUint32(LAYER_HEADER.version, true),
    pageSize: v.getUint32(LAYER_HEADER.pageSize, true),
    imageSize: Number(v.getBigUint64(LAYER_HEADER.imageSize, true)),
    baseId: Buffer.from(b.subarray(LAYER_HEADER.baseId, LAYER_HEADER.baseId + 32)),
    basePath: b.toString('utf8', LAYER_HEADER.basePath, LAYER_HEADER.basePath + len),
  };
}

/** Does the file system holding `near` report one written page among holes as exactly that page? */
function holesArePages(near: string): boolean {
  const probe = `${near}.probe-${process.pid}`;
  const fd = nodefs.openSync(probe, 'w+', 0o600);
  try {
    nodefs.ftruncateSync(fd, 64 * PAGE);
    nodefs.writeSync(fd, Buffer.alloc(PAGE, 1), 0, PAGE, 17 * PAGE);
    return libc.lseek(fd, 0, libc.SEEK_DATA) === 17 * PAGE && libc.lseek(fd, 17 * PAGE, libc.SEEK_HOLE) === 18 * PAGE;
  } finally {
    nodefs.closeSync(fd);
    nodefs.rmSync(probe, { force: true });
  }
}

/** The runs of pages held by a layer file (offsets and lengths, page-aligned), below `end`. */
export function layerRuns(fd: number, end: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let at = 0; at < end; ) {
    const data = libc.lseek(fd, at, libc.SEEK_DATA);
    if (data < 0) {
      if (libc.errno() === ENXIO) break;
      throw new MapvisorError('ELAYER', `cannot read the layer's map (lseek SEEK_DATA: errno ${libc.errno()})`, 'keep layers on a local file system (ext4, XFS, btrfs, tmpfs)');
    }
    if (data >= end) break;
    let hole = libc.lseek(fd, data, libc.SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    const s = Math.floor(data / PAGE) * PAGE;
    runs.push([s, pageUp(hole) - s]);
    at = pageUp(hole);
  }
  return runs;
}

export interface LayerStats {
  /** Pages of the image held in the layer (changed, or copied up for a shared mapping). */
  pages: number;
  /** Runs of consecutive layer pages (mappings of the view). */
  runs: number;
  /** Copy-ups done by this VM (runs). */
  copyUps: number;
  /** Bytes copied from the image into the layer by this VM (partial pages and pages mapped shared). */
  bytesCopied: number;
}

/** An image file shared read-only, seen through a copy-on-write layer file of this VM's. */
export class LayeredImage implements BlockDev {
  readonly size: number;
  readonly readOnly = false;
  readonly path: string;
  readonly layerPath: string;
  /** The image, opened read-only (held for the VM's life: the lock on it is the caller's). */
  readonly baseFd: number;
  /** The layer file, read-write. */
  readonly layerFd: number;
  private baseAddr: number;
  private views: MappingViews;
  /** One bit per page: in the layer. */
  private readonly bits: Uint32Array;
  private pageCount = 0;
  /** Runs of layer pages (each one mapping of the view, and one split of the image's). */
  private runCount = 0;
  private copyUps = 0;
  private bytesCopied = 0;

  private constructor(path: string, layerPath: string, baseFd: number, layerFd: number, base: number, size: number) {
    this.path = path;
    this.layerPath = layerPath;
    this.baseFd = baseFd;
    this.layerFd = layerFd;
    this.baseAddr = base;
    this.size = size;
    this.views = new MappingViews(base, size);
    this.bits = new Uint32Array(Math.ceil(pageUp(size) / PAGE / 32));
  }

  /** Offset of the header page in a layer file over an image of `size` bytes. */
  static headerOffset(size: number): number {
    return pageUp(size);
  }

  /**
   * Open `layerPath` over the image open at `baseFd` (read-only), creating the layer when it does not
   * exist. A layer made over another image, or over this one before it changed, is refused.
   */
  static open(path: string, baseFd: number, layerPath: string): LayeredImage {
    const st = nodefs.fstatSync(baseFd);
    const size = st.size;
    if (size < 2048) throw new MapvisorError('EIMAGE', `the disk image ${path} is too small (${size} bytes) to hold an ext4 file system`, 'create it with mkfs.ext4');
    const id = baseIdentity(baseFd, size);
    const hdrAt = LayeredImage.headerOffset(size);
    let layerFd: number;
    let created = false;
    try {
      layerFd = nodefs.openSync(layerPath, nodefs.constants.O_RDWR | nodefs.constants.O_CREAT | nodefs.constants.O_EXCL, 0o600);
      created = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new MapvisorError('ELAYER', `cannot create the layer ${layerPath}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, 'check that its directory exists and is writable');
      }
      try {
        layerFd = nodefs.openSync(layerPath, 'r+');
      } catch (e2) {
        throw new MapvisorError('ELAYER', `cannot open the layer ${layerPath}: ${(e2 as NodeJS.ErrnoException).code ?? 'error'}`, 'check its permissions');
      }
    }
    let addr = 0;
    try {
      if (libc.flock(layerFd, libc.LOCK_EX | libc.LOCK_NB) !== 0) {
        throw new MapvisorError('EIMAGELOCKED', `the layer ${layerPath} is in use by another VM`, 'wait for it to finish, or give this VM a layer of its own');
      }
      if (created) {
        nodefs.ftruncateSync(layerFd, hdrAt + PAGE);
        // The map is the file's holes: the file system must report them page by page.
        if (libc.lseek(layerFd, 0, libc.SEEK_DATA) !== -1 || libc.errno() !== ENXIO || !holesArePages(layerPath)) {
          throw new MapvisorError('ELAYER', `the file system of ${layerPath} does not report holes in files page by page (SEEK_DATA)`, 'keep layers on ext4, XFS, btrfs or tmpfs');
        }
        nodefs.writeSync(layerFd, encodeLayerHeader({ version: LAYER_VERSION, pageSize: PAGE, imageSize: size, baseId: id, basePath: path }), 0, PAGE, hdrAt);
      } else {
        const lst = nodefs.fstatSync(layerFd);
        const b = Buffer.alloc(PAGE);
        const n = lst.size >= hdrAt + PAGE ? nodefs.readSync(layerFd, b, 0, PAGE, hdrAt) : 0;
        const h = n === PAGE ? decodeLayerHeader(b) : null;
        if (h === null) {
          // Another image size, or not a layer at all: read the header where the file ends.
          const tail = lst.size >= PAGE ? Buffer.alloc(PAGE) : null;
          if (tail) nodefs.readSync(layerFd, tail, 0, PAGE, lst.size - PAGE);
          const other = tail ? decodeLayerHeader(tail) : null;
          if (other) throw new MapvisorError('ELAYER', `the layer ${layerPath} was made over ${other.basePath} (${other.imageSize} bytes), not ${path} (${size} bytes)`, 'give the image it was made over, or remove the layer');
          throw new MapvisorError('ELAYER', `${layerPath} is not a mapvisor layer`, 'give a layer file made by mapvisor, or a path that does not exist yet');
        }
        if (h.version !== LAYER_VERSION || h.pageSize !== PAGE) {
          throw new MapvisorError('ELAYER', `the layer ${layerPath} is format version ${h.version} (page ${h.pageSize}); this mapvisor reads version ${LAYER_VERSION}`, 'use it with the mapvisor that made it');
        }
        if (!h.baseId.equals(id)) {
          throw new MapvisorError('ELAYER', `the layer ${layerPath} was made over ${h.basePath} as it was then, and ${path} has changed or is another image`, 'give the image it was made over, unchanged, or remove the layer');
        }
      }
      addr = libc.mmap(0, size, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_NORESERVE, baseFd, 0);
      if (addr === -1 || addr === 0) throw new MapvisorError('EIMAGE', `cannot map the disk image ${path} (errno ${libc.errno()})`, 'check that the image is a regular file on a local file system');
      const img = new LayeredImage(path, layerPath, baseFd, layerFd, addr, size);
      for (const [s, n] of layerRuns(layerFd, hdrAt)) img.mapLayer(s, n);
      return img;
    } catch (e) {
      if (addr > 0) libc.munmap(addr, size);
      nodefs.closeSync(layerFd);
      if (created) nodefs.rmSync(layerPath, { force: true });
      throw e;
    }
  }

  /** Host address of byte 0 of the view. */
  get base(): number {
    if (this.baseAddr === 0) throw new RangeError('image is closed');
    return this.baseAddr;
  }

  /** Is the page holding byte `offset` in the layer? */
  inLayer(offset: number): boolean {
    const p = Math.floor(offset / PAGE);
    return (this.bits[p >>> 5]! & (1 << (p & 31))) !== 0;
  }

  /**
   * Where each page of [offset, offset+length) (page-aligned) lives now: runs of pages, each either in
   * the layer or in the image, at the same offset in both files.
   */
  sources(offset: number, length: number): Array<{ offset: number; length: number; layer: boolean }> {
    const out: Array<{ offset: number; length: number; layer: boolean }> = [];
    for (let p = offset; p < offset + length; p += PAGE) {
      const layer = this.inLayer(p);
      const last = out[out.length - 1];
      if (last && last.layer === layer) last.length += PAGE;
      else out.push({ offset: p, length: PAGE, layer });
    }
    return out;
  }

  bytes(offset: number, length: number): Uint8Array {
    if (this.baseAddr === 0) throw new RangeError('image is closed');
    this.check(offset, length);
    return this.views.view(offset, length);
  }

  /** A write was made through bytes(): its pages go to the layer (with what was written). */
  dirty(offset: number, length: number): void {
    this.check(offset, length);
    if (length > 0) this.copyUp(offset, length);
  }

  /**
   * `length` bytes are about to be written at `offset`: the pages move to the layer first. A page the
   * write covers whole is not copied (the layer's hole is mapped, and the write fills it).
   */
  prepareWrite(offset: number, length: number): void {
    this.check(offset, length);
    if (length > 0) this.copyUp(offset, length, { offset, end: offset + length });
  }

  /**
   * Write `length` bytes from host address `src` at `offset`: the pages move to the layer (whole ones
   * without a copy) and the bytes go in with pwrite. Storing through the view would fault each fresh
   * page of the layer in, which on some host file systems (ext4) costs several times the copy.
   */
  writeFrom(offset: number, src: number, length: number): void {
    this.prepareWrite(offset, length);
    if (length > 0) this.pwriteAll(src, length, offset);
  }

  /** Zero [offset, offset+length) (see writeFrom). */
  zero(offset: number, length: number): void {
    this.prepareWrite(offset, length);
    const z = zeroPage();
    for (let o = 0; o < length; o += ZERO_BYTES) this.pwriteAll(z, Math.min(ZERO_BYTES, length - o), offset + o);
  }

  private pwriteAll(src: number, length: number, offset: number): void {
    for (let done = 0; done < length; ) {
      const w = libc.pwrite(this.layerFd, src + done, length - done, offset + done);
      if (w <= 0) throw new MapvisorError('ELAYER', `cannot write the layer ${this.layerPath} (errno ${libc.errno()})`, 'check free space on its file system');
      done += w;
    }
  }

  /**
   * Move the pages of [offset, offset+length) that are not in the layer yet into it (their current
   * contents, except pages wholly inside `overwrite`), and map them from there. Short gaps between
   * layer runs are filled too, so the view stays a few large mappings (the host's limit on mappings
   * is per process).
   */
  copyUp(offset: number, length: number, overwrite: { offset: number; end: number } | null = null): void {
    const first = Math.floor(offset / PAGE);
    const last = Math.ceil((offset + length) / PAGE); // exclusive
    const total = this.bits.length * 32;
    const maxPage = Math.ceil(this.size / PAGE);
    for (let p = first; p < last; ) {
      if (this.bit(p)) {
        p++;
        continue;
      }
      let e = p;
      while (e < last && !this.bit(e)) e++;
      // Join a layer run that ends or starts within `gap` pages.
      const gap = this.gap();
      let s = p;
      for (let q = p - 1; q >= Math.max(0, p - gap); q--) {
        if (this.bit(q)) {
          s = q + 1;
          break;
        }
      }
      let f = e;
      if (e === last) {
        for (let q = e; q < Math.min(maxPage, total, e + gap); q++) {
          if (this.bit(q)) {
            f = q;
            break;
          }
        }
      }
      this.moveRun(s, f, overwrite);
      p = Math.max(e, f);
    }
  }

  /**
   * Pages between two layer runs that a copy-up fills rather than leave as a gap. Each run costs the
   * VMM two mappings, and the host allows a process about 65,000 (vm.max_map_count): past a few
   * thousand runs, larger gaps are filled (more bytes copied, fewer mappings).
   */
  private gap(): number {
    return this.runCount < 2048 ? 8 : this.runCount < 8192 ? 64 : 1024;
  }

  private bit(p: number): boolean {
    return (this.bits[p >>> 5]! & (1 << (p & 31))) !== 0;
  }

  /** Pages [s, e) (none in the layer) to the layer. */
  private moveRun(s: number, e: number, overwrite: { offset: number; end: number } | null): void {
    // Write the pages' contents (whole pages the caller overwrites are skipped) in stretches.
    let copyFrom = -1;
    const flushCopy = (to: number): void => {
      if (copyFrom < 0) return;
      const off = copyFrom * PAGE;
      const n = Math.min(to * PAGE, pageUp(this.size)) - off;
      this.writeLayer(off, n);
      copyFrom = -1;
    };
    for (let p = s; p < e; p++) {
      const whole = overwrite !== null && p * PAGE >= overwrite.offset && (p + 1) * PAGE <= overwrite.end;
      if (whole) flushCopy(p);
      else if (copyFrom < 0) copyFrom = p;
    }
    flushCopy(e);
    this.mapLayer(s * PAGE, (e - s) * PAGE);
    this.copyUps++;
  }

  private writeLayer(off: number, n: number): void {
    // The view's last page may reach past the image's end; the layer holds whole pages.
    const inImage = Math.min(n, this.size - off);
    this.pwriteAll(this.baseAddr + off, inImage, off);
    this.bytesCopied += inImage;
  }

  private mapLayer(off: number, n: number): void {
    const len = Math.min(n, pageUp(this.size) - off);
    const r = libc.mmap(this.baseAddr + off, len, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED | libc.MAP_FIXED, this.layerFd, off);
    if (r !== this.baseAddr + off) {
      throw new MapvisorError('ELAYER', `cannot map the layer ${this.layerPath} (errno ${libc.errno()})`, 'raise vm.max_map_count, or give the VM a fresh layer');
    }
    const first = off / PAGE;
    const end = (off + len) / PAGE;
    // Pages [first, end) join the layer: a new run, or one that merges with its neighbours.
    this.runCount += 1 - (first > 0 && this.bit(first - 1) ? 1 : 0) - (this.bit(end) ? 1 : 0);
    for (let p = first; p < end; p++) {
      if (!this.bit(p)) {
        this.bits[p >>> 5]! |= 1 << (p & 31);
        this.pageCount++;
      }
    }
  }

  stats(): LayerStats {
    return { pages: this.pageCount, runs: this.runCount, copyUps: this.copyUps, bytesCopied: this.bytesCopied };
  }

  /** Makes the layer's pages in the range (default: all, and the layer file itself) durable. */
  flush(offset = 0, length = this.size - offset): void {
    if (this.baseAddr === 0) return;
    this.check(offset, length);
    const start = Math.floor(offset / PAGE) * PAGE;
    const end = Math.min(this.size, offset + length);
    if (end > start && libc.msync(this.baseAddr + start, end - start, libc.MS_SYNC) !== 0) {
      throw new MapvisorError('ELAYER', `cannot write the layer ${this.layerPath} back (errno ${libc.errno()})`, 'check free space on its file system');
    }
    if (offset === 0 && length === this.size) libc.fsync(this.layerFd);
  }

  /** Unmaps the view and closes the layer (durable: flushed first). The image's fd is the caller's. */
  close(durable = true): void {
    if (this.baseAddr === 0) return;
    if (durable) this.flush();
    this.views = new MappingViews(0, 0);
    libc.munmap(this.baseAddr, this.size);
    this.baseAddr = 0;
    nodefs.closeSync(this.layerFd);
  }

  private check(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`device access out of range: offset ${offset} length ${length} (device size ${this.size})`);
    }
  }
}

const ZERO_BYTES = 1 << 20;
let zeroes = 0;
/** A read-only MiB of zeros (host address), for zero(). */
function zeroPage(): number {
  if (zeroes === 0) {
    zeroes = libc.mmap(0, ZERO_BYTES, libc.PROT_READ, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
    if (zeroes === -1 || zeroes === 0) throw new MapvisorError('ENOMEM', 'cannot map a page of zeros', 'free some host memory');
  }
  return zeroes;
}

/**
 * Lay the layer over a copy of its image: `out` becomes the file system the VM saw (an ext4 image of
 * its own, for e2fsck, debugfs or another VM). Returns the bytes taken from the layer.
 */
export function flattenLayer(imagePath: string, layerPath: string, out: string): number {
  const baseFd = nodefs.openSync(imagePath, 'r');
  try {
    const size = nodefs.fstatSync(baseFd).size;
    const layerFd = nodefs.openSync(layerPath, 'r');
    try {
      const b = Buffer.alloc(PAGE);
      const hdrAt = LayeredImage.headerOffset(size);
      const h = nodefs.readSync(layerFd, b, 0, PAGE, hdrAt) === PAGE ? decodeLayerHeader(b) : null;
      if (h === null) throw new MapvisorError('ELAYER', `${layerPath} is not a layer over an image of ${size} bytes`, `give the image the layer was made over`);
      if (!h.baseId.equals(baseIdentity(baseFd, size))) throw new MapvisorError('ELAYER', `the layer ${layerPath} was made over ${h.basePath} as it was then, not ${imagePath} as it is`, 'give the image it was made over, unchanged');
      nodefs.copyFileSync(imagePath, out);
      const outFd = nodefs.openSync(out, 'r+');
      let bytes = 0;
      try {
        const buf = Buffer.alloc(1 << 20);
        for (const [s, n] of layerRuns(layerFd, hdrAt)) {
          for (let o = s; o < s + n; ) {
            const want = Math.min(buf.length, s + n - o, size - o);
            if (want <= 0) break;
            const got = nodefs.readSync(layerFd, buf, 0, want, o);
            nodefs.writeSync(outFd, buf, 0, got, o);
            o += got;
            bytes += got;
          }
        }
        nodefs.fsyncSync(outFd);
      } finally {
        nodefs.closeSync(outFd);
      }
      return bytes;
    } finally {
      nodefs.closeSync(layerFd);
    }
  } finally {
    nodefs.closeSync(baseFd);
  }
}
