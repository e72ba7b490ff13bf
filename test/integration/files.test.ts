/** Files a program has without a disk image: pipes, /dev devices, dup'd streams; SIGPIPE. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Sandbox } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);

test('pipes and devices inside one program', { timeout: 30_000 }, async () => {
  const r = await Sandbox.run(guest('pipes'), [], { stdout: 'pipe' });
  assert.equal(r.stdout?.toString().trim(), 'pipes ok', r.stdout?.toString());
  assert.equal(r.status, 0);
});

test('busybox reads /dev/zero and /dev/urandom', { timeout: 30_000 }, async () => {
  const z = await Sandbox.run(BUSYBOX, ['head', '-c', '4096', '/dev/zero'], { stdout: 'pipe' });
  assert.deepEqual(z.stdout, Buffer.alloc(4096));
  const u = await Sandbox.run(BUSYBOX, ['head', '-c', '4096', '/dev/urandom'], { stdout: 'pipe' });
  assert.equal(u.stdout?.length, 4096);
  assert.notDeepEqual(u.stdout, Buffer.alloc(4096));
});

test('a write to a closed pipe kills with SIGPIPE, as natively', { timeout: 30_000 }, () => {
  const cli = join(ROOT, 'bin', 'mapvisor.js');
  const r = spawnSync('bash', ['-c', `node ${cli} run -- ${BUSYBOX} seq 1 10000000 | head -1; echo "status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
  assert.match(r.stdout, /^1\nstatus=141\n$/);
  assert.match(r.stderr, /SIGPIPE/);
});
