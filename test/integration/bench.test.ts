/** mapvisor bench --quick: finishes, and its JSON has every workload for every mode. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateReport, MODES } from '../../src/bench/report.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

test('bench --quick writes a table, a valid JSON report with every workload in every mode, and an SVG chart', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-bench-test-'));
  try {
    const json = join(dir, 'b.json');
    const svg = join(dir, 'b.svg');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'mapvisor.js'), 'bench', '--quick', '--json', json, '--svg', svg], { encoding: 'utf8', timeout: 230_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\| workload \| memory \| blk \| native \|/m);
    const report = validateReport(JSON.parse(readFileSync(json, 'utf8')));
    const ids = report.workloads.map((w) => w.id);
    for (const id of ['seq-read-4k', 'seq-read-1m', 'seq-read-1m-cold', 'rand-pread-4k', 'rand-map-4k', 'rand-map-4k-cold', 'rand-write-fsync', 'sqlite-insert', 'sqlite-query', 'startup-dynamic', 'share-vms']) {
      assert.ok(ids.includes(id), `workload ${id} missing`);
    }
    const bwrap = spawnSync('bwrap', ['--ro-bind', '/', '/', '--unshare-all', '--', '/bin/true']).status === 0;
    for (const w of report.workloads) {
      for (const m of MODES) {
        if (m === 'bwrap' && !bwrap) continue;
        const v = w.results[m]?.value;
        assert.ok(v !== undefined && Number.isFinite(v) && v > 0, `${w.id} has no ${m} result`);
      }
      assert.equal(w.results.memory?.detail?.['exitsPerOp'] !== undefined || w.id === 'share-vms', true, `${w.id}: memory-mode details missing`);
    }
    // Zero exits per access through a mapping once mapped (the paper's claim), measured.
    const map = report.workloads.find((w) => w.id === 'rand-map-4k')!;
    assert.ok((map.results.memory!.detail!['exitsPerOp'] as number) < 0.001);
    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^(<\?xml[^>]*>\s*)?<svg[\s\S]*<\/svg>\s*$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
