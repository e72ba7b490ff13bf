/** `mapvisor image create`: ext4 images from host directories and Debian packages, checked with e2fsprogs. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage } from '../../src/image/create.js';
import { imageCommand } from '../../src/cli/image.js';
import { findTool } from '../../src/image/exec.js';
import { closure, parseDepends, parseShow } from '../../src/image/apt.js';
import { debugfs, fsckCheck } from '../../src/storage/ext4/mkimage.js';
import { MapvisorError } from '../../src/errors.js';

const MiB = 2 ** 20;
let dir = '';
let staging = '';
const savedTmp = process.env.TMPDIR;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-image-test-'));
  staging = join(dir, 'tmp');
  mkdirSync(staging);
  process.env.TMPDIR = staging; // createImage's staging directories go here, so leftovers show
});
after(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  rmSync(dir, { recursive: true, force: true });
});

const dfs = (img: string, cmd: string): string => debugfs(img, cmd).toString('utf8');

/** Follows symlinks inside the image (absolute targets from its root), as the guest would. */
function resolveInImage(img: string, path: string): string {
  let rest = path.split('/').filter((p) => p && p !== '.');
  const done: string[] = [];
  for (let hops = 0; rest.length; ) {
    const part = rest.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const link = /Fast link dest: "(.*)"/.exec(dfs(img, `stat /${[...done, part].join('/')}`));
    if (!link) {
      done.push(part);
      continue;
    }
    assert.ok(++hops < 40, `symlink loop at ${path}`);
    if (link[1]!.startsWith('/')) done.length = 0;
    rest = [...link[1]!.split('/').filter((p) => p && p !== '.'), ...rest];
  }
  return `/${done.join('/')}`;
}

function assertCleanImage(img: string): void {
  const fsck = fsckCheck(img);
  assert.equal(fsck.status, 0, fsck.output);
  assert.equal(statSync(img).size % (2 * MiB), 0);
  assert.ok(!existsSync(`${img}.tmp`));
  assert.deepEqual(readdirSync(staging), [], 'staging directories are removed');
}

/** Runs `fn`, which must fail with a one-line MapvisorError matching `re`. */
async function oneLineError(fn: () => Promise<unknown>, re: RegExp): Promise<MapvisorError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof MapvisorError, String(e));
    assert.match(e.oneLine(), re);
    assert.ok(!e.oneLine().includes('\n'), e.oneLine());
    assert.ok(e.fix.length > 0);
    return e;
  }
  assert.fail(`expected an error matching ${re}`);
}

test('--add copies a host directory (files, a subdirectory, a symlink, modes)', { timeout: 30_000 }, async () => {
  const host = join(dir, 'host');
  mkdirSync(join(host, 'sub/deeper'), { recursive: true });
  writeFileSync(join(host, 'hello.txt'), 'hello image\n');
  writeFileSync(join(host, 'sub/deeper/data.bin'), Buffer.alloc(10000, 7));
  writeFileSync(join(host, 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(host, 'run.sh'), 0o750);
  symlinkSync('sub/deeper/data.bin', join(host, 'link'));
  writeFileSync(join(dir, 'single.conf'), 'key=value\n');

  const img = join(dir, 'add.img');
  const lines: string[] = [];
  const r = await createImage({
    out: img,
    debian: [],
    add: [{ host, dir: '/' }, { host, dir: '/opt/copy' }, { host: join(dir, 'single.conf'), dir: '/etc/app.conf' }],
    progress: (l) => lines.push(l),
  });
  assert.equal(r.size % (2 * MiB), 0);
  assert.equal(r.size, 64 * MiB + 2 * MiB, 'default: content × 1.5 + 64 MiB, rounded up to 2 MiB');
  assert.equal(statSync(img).size, r.size);
  assert.deepEqual(r.packages, []);
  assert.ok(lines.some((l) => l.startsWith('making a 66 MiB ext4 image')), lines.join('\n'));
  assertCleanImage(img);

  assert.equal(dfs(img, 'cat /hello.txt'), 'hello image\n');
  assert.equal(dfs(img, 'cat /opt/copy/hello.txt'), 'hello image\n');
  assert.equal(dfs(img, 'cat /etc/app.conf'), 'key=value\n');
  assert.deepEqual(Buffer.from(dfs(img, 'cat /sub/deeper/data.bin'), 'latin1'), Buffer.alloc(10000, 7));
  assert.match(dfs(img, 'stat /run.sh'), /Type: regular\s+Mode:\s+0750/);
  assert.match(dfs(img, 'stat /link'), /Type: symlink[\s\S]*Fast link dest: "sub\/deeper\/data.bin"/);
  assert.match(dfs(img, 'stat /sub/deeper'), /Type: directory/);
  assert.match(dfs(img, 'stats'), /Filesystem volume name:\s+mapvisor/);
  assert.doesNotMatch(dfs(img, 'stats'), /has_journal/);
  // Without --debian the image holds exactly what was added (plus lost+found).
  assert.doesNotMatch(dfs(img, 'ls /'), /\btmp\b|\bproc\b/);

  const sized = join(dir, 'sized.img');
  assert.equal((await createImage({ out: sized, size: 33 * MiB, debian: [], add: [{ host, dir: '/' }] })).size, 34 * MiB, 'rounded up');
  assertCleanImage(sized);
});

test('--debian sqlite3 gives a root with sqlite3, its libraries and the loader', { timeout: 60_000 }, async (t) => {
  const img = join(dir, 'sqlite.img');
  const started = Date.now();
  let r;
  try {
    r = await createImage({ out: img, debian: ['sqlite3'], add: [] });
  } catch (e) {
    if (e instanceof MapvisorError && e.code === 'EDOWNLOAD') {
      t.skip(`no network to the Debian mirror: ${e.message}`);
      return;
    }
    throw e;
  }
  t.diagnostic(`${r.packages.join(' ')}; ${r.size / MiB} MiB in ${Date.now() - started} ms`);
  for (const p of ['sqlite3', 'libsqlite3-0', 'libc6', 'libgcc-s1', 'libreadline8', 'libtinfo6', 'zlib1g']) assert.ok(r.packages.includes(p), p);
  for (const p of ['dpkg', 'debconf', 'perl-base', 'coreutils', 'readline-common', 'gcc-12-base']) assert.ok(!r.packages.includes(p), p);
  assert.equal(r.packages[0], 'sqlite3');
  assertCleanImage(img);

  assert.match(dfs(img, 'stat /usr/bin/sqlite3'), /Type: regular\s+Mode:\s+0755/);
  const libs = dfs(img, 'ls /usr/lib/x86_64-linux-gnu');
  for (const lib of ['libsqlite3.so.0', 'libc.so.6', 'libreadline.so.8', 'libz.so.1', 'ld-linux-x86-64.so.2']) assert.match(libs, new RegExp(`\\b${lib.replace(/\./g, '\\.')}\\b`), lib);
  // Merged /usr as in Debian 12, and the loader path the binaries name resolves to a file.
  for (const [link, to] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['sbin', 'usr/sbin']]) {
    assert.match(dfs(img, `stat /${link}`), new RegExp(`Fast link dest: "${to}"`));
  }
  const loader = resolveInImage(img, '/lib64/ld-linux-x86-64.so.2');
  assert.equal(loader, '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  assert.match(dfs(img, `stat ${loader}`), /Type: regular/);
  assert.equal(resolveInImage(img, '/bin/sqlite3'), '/usr/bin/sqlite3');
  // The skeleton of a usable root.
  assert.match(dfs(img, 'stat /tmp'), /Type: directory\s+Mode:\s+01777/);
  for (const d of ['/dev', '/proc', '/root']) assert.match(dfs(img, `stat ${d}`), /Type: directory/);
  assert.match(dfs(img, 'cat /etc/passwd'), /^root:x:0:0:/);
  assert.match(dfs(img, 'cat /etc/group'), /^root:x:0:/);

  // A second run takes every .deb from the cache.
  const lines: string[] = [];
  await createImage({ out: img, debian: ['sqlite3'], add: [], progress: (l) => lines.push(l) });
  assert.ok(lines.includes('downloading nothing: 7 packages cached'), lines.join('\n'));
  assertCleanImage(img);
});

test('bad input gives one-line errors and leaves no files behind', { timeout: 30_000 }, async () => {
  const out = join(dir, 'bad.img');
  await oneLineError(() => imageCommand(['create']), /no OUT\.img given/);
  await oneLineError(() => imageCommand(['create', '--size', 'lots', out]), /--size "lots" is not a size/);
  await oneLineError(() => imageCommand(['create', '--frobnicate', out]), /Unknown option '--frobnicate'/);
  await oneLineError(() => imageCommand(['frob']), /unknown image command "frob"/);
  await oneLineError(() => createImage({ out: join(dir, 'nodir/x.img'), debian: [], add: [] }), /directory .*nodir.* does not exist \(create it first/);
  await oneLineError(() => createImage({ out: '', debian: [], add: [] }), /no output image given/);
  await oneLineError(() => createImage({ out, debian: [], add: [{ host: join(dir, 'missing'), dir: '/' }] }), /--add .*missing: no such file or directory/);
  await oneLineError(() => createImage({ out, debian: ['Not_A_Name'], add: [] }), /"Not_A_Name" is not a Debian package name/);
  await oneLineError(() => createImage({ out, debian: ['mapvisor-no-such-package'], add: [] }), /no Debian package named mapvisor-no-such-package \(check the name/);
  const e = await oneLineError(() => Promise.resolve(findTool('mkfs.ext4', join(dir, 'empty-path'))), /mkfs\.ext4 is not installed \(apt-get install e2fsprogs\)/);
  assert.equal(e.code, 'ETOOL');

  const host = join(dir, 'big');
  mkdirSync(host);
  writeFileSync(join(host, 'blob'), Buffer.alloc(12 * MiB, 1));
  await oneLineError(() => createImage({ out, size: 8 * MiB, debian: [], add: [{ host, dir: '/' }] }), /--size 8 MiB is too small: the content needs an image of at least \d+ MiB \(give --size \d+M or more/);
  assert.ok(!existsSync(out) && !existsSync(`${out}.tmp`));
  assert.deepEqual(readdirSync(staging), []);
});

test('dependency closure: first alternative, virtual providers, skipped plumbing', () => {
  const graph = parseDepends(
    [
      'app',
      ' |Depends: libfoo1',
      '  Depends: libbar2',
      ' |Depends: gone',
      '  Depends: libzed',
      '  Depends: <awk>',
      '    mawk',
      '  Depends: <nobody-provides>',
      '  PreDepends: dpkg',
      '  Depends: tool-data',
      '  Depends: libc6:i386',
      'libfoo1',
      '  Depends: libc6',
      '  Depends: debconf',
      'dpkg',
      '  Depends: libneverpulled',
      '<awk>',
      'mawk',
      '  Depends: libc6',
    ].join('\n'),
    'amd64',
  );
  const show = (name: string, section: string): string => `Package: ${name}\nVersion: 1\nArchitecture: amd64\nSection: ${section}\nFilename: pool/${name}.deb\nSize: 10\nSHA256: ab\n`;
  const candidates = parseShow(
    [show('app', 'database'), show('libfoo1', 'libs'), show('libbar2', 'libs'), show('libzed', 'libs'), show('mawk', 'interpreters'), show('dpkg', 'admin'), show('tool-data', 'misc'), show('libc6', 'libs'), show('debconf', 'admin'), show('libneverpulled', 'libs')].join('\n'),
  );
  assert.deepEqual(closure(['app'], graph, candidates).map((p) => p.name), ['app', 'libfoo1', 'libzed', 'mawk', 'tool-data', 'libc6']);
  assert.deepEqual(closure(['app', 'dpkg'], graph, candidates).map((p) => p.name), ['app', 'dpkg', 'libfoo1', 'libzed', 'mawk', 'tool-data', 'libneverpulled', 'libc6']);
  assert.equal(candidates.get('libfoo1')?.filename, 'pool/libfoo1.deb');
});
