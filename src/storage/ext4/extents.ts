/**
 * Extent trees (`struct ext4_extent_header`, `ext4_extent`, `ext4_extent_idx`, `ext4_extent_tail`).
 *
 * Reading walks the tree from the root in i_block (any depth, validated). Writing keeps the common
 * case cheap (extend the last extent or append to the rightmost leaf, adding a leaf under the
 * rightmost index when there is room) and otherwise rebuilds the whole tree from the sorted extent
 * list, reusing the old tree blocks: simple, and always a well-formed, minimal-depth tree.
 */
import type { FsCtx } from './ctx.js';
import { crc32cUpdate } from './crc32c.js';
import { corrupted, FsError, EFSBADCRC } from './errors.js';
import type { Inode } from './inode.js';

export const EH_MAGIC = 0x00;
export const EH_ENTRIES = 0x02;
export const EH_MAX = 0x04;
export const EH_DEPTH = 0x06;
export const EH_GENERATION = 0x08;
export const EXTENT_HEADER_SIZE = 12;
export const EXTENT_MAGIC = 0xf30a;
// struct ext4_extent
export const EE_BLOCK = 0x00;
export const EE_LEN = 0x04;
export const EE_START_HI = 0x06;
export const EE_START_LO = 0x08;
// struct ext4_extent_idx
export const EI_BLOCK = 0x00;
export const EI_LEAF_LO = 0x04;
export const EI_LEAF_HI = 0x08;
export const EXTENT_ENTRY_SIZE = 12;
export const EXTENT_TAIL_SIZE = 4;
export const MAX_EXTENT_DEPTH = 5;
/** Longest initialized extent; an unwritten one holds at most MAX_INIT_LEN - 1 blocks. */
export const MAX_INIT_LEN = 32768;
export const MAX_UNINIT_LEN = 32767;
/** Logical blocks are 32 bits; the last one is reserved. */
export const MAX_LBLK = 0xffffffff;
const ROOT_MAX = 4;

export interface Extent {
  lblk: number;
  len: number;
  pblk: number;
  /** An unwritten (preallocated) extent: reads as zeros. */
  uninit: boolean;
}

function dv(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Entries per non-root node. */
export function nodeCapacity(blockSize: number): number {
  return Math.floor((blockSize - EXTENT_HEADER_SIZE) / EXTENT_ENTRY_SIZE);
}

function tailOffset(max: number): number {
  return EXTENT_HEADER_SIZE + max * EXTENT_ENTRY_SIZE;
}

interface Header {
  entries: number;
  max: number;
  depth: number;
}

function readHeader(node: Uint8Array, maxAllowed: number, what: string): Header {
  const v = dv(node);
  if (v.getUint16(EH_MAGIC, true) !== EXTENT_MAGIC) throw corrupted(`${what}: bad extent header magic`);
  const entries = v.getUint16(EH_ENTRIES, true);
  const max = v.getUint16(EH_MAX, true);
  const depth = v.getUint16(EH_DEPTH, true);
  if (max > maxAllowed || max === 0 || entries > max || depth > MAX_EXTENT_DEPTH) throw corrupted(`${what}: bad extent header`);
  return { entries, max, depth };
}

function getExtent(node: Uint8Array, i: number): Extent {
  const v = dv(node);
  const o = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
  const raw = v.getUint16(o + EE_LEN, true);
  const uninit = raw > MAX_INIT_LEN;
  return {
    lblk: v.getUint32(o + EE_BLOCK, true),
    len: uninit ? raw - MAX_INIT_LEN : raw,
    pblk: v.getUint16(o + EE_START_HI, true) * 2 ** 32 + v.getUint32(o + EE_START_LO, true),
    uninit,
  };
}

function putExtent(node: Uint8Array, i: number, e: Extent): void {
  const v = dv(node);
  const o = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
  v.setUint32(o + EE_BLOCK, e.lblk, true);
  v.setUint16(o + EE_LEN, e.uninit ? e.len + MAX_INIT_LEN : e.len, true);
  v.setUint16(o + EE_START_HI, Math.floor(e.pblk / 2 ** 32), true);
  v.setUint32(o + EE_START_LO, e.pblk % 2 ** 32, true);
}

function getIndex(node: Uint8Array, i: number): { lblk: number; pblk: number } {
  const v = dv(node);
  const o = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
  return { lblk: v.getUint32(o + EI_BLOCK, true), pblk: v.getUint16(o + EI_LEAF_HI, true) * 2 ** 32 + v.getUint32(o + EI_LEAF_LO, true) };
}

function putIndex(node: Uint8Array, i: number, lblk: number, pblk: number): void {
  const v = dv(node);
  const o = EXTENT_HEADER_SIZE + i * EXTENT_ENTRY_SIZE;
  v.setUint32(o + EI_BLOCK, lblk, true);
  v.setUint32(o + EI_LEAF_LO, pblk % 2 ** 32, true);
  v.setUint16(o + EI_LEAF_HI, Math.floor(pblk / 2 ** 32), true);
  v.setUint16(o + 10, 0, true);
}

function writeHeader(node: Uint8Array, entries: number, max: number, depth: number): void {
  const v = dv(node);
  v.setUint16(EH_MAGIC, EXTENT_MAGIC, true);
  v.setUint16(EH_ENTRIES, entries, true);
  v.setUint16(EH_MAX, max, true);
  v.setUint16(EH_DEPTH, depth, true);
  v.setUint32(EH_GENERATION, 0, true);
}

function nodeChecksum(ctx: FsCtx, inode: Inode, node: Uint8Array, max: number): number {
  return crc32cUpdate(ctx.inodeSeed(inode), node, 0, tailOffset(max));
}

/** Reads tree block `pblk` at the expected depth, verifying its header and checksum. */
function loadNode(ctx: FsCtx, inode: Inode, pblk: number, depth: number): { node: Uint8Array; h: Header } {
  ctx.checkRange(pblk, 1, `inode ${inode.ino} extent tree block`);
  const node = ctx.block(pblk);
  const cap = nodeCapacity(ctx.geo.blockSize);
  const h = readHeader(node, cap, `inode ${inode.ino} extent block ${pblk}`);
  if (h.depth !== depth) throw corrupted(`inode ${inode.ino} extent block ${pblk}: depth ${h.depth}, expected ${depth}`);
  if (ctx.geo.metadataCsum && tailOffset(h.max) + EXTENT_TAIL_SIZE <= node.length && !ctx.verifiedBlocks.has(pblk)) {
    if (dv(node).getUint32(tailOffset(h.max), true) !== nodeChecksum(ctx, inode, node, h.max)) {
      throw new FsError(EFSBADCRC, `inode ${inode.ino} extent block ${pblk}: checksum mismatch`);
    }
    ctx.verifiedBlocks.add(pblk);
  }
  return { node, h };
}

function sealNode(ctx: FsCtx, inode: Inode, pblk: number, node: Uint8Array): void {
  if (ctx.geo.metadataCsum) {
    const max = dv(node).getUint16(EH_MAX, true);
    dv(node).setUint32(tailOffset(max), nodeChecksum(ctx, inode, node, max), true);
  }
  ctx.markDirty(pblk);
}

function rootHeader(inode: Inode): Header {
  return readHeader(inode.iblock, ROOT_MAX, `inode ${inode.ino} extent root`);
}

/** Initializes an empty extent root in i_block. */
export function initExtentRoot(inode: Inode): void {
  inode.iblock.fill(0);
  writeHeader(inode.iblock, 0, ROOT_MAX, 0);
}

function checkExtent(ctx: FsCtx, inode: Inode, e: Extent): void {
  if (e.len === 0 || e.lblk + e.len > MAX_LBLK + 1) throw corrupted(`inode ${inode.ino}: bad extent at logical block ${e.lblk}`);
  ctx.checkRange(e.pblk, e.len, `inode ${inode.ino} extent`);
}

export interface Mapping {
  /** The extent covering the block, or null in a hole. */
  extent: Extent | null;
  /** In a hole: the first mapped logical block after it (MAX_LBLK + 1 when none). */
  holeEnd: number;
}

/** Finds the mapping of logical block `lblk`. */
export function extentLookup(ctx: FsCtx, inode: Inode, lblk: number): Mapping {
  let node = inode.iblock;
  let h = rootHeader(inode);
  let bound = MAX_LBLK + 1;
  const seen = new Set<number>();
  for (;;) {
    if (h.entries === 0) return { extent: null, holeEnd: bound };
    // Last entry whose start <= lblk.
    let lo = 0;
    let hi = h.entries - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const start = dv(node).getUint32(EXTENT_HEADER_SIZE + mid * EXTENT_ENTRY_SIZE, true);
      if (start <= lblk) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (h.depth === 0) {
      if (found >= 0) {
        const e = getExtent(node, found);
        if (lblk < e.lblk + e.len) {
          checkExtent(ctx, inode, e);
          return { extent: e, holeEnd: 0 };
        }
      }
      const next = found + 1 < h.entries ? getExtent(node, found + 1).lblk : bound;
      return { extent: null, holeEnd: Math.min(next, bound) };
    }
    if (found < 0) {
      // Before the first child: a hole up to the first child's start.
      return { extent: null, holeEnd: Math.min(getIndex(node, 0).lblk, bound) };
    }
    if (found + 1 < h.entries) bound = Math.min(bound, getIndex(node, found + 1).lblk);
    const child = getIndex(node, found).pblk;
    if (seen.has(child)) throw corrupted(`inode ${inode.ino}: extent tree loop`);
    seen.add(child);
    const loaded = loadNode(ctx, inode, child, h.depth - 1);
    node = loaded.node;
    h = loaded.h;
  }
}

export interface ExtentTree {
  extents: Extent[];
  /** Tree blocks (index and leaf nodes below the root). */
  nodes: number[];
  depth: number;
}

/** Reads every extent of the inode, in order, checking order and overlap. */
export function readExtents(ctx: FsCtx, inode: Inode): ExtentTree {
  const extents: Extent[] = [];
  const nodes: number[] = [];
  const seen = new Set<number>();
  const root = rootHeader(inode);
  const walk = (node: Uint8Array, h: Header): void => {
    for (let i = 0; i < h.entries; i++) {
      if (h.depth === 0) {
        const e = getExtent(node, i);
        checkExtent(ctx, inode, e);
        const prev = extents[extents.length - 1];
        if (prev && e.lblk < prev.lblk + prev.len) throw corrupted(`inode ${inode.ino}: overlapping or unsorted extents`);
        extents.push(e);
      } else {
        const { pblk } = getIndex(node, i);
        if (seen.has(pblk)) throw corrupted(`inode ${inode.ino}: extent tree block ${pblk} used twice`);
        seen.add(pblk);
        nodes.push(pblk);
        const child = loadNode(ctx, inode, pblk, h.depth - 1);
        walk(child.node, child.h);
      }
    }
  };
  walk(inode.iblock, root);
  return { extents, nodes, depth: root.depth };
}

/** Number of tree blocks a list of n extents needs, and the depth. */
function treeShape(n: number, per: number): { levels: number[]; depth: number } {
  const levels: number[] = [];
  if (n <= ROOT_MAX) return { levels, depth: 0 };
  let count = Math.ceil(n / per);
  levels.push(count);
  while (count > ROOT_MAX) {
    count = Math.ceil(count / per);
    levels.push(count);
  }
  return { levels, depth: levels.length };
}

/** Merges adjacent compatible extents and sorts; the list must not overlap. */
export function normalizeExtents(list: Extent[]): Extent[] {
  const sorted = list.filter((e) => e.len > 0).sort((a, b) => a.lblk - b.lblk);
  const out: Extent[] = [];
  for (const e of sorted) {
    const p = out[out.length - 1];
    const maxLen = e.uninit ? MAX_UNINIT_LEN : MAX_INIT_LEN;
    if (p && p.uninit === e.uninit && p.lblk + p.len === e.lblk && p.pblk + p.len === e.pblk && p.len < maxLen) {
      const take = Math.min(e.len, maxLen - p.len);
      p.len += take;
      if (take < e.len) out.push({ lblk: e.lblk + take, len: e.len - take, pblk: e.pblk + take, uninit: e.uninit });
    } else if (e.len > maxLen) {
      for (let off = 0; off < e.len; off += maxLen) {
        out.push({ lblk: e.lblk + off, len: Math.min(maxLen, e.len - off), pblk: e.pblk + off, uninit: e.uninit });
      }
    } else out.push({ ...e });
  }
  return out;
}

/**
 * Rewrites the whole tree from a sorted, non-overlapping list (already normalized), reusing the old
 * tree blocks and allocating or freeing blocks as needed. The caller seals the inode.
 */
export function storeExtents(ctx: FsCtx, inode: Inode, extents: Extent[], oldNodes: number[]): void {
  const per = nodeCapacity(ctx.geo.blockSize);
  const { levels, depth } = treeShape(extents.length, per);
  const need = levels.reduce((a, b) => a + b, 0);
  const pool = oldNodes.slice();
  while (pool.length > need) ctx.freeBlocks(inode, pool.pop()!, 1);
  const goal = extents.length ? extents[0]!.pblk : ctx.goalFor(inode);
  // All new tree blocks first: running out of space part-way changes nothing (the old tree stays).
  const fresh: number[] = [];
  try {
    while (pool.length + fresh.length < need) {
      const prev = fresh.length ? fresh[fresh.length - 1]! : pool.length ? pool[pool.length - 1]! : goal - 1;
      fresh.push(ctx.allocMeta(inode, prev + 1));
    }
  } catch (e) {
    for (const b of fresh) ctx.freeBlocks(inode, b, 1);
    throw e;
  }
  pool.push(...fresh);
  let next = 0;
  type Item = { lblk: number; pblk: number };
  let items: Item[] | null = null;
  for (let level = 0; level < depth; level++) {
    const count = level === 0 ? extents.length : items!.length;
    const out: Item[] = [];
    for (let start = 0; start < count; start += per) {
      const pblk = pool[next++]!;
      const node = ctx.block(pblk);
      node.fill(0);
      const n = Math.min(per, count - start);
      writeHeader(node, n, per, level);
      for (let i = 0; i < n; i++) {
        if (level === 0) putExtent(node, i, extents[start + i]!);
        else putIndex(node, i, items![start + i]!.lblk, items![start + i]!.pblk);
      }
      sealNode(ctx, inode, pblk, node);
      out.push({ lblk: level === 0 ? extents[start]!.lblk : items![start]!.lblk, pblk });
    }
    items = out;
  }
  const root = inode.iblock;
  root.fill(0);
  if (depth === 0) {
    writeHeader(root, extents.length, ROOT_MAX, 0);
    extents.forEach((e, i) => putExtent(root, i, e));
  } else {
    writeHeader(root, items!.length, ROOT_MAX, depth);
    items!.forEach((it, i) => putIndex(root, i, it.lblk, it.pblk));
  }
}

/** The last extent of the file (null when it has none). */
export function lastExtent(ctx: FsCtx, inode: Inode): Extent | null {
  let node = inode.iblock;
  let h = rootHeader(inode);
  for (let guard = 0; ; guard++) {
    if (h.entries === 0) return null;
    if (h.depth === 0) return getExtent(node, h.entries - 1);
    if (guard > MAX_EXTENT_DEPTH) throw corrupted(`inode ${inode.ino}: extent tree too deep`);
    const loaded = loadNode(ctx, inode, getIndex(node, h.entries - 1).pblk, h.depth - 1);
    node = loaded.node;
    h = loaded.h;
  }
}

/**
 * Fast path for appending `e` after the last extent (e.lblk >= end of the last extent): extends the
 * last extent in place when contiguous, else appends to the rightmost leaf, else adds a leaf under
 * the rightmost index node. Returns false when the tree must be rebuilt instead.
 */
export function appendExtent(ctx: FsCtx, inode: Inode, e: Extent): boolean {
  const path: Array<{ node: Uint8Array; pblk: number; h: Header }> = [];
  let node = inode.iblock;
  let h = rootHeader(inode);
  let pblk = 0;
  for (;;) {
    path.push({ node, pblk, h });
    if (h.depth === 0 || h.entries === 0) break;
    pblk = getIndex(node, h.entries - 1).pblk;
    const loaded = loadNode(ctx, inode, pblk, h.depth - 1);
    node = loaded.node;
    h = loaded.h;
  }
  const leaf = path[path.length - 1]!;
  if (leaf.h.depth !== 0) return false; // empty index root: rebuild
  const seal = (p: { node: Uint8Array; pblk: number }): void => {
    if (p.pblk !== 0) sealNode(ctx, inode, p.pblk, p.node);
  };
  if (leaf.h.entries > 0) {
    const last = getExtent(leaf.node, leaf.h.entries - 1);
    if (e.lblk < last.lblk + last.len) return false;
    const maxLen = e.uninit ? MAX_UNINIT_LEN : MAX_INIT_LEN;
    if (last.uninit === e.uninit && last.lblk + last.len === e.lblk && last.pblk + last.len === e.pblk && last.len + e.len <= maxLen) {
      last.len += e.len;
      putExtent(leaf.node, leaf.h.entries - 1, last);
      seal(leaf);
      return true;
    }
  }
  if (leaf.h.entries < leaf.h.max) {
    putExtent(leaf.node, leaf.h.entries, e);
    dv(leaf.node).setUint16(EH_ENTRIES, leaf.h.entries + 1, true);
    seal(leaf);
    return true;
  }
  // The leaf is full: add a new leaf under the lowest ancestor index with room, if any is directly above.
  if (path.length < 2) return false;
  const parent = path[path.length - 2]!;
  if (parent.h.entries >= parent.h.max) return false;
  const per = nodeCapacity(ctx.geo.blockSize);
  const nb = ctx.allocMeta(inode, leaf.pblk + 1);
  const nn = ctx.block(nb);
  nn.fill(0);
  writeHeader(nn, 1, per, 0);
  putExtent(nn, 0, e);
  sealNode(ctx, inode, nb, nn);
  putIndex(parent.node, parent.h.entries, e.lblk, nb);
  dv(parent.node).setUint16(EH_ENTRIES, parent.h.entries + 1, true);
  seal(parent);
  return true;
}
