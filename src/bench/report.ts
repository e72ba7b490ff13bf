/**
 * The result of `mapvisor bench`: the data the runner fills, and the ways it is shown to a person —
 * Markdown tables, a pretty-printed JSON file (read back with validateReport), and an SVG chart of
 * each mode's speed relative to native on a log scale.
 *
 * Modes: mapvisor's two storage paths on each of its platforms ('memory/kvm', 'blk/kvm',
 * 'memory/process', 'blk/process'), the program natively on the host ('native') and under bubblewrap
 * ('bwrap'). A report holds the modes that were measured; every ratio it shows is between two of them.
 *
 * Everything here is pure: strings in, strings out.
 */

/** What runs the program's code (src/platform): a KVM VM, or a host process whose system calls trap. */
export type Platform = 'kvm' | 'process';
export const PLATFORMS: readonly Platform[] = ['kvm', 'process'];
/** How the image is reached: mapped into memory, or through a block device and its cache. */
export type Storage = 'memory' | 'blk';

export type Mode = 'memory/kvm' | 'blk/kvm' | 'memory/process' | 'blk/process' | 'native' | 'bwrap';
export const MODES: readonly Mode[] = ['memory/kvm', 'blk/kvm', 'memory/process', 'blk/process', 'native', 'bwrap'];

/** 'memory/process' */
export function vmMode(storage: Storage, platform: Platform): Mode {
  return `${storage}/${platform}` as Mode;
}
/** The platform of a mapvisor mode; null for native and bwrap. */
export function platformOf(m: Mode): Platform | null {
  const p = m.split('/')[1];
  return p === 'kvm' || p === 'process' ? p : null;
}
/** The storage path of a mapvisor mode; null for native and bwrap. */
export function storageOf(m: Mode): Storage | null {
  return platformOf(m) === null ? null : (m.split('/')[0] as Storage);
}

export interface Measurement {
  /** In the workload's unit. */
  value: number;
  /**
   * E.g. exits/op, cache hits, bytes copied. exitsPerOp counts every time the program's code stopped
   * for mapvisor's kernel: VM exits on kvm, intercepted events (system calls, faults, kicks) on process.
   */
  detail?: Record<string, number | string>;
}

export interface WorkloadResult {
  /** 'seq-read-4k' */
  id: string;
  /** 'sequential read, 4 KiB read()s' */
  name: string;
  /** 'MiB/s' | 'µs/op' | 'ns/op' | 'ms' | 's' | 'MiB' */
  unit: string;
  better: 'lower' | 'higher';
  /** A mode may be absent (not applicable / not installed / not selected). */
  results: Partial<Record<Mode, Measurement>>;
  /** One line shown under the table, e.g. "memory mode pays one VM exit per read() too". */
  note?: string;
}

/** Whether a platform was measured, and why (not): "/dev/kvm opens", "not selected (--platform kvm)". */
export interface PlatformStatus {
  name: Platform;
  measured: boolean;
  why: string;
}

export interface BenchReport {
  version: 2;
  date: string;
  host: {
    kernel: string;
    cpus: number;
    kvm: string;
    node: string;
    /** What else ran: load average at the start and end, CPUs other processes used on average. */
    load?: { start: number; end: number; otherCpus: number };
  };
  quick: boolean;
  /** Every platform, measured or not. */
  platforms: PlatformStatus[];
  /** Other modes not measured and why ("bwrap": "not installed"). */
  skipped: Array<{ what: string; why: string }>;
  workloads: WorkloadResult[];
}

const isMode = (s: string): s is Mode => (MODES as readonly string[]).includes(s);

/* ------------------------------------------------------------------------------------------------
 * Numbers
 * ---------------------------------------------------------------------------------------------- */

/** How many times better mode `a` is than mode `b` (>1 = a better), honoring `better`; null if either is missing or zero. */
export function ratio(w: WorkloadResult, a: Mode, b: Mode): number | null {
  const va = w.results[a]?.value;
  const vb = w.results[b]?.value;
  if (va === undefined || vb === undefined || va === 0 || vb === 0) return null;
  if (!Number.isFinite(va) || !Number.isFinite(vb)) return null;
  const r = w.better === 'higher' ? va / vb : vb / va;
  return Number.isFinite(r) && r > 0 ? r : null;
}

/**
 * `v` with 3 significant digits, without exponent notation for everyday magnitudes: 1234 → "1230",
 * 0.01234 → "0.0123"; from 10⁷ up and below 10⁻⁶, "1.23e+9", "1.23e-7".
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 1e7) return v.toPrecision(3);
  if (abs >= 1000) {
    const step = 10 ** (Math.floor(Math.log10(abs)) - 2);
    return String(Math.round(v / step) * step);
  }
  const s = v.toPrecision(3);
  // 999.7 → "1.00e+3": re-format the rounded number.
  return /e\+/.test(s) ? formatNumber(Number(s)) : s;
}

/** "812 MiB/s" */
export function formatValue(v: number, unit: string): string {
  return unit ? `${formatNumber(v)} ${unit}` : formatNumber(v);
}

/** A ratio from ratio(): "12.3× better", "1.15× worse", "1.00× (same)". */
export function formatRatio(r: number): string {
  return times(r, 'better', 'worse');
}

/** "12.3× up" for r ≥ 1, "1.15× down" for r < 1, "1.00× (same)" when both round to 1.00. */
function times(r: number, up: string, down: string): string {
  const u = formatNumber(r);
  const d = formatNumber(1 / r);
  if (u === '1.00' && d === '1.00') return '1.00× (same)';
  return r >= 1 ? `${u}× ${up}` : `${d}× ${down}`;
}

/** A workload's comparison baseline: native when it was measured, otherwise blk (kvm's, then process's); null if none is usable. */
export function baselineOf(w: WorkloadResult): Mode | null {
  for (const m of ['native', 'blk/kvm', 'blk/process'] as const) {
    const v = w.results[m]?.value;
    if (v !== undefined && Number.isFinite(v) && v > 0) return m;
  }
  return null;
}

/**
 * `mode`'s speed relative to the workload's baseline (native, or blk without native): 1 = as fast,
 * 10 = ten times faster, 0.1 = ten times slower. Null if the mode or the baseline is missing, or the
 * value is zero.
 */
export function relativeSpeed(w: WorkloadResult, mode: Mode): number | null {
  const base = baselineOf(w);
  return base === null ? null : ratio(w, mode, base);
}

/** The modes measured in at least one workload, in MODES order. */
export function presentModes(r: BenchReport): Mode[] {
  return MODES.filter((m) => r.workloads.some((w) => w.results[m] !== undefined));
}

/** A comparison the report shows: how many times better `a` is than `b`, per workload. */
export interface Comparison {
  a: Mode;
  b: Mode;
  /** "memory/process vs native" */
  label: string;
}

/**
 * The ratios the report shows, each naming its platform: per platform, memory vs blk and memory vs
 * native; with both platforms, process vs kvm (memory storage, then blk). Only between modes the
 * report has.
 */
export function comparisons(r: BenchReport): Comparison[] {
  const have = new Set(presentModes(r));
  const out: Comparison[] = [];
  const add = (a: Mode, b: Mode): void => {
    if (have.has(a) && have.has(b)) out.push({ a, b, label: `${a} vs ${b}` });
  };
  for (const p of PLATFORMS) {
    add(vmMode('memory', p), vmMode('blk', p));
    add(vmMode('memory', p), 'native');
  }
  add('memory/process', 'memory/kvm');
  add('blk/process', 'blk/kvm');
  return out;
}

/** A target the platform work states, checked against one measured mode. */
export interface TargetCheck {
  /** Workload name. */
  workload: string;
  mode: Mode;
  /** "vs native", "interceptions per access", "copies of the file" */
  what: string;
  /** The measured figure in words: "1.18× slower", "0.00021", "1.06". */
  measured: string;
  /** "≤ 1.3× slower" */
  target: string;
  met: boolean;
}

/** Random 4 KiB reads through a mapping: at most this much slower than native… */
export const MAP_READ_MAX_SLOWDOWN = 1.3;
/**
 * …with no interception per access: the run's interceptions (the program's start-up, open and mmap
 * calls) spread over its accesses must stay below this.
 */
export const MAP_READ_MAX_EXITS_PER_ACCESS = 0.001;
/** N sandboxes reading one file: near one copy of it in host memory (page cache + their own). */
export const SHARE_MAX_COPIES = 1.2;

/**
 * The targets of mapvisor's storage claims, for every memory mode measured: 4 KiB random reads through
 * a mapping within 1.3× of native with zero interceptions per access, and N sandboxes reading one file
 * holding about one copy of it.
 */
export function targetChecks(r: BenchReport): TargetCheck[] {
  const out: TargetCheck[] = [];
  const map = r.workloads.find((w) => w.id === 'rand-map-4k');
  const share = r.workloads.find((w) => w.id === 'share-vms');
  for (const p of PLATFORMS) {
    const m = vmMode('memory', p);
    if (map?.results[m]) {
      const q = ratio(map, m, 'native');
      if (q !== null) {
        out.push({ workload: map.name, mode: m, what: 'vs native', measured: formatRatio(q), target: `≤ ${MAP_READ_MAX_SLOWDOWN}× worse`, met: 1 / q <= MAP_READ_MAX_SLOWDOWN });
      }
      const e = map.results[m]!.detail?.['exitsPerOp'];
      if (typeof e === 'number') {
        const total = map.results[m]!.detail?.['exits'];
        const ops = map.results[m]!.detail?.['ops'];
        const how = typeof total === 'number' && typeof ops === 'number' ? ` (${total} in the whole run, start-up included, over ${ops} accesses)` : '';
        out.push({
          workload: map.name,
          mode: m,
          what: p === 'kvm' ? 'VM exits per access' : 'interceptions per access',
          measured: `${formatNumber(e)}${how}`,
          target: `0 per access (< ${MAP_READ_MAX_EXITS_PER_ACCESS} for the run)`,
          met: e < MAP_READ_MAX_EXITS_PER_ACCESS,
        });
      }
    }
    const c = share?.results[m]?.detail?.['copies'];
    if (share && typeof c === 'number') {
      const nat = share.results.native?.detail?.['copies'];
      out.push({
        workload: share.name,
        mode: m,
        what: 'copies of the file in host memory',
        measured: `${formatNumber(c)}${typeof nat === 'number' ? ` (native: ${formatNumber(nat)})` : ''}`,
        target: `near one copy (≤ ${SHARE_MAX_COPIES})`,
        met: c <= SHARE_MAX_COPIES,
      });
    }
  }
  return out;
}

/* ------------------------------------------------------------------------------------------------
 * Markdown
 * ---------------------------------------------------------------------------------------------- */

const mdCell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
const ABSENT = '—';

/** "platform kvm: measured (/dev/kvm opens)" per platform, then what else was not measured. */
function platformSummary(r: BenchReport): string[] {
  const lines = r.platforms.map((p) => `platform ${p.name}: ${p.measured ? `measured (${p.why})` : `not measured: ${p.why}`}`);
  for (const s of r.skipped) lines.push(`${s.what}: not measured: ${s.why}`);
  return lines;
}

/**
 * The platforms (measured or not, and why), then two tables —
 *   | workload | memory/kvm | blk/kvm | memory/process | blk/process | native | bwrap |
 * with values in their units (3 significant digits; only the modes the report has), and
 *   | workload | memory/kvm vs blk/kvm | memory/kvm vs native | … | memory/process vs memory/kvm |
 * with ratios as "12.3× better" / "1.15× worse" — "—" for absent cells; then the targets checked, and
 * the workloads' notes as a bullet list.
 */
export function markdownTable(r: BenchReport): string {
  const modes = presentModes(r);
  const comps = comparisons(r);
  /** A Markdown table; `left`: the columns aligned left (the first by default, the others right). */
  const table = (header: string[], rows: string[][], left: number[] = [0]): string[] => [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (left.includes(i) ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((c) => `| ${c.join(' | ')} |`),
  ];
  const lines: string[] = [...platformSummary(r), ''];
  lines.push(
    ...table(
      ['workload', ...modes],
      r.workloads.map((w) => [
        mdCell(w.name),
        ...modes.map((m) => {
          const v = w.results[m]?.value;
          return v === undefined ? ABSENT : mdCell(formatValue(v, w.unit));
        }),
      ]),
    ),
  );
  if (comps.length > 0) {
    lines.push('');
    lines.push(
      ...table(
        ['workload', ...comps.map((c) => c.label)],
        r.workloads.map((w) => [
          mdCell(w.name),
          ...comps.map((c) => {
            const q = ratio(w, c.a, c.b);
            return q === null ? ABSENT : formatRatio(q);
          }),
        ]),
      ),
    );
  }
  const targets = targetChecks(r);
  if (targets.length > 0) {
    lines.push('');
    lines.push(
      ...table(
        ['check', 'mode', 'measured', 'target', 'met'],
        targets.map((t) => [mdCell(`${t.workload}: ${t.what}`), t.mode, mdCell(t.measured), mdCell(t.target), t.met ? 'yes' : 'NO']),
        [0, 1, 3, 4],
      ),
    );
  }
  const notes = r.workloads.filter((w) => w.note !== undefined && w.note.trim() !== '');
  if (notes.length > 0) {
    lines.push('');
    for (const w of notes) lines.push(`- ${w.name}: ${w.note!.replace(/[\r\n]+/g, ' ')}`);
  }
  if (r.host.load) {
    const l = r.host.load;
    lines.push('', `Host load during the run: load average ${formatNumber(l.start)} at the start, ${formatNumber(l.end)} at the end; other processes used ${formatNumber(l.otherCpus)} of ${r.host.cpus} CPUs on average.`);
  }
  return lines.join('\n') + '\n';
}

/* ------------------------------------------------------------------------------------------------
 * JSON
 * ---------------------------------------------------------------------------------------------- */

/** The report with a fixed key order (modes in MODES order, detail keys sorted), so equal reports print equally. */
function canonical(r: BenchReport): BenchReport {
  return {
    version: r.version,
    date: r.date,
    host: {
      kernel: r.host.kernel,
      cpus: r.host.cpus,
      kvm: r.host.kvm,
      node: r.host.node,
      ...(r.host.load ? { load: { start: r.host.load.start, end: r.host.load.end, otherCpus: r.host.load.otherCpus } } : {}),
    },
    quick: r.quick,
    platforms: PLATFORMS.flatMap((n) => r.platforms.filter((p) => p.name === n).map((p) => ({ name: p.name, measured: p.measured, why: p.why }))),
    skipped: r.skipped.map((s) => ({ what: s.what, why: s.why })),
    workloads: r.workloads.map((w) => {
      const results: Partial<Record<Mode, Measurement>> = {};
      for (const m of MODES) {
        const x = w.results[m];
        if (x === undefined) continue;
        const c: Measurement = { value: x.value };
        if (x.detail !== undefined) {
          const d: Record<string, number | string> = {};
          for (const k of Object.keys(x.detail).sort()) d[k] = x.detail[k]!;
          c.detail = d;
        }
        results[m] = c;
      }
      const out: WorkloadResult = { id: w.id, name: w.name, unit: w.unit, better: w.better, results };
      if (w.note !== undefined) out.note = w.note;
      return out;
    }),
  };
}

/** Stable, pretty-printed JSON (2-space indent, trailing newline). Read it back with validateReport(JSON.parse(s)). */
export function toJSON(r: BenchReport): string {
  return JSON.stringify(canonical(r), null, 2) + '\n';
}

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const describe = (x: unknown): string =>
  x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x === 'number' ? String(x) : typeof x === 'string' ? JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x) : typeof x;

function fail(path: string, problem: string): never {
  throw new Error(`invalid bench report: ${path}: ${problem}`);
}
function obj(x: unknown, path: string): Obj {
  if (!isObj(x)) fail(path, `expected an object, got ${describe(x)}`);
  return x;
}
function str(o: Obj, k: string, path: string, nonEmpty = false): string {
  const v = o[k];
  if (v === undefined) fail(`${path}.${k}`, 'missing');
  if (typeof v !== 'string') fail(`${path}.${k}`, `expected a string, got ${describe(v)}`);
  if (nonEmpty && v.trim() === '') fail(`${path}.${k}`, 'must not be empty');
  return v;
}
function num(o: Obj, k: string, path: string): number {
  const v = o[k];
  if (v === undefined) fail(`${path}.${k}`, 'missing');
  if (typeof v !== 'number') fail(`${path}.${k}`, `expected a number, got ${describe(v)}`);
  if (!Number.isFinite(v)) fail(`${path}.${k}`, `must be a finite number, got ${v}`);
  return v;
}

function measurement(x: unknown, path: string): Measurement {
  const o = obj(x, path);
  const value = num(o, 'value', path);
  if (value < 0) fail(`${path}.value`, `must not be negative, got ${value}`);
  const m: Measurement = { value };
  if (o.detail !== undefined) {
    const d = obj(o.detail, `${path}.detail`);
    const detail: Record<string, number | string> = {};
    for (const [k, v] of Object.entries(d)) {
      if (typeof v === 'string') detail[k] = v;
      else if (typeof v === 'number') detail[k] = num(d, k, `${path}.detail`);
      else fail(`${path}.detail.${k}`, `expected a number or a string, got ${describe(v)}`);
    }
    m.detail = detail;
  }
  return m;
}

/** Version 1 reports (before the platform axis) measured kvm only: their 'memory' and 'blk' are kvm's. */
const V1_MODES: Readonly<Record<string, Mode>> = { memory: 'memory/kvm', blk: 'blk/kvm', native: 'native', bwrap: 'bwrap' };

function workload(x: unknown, path: string, version: 1 | 2): WorkloadResult {
  const o = obj(x, path);
  const id = str(o, 'id', path, true);
  const name = str(o, 'name', path, true);
  const unit = str(o, 'unit', path);
  if (o.better !== 'lower' && o.better !== 'higher') fail(`${path}.better`, `expected "lower" or "higher", got ${describe(o.better)}`);
  const better = o.better;
  if (o.results === undefined) fail(`${path}.results`, 'missing');
  const ro = obj(o.results, `${path}.results`);
  const results: Partial<Record<Mode, Measurement>> = {};
  for (const [k, v] of Object.entries(ro)) {
    if (version === 1) {
      const m = V1_MODES[k];
      if (m === undefined) fail(`${path}.results.${k}`, `unknown mode (expected one of ${Object.keys(V1_MODES).join(', ')} in a version 1 report)`);
      results[m] = measurement(v, `${path}.results.${k}`);
      continue;
    }
    if (!isMode(k)) fail(`${path}.results.${k}`, `unknown mode (expected one of ${MODES.join(', ')})`);
    results[k] = measurement(v, `${path}.results.${k}`);
  }
  const w: WorkloadResult = { id, name, unit, better, results };
  if (o.note !== undefined) w.note = str(o, 'note', path);
  return w;
}

function platformStatus(x: unknown, path: string): PlatformStatus {
  const o = obj(x, path);
  const name = str(o, 'name', path);
  if (name !== 'kvm' && name !== 'process') fail(`${path}.name`, `unknown platform ${describe(name)} (expected one of ${PLATFORMS.join(', ')})`);
  if (typeof o.measured !== 'boolean') fail(`${path}.measured`, o.measured === undefined ? 'missing' : `expected a boolean, got ${describe(o.measured)}`);
  return { name, measured: o.measured, why: str(o, 'why', path) };
}

/**
 * `data` (e.g. JSON.parse of a --json file) as a BenchReport, or an Error naming the first problem
 * ("invalid bench report: workloads[2].results.qemu: unknown mode …"). Returns a fresh copy without
 * fields the format does not know. A version 1 report (kvm only, modes 'memory' and 'blk') comes back
 * as version 2 with those modes as 'memory/kvm' and 'blk/kvm'.
 */
export function validateReport(data: unknown): BenchReport {
  const o = obj(data, 'report');
  if (o.version !== 1 && o.version !== 2) fail('version', `expected 1 or 2, got ${describe(o.version)}`);
  const version = o.version;
  const date = str(o, 'date', 'report');
  if (o.host === undefined) fail('host', 'missing');
  const h = obj(o.host, 'host');
  const cpus = num(h, 'cpus', 'host');
  if (!Number.isInteger(cpus) || cpus < 1) fail('host.cpus', `expected a positive integer, got ${cpus}`);
  const host: BenchReport['host'] = { kernel: str(h, 'kernel', 'host'), cpus, kvm: str(h, 'kvm', 'host'), node: str(h, 'node', 'host') };
  if (h.load !== undefined) {
    const l = obj(h.load, 'host.load');
    host.load = { start: num(l, 'start', 'host.load'), end: num(l, 'end', 'host.load'), otherCpus: num(l, 'otherCpus', 'host.load') };
  }
  if (typeof o.quick !== 'boolean') fail('quick', o.quick === undefined ? 'missing' : `expected a boolean, got ${describe(o.quick)}`);
  let platforms: PlatformStatus[];
  let skipped: BenchReport['skipped'] = [];
  if (version === 1) {
    platforms = [{ name: 'kvm', measured: true, why: 'a version 1 report: kvm only' }];
  } else {
    if (o.platforms === undefined) fail('platforms', 'missing');
    if (!Array.isArray(o.platforms)) fail('platforms', `expected an array, got ${describe(o.platforms)}`);
    platforms = o.platforms.map((x: unknown, i: number) => platformStatus(x, `platforms[${i}]`));
    const names = platforms.map((p) => p.name);
    names.forEach((n, i) => names.indexOf(n) !== i && fail(`platforms[${i}].name`, `duplicate platform ${JSON.stringify(n)}`));
    if (o.skipped !== undefined) {
      if (!Array.isArray(o.skipped)) fail('skipped', `expected an array, got ${describe(o.skipped)}`);
      skipped = o.skipped.map((x: unknown, i: number) => {
        const so = obj(x, `skipped[${i}]`);
        return { what: str(so, 'what', `skipped[${i}]`, true), why: str(so, 'why', `skipped[${i}]`) };
      });
    }
  }
  if (o.workloads === undefined) fail('workloads', 'missing');
  if (!Array.isArray(o.workloads)) fail('workloads', `expected an array, got ${describe(o.workloads)}`);
  const seen = new Set<string>();
  const workloads = o.workloads.map((x: unknown, i: number) => {
    const w = workload(x, `workloads[${i}]`, version);
    if (seen.has(w.id)) fail(`workloads[${i}].id`, `duplicate id ${JSON.stringify(w.id)}`);
    seen.add(w.id);
    return w;
  });
  if (version === 2) {
    // A mode of a platform the report says was not measured is a contradiction.
    workloads.forEach((w, i) => {
      for (const m of Object.keys(w.results) as Mode[]) {
        const p = platformOf(m);
        if (p !== null && !platforms.some((x) => x.name === p && x.measured)) fail(`workloads[${i}].results.${m}`, `platform ${p} is not listed as measured in platforms`);
      }
    });
  }
  return { version: 2, date, host, quick: o.quick, platforms, skipped, workloads };
}

/* ------------------------------------------------------------------------------------------------
 * SVG
 * ---------------------------------------------------------------------------------------------- */

/** Text for XML content and attribute values; drops characters XML 1.0 cannot hold. */
export function escapeXml(s: string): string {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Okabe–Ito colours: one hue per storage path, darker on kvm and lighter on process. */
export const MODE_COLOURS: Readonly<Record<Mode, string>> = {
  'memory/kvm': '#0072b2', // blue — the mode this project is about
  'memory/process': '#56b4e9', // sky blue
  'blk/kvm': '#e69f00', // orange
  'blk/process': '#d55e00', // vermillion
  native: '#6e6e6e', // grey — the baseline
  bwrap: '#cc79a7', // pink
};

const MODE_LEGEND: Readonly<Record<Mode, string>> = {
  'memory/kvm': 'memory/kvm — kvm platform, image mapped into memory',
  'blk/kvm': 'blk/kvm — kvm platform, block device + cache',
  'memory/process': 'memory/process — process platform, image mapped',
  'blk/process': 'blk/process — process platform, block device + cache',
  native: 'native — on the host',
  bwrap: 'bwrap — bubblewrap sandbox',
};

const W = 900;
const PAD = 16;
const LABEL_X = PAD + 8;
const PLOT_X0 = 290;
const PLOT_X1 = 765;
const NAME_W = PLOT_X0 - LABEL_X - 14;
const BAR_H = 14;
const ZEBRA = '#f4f5f7';
const BAR_GAP = 3;
const ROW_PAD = 9;
const FONT = 'font-family="sans-serif"';
/** Rough advance width of sans-serif text, erring wide, for layout only. */
const textWidth = (s: string, size: number): number => [...s].length * size * 0.6;
const px = (n: number): string => String(Math.round(n * 10) / 10);

function clip(s: string, size: number, width: number): string {
  if (textWidth(s, size) <= width) return s;
  const chars = [...s];
  while (chars.length > 1 && textWidth(chars.join('') + '…', size) > width) chars.pop();
  return chars.join('').trimEnd() + '…';
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${px(x)}" y="${px(y)}"${attrs ? ' ' + attrs : ''}>${escapeXml(s)}</text>`;
}

const SUPERSCRIPT = '⁰¹²³⁴⁵⁶⁷⁸⁹';

/** "100× slower", "1× = native", "10× faster", "10⁴× faster" */
export function decadeLabel(e: number): string {
  if (e === 0) return '1× = native';
  const a = Math.abs(e);
  const n = a <= 3 ? String(10 ** a) : `10${[...String(a)].map((d) => SUPERSCRIPT[Number(d)]).join('')}`;
  return e < 0 ? `${n}× slower` : `${n}× faster`;
}

/** A relative speed in the axis's words: "6.44× slower", "1.19× faster", "1.00× (same)". */
export function speedLabel(rel: number): string {
  return times(rel, 'faster', 'slower');
}

interface Row {
  w: WorkloadResult;
  base: Mode | null;
  bars: { mode: Mode; value: number; rel: number | null }[];
  height: number;
}

function subtitle(r: BenchReport): string {
  const kernel = /^linux/i.test(r.host.kernel) ? r.host.kernel : `Linux ${r.host.kernel}`;
  const kvm = /kvm/i.test(r.host.kvm) ? r.host.kvm : `KVM ${r.host.kvm}`;
  const node = /^node/i.test(r.host.node) ? r.host.node : `Node ${r.host.node}`;
  const cpus = `${r.host.cpus} CPU${r.host.cpus === 1 ? '' : 's'}`;
  const iso = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::[\d.]+)?Z$/.exec(r.date);
  const date = iso ? `${iso[1]} ${iso[2]} UTC` : r.date;
  const measured = r.platforms.filter((p) => p.measured).map((p) => p.name);
  const platforms = measured.length ? `platform${measured.length > 1 ? 's' : ''} ${measured.join(' + ')}` : 'no mapvisor platform';
  return [date, kernel, cpus, kvm, node, r.quick ? 'quick run (fewer repetitions)' : 'full run', platforms].join(' · ');
}

/** A standalone SVG: per workload, one bar per measured mode, length = speed relative to native on a log10 axis. */
export function svgChart(r: BenchReport): string {
  const present = MODES.filter((m) => r.workloads.some((w) => w.results[m] !== undefined));

  const rows: Row[] = r.workloads.map((w) => {
    const base = baselineOf(w);
    const bars = MODES.filter((m) => w.results[m] !== undefined).map((mode) => ({
      mode,
      value: w.results[mode]!.value,
      rel: base === null ? null : ratio(w, mode, base),
    }));
    const barsH = bars.length * (BAR_H + BAR_GAP) - BAR_GAP;
    return { w, base, bars, height: Math.max(barsH, 30) + 2 * ROW_PAD };
  });

  // Axis: whole decades, always 0.1…10 at least, a little room left of the shortest bar, at most 1e-6…1e6.
  const rels = rows.flatMap((row) => row.bars.map((b) => b.rel)).filter((x): x is number => x !== null);
  const lo = rels.length ? Math.min(...rels) : 1;
  const hi = rels.length ? Math.max(...rels) : 1;
  const loExp = Math.max(-6, Math.min(-1, Math.floor(Math.log10(lo) - 0.05)));
  const hiExp = Math.min(6, Math.max(1, Math.ceil(Math.log10(hi) - 1e-9)));
  const xOf = (rel: number): number => {
    const t = (Math.log10(rel) - loExp) / (hiExp - loExp);
    return PLOT_X0 + Math.min(1, Math.max(0, t)) * (PLOT_X1 - PLOT_X0);
  };

  const out: string[] = [];

  // Title, subtitle.
  out.push(text(PAD, 30, 'mapvisor bench: speed relative to native, log scale', `${FONT} font-size="18" font-weight="bold" fill="#111"`));
  let y = 51;
  for (const line of wrap(subtitle(r), 12, W - 2 * PAD, 2)) {
    out.push(text(PAD, y, line, `${FONT} font-size="12" fill="#555"`));
    y += 16;
  }
  y += 5;

  // Legend: swatch + label in a grid of equal columns.
  const colW = Math.max(0, ...present.map((m) => 20 + textWidth(MODE_LEGEND[m], 12) + 24));
  const cols = Math.max(1, Math.min(present.length, Math.floor((W - 2 * PAD) / Math.max(1, colW))));
  const legend = present.map((m, i) => {
    const lx = PAD + (i % cols) * colW;
    const ly = y + Math.floor(i / cols) * 20;
    return (
      `<g class="legend-item" data-mode="${m}"><rect x="${px(lx)}" y="${px(ly)}" width="14" height="14" rx="2" fill="${MODE_COLOURS[m]}"/>` +
      text(lx + 20, ly + 11.5, MODE_LEGEND[m], `${FONT} font-size="12" fill="#222"`) +
      '</g>'
    );
  });
  out.push(`<g class="legend">${legend.join('')}</g>`);
  y += Math.max(0, Math.ceil(present.length / cols) - 1) * 20;
  y += present.length ? 40 : 20;

  // Axis labels above the plot.
  const axisLabels = (ly: number): string[] => {
    const a: string[] = [];
    // Every decade when the labels fit, else every 2nd, 3rd…, always including 1×.
    const widest = Math.max(...[loExp, hiExp].map((e) => textWidth(decadeLabel(e), 11)));
    const step = Math.ceil((widest + 10) / ((PLOT_X1 - PLOT_X0) / (hiExp - loExp)));
    for (let e = loExp; e <= hiExp; e++) {
      if (e % step !== 0) continue;
      a.push(text(xOf(10 ** e), ly, decadeLabel(e), `${FONT} font-size="11" text-anchor="middle" fill="${e === 0 ? '#111' : '#555'}"${e === 0 ? ' font-weight="bold"' : ''}`));
    }
    return a;
  };
  const x1 = xOf(1);
  out.push(text(x1 - 8, y, '◀ slower than native', `${FONT} font-size="11" text-anchor="end" fill="#888"`));
  out.push(text(x1 + 8, y, 'faster than native ▶', `${FONT} font-size="11" text-anchor="start" fill="#888"`));
  y += 17;
  out.push(...axisLabels(y));
  y += 8;

  const plotTop = y;
  const plotBottom = plotTop + rows.reduce((s, row) => s + row.height, 0);

  // Row backgrounds (zebra) under the grid.
  let ry = plotTop;
  rows.forEach((row, i) => {
    if (i % 2 === 1) out.push(`<rect x="${PAD / 2}" y="${px(ry)}" width="${W - PAD}" height="${px(row.height)}" fill="${ZEBRA}"/>`);
    ry += row.height;
  });

  // Grid: faint minor lines at 2…9 × each decade, decades darker, 1× = native darkest.
  const grid: string[] = [];
  for (let e = loExp; e < hiExp; e++) {
    for (let k = 2; k <= 9; k++) {
      const gx = xOf(k * 10 ** e);
      grid.push(`<line x1="${px(gx)}" y1="${px(plotTop)}" x2="${px(gx)}" y2="${px(plotBottom)}" stroke="#e6e6e6" stroke-width="1"/>`);
    }
  }
  for (let e = loExp; e <= hiExp; e++) {
    const gx = xOf(10 ** e);
    const style = e === 0 ? 'stroke="#222" stroke-width="1.5"' : 'stroke="#bbb" stroke-width="1"';
    grid.push(`<line x1="${px(gx)}" y1="${px(plotTop)}" x2="${px(gx)}" y2="${px(plotBottom)}" ${style}/>`);
  }
  out.push(`<g class="grid">${grid.join('')}</g>`);

  // Rows.
  ry = plotTop;
  for (const [i, row] of rows.entries()) {
    // Text in the plot sits on a patch of the row's background so gridlines do not cross it.
    const bg = i % 2 === 1 ? ZEBRA : '#fff';
    const patch = (x: number, yTop: number, s: string): string =>
      `<rect x="${px(x - 2)}" y="${px(yTop)}" width="${px(textWidth(s, 11) + 4)}" height="${BAR_H}" fill="${bg}"/>`;
    const g: string[] = [`<g class="workload" data-id="${escapeXml(row.w.id)}">`];
    const mid = ry + row.height / 2;
    const direction = row.w.better === 'higher' ? 'higher is better' : 'lower is better';
    const vs = row.base === null ? '(no baseline)' : row.base !== 'native' ? `(vs ${row.base})` : '';
    // The name on up to two lines, then "unit, lower is better (vs blk/kvm)" in small grey; centred on the row.
    const nameLines = wrap(row.w.name, 12.5, NAME_W, 2);
    const top = mid - (nameLines.length * 15 + 13) / 2 + 11;
    g.push(
      `<text class="name" x="${px(LABEL_X)}" y="${px(top)}" ${FONT} font-size="12.5" fill="#111">` +
        nameLines.map((l, i) => (i === 0 ? escapeXml(l) : `<tspan x="${px(LABEL_X)}" dy="15">${escapeXml(l)}</tspan>`)).join('') +
        '</text>',
    );
    g.push(
      `<text x="${px(LABEL_X)}" y="${px(top + nameLines.length * 15 + 1)}" ${FONT} font-size="10.5" fill="#666">${escapeXml(`${row.w.unit}, ${direction}`)}` +
        (vs ? `<tspan dx="5" font-weight="bold" fill="#b35900">${escapeXml(vs)}</tspan>` : '') +
        '</text>',
    );
    if (row.bars.length === 0) g.push(patch(PLOT_X0 + 6, mid - BAR_H / 2, 'not measured'), text(PLOT_X0 + 6, mid + 4, 'not measured', `${FONT} font-size="11" fill="#888" font-style="italic"`));
    let by = ry + (row.height - (row.bars.length * (BAR_H + BAR_GAP) - BAR_GAP)) / 2;
    for (const b of row.bars) {
      const value = formatValue(b.value, row.w.unit);
      const baseName = row.base ?? 'native';
      if (b.rel === null) {
        const s = `${b.mode}: ${value} — not comparable`;
        g.push(patch(PLOT_X0 + 4, by, s), text(PLOT_X0 + 4, by + BAR_H - 3, s, `${FONT} font-size="11" fill="#888" font-style="italic"`));
      } else {
        const end = Math.max(PLOT_X0 + 2, xOf(b.rel));
        const width = end - PLOT_X0;
        const label = b.mode === row.base ? value : `${value} · ${speedLabel(b.rel)}`;
        const tip = `${b.mode}: ${value}, ${b.mode === row.base ? baseName : `${speedLabel(b.rel)} than ${baseName}`}`;
        g.push(
          `<rect class="bar" data-mode="${b.mode}" x="${PLOT_X0}" y="${px(by)}" width="${px(width)}" height="${BAR_H}" rx="2" fill="${MODE_COLOURS[b.mode]}"><title>${escapeXml(tip)}</title></rect>`,
        );
        const lw = textWidth(label, 11);
        // Outside the bar's end when it fits, else inside it in white.
        if (end + 5 + lw <= W - PAD / 2) {
          g.push(patch(end + 5, by, label), text(end + 5, by + BAR_H - 3, label, `class="value" ${FONT} font-size="11" fill="#222"`));
        } else {
          g.push(text(end - 5, by + BAR_H - 3, label, `class="value" ${FONT} font-size="11" fill="#fff" text-anchor="end" font-weight="bold"`));
        }
      }
      by += BAR_H + BAR_GAP;
    }
    g.push('</g>');
    out.push(g.join(''));
    ry += row.height;
  }
  if (rows.length === 0) out.push(text(PLOT_X0 + 6, plotTop + 20, 'no workloads', `${FONT} font-size="12" fill="#888" font-style="italic"`));

  // Frame line at the plot's left edge, axis labels again below, and how to read it.
  y = Math.max(plotBottom, plotTop + (rows.length === 0 ? 30 : 0));
  out.push(`<line x1="${PLOT_X0}" y1="${px(plotTop)}" x2="${PLOT_X0}" y2="${px(y)}" stroke="#888" stroke-width="1"/>`);
  y += 16;
  out.push(...axisLabels(y));
  y += 22;
  const foot =
    'Bar length = speed relative to native (log scale): native ÷ value when lower is better, value ÷ native when higher is better. ' +
    'Rows marked (vs blk/…) had no native run and are relative to that blk mode. Each mapvisor mode is storage/platform: memory or blk, on kvm or process.';
  for (const line of wrap(foot, 10.5, W - 2 * PAD)) {
    out.push(text(PAD, y, line, `${FONT} font-size="10.5" fill="#666"`));
    y += 14;
  }
  const height = Math.ceil(y + 4);

  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}">`,
    `<title>${escapeXml(`mapvisor bench, ${r.date}`)}</title>`,
    `<rect width="${W}" height="${height}" fill="#fff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

/** `s` broken at spaces into lines that fit `width`; at most `maxLines`, the last one clipped with "…". */
function wrap(s: string, size: number, width: number, maxLines = Infinity): string[] {
  const lines: string[] = [];
  const words = s.split(/\s+/).filter((x) => x !== '');
  let cur = '';
  for (let i = 0; i < words.length; i++) {
    const next = cur ? `${cur} ${words[i]}` : words[i]!;
    if (cur && textWidth(next, size) > width) {
      if (lines.length === maxLines - 1) return [...lines, clip(words.slice(i - cur.split(' ').length).join(' '), size, width)];
      lines.push(cur);
      cur = words[i]!;
    } else cur = next;
  }
  if (cur) lines.push(clip(cur, size, width));
  return lines;
}
