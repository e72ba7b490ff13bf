/**
 * `mapvisor bench`: the storage workloads in every mode, in one run. Modes: on each mapvisor platform
 * measured (kvm, process), the image mapped into memory ('memory/kvm', 'memory/process') and through
 * the block device and its cache ('blk/kvm', 'blk/process'); the same program natively on the host
 * ('native'), and under bubblewrap ('bwrap', when installed). Every ratio the report prints is between
 * figures measured here, in this run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage } from '../image/create.js';
import { Sandbox, type SandboxOptions, type SandboxResult } from '../sandbox/sandbox.js';
import { MapvisorError } from '../errors.js';
import { platformOf, storageOf, vmMode, type BenchReport, type Measurement, type Mode, type Platform, type PlatformStatus, type WorkloadResult } from './report.js';
import { hostActivity, processTree } from './host.js';
import { rootPath } from '../util/paths.js';

const MB = 2 ** 20;

export interface BenchOptions {
  quick: boolean;
  /** Workload ids (or prefixes) to run; null: all. */
  only: string[] | null;
  /** VMs in the sharing workload. */
  vms: number;
  /** Every platform, and whether to measure it (pickPlatforms in host.ts); mapvisor modes run on the measured ones. */
  platforms: PlatformStatus[];
  /** Host paths of the guest programs the workloads run (readbench, static). */
  readbench: string;
  progress: (line: string) => void;
}

interface Ctx {
  opts: BenchOptions;
  dir: string;
  image: string;
  /** The image's tree on the host, for native and bwrap runs. */
  root: string;
  dataMB: number;
  runs: number;
  bwrap: boolean;
}

/** A program run in one mode; returns its stdout and, for VMs, the stats. */
type Runner = (args: string[], opts?: { stdin?: string; image?: string; rw?: boolean; blkMmap?: 'eager' | 'fault' }) => Promise<{ out: string; ms: number; vm: SandboxResult | null }>;

/** A mode's name as a file-name part: 'memory/kvm' → 'memory-kvm'. */
const fileTag = (m: Mode): string => m.replace(/\//g, '-');
/** Whether a mode runs the program in mapvisor (on a platform, from the image). */
const inMapvisor = (m: Mode): boolean => platformOf(m) !== null;

function runners(ctx: Ctx): Partial<Record<Mode, Runner>> {
  const vm =
    (storage: 'memory' | 'blk', platform: Platform): Runner =>
    async (args, o = {}) => {
      const t0 = process.hrtime.bigint();
      const sb: SandboxOptions = {
        image: `${o.image ?? ctx.image}${o.rw ? '' : ',ro'}`,
        storage,
        platform,
        stdout: 'pipe',
        stderr: 'pipe',
        ...(o.stdin !== undefined ? { stdin: o.stdin } : { stdin: 'ignore' }),
        ...(storage === 'blk' && o.blkMmap ? { blkMmap: o.blkMmap } : {}),
      };
      const r = await Sandbox.run(args[0]!, args.slice(1), sb);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${args.join(' ')} (${storage}/${platform}) exited ${r.status}: ${r.stderr?.toString().trim()} ${r.reason ?? ''}`);
      return { out: r.stdout!.toString(), ms, vm: r };
    };
  const host =
    (wrap: (argv: string[], root: string) => string[]): Runner =>
    async (args, o = {}) => {
      const root = o.image ? o.image : ctx.root;
      const argv = wrap(args, root);
      const t0 = process.hrtime.bigint();
      const r = spawnSync(argv[0]!, argv.slice(1), { input: o.stdin ?? '', encoding: 'utf8', maxBuffer: 1 << 28 });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
      return { out: r.stdout, ms, vm: null };
    };
  // Natively, the programs run from the image's tree on the host (dynamic ones through its own loader).
  const native = host((args, root) => {
    const exe = join(root, args[0]!);
    const rest = args.slice(1).map((a) => (a.startsWith('/data/') ? join(root, a) : a));
    if (args[0]!.startsWith('/usr/bin/')) return [join(root, 'lib64/ld-linux-x86-64.so.2'), '--library-path', join(root, 'usr/lib/x86_64-linux-gnu'), exe, ...rest];
    return [exe, ...rest];
  });
  const out: Partial<Record<Mode, Runner>> = {};
  for (const p of ctx.opts.platforms.filter((x) => x.measured).map((x) => x.name)) {
    out[vmMode('memory', p)] = vm('memory', p);
    out[vmMode('blk', p)] = vm('blk', p);
  }
  out.native = native;
  if (ctx.bwrap) {
    out.bwrap = host((args, root) => ['bwrap', '--bind', root, '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--', ...args]);
  }
  return out;
}

/** "op bytes seconds sum" from readbench → seconds. */
function seconds(out: string): number {
  const m = /^\S+ (\d+) ([\d.]+) /m.exec(out);
  if (!m) throw new Error(`unexpected benchmark output: ${out.slice(0, 200)}`);
  return Number(m[2]);
}

function exitCount(r: SandboxResult | null): number {
  return r ? Object.values(r.stats!.exits).reduce((a, b) => a + b, 0) : 0;
}

/**
 * Per-mode details the table's notes and the JSON carry. exits: every time the program's code stopped
 * for the kernel — VM exits on kvm, intercepted events (system calls, faults, kicks) on process.
 */
function detail(r: SandboxResult | null, ops: number): Record<string, number> {
  if (!r?.stats) return {};
  const s = r.stats;
  const d: Record<string, number> = {
    exits: exitCount(r),
    ops,
    exitsPerOp: exitCount(r) / ops,
    syscallsPerOp: s.totalSyscalls / ops,
    vmmBytesCopiedPerOp: (s.fileBytesRead + s.fileBytesWritten) / ops,
    mapChanges: s.mapChanges,
    imageMappedMiB: s.imageMappedBytes / MB,
  };
  if (s.block) {
    d.blockRequests = s.block.requests;
    d.cacheHits = s.block.hits;
    d.cacheMisses = s.block.misses;
    d.cacheMiB = s.block.cachedBytes / MB;
  }
  return d;
}

/** Drop a file's clean pages from the host page cache (GNU dd: iflag=nocache count=0 → DONTNEED). */
/** Drops a file's pages from the host page cache (after writing back any dirty ones). */
export function evict(path: string): void {
  spawnSync('sync', [path]);
  spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
}

async function best<T>(n: number, f: () => Promise<T>, key: (t: T) => number): Promise<T> {
  let b: T | null = null;
  for (let i = 0; i < n; i++) {
    const t = await f();
    if (b === null || key(t) < key(b)) b = t;
  }
  return b!;
}

interface Workload {
  id: string;
  name: string;
  unit: string;
  better: 'lower' | 'higher';
  note?: string;
  run: (ctx: Ctx, mode: Mode, run: Runner) => Promise<Measurement>;
}

function workloads(ctx: Ctx): Workload[] {
  const big = '/data/big';
  const rb = '/bin/readbench';
  const size = ctx.dataMB * MB;
  const nPread = ctx.opts.quick ? 4000 : 20000;
  const nMap = ctx.opts.quick ? 300_000 : 2_000_000;
  const nWrite = ctx.opts.quick ? 2000 : 10000;
  const seq = (bs: number, cold: boolean): Workload['run'] => async (c, mode, run) => {
    const r = await best(
      cold ? 1 : c.runs,
      async () => {
        if (cold) evict(inMapvisor(mode) ? c.image : join(c.root, big));
        return run([rb, 'seq', big, String(bs)]);
      },
      (x) => seconds(x.out),
    );
    return { value: size / MB / seconds(r.out), detail: detail(r.vm, size / bs) };
  };
  const sqlRows = ctx.opts.quick ? 10000 : 50000;
  const insertSql = (): string => {
    const s = ['create table t(id integer primary key, k integer, v text);', 'create index tk on t(k);'];
    for (let b = 0; b < sqlRows; b += 1000) {
      s.push('begin;');
      for (let i = b; i < b + 1000; i++) s.push(`insert into t(k, v) values(${(i * 7919) % sqlRows}, 'value-${i}');`);
      s.push('commit;');
    }
    return s.join('\n');
  };
  const nQueries = ctx.opts.quick ? 1000 : 5000;
  const querySql = (): string =>
    ['pragma mmap_size=268435456;', ...Array.from({ length: nQueries }, (_, i) => `select v from t where k=${(i * 104729) % sqlRows};`)].join('\n');
  return [
    {
      id: 'seq-read-4k',
      name: 'sequential read, 4 KiB read()s (warm host cache)',
      unit: 'MiB/s',
      better: 'higher',
      note: 'one VM exit (kvm) or interception (process) per read() in every mapvisor mode: memory mode saves the block layer, not the exit',
      run: seq(4096, false),
    },
    { id: 'seq-read-1m', name: 'sequential read, 1 MiB read()s (warm host cache)', unit: 'MiB/s', better: 'higher', run: seq(MB, false) },
    {
      id: 'seq-read-1m-cold',
      name: 'sequential read, 1 MiB read()s (cold host cache)',
      unit: 'MiB/s',
      better: 'higher',
      note: 'cold: the file (or image) is evicted from the host page cache before the run',
      run: seq(MB, true),
    },
    {
      id: 'rand-pread-4k',
      name: '4 KiB random pread()',
      unit: 'µs/op',
      better: 'lower',
      run: async (c, _m, run) => {
        const r = await best(c.runs, () => run([rb, 'pread', big, String(nPread)]), (x) => seconds(x.out));
        return { value: (seconds(r.out) / nPread) * 1e6, detail: detail(r.vm, nPread) };
      },
    },
    {
      id: 'rand-map-4k',
      name: '4 KiB random reads through a mapping',
      unit: 'ns/op',
      better: 'lower',
      note: 'memory mode maps the image\'s own pages on both platforms: zero exits (kvm) or interceptions (process) per access once mapped; blk mode copies the file into the sandbox at mmap time',
      run: async (c, _m, run) => {
        const r = await best(c.runs, () => run([rb, 'map', big, String(nMap)]), (x) => seconds(x.out));
        return { value: (seconds(r.out) / nMap) * 1e9, detail: detail(r.vm, nMap) };
      },
    },
    {
      id: 'rand-map-4k-cold',
      name: '4 KiB random reads through a fresh mapping (mmap and first touches included)',
      unit: 'ns/op',
      better: 'lower',
      note: 'cold: the mmap call and every first touch are in the timing; the blk baseline fills the whole mapping from its cache at mmap time (eager); on kvm, filling each page on first touch through userfaultfd (a fault plus a block read, as a guest kernel would) is measured too and shown as blk/kvm detail lazyFillNsPerOp (the process platform has no such mode)',
      run: async (c, mode, run) => {
        const cold = (blkMmap?: 'eager' | 'fault') =>
          best(c.runs, async () => {
            evict(inMapvisor(mode) ? c.image : join(c.root, big));
            return run([rb, 'map', big, String(nMap), 'cold'], blkMmap ? { blkMmap } : {});
          }, (x) => seconds(x.out));
        const r = await cold();
        const d = detail(r.vm, nMap);
        if (mode === 'blk/kvm') {
          const lazy = await cold('fault');
          d.lazyFillNsPerOp = (seconds(lazy.out) / nMap) * 1e9;
          d.lazyFillPages = lazy.vm?.stats?.pagesFilledOnFault ?? 0;
        }
        return { value: (seconds(r.out) / nMap) * 1e9, detail: d };
      },
    },
    {
      id: 'rand-write-fsync',
      name: '4 KiB random pwrite(), fdatasync every 16',
      unit: 'µs/op',
      better: 'lower',
      run: async (c, mode, run) => {
        // Writes go to a private copy of the image (memory/blk) or of the tree (native/bwrap).
        const target = join(c.dir, `w-${fileTag(mode)}`);
        let r;
        if (inMapvisor(mode)) {
          copyFileSync(c.image, target);
          r = await run([rb, 'write', big, String(nWrite), '16'], { image: target, rw: true });
        } else {
          r = await run([rb, 'write', big, String(nWrite), '16']);
        }
        rmSync(target, { force: true });
        return { value: (seconds(r.out) / nWrite) * 1e6, detail: detail(r.vm, nWrite) };
      },
    },
    {
      id: 'sqlite-insert',
      name: `sqlite3: ${sqlRows / 1000}k inserts in transactions of 1000`,
      unit: 'ms',
      better: 'lower',
      run: async (c, mode, run) => {
        const sql = insertSql();
        const r = await best(c.runs, async () => {
          const db = `/data/t-${fileTag(mode)}.db`;
          if (inMapvisor(mode)) {
            const target = join(c.dir, `s-${fileTag(mode)}.img`);
            copyFileSync(c.image, target);
            return run(['/usr/bin/sqlite3', db], { image: target, rw: true, stdin: sql });
          }
          rmSync(join(c.root, db), { force: true });
          return run(['/usr/bin/sqlite3', db], { stdin: sql });
        }, (x) => x.ms);
        return { value: r.ms, detail: detail(r.vm, sqlRows) };
      },
    },
    {
      id: 'sqlite-query',
      name: `sqlite3: ${nQueries} indexed point queries (mmap_size on)`,
      unit: 'ms',
      better: 'lower',
      note: 'whole sqlite3 processes, start-up included',
      run: async (c, mode, run) => {
        const sql = querySql();
        const db = `/data/t-${fileTag(mode)}.db`;
        const o = inMapvisor(mode) ? { image: join(c.dir, `s-${fileTag(mode)}.img`), rw: true } : {};
        const r = await best(c.runs, () => run(['/usr/bin/sqlite3', db], { ...o, stdin: sql }), (x) => x.ms);
        return { value: r.ms, detail: detail(r.vm, nQueries) };
      },
    },
    {
      id: 'startup-dynamic',
      name: 'start-up of a dynamic program (sqlite3 -version)',
      unit: 'ms',
      better: 'lower',
      note: 'memory mode executes the program and its libraries in place from the image; blk mode copies them in',
      run: async (c, _m, run) => {
        const r = await best(c.runs + 2, () => run(['/usr/bin/sqlite3', '-version']), (x) => x.ms);
        return { value: r.ms, detail: detail(r.vm, 1) };
      },
    },
    {
      id: 'share-vms',
      name: `host memory, ${ctx.opts.vms} sandboxes reading one ${ctx.dataMB} MiB file`,
      unit: 'MiB',
      better: 'lower',
      note: 'page cache the run brought in plus the readers\' own memory beyond an idle one (anonymous and shared memory of each one\'s process tree, counted once: PSS; on process that includes the program\'s own process); blk mode keeps a copy in each sandbox\'s cache',
      run: async (c, mode) => share(c, mode),
    },
  ];
}

/**
 * A reader's own memory: anonymous and shared-memory pages of its whole process tree, each page
 * counted once (proportional set sizes summed over the tree: a memfd both the VMM and the program's
 * process map counts once). File pages are not in it: they are the page cache, counted by fincore.
 */
function ownMemory(pid: number): number {
  let bytes = 0;
  for (const p of processTree(pid)) {
    try {
      const s = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
      bytes += kb('Pss_Anon') + kb('Pss_Shmem');
    } catch {
      // a process without an address space (exited, or a kernel thread): nothing to count
    }
  }
  return bytes;
}

function cachedBytes(path: string): number {
  try {
    return Number(execFileSync('fincore', ['-b', '-n', '-o', 'RES', path], { encoding: 'utf8' }).trim());
  } catch {
    throw new MapvisorError('ENOFINCORE', 'fincore (util-linux) is needed to measure the page cache', 'apt-get install util-linux');
  }
}

/** N readers of the same file held open: page cache brought in + each one's own memory beyond an idle one. */
async function share(c: Ctx, mode: Mode): Promise<Measurement> {
  const cli = rootPath('bin', 'mapvisor.js');
  const platform = platformOf(mode);
  const storage = storageOf(mode);
  const argv = (file: string): string[] => {
    if (platform !== null && storage !== null) {
      return [process.execPath, cli, 'run', '--platform', platform, '--storage', storage, '--cache', `${c.dataMB + 64}M`, '--image', `${c.image},ro`, '--', '/bin/readbench', 'readhold', file];
    }
    if (mode === 'native') return [join(c.root, 'bin/readbench'), 'readhold', join(c.root, file)];
    return ['bwrap', '--bind', c.root, '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--', '/bin/readbench', 'readhold', file];
  };
  const hold = async (n: number, file: string): Promise<{ own: number; stop: () => Promise<void> }> => {
    const kids = Array.from({ length: n }, () => spawn(argv(file)[0]!, argv(file).slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
    await Promise.all(
      kids.map(
        (k) =>
          new Promise<void>((resolve, reject) => {
            k.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
            k.on('exit', (code) => reject(new Error(`a reader (${mode}) exited with ${code}`)));
          }),
      ),
    );
    const own = kids.reduce((a, k) => a + ownMemory(k.pid!), 0);
    return {
      own,
      stop: async () => {
        for (const k of kids) k.kill('SIGKILL');
        await Promise.all(kids.map((k) => new Promise((r) => k.on('close', r))));
      },
    };
  };
  const idle = await hold(1, '/bin/readbench');
  const idleOwn = idle.own;
  await idle.stop();
  const file = platform !== null ? c.image : join(c.root, '/data/big');
  evict(file);
  const before = cachedBytes(file);
  const h = await hold(c.opts.vms, '/data/big');
  const cache = cachedBytes(file) - before;
  const own = Math.max(0, h.own - c.opts.vms * idleOwn);
  await h.stop();
  return { value: (cache + own) / MB, detail: { pageCacheMiB: cache / MB, ownMiB: own / MB, idleProcessMiB: idleOwn / MB, copies: (cache + own) / (c.dataMB * MB) } };
}

/** The workloads' ids, in the order they run. */
export const WORKLOAD_IDS = [
  'seq-read-4k', 'seq-read-1m', 'seq-read-1m-cold', 'rand-pread-4k', 'rand-map-4k', 'rand-map-4k-cold',
  'rand-write-fsync', 'sqlite-insert', 'sqlite-query', 'startup-dynamic', 'share-vms',
] as const;

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  if (opts.only && !WORKLOAD_IDS.some((id) => opts.only!.some((o) => id === o || id.startsWith(o)))) {
    throw new MapvisorError('EBENCHONLY', `--only ${opts.only.join(',')} names no workload`, `the workloads are: ${WORKLOAD_IDS.join(', ')}`);
  }
  if (!opts.platforms.some((p) => p.measured)) throw new MapvisorError('ENOPLATFORM', 'no mapvisor platform to measure', 'run mapvisor info');
  const activity = hostActivity();
  const dir = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-bench-'));
  try {
    const dataMB = opts.quick ? 64 : 512;
    const stage = join(dir, 'stage');
    mkdirSync(join(stage, 'bin'), { recursive: true });
    mkdirSync(join(stage, 'data'), { recursive: true });
    copyFileSync(opts.readbench, join(stage, 'bin', 'readbench'));
    chmodSync(join(stage, 'bin', 'readbench'), 0o755);
    opts.progress(`bench: writing a ${dataMB} MiB dataset`);
    const fd = openSync(join(stage, 'data', 'big'), 'w');
    for (let i = 0; i < dataMB; i++) writeSync(fd, randomBytes(MB));
    closeSync(fd);
    const image = join(dir, 'bench.img');
    await createImage({ out: image, debian: ['sqlite3'], add: [{ host: stage, dir: '/' }], progress: (l) => opts.progress(`bench: ${l}`) });
    opts.progress('bench: unpacking the image for native runs');
    const root = join(dir, 'root');
    mkdirSync(root);
    execFileSync('debugfs', ['-R', `rdump / ${root}`, image], { stdio: 'ignore' });
    const bwrap = spawnSync('bwrap', ['--ro-bind', '/', '/', '--unshare-all', '--', '/bin/true']).status === 0;
    const ctx: Ctx = { opts, dir, image, root, dataMB, runs: opts.quick ? 1 : 3, bwrap };
    const run = runners(ctx);
    const selected = workloads(ctx).filter((w) => !opts.only || opts.only.some((o) => w.id === o || w.id.startsWith(o)));
    if (selected.length === 0) throw new MapvisorError('EBENCHONLY', `--only ${opts.only?.join(',')} names no workload`, `the workloads are: ${workloads(ctx).map((w) => w.id).join(', ')}`);
    const results: WorkloadResult[] = [];
    let step = 0;
    const total = selected.length * Object.keys(run).length;
    for (const w of selected) {
      const res: Partial<Record<Mode, Measurement>> = {};
      for (const [mode, runner] of Object.entries(run) as Array<[Mode, Runner]>) {
        opts.progress(`bench: [${++step}/${total}] ${w.id} (${mode})`);
        res[mode] = await w.run(ctx, mode, runner);
      }
      results.push({ id: w.id, name: w.name, unit: w.unit, better: w.better, results: res, ...(w.note ? { note: w.note } : {}) });
    }
    const kvm = ['kvm_pvm', 'kvm_intel', 'kvm_amd'].find((m) => existsSync(`/sys/module/${m}`)) ?? 'kvm';
    const a = activity();
    return {
      version: 2,
      date: new Date().toISOString(),
      host: { kernel: release(), cpus: cpus().length, kvm, node: process.version, load: { start: a.loadStart, end: a.loadEnd, otherCpus: a.otherCpus } },
      quick: opts.quick,
      platforms: opts.platforms,
      skipped: bwrap ? [] : [{ what: 'bwrap', why: 'bubblewrap is not installed or cannot make namespaces here (apt-get install bubblewrap)' }],
      workloads: results,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
