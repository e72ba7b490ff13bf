/**
 * Block group descriptors: where they live, their fields, their checksums (metadata_csum: crc32c;
 * gdt_csum: crc16), and the fixed metadata blocks of each group (for BLOCK_UNINIT groups).
 * Layout from the kernel's `struct ext4_group_desc`.
 */
import type { BlockDev } from '../blockdev.js';
import { crc16Update, crc32cU32, crc32cUpdate } from './crc32c.js';
import { corrupted } from './errors.js';
import {
  COMPAT_SPARSE_SUPER2,
  INCOMPAT_64BIT,
  INCOMPAT_META_BG,
  RO_COMPAT_SPARSE_SUPER,
  type Geometry,
} from './superblock.js';

export const BG_BLOCK_BITMAP_LO = 0x00;
export const BG_INODE_BITMAP_LO = 0x04;
export const BG_INODE_TABLE_LO = 0x08;
export const BG_FREE_BLOCKS_COUNT_LO = 0x0c;
export const BG_FREE_INODES_COUNT_LO = 0x0e;
export const BG_USED_DIRS_COUNT_LO = 0x10;
export const BG_FLAGS = 0x12;
export const BG_BLOCK_BITMAP_CSUM_LO = 0x18;
export const BG_INODE_BITMAP_CSUM_LO = 0x1a;
export const BG_ITABLE_UNUSED_LO = 0x1c;
export const BG_CHECKSUM = 0x1e;
export const BG_BLOCK_BITMAP_HI = 0x20;
export const BG_INODE_BITMAP_HI = 0x24;
export const BG_INODE_TABLE_HI = 0x28;
export const BG_FREE_BLOCKS_COUNT_HI = 0x2c;
export const BG_FREE_INODES_COUNT_HI = 0x2e;
export const BG_USED_DIRS_COUNT_HI = 0x30;
export const BG_ITABLE_UNUSED_HI = 0x32;
export const BG_BLOCK_BITMAP_CSUM_HI = 0x38;
export const BG_INODE_BITMAP_CSUM_HI = 0x3a;
export const GROUP_DESC_SIZE_32 = 32;
export const GROUP_DESC_SIZE_64 = 64;

export const BG_INODE_UNINIT = 0x1;
export const BG_BLOCK_UNINIT = 0x2;
export const BG_INODE_ZEROED = 0x4;

function isPowerOf(n: number, base: number): boolean {
  if (n < 1) return false;
  while (n % base === 0) n /= base;
  return n === 1;
}

/** Does group `g` hold a superblock backup (and, without meta_bg, a copy of the descriptors)? */
export function groupHasSuper(geo: Geometry, g: number): boolean {
  if (g === 0) return true;
  if (geo.compat & COMPAT_SPARSE_SUPER2) return g === geo.backupBgs[0] || g === geo.backupBgs[1];
  if (g <= 1 || !(geo.roCompat & RO_COMPAT_SPARSE_SUPER)) return true;
  if (!(g & 1)) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

/** First block of group g. */
export function groupFirstBlock(geo: Geometry, g: number): number {
  return geo.firstDataBlock + g * geo.blocksPerGroup;
}

/** Number of blocks in group g (the last group may be short). */
export function groupBlockCount(geo: Geometry, g: number): number {
  return Math.min(geo.blocksPerGroup, geo.blocksCount - groupFirstBlock(geo, g));
}

/** Block number holding the descriptor of group g. */
export function descBlock(geo: Geometry, g: number): number {
  const metaGroup = Math.floor(g / geo.descPerBlock);
  if (!(geo.incompat & INCOMPAT_META_BG) || metaGroup < geo.firstMetaBg) {
    return geo.firstDataBlock + 1 + metaGroup;
  }
  const first = metaGroup * geo.descPerBlock;
  return groupFirstBlock(geo, first) + (groupHasSuper(geo, first) ? 1 : 0);
}

/** The blocks of group g used by superblock/descriptor copies (not bitmaps or inode tables). */
export function superAndDescBlocks(geo: Geometry, g: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const start = groupFirstBlock(geo, g);
  const hasSuper = groupHasSuper(geo, g);
  if (geo.incompat & INCOMPAT_META_BG) {
    const metaGroup = Math.floor(g / geo.descPerBlock);
    if (hasSuper) out.push([start, 1]);
    if (metaGroup < geo.firstMetaBg) {
      if (hasSuper && geo.firstMetaBg > 0) out.push([start + 1, geo.firstMetaBg]);
    } else {
      const idx = g % geo.descPerBlock;
      if (idx === 0 || idx === 1 || idx === geo.descPerBlock - 1) out.push([start + (hasSuper ? 1 : 0), 1]);
    }
  } else if (hasSuper) {
    const descBlocks = Math.ceil(geo.groupCount / geo.descPerBlock);
    out.push([start, 1 + descBlocks + geo.reservedGdtBlocks]);
  }
  return out;
}

/** Live access to one group descriptor. */
export class GroupDesc {
  private readonly v: DataView;
  constructor(
    readonly group: number,
    readonly raw: Uint8Array,
    private readonly is64: boolean,
  ) {
    this.v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  private lohi(lo: number, hi: number, loBytes: 2 | 4): number {
    const l = loBytes === 4 ? this.v.getUint32(lo, true) : this.v.getUint16(lo, true);
    if (!this.is64) return l;
    const h = loBytes === 4 ? this.v.getUint32(hi, true) : this.v.getUint16(hi, true);
    return l + h * (loBytes === 4 ? 2 ** 32 : 2 ** 16);
  }
  private setLohi(lo: number, hi: number, loBytes: 2 | 4, value: number): void {
    const base = loBytes === 4 ? 2 ** 32 : 2 ** 16;
    if (loBytes === 4) this.v.setUint32(lo, value % base, true);
    else this.v.setUint16(lo, value % base, true);
    if (this.is64) {
      if (loBytes === 4) this.v.setUint32(hi, Math.floor(value / base), true);
      else this.v.setUint16(hi, Math.floor(value / base), true);
    }
  }
  get blockBitmap(): number {
    return this.lohi(BG_BLOCK_BITMAP_LO, BG_BLOCK_BITMAP_HI, 4);
  }
  get inodeBitmap(): number {
    return this.lohi(BG_INODE_BITMAP_LO, BG_INODE_BITMAP_HI, 4);
  }
  get inodeTable(): number {
    return this.lohi(BG_INODE_TABLE_LO, BG_INODE_TABLE_HI, 4);
  }
  get freeBlocks(): number {
    return this.lohi(BG_FREE_BLOCKS_COUNT_LO, BG_FREE_BLOCKS_COUNT_HI, 2);
  }
  set freeBlocks(n: number) {
    this.setLohi(BG_FREE_BLOCKS_COUNT_LO, BG_FREE_BLOCKS_COUNT_HI, 2, n);
  }
  get freeInodes(): number {
    return this.lohi(BG_FREE_INODES_COUNT_LO, BG_FREE_INODES_COUNT_HI, 2);
  }
  set freeInodes(n: number) {
    this.setLohi(BG_FREE_INODES_COUNT_LO, BG_FREE_INODES_COUNT_HI, 2, n);
  }
  get usedDirs(): number {
    return this.lohi(BG_USED_DIRS_COUNT_LO, BG_USED_DIRS_COUNT_HI, 2);
  }
  set usedDirs(n: number) {
    this.setLohi(BG_USED_DIRS_COUNT_LO, BG_USED_DIRS_COUNT_HI, 2, n);
  }
  get itableUnused(): number {
    return this.lohi(BG_ITABLE_UNUSED_LO, BG_ITABLE_UNUSED_HI, 2);
  }
  set itableUnused(n: number) {
    this.setLohi(BG_ITABLE_UNUSED_LO, BG_ITABLE_UNUSED_HI, 2, n);
  }
  get flags(): number {
    return this.v.getUint16(BG_FLAGS, true);
  }
  set flags(f: number) {
    this.v.setUint16(BG_FLAGS, f, true);
  }
  setBlockBitmapCsum(c: number): void {
    this.v.setUint16(BG_BLOCK_BITMAP_CSUM_LO, c & 0xffff, true);
    if (this.raw.length >= BG_BLOCK_BITMAP_CSUM_HI + 2) this.v.setUint16(BG_BLOCK_BITMAP_CSUM_HI, c >>> 16, true);
  }
  blockBitmapCsum(): number {
    const lo = this.v.getUint16(BG_BLOCK_BITMAP_CSUM_LO, true);
    return this.raw.length >= BG_BLOCK_BITMAP_CSUM_HI + 2 ? (lo | (this.v.getUint16(BG_BLOCK_BITMAP_CSUM_HI, true) << 16)) >>> 0 : lo;
  }
  setInodeBitmapCsum(c: number): void {
    this.v.setUint16(BG_INODE_BITMAP_CSUM_LO, c & 0xffff, true);
    if (this.raw.length >= BG_INODE_BITMAP_CSUM_HI + 2) this.v.setUint16(BG_INODE_BITMAP_CSUM_HI, c >>> 16, true);
  }
  inodeBitmapCsum(): number {
    const lo = this.v.getUint16(BG_INODE_BITMAP_CSUM_LO, true);
    return this.raw.length >= BG_INODE_BITMAP_CSUM_HI + 2 ? (lo | (this.v.getUint16(BG_INODE_BITMAP_CSUM_HI, true) << 16)) >>> 0 : lo;
  }
  get checksum(): number {
    return this.v.getUint16(BG_CHECKSUM, true);
  }
  set checksum(c: number) {
    this.v.setUint16(BG_CHECKSUM, c, true);
  }
}

/** The descriptor checksum (16 bits) for metadata_csum or gdt_csum; 0 when neither is on. */
export function groupDescChecksum(geo: Geometry, g: number, raw: Uint8Array): number {
  const size = geo.descSize;
  if (geo.metadataCsum) {
    let c = crc32cU32(geo.csumSeed, g);
    c = crc32cUpdate(c, raw, 0, BG_CHECKSUM);
    c = crc32cUpdate(c, ZERO2);
    if (size > BG_CHECKSUM + 2) c = crc32cUpdate(c, raw, BG_CHECKSUM + 2, size);
    return c & 0xffff;
  }
  if (geo.gdtCsum) {
    let c = crc16Update(0xffff, geo.uuid);
    const le = new Uint8Array(4);
    new DataView(le.buffer).setUint32(0, g, true);
    c = crc16Update(c, le);
    c = crc16Update(c, raw, 0, BG_CHECKSUM);
    if (geo.incompat & INCOMPAT_64BIT && size > BG_CHECKSUM + 2) c = crc16Update(c, raw, BG_CHECKSUM + 2, size);
    return c;
  }
  return 0;
}
const ZERO2 = new Uint8Array(2);

/** Reads group descriptor g (a live view). */
export function groupDesc(dev: BlockDev, geo: Geometry, g: number): GroupDesc {
  if (g < 0 || g >= geo.groupCount) throw corrupted(`group ${g} out of range`);
  const off = descBlock(geo, g) * geo.blockSize + (g % geo.descPerBlock) * geo.descSize;
  return new GroupDesc(g, dev.bytes(off, geo.descSize), (geo.incompat & INCOMPAT_64BIT) !== 0);
}

/** Recomputes descriptor g's checksum and marks it dirty. */
export function sealGroupDesc(dev: BlockDev, geo: Geometry, gd: GroupDesc): void {
  if (geo.metadataCsum || geo.gdtCsum) gd.checksum = groupDescChecksum(geo, gd.group, gd.raw);
  const off = descBlock(geo, gd.group) * geo.blockSize + (gd.group % geo.descPerBlock) * geo.descSize;
  dev.dirty(off, geo.descSize);
}
