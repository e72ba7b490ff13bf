/**
 * The program's root file system: an ext4 image file mapped once into the VMM (MAP_SHARED), served by
 * src/storage/ext4, and mapped again page by page into the guest window when the program maps a file
 * (the image's own pages: one copy in the host page cache for every VM that uses it).
 *
 * Modes: `rw` takes an exclusive lock on the image and writes it in place; `ro` takes a shared lock,
 * maps it PROT_READ and answers EROFS to every change; `cow` takes a shared lock and keeps the image
 * read-only and shared: the pages the program changes go to a copy-on-write layer of its own
 * (src/storage/layer.ts), a named file that lasts (`layer`) or a temporary one deleted at exit. Its
 * unchanged pages stay one copy in the host page cache for every VM of the image. (blk mode runs a
 * `cow` image on a private sparse copy.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { MapvisorError, UsageError } from '../../errors.js';
import * as libc from '../../host/libc.js';
import { MappedImage, type MapMode } from '../../storage/blockdev.js';
import { BlockImage, BLOCK_SIZE, type BlockImageStats } from '../../storage/blkdev.js';
import { LayeredImage } from '../../storage/layer.js';
import * as libcCopy from '../../host/libc.js';
import { Ext4 } from '../../storage/ext4/fs.js';
import { SharedFileCache } from './sharedcache.js';

export type ImageMode = 'rw' | 'ro' | 'cow';

/**
 * How the image is reached. 'memory': mapped once, the program's file data is the mapping's pages.
 * 'blk': the conventional path, through a block device with a VMM-side cache (src/storage/blkdev.ts).
 */
export type StorageMode = 'memory' | 'blk';

export interface ImageSpec {
  path: string;
  mode: ImageMode;
  storage?: StorageMode;
  /** blk: bytes of block cache (default 256 MiB). */
  cacheBytes?: number;
  /** blk: O_DIRECT (cache=none). */
  direct?: boolean;
  /** blk: fill file mappings at mmap time ('eager', the default) or on first touch ('fault', userfaultfd). */
  blkMmap?: 'eager' | 'fault';
  /** cow (memory mode): the layer file that keeps the program's changes (made when missing); default a temporary one. */
  layer?: string;
  /** cow: start the layer as a copy of this layer file (a checkpoint's); `layer` must not exist then. */
  layerFrom?: string;
}

/** Where a run of image pages is mapped from: the image's file or the layer's, at the same offset. */
export interface PageSource {
  /** Byte offset in the image (and in the layer). */
  offset: number;
  length: number;
  /** Region-map backing id and host fd of the file. */
  id: number;
  fd: number;
}

/** Parse `PATH[,ro|,cow|,rw]`. */
export function parseImageSpec(text: string): ImageSpec {
  const m = /^(.*?)(?:,(rw|ro|cow))?$/.exec(text)!;
  const path = m[1]!;
  if (!path) throw new UsageError(`--image ${JSON.stringify(text)} names no file`, 'give --image PATH[,ro|,cow]');
  return { path, mode: (m[2] as ImageMode | undefined) ?? 'rw' };
}

export class RootFs {
  readonly spec: ImageSpec;
  readonly storage: StorageMode;
  /** The mapped image (memory mode), or null. */
  readonly mapped: MappedImage | LayeredImage | null;
  /** cow in memory mode: the copy-on-write layer over the shared image, or null. */
  readonly layer: LayeredImage | null;
  /** Backing id of the layer file in the region map (used only with a layer). */
  readonly layerBackingId: number;
  /** The block device (blk mode), or null. */
  readonly blk: BlockImage | null;
  readonly fs: Ext4;
  /** The image file's fd, for mapping its pages into the window (and holding the lock). */
  readonly fd: number;
  /** Backing id of the image in the region map. */
  readonly backingId: number;
  /** Called after write() put `len` bytes from host address `src` at `off` of file `ino`. */
  onWrite: ((ino: number, off: number, len: number, src: number) => void) | null = null;
  /** Every process's hook for writes (each keeps its own copies of shared file mappings in step). */
  readonly writeHooks = new Set<(ino: number, off: number, len: number, src: number) => void>();
  /** The sandbox's shared-file cache (see sharedcache.ts), where a platform needs one; else null. */
  sharedCache: SharedFileCache | null = null;

  /** The shared-file cache, made on first use (before any process that maps it starts). */
  enableSharedCache(): SharedFileCache {
    if (!this.sharedCache) {
      const cache = new SharedFileCache();
      this.sharedCache = cache;
      this.writeHooks.add((ino, off, len, src) => cache.refresh(ino, off, len, src));
    }
    return this.sharedCache;
  }

  private constructor(spec: ImageSpec, dev: MappedImage | LayeredImage | BlockImage, fs: Ext4, fd: number, backingId: number, layerBackingId: number) {
    this.spec = spec;
    this.storage = dev instanceof BlockImage ? 'blk' : 'memory';
    this.mapped = dev instanceof BlockImage ? null : dev;
    this.layer = dev instanceof LayeredImage ? dev : null;
    this.layerBackingId = layerBackingId;
    this.blk = dev instanceof BlockImage ? dev : null;
    this.fs = fs;
    this.fd = fd;
    this.backingId = backingId;
  }

  get readOnly(): boolean {
    return this.fs.readOnly;
  }

  static open(spec: ImageSpec, backingId: number, layerBackingId = backingId + 1): RootFs {
    if (spec.layer !== undefined && spec.mode !== 'cow') throw new UsageError(`a layer (${spec.layer}) goes with a copy-on-write image, not ${spec.mode}`, `open the image with ,cow`);
    if (spec.layer !== undefined && spec.storage === 'blk') throw new UsageError('a layer file is for --storage memory', 'drop the layer, or use --storage memory');
    let st;
    try {
      st = statSync(spec.path);
    } catch {
      throw new UsageError(`the disk image ${spec.path} does not exist`, 'create one with: mapvisor image create OUT.img');
    }
    if (!st.isFile()) throw new UsageError(`the disk image ${spec.path} is not a regular file`, 'give the path of an ext4 image file');
    const fd = libc.open(spec.path, spec.mode === 'rw' ? libc.O_RDWR | libc.O_CLOEXEC : libc.O_RDONLY | libc.O_CLOEXEC, 0);
    if (fd < 0) {
      throw new MapvisorError('EIMAGE', `cannot open the disk image ${spec.path} (errno ${libc.errno()})`, spec.mode === 'rw' ? 'open it with ,ro or ,cow, or fix its permissions' : 'check its permissions');
    }
    const lock = spec.mode === 'rw' ? libc.LOCK_EX : libc.LOCK_SH;
    if (libc.flock(fd, lock | libc.LOCK_NB) !== 0) {
      libc.close(fd);
      throw new MapvisorError(
        'EIMAGELOCKED',
        spec.mode === 'rw'
          ? `the disk image ${spec.path} is in use by another VM`
          : `the disk image ${spec.path} is open for writing by another VM`,
        spec.mode === 'rw' ? 'wait for it to finish, or share it read-only with ,ro or ,cow' : 'wait for the writer to finish',
      );
    }
    let tmpDir: string | null = null;
    let runFd = fd;
    let mapPath = spec.path;
    let mapMode: MapMode = spec.mode === 'ro' ? 'ro' : 'rw';
    try {
      if (spec.mode === 'cow' && spec.storage !== 'blk') {
        // The image stays open read-only (and shared-locked: it must not change under the layer).
        let layerPath = spec.layer;
        if (layerPath === undefined) {
          tmpDir = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-cow-'));
          layerPath = join(tmpDir, 'layer');
        }
        if (spec.layerFrom !== undefined) {
          if (existsSync(layerPath)) throw new UsageError(`the layer ${layerPath} exists already`, 'restore onto a path that does not exist yet');
          execFileSync('cp', ['--reflink=auto', '--sparse=always', spec.layerFrom, layerPath]);
        }
        const image = LayeredImage.open(spec.path, fd, layerPath);
        if (tmpDir) {
          // A temporary layer lives only as long as its open file: nothing is left if the VMM is killed.
          rmSync(tmpDir, { recursive: true, force: true });
          tmpDir = null;
        }
        try {
          const fs = Ext4.open(image, { name: spec.path, readOnly: false });
          return new RootFs(spec, image, fs, fd, backingId, layerBackingId);
        } catch (e) {
          image.close(false);
          throw e;
        }
      }
      if (spec.mode === 'cow') {
        tmpDir = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-cow-'));
        mapPath = join(tmpDir, basename(spec.path));
        execFileSync('cp', ['--reflink=auto', '--sparse=always', spec.path, mapPath]);
        runFd = libc.open(mapPath, libc.O_RDWR | libc.O_CLOEXEC, 0);
        if (runFd < 0) throw new MapvisorError('EIMAGE', `cannot open the private copy of ${spec.path}`, 'check free space in the temporary directory');
        mapMode = 'rw';
      }
      const image =
        spec.storage === 'blk'
          ? BlockImage.open(mapPath, { mode: mapMode, ...(spec.cacheBytes ? { cacheBytes: spec.cacheBytes } : {}), direct: spec.direct ?? false })
          : MappedImage.open(mapPath, mapMode);
      const fs = Ext4.open(image, { name: spec.path, readOnly: spec.mode === 'ro' });
      if (spec.mode === 'cow') {
        libc.close(fd); // the lock is only needed while copying
        // The private copy lives only as long as its open files: nothing is left if the VMM is killed.
        rmSync(tmpDir!, { recursive: true, force: true });
        tmpDir = null;
      }
      return new RootFs(spec, image, fs, runFd, backingId, layerBackingId);
    } catch (e) {
      if (runFd !== fd) libc.close(runFd);
      libc.close(fd);
      if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
      throw e;
    }
  }

  private get dev(): MappedImage | LayeredImage | BlockImage {
    return (this.mapped ?? this.blk)!;
  }

  /** Can the program's file pages be the image's own pages (memory mode, 4 KiB blocks)? */
  get mapsInPlace(): boolean {
    return this.mapped !== null && this.fs.geo.blockSize % 4096 === 0;
  }

  /** Copy `length` image bytes at `physical` to host address `dst` (the program's memory). */
  copyOut(physical: number, dst: number, length: number): void {
    if (this.mapped) {
      libcCopy.memmove(dst, this.mapped.base + physical, length);
      return;
    }
    const blk = this.blk!;
    blk.loadRange(physical, length);
    for (let p = physical, o = 0; o < length; ) {
      const n = Math.min(length - o, BLOCK_SIZE - (p % BLOCK_SIZE));
      libcCopy.memmove(dst + o, blk.blockAddr(Math.floor(p / BLOCK_SIZE)) + (p % BLOCK_SIZE), n);
      p += n;
      o += n;
    }
  }

  /** Is `id` a region-map backing of this image (the image's file, or its layer's)? */
  ownsBacking(id: number): boolean {
    return id === this.backingId || (this.layer !== null && id === this.layerBackingId);
  }

  /**
   * Where the program maps the image pages [physical, physical+length) from (page-aligned). Without a
   * layer, the image itself. With one: a MAP_SHARED mapping must see every later write, so its pages
   * are copied up first and mapped from the layer; a private mapping takes each page from where it is
   * now (a page copied up later leaves the mapping on the image's: like overlayfs, and POSIX leaves it
   * unspecified whether a MAP_PRIVATE mapping sees later writes).
   */
  sources(physical: number, length: number, shared: boolean): PageSource[] {
    const layer = this.layer;
    if (!layer) return [{ offset: physical, length, id: this.backingId, fd: this.fd }];
    if (shared) {
      layer.copyUp(physical, length);
      return [{ offset: physical, length, id: this.layerBackingId, fd: layer.layerFd }];
    }
    return layer.sources(physical, length).map((r) => (r.layer ? { offset: r.offset, length: r.length, id: this.layerBackingId, fd: layer.layerFd } : { offset: r.offset, length: r.length, id: this.backingId, fd: this.fd }));
  }

  /** Copy `length` bytes from host address `src` into the image at `physical`. */
  copyIn(physical: number, src: number, length: number): void {
    if (this.layer) {
      this.layer.writeFrom(physical, src, length);
      return;
    }
    if (this.mapped) {
      libcCopy.memmove(this.mapped.base + physical, src, length);
      return;
    }
    const blk = this.blk!;
    for (let p = physical, o = 0; o < length; ) {
      const n = Math.min(length - o, BLOCK_SIZE - (p % BLOCK_SIZE));
      // A whole-block write need not read the block first; a partial one does (read-modify-write).
      const block = Math.floor(p / BLOCK_SIZE);
      const at = n === BLOCK_SIZE ? blk.blockAddrForOverwrite(block) : blk.blockAddr(block) + (p % BLOCK_SIZE);
      libcCopy.memmove(at, src + o, n);
      blk.dirty(p, n);
      p += n;
      o += n;
    }
  }

  /** Bracket one system call: blk-mode views stay valid until endOp. */
  beginOp(): void {
    this.blk?.pin();
  }
  endOp(): void {
    this.blk?.unpin();
  }

  blockStats(): BlockImageStats | null {
    return this.blk ? this.blk.stats() : null;
  }

  /** Flush [offset, offset+length) of the image (or all of it) to the file. */
  flush(offset?: number, length?: number): void {
    this.dev.flush(offset, length);
  }

  /** Seal the superblock and (durable) flush metadata, data and the file itself; see Ext4.sync. */
  sync(durable = true): void {
    if (!this.fs.readOnly) this.fs.sync(durable);
    else if (durable) this.dev.flush();
  }

  private closed = false;

  /**
   * Close the file system and the image (durable: flushed to disk first; not for a hand-over). A
   * second call does nothing.
   */
  close(durable = true): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.fs.readOnly) this.fs.close(durable);
    // The block device always writes its cache back (the image is the only place its writes go).
    if (this.dev instanceof BlockImage) this.dev.close();
    else this.dev.close(durable);
    libc.close(this.fd);
    this.sharedCache?.close();
  }
}
