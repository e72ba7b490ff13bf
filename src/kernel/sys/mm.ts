/** Memory-management system calls: mmap, munmap, mprotect, mremap, madvise, brk. */
import { E } from '../../abi/errno.js';
import * as libc from '../../host/libc.js';
import { PAGE_SIZE } from '../../platform/layout.js';
import { pageUp, type AddressSpace } from '../../mm/space.js';
import type { SyscallTable } from '../types.js';
import type { Kernel } from '../kernel.js';
import { Device } from '../files/devices.js';
import { Ext4File, fsCall } from '../files/ext4file.js';
import { holdMappedFile, sweepMappedFiles } from '../vfs/mapholds.js';
import { CACHE_BACKING_ID, CACHE_CHUNK, type SharedFileCache } from '../vfs/sharedcache.js';

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

/**
 * mmap of a file on the root file system: each block-aligned run of the file is the image's own pages,
 * one host mmap of the image per run (MAP_SHARED: the program writes the image; MAP_PRIVATE: the host
 * kernel does copy-on-write). Holes are zero pages (for MAP_SHARED, blocks are allocated first so that
 * stores reach the image); whole pages past the end of the file are left inaccessible and a touch of
 * them raises SIGBUS, as on Linux.
 */
function mapFile(
  k: Kernel,
  file: Ext4File,
  req: { addr: number; length: number; prot: number; shared: boolean; fixed: boolean; noReplace: boolean; offset: number },
): number {
  const root = k.root!;
  const fs = root.fs;
  const { length, offset } = req;
  let addr: number;
  if (req.fixed || req.noReplace) {
    if (req.addr % PAGE_SIZE) return -E.EINVAL;
    if (!k.space.inUserSpace(req.addr, length)) return -E.ENOMEM;
    if (req.noReplace && k.space.overlapBytes(req.addr, req.addr + length) > 0) return -E.EEXIST;
    addr = req.addr;
  } else {
    const at = k.space.place(req.addr - (req.addr % PAGE_SIZE), length);
    if (at === null) return -E.ENOMEM;
    addr = at;
  }
  if (k.space.mappedBytes() - k.space.overlapBytes(addr, addr + length) + length > k.space.layout.memLimit) return -E.ENOMEM;
  return fsCall(() => {
    const st = fs.stat(file.ino);
    holdMappedFile(k, file.ino);
    const filePages = Math.max(0, Math.min(length, pageUp(st.size) - offset));
    if (req.shared && req.prot & libc.PROT_WRITE && filePages > 0 && !fs.readOnly) fs.allocateRange(file.ino, offset, Math.min(filePages, st.size - offset));
    // Where the platform keeps the image read-only in the program's process (process), a writable
    // shared mapping is a copy kept in step with the file, as on the conventional path.
    const copyShared = req.shared && (req.prot & libc.PROT_WRITE) !== 0 && k.space.rules.copyWritableSharedFiles;
    const direct = root.mapsInPlace && !copyShared;
    const base = { prot: req.prot, shared: req.shared, fixed: true, noReplace: false };
    const cache = copyShared && root.mapsInPlace ? root.sharedCache : null;
    if (cache && filePages > 0) {
      // One copy for the whole sandbox: every process that maps these pages shared maps the same slots.
      const r = mapCached(k, cache, file, st.size, { addr, offset, length: filePages, prot: req.prot });
      if (r < 0) return r;
    } else if (!direct && filePages > 0) {
      // The conventional path (blk mode, or blocks smaller than a page): the VM's own memory, filled
      // from the file now (as a guest kernel's page cache would be); a shared mapping is written back
      // on msync and munmap, and kept in step with write().
      if (req.shared && root.storage !== 'blk' && !copyShared) return -E.ENODEV;
      const valid = Math.max(0, Math.min(filePages, st.size - offset));
      const lazy = root.spec.blkMmap === 'fault' && root.blk !== null && fs.geo.blockSize === PAGE_SIZE && !k.space.rules.copyPrivateFiles;
      const r = k.space.map({ ...base, addr, length: filePages, prot: lazy ? req.prot : req.prot | libc.PROT_WRITE, shared: req.shared, tag: 'file' });
      if (r < 0) return r;
      if (lazy) {
        // Filled on first touch: each page's block is read from the image by the fault handler, so
        // the cache's dirty blocks of this file are written to the image first.
        const physical = new Float64Array(new SharedArrayBuffer(8 * (filePages / PAGE_SIZE))).fill(-1);
        for (const run of fs.fileRuns(file.ino, offset, valid)) {
          if (run.physical === null) continue;
          root.flush(run.physical, run.length);
          for (let o = 0; o < run.length; o += PAGE_SIZE) physical[(run.offset - offset + o) / PAGE_SIZE] = run.physical + o;
        }
        k.faultFiller().register({ start: addr, physical }, k.space.window.hostAddr(addr));
      } else {
        const dst = k.space.window.hostAddr(addr);
        for (const run of fs.fileRuns(file.ino, offset, valid)) {
          if (run.physical !== null) root.copyOut(run.physical, dst + (run.offset - offset), run.length);
        }
        if (!(req.prot & libc.PROT_WRITE)) k.space.protect(addr, filePages, req.prot);
      }
      if (req.shared) k.sharedFileMaps.add({ file, addr, offset, length: filePages });
    }
    for (const p of direct && filePages > 0 ? fs.fileRuns(file.ino, offset, filePages) : []) {
      const at = addr + (p.offset - offset);
      if (p.physical === null) {
        // A hole in a private mapping: zero pages (shared mappings had their holes allocated above).
        const r = k.space.map({ ...base, addr: at, length: p.length, shared: false, tag: 'file' });
        if (r < 0) return r;
        continue;
      }
      // The image's pages, or (a copy-on-write image) the layer's where they are now.
      for (const src of root.sources(p.physical, p.length, req.shared)) {
        const r = k.space.map({ ...base, addr: at + (src.offset - p.physical), length: src.length, tag: 'file', file: { id: src.id, fd: src.fd, offset: src.offset, path: file.name } });
        if (r < 0) return r;
      }
    }
    if (filePages < length) {
      // Past the end of the file: inaccessible; an access faults and becomes SIGBUS.
      const r = k.space.map({ ...base, addr: addr + filePages, length: length - filePages, prot: 0, shared: false, tag: BEYOND_EOF });
      if (r < 0) return r;
    }
    return addr;
  });
}

/**
 * A writable MAP_SHARED mapping of an image file through the sandbox's shared-file cache: each 2 MiB
 * chunk of the file is a slot that every process maps; pages no process has filled yet are filled from
 * the file now. Written back like any copy (SharedFileMaps).
 */
function mapCached(k: Kernel, cache: SharedFileCache, file: Ext4File, size: number, m: { addr: number; offset: number; length: number; prot: number }): number {
  const root = k.root!;
  const fs = root.fs;
  for (let fo = m.offset; fo < m.offset + m.length; ) {
    const chunk = Math.floor(fo / CACHE_CHUNK);
    const cs = chunk * CACHE_CHUNK;
    const ce = Math.min(cs + CACHE_CHUNK, m.offset + m.length);
    const slot = cache.acquire(file.ino, chunk);
    if (!slot) return -E.ENOMEM;
    for (let p = fo; p < ce; p += PAGE_SIZE) {
      const i = (p - cs) / PAGE_SIZE;
      if (slot.filled[i]) continue;
      slot.filled[i] = 1;
      const n = Math.min(PAGE_SIZE, size - p);
      if (n <= 0) continue; // past the end of the file: zero
      for (const run of fs.fileRuns(file.ino, p, n)) {
        if (run.physical !== null) root.copyOut(run.physical, cache.base + slot.offset + (run.offset - cs), run.length);
      }
    }
    const r = k.space.map({ addr: m.addr + (fo - m.offset), length: ce - fo, prot: m.prot, shared: true, fixed: true, noReplace: false, tag: 'file', file: { id: CACHE_BACKING_ID, fd: cache.fd, offset: slot.offset + (fo - cs), path: file.name } });
    if (r < 0) {
      cache.dropIfUnused(slot);
      return r;
    }
    fo = ce;
  }
  k.sharedFileMaps.add({ file, addr: m.addr, offset: m.offset, length: m.length, cached: true });
  return 0;
}

/** Region tag of the pages of a file mapping that lie past the end of the file. */
export const BEYOND_EOF = 'beyond-eof';

/** Address spaces whose pkey_alloc took key 0 (see pkey_alloc). */
const pkeyZeroTaken = new WeakSet<AddressSpace>();
/** fork: the child's address space is a copy of the parent's, its protection-key map included. */
export function pkeyFork(parent: AddressSpace, child: AddressSpace): void {
  if (parent !== child && pkeyZeroTaken.has(parent)) pkeyZeroTaken.add(child);
}
/** exec: a new address space (the object is reused). */
export function pkeyExec(space: AddressSpace): void {
  pkeyZeroTaken.delete(space);
}

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
      if (f.ops instanceof Device && f.ops.name === '/dev/zero') {
        // A mapping of /dev/zero is anonymous memory (private), or shared anonymous memory.
        return k.space.map({ addr, length, prot, shared: type !== MAP_PRIVATE, fixed: (flags & MAP_FIXED) !== 0, noReplace: (flags & MAP_FIXED_NOREPLACE) !== 0, tag: 'mmap' });
      }
      if (!(f.ops instanceof Ext4File) || !k.root) return -E.ENODEV;
      if (!f.readable) return -E.EACCES;
      const shared = type !== MAP_PRIVATE;
      if (shared && prot & libc.PROT_WRITE && !f.writable) return -E.EACCES;
      return mapFile(k, f.ops, { addr, length, prot, shared, fixed: (flags & MAP_FIXED) !== 0, noReplace: (flags & MAP_FIXED_NOREPLACE) !== 0, offset });
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
    if (k.sharedFileMaps.size > 0 && a.u64(0) % PAGE_SIZE === 0) {
      fsCall(() => (k.sharedFileMaps.writeBack(a.u64(0), pageUp(len)), 0));
      k.sharedFileMaps.remove(a.u64(0), pageUp(len));
    }
    const r = k.space.unmap(a.u64(0), len);
    sweepMappedFiles(k);
    return r;
  },
  mprotect: (k, a) => {
    const prot = a.i32(2);
    if (prot & ~(libc.PROT_READ | libc.PROT_WRITE | libc.PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) return -E.EINVAL;
    const len = a.u64(1);
    if (!Number.isSafeInteger(len) || len > k.space.layout.size) return -E.ENOMEM;
    return k.space.protect(a.u64(0), len, prot & 7);
  },
  // Protection keys, as Linux answers on a CPU without PKU (no OSPKE): arch_max_pkey() is 1 and the
  // allocation map starts empty, so the first pkey_alloc takes key 0, fails to set its rights (EINVAL)
  // and cannot give it back (key 0 is never freed): every later pkey_alloc of that address space is
  // ENOSPC (a fork's child inherits that; an exec starts afresh). No key can be named: pkey_free and
  // pkey_mprotect with a key are EINVAL; pkey_mprotect with key -1 is mprotect.
  pkey_alloc: (k, a) => {
    const PKEY_ACCESS_MASK = 3; // PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE
    if (a.u64(0) !== 0 || a.u64(1) & ~PKEY_ACCESS_MASK) return -E.EINVAL;
    if (pkeyZeroTaken.has(k.space)) return -E.ENOSPC;
    pkeyZeroTaken.add(k.space);
    return -E.EINVAL;
  },
  pkey_free: () => -E.EINVAL,
  pkey_mprotect: (k, a, cpu) => {
    if (a.i32(3) === -1) return mmSyscalls.mprotect!(k, a, cpu);
    // do_mprotect_pkey's checks before the key's, in its order.
    const start = a.u64(0);
    const prot = a.i32(2);
    if ((prot & PROT_GROWSDOWN) !== 0 && (prot & PROT_GROWSUP) !== 0) return -E.EINVAL;
    if (start % PAGE_SIZE) return -E.EINVAL;
    const len = a.u64(1);
    if (len === 0) return 0;
    const end = start + pageUp(len);
    if (!Number.isSafeInteger(end) || end <= start) return -E.ENOMEM;
    if (prot & ~(libc.PROT_READ | libc.PROT_WRITE | libc.PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) return -E.EINVAL;
    return -E.EINVAL; // the key is not allocated
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
  msync: (k, a) => {
    const addr = a.u64(0);
    const len = pageUp(a.u64(1));
    const flags = a.i32(2);
    const MS_ASYNC = 1;
    const MS_INVALIDATE = 2;
    const MS_SYNC = 4;
    if (addr % PAGE_SIZE || flags & ~(MS_ASYNC | MS_INVALIDATE | MS_SYNC) || (flags & MS_ASYNC && flags & MS_SYNC)) return -E.EINVAL;
    if (!k.space.inUserSpace(addr, len) || !k.space.regions.check(addr, len, 0)) return -E.ENOMEM;
    // blk mode: a shared mapping is a copy, written back now.
    if (k.sharedFileMaps.size > 0) {
      const r = fsCall(() => (k.sharedFileMaps.writeBack(addr, len), 0));
      if (r < 0) return r;
      if (flags & MS_SYNC) k.root?.sync();
    }
    // memory mode: the program's shared file pages are the image's pages: flushing the image range is msync.
    const root = k.root;
    if (root && flags & MS_SYNC) {
      for (const r of k.space.regions.regions()) {
        if (r.end <= addr || r.start >= addr + len) continue;
        if (r.backing.kind !== 'file' || !root.ownsBacking(r.backing.id) || !r.shared) continue;
        const s = Math.max(r.start, addr);
        const e = Math.min(r.end, addr + len);
        root.flush(r.backing.offset + (s - r.start), e - s);
      }
    }
    return 0;
  },
};
