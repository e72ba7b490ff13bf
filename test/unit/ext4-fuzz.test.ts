/**
 * Hostile-image fuzzing with fixed seeds (issue 15): scripts/fuzz-images.mjs mutates images made by
 * mkfs.ext4 -d (superblock, group descriptors, inodes, extent trees, directory entries, htree roots,
 * symlinks, truncation) and runs each case in a worker with a time and memory bound, through the ext4
 * module (a few hundred cases) and through the CLI (about ten, on the default platform). No case may
 * end in an untyped exception, a hang, an allocation blow-up, a changed read-only or refused image,
 * a must-refuse image being opened, or (CLI) a stack trace or a wrong number of `mapvisor:` lines.
 * Every image in test/images/ (minimised crashers found earlier) is replayed through the module.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCRIPT = path.join(ROOT, 'scripts', 'fuzz-images.mjs');
const CORPUS = path.join(ROOT, 'test', 'images');

interface Finding {
  seed?: number;
  replay?: string;
  cli: boolean;
  config?: string;
  mutation?: string[];
  finding: string;
  detail?: string;
}
interface Counts {
  cases: number;
  module: number;
  cli: number;
  outcomes: Record<string, number>;
  findings: Finding[];
}

function fuzz(args: string[], timeoutMs: number): Counts {
  const r = spawnSync(process.execPath, [SCRIPT, '--json', ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  assert.ok(!r.error && r.signal === null, `the fuzzer did not finish: ${r.error?.message ?? r.signal} ${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(last.startsWith('{'), `no result from the fuzzer (exit ${r.status}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
  return JSON.parse(last) as Counts;
}

const show = (xs: Finding[]) => xs.map((f) => JSON.stringify(f)).join('\n');

test('fuzz: 300 mutated images through the ext4 module and 10 through the CLI, with fixed seeds', { timeout: 180_000 }, () => {
  const c = fuzz(['--seeds', '1..300', '--cli', '0', '--cli-seeds', '1..10', '--jobs', '2'], 170_000);
  assert.equal(c.module, 300);
  assert.equal(c.cli, 10);
  assert.deepEqual(c.findings, [], show(c.findings));
  // The mutations reach both outcomes: some images are refused, some open and give typed errors.
  assert.ok((c.outcomes['module-refused'] ?? 0) > 0, JSON.stringify(c.outcomes));
  assert.ok((c.outcomes['module-opened-typed-errors'] ?? 0) > 0, JSON.stringify(c.outcomes));
});

test('fuzz: the corpus of earlier crashers in test/images replays without a finding', { timeout: 120_000 }, (t) => {
  const files = fs.existsSync(CORPUS) ? fs.readdirSync(CORPUS).filter((f) => f.endsWith('.img')).map((f) => path.join(CORPUS, f)) : [];
  if (files.length === 0) {
    t.skip('test/images holds no images');
    return;
  }
  const c = fuzz(['--replay', ...files, '--jobs', '1'], 110_000);
  assert.equal(c.cases, files.length);
  assert.deepEqual(c.findings, [], show(c.findings));
});
