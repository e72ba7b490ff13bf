import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import {
  MODES,
  formatNumber,
  formatRatio,
  markdownTable,
  ratio,
  relativeSpeed,
  svgChart,
  toJSON,
  validateReport,
  type BenchReport,
  type Mode,
  type WorkloadResult,
} from '../../src/bench/report.js';

const sample = (): BenchReport => ({
  version: 1,
  date: '2025-01-14T10:32:00Z',
  host: { kernel: '6.8.0-45-generic', cpus: 16, kvm: 'API 12', node: 'v20.11.1' },
  quick: true,
  workloads: [
    {
      id: 'seq-read-4k',
      name: 'sequential read, 4 KiB read()s',
      unit: 'MiB/s',
      better: 'higher',
      results: { memory: { value: 812.4, detail: { 'exits/op': 1 } }, blk: { value: 95.2 }, native: { value: 5230 }, bwrap: { value: 5012 } },
      note: 'memory mode pays one VM exit per read() too',
    },
    {
      id: 'seq-read-1m',
      name: 'sequential read, 1 MiB read()s',
      unit: 'MiB/s',
      better: 'higher',
      results: { memory: { value: 9120 }, blk: { value: 1410 }, native: { value: 7650 }, bwrap: { value: 7590 } },
    },
    {
      id: 'rand-pread-4k',
      name: 'random 4 KiB pread()s',
      unit: 'µs/op',
      better: 'lower',
      results: { memory: { value: 3.1 }, blk: { value: 41.7, detail: { 'cache hits': 0.12 } }, native: { value: 0.92 }, bwrap: { value: 0.95 } },
    },
    {
      id: 'mmap-rand-4k',
      name: 'random 4 KiB reads through a mapping',
      unit: 'ns/op',
      better: 'lower',
      results: { memory: { value: 38 }, blk: { value: 2950 }, native: { value: 41 } },
      note: 'bwrap not installed',
    },
    {
      id: 'sqlite',
      name: 'sqlite3: 10k SELECTs <mmap_size> & "friends"',
      unit: 'ms',
      better: 'lower',
      results: { memory: { value: 212 }, blk: { value: 655 } },
      note: 'no native sqlite3 on the host',
    },
    {
      id: 'shared-mem',
      name: 'host memory for 4 VMs mapping the same file',
      unit: 'MiB',
      better: 'lower',
      results: { memory: { value: 131 }, blk: { value: 1090 }, native: { value: 128 } },
    },
  ],
});

const wl = (better: 'lower' | 'higher', results: WorkloadResult['results']): WorkloadResult => ({
  id: 'x',
  name: 'x',
  unit: 'ms',
  better,
  results,
});

/* ----------------------------------------------------------------------------------------------- */

test('ratio: higher is better', () => {
  const w = wl('higher', { memory: { value: 200 }, native: { value: 100 } });
  assert.equal(ratio(w, 'memory', 'native'), 2);
  assert.equal(ratio(w, 'native', 'memory'), 0.5);
});

test('ratio: lower is better', () => {
  const w = wl('lower', { memory: { value: 2 }, blk: { value: 24.6 } });
  assert.ok(Math.abs(ratio(w, 'memory', 'blk')! - 12.3) < 1e-12);
  assert.ok(Math.abs(ratio(w, 'blk', 'memory')! - 1 / 12.3) < 1e-12);
});

test('ratio: null for a missing mode or a zero value', () => {
  const w = wl('lower', { memory: { value: 2 }, blk: { value: 0 } });
  assert.equal(ratio(w, 'memory', 'native'), null);
  assert.equal(ratio(w, 'bwrap', 'memory'), null);
  assert.equal(ratio(w, 'memory', 'blk'), null);
  assert.equal(ratio(w, 'blk', 'memory'), null);
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

test('markdownTable: header with every mode, a row per workload, — for absent, ratio text, notes', () => {
  const r = sample();
  const md = markdownTable(r);
  const lines = md.trimEnd().split('\n');
  const header = lines[0]!.split('|').map((s) => s.trim());
  for (const m of MODES) assert.ok(header.includes(m), `header has ${m}`);
  assert.ok(header.includes('memory vs blk') && header.includes('memory vs native'));
  assert.match(lines[1]!, /^\|( -+:? \|)+$/);

  const rows = lines.slice(2).filter((l) => l.startsWith('|'));
  assert.equal(rows.length, r.workloads.length);
  const cells = (i: number): string[] => rows[i]!.slice(2, -2).split(' | ');
  for (const row of rows.map((_, i) => cells(i))) assert.equal(row.length, 7);

  // seq-read-4k: 812/95.2 = 8.53× better than blk; 5230/812 = 6.44× worse than native.
  assert.deepEqual(cells(0), ['sequential read, 4 KiB read()s', '812 MiB/s', '95.2 MiB/s', '5230 MiB/s', '5010 MiB/s', '8.53× better', '6.44× worse']);
  // lower is better: 41.7/3.1 = 13.5× better; 3.1/0.92 = 3.37× worse.
  assert.equal(cells(2)[5], '13.5× better');
  assert.equal(cells(2)[6], '3.37× worse');
  // Absent bwrap; absent native and bwrap (and so no memory vs native).
  assert.equal(cells(3)[4], '—');
  assert.deepEqual(cells(4).slice(3), ['—', '—', '3.09× better', '—']);
  // "|" in a name does not split a cell.
  const r2 = sample();
  r2.workloads[0]!.name = 'a | b';
  assert.match(markdownTable(r2), /\| a \\\| b \|/);

  // Notes as a bullet list after the table.
  const bullets = lines.filter((l) => l.startsWith('- '));
  assert.deepEqual(bullets, [
    '- sequential read, 4 KiB read()s: memory mode pays one VM exit per read() too',
    '- random 4 KiB reads through a mapping: bwrap not installed',
    '- sqlite3: 10k SELECTs <mmap_size> & "friends": no native sqlite3 on the host',
  ]);
});

/* ----------------------------------------------------------------------------------------------- */

test('toJSON → validateReport round trip equals the input; output is stable', () => {
  const r = sample();
  const s = toJSON(r);
  assert.deepEqual(validateReport(JSON.parse(s)), r);
  assert.ok(s.endsWith('}\n') && s.includes('\n  "version": 1,'));
  // Key order of the input does not change the text.
  const shuffled = JSON.parse(s) as BenchReport;
  const w = shuffled.workloads[0]!;
  shuffled.workloads[0] = { results: { bwrap: w.results.bwrap!, native: w.results.native!, blk: w.results.blk!, memory: w.results.memory! }, better: w.better, unit: w.unit, name: w.name, id: w.id, note: w.note! };
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
  bad((o) => (o.version = 2), /version: expected 1, got 2/);
  bad((o) => delete o.version, /version: expected 1, got undefined/);
  bad((o) => delete o.date, /report\.date: missing/);
  bad((o) => delete o.host, /host: missing/);
  bad((o) => delete o.host.kernel, /host\.kernel: missing/);
  bad((o) => (o.host.cpus = 0), /host\.cpus: expected a positive integer/);
  bad((o) => (o.quick = 'yes'), /quick: expected a boolean/);
  bad((o) => delete o.workloads, /workloads: missing/);
  bad((o) => (o.workloads = {}), /workloads: expected an array/);
  bad((o) => delete o.workloads[1].unit, /workloads\[1\]\.unit: missing/);
  bad((o) => (o.workloads[1].id = ''), /workloads\[1\]\.id: must not be empty/);
  bad((o) => (o.workloads[1].id = 'seq-read-4k'), /workloads\[1\]\.id: duplicate id "seq-read-4k"/);
  bad((o) => (o.workloads[2].better = 'faster'), /workloads\[2\]\.better: expected "lower" or "higher", got "faster"/);
  bad((o) => delete o.workloads[2].results, /workloads\[2\]\.results: missing/);
  bad((o) => (o.workloads[2].results.qemu = { value: 1 }), /workloads\[2\]\.results\.qemu: unknown mode \(expected one of memory, blk, native, bwrap\)/);
  bad((o) => delete o.workloads[0].results.blk.value, /workloads\[0\]\.results\.blk\.value: missing/);
  bad((o) => (o.workloads[0].results.blk.value = '95'), /workloads\[0\]\.results\.blk\.value: expected a number, got "95"/);
  bad((o) => (o.workloads[0].results.blk.value = -1), /workloads\[0\]\.results\.blk\.value: must not be negative/);
  bad((o) => (o.workloads[0].results.memory.detail = { 'exits/op': true }), /workloads\[0\]\.results\.memory\.detail\.exits\/op: expected a number or a string/);
  bad((o) => (o.workloads[0].note = 3), /workloads\[0\]\.note: expected a string/);
  // Non-finite values (only reachable from objects, JSON has none).
  for (const v of [NaN, Infinity, -Infinity]) {
    bad((o) => (o.workloads[3].results.native.value = v), /workloads\[3\]\.results\.native\.value: must be a finite number/);
    bad((o) => (o.workloads[0].results.memory.detail['exits/op'] = v), /detail\.exits\/op: must be a finite number/);
  }
  // Every message starts the same way.
  assert.throws(() => validateReport({ version: 1 }), /^Error: invalid bench report: /);
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
  for (const b of g[1]!.matchAll(/<rect class="bar" data-mode="(\w+)"[^>]* width="([\d.]+)"/g)) out.set(b[1] as Mode, Number(b[2]));
  return out;
}

test('svgChart: well-formed, one name <text> per workload, legend per present mode, escaped text', () => {
  const r = sample();
  const svg = svgChart(r);
  assertWellFormed(svg);
  assert.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="900" height="\d+"/);
  assert.ok(svg.includes('mapvisor bench: speed relative to native, log scale'));
  assert.ok(svg.includes('2025-01-14 10:32 UTC') && svg.includes('16 CPUs') && svg.includes('quick run'));
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

  const legend = [...svg.matchAll(/<g class="legend-item" data-mode="(\w+)">/g)].map((m) => m[1]);
  assert.deepEqual(legend, ['memory', 'blk', 'native', 'bwrap']);
  // A report without bwrap has no bwrap legend entry.
  const r2 = sample();
  for (const w of r2.workloads) delete w.results.bwrap;
  const legend2 = [...svgChart(r2).matchAll(/<g class="legend-item" data-mode="(\w+)">/g)].map((m) => m[1]);
  assert.deepEqual(legend2, ['memory', 'blk', 'native']);

  // Axis labels, values with units, the (vs blk) mark on the workload without native.
  for (const s of ['10× slower', '1× = native', '10× faster', '812 MiB/s', '3.10 µs/op', '212 ms']) assert.ok(svg.includes(s), s);
  const sqliteGroup = /<g class="workload" data-id="sqlite">[\s\S]*?<\/g>/.exec(svg)![0];
  assert.ok(sqliteGroup.includes('(vs blk)'));
  assert.equal(svg.split('(vs blk)</tspan>').length - 1, 1);
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
  // Lower is better: memory 3.1 µs vs native 0.92 µs → slower → shorter than native.
  const rp = barWidths(svg, 'rand-pread-4k');
  assert.ok(rp.get('memory')! < rp.get('native')!);
  assert.ok(rp.get('blk')! < rp.get('memory')!);
  // Higher is better: memory 9120 vs native 7650 MiB/s → faster → longer.
  const sr = barWidths(svg, 'seq-read-1m');
  assert.ok(sr.get('memory')! > sr.get('native')!);
  // Every workload with native has the native bar end at the same place (the 1× line).
  const natives = r.workloads.filter((w) => w.results.native).map((w) => barWidths(svg, w.id).get('native'));
  assert.equal(new Set(natives).size, 1);
  // Relative to blk without native: blk at 1×.
  assert.equal(barWidths(svg, 'sqlite').get('blk'), natives[0]);
});

test('svgChart: odd reports still render well-formed', () => {
  const empty: BenchReport = { ...sample(), workloads: [] };
  assertWellFormed(svgChart(empty));
  const odd: BenchReport = {
    ...sample(),
    workloads: [
      { id: 'none', name: 'nothing measured', unit: 's', better: 'lower', results: {} },
      { id: 'nobase', name: 'only memory', unit: 's', better: 'lower', results: { memory: { value: 1 } } },
      { id: 'zero', name: 'zero & huge', unit: 'MiB', better: 'lower', results: { memory: { value: 0 }, native: { value: 1e9 }, blk: { value: 1e-9 } } },
      { id: 'ctl', name: 'control \u0001 chars \u2028', unit: 'ms', better: 'higher', results: { native: { value: 1 } } },
    ],
  };
  const svg = svgChart(odd);
  assertWellFormed(svg);
  assert.ok(!svg.includes('\u0001'));
  assert.ok(!/NaN|Infinity/.test(svg));
  assert.ok(markdownTable(odd).includes('| nothing measured | — | — | — | — | — | — |'));
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
