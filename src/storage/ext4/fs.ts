/**
 * Ext4: a read-write ext2/3/4 file system on a BlockDev, as a library for the syscall layer.
 *
 * Every metadata structure is read and written in place through the device's live views; every
 * modification is followed by the matching checksum update (metadata_csum: superblock, group
 * descriptors, bitmaps, inodes, extent blocks, directory leaves and htree nodes; gdt_csum:
 * descriptors), so that `e2fsck -fn` stays clean after any sequence of operations. The journal is
 * not used (writes go straight to their home location); an image whose journal needs recovery is
 * refused at open.
 *
 * File data is never copied out of the image by this layer except by the convenience read()/write():
 * fileRuns() tells the caller where each byte range of a file lives in the image, and the caller
 * copies between the image mapping and guest memory.
 */
import { E } from '../../abi/errno.js';
import type { BlockDev } from '../blockdev.js';
import { MapvisorError } from '../../errors.js';
import { descBlock, groupDescChecksum } from './groups.js';
import { Allocator } from './alloc.js';
import { blockmapLimit, blockmapLookup, blockmapSet, blockmapTruncate } from './blockmap.js';
import { crc32cUpdate } from './crc32c.js';
import type { FsCtx } from './ctx.js';
import {
  DOTDOT,
  dirAdd,
  dirInit,
  dirIsEmpty,
  dirIterate,
  dirLookup,
  dirRemove,
  dirRetarget,
  isIndexed,
  loadDirBlock,
  type DirCtx,
} from './dir.js';
import { NAME_MAX } from './dirent.js';
import { corrupted, EFSBADCRC, FsError } from './errors.js';
import {
  appendExtent,
  extentLookup,
  initExtentRoot,
  lastExtent,
  MAX_LBLK,
  normalizeExtents,
  readExtents,
  storeExtents,
  type Extent,
} from './extents.js';
import {
  EXTRA_ISIZE_DEFAULT,
  FL_EXTENTS,
  FL_INLINE_DATA,
  fileTypeOfMode,
  GOOD_OLD_INODE_SIZE,
  I_BLOCK_SIZE,
  Inode,
  inodeCsumSeed,
  ROOT_INO,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  setInodeChecksum,
  verifyInodeChecksum,
  type Timespec,
} from './inode.js';
import {
  COMPAT_DIR_INDEX,
  INCOMPAT_EXTENTS,
  INCOMPAT_FILETYPE,
  INCOMPAT_LARGEDIR,
  INCOMPAT_META_BG,
  readSuperblock,
  RO_COMPAT_LARGE_FILE,
  SB_FEATURE_RO_COMPAT,
  SB_OFFSET,
  SB_R_BLOCKS_COUNT_HI,
  SB_R_BLOCKS_COUNT_LO,
  SB_SIZE,
  SB_WTIME,
  SB_OVERHEAD_CLUSTERS,
  sealSuperblock,
  INCOMPAT_64BIT,
  type Geometry,
} from './superblock.js';

export { ROOT_INO } from './inode.js';
export type { Timespec } from './inode.js';

/** Largest link count (EXT4_LINK_MAX). */
export const LINK_MAX = 65000;
/** Longest path (PATH_MAX, including the terminating NUL). */
export const PATH_MAX = 4096;
/** Most symlinks followed in one resolution (MAXSYMLINKS). */
export const MAX_SYMLINKS = 40;

export interface Stat {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** Allocated space in 512-byte units. */
  blocks: number;
  blksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** Creation time, when the inode has room for it. */
  crtime: Timespec | null;
  rdev: number;
  generation: number;
}

/** A piece of a file: `physical` is the byte offset in the image, null for a hole (reads as zeros). */
export interface Run {
  offset: number;
  length: number;
  physical: number | null;
}

export interface DirEntry {
  /** The name, decoded as UTF-8 (lossy for other bytes: use `raw`). */
  name: string;
  raw: Uint8Array;
  ino: number;
  /** DT_* type (the directory entry's file type). */
  type: number;
  /** Position of the entry; `next` is the cursor to continue after it (getdents64 d_off). */
  pos: number;
  next: number;
}

export interface StatFs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
  fsid: [number, number];
}

export interface ResolveOptions {
  /** Directory relative paths start from (default: the root). */
  cwdIno?: number;
  /** The root for absolute paths and for '..' (default: the file system root). */
  rootIno?: number;
  /** Follow a symlink in the final component (default true). */
  followFinal?: boolean;
}

export interface OwnerOptions {
  uid?: number;
  gid?: number;
}

export interface OpenOptions {
  /** Open read-only even if the device is writable. */
  readOnly?: boolean;
  /** Name of the image in error messages. */
  name?: string;
  /** Clock for timestamps (default: the host's). */
  now?: () => Timespec;
  /** Verify metadata checksums when reading (default true). */
  verifyChecksums?: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function toBytes(s: string | Uint8Array): Uint8Array {
  return typeof s === 'string' ? enc.encode(s) : s;
}

function isDot(n: Uint8Array): boolean {
  return n.length === 1 && n[0] === 0x2e;
}
function isDotDot(n: Uint8Array): boolean {
  return n.length === 2 && n[0] === 0x2e && n[1] === 0x2e;
}

function hostNow(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

export class Ext4 implements DirCtx, FsCtx {
  readonly geo: Geometry;
  readonly readOnly: boolean;
  /** Why the file system is read-only (null when writable). */
  readonly readOnlyReason: string | null;
  readonly filetype: boolean;
  readonly dirIndex: boolean;
  readonly dxMaxLevels: number;
  readonly extentsFeature: boolean;
  readonly rootIno = ROOT_INO;
  private readonly alloc: Allocator;
  private readonly now: () => Timespec;
  private readonly verify: boolean;
  readonly verifiedBlocks = new Set<number>();
  /** Open references per inode (see iref/irelease); unlinked inodes stay until released. */
  private readonly refs = new Map<number, number>();
  private readonly orphans = new Set<number>();

  private constructor(
    readonly dev: BlockDev,
    opts: OpenOptions,
  ) {
    const { geometry, readOnlyReason } = readSuperblock(dev, opts.name);
    this.geo = geometry;
    this.readOnlyReason = opts.readOnly ? 'opened read-only' : readOnlyReason;
    this.readOnly = this.readOnlyReason !== null;
    this.filetype = (geometry.incompat & INCOMPAT_FILETYPE) !== 0;
    this.dirIndex = (geometry.compat & COMPAT_DIR_INDEX) !== 0;
    this.dxMaxLevels = geometry.incompat & INCOMPAT_LARGEDIR ? 3 : 2;
    this.extentsFeature = (geometry.incompat & INCOMPAT_EXTENTS) !== 0;
    this.now = opts.now ?? hostNow;
    this.verify = opts.verifyChecksums ?? true;
    this.alloc = new Allocator(dev, geometry);
  }

  /** Opens the file system on `dev`. Throws MapvisorError for an image it cannot use. */
  static open(dev: BlockDev, opts: OpenOptions = {}): Ext4 {
    const name = opts.name ?? 'the image';
    try {
      const fs = new Ext4(dev, opts);
      fs.checkGroupDescriptors();
      const root = fs.iget(ROOT_INO);
      if (!root.isDir) throw corrupted('the root inode is not a directory');
      return fs;
    } catch (e) {
      if (e instanceof FsError || e instanceof RangeError) {
        throw new MapvisorError('EIMAGE', `${name} has a corrupted file system (${e.message})`, 'run e2fsck -fy IMAGE');
      }
      throw e;
    }
  }

  /** Verifies every group descriptor's checksum and the sanity of its counts. */
  private checkGroupDescriptors(): void {
    const geo = this.geo;
    for (let g = 0; g < geo.groupCount; g++) {
      const gd = this.alloc.desc(g);
      if ((geo.metadataCsum || geo.gdtCsum) && gd.checksum !== groupDescChecksum(geo, g, gd.raw)) {
        throw new FsError(EFSBADCRC, `group descriptor ${g}: checksum mismatch`);
      }
      if (gd.freeBlocks > geo.blocksPerGroup || gd.freeInodes > geo.inodesPerGroup || gd.itableUnused > geo.inodesPerGroup) {
        throw corrupted(`group descriptor ${g}: impossible counts`);
      }
      this.checkGroupLocations(g, gd.blockBitmap, gd.inodeBitmap, gd.inodeTable);
    }
  }

  /**
   * A group's bitmaps and inode table lie inside the file system, clear of the primary superblock and
   * descriptor blocks (and of their reserved growth), and clear of each other: otherwise allocating
   * would overwrite the metadata that says where things are (found by the image fuzzer).
   */
  private checkGroupLocations(g: number, blockBitmap: number, inodeBitmap: number, inodeTable: number): void {
    const geo = this.geo;
    const tableBlocks = Math.ceil((geo.inodesPerGroup * geo.inodeSize) / geo.blockSize);
    const primaryEnd = descBlock(geo, geo.groupCount - 1) + 1 + (geo.incompat & INCOMPAT_META_BG ? 0 : geo.reservedGdtBlocks);
    const inFs = (b: number, n: number): boolean => Number.isSafeInteger(b) && b >= geo.firstDataBlock && b + n <= geo.blocksCount;
    const clearOfPrimary = (b: number, n: number): boolean => b + n <= geo.firstDataBlock || b >= primaryEnd || (geo.incompat & INCOMPAT_META_BG) !== 0;
    const overlap = (a: number, an: number, b: number, bn: number): boolean => a < b + bn && b < a + an;
    for (const [what, b, n] of [['block bitmap', blockBitmap, 1], ['inode bitmap', inodeBitmap, 1], ['inode table', inodeTable, tableBlocks]] as const) {
      if (!inFs(b, n)) throw corrupted(`group descriptor ${g}: the ${what} at block ${b} lies outside the file system`);
      if (!clearOfPrimary(b, n)) throw corrupted(`group descriptor ${g}: the ${what} at block ${b} lies on the superblock or group descriptors`);
    }
    if (overlap(blockBitmap, 1, inodeBitmap, 1) || overlap(blockBitmap, 1, inodeTable, tableBlocks) || overlap(inodeBitmap, 1, inodeTable, tableBlocks)) {
      throw corrupted(`group descriptor ${g}: its bitmaps and inode table overlap`);
    }
  }

  // ---------------------------------------------------------------- FsCtx

  block(pblk: number): Uint8Array {
    this.checkRange(pblk, 1, 'block');
    return this.dev.bytes(pblk * this.geo.blockSize, this.geo.blockSize);
  }
  markDirty(pblk: number): void {
    this.dev.dirty(pblk * this.geo.blockSize, this.geo.blockSize);
  }
  checkRange(pblk: number, count: number, what: string): void {
    if (!(Number.isSafeInteger(pblk) && count >= 1 && pblk >= this.geo.firstDataBlock && pblk + count <= this.geo.blocksCount)) {
      throw corrupted(`${what}: blocks ${pblk}+${count} lie outside the file system`);
    }
  }
  allocMeta(inode: Inode, goal: number): number {
    const [b] = this.alloc.allocBlocks(goal, 1);
    inode.setBlocks512(inode.blocks512(this.geo.log2BlockSize) + this.geo.blockSize / 512);
    return b;
  }
  allocData(inode: Inode, goal: number, count: number): [number, number] {
    const r = this.alloc.allocBlocks(goal, count);
    inode.setBlocks512(inode.blocks512(this.geo.log2BlockSize) + (r[1] * this.geo.blockSize) / 512);
    return r;
  }
  freeBlocks(inode: Inode, pblk: number, count: number): void {
    const cur = inode.blocks512(this.geo.log2BlockSize);
    inode.setBlocks512(Math.max(0, cur - (count * this.geo.blockSize) / 512));
    this.alloc.freeBlocks(pblk, count);
    // A freed block may come back as file data that the program writes: forget it was verified.
    if (this.verifiedBlocks.size > 0) for (let i = 0; i < count; i++) this.verifiedBlocks.delete(pblk + i);
  }
  inodeSeed(inode: Inode): number {
    return inodeCsumSeed(this.geo.csumSeed, inode.ino, inode.generation);
  }
  goalFor(inode: Inode): number {
    const g = Math.floor((inode.ino - 1) / this.geo.inodesPerGroup);
    const gd = this.alloc.desc(g);
    // Just past the group's inode table when it lives in the group, else the group's start.
    const first = this.geo.firstDataBlock + g * this.geo.blocksPerGroup;
    const itEnd = gd.inodeTable + Math.ceil((this.geo.inodesPerGroup * this.geo.inodeSize) / this.geo.blockSize);
    return itEnd > first && itEnd < first + this.geo.blocksPerGroup ? itEnd : first;
  }
  dirBlockNo(dir: Inode, lblk: number): number {
    const m = this.mapBlock(dir, lblk);
    if (m.pblk === null) throw corrupted(`directory ${dir.ino} has a hole at block ${lblk}`);
    return m.pblk;
  }
  appendDirBlock(dir: Inode): { lblk: number; pblk: number } {
    const bs = this.geo.blockSize;
    const lblk = dir.size / bs;
    let goal = this.goalFor(dir);
    if (lblk > 0) {
      const prev = this.mapBlock(dir, lblk - 1);
      if (prev.pblk !== null) goal = prev.pblk + 1;
    }
    const [pblk] = this.allocData(dir, goal, 1);
    try {
      this.mapInsert(dir, lblk, pblk, 1, false);
    } catch (e) {
      this.freeBlocks(dir, pblk, 1);
      this.seal(dir);
      throw e;
    }
    this.block(pblk).fill(0);
    this.markDirty(pblk);
    dir.size = (lblk + 1) * bs;
    this.seal(dir);
    return { lblk, pblk };
  }

  // ---------------------------------------------------------------- inodes

  private inodeOffset(ino: number): number {
    const geo = this.geo;
    if (!Number.isInteger(ino) || ino < 1 || ino > geo.inodesCount) throw corrupted(`inode number ${ino} out of range`);
    const g = Math.floor((ino - 1) / geo.inodesPerGroup);
    const idx = (ino - 1) % geo.inodesPerGroup;
    return this.alloc.desc(g).inodeTable * geo.blockSize + idx * geo.inodeSize;
  }

  /** Live access to inode `ino` (checksum verified). */
  iget(ino: number): Inode {
    const raw = this.dev.bytes(this.inodeOffset(ino), this.geo.inodeSize);
    const inode = new Inode(ino, raw);
    if (this.geo.metadataCsum && this.verify && !verifyInodeChecksum(this.geo.csumSeed, ino, raw)) {
      throw new FsError(EFSBADCRC, `inode ${ino}: checksum mismatch`);
    }
    if (raw.length > GOOD_OLD_INODE_SIZE && GOOD_OLD_INODE_SIZE + inode.extraIsize > raw.length) throw corrupted(`inode ${ino}: bad i_extra_isize`);
    return inode;
  }

  sealInode(inode: Inode): void {
    this.seal(inode);
  }

  /** Writes back the inode's checksum after changes and marks it dirty. */
  private seal(inode: Inode): void {
    if (this.geo.metadataCsum) setInodeChecksum(this.geo.csumSeed, inode.ino, inode.raw);
    this.dev.dirty(this.inodeOffset(inode.ino), this.geo.inodeSize);
  }

  private writable(): void {
    if (this.readOnly) throw new FsError(E.EROFS, this.readOnlyReason ?? undefined);
  }

  stat(ino: number): Stat {
    const i = this.iget(ino);
    const special = i.type === S_IFCHR || i.type === S_IFBLK;
    return {
      ino,
      mode: i.mode,
      nlink: i.linksCount,
      uid: i.uid,
      gid: i.gid,
      size: i.size,
      blocks: i.blocks512(this.geo.log2BlockSize),
      blksize: this.geo.blockSize,
      atime: i.atime,
      mtime: i.mtime,
      ctime: i.ctime,
      crtime: i.crtime,
      rdev: special ? i.rdev : 0,
      generation: i.generation,
    };
  }

  // ---------------------------------------------------------------- block mapping

  private usesExtents(inode: Inode): boolean {
    if (inode.flags & FL_INLINE_DATA) throw new FsError(E.EOPNOTSUPP, `inode ${inode.ino} keeps its data inline, which mapvisor does not support`);
    return (inode.flags & FL_EXTENTS) !== 0;
  }

  /** Mapping of logical block lblk: pblk (null in a hole or unwritten extent), how many blocks the answer holds for, and whether it is unwritten. */
  private mapBlock(inode: Inode, lblk: number): { pblk: number | null; count: number; uninit: boolean } {
    if (this.usesExtents(inode)) {
      const m = extentLookup(this, inode, lblk);
      if (!m.extent) return { pblk: null, count: Math.max(1, m.holeEnd - lblk), uninit: false };
      const e = m.extent;
      return { pblk: e.uninit ? null : e.pblk + (lblk - e.lblk), count: e.lblk + e.len - lblk, uninit: e.uninit };
    }
    if (lblk >= blockmapLimit(this.geo.blockSize)) return { pblk: null, count: Number.MAX_SAFE_INTEGER, uninit: false };
    const m = blockmapLookup(this, inode, lblk);
    if (m.pblk === 0) return { pblk: null, count: Math.max(1, m.holeEnd - lblk), uninit: false };
    return { pblk: m.pblk, count: 1, uninit: false };
  }

  /** Maps [lblk, lblk+count) to [pblk, ...) (the range must be a hole). */
  private mapInsert(inode: Inode, lblk: number, pblk: number, count: number, uninit: boolean): void {
    if (this.usesExtents(inode)) {
      const e: Extent = { lblk, len: count, pblk, uninit };
      const last = lastExtent(this, inode);
      if ((last === null || lblk >= last.lblk + last.len) && count <= (uninit ? 32767 : 32768) && appendExtent(this, inode, e)) return;
      const tree = readExtents(this, inode);
      tree.extents.push(e);
      storeExtents(this, inode, normalizeExtents(tree.extents), tree.nodes);
      return;
    }
    for (let i = 0; i < count; i++) blockmapSet(this, inode, lblk + i, pblk + i);
  }

  private checkFileAccess(inode: Inode): void {
    if (inode.isDir) throw new FsError(E.EISDIR);
    if (!inode.isReg && !inode.isSymlink) throw new FsError(E.EINVAL);
  }

  /**
   * Where the bytes [offset, offset+length) of the file live: runs in order, `physical` a byte
   * offset in the image, or null for holes and unwritten extents (read as zeros). Not clipped to
   * the file size.
   */
  fileRuns(ino: number, offset: number, length: number): Run[] {
    return this.runsOf(this.iget(ino), offset, length);
  }

  private runsOf(inode: Inode, offset: number, length: number): Run[] {
    const bs = this.geo.blockSize;
    const runs: Run[] = [];
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const lblk = Math.floor(pos / bs);
      const inner = pos - lblk * bs;
      const m = lblk > MAX_LBLK ? { pblk: null, count: Infinity } : this.mapBlock(inode, lblk);
      const take = Math.min(end - pos, m.count * bs - inner);
      const physical = m.pblk === null ? null : m.pblk * bs + inner;
      const prev = runs[runs.length - 1];
      if (prev && ((prev.physical === null && physical === null) || (prev.physical !== null && physical !== null && prev.physical + prev.length === physical))) {
        prev.length += take;
      } else runs.push({ offset: pos, length: take, physical });
      pos += take;
    }
    return runs;
  }

  /** Copies file bytes at `offset` into dst (clipped to the file size); returns the count. */
  read(ino: number, offset: number, dst: Uint8Array): number {
    const inode = this.iget(ino);
    this.checkFileAccess(inode);
    const size = inode.size;
    if (offset >= size) return 0;
    const n = Math.min(dst.length, size - offset);
    let o = 0;
    for (const r of this.runsOf(inode, offset, n)) {
      if (r.physical === null) dst.fill(0, o, o + r.length);
      else this.copyOut(r.physical, dst, o, r.length);
      o += r.length;
    }
    return n;
  }

  private copyOut(physical: number, dst: Uint8Array, o: number, len: number): void {
    let p = physical;
    let left = len;
    while (left > 0) {
      const piece = Math.min(left, 4096 - (p % 4096));
      dst.set(this.dev.bytes(p, piece), o);
      p += piece;
      o += piece;
      left -= piece;
    }
  }

  private copyIn(physical: number, src: Uint8Array, o: number, len: number): void {
    let p = physical;
    let left = len;
    while (left > 0) {
      const piece = Math.min(left, 4096 - (p % 4096));
      this.dev.bytes(p, piece).set(src.subarray(o, o + piece));
      this.dev.dirty(p, piece);
      p += piece;
      o += piece;
      left -= piece;
    }
  }

  private zeroBlocks(pblk: number, count: number): void {
    const bs = this.geo.blockSize;
    if (this.dev.zero) {
      this.dev.zero(pblk * bs, count * bs);
      return;
    }
    for (let i = 0; i < count; i++) {
      for (let off = 0; off < bs; off += 4096) {
        const len = Math.min(4096, bs - off);
        (this.dev.overwrite ? this.dev.overwrite((pblk + i) * bs + off, len) : this.dev.bytes((pblk + i) * bs + off, len)).fill(0);
        this.dev.dirty((pblk + i) * bs + off, len);
      }
    }
  }

  /**
   * Writes src at `offset` (allocating blocks, growing the size); returns the count. Running out of
   * space part-way writes what fits and returns the short count (as Linux does); ENOSPC when nothing
   * fits, with nothing allocated.
   */
  write(ino: number, offset: number, src: Uint8Array): number {
    this.writable();
    if (src.length === 0) return 0;
    const inode = this.iget(ino);
    this.checkFileAccess(inode);
    const n = this.allocateRange(ino, offset, src.length, { partial: true });
    if (n === 0) throw new FsError(E.ENOSPC);
    let o = 0;
    for (const r of this.runsOf(this.iget(ino), offset, n)) {
      if (r.physical === null) throw corrupted(`inode ${ino}: hole after allocation`);
      this.copyIn(r.physical, src, o, r.length);
      o += r.length;
    }
    this.commitWrite(ino, offset + n);
    return n;
  }

  /** After data was written up to byte `end`: grows the size if needed and sets mtime and ctime. */
  commitWrite(ino: number, end: number): void {
    this.writable();
    const inode = this.iget(ino);
    if (end > inode.size) {
      inode.size = end;
      this.noteLargeFile(end);
    }
    const t = this.now();
    inode.mtime = t;
    inode.ctime = t;
    this.seal(inode);
  }

  private noteLargeFile(size: number): void {
    if (size > 0x7fffffff && !(this.geo.roCompat & RO_COMPAT_LARGE_FILE)) {
      const sb = this.dev.bytes(SB_OFFSET, SB_SIZE);
      const v = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
      v.setUint32(SB_FEATURE_RO_COMPAT, v.getUint32(SB_FEATURE_RO_COMPAT, true) | RO_COMPAT_LARGE_FILE, true);
      (this.geo as { roCompat: number }).roCompat |= RO_COMPAT_LARGE_FILE;
      sealSuperblock(this.dev, this.geo);
    }
  }

  /**
   * Makes sure blocks back the byte range [offset, offset+length) of a regular file. New blocks
   * are zero-filled and initialized; with `unwritten` (fallocate) they are unwritten extents that
   * read as zeros. Unwritten extents in the range become initialized (zero-filled) unless
   * `unwritten`. The size is not changed: see commitWrite / truncate.
   *
   * Blocks are allocated in file order, and running out of space stops at the first block that
   * cannot be backed, leaving exactly the blocks before it allocated (with every extent-tree or
   * indirect block they need) and nothing after it. Returns how many bytes from `offset` are backed:
   * `length`, or with `partial` fewer (0 when nothing could be allocated, and then nothing was);
   * without `partial` a shortfall throws ENOSPC (the blocks before the stop stay allocated).
   */
  allocateRange(ino: number, offset: number, length: number, opts: { unwritten?: boolean; partial?: boolean } = {}): number {
    this.writable();
    if (length <= 0) return 0;
    const bs = this.geo.blockSize;
    const inode = this.iget(ino);
    if (!inode.isReg && !inode.isSymlink) throw new FsError(inode.isDir ? E.EISDIR : E.EINVAL);
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + length - 1) / bs);
    const extents = this.usesExtents(inode);
    if (offset < 0 || last >= (extents ? MAX_LBLK : blockmapLimit(bs))) throw new FsError(E.EFBIG);
    const unwritten = (opts.unwritten ?? false) && extents;
    /** The first logical block that could not be backed (last + 1 when all were). */
    let stop = last + 1;
    try {
      if (extents) {
        const tail = lastExtent(this, inode);
        if (tail === null || first >= tail.lblk + tail.len) {
          // Appending past the last extent: the fast path.
          let lblk = first;
          let goal = tail ? tail.pblk + tail.len + (first - (tail.lblk + tail.len)) : this.goalFor(inode);
          while (lblk <= last) {
            const want = Math.min(last - lblk + 1, unwritten ? 32767 : 32768);
            let got: [number, number];
            try {
              got = this.allocData(inode, goal, want);
            } catch (e) {
              if (!isEnospc(e)) throw e;
              stop = lblk;
              break;
            }
            const [p, n] = got;
            if (!unwritten) this.zeroBlocks(p, n);
            try {
              this.mapInsert(inode, lblk, p, n, unwritten);
            } catch (e) {
              // No room for the extent-tree block this extent needs: give its data blocks back.
              this.freeBlocks(inode, p, n);
              if (!isEnospc(e)) throw e;
              stop = lblk;
              break;
            }
            lblk += n;
            goal = p + n;
          }
        } else {
          stop = this.fillRange(inode, first, last, unwritten);
        }
      } else {
        for (let lblk = first; lblk <= last; ) {
          const m = this.mapBlock(inode, lblk);
          if (m.pblk !== null) {
            lblk++;
            continue;
          }
          const holeEnd = Math.min(last + 1, lblk + m.count);
          const prev = lblk > 0 ? this.mapBlock(inode, lblk - 1).pblk : null;
          let got: [number, number];
          try {
            got = this.allocData(inode, prev !== null ? prev + 1 : this.goalFor(inode), holeEnd - lblk);
          } catch (e) {
            if (!isEnospc(e)) throw e;
            stop = lblk;
            break;
          }
          const [p, n] = got;
          this.zeroBlocks(p, n);
          let i = 0;
          try {
            for (; i < n; i++) blockmapSet(this, inode, lblk + i, p + i);
          } catch (e) {
            // No room for an indirect block: give back the data blocks not mapped.
            this.freeBlocks(inode, p + i, n - i);
            if (!isEnospc(e)) throw e;
          }
          lblk += i;
          if (i < n) {
            stop = lblk;
            break;
          }
        }
      }
    } finally {
      this.seal(inode);
    }
    if (stop > last) return length;
    const backed = Math.max(0, stop * bs - offset);
    if (!opts.partial) throw new FsError(E.ENOSPC);
    return backed;
  }

  /**
   * General allocation over [first, last] with an arbitrary existing layout (rebuilds the extent
   * list). Returns the first block it could not back (last + 1 when all were): the blocks before it
   * are allocated (and unwritten ones converted unless `unwritten`), none after it.
   */
  private fillRange(inode: Inode, first: number, last: number, unwritten: boolean): number {
    const tree = readExtents(this, inode);
    for (let hi = last; ; ) {
      const out: Extent[] = [];
      /** Data blocks allocated in this attempt. */
      const fresh: Extent[] = [];
      /** Logical starts of every change (new or converted extent) in this attempt. */
      let lastChange = -1;
      let cursor = first;
      let stop = hi + 1;
      let goal = this.goalFor(inode);
      const addNew = (from: number, to: number): boolean => {
        // Allocate [from, to] (a hole); false when space ran out (stop set).
        let lblk = from;
        while (lblk <= to) {
          let got: [number, number];
          try {
            got = this.allocData(inode, goal, Math.min(to - lblk + 1, unwritten ? 32767 : 32768));
          } catch (e) {
            if (!isEnospc(e)) throw e;
            stop = lblk;
            return false;
          }
          const [p, n] = got;
          if (!unwritten) this.zeroBlocks(p, n);
          const e: Extent = { lblk, len: n, pblk: p, uninit: unwritten };
          out.push(e);
          fresh.push({ ...e });
          lastChange = lblk;
          lblk += n;
          goal = p + n;
        }
        return true;
      };
      let i = 0;
      for (; i < tree.extents.length; i++) {
        const e = tree.extents[i]!;
        const eEnd = e.lblk + e.len - 1;
        if (eEnd < first || e.lblk > hi) {
          out.push(e);
          if (eEnd < first) goal = e.pblk + e.len;
          continue;
        }
        if (e.lblk > cursor && !addNew(cursor, e.lblk - 1)) break;
        if (e.uninit && !unwritten) {
          // Convert the overlapping part to initialized (zero-filled).
          const a = Math.max(e.lblk, first);
          const b = Math.min(eEnd, hi);
          if (a > e.lblk) out.push({ lblk: e.lblk, len: a - e.lblk, pblk: e.pblk, uninit: true });
          this.zeroBlocks(e.pblk + (a - e.lblk), b - a + 1);
          out.push({ lblk: a, len: b - a + 1, pblk: e.pblk + (a - e.lblk), uninit: false });
          if (b < eEnd) out.push({ lblk: b + 1, len: eEnd - b, pblk: e.pblk + (b + 1 - e.lblk), uninit: true });
          lastChange = a;
        } else out.push(e);
        goal = e.pblk + e.len;
        cursor = Math.max(cursor, eEnd + 1);
      }
      if (i < tree.extents.length) {
        // Ran out of space in a hole: the rest stays as it was.
        for (; i < tree.extents.length; i++) out.push(tree.extents[i]!);
      } else if (cursor <= hi) addNew(cursor, hi);
      if (lastChange < 0) return stop;
      try {
        storeExtents(this, inode, normalizeExtents(out), tree.nodes);
        return stop;
      } catch (e) {
        if (!isEnospc(e)) throw e;
        // No room for the tree blocks: give back this attempt's blocks and try a shorter range.
        for (const f of fresh) this.freeBlocks(inode, f.pblk, f.len);
        hi = lastChange - 1;
        if (hi < first) return first;
      }
    }
  }

  /**
   * fallocate(2) mode 0 or FALLOC_FL_KEEP_SIZE: unwritten blocks for [offset, offset+length), and the
   * size grown to cover them unless `keepSize`. Only extent-mapped files can hold blocks that read as
   * zeros past their size, so a block-mapped file (ext2/ext3 layout) answers EOPNOTSUPP, as Linux's
   * ext4_fallocate does. Running out of space throws ENOSPC with the blocks before the stop kept and
   * the size unchanged.
   */
  fallocate(ino: number, offset: number, length: number, keepSize: boolean): void {
    this.writable();
    const inode = this.iget(ino);
    if (!inode.isReg) throw new FsError(inode.isDir ? E.EISDIR : E.ENODEV);
    if (!this.usesExtents(inode)) throw new FsError(E.EOPNOTSUPP);
    this.allocateRange(ino, offset, length, { unwritten: true });
    if (!keepSize && offset + length > this.iget(ino).size) this.truncate(ino, offset + length);
  }

  /** Sets the size of a regular file: shrinking frees blocks past the end, growing leaves a hole. */
  truncate(ino: number, size: number): void {
    this.writable();
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError(E.EINVAL);
    const inode = this.iget(ino);
    if (inode.isDir) throw new FsError(E.EISDIR);
    if (!inode.isReg) throw new FsError(E.EINVAL);
    const bs = this.geo.blockSize;
    const extents = this.usesExtents(inode);
    if (Math.ceil(size / bs) > (extents ? MAX_LBLK : blockmapLimit(bs))) throw new FsError(E.EFBIG);
    const old = inode.size;
    try {
      if (size < old || this.hasBlocksFrom(inode, Math.ceil(size / bs))) this.freeFrom(inode, Math.ceil(size / bs));
      // Zero the tail of the block holding the new (or, growing, the old) end, so the gap reads as zeros.
      const edge = Math.min(size, old);
      if (edge % bs !== 0) {
        const m = this.mapBlock(inode, Math.floor(edge / bs));
        if (m.pblk !== null) {
          const from = m.pblk * bs + (edge % bs);
          const to = m.pblk * bs + bs;
          for (let p = from; p < to; ) {
            const piece = Math.min(to - p, 4096 - (p % 4096));
            this.dev.bytes(p, piece).fill(0);
            this.dev.dirty(p, piece);
            p += piece;
          }
        }
      }
      inode.size = size;
      this.noteLargeFile(size);
      const t = this.now();
      inode.mtime = t;
      inode.ctime = t;
    } finally {
      this.seal(inode);
    }
  }

  /**
   * Deallocates the blocks wholly inside [offset, offset+length) and zeroes the partial blocks at the
   * edges (fallocate PUNCH_HOLE | KEEP_SIZE): the range reads as zeros; the size does not change.
   */
  punchHole(ino: number, offset: number, length: number): void {
    this.writable();
    if (offset < 0 || length <= 0) throw new FsError(E.EINVAL);
    const inode = this.iget(ino);
    if (inode.isDir) throw new FsError(E.EISDIR);
    if (!inode.isReg) throw new FsError(E.EINVAL);
    const bs = this.geo.blockSize;
    const end = Math.min(offset + length, Math.max(inode.size, offset));
    if (end <= offset) return;
    try {
      // Zero the partial blocks at the edges (only where they are mapped and initialized).
      const zeroBytes = (from: number, to: number): void => {
        for (const r of this.runsOf(inode, from, to - from)) {
          if (r.physical === null) continue;
          for (let p = r.physical; p < r.physical + r.length; ) {
            const piece = Math.min(r.physical + r.length - p, 4096 - (p % 4096));
            this.dev.bytes(p, piece).fill(0);
            this.dev.dirty(p, piece);
            p += piece;
          }
        }
      };
      const first = Math.ceil(offset / bs);
      const last = Math.floor(end / bs); // exclusive
      if (first >= last) {
        zeroBytes(offset, end);
      } else {
        if (offset < first * bs) zeroBytes(offset, first * bs);
        if (end > last * bs) zeroBytes(last * bs, end);
        if (this.usesExtents(inode)) {
          const tree = readExtents(this, inode);
          const out: Extent[] = [];
          let changed = false;
          for (const e of tree.extents) {
            const eEnd = e.lblk + e.len;
            if (eEnd <= first || e.lblk >= last) {
              out.push(e);
              continue;
            }
            changed = true;
            const a = Math.max(e.lblk, first);
            const b = Math.min(eEnd, last);
            this.freeBlocks(inode, e.pblk + (a - e.lblk), b - a);
            if (a > e.lblk) out.push({ ...e, len: a - e.lblk });
            if (b < eEnd) out.push({ lblk: b, len: eEnd - b, pblk: e.pblk + (b - e.lblk), uninit: e.uninit });
          }
          if (changed) storeExtents(this, inode, out, tree.nodes);
        } else {
          for (let lblk = first; lblk < last; ) {
            const m = this.mapBlock(inode, lblk);
            if (m.pblk === null) {
              lblk += Math.max(1, Math.min(m.count, last - lblk));
              continue;
            }
            blockmapSet(this, inode, lblk, 0);
            this.freeBlocks(inode, m.pblk, 1);
            lblk++;
          }
        }
      }
      const t = this.now();
      inode.mtime = t;
      inode.ctime = t;
    } finally {
      this.seal(inode);
    }
  }

  private hasBlocksFrom(inode: Inode, lblk: number): boolean {
    if (!this.usesExtents(inode)) return false;
    const last = lastExtent(this, inode);
    return last !== null && last.lblk + last.len > lblk;
  }

  /** Frees every block at logical blocks >= keep. */
  private freeFrom(inode: Inode, keep: number): void {
    if (this.usesExtents(inode)) {
      const tree = readExtents(this, inode);
      const out: Extent[] = [];
      let changed = false;
      for (const e of tree.extents) {
        if (e.lblk >= keep) {
          this.freeBlocks(inode, e.pblk, e.len);
          changed = true;
        } else if (e.lblk + e.len > keep) {
          const n = keep - e.lblk;
          this.freeBlocks(inode, e.pblk + n, e.len - n);
          out.push({ ...e, len: n });
          changed = true;
        } else out.push(e);
      }
      if (changed) storeExtents(this, inode, out, tree.nodes);
    } else {
      blockmapTruncate(this, inode, keep);
    }
  }

  // ---------------------------------------------------------------- names

  private dirInode(ino: number): Inode {
    const d = this.iget(ino);
    if (!d.isDir) throw new FsError(E.ENOTDIR);
    if (d.flags & FL_INLINE_DATA) throw new FsError(E.EOPNOTSUPP, `directory ${ino} keeps its entries inline, which mapvisor does not support`);
    return d;
  }

  /** The parent of a directory (its '..' entry). */
  parentOf(dirIno: number): number {
    const d = this.dirInode(dirIno);
    const { entries } = loadDirBlock(this, d, 0);
    const dd = entries[1];
    if (!dd || dd.ino === 0) throw corrupted(`directory ${dirIno} has no '..' entry`);
    return dd.ino;
  }

  /** The inode number of `name` in directory dirIno. Throws ENOENT, ENOTDIR, ENAMETOOLONG. */
  lookup(dirIno: number, name: string | Uint8Array): number {
    const n = toBytes(name);
    const d = this.dirInode(dirIno);
    if (n.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
    if (n.length === 0) throw new FsError(E.ENOENT);
    if (isDot(n)) return dirIno;
    if (isDotDot(n)) return this.parentOf(dirIno);
    if (d.linksCount === 0) throw new FsError(E.ENOENT);
    const f = dirLookup(this, d, n);
    if (!f) throw new FsError(E.ENOENT);
    return f.ino;
  }

  private tryLookup(d: Inode, n: Uint8Array): number | null {
    const f = dirLookup(this, d, n);
    return f ? f.ino : null;
  }

  /** The target of a symlink. */
  readlink(ino: number): Uint8Array {
    const i = this.iget(ino);
    if (!i.isSymlink) throw new FsError(E.EINVAL);
    const size = i.size;
    if (size === 0) return new Uint8Array(0);
    if (size > this.geo.blockSize || size >= PATH_MAX) throw corrupted(`symlink ${ino} is ${size} bytes long`);
    if (size < I_BLOCK_SIZE && !(i.flags & FL_INLINE_DATA) && !(i.flags & FL_EXTENTS && i.blocks512(this.geo.log2BlockSize) > 0)) {
      return i.iblock.slice(0, size);
    }
    const out = new Uint8Array(size);
    let o = 0;
    for (const r of this.runsOf(i, 0, size)) {
      if (r.physical === null) out.fill(0, o, o + r.length);
      else this.copyOut(r.physical, out, o, r.length);
      o += r.length;
    }
    return out;
  }

  /**
   * Resolves a path to an inode number: symlinks are followed (at most 40), '..' stops at the
   * root, components longer than 255 bytes and paths of 4096 bytes or more give ENAMETOOLONG.
   */
  resolve(path: string | Uint8Array, opts: ResolveOptions = {}): number {
    const p = toBytes(path);
    if (p.length === 0) throw new FsError(E.ENOENT);
    if (p.length >= PATH_MAX) throw new FsError(E.ENAMETOOLONG);
    const root = opts.rootIno ?? ROOT_INO;
    const start = p[0] === 0x2f ? root : (opts.cwdIno ?? root);
    return this.walk(p, start, root, opts.followFinal ?? true, { links: 0 });
  }

  /**
   * Splits off the last component of a path and resolves the directory that holds it. `name` is
   * the last component ('.' for "/"); trailingSlash tells if the path ended with '/'.
   */
  resolveParent(path: string | Uint8Array, opts: ResolveOptions = {}): { dirIno: number; name: Uint8Array; trailingSlash: boolean } {
    const p = toBytes(path);
    if (p.length === 0) throw new FsError(E.ENOENT);
    if (p.length >= PATH_MAX) throw new FsError(E.ENAMETOOLONG);
    const root = opts.rootIno ?? ROOT_INO;
    let end = p.length;
    while (end > 0 && p[end - 1] === 0x2f) end--;
    const trailingSlash = end < p.length;
    if (end === 0) return { dirIno: root, name: new Uint8Array([0x2e]), trailingSlash };
    let slash = end - 1;
    while (slash >= 0 && p[slash] !== 0x2f) slash--;
    const name = p.slice(slash + 1, end);
    if (name.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
    let dirIno: number;
    if (slash < 0) dirIno = opts.cwdIno ?? root;
    else if (slash === 0) dirIno = root;
    else dirIno = this.walk(p.subarray(0, slash + 1), p[0] === 0x2f ? root : (opts.cwdIno ?? root), root, true, { links: 0 });
    this.dirInode(dirIno);
    return { dirIno, name, trailingSlash };
  }

  private walk(p: Uint8Array, start: number, root: number, followFinal: boolean, state: { links: number }): number {
    // Pending components, last first (a stack), so symlink targets can be pushed in front.
    const pending: Uint8Array[] = [];
    const trailingSlash = p[p.length - 1] === 0x2f;
    const pushPath = (bytes: Uint8Array): void => {
      const comps: Uint8Array[] = [];
      let i = 0;
      while (i < bytes.length) {
        while (i < bytes.length && bytes[i] === 0x2f) i++;
        const s = i;
        while (i < bytes.length && bytes[i] !== 0x2f) i++;
        if (i > s) comps.push(bytes.subarray(s, i));
      }
      for (let k = comps.length - 1; k >= 0; k--) pending.push(comps[k]!);
    };
    pushPath(p);
    let cur = start;
    while (pending.length > 0) {
      const comp = pending.pop()!;
      const d = this.dirInode(cur);
      if (comp.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
      if (isDot(comp)) continue;
      if (isDotDot(comp)) {
        if (cur !== root) cur = this.parentOf(cur);
        continue;
      }
      if (d.linksCount === 0) throw new FsError(E.ENOENT);
      const f = dirLookup(this, d, comp);
      if (!f) throw new FsError(E.ENOENT);
      const isLast = pending.length === 0;
      const child = this.iget(f.ino);
      if (child.linksCount === 0 && !this.refs.has(f.ino)) throw corrupted(`directory ${cur} names deleted inode ${f.ino}`);
      if (child.isSymlink && (!isLast || followFinal || trailingSlash)) {
        if (++state.links > MAX_SYMLINKS) throw new FsError(E.ELOOP);
        const target = this.readlink(f.ino);
        if (target.length === 0) throw new FsError(E.ENOENT);
        if (target[0] === 0x2f) cur = root;
        pushPath(target);
        continue;
      }
      cur = f.ino;
    }
    if (trailingSlash && !this.iget(cur).isDir) throw new FsError(E.ENOTDIR);
    return cur;
  }

  /**
   * Directory entries from cursor `pos` (0 = start), including '.' and '..', at most `max` of them.
   * `next` is the cursor to continue from (the directory size at the end).
   */
  readdir(ino: number, pos = 0, max = Infinity): { entries: DirEntry[]; next: number } {
    const d = this.dirInode(ino);
    const entries: DirEntry[] = [];
    const next = dirIterate(this, d, pos, (e) => {
      if (entries.length >= max) return false;
      let type = e.type;
      if (!this.filetype) type = fileTypeOfMode(this.iget(e.ino).mode);
      entries.push({ name: dec.decode(e.name), raw: e.name, ino: e.ino, type, pos: e.pos, next: e.next });
      return true;
    });
    return { entries, next };
  }

  // ---------------------------------------------------------------- creating and removing

  private checkNewName(n: Uint8Array): void {
    if (n.length === 0) throw new FsError(E.ENOENT);
    if (n.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
    if (isDot(n) || isDotDot(n)) throw new FsError(E.EEXIST);
    for (const c of n) if (c === 0x2f || c === 0) throw new FsError(E.EINVAL);
  }

  private newInode(dir: Inode, mode: number, owner: OwnerOptions): Inode {
    const isDir = (mode & S_IFMT) === S_IFDIR;
    const g = Math.floor((dir.ino - 1) / this.geo.inodesPerGroup);
    const ino = this.alloc.allocInode(g, isDir);
    const raw = this.dev.bytes(this.inodeOffset(ino), this.geo.inodeSize);
    raw.fill(0);
    const inode = new Inode(ino, raw);
    if (raw.length > GOOD_OLD_INODE_SIZE) {
      inode.extraIsize = Math.min(raw.length - GOOD_OLD_INODE_SIZE, Math.max(EXTRA_ISIZE_DEFAULT, this.geo.wantExtraIsize, this.geo.minExtraIsize));
    }
    inode.mode = mode;
    inode.uid = owner.uid ?? 0;
    inode.gid = owner.gid ?? 0;
    inode.generation = (Math.random() * 2 ** 32) >>> 0;
    const t = this.now();
    inode.atime = t;
    inode.mtime = t;
    inode.ctime = t;
    inode.crtime = t;
    const type = mode & S_IFMT;
    if (this.extentsFeature && (type === S_IFREG || type === S_IFDIR || type === S_IFLNK)) {
      inode.flags = FL_EXTENTS;
      initExtentRoot(inode);
    }
    return inode;
  }

  private incLinks(dir: Inode): void {
    let n = dir.linksCount + 1;
    if (isIndexed(this, dir) && (n > LINK_MAX || n === 2)) n = 1;
    dir.linksCount = n;
  }
  private decLinks(inode: Inode): void {
    if (!inode.isDir || inode.linksCount > 2) inode.linksCount = inode.linksCount - 1;
  }

  private makeNode(dirIno: number, name: string | Uint8Array, mode: number, owner: OwnerOptions, init: (inode: Inode, dir: Inode) => void): number {
    this.writable();
    const n = toBytes(name);
    this.checkNewName(n);
    const dir = this.dirInode(dirIno);
    if (dir.linksCount === 0) throw new FsError(E.ENOENT);
    if (this.tryLookup(dir, n) !== null) throw new FsError(E.EEXIST);
    const isDir = (mode & S_IFMT) === S_IFDIR;
    if (isDir && !isIndexed(this, dir) && dir.linksCount >= LINK_MAX) throw new FsError(E.EMLINK);
    const inode = this.newInode(dir, mode, owner);
    try {
      init(inode, dir);
      this.seal(inode);
      dirAdd(this, this.iget(dirIno), n, inode.ino, fileTypeOfMode(mode));
    } catch (e) {
      this.destroy(inode);
      throw e;
    }
    const d = this.iget(dirIno);
    if (isDir) this.incLinks(d);
    const t = this.now();
    d.mtime = t;
    d.ctime = t;
    this.seal(d);
    return inode.ino;
  }

  /** Creates a regular file; returns its inode number. `mode` holds the permission bits. */
  create(dirIno: number, name: string | Uint8Array, mode: number, owner: OwnerOptions = {}): number {
    return this.makeNode(dirIno, name, S_IFREG | (mode & 0o7777), owner, (i) => {
      i.linksCount = 1;
    });
  }

  /** Creates a directory with '.' and '..'. */
  mkdir(dirIno: number, name: string | Uint8Array, mode: number, owner: OwnerOptions = {}): number {
    return this.makeNode(dirIno, name, S_IFDIR | (mode & 0o7777), owner, (i) => {
      i.linksCount = 2;
      dirInit(this, i, dirIno);
    });
  }

  /** Creates a symlink to `target`. */
  symlink(dirIno: number, name: string | Uint8Array, target: string | Uint8Array, owner: OwnerOptions = {}): number {
    const t = toBytes(target);
    if (t.length === 0) throw new FsError(E.ENOENT);
    if (t.length >= this.geo.blockSize || t.length >= PATH_MAX) throw new FsError(E.ENAMETOOLONG);
    return this.makeNode(dirIno, name, S_IFLNK | 0o777, owner, (i) => {
      i.linksCount = 1;
      if (t.length < I_BLOCK_SIZE) {
        i.flags = i.flags & ~FL_EXTENTS;
        i.iblock.fill(0);
        i.iblock.set(t);
        i.size = t.length;
      } else {
        this.seal(i);
        this.allocateRange(i.ino, 0, t.length);
        const r = this.runsOf(this.iget(i.ino), 0, t.length);
        let o = 0;
        for (const run of r) {
          this.copyIn(run.physical!, t, o, run.length);
          o += run.length;
        }
        i.size = t.length;
      }
    });
  }

  /** Creates a device node, FIFO or socket. */
  mknod(dirIno: number, name: string | Uint8Array, mode: number, rdev: number, owner: OwnerOptions = {}): number {
    const type = mode & S_IFMT;
    if (type === S_IFREG || type === 0) return this.create(dirIno, name, mode, owner);
    if (type !== S_IFCHR && type !== S_IFBLK && type !== S_IFIFO && type !== S_IFSOCK) throw new FsError(E.EINVAL);
    return this.makeNode(dirIno, name, type | (mode & 0o7777), owner, (i) => {
      i.linksCount = 1;
      if (type === S_IFCHR || type === S_IFBLK) i.rdev = rdev;
    });
  }

  /** Adds a hard link `name` in dirIno to inode `ino`. */
  link(ino: number, dirIno: number, name: string | Uint8Array): void {
    this.writable();
    const n = toBytes(name);
    this.checkNewName(n);
    const target = this.iget(ino);
    if (target.isDir) throw new FsError(E.EPERM);
    if (target.linksCount === 0) throw new FsError(E.ENOENT);
    if (target.linksCount >= LINK_MAX) throw new FsError(E.EMLINK);
    const dir = this.dirInode(dirIno);
    if (dir.linksCount === 0) throw new FsError(E.ENOENT);
    if (this.tryLookup(dir, n) !== null) throw new FsError(E.EEXIST);
    dirAdd(this, dir, n, ino, fileTypeOfMode(target.mode));
    const t = this.now();
    const i = this.iget(ino);
    i.linksCount = i.linksCount + 1;
    i.ctime = t;
    this.seal(i);
    const d = this.iget(dirIno);
    d.mtime = t;
    d.ctime = t;
    this.seal(d);
  }

  /** Removes a non-directory entry. The inode is freed when its last link goes and no reference is open. */
  unlink(dirIno: number, name: string | Uint8Array): void {
    this.writable();
    const n = toBytes(name);
    if (n.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
    const dir = this.dirInode(dirIno);
    if (isDot(n) || isDotDot(n)) throw new FsError(E.EISDIR);
    const f = dirLookup(this, dir, n);
    if (!f) throw new FsError(E.ENOENT);
    const target = this.iget(f.ino);
    if (target.isDir) throw new FsError(E.EISDIR);
    dirRemove(this, dir, n);
    const t = this.now();
    const d = this.iget(dirIno);
    d.mtime = t;
    d.ctime = t;
    this.seal(d);
    this.dropLink(f.ino, t);
  }

  private dropLink(ino: number, t: Timespec): void {
    const i = this.iget(ino);
    if (i.linksCount > 0) i.linksCount = i.linksCount - 1;
    i.ctime = t;
    this.seal(i);
    if (i.linksCount === 0) this.maybeDestroy(ino);
  }

  private maybeDestroy(ino: number): void {
    if ((this.refs.get(ino) ?? 0) > 0) this.orphans.add(ino);
    else this.destroy(this.iget(ino));
  }

  /** Frees an inode and everything it owns. */
  private destroy(inode: Inode): void {
    const isDir = inode.isDir;
    const type = inode.type;
    const hasBlocks = type === S_IFREG || type === S_IFDIR || (type === S_IFLNK && !(inode.size < I_BLOCK_SIZE && !(inode.flags & FL_EXTENTS && inode.blocks512(this.geo.log2BlockSize) > 0)));
    if (hasBlocks && !(inode.flags & FL_INLINE_DATA)) {
      if (inode.flags & FL_EXTENTS) {
        const tree = readExtents(this, inode);
        for (const e of tree.extents) this.freeBlocks(inode, e.pblk, e.len);
        for (const b of tree.nodes) this.freeBlocks(inode, b, 1);
        initExtentRoot(inode);
      } else if (type !== S_IFLNK || inode.size >= I_BLOCK_SIZE) {
        blockmapTruncate(this, inode, 0);
      }
    }
    this.releaseXattrBlock(inode);
    inode.size = 0;
    inode.linksCount = 0;
    inode.dtime = this.now().sec;
    inode.setBlocks512(0);
    this.seal(inode);
    this.alloc.freeInode(inode.ino, isDir);
    this.orphans.delete(inode.ino);
  }

  /** Drops the inode's reference to its extended attribute block (freeing it on the last one). */
  private releaseXattrBlock(inode: Inode): void {
    const acl = inode.fileAcl;
    if (acl === 0) return;
    this.checkRange(acl, 1, `inode ${inode.ino} xattr block`);
    const b = this.block(acl);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (v.getUint32(0, true) !== 0xea020000) throw corrupted(`inode ${inode.ino}: bad xattr block`);
    const refs = v.getUint32(4, true);
    if (refs <= 1) this.freeBlocks(inode, acl, 1);
    else {
      v.setUint32(4, refs - 1, true);
      if (this.geo.metadataCsum) {
        let c = crc32cUpdate(this.geo.csumSeed, le64(acl));
        c = crc32cUpdate(c, b, 0, 0x10);
        c = crc32cUpdate(c, new Uint8Array(4));
        c = crc32cUpdate(c, b, 0x14, b.length);
        v.setUint32(0x10, c, true);
      }
      this.markDirty(acl);
      inode.setBlocks512(Math.max(0, inode.blocks512(this.geo.log2BlockSize) - this.geo.blockSize / 512));
    }
    const r = inode.raw;
    const iv = new DataView(r.buffer, r.byteOffset, r.byteLength);
    iv.setUint32(0x68, 0, true);
    iv.setUint16(0x76, 0, true);
  }

  /** Removes an empty directory. */
  rmdir(dirIno: number, name: string | Uint8Array): void {
    this.writable();
    const n = toBytes(name);
    if (n.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
    if (isDot(n)) throw new FsError(E.EINVAL);
    if (isDotDot(n)) throw new FsError(E.ENOTEMPTY);
    const dir = this.dirInode(dirIno);
    const f = dirLookup(this, dir, n);
    if (!f) throw new FsError(E.ENOENT);
    const target = this.iget(f.ino);
    if (!target.isDir) throw new FsError(E.ENOTDIR);
    if (!dirIsEmpty(this, target)) throw new FsError(E.ENOTEMPTY);
    dirRemove(this, dir, n);
    const t = this.now();
    const d = this.iget(dirIno);
    this.decLinks(d);
    d.mtime = t;
    d.ctime = t;
    this.seal(d);
    const i = this.iget(f.ino);
    i.linksCount = 0;
    i.ctime = t;
    this.seal(i);
    this.maybeDestroy(f.ino);
  }

  /** Is directory `ino` equal to or below directory `ancestor`? */
  private isWithin(ino: number, ancestor: number): boolean {
    let cur = ino;
    for (let guard = 0; guard < 1 << 16; guard++) {
      if (cur === ancestor) return true;
      if (cur === ROOT_INO) return false;
      const p = this.parentOf(cur);
      if (p === cur) return false;
      cur = p;
    }
    throw corrupted('directory tree loop');
  }

  /**
   * Renames srcDir/srcName to dstDir/dstName, replacing an existing destination (a file over a
   * file, an empty directory over a directory). `noReplace` fails with EEXIST instead;
   * `exchange` swaps the two entries.
   */
  rename(srcDirIno: number, srcName: string | Uint8Array, dstDirIno: number, dstName: string | Uint8Array, opts: { noReplace?: boolean; exchange?: boolean } = {}): void {
    this.writable();
    const sn = toBytes(srcName);
    const dn = toBytes(dstName);
    if (sn.length > NAME_MAX || dn.length > NAME_MAX) throw new FsError(E.ENAMETOOLONG);
    if (isDot(sn) || isDotDot(sn) || sn.length === 0) throw new FsError(E.EBUSY);
    if (isDot(dn) || isDotDot(dn) || dn.length === 0) throw new FsError(dn.length === 0 ? E.ENOENT : E.EBUSY);
    for (const c of dn) if (c === 0x2f || c === 0) throw new FsError(E.EINVAL);
    const srcDir = this.dirInode(srcDirIno);
    const dstDir = this.dirInode(dstDirIno);
    if (dstDir.linksCount === 0) throw new FsError(E.ENOENT);
    const sf = dirLookup(this, srcDir, sn);
    if (!sf) throw new FsError(E.ENOENT);
    const src = this.iget(sf.ino);
    const df = dirLookup(this, dstDir, dn);
    if (opts.exchange) {
      if (!df) throw new FsError(E.ENOENT);
      return this.exchange(srcDirIno, sn, sf.ino, dstDirIno, dn, df.ino);
    }
    if (df && opts.noReplace) throw new FsError(E.EEXIST);
    if (df && df.ino === sf.ino) return; // same inode: nothing to do
    const srcIsDir = src.isDir;
    if (srcIsDir && srcDirIno !== dstDirIno && this.isWithin(dstDirIno, sf.ino)) throw new FsError(E.EINVAL);
    let replaced: Inode | null = null;
    if (df) {
      replaced = this.iget(df.ino);
      if (srcIsDir && !replaced.isDir) throw new FsError(E.ENOTDIR);
      if (!srcIsDir && replaced.isDir) throw new FsError(E.EISDIR);
      if (replaced.isDir && !dirIsEmpty(this, replaced)) throw new FsError(E.ENOTEMPTY);
    } else if (srcIsDir && srcDirIno !== dstDirIno && !isIndexed(this, dstDir) && dstDir.linksCount >= LINK_MAX) {
      throw new FsError(E.EMLINK);
    }
    const type = fileTypeOfMode(src.mode);
    if (df) dirRetarget(this, dstDir, dn, sf.ino, type);
    else dirAdd(this, this.iget(dstDirIno), dn, sf.ino, type);
    dirRemove(this, this.iget(srcDirIno), sn);
    const t = this.now();
    if (srcIsDir && srcDirIno !== dstDirIno) {
      dirRetarget(this, this.iget(sf.ino), DOTDOT, dstDirIno, 2);
      const s = this.iget(srcDirIno);
      this.decLinks(s);
      this.seal(s);
      if (!replaced) {
        const d = this.iget(dstDirIno);
        this.incLinks(d);
        this.seal(d);
      }
    } else if (srcIsDir && replaced) {
      // Same directory, a directory over a directory: the parent loses the replaced one's '..'.
      const d = this.iget(dstDirIno);
      this.decLinks(d);
      this.seal(d);
    }
    if (replaced) {
      if (replaced.isDir && srcDirIno !== dstDirIno) {
        // The replaced directory's '..' no longer counts; the moved one's does (net 0 for dstDir).
      }
      const r = this.iget(replaced.ino);
      if (r.isDir) r.linksCount = 0;
      else if (r.linksCount > 0) r.linksCount = r.linksCount - 1;
      r.ctime = t;
      this.seal(r);
      if (r.linksCount === 0) this.maybeDestroy(r.ino);
    }
    const s = this.iget(sf.ino);
    s.ctime = t;
    this.seal(s);
    for (const ino of srcDirIno === dstDirIno ? [srcDirIno] : [srcDirIno, dstDirIno]) {
      const d = this.iget(ino);
      d.mtime = t;
      d.ctime = t;
      this.seal(d);
    }
  }

  private exchange(aDir: number, an: Uint8Array, aIno: number, bDir: number, bn: Uint8Array, bIno: number): void {
    if (aIno === bIno) return;
    const a = this.iget(aIno);
    const b = this.iget(bIno);
    if (aDir !== bDir) {
      if (a.isDir && this.isWithin(bDir, aIno)) throw new FsError(E.EINVAL);
      if (b.isDir && this.isWithin(aDir, bIno)) throw new FsError(E.EINVAL);
    }
    dirRetarget(this, this.iget(aDir), an, bIno, fileTypeOfMode(b.mode));
    dirRetarget(this, this.iget(bDir), bn, aIno, fileTypeOfMode(a.mode));
    const t = this.now();
    if (aDir !== bDir && a.isDir !== b.isDir) {
      // One directory moves: fix its '..' and both parents' link counts.
      const [dirIno, from, to] = a.isDir ? [aIno, aDir, bDir] : [bIno, bDir, aDir];
      dirRetarget(this, this.iget(dirIno), DOTDOT, to, 2);
      const f = this.iget(from);
      this.decLinks(f);
      this.seal(f);
      const tt = this.iget(to);
      this.incLinks(tt);
      this.seal(tt);
    } else if (aDir !== bDir && a.isDir && b.isDir) {
      dirRetarget(this, this.iget(aIno), DOTDOT, bDir, 2);
      dirRetarget(this, this.iget(bIno), DOTDOT, aDir, 2);
    }
    for (const ino of [aIno, bIno, aDir, bDir]) {
      const i = this.iget(ino);
      i.ctime = t;
      if (ino === aDir || ino === bDir) i.mtime = t;
      this.seal(i);
    }
  }

  // ---------------------------------------------------------------- attributes

  chmod(ino: number, mode: number): void {
    this.writable();
    const i = this.iget(ino);
    i.mode = (i.mode & S_IFMT) | (mode & 0o7777);
    i.ctime = this.now();
    this.seal(i);
  }

  /** Changes owner and/or group (-1 or undefined leaves one unchanged). */
  chown(ino: number, uid?: number, gid?: number): void {
    this.writable();
    const i = this.iget(ino);
    if (uid !== undefined && uid !== -1) i.uid = uid >>> 0;
    if (gid !== undefined && gid !== -1) i.gid = gid >>> 0;
    i.ctime = this.now();
    this.seal(i);
  }

  /** Sets atime and/or mtime ('now' for the current time, undefined to leave one unchanged); ctime becomes now. */
  utimes(ino: number, times: { atime?: Timespec | 'now'; mtime?: Timespec | 'now' }): void {
    this.writable();
    const i = this.iget(ino);
    const t = this.now();
    if (times.atime !== undefined) i.atime = times.atime === 'now' ? t : times.atime;
    if (times.mtime !== undefined) i.mtime = times.mtime === 'now' ? t : times.mtime;
    i.ctime = t;
    this.seal(i);
  }

  statfs(): StatFs {
    const geo = this.geo;
    const sb = this.dev.bytes(SB_OFFSET, SB_SIZE);
    const v = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
    const is64 = (geo.incompat & INCOMPAT_64BIT) !== 0;
    const reserved = v.getUint32(SB_R_BLOCKS_COUNT_LO, true) + (is64 ? v.getUint32(SB_R_BLOCKS_COUNT_HI, true) * 2 ** 32 : 0);
    let overhead = v.getUint32(SB_OVERHEAD_CLUSTERS, true);
    if (!overhead) {
      overhead = this.alloc.overheadBlocks();
      if (geo.journalInum) overhead += Math.floor(this.iget(geo.journalInum).blocks512(geo.log2BlockSize) / (geo.blockSize / 512));
    }
    const bfree = this.alloc.freeBlocksCount();
    const lo = v.getUint32(0x68, true) ^ v.getUint32(0x70, true);
    const hi = v.getUint32(0x6c, true) ^ v.getUint32(0x74, true);
    return {
      bsize: geo.blockSize,
      frsize: geo.blockSize,
      blocks: geo.blocksCount - overhead,
      bfree,
      bavail: Math.max(0, bfree - reserved),
      files: geo.inodesCount,
      ffree: this.alloc.freeInodesCount(),
      namelen: NAME_MAX,
      fsid: [lo >>> 0, hi >>> 0],
    };
  }

  // ---------------------------------------------------------------- references and lifetime

  /** Takes a reference on an inode (an open file): if its last link is removed, it lives until irelease. */
  iref(ino: number): void {
    this.iget(ino);
    this.refs.set(ino, (this.refs.get(ino) ?? 0) + 1);
  }

  /** Drops a reference; frees the inode if it was unlinked and this was the last reference. */
  irelease(ino: number): void {
    const n = (this.refs.get(ino) ?? 0) - 1;
    if (n > 0) {
      this.refs.set(ino, n);
      return;
    }
    this.refs.delete(ino);
    if (this.orphans.has(ino) && !this.readOnly) this.destroy(this.iget(ino));
  }

  /** Makes everything written so far durable. */
  /**
   * Seal the superblock and (durable) flush the image to disk. Not durable: the superblock is sealed in
   * the page cache only, which is enough for another process mapping the same image (a hand-over).
   */
  sync(durable = true): void {
    if (!this.readOnly) {
      const sb = this.dev.bytes(SB_OFFSET, SB_SIZE);
      new DataView(sb.buffer, sb.byteOffset, sb.byteLength).setUint32(SB_WTIME, this.now().sec >>> 0, true);
      sealSuperblock(this.dev, this.geo);
    }
    if (durable) this.dev.flush();
  }

  /** Is `ino` unlinked but still open (freed when its last reference goes)? */
  isOrphan(ino: number): boolean {
    return this.orphans.has(ino);
  }

  /** Frees unlinked inodes still referenced, and syncs. The file system must not be used after. */
  close(durable = true): void {
    if (!this.readOnly) for (const ino of [...this.orphans]) this.destroy(this.iget(ino));
    this.refs.clear();
    this.sync(durable);
  }

  /** Is directory ino hash-indexed? */
  isIndexedDir(ino: number): boolean {
    return isIndexed(this, this.dirInode(ino));
  }
}

function isEnospc(e: unknown): boolean {
  return e instanceof FsError && e.errno === E.ENOSPC;
}

function le64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, n % 2 ** 32, true);
  v.setUint32(4, Math.floor(n / 2 ** 32), true);
  return b;
}
