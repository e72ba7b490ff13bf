/**
 * npm run bench:checkpoint — checkpoint, restore, clones and rejuvenation of a program with 64 MiB,
 * 512 MiB and 2 GiB of touched memory (64 and 512 with --quick), on every mapvisor platform that works
 * here (--platform kvm|process|all; default all), beside CRIU dumping and restoring the same program
 * run natively (once per size: it does not depend on the platform), in the same run. Prints Markdown
 * tables with a platform column and the ratios. Not a test.
 *
 * The program is test/guest/toucher: it touches its memory, prints "ready", then prints a line every
 * 10 ms, dirtying 0.1% of its memory at each (1% in 100 ms). Per size:
 *  - full checkpoint: the first checkpoint of a --memory-dir run copies the memory file;
 *  - incremental: the next checkpoint of the run into the same directory, 100 ms later (after ~1% was
 *    dirtied), writes only the pages KVM's dirty log and the VMM saw written; the process platform has
 *    no dirty-page log (the checkpoint falls back to a full one), shown as "n/a (no dirty log)";
 *  - restore to the first instruction: a standby VMM (VM built, like rejuvenation's successor) told to
 *    restore; its own measure from the word "go" to the first KVM_RUN;
 *  - restore to the first output line: the same, timed here until the program's next line arrives; and
 *    from a cold `mapvisor restore` process (Node start-up and KVM set-up included);
 *  - 10 clones: `restore` ×10 from one checkpoint; their memory as proportional set size (PSS), so pages
 *    shared through the page cache count once;
 *  - CRIU: `criu dump` and `criu restore` of the native toucher (scripts/install-criu.sh installs a CRIU
 *    that works on this kernel; without it the columns say why).
 * Rejuvenation: the 64 MiB program, and sqlite3 from a disk image with an open transaction, each handed
 * to a fresh VMM process five times, and the 64 MiB program handed to a new VM worker in this process
 * (Sandbox.rejuvenate); the downtimes (pause → program running in the new VMM).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox, type CheckpointResult } from '../src/sandbox/sandbox.js';
import { MapvisorError } from '../src/errors.js';
import { cpus } from 'node:os';
import { activityLine, hostActivity, pickPlatforms, platformArg, platformLines, processTree, type PlatformName } from '../src/bench/host.js';
import { criuAvailable, criuMeasure, type CriuResult } from './criu.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const quick = process.argv.includes('--quick');
const MB = 2 ** 20;
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f1 = (x: number): string => x.toFixed(1);
const progress = (s: string): boolean => process.stderr.write(`bench:checkpoint: ${s}\n`);

/** Pages the toucher dirties per 10 ms tick: 0.1% of its memory. */
const perTick = (mib: number): number => Math.max(1, Math.round((mib * 256) / 1000));

function allocatedMiB(path: string): number {
  return (statSync(path).blocks * 512) / MB;
}

/** Wait (up to 2 minutes) until the toucher's memory file holds `mib` MiB: it touched its memory. */
async function untilTouched(file: string, mib: number): Promise<void> {
  for (let i = 0; i < 24_000 && !(existsSync(file) && allocatedMiB(file) >= mib); i++) await sleep(5);
}

/** Proportional set size of a process (shared pages divided among their users), MiB. */
function pssMiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** PSS of a process and all its descendants (on process, the program runs in the VMM's child processes). */
function treePssMiB(pid: number): number {
  return processTree(pid).reduce((a, p) => a + pssMiB(p), 0);
}

/** MemAvailable: what the host could still give, so its drop counts kernel memory (KVM's) too. */
function memAvailableMiB(): number {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
}

/** Resolves with the next chunk of `stream` that satisfies `test`. */
function waitFor(stream: Readable, test: (s: string) => boolean, what: string, ms = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms / 1000} s`)), ms);
    const on = (d: Buffer): void => {
      buf += d.toString();
      if (test(buf)) {
        clearTimeout(timer);
        stream.off('data', on);
        resolve(buf);
      }
    };
    stream.on('data', on);
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((r) => child.on('close', r));
  child.kill('SIGKILL');
  await closed;
}

/** Checkpoints of a toucher run: the full one and an incremental one after ~1% was dirtied. */
async function checkpoints(mib: number, work: string, platform: PlatformName): Promise<{ full: CheckpointResult; inc: CheckpointResult; dir: string }> {
  const md = join(work, `mem-${platform}-${mib}`);
  mkdirSync(md);
  const sb = new Sandbox(guest('toucher'), [String(mib), String(perTick(mib))], { stdout: 'pipe', memoryDir: md, mem: (mib + 256) * MB, platform });
  const run = sb.run();
  const file = join(md, 'memory.bin');
  await untilTouched(file, mib);
  await sleep(100);
  const dir = join(work, `ck-${platform}-${mib}`);
  const full = await sb.checkpoint(dir);
  await sleep(100);
  const inc = await sb.checkpoint(dir);
  sb.stop();
  await run;
  return { full, inc, dir };
}

/** A standby `mapvisor restore DIR` told to go: its restore time, and ms until the next output line. */
async function warmRestore(dir: string): Promise<{ firstInstructionMs: number; firstLineMs: number }> {
  const child = spawn(process.execPath, [CLI, 'restore', dir, '--standby-fd', '3'], { stdio: ['ignore', 'pipe', 'inherit', 'pipe'] });
  try {
    const channel = child.stdio[3] as Readable & Writable;
    await waitFor(channel, (s) => s.includes('standby\n'), 'standby');
    const firstLine = waitFor(child.stdout!, (s) => s.includes('\n'), 'output');
    const running = waitFor(channel, (s) => /running \S+\n/.test(s), 'running');
    const t0 = nowMs();
    channel.write('go\n');
    await firstLine;
    const firstLineMs = nowMs() - t0;
    const firstInstructionMs = Number(/running (\S+)/.exec(await running)![1]);
    return { firstInstructionMs, firstLineMs };
  } finally {
    await kill(child);
  }
}

/** A cold `mapvisor restore DIR` process: ms until its first output line. */
async function coldRestore(dir: string): Promise<{ ms: number; child: ChildProcess }> {
  const t0 = nowMs();
  const child = spawn(process.execPath, [CLI, 'restore', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitFor(child.stdout!, (s) => s.includes('\n'), 'output');
  return { ms: nowMs() - t0, child };
}

/** n rejuvenations of a running `mapvisor run --api` child; the downtimes reported. */
async function rejuvenations(sock: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = JSON.parse(execFileSync(process.execPath, [CLI, 'ctl', sock, 'rejuvenate'], { encoding: 'utf8' })) as { ok: boolean; downtimeMs: number; error?: string };
    if (!r.ok) throw new Error(`rejuvenate: ${r.error}`);
    out.push(r.downtimeMs);
    await sleep(200);
  }
  return out;
}

async function rejuvenateToucher(work: string, platform: PlatformName): Promise<number[]> {
  const md = join(work, `rj-${platform}`);
  mkdirSync(md);
  const sock = join(md, 'api.sock');
  const child = spawn(process.execPath, [CLI, 'run', '--platform', platform, '--api', sock, '--memory-dir', md, '--', guest('toucher'), '64'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await waitFor(child.stdout!, (s) => s.includes('ready'), 'ready');
    child.stdout!.resume();
    for (let i = 0; i < 400 && !existsSync(sock); i++) await sleep(5);
    return await rejuvenations(sock, 5);
  } finally {
    await kill(child);
  }
}

/** The 64 MiB program rejuvenated 5 times inside this process (Sandbox.rejuvenate: a new VM worker). */
async function rejuvenateInProcess(work: string, platform: PlatformName): Promise<number[]> {
  const md = join(work, `rjapi-${platform}`);
  mkdirSync(md);
  const sb = new Sandbox(guest('toucher'), ['64'], { stdout: 'pipe', memoryDir: md, platform });
  const run = sb.run();
  const file = join(md, 'memory.bin');
  await untilTouched(file, 64);
  const out: number[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      out.push((await sb.rejuvenate()).downtimeMs);
      await sleep(200);
    }
  } finally {
    sb.stop();
    await run;
  }
  return out;
}

/** sqlite3 from an image, in an open transaction, rejuvenated 5 times; then it commits. */
async function rejuvenateSqlite(work: string, platform: PlatformName): Promise<{ downtimes: number[]; committed: boolean }> {
  const { createImage } = await import('../src/image/create.js');
  const md = join(work, `rjsql-${platform}`);
  mkdirSync(md);
  const img = join(md, 'db.img');
  await createImage({ out: img, debian: ['sqlite3'], add: [] });
  const sock = join(md, 'api.sock');
  const child = spawn(process.execPath, [CLI, 'run', '--platform', platform, '--api', sock, '--memory-dir', md, '--image', img, '--', '/usr/bin/sqlite3', '/data/b.db'], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin!.write('create table t(a); begin; insert into t values(1),(2);\n');
    for (let i = 0; i < 400 && !existsSync(sock); i++) await sleep(10);
    await sleep(300);
    const downtimes = await rejuvenations(sock, 5);
    child.stdin!.end('insert into t values(3); commit; select count(*) from t;\n');
    await new Promise((r) => child.on('close', r));
    return { downtimes, committed: out.trim() === '3' };
  } finally {
    await kill(child);
  }
}

async function main(): Promise<void> {
  if (!existsSync(guest('toucher'))) {
    console.error('bench: fixtures missing; run node scripts/fixtures.mjs');
    process.exit(1);
  }
  let pick;
  try {
    pick = pickPlatforms(platformArg(process.argv.slice(2)));
  } catch (e) {
    console.error(`bench:checkpoint: ${e instanceof MapvisorError ? e.oneLine() : (e as Error).message}`);
    process.exit(2);
  }
  const activity = hostActivity();
  const sizes = quick ? [64, 512] : [64, 512, 2048];
  const clonesN = quick ? 4 : 10;
  const work = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-ckbench-'));
  const criuMissing = await criuAvailable();
  const rows: string[] = [];
  const restoreRows: string[] = [];
  const rejuvenation: string[] = [];
  // CRIU runs the program natively: one measurement per size, shown beside every platform.
  const criuBySize = new Map<number, { criu: CriuResult | null; error: string | null }>();
  try {
    for (const platform of pick.run) {
      for (const mib of sizes) {
        progress(`${platform}, ${mib} MiB: checkpoints`);
        const { full, inc, dir } = await checkpoints(mib, work, platform);
        progress(`${platform}, ${mib} MiB: restores`);
        const warm: Array<{ firstInstructionMs: number; firstLineMs: number }> = [];
        for (let i = 0; i < 3; i++) warm.push(await warmRestore(dir));
        const cold = await coldRestore(dir);
        await kill(cold.child);
        progress(`${platform}, ${mib} MiB: ${clonesN} clones`);
        const avail0 = memAvailableMiB();
        const clones = await Promise.all(Array.from({ length: clonesN }, () => coldRestore(dir)));
        await sleep(300);
        // A clone's memory: its VMM and, on process, the program's own processes (its children).
        const pss = clones.reduce((a, c) => a + treePssMiB(c.child.pid!), 0);
        const hostUsed = avail0 - memAvailableMiB();
        await Promise.all(clones.map((c) => kill(c.child)));
        if (!criuBySize.has(mib)) {
          let criu: CriuResult | null = null;
          let error = criuMissing;
          if (!criuMissing) {
            progress(`${mib} MiB: CRIU`);
            try {
              criu = await criuMeasure(guest('toucher'), [String(mib), String(perTick(mib))], 'ready', work);
            } catch (e) {
              error = (e as Error).message.split('\n')[0]!;
            }
          }
          criuBySize.set(mib, { criu, error });
        }
        const { criu, error: criuError } = criuBySize.get(mib)!;
        const wi = median(warm.map((w) => w.firstInstructionMs));
        const wl = median(warm.map((w) => w.firstLineMs));
        const pct = ((inc.pagesWritten * 4096) / (mib * MB)) * 100;
        const incremental = inc.incremental
          ? `${f1(inc.ms)} ms (${inc.pagesWritten} pages, ${pct.toFixed(2)}%)`
          : platform === 'process'
            ? 'n/a (no dirty log)'
            : `n/a (fell back to full: ${f1(inc.ms)} ms)`;
        rows.push(
          `| ${platform} | ${mib} MiB | ${f1(full.ms)} ms | ${incremental} | ${criu ? `${f1(criu.dumpMs)} ms (${(criu.dumpMs / full.ms).toFixed(1)}×)` : '—'} | ${(statSync(join(dir, 'state.json')).size / 1024).toFixed(1)} KiB | ${allocatedMiB(join(dir, 'memory.bin')).toFixed(0)} MiB | ${criu ? `${criu.imageMiB.toFixed(0)} MiB` : '—'} | ${pss.toFixed(0)} MiB | ${hostUsed.toFixed(0)} MiB |`,
        );
        restoreRows.push(
          `| ${platform} | ${mib} MiB | ${wi.toFixed(2)} ms | ${f1(wl)} ms | ${f1(cold.ms)} ms | ${criu ? `${f1(criu.restoreToOutputMs)} ms` : '—'} | ${criu ? `${(criu.restoreToOutputMs / wl).toFixed(1)}× (warm), ${(criu.restoreToOutputMs / cold.ms).toFixed(1)}× (cold)` : criuError ? `CRIU: ${criuError}` : '—'} |`,
        );
        rmSync(join(work, `mem-${platform}-${mib}`), { recursive: true, force: true });
        rmSync(dir, { recursive: true, force: true });
      }
      progress(`${platform}: rejuvenation: toucher 64 MiB`);
      const rjT = await rejuvenateToucher(work, platform);
      const rjP = await rejuvenateInProcess(work, platform);
      let rjS: { downtimes: number[]; committed: boolean } | null = null;
      if (!quick) {
        progress(`${platform}: rejuvenation: sqlite3 from an image`);
        rjS = await rejuvenateSqlite(work, platform);
      }
      const fmt = (xs: number[]): string => `median ${f1(median(xs))} ms (runs: ${xs.map(f1).join(', ')})`;
      rejuvenation.push(`- ${platform}: toucher, 64 MiB: ${fmt(rjT)}`);
      rejuvenation.push(`- ${platform}: toucher, 64 MiB, to a new worker in the same process (Sandbox.rejuvenate): ${fmt(rjP)}`);
      if (rjS) rejuvenation.push(`- ${platform}: sqlite3 from an ext4 image, open transaction: ${fmt(rjS.downtimes)}; committed afterwards: ${rjS.committed ? 'yes' : 'NO'}`);
    }
    console.log(platformLines(pick).join('\n'));
    console.log('\n### Checkpoint\n');
    console.log(`| platform | touched memory | full checkpoint (copy) | incremental (dirty pages only) | CRIU dump (ratio to full) | state file | memory file | CRIU images | ${clonesN} clones: PSS (Node and the program's processes) | ${clonesN} clones: host memory used (MemAvailable drop, KVM's included) |`);
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) console.log(r);
    console.log('\n### Restore\n');
    console.log('The program sleeps 10 ms between lines, and a restore resumes that sleep where it was: the time to the');
    console.log('first output line includes what was left of it, for mapvisor and CRIU alike. Restored memory loads on');
    console.log('first touch, so clones hold only what they touched (the PSS column above). CRIU runs natively, once per');
    console.log('size: the same CRIU figure stands beside every platform.\n');
    console.log('| platform | touched memory | to first instruction (standby VMM) | to first output line (standby) | to first output line (cold process) | CRIU restore to first output line | CRIU ÷ mapvisor |');
    console.log('|---|---|---:|---:|---:|---:|---|');
    for (const r of restoreRows) console.log(r);
    console.log('\n### Rejuvenation downtime (pause → running in a fresh VMM process)\n');
    for (const r of rejuvenation) console.log(r);
    if (criuMissing) console.log(`\nCRIU not compared: ${criuMissing} (scripts/install-criu.sh installs one that works here).`);
    console.log(`\n${activityLine(activity(), cpus().length)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
