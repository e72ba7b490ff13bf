/**
 * File locks between the sandbox's processes, as Linux keeps them (fs/locks.c):
 *
 * - flock(2): a shared or exclusive lock on the whole file, owned by the open file description (so a
 *   fork's child and dup'd fds share it); it goes with LOCK_UN or when the description's last fd
 *   closes. A lock of another type by the same description replaces it (not atomically: the old one
 *   goes first, as on Linux). flock locks and record locks do not interact.
 * - fcntl record locks: byte ranges, read (shared) or write (exclusive). Classic POSIX locks
 *   (F_SETLK/F_SETLKW/F_GETLK) are owned by the process: a fork's child does not get them, and they all
 *   go when the process closes any fd of the file or ends. Open-file-description locks (F_OFD_*) are
 *   owned by the description, as flock's. A process's own locks never conflict with each other; a new
 *   lock replaces the owner's locks on its range (splitting them), and an owner's adjacent or
 *   overlapping locks of one type are merged. F_GETLK reports the first conflicting lock (with its
 *   owner's pid, or -1 for an OFD lock).
 *
 * A blocking request (LOCK_EX without LOCK_NB, F_SETLKW) parks the thread and is retried when anything
 * changes; deadlock detection (EDEADLK) is not done. Files are identified by their inode on the image
 * (other files by their description's object).
 */
import type { Kernel } from '../kernel.js';
import { Ext4File } from './ext4file.js';
import { OpenFile } from './file.js';

export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

type Owner = Kernel | OpenFile;

interface RangeLock {
  owner: Owner;
  /** The pid F_GETLK reports: the owning process's, or -1 for an OFD lock. */
  pid: number;
  type: number; // F_RDLCK or F_WRLCK
  start: number;
  /** Inclusive; Infinity: to the end of the file, whatever it becomes. */
  end: number;
}

interface FileLocks {
  flock: Map<OpenFile, number>; // F_RDLCK (LOCK_SH) or F_WRLCK (LOCK_EX)
  ranges: RangeLock[];
}

/** The locks of every file, per file system (a sandbox's root) or per object for files not on one. */
const tables = new WeakMap<object, Map<unknown, FileLocks>>();
/** The files whose locks an owner holds, to release them quickly. */
const held = new WeakMap<Owner, Set<FileLocks>>();
const NO_ROOT = {};

function fileKey(k: Kernel, f: OpenFile): { table: Map<unknown, FileLocks>; key: unknown } {
  const space: object = f.ops instanceof Ext4File && k.root ? k.root : NO_ROOT;
  let table = tables.get(space);
  if (!table) tables.set(space, (table = new Map()));
  // A host mount's file (files/hostfile.ts) names its host inode in lockKey.
  return { table, key: f.ops instanceof Ext4File ? f.ops.ino : ((f.ops as { lockKey?: string }).lockKey ?? f.ops) };
}

function locksOf(k: Kernel, f: OpenFile, create: boolean): FileLocks | null {
  const { table, key } = fileKey(k, f);
  let l = table.get(key) ?? null;
  if (!l && create) table.set(key, (l = { flock: new Map(), ranges: [] }));
  return l;
}

function note(owner: Owner, l: FileLocks): void {
  let s = held.get(owner);
  if (!s) held.set(owner, (s = new Set()));
  s.add(l);
}

// ------------------------------------------------------------------ flock

/** flock(2) on description `f`: 0, or 'busy' (another description holds a conflicting lock). */
export function flockFile(k: Kernel, f: OpenFile, type: number): 0 | 'busy' {
  const l = locksOf(k, f, type !== F_UNLCK);
  if (!l) return 0;
  l.flock.delete(f); // an existing lock of this description goes first (a conversion is not atomic)
  if (type === F_UNLCK) return 0;
  for (const [other, t] of l.flock) if (other !== f && (t === F_WRLCK || type === F_WRLCK)) return 'busy';
  l.flock.set(f, type);
  note(f, l);
  return 0;
}

// ------------------------------------------------------------------ record locks

export interface RangeRequest {
  type: number;
  start: number;
  end: number; // inclusive, Infinity for "to the end"
}

function conflicting(l: FileLocks, owner: Owner, r: RangeRequest): RangeLock | null {
  for (const x of l.ranges) {
    if (x.owner === owner) continue;
    if (x.end < r.start || r.end < x.start) continue;
    if (x.type === F_WRLCK || r.type === F_WRLCK) return x;
  }
  return null;
}

/** F_GETLK: the first lock that would conflict with `r` for `owner`, or null. */
export function testRange(k: Kernel, f: OpenFile, owner: Owner, r: RangeRequest): { type: number; start: number; end: number; pid: number } | null {
  const l = locksOf(k, f, false);
  const x = l ? conflicting(l, owner, r) : null;
  return x ? { type: x.type, start: x.start, end: x.end, pid: x.pid } : null;
}

/** F_SETLK/F_OFD_SETLK: 0, or 'busy' when another owner's lock conflicts. */
export function setRange(k: Kernel, f: OpenFile, owner: Owner, pid: number, r: RangeRequest): 0 | 'busy' {
  const l = locksOf(k, f, r.type !== F_UNLCK);
  if (!l) return 0;
  if (r.type !== F_UNLCK && conflicting(l, owner, r)) return 'busy';
  // The owner's locks lose the range [start, end] (split where they stick out).
  const next: RangeLock[] = [];
  for (const x of l.ranges) {
    if (x.owner !== owner || x.end < r.start || r.end < x.start) {
      next.push(x);
      continue;
    }
    if (x.start < r.start) next.push({ ...x, end: r.start - 1 });
    if (x.end > r.end) next.push({ ...x, start: r.end + 1 });
  }
  if (r.type !== F_UNLCK) {
    // Merge with the owner's locks of the same type that touch it.
    let s = r.start;
    let e = r.end;
    for (let i = next.length - 1; i >= 0; i--) {
      const x = next[i]!;
      if (x.owner === owner && x.type === r.type && x.start <= e + 1 && s <= x.end + 1) {
        s = Math.min(s, x.start);
        e = Math.max(e, x.end);
        next.splice(i, 1);
      }
    }
    next.push({ owner, pid, type: r.type, start: s, end: e });
    note(owner, l);
  }
  l.ranges = next.sort((a, b) => a.start - b.start);
  return 0;
}

/** The process closed an fd of the file of `f`: every POSIX lock it holds on that file goes. */
export function closePosix(k: Kernel, f: OpenFile): void {
  const l = locksOf(k, f, false);
  if (l) l.ranges = l.ranges.filter((x) => x.owner !== k);
}

/** The process ends: its POSIX locks go. */
export function releaseProcessLocks(k: Kernel): void {
  const s = held.get(k);
  if (!s) return;
  for (const l of s) l.ranges = l.ranges.filter((x) => x.owner !== k);
  held.delete(k);
}

/** A description's last fd closed: its flock and OFD locks go. */
export function releaseDescriptionLocks(f: OpenFile): void {
  const s = held.get(f);
  if (!s) return;
  for (const l of s) {
    l.flock.delete(f);
    l.ranges = l.ranges.filter((x) => x.owner !== f);
  }
  held.delete(f);
}

OpenFile.lastClose = releaseDescriptionLocks;
