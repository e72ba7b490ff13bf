/**
 * The on-disk inode (`struct ext4_inode`): byte layout, typed accessors over a live view, timestamps
 * with nanoseconds and epoch bits, and the metadata_csum inode checksum.
 */
import { crc32cU32, crc32cUpdate } from './crc32c.js';

export const I_MODE = 0x00;
export const I_UID = 0x02;
export const I_SIZE_LO = 0x04;
export const I_ATIME = 0x08;
export const I_CTIME = 0x0c;
export const I_MTIME = 0x10;
export const I_DTIME = 0x14;
export const I_GID = 0x18;
export const I_LINKS_COUNT = 0x1a;
export const I_BLOCKS_LO = 0x1c;
export const I_FLAGS = 0x20;
export const I_VERSION = 0x24;
export const I_BLOCK = 0x28;
export const I_BLOCK_SIZE = 60;
export const I_GENERATION = 0x64;
export const I_FILE_ACL_LO = 0x68;
export const I_SIZE_HIGH = 0x6c;
export const I_BLOCKS_HIGH = 0x74;
export const I_FILE_ACL_HIGH = 0x76;
export const I_UID_HIGH = 0x78;
export const I_GID_HIGH = 0x7a;
export const I_CHECKSUM_LO = 0x7c;
export const GOOD_OLD_INODE_SIZE = 128;
export const I_EXTRA_ISIZE = 0x80;
export const I_CHECKSUM_HI = 0x82;
export const I_CTIME_EXTRA = 0x84;
export const I_MTIME_EXTRA = 0x88;
export const I_ATIME_EXTRA = 0x8c;
export const I_CRTIME = 0x90;
export const I_CRTIME_EXTRA = 0x94;
export const I_VERSION_HI = 0x98;
export const I_PROJID = 0x9c;
/** The extra fields this implementation writes into new inodes (up to and including i_projid). */
export const EXTRA_ISIZE_DEFAULT = 32;

// i_mode file types: the same numbers as Linux's st_mode.
import { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO } from '../../abi/stat.js';
export { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO };

// i_flags
export const FL_INDEX = 0x1000;
export const FL_ENCRYPT = 0x800;
export const FL_HUGE_FILE = 0x40000;
export const FL_EXTENTS = 0x80000;
export const FL_VERITY = 0x100000;
export const FL_EA_INODE = 0x200000;
export const FL_INLINE_DATA = 0x10000000;
export const FL_CASEFOLD = 0x40000000;

export const ROOT_INO = 2;

export interface Timespec {
  sec: number;
  nsec: number;
}

/** Directory entry file type (ext4_dir_entry_2.file_type) for an i_mode. */
export function fileTypeOfMode(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 1;
    case S_IFDIR:
      return 2;
    case S_IFCHR:
      return 3;
    case S_IFBLK:
      return 4;
    case S_IFIFO:
      return 5;
    case S_IFSOCK:
      return 6;
    case S_IFLNK:
      return 7;
    default:
      return 0;
  }
}

function signed32(x: number): number {
  return x | 0;
}

/** Live typed access to one on-disk inode. Writes go straight to the image; call Ext4's inode sealing after. */
export class Inode {
  readonly v: DataView;
  constructor(
    readonly ino: number,
    readonly raw: Uint8Array,
  ) {
    this.v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  }
  private u16(o: number): number {
    return this.v.getUint16(o, true);
  }
  private u32(o: number): number {
    return this.v.getUint32(o, true);
  }
  get extraIsize(): number {
    return this.raw.length > GOOD_OLD_INODE_SIZE ? this.u16(I_EXTRA_ISIZE) : 0;
  }
  set extraIsize(n: number) {
    if (this.raw.length > GOOD_OLD_INODE_SIZE) this.v.setUint16(I_EXTRA_ISIZE, n, true);
  }
  /** Is the extra field at `off` (of 4 bytes) present in this inode? */
  hasExtra(off: number, len = 4): boolean {
    return this.raw.length > GOOD_OLD_INODE_SIZE && GOOD_OLD_INODE_SIZE + this.extraIsize >= off + len;
  }
  get mode(): number {
    return this.u16(I_MODE);
  }
  set mode(m: number) {
    this.v.setUint16(I_MODE, m, true);
  }
  get type(): number {
    return this.mode & S_IFMT;
  }
  get isDir(): boolean {
    return this.type === S_IFDIR;
  }
  get isReg(): boolean {
    return this.type === S_IFREG;
  }
  get isSymlink(): boolean {
    return this.type === S_IFLNK;
  }
  get uid(): number {
    return this.u16(I_UID) | (this.u16(I_UID_HIGH) << 16);
  }
  set uid(u: number) {
    this.v.setUint16(I_UID, u & 0xffff, true);
    this.v.setUint16(I_UID_HIGH, (u >>> 16) & 0xffff, true);
  }
  get gid(): number {
    return this.u16(I_GID) | (this.u16(I_GID_HIGH) << 16);
  }
  set gid(g: number) {
    this.v.setUint16(I_GID, g & 0xffff, true);
    this.v.setUint16(I_GID_HIGH, (g >>> 16) & 0xffff, true);
  }
  get size(): number {
    return this.u32(I_SIZE_LO) + this.u32(I_SIZE_HIGH) * 2 ** 32;
  }
  set size(s: number) {
    this.v.setUint32(I_SIZE_LO, s % 2 ** 32, true);
    this.v.setUint32(I_SIZE_HIGH, Math.floor(s / 2 ** 32), true);
  }
  get linksCount(): number {
    return this.u16(I_LINKS_COUNT);
  }
  set linksCount(n: number) {
    this.v.setUint16(I_LINKS_COUNT, n, true);
  }
  get flags(): number {
    return this.u32(I_FLAGS);
  }
  set flags(f: number) {
    this.v.setUint32(I_FLAGS, f >>> 0, true);
  }
  get generation(): number {
    return this.u32(I_GENERATION);
  }
  set generation(g: number) {
    this.v.setUint32(I_GENERATION, g >>> 0, true);
  }
  get dtime(): number {
    return this.u32(I_DTIME);
  }
  set dtime(t: number) {
    this.v.setUint32(I_DTIME, t >>> 0, true);
  }
  get fileAcl(): number {
    return this.u32(I_FILE_ACL_LO) + this.u16(I_FILE_ACL_HIGH) * 2 ** 32;
  }
  /** i_blocks in 512-byte units (fs-block units converted when huge_file stores them so). */
  blocks512(log2BlockSize: number): number {
    const n = this.u32(I_BLOCKS_LO) + this.u16(I_BLOCKS_HIGH) * 2 ** 32;
    return this.flags & FL_HUGE_FILE ? n * 2 ** (log2BlockSize - 9) : n;
  }
  /** Sets i_blocks from a count of 512-byte units. */
  setBlocks512(n: number): void {
    if (this.flags & FL_HUGE_FILE) this.flags = this.flags & ~FL_HUGE_FILE;
    this.v.setUint32(I_BLOCKS_LO, n % 2 ** 32, true);
    this.v.setUint16(I_BLOCKS_HIGH, Math.floor(n / 2 ** 32), true);
  }
  /** The 60-byte i_block area (extent root, block map, or fast symlink target). */
  get iblock(): Uint8Array {
    return this.raw.subarray(I_BLOCK, I_BLOCK + I_BLOCK_SIZE);
  }
  private getTime(base: number, extra: number): Timespec {
    const lo = signed32(this.u32(base));
    if (!this.hasExtra(extra)) return { sec: lo, nsec: 0 };
    const x = this.u32(extra);
    return { sec: lo + (x & 3) * 2 ** 32, nsec: x >>> 2 };
  }
  private setTime(base: number, extra: number, t: Timespec): void {
    const lo = signed32(t.sec % 2 ** 32);
    this.v.setUint32(base, lo >>> 0, true);
    if (this.hasExtra(extra)) {
      const epoch = ((t.sec - lo) / 2 ** 32) & 3;
      this.v.setUint32(extra, ((t.nsec << 2) | epoch) >>> 0, true);
    }
  }
  get atime(): Timespec {
    return this.getTime(I_ATIME, I_ATIME_EXTRA);
  }
  set atime(t: Timespec) {
    this.setTime(I_ATIME, I_ATIME_EXTRA, t);
  }
  get mtime(): Timespec {
    return this.getTime(I_MTIME, I_MTIME_EXTRA);
  }
  set mtime(t: Timespec) {
    this.setTime(I_MTIME, I_MTIME_EXTRA, t);
  }
  get ctime(): Timespec {
    return this.getTime(I_CTIME, I_CTIME_EXTRA);
  }
  set ctime(t: Timespec) {
    this.setTime(I_CTIME, I_CTIME_EXTRA, t);
  }
  get crtime(): Timespec | null {
    if (!this.hasExtra(I_CRTIME)) return null;
    return this.getTime(I_CRTIME, I_CRTIME_EXTRA);
  }
  set crtime(t: Timespec | null) {
    if (t && this.hasExtra(I_CRTIME)) this.setTime(I_CRTIME, I_CRTIME_EXTRA, t);
  }
  /** Device number for character/block device inodes (new or old encoding in i_block). */
  get rdev(): number {
    const b0 = this.u32(I_BLOCK);
    if (b0) return encodeDev((b0 >>> 8) & 0xff, b0 & 0xff);
    const b1 = this.u32(I_BLOCK + 4);
    const major = (b1 & 0xfff00) >>> 8;
    const minor = (b1 & 0xff) | ((b1 >>> 12) & 0xfff00);
    return encodeDev(major, minor);
  }
  set rdev(dev: number) {
    const { major, minor } = decodeDev(dev);
    if (major < 256 && minor < 256) {
      this.v.setUint32(I_BLOCK, (major << 8) | minor, true);
      this.v.setUint32(I_BLOCK + 4, 0, true);
    } else {
      this.v.setUint32(I_BLOCK, 0, true);
      this.v.setUint32(I_BLOCK + 4, ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0, true);
    }
    this.v.setUint32(I_BLOCK + 8, 0, true);
  }
}

/** Linux dev_t (glibc encoding, as stat(2) returns it). */
export function encodeDev(major: number, minor: number): number {
  const lo = (((major & 0xfff) << 8) | (minor & 0xff)) + (minor - (minor & 0xff)) * 4096;
  return lo + Math.floor(major / 4096) * 4096 * 2 ** 32;
}
export function decodeDev(dev: number): { major: number; minor: number } {
  const lo = dev % 2 ** 32;
  const hi = Math.floor(dev / 2 ** 32);
  return { major: ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0), minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00) };
}

const ZERO2 = new Uint8Array(2);

/** The per-inode checksum seed: crc32c(crc32c(fs seed, ino), generation). */
export function inodeCsumSeed(fsSeed: number, ino: number, generation: number): number {
  return crc32cU32(crc32cU32(fsSeed, ino), generation);
}

/** The inode checksum (32 bits; the low 16 go to i_checksum_lo, the high 16 to i_checksum_hi if it fits). */
export function inodeChecksum(fsSeed: number, ino: number, raw: Uint8Array): number {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let c = inodeCsumSeed(fsSeed, ino, v.getUint32(I_GENERATION, true));
  c = crc32cUpdate(c, raw, 0, I_CHECKSUM_LO);
  c = crc32cUpdate(c, ZERO2);
  c = crc32cUpdate(c, raw, I_CHECKSUM_LO + 2, GOOD_OLD_INODE_SIZE);
  if (raw.length > GOOD_OLD_INODE_SIZE) {
    c = crc32cUpdate(c, raw, GOOD_OLD_INODE_SIZE, I_CHECKSUM_HI);
    const extra = v.getUint16(I_EXTRA_ISIZE, true);
    let off = I_CHECKSUM_HI;
    if (GOOD_OLD_INODE_SIZE + extra >= I_CHECKSUM_HI + 2) {
      c = crc32cUpdate(c, ZERO2);
      off += 2;
    }
    c = crc32cUpdate(c, raw, off, raw.length);
  }
  return c >>> 0;
}

function hasCsumHi(raw: Uint8Array): boolean {
  if (raw.length <= GOOD_OLD_INODE_SIZE) return false;
  const extra = raw[I_EXTRA_ISIZE]! | (raw[I_EXTRA_ISIZE + 1]! << 8);
  return GOOD_OLD_INODE_SIZE + extra >= I_CHECKSUM_HI + 2;
}

export function setInodeChecksum(fsSeed: number, ino: number, raw: Uint8Array): void {
  const c = inodeChecksum(fsSeed, ino, raw);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  v.setUint16(I_CHECKSUM_LO, c & 0xffff, true);
  if (hasCsumHi(raw)) v.setUint16(I_CHECKSUM_HI, c >>> 16, true);
}

export function verifyInodeChecksum(fsSeed: number, ino: number, raw: Uint8Array): boolean {
  const c = inodeChecksum(fsSeed, ino, raw);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (v.getUint16(I_CHECKSUM_LO, true) !== (c & 0xffff)) return false;
  if (hasCsumHi(raw) && v.getUint16(I_CHECKSUM_HI, true) !== c >>> 16) return false;
  return true;
}
