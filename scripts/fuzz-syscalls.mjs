#!/usr/bin/env node
// System-call fuzzing of mapvisor's kernel (issue 15): runs .cache/guest/fuzz-syscalls (test/guest/
// fuzz-syscalls.c) under `node bin/mapvisor.js run --platform P --timeout T` for each platform that
// works here (`mapvisor info --json`), one case per seed, and classifies each outcome.
//
//   node scripts/fuzz-syscalls.mjs [--seeds A..B] [--calls N] [--threads N] [--minutes M]
//                                  [--platform kvm|process] [--timeout S] [--rss-mib N] [--no-shrink]
//
// Defaults: --seeds 1..50, --calls 2000, --threads 2, --timeout 30 (mapvisor's own --timeout; the CLI is
// SIGKILLed 15 s later), --rss-mib 1024. --minutes bounds the whole run (stops starting cases).
//
// A pass is exit 0 with `fuzz ok SEED` on stdout. Findings, by kind:
//   mapvisor-failed  exit 125 (the VM failed / internal error of mapvisor)
//   internal-error   "internal error" or a JS stack trace on stderr
//   crash            the fuzzer died by a signal or printed `fuzz: CRASH` (the kernel returned something
//                    wrong instead of EFAULT, or wrote where it must not)
//   finding          the fuzzer printed `fuzz: FINDING` (e.g. a write through a read-only page)
//   hang             the fuzzer printed `fuzz: STUCK`, or mapvisor's --timeout / the watchdog fired
//   rss              mapvisor's VmRSS (sampled from /proc/PID/status every 100 ms) above --rss-mib
//   escape           a new file appeared in the CLI's cwd (a fresh temp dir the guest cannot name)
//   other            any other exit status
// On a finding: prints the seed, shrinks (halving calls, then threads, while the same kind recurs),
// re-runs the smallest with --log and prints its last 30 calls, and the command to reproduce it.
// Ends with `cases N, passes N, findings N (kind=N ...)`; exits 1 when there was a finding.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const PROG = join(ROOT, '.cache', 'guest', 'fuzz-syscalls');

function parseArgs(argv) {
  const o = { seeds: [1, 50], calls: 2000, threads: 2, minutes: Infinity, platform: null, timeout: 30, rssMib: 1024, shrink: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seeds') {
      const m = /^(\d+)(?:\.\.(\d+))?$/.exec(v());
      if (!m) usage('--seeds A..B');
      o.seeds = [Number(m[1]), Number(m[2] ?? m[1])];
    } else if (a === '--calls') o.calls = Number(v());
    else if (a === '--threads') o.threads = Number(v());
    else if (a === '--minutes') o.minutes = Number(v());
    else if (a === '--platform') o.platform = v();
    else if (a === '--timeout') o.timeout = Number(v());
    else if (a === '--rss-mib') o.rssMib = Number(v());
    else if (a === '--no-shrink') o.shrink = false;
    else usage(`unknown argument ${a}`);
  }
  return o;
}
function usage(msg) {
  console.error(`fuzz-syscalls: ${msg}\nusage: node scripts/fuzz-syscalls.mjs [--seeds A..B] [--calls N] [--threads N] [--minutes M] [--platform kvm|process] [--timeout S] [--rss-mib N] [--no-shrink]`);
  process.exit(2);
}

/** Platforms that work here, per `mapvisor info --json`. */
export function workingPlatforms() {
  const r = spawnSync(process.execPath, [CLI, 'info', '--json'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`mapvisor info failed: ${r.stderr}`);
  return JSON.parse(r.stdout).platforms.filter((p) => p.works).map((p) => p.name);
}

function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * One case: the fuzzer under mapvisor. Resolves { kind: 'pass' | finding kind, status, signal, stdout,
 * stderr, ms, rssMib, detail }.
 */
export function runCase({ platform, seed, calls, threads, timeout = 30, rssMib = 1024, log = false }) {
  const cwd = mkdtempSync(join(tmpdir(), 'mapvisor-fuzz-cwd-'));
  const args = [CLI, 'run', '--platform', platform, '--timeout', String(timeout), '--', PROG, '--sandboxed', String(seed), String(calls), String(threads), ...(log ? ['--log'] : [])];
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    let peak = 0;
    let killed = false;
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssKiB(child.pid));
      if (peak > rssMib * 1024 * 4) child.kill('SIGKILL'); // far over the bound: do not let it take the machine
    }, 100);
    const watchdog = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, (timeout + 15) * 1000);
    child.on('close', (status, signal) => {
      clearInterval(sampler);
      clearTimeout(watchdog);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      let leftovers = [];
      try {
        leftovers = readdirSync(cwd);
      } catch {}
      rmSync(cwd, { recursive: true, force: true });
      const ms = Date.now() - t0;
      const res = { status, signal, stdout, stderr, ms, rssMib: Math.round(peak / 1024), detail: '' };
      const okLine = new RegExp(`^fuzz ok ${seed}$`, 'm').test(stdout);
      const stack = /^\s+at .+\(.+:\d+:\d+\)$|^\s+at .+:\d+:\d+$/m.test(stderr);
      if (killed) Object.assign(res, { kind: 'hang', detail: `CLI killed by the watchdog after ${timeout + 15} s` });
      else if (status === 125) Object.assign(res, { kind: 'mapvisor-failed', detail: firstMapvisorLine(stderr) });
      else if (/internal error/i.test(stderr) || stack) Object.assign(res, { kind: 'internal-error', detail: firstMapvisorLine(stderr) });
      else if (/^fuzz: STUCK/m.test(stdout) || /timed? ?out|timeout/i.test(firstMapvisorLine(stderr))) Object.assign(res, { kind: 'hang', detail: (/^fuzz: STUCK.*$/m.exec(stdout) ?? [firstMapvisorLine(stderr)])[0] });
      else if (/^fuzz: FINDING.*$/m.test(stdout)) Object.assign(res, { kind: 'finding', detail: /^fuzz: FINDING.*$/m.exec(stdout)[0] });
      else if (/^fuzz: CRASH.*$/m.test(stdout) || (status !== null && status > 128 && status < 160)) Object.assign(res, { kind: 'crash', detail: (/^fuzz: CRASH.*$/m.exec(stdout) ?? [firstMapvisorLine(stderr)])[0] });
      else if (peak > rssMib * 1024) Object.assign(res, { kind: 'rss', detail: `mapvisor VmRSS peaked at ${res.rssMib} MiB (bound ${rssMib} MiB)` });
      else if (leftovers.length > 0) Object.assign(res, { kind: 'escape', detail: `new files in the CLI's cwd: ${leftovers.join(', ')}` });
      else if (status === 0 && okLine) res.kind = 'pass';
      else Object.assign(res, { kind: 'other', detail: `exit ${status}${signal ? ` signal ${signal}` : ''}: ${firstMapvisorLine(stderr) || stdout.trim().split('\n').pop()}` });
      resolve(res);
    });
  });
}
function firstMapvisorLine(s) {
  return (s.split('\n').find((l) => l.startsWith('mapvisor:')) ?? s.split('\n').find((l) => l.trim()) ?? '').trim();
}

export function reproCommand({ platform, seed, calls, threads, timeout = 30 }) {
  return `node bin/mapvisor.js run --platform ${platform} --timeout ${timeout} -- .cache/guest/fuzz-syscalls --sandboxed ${seed} ${calls} ${threads} --log`;
}

async function shrink(c, kind, o) {
  let best = { ...c };
  let tries = 0;
  // halve the calls while it still fails the same way, then the threads
  for (;;) {
    let improved = false;
    for (const next of [{ ...best, calls: Math.floor(best.calls / 2) }, { ...best, threads: Math.max(1, Math.floor(best.threads / 2)) }]) {
      if (next.calls < 1 || (next.calls === best.calls && next.threads === best.threads)) continue;
      if (++tries > 24) return best;
      const r = await runCase({ ...next, timeout: o.timeout, rssMib: o.rssMib });
      if (r.kind === kind) {
        best = next;
        improved = true;
        break;
      }
    }
    if (!improved) return best;
  }
}

async function main() {
  if (!existsSync(PROG)) usage(`${PROG} is missing: run node scripts/fixtures.mjs (npm run fuzz:syscalls does)`);
  const o = parseArgs(process.argv.slice(2));
  let platforms = workingPlatforms();
  if (o.platform) platforms = platforms.filter((p) => p === o.platform);
  if (platforms.length === 0) usage(`no working platform${o.platform ? ` named ${o.platform}` : ''}`);
  const deadline = Date.now() + o.minutes * 60_000;
  const counts = { cases: 0, passes: 0, findings: 0, byKind: {} };
  const findings = [];
  const t0 = Date.now();
  console.log(`fuzz-syscalls: platforms ${platforms.join(', ')}; seeds ${o.seeds[0]}..${o.seeds[1]}; ${o.calls} calls x ${o.threads} threads; timeout ${o.timeout} s; RSS bound ${o.rssMib} MiB`);
  outer: for (let seed = o.seeds[0]; seed <= o.seeds[1]; seed++) {
    for (const platform of platforms) {
      if (Date.now() > deadline) {
        console.log(`fuzz-syscalls: --minutes ${o.minutes} reached`);
        break outer;
      }
      const c = { platform, seed, calls: o.calls, threads: o.threads };
      const r = await runCase({ ...c, timeout: o.timeout, rssMib: o.rssMib });
      counts.cases++;
      if (r.kind === 'pass') {
        counts.passes++;
        continue;
      }
      counts.findings++;
      counts.byKind[r.kind] = (counts.byKind[r.kind] ?? 0) + 1;
      console.log(`FINDING ${r.kind} platform ${platform} seed ${seed}: ${r.detail} (${r.ms} ms, RSS ${r.rssMib} MiB)`);
      let small = c;
      if (o.shrink) {
        small = await shrink(c, r.kind, o);
        console.log(`  smallest: ${small.calls} calls x ${small.threads} threads`);
      }
      const lg = await runCase({ ...small, timeout: o.timeout, rssMib: o.rssMib, log: true });
      const lines = lg.stdout.split('\n').filter((l) => /^T\d+ #\d+ |^fuzz: (CRASH|STUCK|FINDING)/.test(l));
      console.log(`  with --log (${lg.kind}): last ${Math.min(30, lines.length)} calls:`);
      for (const l of lines.slice(-30)) console.log(`    ${l}`);
      const err = lg.stderr.trim().split('\n').filter(Boolean).slice(-10);
      for (const l of err) console.log(`    stderr: ${l}`);
      console.log(`  reproduce: ${reproCommand({ ...small, timeout: o.timeout })}`);
      findings.push({ ...small, kind: r.kind, detail: r.detail });
    }
    if (seed % 10 === 0) console.log(`fuzz-syscalls: ... seed ${seed}, ${counts.cases} cases, ${counts.findings} findings, ${Math.round((Date.now() - t0) / 1000)} s`);
  }
  const kinds = Object.entries(counts.byKind).map(([k, n]) => `${k}=${n}`).join(' ');
  console.log(`cases ${counts.cases}, passes ${counts.passes}, findings ${counts.findings}${kinds ? ` (${kinds})` : ''}, ${Math.round((Date.now() - t0) / 1000)} s`);
  process.exit(counts.findings ? 1 : 0);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
