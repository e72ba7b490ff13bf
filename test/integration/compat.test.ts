/**
 * The compatibility corpus's quick subset (compat/workloads/*.sh with `# quick: yes`) on this run's
 * platform: each workload through scripts/compat.mjs, which runs it natively (bwrap, on the image's own
 * tree) and in mapvisor and compares stdout, exit status and /out. The images are built by
 * scripts/fixtures.mjs (`npm test`); a missing one is built here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const DIR = join(ROOT, 'compat', 'workloads');

interface Quick {
  name: string;
  timeout: number;
}

function quickWorkloads(): Quick[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.sh'))
    .sort()
    .flatMap((f) => {
      const head = readFileSync(join(DIR, f), 'utf8').split('\n').slice(0, 40).join('\n');
      if (!/^#\s*quick:\s*yes\s*$/m.test(head)) return [];
      const t = Number(/^#\s*timeout:\s*(\S+)/m.exec(head)?.[1] ?? 120);
      return [{ name: f.slice(0, -3), timeout: Number.isFinite(t) && t > 0 ? t : 120 }];
    });
}

const noBwrap = spawnSync('bwrap', ['--version']).error ? 'bwrap is missing (apt-get install bubblewrap): no native run to compare with' : false;

function compat(name: string, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'compat.mjs'), '--only', name, '--platform', PLATFORM, '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

for (const w of quickWorkloads()) {
  // Native and mapvisor each get the workload's timeout; building a missing image takes a minute or two.
  const ms = (2 * w.timeout + 240) * 1000;
  test(`compat: ${w.name} gives the same stdout, status and /out as native [${PLATFORM}]`, { timeout: ms, skip: noBwrap }, async () => {
    const r = await compat(w.name, ms - 5000);
    assert.equal(r.code, 0, r.out);
  });
}
