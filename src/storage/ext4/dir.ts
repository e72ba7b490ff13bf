/**
 * Directory operations: lookup, insert, remove, iterate, for linear directories and for hashed
 * (htree) ones, whose index is kept right on insert (leaf split, index node split, new level).
 */
import { E } from '../../abi/errno.js';
import {
  DE_NAME,
  DIR_TAIL_SIZE,
  FT_DIR,
  formatEmptyBlock,
  hasTail,
  insertIntoBlock,
  nameEquals,
  parseBlock,
  recLenFor,
  removeFromBlock,
  sealLeaf,
  setIno,
  type RawEntry,
  verifyLeaf,
  writeEntry,
  writeTail,
  DE_FILE_TYPE,
} from './dirent.js';
import { corrupted, FsError } from './errors.js';
import { dirHash } from './hash.js';
import {
  DX_ENTRY_SIZE,
  DX_INFO_HASH_VERSION,
  DX_INFO_LENGTH,
  DX_ROOT_INFO,
  DX_ROOT_INFO_SIZE,
  dxRootLimit,
  dxBlock,
  dxFormatNode,
  dxHash,
  dxInsert,
  dxNextLeaf,
  dxProbe,
  dxRootInfo,
  dxSeal,
  setLevels,
  type DxCtx,
  type DxFrame,
} from './htree.js';
import { FL_INDEX, type Inode } from './inode.js';

export interface DirCtx extends DxCtx {
  readonly filetype: boolean;
  /** dir_index feature: honour and keep htree indexes. */
  readonly dirIndex: boolean;
  /** Maximum htree depth (2, or 3 with largedir). */
  readonly dxMaxLevels: number;
  /** Appends a block to the directory (i_size grows by one block); the caller seals the inode. */
  appendDirBlock(dir: Inode): { lblk: number; pblk: number };
}

export interface FoundEntry {
  ino: number;
  type: number;
  lblk: number;
  off: number;
}

function blocksOf(ctx: DirCtx, dir: Inode): number {
  const bs = ctx.geo.blockSize;
  if (dir.size % bs !== 0) throw corrupted(`directory ${dir.ino}: size ${dir.size} is not a multiple of the block size`);
  return dir.size / bs;
}

/** Reads and validates directory block lblk; returns the live block, its records and its record limit. */
export function loadDirBlock(ctx: DirCtx, dir: Inode, lblk: number): { pblk: number; b: Uint8Array; entries: RawEntry[]; limit: number } {
  const pblk = ctx.dirBlockNo(dir, lblk);
  const b = ctx.block(pblk);
  const tail = ctx.geo.metadataCsum && hasTail(b);
  if (tail && !ctx.verifiedBlocks.has(pblk)) {
    verifyLeaf(ctx.inodeSeed(dir), b, `directory ${dir.ino} block ${lblk}`);
    ctx.verifiedBlocks.add(pblk);
  }
  const limit = tail ? b.length - DIR_TAIL_SIZE : b.length;
  return { pblk, b, entries: parseBlock(b, limit, ctx.geo.blockSize, ctx.geo.inodesCount, ctx.filetype, `directory ${dir.ino} block ${lblk}`), limit };
}

function sealDirBlock(ctx: DirCtx, dir: Inode, pblk: number, b: Uint8Array): void {
  if (ctx.geo.metadataCsum && hasTail(b)) sealLeaf(ctx.inodeSeed(dir), b);
  ctx.markDirty(pblk);
}

export function isIndexed(ctx: DirCtx, dir: Inode): boolean {
  return ctx.dirIndex && (dir.flags & FL_INDEX) !== 0;
}

function findInLeaf(ctx: DirCtx, dir: Inode, lblk: number, name: Uint8Array): FoundEntry | null {
  const { b, entries } = loadDirBlock(ctx, dir, lblk);
  for (const e of entries) {
    if (e.ino !== 0 && nameEquals(b, e.off, e.nameLen, name)) return { ino: e.ino, type: e.type, lblk, off: e.off };
  }
  return null;
}

function hashOf(ctx: DirCtx, name: Uint8Array, version: number): number {
  return dirHash(name, version, ctx.geo.hashSeed).hash;
}

/** Finds `name` in the directory. */
export function dirLookup(ctx: DirCtx, dir: Inode, name: Uint8Array): FoundEntry | null {
  if (isIndexed(ctx, dir)) {
    const info = dxRootInfo(ctx, dir, ctx.dxMaxLevels);
    const hash = hashOf(ctx, name, info.hashVersion);
    const frames = dxProbe(ctx, dir, hash, info);
    for (let guard = 0; ; guard++) {
      const leaf = frames[frames.length - 1]!;
      const found = findInLeaf(ctx, dir, dxBlock(ctx.block(leaf.pblk), leaf, leaf.at), name);
      if (found) return found;
      if (guard > 1 << 20 || !dxNextLeaf(ctx, dir, frames, hash)) return null;
    }
  }
  const n = blocksOf(ctx, dir);
  for (let lblk = 0; lblk < n; lblk++) {
    const found = findInLeaf(ctx, dir, lblk, name);
    if (found) return found;
  }
  return null;
}

/** Adds an entry (the caller checked that the name is not there). The caller seals the directory inode. */
export function dirAdd(ctx: DirCtx, dir: Inode, name: Uint8Array, ino: number, type: number): void {
  if (isIndexed(ctx, dir)) return dxAdd(ctx, dir, name, ino, type);
  const n = blocksOf(ctx, dir);
  for (let lblk = 0; lblk < n; lblk++) {
    const { pblk, b, entries } = loadDirBlock(ctx, dir, lblk);
    if (insertIntoBlock(b, entries, ino, name, type, ctx.geo.blockSize, ctx.filetype) >= 0) {
      sealDirBlock(ctx, dir, pblk, b);
      return;
    }
  }
  if (n === 1 && ctx.dirIndex && canIndex(ctx)) {
    // Growing past one block: index the directory (make_indexed_dir), then insert through the index.
    makeIndexed(ctx, dir);
    return dxAdd(ctx, dir, name, ino, type);
  }
  const { pblk } = ctx.appendDirBlock(dir);
  const b = ctx.block(pblk);
  formatEmptyBlock(b, ctx.geo.blockSize, ctx.geo.metadataCsum);
  const limit = ctx.geo.metadataCsum ? b.length - DIR_TAIL_SIZE : b.length;
  writeEntry(b, 0, ino, limit, name, type, ctx.geo.blockSize, ctx.filetype);
  sealDirBlock(ctx, dir, pblk, b);
}

function canIndex(ctx: DirCtx): boolean {
  return ctx.geo.defHashVersion <= 2;
}

/**
 * Turns a one-block linear directory into an indexed one: its entries (but '.' and '..') move to a
 * new leaf block 1, and block 0 becomes the dx_root pointing at it.
 */
function makeIndexed(ctx: DirCtx, dir: Inode): void {
  const bs = ctx.geo.blockSize;
  const csum = ctx.geo.metadataCsum;
  const block0 = loadDirBlock(ctx, dir, 0);
  const [dot, dotdot, ...rest] = block0.entries;
  if (!dot || !dotdot || !nameEquals(block0.b, dot.off, dot.nameLen, DOT) || !nameEquals(block0.b, dotdot.off, dotdot.nameLen, DOTDOT)) {
    throw corrupted(`directory ${dir.ino}: block 0 does not start with '.' and '..'`);
  }
  const moved = rest
    .filter((e) => e.ino !== 0)
    .map((e) => ({ ino: e.ino, type: block0.b[e.off + DE_FILE_TYPE]!, name: block0.b.slice(e.off + DE_NAME, e.off + DE_NAME + e.nameLen) }));
  const parentIno = dotdot.ino;
  const leaf = ctx.appendDirBlock(dir);
  const lb = ctx.block(leaf.pblk);
  formatEmptyBlock(lb, bs, csum);
  const limit = csum ? bs - DIR_TAIL_SIZE : bs;
  let off = 0;
  moved.forEach((m, j) => {
    const rl = j === moved.length - 1 ? limit - off : recLenFor(m.name.length);
    writeEntry(lb, off, m.ino, rl, m.name, m.type, bs, ctx.filetype);
    off += rl;
  });
  sealDirBlock(ctx, dir, leaf.pblk, lb);
  const rb = ctx.block(block0.pblk);
  rb.fill(0);
  writeEntry(rb, 0, dir.ino, 12, DOT, FT_DIR, bs, ctx.filetype);
  writeEntry(rb, 12, parentIno, bs - 12, DOTDOT, FT_DIR, bs, ctx.filetype);
  rb[DX_ROOT_INFO + DX_INFO_HASH_VERSION] = ctx.geo.defHashVersion;
  rb[DX_ROOT_INFO + DX_INFO_LENGTH] = DX_ROOT_INFO_SIZE;
  const root: DxFrame = { lblk: 0, pblk: block0.pblk, entriesOff: DX_ROOT_INFO + DX_ROOT_INFO_SIZE, limit: dxRootLimit(bs, csum), count: 1, at: 0 };
  new DataView(rb.buffer, rb.byteOffset, rb.byteLength).setUint32(root.entriesOff + 4, leaf.lblk, true);
  dir.flags = dir.flags | FL_INDEX;
  ctx.sealInode(dir);
  dxSeal(ctx, dir, root);
}

interface MapEntry {
  hash: number;
  ino: number;
  type: number;
  name: Uint8Array;
}

function dxAdd(ctx: DirCtx, dir: Inode, name: Uint8Array, ino: number, type: number): void {
  const bs = ctx.geo.blockSize;
  const csum = ctx.geo.metadataCsum;
  const info = dxRootInfo(ctx, dir, ctx.dxMaxLevels);
  const hash = hashOf(ctx, name, info.hashVersion);
  const frames = dxProbe(ctx, dir, hash, info);
  let leafFrame = frames[frames.length - 1]!;
  const leafLblk = dxBlock(ctx.block(leafFrame.pblk), leafFrame, leafFrame.at);
  const leaf = loadDirBlock(ctx, dir, leafLblk);
  if (insertIntoBlock(leaf.b, leaf.entries, ino, name, type, bs, ctx.filetype) >= 0) {
    sealDirBlock(ctx, dir, leaf.pblk, leaf.b);
    return;
  }
  // The leaf is full: make room in the index for one more leaf.
  let k = frames.length - 1;
  while (k >= 0 && frames[k]!.count >= frames[k]!.limit) k--;
  if (k < 0) {
    if (info.levels + 1 >= ctx.dxMaxLevels) throw new FsError(E.ENOSPC, `directory ${dir.ino}: htree index full`);
    // Add a level: the root's entries move to a new node; the root points at it.
    const root = frames[0]!;
    const rb = ctx.block(root.pblk);
    const moved = rb.slice(root.entriesOff, root.entriesOff + root.count * DX_ENTRY_SIZE);
    const nb = ctx.appendDirBlock(dir);
    const node = dxFormatNode(ctx, nb.pblk, nb.lblk, moved);
    node.at = root.at;
    new DataView(rb.buffer, rb.byteOffset, rb.byteLength).setUint32(root.entriesOff + 4, nb.lblk, true);
    root.count = 1;
    root.at = 0;
    setLevels(ctx, root.pblk, info.levels + 1);
    dxSeal(ctx, dir, node);
    dxSeal(ctx, dir, root);
    frames.splice(1, 0, node);
    k = 1;
  }
  // Split every full index node below frames[k].
  for (let i = k + 1; i < frames.length; i++) {
    const f = frames[i]!;
    const parent = frames[i - 1]!;
    const fb = ctx.block(f.pblk);
    const count1 = f.count >> 1;
    const hash2 = dxHash(fb, f, count1);
    const moved = fb.slice(f.entriesOff + count1 * DX_ENTRY_SIZE, f.entriesOff + f.count * DX_ENTRY_SIZE);
    const nb = ctx.appendDirBlock(dir);
    const nf = dxFormatNode(ctx, nb.pblk, nb.lblk, moved);
    f.count = count1;
    dxInsert(ctx, parent, parent.at + 1, hash2, nb.lblk);
    if (f.at >= count1) {
      nf.at = f.at - count1;
      parent.at++;
      frames[i] = nf;
    }
    dxSeal(ctx, dir, f);
    dxSeal(ctx, dir, nf);
    dxSeal(ctx, dir, parent);
  }
  leafFrame = frames[frames.length - 1]!;
  // Split the leaf by hash, size-wise in the middle (do_split).
  const map: MapEntry[] = [];
  for (const e of leaf.entries) {
    if (e.ino === 0) continue;
    const n = leaf.b.slice(e.off + DE_NAME, e.off + DE_NAME + e.nameLen);
    map.push({ hash: hashOf(ctx, n, info.hashVersion), ino: e.ino, type: leaf.b[e.off + DE_FILE_TYPE]!, name: n });
  }
  map.sort((a, b) => a.hash - b.hash);
  const count = map.length;
  let size = 0;
  let move = 0;
  let i = count - 1;
  for (; i >= 0; i--) {
    const s = recLenFor(map[i]!.name.length);
    if (size + s / 2 > bs / 2) break;
    size += s;
    move++;
  }
  const split = i > 0 ? count - move : count >> 1;
  if (split <= 0 || split >= count) throw new FsError(E.ENOSPC, `directory ${dir.ino}: cannot split a leaf`);
  const hash2 = map[split]!.hash;
  const continued = hash2 === map[split - 1]!.hash ? 1 : 0;
  const nb = ctx.appendDirBlock(dir);
  const newB = ctx.block(nb.pblk);
  const fill = (b: Uint8Array, list: MapEntry[]): void => {
    formatEmptyBlock(b, bs, csum);
    const limit = csum ? b.length - DIR_TAIL_SIZE : b.length;
    let off = 0;
    list.forEach((m, j) => {
      const rl = j === list.length - 1 ? limit - off : recLenFor(m.name.length);
      writeEntry(b, off, m.ino, rl, m.name, m.type, bs, ctx.filetype);
      off += rl;
    });
    if (csum) writeTail(b, bs);
  };
  fill(leaf.b, map.slice(0, split));
  fill(newB, map.slice(split));
  dxInsert(ctx, leafFrame, leafFrame.at + 1, hash2 + continued, nb.lblk);
  dxSeal(ctx, dir, leafFrame);
  const target = hash >= hash2 ? { pblk: nb.pblk, b: newB } : { pblk: leaf.pblk, b: leaf.b };
  const limit = csum ? bs - DIR_TAIL_SIZE : bs;
  const entries = parseBlock(target.b, limit, bs, ctx.geo.inodesCount, ctx.filetype, `directory ${dir.ino}`);
  const ok = insertIntoBlock(target.b, entries, ino, name, type, bs, ctx.filetype) >= 0;
  sealDirBlock(ctx, dir, leaf.pblk, leaf.b);
  sealDirBlock(ctx, dir, nb.pblk, newB);
  if (!ok) throw new FsError(E.ENOSPC, `directory ${dir.ino}: no room after a leaf split`);
}

/** Removes `name`; returns the removed entry's inode. */
export function dirRemove(ctx: DirCtx, dir: Inode, name: Uint8Array): FoundEntry {
  const found = dirLookup(ctx, dir, name);
  if (!found) throw new FsError(E.ENOENT);
  const { pblk, b, entries } = loadDirBlock(ctx, dir, found.lblk);
  const i = entries.findIndex((e) => e.off === found.off);
  if (i < 0) throw corrupted(`directory ${dir.ino}: entry vanished`);
  removeFromBlock(b, entries, i, ctx.geo.blockSize);
  sealDirBlock(ctx, dir, pblk, b);
  return found;
}

/** Points an existing entry at another inode (rename over, or '..' of a moved directory). */
export function dirRetarget(ctx: DirCtx, dir: Inode, name: Uint8Array, ino: number, type: number): void {
  const found = dirLookup(ctx, dir, name);
  if (!found) throw new FsError(E.ENOENT);
  const pblk = ctx.dirBlockNo(dir, found.lblk);
  const b = ctx.block(pblk);
  setIno(b, found.off, ino);
  if (ctx.filetype) b[found.off + DE_FILE_TYPE] = type;
  sealDirBlock(ctx, dir, pblk, b);
}

/** Formats block 0 of a new directory with '.' and '..'. */
export function dirInit(ctx: DirCtx, dir: Inode, parentIno: number): void {
  const bs = ctx.geo.blockSize;
  const { pblk } = ctx.appendDirBlock(dir);
  const b = ctx.block(pblk);
  const csum = ctx.geo.metadataCsum;
  formatEmptyBlock(b, bs, csum);
  const limit = csum ? bs - DIR_TAIL_SIZE : bs;
  writeEntry(b, 0, dir.ino, 12, DOT, FT_DIR, bs, ctx.filetype);
  writeEntry(b, 12, parentIno, limit - 12, DOTDOT, FT_DIR, bs, ctx.filetype);
  sealDirBlock(ctx, dir, pblk, b);
}
export const DOT = new Uint8Array([0x2e]);
export const DOTDOT = new Uint8Array([0x2e, 0x2e]);

export interface IterEntry {
  name: Uint8Array;
  ino: number;
  type: number;
  /** Position of this entry (byte offset in the directory). */
  pos: number;
  /** Position to resume after it. */
  next: number;
}

/**
 * Calls `fn` for each live entry at or after position `pos` (a byte offset into the directory, as
 * returned in `next`), in on-disk order, until fn returns false. Returns the position to resume at.
 */
export function dirIterate(ctx: DirCtx, dir: Inode, pos: number, fn: (e: IterEntry) => boolean): number {
  const bs = ctx.geo.blockSize;
  const n = blocksOf(ctx, dir);
  let lblk = Math.floor(pos / bs);
  let within = pos % bs;
  for (; lblk < n; lblk++, within = 0) {
    const { b, entries } = loadDirBlock(ctx, dir, lblk);
    for (const e of entries) {
      if (e.off < within) continue;
      const p = lblk * bs + e.off;
      const next = p + e.recLen;
      if (e.ino === 0) continue;
      const ok = fn({ name: b.slice(e.off + DE_NAME, e.off + DE_NAME + e.nameLen), ino: e.ino, type: e.type, pos: p, next });
      if (!ok) return p;
    }
  }
  return n * bs;
}

/** True when the directory has nothing but '.' and '..'. */
export function dirIsEmpty(ctx: DirCtx, dir: Inode): boolean {
  let empty = true;
  dirIterate(ctx, dir, 0, (e) => {
    const dots = (e.name.length === 1 && e.name[0] === 0x2e) || (e.name.length === 2 && e.name[0] === 0x2e && e.name[1] === 0x2e);
    if (!dots) empty = false;
    return empty;
  });
  return empty;
}

/** Frame helper re-export for tests. */
export type { DxFrame };
export { dxHash };
