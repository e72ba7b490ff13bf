/**
 * mapvisor bench --quick: finishes, and its JSON has every workload in every mode of every platform
 * it measured. Under npm test (MAPVISOR_PLATFORM set, once per platform) it measures only that
 * platform (--platform $MAPVISOR_PLATFORM), so the suite does not run the whole bench twice; run alone
 * it measures every platform that works here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateReport, vmMode, MODES, PLATFORMS, platformOf, type Mode } from '../../src/bench/report.js';
import { probePlatforms } from '../../src/platform/select.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const ENV = process.env.MAPVISOR_PLATFORM;
const CHOICE = ENV === 'kvm' || ENV === 'process' || ENV === 'auto' ? ENV : null;

test('bench --quick writes tables, a valid JSON report with every workload in every mode of every measured platform, and an SVG chart', { timeout: 360_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-bench-test-'));
  try {
    const json = join(dir, 'b.json');
    const svg = join(dir, 'b.svg');
    const args = [join(ROOT, 'bin', 'mapvisor.js'), 'bench', '--quick', '--json', json, '--svg', svg, ...(CHOICE ? ['--platform', CHOICE] : [])];
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 350_000 });
    assert.equal(r.status, 0, r.stderr);
    const report = validateReport(JSON.parse(readFileSync(json, 'utf8')));

    // The platform axis: which platforms were measured, the others listed with the reason.
    const works = probePlatforms().filter((p) => p.works).map((p) => p.name);
    const auto = works[0];
    const expected = PLATFORMS.filter((p) => works.includes(p) && (CHOICE === null || CHOICE === p || (CHOICE === 'auto' && p === auto)));
    assert.ok(expected.length > 0);
    assert.deepEqual(report.platforms.filter((p) => p.measured).map((p) => p.name), expected);
    assert.deepEqual(report.platforms.map((p) => p.name), [...PLATFORMS]);
    for (const p of report.platforms) {
      assert.match(r.stdout, new RegExp(`^platform ${p.name}: ${p.measured ? 'measured \\(' : 'not measured: '}`, 'm'));
      assert.ok(p.why.trim() !== '', `${p.name}: a reason`);
    }
    const first = expected[0]!;
    assert.match(r.stdout, new RegExp(`^\\| workload \\| memory/${first} \\| blk/${first} \\|`, 'm'));
    for (const p of expected) assert.match(r.stdout, new RegExp(`\\| memory/${p} vs blk/${p} \\| memory/${p} vs native \\|`), `ratios on ${p}`);
    if (expected.length === 2) assert.match(r.stdout, /\| memory\/process vs memory\/kvm \|/);
    for (const p of expected) assert.match(r.stdout, new RegExp(`^\\| 4 KiB random reads through a mapping: (VM exits|interceptions) per access \\| memory/${p} \\|`, 'm'), `target check on ${p}`);

    const ids = report.workloads.map((w) => w.id);
    for (const id of ['seq-read-4k', 'seq-read-1m', 'seq-read-1m-cold', 'rand-pread-4k', 'rand-map-4k', 'rand-map-4k-cold', 'rand-write-fsync', 'sqlite-insert', 'sqlite-query', 'startup-dynamic', 'share-vms']) {
      assert.ok(ids.includes(id), `workload ${id} missing`);
    }
    const bwrap = spawnSync('bwrap', ['--ro-bind', '/', '/', '--unshare-all', '--', '/bin/true']).status === 0;
    const modes: Mode[] = [...expected.flatMap((p) => [vmMode('memory', p), vmMode('blk', p)]), 'native', ...(bwrap ? (['bwrap'] as const) : [])];
    for (const w of report.workloads) {
      for (const m of modes) {
        const v = w.results[m]?.value;
        assert.ok(v !== undefined && Number.isFinite(v) && v > 0, `${w.id} has no ${m} result`);
      }
      // Nothing from a platform that was not measured.
      for (const m of MODES) {
        const p = platformOf(m);
        if (p !== null && !expected.includes(p)) assert.equal(w.results[m], undefined, `${w.id}: ${m} measured although ${p} was not`);
      }
      for (const p of expected) assert.equal(w.results[vmMode('memory', p)]?.detail?.['exitsPerOp'] !== undefined || w.id === 'share-vms', true, `${w.id}: memory/${p} details missing`);
    }
    // Zero exits (kvm) or interceptions (process) per access through a mapping once mapped, measured.
    const map = report.workloads.find((w) => w.id === 'rand-map-4k')!;
    for (const p of expected) assert.ok((map.results[vmMode('memory', p)]!.detail!['exitsPerOp'] as number) < 0.001, `rand-map-4k on ${p}: exits per access`);
    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^(<\?xml[^>]*>\s*)?<svg[\s\S]*<\/svg>\s*$/);
    for (const p of expected) assert.ok(chart.includes(`data-mode="memory/${p}"`), `chart has memory/${p} bars`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
