/**
 * Hostile programs on each platform: the real CLI (`node bin/mapvisor.js run --platform P ... -- PROGRAM`)
 * runs the test/guest/hostile-*.c programs, which try to get past mapvisor's kernel to the host (the
 * i386 and x32 system-call entries, the vsyscall page, system calls from code outside the ELF, the
 * process platform's stub (its `syscall` instructions, with arguments its seccomp allowlist must refuse)
 * and its control area, ptrace, /proc/PID/mem, seccomp, the memory below user space, kill) or never
 * end. For each:
 *
 *  - the exact outcome its platform promises (process: the seccomp filter kills escapes with SIGSYS,
 *    exit 159; kvm: the CPU faults, some signal), or the refusal the program prints, exit 0;
 *  - stderr has at most one `mapvisor: ` line, never a stack trace or an "internal error";
 *  - afterwards no process of the program is left (polled up to 2 s), and no host file was read or
 *    created.
 *
 * A platform that cannot run here is skipped with the reason: kvm without a usable /dev/kvm, process
 * without dist/stubs/mapvisor-stub (`npm run build` makes it). Fixtures: `node scripts/fixtures.mjs`.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PLATFORM } from '../platform.js';

/** Repo root: this file runs as dist/test/integration/hostile.test.js. */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const STUB = join(ROOT, 'dist', 'stubs', 'mapvisor-stub');
const guest = (name: string): string => join(ROOT, '.cache', 'guest', name);

/** Per-test limit. */
const TEST_TIMEOUT_MS = 12_000;
/** The CLI is SIGKILLed after this: a hung run fails its test instead of outliving it. */
const CHILD_KILL_MS = 10_000;
/** How long the program's processes may take to disappear after mapvisor exits. */
const STRAY_POLL_MS = 2_000;
/** --timeout for the programs that spin forever. */
const SPIN_TIMEOUT_S = 2;

const SIG = { SIGILL: 4, SIGKILL: 9, SIGSEGV: 11, SIGSYS: 31 } as const;
const SIGNAMES: Record<number, string> = { 4: 'SIGILL', 9: 'SIGKILL', 11: 'SIGSEGV', 31: 'SIGSYS' };

type Platform = 'process' | 'kvm';

function kvmSkip(): string | false {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return false;
  } catch (e) {
    return existsSync('/dev/kvm') ? `/dev/kvm is not usable here (${(e as Error).message})` : '/dev/kvm is absent';
  }
}

function processSkip(): string | false {
  return existsSync(STUB) ? false : `${STUB} is missing (npm run build makes it)`;
}

// ---- facts about the host that decide the process platform's exact outcome ----

/** The host maps a vsyscall page (emulated or execute-only): a call there reaches the seccomp filter. */
const HOST_VSYSCALL = ((): boolean => {
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes('[vsyscall]');
  } catch {
    return true;
  }
})();

/** The host kernel runs i386 system calls (int $0x80): they reach the seccomp filter, else they fault. */
const HOST_IA32 = ((): boolean => {
  try {
    return !/\bia32_emulation=(0|false|off|n)\b/i.test(readFileSync('/proc/cmdline', 'utf8'));
  } catch {
    return true;
  }
})();

// ---- running the CLI ----

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Host pids seen under mapvisor while it ran (the stub's processes, among others). */
  descendants: Set<number>;
}

interface ProcInfo {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
}

function procInfo(pid: number): ProcInfo | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = s.indexOf('(');
    const close = s.lastIndexOf(')');
    const rest = s.slice(close + 2).split(' ');
    return { pid, comm: s.slice(open + 1, close), state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) out.push(Number(c));
      } catch {
        // the thread ended
      }
    }
  } catch {
    // the process ended
  }
  return out;
}

function collectDescendants(pid: number, into: Set<number>): void {
  const todo = [pid];
  while (todo.length > 0) {
    for (const c of children(todo.pop()!)) {
      if (!into.has(c)) {
        into.add(c);
        todo.push(c);
      }
    }
  }
}

/** Live processes of the stub (any run's): their comm is the stub's file name. */
function stubProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const p = procInfo(Number(d));
    if (p && p.comm === 'mapvisor-stub') out.push(p);
  }
  return out;
}

const NODE_EXE = realpathSync(process.execPath);

/** Whether a process is some node (a mapvisor CLI, or a test runner using the API: someone's live run). */
function isNode(pid: number): boolean {
  try {
    if (readlinkSync(`/proc/${pid}/exe`) === NODE_EXE) return true;
  } catch {
    // not ours to read, or gone
  }
  return procInfo(pid)?.comm.startsWith('node') ?? false;
}

/**
 * Stub processes left behind by a run: those seen under our mapvisor, and any other stub process that
 * was not there before the run and no live node owns (orphans: reparented to init or a subreaper once
 * mapvisor exited). Zombies are dead and not counted.
 */
function strays(before: Set<number>, seen: Set<number>): ProcInfo[] {
  const all = stubProcesses().filter((p) => p.state !== 'Z');
  const byPid = new Map(all.map((p) => [p.pid, p]));
  return all.filter((p) => {
    if (seen.has(p.pid)) return true;
    if (before.has(p.pid)) return false;
    // Climb to the topmost stub ancestor: its parent is a live node unless the stub was orphaned.
    let top = p;
    for (let up = byPid.get(top.ppid); up; up = byPid.get(top.ppid)) top = up;
    return !isNode(top.ppid);
  });
}

async function assertNoStrays(r: RunResult, before: Set<number>): Promise<void> {
  const until = Date.now() + STRAY_POLL_MS;
  let left = strays(before, r.descendants);
  while (left.length > 0 && Date.now() < until) {
    await new Promise((res) => setTimeout(res, 50));
    left = strays(before, r.descendants);
  }
  assert.deepEqual(
    left.map((p) => `${p.pid} (${p.comm}) state ${p.state} ppid ${p.ppid}`),
    [],
    `processes of the program outlived mapvisor by ${STRAY_POLL_MS} ms:\n${show(r)}`,
  );
}

/** `node bin/mapvisor.js run --platform P FLAGS... -- PROGRAM ARGS...`; never rejects on a non-zero exit. */
function runCli(platform: Platform, flags: string[], program: string, args: string[], env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const child = spawn(process.execPath, [CLI, 'run', '--platform', platform, ...flags, '--', program, ...args], {
      cwd: ROOT,
      env: env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const descendants = new Set<number>();
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const watch = setInterval(() => child.pid && collectDescendants(child.pid, descendants), 20);
    const killer = setTimeout(() => child.kill('SIGKILL'), CHILD_KILL_MS);
    child.on('error', (e) => {
      clearInterval(watch);
      clearTimeout(killer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearInterval(watch);
      clearTimeout(killer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Date.now() - start,
        descendants,
      });
    });
  });
}

function show(r: RunResult): string {
  const clip = (s: string): string => (s.length > 2000 ? `${s.slice(0, 2000)}... (${s.length} chars)` : s);
  return `exit ${r.code}${r.signal ? ` signal ${r.signal}` : ''} after ${r.ms} ms\n--- stdout:\n${clip(r.stdout)}\n--- stderr:\n${clip(r.stderr)}`;
}

function mapvisorLines(r: RunResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('mapvisor: '));
}

/** What every run must satisfy, whatever the program did. */
function assertWellBehaved(r: RunResult): void {
  assert.equal(r.signal, null, `mapvisor itself died by ${r.signal}:\n${show(r)}`);
  assert.ok(!r.stderr.includes('    at '), `stack trace in stderr:\n${show(r)}`);
  assert.ok(!/internal error/i.test(r.stderr), `internal error:\n${show(r)}`);
  assert.ok(mapvisorLines(r).length <= 1, `more than one "mapvisor: " line on stderr:\n${show(r)}`);
  assert.ok(!r.stdout.includes('not stopped!'), `the hostile operation went through:\n${show(r)}`);
  assert.ok(!r.stdout.includes('content<<<'), `a host file was read:\n${show(r)}`);
}

/** Killed by exactly `signo`: exit 128+signo and one line naming it. */
function assertKilledBy(r: RunResult, signo: number): void {
  assertWellBehaved(r);
  const name = SIGNAMES[signo]!;
  assert.equal(r.code, 128 + signo, `want death by ${name} (exit ${128 + signo}):\n${show(r)}`);
  const lines = mapvisorLines(r);
  assert.equal(lines.length, 1, `want one "mapvisor: " line:\n${show(r)}`);
  assert.ok(lines[0]!.includes(name), `the line should name ${name}:\n${show(r)}`);
}

/** Killed by some signal (1..64): exit 128+N and one `mapvisor: ` line. `timeout`: SIGKILL by --timeout counts. */
function assertKilledBySome(r: RunResult, opts: { timeout: boolean }): void {
  assertWellBehaved(r);
  const n = (r.code ?? 0) - 128;
  assert.ok(n >= 1 && n <= 64, `want exit 128+N for a signal N (1..64):\n${show(r)}`);
  if (!opts.timeout) assert.notEqual(n, SIG.SIGKILL, `want death by a signal, not a hang ended by --timeout:\n${show(r)}`);
  assert.equal(mapvisorLines(r).length, 1, `want one "mapvisor: " line:\n${show(r)}`);
  assert.match(mapvisorLines(r)[0]!, /killed by (SIG[A-Z0-9+]+|signal \d+)/, show(r));
}

/** Exit 0, nothing from mapvisor, and the program's own lines. */
function assertClean(r: RunResult, lines: RegExp[]): void {
  assertWellBehaved(r);
  assert.equal(r.code, 0, `want exit 0:\n${show(r)}`);
  assert.equal(mapvisorLines(r).length, 0, `want no "mapvisor: " line:\n${show(r)}`);
  for (const l of lines) assert.match(r.stdout, l, show(r));
}

// ---- the tests ----

let tmp = '';
/** Random text in a host file the programs try to read through the stub. */
let secret = '';
let secretPath = '';

before(() => {
  const missing = [CLI, ...['hostile-syscall', 'hostile-escape', 'hostile-ctl', 'hostile-deny', 'hostile-runaway'].map(guest)].filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run \`npm run build && node scripts/fixtures.mjs\` first`);
  tmp = mkdtempSync(join(tmpdir(), 'mapvisor-hostile-'));
  secret = `secret-${randomBytes(16).toString('hex')}`;
  secretPath = join(tmp, 'secret.txt');
  writeFileSync(secretPath, `${secret}\n`);
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const PLATFORMS: Array<[Platform, () => string | false]> = [
  ['process', processSkip],
  ['kvm', kvmSkip],
];

for (const [platform, skipReason] of PLATFORMS) {
  // The suite runs once per platform (.ci/run): each run tests its own platform's hostile programs.
  const skip = skipReason() || (PLATFORM !== platform && `this run of the suite tests the ${PLATFORM} platform`);
  if (skip) console.log(`# hostile programs on ${platform}: skipped: ${skip}`);

  describe(`hostile programs on ${platform}`, { skip }, () => {
    /** Runs the program and checks that nothing of it outlives mapvisor. */
    async function run(program: string, args: string[], flags: string[] = [], env?: NodeJS.ProcessEnv): Promise<RunResult> {
      const before = new Set(stubProcesses().map((p) => p.pid));
      const r = await runCli(platform, flags, guest(program), args, env);
      await assertNoStrays(r, before);
      return r;
    }
    const opts = { timeout: TEST_TIMEOUT_MS };

    test('syscall-anon: system calls from anonymous, W^X, stack and >4 GiB code pages are answered by mapvisor (getpid=1)', opts, async () => {
      const r = await run('hostile-syscall', []);
      assertClean(r, ['libc', 'low', 'anon', 'wx', 'stack', 'high'].map((n) => new RegExp(`^${n} getpid=1$`, 'm')).concat([/^syscall-anon done$/m]));
    });

    test('int80: `int $0x80` dies by a signal' + (platform === 'process' ? ' (SIGSYS)' : ''), opts, async () => {
      const r = await run('hostile-escape', ['int80']);
      if (platform === 'process') assertKilledBy(r, HOST_IA32 ? SIG.SIGSYS : SIG.SIGSEGV);
      else assertKilledBySome(r, { timeout: false });
    });

    test('sysenter: dies by a signal', opts, async () => {
      const r = await run('hostile-escape', ['sysenter']);
      assertKilledBySome(r, { timeout: false });
    });

    test('vsyscall: a call to 0xffffffffff600000 dies by a signal' + (platform === 'process' ? ' (SIGSYS where the host has a vsyscall page)' : ''), opts, async () => {
      const r = await run('hostile-escape', ['vsyscall']);
      if (platform === 'process') assertKilledBy(r, HOST_VSYSCALL ? SIG.SIGSYS : SIG.SIGSEGV);
      else assertKilledBySome(r, { timeout: false });
    });

    test('x32: a system call numbered 39 | 0x40000000 ' + (platform === 'process' ? 'dies by SIGSYS' : 'dies by a signal or is refused with ENOSYS'), opts, async () => {
      const r = await run('hostile-escape', ['x32']);
      if (platform === 'process') assertKilledBy(r, SIG.SIGSYS);
      else if (r.code === 0) assertClean(r, [/^x32 refused: ENOSYS$/m]);
      else assertKilledBySome(r, { timeout: false });
    });

    // The stub's text: on process a `syscall` there is the filter's allowlist's, and openat is not on it.
    // MAPVISOR_PROCESS_NO_NAMESPACES=1 takes away the empty root, so the filter alone guards the host files.
    const envs: Array<[string, NodeJS.ProcessEnv | undefined]> = [['', undefined]];
    if (platform === 'process') envs.push([' (seccomp alone: no namespaces)', { ...process.env, MAPVISOR_PROCESS_NO_NAMESPACES: '1' }]);
    for (const [what, env] of envs) {
      const want = (r: RunResult): void => (platform === 'process' ? assertKilledBy(r, SIG.SIGSYS) : assertKilledBy(r, SIG.SIGSEGV));

      test(`stub-jump: openat("/etc/hostname") through a syscall instruction of the stub is killed${what}`, opts, async () => {
        const r = await run('hostile-escape', ['stub-jump'], [], env);
        want(r);
        const hostname = existsSync('/etc/hostname') ? readFileSync('/etc/hostname', 'utf8').trim() : '';
        // (a short hostname may be a substring of anything: only the program's own markers are checked then)
        if (hostname.length >= 8) assert.ok(!r.stdout.includes(hostname), `/etc/hostname's content got out:\n${show(r)}`);
      });

      test(`stub-jump: a host file with a random secret is never read${what}`, opts, async () => {
        const r = await run('hostile-escape', ['stub-jump', secretPath], [], env);
        want(r);
        assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), `the secret got out:\n${show(r)}`);
      });

      test(`stub-create: openat(O_CREAT) of a host file through the stub is killed and creates nothing${what}`, opts, async () => {
        const target = join(tmp, `created-${randomBytes(4).toString('hex')}`);
        const r = await run('hostile-escape', ['stub-create', target], [], env);
        want(r);
        assert.ok(!existsSync(target), `the program created ${target} on the host:\n${show(r)}`);
      });
    }

    // The filter's allowlist for the stub's own text checks arguments: each of these must be killed at
    // the call (the program sets the callee-saved registers so that a call let through ends the
    // process by exit_group instead: exit 125 "ended without the kernel's say", not SIGSYS).
    const T = 0x100 | 0x200 | 0x400 | 0x800 | 0x10000 | 0x40000 | 0x200000; // the stub's thread clone flags
    const hex = (n: number): string => `0x${n.toString(16)}`;
    const stubCalls: Array<[what: string, args: string[]]> = [
      ['mmap of anonymous memory', ['9', '0x500000000', '4096', '7', '0x32', '-1', '0']],
      ['mmap of the control memfd (fd 3)', ['9', '0x500000000', '4096', '3', '0x11', '3', '0']],
      ['mmap of fd 4 with the high half of fd set', ['9', '0x500000000', '4096', '3', '0x11', '0x100000004', '0']],
      ['mmap of fd 16', ['9', '0x500000000', '4096', '3', '0x11', '16', '0']],
      ['clone of a process (SIGCHLD)', ['56', '17']],
      ['clone of a thread with CLONE_SETTLS added', ['56', hex(T | 0x80000)]],
      ['clone with flags in the high half', ['56', hex(T + 2 ** 32)]],
      ['arch_prctl(ARCH_GET_FS)', ['158', '0x1003', '0']],
      ['futex(FUTEX_CMP_REQUEUE)', ['202', '0x100000', '4', '1', '0', '0x100004', '0']],
      ['execve', ['59', '0', '0', '0']],
      ['socket(AF_INET, SOCK_STREAM)', ['41', '2', '1', '0']],
      ['ptrace(PTRACE_TRACEME)', ['101', '0']],
      ['prctl(PR_SET_DUMPABLE, 1)', ['157', '4', '1']],
    ];
    for (const [what, args] of stubCalls) {
      test(`stub-syscall: ${what} from the stub's text is killed${platform === 'process' ? ' (SIGSYS)' : ''}`, opts, async () => {
        const r = await run('hostile-escape', ['stub-syscall', ...args]);
        assertKilledBy(r, platform === 'process' ? SIG.SIGSYS : SIG.SIGSEGV);
      });
    }

    // The control area (process) / the supervisor area (kvm): anything but a clean death or timeout is a bug.
    const ctlCases: string[][] = [
      ['smash', 'zero'],
      ['smash', 'ones'],
      ['smash', 'random', '1'],
      ['smash', 'random', '2'],
      ['smash', 'random', '3'],
      ['forge-exit', '0'],
      ['forge-signal', '200'],
      ['forge-posted'],
      ['forge-ops'],
    ];
    for (const args of ctlCases) {
      test(`ctl ${args.join(' ')}: mapvisor exits 128+N with one line${platform === 'kvm' ? ' (SIGSEGV: the supervisor area)' : ''}`, opts, async () => {
        const r = await run('hostile-ctl', args, ['--timeout', String(SPIN_TIMEOUT_S)]);
        if (platform === 'kvm') assertKilledBy(r, SIG.SIGSEGV);
        else assertKilledBySome(r, { timeout: true });
        assert.ok(r.ms < CHILD_KILL_MS, `took ${r.ms} ms`);
      });
    }
    // The same from the stub's own (allowlisted) exit_group: the program's process ends behind the kernel's back.
    test(`stub-exit: exit_group(7) from the stub's text: mapvisor exits 128+N with one line${platform === 'kvm' ? ' (SIGSEGV: the supervisor area)' : ''}`, opts, async () => {
      const r = await run('hostile-escape', ['stub-syscall', '231', '7'], ['--timeout', String(SPIN_TIMEOUT_S)]);
      if (platform === 'kvm') assertKilledBy(r, SIG.SIGSEGV);
      else assertKilledBySome(r, { timeout: true });
    });

    for (const mode of ['ptrace', 'procmem', 'seccomp', 'map-stub']) {
      test(`${mode}: every attempt fails with an errno and the program goes on`, opts, async () => {
        const r = await run('hostile-deny', [mode]);
        assertClean(r, [/^getpid=1$/m, new RegExp(`^${mode}: all refused$`, 'm')]);
        assert.match(r.stdout, / = -1 errno=\d+ /, show(r));
      });
    }

    test('kill-host: kill/tgkill of pids 2..5 and of the test runner fail with ESRCH; the runner gets nothing', opts, async () => {
      let got = 0;
      const onUsr2 = (): void => {
        got++;
      };
      process.on('SIGUSR2', onUsr2);
      try {
        const r = await run('hostile-deny', ['kill-host', String(process.pid)]);
        assertClean(r, [/^getpid=1$/m, /^kill-host: all refused$/m, /^kill\(1, 0\) = 0 /m]);
        for (const line of r.stdout.split('\n').filter((l) => /^(kill|tgkill|tkill)\(\d/.test(l) && !l.startsWith('kill(1, 0)')))
          assert.match(line, /= -1 errno=3 /, `want ESRCH:\n${show(r)}`);
        await new Promise((res) => setTimeout(res, 100));
        assert.equal(got, 0, `the test runner received SIGUSR2 from the program:\n${show(r)}`);
      } finally {
        process.off('SIGUSR2', onUsr2);
      }
    });

    test(`block-kicks: every signal blocked through the stub's rt_sigreturn, then a spin: --timeout ${SPIN_TIMEOUT_S} still kills it`, opts, async () => {
      const r = await run('hostile-escape', ['block-kicks'], ['--timeout', String(SPIN_TIMEOUT_S)]);
      if (platform === 'kvm') {
        // The low read faults on kvm (the supervisor area).
        assertKilledBy(r, SIG.SIGSEGV);
        return;
      }
      assertKilledBy(r, SIG.SIGKILL);
      assert.match(mapvisorLines(r)[0]!, /timeout/, show(r));
      assert.ok(r.ms < CHILD_KILL_MS, `took ${r.ms} ms to enforce a ${SPIN_TIMEOUT_S} s timeout`);
    });

    for (const threads of [1, 4]) {
      test(`runaway on ${threads} thread(s): --timeout ${SPIN_TIMEOUT_S} kills it (exit 137, one line)`, opts, async () => {
        const r = await run('hostile-runaway', [String(threads)], ['--timeout', String(SPIN_TIMEOUT_S)]);
        assertKilledBy(r, SIG.SIGKILL);
        assert.match(mapvisorLines(r)[0]!, /timeout/, show(r));
        assert.ok(r.ms >= SPIN_TIMEOUT_S * 1000 - 100, `killed after ${r.ms} ms, before the timeout`);
        assert.ok(r.ms < CHILD_KILL_MS, `took ${r.ms} ms to enforce a ${SPIN_TIMEOUT_S} s timeout`);
      });
    }
  });
}
