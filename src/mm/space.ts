/**
 * The program's address space: Linux's mmap/munmap/mprotect/mremap/brk semantics over the region map
 * (what exists) and the window (where it really is mapped). Every change is made in the window first
 * and recorded in the region map after, so the two never disagree about what the guest can touch.
 *
 * Errors are returned as negative errno values, as the system calls answer them.
 */
import { E } from '../abi/errno.js';
import * as libc from '../host/libc.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../host/libc.js';
import { PAGE_SIZE, USER_START } from '../platform/layout.js';
import type { Window } from '../platform/window.js';
import { copyExtents, type AnonMemory } from './anon.js';
import { RegionMap, type Backing, type Region } from './regions.js';

export const PROT_MASK = PROT_READ | PROT_WRITE | PROT_EXEC;

export const pageDown = (x: number): number => x - (x % PAGE_SIZE);
export const pageUp = (x: number): number => Math.ceil(x / PAGE_SIZE) * PAGE_SIZE;

/** A mapping request after the syscall layer has decoded it. */
export interface MapRequest {
  addr: number; // hint or fixed address (page-aligned when fixed)
  length: number; // page-aligned, > 0
  prot: number;
  shared: boolean;
  fixed: boolean; // MAP_FIXED: replace what is there
  noReplace: boolean; // MAP_FIXED_NOREPLACE: EEXIST if anything is there
  tag: string;
  /** Where the pages come from; anonymous memory when absent. */
  file?: { id: number; fd: number; offset: number; path: string };
}

export interface SpaceLayout {
  size: number; // the window size: user space is [USER_START, size)
  stackTop: number;
  stackSize: number;
  memLimit: number; // total bytes the program may have mapped (like RLIMIT_AS)
}

/** What the platform needs of file mappings (see Platform.sharedPrivateMappings). */
export interface MappingRules {
  /** A MAP_PRIVATE file mapping that is or becomes writable is a copy in anonymous memory. */
  copyPrivateFiles: boolean;
  /** A MAP_SHARED file mapping may not be the file's own writable pages (it is a copy kept in step). */
  copyWritableSharedFiles: boolean;
}

export class AddressSpace {
  readonly regions = new RegionMap();
  readonly rules: MappingRules;
  readonly window: Window;
  readonly anon: AnonMemory;
  readonly layout: SpaceLayout;
  /** The top of the area mmap searches (below the stack and its gap). */
  readonly mmapTop: number;
  brkStart = 0;
  brkCurrent = 0;
  /** Host file descriptors of mapped files, by backing id (the anonymous memory file is one of them). */
  private readonly fds = new Map<number, number>();
  /** Host fds this space opened itself (another process's memory it shares since a fork): closed with it. */
  private readonly ownFds: number[] = [];
  /**
   * Ranges of private file mappings that are or were writable. Where the platform maps them from the
   * file itself (kvm), their written pages are the VMM's private copies: a fork must copy them.
   */
  private readonly writablePrivate: Array<[number, number]> = [];

  private noteWritablePrivate(start: number, end: number): void {
    const last = this.writablePrivate[this.writablePrivate.length - 1];
    if (last && last[0] === start && last[1] === end) return;
    this.writablePrivate.push([start, end]);
  }

  private wasWritable(start: number, end: number): boolean {
    return this.writablePrivate.some(([s, e]) => s < end && start < e);
  }

  constructor(window: Window, anon: AnonMemory, layout: SpaceLayout, rules: MappingRules = { copyPrivateFiles: false, copyWritableSharedFiles: false }) {
    this.rules = rules;
    this.window = window;
    this.anon = anon;
    this.layout = layout;
    this.fds.set(anon.id, anon.fd);
    const gap = Math.min(128 * 2 ** 20, Math.floor((layout.stackTop - layout.stackSize - USER_START) / 4));
    this.mmapTop = pageDown(layout.stackTop - layout.stackSize - gap);
  }

  /** Register a host file descriptor that file backings with `id` map from. */
  registerFile(id: number, fd: number): void {
    this.fds.set(id, fd);
  }

  /**
   * Anonymous memory restored from a checkpoint's memory file, mapped MAP_PRIVATE so the file never
   * changes (and clones share its pages): backing ids in this set are never freed or written.
   */
  readonly privateAnon = new Set<number>();

  /** Backing ids of files the program may map shared and writable (memory of the sandbox's, not the image). */
  readonly writableFiles = new Set<number>();

  /** How the host maps a backing: anonymous memory is MAP_SHARED (our file) unless restored privately. */
  private hostShared(b: Backing, programShared: boolean): boolean {
    return b.kind === 'anon' ? !this.privateAnon.has(b.id) : programShared;
  }

  mappedBytes(): number {
    return this.regions.mappedBytes();
  }

  /** Is [addr, addr+len) inside user space? */
  inUserSpace(addr: number, length: number): boolean {
    return addr >= USER_START && length >= 0 && addr + length <= this.layout.size;
  }

  /** Bytes of [start, end) that are already mapped (they do not count again against the limit). */
  overlapBytes(start: number, end: number): number {
    let n = 0;
    for (const r of this.regions.regions()) {
      if (r.end <= start) continue;
      if (r.start >= end) break;
      n += Math.min(r.end, end) - Math.max(r.start, start);
    }
    return n;
  }

  private isFree(start: number, length: number): boolean {
    return this.overlapBytes(start, start + length) === 0;
  }

  /** Choose where a non-fixed mapping goes: the hint when free, else the highest free gap. */
  place(hint: number, length: number): number | null {
    if (hint && hint % PAGE_SIZE === 0 && this.inUserSpace(hint, length) && this.isFree(hint, length)) return hint;
    return this.regions.findFree(length, { lo: USER_START, hi: this.mmapTop, topDown: true });
  }

  /** mmap: returns the address or -errno. */
  map(req: MapRequest): number {
    const { length } = req;
    if (length <= 0 || length % PAGE_SIZE) return -E.EINVAL;
    let addr: number;
    if (req.fixed || req.noReplace) {
      if (req.addr % PAGE_SIZE) return -E.EINVAL;
      if (!this.inUserSpace(req.addr, length)) return -E.ENOMEM;
      if (req.noReplace && !this.isFree(req.addr, length)) return -E.EEXIST;
      addr = req.addr;
    } else {
      const at = this.place(pageDown(req.addr), length);
      if (at === null) return -E.ENOMEM;
      addr = at;
    }
    if (this.mappedBytes() - this.overlapBytes(addr, addr + length) + length > this.layout.memLimit) return -E.ENOMEM;
    let backing: Backing;
    let fd: number;
    if (req.file && !req.shared && req.prot & PROT_WRITE && this.rules.copyPrivateFiles) {
      // The program's private, writable copy of file pages: anonymous memory both sides see, filled now.
      const like = { prot: req.prot & PROT_MASK, shared: false, tag: req.tag, path: req.file.path };
      this.freeBackings(this.mapCopy(like, addr, length, req.file.fd, req.file.offset));
      return addr;
    }
    if (req.file) {
      backing = { kind: 'file', id: req.file.id, offset: req.file.offset };
      fd = req.file.fd;
      this.fds.set(req.file.id, fd);
      if (!req.shared && req.prot & PROT_WRITE) this.noteWritablePrivate(addr, addr + length);
    } else {
      backing = { kind: 'anon', id: this.anon.id, offset: this.anon.allocate(length) };
      fd = this.anon.fd;
    }
    // Anonymous memory is always MAP_SHARED on the host (it is our memfd); file mappings follow the program.
    this.window.mapFd(addr, length, req.prot & PROT_MASK, fd, backing.offset, req.file ? req.shared : true);
    const removed = this.regions.map({
      start: addr,
      end: addr + length,
      prot: req.prot & PROT_MASK,
      shared: req.shared,
      backing,
      tag: req.tag,
      ...(req.file ? { path: req.file.path } : {}),
    });
    this.freeBackings(removed);
    return addr;
  }

  /**
   * Map existing anonymous memory (at `offset` in the memory file) MAP_SHARED, without allocating:
   * a System V shared-memory segment attached again. Returns the address or -errno.
   */
  mapBacking(req: { addr: number; length: number; prot: number; fixed: boolean; offset: number; tag: string }): number {
    let addr = req.addr;
    if (!req.fixed) {
      const at = this.place(0, req.length);
      if (at === null) return -E.ENOMEM;
      addr = at;
    } else if (!this.inUserSpace(addr, req.length)) return -E.EINVAL;
    if (this.mappedBytes() - this.overlapBytes(addr, addr + req.length) + req.length > this.layout.memLimit) return -E.ENOMEM;
    this.window.mapFd(addr, req.length, req.prot, this.anon.fd, req.offset, true);
    const removed = this.regions.map({ start: addr, end: addr + req.length, prot: req.prot, shared: true, backing: { kind: 'anon', id: this.anon.id, offset: req.offset }, tag: req.tag });
    this.freeBackings(removed.filter((r) => r.tag !== req.tag));
    return addr;
  }

  /** Unmap without giving the pages back (their owner, e.g. a shared-memory segment, still holds them). */
  unmapKeepBacking(addr: number, length: number): void {
    for (const r of this.regions.unmap(addr, length)) this.window.release(r.start, r.end - r.start);
  }

  /** munmap: 0 or -errno. Unmapping nothing is fine, as on Linux. */
  unmap(addr: number, length: number): number {
    if (addr % PAGE_SIZE || length <= 0) return -E.EINVAL;
    const len = pageUp(length);
    if (!this.inUserSpace(addr, len)) return addr < USER_START ? -E.EINVAL : 0;
    const removed = this.regions.unmap(addr, len);
    for (const r of removed) this.window.release(r.start, r.end - r.start);
    this.freeBackings(removed);
    return 0;
  }

  /** mprotect: 0 or -errno (ENOMEM when part of the range is not mapped; then nothing changes). */
  protect(addr: number, length: number, prot: number): number {
    if (addr % PAGE_SIZE) return -E.EINVAL;
    const len = pageUp(length);
    if (len === 0) return 0;
    if (!this.inUserSpace(addr, len)) return -E.ENOMEM;
    if (!this.regions.check(addr, len, 0)) return -E.ENOMEM;
    if (prot & PROT_WRITE && (this.rules.copyPrivateFiles || this.rules.copyWritableSharedFiles)) {
      const r = this.copyBeforeWrite(addr, len);
      if (r < 0) return r;
    }
    if (prot & PROT_WRITE) {
      for (const r of this.regions.regions()) {
        if (r.end <= addr || r.start >= addr + len || r.backing.kind !== 'file' || r.shared) continue;
        this.noteWritablePrivate(Math.max(r.start, addr), Math.min(r.end, addr + len));
      }
    }
    this.window.protect(addr, len, prot & PROT_MASK);
    this.regions.protect(addr, len, prot & PROT_MASK);
    return 0;
  }

  /**
   * Before [addr, addr+len) becomes writable where the platform needs copies: private file pages
   * become anonymous copies; shared file pages that are the file's own are refused (EACCES, as Linux
   * answers for a file not open for writing: the program's process holds the image read-only).
   */
  private copyBeforeWrite(addr: number, len: number): number {
    const end = addr + len;
    const files = this.regions.regions().filter((r) => r.backing.kind === 'file' && r.end > addr && r.start < end);
    if (this.rules.copyWritableSharedFiles && files.some((r) => r.shared && !this.writableFiles.has(r.backing.id))) return -E.EACCES;
    if (!this.rules.copyPrivateFiles) return 0;
    for (const r of files) {
      if (r.shared) continue; // the sandbox's own memory (writableFiles): already writable
      const s = Math.max(r.start, addr);
      const e = Math.min(r.end, end);
      this.mapCopy(r, s, e - s, this.fdOf(r.backing), r.backing.offset + (s - r.start));
    }
    return 0;
  }

  /**
   * File pages as a copy in anonymous memory, which the VMM and the program's process share: mapped
   * at [start, start+length), filled from host file `fd` at `fileOffset`, recorded like `like`.
   * Returns the regions it replaced.
   */
  private mapCopy(like: Omit<Region, 'start' | 'end' | 'backing'>, start: number, length: number, fd: number, fileOffset: number): Region[] {
    const offset = this.anon.allocate(length);
    this.window.mapFd(start, length, like.prot | PROT_WRITE, this.anon.fd, offset, true);
    this.fill(start, length, fd, fileOffset);
    if (!(like.prot & PROT_WRITE)) this.window.protect(start, length, like.prot);
    return this.regions.map({ ...like, start, end: start + length, backing: { kind: 'anon', id: this.anon.id, offset } });
  }

  /** Copy `length` bytes of host file `fd` at `offset` into the window at `addr` (mapped writable). */
  private fill(addr: number, length: number, fd: number, offset: number): void {
    let done = 0;
    while (done < length) {
      const n = libc.pread(fd, this.window.hostAddr(addr + done), length - done, offset + done);
      if (n <= 0) break; // past the end of the file: the rest stays zero
      done += n;
    }
  }

  /** mremap: the new address or -errno. */
  remap(oldAddr: number, oldSize: number, newSize: number, mayMove: boolean, fixedAt: number | null): number {
    if (oldAddr % PAGE_SIZE) return -E.EINVAL;
    const oldLen = pageUp(oldSize);
    const newLen = pageUp(newSize);
    if (newLen === 0 || oldLen === 0) return -E.EINVAL; // duplicating a shared mapping (old_size 0) is not supported
    // Linux wants the old range inside one VMA; here a grown mapping may be several regions (one per
    // backing extent), so the rule is: the whole old range is mapped.
    if (!this.inUserSpace(oldAddr, oldLen) || !this.regions.check(oldAddr, oldLen, 0)) return -E.EFAULT;
    const region = this.regions.find(oldAddr + oldLen - PAGE_SIZE)!;
    if (fixedAt !== null) {
      if (fixedAt % PAGE_SIZE || !mayMove) return -E.EINVAL;
      if (!this.inUserSpace(fixedAt, newLen)) return -E.EINVAL;
      if (fixedAt < oldAddr + oldLen && oldAddr < fixedAt + newLen) return -E.EINVAL;
    }
    if (fixedAt === null && newLen <= oldLen) {
      if (newLen < oldLen) this.unmap(oldAddr + newLen, oldLen - newLen);
      return oldAddr;
    }
    if (fixedAt === null && this.inUserSpace(oldAddr + oldLen, newLen - oldLen) && this.isFree(oldAddr + oldLen, newLen - oldLen)) {
      // Grow in place: the extension is a new mapping of the same kind right after the old one.
      const r = this.extend(region, oldAddr + oldLen, newLen - oldLen, true);
      return r < 0 ? r : oldAddr;
    }
    if (!mayMove) return -E.ENOMEM;
    const keep = Math.min(oldLen, newLen);
    if (fixedAt === null && this.mappedBytes() - oldLen + newLen > this.layout.memLimit) return -E.ENOMEM;
    const dest = fixedAt ?? this.regions.findFree(newLen, { lo: USER_START, hi: this.mmapTop, topDown: true });
    if (dest === null) return -E.ENOMEM;
    if (fixedAt !== null) this.unmap(fixedAt, newLen);
    // Move the pages: map the same backing at the destination, then release the source (no copy).
    const pieces = this.regions.unmap(oldAddr, oldLen);
    let at = dest;
    for (const p of pieces) {
      const len = Math.min(p.end - p.start, dest + keep - at);
      if (len <= 0) break;
      const moved: Region = { ...p, start: at, end: at + len };
      this.window.mapFd(at, len, p.prot, this.fdOf(p.backing), p.backing.offset, this.hostShared(p.backing, p.shared));
      this.regions.map(moved);
      at += len;
    }
    for (const p of pieces) this.window.release(p.start, p.end - p.start);
    // A shrinking move drops the tail; a growing move adds a fresh extension.
    const dropped: Region[] = [];
    for (const p of pieces) {
      const used = Math.max(0, Math.min(p.end, oldAddr + keep) - p.start);
      if (used < p.end - p.start) {
        dropped.push({ ...p, start: p.start + used, backing: { ...p.backing, offset: p.backing.offset + used } });
      }
    }
    this.freeBackings(dropped);
    if (newLen > oldLen) {
      const last = this.regions.find(dest + oldLen - PAGE_SIZE);
      if (last) {
        const r = this.extend(last, dest + oldLen, newLen - oldLen, false);
        if (r < 0) return r;
      }
    }
    return dest;
  }

  /** Map [at, at+len) as a continuation of `like` (same prot, tag, sharing; file offset continues). */
  private extend(like: Region, at: number, len: number, checkLimit: boolean): number {
    if (checkLimit && this.mappedBytes() + len > this.layout.memLimit) return -E.ENOMEM;
    if (like.backing.kind === 'file') {
      const off = like.backing.offset + (at - like.start);
      const fd = this.fdOf(like.backing);
      this.window.mapFd(at, len, like.prot, fd, off, like.shared);
      this.regions.map({ ...like, start: at, end: at + len, backing: { ...like.backing, offset: off } });
      return 0;
    }
    const offset = this.anon.allocate(len);
    this.window.mapFd(at, len, like.prot, this.anon.fd, offset, true);
    this.regions.map({ ...like, start: at, end: at + len, backing: { kind: 'anon', id: this.anon.id, offset } });
    return 0;
  }

  /**
   * MADV_DONTNEED and friends: private anonymous pages in the range read as zeros afterwards (their
   * backing is punched out); shared and file pages keep their contents. ENOMEM when part is unmapped.
   */
  discard(addr: number, length: number): number {
    let covered = 0;
    for (const r of this.regions.regions()) {
      if (r.end <= addr) continue;
      if (r.start >= addr + length) break;
      const s = Math.max(r.start, addr);
      const e = Math.min(r.end, addr + length);
      covered += e - s;
      if (r.backing.kind === 'anon' && !r.shared) {
        if (r.backing.id === this.anon.id) this.anon.free(r.backing.offset + (s - r.start), e - s);
        else this.map({ addr: s, length: e - s, prot: r.prot, shared: false, fixed: true, noReplace: false, tag: r.tag }); // fresh zero pages
      }
    }
    return covered === length ? 0 : -E.ENOMEM;
  }

  /** brk: the new break (or the old one when the request cannot be met), as Linux answers. */
  brk(requested: number): number {
    if (requested < this.brkStart || requested > this.mmapTop) return this.brkCurrent;
    const oldEnd = pageUp(this.brkCurrent);
    const newEnd = pageUp(requested);
    if (newEnd > oldEnd) {
      if (!this.isFree(oldEnd, newEnd - oldEnd)) return this.brkCurrent;
      const r = this.map({
        addr: oldEnd,
        length: newEnd - oldEnd,
        prot: PROT_READ | PROT_WRITE,
        shared: false,
        fixed: true,
        noReplace: false,
        tag: 'heap',
      });
      if (r < 0) return this.brkCurrent;
    } else if (newEnd < oldEnd) {
      this.unmap(newEnd, oldEnd - newEnd);
    }
    this.brkCurrent = requested;
    return requested;
  }

  /** Map a region exactly as recorded (restore): its backing must be registered. */
  mapRegion(r: Region): void {
    if (r.backing.kind === 'file' && !r.shared && r.prot & PROT_WRITE && this.rules.copyPrivateFiles) {
      // A private writable file mapping from a platform that shares them (a kvm checkpoint restored on
      // process): a copy in anonymous memory, as this platform makes them.
      this.mapCopy(r, r.start, r.end - r.start, this.fdOf(r.backing), r.backing.offset);
      return;
    }
    if (r.backing.kind === 'file' && !r.shared) this.noteWritablePrivate(r.start, r.end); // a restore cannot know: assume written
    this.window.mapFd(r.start, r.end - r.start, r.prot, this.fdOf(r.backing), r.backing.offset, this.hostShared(r.backing, r.shared));
    this.regions.map(r);
  }

  /**
   * fork: make `child` (an empty space over the child's own machine and anonymous memory) a copy of
   * this one. Shared mappings (MAP_SHARED anonymous memory, System V segments, shared file mappings)
   * map the same pages; file pages never written map the same file; everything private is copied
   * into the child's memory now: anonymous memory extent by extent on the host (holes stay holes),
   * written private file pages through the window. `declare` tells the child's machine of a host file
   * its memory maps from. The cost is one host copy of the private memory the parent has touched.
   */
  forkInto(child: AddressSpace, declare: (fd: number, writable: boolean) => void): void {
    child.brkStart = this.brkStart;
    child.brkCurrent = this.brkCurrent;
    for (const [s, e] of this.writablePrivate) child.writablePrivate.push([s, e]);
    const sharedFd = (id: number): number => {
      let fd = child.fds.get(id);
      if (fd === undefined) {
        fd = libc.dup(this.fdOf({ kind: 'anon', id, offset: 0 }));
        if (fd < 0) throw new Error(`dup of a shared memory file failed (errno ${libc.errno()})`);
        child.ownFds.push(fd);
        child.fds.set(id, fd);
        declare(fd, true);
      }
      return fd;
    };
    for (const r of this.regions.regions()) {
      const len = r.end - r.start;
      const b = r.backing;
      if (b.kind === 'file' && (r.shared || !this.wasWritable(r.start, r.end))) {
        const fd = this.fdOf(b);
        child.fds.set(b.id, fd);
        child.window.mapFd(r.start, len, r.prot, fd, b.offset, r.shared);
        child.regions.map(r);
      } else if (b.kind === 'anon' && r.shared) {
        if (b.id === this.anon.id) this.anon.pin(b.offset, len);
        child.window.mapFd(r.start, len, r.prot, sharedFd(b.id), b.offset, true);
        child.regions.map(r);
      } else {
        const off = child.anon.allocate(len);
        if (b.kind === 'anon' && this.hostShared(b, false)) copyExtents(this.fdOf(b), b.offset, child.anon.fd, off, len);
        else this.copyOut(r, child.anon.fd, off);
        child.window.mapFd(r.start, len, r.prot, child.anon.fd, off, true);
        child.regions.map({ ...r, backing: { kind: 'anon', id: child.anon.id, offset: off } });
      }
    }
  }

  /** Write region `r`'s bytes, as the program sees them, to host file `fd` at `offset`. */
  private copyOut(r: Region, fd: number, offset: number): void {
    const len = r.end - r.start;
    if (!(r.prot & PROT_READ)) this.window.protect(r.start, len, r.prot | PROT_READ);
    try {
      let done = 0;
      while (done < len) {
        const n = libc.pwrite(fd, this.window.hostAddr(r.start + done), len - done, offset + done);
        if (n <= 0) throw new Error(`copying memory for a fork failed (errno ${libc.errno()})`);
        done += n;
      }
    } finally {
      if (!(r.prot & PROT_READ)) this.window.protect(r.start, len, r.prot);
    }
  }

  /** execve: every mapping goes (the machine and the memory file stay). */
  clear(): void {
    const removed = this.regions.unmap(USER_START, this.layout.size - USER_START);
    for (const r of removed) this.window.release(r.start, r.end - r.start);
    this.freeBackings(removed);
    this.writablePrivate.length = 0;
    this.brkStart = 0;
    this.brkCurrent = 0;
  }

  /** Close the host fds this space opened (shared memory of other processes). */
  close(): void {
    for (const fd of this.ownFds.splice(0)) libc.close(fd);
  }

  /**
   * Write `bytes` at `addr` through the region's host file (its memfd), whatever the program's
   * protection (the kernel's vvar page is read-only to the program). Only for anonymous memory whose
   * region has tag `tag`; false when there is none (the program unmapped or replaced it).
   */
  writeThroughBacking(addr: number, bytes: Uint8Array, tag: string): boolean {
    const r = this.regions.find(addr);
    if (!r || r.tag !== tag || r.backing.kind !== 'anon' || addr + bytes.length > r.end) return false;
    // Never through to a checkpoint's memory file mapped copy-on-write (the checkpoint must not change).
    if (this.privateAnon.has(r.backing.id)) return false;
    const at = r.backing.offset + (addr - r.start);
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return libc.pwriteBuf(this.fdOf(r.backing), buf, buf.length, at) === bytes.length;
  }

  private fdOf(b: Backing): number {
    const fd = this.fds.get(b.id);
    if (fd === undefined) throw new Error(`no host file for backing ${b.id}`);
    return fd;
  }

  private freeBackings(removed: readonly Region[]): void {
    for (const r of removed) if (r.backing.kind === 'anon' && r.backing.id === this.anon.id) this.anon.free(r.backing.offset, r.end - r.start);
  }
}
