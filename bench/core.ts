/**
 * npm run bench:core — the core's costs, each in mapvisor and natively on the host in the same run:
 *   start-to-exit of `busybox true`, the round trip of a trivial syscall (getppid in a loop), a
 *   CPU-bound loop; plus the C floor for the syscall round trip on this KVM (../shared/probes
 *   static-elf, built here when present) and what handing an exit to another thread costs.
 * Prints a Markdown table with the ratios. Not a test: nothing is asserted.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Sandbox } from '../src/sandbox/sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const quick = process.argv.includes('--quick');

function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Median of `runs` timings of `f` (ms). */
async function median(runs: number, f: () => Promise<void> | void): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = nowMs();
    await f();
    t.push(nowMs() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

async function inVm(program: string, args: string[], opts: Parameters<typeof Sandbox.run>[2] = {}): Promise<void> {
  const r = await Sandbox.run(program, args, { stdout: 'pipe', stdin: 'ignore', ...opts });
  if (r.status !== 0) throw new Error(`${program} ${args.join(' ')} exited ${r.status}: ${r.reason ?? ''}`);
}

function native(program: string, args: string[]): void {
  const r = spawnSync(program, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${program} exited ${r.status}`);
}

/**
 * The C floor: ../shared/probes static-elf (a VMM in C on the same KVM) running the probe's own
 * syscall-loop (20,000 getppid calls), minus the same VMM running a program that makes one call;
 * per syscall, in µs.
 */
function probeFloor(): number | null {
  const probes = join(ROOT, '..', 'shared', 'probes');
  if (!existsSync(join(probes, 'static-elf.c'))) return null;
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-probe-'));
  const PROBE_CALLS = 20000; // fixed in probes/syscall-loop.c
  try {
    cpSync(probes, dir, { recursive: true });
    execFileSync('chmod', ['-R', 'u+w', dir]);
    execFileSync('make', ['-s', 'static-elf', 'static-elf-stub.bin', 'syscall-loop'], { cwd: dir, stdio: 'ignore' });
    const time = (prog: string): number => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const s = nowMs();
        const r = spawnSync(join(dir, 'static-elf'), [prog], { cwd: dir, stdio: 'ignore' });
        if (r.status !== 0) throw new Error('static-elf failed');
        best = Math.min(best, nowMs() - s);
      }
      return best;
    };
    return ((time(join(dir, 'syscall-loop')) - time(guest('hello'))) * 1000) / PROBE_CALLS;
  } catch {
    return null;
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

interface Row {
  name: string;
  vm: number;
  base: number;
  unit: string;
  baseName: string;
  note?: string;
}

async function main(): Promise<void> {
  if (!existsSync(BUSYBOX) || !existsSync(guest('syscall-loop'))) {
    console.error('bench: fixtures missing; run node scripts/fixtures.mjs (npm test does it)');
    process.exit(1);
  }
  const runs = quick ? 3 : 7;
  const N = quick ? 5000 : 20000;
  const CPU = quick ? 200_000_000 : 1_000_000_000;
  const rows: Row[] = [];
  const progress = (s: string): void => {
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${s}`);
  };

  progress('start-up: busybox true');
  await inVm(BUSYBOX, ['true']); // warm the worker code and page cache
  const startVm = await median(runs, () => inVm(BUSYBOX, ['true']));
  const startNative = await median(runs, () => native(BUSYBOX, ['true']));
  rows.push({ name: 'start to exit, busybox true (Sandbox.run)', vm: startVm, base: startNative, unit: 'ms', baseName: 'native' });

  for (const ret of ['sregs', 'iretq'] as const) {
    progress(`syscall round trip (${ret})`);
    const small = await median(runs, () => inVm(guest('syscall-loop'), ['10'], { syscallReturn: ret }));
    const big = await median(runs, () => inVm(guest('syscall-loop'), [String(N)], { syscallReturn: ret }));
    const nSmall = await median(runs, () => native(guest('syscall-loop'), ['10']));
    const nBig = await median(runs, () => native(guest('syscall-loop'), [String(N * 10)]));
    rows.push({
      name: `getppid round trip, return by ${ret}`,
      vm: ((big - small) * 1000) / N,
      base: ((nBig - nSmall) * 1000) / (N * 10),
      unit: 'µs',
      baseName: 'native',
    });
  }
  progress('C floor (shared/probes static-elf)');
  const floor = probeFloor();
  if (floor !== null) {
    const best = rows.filter((r) => r.name.includes('round trip')).sort((a, b) => a.vm - b.vm)[0]!;
    rows.push({ name: `getppid round trip (${best.name.split('by ')[1]}) vs the C VMM on the same KVM`, vm: best.vm, base: floor, unit: 'µs', baseName: 'C probe' });
  }

  progress('CPU-bound loop');
  // Start-up is subtracted: the loop's own time with 1 iteration is measured too.
  const cpu = async (n: number, f: (n: number) => Promise<void> | void): Promise<number> => median(Math.min(runs, 3), () => f(n));
  const cpuVm = (await cpu(CPU, (n) => inVm(guest('cpu-loop'), [String(n)]))) - (await cpu(1, (n) => inVm(guest('cpu-loop'), [String(n)])));
  const cpuNative = (await cpu(CPU, (n) => native(guest('cpu-loop'), [String(n)]))) - (await cpu(1, (n) => native(guest('cpu-loop'), [String(n)])));
  rows.push({ name: `CPU-bound loop (${CPU / 1e6}M iterations, start-up subtracted)`, vm: cpuVm, base: cpuNative, unit: 'ms', baseName: 'native' });

  progress('exit handoff between threads');
  const hand = await handoffUs(quick ? 2000 : 20000);
  progress('');

  console.log('\n| measurement | mapvisor | baseline | ratio |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.vm.toFixed(2)} ${r.unit} | ${r.base.toFixed(2)} ${r.unit} (${r.baseName}) | ${(r.vm / r.base).toFixed(2)}× |`);
  }
  console.log(`\nHanding an exit to the kernel's owner thread and back (SharedArrayBuffer + Atomics.wait/notify between two workers): ${hand.toFixed(2)} µs per round trip.`);
  if (floor === null) console.log('(The C floor was not measured: ../shared/probes is not here.)');
}

await main();
