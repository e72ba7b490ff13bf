/**
 * System calls language runtimes make at start-up (seen from Debian's node 18 and glibc): capget and
 * capset, rseq (with a critical section restarted by a signal), and the protection-key calls as on a CPU
 * without PKU; and what Python's multiprocessing needs between processes (named semaphores in /dev/shm,
 * shared futexes, an unlinked file that stays mapped, close_range), and file locks between processes
 * (flock, fcntl record locks, OFD locks), and waits with a signal mask of their own (pselect6, ppoll,
 * epoll_pwait: make -j). The guest programs test/guest/caps.c, rseq.c, shmsem.c, locks.c and
 * sigmaskwait.c run in the sandbox (from an image, so that they can exec
 * themselves) and natively, and print the same lines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const GUEST = join(ROOT, '.cache', 'guest');
const PROGRAMS = ['caps', 'rseq', 'shmsem', 'locks', 'sigmaskwait'];
const built = PROGRAMS.every((g) => existsSync(join(GUEST, g)));
let dir: string;
let img: string;

before(() => {
  if (!built) return;
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-rtcalls-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  mkdirSync(join(root, 'dev', 'shm'), { recursive: true, mode: 0o1777 });
  for (const g of PROGRAMS) copyFileSync(join(GUEST, g), join(root, 'bin', g));
  img = join(dir, 'rt.img');
  // 4 KiB blocks: file mappings then map the image in place (smaller blocks take the copying path).
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-d', root, img, '32M']);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function both(name: string): Promise<{ box: string; native: string; status: number | null; why: string }> {
  const r = await Sandbox.run(`/bin/${name}`, [], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 60 });
  const n = spawnSync(join(GUEST, name), [], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(n.status, 0, `native run: ${n.stdout}${n.stderr}`);
  return { box: r.stdout!.toString(), native: n.stdout, status: r.status, why: `${r.stderr}\n${r.reason ?? ''}` };
}

const skip = built ? false : 'test/guest/caps.c, rseq.c, shmsem.c, locks.c, sigmaskwait.c not built';

test(`capget/capset (v1, v2, v3; capset only lowers; setuid and exec change the sets) and pkey_* without PKU: as natively [${PLATFORM}]`, { timeout: 90_000, skip }, async () => {
  const { box, native, status, why } = await both('caps');
  assert.equal(status, 0, why);
  if (process.getuid?.() !== 0) {
    // Natively as another user the sets are empty and the root-only checks are skipped: compare what both ran.
    const common = native.split('\n').filter((l) => !l.startsWith('not root'));
    for (const l of common.slice(0, 8)) assert.ok(box.includes(l), `${l}\n--- sandbox\n${box}`);
    return;
  }
  assert.equal(box, native, `--- sandbox\n${box}\n--- native\n${native}\n${why}`);
});

test(`rseq: registration errors, cpu ids, a critical section restarted at abort_ip by a signal, fork/exec/thread inheritance: as natively [${PLATFORM}]`, { timeout: 90_000, skip }, async () => {
  const { box, native, status, why } = await both('rseq');
  assert.equal(status, 0, why);
  // Natively a preemption may abort the section before the signal arrives; in the sandbox only the signal does.
  const portable = (s: string): string => s.split('\n').filter((l) => !l.startsWith('(host-dependent)')).join('\n');
  assert.equal(portable(box), portable(native), `--- sandbox\n${box}\n--- native\n${native}\n${why}`);
  assert.match(box, /\(host-dependent\) the handler saw abort_ip: yes/);
});

test(`between processes: named semaphores in /dev/shm (unlinked at once), a post waking a wait in another process, a process-shared mutex, an unlinked mapped file keeping its data, close_range: as natively [${PLATFORM}]`, { timeout: 90_000, skip }, async () => {
  const { box, native, status, why } = await both('shmsem');
  assert.equal(status, 0, why);
  assert.equal(box, native, `--- sandbox\n${box}\n--- native\n${native}\n${why}`);
});

test(`file locks between processes: flock, fcntl record locks (ranges, F_GETLK, F_SETLKW, dropped by close and exit), OFD locks: as natively [${PLATFORM}]`, { timeout: 90_000, skip }, async () => {
  const { box, native, status, why } = await both('locks');
  assert.equal(status, 0, why);
  assert.equal(box, native, `--- sandbox\n${box}\n--- native\n${native}\n${why}`);
});

test(`pselect6, ppoll, epoll_pwait with their own signal mask: a child's SIGCHLD ends the wait, the caller's mask comes back (make -j): as natively [${PLATFORM}]`, { timeout: 90_000, skip }, async () => {
  const { box, native, status, why } = await both('sigmaskwait');
  assert.equal(status, 0, why);
  assert.equal(box, native, `--- sandbox\n${box}\n--- native\n${native}\n${why}`);
});
