/**
 * BlockImage (--storage blk): the ext4 code over a virtual block device with its own LRU block
 * cache. Real images built by mkfs.ext4 -d, read and written through Ext4 with a cache far smaller
 * than the data (evictions, write-back, pinned bursts), checked against the host files, e2fsck -fn,
 * debugfs and the same run over MappedImage.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BLOCK_SIZE, BlockImage, withPin } from '../../src/storage/blkdev.js';
import { MappedImage, type BlockDev } from '../../src/storage/blockdev.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { debugfs, fsckCheck, mkfs } from '../../src/storage/ext4/mkimage.js';
import { MapvisorError } from '../../src/errors.js';
import * as libc from '../../src/host/libc.js';

const MiB = 2 ** 20;
const SMALL_CACHE = 64 * BLOCK_SIZE; // 256 KiB: far smaller than the data, to force evictions
const READ_CHUNK = 256 * 1024; // bytes per Ext4.read call (one pinned call: a burst as big as the cache)
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

function fsType(dir: string): string {
  const r = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

/** A directory on a disk file system (os.tmpdir() unless it is tmpfs, then /var/tmp). */
function diskDir(): string {
  const t = os.tmpdir();
  return fsType(t) === 'tmpfs' ? '/var/tmp' : t;
}

let tmp = '';
let srcDir = '';
let baseImg = '';

function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

/** Deterministic pseudo-random bytes (xorshift32). */
function pattern(seed: number, n: number): Buffer {
  const b = Buffer.alloc(Math.ceil(n / 4) * 4);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < b.length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    b.writeUInt32LE(s >>> 0, i);
  }
  return b.subarray(0, n);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const fileSha = (p: string): string => sha(fs.readFileSync(p));

/** Host files under `dir` (relative paths). */
function hostFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...hostFiles(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** Reads a whole file through Ext4, one pinned call per READ_CHUNK. */
function readAll(e: Ext4, dev: BlockDev, p: string): Buffer {
  const ino = withPin(dev, () => e.resolve(p));
  const size = withPin(dev, () => e.stat(ino).size);
  const out = Buffer.alloc(size);
  for (let off = 0; off < size; off += READ_CHUNK) {
    const n = withPin(dev, () => e.read(ino, off, out.subarray(off, Math.min(size, off + READ_CHUNK))));
    assert.equal(n, Math.min(READ_CHUNK, size - off));
  }
  return out;
}

/** Every regular file reachable from the root, through readdir (paths with a leading slash). */
function walk(e: Ext4, dev: BlockDev, ino = e.rootIno, pre = ''): string[] {
  const out: string[] = [];
  const { entries } = withPin(dev, () => e.readdir(ino));
  for (const d of entries) {
    if (d.name === '.' || d.name === '..' || d.name === 'lost+found') continue;
    const type = withPin(dev, () => e.stat(d.ino).mode) & S_IFMT;
    if (type === S_IFDIR) out.push(...walk(e, dev, d.ino, `${pre}/${d.name}`));
    else if (type === S_IFREG) out.push(`${pre}/${d.name}`);
  }
  return out;
}

/**
 * The write workload: mkdirs, several MiB over many files in uneven chunks (each Ext4 call pinned),
 * overwrites, a truncate, renames and unlinks. Returns the expected contents by path.
 */
function workload(e: Ext4, dev: BlockDev): Map<string, Buffer> {
  const call = <T>(f: () => T): T => withPin(dev, f);
  const r = rng(7);
  const model = new Map<string, Buffer>();
  const w = call(() => e.mkdir(e.rootIno, 'w', 0o755));
  const sub = call(() => e.mkdir(w, 'sub', 0o755));
  const deep = call(() => e.mkdir(sub, 'deep', 0o700));
  const dirs: [number, string][] = [
    [w, '/w'],
    [sub, '/w/sub'],
    [deep, '/w/sub/deep'],
  ];
  for (let i = 0; i < 48; i++) {
    const [dino, dpath] = dirs[i % dirs.length]!;
    const size = i % 8 === 0 ? 512 * 1024 + r(300_000) : r(150_000);
    const data = pattern(1000 + i, size);
    const ino = call(() => e.create(dino, `f${i}.bin`, 0o644));
    for (let off = 0; off < size; ) {
      // The big files go in one call each: more blocks than the cache holds, while the call holds views of the inode.
      const n = i % 8 === 0 ? size : Math.min(size - off, 1 + r(70_000));
      call(() => e.write(ino, off, data.subarray(off, off + n)));
      off += n;
    }
    model.set(`${dpath}/f${i}.bin`, data);
  }
  // Overwrite the middle of some files (crossing block boundaries).
  for (const i of [0, 8, 16, 5]) {
    const p = [...model.keys()].find((k) => k.endsWith(`/f${i}.bin`))!;
    const data = Buffer.from(model.get(p)!);
    const off = Math.floor(data.length / 3) + 123;
    const patch = pattern(9000 + i, Math.min(20_000, data.length - off));
    patch.copy(data, off);
    const ino = call(() => e.resolve(p));
    call(() => e.write(ino, off, patch));
    model.set(p, data);
  }
  // Truncate one file down.
  {
    const p = '/w/f3.bin';
    const ino = call(() => e.resolve(p));
    call(() => e.truncate(ino, 5000));
    model.set(p, model.get(p)!.subarray(0, 5000));
  }
  // Renames (across directories too) and unlinks.
  call(() => e.rename(w, 'f0.bin', sub, 'renamed0.bin'));
  model.set('/w/sub/renamed0.bin', model.get('/w/f0.bin')!);
  model.delete('/w/f0.bin');
  call(() => e.rename(deep, 'f2.bin', w, 'up2.bin'));
  model.set('/w/up2.bin', model.get('/w/sub/deep/f2.bin')!);
  model.delete('/w/sub/deep/f2.bin');
  for (const [dino, dpath, name] of [
    [w, '/w', 'f6.bin'],
    [sub, '/w/sub', 'f10.bin'],
    [deep, '/w/sub/deep', 'f11.bin'],
    [w, '/w', 'f9.bin'],
  ] as const) {
    call(() => e.unlink(dino, name));
    model.delete(`${dpath}/${name}`);
  }
  call(() => e.mkdir(e.rootIno, 'after', 0o755));
  const last = call(() => e.create(call(() => e.resolve('/after')), 'tail.txt', 0o644));
  const tail = Buffer.from('written last\n');
  call(() => e.write(last, 0, tail));
  model.set('/after/tail.txt', tail);
  return model;
}

function copyImage(name: string): string {
  const p = path.join(tmp, name);
  fs.copyFileSync(baseImg, p);
  return p;
}

function assertClean(img: string): void {
  const r = fsckCheck(img);
  assert.equal(r.status, 0, `e2fsck -fn ${img}:\n${r.output}`);
}

before(() => {
  tmp = fs.mkdtempSync(path.join(diskDir(), 'mapvisor-blkdev-'));
  srcDir = path.join(tmp, 'src');
  const files: [string, number][] = [
    ['empty', 0],
    ['one', 1],
    ['a/b/almost-block', 4095],
    ['a/block', 4096],
    ['a/b/c/block-plus', 4097],
    ['odd', 100_003],
    ['a/mib', MiB],
    ['big/five', 5 * MiB + 777],
    ['big/three', 3 * MiB],
  ];
  for (let i = 0; i < 120; i++) files.push([`many/file${i}`, 200 + ((i * 977) % 9000)]);
  for (const [rel, n] of files) {
    const p = path.join(srcDir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, pattern(rel.length * 7919 + n, n));
  }
  baseImg = path.join(tmp, 'base.img');
  mkfs(baseImg, { size: '64M', blockSize: 4096, from: srcDir });
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('reads every file through Ext4 over a 64-block cache: sha256 equals the host file; the bound holds after each call', () => {
  const dev = BlockImage.open(baseImg, { mode: 'ro', cacheBytes: SMALL_CACHE });
  try {
    const e = withPin(dev, () => Ext4.open(dev));
    const seen = walk(e, dev).sort();
    const want = hostFiles(srcDir).map((p) => `/${p}`).sort();
    assert.deepEqual(seen, want);
    for (const p of want) {
      assert.equal(sha(readAll(e, dev, p)), fileSha(path.join(srcDir, p)), p);
      assert.ok(dev.stats().cachedBytes <= SMALL_CACHE, `cache within its bound after reading ${p}`);
    }
    const s = dev.stats();
    assert.ok(s.evictions > 0 && s.misses > 0 && s.hits > 0, JSON.stringify(s));
    assert.equal(s.writeRequests, 0);
    assert.equal(s.dirtyBytes, 0);
    assert.ok(s.bytesRead >= 8 * MiB, `read at least the file data (${s.bytesRead})`);
  } finally {
    dev.close();
  }
  assert.throws(() => dev.bytes(0, 1), RangeError); // closed
});

test('writes through Ext4 over BlockImage (rw, small cache): e2fsck clean, debugfs returns the bytes, same image as over MappedImage', () => {
  const imgMapped = copyImage('mapped.img');
  const imgBlk = copyImage('blk.img');
  const fixedNow = (): { sec: number; nsec: number } => ({ sec: 1_700_000_000, nsec: 5 });
  // Ext4 draws inode generations from Math.random: seed it identically for both runs so the images can be compared byte for byte.
  const realRandom = Math.random;
  const run = (dev: BlockDev): Map<string, Buffer> => {
    const r = rng(12345);
    Math.random = () => r(2 ** 32) / 2 ** 32;
    try {
      const e = withPin(dev, () => Ext4.open(dev, { now: fixedNow }));
      const model = workload(e, dev);
      withPin(dev, () => e.close());
      return model;
    } finally {
      Math.random = realRandom;
    }
  };
  const m = MappedImage.open(imgMapped, 'rw');
  let modelA: Map<string, Buffer>;
  try {
    modelA = run(m);
  } finally {
    m.close();
  }
  const b = BlockImage.open(imgBlk, { mode: 'rw', cacheBytes: SMALL_CACHE });
  let modelB: Map<string, Buffer>;
  try {
    modelB = run(b);
    const s = b.stats();
    assert.ok(s.evictions > 0 && s.writeRequests > 0, JSON.stringify(s));
    assert.equal(s.dirtyBytes, 0, 'close() of Ext4 flushed everything');
    assert.ok(s.syncs >= 1);
    assert.ok(s.cachedBytes <= SMALL_CACHE);
    // Coalescing: fewer write requests than blocks written.
    assert.ok(s.writeRequests < s.bytesWritten / BLOCK_SIZE, `${s.writeRequests} requests for ${s.bytesWritten / BLOCK_SIZE} blocks`);
  } finally {
    b.close();
  }
  assert.deepEqual([...modelA.keys()], [...modelB.keys()]);
  let total = 0;
  for (const v of modelB.values()) total += v.length;
  assert.ok(total > 5 * MiB, `several MiB written (${total})`);

  assertClean(imgBlk);
  assertClean(imgMapped);
  for (const [p, data] of modelB) {
    assert.ok(debugfs(imgBlk, `cat ${p}`).equals(data), `debugfs cat ${p} (BlockImage)`);
  }
  for (const p of ['/w/sub/renamed0.bin', '/w/up2.bin', '/after/tail.txt', '/w/f3.bin']) {
    assert.ok(debugfs(imgMapped, `cat ${p}`).equals(modelA.get(p)!), `debugfs cat ${p} (MappedImage)`);
  }
  assert.equal(debugfs(imgBlk, 'cat /w/f0.bin').length, 0, 'renamed away');
  assert.equal(debugfs(imgBlk, 'cat /w/f6.bin').length, 0, 'unlinked');
  // The same operations through both devices give the same bytes: the images are identical.
  assert.equal(fileSha(imgBlk), fileSha(imgMapped));

  // Original files are intact too, read back through a fresh BlockImage.
  const again = BlockImage.open(imgBlk, { mode: 'ro', cacheBytes: SMALL_CACHE });
  try {
    const e = withPin(again, () => Ext4.open(again));
    for (const p of ['/big/five', '/a/mib', '/odd']) assert.equal(sha(readAll(e, again, p)), fileSha(path.join(srcDir, p)));
    for (const [p, data] of modelB) assert.ok(readAll(e, again, p).equals(data), p);
  } finally {
    again.close();
  }
});

test('cow: the image never changes; reads in the same session see the writes (through the overlay)', () => {
  const img = copyImage('cow.img');
  const before = fileSha(img);
  const dev = BlockImage.open(img, { mode: 'cow', cacheBytes: SMALL_CACHE });
  try {
    assert.equal(dev.readOnly, false);
    const e = withPin(dev, () => Ext4.open(dev));
    const model = workload(e, dev);
    for (const [p, data] of model) assert.ok(readAll(e, dev, p).equals(data), p);
    assert.equal(sha(readAll(e, dev, '/big/five')), fileSha(path.join(srcDir, 'big/five')));
    withPin(dev, () => e.close());
    const s = dev.stats();
    assert.equal(s.writeRequests, 0);
    assert.equal(s.bytesWritten, 0);
    assert.ok(s.overlayBytes > SMALL_CACHE, `dirty blocks evicted into the overlay (${s.overlayBytes})`);
    assert.ok(s.cachedBytes <= SMALL_CACHE);
  } finally {
    dev.close();
  }
  assert.equal(fileSha(img), before);
  assertClean(img);
});

test('pin: views taken in a burst bigger than the cache stay valid; the bound holds again after the outermost unpin', () => {
  const f = path.join(tmp, 'raw.bin');
  const nblocks = 512;
  const raw = Buffer.alloc(nblocks * BLOCK_SIZE);
  for (let b = 0; b < nblocks; b++) raw.fill(b & 0xff, b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
  fs.writeFileSync(f, raw);
  const cap = 16;
  const dev = BlockImage.open(f, { mode: 'rw', cacheBytes: cap * BLOCK_SIZE, readaheadBytes: 0 });
  try {
    assert.equal(dev.size, nblocks * BLOCK_SIZE);
    // Fill the cache unpinned, then a pinned burst of 100 blocks: the 16 old blocks go first, only the excess is overflow.
    for (let b = 400; b < 400 + cap; b++) dev.bytes(b * BLOCK_SIZE, 8);
    assert.equal(dev.stats().cachedBytes, cap * BLOCK_SIZE);
    dev.pin();
    dev.pin(); // nested
    const views: Uint8Array[] = [];
    for (let b = 0; b < 100; b++) {
      const v = dev.bytes(b * BLOCK_SIZE + 100, 200);
      views.push(v);
      if (b % 3 === 0) {
        v[0] = 0xee;
        dev.dirty(b * BLOCK_SIZE + 100, 1);
      }
    }
    assert.equal(dev.stats().cachedBytes, 100 * BLOCK_SIZE, 'old blocks evicted, the burst kept');
    const addr7 = dev.blockAddr(7);
    dev.unpin();
    assert.equal(dev.stats().cachedBytes, 100 * BLOCK_SIZE, 'inner unpin does not shrink');
    for (let b = 0; b < 100; b++) {
      assert.equal(views[b]![0], b % 3 === 0 ? 0xee : b & 0xff, `view of block ${b}`);
      assert.equal(views[b]![199], b & 0xff);
    }
    assert.equal(new Uint8Array(libc.view(addr7, 1))[0], 7);
    dev.unpin();
    const s = dev.stats();
    assert.ok(s.cachedBytes <= cap * BLOCK_SIZE, `bound after unpin (${s.cachedBytes})`);
    assert.ok(s.evictions >= 100);
    assert.throws(() => dev.unpin(), /without pin/);
    // The most recent blocks survived the shrink and moved into the primary memory intact.
    for (let b = 100 - cap; b < 100; b++) {
      const v = dev.bytes(b * BLOCK_SIZE, BLOCK_SIZE);
      assert.equal(v[100], b % 3 === 0 ? 0xee : b & 0xff);
      assert.equal(v[4095], b & 0xff);
    }
    // Evicted dirty blocks were written back on eviction.
    const disk = fs.readFileSync(f);
    assert.equal(disk[3 * BLOCK_SIZE + 100], 0xee);
    assert.equal(disk[4 * BLOCK_SIZE + 100], 4);
    // Contract checks.
    assert.throws(() => dev.bytes(BLOCK_SIZE - 2, 4), /4 KiB boundary/);
    assert.throws(() => dev.bytes(nblocks * BLOCK_SIZE - 2, 4), RangeError);
    dev.bytes(300 * BLOCK_SIZE, 1);
    for (let b = 301; b < 301 + cap; b++) dev.bytes(b * BLOCK_SIZE, 1); // block 300 is evicted unpinned
    assert.throws(() => dev.dirty(300 * BLOCK_SIZE, 1), /not in the cache/);
  } finally {
    dev.close();
  }
  const disk = fs.readFileSync(f);
  for (let b = 0; b < 100; b++) assert.equal(disk[b * BLOCK_SIZE + 100], b % 3 === 0 ? 0xee : b & 0xff, `block ${b} on disk`);
  assert.equal(disk[150 * BLOCK_SIZE + 100], 150);
});

test('stats: a second pass over a file that fits is all hits; loadRange and flush coalesce', () => {
  const dev = BlockImage.open(baseImg, { mode: 'ro', cacheBytes: 16 * MiB });
  try {
    const e = withPin(dev, () => Ext4.open(dev));
    const want = fileSha(path.join(srcDir, 'big/three'));
    assert.equal(sha(readAll(e, dev, '/big/three')), want);
    const cold = dev.stats();
    assert.ok(cold.misses > 0 && cold.readRequests > 0);
    // Readahead: far fewer requests than blocks.
    assert.ok(cold.readRequests < (3 * MiB) / BLOCK_SIZE / 8, `cold pass: ${cold.readRequests} requests`);
    assert.ok(cold.prefetched > 0);
    dev.resetStats();
    assert.equal(sha(readAll(e, dev, '/big/three')), want);
    const warm = dev.stats();
    assert.equal(warm.misses, 0);
    assert.equal(warm.requests, 0);
    assert.equal(warm.bytesRead, 0);
    assert.ok(warm.hits >= (3 * MiB) / BLOCK_SIZE, `hits ${warm.hits}`);
  } finally {
    dev.close();
  }

  const f = path.join(tmp, 'coalesce.bin');
  fs.writeFileSync(f, Buffer.alloc(4 * MiB, 0x11));
  const d = BlockImage.open(f, { mode: 'rw', cacheBytes: 8 * MiB, readaheadBytes: 0 });
  try {
    assert.equal(d.loadRange(0, MiB), 256);
    assert.deepEqual([d.stats().readRequests, d.stats().bytesRead, d.stats().misses], [1, MiB, 256]);
    d.bytes(2 * MiB + 5 * BLOCK_SIZE, 1); // a cached block inside the next range splits it in two
    d.resetStats();
    assert.equal(d.loadRange(2 * MiB, MiB), 255);
    assert.deepEqual([d.stats().readRequests, d.stats().hits], [2, 1]);
    assert.equal(d.loadRange(100, 10), 0, 'already cached');
    // blockAddr is the cached copy: write through the address, mark dirty, flush.
    const a = d.blockAddr(3);
    assert.equal(new Uint8Array(libc.view(a, 1))[0], 0x11);
    libc.memset(a, 0x22, BLOCK_SIZE);
    d.dirty(3 * BLOCK_SIZE, BLOCK_SIZE);
    // A whole-block overwrite does not read the block first.
    d.resetStats();
    const w = d.blockAddrForOverwrite(900);
    assert.deepEqual([d.stats().misses, d.stats().readRequests], [1, 0]);
    libc.memset(w, 0x55, BLOCK_SIZE);
    d.dirty(900 * BLOCK_SIZE, BLOCK_SIZE);
    assert.equal(d.blockAddrForOverwrite(900), w);
    assert.equal(d.bytes(900 * BLOCK_SIZE + 9, 1)[0], 0x55);
    for (let b = 10; b < 20; b++) {
      d.bytes(b * BLOCK_SIZE, BLOCK_SIZE).fill(0x33);
      d.dirty(b * BLOCK_SIZE, BLOCK_SIZE);
    }
    assert.equal(d.stats().dirtyBytes, 12 * BLOCK_SIZE);
    d.resetStats();
    d.flush(0, 12 * BLOCK_SIZE); // a range: blocks 3 and 10..11
    assert.deepEqual([d.stats().writeRequests, d.stats().bytesWritten, d.stats().syncs], [2, 3 * BLOCK_SIZE, 1]);
    d.flush();
    assert.deepEqual([d.stats().writeRequests, d.stats().bytesWritten, d.stats().dirtyBytes], [4, 12 * BLOCK_SIZE, 0]);
    d.flush(); // nothing left: no request, no sync
    assert.deepEqual([d.stats().writeRequests, d.stats().syncs], [4, 2]);
  } finally {
    d.close();
  }
  const disk = fs.readFileSync(f);
  assert.equal(disk[3 * BLOCK_SIZE], 0x22);
  assert.equal(disk[15 * BLOCK_SIZE + 7], 0x33);
  assert.equal(disk[20 * BLOCK_SIZE], 0x11);
  assert.equal(disk[900 * BLOCK_SIZE + 4095], 0x55);
});

test('ro refuses writes; an unaligned image size works (the tail block is partial); bad options are one-line errors', () => {
  const f = path.join(tmp, 'odd.bin');
  const n = 10 * BLOCK_SIZE + 123;
  fs.writeFileSync(f, pattern(5, n));
  const r = BlockImage.open(f, { mode: 'ro', cacheBytes: 64 * BLOCK_SIZE });
  assert.equal(r.readOnly, true);
  assert.throws(() => r.dirty(0, 1), RangeError);
  assert.ok(Buffer.from(r.bytes(10 * BLOCK_SIZE, 123)).equals(pattern(5, n).subarray(10 * BLOCK_SIZE)));
  r.close();
  const w = BlockImage.open(f, { mode: 'rw', cacheBytes: 64 * BLOCK_SIZE });
  w.bytes(10 * BLOCK_SIZE + 100, 23).fill(0x44);
  w.dirty(10 * BLOCK_SIZE + 100, 23);
  w.close();
  assert.equal(fs.statSync(f).size, n, 'the partial tail block is written back without growing the file');
  assert.equal(fs.readFileSync(f)[n - 1], 0x44);
  assert.throws(() => BlockImage.open(path.join(tmp, 'missing.img')), (e: unknown) => e instanceof MapvisorError && /ENOENT/.test(e.message));
  assert.throws(() => BlockImage.open(f, { cacheBytes: 4096 }), (e: unknown) => e instanceof MapvisorError && /too small/.test(e.message));
  assert.throws(() => BlockImage.open(f, { direct: true }), (e: unknown) => e instanceof MapvisorError && /4 KiB blocks/.test(e.message));
});

test('O_DIRECT (cache=none) on a disk file system: Ext4 reads and writes, e2fsck clean', (t) => {
  const dir = diskDir();
  const type = fsType(dir);
  if (type === 'tmpfs') {
    t.skip(`no disk file system found (${dir} is tmpfs)`);
    return;
  }
  const img = copyImage('direct.img');
  const dev = BlockImage.open(img, { mode: 'rw', cacheBytes: SMALL_CACHE, direct: true });
  try {
    assert.equal(dev.direct, true);
    const e = withPin(dev, () => Ext4.open(dev));
    assert.equal(sha(readAll(e, dev, '/big/five')), fileSha(path.join(srcDir, 'big/five')));
    const model = workload(e, dev);
    withPin(dev, () => e.close());
    for (const p of ['/w/sub/renamed0.bin', '/after/tail.txt']) assert.ok(readAll(e, dev, p).equals(model.get(p)!));
    const s = dev.stats();
    assert.ok(s.readRequests > 0 && s.writeRequests > 0 && s.evictions > 0, JSON.stringify(s));
  } finally {
    dev.close();
  }
  assertClean(img);
  assert.ok(debugfs(img, 'cat /w/up2.bin').length > 0);
});

test('O_DIRECT on tmpfs: the clear error, or a skip where tmpfs supports O_DIRECT', (t) => {
  const shm = '/dev/shm';
  if (!fs.existsSync(shm) || fsType(shm) !== 'tmpfs') {
    t.skip('no tmpfs at /dev/shm');
    return;
  }
  const dir = fs.mkdtempSync(path.join(shm, 'mapvisor-blkdev-'));
  try {
    const img = path.join(dir, 'shm.img');
    fs.copyFileSync(baseImg, img);
    let dev: BlockImage | undefined;
    try {
      dev = BlockImage.open(img, { mode: 'ro', direct: true, cacheBytes: SMALL_CACHE });
    } catch (e) {
      assert.ok(e instanceof MapvisorError, String(e));
      assert.match(e.message, /cache=none needs a host file system that supports O_DIRECT/);
      assert.match(e.fix, /ext4 or xfs.*drop cache=none/);
      return;
    }
    dev.close();
    t.skip(`tmpfs on this kernel (${os.release()}) supports O_DIRECT (Linux >= 6.6): the refusal cannot be shown here`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
