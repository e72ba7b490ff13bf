/**
 * Sandbox.exec: a second program started in a running sandbox from outside (what the OCI runtime's
 * exec does for `podman exec`), on this run's platform: its output, its exit status, its environment
 * and working directory, ps inside seeing it (ppid 0, as runc's exec'd processes show), signals, and a
 * refusal of a program that is not there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const SKIP = existsSync(BUSYBOX) ? false : `${BUSYBOX} missing (node scripts/fixtures.mjs)`;
const T = { timeout: 60_000, skip: SKIP };
let dir: string;
let img: string;

before(() => {
  if (SKIP) return;
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-exec-'));
  const tree = join(dir, 'root');
  mkdirSync(join(tree, 'bin'), { recursive: true });
  mkdirSync(join(tree, 'tmp'));
  copyFileSync(BUSYBOX, join(tree, 'bin', 'busybox'));
  for (const a of ['sh', 'echo', 'cat', 'sleep', 'ps', 'pwd', 'env']) symlinkSync('busybox', join(tree, 'bin', a));
  writeFileSync(join(tree, 'bin', 'script.sh'), '#!/bin/sh -e\necho "script $0 args: $*"\nexit 6\n', { mode: 0o755 });
  img = join(dir, 'exec.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, img, '32M']);
});
after(() => (dir ? rmSync(dir, { recursive: true, force: true }) : undefined));

/** A sandbox whose program sleeps; `f` runs once it runs; the sandbox is stopped after. */
async function withSandbox(f: (sb: Sandbox) => Promise<void>, program = ['/bin/sleep', '30']): Promise<void> {
  const sb = new Sandbox(program[0]!, program.slice(1), { image: `${img},cow`, platform: PLATFORM, stdout: 'pipe', stderr: 'pipe', timeout: 60 });
  const running = sb.run();
  try {
    await Promise.race([sb.whenReady(), running]);
    await new Promise((r) => setTimeout(r, 100));
    await f(sb);
  } finally {
    sb.stop();
    await running.catch(() => undefined);
  }
}

/** exec `args` with stdout and stderr in files; returns the result and what it wrote. */
async function execIn(sb: Sandbox, args: string[], o: { env?: string[]; cwd?: string } = {}): Promise<{ status: number; signal: number | null; out: string; err: string; pid: number }> {
  const out = join(dir, `out-${Math.random()}`);
  const err = join(dir, `err-${Math.random()}`);
  const fds: [number, number, number] = [openSync('/dev/null', 'r'), openSync(out, 'w'), openSync(err, 'w')];
  try {
    const { pid, done } = await sb.exec({ args, ...o, stdio: fds });
    const r = await done;
    return { ...r, pid, out: readFileSync(out, 'utf8'), err: readFileSync(err, 'utf8') };
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

test(`Sandbox.exec: echo, exit status, env and cwd in a running sandbox [${PLATFORM}]`, T, async () => {
  await withSandbox(async (sb) => {
    const a = await execIn(sb, ['echo', 'hi']);
    assert.deepEqual([a.status, a.out], [0, 'hi\n'], a.err);
    const b = await execIn(sb, ['sh', '-c', 'exit 4']);
    assert.equal(b.status, 4, b.err);
    const c = await execIn(sb, ['sh', '-c', 'echo "$K"; pwd; echo "ppid $PPID"'], { env: ['K=V', 'PATH=/bin'], cwd: '/tmp' });
    assert.equal(c.out, 'V\n/tmp\nppid 0\n', c.err);
    const d = await execIn(sb, ['script.sh', 'a', 'b']);
    assert.deepEqual([d.status, d.out], [6, 'script /bin/script.sh args: a b\n'], d.err);
  });
});

test(`Sandbox.exec: ps inside sees the program and the exec'd process [${PLATFORM}]`, T, async () => {
  await withSandbox(async (sb) => {
    const r = await execIn(sb, ['ps', '-o', 'pid,ppid,comm']);
    assert.equal(r.status, 0, r.err);
    const rows = r.out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.ok(rows.some(([pid, , comm]) => pid === '1' && comm === 'sleep'), r.out);
    assert.ok(rows.some(([pid, ppid, comm]) => pid === String(r.pid) && ppid === '0' && comm === 'ps'), r.out);
  });
});

test(`Sandbox.exec: a signal ends the exec'd process; the program runs on [${PLATFORM}]`, T, async () => {
  await withSandbox(async (sb) => {
    const fds: [number, number, number] = [openSync('/dev/null', 'r'), openSync('/dev/null', 'w'), openSync('/dev/null', 'w')];
    try {
      const { pid, done } = await sb.exec({ args: ['sleep', '20'], stdio: fds });
      await sb.signalProcess(pid, 15);
      assert.deepEqual(await done, { status: 128 + 15, signal: 15 });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const again = await execIn(sb, ['echo', 'still']);
    assert.equal(again.out, 'still\n');
  });
});

test(`Sandbox.exec: a program the image lacks is a one-line error [${PLATFORM}]`, T, async () => {
  await withSandbox(async (sb) => {
    await assert.rejects(sb.exec({ args: ['nosuch'], stdio: [0, 1, 2] }), /"nosuch": executable file not found in \$PATH/);
    const r = await execIn(sb, ['echo', 'ok']);
    assert.equal(r.out, 'ok\n');
  });
});

test(`Sandbox.exec: the exec'd process forks and waits; it ends (SIGKILL) when the sandbox's program does [${PLATFORM}]`, T, async () => {
  await withSandbox(async (sb) => {
    const r = await execIn(sb, ['sh', '-c', 'echo a | cat; sleep 0.1 & wait; echo done']);
    assert.deepEqual([r.status, r.out], [0, 'a\ndone\n'], r.err);
    const fds: [number, number, number] = [openSync('/dev/null', 'r'), openSync('/dev/null', 'w'), openSync('/dev/null', 'w')];
    try {
      const { done } = await sb.exec({ args: ['sleep', '20'], stdio: fds });
      assert.deepEqual(await done, { status: 128 + 9, signal: 9 });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  }, ['/bin/sleep', '1']);
});
