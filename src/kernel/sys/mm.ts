/** Memory-management system calls: mmap, munmap, mprotect, mremap, madvise, brk. */
import { E } from '../../abi/errno.js';
import * as libc from '../../kvm/libc.js';
import { PAGE_SIZE } from '../../vm/layout.js';
import { pageUp } from '../../mm/space.js';
import type { SyscallTable } from '../types.js';

const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_SHARED_VALIDATE = 0x03;
const MAP_TYPE = 0x0f;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_FIXED_NOREPLACE = 0x100000;
/** Flags mapvisor understands (MAP_SHARED_VALIDATE rejects others). */
const MAP_KNOWN =
  MAP_TYPE | MAP_FIXED | MAP_ANONYMOUS | 0x100 /* GROWSDOWN */ | 0x800 /* DENYWRITE */ | 0x1000 /* EXECUTABLE */ |
  0x2000 /* LOCKED */ | 0x4000 /* NORESERVE */ | 0x8000 /* POPULATE */ | 0x10000 /* NONBLOCK */ | 0x20000 /* STACK */ |
  0x40000 /* HUGETLB */ | 0x80000 /* SYNC */ | MAP_FIXED_NOREPLACE;

const PROT_GROWSDOWN = 0x01000000;
const PROT_GROWSUP = 0x02000000;

const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
const MREMAP_DONTUNMAP = 4;

const MADV_DONTNEED = 4;
const MADV_FREE = 8;
const MADV_REMOVE = 9;
const MADV_KNOWN = new Set([0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 100, 101]);

export const mmSyscalls: SyscallTable = {
  mmap: (k, a) => {
    const addr = a.u64(0);
    const rawLen = a.u64(1);
    const prot = a.i32(2);
    const flags = a.i32(3);
    const fd = a.i32(4);
    const offset = a.u64(5);
    const type = flags & MAP_TYPE;
    if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE) return -E.EINVAL;
    if (type === MAP_SHARED_VALIDATE && flags & ~MAP_KNOWN) return -E.EOPNOTSUPP;
    if (rawLen === 0) return -E.EINVAL;
    if (!Number.isSafeInteger(rawLen) || rawLen > k.space.layout.size) return -E.ENOMEM;
    if (offset % PAGE_SIZE) return -E.EINVAL;
    if (prot & ~(libc.PROT_READ | libc.PROT_WRITE | libc.PROT_EXEC)) return -E.EINVAL;
    const length = pageUp(rawLen);
    if (!(flags & MAP_ANONYMOUS)) {
      const f = k.fds.get(fd);
      if (!f) return -E.EBADF;
      return -E.ENODEV; // no mappable files until the program has a disk image
    }
    return k.space.map({
      addr,
      length,
      prot,
      shared: type !== MAP_PRIVATE,
      fixed: (flags & MAP_FIXED) !== 0,
      noReplace: (flags & MAP_FIXED_NOREPLACE) !== 0,
      tag: flags & 0x20000 ? 'stack' : 'mmap',
    });
  },
  munmap: (k, a) => {
    const len = a.u64(1);
    if (!Number.isSafeInteger(len) || len > k.space.layout.size) return -E.EINVAL;
    return k.space.unmap(a.u64(0), len);
  },
  mprotect: (k, a) => {
    const prot = a.i32(2);
    if (prot & ~(libc.PROT_READ | libc.PROT_WRITE | libc.PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) return -E.EINVAL;
    const len = a.u64(1);
    if (!Number.isSafeInteger(len) || len > k.space.layout.size) return -E.ENOMEM;
    return k.space.protect(a.u64(0), len, prot & 7);
  },
  mremap: (k, a) => {
    const flags = a.i32(3);
    if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return -E.EINVAL;
    if (flags & MREMAP_DONTUNMAP) return -E.EINVAL; // not supported: would need the page-fault path
    if (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE)) return -E.EINVAL;
    const oldSize = a.u64(1);
    const newSize = a.u64(2);
    if (!Number.isSafeInteger(newSize) || newSize > k.space.layout.size) return -E.ENOMEM;
    if (!Number.isSafeInteger(oldSize)) return -E.EINVAL;
    return k.space.remap(a.u64(0), oldSize, newSize, (flags & MREMAP_MAYMOVE) !== 0, flags & MREMAP_FIXED ? a.u64(4) : null);
  },
  madvise: (k, a) => {
    const addr = a.u64(0);
    const len = pageUp(a.u64(1));
    const advice = a.i32(2);
    if (addr % PAGE_SIZE || !MADV_KNOWN.has(advice)) return -E.EINVAL;
    if (len === 0) return 0;
    if (!k.space.inUserSpace(addr, len)) return -E.ENOMEM;
    if (advice === MADV_DONTNEED || advice === MADV_FREE || advice === MADV_REMOVE) {
      // Private anonymous pages read as zeros afterwards: punch them out of the backing file.
      return k.space.discard(addr, len);
    }
    return 0;
  },
  brk: (k, a) => k.space.brk(a.u64(0)),
};
