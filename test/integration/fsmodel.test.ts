/**
 * The write path through a program in the sandbox (issue 15): test/guest/fsseq.c makes a seeded random
 * sequence of create/write/append/truncate/fallocate/mkdir/unlink/rename/link/symlink/chmod/utimes/
 * rmdir in an image, keeping its own model of what every file must hold. Run to the end on a small
 * image (it fills up: ENOSPC through the kernel), the model must be what `debugfs rdump` finds, and
 * `e2fsck -fn` must be clean. Killed with SIGKILL in the middle of a long sequence, every log the
 * program had fsync'ed must hold at least what it had when fsync returned, and the image must be
 * consistent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { debugfs, fsckCheck, mkfs } from '../../src/storage/ext4/mkimage.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const FSSEQ = join(ROOT, '.cache', 'guest', 'fsseq');
const missing = existsSync(FSSEQ) ? false : `${FSSEQ} not built (node scripts/fixtures.mjs)`;

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mv-fsmodel-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** FNV-1a 64, as fsseq prints it. */
function fnv(b: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const x of b) {
    h ^= BigInt(x);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}

/** A fresh image with fsseq at /fsseq. */
function image(name: string, size: string): string {
  const img = join(dir, name);
  mkfs(img, { size, blockSize: 4096 });
  const bin = join(dir, 'fsseq');
  copyFileSync(FSSEQ, bin);
  debugfs(img, `write ${bin} /fsseq`, true);
  debugfs(img, 'set_inode_field /fsseq mode 0100755', true);
  return img;
}

function rdump(img: string, what: string): string {
  const out = mkdtempSync(join(dir, 'rdump-'));
  debugfs(img, `rdump ${what} ${out}`);
  return out;
}

test(`a random file-system sequence in the sandbox fills a small image and matches its model, read by debugfs [${PLATFORM}]`, { timeout: 180_000, skip: missing }, async () => {
  const img = image(`seq-${PLATFORM}.img`, '12M');
  const r = await Sandbox.run('/fsseq', ['11', '2500', '/work'], { image: img, stdout: 'pipe', stderr: 'pipe', timeout: 150 });
  const out = r.stdout!.toString();
  assert.equal(r.status, 0, `${out.split('\n').filter((l) => l.startsWith('FAIL')).join('\n')}\n${r.stderr}\n${r.reason ?? ''}`);
  assert.match(out, /^done$/m);
  const c = fsckCheck(img);
  assert.equal(c.status, 0, c.output);
  const tree = rdump(img, '/work');
  let files = 0;
  for (const line of out.split('\n')) {
    const p = line.split(' ');
    if (p[0] === 'file') {
      const path = join(tree, p[1]!.slice('/'.length));
      const data = readFileSync(path);
      assert.equal(data.length, Number(p[2]), `size of ${p[1]}`);
      assert.equal(fnv(data), p[3], `contents of ${p[1]}`);
      if (!/\/log\d$/.test(p[1]!)) assert.equal((lstatSync(path).mode & 0o777).toString(8), p[4], `mode of ${p[1]}`);
      files++;
    } else if (p[0] === 'symlink') assert.equal(readlinkSync(join(tree, p[1]!.slice('/'.length))), p[2], `target of ${p[1]}`);
  }
  assert.ok(files > 20, `${files} files in the model`);
  // The image was filled: the logs stopped growing well before the sequence ended.
  const df = debugfs(img, 'stats').toString();
  const free = Number(/Free blocks:\s+(\d+)/.exec(df)?.[1] ?? -1);
  const full = free >= 0 && free < 600; // (12 MiB: 3072 blocks of 4 KiB)
  assert.ok(full, `the image should have filled up (free blocks: ${free})`);
});

test(`SIGKILL in the middle of a sequence: what was fsync'ed is there, the image is consistent [${PLATFORM}]`, { timeout: 180_000, skip: missing }, async () => {
  const img = image(`kill-${PLATFORM}.img`, '64M');
  const sb = new Sandbox('/fsseq', ['12', '100000000', '/work'], { image: img, stdout: 'pipe', stderr: 'pipe', timeout: 120 });
  const run = sb.run();
  await sb.whenReady();
  await new Promise((res) => setTimeout(res, 2500));
  sb.kill(9);
  const r = await run;
  const out = r.stdout!.toString();
  assert.equal(r.signal, 9, `${r.status} ${r.reason}\n${out.slice(-500)}`);
  assert.doesNotMatch(out, /^(FAIL|done)/m, 'killed mid-sequence, without a failure');
  const c = fsckCheck(img);
  assert.equal(c.status, 0, c.output);
  const synced = new Map<string, { size: number; hash: string }>();
  for (const m of out.matchAll(/^sync (log\d) (\d+) ([0-9a-f]{16})$/gm)) synced.set(m[1]!, { size: Number(m[2]), hash: m[3]! });
  assert.ok(synced.size > 0, `no fsync'ed log before the kill:\n${out.slice(0, 300)}`);
  const tree = rdump(img, '/work');
  for (const [log, s] of synced) {
    const data = readFileSync(join(tree, 'work', log));
    assert.ok(data.length >= s.size, `${log}: ${data.length} bytes, fsync'ed at ${s.size}`);
    assert.equal(fnv(data.subarray(0, s.size)), s.hash, `${log}: the first ${s.size} bytes differ from what was fsync'ed`);
  }
});
