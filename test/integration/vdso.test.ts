/**
 * The vDSO inside the sandbox: a static glibc program finds it through AT_SYSINFO_EHDR, and its
 * (and a static musl one) clock_gettime, gettimeofday, time and getcpu run without a system call (the kernel counts none), agree
 * with the system calls and never go back, across threads and across a checkpoint and restore (also
 * one whose clock is ahead of this host's, as after a reboot). Debian's node reads the clock thousands
 * of times at start-up; none of them reaches the kernel.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const T = { timeout: 60_000 };
let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-vdso-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const calls = (r: { stats?: { syscalls: Array<{ name: string; count: number }> } | null }, name: string): number =>
  r.stats?.syscalls.find((c) => c.name === name)?.count ?? 0;

test('clock_gettime, gettimeofday, time and getcpu come from the vDSO and agree with the kernel', T, async () => {
  const r = await new Sandbox(guest('vdso'), [], { stdout: 'pipe', cpus: 2 }).run();
  const out = r.stdout!.toString();
  assert.equal(r.status, 0, out);
  assert.match(out, /ALL OK/);
  // The program's own system calls: 12 clock_gettime (the agree_ checks), the CPU-time clock and the
  // bad clock; the million vDSO readings and the threads' make none. gettimeofday and time: none.
  assert.equal(calls(r, 'clock_gettime'), 14, JSON.stringify(r.stats?.syscalls));
  assert.equal(calls(r, 'gettimeofday'), 0);
  assert.equal(calls(r, 'time'), 0);
  assert.equal(calls(r, 'getcpu'), 1, 'the one getcpu system call the program makes itself');
});

const MUSL = guest('vdso.musl');
test('musl finds the vDSO too (the same checks, built with musl-gcc)', { ...T, skip: existsSync(MUSL) ? false : 'musl-gcc is not installed (apt-get install musl-tools): no musl build of test/guest/vdso.c' }, async () => {
  const r = await new Sandbox(MUSL, [], { stdout: 'pipe', cpus: 2 }).run();
  const out = r.stdout!.toString();
  assert.equal(r.status, 0, out);
  assert.match(out, /ALL OK/);
  assert.equal(calls(r, 'clock_gettime'), 14, JSON.stringify(r.stats?.syscalls));
  assert.equal(calls(r, 'gettimeofday') + calls(r, 'time'), 0);
});

test('monotonic time continues across a checkpoint and restore, also onto a clock behind the checkpoint', T, async () => {
  const ckpt = join(dir, 'clock');
  const sb = new Sandbox(guest('vdso'), ['clock', '60', '20'], { stdout: 'pipe' });
  const run = sb.run();
  for (let i = 0; i < 200; i++) {
    await new Promise((res) => setTimeout(res, 50));
    const st = (await sb.liveStats()) as { syscalls: Array<{ name: string; count: number }> };
    if ((st.syscalls.find((c) => c.name === 'write')?.count ?? 0) >= 5) break;
  }
  await sb.checkpoint(ckpt);
  sb.stop();
  const first = (await run).stdout!.toString().trim().split('\n').map(BigInt);
  const r1 = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r1.status, 0, r1.reason ?? '');
  const again = r1.stdout!.toString().trim().split('\n');
  assert.ok(!again.some((l) => l.startsWith('BACK')), again.join(','));
  assert.ok(BigInt(again[0]!) > first.at(-1)!, `restored ${again[0]} after ${first.at(-1)}`);

  // A checkpoint taken where the clock was a day ahead (another boot): the restored program's clock
  // continues from there instead of going back.
  const statePath = join(ckpt, 'state.json');
  assert.ok(existsSync(statePath));
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as { sha256: string; state: { clock: { monotonicNs: string } } };
  const ahead = BigInt(state.state.clock.monotonicNs) + 86_400_000_000_000n;
  state.state.clock.monotonicNs = ahead.toString();
  state.sha256 = createHash('sha256').update(JSON.stringify(state.state)).digest('hex'); // as that host wrote it
  writeFileSync(statePath, JSON.stringify(state));
  const r2 = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r2.status, 0, r2.reason ?? '');
  const later = r2.stdout!.toString().trim().split('\n');
  assert.ok(!later.some((l) => l.startsWith('BACK')), later.join(','));
  assert.ok(BigInt(later[0]!) >= ahead, `restored ${later[0]}, checkpoint clock ${ahead}`);
});
