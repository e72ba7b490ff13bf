/**
 * The first process's identity when a caller sets one (the OCI runtime: config.json's process.user,
 * cwd, rlimits and hostname): applied to the kernel of a new program before its first instruction.
 */
import type { Kernel } from '../kernel/kernel.js';
import { resolve } from '../kernel/sys/fs.js';
import { capsSetuid } from '../kernel/sys/caps.js';
import { UNAME } from '../kernel/sys/process.js';
import { MapvisorError } from '../errors.js';

export interface StartIdentity {
  uid?: number;
  gid?: number;
  /** Supplementary groups. */
  groups?: number[];
  /** The working directory (an absolute path in the image). */
  cwd?: string;
  /** uname's nodename and /proc/sys/kernel/hostname. */
  hostname?: string;
  /** [resource number, soft, hard]; Infinity is RLIM_INFINITY. */
  rlimits?: Array<[number, number, number]>;
}

const AT_FDCWD = -100;

export function applyIdentity(k: Kernel, id: StartIdentity): void {
  if (id.hostname !== undefined) (UNAME as { nodename: string }).nodename = id.hostname; // this worker's kernel only
  for (const [res, soft, hard] of id.rlimits ?? []) k.rlimits.set(res, [soft, hard]);
  if (id.cwd !== undefined && id.cwd !== '/') {
    const t = k.root ? resolve(k, AT_FDCWD, id.cwd, true) : -2;
    if (typeof t === 'number' || t.kind !== 'inode' || (k.root!.fs.stat(t.ino).mode & 0o170000) !== 0o040000) {
      throw new MapvisorError('ECWD', `the working directory ${id.cwd} is not a directory in the image`, 'create it in the image, or give another working directory');
    }
    k.cwd = { ino: t.ino, path: t.path };
  }
  if (id.groups !== undefined) k.groups = [...id.groups];
  if (id.gid !== undefined) k.identity.gid = id.gid;
  if (id.uid !== undefined) {
    const old = k.identity.uid;
    k.identity.uid = id.uid;
    capsSetuid(k, old);
  }
}
