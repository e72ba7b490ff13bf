/**
 * File-system system calls. Until a disk image is attached the program's only files are its standard
 * streams, the devices in /dev, and the pipes it makes; other paths do not exist (ENOENT).
 */
import { E } from '../../abi/errno.js';
import { Device, isDevice } from '../files/devices.js';
import { O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NONBLOCK, O_RDONLY, OpenFile } from '../files/file.js';
import { makePipe } from '../files/pipe.js';
import type { Kernel } from '../kernel.js';
import type { SyscallResult, SyscallTable } from '../types.js';

const AT_FDCWD = -100;
const PATH_MAX = 4096;

/** Normalize an absolute or cwd-relative path lexically ("." and ".." on names, as /dev has no links). */
export function normalizePath(path: string, cwd = '/'): string {
  const parts: string[] = [];
  for (const p of (path.startsWith('/') ? path : `${cwd}/${path}`).split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') parts.pop();
    else parts.push(p);
  }
  return `/${parts.join('/')}`;
}

function openPath(k: Kernel, dirfd: number, pathAddr: number, flags: number, _mode: number): SyscallResult {
  const path = k.mem.readCString(pathAddr, PATH_MAX);
  if (path === null) return -E.ENAMETOOLONG;
  if (path === '') return -E.ENOENT;
  if (!path.startsWith('/') && dirfd !== AT_FDCWD && !k.fds.get(dirfd)) return -E.EBADF;
  const abs = normalizePath(path);
  const m = /^\/dev\/([a-z]+)$/.exec(abs);
  if (m && isDevice(m[1]!)) {
    if (flags & O_DIRECTORY) return -E.ENOTDIR;
    const file = new OpenFile(new Device(m[1], k.mem), flags & ~(O_CREAT | O_CLOEXEC));
    return k.fds.install(file, (flags & O_CLOEXEC) !== 0);
  }
  if (abs === '/dev' || abs === '/') return flags & O_CREAT ? -E.EISDIR : -E.ENOENT;
  return flags & O_CREAT ? -E.EROFS : -E.ENOENT;
}

function pipe2(k: Kernel, addr: number, flags: number): SyscallResult {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | 0o40000 /* O_DIRECT */)) return -E.EINVAL;
  k.mem.writable(addr, 8); // check before creating anything
  const [r, w] = makePipe(k.mem, k.stop);
  const status = flags & O_NONBLOCK;
  const rfd = k.fds.install(new OpenFile(r, O_RDONLY | status), (flags & O_CLOEXEC) !== 0);
  if (rfd < 0) return rfd;
  const wfd = k.fds.install(new OpenFile(w, 1 | status), (flags & O_CLOEXEC) !== 0);
  if (wfd < 0) {
    k.fds.close(rfd);
    return wfd;
  }
  k.mem.writeU32(addr, rfd);
  k.mem.writeU32(addr + 4, wfd);
  return 0;
}

export const fsSyscalls: SyscallTable = {
  open: (k, a) => openPath(k, AT_FDCWD, a.u64(0), a.i32(1), a.u32(2)),
  openat: (k, a) => openPath(k, a.i32(0), a.u64(1), a.i32(2), a.u32(3)),
  pipe: (k, a) => pipe2(k, a.u64(0), 0),
  pipe2: (k, a) => pipe2(k, a.u64(0), a.i32(1)),
};
