/**
 * The region map: what the program has mapped, where, with which protection and from which backing
 * object, as Linux's VMA tree records it. A pure data structure (no I/O): the address space changes
 * the host window and then records the change here; every guest pointer is checked against it.
 *
 * Representation: a sorted array of non-overlapping, non-empty, page-aligned, frozen Region values.
 * The map is always canonical: two adjacent regions that could be one (same prot, sharing, tag, path,
 * and contiguous backing: same kind and id, offsets continuing) are merged, as Linux merges VMAs, so
 * the same set of pages always has exactly one representation.
 *
 * The array is copy-on-write: a change builds a new array and never edits the old one, so the array
 * `regions()` returns stays a valid snapshot however the map changes afterwards, and `clone()` is O(1).
 *
 * Complexity (n regions, k regions touched by the range):
 *   find, check           O(log n + k) (binary search; a one-entry cache makes repeated hits O(1))
 *   map, unmap, protect   O(n) (binary search, then one array copy)
 *   findFree              O(log n + gaps visited)
 *   regions, mappedBytes, clone   O(1)
 */
import { PAGE_SIZE } from '../platform/layout.js';

/** Anonymous memory: `id` names the host memory object (a memfd); `offset` is region.start's place in it. */
export interface AnonBacking {
  readonly kind: 'anon';
  readonly id: number;
  readonly offset: number;
}

/** A file (e.g. the disk image): `offset` is region.start's offset in the file. */
export interface FileBacking {
  readonly kind: 'file';
  readonly id: number;
  readonly offset: number;
}

/** Where a region's pages live. The backing position of any address a is `offset + (a - start)`. */
export type Backing = AnonBacking | FileBacking;

/** One mapping. An immutable value: changes make copies. */
export interface Region {
  readonly start: number;
  readonly end: number;
  /** PROT_READ=1 | PROT_WRITE=2 | PROT_EXEC=4 */
  readonly prot: number;
  readonly shared: boolean;
  readonly backing: Backing;
  /** 'elf' | 'heap' | 'stack' | 'mmap' | ...: shown in stats and /proc/self/maps */
  readonly tag: string;
  readonly path?: string;
}

/** The checkpoint form of a region map (plain JSON data). */
export interface RegionMapJSON {
  version: 1;
  regions: Region[];
}

/** Addresses stay below 2^47 (x86-64 user space); every address and size is a whole number of pages. */
const ADDR_LIMIT = 2 ** 47;
/** Backing offsets are file offsets: page-aligned, below 2^53. */
const OFFSET_LIMIT = Number.MAX_SAFE_INTEGER;

function assertPage(what: string, x: number, limit = ADDR_LIMIT): void {
  if (!Number.isSafeInteger(x) || x < 0 || x > limit || x % PAGE_SIZE !== 0) {
    throw new RangeError(`region map: ${what} ${x} is not a page-aligned address below 0x${limit.toString(16)}`);
  }
}

/** A frozen copy of `r` with exactly the Region fields (no `path` key when there is no path). */
function freezeRegion(r: Region): Region {
  const backing: Backing = Object.freeze({ kind: r.backing.kind, id: r.backing.id, offset: r.backing.offset });
  const out: Region =
    r.path === undefined
      ? { start: r.start, end: r.end, prot: r.prot, shared: r.shared, backing, tag: r.tag }
      : { start: r.start, end: r.end, prot: r.prot, shared: r.shared, backing, tag: r.tag, path: r.path };
  return Object.freeze(out);
}

function validate(r: Region): void {
  assertPage('region start', r.start);
  assertPage('region end', r.end);
  if (r.end <= r.start) throw new RangeError(`region map: empty region [0x${r.start.toString(16)}, 0x${r.end.toString(16)})`);
  if (!Number.isInteger(r.prot) || r.prot < 0 || r.prot > 7) throw new RangeError(`region map: bad prot ${r.prot}`);
  if (typeof r.shared !== 'boolean') throw new TypeError('region map: `shared` must be a boolean');
  if (typeof r.tag !== 'string') throw new TypeError('region map: `tag` must be a string');
  if (r.path !== undefined && typeof r.path !== 'string') throw new TypeError('region map: `path` must be a string');
  const b = r.backing as Backing | undefined;
  if (typeof b !== 'object' || b === null || (b.kind !== 'anon' && b.kind !== 'file')) {
    throw new TypeError('region map: backing must be { kind: "anon" | "file", id, offset }');
  }
  if (!Number.isSafeInteger(b.id)) throw new RangeError(`region map: bad backing id ${b.id}`);
  assertPage('backing offset', b.offset, OFFSET_LIMIT - (r.end - r.start));
}

/** `r` restricted to [s, e) (which must lie inside it); the backing offset follows the start. */
function slice(r: Region, s: number, e: number): Region {
  if (s === r.start && e === r.end) return r;
  return freezeRegion({ ...r, start: s, end: e, backing: { ...r.backing, offset: r.backing.offset + (s - r.start) } });
}

/** Can `b`, which starts where `a` ends, be merged into `a`? */
export function mergeable(a: Region, b: Region): boolean {
  return (
    a.end === b.start &&
    a.prot === b.prot &&
    a.shared === b.shared &&
    a.tag === b.tag &&
    a.path === b.path &&
    a.backing.kind === b.backing.kind &&
    a.backing.id === b.backing.id &&
    a.backing.offset + (a.end - a.start) === b.backing.offset
  );
}

export class RegionMap {
  /** Sorted, non-overlapping, canonical, frozen; replaced (never edited) on change. */
  private list: readonly Region[];
  private bytes: number;
  /** Index of the region the last find/check hit (a hint; checked before use). */
  private hint = 0;

  constructor() {
    this.list = [];
    this.bytes = 0;
  }

  /** All regions in address order. A snapshot: later changes to the map do not alter it. */
  regions(): readonly Region[] {
    return this.list;
  }

  /** Total bytes mapped. */
  mappedBytes(): number {
    return this.bytes;
  }

  /** How many regions there are. */
  get size(): number {
    return this.list.length;
  }

  /** An independent copy (O(1): regions and the array are immutable). */
  clone(): RegionMap {
    const m = new RegionMap();
    m.list = this.list;
    m.bytes = this.bytes;
    return m;
  }

  /** The region that contains byte `addr`, if any. */
  find(addr: number): Region | undefined {
    const i = this.indexOf(addr);
    return i < 0 ? undefined : this.list[i];
  }

  /**
   * Is every byte of [start, start+length) mapped with at least the bits of `prot`? Length 0 is true.
   * Any byte address works (no alignment needed); this validates guest pointers.
   */
  check(start: number, length: number, prot: number): boolean {
    if (length === 0) return true;
    if (!(length > 0)) return false;
    const end = start + length;
    let i = this.indexOf(start);
    if (i < 0) return false;
    const list = this.list;
    let r = list[i]!;
    for (;;) {
      if ((r.prot & prot) !== prot) return false;
      if (end <= r.end) return true;
      const next = list[++i];
      if (next === undefined || next.start !== r.end) return false;
      r = next;
    }
  }

  /**
   * Insert `region`, replacing whatever overlaps it (MAP_FIXED). Returns the removed pieces in address
   * order, cut exactly at the region's boundaries (their backing offsets follow their starts).
   */
  map(region: Region): Region[] {
    validate(region);
    const r = freezeRegion(region);
    const [i, j] = this.span(r.start, r.end);
    const removed: Region[] = [];
    const middle: Region[] = [];
    for (let k = i; k < j; k++) {
      const old = this.list[k]!;
      if (old.start < r.start) middle.push(slice(old, old.start, r.start));
      removed.push(slice(old, Math.max(old.start, r.start), Math.min(old.end, r.end)));
    }
    // Keep the left remainder before the new region and the right one after it.
    const right = j > i && this.list[j - 1]!.end > r.end ? slice(this.list[j - 1]!, r.end, this.list[j - 1]!.end) : undefined;
    middle.push(r);
    if (right) middle.push(right);
    this.replace(i, j, middle);
    return removed;
  }

  /** Remove [start, start+length). Returns the removed pieces in address order, cut at the boundaries. */
  unmap(start: number, length: number): Region[] {
    assertPage('unmap start', start);
    assertPage('unmap length', length);
    const end = start + length;
    assertPage('unmap end', end);
    if (length === 0) return [];
    const [i, j] = this.span(start, end);
    if (i === j) return [];
    const removed: Region[] = [];
    const middle: Region[] = [];
    for (let k = i; k < j; k++) {
      const old = this.list[k]!;
      if (old.start < start) middle.push(slice(old, old.start, start));
      removed.push(slice(old, Math.max(old.start, start), Math.min(old.end, end)));
      if (old.end > end) middle.push(slice(old, end, old.end));
    }
    this.replace(i, j, middle);
    return removed;
  }

  /**
   * Set the protection of [start, start+length) (mprotect). If any page of the range is unmapped,
   * nothing changes and `fullyMapped` is false (Linux answers ENOMEM). `changed` lists the pieces of
   * the range whose protection was different, as they are now (with the new prot), in address order.
   */
  protect(start: number, length: number, prot: number): { changed: Region[]; fullyMapped: boolean } {
    assertPage('protect start', start);
    assertPage('protect length', length);
    const end = start + length;
    assertPage('protect end', end);
    if (!Number.isInteger(prot) || prot < 0 || prot > 7) throw new RangeError(`region map: bad prot ${prot}`);
    if (length === 0) return { changed: [], fullyMapped: true };
    const [i, j] = this.span(start, end);
    if (!this.covers(i, j, start, end)) return { changed: [], fullyMapped: false };
    const changed: Region[] = [];
    const middle: Region[] = [];
    for (let k = i; k < j; k++) {
      const old = this.list[k]!;
      if (old.prot === prot) {
        middle.push(old);
        continue;
      }
      const s = Math.max(old.start, start);
      const e = Math.min(old.end, end);
      if (old.start < s) middle.push(slice(old, old.start, s));
      const piece = freezeRegion({ ...slice(old, s, e), prot });
      middle.push(piece);
      changed.push(piece);
      if (old.end > e) middle.push(slice(old, e, old.end));
    }
    if (changed.length > 0) this.replace(i, j, middle);
    return { changed, fullyMapped: true };
  }

  /**
   * A page-aligned address `a` with [a, a+length) free and inside [lo, hi), or null. Top-down picks the
   * highest such address (as Linux's mmap does), bottom-up the lowest.
   */
  findFree(length: number, opts: { lo: number; hi: number; topDown: boolean }): number | null {
    assertPage('findFree length', length);
    assertPage('findFree lo', opts.lo);
    assertPage('findFree hi', opts.hi);
    const { lo, hi } = opts;
    if (length === 0 || hi - lo < length) return null;
    const list = this.list;
    if (opts.topDown) {
      // Gaps from the top: the gap below list[k] runs from list[k-1].end to list[k].start.
      for (let k = this.lowerBoundStart(hi); k >= 0; k--) {
        const gapEnd = Math.min(k < list.length ? list[k]!.start : hi, hi);
        const gapStart = Math.max(k > 0 ? list[k - 1]!.end : lo, lo);
        if (gapEnd - gapStart >= length) return gapEnd - length;
        if (gapStart <= lo) break;
      }
    } else {
      // Gaps from the bottom: start at the first region that ends above lo.
      for (let k = this.upperBoundEnd(lo); k <= list.length; k++) {
        const gapStart = Math.max(k > 0 ? list[k - 1]!.end : lo, lo);
        const gapEnd = Math.min(k < list.length ? list[k]!.start : hi, hi);
        if (gapEnd - gapStart >= length) return gapStart;
        if (gapEnd >= hi) break;
      }
    }
    return null;
  }

  /** Plain data for a checkpoint. */
  toJSON(): RegionMapJSON {
    return {
      version: 1,
      regions: this.list.map((r) => {
        const b = { kind: r.backing.kind, id: r.backing.id, offset: r.backing.offset } as Backing;
        return r.path === undefined
          ? { start: r.start, end: r.end, prot: r.prot, shared: r.shared, backing: b, tag: r.tag }
          : { start: r.start, end: r.end, prot: r.prot, shared: r.shared, backing: b, tag: r.tag, path: r.path };
      }),
    };
  }

  /** Rebuild a map from `toJSON()` data (validated: throws on anything malformed or overlapping). */
  static fromJSON(data: unknown): RegionMap {
    if (typeof data !== 'object' || data === null) throw new TypeError('region map checkpoint: not an object');
    const d = data as { version?: unknown; regions?: unknown };
    if (d.version !== 1) throw new TypeError(`region map checkpoint: unknown version ${String(d.version)}`);
    if (!Array.isArray(d.regions)) throw new TypeError('region map checkpoint: `regions` is not an array');
    const m = new RegionMap();
    const out: Region[] = [];
    let bytes = 0;
    for (const item of d.regions as unknown[]) {
      if (typeof item !== 'object' || item === null) throw new TypeError('region map checkpoint: region is not an object');
      const r = item as Region;
      validate(r);
      const prev = out[out.length - 1];
      if (prev && r.start < prev.end) {
        throw new RangeError(`region map checkpoint: region at 0x${r.start.toString(16)} overlaps or is out of order`);
      }
      const fr = freezeRegion(r);
      bytes += fr.end - fr.start;
      if (prev && mergeable(prev, fr)) out[out.length - 1] = freezeRegion({ ...prev, end: fr.end });
      else out.push(fr);
    }
    m.list = out;
    m.bytes = bytes;
    return m;
  }

  // ---- internals ----

  /** Index of the region containing `addr`, or -1. */
  private indexOf(addr: number): number {
    const list = this.list;
    const h = list[this.hint];
    if (h !== undefined && h.start <= addr && addr < h.end) return this.hint;
    // The last region with start <= addr.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.start <= addr) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    if (i < 0 || addr >= list[i]!.end) return -1;
    this.hint = i;
    return i;
  }

  /** First index whose region starts at or above `addr` (list.length if none). */
  private lowerBoundStart(addr: number): number {
    const list = this.list;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.start < addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index whose region ends above `addr` (list.length if none). */
  private upperBoundEnd(addr: number): number {
    const list = this.list;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** [i, j): the indexes of the regions that overlap [start, end). */
  private span(start: number, end: number): [number, number] {
    const i = this.upperBoundEnd(start);
    let j = i;
    while (j < this.list.length && this.list[j]!.start < end) j++;
    return [i, j];
  }

  /** Do list[i..j) cover [start, end) without a hole? */
  private covers(i: number, j: number, start: number, end: number): boolean {
    if (i === j) return false;
    const list = this.list;
    if (list[i]!.start > start || list[j - 1]!.end < end) return false;
    for (let k = i + 1; k < j; k++) if (list[k - 1]!.end !== list[k]!.start) return false;
    return true;
  }

  /**
   * Replace list[i..j) with `middle` (sorted, inside the same span), merge across the seams with the
   * neighbours list[i-1] and list[j], and install the new array.
   */
  private replace(i: number, j: number, middle: readonly Region[]): void {
    const list = this.list;
    let delta = 0;
    for (let k = i; k < j; k++) delta -= list[k]!.end - list[k]!.start;
    for (const r of middle) delta += r.end - r.start;
    const from = Math.max(i - 1, 0);
    const to = Math.min(j + 1, list.length);
    const pieces = [...list.slice(from, i), ...middle, ...list.slice(j, to)];
    const merged: Region[] = [];
    for (const p of pieces) {
      const last = merged[merged.length - 1];
      if (last !== undefined && mergeable(last, p)) merged[merged.length - 1] = freezeRegion({ ...last, end: p.end });
      else merged.push(p);
    }
    const next = list.slice(0, from);
    for (const r of merged) next.push(r);
    for (let k = to; k < list.length; k++) next.push(list[k]!);
    this.list = next;
    this.bytes += delta;
    this.hint = 0;
  }
}
