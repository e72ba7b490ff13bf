/**
 * Initial stack tests: build, then decode the bytes back as a program's _start would.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ExecError } from '../../src/errors.js';
import { AT, ARG_MAX_BYTES, MAX_ARG_STRLEN, buildInitialStack, type BuiltStack, type StackSpec } from '../../src/loader/stack.js';

const TOP = 0x7ffffffff000;
const RANDOM = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const CALLER_AUXV: Array<[number, number]> = [
  [AT.SYSINFO_EHDR, 0x7ffff7fc1000],
  [AT.MINSIGSTKSZ, 2048],
  [AT.HWCAP, 0x178bfbff],
  [AT.PAGESZ, 4096],
  [AT.CLKTCK, 100],
  [AT.PHDR, 0x400040],
  [AT.PHENT, 56],
  [AT.PHNUM, 10],
  [AT.BASE, 0],
  [AT.FLAGS, 0],
  [AT.ENTRY, 0x401000],
  [AT.UID, 1000],
  [AT.EUID, 1000],
  [AT.GID, 1000],
  [AT.EGID, 1000],
  [AT.SECURE, 0],
  [AT.HWCAP2, 2],
];

function spec(over: Partial<StackSpec> = {}): StackSpec {
  return {
    top: TOP,
    argv: ['/bin/prog', 'one', 'twö'],
    envp: ['HOME=/root', 'PATH=/usr/bin:/bin', 'LANG=C.UTF-8'],
    execfn: '/bin/prog',
    platform: 'x86_64',
    random: RANDOM,
    auxv: CALLER_AUXV,
    ...over,
  };
}

interface Decoded {
  argc: number;
  argvPtrs: number[];
  envpPtrs: number[];
  argv: string[];
  envp: string[];
  auxv: Array<[number, number]>;
}

/** Reads the stack the way a program's _start does, starting at sp. */
function decode(built: BuiltStack): Decoded {
  const { sp, bytes } = built;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let addr = sp;
  const word = (): number => {
    const v = view.getBigUint64(addr - sp, true);
    addr += 8;
    assert.ok(v <= BigInt(Number.MAX_SAFE_INTEGER));
    return Number(v);
  };
  const argc = word();
  const argvPtrs: number[] = [];
  for (let i = 0; i < argc; i++) argvPtrs.push(word());
  assert.equal(word(), 0, 'argv is NULL-terminated');
  const envpPtrs: number[] = [];
  for (let p = word(); p !== 0; p = word()) envpPtrs.push(p);
  const auxv: Array<[number, number]> = [];
  for (;;) {
    const type = word();
    const value = word();
    auxv.push([type, value]);
    if (type === AT.NULL) break;
  }
  return { argc, argvPtrs, envpPtrs, argv: argvPtrs.map((p) => cstring(built, p)), envp: envpPtrs.map((p) => cstring(built, p)), auxv };
}

function cstring(built: BuiltStack, addr: number): string {
  assert.ok(addr >= built.sp && addr < built.sp + built.bytes.length, `pointer ${addr.toString(16)} is inside the stack`);
  const start = addr - built.sp;
  const end = built.bytes.indexOf(0, start);
  assert.ok(end >= 0, 'string is NUL-terminated');
  return new TextDecoder().decode(built.bytes.subarray(start, end));
}

const auxval = (d: Decoded, type: number): number | undefined => d.auxv.find(([t]) => t === type)?.[1];
const strBytes = (s: string): number => new TextEncoder().encode(s).length + 1;

describe('buildInitialStack', () => {
  test('decodes back to argc, argv, envp and auxv', () => {
    const s = spec();
    const built = buildInitialStack(s);
    assert.equal(built.sp % 16, 0, 'sp is 16-byte aligned');
    assert.equal(built.bytes.length, TOP - built.sp);
    const d = decode(built);
    assert.equal(d.argc, 3);
    assert.deepEqual(d.argv, s.argv);
    assert.deepEqual(d.envp, s.envp);
    assert.deepEqual(d.argvPtrs, built.argvAddrs);
    assert.deepEqual(d.envpPtrs, built.envpAddrs);
    assert.deepEqual(d.auxv, built.auxv);
    // The caller's entries come first, in order; then the builder's; AT_NULL last.
    assert.deepEqual(d.auxv.slice(0, CALLER_AUXV.length), CALLER_AUXV);
    assert.deepEqual(
      d.auxv.slice(CALLER_AUXV.length).map(([t]) => t),
      [AT.RANDOM, AT.EXECFN, AT.PLATFORM, AT.NULL],
    );
    assert.deepEqual(d.auxv.at(-1), [AT.NULL, 0]);
  });

  test('AT_RANDOM, AT_EXECFN and AT_PLATFORM point at what they name', () => {
    const built = buildInitialStack(spec({ execfn: './prog' }));
    const d = decode(built);
    const rnd = auxval(d, AT.RANDOM)!;
    assert.deepEqual(built.bytes.subarray(rnd - built.sp, rnd - built.sp + 16), RANDOM);
    assert.equal(cstring(built, auxval(d, AT.EXECFN)!), './prog');
    assert.equal(cstring(built, auxval(d, AT.PLATFORM)!), 'x86_64');
    // Linux places the random bytes directly below the platform string.
    assert.equal(auxval(d, AT.PLATFORM)! - rnd, 16);
  });

  test('string area follows Linux: argv then envp contiguous, execfn at the top, 8-byte end marker', () => {
    const s = spec();
    const built = buildInitialStack(s);
    const all = [...s.argv, ...s.envp];
    const addrs = [...built.argvAddrs, ...built.envpAddrs];
    for (let i = 1; i < addrs.length; i++) assert.equal(addrs[i], addrs[i - 1]! + strBytes(all[i - 1]!));
    const execfnAddr = auxval(decode(built), AT.EXECFN)!;
    assert.equal(execfnAddr, addrs.at(-1)! + strBytes(all.at(-1)!), 'execfn directly above the last envp string');
    assert.equal(execfnAddr + strBytes(s.execfn), TOP - 8);
    assert.deepEqual(built.bytes.subarray(built.bytes.length - 8), new Uint8Array(8));
    // The random bytes and platform lie below the strings, the table below those.
    assert.ok(auxval(decode(built), AT.PLATFORM)! + strBytes('x86_64') <= addrs[0]!);
  });

  test('empty argv gets one empty string, as Linux does since 5.18', () => {
    const d = decode(buildInitialStack(spec({ argv: [] })));
    assert.equal(d.argc, 1);
    assert.deepEqual(d.argv, ['']);
  });

  test('empty envp and empty platform', () => {
    const built = buildInitialStack(spec({ envp: [], platform: '' }));
    const d = decode(built);
    assert.deepEqual(d.envp, []);
    assert.equal(auxval(d, AT.PLATFORM), undefined);
    assert.equal(built.sp % 16, 0);
  });

  test('invariants hold for arbitrary arguments and environments', () => {
    const str = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((x) => !x.includes('\0'));
    fc.assert(
      fc.property(
        fc.array(str, { maxLength: 12 }),
        fc.array(str, { maxLength: 12 }),
        str,
        fc.integer({ min: 0x10000, max: 2 ** 47 / 16 }),
        (argv, envp, execfn, topUnits) => {
          const top = topUnits * 16;
          const built = buildInitialStack(spec({ top, argv, envp, execfn }));
          assert.equal(built.sp % 16, 0);
          assert.equal(built.bytes.length, top - built.sp);
          const d = decode(built);
          assert.deepEqual(d.argv, argv.length ? argv : ['']);
          assert.deepEqual(d.envp, envp);
          assert.equal(cstring(built, auxval(d, AT.EXECFN)!), execfn);
          const rnd = auxval(d, AT.RANDOM)! - built.sp;
          assert.deepEqual(built.bytes.subarray(rnd, rnd + 16), RANDOM);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('E2BIG when strings exceed the limit', () => {
    const big = 'x'.repeat(100_000);
    // 20 × 100 kB = 2 MB: fits.
    buildInitialStack(spec({ argv: Array.from({ length: 20 }, () => big) }));
    const expectE2big = (s: StackSpec, msg: RegExp): void => {
      assert.throws(
        () => buildInitialStack(s),
        (e: unknown) => e instanceof ExecError && e.code === 'E2BIG' && msg.test(e.message) && e.fix.length > 0,
      );
    };
    // 11 + 11 × 100 kB > 2 MiB.
    expectE2big(spec({ argv: Array.from({ length: 11 }, () => big), envp: Array.from({ length: 11 }, () => big) }), /2097152-byte limit/);
    // Many small strings: the pointers count too.
    expectE2big(spec({ envp: Array.from({ length: ARG_MAX_BYTES / 12 }, () => 'A=1234') }), /limit/);
    // Exactly at the limit passes, one byte more fails (strings + NULs + 8-byte pointers + execfn).
    const chunks = Array.from({ length: 17 }, () => 'z'.repeat(120_000));
    const used = chunks.length * (120_001 + 8) + strBytes('e') + 8; // + the last argument's pointer
    const last = 'w'.repeat(ARG_MAX_BYTES - used - 1);
    buildInitialStack(spec({ argv: [...chunks, last], envp: [], execfn: 'e' }));
    expectE2big(spec({ argv: [...chunks, last + 'w'], envp: [], execfn: 'e' }), /2097153 bytes/);
    // One string longer than MAX_ARG_STRLEN.
    expectE2big(spec({ argv: ['prog', 'y'.repeat(MAX_ARG_STRLEN)] }), /an argument is/);
    expectE2big(spec({ envp: ['X=' + 'y'.repeat(MAX_ARG_STRLEN)] }), /an environment variable is/);
  });

  test('caller errors are RangeErrors', () => {
    assert.throws(() => buildInitialStack(spec({ top: TOP + 8 })), RangeError);
    assert.throws(() => buildInitialStack(spec({ random: new Uint8Array(8) })), RangeError);
    for (const t of [AT.RANDOM, AT.EXECFN, AT.PLATFORM, AT.NULL]) {
      assert.throws(() => buildInitialStack(spec({ auxv: [...CALLER_AUXV, [t, 1]] })), RangeError);
    }
    assert.throws(() => buildInitialStack(spec({ auxv: [[AT.ENTRY, -1]] })), RangeError);
  });

  test('AT numbers are Linux\'s', () => {
    assert.equal(AT.PHDR, 3);
    assert.equal(AT.ENTRY, 9);
    assert.equal(AT.SECURE, 23);
    assert.equal(AT.RANDOM, 25);
    assert.equal(AT.EXECFN, 31);
    assert.equal(AT.SYSINFO_EHDR, 33);
    assert.equal(AT.MINSIGSTKSZ, 51);
  });
});

// Cross-check the string area against a real Linux process: relative positions of argv/envp strings
// and AT_EXECFN are deterministic (only the whole stack is shifted by ASLR).
const HAVE_GCC = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('string layout matches a real Linux process', { skip: !HAVE_GCC && 'gcc not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-stack-'));
  try {
    const src = `
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
int main(int argc, char **argv, char **envp) {
  uintptr_t execfn = getauxval(AT_EXECFN), rnd = getauxval(AT_RANDOM), plat = getauxval(AT_PLATFORM);
  uintptr_t top = execfn + strlen((char *)execfn) + 1 + 8;
  printf("%lu\\n", (unsigned long)(top % 4096));
  printf("%ld\\n", (long)(plat - rnd));
  for (int i = 0; i < argc; i++) printf("%ld\\n", (long)(top - (uintptr_t)argv[i]));
  for (char **e = envp; *e; e++) printf("%ld\\n", (long)(top - (uintptr_t)*e));
  printf("%ld\\n", (long)(top - execfn));
  return 0;
}
`;
    writeFileSync(join(dir, 'layout.c'), src);
    const prog = join(dir, 'layout');
    execFileSync('gcc', ['-O1', '-static', '-o', prog, join(dir, 'layout.c')], { stdio: 'pipe' });
    const argv = [prog, 'alpha', '', 'gämma'];
    const envp = ['A=1', 'BB=two', 'EMPTY='];
    const out = execFileSync(prog, argv.slice(1), { env: Object.fromEntries(envp.map((e) => e.split('=') as [string, string])), encoding: 'utf8' });
    const [topMod, platMinusRnd, ...dists] = out.trim().split('\n').map(Number);
    assert.equal(topMod, 0, 'the end marker ends at a page boundary');
    const built = buildInitialStack(spec({ argv, envp, execfn: prog }));
    const d = decode(built);
    assert.equal(platMinusRnd, auxval(d, AT.PLATFORM)! - auxval(d, AT.RANDOM)!);
    const ours = [...built.argvAddrs, ...built.envpAddrs, auxval(d, AT.EXECFN)!].map((a) => TOP - a);
    assert.deepEqual(dists, ours);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
