#!/usr/bin/env node
/**
 * docs/syscalls.md: every x86-64 system call with mapvisor's coverage, generated from the code (the
 * dispatcher's handlers, src/abi/sysno.ts, src/kernel/coverage.ts) by the built modules in dist/.
 *
 *   npm run docs:syscalls                       build (tsc), then write docs/syscalls.md
 *   node scripts/syscalls-doc.mjs [--check]     from an existing build; --check writes nothing and
 *                                               exits 1 when docs/syscalls.md is stale
 *
 * An annotation that contradicts the code (src/kernel/coverage.ts) stops it with the reason.
 * test/unit/syscalls-doc.test.ts makes the same checks in `npm test`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => new URL(p, import.meta.url);
const built = here('../dist/src/kernel/coverage.js');
if (!existsSync(fileURLToPath(built))) {
  console.error('syscalls-doc: dist/ has no build: run `npm run docs:syscalls` (it builds first) or `npx tsc -p .`');
  process.exit(1);
}
const { implementedSyscalls } = await import(here('../dist/src/kernel/kernel.js').href);
const { coverageProblems, renderSyscallsDoc } = await import(built.href);

const implemented = implementedSyscalls();
const problems = coverageProblems(implemented);
if (problems.length) {
  console.error(`syscalls-doc: src/kernel/coverage.ts disagrees with the code:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
const doc = renderSyscallsDoc(implemented);
const out = fileURLToPath(here('../docs/syscalls.md'));
const old = existsSync(out) ? readFileSync(out, 'utf8') : null;
if (process.argv.includes('--check')) {
  if (old === doc) process.exit(0);
  console.error('syscalls-doc: docs/syscalls.md is stale: run `npm run docs:syscalls`');
  process.exit(1);
}
if (old !== doc) writeFileSync(out, doc);
const summary = doc.match(/## Summary\n\n([\s\S]*?)\n\n/)?.[1] ?? '';
console.log(`docs/syscalls.md ${old === doc ? 'is up to date' : 'written'}:`);
console.log(summary);
