/**
 * Hashed directory index (htree): `struct dx_root` in directory block 0, `struct dx_node` in
 * interior blocks, `struct dx_entry` {hash, block} arrays with a {limit, count} header in the slot of
 * entry 0's hash, and the `struct dx_tail` checksum under metadata_csum.
 */
import type { FsCtx } from './ctx.js';
import { crc32cUpdate } from './crc32c.js';
import { corrupted, EFSBADCRC, FsError } from './errors.js';
import { DX_HASH_SIPHASH, DX_HASH_TEA } from './hash.js';
import type { Inode } from './inode.js';

export const DX_ROOT_INFO = 0x18;
export const DX_INFO_RESERVED_ZERO = 0x00;
export const DX_INFO_HASH_VERSION = 0x04;
export const DX_INFO_LENGTH = 0x05;
export const DX_INFO_INDIRECT_LEVELS = 0x06;
export const DX_INFO_UNUSED_FLAGS = 0x07;
export const DX_ROOT_INFO_SIZE = 8;
export const DX_NODE_ENTRIES = 0x08;
export const DX_ENTRY_SIZE = 8;
export const DX_LIMIT = 0x00;
export const DX_COUNT = 0x02;
export const DX_TAIL_SIZE = 8;
export const DX_BLOCK_MASK = 0x0fffffff;

export interface DxCtx extends FsCtx {
  /** Physical block of directory logical block lblk (throws in a hole). */
  dirBlockNo(dir: Inode, lblk: number): number;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

export function dxRootLimit(blockSize: number, csum: boolean): number {
  return Math.floor((blockSize - 12 - 12 - DX_ROOT_INFO_SIZE - (csum ? DX_TAIL_SIZE : 0)) / DX_ENTRY_SIZE);
}
export function dxNodeLimit(blockSize: number, csum: boolean): number {
  return Math.floor((blockSize - 8 - (csum ? DX_TAIL_SIZE : 0)) / DX_ENTRY_SIZE);
}

export interface DxFrame {
  lblk: number;
  pblk: number;
  entriesOff: number;
  limit: number;
  count: number;
  /** Index of the entry followed down. */
  at: number;
}

export function dxHash(b: Uint8Array, f: DxFrame, i: number): number {
  return i === 0 ? 0 : dv(b).getUint32(f.entriesOff + i * DX_ENTRY_SIZE, true);
}
export function dxBlock(b: Uint8Array, f: DxFrame, i: number): number {
  return dv(b).getUint32(f.entriesOff + i * DX_ENTRY_SIZE + 4, true) & DX_BLOCK_MASK;
}

function dxChecksum(seed: number, b: Uint8Array, entriesOff: number, count: number, limit: number): number {
  const tail = entriesOff + limit * DX_ENTRY_SIZE;
  let c = crc32cUpdate(seed, b, 0, entriesOff + count * DX_ENTRY_SIZE);
  c = crc32cUpdate(c, b, tail, tail + 4);
  c = crc32cUpdate(c, ZERO4);
  return c;
}
const ZERO4 = new Uint8Array(4);

/** Rewrites count/limit and the checksum of an index block, and marks it dirty. */
export function dxSeal(ctx: DxCtx, dir: Inode, f: DxFrame): void {
  const b = ctx.block(f.pblk);
  const v = dv(b);
  v.setUint16(f.entriesOff + DX_LIMIT, f.limit, true);
  v.setUint16(f.entriesOff + DX_COUNT, f.count, true);
  if (ctx.geo.metadataCsum) {
    const tail = f.entriesOff + f.limit * DX_ENTRY_SIZE;
    v.setUint32(tail + 4, dxChecksum(ctx.inodeSeed(dir), b, f.entriesOff, f.count, f.limit), true);
  }
  ctx.markDirty(f.pblk);
}

export interface DxInfo {
  hashVersion: number;
  levels: number;
}

/** Reads and checks the dx_root of an indexed directory. */
export function dxRootInfo(ctx: DxCtx, dir: Inode, maxLevels: number): DxInfo & { root: DxFrame } {
  const pblk = ctx.dirBlockNo(dir, 0);
  const b = ctx.block(pblk);
  const v = dv(b);
  const what = `directory ${dir.ino} htree root`;
  const infoLen = b[DX_ROOT_INFO + DX_INFO_LENGTH]!;
  let hashVersion = b[DX_ROOT_INFO + DX_INFO_HASH_VERSION]!;
  const levels = b[DX_ROOT_INFO + DX_INFO_INDIRECT_LEVELS]!;
  if (v.getUint32(DX_ROOT_INFO + DX_INFO_RESERVED_ZERO, true) !== 0 || infoLen !== DX_ROOT_INFO_SIZE) throw corrupted(`${what}: bad root info`);
  if (b[DX_ROOT_INFO + DX_INFO_UNUSED_FLAGS]! & 1) throw corrupted(`${what}: unused flags set`);
  if (hashVersion === DX_HASH_SIPHASH || hashVersion > 5) throw corrupted(`${what}: unsupported hash version ${hashVersion}`);
  if (hashVersion <= DX_HASH_TEA && ctx.geo.unsignedHash) hashVersion += 3;
  if (levels >= maxLevels) throw corrupted(`${what}: ${levels} indirect levels`);
  const entriesOff = DX_ROOT_INFO + infoLen;
  const f = frameAt(ctx, dir, 0, pblk, entriesOff, dxRootLimit(ctx.geo.blockSize, ctx.geo.metadataCsum), what);
  return { hashVersion, levels, root: f };
}

function frameAt(ctx: DxCtx, dir: Inode, lblk: number, pblk: number, entriesOff: number, expectLimit: number, what: string): DxFrame {
  const b = ctx.block(pblk);
  const v = dv(b);
  const limit = v.getUint16(entriesOff + DX_LIMIT, true);
  const count = v.getUint16(entriesOff + DX_COUNT, true);
  if (limit !== expectLimit) throw corrupted(`${what}: limit ${limit}, expected ${expectLimit}`);
  if (count === 0 || count > limit) throw corrupted(`${what}: bad entry count ${count}`);
  if (ctx.geo.metadataCsum) {
    const tail = entriesOff + limit * DX_ENTRY_SIZE;
    if (v.getUint32(tail + 4, true) !== dxChecksum(ctx.inodeSeed(dir), b, entriesOff, count, limit)) {
      throw new FsError(EFSBADCRC, `${what}: index checksum mismatch`);
    }
  }
  return { lblk, pblk, entriesOff, limit, count, at: 0 };
}

/** Reads interior index block `lblk` of the directory. */
export function dxLoadNode(ctx: DxCtx, dir: Inode, lblk: number): DxFrame {
  const pblk = ctx.dirBlockNo(dir, lblk);
  return frameAt(ctx, dir, lblk, pblk, DX_NODE_ENTRIES, dxNodeLimit(ctx.geo.blockSize, ctx.geo.metadataCsum), `directory ${dir.ino} htree node ${lblk}`);
}

/** Walks from the root to the leaf that may hold `hash` (dx_probe). frames[0] is the root. */
export function dxProbe(ctx: DxCtx, dir: Inode, hash: number, info: DxInfo & { root: DxFrame }): DxFrame[] {
  const frames: DxFrame[] = [];
  let f = info.root;
  const dirBlocks = Math.ceil(dir.size / ctx.geo.blockSize);
  for (let level = 0; ; level++) {
    const b = ctx.block(f.pblk);
    let p = 1;
    let q = f.count - 1;
    while (p <= q) {
      const m = (p + q) >> 1;
      if (dxHash(b, f, m) > hash) q = m - 1;
      else p = m + 1;
    }
    f.at = p - 1;
    frames.push(f);
    const child = dxBlock(b, f, f.at);
    if (child >= dirBlocks || child === 0) throw corrupted(`directory ${dir.ino}: htree points at block ${child}`);
    if (level === info.levels) return frames;
    f = dxLoadNode(ctx, dir, child);
  }
}

/**
 * Moves the frames to the next leaf if it may continue the run of `hash` (ext4_htree_next_block).
 * Returns false when there is no such leaf.
 */
export function dxNextLeaf(ctx: DxCtx, dir: Inode, frames: DxFrame[], hash: number): boolean {
  let i = frames.length - 1;
  for (; i >= 0; i--) {
    const f = frames[i]!;
    if (f.at + 1 < f.count) break;
  }
  if (i < 0) return false;
  const f = frames[i]!;
  f.at++;
  const b = ctx.block(f.pblk);
  if ((dxHash(b, f, f.at) & ~1) >>> 0 !== hash) return false;
  for (let j = i + 1; j < frames.length; j++) {
    const parent = frames[j - 1]!;
    const nf = dxLoadNode(ctx, dir, dxBlock(ctx.block(parent.pblk), parent, parent.at));
    nf.at = 0;
    frames[j] = nf;
  }
  return true;
}

/** Inserts {hash, block} at position pos of the frame's entries (the caller checked count < limit). */
export function dxInsert(ctx: DxCtx, f: DxFrame, pos: number, hash: number, block: number): void {
  const b = ctx.block(f.pblk);
  const start = f.entriesOff + pos * DX_ENTRY_SIZE;
  const end = f.entriesOff + f.count * DX_ENTRY_SIZE;
  b.copyWithin(start + DX_ENTRY_SIZE, start, end);
  const v = dv(b);
  v.setUint32(start, hash >>> 0, true);
  v.setUint32(start + 4, block, true);
  f.count++;
}

/** Formats a fresh interior node block holding the given raw entries (entry 0's hash slot is overwritten). */
export function dxFormatNode(ctx: DxCtx, pblk: number, lblk: number, entries: Uint8Array): DxFrame {
  const b = ctx.block(pblk);
  const bs = ctx.geo.blockSize;
  b.fill(0);
  // Fake dirent: inode 0 spanning the block.
  const recLen = bs >= 65536 ? 65535 : bs;
  b[4] = recLen & 0xff;
  b[5] = (recLen >> 8) & 0xff;
  b.set(entries, DX_NODE_ENTRIES);
  return { lblk, pblk, entriesOff: DX_NODE_ENTRIES, limit: dxNodeLimit(bs, ctx.geo.metadataCsum), count: entries.length / DX_ENTRY_SIZE, at: 0 };
}

export function setLevels(ctx: DxCtx, rootPblk: number, levels: number): void {
  ctx.block(rootPblk)[DX_ROOT_INFO + DX_INFO_INDIRECT_LEVELS] = levels;
}
