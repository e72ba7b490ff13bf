/**
 * How big the image must be. The staging tree is measured as ext4 will store it (4 KiB blocks; fast
 * symlinks and empty files take none; hard links count once), and the image size follows from that:
 * the default is content × 1.5 + 64 MiB, the minimum is content plus the inode tables and metadata,
 * both rounded up to 2 MiB (image sizes are always multiples of 2 MiB).
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export const BLOCK = 4096;
export const MiB = 2 ** 20;
/** Image sizes are multiples of this. */
export const SIZE_ALIGN = 2 * MiB;
/** ext4 inode size (mkfs.ext4's default). */
const INODE_SIZE = 256;
/** One inode per 16 KiB of image, mkfs.ext4's ratio for ordinary file systems, as the floor. */
const BYTES_PER_INODE = 16384;

export interface Content {
  /** Bytes of 4 KiB blocks the files, long symlinks and directories take. */
  bytes: number;
  /** Inodes needed: files, directories, symlinks (the root included). */
  entries: number;
}

export function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

/** Size of a directory's blocks: 8-byte headers plus names padded to 4 bytes, "." and "..". */
function dirBytes(names: string[]): number {
  let bytes = 24;
  for (const n of names) bytes += 8 + roundUp(Buffer.byteLength(n), 4);
  return roundUp(bytes, BLOCK) + (bytes > BLOCK ? BLOCK : 0); // an indexed directory adds a root block
}

export async function measureTree(root: string): Promise<Content> {
  const seen = new Set<string>();
  const content: Content = { bytes: 0, entries: 1 };
  const walk = async (dir: string): Promise<void> => {
    const names = await readdir(dir);
    content.bytes += dirBytes(names);
    const stats = await Promise.all(names.map((n) => lstat(join(dir, n)))); // a directory's lstats at once
    const subdirs: Promise<void>[] = [];
    names.forEach((name, i) => {
      const st = stats[i]!;
      if (st.nlink > 1 && !st.isDirectory()) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) return;
        seen.add(key);
      }
      content.entries++;
      if (st.isDirectory()) subdirs.push(walk(join(dir, name)));
      else if (st.isSymbolicLink()) content.bytes += st.size >= 60 ? BLOCK : 0;
      else if (st.isFile()) content.bytes += roundUp(st.size, BLOCK);
    });
    await Promise.all(subdirs);
  };
  await walk(root);
  return content;
}

/** The inode count for an image of `size` holding `entries`: mkfs's ratio, or more when the content needs it. */
export function inodeCount(size: number, entries: number): number {
  return Math.max(Math.floor(size / BYTES_PER_INODE), entries + 1024);
}

/**
 * The smallest image the content fits in: data, inode tables, and 3 % + 4 MiB for the superblock copies,
 * group descriptors (and those reserved for growth), bitmaps and extent blocks.
 */
export function minimumSize(c: Content): number {
  let size = roundUp(c.bytes + 4 * MiB, SIZE_ALIGN);
  for (;;) {
    const need = roundUp(Math.ceil((c.bytes + inodeCount(size, c.entries) * INODE_SIZE + 4 * MiB) * 1.03), SIZE_ALIGN);
    if (need <= size) return size;
    size = need;
  }
}

/** The default size: content × 1.5 + 64 MiB, rounded up to 2 MiB (never below the minimum). */
export function defaultSize(c: Content): number {
  return Math.max(roundUp(c.bytes * 1.5 + 64 * MiB, SIZE_ALIGN), minimumSize(c));
}
