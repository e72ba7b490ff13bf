/**
 * Block and inode allocation through the group bitmaps, keeping the free counts of the group
 * descriptors and the superblock, the bitmap checksums and the descriptor checksums right.
 * BLOCK_UNINIT / INODE_UNINIT groups are initialized on first use.
 */
import { E } from '../../abi/errno.js';
import type { BlockDev } from '../blockdev.js';
import { crc32cUpdate } from './crc32c.js';
import { corrupted, EFSBADCRC, FsError } from './errors.js';
import {
  BG_BLOCK_UNINIT,
  BG_INODE_UNINIT,
  groupBlockCount,
  groupDesc,
  groupFirstBlock,
  sealGroupDesc,
  superAndDescBlocks,
  type GroupDesc,
} from './groups.js';
import {
  INCOMPAT_64BIT,
  SB_FREE_BLOCKS_COUNT_HI,
  SB_FREE_BLOCKS_COUNT_LO,
  SB_FREE_INODES_COUNT,
  SB_OFFSET,
  SB_SIZE,
  sealSuperblock,
  type Geometry,
} from './superblock.js';

type Range = [number, number];

export class Allocator {
  /** Fixed metadata ranges [start, count] lying in each group (superblock/descriptor copies, bitmaps, inode tables). */
  private readonly meta: Range[][];
  private readonly itableBlocks: number;
  private readonly verifiedBlockBitmaps = new Set<number>();
  private readonly verifiedInodeBitmaps = new Set<number>();

  constructor(
    private readonly dev: BlockDev,
    private readonly geo: Geometry,
  ) {
    this.itableBlocks = Math.ceil((geo.inodesPerGroup * geo.inodeSize) / geo.blockSize);
    this.meta = [];
    for (let g = 0; g < geo.groupCount; g++) this.meta.push(superAndDescBlocks(geo, g));
    for (let g = 0; g < geo.groupCount; g++) {
      const gd = this.desc(g);
      const add = (start: number, count: number, what: string): void => {
        if (start < geo.firstDataBlock || start + count > geo.blocksCount) throw corrupted(`group ${g}: ${what} at block ${start} is outside the file system`);
        // A range may straddle groups (flex_bg inode tables); split it.
        let s = start;
        let left = count;
        while (left > 0) {
          const h = this.groupOf(s);
          const end = Math.min(s + left, groupFirstBlock(geo, h) + geo.blocksPerGroup);
          this.meta[h]!.push([s, end - s]);
          left -= end - s;
          s = end;
        }
      };
      add(gd.blockBitmap, 1, 'block bitmap');
      add(gd.inodeBitmap, 1, 'inode bitmap');
      add(gd.inodeTable, this.itableBlocks, 'inode table');
    }
  }

  desc(g: number): GroupDesc {
    return groupDesc(this.dev, this.geo, g);
  }

  groupOf(pblk: number): number {
    return Math.floor((pblk - this.geo.firstDataBlock) / this.geo.blocksPerGroup);
  }

  /** Total blocks of fixed metadata (for statfs). */
  overheadBlocks(): number {
    let n = this.geo.firstDataBlock;
    for (const rs of this.meta) for (const [, c] of rs) n += c;
    return n;
  }

  /** Does [start, start+count) hit fixed metadata? */
  overlapsMetadata(start: number, count: number): boolean {
    const g0 = this.groupOf(start);
    const g1 = this.groupOf(start + count - 1);
    for (let g = g0; g <= g1; g++) {
      for (const [s, c] of this.meta[g] ?? []) if (start < s + c && s < start + count) return true;
    }
    return false;
  }

  private blockBitmapBytes(): number {
    return this.geo.blocksPerGroup / 8;
  }
  private inodeBitmapBytes(): number {
    return this.geo.inodesPerGroup / 8;
  }

  /** The block bitmap an uninitialized group would have. */
  computeBlockBitmap(g: number): Uint8Array {
    const bs = this.geo.blockSize;
    const bm = new Uint8Array(bs);
    const first = groupFirstBlock(this.geo, g);
    for (const [s, c] of this.meta[g]!) for (let b = s; b < s + c; b++) setBit(bm, b - first);
    for (let bit = groupBlockCount(this.geo, g); bit < bs * 8; bit++) setBit(bm, bit);
    return bm;
  }

  private sealBlockBitmap(gd: GroupDesc, bm: Uint8Array): void {
    if (this.geo.metadataCsum) gd.setBlockBitmapCsum(crc32cUpdate(this.geo.csumSeed, bm, 0, this.blockBitmapBytes()));
    this.dev.dirty(gd.blockBitmap * this.geo.blockSize, this.geo.blockSize);
  }
  private sealInodeBitmap(gd: GroupDesc, bm: Uint8Array): void {
    if (this.geo.metadataCsum) gd.setInodeBitmapCsum(crc32cUpdate(this.geo.csumSeed, bm, 0, this.inodeBitmapBytes()));
    this.dev.dirty(gd.inodeBitmap * this.geo.blockSize, this.geo.blockSize);
  }

  /** The block bitmap of group g, read-only use (an uninitialized group gets a computed copy). */
  peekBlockBitmap(g: number): Uint8Array {
    const gd = this.desc(g);
    if (gd.flags & BG_BLOCK_UNINIT) return this.computeBlockBitmap(g);
    return this.dev.bytes(gd.blockBitmap * this.geo.blockSize, this.geo.blockSize);
  }

  private verifyBlockBitmap(gd: GroupDesc, bm: Uint8Array): void {
    if (!this.geo.metadataCsum || this.verifiedBlockBitmaps.has(gd.group)) return;
    const c = crc32cUpdate(this.geo.csumSeed, bm, 0, this.blockBitmapBytes());
    const want = this.geo.descSize >= 64 ? c : c & 0xffff;
    if (gd.blockBitmapCsum() !== want) throw new FsError(EFSBADCRC, `group ${gd.group}: block bitmap checksum mismatch`);
    this.verifiedBlockBitmaps.add(gd.group);
  }
  private verifyInodeBitmap(gd: GroupDesc, bm: Uint8Array): void {
    if (!this.geo.metadataCsum || this.verifiedInodeBitmaps.has(gd.group)) return;
    const c = crc32cUpdate(this.geo.csumSeed, bm, 0, this.inodeBitmapBytes());
    const want = this.geo.descSize >= 64 ? c : c & 0xffff;
    if (gd.inodeBitmapCsum() !== want) throw new FsError(EFSBADCRC, `group ${gd.group}: inode bitmap checksum mismatch`);
    this.verifiedInodeBitmaps.add(gd.group);
  }

  /** The live block bitmap of group g, initialized on disk first if needed. */
  private blockBitmap(gd: GroupDesc): Uint8Array {
    const bm = this.dev.bytes(gd.blockBitmap * this.geo.blockSize, this.geo.blockSize);
    if (!(gd.flags & BG_BLOCK_UNINIT)) this.verifyBlockBitmap(gd, bm);
    if (gd.flags & BG_BLOCK_UNINIT) {
      bm.set(this.computeBlockBitmap(gd.group));
      gd.flags = gd.flags & ~BG_BLOCK_UNINIT;
      this.sealBlockBitmap(gd, bm);
      sealGroupDesc(this.dev, this.geo, gd);
    }
    return bm;
  }

  private inodeBitmap(gd: GroupDesc): Uint8Array {
    const bm = this.dev.bytes(gd.inodeBitmap * this.geo.blockSize, this.geo.blockSize);
    if (!(gd.flags & BG_INODE_UNINIT)) this.verifyInodeBitmap(gd, bm);
    if (gd.flags & BG_INODE_UNINIT) {
      bm.fill(0);
      for (let bit = this.geo.inodesPerGroup; bit < this.geo.blockSize * 8; bit++) setBit(bm, bit);
      gd.flags = gd.flags & ~BG_INODE_UNINIT;
      this.sealInodeBitmap(gd, bm);
      sealGroupDesc(this.dev, this.geo, gd);
    }
    return bm;
  }

  private superCounts(dBlocks: number, dInodes: number): void {
    const sb = this.dev.bytes(SB_OFFSET, SB_SIZE);
    const v = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
    const is64 = (this.geo.incompat & INCOMPAT_64BIT) !== 0;
    if (dBlocks) {
      const cur = v.getUint32(SB_FREE_BLOCKS_COUNT_LO, true) + (is64 ? v.getUint32(SB_FREE_BLOCKS_COUNT_HI, true) * 2 ** 32 : 0);
      const n = Math.max(0, cur + dBlocks);
      v.setUint32(SB_FREE_BLOCKS_COUNT_LO, n % 2 ** 32, true);
      if (is64) v.setUint32(SB_FREE_BLOCKS_COUNT_HI, Math.floor(n / 2 ** 32), true);
    }
    if (dInodes) v.setUint32(SB_FREE_INODES_COUNT, Math.max(0, v.getUint32(SB_FREE_INODES_COUNT, true) + dInodes), true);
    sealSuperblock(this.dev, this.geo);
  }

  freeBlocksCount(): number {
    let n = 0;
    for (let g = 0; g < this.geo.groupCount; g++) n += this.desc(g).freeBlocks;
    return n;
  }
  freeInodesCount(): number {
    let n = 0;
    for (let g = 0; g < this.geo.groupCount; g++) n += this.desc(g).freeInodes;
    return n;
  }

  /**
   * Allocates up to `count` contiguous blocks, starting the search at `goal`. Returns [first, n]
   * with 1 <= n <= count. Throws ENOSPC when the file system is full.
   */
  allocBlocks(goal: number, count: number): [number, number] {
    const geo = this.geo;
    if (!(goal >= geo.firstDataBlock && goal < geo.blocksCount)) goal = geo.firstDataBlock;
    const g0 = this.groupOf(goal);
    for (let t = 0; t <= geo.groupCount; t++) {
      const g = (g0 + t) % geo.groupCount;
      const gd = this.desc(g);
      if (gd.freeBlocks === 0) continue;
      const first = groupFirstBlock(geo, g);
      const nbits = groupBlockCount(geo, g);
      const bm = gd.flags & BG_BLOCK_UNINIT ? this.computeBlockBitmap(g) : this.dev.bytes(gd.blockBitmap * geo.blockSize, geo.blockSize);
      if (!(gd.flags & BG_BLOCK_UNINIT)) this.verifyBlockBitmap(gd, bm);
      const startBit = t === 0 ? goal - first : 0;
      let bit = findZero(bm, startBit, nbits);
      if (bit < 0 && t === 0 && startBit > 0) bit = findZero(bm, 0, startBit);
      if (bit < 0) continue;
      let n = 1;
      while (n < count && bit + n < nbits && !testBit(bm, bit + n)) n++;
      const start = first + bit;
      if (this.overlapsMetadata(start, n)) throw corrupted(`group ${g}: the block bitmap marks metadata at ${start} free`);
      const live = this.blockBitmap(gd);
      for (let i = 0; i < n; i++) setBit(live, bit + i);
      gd.freeBlocks = gd.freeBlocks - n;
      this.sealBlockBitmap(gd, live);
      sealGroupDesc(this.dev, geo, gd);
      this.superCounts(-n, 0);
      return [start, n];
    }
    throw new FsError(E.ENOSPC);
  }

  /** Frees [start, start+count). Bits already clear are reported as corruption. */
  freeBlocks(start: number, count: number): void {
    const geo = this.geo;
    if (start < geo.firstDataBlock || start + count > geo.blocksCount || count <= 0) throw corrupted(`freeing blocks ${start}+${count} outside the file system`);
    if (this.overlapsMetadata(start, count)) throw corrupted(`freeing fixed metadata blocks ${start}+${count}`);
    let s = start;
    let left = count;
    while (left > 0) {
      const g = this.groupOf(s);
      const first = groupFirstBlock(geo, g);
      const n = Math.min(left, first + geo.blocksPerGroup - s);
      const gd = this.desc(g);
      const bm = this.blockBitmap(gd);
      let freed = 0;
      for (let i = 0; i < n; i++) {
        if (testBit(bm, s - first + i)) {
          clearBit(bm, s - first + i);
          freed++;
        }
      }
      gd.freeBlocks = gd.freeBlocks + freed;
      this.sealBlockBitmap(gd, bm);
      sealGroupDesc(this.dev, geo, gd);
      this.superCounts(freed, 0);
      if (freed !== n) throw corrupted(`blocks ${s}+${n}: ${n - freed} were already free`);
      s += n;
      left -= n;
    }
  }

  /** Is block pblk marked in use? */
  blockInUse(pblk: number): boolean {
    const g = this.groupOf(pblk);
    return testBit(this.peekBlockBitmap(g), pblk - groupFirstBlock(this.geo, g));
  }

  /** Allocates an inode, preferring group `goalGroup`; directories go to the group with the most free inodes. */
  allocInode(goalGroup: number, isDir: boolean): number {
    const geo = this.geo;
    const order: number[] = [];
    if (isDir) {
      let best = -1;
      let bestFree = -1;
      const avg = this.freeInodesCount() / geo.groupCount;
      for (let t = 0; t < geo.groupCount; t++) {
        const g = (goalGroup + t) % geo.groupCount;
        const gd = this.desc(g);
        if (gd.freeInodes >= avg && gd.freeBlocks > bestFree) {
          best = g;
          bestFree = gd.freeBlocks;
        }
      }
      if (best >= 0) order.push(best);
    }
    for (let t = 0; t < geo.groupCount; t++) order.push((goalGroup + t) % geo.groupCount);
    for (const g of order) {
      const gd = this.desc(g);
      if (gd.freeInodes === 0) continue;
      const bm = this.inodeBitmap(gd);
      const startBit = g === 0 ? geo.firstIno - 1 : 0;
      const bit = findZero(bm, startBit, geo.inodesPerGroup);
      if (bit < 0) continue;
      setBit(bm, bit);
      gd.freeInodes = gd.freeInodes - 1;
      if (isDir) gd.usedDirs = gd.usedDirs + 1;
      if (geo.metadataCsum || geo.gdtCsum) {
        const used = geo.inodesPerGroup - gd.itableUnused;
        if (bit + 1 > used) gd.itableUnused = geo.inodesPerGroup - bit - 1;
      }
      this.sealInodeBitmap(gd, bm);
      sealGroupDesc(this.dev, geo, gd);
      this.superCounts(0, -1);
      return g * geo.inodesPerGroup + bit + 1;
    }
    throw new FsError(E.ENOSPC);
  }

  freeInode(ino: number, isDir: boolean): void {
    const geo = this.geo;
    const g = Math.floor((ino - 1) / geo.inodesPerGroup);
    const bit = (ino - 1) % geo.inodesPerGroup;
    const gd = this.desc(g);
    const bm = this.inodeBitmap(gd);
    if (!testBit(bm, bit)) throw corrupted(`inode ${ino} is already free`);
    clearBit(bm, bit);
    gd.freeInodes = gd.freeInodes + 1;
    if (isDir && gd.usedDirs > 0) gd.usedDirs = gd.usedDirs - 1;
    this.sealInodeBitmap(gd, bm);
    sealGroupDesc(this.dev, geo, gd);
    this.superCounts(0, 1);
  }

  inodeInUse(ino: number): boolean {
    const geo = this.geo;
    const g = Math.floor((ino - 1) / geo.inodesPerGroup);
    const gd = this.desc(g);
    if (gd.flags & BG_INODE_UNINIT) return false;
    const bm = this.dev.bytes(gd.inodeBitmap * geo.blockSize, geo.blockSize);
    return testBit(bm, (ino - 1) % geo.inodesPerGroup);
  }
}

export function testBit(bm: Uint8Array, bit: number): boolean {
  return (bm[bit >> 3]! & (1 << (bit & 7))) !== 0;
}
export function setBit(bm: Uint8Array, bit: number): void {
  bm[bit >> 3] = bm[bit >> 3]! | (1 << (bit & 7));
}
export function clearBit(bm: Uint8Array, bit: number): void {
  bm[bit >> 3] = bm[bit >> 3]! & ~(1 << (bit & 7));
}
/** First clear bit in [from, to), or -1. */
export function findZero(bm: Uint8Array, from: number, to: number): number {
  let bit = from;
  while (bit < to) {
    if ((bit & 7) === 0 && bm[bit >> 3] === 0xff) {
      bit += 8;
      continue;
    }
    if (!testBit(bm, bit)) return bit;
    bit++;
  }
  return -1;
}
