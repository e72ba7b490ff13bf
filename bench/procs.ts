/**
 * npm run bench:procs — the cost of making processes, natively, under bwrap (when installed) and in
 * mapvisor through its CLI on every platform that works here (--platform kvm|process|all; default all),
 * all in the same run:
 *   - fork + _exit + wait, fork + execve /bin/true + wait and vfork + execve /bin/true + wait, per
 *     round, timed inside test/guest/forkbench.c (its start-up is not in the figure);
 *   - bash running `for i in $(seq 200); do /bin/true; done` (with a counter, so that a loop whose forks
 *     failed is not taken for a fast one), wall time of the whole command, and the same minus the
 *     start-up of `bash -c true`.
 * Native and bwrap run the host's /bin/bash and /bin/true and .cache/guest/forkbench; mapvisor runs the
 * same forkbench and Debian's bash and coreutils from .cache/images/shell.img (built by
 * scripts/proc-images.mjs when missing). The runs of one row are interleaved across the environments and
 * the figure is the median. An environment that fails a row says `failed: <first line of stderr>` in its
 * cell and the bench carries on. --quick: fewer and shorter runs. Prints a Markdown table. Not a test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MapvisorError } from '../src/errors.js';
import { activityLine, fmt, fx, hostActivity, pickPlatforms, platformArg, platformLines } from '../src/bench/host.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const FORKBENCH = join(ROOT, '.cache', 'guest', 'forkbench');
const IMAGE = join(ROOT, '.cache', 'images', 'shell.img');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const progress = (s: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s.slice(0, (process.stderr.columns ?? 100) - 1)}`);
};
const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** The loop of row (c); it prints how many /bin/true runs succeeded. */
const LOOP = 'n=0; for i in $(seq 200); do /bin/true && n=$((n+1)); done; echo $n';

/* ------------------------------------------------------------------------------------------------
 * Environments
 * ---------------------------------------------------------------------------------------------- */

interface Env {
  id: string;
  label: string;
  /** The command line that runs `args` (a program path as this environment sees it, and its arguments). */
  wrap: (args: string[]) => string[];
  /** Paths as the program sees them. */
  forkbench: string;
  bash: string;
  /** Wall-clock limit of one run (ms). */
  timeoutMs: number;
}

type Outcome = { ok: true; stdout: string; ms: number } | { ok: false; why: string };

/** First non-empty line of `s`; from a Node stack trace, its error line rather than the source location. */
function firstLine(s: string): string {
  const lines = s.split('\n').map((l) => l.trim()).filter(Boolean);
  if (/^node:internal\/|^file:\/\/|^\/.*\.js:\d+$/.test(lines[0] ?? '')) return lines.find((l) => /^\w*Error\b/.test(l)) ?? lines[0]!;
  return lines[0] ?? '';
}

function run(env: Env, args: string[]): Outcome {
  const cmd = env.wrap(args);
  const t0 = nowMs();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: env.timeoutMs, maxBuffer: 16 << 20 });
  const ms = nowMs() - t0;
  if (r.error) return { ok: false, why: (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' ? `timed out after ${env.timeoutMs / 1000} s` : r.error.message };
  if (r.status !== 0) return { ok: false, why: firstLine(r.stderr) || firstLine(r.stdout) || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`) };
  return { ok: true, stdout: r.stdout, ms };
}

/** mapvisor's own limit on one run (--timeout, s): a hang costs this much, a working run takes seconds. */
const VM_TIMEOUT_S = quick ? 60 : 180;

function environments(platforms: string[], skips: Array<{ what: string; why: string }>): Env[] {
  const envs: Env[] = [{ id: 'native', label: 'native', wrap: (a) => a, forkbench: FORKBENCH, bash: '/bin/bash', timeoutMs: 120_000 }];
  if (!has('bwrap')) skips.push({ what: 'bwrap (bubblewrap)', why: 'not installed (apt-get install bubblewrap)' });
  else {
    const bwrap = ['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--'];
    const env: Env = { id: 'bwrap', label: 'bwrap', wrap: (a) => [...bwrap, ...a], forkbench: FORKBENCH, bash: '/bin/bash', timeoutMs: 120_000 };
    const probe = run(env, ['/bin/true']);
    if (probe.ok) envs.push(env);
    else skips.push({ what: 'bwrap', why: `cannot run /bin/true: ${probe.why}` });
  }
  for (const p of platforms) {
    envs.push({
      id: p,
      label: `mapvisor ${p}`,
      wrap: (a) => [process.execPath, CLI, 'run', '--platform', p, '--image', `${IMAGE},ro`, '--timeout', String(VM_TIMEOUT_S), '--', ...a],
      forkbench: '/guest/forkbench',
      bash: '/bin/bash',
      timeoutMs: (VM_TIMEOUT_S + 30) * 1000,
    });
  }
  return envs;
}

/* ------------------------------------------------------------------------------------------------
 * Rows
 * ---------------------------------------------------------------------------------------------- */

interface Row {
  id: string;
  name: string;
  unit: 'µs' | 'ms';
  /** One sample: the figure, or why it failed. */
  sample: (env: Env) => number | string;
}

/**
 * Rounds per forkbench run, per row and environment: chosen by a first, short run (not counted) so that
 * a run takes about TARGET_US, between 10 and the row's cap; so an environment that is 1000× slower
 * than native still finishes its runs in seconds.
 */
const rounds = new Map<string, number>();
const TARGET_US = quick ? 1e6 : 3e6;

function forkRow(id: string, mode: 'fork' | 'exec' | 'vfork-exec' | 'fork-resident', name: string): Row {
  const cap = mode === 'fork' ? (quick ? 2000 : 10000) : mode === 'fork-resident' ? (quick ? 5 : 20) : quick ? 500 : 2000;
  const once = (env: Env, n: number): number | string => {
    const r = run(env, [env.forkbench, mode, String(n), mode === 'fork-resident' ? '1024' : '/bin/true']);
    if (!r.ok) return r.why;
    const m = /us_per_op ([\d.]+)/.exec(r.stdout);
    return m ? Number(m[1]) : `no us_per_op in its output: ${firstLine(r.stdout)}`;
  };
  return {
    id,
    name,
    unit: 'µs',
    sample: (env) => {
      const key = `${id}/${env.id}`;
      let n = rounds.get(key);
      if (n === undefined) {
        const probe = once(env, mode === 'fork' ? 20 : mode === 'fork-resident' ? 2 : 10);
        if (typeof probe === 'string') return probe;
        n = Math.max(Math.min(10, cap), Math.min(cap, Math.round(TARGET_US / Math.max(probe, 1))));
        rounds.set(key, n);
      }
      return once(env, n);
    },
  };
}

const ROWS: Row[] = [
  forkRow('fork', 'fork', 'fork + _exit + wait'),
  forkRow('exec', 'exec', 'fork + execve /bin/true + wait'),
  forkRow('vfork-exec', 'vfork-exec', 'vfork + execve /bin/true + wait'),
  forkRow('fork-resident', 'fork-resident', 'fork + _exit + wait of a parent with 1 GiB resident'),
  {
    id: 'bash-loop',
    name: "`bash -c 'for i in $(seq 200); do /bin/true; done'`, whole command",
    unit: 'ms',
    sample: (env) => {
      const r = run(env, [env.bash, '-c', LOOP]);
      if (!r.ok) return r.why;
      return r.stdout.trim() === '200' ? r.ms : `the loop ran /bin/true ${r.stdout.trim() || 'no'} times out of 200`;
    },
  },
  {
    id: 'bash-start',
    name: '`bash -c true`, whole command (start-up)',
    unit: 'ms',
    sample: (env) => {
      const r = run(env, [env.bash, '-c', 'true']);
      return r.ok ? r.ms : r.why;
    },
  },
];

/** A cell: the figure and its ratio to native, or why it failed. */
type Cell = { value: number } | { failed: string } | null;

async function main(): Promise<void> {
  if (!existsSync(FORKBENCH)) {
    console.error('bench:procs: fixtures missing; run node scripts/fixtures.mjs');
    process.exit(1);
  }
  let pick;
  try {
    pick = pickPlatforms(platformArg(argv));
  } catch (e) {
    console.error(`bench:procs: ${e instanceof MapvisorError ? e.oneLine() : (e as Error).message}`);
    process.exit(2);
  }
  const skips: Array<{ what: string; why: string }> = [];
  let platforms = pick.run as string[];
  // The image the mapvisor rows run from (a no-op when it is up to date).
  try {
    progress('bench:procs: checking .cache/images/shell.img (scripts/proc-images.mjs)');
    const mod = (await import(pathToFileURL(join(ROOT, 'scripts', 'proc-images.mjs')).href)) as { procImages: (o: { quiet: boolean; names: string[] }) => Promise<unknown> };
    await mod.procImages({ quiet: true, names: ['shell'] });
  } catch (e) {
    skips.push(...platforms.map((p) => ({ what: `mapvisor ${p}`, why: `no shell image: ${(e as Error).message.split('\n')[0]}` })));
    platforms = [];
  }
  const activity = hostActivity();
  const envs = environments(platforms, skips);
  const runs = quick ? 2 : 5;

  // Warm-up: one start of each environment (page cache, the image, the CLI's code).
  for (const env of envs) {
    progress(`bench:procs: warming up ${env.label}`);
    run(env, [env.bash, '-c', 'true']);
  }

  const table = new Map<string, Map<string, Cell>>();
  for (const row of ROWS) {
    const samples = new Map<string, number[]>(envs.map((e) => [e.id, []]));
    const failed = new Map<string, string>();
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < envs.length; k++) {
        const env = envs[(k + r) % envs.length]!;
        if (failed.has(env.id)) continue; // one failure is enough: no retries of a broken row
        progress(`bench:procs: ${row.id} [${r + 1}/${runs}] ${env.label}`);
        const v = row.sample(env);
        if (typeof v === 'number' && Number.isFinite(v)) samples.get(env.id)!.push(v);
        else failed.set(env.id, String(v));
      }
    }
    table.set(row.id, new Map(envs.map((e): [string, Cell] => [e.id, failed.has(e.id) ? { failed: failed.get(e.id)! } : samples.get(e.id)!.length ? { value: median(samples.get(e.id)!) } : null])));
  }
  // The loop without the shell's start-up: the difference of the medians.
  const loop = table.get('bash-loop')!;
  const start = table.get('bash-start')!;
  const net = new Map<string, Cell>();
  for (const e of envs) {
    const a = loop.get(e.id);
    const b = start.get(e.id);
    net.set(e.id, a && 'value' in a && b && 'value' in b ? { value: a.value - b.value } : a && 'failed' in a ? a : b && 'failed' in b ? b : null);
  }
  table.set('bash-net', net);
  progress('');

  const names: Array<[string, string, string]> = [
    ...ROWS.filter((r) => !r.id.startsWith('bash-')).map((r): [string, string, string] => [r.id, r.name, r.unit]),
    ['bash-loop', ROWS.find((r) => r.id === 'bash-loop')!.name, 'ms'],
    ['bash-start', ROWS.find((r) => r.id === 'bash-start')!.name, 'ms'],
    ['bash-net', 'the 200-iteration loop alone (whole command minus start-up)', 'ms'],
  ];
  const out: string[] = [...platformLines(pick), ''];
  out.push(`| measurement | ${envs.map((e) => e.label).join(' | ')} |`);
  out.push(`|---|${envs.map(() => '---:').join('|')}|`);
  for (const [id, name, unit] of names) {
    const cells = table.get(id)!;
    const nat = cells.get('native');
    const natV = nat && 'value' in nat ? nat.value : undefined;
    const cell = (env: Env): string => {
      const c = cells.get(env.id);
      if (!c) return '—';
      if ('failed' in c) return `failed: ${c.failed.replace(/\|/g, '\\|')}`;
      return env.id === 'native' || natV === undefined || !(natV > 0) ? `${fmt(c.value)} ${unit}` : `${fmt(c.value)} ${unit} (${fx(c.value / natV)})`;
    };
    out.push(`| ${name} | ${envs.map(cell).join(' | ')} |`);
  }
  const used = envs.map((e) => `${e.label} ${ROWS.filter((r) => !r.id.startsWith('bash-')).map((r) => rounds.get(`${r.id}/${e.id}`) ?? '—').join('/')}`);
  out.push('', `(×: ÷ native, same run; medians of ${runs} interleaved runs. Rounds per forkbench run, fork/exec/vfork-exec/fork-resident: ${used.join(', ')}.)`);
  if (skips.length) {
    out.push('', 'Not measured:');
    for (const s of skips) out.push(`- ${s.what}: ${s.why}`);
  }
  out.push('', activityLine(activity(), cpus().length));
  console.log(out.join('\n'));
}

await main();
