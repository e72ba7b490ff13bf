/**
 * Directory blocks: `struct ext4_dir_entry_2` records chained by rec_len, and the
 * `struct ext4_dir_entry_tail` that carries a leaf block's checksum under metadata_csum.
 */
import { crc32cUpdate } from './crc32c.js';
import { corrupted, FsError, EFSBADCRC } from './errors.js';

export const DE_INODE = 0x00;
export const DE_REC_LEN = 0x04;
export const DE_NAME_LEN = 0x06;
export const DE_FILE_TYPE = 0x07;
export const DE_NAME = 0x08;
export const DIRENT_HEADER_SIZE = 8;
export const DIR_TAIL_SIZE = 12;
export const DIR_TAIL_FT = 0xde;
export const DIR_TAIL_CSUM = 8;
export const NAME_MAX = 255;

export const FT_UNKNOWN = 0;
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_SYMLINK = 7;

/** Space a record with an n-byte name needs. */
export function recLenFor(nameLen: number): number {
  return (nameLen + DIRENT_HEADER_SIZE + 3) & ~3;
}

export function getRecLen(b: Uint8Array, off: number, blockSize: number): number {
  const len = b[off + DE_REC_LEN]! | (b[off + DE_REC_LEN + 1]! << 8);
  if (blockSize >= 65536) {
    if (len === 65535 || len === 0) return blockSize;
    return (len & 65532) | ((len & 3) << 16);
  }
  return len;
}

export function setRecLen(b: Uint8Array, off: number, len: number, blockSize: number): void {
  let v = len;
  if (blockSize >= 65536) v = len === blockSize ? 65535 : (len & 65532) | ((len >> 16) & 3);
  b[off + DE_REC_LEN] = v & 0xff;
  b[off + DE_REC_LEN + 1] = (v >> 8) & 0xff;
}

export function getIno(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

export function setIno(b: Uint8Array, off: number, ino: number): void {
  b[off] = ino & 0xff;
  b[off + 1] = (ino >>> 8) & 0xff;
  b[off + 2] = (ino >>> 16) & 0xff;
  b[off + 3] = (ino >>> 24) & 0xff;
}

export interface RawEntry {
  off: number;
  ino: number;
  recLen: number;
  nameLen: number;
  type: number;
}

/** Does the block end with a checksum tail? */
export function hasTail(b: Uint8Array): boolean {
  const o = b.length - DIR_TAIL_SIZE;
  return getIno(b, o) === 0 && b[o + DE_REC_LEN] === DIR_TAIL_SIZE && b[o + DE_REC_LEN + 1] === 0 && b[o + DE_NAME_LEN] === 0 && b[o + DE_FILE_TYPE] === DIR_TAIL_FT;
}

export function leafChecksum(seed: number, b: Uint8Array): number {
  return crc32cUpdate(seed, b, 0, b.length - DIR_TAIL_SIZE);
}

export function writeTail(b: Uint8Array, blockSize: number): void {
  const o = b.length - DIR_TAIL_SIZE;
  b.fill(0, o, b.length);
  setRecLen(b, o, DIR_TAIL_SIZE, blockSize);
  b[o + DE_FILE_TYPE] = DIR_TAIL_FT;
}

export function sealLeaf(seed: number, b: Uint8Array): void {
  const c = leafChecksum(seed, b);
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(b.length - DIR_TAIL_SIZE + DIR_TAIL_CSUM, c, true);
}

export function verifyLeaf(seed: number, b: Uint8Array, what: string): void {
  const stored = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(b.length - DIR_TAIL_SIZE + DIR_TAIL_CSUM, true);
  if (stored !== leafChecksum(seed, b)) throw new FsError(EFSBADCRC, `${what}: directory block checksum mismatch`);
}

/**
 * Parses the records of a block up to `limit` (block size, or block size - 12 with a tail),
 * validating each like the kernel's ext4_check_dir_entry.
 */
export function parseBlock(b: Uint8Array, limit: number, blockSize: number, inodesCount: number, filetype: boolean, what: string): RawEntry[] {
  const out: RawEntry[] = [];
  let off = 0;
  while (off < limit) {
    if (off + DIRENT_HEADER_SIZE > limit) throw corrupted(`${what}: directory entry header past the end of the block at ${off}`);
    const recLen = getRecLen(b, off, blockSize);
    const nameLen = filetype ? b[off + DE_NAME_LEN]! : b[off + DE_NAME_LEN]! | (b[off + DE_FILE_TYPE]! << 8);
    const ino = getIno(b, off);
    if (recLen < recLenFor(1) || recLen % 4 !== 0) throw corrupted(`${what}: directory entry with rec_len ${recLen} at ${off}`);
    if (recLen < recLenFor(nameLen)) throw corrupted(`${what}: directory entry name longer than its record at ${off}`);
    if (off + recLen > limit) throw corrupted(`${what}: directory entry crosses the end of the block at ${off}`);
    if (ino > inodesCount) throw corrupted(`${what}: directory entry with inode ${ino} at ${off}`);
    out.push({ off, ino, recLen, nameLen, type: filetype ? b[off + DE_FILE_TYPE]! : 0 });
    off += recLen;
  }
  return out;
}

export function nameEquals(b: Uint8Array, off: number, nameLen: number, name: Uint8Array): boolean {
  if (nameLen !== name.length) return false;
  for (let i = 0; i < nameLen; i++) if (b[off + DE_NAME + i] !== name[i]) return false;
  return true;
}

export function writeEntry(b: Uint8Array, off: number, ino: number, recLen: number, name: Uint8Array, type: number, blockSize: number, filetype: boolean): void {
  setIno(b, off, ino);
  setRecLen(b, off, recLen, blockSize);
  b[off + DE_NAME_LEN] = name.length;
  b[off + DE_FILE_TYPE] = filetype ? type : 0;
  b.set(name, off + DE_NAME);
  // Zero the padding after the name (keeps images tidy and deterministic).
  b.fill(0, off + DE_NAME + name.length, off + recLenFor(name.length));
}

/**
 * Puts a record for `name` into the block if there is room (in an unused record or in the slack
 * of a used one). Returns the offset of the new record, or -1.
 */
export function insertIntoBlock(b: Uint8Array, entries: RawEntry[], ino: number, name: Uint8Array, type: number, blockSize: number, filetype: boolean): number {
  const need = recLenFor(name.length);
  for (const e of entries) {
    if (e.ino === 0 && e.recLen >= need) {
      writeEntry(b, e.off, ino, e.recLen, name, type, blockSize, filetype);
      return e.off;
    }
    const used = e.ino === 0 ? 0 : recLenFor(e.nameLen);
    if (e.ino !== 0 && e.recLen - used >= need) {
      setRecLen(b, e.off, used, blockSize);
      writeEntry(b, e.off + used, ino, e.recLen - used, name, type, blockSize, filetype);
      return e.off + used;
    }
  }
  return -1;
}

/** Removes the record at entries[i]: merged into the previous record, or marked unused if first. */
export function removeFromBlock(b: Uint8Array, entries: RawEntry[], i: number, blockSize: number): void {
  const e = entries[i]!;
  if (i > 0) {
    const p = entries[i - 1]!;
    setRecLen(b, p.off, p.recLen + e.recLen, blockSize);
    b.fill(0, e.off, e.off + Math.min(e.recLen, DIRENT_HEADER_SIZE + e.nameLen));
  } else {
    setIno(b, e.off, 0);
  }
}

/** Formats an empty leaf block (one unused record spanning it, plus the tail if wanted). */
export function formatEmptyBlock(b: Uint8Array, blockSize: number, tail: boolean): void {
  b.fill(0);
  const limit = tail ? b.length - DIR_TAIL_SIZE : b.length;
  setRecLen(b, 0, limit, blockSize);
  if (tail) writeTail(b, blockSize);
}
