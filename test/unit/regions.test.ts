/**
 * Region map tests: hand-written cases for the splitting, merging and failure rules, then random
 * sequences of map/unmap/protect checked step by step against a page-array model.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RegionMap, mergeable, type Backing, type Region } from '../../src/mm/regions.js';

const P = 0x1000;
const R = 1;
const W = 2;
const X = 4;
const BASE = 0x40_0000;

const pg = (n: number): number => BASE + n * P;

function anon(startPage: number, endPage: number, prot: number, offsetPage = startPage, extra: Partial<Region> = {}): Region {
  return {
    start: pg(startPage),
    end: pg(endPage),
    prot,
    shared: false,
    backing: { kind: 'anon', id: 1, offset: offsetPage * P },
    tag: 'mmap',
    ...extra,
  };
}

function file(startPage: number, endPage: number, prot: number, offsetPage: number, path = '/disk/lib.so'): Region {
  return {
    start: pg(startPage),
    end: pg(endPage),
    prot,
    shared: false,
    backing: { kind: 'file', id: 7, offset: offsetPage * P },
    tag: 'mmap',
    path,
  };
}

/** [startPage, endPage, prot, offsetPage] of each region, relative to BASE. */
function shape(m: RegionMap): Array<[number, number, number, number]> {
  return m.regions().map((r) => [(r.start - BASE) / P, (r.end - BASE) / P, r.prot, r.backing.offset / P]);
}

describe('RegionMap: unit cases', () => {
  test('map into an empty map, find and mappedBytes', () => {
    const m = new RegionMap();
    assert.deepEqual(m.map(anon(0, 4, R | W)), []);
    assert.equal(m.mappedBytes(), 4 * P);
    assert.equal(m.find(pg(0))?.start, pg(0));
    assert.equal(m.find(pg(4) - 1)?.end, pg(4));
    assert.equal(m.find(pg(4)), undefined);
    assert.equal(m.find(pg(0) - 1), undefined);
  });

  test('MAP_FIXED in the middle splits the old region and returns the removed piece', () => {
    const m = new RegionMap();
    m.map(anon(0, 10, R | W, 100));
    const removed = m.map(file(3, 5, R, 0));
    assert.deepEqual(removed, [anon(3, 5, R | W, 103)]);
    assert.deepEqual(shape(m), [
      [0, 3, R | W, 100],
      [3, 5, R, 0],
      [5, 10, R | W, 105],
    ]);
    assert.equal(m.mappedBytes(), 10 * P);
  });

  test('backing offset advances after a split', () => {
    const m = new RegionMap();
    m.map(file(0, 8, R, 16));
    m.unmap(pg(2), 3 * P);
    const [a, b] = m.regions();
    assert.equal(a!.backing.offset, 16 * P);
    assert.equal(b!.start, pg(5));
    assert.equal(b!.backing.offset, (16 + 5) * P);
    // offset + (addr - start) is the same backing position as before the split.
    assert.equal(b!.backing.offset + (pg(6) - b!.start), 16 * P + (pg(6) - pg(0)));
  });

  test('unmap across several regions returns exactly the covered pieces', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R));
    m.map(anon(5, 8, R | W));
    m.map(file(8, 12, R | X, 0));
    m.map(anon(20, 22, R));
    const removed = m.unmap(pg(2), 8 * P);
    assert.deepEqual(removed, [anon(2, 4, R), anon(5, 8, R | W), file(8, 10, R | X, 0)]);
    assert.deepEqual(shape(m), [
      [0, 2, R, 0],
      [10, 12, R | X, 2],
      [20, 22, R, 20],
    ]);
    assert.equal(m.mappedBytes(), 6 * P);
    assert.deepEqual(m.unmap(pg(30), 4 * P), []);
    assert.deepEqual(m.unmap(pg(0), 0), []);
  });

  test('protect of a partially unmapped range changes nothing', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R | W));
    m.map(anon(5, 8, R | W));
    const before = m.toJSON();
    const snapshot = m.regions();
    const res = m.protect(pg(2), 5 * P, R);
    assert.deepEqual(res, { changed: [], fullyMapped: false });
    assert.deepEqual(m.toJSON(), before);
    assert.equal(m.regions(), snapshot);
    // Unmapped at the start and at the end too.
    assert.equal(m.protect(pg(0) - P, 2 * P, R).fullyMapped, false);
    assert.equal(m.protect(pg(7), 2 * P, R).fullyMapped, false);
    assert.equal(m.protect(pg(40), P, R).fullyMapped, false);
    assert.deepEqual(m.toJSON(), before);
  });

  test('protect splits, reports the changed pieces, and re-protect merges back', () => {
    const m = new RegionMap();
    m.map(anon(0, 10, R | W));
    const res = m.protect(pg(3), 2 * P, R);
    assert.equal(res.fullyMapped, true);
    assert.deepEqual(res.changed, [anon(3, 5, R)]);
    assert.deepEqual(shape(m), [
      [0, 3, R | W, 0],
      [3, 5, R, 3],
      [5, 10, R | W, 5],
    ]);
    const back = m.protect(pg(3), 2 * P, R | W);
    assert.deepEqual(back.changed, [anon(3, 5, R | W)]);
    assert.deepEqual(shape(m), [[0, 10, R | W, 0]]);
    // Protecting with the same prot changes nothing and reports nothing.
    assert.deepEqual(m.protect(pg(0), 10 * P, R | W), { changed: [], fullyMapped: true });
  });

  test('protect across adjacent regions that become mergeable merges them', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R));
    m.map(anon(4, 8, R | W));
    assert.equal(m.size, 2);
    m.protect(pg(4), 4 * P, R);
    assert.deepEqual(shape(m), [[0, 8, R, 0]]);
  });

  test('no merge when backing is not contiguous or attributes differ', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R, 0));
    m.map(anon(4, 8, R, 10)); // offsets not contiguous
    m.map(anon(8, 10, R, 10, { tag: 'heap' })); // contiguous with the previous, but a different tag
    m.map(anon(10, 12, R, 12, { tag: 'heap', shared: true }));
    m.map({ ...anon(12, 14, R, 14, { tag: 'heap', shared: true }), backing: { kind: 'anon', id: 2, offset: 14 * P } });
    m.map({ ...anon(14, 16, R, 16, { tag: 'heap', shared: true }), backing: { kind: 'file', id: 2, offset: 16 * P } });
    m.map(file(16, 18, R, 0, '/a'));
    m.map(file(18, 20, R, 2, '/b'));
    assert.equal(m.size, 8);
    // Filling a gap with a contiguous piece merges three into one.
    const n = new RegionMap();
    n.map(file(0, 2, R, 0));
    n.map(file(4, 6, R, 4));
    assert.equal(n.size, 2);
    n.map(file(2, 4, R, 2));
    assert.deepEqual(shape(n), [[0, 6, R, 0]]);
  });

  test('map replacing several regions exactly and partly', () => {
    const m = new RegionMap();
    m.map(anon(0, 2, R));
    m.map(anon(3, 6, W));
    m.map(anon(7, 9, X));
    const removed = m.map(file(1, 8, R | W, 0));
    assert.deepEqual(removed, [anon(1, 2, R), anon(3, 6, W), anon(7, 8, X)]);
    assert.deepEqual(shape(m), [
      [0, 1, R, 0],
      [1, 8, R | W, 0],
      [8, 9, X, 8],
    ]);
    assert.equal(m.mappedBytes(), 9 * P);
  });

  test('check: byte granularity, prot bits, gaps', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R | W));
    m.map(anon(4, 6, R, 100));
    m.map(anon(7, 8, R | W));
    assert.equal(m.check(pg(0) + 5, 10, R | W), true);
    assert.equal(m.check(pg(3) + 100, P, R), true); // across two regions, both readable
    assert.equal(m.check(pg(3) + 100, P, W), false); // the second is read-only
    assert.equal(m.check(pg(0), 6 * P, R), true);
    assert.equal(m.check(pg(0), 6 * P + 1, R), false); // one byte into the gap
    assert.equal(m.check(pg(5), 3 * P, R), false); // across the gap
    assert.equal(m.check(pg(6) - 1, 1, R), true);
    assert.equal(m.check(pg(6), 1, 0), false); // unmapped even for prot 0
    assert.equal(m.check(pg(6), 0, R | W | X), true); // length 0
    assert.equal(m.check(pg(0) - 1, 2, R), false);
    assert.equal(m.check(pg(7), P, R | W), true);
    assert.equal(m.check(pg(7), P, X), false);
    assert.equal(m.check(pg(7), -1, R), false);
    assert.equal(m.check(Number.NaN, 1, R), false);
  });

  test('findFree: top-down picks the highest gap, bottom-up the lowest', () => {
    const m = new RegionMap();
    m.map(anon(2, 4, R));
    m.map(anon(6, 7, R));
    m.map(anon(10, 16, R));
    const opts = (topDown: boolean, lo = pg(0), hi = pg(20)) => ({ lo, hi, topDown });
    assert.equal(m.findFree(P, opts(true)), pg(19));
    assert.equal(m.findFree(4 * P, opts(true)), pg(16));
    assert.equal(m.findFree(5 * P, opts(true)), null);
    assert.equal(m.findFree(3 * P, opts(true, pg(0), pg(16))), pg(7));
    assert.equal(m.findFree(2 * P, opts(true, pg(0), pg(16))), pg(8));
    assert.equal(m.findFree(2 * P, opts(true, pg(0), pg(10))), pg(8));
    assert.equal(m.findFree(2 * P, opts(true, pg(0), pg(7))), pg(4));
    assert.equal(m.findFree(P, opts(false)), pg(0));
    assert.equal(m.findFree(3 * P, opts(false)), pg(7));
    assert.equal(m.findFree(2 * P, opts(false, pg(1))), pg(4));
    assert.equal(m.findFree(2 * P, opts(false, pg(3))), pg(4));
    assert.equal(m.findFree(4 * P, opts(false)), pg(16));
    assert.equal(m.findFree(5 * P, opts(false)), null);
    assert.equal(m.findFree(P, opts(false, pg(11), pg(15))), null);
    assert.equal(m.findFree(P, opts(true, pg(11), pg(15))), null);
    assert.equal(new RegionMap().findFree(3 * P, opts(true)), pg(17));
    assert.equal(new RegionMap().findFree(3 * P, opts(false)), pg(0));
  });

  test('regions() is a snapshot; clone is independent', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R));
    const snap = m.regions();
    const c = m.clone();
    m.map(anon(2, 3, W));
    m.unmap(pg(0), P);
    assert.deepEqual(shape({ regions: () => snap } as RegionMap), [[0, 4, R, 0]]);
    assert.deepEqual(shape(c), [[0, 4, R, 0]]);
    assert.equal(c.mappedBytes(), 4 * P);
    c.unmap(pg(0), 4 * P);
    assert.equal(m.mappedBytes(), 3 * P);
    assert.equal(c.mappedBytes(), 0);
  });

  test('regions are frozen copies of what was given', () => {
    const m = new RegionMap();
    const r = anon(0, 4, R);
    m.map(r);
    const got = m.find(pg(0))!;
    assert.notEqual(got, r);
    assert.ok(Object.isFrozen(got) && Object.isFrozen(got.backing));
    (r as { prot: number }).prot = 7;
    assert.equal(m.find(pg(0))!.prot, R);
    assert.equal('path' in got, false);
  });

  test('alignment and shape are asserted', () => {
    const m = new RegionMap();
    assert.throws(() => m.map(anon(0, 0, R)), RangeError);
    assert.throws(() => m.map({ ...anon(0, 1, R), start: pg(0) + 1 }), RangeError);
    assert.throws(() => m.map({ ...anon(0, 1, R), backing: { kind: 'anon', id: 1, offset: 5 } }), RangeError);
    assert.throws(() => m.map({ ...anon(0, 1, R), prot: 8 }), RangeError);
    assert.throws(() => m.map({ ...anon(0, 1, R), start: 2 ** 47, end: 2 ** 47 + P }), RangeError);
    assert.throws(() => m.map({ ...anon(0, 1, R), backing: { kind: 'shm', id: 1, offset: 0 } as unknown as Backing }), TypeError);
    assert.throws(() => m.unmap(pg(0) + 1, P), RangeError);
    assert.throws(() => m.unmap(pg(0), 100), RangeError);
    assert.throws(() => m.protect(pg(0), 100, R), RangeError);
    assert.throws(() => m.findFree(100, { lo: 0, hi: pg(10), topDown: true }), RangeError);
    assert.equal(m.size, 0);
  });

  test('toJSON/fromJSON round-trip; fromJSON validates and canonicalises', () => {
    const m = new RegionMap();
    m.map(anon(0, 4, R | W));
    m.map(file(6, 8, R | X, 2, '/disk/bin'));
    const json = JSON.parse(JSON.stringify(m)) as unknown;
    const back = RegionMap.fromJSON(json);
    assert.deepEqual(back.regions(), m.regions());
    assert.equal(back.mappedBytes(), m.mappedBytes());
    assert.deepEqual(back.toJSON(), m.toJSON());

    const split = { version: 1, regions: [anon(0, 2, R), anon(2, 4, R)] };
    assert.deepEqual(shape(RegionMap.fromJSON(split)), [[0, 4, R, 0]]);
    assert.throws(() => RegionMap.fromJSON({ version: 1, regions: [anon(0, 4, R), anon(2, 6, R)] }), RangeError);
    assert.throws(() => RegionMap.fromJSON({ version: 1, regions: [anon(4, 6, R), anon(0, 2, R)] }), RangeError);
    assert.throws(() => RegionMap.fromJSON({ version: 1, regions: [{ ...anon(0, 1, R), end: pg(1) + 3 }] }), RangeError);
    assert.throws(() => RegionMap.fromJSON({ version: 2, regions: [] }), TypeError);
    assert.throws(() => RegionMap.fromJSON({ version: 1 }), TypeError);
    assert.throws(() => RegionMap.fromJSON(null), TypeError);
    assert.throws(() => RegionMap.fromJSON({ version: 1, regions: [{ ...anon(0, 1, R), backing: null }] }), TypeError);
  });

  test('a thousand regions: check and find stay correct', () => {
    const m = new RegionMap();
    for (let i = 0; i < 1000; i++) m.map(anon(2 * i, 2 * i + 1, i % 2 ? R : R | W, 3 * i));
    assert.equal(m.size, 1000);
    for (let i = 0; i < 1000; i++) {
      assert.equal(m.check(pg(2 * i), P, R), true);
      assert.equal(m.check(pg(2 * i), P, W), i % 2 === 0);
      assert.equal(m.check(pg(2 * i + 1), 1, 0), false);
      assert.equal(m.find(pg(2 * i) + 17)?.backing.offset, 3 * i * P);
    }
  });
});

// ---- model-based property tests ----

const PAGES = 64;
/** Queries may reach a little outside the modelled pages, which are always unmapped. */
const SPAN = PAGES + 8;

interface PageInfo {
  prot: number;
  shared: boolean;
  tag: string;
  path: string | undefined;
  kind: Backing['kind'];
  id: number;
  offset: number; // the backing offset of this page
}
type Model = Array<PageInfo | null>;

type Op =
  | { op: 'map'; start: number; len: number; prot: number; shared: boolean; tag: string; path: string | undefined; kind: Backing['kind']; id: number; offDelta: number }
  | { op: 'unmap'; start: number; len: number }
  | { op: 'protect'; start: number; len: number; prot: number };

interface CheckQuery {
  start: number; // byte offset from BASE (may be negative)
  len: number;
  prot: number;
}
interface FreeQuery {
  len: number; // pages
  lo: number; // pages
  hi: number; // pages
  topDown: boolean;
}
interface Step {
  op: Op;
  checks: CheckQuery[];
  frees: FreeQuery[];
}

const pageRange = fc
  .tuple(fc.integer({ min: 0, max: PAGES - 1 }), fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 32 })))
  .map(([start, len]) => ({ start, len: Math.min(len, PAGES - start) }));

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc
    .record({
      range: pageRange.filter((r) => r.len > 0),
      prot: fc.integer({ min: 0, max: 7 }),
      shared: fc.boolean(),
      tag: fc.constantFrom('mmap', 'heap'),
      path: fc.constantFrom(undefined, '/a'),
      kind: fc.constantFrom<Backing['kind']>('anon', 'file'),
      id: fc.integer({ min: 1, max: 2 }),
      // Mostly offset = page number, so neighbouring maps of the same object are contiguous and merge.
      offDelta: fc.constantFrom(0, 0, 0, 1, 3, 100),
    })
    .map((r): Op => ({ op: 'map', start: r.range.start, len: r.range.len, prot: r.prot, shared: r.shared, tag: r.tag, path: r.path, kind: r.kind, id: r.id, offDelta: r.offDelta })) },
  { weight: 2, arbitrary: pageRange.map((r): Op => ({ op: 'unmap', start: r.start, len: r.len })) },
  { weight: 4, arbitrary: fc
    .record({ range: pageRange, prot: fc.integer({ min: 0, max: 7 }) })
    .map((r): Op => ({ op: 'protect', start: r.range.start, len: r.range.len, prot: r.prot })) },
);

const checkArb: fc.Arbitrary<CheckQuery> = fc.record({
  start: fc.integer({ min: -2 * P, max: SPAN * P }),
  len: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 24 * P })),
  prot: fc.integer({ min: 0, max: 7 }),
});

const freeArb: fc.Arbitrary<FreeQuery> = fc
  .record({
    len: fc.integer({ min: 1, max: 12 }),
    a: fc.integer({ min: 0, max: SPAN }),
    b: fc.integer({ min: 0, max: SPAN }),
    topDown: fc.boolean(),
  })
  .map(({ len, a, b, topDown }) => ({ len, lo: Math.min(a, b), hi: Math.max(a, b), topDown }));

const stepArb: fc.Arbitrary<Step> = fc.record({
  op: opArb,
  checks: fc.array(checkArb, { maxLength: 6 }),
  frees: fc.array(freeArb, { maxLength: 3 }),
});

function pageOf(r: Region, page: number): PageInfo {
  return {
    prot: r.prot,
    shared: r.shared,
    tag: r.tag,
    path: r.path,
    kind: r.backing.kind,
    id: r.backing.id,
    offset: r.backing.offset + (pg(page) - r.start),
  };
}

/** Expand regions to a page array over [0, SPAN) (asserting they stay inside the modelled pages). */
function expand(regions: readonly Region[]): Model {
  const out: Model = new Array<PageInfo | null>(SPAN).fill(null);
  for (const r of regions) {
    for (let a = r.start; a < r.end; a += P) {
      const page = (a - BASE) / P;
      assert.ok(page >= 0 && page < PAGES, `region page ${page} outside the modelled range`);
      assert.equal(out[page], null, 'overlap');
      out[page] = pageOf(r, page);
    }
  }
  return out;
}

function assertInvariants(m: RegionMap): void {
  const list = m.regions();
  let bytes = 0;
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    assert.equal(r.start % P, 0);
    assert.equal(r.end % P, 0);
    assert.equal(r.backing.offset % P, 0);
    assert.ok(r.start < r.end, 'empty region');
    assert.ok(Object.isFrozen(r));
    if (i > 0) {
      const prev = list[i - 1]!;
      assert.ok(prev.end <= r.start, 'unsorted or overlapping');
      assert.ok(!mergeable(prev, r), `not canonical at 0x${r.start.toString(16)}`);
    }
    bytes += r.end - r.start;
  }
  assert.equal(m.mappedBytes(), bytes);
}

function modelCheck(model: Model, q: CheckQuery): boolean {
  if (q.len === 0) return true;
  const first = Math.floor(q.start / P);
  const last = Math.floor((q.start + q.len - 1) / P);
  for (let p = first; p <= last; p++) {
    const info = p >= 0 && p < SPAN ? model[p] : null;
    if (!info || (info.prot & q.prot) !== q.prot) return false;
  }
  return true;
}

function modelFree(model: Model, q: FreeQuery): number | null {
  const fits = (a: number): boolean => {
    for (let p = a; p < a + q.len; p++) if (model[p]) return false;
    return true;
  };
  if (q.topDown) {
    for (let a = q.hi - q.len; a >= q.lo; a--) if (fits(a)) return a;
  } else {
    for (let a = q.lo; a + q.len <= q.hi; a++) if (fits(a)) return a;
  }
  return null;
}

/** Pieces (as pages) must be sorted, inside [start, start+len), and equal the model's old pages. */
function assertPieces(pieces: readonly Region[], expected: Model, start: number, len: number): void {
  const got = expand(pieces);
  for (let p = 0; p < SPAN; p++) {
    const want = p >= start && p < start + len ? expected[p] : null;
    assert.deepEqual(got[p], want ?? null, `piece page ${p}`);
  }
  for (let i = 1; i < pieces.length; i++) assert.ok(pieces[i - 1]!.end <= pieces[i]!.start);
}

function apply(m: RegionMap, model: Model, op: Op): void {
  const start = pg(op.start);
  const len = op.len * P;
  switch (op.op) {
    case 'map': {
      const region: Region = {
        start,
        end: start + len,
        prot: op.prot,
        shared: op.shared,
        tag: op.tag,
        backing: { kind: op.kind, id: op.id, offset: (op.start + op.offDelta) * P },
        ...(op.path === undefined ? {} : { path: op.path }),
      };
      const old = model.slice();
      const removed = m.map(region);
      assertPieces(removed, old, op.start, op.len);
      for (let p = op.start; p < op.start + op.len; p++) model[p] = pageOf(region, p);
      break;
    }
    case 'unmap': {
      const old = model.slice();
      const removed = m.unmap(start, len);
      assertPieces(removed, old, op.start, op.len);
      for (let p = op.start; p < op.start + op.len; p++) model[p] = null;
      break;
    }
    case 'protect': {
      const before = m.toJSON();
      const old = model.slice();
      let full = true;
      for (let p = op.start; p < op.start + op.len; p++) if (!model[p]) full = false;
      const res = m.protect(start, len, op.prot);
      assert.equal(res.fullyMapped, full);
      if (!full) {
        assert.deepEqual(res.changed, []);
        assert.deepEqual(m.toJSON(), before, 'a failed protect changed the map');
        break;
      }
      const expectChanged: Model = old.map((info, p) =>
        info && p >= op.start && p < op.start + op.len && info.prot !== op.prot ? { ...info, prot: op.prot } : null,
      );
      assertPieces(res.changed, expectChanged, op.start, op.len);
      for (let p = op.start; p < op.start + op.len; p++) model[p] = { ...model[p]!, prot: op.prot };
      break;
    }
  }
}

describe('RegionMap: random sequences against a page model', () => {
  test('map/unmap/protect keep the map canonical and equal to the model', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), (steps) => {
        const m = new RegionMap();
        const model: Model = new Array<PageInfo | null>(SPAN).fill(null);
        for (const step of steps) {
          const snapshot = m.regions();
          const snapshotJSON = m.toJSON();
          const clone = m.clone();

          apply(m, model, step.op);

          assertInvariants(m);
          assert.deepEqual(expand(m.regions()), model);

          // Earlier snapshots and clones are untouched by the change.
          assert.deepEqual({ version: 1, regions: snapshot.map((r) => ({ ...r, backing: { ...r.backing } })) }, snapshotJSON);
          assert.deepEqual(clone.toJSON(), snapshotJSON);

          // check() and find() agree with the model: random queries, and every boundary crossed by a byte.
          const queries = [...step.checks];
          for (const r of m.regions()) {
            for (const prot of [0, R, W, R | W | X]) {
              queries.push({ start: r.start - BASE - 1, len: 2, prot });
              queries.push({ start: r.end - BASE - 1, len: 2, prot });
              queries.push({ start: r.start - BASE, len: r.end - r.start, prot });
            }
          }
          for (const q of queries) {
            assert.equal(m.check(BASE + q.start, q.len, q.prot), modelCheck(model, q), `check ${JSON.stringify(q)}`);
          }
          for (const q of step.checks) {
            const page = Math.floor(q.start / P);
            const info = page >= 0 && page < SPAN ? model[page] : null;
            const found = m.find(BASE + q.start);
            assert.equal(found !== undefined, info !== null);
            if (found) assert.deepEqual(pageOf(found, page), info);
          }

          // findFree() agrees with a brute-force search of the model.
          for (const q of step.frees) {
            const got = m.findFree(q.len * P, { lo: pg(q.lo), hi: pg(q.hi), topDown: q.topDown });
            const want = modelFree(model, q);
            assert.equal(got, want === null ? null : pg(want), `findFree ${JSON.stringify(q)}`);
          }

          // Checkpoint round-trip.
          const back = RegionMap.fromJSON(JSON.parse(JSON.stringify(m.toJSON())) as unknown);
          assert.deepEqual(back.regions(), m.regions());
          assert.equal(back.mappedBytes(), m.mappedBytes());
        }
      }),
      { numRuns: 500 },
    );
  });

  test('findFree agrees with the model for every lo, hi and small length on dense maps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 7 })), { minLength: PAGES, maxLength: PAGES }),
        (pages) => {
          // Page p is unmapped when pages[p] is -1, else mapped with that prot (neighbours of equal prot merge).
          const m = new RegionMap();
          pages.forEach((prot, p) => {
            if (prot >= 0) m.map(anon(p, p + 1, prot));
          });
          assertInvariants(m);
          // free[a] = number of free pages below page a, so [a, a+len) is free iff free[a+len]-free[a] === len.
          const free = [0];
          for (let p = 0; p < SPAN; p++) free.push(free[p]! + (p < PAGES && pages[p]! >= 0 ? 0 : 1));
          const fits = (a: number, len: number): boolean => free[a + len]! - free[a]! === len;
          for (let len = 1; len <= 4; len++) {
            for (let lo = 0; lo <= SPAN; lo++) {
              let top: number | null = null; // highest fit in [lo, hi): grows with hi
              for (let hi = lo; hi <= SPAN; hi++) {
                if (hi - len >= lo && fits(hi - len, len)) top = hi - len;
                assert.equal(m.findFree(len * P, { lo: pg(lo), hi: pg(hi), topDown: true }), top === null ? null : pg(top));
              }
              for (let hi = lo; hi <= SPAN; hi++) {
                let bottom: number | null = null; // lowest fit in [lo, hi)
                for (let a = lo; a + len <= hi; a++) {
                  if (fits(a, len)) {
                    bottom = a;
                    break;
                  }
                }
                assert.equal(m.findFree(len * P, { lo: pg(lo), hi: pg(hi), topDown: false }), bottom === null ? null : pg(bottom));
              }
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test('the same pages reached by different routes have the same representation', () => {
    // Canonical form: mapping a range in pieces (in any order) equals mapping it at once.
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: PAGES - 1 }), { maxLength: 10 }),
        fc.integer({ min: 0, max: 7 }),
        (cuts, prot) => {
          const whole = new RegionMap();
          whole.map(anon(0, PAGES, prot));
          const bounds = [0, ...cuts.slice().sort((a, b) => a - b), PAGES];
          const pieces: Array<[number, number]> = [];
          for (let i = 1; i < bounds.length; i++) pieces.push([bounds[i - 1]!, bounds[i]!]);
          // A deterministic shuffle derived from the cuts.
          pieces.sort((a, b) => ((a[0] * 37) % 11) - ((b[0] * 37) % 11));
          const parts = new RegionMap();
          for (const [s, e] of pieces) parts.map(anon(s, e, prot));
          assert.deepEqual(parts.toJSON(), whole.toJSON());
          // And re-protecting a piece and back restores the single region.
          const [s, e] = pieces[0]!;
          parts.protect(pg(s), (e - s) * P, prot ^ W);
          parts.protect(pg(s), (e - s) * P, prot);
          assert.deepEqual(parts.toJSON(), whole.toJSON());
        },
      ),
      { numRuns: 300 },
    );
  });
});
