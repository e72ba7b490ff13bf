/**
 * The OCI runtime (bin/mapvisor-oci) under Debian's podman: the tests import their own images from
 * tarballs (static busybox from .cache/busybox; a Debian root with bash and python3 made by
 * createImage and unpacked with debugfs rdump), then run them with `podman run --runtime=mapvisor-oci
 * --runtime-flag platform=P` on this run's platform. Each test is skipped, with the reason printed,
 * where podman cannot run here (not installed, not root). Bad input is checked on the runtime's own
 * command line: a one-line error, a non-zero exit, a json log line, and no state left behind.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLATFORM } from '../platform.js';
import { createImage } from '../../src/image/create.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const RUNTIME = join(ROOT, 'bin', 'mapvisor-oci');
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const BB = 'localhost/mapvisor-oci-bb:1';
const DEB = 'localhost/mapvisor-oci-deb:1';
const T = { timeout: 120_000 };

function sh(cmd: string, args: string[], input?: string, timeout = 60_000): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout, ...(input !== undefined ? { input } : {}) });
}

/** Why podman cannot run containers here, or false. */
function probe(): string | false {
  if (process.getuid?.() !== 0) return 'rootful podman needs root (the suite runs as a normal user)';
  const v = sh('podman', ['--version']);
  if (v.error || v.status !== 0) return 'podman is not installed (apt-get install podman)';
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} missing (node scripts/fixtures.mjs)`;
  return false;
}
const SKIP = probe();
if (SKIP) console.log(`# oci: skipped: ${SKIP}`);
let debSkip: string | false = SKIP;

const RUN = (...extra: string[]): string[] => ['run', '--rm', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, ...extra];
const podman = (args: string[], input?: string, timeout?: number): SpawnSyncReturns<string> => sh('podman', args, input, timeout);
const why = (r: SpawnSyncReturns<string>): string => `status ${r.status} signal ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

function imported(tag: string): boolean {
  return podman(['image', 'exists', tag]).status === 0;
}

before(async () => {
  if (SKIP) return;
  const work = mkdtempSync(join(tmpdir(), 'mapvisor-oci-img-'));
  try {
    if (!imported(BB)) {
      const tree = join(work, 'bb');
      mkdirSync(join(tree, 'bin'), { recursive: true });
      mkdirSync(join(tree, 'tmp'));
      copyFileSync(BUSYBOX, join(tree, 'bin', 'busybox'));
      for (const a of ['sh', 'echo', 'cat', 'id', 'pwd', 'sleep', 'hostname', 'env', 'true']) symlinkSync('busybox', join(tree, 'bin', a));
      const tar = sh('tar', ['-C', tree, '-cf', join(work, 'bb.tar'), '.']);
      assert.equal(tar.status, 0, tar.stderr);
      const r = podman(['import', join(work, 'bb.tar'), BB]);
      assert.equal(r.status, 0, why(r));
    }
    if (!imported(DEB)) {
      // A Debian root with bash and python3 (apt-get download + dpkg -x), unpacked for `podman import`.
      try {
        await createImage({ out: join(work, 'deb.img'), debian: ['bash', 'python3-minimal'], add: [] });
      } catch (e) {
        debSkip = `cannot build the Debian image: ${(e as Error).message}`;
        return;
      }
      mkdirSync(join(work, 'deb'));
      const d = sh('debugfs', ['-R', `rdump / ${join(work, 'deb')}`, join(work, 'deb.img')]);
      assert.equal(d.status, 0, d.stderr);
      rmSync(join(work, 'deb', 'lost+found'), { recursive: true, force: true });
      const tar = sh('tar', ['-C', join(work, 'deb'), '-cf', join(work, 'deb.tar'), '.']);
      assert.equal(tar.status, 0, tar.stderr);
      const r = podman(['import', join(work, 'deb.tar'), DEB], undefined, 120_000);
      assert.equal(r.status, 0, why(r));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test(`podman run: echo [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const r = podman(RUN(BB, '/bin/echo', 'hello from mapvisor'));
  assert.equal(r.status, 0, why(r));
  assert.equal(r.stdout, 'hello from mapvisor\n');
});

test(`podman run: the exit status is the program's (3) [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const r = podman(RUN(BB, '/bin/sh', '-c', 'exit 3'));
  assert.equal(r.status, 3, why(r));
});

test(`podman run: -e and -w reach the program; the hostname is the container's [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const r = podman(RUN('-e', 'GREETING=hi there', '-w', '/tmp', '--hostname', 'boxy', BB, '/bin/sh', '-c', 'echo "$GREETING"; pwd; hostname'));
  assert.equal(r.status, 0, why(r));
  assert.equal(r.stdout, 'hi there\n/tmp\nboxy\n');
});

test(`podman run --init: mapvisor's own init is pid 1, the program pid 2 [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const r = podman(RUN('--init', BB, '/bin/sh', '-c', 'echo "pid $$"; exit 4'));
  assert.equal(r.status, 4, why(r));
  assert.equal(r.stdout, 'pid 2\n');
});

test(`podman run --user 1000:1000 [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const r = podman(RUN('--user', '1000:1000', BB, '/bin/sh', '-c', 'id -u; id -g'));
  assert.equal(r.status, 0, why(r));
  assert.equal(r.stdout, '1000\n1000\n');
});

test(`podman run --read-only: the root refuses writes (EROFS), podman's tmpfs /tmp takes them [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const r = podman(RUN('--read-only', BB, '/bin/sh', '-c', 'echo x > /x; echo "status $?"; echo y > /tmp/y && cat /tmp/y'));
  assert.equal(r.status, 0, why(r));
  assert.equal(r.stdout, 'status 1\ny\n');
  assert.match(r.stderr, /Read-only file system/);
});

test(`podman run -v: a host directory written inside is read on the host [${PLATFORM}]`, { ...T, skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-oci-vol-'));
  try {
    writeFileSync(join(dir, 'in.txt'), 'from the host\n');
    const r = podman(RUN('-v', `${dir}:/data`, BB, '/bin/sh', '-c', 'cat /data/in.txt; echo from the container > /data/out.txt'));
    assert.equal(r.status, 0, why(r));
    assert.equal(r.stdout, 'from the host\n');
    assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'from the container\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`podman run -d, logs, ps, stop (SIGTERM: 143) [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  const c = podman(['run', '-d', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, BB, '/bin/sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done']);
  assert.equal(c.status, 0, why(c));
  const id = c.stdout.trim();
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const logs = podman(['logs', id]);
    assert.match(logs.stdout, /^tick 0\ntick 1\n/, why(logs));
    const ps = podman(['ps', '--filter', `id=${id}`, '--format', '{{.Status}}']);
    assert.match(ps.stdout, /^Up /, why(ps));
    const stop = podman(['stop', '-t', '5', id]);
    assert.equal(stop.status, 0, why(stop));
    const code = podman(['inspect', id, '--format', '{{.State.ExitCode}}']);
    assert.equal(code.stdout.trim(), '143', why(code));
  } finally {
    podman(['rm', '-f', id]);
  }
});

test(`podman stop: a program that traps SIGTERM is killed (137) after the timeout [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  const c = podman(['run', '-d', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, BB, '/bin/sh', '-c', 'trap "echo got TERM" TERM; while true; do sleep 0.2; done']);
  assert.equal(c.status, 0, why(c));
  const id = c.stdout.trim();
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const t0 = Date.now();
    const stop = podman(['stop', '-t', '2', id]);
    assert.equal(stop.status, 0, why(stop));
    assert.ok(Date.now() - t0 >= 1900, 'stop waited for the timeout');
    assert.match(podman(['logs', id]).stdout, /got TERM/);
    assert.equal(podman(['inspect', id, '--format', '{{.State.ExitCode}}']).stdout.trim(), '137');
  } finally {
    podman(['rm', '-f', id]);
  }
});

test(`podman kill -s: the program's first process gets the signal, as runc's init would [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  const c = podman(['run', '-d', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, BB, '/bin/sh', '-c', 'trap "echo got USR1" USR1; trap "echo got HUP" HUP; while true; do sleep 0.2; done']);
  assert.equal(c.status, 0, why(c));
  const id = c.stdout.trim();
  try {
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(podman(['kill', '-s', 'USR1', id]).status, 0);
    assert.equal(podman(['kill', '-s', 'HUP', id]).status, 0);
    await new Promise((r) => setTimeout(r, 1000));
    const logs = podman(['logs', id]);
    // The shell's traps ran; its foreground sleep was not signalled (its shell would report the death).
    // (both may be pending when the shell runs its traps: it runs them in signal-number order)
    assert.deepEqual(logs.stdout.trim().split('\n').sort(), ['got HUP', 'got USR1'], why(logs));
    assert.equal(logs.stderr, '', why(logs));
  } finally {
    podman(['rm', '-f', '-t', '0', id]);
  }
});

test(`podman's own network: -p publishes a server in the container (the VMM joins its namespace) [${PLATFORM}]`, { ...T, skip: SKIP || (sh('curl', ['--version']).status !== 0 ? 'curl missing' : false) }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-oci-www-'));
  writeFileSync(join(dir, 'index.html'), 'served from mapvisor\n');
  const port = 18000 + (process.pid % 1000) + (PLATFORM === 'kvm' ? 0 : 1000);
  const c = podman(['run', '-d', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, '-p', `${port}:8000`, '-v', `${dir}:/www`, BB, '/bin/busybox', 'httpd', '-f', '-p', '8000', '-h', '/www']);
  assert.equal(c.status, 0, why(c));
  const id = c.stdout.trim();
  try {
    let got = '';
    for (let i = 0; i < 40 && !got; i++) {
      await new Promise((r) => setTimeout(r, 250));
      got = sh('curl', ['-s', '-m', '5', `http://127.0.0.1:${port}/index.html`]).stdout;
    }
    assert.equal(got, 'served from mapvisor\n');
  } finally {
    podman(['rm', '-f', '-t', '0', id]);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A container running `sleep 60` for `f`; removed after. */
async function withRunning(f: (id: string) => Promise<void> | void): Promise<void> {
  const c = podman(['run', '-d', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, BB, '/bin/sleep', '60']);
  assert.equal(c.status, 0, why(c));
  const id = c.stdout.trim();
  try {
    await f(id);
  } finally {
    podman(['rm', '-f', '-t', '0', id]);
  }
}

test(`podman exec: echo, the exit status (4), -e and -w, stdin with -i [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  await withRunning((id) => {
    const a = podman(['exec', id, 'echo', 'hi']);
    assert.equal(a.status, 0, why(a));
    assert.equal(a.stdout, 'hi\n');
    const b = podman(['exec', id, 'sh', '-c', 'exit 4']);
    assert.equal(b.status, 4, why(b));
    const c = podman(['exec', '-e', 'K=V', '-w', '/tmp', id, 'sh', '-c', 'echo "$K"; pwd; echo "ppid $PPID"']);
    assert.equal(c.status, 0, why(c));
    assert.equal(c.stdout, 'V\n/tmp\nppid 0\n');
    const d = podman(['exec', '-i', id, 'cat'], 'through stdin\n');
    assert.equal(d.stdout, 'through stdin\n', why(d));
    const e = podman(['exec', id, 'sh', '-c', 'kill -TERM $$']);
    assert.equal(e.status, 143, why(e));
  });
});

test(`podman exec: ps inside shows the container's program and the exec'd process (ppid 0) [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  await withRunning((id) => {
    const bg = podman(['exec', '-d', id, 'sleep', '30']);
    assert.equal(bg.status, 0, why(bg));
    const r = podman(['exec', id, 'busybox', 'ps', '-o', 'pid,ppid,comm']);
    assert.equal(r.status, 0, why(r));
    const rows = r.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.ok(rows.some(([pid, ppid, comm]) => pid === '1' && ppid === '0' && comm === 'sleep'), r.stdout);
    assert.equal(rows.filter(([pid, ppid, comm]) => pid !== '1' && ppid === '0' && comm === 'sleep').length, 1, r.stdout);
    assert.ok(rows.some(([pid, ppid, comm]) => pid !== '1' && ppid === '0' && comm === 'busybox'), r.stdout);
  });
});

test(`podman exec: a program the image lacks is podman's 127, with runc's message [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  await withRunning((id) => {
    const r = podman(['exec', id, 'nosuch']);
    assert.equal(r.status, 127, why(r));
    assert.match(r.stderr, /"nosuch": executable file not found in \$PATH/);
  });
});

test(`podman exec -it: a terminal, and the status through it [${PLATFORM}]`, { ...T, skip: SKIP || (sh('script', ['--version']).status !== 0 ? 'script(1) missing (apt-get install bsdutils)' : false) }, async () => {
  await withRunning((id) => {
    const r = spawnSync('script', ['-qec', `podman exec -it ${id} sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; exit 3'`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    assert.match(r.stdout, /on-a-tty\r\n/, why(r));
    assert.equal(r.status, 3, why(r));
  });
});

test(`podman run -it: a shell on a pty (script(1) drives it) [${PLATFORM}]`, { ...T, skip: SKIP || (sh('script', ['--version']).status !== 0 ? 'script(1) missing (apt-get install bsdutils)' : false) }, () => {
  const cmd = ['podman', 'run', '-it', '--rm', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, BB, '/bin/sh'].join(' ');
  // The shell's input arrives after its prompt: script(1) passes stdin on to the pty as it comes.
  const r = spawnSync('sh', ['-c', `(sleep 3; echo 'echo hello-$((40+2)); exit 5'; sleep 3) | script -qec "${cmd}" /dev/null`], { encoding: 'utf8', timeout: 60_000 });
  assert.match(r.stdout, /\r\nhello-42\r\n/, why(r));
  assert.equal(r.status, 5, why(r));
});

test(`podman (Debian image): python3 and bash run [${PLATFORM}]`, { ...T, skip: SKIP }, (t) => {
  if (debSkip) return t.skip(debSkip);
  const py = podman(RUN(DEB, '/usr/bin/python3', '-c', 'import os, sys; print(sys.version_info[0], os.getcwd())'));
  assert.equal(py.status, 0, why(py));
  assert.equal(py.stdout, '3 /\n');
  const bash = podman(RUN(DEB, '/bin/bash', '-c', 'for i in 1 2 3; do echo $i; done | while read l; do echo "<$l>"; done; exit 4'));
  assert.equal(bash.status, 4, why(bash));
  assert.equal(bash.stdout, '<1>\n<2>\n<3>\n');
});

test(`podman container checkpoint / restore: a counter continues [${PLATFORM}]`, { ...T, skip: SKIP }, async (t) => {
  if (debSkip) return t.skip(debSkip);
  if (sh('criu', ['--version']).error) return t.skip('podman checks for CRIU before it asks the runtime (apt-get install criu; mapvisor does not use it)');
  const prog = 'import time\ni = 0\nwhile True:\n    print("tick", i, flush=True); i += 1; time.sleep(0.3)';
  const c = podman(['run', '-d', '--network=none', `--runtime=${RUNTIME}`, `--runtime-flag=platform=${PLATFORM}`, DEB, '/usr/bin/python3', '-c', prog]);
  assert.equal(c.status, 0, why(c));
  const id = c.stdout.trim();
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const ck = podman(['container', 'checkpoint', id]);
    assert.equal(ck.status, 0, why(ck));
    const before = podman(['logs', id]).stdout.trim().split('\n');
    const last = Number(before.at(-1)!.split(' ')[1]);
    const rs = podman(['container', 'restore', id]);
    assert.equal(rs.status, 0, why(rs));
    await new Promise((r) => setTimeout(r, 1500));
    const after = podman(['logs', id]).stdout.trim().split('\n').map((l) => Number(l.split(' ')[1]));
    // The sequence goes on from where it stopped: no restart from 0, no gap.
    assert.deepEqual(after.slice(0, last + 3), Array.from({ length: last + 3 }, (_, i) => i));
  } finally {
    podman(['rm', '-f', '-t', '0', id]);
  }
});

/** The runtime's own command line, on a bundle of our own, with a private --root and a json log. */
function runtime(root: string, logFile: string, args: string[]): SpawnSyncReturns<string> {
  // Files for stdout and stderr: create's VMM inherits them and outlives create (pipes would keep
  // spawnSync waiting for it).
  const out = join(root, `.out-${process.pid}`);
  const err = join(root, `.err-${process.pid}`);
  const fds = [openSync(out, 'w'), openSync(err, 'w')] as const;
  const r = spawnSync(RUNTIME, ['--root', root, '--log', logFile, '--log-format', 'json', `--platform=${PLATFORM}`, ...args], { stdio: ['ignore', fds[0], fds[1]], timeout: 60_000 });
  fds.forEach((fd) => closeSync(fd));
  const result = { ...r, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') } as SpawnSyncReturns<string>;
  rmSync(out);
  rmSync(err);
  return result;
}

function bundle(config: unknown, withRoot = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-oci-bundle-'));
  if (withRoot) {
    mkdirSync(join(dir, 'rootfs', 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(dir, 'rootfs', 'bin', 'busybox'));
  }
  writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

const CONFIG = { ociVersion: '1.0.2', process: { args: ['/bin/busybox', 'sh', '-c', 'echo ok; exit 7'], env: ['PATH=/bin'], cwd: '/' }, root: { path: 'rootfs' } };

const BAD: Array<[string, unknown, boolean, RegExp]> = [
  ['a malformed config.json', '{"ociVersion": "1.0.2", "process": ', true, /config\.json is not JSON/],
  ['a missing root file system', CONFIG, false, /root\.path .* does not exist/],
  ['an unknown spec version', { ...CONFIG, ociVersion: '2.0.0' }, true, /ociVersion "2\.0\.0" is not a 1\.x runtime spec/],
  ['an IPC namespace to join', { ...CONFIG, linux: { namespaces: [{ type: 'ipc', path: '/proc/1/ns/ipc' }] } }, true, /linux\.namespaces\[0\]\.path/],
  ['a mount type mapvisor lacks', { ...CONFIG, mounts: [{ destination: '/mnt', type: 'nfs', source: 'x:/y' }] }, true, /mounts\[0\] of type "nfs"/],
];

for (const [name, config, withRoot, message] of BAD) {
  test(`mapvisor-oci create: ${name} is one line, a non-zero exit and no state [${PLATFORM}]`, { ...T, skip: existsSync(BUSYBOX) ? false : 'no .cache/busybox' }, () => {
    const b = bundle(config, withRoot);
    const root = mkdtempSync(join(tmpdir(), 'mapvisor-oci-root-'));
    try {
      const r = runtime(root, join(b, 'log.json'), ['create', '--bundle', b, 'c1']);
      assert.notEqual(r.status, 0, why(r));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, message);
      const log = readFileSync(join(b, 'log.json'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string; time: string });
      assert.equal(log.at(-1)!.level, 'error');
      assert.match(log.at(-1)!.msg, message);
      assert.deepEqual(readdirSync(root).filter((n) => n !== 'images' && !n.endsWith('.lock') && !n.startsWith('.')), []);
    } finally {
      rmSync(b, { recursive: true, force: true });
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test(`mapvisor-oci: an unknown container id is one line and a non-zero exit [${PLATFORM}]`, T, () => {
  const root = mkdtempSync(join(tmpdir(), 'mapvisor-oci-root-'));
  try {
    for (const cmd of [['state', 'nope'], ['start', 'nope'], ['kill', 'nope', 'KILL'], ['delete', 'nope']]) {
      const r = runtime(root, join(root, 'log.json'), cmd);
      assert.equal(r.status, 1, why(r));
      assert.equal(r.stderr, 'mapvisor-oci: container nope does not exist (see the containers under ' + root + ')\n');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test(`mapvisor-oci: create, state (created), start, state (stopped), delete [${PLATFORM}]`, { ...T, skip: existsSync(BUSYBOX) ? false : 'no .cache/busybox' }, async () => {
  const b = bundle(CONFIG);
  const root = mkdtempSync(join(tmpdir(), 'mapvisor-oci-root-'));
  try {
    const log = join(b, 'log.json');
    const c = runtime(root, log, ['create', '--bundle', b, '--pid-file', join(b, 'pid'), 'c1']);
    assert.equal(c.status, 0, why(c));
    const pid = Number(readFileSync(join(b, 'pid'), 'utf8'));
    const s1 = JSON.parse(runtime(root, log, ['state', 'c1']).stdout) as { status: string; pid: number; id: string; bundle: string; ociVersion: string };
    assert.deepEqual([s1.status, s1.pid, s1.id, s1.bundle], ['created', pid, 'c1', b]);
    const st = runtime(root, log, ['start', 'c1']);
    assert.equal(st.status, 0, why(st));
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 50));
    const s2 = JSON.parse(runtime(root, log, ['state', 'c1']).stdout) as { status: string };
    assert.equal(s2.status, 'stopped');
    assert.equal(runtime(root, log, ['delete', 'c1']).status, 0);
    assert.deepEqual(readdirSync(root).filter((n) => n !== 'images' && !n.startsWith('.')), []);
    const f = JSON.parse(runtime(root, log, ['features']).stdout) as { ociVersionMax: string };
    assert.equal(f.ociVersionMax, '1.1.0');
  } finally {
    rmSync(b, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
});

test(`mapvisor-oci: a Kubernetes pod's namespaces: the pod's hostname; its IPC namespace refused unless --pod-ipc own [${PLATFORM}]`, {
  ...T,
  skip: !existsSync(BUSYBOX) ? 'no .cache/busybox' : process.getuid?.() !== 0 ? 'making a pod\'s namespaces (unshare) needs root' : false,
}, async () => {
  // The pause container of a pod, as CRI makes it: UTS and IPC namespaces of its own, the pod's hostname.
  const { spawn } = await import('node:child_process');
  const pause = spawn('unshare', ['--uts', '--ipc', 'sh', '-c', 'hostname pod-4711 && exec sleep 60'], { stdio: 'ignore' });
  const b = bundle({
    ...CONFIG,
    process: { ...CONFIG.process, args: ['/bin/busybox', 'hostname'] },
    linux: { namespaces: [{ type: 'pid' }, { type: 'uts', path: `/proc/${pause.pid}/ns/uts` }, { type: 'ipc', path: `/proc/${pause.pid}/ns/ipc` }, { type: 'mount' }] },
  });
  const root = mkdtempSync(join(tmpdir(), 'mapvisor-oci-root-'));
  try {
    for (let i = 0; i < 100 && sh('nsenter', [`--uts=/proc/${pause.pid}/ns/uts`, 'uname', '-n']).stdout.trim() !== 'pod-4711'; i++) await new Promise((r) => setTimeout(r, 20));
    const refused = runtime(root, join(b, 'log.json'), ['run', '--bundle', b, 'c1']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /linux\.namespaces\[2\]\.path.*joins an existing ipc namespace/);
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);
    const r = spawnSync(RUNTIME, ['--root', root, '--pod-ipc', 'own', `--platform=${PLATFORM}`, 'run', '--bundle', b, 'c2'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, why(r));
    assert.equal(r.stdout, 'pod-4711\n');
  } finally {
    pause.kill('SIGKILL');
    rmSync(b, { recursive: true, force: true });
    rmSync(root, { recursive: true, force: true });
  }
});

test(`podman: writable containers of one image map the one shared image; each keeps its changes in a small layer of its own [${PLATFORM}]`, { ...T, skip: SKIP }, async () => {
  const ids: string[] = [];
  try {
    for (const word of ['first', 'second']) {
      const r = podman([...RUN('-d').filter((a) => a !== '--rm'), BB, '/bin/sh', '-c', `echo ${word} > /tmp/mine; sleep 30`]);
      assert.equal(r.status, 0, why(r));
      ids.push(r.stdout.trim());
    }
    await new Promise((r) => setTimeout(r, 1500));
    const states = ids.map((id) => JSON.parse(readFileSync(join('/run/mapvisor-oci', id, 'state.json'), 'utf8')) as { pid: number; run: { image: string; layer: string } });
    assert.equal(states[0]!.run.image, states[1]!.run.image, 'one shared image');
    for (const [i, s] of states.entries()) {
      assert.equal(s.run.layer, join('/run/mapvisor-oci', ids[i]!, 'layer'));
      const held = statSync(s.run.layer).blocks * 512;
      assert.ok(held < 1 << 20, `the layer holds ${held} bytes, not a copy of the image`);
      // The VMM maps the shared image itself (its file pages are the page cache's, for both containers).
      assert.match(readFileSync(`/proc/${s.pid}/maps`, 'utf8'), new RegExp(s.run.image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    }
    assert.equal(podman(['exec', ids[0]!, 'cat', '/tmp/mine']).stdout, 'first\n');
    assert.equal(podman(['exec', ids[1]!, 'cat', '/tmp/mine']).stdout, 'second\n');
  } finally {
    if (ids.length) podman(['rm', '-f', '-t', '0', ...ids]);
  }
});
