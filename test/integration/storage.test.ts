/**
 * Storage as memory: programs run from an ext4 image that the VMM maps, on real images made by
 * mkfs.ext4 -d and checked on the host with e2fsck and debugfs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onlyOn } from '../platform.js';
import { Sandbox, MapvisorError } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const T = { timeout: 120_000 };

let dir: string;
let stage: string;
const hostFiles = new Map<string, string>(); // path in the image -> sha256

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A fresh image of `size` from the staging tree. */
function makeImage(name: string, size = '128M', extra: string[] = []): string {
  const img = join(dir, name);
  execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', ...extra, '-d', stage, '-b', '4096', img, size], { stdio: 'ignore' });
  return img;
}

function fsck(img: string): { ok: boolean; out: string } {
  const r = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

function debugfsCat(img: string, path: string): Buffer {
  return execFileSync('debugfs', ['-R', `cat ${path}`, img], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });
}

/** Wait for a syncwrite child to say "synced" (or fail after 30 s). */
function untilSynced(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the child never said "synced"')), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('synced')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the child exited with ${code} before syncing`));
    });
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-storage-'));
  stage = join(dir, 'stage');
  for (const d of ['bin', 'data', 'data/sub', 'tmp']) mkdirSync(join(stage, d), { recursive: true });
  copyFileSync(join(ROOT, '.cache', 'busybox'), join(stage, 'bin', 'busybox'));
  for (const g of ['fsstress', 'mmapfile', 'syncwrite', 'hello', 'fragmap', 'sharedmap']) copyFileSync(guest(g), join(stage, 'bin', g));
  for (const f of ['busybox', 'fsstress', 'mmapfile', 'syncwrite', 'hello', 'fragmap', 'sharedmap']) chmodSync(join(stage, 'bin', f), 0o755);
  // Files of varied sizes (holes included) whose hashes the VM must reproduce.
  const sizes = [0, 1, 4095, 4096, 4097, 65536, 1_000_003, 5 * 2 ** 20];
  sizes.forEach((n, i) => {
    const data = randomBytes(n);
    const p = i % 2 ? `data/sub/f${i}` : `data/f${i}`;
    writeFileSync(join(stage, p), data);
    hostFiles.set(`/${p}`, sha256(data));
  });
  const sparse = Buffer.alloc(3 * 2 ** 20);
  sparse.write('start', 0);
  sparse.write('end', sparse.length - 3);
  writeFileSync(join(stage, 'data', 'sparse'), sparse);
  execFileSync('truncate', ['-s', String(3 * 2 ** 20), join(stage, 'data', 'sparse')]);
  hostFiles.set('/data/sparse', sha256(sparse));
  symlinkSync('sub/f1', join(stage, 'data', 'link'));
  hostFiles.set('/data/link', hostFiles.get('/data/sub/f1')!);
  // A symlink loop, for the hostile cases.
  symlinkSync('loop2', join(stage, 'data', 'loop1'));
  symlinkSync('loop1', join(stage, 'data', 'loop2'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

for (const storage of ['memory', 'blk'] as const) {
  test(`files made on the host read back with the same sha256 inside the VM [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-read.img`);
    const paths = [...hostFiles.keys()];
    const r = await Sandbox.run('/bin/busybox', ['sha256sum', ...paths], { storage, image: `${img},ro`, stdout: 'pipe', stderr: 'pipe' });
    assert.equal(r.status, 0, r.stderr?.toString());
    const got = new Map(r.stdout!.toString().trim().split('\n').map((l) => [l.split(/\s+/)[1]!, l.split(/\s+/)[0]!]));
    for (const [p, h] of hostFiles) assert.equal(got.get(p), h, p);
    if (storage === 'memory') {
      assert.equal(r.stats!.execInPlace, true, 'busybox runs in place from the image');
      assert.ok(r.stats!.imageMappedBytes >= 1 << 20, `the program's text is the image's pages (${r.stats!.imageMappedBytes} bytes)`);
    } else {
      assert.equal(r.stats!.execInPlace, false, 'blk mode copies programs into memory');
      assert.equal(r.stats!.imageMappedBytes, 0);
      assert.ok(r.stats!.block!.readRequests > 0 && r.stats!.block!.misses > 0);
    }
  });

  test(`a write-heavy run leaves a clean file system and the same data a native run makes [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-stress.img`, '256M');
    const r = await Sandbox.run('/bin/fsstress', ['/data/st', '3000'], { storage, image: img, stdout: 'pipe' });
    assert.equal(r.status, 0, r.stdout?.toString());
    const vmSum = /fsstress ok ([0-9a-f]+)/.exec(r.stdout!.toString())?.[1];
    const native = mkdtempSync(join(dir, `native-${storage}-`));
    const n = spawnSync(guest('fsstress'), [join(native, 'st'), '3000'], { encoding: 'utf8' });
    assert.equal(n.status, 0, n.stdout);
    assert.equal(vmSum, /fsstress ok ([0-9a-f]+)/.exec(n.stdout)?.[1], 'same files and bytes as natively');
    const f = fsck(img);
    assert.ok(f.ok, f.out);
    // The data is on the image: one fragmented file, read by debugfs, equals the native one.
    assert.equal(sha256(debugfsCat(img, '/data/st/frag2')), sha256(readFileSync(join(native, 'st', 'frag2'))));
    const ls = execFileSync('debugfs', ['-R', 'ls -l /data/st/big', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 26 });
    assert.ok(ls.split('\n').filter((l) => l.includes('renamed-')).length === 1500);
  });

  test(`busybox file tools on a read-write image; e2fsck clean afterwards [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-tools.img`);
    const bb = (...args: string[]) => Sandbox.run('/bin/busybox', args, { storage, image: img, stdout: 'pipe', stderr: 'pipe' });
    for (const args of [
      ['mkdir', '-p', '/data/x/y/z'],
      ['cp', '/data/f6', '/data/x/y/z/copy'],
      ['mv', '/data/x/y/z/copy', '/data/x/moved'],
      ['ln', '-s', '/data/x/moved', '/data/x/sl'],
      ['ln', '/data/x/moved', '/data/x/hard'],
      ['rm', '-r', '/data/x/y'],
      ['chmod', '600', '/data/x/hard'],
      ['touch', '-d', '2001-02-03 04:05:06', '/data/x/moved'],
    ]) {
      const r = await bb(...args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr?.toString()}`);
    }
    const r = await bb('sha256sum', '/data/x/sl');
    assert.equal(r.stdout!.toString().split(' ')[0], hostFiles.get('/data/f6'));
    assert.ok(fsck(img).ok, fsck(img).out);
    assert.equal(sha256(debugfsCat(img, '/data/x/hard')), hostFiles.get('/data/f6'));
    const stat = execFileSync('debugfs', ['-R', 'stat /data/x/moved', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    assert.match(stat, /Links: 2/);
    assert.match(stat, /mtime: .*2001/);
  });

  test(`MAP_SHARED stores reach the image; MAP_PRIVATE stores do not; past the end of the file is SIGBUS [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-mmap.img`);
    const r = await Sandbox.run('/bin/mmapfile', ['/data/m'], { storage, image: img, stdout: 'pipe' });
    assert.equal(r.stdout?.toString().trim(), 'mmapfile ok');
    const bytes = debugfsCat(img, '/data/m');
    assert.equal(bytes.length, 3 * 4096 + 100);
    assert.equal(bytes.subarray(0, 23).toString(), 'shared mapping was here');
    assert.equal(bytes.subarray(4096, 4101).toString(), 'WRITE');
    assert.equal(bytes.subarray(2 * 4096, 2 * 4096 + 10).toString(), 'page three');
    const b = await Sandbox.run('/bin/mmapfile', ['/data/m2', 'sigbus'], { storage, image: img, stdout: 'pipe' });
    assert.equal(b.signal, 7, `${b.reason}`);
    assert.equal(b.status, 135);
    assert.ok(fsck(img).ok);
  });

  test(`two processes that map one file MAP_SHARED each see the other's stores at once; they reach the file [${storage}]`, {
    ...T,
    skip: storage === 'blk' ? 'blk mode: a shared mapping is each process\'s own copy of the file (the conventional path\'s limit)' : false,
  }, async () => {
    const img = makeImage(`${storage}-sharedmap.img`);
    for (const image of [img, `${img},cow`]) {
      const r = await Sandbox.run('/bin/sharedmap', ['/data/shared'], { storage, image, stdout: 'pipe' });
      assert.equal(r.stdout?.toString().trim(), 'sharedmap ok', `${image}: ${r.reason ?? ''}`);
    }
    assert.equal(debugfsCat(img, '/data/shared').readInt32LE(4), 42);
    assert.ok(fsck(img).ok);
  });

  test(`ro refuses writes with EROFS; cow leaves the image unchanged [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-modes.img`);
    const before = sha256(readFileSync(img));
    const ro = await Sandbox.run('/bin/busybox', ['touch', '/data/new'], { storage, image: `${img},ro`, stderr: 'pipe' });
    assert.notEqual(ro.status, 0);
    assert.match(ro.stderr!.toString(), /Read-only file system/);
    const cow = await Sandbox.run('/bin/busybox', ['cp', '/data/f6', '/data/copy'], { storage, image: `${img},cow`, stderr: 'pipe' });
    assert.equal(cow.status, 0, cow.stderr?.toString());
    assert.equal(sha256(readFileSync(img)), before, 'the image bytes are unchanged');
  });

  test(`two VMs run from one ro image at once; a second writer is refused [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-shared.img`);
    const [a, b] = await Promise.all([
      Sandbox.run('/bin/busybox', ['sha256sum', '/data/sub/f7'], { storage, image: `${img},ro`, stdout: 'pipe' }),
      Sandbox.run('/bin/busybox', ['sha256sum', '/data/sub/f7'], { storage, image: `${img},ro`, stdout: 'pipe' }),
    ]);
    assert.equal(a.stdout!.toString().split(' ')[0], hostFiles.get('/data/sub/f7'));
    assert.equal(b.stdout!.toString().split(' ')[0], hostFiles.get('/data/sub/f7'));
    // A writer holds the image; a second writer gets a clear error.
    const writer = spawn(process.execPath, [CLI, 'run', '--storage', storage, '--image', img, '--', '/bin/syncwrite', '/data/w', 'x'], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await untilSynced(writer);
      await assert.rejects(Sandbox.run('/bin/hello', [], { storage, image: img }), (e: unknown) => e instanceof MapvisorError && /in use by another VM/.test(e.message));
    } finally {
      writer.kill('SIGKILL');
      await new Promise((r) => writer.on('close', r));
    }
  });

  test(`data the program synced survives SIGKILL of the VMM [${storage}]`, T, async () => {
    const img = makeImage(`${storage}-durable.img`);
    const child = spawn(process.execPath, [CLI, 'run', '--storage', storage, '--image', img, '--', '/bin/syncwrite', '/data/durable', 'this survived'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await untilSynced(child);
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
    }
    assert.equal(debugfsCat(img, '/data/durable').toString(), 'this survived');
  });

  test(`hostile images and paths: errors, never a crash [${storage}]`, T, async () => {
    // A corrupted superblock.
    const bad = makeImage(`${storage}-badsb.img`);
    const fd = readFileSync(bad);
    fd.writeUInt16LE(0x1234, 1024 + 0x38); // s_magic
    writeFileSync(bad, fd);
    await assert.rejects(Sandbox.run('/bin/hello', [], { storage, image: bad }), (e: unknown) => e instanceof MapvisorError && e.oneLine().length < 400);
    // A directory loop through symlinks, and a path of 10,000 components.
    const img = makeImage(`${storage}-paths.img`);
    const loop = await Sandbox.run('/bin/busybox', ['cat', '/data/loop1'], { storage, image: img, stderr: 'pipe' });
    assert.notEqual(loop.status, 0);
    assert.match(loop.stderr!.toString(), /Symbolic link loop|Too many levels/i);
    const long = await Sandbox.run('/bin/busybox', ['cat', '/data' + '/.'.repeat(10_000)], { storage, image: img, stderr: 'pipe' });
    assert.notEqual(long.status, 0);
    assert.match(long.stderr!.toString(), /too long/i);
    assert.ok(fsck(img).ok);
    // A missing program in the image, and a missing image.
    await assert.rejects(Sandbox.run('/bin/nothing', [], { storage, image: img }), (e: unknown) => e instanceof MapvisorError && e.exitCode === 127);
    await assert.rejects(Sandbox.run('/bin/hello', [], { storage, image: join(dir, 'none.img') }), (e: unknown) => e instanceof MapvisorError && /does not exist/.test(e.message));
  });

  test(`Debian's sqlite3 (dynamic, from an image made by image create): 10,000 rows in transactions; the database checks clean on the host [${storage}]`, T, async () => {
    const { createImage } = await import('../../src/image/create.js');
    const img = join(dir, `${storage}-sqlite.img`);
    const extra = join(dir, `${storage}-sqlite-extra`);
    mkdirSync(join(extra, 'data'), { recursive: true });
    await createImage({ out: img, debian: ['sqlite3'], add: [{ host: extra, dir: '/' }] });
    const sql = ['create table t(id integer primary key, k integer, v text);', 'create index tk on t(k);'];
    for (let b = 0; b < 10; b++) {
      sql.push('begin;');
      for (let i = b * 1000; i < (b + 1) * 1000; i++) sql.push(`insert into t(k, v) values(${(i * 7919) % 10000}, 'value-${i}');`);
      sql.push('commit;');
    }
    const r = await Sandbox.run('/usr/bin/sqlite3', ['/data/t.db'], { storage, image: img, stdin: sql.join('\n'), stdout: 'pipe', stderr: 'pipe' });
    assert.equal(r.status, 0, r.stderr?.toString());
    assert.equal(r.stats!.execInPlace, storage === 'memory');
    assert.equal(r.stats!.interpInPlace, storage === 'memory', 'ld.so runs in place from the image in memory mode');
    const q = await Sandbox.run('/usr/bin/sqlite3', ['/data/t.db', 'select count(*), sum(k) from t; select v from t where k = 4242;'], { storage, image: img, stdout: 'pipe', stderr: 'pipe' });
    assert.equal(q.stdout!.toString(), `10000|49995000\nvalue-${[...Array(10000).keys()].find((i) => (i * 7919) % 10000 === 4242)}\n`, q.stderr?.toString());
    assert.ok(fsck(img).ok, fsck(img).out);
    const db = join(dir, `${storage}-out.db`);
    writeFileSync(db, debugfsCat(img, '/data/t.db'));
    const check = execFileSync('sqlite3', [db, 'pragma integrity_check; select count(*) from t;'], { encoding: 'utf8' });
    assert.equal(check, 'ok\n10000\n');
  });
}

test('a file in 3,000 runs of the image, mapped whole in one mmap (more map orders than the process platform\'s ring holds), reads right; private writes stay private', T, async () => {
  const img = makeImage('frag.img');
  const r = await Sandbox.run('/bin/fragmap', ['/data', '3000'], { image: img, stdout: 'pipe', stderr: 'pipe' });
  assert.equal(r.status, 0, `${r.reason ?? ''} ${r.stdout?.toString()} ${r.stderr?.toString()}`);
  assert.match(r.stdout!.toString(), /fragmap ok 3000 pages/);
  assert.ok(r.stats!.mapChanges > 3000, `${r.stats!.mapChanges} map changes: the file was not fragmented`);
  const f = fsck(img);
  assert.ok(f.ok, f.out);
});

test('a program that fills the image gets a short write, then ENOSPC; what it wrote is there and e2fsck is clean', T, async () => {
  // A small image with 1 KiB blocks holding only busybox: dd writes until the space runs out.
  const small = join(dir, 'small-stage');
  mkdirSync(join(small, 'bin'), { recursive: true });
  copyFileSync(join(ROOT, '.cache', 'busybox'), join(small, 'bin', 'busybox'));
  chmodSync(join(small, 'bin', 'busybox'), 0o755);
  const img = join(dir, 'full.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-d', small, '-b', '1024', img, '6M'], { stdio: 'ignore' });
  const r = await Sandbox.run('/bin/busybox', ['dd', 'if=/dev/zero', 'of=/fill', 'bs=65536', 'count=200'], { image: img, stdout: 'pipe', stderr: 'pipe' });
  assert.equal(r.status, 1, `dd should fail: ${r.stderr?.toString()}`);
  assert.match(r.stderr!.toString(), /No space left on device/);
  const ls = await Sandbox.run('/bin/busybox', ['stat', '-c', '%s', '/fill'], { image: img, stdout: 'pipe' });
  const size = Number(ls.stdout!.toString().trim());
  assert.ok(size > 1 << 20 && size < 6 << 20, `the file holds what fitted: ${size} bytes`);
  assert.equal(debugfsCat(img, '/fill').length, size, 'debugfs sees the same size');
  const f = fsck(img);
  assert.ok(f.ok, f.out);
});

test('an image written in one mode reads back identically in the other', T, async () => {
  const img = makeImage('cross.img', '256M');
  const w = await Sandbox.run('/bin/fsstress', ['/data/x', '500'], { storage: 'blk', image: img, stdout: 'pipe' });
  assert.equal(w.status, 0);
  const sumBlk = (await Sandbox.run('/bin/busybox', ['sha256sum', '/data/x/frag0', '/data/x/frag1', '/data/x/frag3'], { storage: 'blk', image: `${img},ro`, stdout: 'pipe' })).stdout!.toString();
  const sumMem = (await Sandbox.run('/bin/busybox', ['sha256sum', '/data/x/frag0', '/data/x/frag1', '/data/x/frag3'], { storage: 'memory', image: `${img},ro`, stdout: 'pipe' })).stdout!.toString();
  assert.equal(sumMem, sumBlk);
  const m = await Sandbox.run('/bin/fsstress', ['/data/y', '500'], { storage: 'memory', image: img, stdout: 'pipe' });
  assert.equal(m.status, 0);
  const ls = async (storage: 'memory' | 'blk'): Promise<string> =>
    (await Sandbox.run('/bin/busybox', ['ls', '-lR', '/data/y'], { storage, image: `${img},ro`, stdout: 'pipe' })).stdout!.toString();
  assert.equal(await ls('blk'), await ls('memory'));
  assert.ok(fsck(img).ok);
});

/** A directory on a file system that refuses O_DIRECT: /dev/shm on older kernels, else a ramfs mount. */
/** Does the file system holding directory `d` refuse O_DIRECT opens? */
function refuses(d: string): boolean {
  const f = join(d, `.direct-probe-${process.pid}`);
  try {
    writeFileSync(f, Buffer.alloc(4096));
    try {
      closeSync(openSync(f, constants.O_RDONLY | constants.O_DIRECT));
      return false;
    } catch {
      return true;
    }
  } catch {
    return false;
  } finally {
    rmSync(f, { force: true });
  }
}

function refusingDirectFs(): { dir: string; cleanup: () => void } | null {
  if (refuses('/dev/shm')) return { dir: '/dev/shm', cleanup: () => rmSync('/dev/shm/x.img', { force: true }) };
  const mnt = mkdtempSync(join(tmpdir(), 'mapvisor-ramfs-'));
  if (spawnSync('mount', ['-t', 'ramfs', 'ramfs', mnt]).status === 0) {
    if (refuses(mnt)) return { dir: mnt, cleanup: () => (spawnSync('umount', [mnt]), rmSync(mnt, { recursive: true, force: true })) };
    spawnSync('umount', [mnt]);
  }
  rmSync(mnt, { recursive: true, force: true });
  return null;
}

test('cache=none (O_DIRECT) works where the host file system supports it, and says so where it does not', T, async (t) => {
  const img = makeImage('direct.img');
  const r = Sandbox.run('/bin/busybox', ['sha256sum', '/data/f6'], { storage: 'blk', cacheMode: 'none', image: img, stdout: 'pipe' });
  if (refuses(dir)) {
    await assert.rejects(r, (e: unknown) => e instanceof MapvisorError && /O_DIRECT/.test(e.message));
  } else {
    const out = await r;
    assert.equal(out.stdout!.toString().split(' ')[0], hostFiles.get('/data/f6'));
  }
  // A file system that refuses O_DIRECT (ramfs; tmpfs before Linux 6.6): the error must say so in one line.
  const refusing = refusingDirectFs();
  if (!refusing) {
    t.diagnostic('no file system here refuses O_DIRECT (tmpfs accepts it since Linux 6.6, and ramfs could not be mounted): refusal not exercised');
    return;
  }
  try {
    copyFileSync(img, join(refusing.dir, 'x.img'));
    await assert.rejects(
      Sandbox.run('/bin/hello', [], { storage: 'blk', cacheMode: 'none', image: join(refusing.dir, 'x.img') }),
      (e: unknown) => e instanceof MapvisorError && /O_DIRECT/.test(e.message) && !e.oneLine().includes('\n'),
    );
  } finally {
    refusing.cleanup();
  }
});

test('blk mode with --blk-mmap fault fills file mappings on first touch (userfaultfd), with the same results', { ...T, skip: onlyOn('kvm', 'userfaultfd fills the VM\'s own memory, which the process platform does not have') }, async () => {
  const img = makeImage('lazy.img');
  const r = await Sandbox.run('/bin/mmapfile', ['/data/m'], { storage: 'blk', blkMmap: 'fault', image: img, stdout: 'pipe' });
  assert.equal(r.stdout?.toString().trim(), 'mmapfile ok');
  assert.ok(r.stats!.pagesFilledOnFault > 0, 'pages were filled by the fault handler');
  assert.equal(debugfsCat(img, '/data/m').subarray(0, 23).toString(), 'shared mapping was here');
  assert.ok(fsck(img).ok);
});
