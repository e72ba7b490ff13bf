/**
 * System V shared memory for one process (fio keeps its job table in a segment even with --thread):
 * a segment is an extent of the VM's anonymous-memory file; shmat maps it MAP_SHARED like any mapping.
 */
import { E } from '../../abi/errno.js';
import { PROT_READ, PROT_WRITE } from '../../host/libc.js';
import { pageUp } from '../../mm/space.js';
import { PAGE_SIZE } from '../../platform/layout.js';
import type { Kernel } from '../kernel.js';
import type { SyscallTable } from '../types.js';

const IPC_PRIVATE = 0;
const IPC_CREAT = 0o1000;
const IPC_EXCL = 0o2000;
const IPC_RMID = 0;
const IPC_SET = 1;
const IPC_STAT = 2;
const SHM_RDONLY = 0o10000;
const SHM_RND = 0o20000;
const SHMMAX = 2 ** 40;
const SHMID_DS_SIZE = 112;

interface Segment {
  id: number;
  key: number;
  size: number;
  offset: number; // in the anonymous-memory file
  mode: number;
  attaches: Map<number, number>; // address -> length
  removed: boolean;
}

/** The segments of a kernel (one table per program). */
const tables = new WeakMap<Kernel, { byId: Map<number, Segment>; next: number }>();
function table(k: Kernel): { byId: Map<number, Segment>; next: number } {
  let t = tables.get(k);
  if (!t) tables.set(k, (t = { byId: new Map(), next: 1 }));
  return t;
}

/** How many System V segments the program has (a checkpoint cannot hold them yet). */
export function shmSegmentCount(k: Kernel): number {
  return tables.get(k)?.byId.size ?? 0;
}

export const shmSyscalls: SyscallTable = {
  shmget: (k, a) => {
    const key = a.i32(0);
    const size = a.u64(1);
    const flags = a.i32(2);
    const t = table(k);
    if (key !== IPC_PRIVATE) {
      const found = [...t.byId.values()].find((s) => s.key === key && !s.removed);
      if (found) {
        if (flags & IPC_CREAT && flags & IPC_EXCL) return -E.EEXIST;
        if (size > found.size) return -E.EINVAL;
        return found.id;
      }
      if (!(flags & IPC_CREAT)) return -E.ENOENT;
    }
    if (size < 1 || size > SHMMAX) return -E.EINVAL;
    const len = pageUp(size);
    if (k.space.mappedBytes() + len > k.space.layout.memLimit) return -E.ENOMEM;
    const id = t.next++;
    t.byId.set(id, { id, key, size, offset: k.space.anon.allocate(len), mode: flags & 0o777, attaches: new Map(), removed: false });
    return id;
  },
  shmat: (k, a) => {
    const s = table(k).byId.get(a.i32(0));
    if (!s || s.removed && s.attaches.size === 0) return -E.EINVAL;
    const flags = a.i32(2);
    let addr = a.u64(1);
    if (addr % PAGE_SIZE) {
      if (!(flags & SHM_RND)) return -E.EINVAL;
      addr -= addr % PAGE_SIZE;
    }
    const len = pageUp(s.size);
    const at = k.space.mapBacking({
      addr,
      length: len,
      prot: flags & SHM_RDONLY ? PROT_READ : PROT_READ | PROT_WRITE,
      fixed: addr !== 0,
      offset: s.offset,
      tag: 'shm',
    });
    if (at < 0) return at;
    s.attaches.set(at, len);
    return at;
  },
  shmdt: (k, a) => {
    const addr = a.u64(0);
    for (const s of table(k).byId.values()) {
      const len = s.attaches.get(addr);
      if (len === undefined) continue;
      s.attaches.delete(addr);
      k.space.unmapKeepBacking(addr, len);
      if (s.removed && s.attaches.size === 0) {
        k.space.anon.free(s.offset, pageUp(s.size));
        table(k).byId.delete(s.id);
      }
      return 0;
    }
    return -E.EINVAL;
  },
  shmctl: (k, a) => {
    const s = table(k).byId.get(a.i32(0));
    if (!s) return -E.EINVAL;
    switch (a.i32(1) & 0xff) {
      case IPC_RMID:
        s.removed = true;
        if (s.attaches.size === 0) {
          k.space.anon.free(s.offset, pageUp(s.size));
          table(k).byId.delete(s.id);
        }
        return 0;
      case IPC_STAT: {
        const b = new Uint8Array(SHMID_DS_SIZE);
        const dv = new DataView(b.buffer);
        dv.setInt32(0, s.key, true); // shm_perm.__key
        dv.setUint32(4, k.identity.uid, true);
        dv.setUint32(8, k.identity.gid, true);
        dv.setUint32(12, k.identity.uid, true);
        dv.setUint32(16, k.identity.gid, true);
        dv.setUint16(20, s.mode, true);
        dv.setBigUint64(48, BigInt(s.size), true); // shm_segsz
        dv.setBigUint64(88, BigInt(k.identity.pid), true); // shm_cpid/lpid (two i32)
        dv.setBigUint64(96, BigInt(s.attaches.size), true); // shm_nattch
        k.mem.write(a.u64(2), b);
        return 0;
      }
      case IPC_SET:
        return 0;
      default:
        return -E.EINVAL;
    }
  },
};
