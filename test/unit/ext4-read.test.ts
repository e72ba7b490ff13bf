/**
 * Reading real images made by mkfs.ext4 -d: every file's bytes (sha256), directory listings, symlink
 * targets, modes and sizes must match the host tree, for ext4 (metadata_csum, 64bit), ext4 without
 * them, ext2 block maps (4 KiB and 1 KiB blocks, double indirect), and htree directories with each
 * hash (half_md4, tea, legacy; signed and unsigned).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { MappedImage } from '../../src/storage/blockdev.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { FsError } from '../../src/storage/ext4/errors.js';
import { debugfs, fsckFix, mkfs } from '../../src/storage/ext4/mkimage.js';
import { E } from '../../src/abi/errno.js';

let tmp = '';
let src = '';

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

function bytes(n: number, seed: number): Buffer {
  const r = rand(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = r() >>> 24;
  return b;
}

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-ext4-read-'));
  src = path.join(tmp, 'src');
  fs.mkdirSync(src);
  const sizes = [0, 1, 100, 1023, 1024, 1025, 4095, 4096, 4097, 12 * 4096, 12 * 4096 + 1, 65539, 300_000, 1_500_000];
  sizes.forEach((n, i) => fs.writeFileSync(path.join(src, `size-${n}`), bytes(n, i + 1)));
  // A sparse file: hole, data, hole, data, hole at the end.
  const sp = fs.openSync(path.join(src, 'sparse'), 'w');
  fs.writeSync(sp, bytes(5000, 99), 0, 5000, 3 * 1024 * 1024 + 17);
  fs.writeSync(sp, bytes(100, 98), 0, 100, 9 * 1024 * 1024);
  fs.ftruncateSync(sp, 12 * 1024 * 1024);
  fs.closeSync(sp);
  // Nested directories.
  let d = src;
  for (let i = 0; i < 6; i++) {
    d = path.join(d, `level${i}`);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'file'), `depth ${i}\n`);
  }
  fs.mkdirSync(path.join(src, 'empty'));
  fs.symlinkSync('size-100', path.join(src, 'fast-link'));
  fs.symlinkSync('x'.repeat(59), path.join(src, 'link-59'));
  fs.symlinkSync('y'.repeat(60), path.join(src, 'link-60'));
  fs.symlinkSync('level0/level1/../level1/level2/' + 'z'.repeat(150), path.join(src, 'slow-link'));
  fs.symlinkSync('level0/level1', path.join(src, 'dir-link'));
  fs.symlinkSync('/level0/file', path.join(src, 'abs-link'));
  fs.symlinkSync('does-not-exist', path.join(src, 'dangling'));
  fs.writeFileSync(path.join(src, 'mode-600'), 'secret');
  fs.chmodSync(path.join(src, 'mode-600'), 0o600);
  fs.writeFileSync(path.join(src, 'exec'), '#!/bin/sh\n');
  fs.chmodSync(path.join(src, 'exec'), 0o755);
  fs.writeFileSync(Buffer.concat([Buffer.from(path.join(src, 'non-utf8-')), Buffer.from([0xff, 0xfe])]), 'raw name');
  fs.writeFileSync(path.join(src, 'hard1'), 'linked');
  fs.linkSync(path.join(src, 'hard1'), path.join(src, 'hard2'));
  fs.writeFileSync(path.join(src, 'ünïcödé name'), 'utf8');
  fs.writeFileSync(path.join(src, 'n'.repeat(255)), 'long name');
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Compares the image's tree under `ino` with the host directory, recursively (names as raw bytes). */
function compareTree(e: Ext4, ino: number, host: Buffer): number {
  let files = 0;
  const { entries } = e.readdir(ino);
  const key = (b: Uint8Array) => Buffer.from(b).toString('latin1');
  const names = entries.map((x) => key(x.raw)).filter((n) => n !== '.' && n !== '..' && n !== 'lost+found').sort();
  const hostNames = (fs.readdirSync(host, { encoding: 'buffer' }) as Buffer[]).map(key).filter((n) => n !== 'lost+found').sort();
  assert.deepEqual(names, hostNames, `listing of ${host.toString()}`);
  assert.equal(entries[0]!.name, '.');
  assert.equal(entries[0]!.ino, ino);
  assert.equal(entries[1]!.name, '..');
  for (const ent of entries) {
    if (ent.name === '.' || ent.name === '..' || ent.name === 'lost+found') continue;
    const hp = Buffer.concat([host, Buffer.from('/'), Buffer.from(ent.raw)]);
    const hs = fs.lstatSync(hp);
    const st = e.stat(ent.ino);
    assert.equal(e.lookup(ino, ent.raw), ent.ino);
    assert.equal(st.mode & 0o7777, hs.mode & 0o7777, `mode of ${hp}`);
    assert.equal(st.mode & 0o170000, hs.mode & 0o170000, `type of ${hp}`);
    if (hs.isDirectory()) {
      assert.equal(ent.type, 2);
      files += compareTree(e, ent.ino, hp);
    } else if (hs.isSymbolicLink()) {
      assert.equal(ent.type, 7);
      assert.equal(Buffer.from(e.readlink(ent.ino)).toString(), fs.readlinkSync(hp).toString());
      assert.equal(st.size, Buffer.byteLength(fs.readlinkSync(hp)));
    } else {
      assert.equal(ent.type, 1);
      assert.equal(st.size, hs.size, `size of ${hp}`);
      assert.equal(st.nlink, hs.nlink, `nlink of ${hp}`);
      assert.equal(st.mtime.sec, Math.floor(hs.mtimeMs / 1000), `mtime of ${hp}`);
      const buf = new Uint8Array(st.size);
      assert.equal(e.read(ent.ino, 0, buf), st.size);
      assert.equal(sha(buf), sha(fs.readFileSync(hp)), `contents of ${hp}`);
      files++;
    }
  }
  return files;
}

/** fileRuns of every file: holes are null, data runs point at the right image bytes. */
function checkRuns(e: Ext4, imagePath: string, ino: number, host: string): void {
  const image = fs.readFileSync(imagePath);
  const want = fs.readFileSync(host);
  const runs = e.fileRuns(ino, 0, want.length);
  let pos = 0;
  for (const r of runs) {
    assert.equal(r.offset, pos);
    const piece = want.subarray(pos, pos + r.length);
    if (r.physical === null) assert.ok(piece.every((x) => x === 0), 'a hole must be zeros on the host too');
    else assert.ok(image.subarray(r.physical, r.physical + r.length).equals(piece));
    pos += r.length;
  }
  assert.equal(pos, want.length);
}

const variants: Array<{ name: string; opts: Parameters<typeof mkfs>[1] }> = [
  { name: 'ext4 (metadata_csum, 64bit, flex_bg)', opts: { size: '64M', blockSize: 4096 } },
  { name: 'ext4 without metadata_csum and 64bit', opts: { size: '64M', blockSize: 4096, features: '^metadata_csum,^64bit' } },
  { name: 'ext4 with gdt_csum (uninit_bg)', opts: { size: '64M', blockSize: 4096, features: '^metadata_csum,uninit_bg' } },
  { name: 'ext2 (block maps)', opts: { size: '64M', blockSize: 4096, type: 'ext2' } },
  { name: 'ext2 with 1 KiB blocks (double indirect, 8 groups)', opts: { size: '64M', blockSize: 1024, type: 'ext2' } },
  { name: 'ext4 with 1 KiB blocks (8 groups)', opts: { size: '64M', blockSize: 1024 } },
  { name: 'ext4 without extents (block maps)', opts: { size: '64M', blockSize: 4096, features: '^extent,^64bit' } },
  { name: 'ext4 with meta_bg (1 KiB blocks)', opts: { size: '64M', blockSize: 1024, features: 'meta_bg,^resize_inode' } },
  { name: 'ext4 with 128-byte inodes', opts: { size: '64M', blockSize: 4096, extra: ['-I', '128'] } },
];

for (const v of variants) {
  test(`read: ${v.name}`, () => {
    const img = path.join(tmp, 'read.img');
    mkfs(img, { ...v.opts, from: src });
    const dev = MappedImage.open(img, 'ro');
    try {
      const e = Ext4.open(dev);
      assert.equal(e.readOnly, true);
      const n = compareTree(e, e.rootIno, Buffer.from(src));
      assert.ok(n > 20);
      checkRuns(e, img, e.resolve('/sparse'), path.join(src, 'sparse'));
      checkRuns(e, img, e.resolve('/size-1500000'), path.join(src, 'size-1500000'));
      const runs = e.fileRuns(e.resolve('/sparse'), 0, 12 * 1024 * 1024);
      assert.equal(runs[0]!.physical, null);
      assert.equal(runs[runs.length - 1]!.physical, null);
      // Path resolution through symlinks.
      assert.equal(e.resolve('/dir-link/level2/file'), e.resolve('/level0/level1/level2/file'));
      assert.equal(e.resolve('../abs-link', { cwdIno: e.resolve('/level0') }), e.resolve('/level0/file'));
      assert.equal(e.resolve('/../../level0/./level1/..'), e.resolve('/level0'));
      assert.equal(e.resolve('/fast-link', { followFinal: false }), e.lookup(e.rootIno, 'fast-link'));
      assert.throws(() => e.resolve('/dangling'), (x: unknown) => x instanceof FsError && x.errno === E.ENOENT);
      assert.throws(() => e.resolve('/size-100/'), (x: unknown) => x instanceof FsError && x.errno === E.ENOTDIR);
      assert.throws(() => e.resolve('/size-100/x'), (x: unknown) => x instanceof FsError && x.errno === E.ENOTDIR);
      assert.throws(() => e.lookup(e.rootIno, 'n'.repeat(256)), (x: unknown) => x instanceof FsError && x.errno === E.ENAMETOOLONG);
      assert.throws(() => e.create(e.rootIno, 'x', 0o644), (x: unknown) => x instanceof FsError && x.errno === E.EROFS);
      const p = e.resolveParent('/level0/level1/newname');
      assert.equal(p.dirIno, e.resolve('/level0/level1'));
      assert.equal(Buffer.from(p.name).toString(), 'newname');
      const sf = e.statfs();
      assert.equal(sf.bsize, v.opts.blockSize);
      assert.ok(sf.bfree > 0 && sf.bfree < sf.blocks && sf.ffree < sf.files);
    } finally {
      dev.close();
    }
  });
}

test('readdir cursor: resuming from `next` yields every entry exactly once', () => {
  const img = path.join(tmp, 'cursor.img');
  mkfs(img, { size: '64M', blockSize: 4096, from: src });
  const dev = MappedImage.open(img, 'ro');
  try {
    const e = Ext4.open(dev);
    const all = e.readdir(e.rootIno).entries.map((x) => x.name);
    const seen: string[] = [];
    let pos = 0;
    for (;;) {
      const r = e.readdir(e.rootIno, pos, 3);
      if (r.entries.length === 0) break;
      seen.push(...r.entries.map((x) => x.name));
      pos = r.next;
    }
    assert.deepEqual(seen, all);
  } finally {
    dev.close();
  }
});

for (const hash of [
  { alg: 'half_md4', unsigned: false },
  { alg: 'tea', unsigned: false },
  { alg: 'legacy', unsigned: false },
  { alg: 'half_md4', unsigned: true },
  { alg: 'tea', unsigned: true },
  { alg: 'legacy', unsigned: true },
]) {
  test(`htree directory lookup: ${hash.alg}${hash.unsigned ? ' (unsigned)' : ''}`, () => {
    const dir = path.join(tmp, `big-${hash.alg}-${hash.unsigned}`);
    fs.mkdirSync(path.join(dir, 'big'), { recursive: true });
    const names: string[] = [];
    for (let i = 0; i < 3000; i++) {
      // Include bytes >= 0x80 so signed and unsigned hashes differ.
      const n = `entry-${i}-${i % 7 === 0 ? 'é' : ''}${'q'.repeat(i % 40)}`;
      names.push(n);
      fs.writeFileSync(path.join(dir, 'big', n), String(i));
    }
    const img = path.join(tmp, 'htree.img');
    mkfs(img, { size: '64M', blockSize: 4096, from: dir });
    debugfs(img, `ssv def_hash_version ${hash.alg}`, true);
    debugfs(img, `ssv flags ${hash.unsigned ? 2 : 1}`, true);
    assert.ok(fsckFix(img, ['-D']) <= 1);
    assert.match(debugfs(img, 'htree /big').toString(), new RegExp(`Hash Version: ${{ legacy: 0, half_md4: 1, tea: 2 }[hash.alg]}`));
    const dev = MappedImage.open(img, 'ro');
    try {
      const e = Ext4.open(dev);
      const big = e.resolve('/big');
      assert.equal(e.isIndexedDir(big), true);
      for (let i = 0; i < names.length; i++) {
        const ino = e.lookup(big, names[i]!);
        const buf = new Uint8Array(16);
        const n = e.read(ino, 0, buf);
        assert.equal(Buffer.from(buf.subarray(0, n)).toString(), String(i));
      }
      assert.throws(() => e.lookup(big, 'entry-not-there'), (x: unknown) => x instanceof FsError && x.errno === E.ENOENT);
      const listed = e.readdir(big).entries.map((x) => x.name).filter((n) => n !== '.' && n !== '..');
      assert.deepEqual(listed.sort(), [...names].sort());
    } finally {
      dev.close();
    }
  });
}
