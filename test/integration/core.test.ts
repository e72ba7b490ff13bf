/**
 * Core integration tests: run the real CLI (`node bin/mapvisor.js run ... -- PROGRAM ARGS...`) as a child
 * process on Debian's static busybox and on the guest programs of test/guest/, and check the CLI contract:
 *
 *  - exits with the program's exit status;
 *  - a program killed by signal N makes mapvisor exit 128+N and print one stderr line `mapvisor: ...`
 *    naming the signal;
 *  - mapvisor's own failures print one line `mapvisor: ...` and exit 125 (usage, no /dev/kvm),
 *    126 (exists but cannot be executed: not ELF, 32-bit, dynamically linked) or 127 (not found);
 *  - `--timeout S` kills the program with SIGKILL (137) and says so;
 *  - never a stack trace.
 *
 * The fixtures (.cache/busybox, .cache/guest/NAME) are prepared by `node scripts/fixtures.mjs`, which
 * `npm test` runs before the tests; this file only reads them.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onlyOn } from '../platform.js';

/** Repo root: this file runs as dist/test/integration/core.test.js. */
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const BUSYBOX = join(ROOT, '.cache', 'busybox');
const guest = (name: string): string => join(ROOT, '.cache', 'guest', name);

/** Per-test limit: a hang fails that test instead of blocking the suite. */
const TEST_TIMEOUT_MS = 30_000;
/** The child is SIGKILLed after this, so a hung VM never outlives its test. */
const CHILD_KILL_MS = 25_000;
/** Hostile programs must be stopped quickly. */
const HOSTILE_MAX_MS = 10_000;

interface RunResult {
  /** Exit status of mapvisor, or null if it was killed by a signal (then see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
  ms: number;
}

interface RunOptions {
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
}

/** Runs `node bin/mapvisor.js ARGS...` and collects its output. Never rejects on a non-zero exit. */
function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const killer = setTimeout(() => child.kill('SIGKILL'), CHILD_KILL_MS);
    child.on('error', (e) => {
      clearTimeout(killer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      const stdoutBytes = Buffer.concat(out);
      resolve({
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stdoutBytes,
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Date.now() - start,
      });
    });
    // The program may exit without reading all of stdin: ignore EPIPE.
    child.stdin.on('error', () => {});
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** `mapvisor run [FLAGS...] -- PROGRAM ARGS...` */
function run(flags: string[], program: string, args: string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  return runCli(['run', ...flags, '--', program, ...args], opts);
}

/** A compact description of a result for assertion messages. */
function show(r: RunResult): string {
  const clip = (s: string): string => (s.length > 2000 ? `${s.slice(0, 2000)}... (${s.length} chars)` : s);
  return `exit ${r.code}${r.signal ? ` signal ${r.signal}` : ''} after ${r.ms} ms\n--- stdout:\n${clip(r.stdout)}\n--- stderr:\n${clip(r.stderr)}`;
}

function assertNoStackTrace(r: RunResult): void {
  assert.ok(!r.stderr.includes('    at '), `stack trace in stderr:\n${show(r)}`);
}

function assertExit(r: RunResult, code: number): void {
  assert.equal(r.code, code, `want exit ${code}:\n${show(r)}`);
  assertNoStackTrace(r);
}

/** The stderr lines mapvisor itself printed. */
function mapvisorLines(r: RunResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('mapvisor: '));
}

/** mapvisor's own failure: exactly this code and exactly one `mapvisor: ` line on stderr. */
function assertOwnFailure(r: RunResult, code: number, mention?: RegExp): string {
  assertExit(r, code);
  const lines = mapvisorLines(r);
  assert.equal(lines.length, 1, `want one "mapvisor: " line on stderr:\n${show(r)}`);
  const line = lines[0]!;
  if (mention) assert.match(line, mention, `message should mention ${mention}:\n${show(r)}`);
  return line;
}

/** Program died by signal: exit 128+N and one `mapvisor: ` line naming the signal. */
function assertKilledBy(r: RunResult, signame: string, signo: number): void {
  assertExit(r, 128 + signo);
  const lines = mapvisorLines(r);
  assert.equal(lines.length, 1, `want one "mapvisor: " line on stderr:\n${show(r)}`);
  assert.ok(lines[0]!.includes(signame), `stderr line should name ${signame}:\n${show(r)}`);
  assert.ok(r.ms < HOSTILE_MAX_MS, `took ${r.ms} ms to stop a hostile program`);
  assert.ok(!r.stdout.includes('not stopped!'), `the hostile operation went through:\n${show(r)}`);
}

let tmp = '';

before(() => {
  const missing = [CLI, BUSYBOX, guest('hello')].filter((p) => !existsSync(p));
  if (missing.length > 0)
    throw new Error(`missing ${missing.join(', ')}: run \`npm run build && node scripts/fixtures.mjs\` first`);
  tmp = mkdtempSync(join(tmpdir(), 'mapvisor-core-'));
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('busybox', () => {
  test('echo hi | busybox wc -c prints 3', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], BUSYBOX, ['wc', '-c'], { input: 'hi\n' });
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), '3', show(r));
  });

  test('a program given by a relative path (its /proc/self/exe is absolute, as glibc asserts)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], join('.cache', 'busybox'), ['wc', '-c'], { input: 'hi\n' });
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), '3', show(r));
  });

  for (const ret of ['sregs', 'iretq']) {
    const skip = ret === 'iretq' && onlyOn('kvm', '--syscall-return iretq is a KVM return path');
    test(`signal handlers: faults, raise, sigaltstack, masks, sigreturn (return by ${ret})`, { timeout: TEST_TIMEOUT_MS, skip }, async () => {
      const r = await run(ret === 'iretq' ? ['--syscall-return', ret] : [], guest('signals'));
      assertExit(r, 0);
      assert.equal(r.stdout.trim(), 'signals ok', show(r));
    });
  }

  test('statx and fstatat of the working directory by an empty path, with no disk image: ENOENT, not a VMM failure', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], guest('statx-cwd'));
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), 'statx -1 No such file or directory, fstatat -1 No such file or directory', show(r));
  });

  test('epoll cycles are refused as Linux refuses them (ELOOP, EINVAL), the same answers as natively', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], guest('epoll-loop'));
    assertExit(r, 0);
    assert.equal(r.stdout, execFileSync(guest('epoll-loop'), { encoding: 'utf8' }), show(r));
  });

  test('eventfd, prctl, getcpu, membarrier, affinity', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], guest('misc'));
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), 'ok enosys\nmisc ok', show(r));
  });

  test('threads as vCPUs: 8 threads under a mutex give the exact total; condvar ping-pong; a thread fault reaches its handler', { timeout: 60_000 }, async () => {
    const r = await run(['--stats'], guest('threads'), ['10000']);
    assertExit(r, 0);
    assert.match(r.stdout, /counters ok: 160000\nping-pong ok: 10000 rounds\nthreads ok/, show(r));
    assert.match(r.stderr, /clone3 (9|10)/, 'the threads were made with clone3');
  });

  test('200 threads made and joined in rounds of 8 reuse the vCPUs of ended threads (the VM has 64)', { timeout: 60_000 }, async () => {
    const r = await run([], guest('threadchurn'));
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), 'churn ok: 200 threads', show(r));
  });

  test('--cpus 1 runs one vCPU at a time, and threads still make progress', { timeout: 60_000 }, async () => {
    const r = await run(['--cpus', '1'], guest('threads'), ['500']);
    assertExit(r, 0);
    assert.match(r.stdout, /threads ok/, show(r));
  });

  test('threads that deadlock are ended by --timeout, and the VMM releases its workers', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--timeout', '1'], guest('deadlock'));
    assert.equal(r.code, 137, show(r));
    assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
    assert.match(r.stderr, /timeout/);
  });

  test('epoll over a pipe and an eventfd fed by another thread; timerfd; clock_nanosleep TIMER_ABSTIME', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--timeout', '20'], guest('epoll'));
    assertExit(r, 0);
    assert.equal(r.stdout.trim(), 'epoll ok', show(r));
  });

  test('busybox echo hello world', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], BUSYBOX, ['echo', 'hello', 'world']);
    assertExit(r, 0);
    assert.equal(r.stdout, 'hello world\n');
  });

  test('busybox true exits 0', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], BUSYBOX, ['true']);
    assertExit(r, 0);
    assert.equal(r.stdout, '');
  });

  test('busybox false exits 1', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], BUSYBOX, ['false']);
    assertExit(r, 1);
    assert.equal(mapvisorLines(r).length, 0, `a plain non-zero exit is not mapvisor's business:\n${show(r)}`);
  });

  test('busybox sha256sum of 1.5 MiB random stdin matches the host', { timeout: TEST_TIMEOUT_MS }, async () => {
    const data = randomBytes(1536 * 1024 + 123);
    const want = execFileSync('sha256sum', { input: data, encoding: 'utf8' });
    const r = await run([], BUSYBOX, ['sha256sum'], { input: data });
    assertExit(r, 0);
    assert.equal(r.stdout, want);
  });

  test('busybox wc of 1.5 MiB random stdin matches the host', { timeout: TEST_TIMEOUT_MS }, async () => {
    const data = randomBytes(1536 * 1024 + 77);
    // LC_ALL=C: in a UTF-8 locale GNU wc counts words in invalid UTF-8 differently from busybox.
    const want = execFileSync('wc', { input: data, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
    const r = await run([], BUSYBOX, ['wc'], { input: data });
    assertExit(r, 0);
    // Same three numbers; the column padding differs between GNU and busybox.
    const fields = (s: string): string[] => s.trim().split(/\s+/);
    assert.deepEqual(fields(r.stdout), fields(want), show(r));
    assert.equal(fields(r.stdout)[2], String(data.length));
  });

  test('busybox seq 1 100000', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], BUSYBOX, ['seq', '1', '100000']);
    assertExit(r, 0);
    const want = Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join('');
    assert.equal(r.stdout.length, want.length, `output length ${r.stdout.length}, want ${want.length}`);
    assert.ok(r.stdout === want, 'seq output differs from the expected text');
  });
});

describe('guest programs', () => {
  test('hello', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], guest('hello'));
    assertExit(r, 0);
    assert.equal(r.stdout, 'hello\n');
  });

  test('memstress', { timeout: TEST_TIMEOUT_MS }, async () => {
    // Its peak natively is ~65 MiB resident (a 64 MiB mapping plus malloc); give it room.
    const r = await run(['--mem', '512M'], guest('memstress'));
    assertExit(r, 0);
    assert.match(r.stdout, /^memstress ok$/m, show(r));
    assert.doesNotMatch(r.stdout, /FAIL/, show(r));
  });

  test('tls', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], guest('tls'));
    assertExit(r, 0);
    assert.match(r.stdout, /^tls ok$/m, show(r));
  });

  test('avx', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], guest('avx'));
    assertExit(r, 0);
    assert.match(r.stdout, /^avx2 (used|not offered)$/m, show(r));
    assert.doesNotMatch(r.stdout, /FAIL/, show(r));
  });

  test('args: argv, envp and auxv', { timeout: TEST_TIMEOUT_MS }, async () => {
    // The program's environment is what --env gives it, never the host's.
    const env = { ...process.env, MAPVISOR_HOST_ONLY: 'leak' };
    const r = await run(['--env', 'MAPVISOR_TEST_VAR=x=y z', '--env', 'MAPVISOR_TEST_EMPTY='], guest('args'), ['one', 'two words', '', '--three'], { env });
    assertExit(r, 0);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('argc=5'), show(r));
    const argv0 = lines.find((l) => l.startsWith('argv[0]='));
    assert.ok(argv0 !== undefined && argv0.endsWith('args'), `argv[0] should name the program:\n${show(r)}`);
    for (const [i, a] of ['one', 'two words', '', '--three'].entries())
      assert.ok(lines.includes(`argv[${i + 1}]=${a}`), `argv[${i + 1}] should be ${JSON.stringify(a)}:\n${show(r)}`);
    const envLines = lines.filter((l) => l.startsWith('envp[')).map((l) => l.slice(l.indexOf('=') + 1));
    assert.ok(envLines.includes('MAPVISOR_TEST_VAR=x=y z'), `environment not passed:\n${show(r)}`);
    assert.ok(envLines.includes('MAPVISOR_TEST_EMPTY='), `empty environment variable not passed:\n${show(r)}`);

    const at = new Map<string, string>();
    for (const l of lines) {
      const m = /^(AT_[A-Z]+)=(.*)$/.exec(l);
      if (m) at.set(m[1]!, m[2]!);
    }
    assert.equal(at.get('AT_PAGESZ'), '4096');
    assert.equal(at.get('AT_RANDOM'), 'non-null');
    assert.equal(at.get('AT_PLATFORM'), 'x86_64');
    const execfn = at.get('AT_EXECFN') ?? '';
    assert.ok(execfn.length > 0 && execfn !== '(null)', `AT_EXECFN should be a string:\n${show(r)}`);
    assert.match(at.get('AT_HWCAP') ?? '', /^0x[0-9a-f]+$/);
    assert.equal(at.get('AT_CLKTCK'), '100');
    assert.match(at.get('AT_UID') ?? '', /^\d+$/);
    assert.equal(at.get('AT_SECURE'), '0');
  });

  test('exit status is passed through', { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const status of [42, 255]) {
      const r = await run([], guest('exit-code'), [String(status)]);
      assertExit(r, status);
      assert.equal(r.stdout, `exiting with ${status}\n`);
      assert.equal(mapvisorLines(r).length, 0, `a plain exit is not mapvisor's business:\n${show(r)}`);
    }
  });
});

describe('hostile programs', () => {
  const SIGILL = 4;
  const SIGFPE = 8;
  const SIGSEGV = 11;
  const cases: Array<[name: string, signame: string, signo: number]> = [
    ['null-deref', 'SIGSEGV', SIGSEGV],
    ['write-code', 'SIGSEGV', SIGSEGV],
    ['hlt', 'SIGSEGV', SIGSEGV],
    ['cli', 'SIGSEGV', SIGSEGV],
    ['jump-unmapped', 'SIGSEGV', SIGSEGV],
    ['div-zero', 'SIGFPE', SIGFPE],
    ['ud2', 'SIGILL', SIGILL],
    ['write-pagetable', 'SIGSEGV', SIGSEGV],
    ['read-stub', 'SIGSEGV', SIGSEGV],
  ];
  for (const [name, signame, signo] of cases) {
    test(`${name} dies with ${signame} (exit ${128 + signo})`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const r = await run([], guest(name));
      assertKilledBy(r, signame, signo);
    });
  }

  test('huge-mmap with --mem 256M: mmap fails with ENOMEM, exit 3', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--mem', '256M'], guest('huge-mmap'));
    assertExit(r, 3);
    assert.match(r.stdout, /^mmap failed: Cannot allocate memory$/m, show(r));
    assert.ok(r.ms < HOSTILE_MAX_MS, `took ${r.ms} ms`);
  });

  test('loop-forever with --timeout 1 is killed (exit 137)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--timeout', '1'], guest('loop-forever'));
    assertExit(r, 137);
    assert.ok(mapvisorLines(r).some((l) => /time(d)? ?out/i.test(l)), `want a timeout message:\n${show(r)}`);
    assert.ok(r.ms >= 900, `killed after ${r.ms} ms, before the 1 s timeout`);
    assert.ok(r.ms < HOSTILE_MAX_MS, `took ${r.ms} ms to enforce a 1 s timeout`);
  });
});

describe('bad input', () => {
  test('missing program exits 127', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], join(tmp, 'no-such-program'));
    assertOwnFailure(r, 127);
  });

  test('a text file exits 126', { timeout: TEST_TIMEOUT_MS }, async () => {
    const p = join(tmp, 'text-file');
    writeFileSync(p, 'just some text, not an ELF file\n');
    chmodSync(p, 0o755);
    const r = await run([], p);
    assertOwnFailure(r, 126);
  });

  test('a 32-bit ELF exits 126', { timeout: TEST_TIMEOUT_MS }, async () => {
    const p = join(tmp, 'elf32');
    writeFileSync(p, elf32Exec());
    chmodSync(p, 0o755);
    const r = await run([], p);
    assertOwnFailure(r, 126);
  });

  test('a dynamically linked program (/bin/true) exits 126', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run([], '/bin/true');
    assertOwnFailure(r, 126, /dynamic|interpreter/i);
  });

  test('--mem banana exits 125', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--mem', 'banana'], guest('hello'));
    assertOwnFailure(r, 125);
    assert.equal(r.stdout, '', 'the program must not run');
  });

  test('--mem 4K is refused as too small', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--mem', '4K'], guest('hello'));
    assert.notEqual(r.code, 0, show(r));
    assertNoStackTrace(r);
    assert.equal(mapvisorLines(r).length, 1, `want one "mapvisor: " line on stderr:\n${show(r)}`);
  });

  test('run with no program exits 125', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await runCli(['run']);
    assertOwnFailure(r, 125);
  });

  test('an unknown option exits 125', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await runCli(['run', '--no-such-option', '--', guest('hello')]);
    assertOwnFailure(r, 125);
  });
});

describe('--strace and --stats', () => {
  test('--strace prints each syscall to stderr', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--strace'], BUSYBOX, ['echo', 'hi']);
    assertExit(r, 0);
    assert.equal(r.stdout, 'hi\n');
    assert.match(r.stderr, /^write\(1, "hi\\n", 3\)\s*= 3$/m, show(r));
  });

  test('--strace on hello', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--strace'], guest('hello'));
    assertExit(r, 0);
    assert.equal(r.stdout, 'hello\n');
    assert.match(r.stderr, /^write\(1, "hello\\n", 6\)\s*= 6$/m, show(r));
  });

  test('--stats prints a summary mentioning syscalls', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = await run(['--stats'], guest('syscall-loop'), ['1000']);
    assertExit(r, 0);
    assert.equal(r.stdout, 'done\n');
    assert.match(r.stderr, /syscall/i, show(r));
  });
});

/**
 * A minimal ELFCLASS32 i386 executable: ELF header plus one PT_LOAD program header (never meant to run,
 * only to be recognised and refused).
 */
function elf32Exec(): Buffer {
  const b = Buffer.alloc(52 + 32 + 16);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 1; // ELFCLASS32
  b[5] = 1; // ELFDATA2LSB
  b[6] = 1; // EV_CURRENT
  b.writeUInt16LE(2, 16); // e_type: ET_EXEC
  b.writeUInt16LE(3, 18); // e_machine: EM_386
  b.writeUInt32LE(1, 20); // e_version
  b.writeUInt32LE(0x08048000 + 84, 24); // e_entry
  b.writeUInt32LE(52, 28); // e_phoff
  b.writeUInt32LE(0, 32); // e_shoff
  b.writeUInt32LE(0, 36); // e_flags
  b.writeUInt16LE(52, 40); // e_ehsize
  b.writeUInt16LE(32, 42); // e_phentsize
  b.writeUInt16LE(1, 44); // e_phnum
  b.writeUInt16LE(40, 46); // e_shentsize
  b.writeUInt16LE(0, 48); // e_shnum
  b.writeUInt16LE(0, 50); // e_shstrndx
  // PT_LOAD covering the whole file at 0x08048000, R+X.
  b.writeUInt32LE(1, 52); // p_type
  b.writeUInt32LE(0, 56); // p_offset
  b.writeUInt32LE(0x08048000, 60); // p_vaddr
  b.writeUInt32LE(0x08048000, 64); // p_paddr
  b.writeUInt32LE(b.length, 68); // p_filesz
  b.writeUInt32LE(b.length, 72); // p_memsz
  b.writeUInt32LE(5, 76); // p_flags: PF_R | PF_X
  b.writeUInt32LE(0x1000, 80); // p_align
  // Code: mov eax, 1; mov ebx, 0; int 0x80 (exit(0)) — padded.
  Buffer.from([0xb8, 1, 0, 0, 0, 0xbb, 0, 0, 0, 0, 0xcd, 0x80]).copy(b, 84);
  return b;
}
