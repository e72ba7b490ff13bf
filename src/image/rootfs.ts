/**
 * The staging root that becomes the image: the skeleton a program expects (merged /usr, /tmp, /dev,
 * /proc, /etc/passwd), and merging trees into it (unpacked .debs, --add directories).
 *
 * Paths inside the root are resolved as the guest will see them: a symlink's absolute target is taken
 * relative to the root and ".." stops at the root, so nothing is ever written outside the staging
 * directory, and a .deb's lib/x86_64-linux-gnu lands in usr/lib/x86_64-linux-gnu through the lib -> usr/lib
 * link (dpkg -x itself would replace that link with a directory).
 */
import { constants, type Stats } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix, relative } from 'node:path';
import { MapvisorError, UsageError } from '../errors.js';

/** Follows symlinks the way the guest would, with `root` as "/"; missing components are kept as named. */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  let rest = path.split('/').filter((p) => p && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (rest.length) {
    const part = rest.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, part);
    const st = await lstat(host).catch(() => null);
    if (st?.isSymbolicLink()) {
      if (++links > 40) throw new MapvisorError('ELOOP', `too many symlinks resolving ${path} in the image`, 'fix the symlink loop');
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      rest = [...target.split('/').filter((p) => p && p !== '.'), ...rest];
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

/** `path` (inside root) as an image path, "/usr/lib". */
function imagePath(root: string, host: string): string {
  return `/${relative(root, host)}`;
}

const MERGED = ['bin', 'sbin', 'lib', 'lib64'];

/**
 * Merged /usr as Debian 12 has it (bin -> usr/bin, lib -> usr/lib, lib64 -> usr/lib64, sbin -> usr/sbin),
 * the directories a program expects, and /etc/passwd and /etc/group with root and nobody.
 */
export async function makeRootSkeleton(root: string): Promise<void> {
  for (const d of MERGED) {
    await mkdir(join(root, 'usr', d), { recursive: true, mode: 0o755 });
    await symlink(`usr/${d}`, join(root, d));
  }
  for (const [dir, mode] of [['etc', 0o755], ['dev', 0o755], ['proc', 0o555], ['sys', 0o555], ['root', 0o700], ['tmp', 0o1777], ['var/tmp', 0o1777]] as const) {
    await mkdir(join(root, dir), { recursive: true });
    await chmod(join(root, dir), mode); // mkdir's mode is cut by the umask and never sets the sticky bit
  }
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n', { mode: 0o644 });
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n', { mode: 0o644 });
}

/** How mergeTree places entries: `move` renames (same file system, the source is consumed), `copy` copies. */
export type MergeMode = 'move' | 'copy';

export interface MergeStats {
  /** FIFOs, sockets and devices, which are not copied. */
  skipped: number;
}

/** Removes whatever is at `path` (a later tree wins over an earlier one). */
async function clear(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** Places one non-directory `src` at `dst`; `st` is its lstat (or its stat, to copy a symlink's file). */
async function placeLeaf(src: string, st: Stats, dst: string, mode: MergeMode, stats: MergeStats): Promise<void> {
  if (!st.isFile() && !st.isSymbolicLink()) {
    stats.skipped++;
    return;
  }
  await clear(dst);
  if (mode === 'move') return rename(src, dst);
  if (st.isSymbolicLink()) return symlink(await readlink(src), dst);
  await copyFile(src, dst, constants.COPYFILE_FICLONE);
  await chmod(dst, st.mode & 0o7777);
  await utimes(dst, st.atime, st.mtime);
}

/**
 * Merges the contents of host directory `src` into the directory `dst` (a host path inside `root`):
 * directories merge (also through symlinks to directories inside the root), anything else replaces
 * what is there. In copy mode file and directory modes and times are kept.
 */
export async function mergeTree(src: string, dst: string, root: string, mode: MergeMode, stats: MergeStats = { skipped: 0 }): Promise<MergeStats> {
  for (const name of await readdir(src)) {
    const from = join(src, name);
    let to = join(dst, name);
    const fromSt = await lstat(from);
    if (!fromSt.isDirectory()) {
      await placeLeaf(from, fromSt, to, mode, stats);
      continue;
    }
    let toSt = await lstat(to).catch(() => null);
    if (toSt?.isSymbolicLink()) {
      const real = await resolveInRoot(root, imagePath(root, to));
      const realSt = await stat(real).catch(() => null);
      if (realSt?.isDirectory()) {
        to = real;
        toSt = realSt;
      }
    }
    if (toSt && !toSt.isDirectory()) {
      await clear(to);
      toSt = null;
    }
    if (!toSt && mode === 'move') {
      await rename(from, to);
      continue;
    }
    if (!toSt) await mkdir(to, { mode: 0o700 });
    await mergeTree(from, to, root, mode, stats);
    if (mode === 'copy') {
      await chmod(to, fromSt.mode & 0o7777);
      await utimes(to, fromSt.atime, fromSt.mtime);
    }
  }
  return stats;
}

/**
 * Copies host path `host` into the image at `dir`: a directory's contents go into directory `dir`; a
 * file goes to `dir` itself, or into it when `dir` ends in "/" or is a directory already.
 */
export async function addHostPath(root: string, host: string, dir: string): Promise<MergeStats> {
  const st = await stat(host);
  const target = await resolveInRoot(root, posix.normalize(`/${dir}`));
  if (st.isDirectory()) {
    await mkdir(target, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`--add ${host}:${dir}: ${dir} is not a directory in the image (${e.code})`, 'give a directory path inside the image');
    });
    return mergeTree(host, target, root, 'copy');
  }
  const targetSt = await stat(target).catch(() => null);
  const file = dir.endsWith('/') || targetSt?.isDirectory() ? join(target, basename(host)) : target;
  await mkdir(dirname(file), { recursive: true });
  const stats = { skipped: 0 };
  await placeLeaf(host, st, file, 'copy', stats);
  return stats;
}
