/**
 * Checkpoint and restore: a program's state as data (registers, region map, fds, kernel records) and
 * its memory as a file. A counting program continues its sequence after a restore; clones from one
 * checkpoint run independently and leave it unchanged; bad checkpoints are refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onlyOn } from '../platform.js';
import { untilCalls } from '../live.js';
import { probePlatforms } from '../../src/platform/select.js';
import { MapvisorError, Sandbox } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const T = { timeout: 60_000 };
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-ckpt-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = (b: Buffer | null): number[] => (b?.toString().trim().split('\n') ?? []).filter(Boolean).map(Number);
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

/** Run the counter, checkpoint it once it has printed a few lines, stop it; returns what it printed and the checkpoint. */
async function checkpointed(name: string, memoryDir?: string): Promise<{ printed: number[]; ckpt: string }> {
  const ckpt = join(dir, name);
  const sb = new Sandbox(guest('counter'), ['40', '25'], { stdout: 'pipe', ...(memoryDir ? { memoryDir } : {}) });
  const run = sb.run();
  // Checkpoint once a few lines are out (start-up takes longer on a loaded machine).
  await untilCalls(sb, 'write', 3);
  const c = await sb.checkpoint(ckpt);
  assert.ok(c.memoryBytes > 0);
  sb.stop();
  const r = await run;
  assert.equal(r.status, 137);
  return { printed: lines(r.stdout), ckpt };
}

test('a counting program checkpointed and restored continues its sequence', T, async () => {
  const { printed, ckpt } = await checkpointed('count');
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r.status, 0, r.reason ?? '');
  const after = lines(r.stdout);
  assert.ok(after.length > 0 && after.at(-1) === 40, `restored run printed ${after.join(',')}`);
  // It continues exactly after some line the first run printed (the checkpoint was between two lines).
  assert.ok(printed.includes(after[0]! - 1), `first run ${printed.join(',')}, restored from ${after[0]}`);
  assert.deepEqual(after, Array.from({ length: 40 - after[0]! + 1 }, (_, i) => after[0]! + i), 'no line lost, none repeated, heap and TLS intact (-1 otherwise)');
  // The counters came along: the writes before the checkpoint and after the restore are the 40 lines.
  assert.equal(r.stats!.syscalls.find((c) => c.name === 'write')?.count, 40);
});

test('a standby restore builds its VM first and restores when released; restoreMs is measured', T, async () => {
  const { ckpt } = await checkpointed('standby');
  const sb = Sandbox.restore(ckpt, { stdout: 'pipe', standby: true });
  const run = sb.run();
  await sb.whenStandby();
  assert.equal(sb.restoreMs, null, 'nothing restored before release()');
  sb.release();
  const r = await run;
  assert.equal(r.status, 0);
  assert.equal(lines(r.stdout).at(-1), 40);
  assert.ok(sb.restoreMs !== null && sb.restoreMs > 0, `restoreMs ${sb.restoreMs}`);
  // A standby stopped before release ends with a clear error, and no program ran.
  const idle = Sandbox.restore(ckpt, { stdout: 'pipe', standby: true });
  const idleRun = idle.run();
  await idle.whenStandby();
  idle.stop();
  await assert.rejects(idleRun, (e: unknown) => e instanceof MapvisorError && /standby/.test(e.message));
});

test('Sandbox.rejuvenate hands the program to a fresh VM worker twice; it finishes its sequence with nothing lost', T, async () => {
  const md = join(dir, 'rejuv-api');
  mkdirSync(md);
  const sb = new Sandbox(guest('counter'), ['40', '25'], { stdout: 'pipe', memoryDir: md });
  const run = sb.run();
  await new Promise((r) => setTimeout(r, 300));
  const first = await sb.rejuvenate();
  await new Promise((r) => setTimeout(r, 200));
  const second = await sb.rejuvenate();
  for (const x of [first, second]) assert.ok(x.downtimeMs > 0 && x.restoreMs > 0 && x.restoreMs <= x.downtimeMs, JSON.stringify(x));
  const r = await run;
  assert.equal(r.status, 0, r.reason ?? '');
  assert.deepEqual(lines(r.stdout), Array.from({ length: 40 }, (_, i) => i + 1), 'one unbroken sequence across both hand-overs');
  // Without the memory in a file there is nothing to hand over: a clear error, and the program runs on.
  const plain = new Sandbox(guest('counter'), ['10', '20'], { stdout: 'pipe' });
  const plainRun = plain.run();
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(plain.rejuvenate(), (e: unknown) => e instanceof MapvisorError && /memory in a file/.test(e.message));
  assert.equal((await plainRun).status, 0);
});

test('a pipe with bytes in it, a dup of its read end, an eventfd, an epoll watching the pipe and a timerfd come back as they were', T, async () => {
  const ckpt = join(dir, 'fdstate');
  const sb = new Sandbox(guest('fdstate'), ['1500'], { stdout: 'pipe' });
  const run = sb.run();
  // Once it has printed "ready" (its objects are set up; start-up takes longer on a loaded machine).
  await untilCalls(sb, 'write', 1);
  await sb.checkpoint(ckpt);
  sb.stop();
  await run;
  const saved = (JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as { state: { files: Array<{ kind: string }>; fds: Array<{ fd: number; file: number }>; pipes: string[] } }).state;
  assert.deepEqual(saved.pipes.map((b) => Buffer.from(b, 'base64').toString()), ['hello ']);
  const pipeFds = saved.fds.filter((f) => saved.files[f.file]!.kind === 'pipe');
  assert.equal(pipeFds.length, 3, 'read end, write end, and the dup');
  assert.equal(new Set(pipeFds.map((f) => f.file)).size, 2, 'the dup shares its description with the read end');
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r.status, 0, r.stdout?.toString());
  assert.equal(r.stdout?.toString(), 'fd ok: hello world 5 epoll 42 timer yes\n');
});

test('--memory-dir keeps memory in a file, and the checkpoint records it', T, async () => {
  const md = join(dir, 'memdir');
  mkdirSync(md);
  const { ckpt } = await checkpointed('memdir-ckpt', md);
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r.status, 0);
  assert.equal(lines(r.stdout).at(-1), 40);
  assert.ok(readFileSync(join(md, 'memory.bin')).length > 0, 'the memory file exists in --memory-dir');
});

test('on process a second checkpoint into the same directory is a full copy, and says why', { ...T, skip: onlyOn('process', 'kvm has a dirty-page log (the test below)') }, async () => {
  const md = join(dir, 'full-mem');
  mkdirSync(md);
  const ckpt = join(dir, 'full');
  const sb = new Sandbox(guest('counter'), ['200', '20'], { stdout: 'pipe', memoryDir: md });
  const run = sb.run();
  await untilCalls(sb, 'write', 3);
  const first = await sb.checkpoint(ckpt);
  const second = await sb.checkpoint(ckpt);
  sb.stop();
  await run;
  assert.equal(first.incremental, false);
  assert.equal(first.why, undefined);
  assert.equal(second.incremental, false);
  assert.match(second.why ?? '', /process platform keeps no dirty-page log/);
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r.status, 0, r.reason ?? '');
});

test('with --memory-dir a second checkpoint into the same directory writes only the pages dirtied since', { ...T, skip: onlyOn('kvm', 'dirty pages come from KVM\'s dirty log; the process platform has no dirty-page tracking here (the host kernel offers no soft-dirty bits)') }, async () => {
  const md = join(dir, 'inc-mem');
  mkdirSync(md);
  const ckpt = join(dir, 'inc');
  const sb = new Sandbox(guest('counter'), ['60', '20'], { stdout: 'pipe', memoryDir: md });
  const run = sb.run();
  await new Promise((r) => setTimeout(r, 300));
  const first = await sb.checkpoint(ckpt);
  await new Promise((r) => setTimeout(r, 300));
  const second = await sb.checkpoint(ckpt);
  sb.stop();
  await run;
  assert.equal(first.incremental, false);
  assert.equal(second.incremental, true);
  assert.ok(second.pagesWritten > 0 && second.pagesWritten < 64, `pages written: ${second.pagesWritten}`);
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
  assert.equal(r.status, 0);
  const after = lines(r.stdout);
  assert.equal(after.at(-1), 60);
  assert.deepEqual(after, Array.from({ length: 60 - after[0]! + 1 }, (_, i) => after[0]! + i), 'the restored memory is the second checkpoint\'s');
});

test('two clones from one checkpoint run independently and leave its files unchanged', T, async () => {
  const { ckpt } = await checkpointed('clones');
  const before = [sha(join(ckpt, 'memory.bin')), sha(join(ckpt, 'state.json'))];
  const [a, b] = await Promise.all([Sandbox.restore(ckpt, { stdout: 'pipe' }).run(), Sandbox.restore(ckpt, { stdout: 'pipe' }).run()]);
  assert.equal(a.status, 0);
  assert.equal(b.status, 0);
  assert.deepEqual(lines(a.stdout), lines(b.stdout));
  assert.deepEqual([sha(join(ckpt, 'memory.bin')), sha(join(ckpt, 'state.json'))], before);
  // And a third restore still works: the checkpoint was not consumed.
  assert.equal((await Sandbox.restore(ckpt, { stdout: 'pipe' }).run()).status, 0);
});

test('mapvisor restore --clones 3 starts three copies that all finish the sequence', T, async () => {
  const { spawnSync } = await import('node:child_process');
  const { ckpt } = await checkpointed('cli-clones');
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'mapvisor.js'), 'restore', ckpt, '--clones', '3'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const counts = lines(Buffer.from(r.stdout)).filter((n) => n === 40).length;
  assert.equal(counts, 3, r.stdout);
});

test('corrupted, truncated, mismatched and changed checkpoints are refused', T, async () => {
  const { ckpt } = await checkpointed('bad');
  const state = join(ckpt, 'state.json');
  const good = readFileSync(state, 'utf8');
  const refused = async (re: RegExp): Promise<void> => {
    await assert.rejects(Sandbox.restore(ckpt, { stdout: 'pipe' }).run(), (e: unknown) => e instanceof MapvisorError && re.test(e.message) && !e.oneLine().includes('\n'));
  };
  writeFileSync(state, good.replace('"umask":18', '"umask":0'));
  await refused(/corrupted/);
  writeFileSync(state, good.slice(0, good.length / 2));
  await refused(/truncated/);
  const outer = JSON.parse(good) as { sha256: string; state: { cpuid: string; version: number } };
  const reseal = (s: typeof outer.state): string => JSON.stringify({ sha256: createHash('sha256').update(JSON.stringify(s)).digest('hex'), state: s });
  writeFileSync(state, reseal({ ...outer.state, cpuid: '0'.repeat(64) }));
  await refused(/CPUID/);
  writeFileSync(state, reseal({ ...outer.state, version: 99 }));
  await refused(/version 99/);
  writeFileSync(state, good);
  const t = new Date(Date.now() + 5000);
  utimesSync(join(ckpt, 'memory.bin'), t, t);
  await refused(/memory file .* changed/);
  rmSync(join(ckpt, 'memory.bin'));
  await refused(/missing/);
  await refused(/missing/);
  await assert.rejects(Sandbox.restore(join(dir, 'nothing-here'), {}).run(), (e: unknown) => e instanceof MapvisorError && /no checkpoint/.test(e.message));
});

test('a pause in the middle of a sleep neither ends it early nor makes it longer', T, async () => {
  const sb = new Sandbox(guest('sleeper'), ['1500'], { stdout: 'pipe' });
  const run = sb.run();
  await new Promise((r) => setTimeout(r, 500));
  await sb.pause();
  await new Promise((r) => setTimeout(r, 300));
  await sb.resume();
  const r = await run;
  assert.equal(r.status, 0);
  const slept = Number(/slept (\d+) ms/.exec(r.stdout?.toString() ?? '')?.[1]);
  // Restarted with its whole duration it would sleep about 1500 + 500 + 300 ms.
  assert.ok(slept >= 1500 && slept < 2000, `slept ${slept} ms`);
});

test('a multithreaded program restores with every thread, waiting ones still waiting, and finishes its sequence', T, async () => {
  // mtcounter: 4 threads take turns printing "K TID"; at any moment three wait in futex calls and one
  // sleeps, so the checkpoint holds futex waiters and a sleeper. Checkpointed twice, restored from each.
  const ckpt = join(dir, 'mt');
  const sb = new Sandbox(guest('mtcounter'), ['60', '15'], { stdout: 'pipe' });
  const run = sb.run();
  // Checkpoint once all four threads run and a few lines are out (live stats count the calls).
  const count = (st: { syscalls: Array<{ name: string; count: number }> }, name: string): number => st.syscalls.find((c) => c.name === name)?.count ?? 0;
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const st = (await sb.liveStats()) as { syscalls: Array<{ name: string; count: number }> };
    if (count(st, 'clone3') >= 4 && count(st, 'write') >= 3) break;
  }
  const c = await sb.checkpoint(ckpt);
  assert.ok(c.memoryBytes > 0);
  sb.stop();
  const first = await run;
  const parse = (b: Buffer | null): Array<[number, number]> =>
    (b?.toString().trim().split('\n') ?? []).filter((l) => /^\d+ \d+$/.test(l)).map((l) => l.split(' ').map(Number) as [number, number]);
  const before = parse(first.stdout);
  assert.ok(before.length >= 3, `the first run printed ${before.length} lines`);
  const state = JSON.parse(readFileSync(join(ckpt, 'state.json'), 'utf8')) as { state: { threads: { list: Array<{ tid: number; park: { kind: string } | null }> } | null } };
  const saved = state.state.threads;
  assert.ok(saved && saved.list.length === 5, `five threads saved (main + 4): ${JSON.stringify(saved?.list.map((t) => t.tid))}`);
  // Main waits in pthread_join, the others for their turn or the mutex (a thread just woken may be
  // saved as runnable instead): futex waiters are saved as such.
  assert.ok(saved.list.some((t) => t.park?.kind === 'futex'), `futex waiters saved: ${JSON.stringify(saved.list.map((t) => t.park?.kind ?? 'runnable'))}`);
  const tidsBefore = new Set(saved.list.map((t) => t.tid));
  for (let i = 0; i < 2; i++) {
    const r = await Sandbox.restore(ckpt, { stdout: 'pipe' }).run();
    assert.equal(r.status, 0, `${r.reason ?? ''} ${r.stdout?.toString()}`);
    const after = parse(r.stdout);
    assert.ok(r.stdout?.toString().trim().endsWith('mt ok'), r.stdout?.toString());
    assert.equal(after.at(-1)?.[0], 60);
    assert.ok(before.some(([k]) => k === after[0]![0] - 1), `continues after a line the first run printed (from ${after[0]![0]})`);
    assert.deepEqual(after.map(([k]) => k), Array.from({ length: 60 - after[0]![0] + 1 }, (_, j) => after[0]![0] + j), 'no number lost or repeated');
    // The same threads (tids) carry on, taking turns in the same order.
    for (const [, tid] of after) assert.ok(tidsBefore.has(tid), `thread ${tid} is one the checkpoint saved`);
    for (let j = 4; j < after.length; j++) assert.equal(after[j]![1], after[j - 4]![1], 'turns keep their order');
  }
});

test('a busy multithreaded program is checkpointed while running, keeps running, and its restore finishes too', T, async () => {
  // threads: 8 threads contending for a mutex, then a condition-variable ping-pong, then a fault handled
  // in a thread; checks exact counters and TLS at the end.
  const sb = new Sandbox(guest('threads'), ['3000'], { stdout: 'pipe' });
  const run = sb.run();
  await untilCalls(sb, 'clone3', 8);
  const stats = (await sb.liveStats()) as { syscalls: unknown[] };
  assert.ok(stats.syscalls.length > 0, 'live stats of a threaded program');
  await sb.checkpoint(join(dir, 'mt-live'));
  const r = await run;
  assert.equal(r.status, 0, r.stdout?.toString());
  assert.match(r.stdout?.toString() ?? '', /threads ok/);
  const restored = await Sandbox.restore(join(dir, 'mt-live'), { stdout: 'pipe' }).run();
  assert.equal(restored.status, 0, `${restored.reason ?? ''} ${restored.stdout?.toString()}`);
  assert.match(restored.stdout?.toString() ?? '', /threads ok/);
});

test('a running sqlite3 with an open transaction survives rejuvenation and commits afterwards; the database checks clean', { timeout: 120_000 }, async () => {
  const { createImage } = await import('../../src/image/create.js');
  const { spawn, execFileSync, spawnSync } = await import('node:child_process');
  const md = join(dir, 'rejuv');
  mkdirSync(md);
  const img = join(md, 'db.img');
  await createImage({ out: img, debian: ['sqlite3'], add: [] });
  const sock = join(md, 'api.sock');
  const cli = join(ROOT, 'bin', 'mapvisor.js');
  const child = spawn(process.execPath, [cli, 'run', '--api', sock, '--memory-dir', md, '--image', img, '--', '/usr/bin/sqlite3', '/data/r.db'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  try {
    child.stdin.write('create table t(a); begin; insert into t values(1),(2);\n');
    for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 300));
    // Three hand-overs: each to a fresh VMM started by the process the user started (the keeper), so
    // there are never more than two mapvisor processes.
    const ppid = (pid: number): number => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
    const vmms: number[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = JSON.parse(execFileSync(process.execPath, [cli, 'ctl', sock, 'rejuvenate'], { encoding: 'utf8' })) as { ok: boolean; downtimeMs: number; restoredBy: number };
      assert.equal(reply.ok, true);
      assert.ok(reply.downtimeMs > 0 && reply.restoredBy > 0);
      assert.equal(ppid(reply.restoredBy), child.pid, 'the keeper started the new VMM');
      vmms.push(reply.restoredBy);
    }
    const alive = (): number[] => vmms.slice(0, 2).filter((p) => existsSync(`/proc/${p}`) && !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z '));
    for (let i = 0; i < 100 && alive().length; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(alive(), [], 'the VMMs handed over from have ended');
    child.stdin.write('insert into t values(3); commit; select count(*) from t;\n');
    child.stdin.end();
    const code = await new Promise((r) => child.on('exit', r));
    assert.equal(code, 0, err);
    assert.equal(out, '3\n', err);
  } finally {
    child.kill('SIGKILL');
  }
  const db = join(md, 'out.db');
  execFileSync('debugfs', ['-R', `dump /data/r.db ${db}`, img], { stdio: 'ignore' });
  assert.equal(execFileSync('sqlite3', [db, 'pragma integrity_check; select count(*) from t;'], { encoding: 'utf8' }), 'ok\n3\n');
  assert.equal(spawnSync('e2fsck', ['-fn', img]).status, 0);
});

test('a checkpoint taken on kvm continues on process; one taken on process is refused on kvm with the fix', {
  ...T,
  skip: onlyOn('process', 'runs once, in the process pass') || (!probePlatforms().every((p) => p.works) && 'needs both platforms on this host'),
}, async () => {
  const ckpt = join(dir, 'cross');
  const sb = new Sandbox(guest('counter'), ['200', '25'], { stdout: 'pipe', platform: 'kvm' });
  const run = sb.run();
  await untilCalls(sb, 'write', 5);
  await sb.checkpoint(ckpt);
  sb.stop();
  const printed = lines((await run).stdout);
  const r = await Sandbox.restore(ckpt, { stdout: 'pipe', platform: 'process' }).run();
  assert.equal(r.status, 0, r.reason ?? '');
  const after = lines(r.stdout);
  assert.ok(printed.includes(after[0]! - 1) && after.at(-1) === 200, `kvm printed ..${printed.at(-1)}, process went on from ${after[0]} to ${after.at(-1)}`);
  // The other way: the program on process may have used CPU features KVM does not offer here.
  const back = join(dir, 'cross-back');
  const p = new Sandbox(guest('counter'), ['200', '25'], { stdout: 'pipe', platform: 'process' });
  const prun = p.run();
  await untilCalls(p, 'write', 5);
  await p.checkpoint(back);
  p.stop();
  await prun;
  await assert.rejects(Sandbox.restore(back, { stdout: 'pipe', platform: 'kvm' }).run(), (e: unknown) => e instanceof MapvisorError && /taken on the process platform/.test(e.message) && /--platform process/.test(e.fix));
});
