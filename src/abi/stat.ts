/** struct stat as the x86-64 kernel writes it (newfstatat, fstat): 144 bytes. */
export const STAT_SIZE = 144;
export const STAT = {
  dev: 0, // u64
  ino: 8, // u64
  nlink: 16, // u64
  mode: 24, // u32
  uid: 28, // u32
  gid: 32, // u32
  rdev: 40, // u64
  size: 48, // i64
  blksize: 56, // i64
  blocks: 64, // i64 (512-byte units)
  atime: 72,
  atime_nsec: 80,
  mtime: 88,
  mtime_nsec: 96,
  ctime: 104,
  ctime_nsec: 112,
} as const;

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

export interface StatInfo {
  dev: number;
  ino: number;
  nlink: number;
  mode: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atime: [number, number];
  mtime: [number, number];
  ctime: [number, number];
}

export function encodeStat(s: StatInfo): Uint8Array {
  const b = new Uint8Array(STAT_SIZE);
  const dv = new DataView(b.buffer);
  const u64 = (o: number, v: number): void => dv.setBigUint64(o, BigInt(Math.max(0, Math.floor(v))), true);
  u64(STAT.dev, s.dev);
  u64(STAT.ino, s.ino);
  u64(STAT.nlink, s.nlink);
  dv.setUint32(STAT.mode, s.mode, true);
  dv.setUint32(STAT.uid, s.uid, true);
  dv.setUint32(STAT.gid, s.gid, true);
  u64(STAT.rdev, s.rdev);
  u64(STAT.size, s.size);
  u64(STAT.blksize, s.blksize);
  u64(STAT.blocks, s.blocks);
  u64(STAT.atime, s.atime[0]);
  u64(STAT.atime_nsec, s.atime[1]);
  u64(STAT.mtime, s.mtime[0]);
  u64(STAT.mtime_nsec, s.mtime[1]);
  u64(STAT.ctime, s.ctime[0]);
  u64(STAT.ctime_nsec, s.ctime[1]);
  return b;
}

/** struct statx (<linux/stat.h>): its size and the offsets mapvisor fills. */
export const STATX_SIZE = 256;
export const STATX = {
  mask: 0, blksize: 4, nlink: 16, uid: 20, gid: 24, mode: 28, ino: 32, size: 40, blocks: 48,
  atime: 64, btime: 80, ctime: 96, mtime: 112, rdevMajor: 128, rdevMinor: 132, devMajor: 136, devMinor: 140,
} as const;
const STATX_BASIC_STATS = 0x7ff;
const STATX_BTIME = 0x800;

/** A dev_t's major and minor numbers (glibc's gnu_dev_major/minor encoding). */
function devParts(d: number): [number, number] {
  return [Number((BigInt(d) >> 8n) & 0xfffn), (d & 0xff) | ((d >> 12) & 0xfff00)];
}

/** struct statx for `s`, with the birth time when the file system keeps one. */
export function encodeStatx(s: StatInfo, btime: [number, number] | null = null): Uint8Array {
  const b = new Uint8Array(STATX_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint32(STATX.mask, STATX_BASIC_STATS | (btime ? STATX_BTIME : 0), true);
  dv.setUint32(STATX.blksize, s.blksize, true);
  dv.setUint32(STATX.nlink, s.nlink, true);
  dv.setUint32(STATX.uid, s.uid, true);
  dv.setUint32(STATX.gid, s.gid, true);
  dv.setUint16(STATX.mode, s.mode, true);
  dv.setBigUint64(STATX.ino, BigInt(s.ino), true);
  dv.setBigUint64(STATX.size, BigInt(s.size), true);
  dv.setBigUint64(STATX.blocks, BigInt(s.blocks), true);
  const ts = (o: number, t: [number, number]): void => {
    dv.setBigInt64(o, BigInt(t[0]), true);
    dv.setUint32(o + 8, t[1], true);
  };
  ts(STATX.atime, s.atime);
  if (btime) ts(STATX.btime, btime);
  ts(STATX.ctime, s.ctime);
  ts(STATX.mtime, s.mtime);
  const [rmaj, rmin] = devParts(s.rdev);
  const [dmaj, dmin] = devParts(s.dev);
  dv.setUint32(STATX.rdevMajor, rmaj, true);
  dv.setUint32(STATX.rdevMinor, rmin, true);
  dv.setUint32(STATX.devMajor, dmaj, true);
  dv.setUint32(STATX.devMinor, dmin, true);
  return b;
}

export function decodeStat(b: Uint8Array): StatInfo {
  const dv = new DataView(b.buffer, b.byteOffset, STAT_SIZE);
  const n = (o: number): number => Number(dv.getBigInt64(o, true));
  return {
    dev: n(STAT.dev),
    ino: n(STAT.ino),
    nlink: n(STAT.nlink),
    mode: dv.getUint32(STAT.mode, true),
    uid: dv.getUint32(STAT.uid, true),
    gid: dv.getUint32(STAT.gid, true),
    rdev: n(STAT.rdev),
    size: n(STAT.size),
    blksize: n(STAT.blksize),
    blocks: n(STAT.blocks),
    atime: [n(STAT.atime), n(STAT.atime_nsec)],
    mtime: [n(STAT.mtime), n(STAT.mtime_nsec)],
    ctime: [n(STAT.ctime), n(STAT.ctime_nsec)],
  };
}
