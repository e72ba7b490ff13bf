#!/usr/bin/env node
// The test suite, once per platform that works on this machine (`npm test` runs it after the build
// and the fixtures). Unit tests need no platform and run once; the integration tests run on each
// working platform with MAPVISOR_PLATFORM set. Prints which platforms ran and why any could not,
// and ends with one line `N passed, N failed, N skipped`. Exits non-zero when a test failed or when
// no platform works here.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { probePlatforms } = await import(join(ROOT, 'dist/src/platform/select.js'));

const only = process.env.MAPVISOR_PLATFORM;
const probes = probePlatforms();
const runnable = probes.filter((p) => p.works && (!only || only === 'auto' || p.name === only));
for (const p of probes) {
  const state = !p.works ? `cannot run here: ${p.why}` : only && only !== 'auto' && p.name !== only ? `not selected (MAPVISOR_PLATFORM=${only})` : `runs (${p.why})`;
  console.log(`# platform ${p.name}: ${state}`);
}
if (runnable.length === 0) {
  console.log('# no platform works on this machine: nothing can be tested');
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}

const totals = { pass: 0, fail: 0, skipped: 0 };

/** Run node's test runner on `paths` with MAPVISOR_PLATFORM=platform; add its counts to the totals. */
function run(platform, paths) {
  return new Promise((resolve) => {
    console.log(`# ---- ${paths.join(' ')} on ${platform} ----`);
    const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...paths], {
      cwd: ROOT,
      env: { ...process.env, MAPVISOR_PLATFORM: platform },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let tail = '';
    child.stdout.on('data', (b) => {
      process.stdout.write(b);
      tail = (tail + b.toString()).slice(-4000);
    });
    child.on('close', (code) => {
      const count = (k) => Number(new RegExp(`^# ${k} (\\d+)$`, 'm').exec(tail)?.[1] ?? 0);
      const pass = count('pass');
      const fail = count('fail') + count('cancelled');
      const skipped = count('skipped');
      totals.pass += pass;
      totals.fail += fail + (code !== 0 && fail === 0 ? 1 : 0);
      totals.skipped += skipped;
      console.log(`# ${platform}: ${pass} passed, ${fail} failed, ${skipped} skipped`);
      resolve();
    });
  });
}

await run(runnable[0].name, ['dist/test/unit/']);
for (const p of runnable) await run(p.name, ['dist/test/integration/']);
console.log(`# platforms that ran: ${runnable.map((p) => p.name).join(', ')}`);
console.log(`${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped`);
process.exit(totals.fail > 0 ? 1 : 0);
