/**
 * Classic (ext2/ext3) block maps: 12 direct pointers in i_block, then single, double and triple
 * indirect blocks of 32-bit block numbers. 0 is a hole at any level.
 */
import type { FsCtx } from './ctx.js';
import { corrupted, FsError } from './errors.js';
import { E } from '../../abi/errno.js';
import type { Inode } from './inode.js';

export const NDIR_BLOCKS = 12;
export const IND_BLOCK = 12;
export const DIND_BLOCK = 13;
export const TIND_BLOCK = 14;

function u32(b: Uint8Array, i: number): number {
  return (b[i * 4]! | (b[i * 4 + 1]! << 8) | (b[i * 4 + 2]! << 16) | (b[i * 4 + 3]! << 24)) >>> 0;
}
function setU32(b: Uint8Array, i: number, v: number): void {
  b[i * 4] = v & 0xff;
  b[i * 4 + 1] = (v >>> 8) & 0xff;
  b[i * 4 + 2] = (v >>> 16) & 0xff;
  b[i * 4 + 3] = (v >>> 24) & 0xff;
}

/** Where logical block lblk lives: the i_block slot, the depth below it, and the index path. */
function locate(per: number, lblk: number): { slot: number; depth: number; idx: number[]; span: number } | null {
  if (lblk < NDIR_BLOCKS) return { slot: lblk, depth: 0, idx: [], span: 1 };
  let rel = lblk - NDIR_BLOCKS;
  let span = per;
  for (let depth = 1; depth <= 3; depth++) {
    if (rel < span) {
      const idx: number[] = [];
      let s = span;
      for (let d = 0; d < depth; d++) {
        s /= per;
        idx.push(Math.floor(rel / s) % per);
      }
      return { slot: NDIR_BLOCKS + depth - 1, depth, idx, span };
    }
    rel -= span;
    span *= per;
  }
  return null;
}

/** One past the largest logical block a block map can address. */
export function blockmapLimit(blockSize: number): number {
  const per = blockSize / 4;
  return NDIR_BLOCKS + per + per * per + per * per * per;
}

/** The physical block of lblk (0 in a hole) and, in a hole, the first logical block past it that may be mapped. */
export function blockmapLookup(ctx: FsCtx, inode: Inode, lblk: number): { pblk: number; holeEnd: number } {
  const per = ctx.geo.blockSize / 4;
  const loc = locate(per, lblk);
  if (!loc) return { pblk: 0, holeEnd: Number.MAX_SAFE_INTEGER };
  let ptr = u32(inode.iblock, loc.slot);
  let base = loc.depth === 0 ? lblk : NDIR_BLOCKS + (loc.depth >= 2 ? per : 0) + (loc.depth >= 3 ? per * per : 0);
  let size = loc.depth === 0 ? 1 : per ** loc.depth;
  for (let d = 0; d < loc.depth; d++) {
    if (ptr === 0) return { pblk: 0, holeEnd: base + size };
    ctx.checkRange(ptr, 1, `inode ${inode.ino} indirect block`);
    const b = ctx.block(ptr);
    size /= per;
    const i = loc.idx[d]!;
    base += i * size;
    ptr = u32(b, i);
  }
  if (ptr === 0) return { pblk: 0, holeEnd: base + size };
  ctx.checkRange(ptr, 1, `inode ${inode.ino} data block`);
  return { pblk: ptr, holeEnd: 0 };
}

/** Maps lblk to pblk, allocating indirect blocks as needed. */
export function blockmapSet(ctx: FsCtx, inode: Inode, lblk: number, pblk: number): void {
  const per = ctx.geo.blockSize / 4;
  const loc = locate(per, lblk);
  if (!loc || pblk >= 2 ** 32) throw new FsError(E.EFBIG, 'beyond what a block map can address');
  if (loc.depth === 0) {
    setU32(inode.iblock, loc.slot, pblk);
    return;
  }
  // Allocate every missing indirect block of the path first: running out of space part-way
  // leaves the map as it was.
  let ptr = u32(inode.iblock, loc.slot);
  let have = 0;
  if (ptr !== 0) {
    have = 1;
    for (let d = 0, cur = ptr; d < loc.depth - 1; d++) {
      ctx.checkRange(cur, 1, `inode ${inode.ino} indirect block`);
      const c = u32(ctx.block(cur), loc.idx[d]!);
      if (c === 0) break;
      cur = c;
      have++;
    }
  }
  const fresh: number[] = [];
  try {
    while (fresh.length < loc.depth - have) fresh.push(ctx.allocMeta(inode, fresh.length ? fresh[fresh.length - 1]! + 1 : pblk));
  } catch (e) {
    for (const b of fresh) ctx.freeBlocks(inode, b, 1);
    throw e;
  }
  if (ptr === 0) {
    ptr = fresh.shift()!;
    ctx.block(ptr).fill(0);
    ctx.markDirty(ptr);
    setU32(inode.iblock, loc.slot, ptr);
  }
  for (let d = 0; d < loc.depth; d++) {
    ctx.checkRange(ptr, 1, `inode ${inode.ino} indirect block`);
    const b = ctx.block(ptr);
    const i = loc.idx[d]!;
    if (d === loc.depth - 1) {
      setU32(b, i, pblk);
      ctx.markDirty(ptr);
      return;
    }
    let child = u32(b, i);
    if (child === 0) {
      child = fresh.shift()!;
      ctx.block(child).fill(0);
      ctx.markDirty(child);
      setU32(ctx.block(ptr), i, child);
      ctx.markDirty(ptr);
    }
    ptr = child;
  }
}

/**
 * Frees every block mapped at logical blocks >= from (and indirect blocks left empty).
 * Returns nothing; i_blocks is kept by ctx.freeBlocks.
 */
export function blockmapTruncate(ctx: FsCtx, inode: Inode, from: number): void {
  const per = ctx.geo.blockSize / 4;
  const seen = new Set<number>();
  // Frees the subtree at `ptr` (depth d, covering logical [base, base + per^d)) from `from` on; returns true if it is now empty.
  const cut = (ptr: number, d: number, base: number): boolean => {
    if (d === 0) {
      if (base >= from) {
        ctx.freeBlocks(inode, ptr, 1);
        return true;
      }
      return false;
    }
    if (seen.has(ptr)) throw corrupted(`inode ${inode.ino}: indirect block ${ptr} used twice`);
    seen.add(ptr);
    ctx.checkRange(ptr, 1, `inode ${inode.ino} indirect block`);
    const childSpan = per ** (d - 1);
    let empty = true;
    for (let i = 0; i < per; i++) {
      const b = ctx.block(ptr);
      const c = u32(b, i);
      if (c === 0) continue;
      const cb = base + i * childSpan;
      if (cb + childSpan <= from) {
        empty = false;
        continue;
      }
      if (d - 1 > 0 || cb >= from) ctx.checkRange(c, 1, `inode ${inode.ino} block`);
      if (cut(c, d - 1, cb)) {
        setU32(ctx.block(ptr), i, 0);
        ctx.markDirty(ptr);
      } else empty = false;
    }
    if (empty) {
      ctx.freeBlocks(inode, ptr, 1);
      return true;
    }
    return false;
  };
  const ib = inode.iblock;
  for (let i = 0; i < NDIR_BLOCKS; i++) {
    const p = u32(ib, i);
    if (p !== 0 && i >= from) {
      ctx.checkRange(p, 1, `inode ${inode.ino} block`);
      ctx.freeBlocks(inode, p, 1);
      setU32(ib, i, 0);
    }
  }
  let base = NDIR_BLOCKS;
  for (let depth = 1; depth <= 3; depth++) {
    const span = per ** depth;
    const slot = NDIR_BLOCKS + depth - 1;
    const p = u32(ib, slot);
    if (p !== 0 && base + span > from) {
      if (cut(p, depth, base)) setU32(ib, slot, 0);
    }
    base += span;
  }
}

/** Every block of the map (data and indirect), for checks. */
export function blockmapCount(ctx: FsCtx, inode: Inode): number {
  const per = ctx.geo.blockSize / 4;
  let n = 0;
  const walk = (ptr: number, d: number): void => {
    n++;
    if (d === 0) return;
    ctx.checkRange(ptr, 1, `inode ${inode.ino} indirect block`);
    for (let i = 0; i < per; i++) {
      const c = u32(ctx.block(ptr), i);
      if (c) walk(c, d - 1);
    }
  };
  for (let i = 0; i < NDIR_BLOCKS; i++) if (u32(inode.iblock, i)) n++;
  for (let d = 1; d <= 3; d++) {
    const p = u32(inode.iblock, NDIR_BLOCKS + d - 1);
    if (p) walk(p, d);
  }
  return n;
}
