/**
 * The ext4 superblock: byte layout, feature sets, validation at open, and the checksum.
 * Layout from the kernel's `struct ext4_super_block` (fs/ext4/ext4.h); all fields little-endian.
 */
import { MapvisorError } from '../../errors.js';
import type { BlockDev } from '../blockdev.js';
import { crc32cUpdate } from './crc32c.js';

export const SB_OFFSET = 1024;
export const SB_SIZE = 1024;

export const SB_INODES_COUNT = 0x00;
export const SB_BLOCKS_COUNT_LO = 0x04;
export const SB_R_BLOCKS_COUNT_LO = 0x08;
export const SB_FREE_BLOCKS_COUNT_LO = 0x0c;
export const SB_FREE_INODES_COUNT = 0x10;
export const SB_FIRST_DATA_BLOCK = 0x14;
export const SB_LOG_BLOCK_SIZE = 0x18;
export const SB_LOG_CLUSTER_SIZE = 0x1c;
export const SB_BLOCKS_PER_GROUP = 0x20;
export const SB_CLUSTERS_PER_GROUP = 0x24;
export const SB_INODES_PER_GROUP = 0x28;
export const SB_MTIME = 0x2c;
export const SB_WTIME = 0x30;
export const SB_MAGIC = 0x38;
export const SB_STATE = 0x3a;
export const SB_REV_LEVEL = 0x4c;
export const SB_FIRST_INO = 0x54;
export const SB_INODE_SIZE = 0x58;
export const SB_FEATURE_COMPAT = 0x5c;
export const SB_FEATURE_INCOMPAT = 0x60;
export const SB_FEATURE_RO_COMPAT = 0x64;
export const SB_UUID = 0x68;
export const SB_VOLUME_NAME = 0x78;
export const SB_RESERVED_GDT_BLOCKS = 0xce;
export const SB_JOURNAL_INUM = 0xe0;
export const SB_LAST_ORPHAN = 0xe8;
export const SB_HASH_SEED = 0xec;
export const SB_DEF_HASH_VERSION = 0xfc;
export const SB_DESC_SIZE = 0xfe;
export const SB_FIRST_META_BG = 0x104;
export const SB_BLOCKS_COUNT_HI = 0x150;
export const SB_R_BLOCKS_COUNT_HI = 0x154;
export const SB_FREE_BLOCKS_COUNT_HI = 0x158;
export const SB_MIN_EXTRA_ISIZE = 0x15c;
export const SB_WANT_EXTRA_ISIZE = 0x15e;
export const SB_FLAGS = 0x160;
export const SB_LOG_GROUPS_PER_FLEX = 0x174;
export const SB_CHECKSUM_TYPE = 0x175;
export const SB_KBYTES_WRITTEN = 0x178;
export const SB_OVERHEAD_CLUSTERS = 0x248;
export const SB_BACKUP_BGS = 0x24c;
export const SB_CHECKSUM_SEED = 0x270;
export const SB_CHECKSUM = 0x3fc;

export const EXT4_SUPER_MAGIC = 0xef53;

// s_state
export const STATE_VALID_FS = 0x0001;
export const STATE_ERROR_FS = 0x0002;
export const STATE_ORPHAN_FS = 0x0004;

// s_flags
export const FLAG_SIGNED_HASH = 0x0001;
export const FLAG_UNSIGNED_HASH = 0x0002;

// Compatible features (safe to ignore).
export const COMPAT_DIR_PREALLOC = 0x0001;
export const COMPAT_HAS_JOURNAL = 0x0004;
export const COMPAT_EXT_ATTR = 0x0008;
export const COMPAT_RESIZE_INODE = 0x0010;
export const COMPAT_DIR_INDEX = 0x0020;
export const COMPAT_SPARSE_SUPER2 = 0x0200;
export const COMPAT_ORPHAN_FILE = 0x1000;

// Incompatible features (must be understood to read at all).
export const INCOMPAT_COMPRESSION = 0x0001;
export const INCOMPAT_FILETYPE = 0x0002;
export const INCOMPAT_RECOVER = 0x0004;
export const INCOMPAT_JOURNAL_DEV = 0x0008;
export const INCOMPAT_META_BG = 0x0010;
export const INCOMPAT_EXTENTS = 0x0040;
export const INCOMPAT_64BIT = 0x0080;
export const INCOMPAT_MMP = 0x0100;
export const INCOMPAT_FLEX_BG = 0x0200;
export const INCOMPAT_EA_INODE = 0x0400;
export const INCOMPAT_DIRDATA = 0x1000;
export const INCOMPAT_CSUM_SEED = 0x2000;
export const INCOMPAT_LARGEDIR = 0x4000;
export const INCOMPAT_INLINE_DATA = 0x8000;
export const INCOMPAT_ENCRYPT = 0x10000;
export const INCOMPAT_CASEFOLD = 0x20000;

// Read-only compatible features (must be understood to write).
export const RO_COMPAT_SPARSE_SUPER = 0x0001;
export const RO_COMPAT_LARGE_FILE = 0x0002;
export const RO_COMPAT_BTREE_DIR = 0x0004;
export const RO_COMPAT_HUGE_FILE = 0x0008;
export const RO_COMPAT_GDT_CSUM = 0x0010;
export const RO_COMPAT_DIR_NLINK = 0x0020;
export const RO_COMPAT_EXTRA_ISIZE = 0x0040;
export const RO_COMPAT_QUOTA = 0x0100;
export const RO_COMPAT_BIGALLOC = 0x0200;
export const RO_COMPAT_METADATA_CSUM = 0x0400;
export const RO_COMPAT_READONLY = 0x1000;
export const RO_COMPAT_PROJECT = 0x2000;
export const RO_COMPAT_VERITY = 0x8000;
export const RO_COMPAT_ORPHAN_PRESENT = 0x10000;

/** Incompatible features this implementation reads and writes. */
export const INCOMPAT_SUPPORTED =
  INCOMPAT_FILETYPE | INCOMPAT_META_BG | INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG | INCOMPAT_CSUM_SEED | INCOMPAT_LARGEDIR | INCOMPAT_INLINE_DATA;
/** Read-only compatible features this implementation keeps right when writing. */
export const RO_COMPAT_WRITABLE =
  RO_COMPAT_SPARSE_SUPER |
  RO_COMPAT_LARGE_FILE |
  RO_COMPAT_HUGE_FILE |
  RO_COMPAT_GDT_CSUM |
  RO_COMPAT_DIR_NLINK |
  RO_COMPAT_EXTRA_ISIZE |
  RO_COMPAT_METADATA_CSUM;

const INCOMPAT_NAMES: Record<number, string> = {
  [INCOMPAT_COMPRESSION]: 'compression',
  [INCOMPAT_JOURNAL_DEV]: 'journal_dev',
  [INCOMPAT_MMP]: 'mmp',
  [INCOMPAT_EA_INODE]: 'ea_inode',
  [INCOMPAT_DIRDATA]: 'dirdata',
  [INCOMPAT_ENCRYPT]: 'encrypt',
  [INCOMPAT_CASEFOLD]: 'casefold',
};
const RO_COMPAT_NAMES: Record<number, string> = {
  [RO_COMPAT_BTREE_DIR]: 'btree_dir',
  [RO_COMPAT_QUOTA]: 'quota',
  [RO_COMPAT_BIGALLOC]: 'bigalloc',
  [RO_COMPAT_READONLY]: 'read-only',
  [RO_COMPAT_PROJECT]: 'project',
  [RO_COMPAT_VERITY]: 'verity',
};

function featureNames(bits: number, names: Record<number, string>): string {
  const out: string[] = [];
  for (let b = 0; b < 32; b++) {
    const bit = 2 ** b;
    if (Math.floor(bits / bit) % 2) out.push(names[bit] ?? `0x${bit.toString(16)}`);
  }
  return out.join(', ');
}

/** The geometry and features of a file system, read once at open. */
export interface Geometry {
  readonly blockSize: number;
  readonly log2BlockSize: number;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly inodesCount: number;
  readonly inodeSize: number;
  readonly firstIno: number;
  readonly groupCount: number;
  readonly descSize: number;
  readonly descPerBlock: number;
  readonly reservedGdtBlocks: number;
  readonly firstMetaBg: number;
  readonly compat: number;
  readonly incompat: number;
  readonly roCompat: number;
  readonly uuid: Uint8Array;
  readonly hashSeed: readonly [number, number, number, number];
  readonly defHashVersion: number;
  readonly unsignedHash: boolean;
  readonly csumSeed: number;
  readonly metadataCsum: boolean;
  readonly gdtCsum: boolean;
  readonly backupBgs: readonly [number, number];
  readonly journalInum: number;
  readonly minExtraIsize: number;
  readonly wantExtraIsize: number;
}

function imageError(message: string, fix: string): MapvisorError {
  return new MapvisorError('EIMAGE', message, fix);
}

/** Raw CRC-32C of the superblock's first 1020 bytes. */
export function superblockChecksum(sb: Uint8Array): number {
  return crc32cUpdate(0xffffffff, sb, 0, SB_CHECKSUM);
}

export interface OpenCheck {
  geometry: Geometry;
  /** Why the file system can only be read (null when it can be written). */
  readOnlyReason: string | null;
}

/**
 * Parses and validates the superblock. Throws MapvisorError for anything that is not a sane ext2/3/4
 * superblock this implementation understands, with a one-line message and a fix.
 */
export function readSuperblock(dev: BlockDev, name = 'the image'): OpenCheck {
  if (dev.size < SB_OFFSET + SB_SIZE) throw imageError(`${name} is too small to hold an ext4 file system`, 'create it with mkfs.ext4');
  const sb = dev.bytes(SB_OFFSET, SB_SIZE);
  const v = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
  const u32 = (o: number) => v.getUint32(o, true);
  const u16 = (o: number) => v.getUint16(o, true);
  if (u16(SB_MAGIC) !== EXT4_SUPER_MAGIC) {
    throw imageError(`${name} is not an ext2/ext3/ext4 file system (bad superblock magic 0x${u16(SB_MAGIC).toString(16)})`, 'create the image with mkfs.ext4, or run e2fsck -b 32768 IMAGE to restore the superblock from a backup');
  }
  const incompat = u32(SB_FEATURE_INCOMPAT);
  const roCompat = u32(SB_FEATURE_RO_COMPAT);
  const compat = u32(SB_FEATURE_COMPAT);
  const metadataCsum = (roCompat & RO_COMPAT_METADATA_CSUM) !== 0;
  if (metadataCsum) {
    if (sb[SB_CHECKSUM_TYPE] !== 1) throw imageError(`${name} has an unknown checksum type ${sb[SB_CHECKSUM_TYPE]}`, 'run e2fsck -f IMAGE');
    if (superblockChecksum(sb) !== u32(SB_CHECKSUM)) {
      throw imageError(`${name} has a corrupted superblock (checksum mismatch)`, 'run e2fsck -fy IMAGE (or e2fsck -b 32768 IMAGE)');
    }
  }
  const unknownIncompat = incompat & ~INCOMPAT_SUPPORTED & ~INCOMPAT_RECOVER;
  if (unknownIncompat) {
    throw imageError(`${name} uses ext4 features mapvisor does not support: ${featureNames(unknownIncompat, INCOMPAT_NAMES)}`, 'create the image without them (mkfs.ext4 -O ^FEATURE)');
  }
  if (incompat & INCOMPAT_RECOVER) {
    throw imageError(`the journal of ${name} needs recovery`, 'run e2fsck -fy IMAGE');
  }
  if (roCompat & RO_COMPAT_ORPHAN_PRESENT) {
    throw imageError(`${name} has orphan inodes to clean up`, 'run e2fsck -fy IMAGE');
  }
  const revLevel = u32(SB_REV_LEVEL);
  const logBlock = u32(SB_LOG_BLOCK_SIZE);
  if (logBlock > 6) throw imageError(`${name} has a corrupted superblock (block size 2^${10 + logBlock})`, 'run e2fsck -fy IMAGE');
  const blockSize = 1024 << logBlock;
  if (roCompat & RO_COMPAT_BIGALLOC || u32(SB_LOG_CLUSTER_SIZE) !== logBlock) {
    if (roCompat & RO_COMPAT_BIGALLOC) throw imageError(`${name} uses the bigalloc feature, which mapvisor does not support`, 'create the image without it (mkfs.ext4 -O ^bigalloc)');
  }
  const is64 = (incompat & INCOMPAT_64BIT) !== 0;
  const blocksCount = u32(SB_BLOCKS_COUNT_LO) + (is64 ? u32(SB_BLOCKS_COUNT_HI) * 2 ** 32 : 0);
  const firstDataBlock = u32(SB_FIRST_DATA_BLOCK);
  const blocksPerGroup = u32(SB_BLOCKS_PER_GROUP);
  const inodesPerGroup = u32(SB_INODES_PER_GROUP);
  const inodesCount = u32(SB_INODES_COUNT);
  const inodeSize = revLevel === 0 ? 128 : u16(SB_INODE_SIZE);
  const firstIno = revLevel === 0 ? 11 : u32(SB_FIRST_INO);
  const bad = (what: string) => imageError(`${name} has a corrupted superblock (${what})`, 'run e2fsck -fy IMAGE');
  if (firstDataBlock !== (blockSize === 1024 ? 1 : 0)) throw bad(`first data block ${firstDataBlock}`);
  if (blocksPerGroup === 0 || blocksPerGroup > blockSize * 8 || blocksPerGroup % 8) throw bad(`${blocksPerGroup} blocks per group`);
  if (inodesPerGroup === 0 || inodesPerGroup > blockSize * 8 || inodesPerGroup % 8) throw bad(`${inodesPerGroup} inodes per group`);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) throw bad(`inode size ${inodeSize}`);
  if (blocksCount <= firstDataBlock + 1) throw bad(`${blocksCount} blocks`);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (inodesCount !== groupCount * inodesPerGroup) throw bad(`${inodesCount} inodes for ${groupCount} groups of ${inodesPerGroup}`);
  if (firstIno < 11 || firstIno >= inodesCount) throw bad(`first inode ${firstIno}`);
  if (blocksCount * blockSize > dev.size) {
    throw imageError(`${name} is truncated: the file system has ${blocksCount * blockSize} bytes, the image ${dev.size}`, 'restore the whole image, or run resize2fs IMAGE');
  }
  let descSize = 32;
  if (is64) {
    descSize = u16(SB_DESC_SIZE);
    if (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) throw bad(`group descriptor size ${descSize}`);
  }
  const freeBlocks = u32(SB_FREE_BLOCKS_COUNT_LO) + (is64 ? u32(SB_FREE_BLOCKS_COUNT_HI) * 2 ** 32 : 0);
  if (freeBlocks > blocksCount || u32(SB_FREE_INODES_COUNT) > inodesCount) throw bad('free counts larger than totals');
  const uuid = sb.slice(SB_UUID, SB_UUID + 16);
  const csumSeed = incompat & INCOMPAT_CSUM_SEED ? u32(SB_CHECKSUM_SEED) : crc32cUpdate(0xffffffff, uuid);
  const flags = u32(SB_FLAGS);
  const extra = roCompat & RO_COMPAT_EXTRA_ISIZE;
  const geometry: Geometry = {
    blockSize,
    log2BlockSize: 10 + logBlock,
    blocksCount,
    firstDataBlock,
    blocksPerGroup,
    inodesPerGroup,
    inodesCount,
    inodeSize,
    firstIno,
    groupCount,
    descSize,
    descPerBlock: blockSize / descSize,
    reservedGdtBlocks: u16(SB_RESERVED_GDT_BLOCKS),
    firstMetaBg: incompat & INCOMPAT_META_BG ? u32(SB_FIRST_META_BG) : 0,
    compat,
    incompat,
    roCompat,
    uuid,
    hashSeed: [u32(SB_HASH_SEED), u32(SB_HASH_SEED + 4), u32(SB_HASH_SEED + 8), u32(SB_HASH_SEED + 12)],
    defHashVersion: sb[SB_DEF_HASH_VERSION]!,
    unsignedHash: (flags & FLAG_UNSIGNED_HASH) !== 0,
    csumSeed,
    metadataCsum,
    gdtCsum: !metadataCsum && (roCompat & RO_COMPAT_GDT_CSUM) !== 0,
    backupBgs: [u32(SB_BACKUP_BGS), u32(SB_BACKUP_BGS + 4)],
    journalInum: u32(SB_JOURNAL_INUM),
    minExtraIsize: extra ? u16(SB_MIN_EXTRA_ISIZE) : 0,
    wantExtraIsize: extra ? u16(SB_WANT_EXTRA_ISIZE) : 0,
  };
  if (geometry.firstMetaBg > Math.ceil(groupCount / geometry.descPerBlock)) throw bad(`first meta_bg ${geometry.firstMetaBg}`);

  let readOnlyReason: string | null = null;
  const unknownRo = roCompat & ~RO_COMPAT_WRITABLE;
  if (dev.readOnly) readOnlyReason = 'the image is opened read-only';
  else if (unknownRo) readOnlyReason = `the file system uses features mapvisor can only read: ${featureNames(unknownRo, RO_COMPAT_NAMES)}`;
  else if (u16(SB_STATE) & STATE_ERROR_FS) readOnlyReason = 'the file system is marked as having errors (run e2fsck -fy IMAGE)';
  else if (u32(SB_LAST_ORPHAN) !== 0) readOnlyReason = 'the file system has orphan inodes (run e2fsck -fy IMAGE)';
  return { geometry, readOnlyReason };
}

/** Recomputes the superblock checksum (metadata_csum) in place and marks the superblock dirty. */
export function sealSuperblock(dev: BlockDev, g: Geometry): void {
  const sb = dev.bytes(SB_OFFSET, SB_SIZE);
  if (g.metadataCsum) new DataView(sb.buffer, sb.byteOffset, sb.byteLength).setUint32(SB_CHECKSUM, superblockChecksum(sb), true);
  dev.dirty(SB_OFFSET, SB_SIZE);
}
