/**
 * Threads on an image: Debian's fio runs --thread jobs (psync and mmap engines, verify=crc32c) on a
 * file in the image in both storage modes and verifies clean; the pthread test program also runs as a
 * dynamically linked program from the image.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { createImage } from '../../src/image/create.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
let dir: string;
let img: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-threads-'));
  const extra = join(dir, 'extra');
  mkdirSync(join(extra, 'bin'), { recursive: true });
  // The same pthread program, dynamically linked against the image's glibc.
  execFileSync('gcc', ['-O2', '-pthread', '-o', join(extra, 'bin', 'threads-dyn'), join(ROOT, 'test', 'guest', 'threads.c')]);
  img = join(dir, 'fio.img');
  await createImage({ out: img, debian: ['fio'], add: [{ host: extra, dir: '/' }], size: 512 * 2 ** 20 });
});

after(() => rmSync(dir, { recursive: true, force: true }));

for (const storage of ['memory', 'blk'] as const) {
  for (const engine of ['psync', 'mmap']) {
    test(`fio --thread --numjobs=2, ${engine} engine, verify=crc32c [${storage}]`, { timeout: 120_000 }, async () => {
      const r = await Sandbox.run(
        '/usr/bin/fio',
        ['--name=t', '--thread', '--numjobs=2', '--rw=randrw', '--bs=4k', '--size=4m', `--ioengine=${engine}`, '--verify=crc32c', '--directory=/data'],
        { storage, image: img, stdout: 'pipe', stderr: 'pipe' },
      );
      const out = r.stdout!.toString();
      assert.equal(r.status, 0, `${out}\n${r.stderr}\n${r.reason ?? ''}`);
      assert.equal((out.match(/err= 0/g) ?? []).length, 2, out);
      assert.doesNotMatch(out + r.stderr!.toString(), /verify: bad|fio: .*error/i);
      assert.ok((r.stats!.syscalls.find((c) => c.name === 'clone3')?.count ?? 0) >= 2, 'fio made its job threads');
    });
  }
}

test('the pthread test program, dynamically linked, runs from the image', { timeout: 120_000 }, async () => {
  const r = await Sandbox.run('/bin/threads-dyn', ['2000'], { image: `${img},ro`, stdout: 'pipe', stderr: 'pipe' });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}\n${r.reason ?? ''}`);
  assert.match(r.stdout!.toString(), /threads ok/);
  const fsck = spawnSync('e2fsck', ['-fn', img]);
  assert.equal(fsck.status, 0);
});
