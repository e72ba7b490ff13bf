/**
 * npm run bench:net — networking, natively, under bwrap (when installed) and in mapvisor through its CLI
 * on every platform that works here (--platform kvm|process|all; default all), all in the same run:
 *   - redis-benchmark -q -n 20000 -t set,get against redis-server, both in the environment, over its
 *     loopback (bwrap with --unshare-all, so loopback only; mapvisor with --net none);
 *   - the same benchmark from the host against redis-server in mapvisor through --publish (its native
 *     figure is the first row's: client and server on the host);
 *   - a one-byte ping-pong between two threads of bench/guest/tcprtt.c (static; built here into
 *     .cache/bench/tcprtt) over TCP on 127.0.0.1 and on ::1, an AF_UNIX socketpair, and a pipe pair (no
 *     sockets: what the hand-off between two threads costs anyway), timed inside the program;
 *   - the environment's getppid round trip (.cache/guest/syscall-loop, bench:core's method: N calls minus
 *     10 calls, over N − 10), the system calls one TCP round trip makes (mapvisor's --stats, the
 *     difference of two runs; 4 natively by construction), and their product: what the TCP round trip
 *     would cost if each of its system calls cost no more than getppid;
 *   - getppid in a program whose second thread waits (tcprtt served): on mapvisor every call of a
 *     program with threads is handed to the kernel's thread, as the ping-pong's are, so this is the
 *     floor the issue's target compares the TCP round trip with (within 3× of served getppid × calls).
 * Native and bwrap run the very files of .cache/images/net.img (built by scripts/net-images.mjs when
 * missing), extracted with debugfs rdump: natively through the image's own dynamic loader, under bwrap
 * as the root. The runs of one row are interleaved across the environments and the figure is the
 * median. An environment that fails a row says `failed: <the line that says why>` in its cell and the
 * bench carries on. --quick: fewer and shorter runs. Prints a Markdown table. Not a test.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MapvisorError } from '../src/errors.js';
import { activityLine, fmt, freePort, fx, hostActivity, pickPlatforms, platformArg, platformLines, type PlatformName } from '../src/bench/host.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const IMAGE = join(ROOT, '.cache', 'images', 'net.img');
const TCPRTT_SRC = join(ROOT, 'bench', 'guest', 'tcprtt.c');
const TCPRTT = join(ROOT, '.cache', 'bench', 'tcprtt');
const SYSCALL_LOOP = join(ROOT, '.cache', 'guest', 'syscall-loop');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');

/** redis-benchmark's -n. */
const REQUESTS = quick ? 5000 : 20_000;
/** Runs per row (the figure is their median). */
const RUNS = quick ? 1 : 3;
const RTT_RUNS = quick ? 3 : 5;
/** A timed loop (ping-pong, getppid) aims at this much time per run. */
const TARGET_US = quick ? 3e5 : 1e6;
/** mapvisor's own limit on one run (--timeout, s). */
const VM_TIMEOUT_S = quick ? 120 : 300;

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const progress = (s: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s.slice(0, (process.stderr.columns ?? 100) - 1)}`);
};
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const mtime = (p: string): number => statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? -1;

/**
 * The line of a failed run's output that says why: the first that names an error (a program's own
 * message, or redis-server's "unable to bind socket, errno: 38" among its log lines), else the last
 * line; from a Node stack trace, its error line.
 */
function why(s: string): string {
  const lines = s.split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean);
  if (/^node:internal\/|^file:\/\/|^\/.*\.js:\d+$/.test(lines[0] ?? '')) return lines.find((l) => /^\w*Error\b/.test(l)) ?? lines[0]!;
  return lines.find((l) => /errno|error|fail|refused|not implemented|denied|unknown option|cannot|exited|did not/i.test(l)) ?? lines[lines.length - 1] ?? '';
}

type Outcome = { ok: true; stdout: string; stderr: string; ms: number } | { ok: false; why: string };

function run(cmd: string[], timeoutMs: number): Outcome {
  const t0 = nowMs();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, maxBuffer: 64 << 20 });
  const ms = nowMs() - t0;
  if (r.error) return { ok: false, why: (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `timed out after ${timeoutMs / 1000} s` : r.error.message };
  if (r.status !== 0) return { ok: false, why: why(r.stderr) || why(r.stdout) || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`) };
  return { ok: true, stdout: r.stdout, stderr: r.stderr, ms };
}

/* ------------------------------------------------------------------------------------------------
 * Environments
 * ---------------------------------------------------------------------------------------------- */

interface Env {
  id: string;
  label: string;
  platform?: PlatformName;
  /** The command line running `sh -c SCRIPT` with the image's redis tools, or null (see skips). */
  shell: ((script: string) => string[]) | null;
  /** The port redis-server listens on inside (native: a free host port). */
  redisPort: number;
  /** The command line running a static host program. */
  host: (args: string[]) => string[];
  /** Wall-clock limit of one run (ms). */
  timeoutMs: number;
}

/**
 * Shell functions redis_server (exec'd: $! is the server), redis_cli and redis_benchmark: the tools by
 * name, as the image's PATH has them (bwrap and mapvisor run the image's files).
 */
const IMAGE_PREAMBLE = ['redis_server() { exec redis-server "$@"; }', 'redis_cli() { redis-cli "$@"; }', 'redis_benchmark() { redis-benchmark "$@"; }'].join('\n');

/** The same tools natively: the extracted image's files through its own dynamic loader. */
function nativePreamble(x: string): string {
  const lib = `${x}/usr/lib/x86_64-linux-gnu`;
  const via = (prog: string): string => `"${lib}/ld-linux-x86-64.so.2" --library-path "${lib}" "${x}/usr/bin/${prog}"`;
  return [`redis_server() { exec ${via('redis-server')} "$@"; }`, `redis_cli() { ${via('redis-cli')} "$@"; }`, `redis_benchmark() { ${via('redis-benchmark')} "$@"; }`].join('\n');
}

async function environments(platforms: PlatformName[], extracted: string | null, imageWhy: string | null, skips: Array<{ what: string; why: string }>): Promise<Env[]> {
  const envs: Env[] = [];
  const nativePre = extracted ? nativePreamble(extracted) : '';
  envs.push({
    id: 'native',
    label: 'native',
    shell: extracted ? (s) => ['/bin/sh', '-c', `${nativePre}\n${s}`] : null,
    redisPort: await freePort(),
    host: (a) => a,
    timeoutMs: 180_000,
  });
  if (!has('bwrap')) skips.push({ what: 'bwrap (bubblewrap)', why: 'not installed (apt-get install bubblewrap)' });
  else {
    const common = ['--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--'];
    const host = (a: string[]): string[] => ['bwrap', '--ro-bind', '/', '/', ...common, ...a];
    const probe = run(host(['/bin/true']), 30_000);
    if (!probe.ok) skips.push({ what: 'bwrap', why: `cannot run /bin/true: ${probe.why}` });
    else {
      envs.push({
        id: 'bwrap',
        label: 'bwrap',
        shell: extracted ? (s) => ['bwrap', '--ro-bind', extracted, '/', ...common, '/bin/sh', '-c', `${IMAGE_PREAMBLE}\n${s}`] : null,
        redisPort: 6379,
        host,
        timeoutMs: 180_000,
      });
    }
  }
  for (const p of platforms) {
    const cli = [process.execPath, CLI, 'run', '--platform', p, '--net', 'none', '--timeout', String(VM_TIMEOUT_S)];
    envs.push({
      id: p,
      label: `mapvisor ${p}`,
      platform: p,
      shell: imageWhy ? null : (s) => [...cli, '--image', `${IMAGE},ro`, '--', '/bin/sh', '-c', `${IMAGE_PREAMBLE}\n${s}`],
      redisPort: 6379,
      host: (a) => [...cli, '--', ...a],
      timeoutMs: (VM_TIMEOUT_S + 30) * 1000,
    });
  }
  if (!extracted) skips.push({ what: 'redis rows, native and bwrap', why: imageWhy ?? 'the image could not be extracted' });
  if (imageWhy) skips.push({ what: 'redis rows, mapvisor', why: imageWhy });
  return envs;
}

/* ------------------------------------------------------------------------------------------------
 * redis-benchmark
 * ---------------------------------------------------------------------------------------------- */

/** SET and GET requests per second from redis-benchmark -q output (progress lines end in \r). */
function rates(out: string): { set: number; get: number } | string {
  const lines = out.split(/[\r\n]+/).map((l) => l.trim());
  const rate = (op: string): number | null => {
    for (const l of lines) {
      const m = new RegExp(`^${op}: ([\\d.]+) requests per second`).exec(l);
      if (m) return Number(m[1]);
    }
    return null;
  };
  const set = rate('SET');
  const get = rate('GET');
  return set !== null && get !== null ? { set, get } : `no SET/GET requests-per-second lines in its output: ${why(out)}`;
}

/** The script: redis-server in the background, PING until it answers, the benchmark, a clean shutdown. */
function redisScript(port: number): string {
  return [
    `redis_server --save '' --appendonly no --port ${port} >&2 & srv=$!`,
    'i=0',
    `until redis_cli -p ${port} ping >/dev/null 2>&1; do`,
    '  kill -0 $srv 2>/dev/null || { echo "redis-server exited before answering PING" >&2; exit 3; }',
    '  i=$((i+1)); [ $i -lt 300 ] || { echo "redis-server did not answer PING in 30 s" >&2; kill $srv; exit 4; }',
    '  sleep 0.1',
    'done',
    `redis_benchmark -p ${port} -q -n ${REQUESTS} -t set,get; rc=$?`,
    `redis_cli -p ${port} shutdown nosave >/dev/null 2>&1`,
    'wait $srv',
    'exit $rc',
  ].join('\n');
}

function redisInside(env: Env): { set: number; get: number } | string {
  if (!env.shell) return 'no image';
  const r = run(env.shell(redisScript(env.redisPort)), env.timeoutMs);
  return r.ok ? rates(r.stdout) : r.why;
}

/**
 * redis-server in mapvisor with --publish HOSTPORT:6379; redis-benchmark natively (the extracted
 * image's) against 127.0.0.1:HOSTPORT once the CLI says the port listens; then SIGTERM (redis-server
 * shuts down on it).
 */
async function redisPublished(platform: PlatformName, nativePre: string): Promise<{ set: number; get: number } | string> {
  const hostPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'run', '--platform', platform, '--net', 'none', '--publish', `${hostPort}:6379`, '--timeout', String(VM_TIMEOUT_S), '--image', `${IMAGE},ro`, '--', '/usr/bin/redis-server', '--save', '', '--appendonly', 'no', '--port', '6379'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const line = `mapvisor: tcp port 6379 is listening, published at 127.0.0.1:${hostPort}`;
  try {
    const up = await new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => resolve(`no "${line}" on its stderr in 60 s`), 60_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.split('\n').includes(line)) {
          clearTimeout(timer);
          resolve(null);
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        resolve(`the CLI exited ${code} before the port listened: ${why(stderr)}`);
      });
    });
    if (up) return up;
    const r = run(['/bin/sh', '-c', `${nativePre}\nredis_benchmark -h 127.0.0.1 -p ${hostPort} -q -n ${REQUESTS} -t set,get`], VM_TIMEOUT_S * 1000);
    return r.ok ? rates(r.stdout) : r.why;
  } finally {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}

/* ------------------------------------------------------------------------------------------------
 * Ping-pong and system calls
 * ---------------------------------------------------------------------------------------------- */

/** tcprtt, built when missing or older than its source: null, or why it cannot be. */
function buildTcprtt(): string | null {
  if (mtime(TCPRTT) >= mtime(TCPRTT_SRC)) return null;
  mkdirSync(dirname(TCPRTT), { recursive: true });
  const tmp = `${TCPRTT}.tmp${process.pid}`;
  const r = spawnSync('gcc', ['-O2', '-static', '-Wall', '-pthread', '-o', tmp, TCPRTT_SRC], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    return r.error ? `cannot run gcc (${r.error.message}): apt-get install gcc libc6-dev` : `gcc failed on bench/guest/tcprtt.c: ${why(r.stderr)}`;
  }
  renameSync(tmp, TCPRTT);
  return null;
}

/** Ping-pong rounds per run, per mode and environment: chosen by a first short run (not counted). */
const rounds = new Map<string, number>();

function pingPong(env: Env, mode: string): number | string {
  const once = (n: number): number | string => {
    const r = run(env.host([TCPRTT, mode, String(n)]), env.timeoutMs);
    if (!r.ok) return r.why;
    const m = /us_per_rtt ([\d.]+)/.exec(r.stdout);
    return m ? Number(m[1]) : `no us_per_rtt in its output: ${why(r.stdout)}`;
  };
  const key = `${mode}/${env.id}`;
  let n = rounds.get(key);
  if (n === undefined) {
    const probe = once(100);
    if (typeof probe === 'string') return probe;
    n = Math.max(100, Math.min(200_000, Math.round(TARGET_US / Math.max(probe, 0.1))));
    rounds.set(key, n);
  }
  return once(n);
}

/**
 * getppid calls per syscall-loop run, per environment: the first runs (not counted) start at 10,000
 * calls and grow tenfold until the calls take 100 ms beyond the start-up (whose noise is tens of ms in
 * mapvisor), then the count is scaled to TARGET_US.
 */
const calls = new Map<string, number>();

function syscallRoundTrip(env: Env): number | string {
  const timed = (n: number): number | string => {
    const r = run(env.host([SYSCALL_LOOP, String(n)]), env.timeoutMs);
    return r.ok ? r.ms : r.why;
  };
  const extraMs = (n: number): number | string => {
    const small = timed(10);
    if (typeof small === 'string') return small;
    const big = timed(n);
    if (typeof big === 'string') return big;
    return big - small;
  };
  let n = calls.get(env.id);
  if (n === undefined) {
    let probe = 10_000;
    for (;;) {
      const ms = extraMs(probe);
      if (typeof ms === 'string') return ms;
      if (ms >= 100 || probe >= 100_000_000) {
        n = Math.max(10_000, Math.round((TARGET_US * probe) / Math.max(ms * 1000, 1)));
        break;
      }
      probe *= 10;
    }
    calls.set(env.id, n);
  }
  const ms = extraMs(n);
  return typeof ms === 'string' ? ms : (ms * 1000) / (n - 10);
}

/** System calls per round trip of `mode` in mapvisor: --stats totals of two runs, their difference over the rounds'. */
function syscallsPerRoundTrip(env: Env, mode: string): number | string {
  const total = (n: number): number | string => {
    const cmd = env.host([TCPRTT, mode, String(n)]);
    const r = run([...cmd.slice(0, cmd.indexOf('--')), '--stats', ...cmd.slice(cmd.indexOf('--'))], env.timeoutMs);
    if (!r.ok) return r.why;
    const m = /mapvisor stats: (\d+) system calls/.exec(r.stderr);
    return m ? Number(m[1]) : `no "mapvisor stats: N system calls" line: ${why(r.stderr)}`;
  };
  const a = total(100);
  if (typeof a === 'string') return a;
  const b = total(300);
  if (typeof b === 'string') return b;
  return (b - a) / 200;
}

/* ------------------------------------------------------------------------------------------------
 * Rows and the table
 * ---------------------------------------------------------------------------------------------- */

/** How a row's figures compare with native's: a rate (native ÷ it), a time (it ÷ native), or not at all. */
type Kind = 'rate' | 'time' | 'count';
interface RowOut {
  name: string;
  unit: string;
  kind: Kind;
  cells: Map<string, { value: number } | { failed: string } | { note: string }>;
}

/** `rounds` interleaved runs of `sample` over the environments; the median per environment, or why it failed. */
async function interleaved<T>(what: string, envs: Env[], runs: number, sample: (env: Env) => Promise<T | string> | T | string, pick: (t: T) => Record<string, number>): Promise<Map<string, Map<string, number> | string>> {
  const samples = new Map<string, Map<string, number[]>>();
  const failed = new Map<string, string>();
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < envs.length; k++) {
      const env = envs[(k + r) % envs.length]!;
      if (failed.has(env.id)) continue; // one failure is enough: no retries of a broken row
      progress(`bench:net: ${what} [${r + 1}/${runs}] ${env.label}`);
      const v = await sample(env);
      if (typeof v === 'string') {
        failed.set(env.id, v);
        continue;
      }
      for (const [key, x] of Object.entries(pick(v))) {
        if (!Number.isFinite(x)) continue;
        const m = samples.get(env.id) ?? new Map<string, number[]>();
        m.set(key, [...(m.get(key) ?? []), x]);
        samples.set(env.id, m);
      }
    }
  }
  const out = new Map<string, Map<string, number> | string>();
  for (const env of envs) {
    if (failed.has(env.id)) out.set(env.id, failed.get(env.id)!);
    else if (samples.has(env.id)) out.set(env.id, new Map([...samples.get(env.id)!].map(([k, xs]) => [k, median(xs)])));
  }
  return out;
}

function cellsOf(res: Map<string, Map<string, number> | string>, key: string): RowOut['cells'] {
  const cells: RowOut['cells'] = new Map();
  for (const [env, v] of res) {
    if (typeof v === 'string') cells.set(env, { failed: v });
    else if (v.has(key)) cells.set(env, { value: v.get(key)! });
  }
  return cells;
}

async function main(): Promise<void> {
  if (!existsSync(SYSCALL_LOOP)) {
    console.error('bench:net: fixtures missing; run node scripts/fixtures.mjs');
    process.exit(1);
  }
  let pick;
  try {
    pick = pickPlatforms(platformArg(argv));
  } catch (e) {
    console.error(`bench:net: ${e instanceof MapvisorError ? e.oneLine() : (e as Error).message}`);
    process.exit(2);
  }
  const skips: Array<{ what: string; why: string }> = [];
  const activity = hostActivity();

  // The image (a no-op when up to date), and its files on the host for native and bwrap.
  let imageWhy: string | null = null;
  let extracted: string | null = null;
  try {
    progress('bench:net: checking .cache/images/net.img (scripts/net-images.mjs)');
    const mod = (await import(pathToFileURL(join(ROOT, 'scripts', 'net-images.mjs')).href)) as { netImages: (o: { quiet: boolean }) => Promise<unknown> };
    await mod.netImages({ quiet: true });
  } catch (e) {
    imageWhy = `no net image: ${(e as Error).message.split('\n')[0]}`;
  }
  if (!imageWhy) {
    progress('bench:net: extracting net.img for native and bwrap (debugfs rdump)');
    const dir = mkdtempSync(join(tmpdir(), 'mapvisor-bench-net-'));
    const r = spawnSync('debugfs', ['-R', `rdump / ${dir}`, IMAGE], { encoding: 'utf8' });
    if (r.error) skips.push({ what: 'extracting net.img', why: `cannot run debugfs (${r.error.message}); install e2fsprogs` });
    else if (!existsSync(join(dir, 'usr', 'bin', 'redis-benchmark'))) skips.push({ what: 'extracting net.img', why: `debugfs rdump left no usr/bin/redis-benchmark: ${why(r.stderr)}` });
    else extracted = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const envs = await environments(pick.run, extracted, imageWhy, skips);
  const tcprttWhy = buildTcprtt();
  if (tcprttWhy) skips.push({ what: 'ping-pong rows', why: tcprttWhy });

  const rows: RowOut[] = [];

  // redis-benchmark, client and server in the environment.
  const redisEnvs = envs.filter((e) => e.shell);
  if (redisEnvs.length) {
    for (const env of redisEnvs) {
      progress(`bench:net: warming up ${env.label}`);
      run(env.shell!('redis_cli --version >/dev/null'), env.timeoutMs);
    }
    const inside = await interleaved('redis-benchmark inside', redisEnvs, RUNS, (env) => redisInside(env), (t) => ({ set: t.set, get: t.get }));
    rows.push({ name: `redis-benchmark -n ${REQUESTS} SET, server and client inside`, unit: 'req/s', kind: 'rate', cells: cellsOf(inside, 'set') });
    rows.push({ name: `redis-benchmark -n ${REQUESTS} GET, server and client inside`, unit: 'req/s', kind: 'rate', cells: cellsOf(inside, 'get') });

    // From the host through --publish (mapvisor only; native is the row above's).
    const vmEnvs = envs.filter((e) => e.platform && e.shell);
    if (vmEnvs.length && extracted) {
      const hostTools = nativePreamble(extracted);
      const pub = await interleaved('redis-benchmark through --publish', vmEnvs, RUNS, (env) => redisPublished(env.platform!, hostTools), (t) => ({ set: t.set, get: t.get }));
      for (const [op, key] of [['SET', 'set'], ['GET', 'get']] as const) {
        const cells = cellsOf(pub, key);
        const nat = rows.find((r) => r.name.includes(` ${op}, server and client inside`))!.cells.get('native');
        if (nat) cells.set('native', nat);
        if (envs.some((e) => e.id === 'bwrap')) cells.set('bwrap', { note: '—' });
        rows.push({ name: `redis-benchmark -n ${REQUESTS} ${op}, client on the host through --publish (native: the row above's)`, unit: 'req/s', kind: 'rate', cells });
      }
    } else if (!extracted) skips.push({ what: 'redis through --publish', why: 'the benchmark runs from the extracted image, which is missing' });
  }

  // Ping-pong between two threads.
  const rtt = new Map<string, RowOut>();
  if (!tcprttWhy) {
    const modes: Array<[string, string]> = [
      ['tcp', 'TCP 127.0.0.1 one-byte round trip (2 threads)'],
      ['tcp6', 'TCP ::1 one-byte round trip (2 threads)'],
      ['unix', 'AF_UNIX socketpair one-byte round trip (2 threads)'],
      ['pipe', 'pipe pair one-byte round trip (2 threads; no sockets: the reference)'],
    ];
    for (const [mode, name] of modes) {
      const res = await interleaved(`${mode} ping-pong`, envs, RTT_RUNS, (env) => pingPong(env, mode), (v) => ({ us: v }));
      const row: RowOut = { name, unit: 'µs', kind: 'time', cells: cellsOf(res, 'us') };
      rtt.set(mode, row);
      rows.push(row);
    }
  }

  // The system-call floor of a TCP round trip.
  const sc = await interleaved('getppid round trip', envs, RTT_RUNS, (env) => syscallRoundTrip(env), (v) => ({ us: v }));
  const scRow: RowOut = { name: 'getppid round trip (N calls minus 10 calls)', unit: 'µs', kind: 'time', cells: cellsOf(sc, 'us') };
  rows.push(scRow);
  if (!tcprttWhy) {
    const count: RowOut = { name: 'system calls per TCP round trip (mapvisor: --stats; native and bwrap: by construction)', unit: '', kind: 'count', cells: new Map() };
    for (const env of envs) {
      if (!env.platform) {
        count.cells.set(env.id, { value: 4 });
        continue;
      }
      progress(`bench:net: counting system calls per round trip on ${env.label}`);
      const v = syscallsPerRoundTrip(env, 'tcp');
      count.cells.set(env.id, typeof v === 'number' ? { value: v } : { failed: v });
    }
    rows.push(count);
    const floor: RowOut = { name: 'getppid round trip × system calls per TCP round trip (the floor; share of the measured TCP round trip)', unit: 'µs', kind: 'count', cells: new Map() };
    for (const env of envs) {
      const s = scRow.cells.get(env.id);
      const c = count.cells.get(env.id);
      const t = rtt.get('tcp')!.cells.get(env.id);
      if (s && 'value' in s && c && 'value' in c) {
        const f = s.value * c.value;
        floor.cells.set(env.id, t && 'value' in t && t.value > 0 ? { note: `${fmt(f)} µs (${((100 * f) / t.value).toFixed(0)}%)` } : { value: f });
      } else floor.cells.set(env.id, { failed: s && 'failed' in s ? s.failed : c && 'failed' in c ? c.failed : 'not measured' });
    }
    rows.push(floor);
    // In a program with threads every call is served (handed to the kernel's thread), as a ping-pong's
    // are: the floor that the issue's target is measured against.
    const served = await interleaved('getppid with a second thread', envs, RTT_RUNS, (env) => pingPong(env, 'served'), (v) => ({ us: v }));
    const servedRow: RowOut = { name: 'getppid round trip while a second thread waits (a served call)', unit: 'µs', kind: 'time', cells: cellsOf(served, 'us') };
    rows.push(servedRow);
    const target: RowOut = { name: 'TCP round trip ÷ (served getppid × system calls per round trip) (target: within 3)', unit: '', kind: 'count', cells: new Map() };
    for (const env of envs) {
      if (!env.platform) {
        target.cells.set(env.id, { note: '—' }); // (a target for mapvisor: natively a blocking hand-off is not a served call)
        continue;
      }
      const s1 = servedRow.cells.get(env.id);
      const c = count.cells.get(env.id);
      const t = rtt.get('tcp')!.cells.get(env.id);
      if (s1 && 'value' in s1 && c && 'value' in c && t && 'value' in t && s1.value > 0) target.cells.set(env.id, { note: `${(t.value / (s1.value * c.value)).toFixed(2)}` });
      else target.cells.set(env.id, { failed: 'not measured' });
    }
    rows.push(target);
  }
  progress('');

  const out: string[] = [...platformLines(pick), ''];
  out.push(`| measurement | ${envs.map((e) => e.label).join(' | ')} |`);
  out.push(`|---|${envs.map(() => '---:').join('|')}|`);
  for (const row of rows) {
    const nat = row.cells.get('native');
    const natV = nat && 'value' in nat ? nat.value : undefined;
    const unit = row.unit ? ` ${row.unit}` : '';
    const cell = (env: Env): string => {
      const c = row.cells.get(env.id);
      if (!c) return '—';
      if ('note' in c) return c.note;
      if ('failed' in c) return `failed: ${c.failed.replace(/\|/g, '\\|')}`;
      if (row.kind === 'count') return `${Number.isInteger(c.value) ? String(c.value) : c.value.toFixed(2)}${unit}`;
      if (env.id === 'native' || natV === undefined || !(natV > 0) || !(c.value > 0)) return `${fmt(c.value)}${unit}`;
      return `${fmt(c.value)}${unit} (${fx(row.kind === 'rate' ? natV / c.value : c.value / natV)})`;
    };
    out.push(`| ${row.name} | ${envs.map(cell).join(' | ')} |`);
  }
  const used = envs.map((e) => `${e.label} ${['tcp', 'tcp6', 'unix', 'pipe'].map((m) => rounds.get(`${m}/${e.id}`) ?? '—').join('/')}`);
  out.push(
    '',
    `(×: how many times native's time per request or per round trip, same run: native's rate ÷ the rate, or the time ÷ native's. ` +
      `Medians of ${RUNS} interleaved runs (redis) and ${RTT_RUNS} (the rest). Ping-pong rounds per run, tcp/tcp6/unix/pipe: ${used.join(', ')}; ` +
      `getppid calls per run: ${envs.map((e) => `${e.label} ${calls.get(e.id) ?? '—'}`).join(', ')}.)`,
  );
  if (skips.length) {
    out.push('', 'Not measured:');
    for (const s of skips) out.push(`- ${s.what}: ${s.why}`);
  }
  out.push('', activityLine(activity(), cpus().length));
  console.log(out.join('\n'));
}

await main();
