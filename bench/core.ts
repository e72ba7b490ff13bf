/**
 * npm run bench:core — the core's costs on every platform that works here, beside native and the
 * other sandboxes installed here, all measured in this run:
 *   - start to exit of `busybox true`;
 *   - the round trip of a trivial system call (getppid in a loop: the time of N calls minus that of 10
 *     calls, over N − 10); on kvm also returning by iretq;
 *   - a CPU-bound loop (the loop's time minus the same program's with 1 iteration).
 * Each is measured on mapvisor's kvm and process platforms, natively, under gVisor's runsc (ptrace,
 * and systrap when this runsc has it) and under bwrap, when installed; the runs of one row are
 * interleaved (kvm, process, native, … then again) so that drift in the host's load hits every column
 * alike, and the figure is the median of the runs.
 *
 * References, measured here too: the process platform's stub driven by a supervisor in C
 * (src/platform/process/stub/selftest.c, the floor of the chosen mechanism), and from ../shared/probes
 * (when present): systrap-forward (seccomp RET_TRAP forwarded to another process, spin then futex and
 * futex only), seccomp-trap (answered in the handler; user notification), ptrace-sysemu, and the C VMM
 * on this KVM (static-elf running the probes' syscall-loop).
 *
 * Prints Markdown tables and the ratios the platform work targets; --json FILE writes everything.
 * --quick: fewer and shorter runs (under ~2 minutes). --platform kvm|process|all (default all that
 * work). Not a test: nothing is asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Sandbox, type SandboxOptions } from '../src/sandbox/sandbox.js';
import { MapvisorError } from '../src/errors.js';
import { activityLine, fmt, fx, hostActivity, pickPlatforms, platformArg, platformLines, type PlatformName } from '../src/bench/host.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const STUB = join(ROOT, 'dist', 'stubs', 'mapvisor-stub');
const SELFTEST = join(ROOT, 'src', 'platform', 'process', 'stub', 'selftest.c');
const PROBES = join(ROOT, '..', 'shared', 'probes');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const jsonOut = ((): string | null => {
  const i = argv.indexOf('--json');
  return i >= 0 ? (argv[i + 1] ?? null) : null;
})();

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const progress = (s: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s.slice(0, (process.stderr.columns ?? 100) - 1)}`);
};

/* ------------------------------------------------------------------------------------------------
 * The systems a program runs on
 * ---------------------------------------------------------------------------------------------- */

/** Runs PROGRAM ARGS to completion and returns its stdout; throws when it fails. */
type Runner = (program: string, args: string[]) => Promise<string> | string;

interface System {
  id: string;
  /** Column header. */
  label: string;
  run: Runner;
  /** getppid calls for the round-trip row: enough for ~0.25 s (quick) / ~1 s of calls. */
  calls: number;
  /** Which rows it is in. */
  rows: Array<'startup' | 'syscall' | 'cpu' | 'vdso'>;
}

function sandboxRunner(platform: PlatformName, extra: SandboxOptions = {}): Runner {
  return async (program, args) => {
    const r = await Sandbox.run(program, args, { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', platform, ...extra });
    if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} on ${platform} exited ${r.status}: ${r.reason ?? r.stderr?.toString() ?? ''}`);
    return r.stdout?.toString() ?? '';
  };
}

function hostRunner(wrap: string[]): Runner {
  return (program, args) => {
    const r = spawnSync(wrap[0] ?? program, [...wrap.slice(1), ...(wrap.length ? [program] : []), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${[...wrap, program, ...args].join(' ')} exited ${r.status}: ${r.stderr?.toString().trim().split('\n').pop()}`);
    return r.stdout?.toString() ?? '';
  };
}

/** Whether `run` can run busybox true; the reason when not. */
function tryRun(run: Runner): string | null {
  try {
    const r = run(BUSYBOX, ['true']);
    if (r instanceof Promise) throw new Error('async runner');
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0]!;
  }
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/* ------------------------------------------------------------------------------------------------
 * Measurements: interleaved rounds, medians
 * ---------------------------------------------------------------------------------------------- */

/** Every run's sample per system id, for the JSON. */
const allRuns = new Map<string, Record<string, number[]>>();

/**
 * `rounds` rounds; in each, `sample(s)` once for every system, in an order rotated every round.
 * Returns each system's median sample (non-finite samples, runs that measured nothing, left out; a
 * system with none is left out). Every sample is kept in allRuns under `row`.
 */
async function interleaved(row: string, systems: System[], rounds: number, what: string, sample: (s: System) => Promise<number>): Promise<Map<string, number>> {
  const out = new Map<string, number[]>(systems.map((s) => [s.id, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < systems.length; k++) {
      const s = systems[(k + r) % systems.length]!;
      progress(`bench:core: ${what} [${r + 1}/${rounds}] ${s.label}`);
      const v = await sample(s);
      if (Number.isFinite(v)) out.get(s.id)!.push(v);
    }
  }
  allRuns.set(row, Object.fromEntries(out));
  return new Map([...out].filter(([, v]) => v.length > 0).map(([k, v]) => [k, median(v)]));
}

async function timeMs(f: () => Promise<unknown> | unknown): Promise<number> {
  const s = nowMs();
  await f();
  return nowMs() - s;
}

/* ------------------------------------------------------------------------------------------------
 * References in C
 * ---------------------------------------------------------------------------------------------- */

interface Reference {
  id: string;
  name: string;
  /** µs per getppid round trip (median of the runs). */
  us: number;
  runs: number[];
  source: string;
}

interface Skip {
  what: string;
  why: string;
}

function firstNumber(out: string, re: RegExp): number | null {
  const m = re.exec(out);
  return m ? Number(m[1]) : null;
}

/** Run `cmd` `n` times; per regex, the median of what it matched (null if never); `outputs`: each run's output. */
function repeat(n: number, cmd: string[], cwd: string, res: RegExp[], outputs: string[] = []): Array<{ median: number; runs: number[] } | null> {
  const got: number[][] = res.map(() => []);
  for (let i = 0; i < n; i++) {
    const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: 'utf8', timeout: 120_000 });
    const out = (r.stdout ?? '') + (r.stderr ?? '');
    outputs.push(out);
    res.forEach((re, k) => {
      const v = firstNumber(out, re);
      if (v !== null && Number.isFinite(v)) got[k]!.push(v);
    });
  }
  return got.map((xs) => (xs.length ? { median: median(xs), runs: xs } : null));
}

/** The C supervisor, built and ready: run `sample()` for one run's figures. */
interface Selftest {
  /** How it was built: "selftest.c", or the patched copy. */
  label: string;
  /** One run: µs per forwarded getppid with the supervisor spinning then sleeping, and never spinning; its check summary. */
  sample: () => { spin: number | null; futex: number | null; summary: string };
  cleanup: () => void;
}

/**
 * The stub driven by selftest.c, its C supervisor (µs per forwarded getppid, supervisor spinning then
 * sleeping as the TypeScript kernel does, and never spinning). Null (with the reason in `skips`) when
 * it cannot run.
 */
function prepareSelftest(skips: Skip[], notes: string[]): Selftest | null {
  const what = 'stub C supervisor (selftest.c)';
  if (!existsSync(SELFTEST)) return void skips.push({ what, why: `${SELFTEST} is not here` }), null;
  if (!existsSync(STUB)) return void skips.push({ what, why: 'the stub is not built (npm run build)' }), null;
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-selftest-'));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  const spin = /([\d.]+) us per forwarded getppid \(round trip, 100000 calls\)/;
  const futexOnly = /does not spin[\s\S]*?([\d.]+) us per forwarded getppid/;
  const summary = (out: string): string => /^(all passed|\d+ FAILURES)$/m.exec(out)?.[1] ?? 'no summary line';
  const build = (src: string, exe: string): string | null => {
    const r = spawnSync('gcc', ['-O2', '-o', exe, src], { encoding: 'utf8' });
    return r.status === 0 ? null : `gcc failed: ${r.stderr.trim().split('\n')[0]}`;
  };
  const fail = (why: string): null => {
    skips.push({ what, why });
    cleanup();
    return null;
  };
  const exe = join(dir, 'stub-selftest');
  const err = build(SELFTEST, exe);
  if (err) return fail(err);
  progress('bench:core: the stub under its C supervisor (selftest.c)');
  const first = spawnSync(exe, [], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (!spin.test(first.stdout ?? '')) return fail(`it measured nothing (${summary(first.stdout ?? '')}; exit ${first.status})`);
  const label = 'selftest.c';
  const program = exe;
  return {
    label,
    cleanup,
    sample: () => {
      const r = spawnSync(program, [], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      const out = r.stdout ?? '';
      return { spin: firstNumber(out, spin), futex: firstNumber(out, futexOnly), summary: summary(out) };
    },
  };
}

/** ../shared/probes: build a copy, run the interception probes (and the C VMM when kvm works). */
function probes(runs: number, withKvm: boolean, refs: Reference[], skips: Skip[]): void {
  if (!existsSync(join(PROBES, 'Makefile'))) return void skips.push({ what: '../shared/probes', why: `${PROBES} is not here` });
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-probes-'));
  try {
    cpSync(PROBES, dir, { recursive: true });
    execFileSync('chmod', ['-R', 'u+w', dir]);
    const targets = ['systrap-forward', 'ptrace-sysemu', 'seccomp-trap', ...(withKvm ? ['static-elf', 'static-elf-stub.bin', 'syscall-loop'] : [])];
    progress('bench:core: building ../shared/probes');
    const mk = spawnSync('make', ['-s', ...targets], { cwd: dir, encoding: 'utf8' });
    if (mk.status !== 0) return void skips.push({ what: '../shared/probes', why: `make failed: ${mk.stderr.trim().split('\n').pop()}` });
    const N = '20000';
    const add = (id: string, name: string, cmd: string, r: { median: number; runs: number[] } | null): void => {
      if (r) refs.push({ id, name, us: r.median, runs: r.runs, source: `shared/probes ${cmd}` });
      else skips.push({ what: `shared/probes ${cmd}`, why: 'no figure in its output' });
    };
    progress('bench:core: shared/probes systrap-forward');
    const [sf, ff] = repeat(runs, ['./systrap-forward', N], dir, [/spin 2000 then futex: ([\d.]+) us/, /futex only: ([\d.]+) us/]);
    add('systrap-forward-spin', 'seccomp RET_TRAP forwarded to a supervisor process, both sides spin 2000 pauses then futex', `systrap-forward ${N}`, sf!);
    add('systrap-forward-futex', 'seccomp RET_TRAP forwarded to a supervisor process, futex only', `systrap-forward ${N}`, ff!);
    progress('bench:core: shared/probes seccomp-trap');
    const [st, un] = repeat(runs, ['./seccomp-trap', N], dir, [/RET_TRAP \+ SIGSYS handler: ([\d.]+) us/, /RET_USER_NOTIF served by another process: ([\d.]+) us/]);
    add('seccomp-trap', 'seccomp RET_TRAP answered inside the SIGSYS handler (no forwarding)', `seccomp-trap ${N}`, st!);
    add('seccomp-user-notif', 'seccomp user notification served by another process', `seccomp-trap ${N}`, un!);
    progress('bench:core: shared/probes ptrace-sysemu');
    const [pt] = repeat(runs, ['./ptrace-sysemu', N], dir, [/ptrace SYSEMU: ([\d.]+) us/]);
    add('ptrace-sysemu', 'ptrace PTRACE_SYSEMU (UML, gVisor ptrace)', `ptrace-sysemu ${N}`, pt!);
    if (withKvm) {
      // The C VMM on the same KVM: static-elf running the probes' syscall-loop (20,000 getppid calls,
      // fixed in syscall-loop.c) minus static-elf running a program that makes one call.
      progress('bench:core: shared/probes static-elf (the C VMM)');
      const PROBE_CALLS = 20000;
      const diffs: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = (prog: string): number => {
          const s = nowMs();
          const r = spawnSync(join(dir, 'static-elf'), [prog], { cwd: dir, stdio: 'ignore' });
          if (r.status !== 0) throw new Error(`static-elf ${prog} exited ${r.status}`);
          return nowMs() - s;
        };
        diffs.push(((t(join(dir, 'syscall-loop')) - t(guest('hello'))) * 1000) / PROBE_CALLS);
      }
      refs.push({ id: 'c-vmm-kvm', name: 'a KVM exit through a C VMM on this KVM (static-elf, syscall-loop)', us: median(diffs), runs: diffs, source: 'shared/probes static-elf' });
    }
  } catch (e) {
    skips.push({ what: '../shared/probes', why: (e as Error).message.split('\n')[0]! });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Round trip of handing a message to another thread and back through SharedArrayBuffer + Atomics. */
async function handoffUs(rounds: number): Promise<number> {
  const sab = new SharedArrayBuffer(8);
  const src = `
    const { workerData } = require('node:worker_threads');
    const a = new Int32Array(workerData.sab);
    for (let i = 0; i < workerData.rounds; i++) {
      while (Atomics.wait(a, 0, 0) === 'ok' && Atomics.load(a, 0) === 0) {}
      Atomics.store(a, 0, 0);
      Atomics.store(a, 1, 1);
      Atomics.notify(a, 1);
    }`;
  const w = new Worker(src, { eval: true, workerData: { sab, rounds } });
  const a = new Int32Array(sab);
  await new Promise((r) => setTimeout(r, 50));
  const s = nowMs();
  for (let i = 0; i < rounds; i++) {
    Atomics.store(a, 0, 1);
    Atomics.notify(a, 0);
    while (Atomics.load(a, 1) === 0) Atomics.wait(a, 1, 0);
    Atomics.store(a, 1, 0);
  }
  const us = ((nowMs() - s) * 1000) / rounds;
  await w.terminate();
  return us;
}

/* ------------------------------------------------------------------------------------------------
 * Formatting
 * ---------------------------------------------------------------------------------------------- */

/** A ratio of two times: "1.25× (slower)", "0.050× (20.0× faster)". */
const fxWords = (r: number): string => (r >= 1 ? `${fx(r)}${r.toFixed(2) === '1.00' ? '' : ' (slower)'}` : `${r < 0.1 ? r.toPrecision(2) : r.toFixed(2)}× (${fx(1 / r)} faster)`);

/* ------------------------------------------------------------------------------------------------ */

interface Row {
  id: 'startup' | 'syscall' | 'syscall-iretq' | 'cpu' | 'vdso';
  name: string;
  unit: 'ms' | 'µs' | 'ns';
  /** system id → value (median). */
  values: Record<string, number>;
}

interface Ratio {
  id: string;
  name: string;
  value: number;
  /** The target (value ≤ max), when the platform work states one. */
  max?: number;
  met?: boolean;
}

async function main(): Promise<void> {
  if (!existsSync(BUSYBOX) || !existsSync(guest('syscall-loop')) || !existsSync(guest('cpu-loop'))) {
    console.error('bench: fixtures missing; run node scripts/fixtures.mjs (npm test does it)');
    process.exit(1);
  }
  let pick;
  try {
    pick = pickPlatforms(platformArg(argv));
  } catch (e) {
    console.error(`bench:core: ${e instanceof MapvisorError ? e.oneLine() : (e as Error).message}`);
    process.exit(2);
  }
  const activity = hostActivity();
  const runs = quick ? 3 : 7;
  const cpuRuns = quick ? 3 : 5;
  const CPU = quick ? 200_000_000 : 1_000_000_000;
  const scale = quick ? 1 : 4;
  const skips: Skip[] = [];
  const notes: string[] = [];
  for (const p of pick.all) if (!p.measured) skips.push({ what: `platform ${p.name}`, why: p.works ? p.why : `does not work here: ${p.why}` });

  // The systems. Round-trip call counts aim at ~0.25 s of calls in quick mode, ~1 s in a full run.
  const systems: System[] = [];
  if (pick.run.includes('kvm')) {
    systems.push({ id: 'kvm', label: 'mapvisor kvm', run: sandboxRunner('kvm'), calls: 5000 * scale, rows: ['startup', 'syscall', 'cpu', 'vdso'] });
    systems.push({ id: 'kvm-iretq', label: 'mapvisor kvm (iretq)', run: sandboxRunner('kvm', { syscallReturn: 'iretq' }), calls: 5000 * scale, rows: ['syscall'] });
  }
  if (pick.run.includes('process')) systems.push({ id: 'process', label: 'mapvisor process', run: sandboxRunner('process'), calls: 100_000 * scale, rows: ['startup', 'syscall', 'cpu', 'vdso'] });
  systems.push({ id: 'native', label: 'native', run: hostRunner([]), calls: 1_000_000 * scale, rows: ['startup', 'syscall', 'cpu', 'vdso'] });
  if (has('runsc')) {
    const version = spawnSync('runsc', ['--version'], { encoding: 'utf8' }).stdout?.split('\n')[0] ?? 'runsc';
    for (const plat of ['ptrace', 'systrap']) {
      const run = hostRunner(['runsc', `--platform=${plat}`, '--network=none', 'do']);
      progress(`bench:core: trying runsc --platform=${plat}`);
      const why = tryRun(run);
      if (why) skips.push({ what: `runsc --platform=${plat}`, why: `${version}: ${why}` });
      else systems.push({ id: `runsc-${plat}`, label: `runsc (${plat})`, run, calls: 10_000 * scale, rows: ['startup', 'syscall', 'cpu', 'vdso'] });
    }
    // runsc's kvm platform is not tried: it needs hardware virtualization; under this host's kvm_pvm it
    // did not start (it spun at 100% CPU for minutes), and the bench must not hang.
  } else skips.push({ what: 'runsc (gVisor)', why: 'not installed (apt-get install runsc)' });
  if (has('bwrap')) {
    const run = hostRunner(['bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--']);
    const why = tryRun(run);
    if (why) skips.push({ what: 'bwrap', why });
    else systems.push({ id: 'bwrap', label: 'bwrap', run, calls: 1_000_000 * scale, rows: ['startup', 'syscall', 'cpu', 'vdso'] });
  } else skips.push({ what: 'bwrap (bubblewrap)', why: 'not installed (apt-get install bubblewrap)' });

  const rows: Row[] = [];
  const inRow = (r: System['rows'][number]): System[] => systems.filter((s) => s.rows.includes(r));

  // Start-up: warm each system once (worker code, page cache), then interleaved runs.
  for (const s of inRow('startup')) await s.run(BUSYBOX, ['true']);
  const startup = await interleaved('startup', inRow('startup'), runs, 'start-up, busybox true', (s) => timeMs(() => s.run(BUSYBOX, ['true'])));
  rows.push({ id: 'startup', name: 'start to exit, busybox true', unit: 'ms', values: Object.fromEntries(startup) });

  // Round trip: per round, N calls minus 10 calls, over N − 10. The stub under its C supervisor (the
  // process platform's target is stated against it) runs in the same rounds, so that both see the same
  // host: a run of it is one sample.
  const refs: Reference[] = [];
  const st = pick.run.includes('process') ? prepareSelftest(skips, notes) : null;
  const stFutex: number[] = [];
  const stSummaries = new Set<string>();
  const stSystem: System[] = st ? [{ id: 'stub-c', label: 'the stub under its C supervisor', run: () => '', calls: 0, rows: ['syscall'] }] : [];
  const rt = await interleaved('syscall', [...inRow('syscall'), ...stSystem], runs, 'getppid round trip', async (s) => {
    if (s.id === 'stub-c') {
      const r = st!.sample();
      stSummaries.add(r.summary);
      if (r.futex !== null) stFutex.push(r.futex);
      return r.spin ?? NaN;
    }
    const small = await timeMs(() => s.run(guest('syscall-loop'), ['10']));
    const big = await timeMs(() => s.run(guest('syscall-loop'), [String(s.calls)]));
    return ((big - small) * 1000) / (s.calls - 10);
  });
  if (st) {
    st.cleanup();
    const source = `${st.label}; its checks: ${[...stSummaries].join(' / ')}; in the round-trip rounds`;
    const spin = rt.get('stub-c');
    rt.delete('stub-c');
    if (spin !== undefined) refs.push({ id: 'stub-c-spin', name: 'the stub (SIGSYS handler), forwarded to a C supervisor that spins then sleeps', us: spin, runs: allRuns.get('syscall')?.['stub-c'] ?? [], source });
    else skips.push({ what: `stub C supervisor (${st.label})`, why: 'no µs line in its output' });
    if (stFutex.length) refs.push({ id: 'stub-c-futex', name: 'the stub, forwarded to a C supervisor that never spins (futex every time)', us: median(stFutex), runs: stFutex, source });
  }
  const rtVals = Object.fromEntries([...rt].filter(([k]) => k !== 'kvm-iretq'));
  rows.push({ id: 'syscall', name: 'getppid round trip (N calls minus 10 calls)', unit: 'µs', values: rtVals });
  if (rt.has('kvm-iretq')) rows.push({ id: 'syscall-iretq', name: 'getppid round trip, kvm returning by iretq', unit: 'µs', values: { kvm: rt.get('kvm-iretq')!, native: rtVals.native! } });

  // CPU-bound: per round, CPU iterations minus 1 iteration (start-up subtracted).
  const cpu = await interleaved('cpu', inRow('cpu'), cpuRuns, 'CPU-bound loop', async (s) => {
    const big = await timeMs(() => s.run(guest('cpu-loop'), [String(CPU)]));
    const one = await timeMs(() => s.run(guest('cpu-loop'), ['1']));
    return big - one;
  });
  rows.push({ id: 'cpu', name: `CPU-bound loop (${CPU / 1e6}M iterations, start-up subtracted)`, unit: 'ms', values: Object.fromEntries(cpu) });

  // The vDSO: clock_gettime(CLOCK_MONOTONIC) in a loop inside the program (no system call where a
  // vDSO answers it: native, bwrap, mapvisor's own; runsc's too).
  const vdsoCalls = quick ? 2_000_000 : 10_000_000;
  const vd = await interleaved('vdso', inRow('vdso'), cpuRuns, 'clock_gettime through the vDSO', async (s) => {
    const out = await s.run(guest('vdso'), ['loop', String(vdsoCalls)]);
    const m = /^vdso_ns_per_call ([\d.]+)$/m.exec(out);
    if (!m) throw new Error(`vdso loop printed ${JSON.stringify(out.slice(0, 200))}`);
    return Number(m[1]);
  });
  rows.push({ id: 'vdso', name: `clock_gettime(CLOCK_MONOTONIC) through the vDSO, per call (${vdsoCalls / 1e6}M calls)`, unit: 'ns', values: Object.fromEntries(vd) });

  // References.
  probes(quick ? 1 : 3, pick.run.includes('kvm'), refs, skips);
  progress('bench:core: exit hand-off between threads');
  const hand = await handoffUs(quick ? 2000 : 20000);
  refs.push({ id: 'node-handoff', name: "a hand-off to another Node thread and back (SharedArrayBuffer + Atomics.wait/notify), the kernel's owner-thread hop", us: hand, runs: [hand], source: 'bench:core' });
  progress('');

  // Ratios.
  const ratios: Ratio[] = [];
  const val = (row: Row['id'], sys: string): number | undefined => rows.find((r) => r.id === row)?.values[sys];
  const ref = (id: string): number | undefined => refs.find((r) => r.id === id)?.us;
  const ratio = (id: string, name: string, a: number | undefined, b: number | undefined, max?: number): void => {
    if (a === undefined || b === undefined || !(b > 0) || !(a > 0)) return;
    const value = a / b;
    ratios.push({ id, name, value, ...(max !== undefined ? { max, met: value <= max } : {}) });
  };
  ratio('process-vs-stub-c', 'getppid round trip: process ÷ the stub under its C supervisor', val('syscall', 'process'), ref('stub-c-spin'), 1.3);
  ratio('process-cpu-vs-native', 'CPU-bound loop: process ÷ native', val('cpu', 'process'), val('cpu', 'native'), 1.05);
  ratio('kvm-cpu-vs-native', 'CPU-bound loop: kvm ÷ native', val('cpu', 'kvm'), val('cpu', 'native'));
  ratio('kvm-vdso-vs-native', 'clock_gettime through the vDSO: kvm ÷ native', val('vdso', 'kvm'), val('vdso', 'native'), 2);
  ratio('process-vdso-vs-native', 'clock_gettime through the vDSO: process ÷ native', val('vdso', 'process'), val('vdso', 'native'), 2);
  for (const row of ['startup', 'syscall', 'cpu'] as const) ratio(`kvm-vs-process-${row}`, `${rows.find((r) => r.id === row)!.name.split(' (')[0]}: kvm ÷ process`, val(row, 'kvm'), val(row, 'process'));
  ratio('kvm-vs-c-vmm', 'getppid round trip: kvm ÷ the C VMM on the same KVM', val('syscall', 'kvm'), ref('c-vmm-kvm'));
  ratio('process-vs-systrap-forward', 'getppid round trip: process ÷ systrap-forward (spin then futex)', val('syscall', 'process'), ref('systrap-forward-spin'));
  for (const rs of systems.filter((s) => s.id.startsWith('runsc-'))) {
    for (const p of pick.run) {
      ratio(`${p}-vs-${rs.id}-startup`, `start-up: mapvisor ${p} ÷ ${rs.label}`, val('startup', p), val('startup', rs.id));
      ratio(`${p}-vs-${rs.id}-syscall`, `getppid round trip: mapvisor ${p} ÷ ${rs.label}`, val('syscall', p), val('syscall', rs.id));
    }
  }
  const act = activity();

  // Output.
  const out: string[] = [];
  out.push(...platformLines(pick), '');
  const cols = systems.filter((s) => s.id !== 'kvm-iretq');
  out.push(`| measurement | ${cols.map((s) => s.label).join(' | ')} |`);
  out.push(`|---|${cols.map(() => '---:').join('|')}|`);
  for (const r of rows) {
    const nat = r.values.native;
    const cell = (id: string): string => {
      const v = r.values[id];
      if (v === undefined) return '—';
      return id === 'native' || nat === undefined ? `${fmt(v)} ${r.unit}` : `${fmt(v)} ${r.unit} (${fx(v / nat)})`;
    };
    out.push(`| ${r.name} | ${cols.map((s) => cell(s.id)).join(' | ')} |`);
  }
  out.push('', '(×: ÷ native, same run.)', '');
  out.push('| reference: one getppid round trip through | µs | runs | source |', '|---|---:|---|---|');
  for (const f of refs) out.push(`| ${f.name} | ${fmt(f.us)} | ${f.runs.map(fmt).join(', ')} | ${f.source} |`);
  out.push('', '| ratio | measured | target |', '|---|---:|---|');
  for (const r of ratios) out.push(`| ${r.name} | ${fxWords(r.value)} | ${r.max === undefined ? '—' : `≤ ${r.max}× — ${r.met ? 'met' : 'MISSED'}`} |`);
  if (skips.length) {
    out.push('', 'Not measured:');
    for (const s of skips) out.push(`- ${s.what}: ${s.why}`);
  }
  for (const n of notes) out.push('', n);
  out.push('', activityLine(act, cpus().length));
  console.log(out.join('\n'));

  if (jsonOut) {
    const report = {
      version: 1,
      kind: 'mapvisor bench:core',
      date: new Date().toISOString(),
      quick,
      host: { kernel: release(), cpus: cpus().length, node: process.version, ...act },
      platforms: pick.all,
      systems: systems.map((s) => ({ id: s.id, label: s.label, roundTripCalls: s.calls })),
      rows: rows.map((r) => ({ ...r, runs: allRuns.get(r.id === 'syscall-iretq' ? 'syscall' : r.id) })),
      references: refs,
      ratios,
      skipped: skips,
      notes,
    };
    writeFileSync(jsonOut, JSON.stringify(report, null, 2) + '\n');
    console.error(`bench:core: wrote ${jsonOut}`);
  }
}

await main();
