/**
 * npm run bench:threads — threads as vCPUs against native threads, in the same run: the round trip of a
 * condition-variable ping-pong between two threads (futex wake + wait each way), and a CPU-bound job
 * on 1 and 2 threads (the parallel speed-up). Prints a Markdown table. Not a test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../src/sandbox/sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const quick = process.argv.includes('--quick');

async function vm(args: string[]): Promise<string> {
  const r = await Sandbox.run(guest(args[0]!), args.slice(1), { stdout: 'pipe', stdin: 'ignore' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.reason ?? r.status}`);
  return r.stdout!.toString();
}
function native(args: string[]): string {
  const r = spawnSync(guest(args[0]!), args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} natively exited ${r.status}`);
  return r.stdout;
}
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

async function main(): Promise<void> {
  if (!existsSync(guest('cpupar')) || !existsSync(guest('threads'))) {
    console.error('bench: fixtures missing; run node scripts/fixtures.mjs');
    process.exit(1);
  }
  const rounds = quick ? 2000 : 10000;
  // Ping-pong: whole-program time for two round counts; the difference over the extra rounds.
  const pp = async (run: (a: string[]) => Promise<string> | string, n: number): Promise<number> => {
    const s = nowMs();
    await run(['threads', String(n)]);
    return nowMs() - s;
  };
  const vmPing = ((await pp(vm, rounds * 2)) - (await pp(vm, rounds))) / rounds;
  const natPing = ((await pp(native, rounds * 20)) - (await pp(native, rounds * 10))) / (rounds * 10);
  const work = quick ? 400_000_000 : 2_000_000_000;
  const secs = (out: string): number => Number(/cpupar ([\d.]+)/.exec(out)![1]);
  const v1 = secs(await vm(['cpupar', '1', String(work)]));
  const v2 = secs(await vm(['cpupar', '2', String(work)]));
  const n1 = secs(native(['cpupar', '1', String(work)]));
  const n2 = secs(native(['cpupar', '2', String(work)]));
  console.log('| measurement | mapvisor | native | ratio |');
  console.log('|---|---:|---:|---:|');
  console.log(`| condvar ping-pong round trip (2 threads) | ${(vmPing * 1000).toFixed(1)} µs | ${(natPing * 1000).toFixed(2)} µs | ${(vmPing / natPing).toFixed(0)}× |`);
  console.log(`| CPU-bound job, 1 thread | ${v1.toFixed(3)} s | ${n1.toFixed(3)} s | ${(v1 / n1).toFixed(2)}× |`);
  console.log(`| CPU-bound job, 2 threads | ${v2.toFixed(3)} s | ${n2.toFixed(3)} s | ${(v2 / n2).toFixed(2)}× |`);
  console.log(`| parallel speed-up (1 → 2 threads) | ${(v1 / v2).toFixed(2)}× | ${(n1 / n2).toFixed(2)}× | ${((v1 / v2) / (n1 / n2)).toFixed(2)} of native's |`);
}

await main();
