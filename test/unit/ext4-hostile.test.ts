/**
 * Hostile images and inputs: every one must end in an FsError or a MapvisorError — never another
 * exception, a hang, or a write outside the image.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferDev } from '../../src/storage/blockdev.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { FsError } from '../../src/storage/ext4/errors.js';
import { MapvisorError } from '../../src/errors.js';
import { mkfs } from '../../src/storage/ext4/mkimage.js';
import { superblockChecksum, SB_OFFSET } from '../../src/storage/ext4/superblock.js';
import { setInodeChecksum, inodeCsumSeed } from '../../src/storage/ext4/inode.js';
import { sealLeaf } from '../../src/storage/ext4/dirent.js';
import { E } from '../../src/abi/errno.js';

let tmp = '';
let pristine: Buffer; // metadata_csum image
let plain: Buffer; // no metadata_csum: corruption reaches the parsers

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-ext4-hostile-'));
  const src = path.join(tmp, 'src');
  fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(src, 'dir', `file${i}`), Buffer.alloc(i * 300, i));
  fs.writeFileSync(path.join(src, 'data'), Buffer.alloc(50_000, 7));
  const img = path.join(tmp, 'a.img');
  mkfs(img, { size: '8M', blockSize: 4096, from: src });
  pristine = fs.readFileSync(img);
  mkfs(img, { size: '8M', blockSize: 1024, from: src, features: '^metadata_csum,^64bit' });
  plain = fs.readFileSync(img);
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const GUARD = 8192;

/** An image inside a larger buffer with guard bytes on both sides, to catch writes outside the image. */
function guarded(image: Buffer): { dev: BufferDev; whole: Uint8Array; intact: () => boolean } {
  const whole = new Uint8Array(image.length + 2 * GUARD).fill(0xa5);
  whole.set(image, GUARD);
  const dev = new BufferDev(whole.subarray(GUARD, GUARD + image.length));
  const intact = () => whole.subarray(0, GUARD).every((x) => x === 0xa5) && whole.subarray(GUARD + image.length).every((x) => x === 0xa5);
  return { dev, whole, intact };
}

function sbView(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset + SB_OFFSET, 1024);
}
function resealSb(b: Uint8Array): void {
  sbView(b).setUint32(0x3fc, superblockChecksum(b.subarray(SB_OFFSET, SB_OFFSET + 1024)), true);
}

const isFsErr = (errno?: number) => (x: unknown) => x instanceof FsError && (errno === undefined || x.errno === errno);
const isImageErr = (re?: RegExp) => (x: unknown) => x instanceof MapvisorError && x.message.length > 0 && x.fix.length > 0 && (!re || re.test(x.oneLine()));

test('superblock: bad magic, bad checksum, absurd counts, unknown features, journal needing recovery', () => {
  const cases: Array<[string, (b: Buffer) => void, RegExp]> = [
    ['bad magic', (b) => sbView(b).setUint16(0x38, 0x1234, true), /not an ext2\/ext3\/ext4/],
    ['bad checksum', (b) => (b[SB_OFFSET + 0x78] = 0x41), /checksum/],
    ['zero inodes per group', (b) => (sbView(b).setUint32(0x28, 0, true), resealSb(b)), /corrupted superblock/],
    ['inode count mismatch', (b) => (sbView(b).setUint32(0x00, 12345, true), resealSb(b)), /corrupted superblock/],
    ['huge block size', (b) => (sbView(b).setUint32(0x18, 30, true), resealSb(b)), /block size/],
    ['more blocks than the image', (b) => (sbView(b).setUint32(0x04, 1 << 30, true), resealSb(b)), /truncated|corrupted/],
    ['free blocks above total', (b) => (sbView(b).setUint32(0x0c, 0xfffffff0, true), resealSb(b)), /corrupted/],
    ['unknown incompat feature', (b) => (sbView(b).setUint32(0x60, sbView(b).getUint32(0x60, true) | 0x40000000, true), resealSb(b)), /features/],
    ['journal needs recovery', (b) => (sbView(b).setUint32(0x60, sbView(b).getUint32(0x60, true) | 0x4, true), resealSb(b)), /needs recovery.*e2fsck -fy/],
    ['bad inode size', (b) => (sbView(b).setUint16(0x58, 100, true), resealSb(b)), /inode size/],
    ['group descriptor checksum', (b) => (b[4096 + 0x0c] ^= 0xff), /corrupted file system/],
    ['inode table outside the image', (b) => (b.writeUInt32LE(0x7fffff00, 4096 + 0x08), b.writeUInt16LE(0, 4096 + 0x1e)), /corrupted/],
  ];
  for (const [what, mutate, re] of cases) {
    const b = Buffer.from(pristine);
    mutate(b);
    const g = guarded(b);
    assert.throws(() => Ext4.open(g.dev), isImageErr(re), what);
    assert.ok(g.intact(), what);
  }
  // A device too small to hold a superblock.
  assert.throws(() => Ext4.open(new BufferDev(new Uint8Array(1000))), isImageErr());
});

function inodeOffset(e: Ext4, ino: number): number {
  const run = e.geo;
  void run;
  // Locate through the public stat-independent path: group descriptor 0's inode table (small images have one group).
  const gdOff = (e.geo.firstDataBlock + 1) * e.geo.blockSize;
  const dv = new DataView(e.dev.bytes(gdOff, 32).slice().buffer);
  const g = Math.floor((ino - 1) / e.geo.inodesPerGroup);
  assert.equal(g, 0);
  return dv.getUint32(0x08, true) * e.geo.blockSize + ((ino - 1) % e.geo.inodesPerGroup) * e.geo.inodeSize;
}

test('an inode whose extent points outside the image', () => {
  const g = guarded(Buffer.from(pristine));
  const e = Ext4.open(g.dev);
  const ino = e.resolve('/data');
  const raw = g.dev.bytes(inodeOffset(e, ino), e.geo.inodeSize);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // i_block holds the extent root: header (12 bytes), then the first extent; ee_start_lo at +8.
  v.setUint32(0x28 + 12 + 8, 0xfffff000, true);
  v.setUint16(0x28 + 12 + 6, 0x7fff, true);
  setInodeChecksum(e.geo.csumSeed, ino, raw);
  assert.throws(() => e.read(ino, 0, new Uint8Array(100)), isFsErr(E.EUCLEAN));
  assert.throws(() => e.fileRuns(ino, 0, 100), isFsErr(E.EUCLEAN));
  assert.throws(() => e.write(ino, 10, new Uint8Array(10)), isFsErr(E.EUCLEAN));
  assert.throws(() => e.truncate(ino, 5), isFsErr(E.EUCLEAN));
  assert.throws(() => e.unlink(e.rootIno, 'data'), isFsErr(E.EUCLEAN));
  // Without fixing the checksum, the inode is refused as such.
  v.setUint32(0x28 + 12 + 8, 0xfffff001, true);
  assert.throws(() => e.stat(ino), isFsErr(E.EBADMSG));
  assert.ok(g.intact());
});

test('an extent tree that loops or lies about its depth', () => {
  const g = guarded(Buffer.from(pristine));
  const e = Ext4.open(g.dev);
  const ino = e.resolve('/data');
  const raw = g.dev.bytes(inodeOffset(e, ino), e.geo.inodeSize);
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // Turn the root into an index (depth 1) whose child is the inode table block itself.
  v.setUint16(0x28 + 6, 1, true);
  const itableBlock = Math.floor(inodeOffset(e, ino) / e.geo.blockSize);
  v.setUint32(0x28 + 12 + 4, itableBlock, true);
  v.setUint16(0x28 + 12 + 8, 0, true);
  setInodeChecksum(e.geo.csumSeed, ino, raw);
  assert.throws(() => e.read(ino, 0, new Uint8Array(10)), isFsErr());
  // Depth beyond the maximum.
  v.setUint16(0x28 + 6, 40, true);
  setInodeChecksum(e.geo.csumSeed, ino, raw);
  assert.throws(() => e.read(ino, 0, new Uint8Array(10)), isFsErr(E.EUCLEAN));
  assert.ok(g.intact());
});

test('a directory entry with rec_len 0', () => {
  const g = guarded(Buffer.from(pristine));
  const e = Ext4.open(g.dev);
  const dir = e.resolve('/dir');
  const [run] = e.fileRuns(dir, 0, e.geo.blockSize);
  const block = g.dev.bytes(run!.physical!, e.geo.blockSize);
  block[4] = 0;
  block[5] = 0;
  // With the checksum left stale: a checksum error.
  assert.throws(() => e.lookup(dir, 'file3'), isFsErr(E.EBADMSG));
  // With the checksum fixed: the structure itself is refused, without looping.
  const draw = g.dev.bytes(inodeOffset(e, dir), e.geo.inodeSize);
  const gen = new DataView(draw.buffer, draw.byteOffset).getUint32(0x64, true);
  sealLeaf(inodeCsumSeed(e.geo.csumSeed, dir, gen), block);
  assert.throws(() => e.lookup(dir, 'file3'), isFsErr(E.EUCLEAN));
  assert.throws(() => e.readdir(dir), isFsErr(E.EUCLEAN));
  assert.throws(() => e.resolve('/dir/file3'), isFsErr(E.EUCLEAN));
  assert.throws(() => e.create(dir, 'new', 0o644), isFsErr(E.EUCLEAN));
  assert.throws(() => e.rmdir(e.rootIno, 'dir'), isFsErr(E.EUCLEAN));
  assert.ok(g.intact());
});

test('symlink loops give ELOOP; 40 links are followed, 41 are not', () => {
  const g = guarded(Buffer.from(pristine));
  const e = Ext4.open(g.dev);
  const r = e.rootIno;
  e.symlink(r, 'a', 'b');
  e.symlink(r, 'b', 'a');
  e.symlink(r, 'self', 'self');
  e.symlink(r, 'dot', '.');
  e.symlink(r, 'up', '/dir/../dir/..');
  assert.throws(() => e.resolve('/a'), isFsErr(E.ELOOP));
  assert.throws(() => e.resolve('/a/x'), isFsErr(E.ELOOP));
  assert.throws(() => e.resolve('/self'), isFsErr(E.ELOOP));
  assert.equal(e.resolve('/a', { followFinal: false }), e.lookup(r, 'a'));
  // A chain of links: l0 -> l1 -> ... -> l40 -> data.
  for (let i = 0; i <= 40; i++) e.symlink(r, `l${i}`, i === 40 ? 'data' : `l${i + 1}`);
  assert.equal(e.resolve('/l1'), e.resolve('/data')); // 40 links
  assert.throws(() => e.resolve('/l0'), isFsErr(E.ELOOP)); // 41 links
  assert.equal(e.resolve('/' + 'dot/'.repeat(40) + 'data'), e.resolve('/data'));
  assert.throws(() => e.resolve('/' + 'dot/'.repeat(41) + 'data'), isFsErr(E.ELOOP));
  assert.throws(() => e.resolve('dot/'.repeat(1000)), isFsErr(E.ELOOP));
  assert.equal(e.resolve('/up/up/up/dir'), e.resolve('/dir'));
  assert.ok(g.intact());
});

test('long paths: 10,000 components, 4096 bytes, names over 255 bytes', () => {
  const g = guarded(Buffer.from(pristine));
  const e = Ext4.open(g.dev);
  const is = isFsErr(E.ENAMETOOLONG);
  assert.throws(() => e.resolve('a/'.repeat(10_000)), is);
  assert.throws(() => e.resolve('/'.repeat(10_000)), is);
  assert.throws(() => e.resolveParent('a/'.repeat(10_000) + 'x'), is);
  assert.throws(() => e.resolve('x'.repeat(4096)), is);
  assert.throws(() => e.resolve('/dir/' + 'x'.repeat(256)), is);
  assert.throws(() => e.resolve('/' + 'x'.repeat(300) + '/y'), is);
  assert.throws(() => e.create(e.rootIno, 'x'.repeat(256), 0o644), is);
  assert.throws(() => e.symlink(e.rootIno, 'long', 'x'.repeat(5000)), is);
  // Just under the limits works.
  assert.throws(() => e.resolve('./'.repeat(2045) + 'nope'), isFsErr(E.ENOENT));
  assert.equal(e.resolve('./'.repeat(2045) + 'data'), e.resolve('/data'));
  e.create(e.rootIno, 'y'.repeat(255), 0o644);
  assert.ok(e.lookup(e.rootIno, 'y'.repeat(255)) > 0);
  assert.ok(g.intact());
});

test('fuzz: random corruption of metadata is an FsError or MapvisorError, never a crash or a write outside the image', () => {
  const bs = 1024;
  // Metadata of the plain (no checksum) image: descriptors, bitmaps, inode table, directory blocks.
  const probe = Ext4.open(new BufferDev(new Uint8Array(plain)));
  const dirRuns = [probe.rootIno, probe.resolve('/dir')].flatMap((d) => probe.fileRuns(d, 0, probe.stat(d).size));
  const gd = new DataView(plain.buffer, plain.byteOffset + 2 * bs, 32);
  const itable = gd.getUint32(0x08, true) * bs;
  const targets: Array<[number, number]> = [
    [2 * bs, bs],
    [gd.getUint32(0x00, true) * bs, bs],
    [gd.getUint32(0x04, true) * bs, bs],
    [itable, 16 * 256],
    ...dirRuns.map((r): [number, number] => [r.physical!, r.length]),
  ];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return Math.floor((seed / 2 ** 32) * n);
  };
  let fsErrors = 0;
  for (let iter = 0; iter < 300; iter++) {
    const b = Buffer.from(plain);
    const flips = 1 + rnd(12);
    for (let k = 0; k < flips; k++) {
      const [start, len] = targets[rnd(targets.length)]!;
      b[start + rnd(len)] ^= 1 << rnd(8);
    }
    const g = guarded(b);
    const step = (fn: () => void) => {
      try {
        fn();
      } catch (x) {
        if (x instanceof FsError || x instanceof MapvisorError) {
          fsErrors++;
          return;
        }
        throw x;
      }
    };
    step(() => {
      const e = Ext4.open(g.dev);
      const walk = (ino: number, depth: number) => {
        if (depth > 8) return;
        for (const ent of e.readdir(ino).entries) {
          if (ent.name === '.' || ent.name === '..') continue;
          step(() => {
            const st = e.stat(ent.ino);
            if ((st.mode & 0o170000) === 0o040000) walk(ent.ino, depth + 1);
            else if ((st.mode & 0o170000) === 0o100000) e.read(ent.ino, 0, new Uint8Array(Math.min(st.size, 1 << 20)));
          });
        }
      };
      walk(e.rootIno, 0);
      step(() => e.write(e.create(e.rootIno, `new${iter}`, 0o644), 0, new Uint8Array(5000).fill(1)));
      step(() => e.mkdir(e.resolve('/dir'), `sub${iter}`, 0o755));
      step(() => e.unlink(e.resolve('/dir'), 'file5'));
      step(() => e.truncate(e.resolve('/data'), 10));
      step(() => e.rename(e.resolve('/dir'), 'file7', e.rootIno, 'moved'));
    });
    assert.ok(g.intact(), `iteration ${iter} wrote outside the image`);
  }
  assert.ok(fsErrors > 0);
});

test('refused features: bigalloc at open, inline data per file, clear messages', () => {
  const src = path.join(tmp, 'inline-src');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'tiny'), 'tiny file kept inline');
  const img = path.join(tmp, 'feat.img');
  mkfs(img, { size: '16M', blockSize: 4096, features: 'bigalloc' });
  assert.throws(() => Ext4.open(new BufferDev(fs.readFileSync(img))), isImageErr(/bigalloc/));
  mkfs(img, { size: '16M', blockSize: 4096, features: 'inline_data', from: src });
  const e = Ext4.open(new BufferDev(fs.readFileSync(img)));
  const ino = e.resolve('/tiny');
  assert.throws(() => e.read(ino, 0, new Uint8Array(10)), (x: unknown) => x instanceof FsError && x.errno === E.EOPNOTSUPP && /inline/.test(x.message));
  assert.equal(e.stat(ino).size, 21);
});
