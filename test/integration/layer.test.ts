/**
 * Copy-on-write images: one ext4 image shared read-only by many VMs, each VM's changes in a layer of
 * its own (src/storage/layer.ts). Checked against native runs, with the image's bytes unchanged and
 * e2fsck of the image with the layer laid over it (mapvisor image flatten).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { untilCalls } from '../live.js';
import { Sandbox, MapvisorError } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const T = { timeout: 120_000 };

let dir: string;
let img: string;
let imgSha: string;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function flattenAndCheck(layer: string, name: string): string {
  const out = join(dir, `${name}.flat`);
  rmSync(out, { force: true });
  execFileSync(process.execPath, [CLI, 'image', 'flatten', img, layer, out], { stdio: 'pipe' });
  const f = spawnSync('e2fsck', ['-fn', out], { encoding: 'utf8' });
  assert.equal(f.status, 0, f.stdout + f.stderr);
  return out;
}

function debugfsCat(image: string, path: string): Buffer {
  return execFileSync('debugfs', ['-R', `cat ${path}`, image], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 1 << 28 });
}

/** Bytes a file holds on disk (a layer is sparse: only the pages it keeps). */
const allocated = (p: string): number => statSync(p).blocks * 512;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-layer-'));
  const stage = join(dir, 'stage');
  for (const d of ['bin', 'data']) mkdirSync(join(stage, d), { recursive: true });
  copyFileSync(join(ROOT, '.cache', 'busybox'), join(stage, 'bin', 'busybox'));
  for (const g of ['fsstress', 'mmapfile', 'appendlog']) copyFileSync(guest(g), join(stage, 'bin', g));
  for (const f of ['busybox', 'fsstress', 'mmapfile', 'appendlog']) chmodSync(join(stage, 'bin', f), 0o755);
  writeFileSync(join(stage, 'data', 'given'), 'from the image\n');
  img = join(dir, 'base.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-d', stage, '-b', '4096', img, '256M'], { stdio: 'ignore' });
  imgSha = sha(readFileSync(img));
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('a write-heavy run on a layer makes what a native run makes; the image is unchanged; image + layer checks clean', T, async () => {
  const layer = join(dir, 'stress.layer');
  const r = await Sandbox.run('/bin/fsstress', ['/data/st', '3000'], { image: { path: img, mode: 'cow', layer }, stdout: 'pipe' });
  assert.equal(r.status, 0, r.stdout?.toString());
  const native = mkdtempSync(join(dir, 'native-'));
  const n = spawnSync(guest('fsstress'), [join(native, 'st'), '3000'], { encoding: 'utf8' });
  assert.equal(/fsstress ok ([0-9a-f]+)/.exec(r.stdout!.toString())?.[1], /fsstress ok ([0-9a-f]+)/.exec(n.stdout)?.[1], 'same files and bytes as natively');
  assert.equal(sha(readFileSync(img)), imgSha, 'the shared image never changes');
  const flat = flattenAndCheck(layer, 'stress');
  assert.equal(sha(debugfsCat(flat, '/data/st/frag2')), sha(readFileSync(join(native, 'st', 'frag2'))));
  assert.ok(allocated(layer) < statSync(img).size / 4, `the layer holds ${allocated(layer)} bytes, not a copy of the image`);
});

test('file mappings on a layer: MAP_SHARED stores and write() meet; MAP_PRIVATE stays private; SIGBUS past the end', T, async () => {
  const layer = join(dir, 'mmap.layer');
  const image = { path: img, mode: 'cow' as const, layer };
  const r = await Sandbox.run('/bin/mmapfile', ['/data/m'], { image, stdout: 'pipe' });
  assert.equal(r.stdout?.toString().trim(), 'mmapfile ok');
  assert.equal(r.stats!.execInPlace, true, 'the program runs in place from the shared image');
  const b = await Sandbox.run('/bin/mmapfile', ['/data/m2', 'sigbus'], { image, stdout: 'pipe' });
  assert.equal(b.signal, 7, `${b.reason}`);
  assert.equal(sha(readFileSync(img)), imgSha);
  const bytes = debugfsCat(flattenAndCheck(layer, 'mmap'), '/data/m');
  assert.equal(bytes.length, 3 * 4096 + 100);
  assert.equal(bytes.subarray(0, 23).toString(), 'shared mapping was here');
  assert.equal(bytes.subarray(4096, 4101).toString(), 'WRITE');
});

test('a layer lasts across runs; VMs share the image, each with its own layer; a writer of the image itself is refused meanwhile', T, async () => {
  const a = join(dir, 'a.layer');
  const b = join(dir, 'b.layer');
  const w = await Sandbox.run('/bin/busybox', ['sh', '-c', 'echo kept > /data/mine && rm /data/given'], { image: { path: img, mode: 'cow', layer: a }, stderr: 'pipe' });
  assert.equal(w.status, 0, w.stderr?.toString());
  // Two VMs at once over the one image: A sees its own changes, B the image as it is.
  const [ra, rb] = await Promise.all([
    Sandbox.run('/bin/busybox', ['sh', '-c', 'cat /data/mine; ls /data'], { image: { path: img, mode: 'cow', layer: a }, stdout: 'pipe' }),
    Sandbox.run('/bin/busybox', ['sh', '-c', 'sleep 0.5; cat /data/given; ls /data'], { image: { path: img, mode: 'cow', layer: b }, stdout: 'pipe' }),
  ]);
  assert.equal(ra.stdout!.toString(), 'kept\nmine\n');
  assert.match(rb.stdout!.toString(), /^from the image\n.*given/s);
  assert.doesNotMatch(rb.stdout!.toString(), /mine/);
  for (const r of [ra, rb]) assert.ok(r.stats!.execInPlace && r.stats!.imageMappedBytes > 0, 'busybox is the image\'s own pages in both VMs');
  assert.ok(allocated(b) < 1 << 20, `a layer only read through holds ${allocated(b)} bytes`);
  // While a VM runs over the image, nobody may write the image itself; nor may two VMs share a layer.
  const sleeper = new Sandbox('/bin/busybox', ['sleep', '3'], { image: { path: img, mode: 'cow', layer: b } });
  const running = sleeper.run();
  await untilCalls(sleeper, 'clock_nanosleep', 1).catch(() => undefined);
  await assert.rejects(Sandbox.run('/bin/busybox', ['true'], { image: img }), (e: unknown) => e instanceof MapvisorError && e.code === 'EIMAGELOCKED');
  await assert.rejects(Sandbox.run('/bin/busybox', ['true'], { image: { path: img, mode: 'cow', layer: b } }), (e: unknown) => e instanceof MapvisorError && e.code === 'EIMAGELOCKED' && /layer/.test(e.message));
  sleeper.stop();
  await running;
  assert.equal(sha(readFileSync(img)), imgSha);
});

test('a checkpoint of a copy-on-write run holds its layer as it was; each restore continues from it', T, async () => {
  const ckpt = join(dir, 'ckpt');
  const sb = new Sandbox('/bin/appendlog', ['/data/log', '1500'], { image: `${img},cow`, stdout: 'pipe' });
  const run = sb.run();
  await untilCalls(sb, 'clock_nanosleep', 1);
  await sb.checkpoint(ckpt);
  const first = await run;
  assert.equal(first.stdout!.toString(), 'ready\none\ntwo\n');
  assert.ok(allocated(join(ckpt, 'layer')) < 1 << 20, 'the checkpoint holds the changed pages, not the image');
  // Restored twice: each continues on its own copy of the checkpoint's layer (the log holds "one").
  for (let i = 0; i < 2; i++) {
    const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
    assert.equal(r.status, 0, r.reason ?? '');
    assert.equal(r.stdout!.toString(), 'one\ntwo\n');
  }
  // Onto a named layer: it lasts, and holds what the restored program wrote.
  const kept = join(dir, 'restored.layer');
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe', layer: kept }).run();
  assert.equal(r.stdout!.toString(), 'one\ntwo\n');
  assert.equal(debugfsCat(flattenAndCheck(kept, 'restored'), '/data/log').toString(), 'one\ntwo\n');
  await assert.rejects(Sandbox.restore(ckpt, { layer: kept }).run(), (e: unknown) => e instanceof MapvisorError && /exists already/.test(e.message));
  assert.equal(sha(readFileSync(img)), imgSha);
});

test('bad layer input: one line naming the problem and the fix, exit 125', T, () => {
  const junk = join(dir, 'junk.layer');
  writeFileSync(junk, 'not a layer\n');
  const other = join(dir, 'other.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', other, '16M'], { stdio: 'ignore' });
  const otherLayer = join(dir, 'other.layer');
  spawnSync(process.execPath, [CLI, 'run', '--image', `${other},cow`, '--layer', otherLayer, '--', '/bin/true']); // no /bin/true there: fails, after making the layer
  assert.ok(existsSync(otherLayer));
  for (const [args, re] of [
    [['run', '--image', `${img},rw`, '--layer', join(dir, 'x.layer'), '--', '/bin/busybox', 'true'], /--layer goes with a copy-on-write image, not ,rw \(give --image /],
    [['run', '--layer', join(dir, 'x.layer'), '--', '/bin/busybox', 'true'], /--layer needs an --image/],
    [['run', '--image', img, '--layer', junk, '--', '/bin/busybox', 'true'], /is not a mapvisor layer \(give a layer file made by mapvisor/],
    [['run', '--image', img, '--layer', otherLayer, '--', '/bin/busybox', 'true'], /was made over .*other\.img .* not .*base\.img/],
    [['run', '--image', img, '--storage', 'blk', '--layer', join(dir, 'y.layer'), '--', '/bin/busybox', 'true'], /a layer file is for --storage memory/],
    [['image', 'flatten', img, junk, join(dir, 'z.img')], /is not a layer over an image of/],
  ] as const) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});
