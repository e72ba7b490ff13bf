/**
 * POSIX timers (timer_create and friends): test/guest/ptimer.c, which also passes natively; what
 * coreutils' timeout(1) arms in the compat corpus.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const PTIMER = join(ROOT, '.cache', 'guest', 'ptimer');

test(`POSIX timers: SI_TIMER signals with sigev_value, overruns, SIGEV_NONE, TIMER_ABSTIME, errors [${PLATFORM}]`, { timeout: 60_000, skip: existsSync(PTIMER) ? false : `${PTIMER} not built (node scripts/fixtures.mjs)` }, async () => {
  const r = await Sandbox.run(PTIMER, [], { stdout: 'pipe', stderr: 'pipe', timeout: 30 });
  const out = r.stdout!.toString();
  assert.match(out, /\nptimer ok\n$/, `${out}\n${r.stderr!.toString()}`);
  assert.equal(r.status, 0);
});
