/**
 * npm run bench:storage — storage as memory, measured against native execution in the same run:
 *   reading a file with read() in 4 KiB and 1 MiB blocks, 4 KiB random pread()s, 4 KiB random reads
 *   through a mapping (with exits per access), a sqlite3 workload with and without PRAGMA mmap_size,
 *   and host memory for 4 VMs that map the same file.
 * Prints a Markdown table with the ratios. Not a test: nothing is asserted.  --quick for a short run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Sandbox, type SandboxResult } from '../src/index.js';
import { createImage } from '../src/image/create.js';
import { evict } from '../src/bench/run.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const quick = process.argv.includes('--quick');
const MB = 2 ** 20;
const progress = (s: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}`);
};

interface Row {
  name: string;
  vm: string;
  native: string;
  ratio: number;
  note: string;
}

/** "op bytes seconds sum" → seconds. */
function parseTime(out: string): number {
  const m = /^\S+ (\d+) ([\d.]+) /m.exec(out);
  if (!m) throw new Error(`unexpected output: ${out}`);
  return Number(m[2]);
}

function nativeRun(args: string[]): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function vmRun(image: string, args: string[], stdin?: string): Promise<SandboxResult> {
  const r = await Sandbox.run(args[0]!, args.slice(1), { image: `${image},ro`, stdout: 'pipe', stderr: 'pipe', ...(stdin !== undefined ? { stdin } : {}) });
  if (r.status !== 0) throw new Error(`${args.join(' ')} in the VM: ${r.stderr?.toString()} ${r.reason ?? ''}`);
  return r;
}

function exits(r: SandboxResult): number {
  return Object.values(r.stats!.exits).reduce((a, b) => a + b, 0);
}

/**
 * Exits a memory access can cause (a fault the VMM sees: KVM's EFAULT, or a guest exception), counted
 * within one run: the read loop makes no system calls, so these are its exits, with no subtraction.
 */
function faultExits(r: SandboxResult): number {
  const e = r.stats!.exits;
  return (e['memory fault'] ?? 0) + (e.exception ?? 0);
}

function best<T>(runs: T[], key: (t: T) => number): T {
  return runs.reduce((a, b) => (key(b) < key(a) ? b : a));
}

async function repeat<T>(n: number, f: () => Promise<T> | T): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

function rss(pid: number): { anon: number; file: number; shmem: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) * 1024;
  return { anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
}

/** Bytes of `path` in the host page cache (fincore, from util-linux). */
function cached(path: string): number | null {
  try {
    const out = execFileSync('fincore', ['-b', '-n', '-o', 'RES', path], { encoding: 'utf8' });
    return Number(out.trim());
  } catch {
    return null;
  }
}

/** Drop a file's clean pages from the page cache (GNU dd: iflag=nocache with count=0 advises DONTNEED). */
/** Start `count` holders of `file`, wait for "ready", measure, stop them. */
async function holders(count: number, cmd: (i: number) => string[]): Promise<{ pids: number[]; stop: () => Promise<void> }> {
  const kids = Array.from({ length: count }, (_, i) => spawn(cmd(i)[0]!, cmd(i).slice(1), { stdio: ['ignore', 'pipe', 'inherit'] }));
  await Promise.all(kids.map((k) => new Promise<void>((resolve, reject) => {
    k.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    k.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  })));
  return {
    pids: kids.map((k) => k.pid!),
    stop: async () => {
      for (const k of kids) k.kill('SIGKILL');
      await Promise.all(kids.map((k) => new Promise((r) => k.on('close', r))));
    },
  };
}

async function main(): Promise<void> {
  if (!existsSync(guest('readbench'))) {
    console.error('bench: fixtures missing; run node scripts/fixtures.mjs (npm test does it)');
    process.exit(1);
  }
  const dir = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-bench-'));
  const rows: Row[] = [];
  try {
    const dataMB = quick ? 64 : 256;
    const stage = join(dir, 'stage');
    mkdirSync(join(stage, 'bin'), { recursive: true });
    mkdirSync(join(stage, 'data'), { recursive: true });
    copyFileSync(guest('readbench'), join(stage, 'bin', 'readbench'));
    chmodSync(join(stage, 'bin', 'readbench'), 0o755);
    progress(`writing a ${dataMB} MiB file`);
    const data = join(stage, 'data', 'big');
    const fd = openSync(data, 'w');
    for (let i = 0; i < dataMB; i++) writeSync(fd, randomBytes(MB));
    closeSync(fd);
    progress('making the image');
    const image = join(dir, 'bench.img');
    const sqlite = !quick || process.argv.includes('--sqlite');
    await createImage({
      out: image,
      debian: sqlite ? ['sqlite3'] : [],
      add: [{ host: stage, dir: '/' }],
      progress: (l) => progress(l),
    });
    const runs = quick ? 3 : 5;

    // Sequential read() in 4 KiB and 1 MiB blocks.
    for (const bs of [4096, MB]) {
      progress(`sequential read, ${bs} B blocks`);
      const vm = best(await repeat(runs, () => vmRun(image, ['/bin/readbench', 'seq', '/data/big', String(bs)])), (r) => parseTime(r.stdout!.toString()));
      const nat = Math.min(...(await repeat(runs, () => parseTime(nativeRun([guest('readbench'), 'seq', data, String(bs)])))));
      const t = parseTime(vm.stdout!.toString());
      const ops = (dataMB * MB) / bs;
      rows.push({
        name: `read ${dataMB} MiB with read() in ${bs >= MB ? '1 MiB' : '4 KiB'} blocks`,
        vm: `${((dataMB * MB) / t / MB).toFixed(0)} MiB/s`,
        native: `${((dataMB * MB) / nat / MB).toFixed(0)} MiB/s`,
        ratio: t / nat,
        note: `${(exits(vm) / ops).toFixed(2)} exits and ${(vm.stats!.fileBytesRead / ops / 1024).toFixed(0)} KiB copied by the VMM per read()`,
      });
    }

    // Random 4 KiB pread().
    const nPread = quick ? 5000 : 20000;
    progress('random 4 KiB pread');
    const pv = best(await repeat(runs, () => vmRun(image, ['/bin/readbench', 'pread', '/data/big', String(nPread)])), (r) => parseTime(r.stdout!.toString()));
    const pn = Math.min(...(await repeat(runs, () => parseTime(nativeRun([guest('readbench'), 'pread', data, String(nPread)])))));
    const pt = parseTime(pv.stdout!.toString());
    rows.push({
      name: '4 KiB random pread()',
      vm: `${((pt / nPread) * 1e6).toFixed(2)} µs/op`,
      native: `${((pn / nPread) * 1e6).toFixed(2)} µs/op`,
      ratio: pt / pn,
      note: `${(exits(pv) / nPread).toFixed(2)} exits per pread (one syscall = one VM exit)`,
    });

    // Random 4 KiB reads through a mapping; the exits they cause, counted in the same run.
    const nMap = quick ? 200_000 : 2_000_000;
    progress('random 4 KiB reads through a mapping');
    const mv = best(await repeat(runs, () => vmRun(image, ['/bin/readbench', 'map', '/data/big', String(nMap)])), (r) => parseTime(r.stdout!.toString()));
    const mn = Math.min(...(await repeat(runs, () => parseTime(nativeRun([guest('readbench'), 'map', data, String(nMap)])))));
    const mt = parseTime(mv.stdout!.toString());
    rows.push({
      name: '4 KiB random reads through a mapping',
      vm: `${((mt / nMap) * 1e9).toFixed(0)} ns/op`,
      native: `${((mn / nMap) * 1e9).toFixed(0)} ns/op`,
      ratio: mt / mn,
      note: `${(faultExits(mv) / nMap).toFixed(6)} exits per access once mapped; ${(mv.stats!.imageMappedBytes / MB).toFixed(0)} MiB of the image mapped`,
    });

    if (sqlite) await sqliteRows(image, dir, rows, runs);

    // Random reads through a mapping, cold: the first touch of each page included.
    progress('random 4 KiB reads through a mapping, cold');
    const cv = best(await repeat(runs, () => vmRun(image, ['/bin/readbench', 'map', '/data/big', String(nMap), 'cold'])), (r) => parseTime(r.stdout!.toString()));
    const cn = Math.min(...(await repeat(runs, () => parseTime(nativeRun([guest('readbench'), 'map', data, String(nMap), 'cold'])))));
    const ct = parseTime(cv.stdout!.toString());
    rows.push({
      name: '4 KiB random reads through a mapping, first touches included',
      vm: `${((ct / nMap) * 1e9).toFixed(0)} ns/op`,
      native: `${((cn / nMap) * 1e9).toFixed(0)} ns/op`,
      ratio: ct / cn,
      note: `a first touch costs a shadow-MMU fault in KVM here (no exit to the VMM: ${(faultExits(cv) / nMap).toFixed(6)} per access)`,
    });

    // Host memory for 4 VMs mapping the same file (all pages touched) vs one copy of it. The file's
    // pages are evicted from the page cache first, so what the holders bring in is what is counted.
    progress('memory: 4 VMs mapping one file');
    const cli = join(ROOT, 'bin', 'mapvisor.js');
    const N = 4;
    const base = await holders(1, () => [process.execPath, cli, 'run', '--image', `${image},ro`, '--', '/bin/readbench', 'hold', '/bin/readbench']);
    const baseAnon = base.pids.map(rss).reduce((a, r) => a + r.anon + r.shmem, 0);
    await base.stop();
    evict(image);
    const imageBefore = cached(image) ?? 0;
    const vms = await holders(N, () => [process.execPath, cli, 'run', '--image', `${image},ro`, '--', '/bin/readbench', 'hold', '/data/big']);
    const vmMem = vms.pids.map(rss);
    const imageAfter = cached(image);
    await vms.stop();
    evict(data);
    const dataBefore = cached(data) ?? 0;
    const nat = await holders(N, () => [guest('readbench'), 'hold', data]);
    const natMem = nat.pids.map(rss);
    const dataAfter = cached(data);
    await nat.stop();
    const imageCache = imageAfter === null ? null : imageAfter - imageBefore;
    const dataCache = dataAfter === null ? null : dataAfter - dataBefore;
    const own = vmMem.reduce((a, r) => a + Math.max(0, r.anon + r.shmem - baseAnon), 0);
    const natOwn = natMem.reduce((a, r) => a + r.anon + r.shmem, 0);
    const copy = dataMB * MB;
    if (imageCache !== null && dataCache !== null) {
      const vmTotal = imageCache + own;
      const natTotal = dataCache + natOwn;
      rows.push({
        name: `host memory, ${N} VMs mapping one ${dataMB} MiB file`,
        vm: `${(vmTotal / MB).toFixed(0)} MiB`,
        native: `${(natTotal / MB).toFixed(0)} MiB`,
        ratio: vmTotal / copy,
        note: `against one copy (${dataMB} MiB): page cache the 4 VMs brought in ${(imageCache / MB).toFixed(0)} MiB + their own memory beyond an idle VMM ${(own / MB).toFixed(1)} MiB (an idle VMM, Node included, holds ${(baseAnon / MB).toFixed(0)} MiB); natively ${(dataCache / MB).toFixed(0)} + ${(natOwn / MB).toFixed(1)} MiB`,
      });
    }
  } finally {
    progress('');
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('\n| workload | mapvisor | native | ratio | per operation |');
  console.log('|---|---:|---:|---:|---|');
  for (const r of rows) console.log(`| ${r.name} | ${r.vm} | ${r.native} | ${r.ratio.toFixed(2)}× | ${r.note} |`);
}

/** sqlite3 from the image (mapvisor) and the same Debian binary natively through its own loader. */
async function sqliteRows(image: string, dir: string, rows: Row[], runs: number): Promise<void> {
  const rootDir = join(dir, 'sqlite-root');
  mkdirSync(rootDir);
  execFileSync('debugfs', ['-R', `rdump / ${rootDir}`, image], { stdio: 'ignore' });
  const nativeSqlite = (db: string, sql: string): number => {
    const s = process.hrtime.bigint();
    const r = spawnSync(join(rootDir, 'lib64', 'ld-linux-x86-64.so.2'), ['--library-path', join(rootDir, 'usr/lib/x86_64-linux-gnu'), join(rootDir, 'usr/bin/sqlite3'), db], { input: sql, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`native sqlite3: ${r.stderr}`);
    return Number(process.hrtime.bigint() - s) / 1e9;
  };
  const rowsN = quick ? 20000 : 100000;
  const inserts = [`create table t(id integer primary key, k integer, v text);`, 'create index tk on t(k);'];
  for (let b = 0; b < rowsN; b += 1000) {
    inserts.push('begin;');
    for (let i = b; i < b + 1000; i++) inserts.push(`insert into t(k, v) values(${(i * 7919) % rowsN}, 'value-${i}');`);
    inserts.push('commit;');
  }
  const insertSql = inserts.join('\n');
  const queries = (mmap: boolean): string =>
    [mmap ? 'pragma mmap_size=268435456;' : 'pragma mmap_size=0;', ...Array.from({ length: quick ? 2000 : 10000 }, (_, i) => `select v from t where k=${(i * 104729) % rowsN};`)].join('\n');

  progress('sqlite3: inserts');
  const rw = join(dir, 'sqlite-rw.img');
  const timeVm = async (sql: string, fresh: boolean): Promise<number> => {
    if (fresh) copyFileSync(image, rw);
    const s = process.hrtime.bigint();
    const r = await Sandbox.run('/usr/bin/sqlite3', ['/data/t.db'], { image: rw, stdin: sql, stdout: 'pipe', stderr: 'pipe' });
    if (r.status !== 0) throw new Error(`sqlite3 in the VM: ${r.stderr?.toString()}`);
    return Number(process.hrtime.bigint() - s) / 1e9;
  };
  const dbNative = join(dir, 'native.db');
  const insVm = Math.min(...(await repeat(runs, () => timeVm(insertSql, true))));
  const insNat = Math.min(...(await repeat(runs, () => {
    rmSync(dbNative, { force: true });
    return nativeSqlite(dbNative, insertSql);
  })));
  rows.push({ name: `sqlite3: ${rowsN} inserts in transactions of 1000`, vm: `${insVm.toFixed(2)} s`, native: `${insNat.toFixed(2)} s`, ratio: insVm / insNat, note: 'whole process, start-up included' });
  for (const mmap of [false, true]) {
    progress(`sqlite3: point queries, mmap_size ${mmap ? 'on' : 'off'}`);
    const q = queries(mmap);
    const vm = Math.min(...(await repeat(runs, () => timeVm(q, false))));
    const nat = Math.min(...(await repeat(runs, () => nativeSqlite(dbNative, q))));
    rows.push({ name: `sqlite3: indexed point queries, ${mmap ? 'PRAGMA mmap_size=256M' : 'no mmap'}`, vm: `${vm.toFixed(2)} s`, native: `${nat.toFixed(2)} s`, ratio: vm / nat, note: 'whole process, start-up included' });
  }
}

await main();
