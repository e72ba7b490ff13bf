/**
 * MAP_SHARED file mappings that are copies: on the conventional path (blk mode) the VM's own memory
 * filled from the file at mmap time, as a guest kernel's page cache would hold it; where the program's
 * processes hold the image read-only (process), slots of the sandbox's shared-file cache
 * (sharedcache.ts), one copy for every process. This table keeps a process's such mappings in step
 * with the file: msync and munmap write the mapping back, write() updates the mapping's copy, and
 * everything is written back before the program's end is reported. It also holds the process's
 * references to cache slots.
 */
import { memmove } from '../../host/libc.js';
import type { Window } from '../../platform/window.js';
import type { Ext4File } from '../files/ext4file.js';
import type { RootFs } from './rootfs.js';
import { CACHE_CHUNK, type CacheSlot } from './sharedcache.js';

export interface SharedMap {
  file: Ext4File;
  addr: number;
  /** File offset of `addr`. */
  offset: number;
  length: number;
  /** The pages are the shared-file cache's (kept in step with write() by the cache itself). */
  cached?: boolean;
}

export class SharedFileMaps {
  private maps: SharedMap[] = [];
  private readonly window: Window;
  private readonly root: RootFs | null;
  /** Bytes written back to files, for stats. */
  writtenBack = 0;

  constructor(window: Window, root: RootFs | null) {
    this.window = window;
    this.root = root;
  }

  get size(): number {
    return this.maps.length;
  }

  add(m: SharedMap): void {
    this.maps.push(m);
    this.syncSlots();
  }

  /** Cache slots this process maps (each counted once in the slot's refs). */
  private held = new Set<CacheSlot>();

  /** Bring the slots' references in line with the cached maps left. */
  private syncSlots(): void {
    const cache = this.root?.sharedCache;
    if (!cache) return;
    const now = new Set<CacheSlot>();
    for (const m of this.maps) {
      if (!m.cached || m.length === 0) continue;
      for (let c = Math.floor(m.offset / CACHE_CHUNK); c * CACHE_CHUNK < m.offset + m.length; c++) {
        const slot = cache.peek(m.file.ino, c);
        if (slot) now.add(slot);
      }
    }
    for (const s of now) if (!this.held.has(s)) cache.ref(s);
    for (const s of this.held) if (!now.has(s)) cache.unref(s);
    this.held = now;
  }

  /** A fork: the child maps what the parent's cached maps map (the same slots). */
  inherit(parent: SharedFileMaps): void {
    for (const m of parent.maps) if (m.cached) this.maps.push({ ...m });
    this.syncSlots();
  }

  /** The mappings are gone (an exec, the process's end), after writeBackAll: forget them. */
  clear(): void {
    this.maps = [];
    this.syncSlots();
  }

  /** Does a shared map of file `ino` remain? */
  mapsInode(ino: number): boolean {
    return this.maps.some((m) => m.file.ino === ino);
  }

  private overlapping(addr: number, length: number): SharedMap[] {
    return this.maps.filter((m) => m.addr < addr + length && addr < m.addr + m.length);
  }

  /** Write the pages of shared maps in [addr, addr+length) back to their files (not past EOF). */
  writeBack(addr: number, length: number): void {
    if (!this.root || this.root.fs.readOnly) return;
    const root = this.root;
    const fs = root.fs;
    for (const m of this.overlapping(addr, length)) {
      const s = Math.max(m.addr, addr);
      const e = Math.min(m.addr + m.length, addr + length);
      const fileOff = m.offset + (s - m.addr);
      const size = fs.stat(m.file.ino).size;
      const n = Math.max(0, Math.min(e - s, size - fileOff));
      if (n === 0) continue;
      fs.allocateRange(m.file.ino, fileOff, n);
      const src = this.window.hostAddr(s);
      for (const r of fs.fileRuns(m.file.ino, fileOff, n)) root.copyIn(r.physical!, src + (r.offset - fileOff), r.length);
      fs.commitWrite(m.file.ino, fileOff + n);
      this.writtenBack += n;
    }
  }

  /** Forget the maps in [addr, addr+length) (after munmap), keeping the parts outside it. */
  remove(addr: number, length: number): void {
    const out: SharedMap[] = [];
    for (const m of this.maps) {
      const end = m.addr + m.length;
      if (end <= addr || m.addr >= addr + length) {
        out.push(m);
        continue;
      }
      if (m.addr < addr) out.push({ ...m, length: addr - m.addr });
      if (end > addr + length) out.push({ ...m, addr: addr + length, offset: m.offset + (addr + length - m.addr), length: end - addr - length });
    }
    this.maps = out;
    this.syncSlots();
  }

  /** write() changed [offset, offset+length) of `ino` from host address `src`: update the maps' copies. */
  refresh(ino: number, offset: number, length: number, src: number): void {
    for (const m of this.maps) {
      if (m.file.ino !== ino || m.cached) continue;
      const s = Math.max(m.offset, offset);
      const e = Math.min(m.offset + m.length, offset + length);
      if (s >= e) continue;
      memmove(this.window.hostAddr(m.addr + (s - m.offset)), src + (s - offset), e - s);
    }
  }

  writeBackAll(): void {
    for (const m of [...this.maps]) this.writeBack(m.addr, m.length);
  }
}
