/**
 * The staging root that becomes the image: the skeleton a program expects (merged /usr, /tmp, /dev,
 * /proc, /etc/passwd), and merging trees into it (unpacked .debs, --add directories).
 *
 * Paths inside the root are resolved as the guest will see them: a symlink's absolute target is taken
 * relative to the root and ".." stops at the root, so nothing is ever written outside the staging
 * directory, and a .deb's lib/x86_64-linux-gnu lands in usr/lib/x86_64-linux-gnu through the lib -> usr/lib
 * link (dpkg -x itself would replace that link with a directory).
 */
import { constants } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { exec, firstError } from './exec.js';
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
 * the directories a program expects (/dev/shm for POSIX shared memory and semaphores, as a tmpfs is on
 * Debian), /etc/passwd and /etc/group with root and nobody, and the name
 * service files a Debian system has (the sandbox's loopback is `localhost`: 127.0.0.1 and ::1).
 */
export async function makeRootSkeleton(root: string): Promise<void> {
  for (const d of MERGED) {
    await mkdir(join(root, 'usr', d), { recursive: true, mode: 0o755 });
    await symlink(`usr/${d}`, join(root, d));
  }
  for (const [dir, mode] of [['etc', 0o755], ['dev', 0o755], ['proc', 0o555], ['sys', 0o555], ['root', 0o700], ['dev/shm', 0o1777], ['tmp', 0o1777], ['var/tmp', 0o1777], ['data', 0o755]] as const) {
    await mkdir(join(root, dir), { recursive: true });
    await chmod(join(root, dir), mode); // mkdir's mode is cut by the umask and never sets the sticky bit
  }
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n', { mode: 0o644 });
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n', { mode: 0o644 });
  await writeFile(join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n', { mode: 0o644 });
  // (glibc returns every address of a name in /etc/hosts only with "multi on", Debian's default)
  await writeFile(join(root, 'etc/host.conf'), 'multi on\n', { mode: 0o644 });
  await writeFile(join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n', { mode: 0o644 });
}

/**
 * How mergeTree places entries: `move` renames (same file system; the source is consumed), `copy`
 * copies with `cp -R --preserve=mode,timestamps,links` (keeps hard links, FIFOs and, as root, devices;
 * the copies belong to the user running mapvisor). cp is some ten times faster than copying file by
 * file from JavaScript when a tree has tens of thousands of files.
 */
export type MergeMode = 'move' | 'copy';

/** Removes whatever is at `path` (a later tree wins over an earlier one). */
async function clear(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** Arguments per cp call, well below ARG_MAX. */
const CP_BATCH = 1000;

/** Copies host paths `from` (not existing in `dir`, or cleared) into directory `dir`. */
async function copyInto(from: string[], dir: string): Promise<void> {
  for (let i = 0; i < from.length; i += CP_BATCH) {
    const r = await exec('cp', ['-R', '--no-dereference', '--preserve=mode,timestamps,links', '-t', dir, '--', ...from.slice(i, i + CP_BATCH)]);
    if (r.status !== 0) throw new MapvisorError('ECOPY', `cannot copy into the image: ${firstError(r.stderr)}`, 'check the files given with --add');
  }
}

/**
 * Merges the contents of host directory `src` into the directory `dst` (a host path inside `root`):
 * directories merge (also through symlinks to directories inside the root), anything else replaces
 * what is there. In copy mode the modes and times of files and directories are kept.
 */
export async function mergeTree(src: string, dst: string, root: string, mode: MergeMode): Promise<void> {
  const fresh: string[] = []; // copy mode: entries to copy whole into dst
  for (const name of await readdir(src)) {
    const from = join(src, name);
    let to = join(dst, name);
    const fromSt = await lstat(from);
    let toSt = await lstat(to).catch(() => null);
    if (fromSt.isDirectory() && toSt?.isSymbolicLink()) {
      const real = await resolveInRoot(root, imagePath(root, to));
      const realSt = await stat(real).catch(() => null);
      if (realSt?.isDirectory()) {
        to = real;
        toSt = realSt;
      }
    }
    if (toSt && !(fromSt.isDirectory() && toSt.isDirectory())) {
      await clear(to);
      toSt = null;
    }
    if (!toSt) {
      if (mode === 'move') await rename(from, to);
      else fresh.push(from);
      continue;
    }
    await mergeTree(from, to, root, mode);
    if (mode === 'copy') {
      await chmod(to, fromSt.mode & 0o7777);
      await utimes(to, fromSt.atime, fromSt.mtime);
    }
  }
  await copyInto(fresh, dst);
}

/**
 * Copies host path `host` into the image at `dir`: a directory's contents go into directory `dir`; a
 * file (a symlink's file) goes to `dir` itself, or into it when `dir` ends in "/" or is a directory.
 */
export async function addHostPath(root: string, host: string, dir: string): Promise<void> {
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
  await clear(file);
  await copyFile(host, file, constants.COPYFILE_FICLONE);
  await chmod(file, st.mode & 0o7777);
  await utimes(file, st.atime, st.mtime);
}
