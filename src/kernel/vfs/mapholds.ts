/**
 * A file mapping keeps its file alive. On Linux a mapping holds a reference on the file, so a file
 * unlinked (and closed) while mapped keeps its blocks until the last mapping goes: glibc's sem_open
 * maps a file of /dev/shm and Python unlinks it at once, and a library may be replaced while it runs.
 * Here mmap of an image file takes a reference on the inode (fs.iref) for the process, once per inode;
 * the reference goes when no mapping of the process reaches the file any more: checked at munmap (for
 * files already unlinked only, so that the check costs nothing otherwise), and dropped at exec and at
 * the process's end. A fork's child takes references of its own. Without this an unlinked mapped
 * file's blocks were freed at once and given to the next file while still mapped: two POSIX
 * semaphores then shared one word.
 */
import type { Kernel } from '../kernel.js';

const holds = new WeakMap<Kernel, Set<number>>();

/** mmap of image file `ino` by process `k`. */
export function holdMappedFile(k: Kernel, ino: number): void {
  const fs = k.root?.fs;
  if (!fs) return;
  let s = holds.get(k);
  if (!s) holds.set(k, (s = new Set()));
  if (s.has(ino)) return;
  fs.iref(ino);
  s.add(ino);
}

/** fork: the child maps what the parent maps. */
export function forkMappedFiles(parent: Kernel, child: Kernel): void {
  const s = holds.get(parent);
  const fs = parent.root?.fs;
  if (!s || !fs) return;
  const c = new Set<number>();
  for (const ino of s) {
    fs.iref(ino);
    c.add(ino);
  }
  holds.set(child, c);
}

/** After munmap: let go of unlinked files no mapping of `k` reaches now. */
export function sweepMappedFiles(k: Kernel): void {
  const s = holds.get(k);
  const root = k.root;
  if (!s || !root) return;
  const fs = root.fs;
  let fileRegions: Array<{ start: number; end: number }> | null = null;
  for (const ino of [...s]) {
    if (!fs.isOrphan(ino)) continue;
    if (k.sharedFileMaps.mapsInode(ino)) continue;
    fileRegions ??= k.space.regions
      .regions()
      .filter((r) => r.backing.kind === 'file' && root.ownsBacking(r.backing.id))
      .map((r) => ({ start: r.backing.offset, end: r.backing.offset + (r.end - r.start) }));
    const size = fs.stat(ino).size;
    const runs = fs.fileRuns(ino, 0, Math.max(size, 1)).filter((p) => p.physical !== null);
    const mapped = fileRegions.some((r) => runs.some((p) => r.start < p.physical! + p.length && p.physical! < r.end));
    if (!mapped) {
      s.delete(ino);
      fs.irelease(ino);
    }
  }
}

/** exec, or the process's end: every mapping is gone. */
export function releaseMappedFiles(k: Kernel): void {
  const s = holds.get(k);
  const fs = k.root?.fs;
  holds.delete(k);
  if (!s || !fs) return;
  for (const ino of s) fs.irelease(ino);
}
