/** The character devices every program expects: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom. */
import { E } from '../../abi/errno.js';
import { S_IFCHR, type StatInfo } from '../../abi/stat.js';
import * as libc from '../../host/libc.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { FileOps } from './file.js';
import { POLLIN, POLLOUT } from './file.js';

type DeviceName = 'null' | 'zero' | 'full' | 'random' | 'urandom';
const RDEV: Record<DeviceName, number> = { null: 0x103, zero: 0x105, full: 0x107, random: 0x108, urandom: 0x109 };

export function isDevice(name: string): name is DeviceName {
  return Object.hasOwn(RDEV, name);
}

const DEV_LINKS: Record<string, string> = { fd: '/proc/self/fd', stdin: '/proc/self/fd/0', stdout: '/proc/self/fd/1', stderr: '/proc/self/fd/2' };

/**
 * The links udev and container runtimes make in /dev: fd -> /proc/self/fd (bash's process
 * substitution opens /dev/fd/63), stdin, stdout and stderr -> /proc/self/fd/0..2. Given an absolute
 * normalised path, the path with such a link followed (always when it is not the last component; when
 * it is, only if `followFinal`), else null. (Not listed by readdir of /dev; an lstat of the link itself
 * finds nothing.)
 */
export function devLink(abs: string, followFinal: boolean): string | null {
  const m = /^\/dev\/(fd|stdin|stdout|stderr)(\/.*)?$/.exec(abs);
  if (!m || (!m[2] && !followFinal)) return null;
  return DEV_LINKS[m[1]!]! + (m[2] ?? '');
}

export class Device implements FileOps {
  readonly kind = 'device';
  readonly name: string;
  constructor(private readonly dev: DeviceName, private readonly mem: GuestMemory) {
    this.name = `/dev/${dev}`;
  }
  read(_f: unknown, addr: number, length: number): number {
    if (length === 0) return 0;
    switch (this.dev) {
      case 'null':
        return 0;
      case 'zero':
      case 'full':
        this.mem.writable(addr, length).fill(0);
        return length;
      default: {
        const n = Math.min(length, 33554431);
        const r = libc.getrandom(this.mem.hostPtr(addr, n, libc.PROT_WRITE), n, 0);
        return r < 0 ? -libc.errno() : r;
      }
    }
  }
  write(_f: unknown, addr: number, length: number): number {
    this.mem.read(addr, Math.min(length, 1)); // EFAULT check, as Linux copies nothing from /dev/null
    return this.dev === 'full' ? -E.ENOSPC : length;
  }
  pollEvents(): number {
    return POLLIN | POLLOUT;
  }
  stat(): StatInfo {
    return {
      dev: 0x05, ino: RDEV[this.dev], nlink: 1, mode: S_IFCHR | 0o666, uid: 0, gid: 0, rdev: RDEV[this.dev], size: 0,
      blksize: 4096, blocks: 0, atime: [0, 0], mtime: [0, 0], ctime: [0, 0],
    };
  }
}
