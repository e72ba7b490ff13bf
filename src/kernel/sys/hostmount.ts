/**
 * System calls on host mounts (src/kernel/vfs/mounts.ts): every path or fd call that reaches a mount is
 * served here, the rest goes to the handler it wraps (fs.ts, mm.ts, io.ts...) untouched. The hook is
 * mountHooks(): kernel.ts passes each syscall table through it; in a sandbox without mounts every
 * wrapper is one WeakMap lookup and then the original handler.
 */
import { E } from '../../abi/errno.js';
import { encodeStat, encodeStatx, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, type StatInfo } from '../../abi/stat.js';
import koffi from 'koffi';
import * as libc from '../../host/libc.js';
import { HostFile } from '../files/hostfile.js';
import { Ext4File } from '../files/ext4file.js';
import { HostStream } from '../files/host.js';
import { O_ACCMODE, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_DSYNC, O_EXCL, O_NOFOLLOW, O_PATH, O_RDONLY, O_TRUNC, O_WRONLY, OpenFile } from '../files/file.js';
import type { Kernel } from '../kernel.js';
import type { SyscallArgs, SyscallHandler, SyscallResult, SyscallTable } from '../types.js';
import { ProcDir, pseudoWalk } from '../vfs/proc.js';
import {
  AT_EMPTY_PATH,
  AT_REMOVEDIR,
  AT_SYMLINK_NOFOLLOW,
  done,
  h,
  HO_CLOEXEC,
  HO_DIRECTORY,
  HO_NOFOLLOW,
  HO_PATH,
  hostStatInfo,
  lstatAt,
  modeOf,
  mountTableOf,
  readlinkAt,
  HOST_BACKING_BASE,
  MAX_OPEN_HOST_FILES,
  type HostLoc,
  type Mount,
  type MountTable,
} from '../vfs/mounts.js';
import { FsError } from '../../storage/ext4/errors.js';
import { AT_FDCWD, normalizePath, openAtPath, resolve, statOf } from './fs.js';

const lib = koffi.load('libc.so.6');
const chmodPath = lib.func('int chmod(const char *path, int mode)') as (path: string, mode: number) => number;

const PATH_MAX = 4096;
const O_TMPFILE_BIT = 0o20000000;
const O_SYNC = 0o4010000;
const AT_SYMLINK_FOLLOW = 0x400;
const ST_RDONLY = 1;

type Hit = { loc: HostLoc; slash: boolean } | { outside: string; slash: boolean } | number | null;

function pathArg(k: Kernel, addr: number): string | number {
  if (addr === 0) return -E.EFAULT;
  const p = k.mem.readCString(addr, PATH_MAX);
  return p === null ? -E.ENAMETOOLONG : p;
}

/** The sandbox path a *at() call starts from, or null when not ours to decide (the original handler answers). */
function baseDir(k: Kernel, dirfd: number, path: string): string | number | null {
  if (path.startsWith('/') || dirfd === AT_FDCWD) return path.startsWith('/') ? '/' : k.cwd.path;
  const f = k.fds.get(dirfd);
  if (!f) return null;
  if (f.ops instanceof HostFile) return f.ops.isDir ? f.ops.name : -E.ENOTDIR;
  if (f.ops instanceof Ext4File) return f.ops.isDir ? f.ops.name : null;
  if (f.ops instanceof ProcDir) return f.ops.name;
  return null;
}

/**
 * Where a path argument leads: a place in a mount, a path out of the mounts reached through a link of
 * a mount (`outside`), -errno, or null: not a mount's path (the original handler serves it).
 */
function locate(k: Kernel, dirfd: number, path: string, follow: boolean): Hit {
  const t = mountTableOf(k);
  if (!t || path === '') return null;
  const dir = baseDir(k, dirfd, path);
  if (dir === null || typeof dir === 'number') return dir;
  let abs = normalizePath(path, dir);
  const slash = path.endsWith('/');
  if (abs.startsWith('/proc/')) {
    // /proc/self/cwd/..., /proc/self/root/..., /proc/PID/fd/N/...: where the link leads may be a mount.
    // /proc/self/fd/N of a file of a mount (chmod through an O_PATH fd, as glibc's fchmodat does): that file.
    const w = pseudoWalk(k, abs, follow || slash);
    if (typeof w === 'number') return null;
    if (w.kind === 'redirect') abs = normalizePath(w.path);
    else if (w.open?.ops instanceof HostFile) abs = w.open.ops.name;
    else return null;
  }
  const fromHost = dirfd !== AT_FDCWD && !path.startsWith('/') && k.fds.get(dirfd)?.ops instanceof HostFile;
  let at = abs;
  if (!t.find(abs)) {
    if (fromHost) return { outside: abs, slash };
    const via = viaImage(k, t, abs, follow || slash);
    if (via === null) return null;
    at = via;
  }
  const w = t.walk(at, follow || slash);
  if (typeof w === 'number') return w;
  if (w.kind === 'outside') return { outside: w.path, slash };
  return { loc: w, slash };
}

/**
 * Does `abs` (no mount's path itself) lead into a mount through symbolic links of the image (`/var/run`
 * -> `/run` with a mount at /run/x)? The path it leads to, or null: the image's handler serves it as
 * given. Components are looked up in the image one at a time, as its resolver does.
 */
function viaImage(k: Kernel, t: MountTable, abs: string, follow: boolean): string | null {
  const root = k.root;
  if (!root) return null;
  const fs = root.fs;
  let links = 0;
  let path = abs;
  try {
    outer: for (;;) {
      if (t.find(path)) return path;
      const comps = path.split('/').filter(Boolean);
      let dir = fs.rootIno;
      for (let i = 0; i < comps.length; i++) {
        const last = i === comps.length - 1;
        const ino = fs.lookup(dir, comps[i]!);
        const type = fs.stat(ino).mode & S_IFMT;
        if (type === S_IFLNK && (!last || follow)) {
          if (++links > 40) return null;
          const target = Buffer.from(fs.readlink(ino)).toString('utf8');
          const here = `/${comps.slice(0, i).join('/')}`;
          path = normalizePath(`${target.startsWith('/') ? target : `${here}/${target}`}/${comps.slice(i + 1).join('/')}`);
          continue outer;
        }
        if (last || type !== S_IFDIR) return null;
        dir = ino;
      }
      return null;
    }
  } catch (e) {
    if (e instanceof FsError) return null;
    throw e;
  }
}

/** Run `f` on a located place, always releasing its directory fd. */
function at<T>(loc: HostLoc, f: (loc: HostLoc) => T): T {
  try {
    return f(loc);
  } finally {
    done(loc);
  }
}

/**
 * The permission bits a change of the program's may give a host file: never set-user-ID or set-group-ID
 * on anything but a directory (a mount is nosuid: the host user's set-uid programs must not be made
 * from the sandbox; inside, the program is root anyway and runs nothing from a mount).
 */
function hostMode(mode: number, isDir: boolean): number {
  return mode & (isDir ? 0o7777 : 0o1777);
}

/** chmod the object O_PATH fd `fd` refers to (never a symbolic link: the fd was opened O_NOFOLLOW and is checked). */
function chmodFd(fd: number, mode: number): number {
  const b = Buffer.alloc(144);
  if (libc.fstat(fd, b) < 0) return -libc.errno();
  const type = modeOf(b) & S_IFMT;
  if (type === S_IFLNK) return -E.EOPNOTSUPP;
  return hostResult(chmodPath(`/proc/self/fd/${fd}`, hostMode(mode, type === S_IFDIR)));
}

/** fchmod of an open host file, through hostMode. */
function fchmodHost(file: HostFile, mode: number): number {
  return hostResult(h.fchmod(file.fd, hostMode(mode, file.isDir)));
}

function lstatLoc(loc: HostLoc): StatInfo | number {
  const b = lstatAt(loc.dir, loc.name);
  return typeof b === 'number' ? b : hostStatInfo(b);
}

/** An O_PATH fd of the final object (the caller closes it), or -errno. */
function pathFd(loc: HostLoc): number {
  if (loc.name === '') {
    const d = libc.dup(loc.dir);
    return d < 0 ? -libc.errno() : d;
  }
  const fd = h.openat(loc.dir, loc.name, HO_PATH | HO_NOFOLLOW | HO_CLOEXEC, 0);
  return fd < 0 ? -libc.errno() : fd;
}

function withPathFd(loc: HostLoc, f: (magic: string, fd: number) => number): number {
  const fd = pathFd(loc);
  if (fd < 0) return fd;
  try {
    return f(`/proc/self/fd/${fd}`, fd);
  } finally {
    libc.close(fd);
  }
}

function hostResult(r: number): number {
  return r < 0 ? -libc.errno() : 0;
}

// --- open -------------------------------------------------------------------------------------

function openHost(k: Kernel, dirfd: number, path: string, flags: number, mode: number): SyscallResult | null {
  const excl = (flags & O_CREAT) !== 0 && (flags & O_EXCL) !== 0;
  const hit = locate(k, dirfd, path, !(flags & O_NOFOLLOW) && !excl);
  if (hit === null || typeof hit === 'number') return hit;
  if ('outside' in hit) return openAtPath(k, AT_FDCWD, hit.outside, flags, mode);
  if ((flags & O_ACCMODE) === O_ACCMODE) return done(hit.loc), -E.EINVAL;
  if (flags & O_TMPFILE_BIT) return done(hit.loc), -E.EOPNOTSUPP;
  const table = mountTableOf(k)!;
  if (table.openFiles >= MAX_OPEN_HOST_FILES) return done(hit.loc), -E.ENFILE;
  return at(hit.loc, (loc) => {
    const m = loc.mount;
    const acc = flags & O_ACCMODE;
    const wantsWrite = acc !== O_RDONLY || (flags & O_TRUNC) !== 0;
    const syncBits = flags & (O_SYNC | O_DSYNC);
    const st = lstatAt(loc.dir, loc.name);
    if (typeof st === 'number' && st !== -E.ENOENT) return st;
    let fd: number;
    if (typeof st === 'number') {
      if (!(flags & O_CREAT)) return -E.ENOENT;
      if (hit.slash) return -E.EISDIR;
      if (m.readonly) return -E.EROFS;
      if (loc.name === '') return -E.ENOENT;
      fd = h.openat(loc.dir, loc.name, (flags & O_PATH ? O_RDONLY : acc) | O_CREAT | O_EXCL | HO_NOFOLLOW | HO_CLOEXEC | syncBits, 0o600);
      if (fd < 0) return -libc.errno();
      h.fchmod(fd, hostMode(mode & ~k.umask, false));
    } else {
      if (excl) return -E.EEXIST;
      const type = modeOf(st) & S_IFMT;
      if (type === S_IFLNK && !(flags & O_PATH)) return -E.ELOOP;
      if (flags & O_DIRECTORY && type !== S_IFDIR) return -E.ENOTDIR;
      if (hit.slash && type !== S_IFDIR) return -E.ENOTDIR;
      if (type === S_IFDIR && wantsWrite && !(flags & O_PATH)) return -E.EISDIR;
      if (wantsWrite && m.readonly && !(flags & O_PATH)) return -E.EROFS;
      // Host FIFOs, sockets and devices are not opened (a FIFO's open would wait in the VMM).
      if (type !== S_IFDIR && type !== S_IFREG && type !== S_IFLNK && !(flags & O_PATH)) return -E.ENXIO;
      const hostFlags =
        (flags & O_PATH ? HO_PATH : acc) |
        (type === S_IFDIR ? HO_DIRECTORY : 0) |
        (flags & O_TRUNC && type === S_IFREG && acc !== O_RDONLY ? O_TRUNC : 0) |
        syncBits |
        HO_CLOEXEC;
      if (loc.name === '') {
        fd = m.isDir ? h.openat(loc.dir, '.', hostFlags, 0) : libc.open(`/proc/self/fd/${loc.dir}`, hostFlags, 0);
      } else fd = h.openat(loc.dir, loc.name, hostFlags | HO_NOFOLLOW, 0);
      if (fd < 0) return -libc.errno();
      // Opened for writing: a set-uid or set-gid file loses those bits first, as Linux does for a
      // writer without CAP_FSETID (the program must not change what a host set-uid program does).
      const fmode = modeOf(st);
      if (acc !== O_RDONLY && !(flags & O_PATH) && type === S_IFREG && fmode & 0o6000) h.fchmod(fd, fmode & 0o1777);
    }
    const file = new OpenFile(new HostFile(fd, loc.path, m, k.mem, table), flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC | O_NOFOLLOW));
    const r = k.fds.install(file, (flags & O_CLOEXEC) !== 0);
    if (r < 0) file.discard();
    return r;
  });
}

// --- stat ---------------------------------------------------------------------------------------

/** fstatat-style: the stat of a mount's object, or null (not ours). */
function statHost(k: Kernel, dirfd: number, pathAddr: number, flags: number): StatInfo | number | null {
  if (!mountTableOf(k)) return null;
  const path = pathAddr === 0 ? '' : pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  if (path === '') {
    if (!(flags & AT_EMPTY_PATH)) return null;
    if (dirfd === AT_FDCWD) {
      const hit = locate(k, AT_FDCWD, k.cwd.path, true);
      if (hit === null || typeof hit === 'number' || 'outside' in hit) return hit === null || typeof hit === 'number' ? hit : null;
      return at(hit.loc, lstatLoc);
    }
    const f = k.fds.get(dirfd);
    return f?.ops instanceof HostFile ? f.ops.stat() : null;
  }
  const hit = locate(k, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));
  if (hit === null || typeof hit === 'number') return hit;
  if ('outside' in hit) {
    const t = resolve(k, AT_FDCWD, hit.outside + (hit.slash ? '/' : ''), !(flags & AT_SYMLINK_NOFOLLOW));
    return typeof t === 'number' ? t : statOf(k, t);
  }
  return at(hit.loc, (loc) => {
    const s = lstatLoc(loc);
    if (typeof s !== 'number' && hit.slash && (s.mode & S_IFMT) !== S_IFDIR) return -E.ENOTDIR;
    return s;
  });
}

function statfsHost(k: Kernel, fd: number, ro: boolean, addr: number): number {
  const b = Buffer.alloc(120);
  if (h.fstatfs(fd, b) < 0) return -libc.errno();
  if (ro) b.writeBigInt64LE(b.readBigInt64LE(80) | BigInt(ST_RDONLY), 80);
  k.mem.write(addr, b);
  return 0;
}

// --- names: mkdir, unlink, rename, link, symlink, readlink -------------------------------------

/** A call on a name in a mount: `f` runs on its place, or the original handler when it is not a mount's. */
function onName(k: Kernel, dirfd: number, pathAddr: number, follow: boolean, f: (loc: HostLoc, slash: boolean) => number): number | null {
  if (!mountTableOf(k)) return null;
  const path = pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  if (path === '') return null;
  const hit = locate(k, dirfd, path, follow);
  if (hit === null || typeof hit === 'number') return hit;
  if ('outside' in hit) throw new Redirect(new Map([[pathAddr, hit.outside + (hit.slash ? '/' : '')]])); // a link of a mount leading out of it
  return at(hit.loc, (loc) => f(loc, hit.slash));
}

function changeable(loc: HostLoc): number {
  if (loc.mount.readonly) return -E.EROFS;
  if (loc.name === '') return -E.EBUSY; // the mount point itself
  return 0;
}

function mkdirHost(k: Kernel, dirfd: number, pathAddr: number, mode: number): number | null {
  return onName(k, dirfd, pathAddr, false, (loc) => {
    if (typeof lstatAt(loc.dir, loc.name) !== 'number') return -E.EEXIST;
    const c = changeable(loc);
    if (c < 0) return c;
    if (h.mkdirat(loc.dir, loc.name, 0o700) < 0) return -libc.errno();
    withPathFd(loc, (_magic, fd) => chmodFd(fd, mode & 0o7777 & ~k.umask));
    return 0;
  });
}

function unlinkHost(k: Kernel, dirfd: number, pathAddr: number, flags: number): number | null {
  return onName(k, dirfd, pathAddr, false, (loc, slash) => {
    const st = lstatAt(loc.dir, loc.name);
    if (typeof st === 'number') return st;
    const c = changeable(loc);
    if (c < 0) return c;
    const isDir = (modeOf(st) & S_IFMT) === S_IFDIR;
    if (!(flags & AT_REMOVEDIR)) {
      if (isDir) return -E.EISDIR;
      if (slash) return -E.ENOTDIR;
    } else if (!isDir) return -E.ENOTDIR;
    return hostResult(h.unlinkat(loc.dir, loc.name, flags & AT_REMOVEDIR));
  });
}

/** rename/link between two names: both in one mount, else EXDEV; null when neither is a mount's. */
function twoNames(
  k: Kernel,
  d1: number,
  p1: number,
  follow1: boolean,
  d2: number,
  p2: number,
  f: (a: HostLoc, b: HostLoc) => number,
  apart: (a: HostLoc | null, b: HostLoc | null) => number = () => -E.EXDEV,
): number | null {
  if (!mountTableOf(k)) return null;
  const a = pathArg(k, p1);
  if (typeof a === 'number') return a;
  const b = pathArg(k, p2);
  if (typeof b === 'number') return b;
  const ha = a === '' ? null : locate(k, d1, a, follow1);
  if (typeof ha === 'number') return ha;
  const hb = b === '' ? null : locate(k, d2, b, false);
  if (typeof hb === 'number') {
    if (ha && 'loc' in ha) done(ha.loc);
    return hb;
  }
  if (ha === null && hb === null) return null;
  const outA = ha !== null && 'outside' in ha;
  const outB = hb !== null && 'outside' in hb;
  if ((outA || ha === null) && (outB || hb === null)) {
    // Both in the image (through links of a mount): the image's handler, on the paths the links lead to.
    const m = new Map<number, string>();
    if (outA) m.set(p1, ha.outside + (ha.slash ? '/' : ''));
    if (outB) m.set(p2, hb.outside + (hb.slash ? '/' : ''));
    throw new Redirect(m);
  }
  try {
    const la = ha && 'loc' in ha ? ha.loc : null;
    const lb = hb && 'loc' in hb ? hb.loc : null;
    if (!la || !lb || la.mount !== lb.mount) return apart(la, lb);
    return f(la, lb);
  } finally {
    if (ha && 'loc' in ha) done(ha.loc);
    if (hb && 'loc' in hb) done(hb.loc);
  }
}

function renameHost(k: Kernel, d1: number, p1: number, d2: number, p2: number, flags: number): number | null {
  return twoNames(k, d1, p1, false, d2, p2, (a, b) => {
    if (a.mount.readonly) return -E.EROFS;
    if (a.name === '' || b.name === '') return -E.EBUSY;
    return hostResult(h.renameat2(a.dir, a.name, b.dir, b.name, flags));
  }, (a, b) => (a?.name === '' || b?.name === '' ? -E.EBUSY : -E.EXDEV)); // a mount point does not move
}

function linkHost(k: Kernel, d1: number, p1: number, d2: number, p2: number, flags: number): number | null {
  if (flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return -E.EINVAL;
  const t = mountTableOf(k);
  if (!t) return null;
  if (flags & AT_EMPTY_PATH && (p1 === 0 || k.mem.readCString(p1, 1) === '')) {
    // linkat(fd, "", ...): the open file itself.
    const f = k.fds.get(d1);
    if (!(f?.ops instanceof HostFile)) return null;
    const src = f.ops;
    return onName(k, d2, p2, false, (b) => {
      if (b.mount !== src.mount) return -E.EXDEV;
      if (b.mount.readonly) return -E.EROFS;
      return hostResult(h.linkat(AT_FDCWD, `/proc/self/fd/${src.fd}`, b.dir, b.name, AT_SYMLINK_FOLLOW));
    });
  }
  return twoNames(k, d1, p1, (flags & AT_SYMLINK_FOLLOW) !== 0, d2, p2, (a, b) => {
    if (a.mount.readonly) return -E.EROFS;
    if (typeof lstatAt(b.dir, b.name) !== 'number') return -E.EEXIST;
    if (a.name === '') {
      if (a.mount.isDir) return -E.EPERM;
      return hostResult(h.linkat(AT_FDCWD, `/proc/self/fd/${a.dir}`, b.dir, b.name, AT_SYMLINK_FOLLOW));
    }
    return hostResult(h.linkat(a.dir, a.name, b.dir, b.name, 0));
  });
}

function symlinkHost(k: Kernel, targetAddr: number, dirfd: number, pathAddr: number): number | null {
  if (!mountTableOf(k)) return null;
  const target = k.mem.readCStringBytes(targetAddr, PATH_MAX);
  if (target === null) return -E.ENAMETOOLONG;
  return onName(k, dirfd, pathAddr, false, (loc) => {
    if (target.length === 0) return -E.ENOENT;
    if (typeof lstatAt(loc.dir, loc.name) !== 'number') return -E.EEXIST;
    const c = changeable(loc);
    if (c < 0) return c;
    // The link's text is stored as given; it is only ever resolved in the sandbox's namespace.
    return hostResult(h.symlinkat(Buffer.concat([Buffer.from(target), Buffer.from([0])]), loc.dir, loc.name));
  });
}

function readlinkHost(k: Kernel, dirfd: number, pathAddr: number, buf: number, size: number): number | null {
  return onName(k, dirfd, pathAddr, false, (loc) => {
    if (size <= 0) return -E.EINVAL;
    if (loc.name === '') return -E.EINVAL;
    const t = readlinkAt(loc.dir, loc.name);
    if (typeof t === 'number') return t === -E.ENOENT ? t : t;
    const n = Math.min(size, t.length);
    k.mem.write(buf, t.subarray(0, n));
    return n;
  });
}

// --- metadata -------------------------------------------------------------------------------------

/** Host ids for chown: the program's root is the host user running mapvisor. */
function hostId(id: number, own: number): number {
  if (id === -1) return -1;
  return id === 0 ? own : id;
}

function chownLoc(loc: HostLoc, uid: number, gid: number): number {
  if (loc.mount.readonly) return -E.EROFS;
  const hu = hostId(uid, process.getuid?.() ?? 0);
  const hg = hostId(gid, process.getgid?.() ?? 0);
  return hostResult(h.fchownat(loc.dir, loc.name, hu, hg, AT_SYMLINK_NOFOLLOW | (loc.name === '' ? AT_EMPTY_PATH : 0)));
}

function chmodLoc(loc: HostLoc, mode: number): number {
  if (loc.mount.readonly) return -E.EROFS;
  const st = lstatAt(loc.dir, loc.name);
  if (typeof st === 'number') return st;
  if ((modeOf(st) & S_IFMT) === S_IFLNK) return -E.EOPNOTSUPP;
  return withPathFd(loc, (_magic, fd) => chmodFd(fd, mode));
}

function readTimes(k: Kernel, addr: number): Buffer | null {
  return addr === 0 ? null : Buffer.from(k.mem.read(addr, 32));
}

function utimensHost(k: Kernel, a: SyscallArgs): number | null {
  if (!mountTableOf(k)) return null;
  const dirfd = a.i32(0);
  const pathAddr = a.u64(1);
  const flags = a.i32(3);
  const times = readTimes(k, a.u64(2));
  const empty = pathAddr === 0 || (flags & AT_EMPTY_PATH && k.mem.readCString(pathAddr, 1) === '');
  if (empty) {
    const f = k.fds.get(dirfd);
    if (!(f?.ops instanceof HostFile)) return null;
    if (f.ops.mount.readonly) return -E.EROFS;
    return hostResult(h.utimensat(AT_FDCWD, `/proc/self/fd/${f.ops.fd}`, times, 0));
  }
  return onName(k, dirfd, pathAddr, !(flags & AT_SYMLINK_NOFOLLOW), (loc) => {
    if (loc.mount.readonly) return -E.EROFS;
    if (loc.name === '') return hostResult(h.utimensat(AT_FDCWD, `/proc/self/fd/${loc.dir}`, times, 0));
    return hostResult(h.utimensat(loc.dir, loc.name, times, AT_SYMLINK_NOFOLLOW));
  });
}

function accessHost(k: Kernel, dirfd: number, pathAddr: number, mode: number, flags: number): number | null {
  if (mode & ~7 || flags & ~(0x200 | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return null; // (EINVAL from the original)
  const check = (s: StatInfo | number, ro: boolean): number => {
    if (typeof s === 'number') return s;
    if (mode & 2 && ro) return -E.EROFS;
    if (mode & 1 && (s.mode & S_IFMT) !== S_IFDIR) return -E.EACCES; // nothing runs from a mount (noexec)
    return 0;
  };
  const path = pathAddr === 0 ? '' : pathArg(k, pathAddr);
  if (typeof path === 'number') return path;
  if (path === '') {
    const f = flags & AT_EMPTY_PATH ? k.fds.get(dirfd) : undefined;
    return f?.ops instanceof HostFile ? check(f.ops.stat(), f.ops.mount.readonly) : null;
  }
  return onName(k, dirfd, pathAddr, !(flags & AT_SYMLINK_NOFOLLOW), (loc) => check(lstatLoc(loc), loc.mount.readonly));
}

function truncateHost(k: Kernel, pathAddr: number, length: number): number | null {
  return onName(k, AT_FDCWD, pathAddr, true, (loc) => {
    if (length < 0) return -E.EINVAL;
    if (loc.mount.readonly) return -E.EROFS;
    const st = lstatAt(loc.dir, loc.name);
    if (typeof st === 'number') return st;
    const type = modeOf(st) & S_IFMT;
    if (type === S_IFDIR) return -E.EISDIR;
    if (type !== S_IFREG) return -E.EINVAL;
    const fd = loc.name === '' ? libc.open(`/proc/self/fd/${loc.dir}`, O_WRONLY | HO_CLOEXEC, 0) : h.openat(loc.dir, loc.name, O_WRONLY | HO_NOFOLLOW | HO_CLOEXEC, 0);
    if (fd < 0) return -libc.errno();
    if (modeOf(st) & 0o6000) h.fchmod(fd, modeOf(st) & 0o1777); // (as a write: see openHost)
    const r = hostResult(libc.ftruncate(fd, length));
    libc.close(fd);
    return r;
  });
}

function chdirHost(k: Kernel, loc: HostLoc): number {
  const s = lstatLoc(loc);
  if (typeof s === 'number') return s;
  if ((s.mode & S_IFMT) !== S_IFDIR) return -E.ENOTDIR;
  k.cwd = { ino: null, path: loc.path };
  return 0;
}

// --- lseek, mmap -----------------------------------------------------------------------------------

function lseekHost(f: OpenFile, file: HostFile, offset: number, whence: number): number {
  if (file.isDir) {
    if (libc.lseek(file.fd, f.pos, 0) < 0) return -libc.errno();
    const r = libc.lseek(file.fd, offset, whence);
    if (r < 0) return -libc.errno();
    f.pos = r;
    return r;
  }
  let pos: number;
  if (whence === 0) pos = offset;
  else if (whence === 1) pos = f.pos + offset;
  else if (whence === 2) pos = file.size() + offset;
  else if (whence === 3 || whence === 4) {
    const r = libc.lseek(file.fd, offset, whence);
    if (r < 0) return -libc.errno();
    pos = r;
  } else return -E.EINVAL;
  if (pos < 0 || !Number.isSafeInteger(pos)) return -E.EINVAL;
  f.pos = pos;
  return pos;
}

interface SharedHostMap {
  file: HostFile;
  addr: number;
  offset: number;
  length: number;
}
/** Writable MAP_SHARED maps of host files, per address space: written back on msync and munmap. */
const sharedMaps = new WeakMap<object, SharedHostMap[]>();

function writeBack(k: Kernel, addr: number, length: number, forget: boolean): void {
  const list = sharedMaps.get(k.space);
  if (!list || list.length === 0) return;
  const keep: SharedHostMap[] = [];
  for (const m of list) {
    const s = Math.max(m.addr, addr);
    const e = Math.min(m.addr + m.length, addr + length);
    if (s < e) {
      const fileOff = m.offset + (s - m.addr);
      const n = Math.max(0, Math.min(e - s, m.file.size() - fileOff));
      if (n > 0) libc.pwrite(m.file.fd, k.space.window.hostAddr(s), n, fileOff);
    }
    if (!forget || s >= e) keep.push(m);
    else {
      if (m.addr < addr) keep.push({ ...m, length: addr - m.addr });
      if (m.addr + m.length > addr + length) keep.push({ ...m, addr: addr + length, offset: m.offset + (addr + length - m.addr), length: m.addr + m.length - addr - length });
    }
  }
  sharedMaps.set(k.space, keep);
}

/**
 * mmap of a host file: the program's own memory filled from the file (MAP_PRIVATE: a private copy, as
 * Linux's copy-on-write gives once written; MAP_SHARED: written back to the host file on msync and
 * munmap — the host sees the program's stores then, and the program does not see later host writes).
 */
function mmapHost(k: Kernel, a: SyscallArgs, f: OpenFile, file: HostFile): SyscallResult {
  const PAGE = 4096;
  const addr = a.u64(0);
  const rawLen = a.u64(1);
  const prot = a.i32(2);
  const flags = a.i32(3);
  const offset = a.u64(5);
  const type = flags & 0xf;
  const shared = type !== 2;
  if (type !== 1 && type !== 2 && type !== 3) return -E.EINVAL;
  if (rawLen === 0 || offset % PAGE) return -E.EINVAL;
  if (!Number.isSafeInteger(rawLen) || rawLen > k.space.layout.size) return -E.ENOMEM;
  if (file.isDir) return -E.ENODEV;
  if (!f.readable) return -E.EACCES;
  if (shared && prot & libc.PROT_WRITE && (!f.writable || file.mount.readonly)) return -E.EACCES;
  const length = Math.ceil(rawLen / PAGE) * PAGE;
  if (!k.space.rules.copyPrivateFiles && !k.space.rules.copyWritableSharedFiles && heldBackings(file) < MAX_HELD_BACKINGS) {
    return mapHostDirect(k, file, { addr, length, prot, shared, fixed: (flags & 0x10) !== 0, noReplace: (flags & 0x100000) !== 0, offset, writable: shared && (prot & libc.PROT_WRITE) !== 0 });
  }
  const r = k.space.map({ addr, length, prot: prot | libc.PROT_WRITE, shared, fixed: (flags & 0x10) !== 0, noReplace: (flags & 0x100000) !== 0, tag: 'file' });
  if (r < 0) return r;
  const n = Math.max(0, Math.min(length, file.size() - offset));
  if (n > 0 && libc.pread(file.fd, k.space.window.hostAddr(r), n, offset) < 0) {
    const err = libc.errno();
    k.space.unmap(r, length);
    return -err;
  }
  if (!(prot & libc.PROT_WRITE)) k.space.protect(r, length, prot);
  if (shared && prot & libc.PROT_WRITE) {
    const list = sharedMaps.get(k.space) ?? [];
    list.push({ file, addr: r, offset, length });
    sharedMaps.set(k.space, list);
  }
  return r;
}

let nextBackingId = HOST_BACKING_BASE;
/** The most host fds kept for mapped host files per mount (past it, mappings are copies, as on process). */
const MAX_HELD_BACKINGS = 1024;
function heldBackings(file: HostFile): number {
  return file.mount.heldFds.length;
}
/** Host fds (and backing ids) of mapped host files, per mount: by host inode and access. */
const backings = new WeakMap<Mount, Map<string, { id: number; fd: number }>>();

function backingOf(file: HostFile, writable: boolean): { id: number; fd: number } | number {
  let byKey = backings.get(file.mount);
  if (!byKey) backings.set(file.mount, (byKey = new Map()));
  const key = `${file.lockKey}:${writable ? 'rw' : 'ro'}`;
  const have = byKey.get(key);
  if (have) return have;
  const fd = libc.open(`/proc/self/fd/${file.fd}`, (writable ? libc.O_RDWR : libc.O_RDONLY) | libc.O_CLOEXEC, 0);
  if (fd < 0) return -libc.errno();
  file.mount.heldFds.push(fd);
  const b = { id: nextBackingId++, fd };
  byKey.set(key, b);
  return b;
}

/**
 * kvm: the host file itself mapped into the guest window (MAP_SHARED: the program's stores are the
 * file's pages, seen by the host at once and the host's writes by the program; MAP_PRIVATE: the host's
 * copy-on-write). Whole pages past the end of the file are left unmapped (a touch is SIGSEGV here,
 * SIGBUS on Linux).
 */
function mapHostDirect(
  k: Kernel,
  file: HostFile,
  req: { addr: number; length: number; prot: number; shared: boolean; fixed: boolean; noReplace: boolean; offset: number; writable: boolean },
): SyscallResult {
  const PAGE = 4096;
  const { length, offset } = req;
  let at: number;
  if (req.fixed || req.noReplace) {
    if (req.addr % PAGE) return -E.EINVAL;
    if (!k.space.inUserSpace(req.addr, length)) return -E.ENOMEM;
    if (req.noReplace && k.space.overlapBytes(req.addr, req.addr + length) > 0) return -E.EEXIST;
    at = req.addr;
  } else {
    const p = k.space.place(req.addr - (req.addr % PAGE), length);
    if (p === null) return -E.ENOMEM;
    at = p;
  }
  if (k.space.mappedBytes() - k.space.overlapBytes(at, at + length) + length > k.space.layout.memLimit) return -E.ENOMEM;
  const filePages = Math.max(0, Math.min(length, Math.ceil(file.size() / PAGE) * PAGE - offset));
  if (filePages === 0) return at;
  const b = backingOf(file, req.writable);
  if (typeof b === 'number') return b;
  const r = k.space.map({ addr: at, length: filePages, prot: req.prot, shared: req.shared, fixed: true, noReplace: false, tag: 'file', file: { id: b.id, fd: b.fd, offset, path: file.name } });
  return r < 0 ? r : at;
}

// --- sendfile, copy_file_range -----------------------------------------------------------------

const CHUNK = 1 << 20;
let scratch = 0;
function scratchBuf(): number {
  if (!scratch) {
    scratch = libc.mmap(0, CHUNK, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
    if (scratch === -1) throw new Error(`cannot map a copy buffer (errno ${libc.errno()})`);
  }
  return scratch;
}

type Src = { readHost(f: OpenFile, dst: number, n: number, off: number): number };
type Dst = { writeHost(f: OpenFile, src: number, n: number, off: number | null): number | 'stop' | 'block' };

function sourceOf(f: OpenFile): Src | null {
  if (f.ops instanceof HostFile) return f.ops;
  if (f.ops instanceof Ext4File) {
    const e = f.ops;
    return { readHost: (of, dst, n, off) => e.readHost(of, () => dst, n, off) };
  }
  return null;
}

function sinkOf(f: OpenFile): Dst | null {
  if (f.ops instanceof HostFile || f.ops instanceof Ext4File || f.ops instanceof HostStream) return f.ops as Dst;
  return null;
}

/** Copy up to `count` bytes between files when one is a host mount's: the count, or -errno. */
function copyBetween(inF: OpenFile, outF: OpenFile, posIn: number, posOut: number | null, count: number): { total: number; posIn: number } | number {
  const src = sourceOf(inF);
  const dst = sinkOf(outF);
  if (!src || !dst) return -E.EINVAL;
  const buf = scratchBuf();
  let total = 0;
  const want = Math.min(count, 0x7ffff000);
  while (total < want) {
    const n = src.readHost(inF, buf, Math.min(CHUNK, want - total), posIn);
    if (n < 0) {
      if (total === 0) return n;
      break;
    }
    if (n === 0) break;
    const w = dst.writeHost(outF, buf, n, posOut === null ? null : posOut + total);
    if (typeof w !== 'number' || w < 0) {
      if (total === 0) return typeof w === 'number' ? w : -E.EAGAIN;
      break;
    }
    posIn += w;
    total += w;
    if (w < n) break;
  }
  return { total, posIn };
}

function sendfileHost(k: Kernel, a: SyscallArgs): SyscallResult | null {
  const outF = k.fds.get(a.i32(0));
  const inF = k.fds.get(a.i32(1));
  if (!inF || !outF || !(inF.ops instanceof HostFile || outF.ops instanceof HostFile)) return null;
  if (!sinkOf(outF) || !sourceOf(inF)) return null;
  if (!inF.readable || !outF.writable) return -E.EBADF;
  const offAddr = a.u64(2);
  const count = a.i64(3);
  if (count < 0) return -E.EINVAL;
  let pos = inF.pos;
  if (offAddr !== 0) {
    pos = k.mem.readU64(offAddr);
    if (pos < 0 || pos > Number.MAX_SAFE_INTEGER) return -E.EINVAL;
    k.mem.writable(offAddr, 8);
  }
  const r = copyBetween(inF, outF, pos, null, count);
  if (typeof r === 'number') return r;
  if (offAddr !== 0) k.mem.writeU64(offAddr, r.posIn);
  else inF.pos = r.posIn;
  return r.total;
}

function copyFileRangeHost(k: Kernel, a: SyscallArgs): SyscallResult | null {
  const inF = k.fds.get(a.i32(0));
  const outF = k.fds.get(a.i32(2));
  if (!inF || !outF || !(inF.ops instanceof HostFile || outF.ops instanceof HostFile)) return null;
  if (a.u32(5) !== 0) return -E.EINVAL;
  if (!inF.readable || !outF.writable || outF.flags & 0o2000) return -E.EBADF;
  if ((inF.ops as { isDir?: boolean }).isDir || (outF.ops as { isDir?: boolean }).isDir) return -E.EISDIR;
  if (!(outF.ops instanceof HostFile || outF.ops instanceof Ext4File) || !sourceOf(inF)) return -E.EINVAL;
  const offIn = a.u64(1);
  const offOut = a.u64(3);
  const posIn = offIn !== 0 ? k.mem.readU64(offIn) : inF.pos;
  const posOut = offOut !== 0 ? k.mem.readU64(offOut) : outF.pos;
  if (posIn < 0 || posOut < 0 || posIn > Number.MAX_SAFE_INTEGER || posOut > Number.MAX_SAFE_INTEGER) return -E.EINVAL;
  if (inF.ops instanceof HostFile && outF.ops instanceof HostFile && inF.ops.lockKey === outF.ops.lockKey) {
    const len = a.u64(4);
    if (posIn < posOut + len && posOut < posIn + len) return -E.EINVAL;
  }
  const r = copyBetween(inF, outF, posIn, posOut, a.u64(4));
  if (typeof r === 'number') return r;
  if (offIn !== 0) k.mem.writeU64(offIn, r.posIn);
  else inF.pos = r.posIn;
  if (offOut !== 0) k.mem.writeU64(offOut, posOut + r.total);
  else outF.pos = posOut + r.total;
  return r.total;
}

// --- the hook ---------------------------------------------------------------------------------------

/**
 * Thrown by a mount's handler when a path argument leads out of every mount through a link inside one
 * (or `..` from a dirfd in one): the original handler then runs on the path it leads to.
 */
class Redirect {
  /** Guest address of a path argument -> the absolute path it leads to. */
  constructor(readonly paths: Map<number, string>) {}
}

/**
 * Run `orig` with the path arguments at the addresses in `rd` replaced by the paths they lead to: the
 * paths are written to a page mapped for the call in the program's address space (and unmapped after
 * it), and the handler sees their address instead. The handler checks them as any path of the program.
 */
function redirected(k: Kernel, a: SyscallArgs, cpu: Parameters<SyscallHandler>[2], orig: SyscallHandler, rd: Redirect): SyscallResult {
  const bytes = [...rd.paths].map(([addr, path]) => [addr, Buffer.from(`${path}\0`)] as const);
  if (bytes.some(([, b]) => b.length > PATH_MAX)) return -E.ENAMETOOLONG;
  const length = Math.ceil(bytes.reduce((n, [, b]) => n + b.length, 0) / 4096) * 4096;
  const at = k.space.map({ addr: 0, length, prot: libc.PROT_READ | libc.PROT_WRITE, shared: false, fixed: false, noReplace: false, tag: 'mmap' });
  if (at < 0) return at;
  try {
    const moved = new Map<number, number>();
    let o = 0;
    for (const [addr, b] of bytes) {
      k.mem.write(at + o, b);
      moved.set(addr, at + o);
      o += b.length;
    }
    const proxy = Object.create(a) as SyscallArgs;
    proxy.u64 = (i: number): number => {
      const v = a.u64(i);
      return moved.get(v) ?? v;
    };
    return orig(k, proxy, cpu);
  } finally {
    k.space.unmap(at, length);
  }
}

/** Run the mount's handler; null from it: the original handler. */
function hook(orig: SyscallHandler, mine: (k: Kernel, a: SyscallArgs) => SyscallResult | null): SyscallHandler {
  return (k, a, cpu) => {
    if (!mountTableOf(k)) return orig(k, a, cpu);
    let r: SyscallResult | null;
    try {
      r = mine(k, a);
    } catch (e) {
      if (e instanceof Redirect) return redirected(k, a, cpu, orig, e);
      throw e;
    }
    return r === null ? orig(k, a, cpu) : r;
  };
}

function hostFileOf(k: Kernel, fd: number): { f: OpenFile; file: HostFile } | null {
  const f = k.fds.get(fd);
  return f && f.ops instanceof HostFile ? { f, file: f.ops } : null;
}

function openFrom(k: Kernel, dirfd: number, pathAddr: number, flags: number, mode: number): SyscallResult | null {
  const path = pathArg(k, pathAddr);
  if (typeof path === 'number') return null;
  return openHost(k, dirfd, path, flags, mode);
}

function stat(k: Kernel, addr: number, s: StatInfo | number | null): number | null {
  if (s === null || typeof s === 'number') return s;
  k.mem.write(addr, encodeStat(s));
  return 0;
}

const handlers: Record<string, (k: Kernel, a: SyscallArgs) => SyscallResult | null> = {
  open: (k, a) => openFrom(k, AT_FDCWD, a.u64(0), a.i32(1), a.u32(2)),
  openat: (k, a) => openFrom(k, a.i32(0), a.u64(1), a.i32(2), a.u32(3)),
  creat: (k, a) => openFrom(k, AT_FDCWD, a.u64(0), O_CREAT | O_WRONLY | O_TRUNC, a.u32(1)),
  stat: (k, a) => stat(k, a.u64(1), statHost(k, AT_FDCWD, a.u64(0), 0)),
  lstat: (k, a) => stat(k, a.u64(1), statHost(k, AT_FDCWD, a.u64(0), AT_SYMLINK_NOFOLLOW)),
  newfstatat: (k, a) => stat(k, a.u64(2), statHost(k, a.i32(0), a.u64(1), a.i32(3))),
  statx: (k, a) => {
    const s = statHost(k, a.i32(0), a.u64(1), a.i32(2));
    return s === null || typeof s === 'number' ? s : (k.mem.write(a.u64(4), encodeStatx(s)), 0);
  },
  statfs: (k, a) =>
    onName(k, AT_FDCWD, a.u64(0), true, (loc) => withPathFd(loc, (_m, fd) => statfsHost(k, fd, loc.mount.readonly, a.u64(1)))),
  fstatfs: (k, a) => {
    const h = hostFileOf(k, a.i32(0));
    return h ? statfsHost(k, h.file.fd, h.file.mount.readonly, a.u64(1)) : null;
  },
  getdents64: (k, a) => {
    const h = hostFileOf(k, a.i32(0));
    return h ? h.file.getdents(h.f, a.u64(1), a.u32(2)) : null;
  },
  lseek: (k, a) => {
    const h = hostFileOf(k, a.i32(0));
    return h ? lseekHost(h.f, h.file, a.i64(1), a.i32(2)) : null;
  },
  mkdir: (k, a) => mkdirHost(k, AT_FDCWD, a.u64(0), a.u32(1)),
  mkdirat: (k, a) => mkdirHost(k, a.i32(0), a.u64(1), a.u32(2)),
  unlink: (k, a) => unlinkHost(k, AT_FDCWD, a.u64(0), 0),
  rmdir: (k, a) => unlinkHost(k, AT_FDCWD, a.u64(0), AT_REMOVEDIR),
  unlinkat: (k, a) => (a.i32(2) & ~AT_REMOVEDIR ? null : unlinkHost(k, a.i32(0), a.u64(1), a.i32(2))),
  rename: (k, a) => renameHost(k, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0),
  renameat: (k, a) => renameHost(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3), 0),
  renameat2: (k, a) => (a.u32(4) & ~3 ? null : renameHost(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u32(4))),
  link: (k, a) => linkHost(k, AT_FDCWD, a.u64(0), AT_FDCWD, a.u64(1), 0),
  linkat: (k, a) => linkHost(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.i32(4)),
  symlink: (k, a) => symlinkHost(k, a.u64(0), AT_FDCWD, a.u64(1)),
  symlinkat: (k, a) => symlinkHost(k, a.u64(0), a.i32(1), a.u64(2)),
  readlink: (k, a) => readlinkHost(k, AT_FDCWD, a.u64(0), a.u64(1), a.i32(2)),
  readlinkat: (k, a) => readlinkHost(k, a.i32(0), a.u64(1), a.u64(2), a.i32(3)),
  access: (k, a) => accessHost(k, AT_FDCWD, a.u64(0), a.i32(1), 0),
  faccessat: (k, a) => accessHost(k, a.i32(0), a.u64(1), a.i32(2), 0),
  faccessat2: (k, a) => accessHost(k, a.i32(0), a.u64(1), a.i32(2), a.i32(3)),
  chmod: (k, a) => onName(k, AT_FDCWD, a.u64(0), true, (loc) => chmodLoc(loc, a.u32(1))),
  fchmodat: (k, a) => onName(k, a.i32(0), a.u64(1), true, (loc) => chmodLoc(loc, a.u32(2))),
  fchmod: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    if (!h2) return null;
    if (h2.file.mount.readonly) return -E.EROFS;
    return fchmodHost(h2.file, a.u32(1));
  },
  chown: (k, a) => onName(k, AT_FDCWD, a.u64(0), true, (loc) => chownLoc(loc, a.i32(1), a.i32(2))),
  lchown: (k, a) => onName(k, AT_FDCWD, a.u64(0), false, (loc) => chownLoc(loc, a.i32(1), a.i32(2))),
  fchownat: (k, a) => {
    const flags = a.i32(4);
    if (flags & AT_EMPTY_PATH && k.mem.readCString(a.u64(1), 1) === '') {
      const h2 = hostFileOf(k, a.i32(0));
      if (!h2) return null;
      if (h2.file.mount.readonly) return -E.EROFS;
      return hostResult(h.fchownat(h2.file.fd, '', hostId(a.i32(2), process.getuid?.() ?? 0), hostId(a.i32(3), process.getgid?.() ?? 0), AT_EMPTY_PATH));
    }
    return onName(k, a.i32(0), a.u64(1), !(flags & AT_SYMLINK_NOFOLLOW), (loc) => chownLoc(loc, a.i32(2), a.i32(3)));
  },
  fchown: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    if (!h2) return null;
    if (h2.file.mount.readonly) return -E.EROFS;
    return hostResult(h.fchownat(h2.file.fd, '', hostId(a.i32(1), process.getuid?.() ?? 0), hostId(a.i32(2), process.getgid?.() ?? 0), AT_EMPTY_PATH));
  },
  utimensat: utimensHost,
  truncate: (k, a) => truncateHost(k, a.u64(0), a.i64(1)),
  ftruncate: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    if (!h2) return null;
    if (!h2.f.writable || h2.file.isDir) return -E.EINVAL;
    if (h2.file.mount.readonly) return -E.EROFS;
    if (a.i64(1) < 0) return -E.EINVAL;
    return hostResult(libc.ftruncate(h2.file.fd, a.i64(1)));
  },
  fallocate: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    if (!h2) return null;
    if (!h2.f.writable) return -E.EBADF;
    if (h2.file.mount.readonly) return -E.EROFS;
    if (a.i64(2) < 0 || a.i64(3) <= 0) return -E.EINVAL;
    return hostResult(libc.fallocate(h2.file.fd, a.i32(1), a.i64(2), a.i64(3)));
  },
  fsync: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    return h2 ? (h2.f.flags & O_PATH ? -E.EBADF : hostResult(libc.fsync(h2.file.fd))) : null;
  },
  fdatasync: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    return h2 ? (h2.f.flags & O_PATH ? -E.EBADF : hostResult(h.fdatasync(h2.file.fd))) : null;
  },
  chdir: (k, a) => {
    const path = pathArg(k, a.u64(0));
    if (typeof path === 'number') return null;
    const hit = locate(k, AT_FDCWD, path, true);
    if (hit === null || typeof hit === 'number') return hit;
    if ('outside' in hit) throw new Redirect(new Map([[a.u64(0), hit.outside]]));
    return at(hit.loc, (loc) => chdirHost(k, loc));
  },
  fchdir: (k, a) => {
    const h2 = hostFileOf(k, a.i32(0));
    if (!h2) return null;
    if (!h2.file.isDir) return -E.ENOTDIR;
    k.cwd = { ino: null, path: h2.file.name };
    return 0;
  },
  mknod: (k, a) => mknodHost(k, AT_FDCWD, a.u64(0), a.u32(1)),
  mknodat: (k, a) => mknodHost(k, a.i32(0), a.u64(1), a.u32(2)),
  execve: (k, a) => {
    const path = pathArg(k, a.u64(0));
    if (typeof path !== 'string') return null;
    const hit = locate(k, AT_FDCWD, path, true);
    if (typeof hit === 'number') return hit;
    if (hit && 'loc' in hit) {
      done(hit.loc);
      return -E.EACCES; // programs are not run from host mounts (as noexec)
    }
    writeBack(k, 0, Number.MAX_SAFE_INTEGER, false); // the address space may go: shared maps reach their files
    return null;
  },
  exit_group: (k) => {
    writeBack(k, 0, Number.MAX_SAFE_INTEGER, false);
    return null;
  },
  sendfile: sendfileHost,
  copy_file_range: copyFileRangeHost,
  mmap: (k, a) => {
    if (a.i32(3) & 0x20) return null; // MAP_ANONYMOUS
    const h2 = hostFileOf(k, a.i32(4));
    return h2 ? mmapHost(k, a, h2.f, h2.file) : null;
  },
  munmap: (k, a) => {
    if (a.u64(0) % 4096 === 0 && Number.isSafeInteger(a.u64(1))) writeBack(k, a.u64(0), Math.ceil(a.u64(1) / 4096) * 4096, true);
    return null;
  },
  msync: (k, a) => {
    if (a.u64(0) % 4096 === 0 && Number.isSafeInteger(a.u64(1))) writeBack(k, a.u64(0), Math.ceil(a.u64(1) / 4096) * 4096, false);
    return null;
  },
  // Regular files cannot be watched by epoll (EPERM), as on Linux.
  epoll_ctl: (k, a) => (hostFileOf(k, a.i32(2)) ? -E.EPERM : null),
  // Extended attributes of a mount's files: not supported (as a file system without them).
  getxattr: (k, a) => xattrNone(k, a.u64(0), true),
  lgetxattr: (k, a) => xattrNone(k, a.u64(0), false),
  listxattr: (k, a) => xattrNone(k, a.u64(0), true),
  llistxattr: (k, a) => xattrNone(k, a.u64(0), false),
  setxattr: (k, a) => xattrNone(k, a.u64(0), true),
  lsetxattr: (k, a) => xattrNone(k, a.u64(0), false),
  removexattr: (k, a) => xattrNone(k, a.u64(0), true),
  lremovexattr: (k, a) => xattrNone(k, a.u64(0), false),
  fgetxattr: (k, a) => (hostFileOf(k, a.i32(0)) ? -E.EOPNOTSUPP : null),
  flistxattr: (k, a) => (hostFileOf(k, a.i32(0)) ? -E.EOPNOTSUPP : null),
  fsetxattr: (k, a) => (hostFileOf(k, a.i32(0)) ? -E.EOPNOTSUPP : null),
  fremovexattr: (k, a) => (hostFileOf(k, a.i32(0)) ? -E.EOPNOTSUPP : null),
};

function xattrNone(k: Kernel, pathAddr: number, follow: boolean): number | null {
  return onName(k, AT_FDCWD, pathAddr, follow, (loc) => {
    const st = lstatAt(loc.dir, loc.name);
    return typeof st === 'number' ? st : -E.EOPNOTSUPP;
  });
}

function mknodHost(k: Kernel, dirfd: number, pathAddr: number, mode: number): number | null {
  return onName(k, dirfd, pathAddr, false, (loc) => {
    const type = mode & S_IFMT;
    if (type !== 0 && type !== S_IFREG) return type === S_IFIFO || type === 0o140000 ? -E.EPERM : -E.EPERM;
    if (typeof lstatAt(loc.dir, loc.name) !== 'number') return -E.EEXIST;
    const c = changeable(loc);
    if (c < 0) return c;
    const fd = h.openat(loc.dir, loc.name, O_WRONLY | O_CREAT | O_EXCL | HO_NOFOLLOW | HO_CLOEXEC, 0o600);
    if (fd < 0) return -libc.errno();
    h.fchmod(fd, hostMode(mode & ~k.umask, false));
    libc.close(fd);
    return 0;
  });
}

/** Pass a syscall table through the mount hooks (kernel.ts does this for every table). */
export function mountHooks(table: SyscallTable): SyscallTable {
  const out: Record<string, SyscallHandler> = {};
  for (const [name, handler] of Object.entries(table)) {
    const mine = handlers[name];
    out[name] = mine ? hook(handler, mine) : handler;
  }
  return out;
}
