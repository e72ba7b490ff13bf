import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import {
  MODES,
  comparisons,
  formatNumber,
  formatRatio,
  markdownTable,
  ratio,
  relativeSpeed,
  svgChart,
  targetChecks,
  toJSON,
  validateReport,
  type BenchReport,
  type Mode,
  type WorkloadResult,
  platformOf,
  storageOf,
  vmMode,
} from '../../src/bench/report.js';

const sample = (): BenchReport => ({
  version: 2,
  date: '2025-01-14T10:32:00Z',
  host: { kernel: '6.8.0-45-generic', cpus: 16, kvm: 'API 12', node: 'v20.11.1' },
  quick: true,
  platforms: [
    { name: 'kvm', measured: true, why: '/dev/kvm opens' },
    { name: 'process', measured: true, why: 'seccomp trap + user namespaces available' },
  ],
  skipped: [],
  workloads: [
    {
      id: 'seq-read-4k',
      name: 'sequential read, 4 KiB read()s',
      unit: 'MiB/s',
      better: 'higher',
      results: {
        'memory/kvm': { value: 812.4, detail: { 'exits/op': 1 } },
        'blk/kvm': { value: 95.2 },
        'memory/process': { value: 2030 },
        'blk/process': { value: 1015 },
        native: { value: 5230 },
        bwrap: { value: 5012 },
      },
      note: 'memory mode pays one VM exit per read() too',
    },
    {
      id: 'seq-read-1m',
      name: 'sequential read, 1 MiB read()s',
      unit: 'MiB/s',
      better: 'higher',
      results: { 'memory/kvm': { value: 9120 }, 'blk/kvm': { value: 1410 }, 'memory/process': { value: 9000 }, 'blk/process': { value: 1500 }, native: { value: 7650 }, bwrap: { value: 7590 } },
    },
    {
      id: 'rand-pread-4k',
      name: 'random 4 KiB pread()s',
      unit: 'µs/op',
      better: 'lower',
      results: {
        'memory/kvm': { value: 3.1 },
        'blk/kvm': { value: 41.7, detail: { 'cache hits': 0.12 } },
        'memory/process': { value: 1.55 },
        'blk/process': { value: 6.2 },
        native: { value: 0.92 },
        bwrap: { value: 0.95 },
      },
    },
    {
      id: 'rand-map-4k',
      name: 'random 4 KiB reads through a mapping',
      unit: 'ns/op',
      better: 'lower',
      results: {
        'memory/kvm': { value: 38, detail: { exitsPerOp: 0.0001, exits: 30, ops: 300000 } },
        'blk/kvm': { value: 2950 },
        'memory/process': { value: 60, detail: { exitsPerOp: 0.01, exits: 3000, ops: 300000 } },
        'blk/process': { value: 3100 },
        native: { value: 41 },
      },
      note: 'bwrap not installed',
    },
    {
      id: 'sqlite',
      name: 'sqlite3: 10k SELECTs <mmap_size> & "friends"',
      unit: 'ms',
      better: 'lower',
      results: { 'memory/kvm': { value: 212 }, 'blk/kvm': { value: 655 } },
      note: 'no native sqlite3 on the host',
    },
    {
      id: 'share-vms',
      name: 'host memory for 4 VMs mapping the same file',
      unit: 'MiB',
      better: 'lower',
      results: {
        'memory/kvm': { value: 131, detail: { copies: 1.02 } },
        'blk/kvm': { value: 1090 },
        'memory/process': { value: 640, detail: { copies: 5 } },
        native: { value: 128, detail: { copies: 1 } },
      },
    },
  ],
});

/** The sample with only the kvm platform (as version 1 reports were). */
const kvmOnly = (): BenchReport => {
  const r = sample();
  r.platforms = [r.platforms[0]!, { name: 'process', measured: false, why: 'not selected (--platform kvm)' }];
  for (const w of r.workloads) {
    delete w.results['memory/process'];
    delete w.results['blk/process'];
  }
  return r;
};

const wl = (better: 'lower' | 'higher', results: WorkloadResult['results']): WorkloadResult => ({
  id: 'x',
  name: 'x',
  unit: 'ms',
  better,
  results,
});

/* ----------------------------------------------------------------------------------------------- */

test('ratio: higher is better', () => {
  const w = wl('higher', { 'memory/kvm': { value: 200 }, native: { value: 100 } });
  assert.equal(ratio(w, 'memory/kvm', 'native'), 2);
  assert.equal(ratio(w, 'native', 'memory/kvm'), 0.5);
});

test('ratio: lower is better', () => {
  const w = wl('lower', { 'memory/process': { value: 2 }, 'blk/process': { value: 24.6 } });
  assert.ok(Math.abs(ratio(w, 'memory/process', 'blk/process')! - 12.3) < 1e-12);
  assert.ok(Math.abs(ratio(w, 'blk/process', 'memory/process')! - 1 / 12.3) < 1e-12);
});

test('ratio: null for a missing mode or a zero value', () => {
  const w = wl('lower', { 'memory/kvm': { value: 2 }, 'blk/kvm': { value: 0 } });
  assert.equal(ratio(w, 'memory/kvm', 'native'), null);
  assert.equal(ratio(w, 'bwrap', 'memory/kvm'), null);
  assert.equal(ratio(w, 'memory/kvm', 'blk/kvm'), null);
  assert.equal(ratio(w, 'blk/kvm', 'memory/kvm'), null);
  assert.equal(ratio(w, 'memory/kvm', 'memory/process'), null);
});

test('modes: storage/platform for mapvisor, native and bwrap without a platform', () => {
  assert.deepEqual([...MODES], ['memory/kvm', 'blk/kvm', 'memory/process', 'blk/process', 'native', 'bwrap']);
  assert.equal(vmMode('blk', 'process'), 'blk/process');
  assert.deepEqual(MODES.map(platformOf), ['kvm', 'kvm', 'process', 'process', null, null]);
  assert.deepEqual(MODES.map(storageOf), ['memory', 'blk', 'memory', 'blk', null, null]);
});

test('formatNumber: 3 significant digits, no exponents for everyday values', () => {
  assert.equal(formatNumber(812.4), '812');
  assert.equal(formatNumber(12.345), '12.3');
  assert.equal(formatNumber(1.15), '1.15');
  assert.equal(formatNumber(0.012345), '0.0123');
  assert.equal(formatNumber(5234), '5230');
  assert.equal(formatNumber(1234567), '1230000');
  assert.equal(formatNumber(12345678), '1.23e+7');
  assert.equal(formatNumber(1.234e-7), '1.23e-7');
  assert.equal(formatNumber(999.7), '1000');
  assert.equal(formatNumber(0), '0');
  assert.equal(formatRatio(12.3), '12.3× better');
  assert.equal(formatRatio(1 / 1.15), '1.15× worse');
  assert.equal(formatRatio(1.0001), '1.00× (same)');
});

/* ----------------------------------------------------------------------------------------------- */

test('markdownTable: platforms, a values table with every present mode, a ratios table naming platforms, targets, notes', () => {
  const r = sample();
  const md = markdownTable(r);
  const lines = md.trimEnd().split('\n');
  assert.deepEqual(lines.slice(0, 2), ['platform kvm: measured (/dev/kvm opens)', 'platform process: measured (seccomp trap + user namespaces available)']);
  const tables: string[][] = [];
  lines.forEach((l, i) => {
    if (!l.startsWith('|')) return;
    if (i === 0 || !lines[i - 1]!.startsWith('|')) tables.push([]);
    tables[tables.length - 1]!.push(l);
  });
  assert.equal(tables.length, 3, 'values, ratios, targets');
  const [values, ratios, targets] = tables as [string[], string[], string[]];
  const cellsOf = (t: string[], i: number): string[] => t[i + 2]!.slice(2, -2).split(' | ');

  // Values: every mode the report has, in MODES order.
  assert.equal(values[0], '| workload | memory/kvm | blk/kvm | memory/process | blk/process | native | bwrap |');
  assert.match(values[1]!, /^\|( -+:? \|)+$/);
  assert.equal(values.length - 2, r.workloads.length);
  for (let i = 0; i < r.workloads.length; i++) assert.equal(cellsOf(values, i).length, 7);
  assert.deepEqual(cellsOf(values, 0), ['sequential read, 4 KiB read()s', '812 MiB/s', '95.2 MiB/s', '2030 MiB/s', '1020 MiB/s', '5230 MiB/s', '5010 MiB/s']);
  // Absent bwrap; absent process, native and bwrap.
  assert.equal(cellsOf(values, 3)[6], '—');
  assert.deepEqual(cellsOf(values, 4).slice(3), ['—', '—', '—', '—']);

  // Ratios: each column names both modes, so its platform.
  assert.equal(
    ratios[0],
    '| workload | memory/kvm vs blk/kvm | memory/kvm vs native | memory/process vs blk/process | memory/process vs native | memory/process vs memory/kvm | blk/process vs blk/kvm |',
  );
  // seq-read-4k: 812/95.2 = 8.53× better than blk; 5230/812 = 6.44× worse than native; process 2030/812 = 2.50× better.
  assert.deepEqual(cellsOf(ratios, 0), ['sequential read, 4 KiB read()s', '8.53× better', '6.44× worse', '2.00× better', '2.58× worse', '2.50× better', '10.7× better']);
  // lower is better: 41.7/3.1 = 13.5× better; 3.1/0.92 = 3.37× worse.
  assert.equal(cellsOf(ratios, 2)[1], '13.5× better');
  assert.equal(cellsOf(ratios, 2)[2], '3.37× worse');
  // sqlite has kvm only: no process ratios, no native.
  assert.deepEqual(cellsOf(ratios, 4).slice(1), ['3.09× better', '—', '—', '—', '—', '—']);

  // Targets: per memory mode, the mapping reads vs native, the interceptions per access, the copies.
  assert.equal(targets[0], '| check | mode | measured | target | met |');
  const t = targets.slice(2).map((l) => l.slice(2, -2).split(' | '));
  assert.deepEqual(
    t.map((c) => [c[1], c[4]]),
    [
      ['memory/kvm', 'yes'],
      ['memory/kvm', 'yes'],
      ['memory/kvm', 'yes'],
      ['memory/process', 'NO'],
      ['memory/process', 'NO'],
      ['memory/process', 'NO'],
    ],
  );
  assert.match(t[1]![0]!, /VM exits per access$/);
  assert.match(t[4]![0]!, /interceptions per access$/);
  assert.equal(t[3]![2], '1.46× worse');
  assert.equal(t[5]![2], '5.00 (native: 1.00)');

  // "|" in a name does not split a cell.
  const r2 = sample();
  r2.workloads[0]!.name = 'a | b';
  assert.match(markdownTable(r2), /\| a \\\| b \|/);

  // Notes as a bullet list after the tables.
  const bullets = lines.filter((l) => l.startsWith('- '));
  assert.deepEqual(bullets, [
    '- sequential read, 4 KiB read()s: memory mode pays one VM exit per read() too',
    '- random 4 KiB reads through a mapping: bwrap not installed',
    '- sqlite3: 10k SELECTs <mmap_size> & "friends": no native sqlite3 on the host',
  ]);
});

test('markdownTable: one platform: only its modes and ratios; the other listed with its reason', () => {
  const r = kvmOnly();
  r.skipped = [{ what: 'bwrap', why: 'not installed' }];
  const md = markdownTable(r);
  assert.ok(md.includes('platform process: not measured: not selected (--platform kvm)'));
  assert.ok(md.includes('bwrap: not measured: not installed'));
  assert.ok(md.includes('| workload | memory/kvm | blk/kvm | native | bwrap |'));
  assert.ok(md.includes('| workload | memory/kvm vs blk/kvm | memory/kvm vs native |'));
  assert.ok(!md.includes('process vs') && !md.includes('memory/process |'));
  assert.deepEqual(
    comparisons(r).map((c) => c.label),
    ['memory/kvm vs blk/kvm', 'memory/kvm vs native'],
  );
  assert.deepEqual(
    targetChecks(r).map((c) => c.mode),
    ['memory/kvm', 'memory/kvm', 'memory/kvm'],
  );
});

/* ----------------------------------------------------------------------------------------------- */

test('toJSON → validateReport round trip equals the input; output is stable', () => {
  const r = sample();
  const s = toJSON(r);
  assert.deepEqual(validateReport(JSON.parse(s)), r);
  assert.ok(s.endsWith('}\n') && s.includes('\n  "version": 2,'));
  // Key order of the input does not change the text.
  const shuffled = JSON.parse(s) as BenchReport;
  const w = shuffled.workloads[0]!;
  const x = w.results;
  shuffled.workloads[0] = {
    results: { bwrap: x.bwrap!, native: x.native!, 'blk/process': x['blk/process']!, 'blk/kvm': x['blk/kvm']!, 'memory/process': x['memory/process']!, 'memory/kvm': x['memory/kvm']! },
    better: w.better,
    unit: w.unit,
    name: w.name,
    id: w.id,
    note: w.note!,
  };
  shuffled.platforms.reverse();
  assert.equal(toJSON(shuffled), s);
  assert.equal(toJSON(validateReport(JSON.parse(s))), s);
});

test('validateReport rejects bad input, naming the problem', () => {
  const bad = (f: (o: Record<string, any>) => void, re: RegExp): void => {
    const o = JSON.parse(toJSON(sample())) as Record<string, any>;
    f(o);
    assert.throws(() => validateReport(o), re);
  };
  assert.throws(() => validateReport(null), /report: expected an object, got null/);
  assert.throws(() => validateReport([]), /report: expected an object, got an array/);
  bad((o) => (o.version = 3), /version: expected 1 or 2, got 3/);
  bad((o) => delete o.version, /version: expected 1 or 2, got undefined/);
  bad((o) => delete o.date, /report\.date: missing/);
  bad((o) => delete o.host, /host: missing/);
  bad((o) => delete o.host.kernel, /host\.kernel: missing/);
  bad((o) => (o.host.cpus = 0), /host\.cpus: expected a positive integer/);
  bad((o) => (o.quick = 'yes'), /quick: expected a boolean/);
  bad((o) => delete o.platforms, /platforms: missing/);
  bad((o) => (o.platforms[1].name = 'qemu'), /platforms\[1\]\.name: unknown platform "qemu" \(expected one of kvm, process\)/);
  bad((o) => (o.platforms[1].name = 'kvm'), /platforms\[1\]\.name: duplicate platform "kvm"/);
  bad((o) => delete o.platforms[0].measured, /platforms\[0\]\.measured: missing/);
  bad((o) => (o.platforms[1].measured = false), /workloads\[0\]\.results\.memory\/process: platform process is not listed as measured/);
  bad((o) => (o.skipped = [{ what: '', why: 'x' }]), /skipped\[0\]\.what: must not be empty/);
  bad((o) => (o.host.load = { start: 1, end: 'x', otherCpus: 0 }), /host\.load\.end: expected a number/);
  bad((o) => delete o.workloads, /workloads: missing/);
  bad((o) => (o.workloads = {}), /workloads: expected an array/);
  bad((o) => delete o.workloads[1].unit, /workloads\[1\]\.unit: missing/);
  bad((o) => (o.workloads[1].id = ''), /workloads\[1\]\.id: must not be empty/);
  bad((o) => (o.workloads[1].id = 'seq-read-4k'), /workloads\[1\]\.id: duplicate id "seq-read-4k"/);
  bad((o) => (o.workloads[2].better = 'faster'), /workloads\[2\]\.better: expected "lower" or "higher", got "faster"/);
  bad((o) => delete o.workloads[2].results, /workloads\[2\]\.results: missing/);
  bad(
    (o) => (o.workloads[2].results.qemu = { value: 1 }),
    /workloads\[2\]\.results\.qemu: unknown mode \(expected one of memory\/kvm, blk\/kvm, memory\/process, blk\/process, native, bwrap\)/,
  );
  bad((o) => (o.workloads[2].results.memory = { value: 1 }), /workloads\[2\]\.results\.memory: unknown mode/);
  bad((o) => delete o.workloads[0].results['blk/kvm'].value, /workloads\[0\]\.results\.blk\/kvm\.value: missing/);
  bad((o) => (o.workloads[0].results['blk/kvm'].value = '95'), /workloads\[0\]\.results\.blk\/kvm\.value: expected a number, got "95"/);
  bad((o) => (o.workloads[0].results['blk/kvm'].value = -1), /workloads\[0\]\.results\.blk\/kvm\.value: must not be negative/);
  bad((o) => (o.workloads[0].results['memory/kvm'].detail = { 'exits/op': true }), /workloads\[0\]\.results\.memory\/kvm\.detail\.exits\/op: expected a number or a string/);
  bad((o) => (o.workloads[0].note = 3), /workloads\[0\]\.note: expected a string/);
  // Non-finite values (only reachable from objects, JSON has none).
  for (const v of [NaN, Infinity, -Infinity]) {
    bad((o) => (o.workloads[3].results.native.value = v), /workloads\[3\]\.results\.native\.value: must be a finite number/);
    bad((o) => (o.workloads[0].results['memory/kvm'].detail['exits/op'] = v), /detail\.exits\/op: must be a finite number/);
  }
  // Every message starts the same way.
  assert.throws(() => validateReport({ version: 1 }), /^Error: invalid bench report: /);
});

test('validateReport reads a version 1 report (kvm only) as version 2', () => {
  const v1 = {
    version: 1,
    date: '2025-01-14T10:32:00Z',
    host: { kernel: '6.8.0', cpus: 2, kvm: 'kvm', node: 'v20' },
    quick: false,
    workloads: [
      {
        id: 'seq-read-4k',
        name: 'sequential read',
        unit: 'MiB/s',
        better: 'higher',
        results: { memory: { value: 44, detail: { exitsPerOp: 1 } }, blk: { value: 40 }, native: { value: 6090 }, bwrap: { value: 6190 } },
      },
    ],
  };
  const r = validateReport(v1);
  assert.equal(r.version, 2);
  assert.deepEqual(r.platforms, [{ name: 'kvm', measured: true, why: 'a version 1 report: kvm only' }]);
  assert.deepEqual(Object.keys(r.workloads[0]!.results), ['memory/kvm', 'blk/kvm', 'native', 'bwrap']);
  assert.deepEqual(r.workloads[0]!.results['memory/kvm'], { value: 44, detail: { exitsPerOp: 1 } });
  assert.ok(markdownTable(r).includes('| memory/kvm vs blk/kvm | memory/kvm vs native |'));
  // A v1 report with a v2 mode name, or an unknown one, is refused.
  const bad = JSON.parse(JSON.stringify(v1));
  bad.workloads[0].results['memory/kvm'] = { value: 1 };
  assert.throws(() => validateReport(bad), /workloads\[0\]\.results\.memory\/kvm: unknown mode \(expected one of memory, blk, native, bwrap in a version 1 report\)/);
});

test('validateReport drops unknown fields and returns a copy', () => {
  const o = JSON.parse(toJSON(sample())) as Record<string, any>;
  o.extra = 1;
  o.workloads[0].extra = 2;
  const r = validateReport(o);
  assert.deepEqual(r, sample());
  assert.notEqual(r.workloads, o.workloads);
});

/* ----------------------------------------------------------------------------------------------- */

/** Checks that `xml` is well-formed enough: one root, balanced and properly nested tags, quoted attributes, escaped text. */
function assertWellFormed(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const token = /<!--[\s\S]*?-->|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|<|([^<]+)/g;
  const stack: string[] = [];
  let roots = 0;
  let m: RegExpExecArray | null;
  while ((m = token.exec(body)) !== null) {
    const [whole, close, name, , selfClose, chars] = m;
    if (whole.startsWith('<!--')) continue;
    if (chars !== undefined) {
      if (stack.length === 0) assert.match(chars, /^\s*$/, 'text outside the root element');
      const stray = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.exec(chars);
      assert.equal(stray, null, `unescaped & near ${JSON.stringify(chars.slice(0, 60))}`);
      continue;
    }
    assert.ok(name !== undefined, `malformed tag at offset ${m.index}: ${JSON.stringify(body.slice(m.index, m.index + 60))}`);
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element at offset ${m.index}`);
    } else {
      if (stack.length === 0) roots++;
      if (!selfClose) stack.push(name);
    }
    for (const a of m[3]!.matchAll(/="([^"]*)"/g)) assert.equal(/&(?!(?:amp|lt|gt|quot|apos|#\d+);)/.exec(a[1]!), null, 'unescaped & in an attribute');
  }
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.equal(roots, 1, 'exactly one root element');
}

test('assertWellFormed catches what it should', () => {
  assertWellFormed('<?xml version="1.0"?>\n<svg a="1"><g><text>a &amp; b</text></g><rect/></svg>\n');
  assert.throws(() => assertWellFormed('<svg><g></svg>'));
  assert.throws(() => assertWellFormed('<svg></g></svg>'));
  assert.throws(() => assertWellFormed('<svg><text>a < b</text></svg>'));
  assert.throws(() => assertWellFormed('<svg><text>a & b</text></svg>'));
  assert.throws(() => assertWellFormed('<svg x=1></svg>'));
  assert.throws(() => assertWellFormed('<svg></svg><svg></svg>'));
});

/** The bars of the workload `id`: mode → width. */
function barWidths(svg: string, id: string): Map<Mode, number> {
  const g = new RegExp(`<g class="workload" data-id="${id}">([\\s\\S]*?)</g>`).exec(svg);
  assert.ok(g, `group for ${id}`);
  const out = new Map<Mode, number>();
  for (const b of g[1]!.matchAll(/<rect class="bar" data-mode="([\w/]+)"[^>]* width="([\d.]+)"/g)) out.set(b[1] as Mode, Number(b[2]));
  return out;
}

test('svgChart: well-formed, one name <text> per workload, legend per present mode, escaped text', () => {
  const r = sample();
  const svg = svgChart(r);
  assertWellFormed(svg);
  assert.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="900" height="\d+"/);
  assert.ok(svg.includes('mapvisor bench: speed relative to native, log scale'));
  assert.ok(svg.includes('2025-01-14 10:32 UTC') && svg.includes('16 CPUs') && svg.includes('quick run'));
  assert.ok(svg.includes('platforms kvm + process'));
  assert.match(svgChart(kvmOnly()), /[ >]platform kvm</);
  assert.ok(!svg.includes('font-family="') || !/font-family="(?!sans-serif")/.test(svg), 'only sans-serif');
  assert.ok(!/@import|url\(|href=/.test(svg), 'standalone');

  // One <text class="name"> per workload (long names wrap into a <tspan>).
  const names = [...svg.matchAll(/<text class="name"[^>]*>(.*?)<\/text>/g)].map((m) => m[1]!.replace(/<[^>]*>/g, ' ').replace(/ +/g, ' ').trim());
  assert.deepEqual(names, [
    'sequential read, 4 KiB read()s',
    'sequential read, 1 MiB read()s',
    'random 4 KiB pread()s',
    'random 4 KiB reads through a mapping',
    'sqlite3: 10k SELECTs &lt;mmap_size&gt; &amp; &quot;friends&quot;',
    'host memory for 4 VMs mapping the same file',
  ]);
  assert.ok(!svg.includes('<mmap_size>'));

  const legendOf = (x: string): string[] => [...x.matchAll(/<g class="legend-item" data-mode="([\w/]+)">/g)].map((m) => m[1]!);
  assert.deepEqual(legendOf(svg), ['memory/kvm', 'blk/kvm', 'memory/process', 'blk/process', 'native', 'bwrap']);
  assert.ok(svg.includes('memory/process — process platform, image mapped'));
  // A report without bwrap has no bwrap legend entry; one without process no process entries.
  const r2 = sample();
  for (const w of r2.workloads) delete w.results.bwrap;
  assert.deepEqual(legendOf(svgChart(r2)), ['memory/kvm', 'blk/kvm', 'memory/process', 'blk/process', 'native']);
  assert.deepEqual(legendOf(svgChart(kvmOnly())), ['memory/kvm', 'blk/kvm', 'native', 'bwrap']);
  // The kvm and process bars of a storage path have different colours.
  const fill = (m: string): string => new RegExp(`data-mode="${m}"[^>]*fill="(#[0-9a-f]{6})"`).exec(svg)![1]!;
  assert.equal(new Set(MODES.map(fill)).size, MODES.length);

  // Axis labels, values with units, the (vs blk/kvm) mark on the workload without native.
  for (const s of ['10× slower', '1× = native', '10× faster', '812 MiB/s', '3.10 µs/op', '212 ms']) assert.ok(svg.includes(s), s);
  const sqliteGroup = /<g class="workload" data-id="sqlite">[\s\S]*?<\/g>/.exec(svg)![0];
  assert.ok(sqliteGroup.includes('(vs blk/kvm)'));
  assert.equal(svg.split('(vs blk/kvm)</tspan>').length - 1, 1);
});

test('svgChart: a faster mode gets a longer bar, native = 1×', () => {
  const r = sample();
  const svg = svgChart(r);
  for (const w of r.workloads) {
    const widths = barWidths(svg, w.id);
    const present = MODES.filter((m) => w.results[m] !== undefined);
    assert.deepEqual([...widths.keys()], present, `${w.id}: a bar per present mode`);
    for (const a of present)
      for (const b of present) {
        const ra = relativeSpeed(w, a)!;
        const rb = relativeSpeed(w, b)!;
        if (ra > rb) assert.ok(widths.get(a)! > widths.get(b)!, `${w.id}: ${a} (${ra}) longer than ${b} (${rb})`);
      }
  }
  // Lower is better: memory/kvm 3.1 µs vs native 0.92 µs → slower → shorter than native.
  const rp = barWidths(svg, 'rand-pread-4k');
  assert.ok(rp.get('memory/kvm')! < rp.get('native')!);
  assert.ok(rp.get('blk/kvm')! < rp.get('memory/kvm')!);
  // memory/process 1.55 µs beats memory/kvm 3.1 µs → longer.
  assert.ok(rp.get('memory/process')! > rp.get('memory/kvm')!);
  // Higher is better: memory/kvm 9120 vs native 7650 MiB/s → faster → longer.
  const sr = barWidths(svg, 'seq-read-1m');
  assert.ok(sr.get('memory/kvm')! > sr.get('native')!);
  // Every workload with native has the native bar end at the same place (the 1× line).
  const natives = r.workloads.filter((w) => w.results.native).map((w) => barWidths(svg, w.id).get('native'));
  assert.equal(new Set(natives).size, 1);
  // Relative to blk without native: blk at 1×.
  assert.equal(barWidths(svg, 'sqlite').get('blk/kvm'), natives[0]);
});

test('svgChart: odd reports still render well-formed', () => {
  const empty: BenchReport = { ...sample(), workloads: [] };
  assertWellFormed(svgChart(empty));
  const odd: BenchReport = {
    ...sample(),
    workloads: [
      { id: 'none', name: 'nothing measured', unit: 's', better: 'lower', results: {} },
      { id: 'nobase', name: 'only memory', unit: 's', better: 'lower', results: { 'memory/process': { value: 1 } } },
      { id: 'zero', name: 'zero & huge', unit: 'MiB', better: 'lower', results: { 'memory/kvm': { value: 0 }, native: { value: 1e9 }, 'blk/process': { value: 1e-9 } } },
      { id: 'ctl', name: 'control \u0001 chars \u2028', unit: 'ms', better: 'higher', results: { native: { value: 1 } } },
    ],
  };
  const svg = svgChart(odd);
  assertWellFormed(svg);
  assert.ok(!svg.includes('\u0001'));
  assert.ok(!/NaN|Infinity/.test(svg));
  assert.ok(markdownTable(odd).includes('| workload | memory/kvm | memory/process | blk/process | native |'));
  assert.ok(markdownTable(odd).includes('| nothing measured | — | — | — | — |'));
});

test('svgChart: renders a sample to /tmp/bench-sample.svg (and .png when a converter is installed)', () => {
  const svg = svgChart(sample());
  writeFileSync('/tmp/bench-sample.svg', svg);
  writeFileSync('/tmp/bench-sample.md', markdownTable(sample()));
  const xmllint = spawnSync('xmllint', ['--noout', '/tmp/bench-sample.svg'], { encoding: 'utf8' });
  if (!xmllint.error) assert.equal(xmllint.status, 0, xmllint.stderr);
  // For a person to look at; not required.
  const rsvg = spawnSync('rsvg-convert', ['-o', '/tmp/bench-sample.png', '/tmp/bench-sample.svg']);
  if (rsvg.error || rsvg.status !== 0) spawnSync('convert', ['/tmp/bench-sample.svg', '/tmp/bench-sample.png']);
});
