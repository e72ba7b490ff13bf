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
