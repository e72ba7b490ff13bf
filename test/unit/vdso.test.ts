/**
 * The vDSO image and its data page: the layout.ts offsets are vdso.h's (a probe compiled from the
 * header prints them), the image is one PT_LOAD at 0 with no relocations and exports the names glibc
 * and musl look up under version LINUX_2.6, and the page the timekeeper writes decodes to a formula
 * that agrees with the host's CLOCK_MONOTONIC.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VDSO_FLAG, VVAR, VVAR_SIZE } from '../../src/vdso/layout.js';
import { vdsoImage } from '../../src/vdso/image.js';
import { Timekeeper } from '../../src/vdso/timekeeper.js';
import { rdtsc } from '../../src/host/tsc.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

test('layout.ts has vdso.h offsets and size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-vvar-'));
  try {
    const fields = Object.keys(VVAR).map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/_ns$/, '_ns'));
    const names: Record<string, string> = { mono_base_ns: 'mono_base_ns', real_offset_ns: 'real_offset_ns', boot_offset_ns: 'boot_offset_ns', tai_offset_ns: 'tai_offset_ns', coarse_res_ns: 'coarse_res_ns' };
    const c = [
      '#include <stdio.h>',
      '#include <stddef.h>',
      `#include "${join(ROOT, 'src/vdso/vdso.h')}"`,
      'int main(void) {',
      ...fields.map((f) => `  printf("${f} %zu\\n", offsetof(struct vdso_data, ${names[f] ?? f}));`),
      '  printf("size %zu\\n", sizeof(struct vdso_data));',
      '  printf("flagbits %u %u %u\\n", VDSO_FLAG_TSC, VDSO_FLAG_CPU_AUX, VDSO_FLAG_CPU_ZERO);',
      '  return 0;',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'probe.c'), c);
    execFileSync('gcc', ['-o', join(dir, 'probe'), join(dir, 'probe.c')]);
    const out = execFileSync(join(dir, 'probe'), { encoding: 'utf8' });
    const got = new Map(out.trim().split('\n').map((l) => l.split(' ') as [string, string]).map(([k, ...v]) => [k, v.join(' ')]));
    Object.values(VVAR).forEach((off, i) => assert.equal(Number(got.get(fields[i]!)), off, `offset of ${fields[i]}`));
    assert.equal(Number(got.get('size')), VVAR_SIZE);
    assert.equal(got.get('flagbits'), `${VDSO_FLAG.tsc} ${VDSO_FLAG.cpuAux} ${VDSO_FLAG.cpuZero}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the vDSO image is one PT_LOAD at 0, has no relocations, and exports the LINUX_2.6 names', () => {
  const img = vdsoImage();
  assert.ok(img.length % 4096 === 0 && img.length >= img.bytes.length);
  const so = join(ROOT, 'dist/vdso/vdso.so');
  const rel = execFileSync('readelf', ['-r', so], { encoding: 'utf8' });
  assert.match(rel, /no relocations/);
  const syms = execFileSync('readelf', ['--dyn-syms', '-W', so], { encoding: 'utf8' });
  for (const name of ['__vdso_clock_gettime', '__vdso_gettimeofday', '__vdso_time', '__vdso_getcpu', '__vdso_clock_getres']) {
    assert.match(syms, new RegExp(`FUNC +GLOBAL +DEFAULT +\\d+ ${name}@@LINUX_2\\.6`), name);
  }
  const dyn = execFileSync('readelf', ['-d', so], { encoding: 'utf8' });
  assert.match(dyn, /\(HASH\)/, 'DT_HASH (musl looks symbols up with it)');
  assert.match(dyn, /\(GNU_HASH\)/);
  assert.match(dyn, /linux-vdso\.so\.1/);
});

test('the page decodes to a clock that agrees with the host and runs forward', () => {
  const tk = new Timekeeper();
  const page = tk.pageBytes({ tscOffset: 0n, cpuAux: false, ncpus: 4 });
  const d = new DataView(page.buffer);
  assert.equal(d.getUint32(VVAR.flags, true), VDSO_FLAG.tsc | VDSO_FLAG.cpuZero);
  assert.equal(d.getUint32(VVAR.ncpus, true), 4);
  const read = (): bigint => {
    const delta = rdtsc() - d.getBigUint64(VVAR.tscBase, true);
    return d.getBigUint64(VVAR.monoBaseNs, true) + ((delta * d.getBigUint64(VVAR.mult, true)) >> BigInt(d.getUint32(VVAR.shift, true)));
  };
  const a = read();
  const host = process.hrtime.bigint(); // CLOCK_MONOTONIC
  const b = read();
  assert.ok(b >= a);
  // Within 1 ms of the host clock right after a ~1 ms calibration (typically well under 10 µs).
  const err = a > host ? a - host : host - a;
  assert.ok(err < 1_000_000n, `formula ${a}, host ${host}`);
  // REALTIME through the page's offset is the host's wall clock.
  const real = read() + d.getBigInt64(VVAR.realOffsetNs, true);
  const wall = BigInt(Date.now()) * 1_000_000n;
  assert.ok(real - wall < 5_000_000n && wall - real < 5_000_000n, `realtime ${real}, Date.now ${wall}`);
});

test('updates are continuous and a restore never takes monotonic time back', () => {
  const tk = new Timekeeper();
  let last = tk.now(1);
  for (let i = 0; i < 50; i++) {
    tk.update();
    const t = tk.now(1);
    assert.ok(t >= last, `went back from ${last} to ${t}`);
    last = t;
  }
  // A checkpoint from a host whose clock was an hour ahead: the clock continues from there.
  const ahead = tk.now(1) + 3_600_000_000_000n;
  tk.keepMonotonicFrom(ahead);
  const after = tk.now(1);
  assert.ok(after >= ahead && after - ahead < 1_000_000_000n, `after ${after}, checkpoint ${ahead}`);
  tk.update();
  assert.ok(tk.now(1) >= after, 'an update after the restore keeps the offset');
  // Wall time stays the host's.
  const wall = BigInt(Date.now()) * 1_000_000n;
  const real = tk.now(0);
  assert.ok(real - wall < 5_000_000n && wall - real < 5_000_000n, `realtime ${real} vs ${wall}`);
});
