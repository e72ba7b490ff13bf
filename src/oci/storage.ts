/**
 * Storage as memory for containers: the bundle's root directory becomes an ext4 image, built once per
 * distinct tree (ROOT/images/HASH.img, HASH over every entry's path, type, mode, owner, size, mtime and
 * link target: a change to any file changes its size or mtime) and mapped by every container of that
 * tree, read-only: its pages are one copy in the host page cache. A writable container keeps its
 * changes in a copy-on-write layer of its own, ROOT/ID/layer (src/storage/layer.ts: a sparse file
 * holding only the pages it changed, made empty when the VMM opens it). The engine's files
 * (/etc/hosts and the like) are bind mounts, served by the kernel from the host.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as libc from '../host/libc.js';
import { OciError, logInfo } from './log.js';

interface Tree {
  hash: string;
  bytes: number;
  entries: number;
}

/** Hash the tree at `dir` (metadata of every entry, sorted), and size it. */
export function hashTree(dir: string, skip: Set<string> = new Set()): Tree {
  const h = createHash('sha256');
  let bytes = 0;
  let entries = 0;
  const walk = (rel: string): void => {
    const abs = rel ? join(dir, rel) : dir;
    const st = lstatSync(abs, { bigint: true });
    entries++;
    bytes += Math.ceil(Number(st.size) / 4096) * 4096 + 256;
    // A directory's mtime is left out (its entries are in the hash), and so are the files the engine
    // binds over (/etc/hosts and the like, and volumes' mount points: it creates them in each
    // container's tree; the kernel serves a mount before the image, so they need not be in it).
    if (skip.has(`/${rel}`)) return;
    const mtime = st.isFile() ? st.mtimeNs : 0n;
    h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0${st.isDirectory() ? 0n : st.size}\0${mtime}\0${st.rdev}\0`);
    if (st.isSymbolicLink()) h.update(`${readlinkSync(abs)}\0`);
    else if (st.isDirectory()) for (const name of readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name);
  };
  walk('');
  return { hash: h.digest('hex').slice(0, 32), bytes, entries };
}

function withLock<T>(path: string, f: () => T): T {
  const fd = openSync(path, 'a');
  try {
    if (libc.flock(fd, libc.LOCK_EX) !== 0) throw new OciError(`cannot lock ${path}`, 'check the permissions of the --root directory');
    return f();
  } finally {
    closeSync(fd);
  }
}

/** The shared image of the tree at `rootDir`, built on first use; resolves its path. */
export function sharedImage(root: string, rootDir: string, skip: Set<string> = new Set()): { path: string; hash: string; built: boolean; ms: number } {
  const t0 = performance.now();
  const tree = hashTree(rootDir, skip);
  const dir = join(root, 'images');
  mkdirSync(dir, { recursive: true });
  const img = join(dir, `${tree.hash}.img`);
  const hashMs = performance.now() - t0;
  return withLock(`${img}.lock`, () => {
    if (existsSync(img)) {
      logInfo(`root file system ${rootDir}: image ${img} (cached; tree hashed in ${hashMs.toFixed(0)} ms)`);
      return { path: img, hash: tree.hash, built: false, ms: performance.now() - t0 };
    }
    // Room for the files plus a third and 64 MiB to write into, in 2 MiB steps.
    const size = Math.ceil((tree.bytes * 1.34 + 64 * 2 ** 20) / 2 ** 21) * 2 ** 21;
    const inodes = Math.max(4096, Math.ceil(tree.entries * 1.5) + 2048);
    const tmp = `${img}.tmp-${process.pid}`;
    writeFileSync(tmp, '');
    execFileSync('truncate', ['-s', String(size), tmp]);
    try {
      execFileSync('mkfs.ext4', ['-q', '-F', '-d', rootDir, '-b', '4096', '-O', '^has_journal', '-L', 'mapvisor', '-N', String(inodes), tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      rmSync(tmp, { force: true });
      const msg = String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim().split('\n')[0];
      throw new OciError(`mkfs.ext4 could not build an image of ${rootDir}: ${msg}`, 'check free space under the --root directory (apt-get install e2fsprogs if mkfs.ext4 is missing)');
    }
    renameSync(tmp, img);
    const ms = performance.now() - t0;
    logInfo(`root file system ${rootDir}: built image ${img} (${tree.entries} entries, ${(size / 2 ** 20).toFixed(0)} MiB) in ${ms.toFixed(0)} ms`);
    return { path: img, hash: tree.hash, built: true, ms };
  });
}
