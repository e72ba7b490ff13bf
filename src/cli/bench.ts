/** `mapvisor bench`: run the workloads in every mode, print the table, write JSON and an SVG chart. */
import { parseCommandLine } from './args.js';
import { writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { rootPath } from '../util/paths.js';
import { existsSync } from 'node:fs';
import { MapvisorError, UsageError } from '../errors.js';
import { runBench } from '../bench/run.js';
import { pickPlatforms } from '../bench/host.js';
import { markdownTable, svgChart, toJSON } from '../bench/report.js';

const USAGE = `usage: mapvisor bench [--quick] [--platform kvm|process|all] [--only ID[,ID...]] [--vms N] [--json FILE] [--svg FILE]

Measures storage workloads on each mapvisor platform, with the image mapped into memory
(memory/kvm, memory/process) and through a block device and a cache (blk/kvm, blk/process), natively,
and under bubblewrap (bwrap) when it is installed; prints the figures and the ratios (each naming its
platform) as Markdown tables. --platform chooses the platforms (default all: every platform that works
here; a platform that does not work is listed with the reason; MAPVISOR_PLATFORM does not change it).
--quick takes a minute or two per platform. Workloads: seq-read-4k, seq-read-1m, seq-read-1m-cold,
rand-pread-4k, rand-map-4k, rand-map-4k-cold, rand-write-fsync, sqlite-insert, sqlite-query, startup-dynamic, share-vms.
`;

export async function benchCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      quick: { type: 'boolean' },
      platform: { type: 'string' },
      only: { type: 'string', multiple: true },
      vms: { type: 'string' },
      json: { type: 'string' },
      svg: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'mapvisor bench --help',
  );
  const v = parsed.values;
  if (parsed.positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positionals[0])}`, 'see mapvisor bench --help');
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const vms = v.vms === undefined ? 4 : Number(v.vms);
  if (!Number.isInteger(vms) || vms < 1 || vms > 32) throw new UsageError(`--vms ${v.vms} is not a number from 1 to 32`, 'give --vms 4');
  for (const f of [v.json, v.svg]) {
    if (f !== undefined && !existsSync(dirname(f) || '.')) throw new UsageError(`the directory of ${f} does not exist`, 'create it first');
  }
  const platforms = pickPlatforms(v.platform ?? null);
  const readbench = rootPath('.cache', 'guest', 'readbench');
  if (!existsSync(readbench)) throw new MapvisorError('EBENCHFIXTURES', 'the benchmark programs are not built', 'run: node scripts/fixtures.mjs');
  const tty = process.stderr.isTTY;
  const report = await runBench({
    quick: v.quick ?? false,
    only: v.only ? v.only.flatMap((o) => o.split(',')).filter(Boolean) : null,
    vms,
    platforms: platforms.all.map((p) => ({ name: p.name, measured: p.measured, why: p.measured || p.works ? p.why : `does not work here: ${p.why}` })),
    readbench,
    progress: (line) => {
      if (tty) process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  process.stdout.write(markdownTable(report));
  if (v.json) writeFileSync(v.json, toJSON(report));
  if (v.svg) writeFileSync(v.svg, svgChart(report));
  if (v.json || v.svg) process.stderr.write(`mapvisor: wrote ${[v.json, v.svg].filter(Boolean).join(' and ')}\n`);
  return 0;
}
