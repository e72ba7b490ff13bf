/**
 * The kernel's pseudo file systems (/proc and /sys) as trees of nodes made on demand: a file's content
 * is made when it is opened, a directory's entries when it is listed, a link's target when it is read.
 * `walk` resolves a path through them as the VFS does, following links in the middle of a path (and
 * at its end when asked), so that /proc/self/cwd/etc/passwd reaches the disk image and
 * /proc/self/task/TID/status reaches the thread's file.
 */
import { S_IFDIR, S_IFREG, type StatInfo } from '../../abi/stat.js';
import { E } from '../../abi/errno.js';
import type { OpenFile } from '../files/file.js';

export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

export type PNode = PFile | PDir | PLink;

export interface PFile {
  kind: 'file';
  /** The content, made when the file is opened. */
  read: () => string | Uint8Array;
  /** Permission bits (default 0444). */
  mode?: number;
  /** A write of `data` (at the start of the file, as /proc takes it): bytes taken, or -errno. Absent: EACCES. */
  write?: (data: Uint8Array) => number;
  /** st_size: 0 for /proc files (as on Linux), 4096 for /sys attributes. */
  size?: number;
}

export interface PDir {
  kind: 'dir';
  /** The entries in listing order (without . and ..). */
  list: () => Array<[string, number]>;
  child: (name: string) => PNode | null;
  mode?: number;
}

export interface PLink {
  kind: 'link';
  /** The link's text (readlink), or null when it names nothing any more. */
  target: () => string | null;
  /** A /proc/PID/fd/N link: the open file it is (followed, it is that file whatever its name says). */
  open?: () => OpenFile | null;
}

export const file = (read: () => string | Uint8Array, mode = 0o444, size = 0): PFile => ({ kind: 'file', read, mode, size });
export const link = (target: () => string | null): PLink => ({ kind: 'link', target });

/** A directory of named children, each made only when looked up. */
export function dir(children: Record<string, () => PNode | null>, extra?: { list: () => Array<[string, number]>; child: (name: string) => PNode | null }): PDir {
  const names = Object.keys(children);
  return {
    kind: 'dir',
    list: () => {
      const out: Array<[string, number]> = [];
      if (extra) out.push(...extra.list());
      for (const n of names) {
        const c = children[n]!();
        if (c) out.push([n, typeOf(c)]);
      }
      return out;
    },
    child: (name) => (Object.hasOwn(children, name) ? children[name]!() : (extra?.child(name) ?? null)),
  };
}

export function typeOf(n: PNode): number {
  return n.kind === 'dir' ? DT_DIR : n.kind === 'link' ? DT_LNK : DT_REG;
}

/** A stable inode number for a pseudo path (FNV-1a), so that tools that compare (dev, ino) tell them apart. */
export function inoOf(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h >>> 0) + 0x1000;
}

/** st_dev of /proc and /sys (Linux gives each its own anonymous device). */
export const PROC_DEV = 0x16;
export const SYS_DEV = 0x15;

export function nodeStat(path: string, n: PNode): StatInfo {
  const now = Math.floor(Date.now() / 1000);
  const mode = n.kind === 'dir' ? S_IFDIR | (n.mode ?? 0o555) : n.kind === 'link' ? 0o120777 : S_IFREG | (n.mode ?? 0o444);
  const size = n.kind === 'file' ? (n.size ?? 0) : n.kind === 'link' ? (n.target()?.length ?? 0) : 0;
  return {
    dev: path === '/sys' || path.startsWith('/sys/') ? SYS_DEV : PROC_DEV,
    ino: path === '/proc' ? 1 : inoOf(path),
    nlink: n.kind === 'dir' ? 2 : 1,
    mode, uid: 0, gid: 0, rdev: 0, size, blksize: 1024, blocks: 0,
    atime: [now, 0], mtime: [now, 0], ctime: [now, 0],
  };
}

/** Where a walk ended: a node of the tree, or a path outside it (the disk image, /dev) to resolve there. */
export type WalkResult =
  | { kind: 'node'; path: string; node: PNode; open?: OpenFile }
  | { kind: 'redirect'; path: string };

const MAX_LINKS = 40;

/**
 * Resolve `abs` (an absolute, normalized path under one of `roots`) through the trees: links in the
 * middle are always followed, the last one only when `follow` is set. -errno when nothing is there.
 */
export function walk(roots: Record<string, () => PDir>, abs: string, follow: boolean): WalkResult | number {
  let path = abs;
  outer: for (let hops = 0; hops <= MAX_LINKS; hops++) {
    const comps = path.split('/').filter((c) => c !== '');
    const root = comps.length > 0 ? roots[comps[0]!] : undefined;
    if (!root || !Object.hasOwn(roots, comps[0]!)) return { kind: 'redirect', path: `/${comps.join('/')}` };
    let node: PNode = root();
    for (let i = 1; i < comps.length; i++) {
      if (node.kind === 'link') {
        const next = linkTarget(node, comps.slice(0, i));
        if (next === null) return -E.ENOENT;
        path = joinPath(next, comps.slice(i));
        continue outer;
      }
      if (node.kind !== 'dir') return -E.ENOTDIR;
      const c: PNode | null = node.child(comps[i]!);
      if (!c) return -E.ENOENT;
      node = c;
    }
    const here = `/${comps.join('/')}`;
    if (node.kind === 'link' && follow) {
      const open = node.open?.();
      if (open) return { kind: 'node', path: here, node, open };
      const next = linkTarget(node, comps);
      if (next === null) return -E.ENOENT;
      path = next;
      continue;
    }
    return { kind: 'node', path: here, node };
  }
  return -E.ELOOP;
}

/** A link's target as an absolute path (a relative one is taken from the link's directory). */
function linkTarget(l: PLink, at: string[]): string | null {
  const t = l.target();
  if (t === null) return null;
  if (t.startsWith('/')) return t;
  if (/^[a-z_]+:\[/.test(t)) return null; // pipe:[N], socket:[N], anon_inode:[...]: no path
  return joinPath(`/${at.slice(0, -1).join('/')}`, [t]);
}

function joinPath(base: string, rest: string[]): string {
  const out: string[] = [];
  for (const c of [...base.split('/'), ...rest.flatMap((r) => r.split('/'))]) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return `/${out.join('/')}`;
}
