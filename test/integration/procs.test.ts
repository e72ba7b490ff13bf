/**
 * Processes: busybox sh scripts (pipelines, subshells, $(...), background jobs, wait, traps, kill)
 * run in the sandbox and natively on the host, with the same stdout, stderr and exit status; fork
 * copy-on-write, exec and wait semantics checked by the procs test program against its native run;
 * a fork bomb stopped at --pids; --init reaping orphans; no host process outliving the sandbox.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const GUEST = join(ROOT, '.cache', 'guest');
const APPLETS = ['sh', 'echo', 'cat', 'sort', 'head', 'tail', 'wc', 'seq', 'sleep', 'true', 'false', 'tr', 'ls', 'ps', 'kill', 'grep', 'sed', 'awk', 'xargs', 'env', 'expr', 'test', 'printf', 'mkfifo', 'rm'];
let dir: string;
let img: string;
let hostRoot: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'mapvisor-procs-'));
  hostRoot = join(dir, 'root');
  mkdirSync(join(hostRoot, 'bin'), { recursive: true });
  mkdirSync(join(hostRoot, 'tmp'), { recursive: true });
  copyFileSync(BUSYBOX, join(hostRoot, 'bin', 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(hostRoot, 'bin', a));
  for (const g of ['procs', 'hello', 'exit-code']) if (existsSync(join(GUEST, g))) copyFileSync(join(GUEST, g), join(hostRoot, 'bin', g));
  writeFileSync(join(hostRoot, 'bin', 'script.sh'), '#!/bin/sh -e\necho "script $0 args: $*"\nexit 7\n', { mode: 0o755 });
  writeFileSync(join(hostRoot, 'tmp', 'notexec'), 'data\n', { mode: 0o644 });
  img = join(dir, 'procs.img');
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', hostRoot, img, '64M']);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Run `sh -c script` in the sandbox and natively (the same busybox, from the image's tree). */
async function both(script: string, opts: { pids?: number; init?: boolean } = {}): Promise<{ box: { status: number | null; out: string; err: string }; host: { status: number | null; out: string; err: string } }> {
  const r = await Sandbox.run('/bin/sh', ['-c', script], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 60, ...opts });
  const box = { status: r.status, out: r.stdout!.toString(), err: r.stderr!.toString() + (r.reason ? `\n[${r.reason}]` : '') };
  // Natively: the same busybox, with PATH at the same tree (nothing in the script leaves it).
  const h = spawnSync(join(hostRoot, 'bin', 'busybox'), ['sh', '-c', script], { encoding: 'utf8', env: { PATH: join(hostRoot, 'bin') }, cwd: hostRoot, timeout: 60_000 });
  return { box, host: { status: h.status, out: h.stdout, err: h.stderr } };
}

const SCRIPTS: Record<string, string> = {
  pipeline: 'for i in 1 2 3; do echo $i; done | sort -r | head -2; exit 3',
  'long pipeline': 'seq 1 2000 | grep 7 | sed s/7/seven/ | sort | tail -3 | wc -l',
  'subshells and command substitution': 'x=$(echo hi | tr a-z A-Z); echo "x=$x"; (echo in-subshell; exit 4); echo "rc=$?"; y=$( (echo nested) ); echo $y',
  'background jobs and wait': 'sleep 0.2 & a=$!; (sleep 0.1; exit 5) & b=$!; wait $b; echo "b=$?"; wait $a; echo "a=$?"; echo done',
  traps: 'trap "echo got-usr1" USR1; kill -USR1 $$; trap "echo bye" EXIT; echo body',
  // (stderr off: whether the shell prints "Terminated" depends on whether the child died before `wait`)
  'kill a child': '{ sleep 5 & p=$!; kill $p; wait $p; echo "rc=$?"; } 2>/dev/null',
  'exit status of a signalled child': 'sh -c "kill -9 \\$\\$"; echo "rc=$?"',
  'exec replaces the shell': 'exec echo replaced; echo not-reached',
  'missing command': 'nonexistent-command; echo "rc=$?"',
  '#! script with argument': 'script.sh a b; echo "rc=$?"',
  'not executable': './tmp/notexec; echo "rc=$?"',
  'xargs spawns per item': 'seq 1 5 | xargs -n 1 echo item | wc -l',
  'process groups': 'set -m 2>/dev/null; (sleep 0.1) & wait; echo ok',
  'stop and continue a job': 'sleep 1 & p=$!; kill -STOP $p; sleep 1.3; kill -0 $p && echo still-there; kill -CONT $p; wait $p; echo "rc=$?"',
  'a named pipe (FIFO) between processes': 'mkfifo ./tmp/f; (echo through-fifo > ./tmp/f &); cat ./tmp/f; (seq 1 3000 > ./tmp/f &); wc -l < ./tmp/f; rm ./tmp/f',
};

for (const [name, script] of Object.entries(SCRIPTS)) {
  test(`busybox sh: ${name} (same as native) [${PLATFORM}]`, { timeout: 90_000 }, async () => {
    const { box, host } = await both(script);
    // The shell names itself in messages: /bin/sh in the sandbox, the host's path natively.
    const norm = (s: string): string => s.split(join(hostRoot, 'bin', 'busybox')).join('sh').split('/bin/sh:').join('sh:').split(hostRoot).join('');
    host.out = norm(host.out);
    assert.equal(box.out, host.out, `stdout differs\n--- sandbox\n${box.out}\n--- native\n${host.out}\n${box.err}`);
    assert.equal(norm(box.err), norm(host.err), 'stderr differs');
    assert.equal(box.status, host.status, `status differs: ${box.err}`);
  });
}

test(`the procs test program: fork, exec, wait, signals, pipes, groups [${PLATFORM}]`, { timeout: 120_000, skip: existsSync(join(GUEST, 'procs')) ? false : 'test/guest/procs.c not built' }, async () => {
  const r = await Sandbox.run('/bin/procs', [], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 100, init: true });
  const out = r.stdout!.toString();
  const native = spawnSync(join(GUEST, 'procs'), [], { encoding: 'utf8', timeout: 100_000 });
  assert.equal(r.status, 0, `${out}\n${r.stderr}\n${r.reason ?? ''}`);
  assert.doesNotMatch(out, /FAIL/);
  // The same checks ran natively and passed (lines that depend on the host, e.g. orphans, say skip).
  assert.equal(native.status, 0, native.stdout);
  const oks = (s: string): string[] => s.split('\n').filter((l) => l.startsWith('ok '));
  assert.deepEqual(oks(out).filter((l) => !oks(native.stdout).includes(l)), [], 'checks that pass natively but not in the sandbox');
});

test(`a fork bomb stops at --pids: fork answers EAGAIN, the shell gives up [${PLATFORM}]`, { timeout: 120_000 }, async () => {
  // busybox sh treats a failed fork as fatal ("can't fork", status 2), as it does natively under a limit.
  const script = 'i=0; while :; do sleep 3 & i=$((i+1)); echo $i; done';
  const r = await Sandbox.run('/bin/sh', ['-c', script], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 60, pids: 8 });
  const out = r.stdout!.toString().trim().split('\n');
  assert.equal(r.status, 2, `${out.join(' ')}\n${r.stderr}`);
  assert.match(r.stderr!.toString(), /can't fork: Resource temporarily unavailable/);
  assert.equal(out[out.length - 1], '7', 'the shell and 7 sleepers: 8 processes');
});

test(`fork past --pids answers EAGAIN [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const r = await Sandbox.run('/bin/sh', ['-c', 'sleep 1 & sleep 1 & sleep 1 & echo next; wait'], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 30, pids: 3 });
  assert.match(r.stderr!.toString(), /can't fork|Resource temporarily unavailable/i, r.stderr!.toString());
});

test(`--init: the program is pid 2, orphans are reaped, the program's status is the sandbox's [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  // The subshell backgrounds a sleeper and exits: the sleeper is orphaned to init, which reaps it.
  const script = 'echo "pid=$$ ppid=$PPID"; (sleep 0.2 &); sleep 0.5; ps -o pid,ppid,stat,comm 2>/dev/null | grep -c Z; exit 9';
  const r = await Sandbox.run('/bin/sh', ['-c', script], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 30, init: true });
  const out = r.stdout!.toString();
  assert.equal(r.status, 9, `${out}\n${r.stderr}`);
  assert.match(out, /^pid=2 ppid=1$/m);
  assert.match(out, /^0$/m, 'no zombie left');
});

test(`without --init the program is pid 1 and reaps its own orphans [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const r = await Sandbox.run('/bin/sh', ['-c', 'echo "pid=$$"; (sleep 0.1 &); sleep 0.3; wait; echo ok'], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 30 });
  assert.equal(r.status, 0, r.stderr!.toString());
  assert.equal(r.stdout!.toString(), 'pid=1\nok\n');
});

test(`ps lists the sandbox's processes from /proc [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const r = await Sandbox.run('/bin/sh', ['-c', 'sleep 1 & ps -o pid,ppid,comm; kill %1 2>/dev/null; true'], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 30 });
  const out = r.stdout!.toString();
  assert.equal(r.status, 0, `${out}\n${r.stderr}`);
  assert.match(out, /^\s*1\s+0\s+sh$/m, out);
  // The background child: busybox runs sleep by executing /proc/self/exe, so its comm is "exe", as on Linux.
  assert.match(out, /^\s*[2-9]\d*\s+1\s+(s\S+|exe)$/m, out);
  assert.match(out, /^\s*\d+\s+1\s+ps$/m, out);
});

test(`no process outlives the sandbox when the program is killed mid-run [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const before = hostStubs();
  const r = await Sandbox.run('/bin/sh', ['-c', 'sleep 30 & sleep 30 & (sleep 30 | cat) & sleep 0.3; kill -9 $$'], { image: `${img},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 30 });
  assert.equal(r.signal, 9, `${r.status} ${r.reason}`);
  // Give the host a moment to reap, then no stub of this run may remain.
  await new Promise((res) => setTimeout(res, 300));
  const left = hostStubs().filter((p) => !before.includes(p));
  assert.deepEqual(left, [], 'process-platform stubs still running after the sandbox ended');
});

/**
 * Host pids of this test process's process-platform stubs: the outer processes are its children and
 * the program's processes their children. (Other test files run at the same time and start stubs of
 * their own: those are not this run's.) A stub whose parent is the host's init was orphaned: a leak,
 * counted too.
 */
function hostStubs(): string[] {
  const r = spawnSync('pgrep', ['-f', 'mapvisor-stub'], { encoding: 'utf8' });
  const ppid = (pid: string): string => {
    try {
      // Fields after the parenthesised command: state, then the parent's pid.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] ?? '';
    } catch {
      return ''; // gone
    }
  };
  const me = String(process.pid);
  return r.stdout.split('\n').filter(Boolean).filter((p) => {
    const parent = ppid(p);
    return parent === me || parent === '1' || (parent !== '' && ppid(parent) === me);
  });
}

test(`alarm and setitimer fire SIGALRM; spinning threads do not starve the others (--cpus 2) [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const r = await Sandbox.run(join(GUEST, 'timers'), [], { stdout: 'pipe', stderr: 'pipe', timeout: 30, cpus: 2 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}\n${r.reason ?? ''}`);
  assert.equal(r.stdout!.toString(), 'itimer fired 5\nalarm left 1\nmain ran with 3 spinners\n');
});

/** Run the CLI; once its stdout shows `ready`, send it `sig`. */
function cliSignal(args: string[], sig: NodeJS.Signals): Promise<{ status: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'mapvisor.js'), 'run', '--platform', PLATFORM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!sent && out.includes('ready')) {
        sent = true;
        setTimeout(() => p.kill(sig), 200);
      }
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (status) => {
      clearTimeout(t);
      resolve({ status, out, err });
    });
  });
}

test(`SIGINT to mapvisor reaches the sandbox's foreground group: a shell's trap runs [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const r = await cliSignal(['--image', `${img},cow`, '--', '/bin/sh', '-c', 'trap "echo caught INT; exit 5" INT; echo ready; sleep 10 & wait; echo not-reached'], 'SIGINT');
  assert.equal(r.out, 'ready\ncaught INT\n', r.err);
  assert.equal(r.status, 5, r.err);
});

test(`SIGTERM to mapvisor ends a program that has no handler, with 128+15 [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  const r = await cliSignal(['--image', `${img},cow`, '--', '/bin/sh', '-c', 'echo ready; exec sleep 10'], 'SIGTERM');
  assert.equal(r.status, 143, `${r.out}\n${r.err}`);
  assert.match(r.err, /SIGTERM/);
});
