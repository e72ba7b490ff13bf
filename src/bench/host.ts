/**
 * What `mapvisor bench` and the npm run bench:* scripts share: the platform axis — which platforms
 * to measure (`--platform kvm|process|all|auto`, default all that work here) and each one's probe
 * result — and what else the host was doing while a bench ran (spin-then-sleep hand-offs and
 * CPU-bound rows are only meaningful on a quiet machine, so every bench reports it).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { MapvisorError, UsageError } from '../errors.js';
import { probePlatforms } from '../platform/select.js';
import type { PlatformName } from '../platform/platform.js';

export type { PlatformName };

export interface PlatformPick {
  /** The platforms to measure, in probe order (kvm, process). */
  run: PlatformName[];
  /** Every platform with whether it runs in this bench and why (not). */
  all: Array<{ name: PlatformName; works: boolean; measured: boolean; why: string }>;
}

/** The value of `--platform X` or `--platform=X` in argv, or null. */
export function platformArg(argv: string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--platform') return argv[i + 1] ?? '';
    if (a.startsWith('--platform=')) return a.slice('--platform='.length);
  }
  return null;
}

/**
 * Which platforms a bench measures. `choice`: 'kvm', 'process', 'all' (or null: all), 'auto' (what
 * `--platform auto` would take). A named platform that does not work is an error; with 'all', a
 * platform that does not work is skipped and says why.
 */
export function pickPlatforms(choice: string | null): PlatformPick {
  const probes = probePlatforms();
  const c = choice ?? 'all';
  if (!['kvm', 'process', 'all', 'auto'].includes(c)) throw new UsageError(`--platform ${c} is not kvm, process, all or auto`, 'give --platform kvm, process or all (the default: every platform that works here)');
  const wanted = (name: PlatformName): boolean => c === 'all' || c === name || (c === 'auto' && probes.find((p) => p.works)?.name === name);
  const all = probes.map((p) => ({
    name: p.name,
    works: p.works,
    measured: p.works && wanted(p.name),
    why: !wanted(p.name) ? `not selected (--platform ${c})` : p.why,
  }));
  for (const p of all) if (!p.works && c === p.name) throw new MapvisorError('ENOPLATFORM', `the ${c} platform does not work here: ${p.why}`, 'run mapvisor info; give --platform all to measure the platforms that work');
  const run = all.filter((p) => p.measured).map((p) => p.name);
  if (run.length === 0) throw new MapvisorError('ENOPLATFORM', `no platform works here: ${all.map((p) => `${p.name}: ${p.why}`).join('; ')}`, 'run mapvisor info');
  return { run, all };
}

/** "platform kvm: measured (/dev/kvm opens)" lines. */
export function platformLines(p: PlatformPick): string[] {
  return p.all.map((x) => `platform ${x.name}: ${x.measured ? `measured (${x.why})` : `skipped: ${x.works ? x.why : `does not work here: ${x.why}`}`}`);
}

/** The 1-minute load average now. */
export function loadAvg(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** CPU time (user + system, all CPUs, seconds) the host spent since boot, from /proc/stat. */
function cpuBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return ((f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0)) / 100;
}

/** This process's own CPU time and that of its waited-for children (seconds). */
function ownCpuSeconds(): number {
  const u = process.resourceUsage();
  const self = (u.userCPUTime + u.systemCPUTime) / 1e6;
  // Children (sandbox stubs, native runs, probes) are in /proc/self/stat's cutime + cstime once reaped.
  const st = readFileSync('/proc/self/stat', 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return self + (Number(f[13]) + Number(f[14])) / 100;
}

/**
 * What else the host did during a bench: call at the start, and the returned function at the end
 * gives the load averages and the CPU seconds other processes used (busy time of the whole host minus
 * this bench's own and its reaped children's), per second of wall time.
 */
export function hostActivity(): () => { loadStart: number; loadEnd: number; otherCpus: number; wallS: number } {
  const loadStart = loadAvg();
  const busy0 = cpuBusySeconds();
  const own0 = ownCpuSeconds();
  const t0 = process.hrtime.bigint();
  return () => {
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    const other = cpuBusySeconds() - busy0 - (ownCpuSeconds() - own0);
    return { loadStart, loadEnd: loadAvg(), otherCpus: Math.max(0, other / wallS), wallS };
  };
}

/** A one-line account of the host's other activity, with a warning when it was busy. */
export function activityLine(a: { loadStart: number; loadEnd: number; otherCpus: number; wallS: number }, cpus: number): string {
  const busy = a.otherCpus > 0.25;
  return (
    `host activity during this run (${a.wallS.toFixed(0)} s): load average ${a.loadStart.toFixed(2)} at the start, ${a.loadEnd.toFixed(2)} at the end; ` +
    `other processes used ${a.otherCpus.toFixed(2)} of the ${cpus} CPUs on average` +
    (busy ? ' — NOT A QUIET MACHINE: spin-then-sleep hand-offs (the process platform, systrap-forward, the C supervisor) fall back to sleeping when the other side has no CPU, and the figures here are worse than on an idle host' : '')
  );
}

/** The pids of `pid` and every descendant (the sandbox's stub processes on process are the CLI's children). */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      parent.set(Number(e), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [c, pp] of parent) if (pp === out[i]) out.push(c);
  return out;
}

/** A bench figure to 3 significant digits, in plain notation. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return String(Math.round(v));
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** A ratio to the baseline: "1.25×", "18.0×", "120×". */
export const fx = (r: number): string => `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;

/** A port that was free on the host's 127.0.0.1 a moment ago (bench:net, the networking tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
