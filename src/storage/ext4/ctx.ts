/** What the block-mapping code (extents, block maps, directories) needs from the file system. */
import type { Geometry } from './superblock.js';
import type { Inode } from './inode.js';

export interface FsCtx {
  readonly geo: Geometry;
  /** A live view of block `pblk` (validated to lie inside the file system). */
  block(pblk: number): Uint8Array;
  /** Block `pblk` was modified through block(). */
  markDirty(pblk: number): void;
  /** Throws EFSCORRUPTED unless [pblk, pblk+count) lies inside the file system's data area. */
  checkRange(pblk: number, count: number, what: string): void;
  /** Allocates one metadata block for `inode` near `goal`, counted in its i_blocks. */
  allocMeta(inode: Inode, goal: number): number;
  /** Allocates up to `count` contiguous data blocks near `goal` for `inode` (counted in i_blocks); returns [first, n]. */
  allocData(inode: Inode, goal: number, count: number): [number, number];
  /** Frees blocks owned by `inode` (i_blocks is decremented). */
  freeBlocks(inode: Inode, pblk: number, count: number): void;
  /** The inode's checksum seed (metadata_csum). */
  inodeSeed(inode: Inode): number;
  /** Recomputes the inode's checksum after changes made through its live view and marks it dirty. */
  sealInode(inode: Inode): void;
  /** A default allocation goal for the inode (start of its group). */
  goalFor(inode: Inode): number;
  /**
   * Metadata blocks whose checksum has been verified in this session. This VMM is the image's only
   * writer and re-seals every block it changes, so a block is verified once, not on every read.
   */
  readonly verifiedBlocks: Set<number>;
}
