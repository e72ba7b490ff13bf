/**
 * Write-heavy runs against real images, checked by the real tools: after each phase `e2fsck -fn`
 * must exit 0, and at the end `debugfs rdump` and a fresh open must return exactly what a model of
 * the tree says was written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MappedImage } from '../../src/storage/blockdev.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { FsError } from '../../src/storage/ext4/errors.js';
import { debugfs, fsckCheck, fsckFix, mkfs, type MkfsOptions } from '../../src/storage/ext4/mkimage.js';
import { E } from '../../src/abi/errno.js';

let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-ext4-write-'));
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function rng(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

type Node = { kind: 'file'; data: Buffer; mode: number } | { kind: 'dir' } | { kind: 'link'; target: string };

/** The expected tree: path -> node (paths without a leading slash; '' is the root). */
class Model {
  nodes = new Map<string, Node>([['', { kind: 'dir' }]]);
  children(dir: string): string[] {
    const pre = dir === '' ? '' : dir + '/';
    return [...this.nodes.keys()].filter((p) => p !== '' && p.startsWith(pre) && !p.slice(pre.length).includes('/'));
  }
  files(): string[] {
    return [...this.nodes.entries()].filter(([, n]) => n.kind === 'file').map(([p]) => p);
  }
  dirs(): string[] {
    return [...this.nodes.entries()].filter(([, n]) => n.kind === 'dir').map(([p]) => p);
  }
  move(from: string, to: string): void {
    for (const p of [...this.nodes.keys()]) {
      if (p === to || p.startsWith(to + '/')) this.nodes.delete(p);
    }
    for (const [p, n] of [...this.nodes.entries()]) {
      if (p === from || p.startsWith(from + '/')) {
        this.nodes.delete(p);
        this.nodes.set(to + p.slice(from.length), n);
      }
    }
  }
}

const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const baseOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);

function check(img: string, what: string): void {
  const r = fsckCheck(img);
  assert.equal(r.status, 0, `e2fsck -fn after ${what}:\n${r.output}`);
}

/** Compares the model with debugfs rdump of the image and with a fresh Ext4 open. */
function verify(img: string, model: Model): void {
  const out = fs.mkdtempSync(path.join(tmp, 'rdump-'));
  debugfs(img, `rdump / ${out}`);
  for (const [p, n] of model.nodes) {
    const hp = path.join(out, p);
    if (n.kind === 'dir') assert.ok(fs.lstatSync(hp).isDirectory(), `${p} is a directory`);
    else if (n.kind === 'link') assert.equal(fs.readlinkSync(hp), n.target, `symlink ${p}`);
    else assert.ok(fs.readFileSync(hp).equals(n.data), `debugfs contents of ${p} (${n.data.length} bytes)`);
  }
  const walk = (d: string): number => {
    let count = 0;
    for (const name of fs.readdirSync(path.join(out, d))) {
      const p = d === '' ? name : `${d}/${name}`;
      if (p === 'lost+found') continue;
      assert.ok(model.nodes.has(p), `unexpected ${p} in the image`);
      count++;
      if (fs.lstatSync(path.join(out, p)).isDirectory()) count += walk(p);
    }
    return count;
  };
  assert.equal(walk(''), model.nodes.size - 1);
  fs.rmSync(out, { recursive: true, force: true });

  const dev = MappedImage.open(img, 'ro');
  try {
    const e = Ext4.open(dev);
    for (const [p, n] of model.nodes) {
      const ino = p === '' ? e.rootIno : e.resolve('/' + p, { followFinal: false });
      const st = e.stat(ino);
      if (n.kind === 'file') {
        assert.equal(st.size, n.data.length);
        assert.equal(st.mode & 0o7777, n.mode);
        const buf = Buffer.alloc(n.data.length);
        e.read(ino, 0, buf);
        assert.ok(buf.equals(n.data), `read of ${p}`);
      } else if (n.kind === 'link') assert.equal(Buffer.from(e.readlink(ino)).toString(), n.target);
      else assert.equal(st.mode & 0o170000, 0o040000);
    }
  } finally {
    dev.close();
  }
}

/** Path-level helpers over the ino API. */
class Driver {
  constructor(
    readonly e: Ext4,
    readonly m: Model,
  ) {}
  ino(p: string): number {
    return p === '' ? this.e.rootIno : this.e.resolve('/' + p, { followFinal: false });
  }
  mkdir(p: string): void {
    this.e.mkdir(this.ino(dirOf(p)), baseOf(p), 0o755);
    this.m.nodes.set(p, { kind: 'dir' });
  }
  writeFile(p: string, data: Buffer, mode = 0o644): void {
    let n = this.m.nodes.get(p);
    if (!n) {
      this.e.create(this.ino(dirOf(p)), baseOf(p), mode);
      n = { kind: 'file', data: Buffer.alloc(0), mode };
      this.m.nodes.set(p, n);
    }
    this.e.write(this.ino(p), 0, data);
    if (n.kind === 'file') {
      const merged = Buffer.alloc(Math.max(n.data.length, data.length));
      n.data.copy(merged);
      data.copy(merged);
      n.data = merged;
    }
  }
  pwrite(p: string, off: number, data: Buffer): void {
    const n = this.m.nodes.get(p) as { kind: 'file'; data: Buffer };
    this.e.write(this.ino(p), off, data);
    const merged = Buffer.alloc(Math.max(n.data.length, off + data.length));
    n.data.copy(merged);
    data.copy(merged, off);
    n.data = merged;
  }
  truncate(p: string, size: number): void {
    const n = this.m.nodes.get(p) as { kind: 'file'; data: Buffer };
    this.e.truncate(this.ino(p), size);
    const t = Buffer.alloc(size);
    n.data.copy(t, 0, 0, Math.min(size, n.data.length));
    n.data = t;
  }
  punch(p: string, off: number, len: number): void {
    const n = this.m.nodes.get(p) as { kind: 'file'; data: Buffer };
    this.e.punchHole(this.ino(p), off, len);
    n.data.fill(0, Math.min(off, n.data.length), Math.min(off + len, n.data.length));
  }
  unlink(p: string): void {
    this.e.unlink(this.ino(dirOf(p)), baseOf(p));
    this.m.nodes.delete(p);
  }
  rmdir(p: string): void {
    this.e.rmdir(this.ino(dirOf(p)), baseOf(p));
    this.m.nodes.delete(p);
  }
  rename(from: string, to: string): void {
    this.e.rename(this.ino(dirOf(from)), baseOf(from), this.ino(dirOf(to)), baseOf(to));
    this.m.move(from, to);
  }
  symlink(p: string, target: string): void {
    this.e.symlink(this.ino(dirOf(p)), baseOf(p), target);
    this.m.nodes.set(p, { kind: 'link', target });
  }
  link(from: string, to: string): void {
    this.e.link(this.ino(from), this.ino(dirOf(to)), baseOf(to));
    const n = this.m.nodes.get(from) as { kind: 'file'; data: Buffer; mode: number };
    // Hard links share data: model them as the same node object.
    this.m.nodes.set(to, n);
  }
}

function payload(r: (n: number) => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = r(2 ** 31);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b.writeUInt32LE(x, i);
  }
  for (; i < n; i++) b[i] = r(256);
  return b;
}

function writeHeavy(opts: MkfsOptions, scale: { files: number; bigDir: number; fragBlocks: number }, seed: number): void {
  const img = path.join(tmp, 'write.img');
  mkfs(img, opts);
  const r = rng(seed);
  const dev = MappedImage.open(img, 'rw');
  const e = Ext4.open(dev);
  const m = new Model();
  const d = new Driver(e, m);
  const bs = e.geo.blockSize;
  const phase = (what: string): void => {
    e.sync();
    check(img, what);
  };
  try {
    // A: directories and many files of varied sizes.
    for (let i = 0; i < 12; i++) d.mkdir(`d${i}`);
    for (let i = 0; i < 8; i++) d.mkdir(`d${i}/sub${i}`);
    const dirs = m.dirs();
    for (let i = 0; i < scale.files; i++) {
      const kind = r(10);
      const size = kind < 6 ? r(bs) : kind < 9 ? bs + r(16 * bs) : 64 * bs + r(40 * bs);
      const p = `${dirs[r(dirs.length)]}/f${i}`.replace(/^\//, '');
      d.writeFile(p, payload(r, size), r(2) ? 0o644 : 0o600);
      if (r(8) === 0) d.pwrite(p, size + r(5 * bs), payload(r, 1 + r(3000))); // sparse extension
    }
    phase('creating files');

    // B: one directory grows far past one block.
    d.mkdir('big');
    for (let i = 0; i < scale.bigDir; i++) d.writeFile(`big/a-rather-long-file-name-number-${i}-${'x'.repeat(i % 30)}`, payload(r, r(200)));
    assert.equal(e.isIndexedDir(d.ino('big')), e.dirIndex, 'a directory growing past one block gets an index when dir_index is on');
    phase('growing a directory');

    // C: renames, deletes, links, symlinks, directory churn.
    let files = m.files();
    for (let i = 0; i < files.length / 6; i++) {
      const from = files[r(files.length)]!;
      if (!m.nodes.has(from)) continue;
      const ds = m.dirs();
      const to = `${ds[r(ds.length)]}/r${i}`.replace(/^\//, '');
      if (r(4) === 0) {
        // Over an existing file.
        const fs2 = m.files().filter((f) => f !== from);
        const victim = fs2[r(fs2.length)]!;
        if ([...m.nodes.entries()].filter(([, n]) => n === m.nodes.get(victim)).length === 1) d.rename(from, victim);
      } else d.rename(from, to);
    }
    files = m.files();
    for (let i = 0; i < files.length / 4; i++) {
      const p = files[r(files.length)]!;
      if (m.nodes.has(p)) d.unlink(p);
    }
    d.mkdir('moving');
    d.mkdir('moving/inner');
    d.writeFile('moving/inner/payload', payload(r, 3 * bs + 5));
    d.rename('moving', 'd3/sub3/moved');
    d.mkdir('d5/empty-target');
    d.mkdir('d6/src-dir');
    d.writeFile('d6/src-dir/x', payload(r, 10));
    d.rename('d6/src-dir', 'd5/empty-target'); // a directory over an empty directory
    for (let i = 0; i < 60; i++) {
      d.mkdir(`churn${i}`);
      if (i % 3) d.rmdir(`churn${i}`);
    }
    files = m.files();
    for (let i = 0; i < 30; i++) {
      const p = files[r(files.length)]!;
      if (m.nodes.has(p) && !m.nodes.has(`${p}-hl${i}`)) d.link(p, `${p}-hl${i}`);
    }
    for (let i = 0; i < 60; i++) d.symlink(`d${i % 12}/sym${i}`, i % 2 ? `target-${i}` : 'long/'.repeat(20 + i));
    phase('renames, deletes, links and symlinks');

    // D: fragmented files: interleaved block-sized writes make every block its own extent.
    const frag = [0, 1, 2, 3].map((i) => `frag${i}`);
    for (const f of frag) d.writeFile(f, Buffer.alloc(0));
    for (let b = 0; b < scale.fragBlocks; b++) for (const f of frag) d.pwrite(f, b * bs, payload(r, bs));
    phase('fragmented files');
    if (e.extentsFeature) {
      // The tree grew past the 4 entries of the inode's root: at least one level of index below it.
      const ex = debugfs(img, 'ex /frag2').toString();
      const depth = Number(/^\s*0\/\s*(\d+)/m.exec(ex)?.[1] ?? 0);
      assert.ok(depth >= (scale.fragBlocks > 4 * Math.floor((bs - 12) / 12) ? 2 : 1), `extent tree depth ${depth}`);
    }

    // E: truncate down and up.
    d.truncate('frag0', Math.floor(scale.fragBlocks / 2) * bs + 123);
    d.truncate('frag1', 0);
    d.truncate('frag2', 7 * bs + 1);
    d.truncate('frag2', 40 * bs + 5); // grow: a hole that reads as zeros
    d.pwrite('frag3', scale.fragBlocks * bs + 50 * bs, payload(r, 100)); // a hole, then data
    files = m.files();
    for (let i = 0; i < 100; i++) {
      const p = files[r(files.length)]!;
      const n = m.nodes.get(p);
      if (n?.kind === 'file') d.truncate(p, r(2) ? r(n.data.length + 1) : n.data.length + r(10 * bs));
    }
    phase('truncates');
    d.punch('frag3', 3 * bs + 100, 20 * bs);
    d.punch('frag3', 100 * bs, 1);
    d.punch('frag0', 0, 10 * bs);
    for (let i = 0; i < 60; i++) {
      const p = files[r(files.length)]!;
      const n = m.nodes.get(p);
      if (n?.kind === 'file' && n.data.length > 0) d.punch(p, r(n.data.length), 1 + r(6 * bs));
    }
    phase('punching holes');

    // F: attributes.
    const f0 = m.files()[0]!;
    const ino = d.ino(f0);
    e.chmod(ino, 0o640);
    (m.nodes.get(f0) as { mode: number }).mode = 0o640;
    e.chown(ino, 1234, 5678);
    e.utimes(ino, { atime: { sec: 1_000_000_000, nsec: 123_456_789 }, mtime: { sec: 2_000_000_000, nsec: 987_654_321 } });
    const st = e.stat(ino);
    const ns = e.geo.inodeSize > 128;
    assert.deepEqual([st.uid, st.gid, st.mtime.sec, st.mtime.nsec, st.atime.nsec], [1234, 5678, 2_000_000_000, ns ? 987_654_321 : 0, ns ? 123_456_789 : 0]);
    assert.equal(st.crtime === null, !ns);
    const sf = e.statfs();
    assert.ok(sf.bfree <= sf.blocks);
    e.close();
    check(img, 'attributes');
    const dstat = debugfs(img, `stat /${f0}`).toString();
    assert.match(dstat, /User:\s+1234\s+Group:\s+5678/);
    assert.match(dstat, /mtime: 0x77359400\b/);
  } finally {
    dev.close();
  }
  verify(img, m);
}

test('write-heavy run: ext4 (metadata_csum, 64bit, 4 KiB blocks)', () => {
  writeHeavy({ size: '256M', blockSize: 4096 }, { files: 2500, bigDir: 1500, fragBlocks: 1500 }, 1);
});

test('write-heavy run: ext4 with 1 KiB blocks (8 groups, uninitialized groups)', () => {
  writeHeavy({ size: '64M', blockSize: 1024 }, { files: 1500, bigDir: 800, fragBlocks: 1500 }, 2);
});

test('write-heavy run: ext4 without metadata_csum and 64bit', () => {
  writeHeavy({ size: '64M', blockSize: 4096, features: '^metadata_csum,^64bit' }, { files: 1000, bigDir: 500, fragBlocks: 500 }, 3);
});

test('write-heavy run: ext4 with gdt_csum (uninit_bg)', () => {
  writeHeavy({ size: '64M', blockSize: 4096, features: '^metadata_csum,uninit_bg' }, { files: 500, bigDir: 300, fragBlocks: 300 }, 4);
});

test('write-heavy run: ext2 (block maps, 1 KiB blocks)', () => {
  writeHeavy({ size: '64M', blockSize: 1024, type: 'ext2' }, { files: 800, bigDir: 400, fragBlocks: 600 }, 5);
});

test('write-heavy run: ext4 with meta_bg (1 KiB blocks)', () => {
  writeHeavy({ size: '64M', blockSize: 1024, features: 'meta_bg,^resize_inode' }, { files: 500, bigDir: 300, fragBlocks: 400 }, 6);
});

test('write-heavy run: ext4 with 128-byte inodes (no nanoseconds, no crtime)', () => {
  writeHeavy({ size: '64M', blockSize: 4096, extra: ['-I', '128'] }, { files: 400, bigDir: 300, fragBlocks: 300 }, 7);
});

test('write-heavy run: ext4 without dir_index (directories stay linear)', () => {
  writeHeavy({ size: '64M', blockSize: 4096, features: '^dir_index' }, { files: 400, bigDir: 600, fragBlocks: 300 }, 8);
});

test('htree directories: inserts keep the index (leaf splits, node splits, a new level); removals', () => {
  const src = path.join(tmp, 'htree-src');
  fs.mkdirSync(path.join(src, 'big'), { recursive: true });
  for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(src, 'big', `seed-${i}`), '');
  const img = path.join(tmp, 'htree.img');
  mkfs(img, { size: '64M', blockSize: 1024, from: src });
  assert.ok(fsckFix(img, ['-D']) <= 1);
  const dev = MappedImage.open(img, 'rw');
  const names: string[] = [];
  try {
    const e = Ext4.open(dev);
    const big = e.resolve('/big');
    assert.equal(e.isIndexedDir(big), true);
    for (let i = 0; i < 6000; i++) {
      const n = `inserted-${i}-${'w'.repeat(i % 23)}`;
      names.push(n);
      e.create(big, n, 0o644);
    }
    e.sync();
    check(img, '6000 inserts into an htree directory');
    assert.match(debugfs(img, 'htree /big').toString(), /Indirect levels: 1/);
    for (const n of names) e.lookup(big, n);
    for (let i = 0; i < 400; i++) e.lookup(big, `seed-${i}`);
    assert.throws(() => e.create(big, names[17]!, 0o644), (x: unknown) => x instanceof FsError && x.errno === E.EEXIST);
    for (let i = 0; i < names.length; i += 2) e.unlink(big, names[i]!);
    for (let i = 1; i < names.length; i += 2) e.lookup(big, names[i]!);
    e.sync();
    check(img, 'removals from an htree directory');
    const listed = e.readdir(big).entries.length;
    assert.equal(listed, 2 + 400 + names.length / 2);
    e.close();
  } finally {
    dev.close();
  }
});

test('rename semantics: errors, directory moves, link counts', () => {
  const img = path.join(tmp, 'rename.img');
  mkfs(img, { size: '16M', blockSize: 4096 });
  const dev = MappedImage.open(img, 'rw');
  try {
    const e = Ext4.open(dev);
    const root = e.rootIno;
    const a = e.mkdir(root, 'a', 0o755);
    const b = e.mkdir(root, 'b', 0o755);
    const ab = e.mkdir(a, 'ab', 0o755);
    e.create(a, 'f', 0o644);
    e.create(b, 'g', 0o644);
    const is = (errno: number) => (x: unknown) => x instanceof FsError && x.errno === errno;
    assert.throws(() => e.rename(root, 'a', ab, 'x'), is(E.EINVAL)); // into its own subtree
    assert.throws(() => e.rename(a, 'f', root, 'b'), is(E.EISDIR));
    assert.throws(() => e.rename(root, 'a', b, 'g'), is(E.ENOTDIR));
    assert.throws(() => e.rename(a, 'ab', root, 'b'), is(E.ENOTEMPTY)); // over a non-empty directory
    assert.throws(() => e.rename(a, 'f', b, 'g', { noReplace: true }), is(E.EEXIST));
    assert.throws(() => e.rename(a, 'nope', b, 'x'), is(E.ENOENT));
    assert.throws(() => e.rmdir(root, 'a'), is(E.ENOTEMPTY));
    assert.throws(() => e.unlink(root, 'a'), is(E.EISDIR));
    assert.throws(() => e.rmdir(a, 'f'), is(E.ENOTDIR));
    assert.throws(() => e.mkdir(root, 'a', 0o755), is(E.EEXIST));
    assert.throws(() => e.create(root, 'x'.repeat(256), 0o644), is(E.ENAMETOOLONG));
    assert.equal(e.stat(root).nlink, 5); // ., .., lost+found/.., a/.., b/..
    e.rename(a, 'ab', b, 'moved');
    assert.equal(e.stat(a).nlink, 2);
    assert.equal(e.stat(b).nlink, 3);
    assert.equal(e.lookup(e.lookup(b, 'moved'), '..'), b);
    e.rename(a, 'f', b, 'g'); // over a file
    assert.throws(() => e.lookup(a, 'f'), is(E.ENOENT));
    e.rename(root, 'a', b, 'moved'); // a (empty) over moved (empty)
    assert.equal(e.stat(b).nlink, 3);
    assert.equal(e.stat(root).nlink, 4);
    e.create(root, 'p', 0o644);
    e.mkdir(root, 'q', 0o755);
    e.rename(root, 'p', b, 'moved', { exchange: true });
    assert.equal(e.lookup(e.lookup(root, 'p'), '..'), root);
    assert.equal(e.stat(root).nlink, 6); // lost+found, b, q and now p (a directory)
    assert.equal(e.stat(b).nlink, 2);
    // An open file survives its unlink until released.
    const o = e.create(root, 'open', 0o644);
    e.write(o, 0, Buffer.from('still here'));
    e.iref(o);
    e.unlink(root, 'open');
    const buf = Buffer.alloc(10);
    e.read(o, 0, buf);
    assert.equal(buf.toString(), 'still here');
    e.irelease(o);
    e.close();
    check(img, 'rename semantics');
  } finally {
    dev.close();
  }
});
