/**
 * npm run bench:threads — threads against native threads, on every mapvisor platform that works here
 * (--platform kvm|process|all; default all), in the same run: the round trip of a condition-variable
 * ping-pong between two threads (futex wake + wait each way), and a CPU-bound job on 1 and 2 threads
 * (the parallel speed-up). On kvm threads are vCPUs; on process they are host threads of the program's
 * process, each with a slot in the control area. Prints a Markdown table. Not a test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../src/sandbox/sandbox.js';
import { MapvisorError } from '../src/errors.js';
import { activityLine, hostActivity, pickPlatforms, platformArg, platformLines, type PlatformName } from '../src/bench/host.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const quick = process.argv.includes('--quick');

const vm =
  (platform: PlatformName) =>
  async (args: string[]): Promise<string> => {
    const r = await Sandbox.run(guest(args[0]!), args.slice(1), { stdout: 'pipe', stdin: 'ignore', platform });
    if (r.status !== 0) throw new Error(`${args.join(' ')} on ${platform}: ${r.reason ?? r.status}`);
    return r.stdout!.toString();
  };
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
  let pick;
  try {
    pick = pickPlatforms(platformArg(process.argv.slice(2)));
  } catch (e) {
    console.error(`bench:threads: ${e instanceof MapvisorError ? e.oneLine() : (e as Error).message}`);
    process.exit(2);
  }
  const activity = hostActivity();
  const rounds = quick ? 2000 : 10000;
  // Ping-pong: whole-program time for two round counts; the difference over the extra rounds.
  const pp = async (run: (a: string[]) => Promise<string> | string, n: number): Promise<number> => {
    const s = nowMs();
    await run(['threads', String(n)]);
    return nowMs() - s;
  };
  const work = quick ? 400_000_000 : 2_000_000_000;
  const secs = (out: string): number => Number(/cpupar ([\d.]+)/.exec(out)![1]);
  const rows: string[] = [];
  for (const p of pick.run) {
    // Native is measured again beside each platform, so that each ratio is between neighbours in time.
    process.stderr.write(`bench:threads: ${p} and native\n`);
    const run = vm(p);
    const vmPing = ((await pp(run, rounds * 2)) - (await pp(run, rounds))) / rounds;
    const natPing = ((await pp(native, rounds * 20)) - (await pp(native, rounds * 10))) / (rounds * 10);
    const v1 = secs(await run(['cpupar', '1', String(work)]));
    const n1 = secs(native(['cpupar', '1', String(work)]));
    const v2 = secs(await run(['cpupar', '2', String(work)]));
    const n2 = secs(native(['cpupar', '2', String(work)]));
    rows.push(
      `| condvar ping-pong round trip (2 threads) | ${p} | ${(vmPing * 1000).toFixed(1)} µs | ${(natPing * 1000).toFixed(2)} µs | ${(vmPing / natPing).toFixed(0)}× |`,
      `| CPU-bound job, 1 thread | ${p} | ${v1.toFixed(3)} s | ${n1.toFixed(3)} s | ${(v1 / n1).toFixed(2)}× |`,
      `| CPU-bound job, 2 threads | ${p} | ${v2.toFixed(3)} s | ${n2.toFixed(3)} s | ${(v2 / n2).toFixed(2)}× |`,
      `| parallel speed-up (1 → 2 threads) | ${p} | ${(v1 / v2).toFixed(2)}× | ${(n1 / n2).toFixed(2)}× | ${(v1 / v2 / (n1 / n2)).toFixed(2)} of native's |`,
    );
  }
  console.log(platformLines(pick).join('\n') + '\n');
  console.log('| measurement | platform | mapvisor | native | ratio |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows) console.log(r);
  console.log(`\nNative is measured beside each platform (its column can differ between platforms). ${activityLine(activity(), cpus().length)}`);
}

await main();
