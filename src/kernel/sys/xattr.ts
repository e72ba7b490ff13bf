/**
 * Extended attributes: getxattr(2), listxattr(2) (and their l- and f- forms) read what the image's
 * inodes hold (storage/ext4/xattr.ts), as Linux's ext4 gives it. Writing attributes into the image is
 * not implemented: setxattr(2) and removexattr(2) answer EOPNOTSUPP (what Linux answers on a file
 * system that does not support the attribute), after the checks that come first on Linux (EINVAL for
 * bad flags, ERANGE for a bad name, E2BIG for a value over 64 KiB, EROFS on a read-only image, EEXIST
 * for XATTR_CREATE of an existing name, ENODATA for XATTR_REPLACE or remove of a missing one). ls -l
 * and cp -a take EOPNOTSUPP as "no ACLs here" and fall back to the mode bits.
 *
 * The kernel's own trees: /proc has no attributes (get: EOPNOTSUPP, list: empty, as procfs); /dev's
 * devices have none (get: ENODATA, as devtmpfs); pipes, sockets and the like list none and answer
 * EOPNOTSUPP. user.* names are only for regular files and directories: reading one of anything else is
 * ENODATA, writing EPERM, before the file system is asked (Linux's xattr_permission).
 */
import { E } from '../../abi/errno.js';
import { readXattrs, type Xattr } from '../../storage/ext4/xattr.js';
import { Device } from '../files/devices.js';
import { Ext4File, fsCall } from '../files/ext4file.js';
import type { OpenFile } from '../files/file.js';
import type { Kernel } from '../kernel.js';
import type { SyscallResult, SyscallTable } from '../types.js';
import { AT_FDCWD, resolve } from './fs.js';

const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
const XATTR_LIST_MAX = 65536;
const XATTR_CREATE = 1;
const XATTR_REPLACE = 2;
const PATH_MAX = 4096;

/**
 * What an xattr call is about: an inode of the image, a device, or something with no attributes
 * (a pipe, a socket, a file of /proc); `plain`: a regular file or a directory, the only kinds that may
 * carry user.* attributes (Linux's xattr_permission: ENODATA to read others', EPERM to write them).
 */
type Subject = { kind: 'inode' | 'dev' | 'none'; ino: number; plain: boolean };
const S_IFMT = 0o170000;
const isPlain = (mode: number): boolean => (mode & S_IFMT) === 0o100000 || (mode & S_IFMT) === 0o040000;

function byPath(k: Kernel, pathAddr: number, follow: boolean): Subject | number {
  const path = k.mem.readCString(pathAddr, PATH_MAX);
  if (path === null) return -E.ENAMETOOLONG;
  if (path === '') return -E.ENOENT;
  const t = resolve(k, AT_FDCWD, path, follow);
  if (typeof t === 'number') return t;
  if (t.kind === 'inode') {
    const ino = t.ino;
    let mode = 0;
    const r = fsCall(() => ((mode = k.root!.fs.stat(ino).mode), 0));
    return r < 0 ? r : { kind: 'inode', ino, plain: isPlain(mode) };
  }
  if (t.kind === 'dev') return { kind: 'dev', ino: 0, plain: false };
  if (t.kind === 'proc' && t.open) return ofFile(t.open);
  // A file or directory of /proc or /sys (as regular files and directories: user.* gets EOPNOTSUPP).
  return { kind: 'none', ino: 0, plain: true };
}

function ofFile(f: OpenFile): Subject {
  if (f.ops instanceof Ext4File) return { kind: 'inode', ino: f.ops.ino, plain: isPlain(f.ops.stat().mode) };
  if (f.ops instanceof Device) return { kind: 'dev', ino: 0, plain: false };
  return { kind: 'none', ino: 0, plain: isPlain(f.ops.stat(f).mode) };
}

function byFd(k: Kernel, fd: number): Subject | number {
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  return ofFile(f);
}

/** The attribute name argument: ERANGE when empty or longer than 255 bytes, EOPNOTSUPP for an unknown namespace. */
function nameArg(k: Kernel, addr: number): string | number {
  const b = k.mem.readCStringBytes(addr, XATTR_NAME_MAX + 1);
  if (b === null || b.length === 0) return -E.ERANGE;
  const name = new TextDecoder().decode(b);
  if (!/^(user|trusted|security|system)\./.test(name)) return -E.EOPNOTSUPP;
  return name;
}

function attrs(k: Kernel, ino: number): Xattr[] | number {
  let list: Xattr[] = [];
  const r = fsCall(() => {
    list = readXattrs(k.root!.fs, ino);
    return 0;
  });
  return r < 0 ? r : list;
}

function getxattr(k: Kernel, s: Subject | number, nameAddr: number, value: number, size: number): SyscallResult {
  if (typeof s === 'number') return s;
  const name = nameArg(k, nameAddr);
  if (typeof name === 'number') return name;
  if (name.startsWith('user.') && !s.plain) return -E.ENODATA;
  if (s.kind === 'dev') return -E.ENODATA;
  if (s.kind === 'none') return -E.EOPNOTSUPP;
  const list = attrs(k, s.ino);
  if (typeof list === 'number') return list;
  const a = list.find((x) => x.name === name);
  if (!a) return -E.ENODATA;
  if (size === 0) return a.value.length;
  if (size < a.value.length) return -E.ERANGE;
  k.mem.write(value, a.value);
  return a.value.length;
}

function listxattr(k: Kernel, s: Subject | number, list: number, size: number): SyscallResult {
  if (typeof s === 'number') return s;
  if (s.kind !== 'inode') return 0;
  const all = attrs(k, s.ino);
  if (typeof all === 'number') return all;
  const names = new TextEncoder().encode(all.map((a) => `${a.name}\0`).join(''));
  if (names.length > XATTR_LIST_MAX) return -E.E2BIG;
  if (size === 0) return names.length;
  if (size < names.length) return -E.ERANGE;
  k.mem.write(list, names);
  return names.length;
}

/** setxattr and removexattr (value === null): the checks Linux makes first, then EOPNOTSUPP. */
function change(k: Kernel, s: Subject | number, nameAddr: number, value: { size: number; flags: number } | null): SyscallResult {
  if (typeof s === 'number') return s;
  if (value && value.flags & ~(XATTR_CREATE | XATTR_REPLACE)) return -E.EINVAL;
  const name = nameArg(k, nameAddr);
  if (typeof name === 'number') return name;
  if (value && value.size > XATTR_SIZE_MAX) return -E.E2BIG;
  if (name.startsWith('user.') && !s.plain) return -E.EPERM;
  if (s.kind !== 'inode') return -E.EOPNOTSUPP;
  if (k.root!.readOnly) return -E.EROFS;
  const list = attrs(k, s.ino);
  if (typeof list === 'number') return list;
  const exists = list.some((x) => x.name === name);
  if (value && value.flags & XATTR_CREATE && exists) return -E.EEXIST;
  if (!exists && (!value || value.flags & XATTR_REPLACE)) return -E.ENODATA;
  return -E.EOPNOTSUPP;
}

export const xattrSyscalls: SyscallTable = {
  getxattr: (k, a) => getxattr(k, byPath(k, a.u64(0), true), a.u64(1), a.u64(2), a.u64(3)),
  lgetxattr: (k, a) => getxattr(k, byPath(k, a.u64(0), false), a.u64(1), a.u64(2), a.u64(3)),
  fgetxattr: (k, a) => getxattr(k, byFd(k, a.i32(0)), a.u64(1), a.u64(2), a.u64(3)),
  listxattr: (k, a) => listxattr(k, byPath(k, a.u64(0), true), a.u64(1), a.u64(2)),
  llistxattr: (k, a) => listxattr(k, byPath(k, a.u64(0), false), a.u64(1), a.u64(2)),
  flistxattr: (k, a) => listxattr(k, byFd(k, a.i32(0)), a.u64(1), a.u64(2)),
  setxattr: (k, a) => change(k, byPath(k, a.u64(0), true), a.u64(1), { size: a.u64(3), flags: a.i32(4) }),
  lsetxattr: (k, a) => change(k, byPath(k, a.u64(0), false), a.u64(1), { size: a.u64(3), flags: a.i32(4) }),
  fsetxattr: (k, a) => change(k, byFd(k, a.i32(0)), a.u64(1), { size: a.u64(3), flags: a.i32(4) }),
  removexattr: (k, a) => change(k, byPath(k, a.u64(0), true), a.u64(1), null),
  lremovexattr: (k, a) => change(k, byPath(k, a.u64(0), false), a.u64(1), null),
  fremovexattr: (k, a) => change(k, byFd(k, a.i32(0)), a.u64(1), null),
};
