/**
 * docs/syscalls.md is what the code says: regenerated here in memory from the dispatcher's handlers,
 * src/abi/sysno.ts and src/kernel/coverage.ts, it must equal the checked-in file; and every coverage
 * annotation must name a real system call and agree with whether it has a handler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { SYS } from '../../src/abi/sysno.js';
import { implementedSyscalls } from '../../src/kernel/kernel.js';
import { COVERAGE, coverageProblems, renderSyscallsDoc, syscallRows } from '../../src/kernel/coverage.js';

const DOC = new URL('../../../docs/syscalls.md', import.meta.url);
const FIX = 'run `npm run docs:syscalls` and commit docs/syscalls.md';

test('sysno.ts numbers every x86-64 system call once, without gaps in 0..N and 424..M', () => {
  const entries = Object.entries(SYS);
  const numbers = entries.map(([, nr]) => nr).sort((a, b) => a - b);
  assert.equal(new Set(numbers).size, numbers.length, 'a number is given to two names');
  const low = numbers.filter((n) => n < 424);
  const high = numbers.filter((n) => n >= 424);
  assert.deepEqual(low, low.map((_, i) => i), 'the numbers below 424 have a gap');
  assert.deepEqual(high, high.map((_, i) => 424 + i), 'the numbers from 424 have a gap');
  assert.ok(low.length >= 335 && high.length >= 27, 'the table is shorter than Linux 6.1 has');
});

test("sysno.ts agrees with this machine's <asm/unistd_64.h>", (t) => {
  const header = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
  if (!existsSync(header)) {
    t.skip(`${header} absent`);
    return;
  }
  const sys = SYS as Record<string, number>;
  for (const [, name, nr] of readFileSync(header, 'utf8').matchAll(/#define __NR_(\w+) (\d+)/g)) {
    assert.equal(sys[name!], Number(nr), `__NR_${name} is ${nr} in ${header}`);
  }
});

test('every coverage annotation names a system call and agrees with its handler', () => {
  const problems = coverageProblems(implementedSyscalls());
  assert.deepEqual(problems, [], `src/kernel/coverage.ts disagrees with the code:\n  ${problems.join('\n  ')}\n`);
  for (const [name, c] of Object.entries(COVERAGE)) {
    assert.ok(name in SYS, `${name} is no system call`);
    const has = implementedSyscalls().includes(name);
    assert.equal(has, c!.status !== 'not-implemented', `${name} is annotated ${c!.status} but ${has ? 'has' : 'has no'} handler`);
  }
});

test('status comes from the handlers first: an unannotated handler is implemented, an annotation without its handler is a problem', () => {
  const implemented = implementedSyscalls();
  const byName = (rows: ReturnType<typeof syscallRows>, name: string) => rows.find((r) => r.name === name)!;
  // A call that gains a handler and has no annotation shows as implemented, with no work on the table.
  const unannotated = Object.keys(SYS).find((n) => !implemented.includes(n) && !(n in COVERAGE))!;
  assert.ok(unannotated, 'every call without a handler is annotated');
  assert.equal(byName(syscallRows(implemented), unannotated).status, 'not implemented');
  assert.equal(byName(syscallRows(implemented), unannotated).notes, '');
  assert.equal(byName(syscallRows([...implemented, unannotated]), unannotated).status, 'implemented');
  // A partial call that loses its handler, and a not-implemented one that gains one, are reported.
  const partial = Object.entries(COVERAGE).find(([, c]) => c!.status === 'partial')![0];
  assert.equal(byName(syscallRows(implemented), partial).status, 'partial');
  assert.match(coverageProblems(implemented.filter((n) => n !== partial)).join('\n'), new RegExp(`^${partial}: annotated "partial"`, 'm'));
  const gone = Object.entries(COVERAGE).find(([, c]) => c!.status === 'not-implemented')![0];
  assert.match(coverageProblems([...implemented, gone]).join('\n'), new RegExp(`^${gone}: annotated "not-implemented"`, 'm'));
  assert.match(coverageProblems([...implemented, 'no_such_call']).join('\n'), /^no_such_call has a handler/m);
});

test('docs/syscalls.md is up to date with the code', () => {
  const want = renderSyscallsDoc(implementedSyscalls());
  const rows = syscallRows(implementedSyscalls());
  assert.equal(rows.length, Object.keys(SYS).length);
  assert.ok(existsSync(DOC), `docs/syscalls.md is missing: ${FIX}`);
  const have = readFileSync(DOC, 'utf8');
  if (have !== want) {
    const a = have.split('\n');
    const b = want.split('\n');
    const i = a.findIndex((line, j) => line !== b[j]);
    const at = i < 0 ? Math.min(a.length, b.length) : i;
    assert.fail(`docs/syscalls.md is stale (first difference at line ${at + 1}:\n  checked in: ${a[at] ?? '(end of file)'}\n  code says:  ${b[at] ?? '(end of file)'}): ${FIX}`);
  }
});
