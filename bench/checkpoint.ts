/**
 * npm run bench:checkpoint — checkpoint and restore of programs with 64 and 512 MiB of touched memory
 * (2 GiB without --quick): checkpoint time, state-file and memory-file size, restore time to the first
 * output line, host memory of clones, and rejuvenation downtime. CRIU is measured beside it when it is
 * installed and works here. Prints a Markdown table. Not a test.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../src/sandbox/sandbox.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const guest = (n: string): string => join(ROOT, '.cache', 'guest', n);
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const quick = process.argv.includes('--quick');
const MB = 2 ** 20;
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function du(path: string): number {
  return Number(execFileSync('du', ['-sb', '--apparent-size', path], { encoding: 'utf8' }).split('\t')[0]) / MB;
}
function allocated(path: string): number {
  return (statSync(path).blocks * 512) / MB;
}

/** Start `toucher MIB` under mapvisor (API on), wait until it touched its memory. */
async function startToucher(work: string, mib: number, memoryDir: string): Promise<{ sb: Sandbox; run: Promise<unknown> }> {
  const sb = new Sandbox(guest('toucher'), [String(mib)], { stdout: 'pipe', memoryDir, mem: (mib + 256) * MB });
  const run = sb.run();
  // The program prints "ready" when done touching; poll the memory file's allocation instead of the pipe.
  const file = join(memoryDir, 'memory.bin');
  for (let i = 0; i < 4000 && !(existsSync(file) && allocated(file) >= mib); i++) await new Promise((r) => setTimeout(r, 5));
  await new Promise((r) => setTimeout(r, 100));
  void work;
  return { sb, run };
}

/** Restore `dir` as a CLI process; ms until its first output line. */
async function restoreToFirstLine(dir: string): Promise<{ ms: number; pid: number; stop: () => Promise<void> }> {
  const t0 = nowMs();
  const child = spawn(process.execPath, [CLI, 'restore', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return {
    ms: nowMs() - t0,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
    },
  };
}

function rssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  if (!existsSync(guest('toucher'))) {
    console.error('bench: fixtures missing; run node scripts/fixtures.mjs');
    process.exit(1);
  }
  const sizes = quick ? [64, 512] : [64, 512, 2048];
  const work = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-ckbench-'));
  const rows: string[] = [];
  try {
    for (const mib of sizes) {
      const md = join(work, `m${mib}`);
      mkdirSync(md);
      const { sb, run } = await startToucher(work, mib, md);
      const t0 = nowMs();
      const c = await sb.checkpoint(join(work, `ck${mib}`));
      const wall = nowMs() - t0;
      // The program dirties one page every 10 ms; 200 ms later an incremental checkpoint of the same run.
      await new Promise((r) => setTimeout(r, 200));
      const inc = await sb.checkpoint(join(work, `ck${mib}`));
      sb.stop();
      await run;
      const dir = join(work, `ck${mib}`);
      const restore = await restoreToFirstLine(dir);
      await restore.stop();
      // 10 clones from one checkpoint: each maps the memory file privately and shares its pages.
      const clones = await Promise.all(Array.from({ length: quick ? 4 : 10 }, () => restoreToFirstLine(dir)));
      await new Promise((r) => setTimeout(r, 200));
      const rss = clones.reduce((a, cl) => a + rssMiB(cl.pid), 0);
      await Promise.all(clones.map((cl) => cl.stop()));
      rows.push(
        `| ${mib} MiB | ${c.ms.toFixed(1)} ms (${wall.toFixed(0)} ms with the pause) | ${inc.incremental ? `${inc.ms.toFixed(1)} ms, ${inc.pagesWritten} pages` : 'n/a'} | ${(statSync(join(dir, 'state.json')).size / 1024).toFixed(1)} KiB | ${allocated(join(dir, 'memory.bin')).toFixed(0)} MiB | ${restore.ms.toFixed(0)} ms | ${clones.length} clones: ${rss.toFixed(0)} MiB RSS (page cache shared) |`,
      );
      rmSync(md, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
      void du;
    }
    // Rejuvenation downtime (64 MiB program).
    const md = join(work, 'rj');
    mkdirSync(md);
    const sock = join(md, 'api.sock');
    const child = spawn(process.execPath, [CLI, 'run', '--api', sock, '--memory-dir', md, '--', guest('toucher'), '64'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    for (let i = 0; i < 400 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 5));
    const reply = JSON.parse(execFileSync(process.execPath, [CLI, 'ctl', sock, 'rejuvenate'], { encoding: 'utf8' })) as { downtimeMs: number };
    execFileSync(process.execPath, [CLI, 'ctl', sock, 'stop']);
    await new Promise((r) => child.on('close', r));
    const criu = spawnSync('criu', ['check'], { encoding: 'utf8' });
    console.log('| touched memory | full checkpoint (copy of the memory file) | incremental checkpoint (dirty pages only) | state file | memory file (allocated) | restore to first output line | clones |');
    console.log('|---|---:|---:|---:|---:|---:|---|');
    for (const r of rows) console.log(r);
    console.log(`\nRejuvenation downtime (64 MiB program, a fresh VMM process takes over): ${reply.downtimeMs.toFixed(1)} ms.`);
    console.log(criu.error ? 'CRIU: not installed (apt-get install criu), not compared.' : `CRIU: \`criu check\` says: ${(criu.stdout + criu.stderr).trim().split('\n')[0]}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
