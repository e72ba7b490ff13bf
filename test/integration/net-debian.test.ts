/**
 * Networking with real Debian programs, on the platform this run of the suite tests:
 *  - python3's http.server in the sandbox, published to a free host port (--publish / `publish`), fetched
 *    with the host's curl: the bytes are those of .cache/net-root/srv/www, and the host's port is closed
 *    once the sandbox ends; through the API (the 'listening' event) and through the CLI (its stderr line);
 *  - redis-server and redis-benchmark in one sandbox, over its own loopback (--net none);
 *  - redis-server in the sandbox, driven from the host through --publish by a small RESP client written
 *    here (no host package needed): a connection made before the server listens waits in the host's
 *    backlog, several connections at once, a value larger than any socket buffer;
 *  - bad --net and --publish values at the CLI: exit 125 with one line naming the value.
 * The image is built by scripts/net-images.mjs (from `npm test`'s fixtures step; cached in .cache/images).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../../src/bench/host.js';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox, type ListeningEvent, type SandboxOptions, type SandboxResult } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const NET = join(ROOT, '.cache', 'images', 'net.img');
const WWW = join(ROOT, '.cache', 'net-root', 'srv', 'www');
const HELLO = join(ROOT, '.cache', 'guest', 'hello');
const noImage = existsSync(NET) && existsSync(join(WWW, 'blob.bin')) ? false : `${NET} not built (node scripts/net-images.mjs)`;
const hasCurl = spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0;
const noCurl = hasCurl ? false : 'the host has no curl (apt-get install curl; .ci/run installs it)';

const tail = (b: Buffer | string | null | undefined): string => (b ?? '').toString().trim().split('\n').slice(-5).join('\n');

/**
 * A long-running program in a sandbox: its run, and a wait for its 'listening' event on a port, which
 * fails at once (with the program's stderr) when the program ends first. end() stops it and returns its
 * result.
 */
function serve(prog: string, args: string[], opts: SandboxOptions): { sb: Sandbox; listening: (port: number, ms: number) => Promise<ListeningEvent>; end: () => Promise<SandboxResult> } {
  const sb = new Sandbox(prog, args, { image: `${NET},ro`, net: 'none', stdout: 'pipe', stderr: 'pipe', timeout: 60, platform: PLATFORM, ...opts });
  const seen: ListeningEvent[] = [];
  const waiters: Array<() => void> = [];
  sb.on('listening', (l) => {
    seen.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const done = sb.run();
  let result: SandboxResult | Error | null = null;
  const settled = done.then(
    (r) => (result = r),
    (e: Error) => (result = e),
  );
  const listening = async (port: number, ms: number): Promise<ListeningEvent> => {
    const t0 = Date.now();
    for (;;) {
      const l = seen.find((x) => x.proto === 'tcp' && x.port === port);
      if (l) return l;
      if (result instanceof Error) throw result;
      if (result) throw new Error(`the program ended (status ${result.status}${result.reason ? `, ${result.reason}` : ''}) before listening on tcp port ${port}:\n${tail(result.stderr)}`);
      const left = ms - (Date.now() - t0);
      if (left <= 0) throw new Error(`no 'listening' event for tcp port ${port} in ${ms / 1000} s (events: ${JSON.stringify(seen)})`);
      await new Promise<void>((r) => {
        const timer = setTimeout(r, left);
        waiters.push(() => {
          clearTimeout(timer);
          r();
        });
        void settled.then(() => {
          clearTimeout(timer);
          r();
        });
      });
    }
  };
  const end = async (): Promise<SandboxResult> => {
    sb.stop();
    return done;
  };
  return { sb, listening, end };
}

/**
 * `curl -sS --max-time 20 URL`: the body, or a failure with curl's message. Asynchronous: the sandbox's
 * host side (the published port's listener) runs on this process's event loop, which must keep turning.
 */
function curl(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '--max-time', '20', '--fail', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`curl ${url} exited ${code}: ${err.trim()}`))));
  });
}

/** Whether a TCP connection to 127.0.0.1:port is refused (nobody listens there any more). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/* ------------------------------------------------------------------------------------------------
 * A RESP (Redis protocol) client, just enough for the tests: commands as arrays of bulk strings.
 * ---------------------------------------------------------------------------------------------- */

function resp(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Connects to 127.0.0.1:port, sends `request`, and resolves with what came back once `complete` says
 * it is all there; rejects when the connection ends or errs first, or after `ms`.
 */
function exchange(port: number, request: Buffer, complete: (reply: Buffer) => boolean, ms: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let reply = Buffer.alloc(0);
    const s = connect(port, '127.0.0.1');
    const shown = (): string => `${reply.length} reply bytes ${JSON.stringify(reply.toString('latin1').slice(0, 120))}`;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`127.0.0.1:${port}: ${shown()} in ${ms / 1000} s, and no more`));
    }, ms);
    s.on('connect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      reply = Buffer.concat([reply, d]);
      if (complete(reply)) {
        clearTimeout(timer);
        s.end();
        resolve(reply);
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`127.0.0.1:${port}: ${e.message} after ${shown()}`));
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`127.0.0.1:${port}: closed after ${shown()}`)); // (no effect once resolved)
    });
  });
}

/** Sends `request` and checks the reply is exactly `expected`. */
async function expectReply(port: number, request: Buffer, expected: Buffer | string, what: string, ms = 20_000): Promise<void> {
  const want = Buffer.isBuffer(expected) ? expected : Buffer.from(expected);
  const got = await exchange(port, request, (b) => b.length >= want.length, ms);
  assert.ok(got.equals(want), `${what}: got ${got.length} bytes ${JSON.stringify(got.toString('latin1').slice(0, 120))}, expected ${want.length} ${JSON.stringify(want.toString('latin1').slice(0, 120))}`);
}

const REDIS_ARGS = ['--save', '', '--appendonly', 'no', '--port', '6379'];

/* ------------------------------------------------------------------------------------------------ */

test(`python3 -m http.server published to a host port; curl fetches / and a 1 MiB file [${PLATFORM}]`, { timeout: 60_000, skip: noImage || noCurl }, async () => {
  const hostPort = await freePort();
  const s = serve('/usr/bin/python3', ['-m', 'http.server', '8000', '--directory', '/srv/www'], { publish: [{ hostPort, port: 8000 }] });
  let r: SandboxResult;
  try {
    const l = await s.listening(8000, 20_000);
    assert.equal(l.proto, 'tcp');
    assert.equal(l.hostPort, hostPort, JSON.stringify(l));
    assert.ok(l.family === 4 || l.family === 6, JSON.stringify(l));
    const index = await curl(`http://127.0.0.1:${hostPort}/`);
    assert.ok(index.equals(readFileSync(join(WWW, 'index.html'))), `GET / returned ${JSON.stringify(index.toString().slice(0, 200))}`);
    const blob = await curl(`http://127.0.0.1:${hostPort}/blob.bin`);
    const want = readFileSync(join(WWW, 'blob.bin'));
    assert.equal(blob.length, want.length, 'blob.bin length');
    assert.ok(blob.equals(want), 'blob.bin bytes differ');
  } finally {
    r = await s.end();
  }
  // http.server logs each request on stderr (unbuffered) as it answers it.
  assert.match(r.stderr!.toString(), /"GET \/blob\.bin HTTP\/1\.1" 200/, tail(r.stderr));
  assert.ok(await refused(hostPort), `127.0.0.1:${hostPort} still accepts connections after the sandbox ended`);
});

test(`the CLI: --publish prints the listening line; curl fetches through it; SIGTERM ends it [${PLATFORM}]`, { timeout: 60_000, skip: noImage || noCurl }, async () => {
  const hostPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'run', '--platform', PLATFORM, '--image', `${NET},ro`, '--net', 'none', '--publish', `${hostPort}:8000`, '--timeout', '60', '--', '/usr/bin/python3', '-m', 'http.server', '8000', '--directory', '/srv/www'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const line = `mapvisor: tcp port 8000 is listening, published at 127.0.0.1:${hostPort}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line "${line}" on stderr in 20 s:\n${stderr}`)), 20_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.split('\n').includes(line)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`the CLI exited ${code} before the listening line:\n${tail(stderr)}`));
      });
    });
    assert.equal((await curl(`http://127.0.0.1:${hostPort}/hello.txt`)).toString(), readFileSync(join(WWW, 'hello.txt'), 'utf8'));
  } finally {
    child.kill('SIGTERM');
  }
  // The CLI forwards SIGTERM to python, which dies of it: 128 + 15.
  assert.equal(await exited, 143, tail(stderr));
  assert.ok(await refused(hostPort), `127.0.0.1:${hostPort} still accepts connections after the CLI exited`);
});

test(`redis-server and redis-benchmark in one sandbox, over its loopback [${PLATFORM}]`, { timeout: 90_000, skip: noImage }, async () => {
  // The server in the background (its log on stderr); redis-cli ping until it answers (or the server is
  // gone); the benchmark; a clean shutdown. The script's status: the benchmark's, then the server's.
  const script = [
    `redis-server ${REDIS_ARGS.map((a) => (a === '' ? "''" : a)).join(' ')} >&2 & srv=$!`,
    'i=0',
    'until redis-cli -p 6379 ping >/dev/null 2>&1; do',
    '  kill -0 $srv 2>/dev/null || { echo "redis-server exited before answering" >&2; wait $srv; exit 3; }',
    '  i=$((i+1)); [ $i -lt 200 ] || { echo "redis-server did not answer PING in 20 s" >&2; exit 4; }',
    '  sleep 0.1',
    'done',
    'redis-benchmark -p 6379 -q -n 2000 -t set,get -P 1; rc=$?',
    'redis-cli -p 6379 shutdown nosave >/dev/null 2>&1',
    'wait $srv; srv_rc=$?',
    'echo "benchmark=$rc server=$srv_rc"',
    '[ $rc -eq 0 ] && exit $srv_rc; exit $rc',
  ].join('\n');
  const r = await Sandbox.run('/bin/sh', ['-c', script], { image: `${NET},ro`, net: 'none', stdout: 'pipe', stderr: 'pipe', timeout: 80, platform: PLATFORM });
  // redis-benchmark rewrites a progress line with \r; the results are the last pieces.
  const out = r.stdout!.toString();
  const lines = out.split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean);
  const err = `${tail(out.replace(/\r/g, '\n'))}\n--- stderr\n${tail(r.stderr)}${r.reason ? `\n[${r.reason}]` : ''}`;
  assert.equal(r.status, 0, err);
  for (const op of ['SET', 'GET']) {
    const m = lines.map((l) => new RegExp(`^${op}: ([\\d.]+) requests per second`).exec(l)).find(Boolean);
    assert.ok(m && Number(m[1]) > 0, `no "${op}: N requests per second" line\n${err}`);
  }
  assert.ok(lines.includes('benchmark=0 server=0'), err);
});

test(`redis-server in the sandbox, driven from the host through --publish (RESP client) [${PLATFORM}]`, { timeout: 60_000, skip: noImage }, async () => {
  const hostPort = await freePort();
  const s = serve('/usr/bin/redis-server', REDIS_ARGS, { publish: [{ hostPort, port: 6379 }] });
  try {
    // A connection made as soon as the sandbox runs, before redis listens: it waits in the host's backlog.
    await s.sb.whenReady();
    const early = expectReply(hostPort, resp('PING'), '+PONG\r\n', 'PING sent before redis-server listened').then(
      () => null,
      (e: Error) => e,
    );
    const l = await s.listening(6379, 20_000);
    assert.equal(l.hostPort, hostPort, JSON.stringify(l));
    const earlyError = await early;
    if (earlyError) throw earlyError;
    await expectReply(hostPort, Buffer.concat([resp('SET', 'k', 'v'), resp('GET', 'k'), resp('GET', 'missing')]), '+OK\r\n$1\r\nv\r\n$-1\r\n', 'SET k v; GET k; GET missing');
    // Eight connections at once, each INCRing one counter 50 times in one write: 50 integer replies each.
    const incrs = Buffer.concat(Array.from({ length: 50 }, () => resp('INCR', 'counter')));
    const lines = (b: Buffer): string[] => b.toString('latin1').split('\r\n').slice(0, -1);
    const replies = await Promise.all(Array.from({ length: 8 }, () => exchange(hostPort, incrs, (b) => lines(b).length >= 50, 20_000)));
    for (const r of replies) assert.ok(lines(r).every((l) => /^:\d+$/.test(l)), JSON.stringify(r.toString('latin1').slice(0, 120)));
    await expectReply(hostPort, resp('GET', 'counter'), '$3\r\n400\r\n', 'GET counter after 8 × 50 INCR');
    // A value far larger than a socket buffer, in and out.
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131 + (i >> 12)) & 0xff;
    await expectReply(hostPort, resp('SET', 'big', big), '+OK\r\n', 'SET big (1 MiB)');
    await expectReply(hostPort, resp('GET', 'big'), Buffer.concat([Buffer.from(`$${big.length}\r\n`), big, Buffer.from('\r\n')]), 'GET big (1 MiB)');
  } finally {
    await s.end();
  }
  assert.ok(await refused(hostPort), `127.0.0.1:${hostPort} still accepts connections after the sandbox ended`);
});

/* ------------------------------------------------------------------------------------------------ */

const BAD: Array<{ args: string[]; names: string }> = [
  { args: ['--publish', '99999:80'], names: '99999' },
  { args: ['--publish', '8080:99999'], names: '99999' },
  { args: ['--publish', 'abc'], names: 'abc' },
  { args: ['--net', 'bogus'], names: 'bogus' },
];

for (const { args, names } of BAD) {
  test(`the CLI refuses ${args.join(' ')}: exit 125, one line naming it [${PLATFORM}]`, { timeout: 30_000, skip: existsSync(HELLO) ? false : 'test/guest/hello.c not built' }, () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--platform', PLATFORM, ...args, '--', HELLO], { encoding: 'utf8', timeout: 20_000 });
    const err = r.stderr.trim();
    assert.equal(r.status, 125, `exit ${r.status}; stderr: ${err}`);
    assert.equal(r.stdout, '', 'the program must not run');
    assert.equal(err.split('\n').length, 1, `more than one line:\n${err}`);
    assert.match(err, /^mapvisor: /);
    assert.ok(err.includes(names), `the message does not name ${names}: ${err}`);
    assert.doesNotMatch(err, /Unknown option/, 'the option itself must be known');
  });
}

test(`the CLI accepts --net none and --publish for a program that never listens [${PLATFORM}]`, { timeout: 30_000, skip: existsSync(HELLO) ? false : 'test/guest/hello.c not built' }, async () => {
  const hostPort = await freePort();
  const r = spawnSync(process.execPath, [CLI, 'run', '--platform', PLATFORM, '--net', 'none', '--publish', `${hostPort}:80`, '--publish', `${await freePort()}:81`, '--', HELLO], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /hello/i);
  assert.ok(await refused(hostPort), `127.0.0.1:${hostPort} still accepts connections after the CLI exited`);
});
