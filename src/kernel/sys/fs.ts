/**
 * File-system system calls over the root file system (the disk image), plus the kernel's own trees:
 * /dev (devices), /proc/self basics. Without an image the program has only its standard streams,
 * /dev, /proc and its pipes; other paths do not exist (ENOENT).
 */
import { E } from '../../abi/errno.js';
import { encodeStat, encodeStatx, type StatInfo } from '../../abi/stat.js';
import { Device, devLink, isDevice } from '../files/devices.js';
import { Ext4File, ROOT_DEV, S_IFDIR, S_IFMT, S_IFREG, fsCall, toStatInfo } from '../files/ext4file.js';
import {
  O_ACCMODE,
  O_CLOEXEC,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_PATH,
  O_RDONLY,
  O_TRUNC,
  O_WRONLY,
  OpenFile,
  type FileOps,
} from '../files/file.js';
import { MemFile } from '../files/memfile.js';
import { FsError } from '../../storage/ext4/errors.js';
import { makePipe } from '../files/pipe.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE, EventFd } from '../files/eventfd.js';
import { TFD_CLOEXEC, TFD_NONBLOCK, TFD_TIMER_ABSTIME, TimerFd } from '../files/timerfd.js';
import type { Kernel } from '../kernel.js';
import type { SyscallArgs, SyscallResult, SyscallTable } from '../types.js';
import { ProcDir, procDirEntries, procFile, procLink, procStat, pseudoWalk } from '../vfs/proc.js';
import { openFifo } from '../files/fifo.js';

export const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_SYMLINK_FOLLOW = 0x400;
const AT_EMPTY_PATH = 0x1000;
const AT_EACCESS = 0x200;
const PATH_MAX = 4096;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const RENAME_WHITEOUT = 4;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;
const EXT4_SUPER_MAGIC = 0xef53;
const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;
/** The magic statfs reports for a path (or open file's name) outside the image: sysfs's under /sys, else procfs's. */
const pseudoMagic = (path: string): number => (path === '/sys' || path.startsWith('/sys/') ? SYSFS_MAGIC : PROC_SUPER_MAGIC);
const ST_RDONLY = 1;
const DT_OF_EXT4 = [0, 8, 4, 2, 6, 1, 12, 10];

/** Normalize an absolute or cwd-relative path lexically. */
export function normalizePath(path: string, cwd = '/'): string {
  const parts: string[] = [];
  for (const p of (path.startsWith('/') ? path : `${cwd}/${path}`).split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return `/${parts.join('/')}`;
}

/** Read a path argument: ENAMETOOLONG when unterminated within PATH_MAX. */
function pathArg(k: Kernel, addr: number): string | number {
  const p = k.mem.readCString(addr, PATH_MAX);
  return p === null ? -E.ENAMETOOLONG : p;
}

/** The directory inode a *at() call starts from, and its path (for the kernel trees). */
function base(k: Kernel, dirfd: number, path: string): { ino: number | null; dir: string } | number {
  if (path.startsWith('/') || dirfd === AT_FDCWD) return { ino: k.cwd.ino, dir: k.cwd.path };
  const f = k.fds.get(dirfd);
  if (!f) return -E.EBADF;
  if (f.ops instanceof ProcDir) return { ino: null, dir: f.ops.name };
  if (!(f.ops instanceof Ext4File)) return -E.ENOTDIR;
  if (!f.ops.isDir) return -E.ENOTDIR;
  return { ino: f.ops.ino, dir: f.ops.name };
}

/**
 * The path to give the image's resolver: as given, relative to the base's inode, unless the base is
 * no inode of the image (a working directory or dirfd in /proc or /sys): then the absolute path.
 */
function imagePath(path: string, b: { ino: number | null; dir: string }): string {
  return b.ino === null && !path.startsWith('/') ? normalizePath(path, b.dir) : path;
}

/** The kernel's own trees, matched by absolute path before the image is consulted. */
function special(abs: string): 'dev' | 'proc' | null {
  if (abs === '/dev' || abs.startsWith('/dev/')) return isDevice(abs.slice(5)) ? 'dev' : null;
  if (abs === '/proc' || abs.startsWith('/proc/') || abs === '/sys' || abs.startsWith('/sys/')) return 'proc';
  return null;
}

export type Target =
  | { kind: 'inode'; ino: number; path: string }
  | { kind: 'dev'; name: string; path: string }
  | { kind: 'proc'; path: string; open?: OpenFile };

/** Resolve a path (relative to dirfd) to what it names. */
export function resolve(k: Kernel, dirfd: number, path: string, follow: boolean): Target | number {
  if (path === '') return -E.ENOENT;
  if (path.endsWith('/')) follow = true; // a trailing slash resolves a final symlink (to its directory)
  const b = base(k, dirfd, path);
  if (typeof b === 'number') return b;
  const abs = normalizePath(path, b.dir);
  const link = devLink(abs, follow);
  if (link !== null) return resolve(k, AT_FDCWD, link, follow);
  const sp = special(abs);
  if (sp === 'dev') return { kind: 'dev', name: abs.slice(5), path: abs };
  if (sp === 'proc') {
    // /proc and /sys: links in the path are followed (/proc/self/cwd/x reaches the image).
    const w = pseudoWalk(k, abs, follow);
    if (typeof w === 'number') return w;
    if (w.kind === 'redirect') return resolve(k, AT_FDCWD, w.path, follow);
    return w.open ? { kind: 'proc', path: w.path, open: w.open } : { kind: 'proc', path: w.path };
  }
  const root = k.root;
  if (!root) return -E.ENOENT;
  const r = fsCall(() => root.fs.resolve(imagePath(path, b), { cwdIno: b.ino ?? root.fs.rootIno, followFinal: follow }));
  return r < 0 ? r : { kind: 'inode', ino: r, path: abs };
}

/** Run `f`; a file-system error becomes -errno. */
function fsTry<T>(f: () => T): T | number {
  try {
    return f();
  } catch (e) {
    if (e instanceof FsError) return -e.errno;
    throw e;
  }
}

export function statOf(k: Kernel, t: Target): StatInfo | number {
  switch (t.kind) {
    case 'inode':
      return fsTry(() => toStatInfo(k.root!.fs.stat(t.ino), ROOT_DEV));
    case 'dev':
      return new Device(t.name as 'null', k.mem).stat();
    case 'proc':
      // A followed /proc/PID/fd/N is the open file itself, whatever its name says.
      return t.open ? t.open.ops.stat(t.open) : procStat(k, t.path);
  }
}

function install(k: Kernel, ops: FileOps, flags: number): number {
  return k.fds.install(new OpenFile(ops, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOFOLLOW)), (flags & O_CLOEXEC) !== 0);
}

function openAt(k: Kernel, dirfd: number, pathAddr: number, flags: number, mode: number): SyscallResult {
  const path = pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  return openAtPath(k, dirfd, path, flags, mode);
}

export function openAtPath(k: Kernel, dirfd: number, path: string, flags: number, mode: number): SyscallResult {
  if (path === '') return -E.ENOENT;
  const wantsWrite = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
  if ((flags & O_ACCMODE) === O_ACCMODE) return -E.EINVAL;
  const b = base(k, dirfd, path);
  if (typeof b === 'number') return b;
  let abs = normalizePath(path, b.dir);
  // /dev/fd/N, /dev/stdin..stderr and /proc/self/fd/N: the file behind the fd (bash's <(...) and
  // >(...), "cat /dev/stdin"). A file of the image is opened anew (its own offset, as on Linux);
  // anything else (a pipe, a terminal) is the same open description, as a dup would give.
  const fdLink = /^\/dev\/fd\/(\d+)$/.exec(abs) ?? /^\/proc\/self\/fd\/(\d+)$/.exec(abs) ?? /^\/proc\/(\d+)\/fd\/(\d+)$/.exec(abs);
  const stdName = ['/dev/stdin', '/dev/stdout', '/dev/stderr'].indexOf(abs);
  if (fdLink || stdName >= 0) {
    if (fdLink?.[2] !== undefined && Number(fdLink[1]) !== k.identity.pid) return -E.EACCES; // another process's fds
    const n = stdName >= 0 ? stdName : Number(fdLink![2] ?? fdLink![1]);
    const f = k.fds.get(n);
    if (!f) return -E.ENOENT;
    if (!(f.ops instanceof Ext4File)) {
      if (flags & O_DIRECTORY) return -E.ENOTDIR;
      return k.fds.install(f, (flags & O_CLOEXEC) !== 0);
    }
    return openAtPath(k, AT_FDCWD, f.ops.name, flags, mode);
  }
  const sp = special(abs);
  if (sp === 'dev') {
    if (flags & O_DIRECTORY) return -E.ENOTDIR;
    return install(k, new Device(abs.slice(5) as 'null', k.mem), flags);
  }
  if (sp === 'proc') {
    const w = pseudoWalk(k, abs, !(flags & O_NOFOLLOW));
    if (typeof w === 'number') return flags & O_CREAT && w === -E.ENOENT ? -E.EACCES : w;
    if (w.kind === 'redirect') return openAtPath(k, AT_FDCWD, w.path, flags, mode);
    if (w.open) {
      if (flags & O_DIRECTORY) return -E.ENOTDIR;
      return k.fds.install(w.open, (flags & O_CLOEXEC) !== 0);
    }
    if (w.node.kind === 'link') return flags & O_PATH ? install(k, new ProcDir(w.path, []), flags) : -E.ELOOP;
    if (flags & O_CREAT && flags & O_EXCL) return -E.EEXIST;
    if (w.node.kind === 'dir' && (wantsWrite || flags & O_CREAT)) return -E.EISDIR;
    if (wantsWrite && !(w.node.kind === 'file' && w.node.write)) return -E.EACCES;
    abs = w.path;
    const entries = procDirEntries(k, abs);
    if (entries) return install(k, new ProcDir(abs, entries), flags);
    const f = procFile(k, abs);
    if (!f) return -E.ENOENT;
    if (flags & O_DIRECTORY) return -E.ENOTDIR;
    return install(k, f, flags);
  }
  const root = k.root;
  if (!root) return flags & O_CREAT ? -E.EROFS : -E.ENOENT;
  const fs = root.fs;
  const cwdIno = b.ino ?? fs.rootIno;
  path = imagePath(path, b);
  let fifoIno = -1;
  const r = fsCall(() => {
    let ino: number;
    if (flags & O_CREAT) {
      const parent = fs.resolveParent(path, { cwdIno });
      if (parent.trailingSlash) return -E.EISDIR;
      let existing: number | null = null;
      try {
        existing = fs.lookup(parent.dirIno, parent.name);
      } catch (e) {
        if (!(e instanceof Error && 'errno' in e && (e as { errno: number }).errno === E.ENOENT)) throw e;
      }
      if (existing !== null) {
        if (flags & O_EXCL) return -E.EEXIST;
        ino = fs.resolve(path, { cwdIno, followFinal: !(flags & O_NOFOLLOW) });
      } else {
        if (fs.readOnly) return -E.EROFS;
        ino = fs.create(parent.dirIno, parent.name, S_IFREG | (mode & 0o7777 & ~k.umask), { uid: k.identity.uid, gid: k.identity.gid });
        flags &= ~O_TRUNC;
      }
    } else {
      ino = fs.resolve(path, { cwdIno, followFinal: !(flags & O_NOFOLLOW) });
    }
    const st = fs.stat(ino);
    const type = st.mode & S_IFMT;
    if (type === 0o120000 && !(flags & O_PATH)) return -E.ELOOP; // O_NOFOLLOW on a symlink
    if (flags & O_DIRECTORY && type !== S_IFDIR) return -E.ENOTDIR;
    if (type === S_IFDIR && wantsWrite) return -E.EISDIR;
    if (wantsWrite && !(flags & O_PATH) && fs.readOnly) return -E.EROFS;
    if (flags & O_TRUNC && type === S_IFREG && (flags & O_ACCMODE) !== O_RDONLY) fs.truncate(ino, 0);
    if (type === S_IFIFO_TYPE && !(flags & O_PATH)) {
      fifoIno = ino;
      return 0;
    }
    if ((type === 0o020000 || type === 0o060000 || type === 0o140000) && !(flags & O_PATH)) return -E.ENXIO; // device and socket inodes of the image
    return install(k, new Ext4File(root, k.mem, ino, abs), flags);
  });
  return fifoIno >= 0 ? openFifoAt(k, fifoIno, flags) : r;
}

const S_IFIFO_TYPE = 0o010000;

/** Open a FIFO of the image: blocking opens park until the other side opens (fifo.ts). */
function openFifoAt(k: Kernel, ino: number, flags: number): SyscallResult {
  const pending = k.curThread?.fifoWait ?? null;
  const r = openFifo(ino, flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOFOLLOW), k.mem, k.stop, pending);
  if (typeof r === 'number') return r;
  if (r instanceof OpenFile) {
    if (k.curThread) k.curThread.fifoWait = null;
    const fd = k.fds.install(r, (flags & O_CLOEXEC) !== 0);
    if (fd < 0) r.discard(); // (EMFILE: its end of the FIFO goes)
    return fd;
  }
  // Wait for the other side (a lone thread cannot be joined by anyone: it would wait forever).
  if (!k.stop.mustNotBlock?.()) {
    r.file.discard();
    return -E.EINTR;
  }
  if (k.curThread) k.curThread.fifoWait = r;
  return { kind: 'park', park: { kind: 'retry', deadline: Infinity, onTimeout: -E.EINTR } };
}

/** mknod/mknodat: FIFOs, sockets and regular files (device nodes: EPERM, as for an unprivileged user namespace). */
function mknodAt(k: Kernel, dirfd: number, pathAddr: number, mode: number, dev: number): number {
  const path = pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  const type = mode & 0o170000;
  if (type === 0o020000 || type === 0o060000) return -E.EPERM;
  if (type !== 0 && type !== S_IFREG && type !== S_IFIFO_TYPE && type !== 0o140000) return -E.EINVAL;
  const root = k.root;
  if (!root) return -E.EROFS;
  const b = base(k, dirfd, path);
  if (typeof b === 'number') return b;
  if (special(normalizePath(path, b.dir))) return -E.EEXIST;
  return fsCall(() => {
    if (root.fs.readOnly) return -E.EROFS;
    const parent = root.fs.resolveParent(imagePath(path, b), { cwdIno: b.ino ?? root.fs.rootIno });
    root.fs.mknod(parent.dirIno, parent.name, (type || S_IFREG) | (mode & 0o7777 & ~k.umask), dev, { uid: k.identity.uid, gid: k.identity.gid });
    return 0;
  });
}

/**
 * bind() of an AF_UNIX path name: a socket inode at `path` (relative to the working directory), made
 * as mknod makes one. Returns its inode, or -errno (EADDRINUSE when the name exists, as Linux says).
 */
export function makeSocketNode(k: Kernel, path: string): number {
  const root = k.root;
  if (!root) return -E.EROFS;
  if (path === '') return -E.ENOENT;
  const b = base(k, AT_FDCWD, path);
  if (typeof b === 'number') return b;
  if (special(normalizePath(path, b.dir))) return -E.EADDRINUSE;
  const r = fsCall(() => {
    if (root.fs.readOnly) return -E.EROFS;
    const parent = root.fs.resolveParent(imagePath(path, b), { cwdIno: b.ino ?? root.fs.rootIno });
    return root.fs.mknod(parent.dirIno, parent.name, 0o140000 | (0o777 & ~k.umask), 0, { uid: k.identity.uid, gid: k.identity.gid });
  });
  return r === -E.EEXIST ? -E.EADDRINUSE : r;
}

/**
 * connect()/sendto() to an AF_UNIX path name: the socket inode it names, or -errno (ECONNREFUSED when
 * it names something that is not a socket, as Linux says).
 */
export function findSocketNode(k: Kernel, path: string): number {
  const t = resolve(k, AT_FDCWD, path, true);
  if (typeof t === 'number') return t;
  if (t.kind !== 'inode') return -E.ECONNREFUSED;
  const st = statOf(k, t);
  if (typeof st === 'number') return st;
  return (st.mode & 0o170000) === 0o140000 ? t.ino : -E.ECONNREFUSED;
}

/** struct itimerspec: it_interval then it_value, each {tv_sec, tv_nsec}; `t` = [value, interval] in ns. */
function writeItimerspec(k: Kernel, addr: number, t: [bigint, bigint]): void {
  const b = new Uint8Array(32);
  const dv = new DataView(b.buffer);
  const [value, interval] = t.map((x) => (x < 0n ? 0n : x));
  dv.setBigInt64(0, interval! / 1_000_000_000n, true);
  dv.setBigInt64(8, interval! % 1_000_000_000n, true);
  dv.setBigInt64(16, value! / 1_000_000_000n, true);
  dv.setBigInt64(24, value! % 1_000_000_000n, true);
  k.mem.write(addr, b);
}

function pipe2(k: Kernel, addr: number, flags: number): SyscallResult {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | 0o40000 /* O_DIRECT */)) return -E.EINVAL;
  k.mem.writable(addr, 8); // check before creating anything
  const [r, w] = makePipe(k.mem, k.stop);
  const status = flags & O_NONBLOCK;
  const fds = k.fds.installPair(new OpenFile(r, O_RDONLY | status), new OpenFile(w, O_WRONLY | status), (flags & O_CLOEXEC) !== 0);
  if (typeof fds === 'number') return fds;
  k.mem.writeU32(addr, fds[0]);
  k.mem.writeU32(addr + 4, fds[1]);
  return 0;
}

/** The target of fstatat-style calls: a path, or the fd itself with AT_EMPTY_PATH. */
function statTarget(k: Kernel, dirfd: number, pathAddr: number, flags: number): StatInfo | number {
  const path = pathAddr === 0 ? '' : pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  if (path === '') {
    if (!(flags & AT_EMPTY_PATH)) return -E.ENOENT;
    if (dirfd === AT_FDCWD) {
      // Without a disk image the working directory is no inode: there is nothing to stat.
      if (k.cwd.ino === null || !k.root) return -E.ENOENT;
      return statOf(k, { kind: 'inode', ino: k.cwd.ino, path: k.cwd.path });
    }
    const f = k.fds.get(dirfd);
    return f ? f.ops.stat(f) : -E.EBADF;
  }
  const t = resolve(k, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));
  return typeof t === 'number' ? t : statOf(k, t);
}

function writeStat(k: Kernel, addr: number, s: StatInfo | number): number {
  if (typeof s === 'number') return s;
  k.mem.write(addr, encodeStat(s));
  return 0;
}

/** struct statx (256 bytes). */
function writeStatx(k: Kernel, addr: number, s: StatInfo | number, crtime: [number, number] | null): number {
  if (typeof s === 'number') return s;
  k.mem.write(addr, encodeStatx(s, crtime));
  return 0;
}

function statfs(k: Kernel, addr: number, proc: boolean, magic = PROC_SUPER_MAGIC): number {
  const b = new Uint8Array(120);
  const dv = new DataView(b.buffer);
  const set = (o: number, v: number): void => dv.setBigInt64(o, BigInt(v), true);
  if (proc || !k.root) {
    set(0, magic);
    set(8, 4096);
    set(64, 255);
    set(72, 4096);
  } else {
    const s = k.root.fs.statfs();
    set(0, EXT4_SUPER_MAGIC);
    set(8, s.bsize);
    set(16, s.blocks);
    set(24, s.bfree);
    set(32, s.bavail);
    set(40, s.files);
    set(48, s.ffree);
    dv.setUint32(56, s.fsid[0], true);
    dv.setUint32(60, s.fsid[1], true);
    set(64, s.namelen);
    set(72, s.frsize);
    set(80, k.root.readOnly ? ST_RDONLY : 0);
  }
  k.mem.write(addr, b);
  return 0;
}

/** A parent directory and name for calls that create or remove names. */
function parentOf(k: Kernel, dirfd: number, path: string): { dirIno: number; name: Uint8Array; trailingSlash: boolean; abs: string } | number {
  if (path === '') return -E.ENOENT;
  const b = base(k, dirfd, path);
  if (typeof b === 'number') return b;
  const abs = normalizePath(path, b.dir);
  if (special(abs)) return -E.EPERM;
  const root = k.root;
  if (!root) return -E.EROFS;
  if (root.fs.readOnly) return -E.EROFS;
  const p = fsTry(() => root.fs.resolveParent(imagePath(path, b), { cwdIno: b.ino ?? root.fs.rootIno }));
  return typeof p === 'number' ? p : { ...p, abs };
}

function withParent(k: Kernel, dirfd: number, pathAddr: number, f: (p: { dirIno: number; name: Uint8Array; trailingSlash: boolean }) => number): number {
  const path = pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  const p = parentOf(k, dirfd, path);
  if (typeof p === 'number') return p;
  return fsCall(() => f(p));
}

function inodeOf(k: Kernel, dirfd: number, pathAddr: number, follow: boolean, allowEmpty: boolean): number {
  const path = pathAddr === 0 ? '' : pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  if (path === '' && allowEmpty) {
    const f = k.fds.get(dirfd);
    if (!f) return -E.EBADF;
    return f.ops instanceof Ext4File ? f.ops.ino : -E.EPERM;
  }
  const t = resolve(k, dirfd, path, follow);
  if (typeof t === 'number') return t;
  return t.kind === 'inode' ? t.ino : -E.EPERM;
}

function fileIno(k: Kernel, fd: number): number {
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  return f.ops instanceof Ext4File ? f.ops.ino : -E.EINVAL;
}

function writableRoot(k: Kernel): number {
  if (!k.root) return -E.EROFS;
  return k.root.fs.readOnly ? -E.EROFS : 0;
}

function utimens(k: Kernel, a: SyscallArgs): number {
  const dirfd = a.i32(0);
  const timesAddr = a.u64(2);
  const flags = a.i32(3);
  const ino = inodeOf(k, dirfd, a.u64(1), !(flags & AT_SYMLINK_NOFOLLOW), a.u64(1) === 0 || (flags & AT_EMPTY_PATH) !== 0);
  if (ino < 0) return ino;
  const w = writableRoot(k);
  if (w < 0) return w;
  const times: { atime?: { sec: number; nsec: number } | 'now'; mtime?: { sec: number; nsec: number } | 'now' } = {};
  if (timesAddr === 0) {
    times.atime = 'now';
    times.mtime = 'now';
  } else {
    const read = (o: number): { sec: number; nsec: number } | 'now' | null | number => {
      const sec = Number(k.mem.readBigU64(timesAddr + o));
      const nsec = Number(k.mem.readBigU64(timesAddr + o + 8));
      if (nsec === UTIME_NOW) return 'now';
      if (nsec === UTIME_OMIT) return null;
      if (nsec < 0 || nsec >= 1e9) return -E.EINVAL;
      return { sec, nsec };
    };
    const at = read(0);
    const mt = read(16);
    if (typeof at === 'number' || typeof mt === 'number') return -E.EINVAL;
    if (at !== null) times.atime = at;
    if (mt !== null) times.mtime = mt;
  }
  return fsCall(() => {
    k.root!.fs.utimes(ino, times);
    return 0;
  });
}

function getdents64(k: Kernel, fd: number, addr: number, count: number): number {
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  if (f.ops instanceof ProcDir) return procGetdents(k, f, f.ops, addr, count);
  if (!(f.ops instanceof Ext4File)) return -E.ENOTDIR;
  const ops = f.ops;
  return fsCall(() => {
    if (!ops.isDir) return -E.ENOTDIR;
    const { entries } = k.root!.fs.readdir(ops.ino, f.pos, Math.max(1, Math.floor(count / 24)));
    const out = new Uint8Array(Math.min(count, 1 << 20));
    const dv = new DataView(out.buffer);
    let o = 0;
    for (const e of entries) {
      const reclen = Math.ceil((19 + e.raw.length + 1) / 8) * 8;
      if (o + reclen > count) {
        if (o === 0) return -E.EINVAL;
        break;
      }
      dv.setBigUint64(o, BigInt(e.ino), true);
      dv.setBigInt64(o + 8, BigInt(e.next), true);
      dv.setUint16(o + 16, reclen, true);
      dv.setUint8(o + 18, DT_OF_EXT4[e.type] ?? 0);
      out.set(e.raw, o + 19);
      out.fill(0, o + 19 + e.raw.length, o + reclen);
      o += reclen;
      f.pos = e.next;
    }
    if (o > 0) k.mem.write(addr, out.subarray(0, o));
    return o;
  });
}

/** getdents64 of a /proc directory: f.pos is the index of the next entry. */
function procGetdents(k: Kernel, f: OpenFile, dir: ProcDir, addr: number, count: number): number {
  const out = new Uint8Array(Math.min(count, 1 << 16));
  const dv = new DataView(out.buffer);
  const enc = new TextEncoder();
  let o = 0;
  while (f.pos < dir.entries.length) {
    const e = dir.entries[f.pos]!;
    const name = enc.encode(e.name);
    const reclen = Math.ceil((19 + name.length + 1) / 8) * 8;
    if (o + reclen > out.length) {
      if (o === 0) return -E.EINVAL;
      break;
    }
    dv.setBigUint64(o, BigInt(0x10000 + f.pos), true);
    dv.setBigInt64(o + 8, BigInt(f.pos + 1), true);
    dv.setUint16(o + 16, reclen, true);
    dv.setUint8(o + 18, e.type);
    out.set(name, o + 19);
    o += reclen;
    f.pos++;
  }
  if (o > 0) k.mem.write(addr, out.subarray(0, o));
  return o;
}

function lseek(k: Kernel, fd: number, offset: number, whence: number): number {
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  const SEEK_SET = 0;
  const SEEK_CUR = 1;
  const SEEK_END = 2;
  const SEEK_DATA = 3;
  const SEEK_HOLE = 4;
  let size: number;
  if (f.ops instanceof Ext4File) size = k.root!.fs.stat(f.ops.ino).size;
  else if (f.ops instanceof MemFile) size = f.ops.size();
  else if (f.ops instanceof ProcDir) size = f.ops.entries.length;
  else if (f.ops.kind === 'device') return 0;
  else return -E.ESPIPE;
  let pos: number;
  switch (whence) {
    case SEEK_SET:
      pos = offset;
      break;
    case SEEK_CUR:
      pos = f.pos + offset;
      break;
    case SEEK_END:
      pos = size + offset;
      break;
    case SEEK_DATA:
      if (offset >= size) return -E.ENXIO;
      pos = offset;
      break;
    case SEEK_HOLE:
      if (offset >= size) return -E.ENXIO;
      pos = size;
      break;
    default:
      return -E.EINVAL;
  }
  if (pos < 0 || !Number.isSafeInteger(pos)) return -E.EINVAL;
  f.pos = pos;
  return pos;
}

function readlinkAt(k: Kernel, dirfd: number, pathAddr: number, buf: number, size: number): number {
  if (size <= 0) return -E.EINVAL;
  const path = pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  const t = resolve(k, dirfd, path, false);
  if (typeof t === 'number') return t;
  let target: Uint8Array;
  if (t.kind === 'proc') {
    const l = procLink(k, t.path);
    if (l === null) return typeof procStat(k, t.path) === 'number' ? -E.ENOENT : -E.EINVAL;
    target = new TextEncoder().encode(l);
  } else if (t.kind === 'dev') return -E.EINVAL;
  else {
    const r = fsCall(() => {
      target = k.root!.fs.readlink(t.ino);
      return 0;
    });
    if (r < 0) return r;
  }
  const n = Math.min(size, target!.length);
  k.mem.write(buf, target!.subarray(0, n));
  return n;
}

function access(k: Kernel, dirfd: number, pathAddr: number, mode: number, flags: number): number {
  if (mode & ~7) return -E.EINVAL;
  if (flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  const s = statTarget(k, dirfd, pathAddr, flags);
  if (typeof s === 'number') return s;
  if (mode & 2 && k.root?.readOnly && s.dev === ROOT_DEV) return -E.EROFS;
  // The program runs as root: only execute needs a permission bit (on anything but a directory).
  if (mode & 1 && (s.mode & S_IFMT) !== S_IFDIR && !(s.mode & 0o111)) return -E.EACCES;
  return 0;
}

function chdirTo(k: Kernel, t: Target | number): number {
  if (typeof t === 'number') return t;
  if (t.kind === 'proc' && !t.open && procDirEntries(k, t.path) !== null) {
    k.cwd = { ino: null, path: t.path }; // a directory of /proc or /sys (busybox top and ps chdir to /proc)
    return 0;
  }
  if (t.kind !== 'inode') return -E.ENOTDIR;
  const st = k.root!.fs.stat(t.ino);
  if ((st.mode & S_IFMT) !== S_IFDIR) return -E.ENOTDIR;
  k.cwd = { ino: t.ino, path: t.path };
  return 0;
}

function truncateIno(k: Kernel, ino: number, length: number): number {
  if (ino < 0) return ino;
  if (length < 0) return -E.EINVAL;
  const w = writableRoot(k);
  if (w < 0) return w;
  return fsCall(() => {
    const st = k.root!.fs.stat(ino);
    if ((st.mode & S_IFMT) === S_IFDIR) return -E.EISDIR;
    if ((st.mode & S_IFMT) !== S_IFREG) return -E.EINVAL;
    k.root!.fs.truncate(ino, length);
    return 0;
  });
}

function sync(k: Kernel, fd: number | null): number {
  if (fd !== null && !k.fds.get(fd)) return -E.EBADF;
  k.root?.sync();
  return 0;
}

export const fsSyscalls: SyscallTable = {
  open: (k, a) => openAt(k, AT_FDCWD, a.u64(0), a.i32(1), a.u32(2)),
  openat: (k, a) => openAt(k, a.i32(0), a.u64(1), a.i32(2), a.u32(3)),
  creat: (k, a) => openAt(k, AT_FDCWD, a.u64(0), O_CREAT | O_WRONLY | O_TRUNC, a.u32(1)),
  eventfd2: (k, a) => {
    const flags = a.i32(1);
    if (flags & ~(EFD_SEMAPHORE | EFD_CLOEXEC | EFD_NONBLOCK)) return -E.EINVAL;
    return k.fds.install(new OpenFile(new EventFd(a.u32(0), flags, k.mem, k.stop), 2 | (flags & EFD_NONBLOCK)), (flags & EFD_CLOEXEC) !== 0);
  },
  timerfd_create: (k, a) => {
    const clock = a.i32(0);
    const flags = a.i32(1);
    if (![0, 1, 7, 8, 9].includes(clock)) return -E.EINVAL; // REALTIME, MONOTONIC, BOOTTIME (+ _ALARM)
    if (flags & ~(TFD_CLOEXEC | TFD_NONBLOCK)) return -E.EINVAL;
    return k.fds.install(new OpenFile(new TimerFd(clock === 8 ? 0 : clock === 9 ? 7 : clock, k.mem, k.stop), (flags & TFD_NONBLOCK)), (flags & TFD_CLOEXEC) !== 0);
  },
  timerfd_settime: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    if (!(f.ops instanceof TimerFd)) return -E.EINVAL;
    if (a.i32(1) & ~(TFD_TIMER_ABSTIME | 2)) return -E.EINVAL;
    const its = k.mem.read(a.u64(2), 32);
    const dv = new DataView(its.buffer, its.byteOffset, 32);
    const ns = (o: number): bigint | null => {
      const sec = dv.getBigInt64(o, true);
      const nsec = dv.getBigInt64(o + 8, true);
      return sec < 0n || nsec < 0n || nsec >= 1_000_000_000n ? null : sec * 1_000_000_000n + nsec;
    };
    const interval = ns(0);
    const value = ns(16);
    if (interval === null || value === null) return -E.EINVAL;
    const old = f.ops.settime(a.i32(1), value, interval);
    if (a.u64(3)) writeItimerspec(k, a.u64(3), old);
    return 0;
  },
  timerfd_gettime: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    if (!(f.ops instanceof TimerFd)) return -E.EINVAL;
    writeItimerspec(k, a.u64(1), f.ops.gettime());
    return 0;
  },
  eventfd: (k, a) => k.fds.install(new OpenFile(new EventFd(a.u32(0), 0, k.mem, k.stop), 2), false),
  pipe: (k, a) => pipe2(k, a.u64(0), 0),
  pipe2: (k, a) => pipe2(k, a.u64(0), a.i32(1)),
  stat: (k, a) => writeStat(k, a.u64(1), statTarget(k, AT_FDCWD, a.u64(0), 0)),
  lstat: (k, a) => writeStat(k, a.u64(1), statTarget(k, AT_FDCWD, a.u64(0), AT_SYMLINK_NOFOLLOW)),
  newfstatat: (k, a) => writeStat(k, a.u64(2), statTarget(k, a.i32(0), a.u64(1), a.i32(3))),
  statx: (k, a) => {
    const dirfd = a.i32(0);
    const flags = a.i32(2);
    const s = statTarget(k, dirfd, a.u64(1), flags);
    let crtime: [number, number] | null = null;
    if (typeof s !== 'number' && s.dev === ROOT_DEV && k.root) {
      const c = k.root.fs.stat(s.ino).crtime;
      if (c) crtime = [c.sec, c.nsec];
    }
    return writeStatx(k, a.u64(4), s, crtime);
  },
  statfs: (k, a) => {
    const path = pathArg(k, a.u64(0));
    if (typeof path === 'number') return path;
    const t = resolve(k, AT_FDCWD, path, true);
    return typeof t === 'number' ? t : statfs(k, a.u64(1), t.kind !== 'inode', t.kind === 'proc' ? pseudoMagic(t.path) : PROC_SUPER_MAGIC);
  },
  fstatfs: (k, a) => {
    const f = k.fds.get(a.i32(0));
    return f ? statfs(k, a.u64(1), !(f.ops instanceof Ext4File), f.ops instanceof ProcDir || f.ops.kind === 'proc' ? pseudoMagic(f.ops.name) : PROC_SUPER_MAGIC) : -E.EBADF;
  },
  getdents64: (k, a) => getdents64(k, a.i32(0), a.u64(1), a.u32(2)),
  mknod: (k, a) => mknodAt(k, AT_FDCWD, a.u64(0), a.u32(1), a.u32(2)),
  mknodat: (k, a) => mknodAt(k, a.i32(0), a.u64(1), a.u32(2), a.u32(3)),
  lseek: (k, a) => lseek(k, a.i32(0), a.i64(1), a.i32(2)),
  mkdirat: (k, a) => withParent(k, a.i32(0), a.u64(1), (p) => (k.root!.fs.mkdir(p.dirIno, p.name, a.u32(2) & 0o7777 & ~k.umask, { uid: k.identity.uid, gid: k.identity.gid }), 0)),
  mkdir: (k, a) => withParent(k, AT_FDCWD, a.u64(0), (p) => (k.root!.fs.mkdir(p.dirIno, p.name, a.u32(1) & 0o7777 & ~k.umask, { uid: k.identity.uid, gid: k.identity.gid }), 0)),
  unlinkat: (k, a) => {
    const flags = a.i32(2);
    if (flags & ~AT_REMOVEDIR) return -E.EINVAL;
    return withParent(k, a.i32(0), a.u64(1), (p) => {
      if (flags & AT_REMOVEDIR) k.root!.fs.rmdir(p.dirIno, p.name);
      else {
        if (p.trailingSlash) return -E.ENOTDIR;
        k.root!.fs.unlink(p.dirIno, p.name);
      }
      return 0;
    });
  },
  unlink: (k, a) => withParent(k, AT_FDCWD, a.u64(0), (p) => (p.trailingSlash ? -E.ENOTDIR : (k.root!.fs.unlink(p.dirIno, p.name), 0))),
  rmdir: (k, a) => withParent(k, AT_FDCWD, a.u64(0), (p) => (k.root!.fs.rmdir(p.dirIno, p.name), 0)),
  renameat2: (k, a) => rename(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u32(4)),
  renameat: (k, a) => rename(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3), 0),
  rename: (k, a) => rename(k, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0),
  linkat: (k, a) => {
    const flags = a.i32(4);
    if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
    const ino = inodeOf(k, a.i32(0), a.u64(1), (flags & AT_SYMLINK_FOLLOW) !== 0, (flags & AT_EMPTY_PATH) !== 0);
    if (ino < 0) return ino;
    return withParent(k, a.i32(2), a.u64(3), (p) => (k.root!.fs.link(ino, p.dirIno, p.name), 0));
  },
  link: (k, a) => {
    const ino = inodeOf(k, AT_FDCWD, a.u64(0), false, false);
    if (ino < 0) return ino;
    return withParent(k, AT_FDCWD, a.u64(1), (p) => (k.root!.fs.link(ino, p.dirIno, p.name), 0));
  },
  symlinkat: (k, a) => {
    const target = k.mem.readCStringBytes(a.u64(0), PATH_MAX);
    if (target === null) return -E.ENAMETOOLONG;
    if (target.length === 0) return -E.ENOENT;
    return withParent(k, a.i32(1), a.u64(2), (p) => (k.root!.fs.symlink(p.dirIno, p.name, target, { uid: k.identity.uid, gid: k.identity.gid }), 0));
  },
  symlink: (k, a) => {
    const target = k.mem.readCStringBytes(a.u64(0), PATH_MAX);
    if (target === null) return -E.ENAMETOOLONG;
    if (target.length === 0) return -E.ENOENT;
    return withParent(k, AT_FDCWD, a.u64(1), (p) => (k.root!.fs.symlink(p.dirIno, p.name, target, { uid: k.identity.uid, gid: k.identity.gid }), 0));
  },
  readlinkat: (k, a) => readlinkAt(k, a.i32(0), a.u64(1), a.u64(2), a.i32(3)),
  readlink: (k, a) => readlinkAt(k, AT_FDCWD, a.u64(0), a.u64(1), a.i32(2)),
  faccessat: (k, a) => access(k, a.i32(0), a.u64(1), a.i32(2), 0),
  faccessat2: (k, a) => access(k, a.i32(0), a.u64(1), a.i32(2), a.i32(3)),
  access: (k, a) => access(k, AT_FDCWD, a.u64(0), a.i32(1), 0),
  fchmod: (k, a) => chmod(k, fileIno(k, a.i32(0)), a.u32(1)),
  fchmodat: (k, a) => chmod(k, inodeOf(k, a.i32(0), a.u64(1), true, false), a.u32(2)),
  chmod: (k, a) => chmod(k, inodeOf(k, AT_FDCWD, a.u64(0), true, false), a.u32(1)),
  fchown: (k, a) => chown(k, fileIno(k, a.i32(0)), a.i32(1), a.i32(2)),
  fchownat: (k, a) => chown(k, inodeOf(k, a.i32(0), a.u64(1), !(a.i32(4) & AT_SYMLINK_NOFOLLOW), (a.i32(4) & AT_EMPTY_PATH) !== 0), a.i32(2), a.i32(3)),
  chown: (k, a) => chown(k, inodeOf(k, AT_FDCWD, a.u64(0), true, false), a.i32(1), a.i32(2)),
  lchown: (k, a) => chown(k, inodeOf(k, AT_FDCWD, a.u64(0), false, false), a.i32(1), a.i32(2)),
  utimensat: utimens,
  ftruncate: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    if (!f.writable) return -E.EINVAL;
    return truncateIno(k, fileIno(k, a.i32(0)), a.i64(1));
  },
  truncate: (k, a) => truncateIno(k, inodeOf(k, AT_FDCWD, a.u64(0), true, false), a.i64(1)),
  fallocate: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    const mode = a.i32(1);
    const offset = a.i64(2);
    const len = a.i64(3);
    if (offset < 0 || len <= 0) return -E.EINVAL;
    if (!f.writable) return -E.EBADF;
    const ino = fileIno(k, a.i32(0));
    if (ino < 0) return ino === -E.EINVAL ? -E.ENODEV : ino;
    const KEEP_SIZE = 1;
    if (mode & ~KEEP_SIZE) return -E.EOPNOTSUPP; // punching holes and zeroing ranges are not supported
    const w = writableRoot(k);
    if (w < 0) return w;
    return fsCall(() => {
      k.root!.fs.fallocate(ino, offset, len, (mode & KEEP_SIZE) !== 0);
      return 0;
    });
  },
  fadvise64: (k, a) => {
    // Advice only: the image's pages are the host page cache's, which the host manages.
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    if (f.ops.kind === 'pipe') return -E.ESPIPE;
    return a.i32(3) >= 0 && a.i32(3) <= 5 ? 0 : -E.EINVAL;
  },
  fsync: (k, a) => sync(k, a.i32(0)),
  fdatasync: (k, a) => sync(k, a.i32(0)),
  sync_file_range: (k, a) => sync(k, a.i32(0)),
  syncfs: (k, a) => sync(k, a.i32(0)),
  sync: (k) => sync(k, null),
  chdir: (k, a) => {
    const path = pathArg(k, a.u64(0));
    if (typeof path === 'number') return path;
    return fsCall(() => chdirTo(k, resolve(k, AT_FDCWD, path, true)));
  },
  fchdir: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    if (f.ops instanceof ProcDir) return chdirTo(k, { kind: 'proc', path: f.ops.name });
    if (!(f.ops instanceof Ext4File)) return -E.ENOTDIR;
    return fsCall(() => chdirTo(k, { kind: 'inode', ino: (f.ops as Ext4File).ino, path: f.ops.name }));
  },
  getcwd: (k, a) => {
    const cwd = k.cwd.path;
    const size = a.u64(1);
    if (size < new TextEncoder().encode(cwd).length + 1) return -E.ERANGE;
    return k.mem.writeCString(a.u64(0), cwd, size);
  },
  umask: (k, a) => {
    const old = k.umask;
    k.umask = a.u32(0) & 0o777;
    return old;
  },
};

function rename(k: Kernel, olddir: number, oldAddr: number, newdir: number, newAddr: number, flags: number): number {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) return -E.EINVAL;
  if (flags & RENAME_WHITEOUT) return -E.EINVAL;
  if (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE) return -E.EINVAL;
  const oldPath = pathArg(k, oldAddr);
  if (typeof oldPath === 'number') return oldPath;
  const newPath = pathArg(k, newAddr);
  if (typeof newPath === 'number') return newPath;
  const src = parentOf(k, olddir, oldPath);
  if (typeof src === 'number') return src;
  const dst = parentOf(k, newdir, newPath);
  if (typeof dst === 'number') return dst;
  return fsCall(() => {
    k.root!.fs.rename(src.dirIno, src.name, dst.dirIno, dst.name, {
      noReplace: (flags & RENAME_NOREPLACE) !== 0,
      exchange: (flags & RENAME_EXCHANGE) !== 0,
    });
    return 0;
  });
}

function chmod(k: Kernel, ino: number, mode: number): number {
  if (ino < 0) return ino;
  const w = writableRoot(k);
  if (w < 0) return w;
  return fsCall(() => (k.root!.fs.chmod(ino, mode & 0o7777), 0));
}

function chown(k: Kernel, ino: number, uid: number, gid: number): number {
  if (ino < 0) return ino;
  const w = writableRoot(k);
  if (w < 0) return w;
  return fsCall(() => (k.root!.fs.chown(ino, uid === -1 ? undefined : uid >>> 0, gid === -1 ? undefined : gid >>> 0), 0));
}

