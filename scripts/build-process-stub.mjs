// Build the process platform's stub (src/platform/process/stub/stub.c + stub-entry.S) into the static,
// libc-free ELF the supervisor starts for every sandboxed program: dist/stubs/mapvisor-stub. Needs gcc.
// Skipped when the output is newer than every source. The stub must load entirely inside
// [0x10000, 0xf0000) (abi.h: the control area starts at 0x100000), which is checked after linking.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'src/platform/process/stub');
const sources = ['stub.c', 'stub-entry.S'].map((f) => join(dir, f));
const inputs = [...sources, join(dir, 'abi.h'), fileURLToPath(import.meta.url)];
const out = join(root, 'dist/stubs/mapvisor-stub');
const LOAD_START = 0x10000n;
const LOAD_END = 0xf0000n;

const FLAGS = [
  '-static', '-nostdlib', '-nostartfiles', '-ffreestanding', '-fno-builtin', '-fno-stack-protector',
  '-fno-pie', '-no-pie', '-fcf-protection=none', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables',
  '-O2', '-Wall', '-Wextra', '-Werror', '-Wno-comment', // abi.h's comments mention src/.../*.ts
  '-Wl,-Ttext-segment=0x10000', '-Wl,--build-id=none', '-Wl,-z,noexecstack', '-Wl,-z,norelro',
];

function fail(what) {
  console.error(`mapvisor build: ${what} (install gcc: apt-get install gcc)`);
  process.exit(1);
}

// The PT_LOAD segments of a little-endian ELF64 executable, from its program headers.
function loadSegments(file) {
  const b = readFileSync(file);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return null;
  if (b.readUInt16LE(16) !== 2) return null; // ET_EXEC: a fixed-address executable
  const phoff = Number(b.readBigUInt64LE(32));
  const phentsize = b.readUInt16LE(54);
  const phnum = b.readUInt16LE(56);
  const segs = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const type = b.readUInt32LE(o);
    if (type === 3 || type === 2) return null; // PT_INTERP / PT_DYNAMIC: not a static stub
    if (type === 1) segs.push({ vaddr: b.readBigUInt64LE(o + 16), memsz: b.readBigUInt64LE(o + 40) });
  }
  return segs;
}

const newest = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
if (!(existsSync(out) && statSync(out).mtimeMs >= newest)) {
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp`;
  try {
    execFileSync('gcc', [...FLAGS, '-o', tmp, ...sources], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    rmSync(tmp, { force: true });
    if (e && e.code === 'ENOENT') fail('gcc is not installed');
    const text = `${e.stderr ?? ''}`;
    const first = text.split('\n').find((l) => /error/.test(l)) ?? text.split('\n').find((l) => l.trim()) ?? '';
    fail(`compiling the process stub failed${first ? `: ${first.trim()}` : ''}`);
  }
  const segs = loadSegments(tmp);
  const bad = segs === null || segs.length === 0 ||
    segs.some((s) => s.vaddr < LOAD_START || s.vaddr + s.memsz > LOAD_END);
  if (bad) {
    rmSync(tmp, { force: true });
    console.error('mapvisor build: the process stub does not load inside [0x10000, 0xf0000) as a static executable');
    process.exit(1);
  }
  renameSync(tmp, out);
}
