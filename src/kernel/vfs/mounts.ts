/**
 * Host directories and files mounted into the sandbox (bind mounts: `--mount HOST:TARGET[:ro]`,
 * SandboxOptions.mounts). The kernel serves them from the host as files it reads and writes itself
 * (not copied into the image), so the host and the program see the same files.
 *
 * Resolution. A path is made absolute against the working directory (or dirfd) and normalized
 * lexically (`.`, `..`, repeated slashes), as the kernel does for /dev and /proc; the mount whose
 * target is the longest prefix of it serves it, before the image is consulted, so a mount point need
 * not exist in the image (in a writable image a missing one is created when the sandbox starts, so
 * that `ls` of its parent lists it: createMountPoints). A path of the image that leads into a mount
 * through the image's own links is found by src/kernel/sys/hostmount.ts (viaImage); /proc/self/cwd,
 * /proc/self/root and /proc/PID/fd/N paths likewise. Inside a mount the rest of the path is walked on
 * the host one component at a time from the
 * mount's root fd (an O_PATH fd opened when the sandbox starts): each step is
 * `fstatat(dir, NAME, AT_SYMLINK_NOFOLLOW)` and `openat(dir, NAME, O_PATH|O_NOFOLLOW|O_DIRECTORY)`,
 * where NAME is one component (never "", "." or "..", never with a "/"). A symbolic link found on the
 * way (or last, when followed) is read with readlinkat and its target is resolved again in the
 * sandbox's namespace (an absolute target from the sandbox's root, a relative one from the link's
 * directory, with `..` leaving the mount lexically): it can reach the image, another mount, or a
 * place in this mount, never a host path that was not mounted. The final object is opened with
 * openat(dir, NAME, ...|O_NOFOLLOW). No host path is ever built by string concatenation, and no host
 * call ever resolves a `..` or a symbolic link: see docs/security.md.
 */
import { realpathSync, statSync } from 'node:fs';
import koffi from 'koffi';
import { E } from '../../abi/errno.js';
import { STAT, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, decodeStat, type StatInfo } from '../../abi/stat.js';
import { UsageError } from '../../errors.js';
import * as libc from '../../host/libc.js';
import { FsError } from '../../storage/ext4/errors.js';
import type { Ext4 } from '../../storage/ext4/fs.js';

const lib = koffi.load('libc.so.6');
export const h = {
  openat: lib.func('int openat(int dirfd, const char *path, int flags, int mode)') as (dirfd: number, path: string, flags: number, mode: number) => number,
  fstatat: lib.func('int fstatat(int dirfd, const char *path, void *buf, int flags)') as (dirfd: number, path: string, buf: Buffer, flags: number) => number,
  readlinkat: lib.func('intptr_t readlinkat(int dirfd, const char *path, void *buf, size_t size)') as (dirfd: number, path: string, buf: Buffer, size: number) => number,
  mkdirat: lib.func('int mkdirat(int dirfd, const char *path, int mode)') as (dirfd: number, path: string, mode: number) => number,
  unlinkat: lib.func('int unlinkat(int dirfd, const char *path, int flags)') as (dirfd: number, path: string, flags: number) => number,
  renameat2: lib.func('int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)') as (
    a: number,
    b: string,
    c: number,
    d: string,
    flags: number,
  ) => number,
  symlinkat: lib.func('int symlinkat(const void *target, int dirfd, const char *path)') as (target: Buffer, dirfd: number, path: string) => number,
  linkat: lib.func('int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)') as (
    a: number,
    b: string,
    c: number,
    d: string,
    flags: number,
  ) => number,
  fchmod: lib.func('int fchmod(int fd, int mode)') as (fd: number, mode: number) => number,
  fchownat: lib.func('int fchownat(int dirfd, const char *path, int uid, int gid, int flags)') as (dirfd: number, path: string, uid: number, gid: number, flags: number) => number,
  utimensat: lib.func('int utimensat(int dirfd, const char *path, void *times, int flags)') as (dirfd: number, path: string, times: Buffer | null, flags: number) => number,
  fstatfs: lib.func('int fstatfs(int fd, void *buf)') as (fd: number, buf: Buffer) => number,
  getdents64: lib.func('intptr_t getdents64(int fd, uintptr_t buf, size_t count)') as (fd: number, buf: number, count: number) => number,
  fdatasync: lib.func('int fdatasync(int fd)') as (fd: number) => number,
};

/**
 * Backing ids of the address space's file mappings of host-mount files (kvm: the host file mapped
 * straight into the guest window) start here; anonymous memory and the image use small ids.
 */
export const HOST_BACKING_BASE = 0x40000000;

export const HO_PATH = 0o10000000;
export const HO_DIRECTORY = 0o200000;
export const HO_NOFOLLOW = 0o400000;
export const HO_CLOEXEC = 0o2000000;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_EMPTY_PATH = 0x1000;
export const AT_REMOVEDIR = 0x200;
const MAX_LINKS = 40;

/** What the program asks for: a host directory or file at `target`, read-write unless `readonly`. */
export interface MountSpec {
  host: string;
  target: string;
  readonly?: boolean;
}

/** Parse `HOST:TARGET[:ro|:rw]` (the CLI's --mount). */
export function parseMountSpec(text: string): MountSpec {
  const m = /^(.+?):(\/[^:]*)(?::(ro|rw))?$/.exec(text);
  if (!m) {
    if (/^[^:]*$/.test(text)) throw new UsageError(`--mount ${text} names no target`, 'give --mount HOST:TARGET[:ro] with an absolute TARGET');
    throw new UsageError(`--mount ${text}: the target must be an absolute path inside the sandbox`, 'give --mount HOST:TARGET[:ro], e.g. --mount ./data:/data');
  }
  return { host: m[1]!, target: m[2]!, readonly: m[3] === 'ro' };
}

/** Normalize an absolute path lexically. */
function normalize(path: string): string {
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return `/${parts.join('/')}`;
}

/** struct stat of a host object (a 144-byte buffer) as the program sees it. */
export function hostStatInfo(b: Buffer): StatInfo {
  const s = decodeStat(b);
  // The host user who runs mapvisor is the program's root (as a rootless container maps it); the
  // host's root is nobody.
  const mapId = (id: number, own: number): number => (id === own ? 0 : id === 0 ? 65534 : id);
  return {
    ...s,
    // A host device number equal to the image's (0x801, "sda1") is told apart from it.
    dev: s.dev === 0x801 ? s.dev ^ (1 << 20) : s.dev,
    uid: mapId(s.uid, process.getuid?.() ?? 0),
    gid: mapId(s.gid, process.getgid?.() ?? 0),
  };
}

/** fstatat(dir, name, AT_SYMLINK_NOFOLLOW) (name '': the fd itself): the stat buffer, or -errno. */
export function lstatAt(dir: number, name: string): Buffer | number {
  const b = Buffer.alloc(144);
  const r = h.fstatat(dir, name, b, AT_SYMLINK_NOFOLLOW | (name === '' ? AT_EMPTY_PATH : 0));
  return r === 0 ? b : -libc.errno();
}

export function modeOf(b: Buffer): number {
  return b.readUInt32LE(STAT.mode);
}

/** readlinkat(dir, name): the link's bytes, or -errno. */
export function readlinkAt(dir: number, name: string): Buffer | number {
  const b = Buffer.alloc(4097);
  const n = h.readlinkat(dir, name, b, b.length);
  if (n < 0) return -libc.errno();
  if (n >= 4097) return -E.ENAMETOOLONG;
  return b.subarray(0, n);
}

export class Mount {
  readonly host: string;
  readonly target: string;
  readonly readonly: boolean;
  /** O_PATH fd of the mounted directory or file. */
  readonly rootFd: number;
  readonly isDir: boolean;
  /** The host's device number of the mounted object (st_dev), for mountinfo. */
  readonly dev: number;
  readonly id: number;
  /** Host fds kept for the mount's mapped files (see HOST_BACKING_BASE), closed with the table. */
  readonly heldFds: number[] = [];

  constructor(spec: MountSpec, id: number) {
    let real: string;
    try {
      real = realpathSync(spec.host);
    } catch {
      throw new UsageError(`the host path ${spec.host} of --mount does not exist`, 'create it first, or fix the path');
    }
    const st = statSync(real);
    if (!st.isDirectory() && !st.isFile()) throw new UsageError(`the host path ${spec.host} of --mount is neither a directory nor a regular file`, 'mount a directory or a regular file');
    const fd = libc.open(real, HO_PATH | HO_CLOEXEC | (st.isDirectory() ? HO_DIRECTORY : 0), 0);
    if (fd < 0) throw new UsageError(`cannot open the host path ${spec.host} of --mount (errno ${libc.errno()})`, 'check its permissions');
    this.host = real;
    this.target = normalize(spec.target);
    this.readonly = spec.readonly ?? false;
    this.rootFd = fd;
    this.isDir = st.isDirectory();
    this.dev = Number(st.dev);
    this.id = id;
  }
}

/**
 * Where a path inside a mount is: the O_PATH fd of its parent directory on the host and its last
 * component (`name` '' for the mount's root itself: then `dir` is the root fd). `ownsDir`: the caller
 * closes `dir` (with done()).
 */
export interface HostLoc {
  kind: 'host';
  mount: Mount;
  dir: number;
  name: string;
  /** The path as the sandbox names it (after following links). */
  path: string;
  ownsDir: boolean;
}

/** A path that (after following a link inside a mount) leads out of every mount: resolve it in the image. */
export interface Outside {
  kind: 'outside';
  path: string;
}

export function done(loc: HostLoc): void {
  if (loc.ownsDir) libc.close(loc.dir);
  loc.ownsDir = false;
}

/**
 * The most files of a sandbox's mounts open at once (host fds of the VMM's process, which every
 * sandbox of that process shares): past it, opens answer ENFILE.
 */
export const MAX_OPEN_HOST_FILES = 8192;

export class MountTable {
  readonly mounts: Mount[] = [];
  /** Files of the mounts open now (HostFile descriptions). */
  openFiles = 0;

  /** Open every host path now (one-line errors for a missing host path, a relative or duplicate target). */
  static open(specs: readonly MountSpec[]): MountTable {
    const t = new MountTable();
    try {
      for (const s of specs) {
        if (typeof s.host !== 'string' || s.host === '') throw new UsageError('a mount names no host path', 'give --mount HOST:TARGET[:ro]');
        if (typeof s.target !== 'string' || !s.target.startsWith('/')) {
          throw new UsageError(`the mount target ${JSON.stringify(s.target)} is not an absolute path`, 'give an absolute path inside the sandbox, e.g. /data');
        }
        const target = normalize(s.target);
        if (target === '/') throw new UsageError('a host directory cannot be mounted over the sandbox root /', 'mount it at a directory such as /data');
        if (/^\/(proc|sys|dev)(\/|$)/.test(target)) {
          throw new UsageError(`the mount target ${target} is in /proc, /sys or /dev, which the kernel serves itself`, 'mount it somewhere else');
        }
        if (t.mounts.some((m) => m.target === target)) throw new UsageError(`${target} is mounted twice`, 'give each mount its own target');
        t.mounts.push(new Mount({ ...s, target }, t.mounts.length + 1));
      }
    } catch (e) {
      t.close();
      throw e;
    }
    return t;
  }

  get size(): number {
    return this.mounts.length;
  }

  /** The mount serving absolute normalized path `abs` (the longest target that is a prefix of it). */
  find(abs: string): Mount | null {
    let best: Mount | null = null;
    for (const m of this.mounts) {
      if ((abs === m.target || abs.startsWith(`${m.target}/`)) && (!best || m.target.length > best.target.length)) best = m;
    }
    return best;
  }

  /** Is `abs` a mount point (or above one: a parent of a target)? */
  isMountPoint(abs: string): boolean {
    return this.mounts.some((m) => m.target === abs);
  }

  /**
   * Walk absolute normalized path `abs`: where it is on the host (see HostLoc), where it leads out of
   * the mounts, or -errno. `follow`: a final symbolic link is followed.
   */
  walk(abs: string, follow: boolean): HostLoc | Outside | number {
    let links = 0;
    outer: for (;;) {
      const m = this.find(abs);
      if (!m) return { kind: 'outside', path: abs };
      const comps = abs === m.target ? [] : abs.slice(m.target.length + 1).split('/');
      if (comps.length === 0) return { kind: 'host', mount: m, dir: m.rootFd, name: '', path: abs, ownsDir: false };
      if (!m.isDir) return -E.ENOTDIR;
      let dir = m.rootFd;
      let owns = false;
      const release = (): void => {
        if (owns) libc.close(dir);
      };
      for (let i = 0; i < comps.length; i++) {
        const c = comps[i]!;
        if (Buffer.byteLength(c) > 255) {
          release();
          return -E.ENAMETOOLONG;
        }
        const last = i === comps.length - 1;
        const st = lstatAt(dir, c);
        if (typeof st === 'number') {
          if (last && st === -E.ENOENT) return { kind: 'host', mount: m, dir, name: c, path: abs, ownsDir: owns };
          release();
          return st;
        }
        const type = modeOf(st) & S_IFMT;
        if (type === S_IFLNK && (!last || follow)) {
          const t = readlinkAt(dir, c);
          release();
          if (typeof t === 'number') return t;
          if (++links > MAX_LINKS) return -E.ELOOP;
          if (t.length === 0) return -E.ENOENT;
          const text = t.toString('utf8');
          const here = `${m.target}/${comps.slice(0, i).join('/')}`;
          const rest = comps.slice(i + 1).join('/');
          abs = normalize(`${text.startsWith('/') ? text : `${here}/${text}`}/${rest}`);
          continue outer;
        }
        if (last) return { kind: 'host', mount: m, dir, name: c, path: abs, ownsDir: owns };
        if (type !== S_IFDIR) {
          release();
          return -E.ENOTDIR;
        }
        const next = h.openat(dir, c, HO_PATH | HO_DIRECTORY | HO_NOFOLLOW | HO_CLOEXEC, 0);
        const err = next < 0 ? -libc.errno() : 0;
        release();
        if (next < 0) return err === -E.ELOOP ? -E.ENOENT : err; // (replaced under us by a link)
        dir = next;
        owns = true;
      }
      return -E.ENOENT; // not reached
    }
  }

  /**
   * Create missing mount points in a writable image (directories 0755 for directory mounts, an empty
   * 0644 file for file mounts, parents as directories), as a container engine creates them in the
   * container's layer, so that `ls` of the parent lists them. Mounts are served before the image
   * whether or not their point exists in it; a point that cannot be made (a read-only image, a file
   * where a directory should be) is left as it is.
   */
  createMountPoints(fs: Ext4): void {
    if (fs.readOnly) return;
    for (const m of this.mounts) {
      const parts = m.target.split('/').filter(Boolean);
      let dir = fs.rootIno;
      try {
        for (let i = 0; i < parts.length; i++) {
          const last = i === parts.length - 1;
          let ino: number | null = null;
          try {
            ino = fs.resolve(parts[i]!, { cwdIno: dir, followFinal: true });
          } catch (e) {
            if (!(e instanceof FsError) || e.errno !== E.ENOENT) throw e;
          }
          if (ino === null) {
            ino = last && !m.isDir ? fs.create(dir, parts[i]!, S_IFREG | 0o644, { uid: 0, gid: 0 }) : fs.mkdir(dir, parts[i]!, 0o755, { uid: 0, gid: 0 });
          }
          dir = ino;
        }
      } catch (e) {
        if (!(e instanceof FsError)) throw e;
      }
    }
  }

  /** Lines of /proc/self/mounts (`source target type options 0 0`) for the mounts. */
  mountsLines(): string[] {
    return this.mounts.map((m) => `${m.host.replace(/ /g, '\\040')} ${m.target.replace(/ /g, '\\040')} hostfs ${m.readonly ? 'ro' : 'rw'},relatime 0 0`);
  }

  /**
   * Lines of /proc/self/mountinfo for the mounts: ids from 100 on, under the root mount `parentId`,
   * each with the host's device number of the mounted object.
   */
  mountinfoLines(parentId = 1): string[] {
    return this.mounts.map((m) => {
      const major = Number((BigInt(m.dev) >> 8n) & 0xfffn);
      const minor = (m.dev & 0xff) | ((m.dev >> 12) & 0xfff00);
      const esc = (s: string): string => s.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\n/g, '\\012');
      return `${99 + m.id} ${parentId} ${major}:${minor} ${esc(m.host)} ${esc(m.target)} ${m.readonly ? 'ro' : 'rw'},relatime - hostfs ${esc(m.host)} ${m.readonly ? 'ro' : 'rw'}`;
    });
  }

  close(): void {
    for (const m of this.mounts) {
      libc.close(m.rootFd);
      for (const fd of m.heldFds.splice(0)) libc.close(fd);
    }
    this.mounts.length = 0;
  }
}

/**
 * The mount table of a sandbox, found from any of its processes (every process of a sandbox shares
 * one network object, so that is the key; no field of the kernel is needed).
 */
const tables = new WeakMap<object, MountTable>();

export function setMountTable(sandboxKey: object, t: MountTable): void {
  tables.set(sandboxKey, t);
}

export function mountTableOf(k: { net: object }): MountTable | null {
  const t = tables.get(k.net);
  return t && t.size > 0 ? t : null;
}

/** For /proc/self/mounts: the mounts' lines (none without mounts). */
export function procMountsLines(k: { net: object }): string[] {
  return mountTableOf(k)?.mountsLines() ?? [];
}

/** For /proc/self/mountinfo: the mounts' lines under root mount id `parentId`. */
export function procMountinfoLines(k: { net: object }, parentId = 1): string[] {
  return mountTableOf(k)?.mountinfoLines(parentId) ?? [];
}

export { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG };
