/**
 * System-call fuzzing (issue 15): a fixed small set of seeds of test/guest/fuzz-syscalls.c, each with
 * 2 threads x 2000 calls, under the real CLI on the platform this run of the suite tests. Every run must
 * pass (exit 0, `fuzz ok SEED`, no 125 / internal error / stack trace / crash / hang / RSS over 1 GiB /
 * file in the CLI's cwd); a failure names the seed and the command that reproduces it with --log.
 * More seeds: `npm run fuzz:syscalls -- --seeds 1..500` (scripts/fuzz-syscalls.mjs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SEEDS = [1, 2, 3, 4];
const CALLS = 2000;
const THREADS = 2;

test(`fuzz-syscalls: ${SEEDS.length} seeds x ${THREADS} threads x ${CALLS} calls pass on ${PLATFORM}`, { timeout: 90_000 }, async () => {
  const { runCase, reproCommand } = await import(join(ROOT, 'scripts', 'fuzz-syscalls.mjs'));
  const counts: Record<string, number> = {};
  const failures: string[] = [];
  for (const seed of SEEDS) {
    const c = { platform: PLATFORM, seed, calls: CALLS, threads: THREADS };
    const r = await runCase({ ...c, timeout: 20 });
    counts[r.kind] = (counts[r.kind] ?? 0) + 1;
    if (r.kind !== 'pass') failures.push(`seed ${seed}: ${r.kind}: ${r.detail}\n  reproduce: ${reproCommand({ ...c, timeout: 20 })}`);
  }
  console.log(`# fuzz-syscalls on ${PLATFORM}: cases ${SEEDS.length}, ${Object.entries(counts).map(([k, n]) => `${k}=${n}`).join(' ')}`);
  assert.deepEqual(failures, [], failures.join('\n'));
});
