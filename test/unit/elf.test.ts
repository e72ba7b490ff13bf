/**
 * ELF parser tests: real binaries compared field by field with `readelf -lhW`, plus synthetic bad files.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecError } from '../../src/errors.js';
import {
  EHDR,
  EHDR_SIZE,
  ELF_ERR,
  EM_X86_64,
  ET_CORE,
  ET_DYN,
  ET_EXEC,
  ET_REL,
  PAGE_SIZE,
  PF_R,
  PF_W,
  PF_X,
  PHDR,
  PHDR_SIZE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_PHDR,
  PT_TLS,
  parseElf,
  protOf,
  type ElfInfo,
  type ProgramHeader,
} from '../../src/loader/elf.js';

// ---------------------------------------------------------------------------------------------
// readelf output, parsed independently of the parser under test.

interface ReadelfInfo {
  type: string; // "EXEC", "DYN", "REL", ...
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  phdrs: Array<{ type: string; offset: number; vaddr: number; paddr: number; filesz: number; memsz: number; flags: string; align: number }>;
  interp: string | null;
}

function hasTool(tool: string): boolean {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_READELF = hasTool('readelf');
const HAVE_GCC = hasTool('gcc');

function readelf(path: string): ReadelfInfo {
  const out = execFileSync('readelf', ['-lhW', path], { encoding: 'utf8', maxBuffer: 16 << 20, env: { ...process.env, LC_ALL: 'C' } });
  const field = (label: string): string => {
    const m = new RegExp(`^\\s*${label}:\\s*(.*)$`, 'm').exec(out);
    assert.ok(m, `readelf output has no '${label}' line`);
    return m[1]!.trim();
  };
  const phdrs: ReadelfInfo['phdrs'] = [];
  const row = /^\s+(\S+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s([RWE ]{3})\s+(0x[0-9a-f]+)$/gm;
  for (const m of out.matchAll(row)) {
    phdrs.push({
      type: m[1]!,
      offset: Number(m[2]),
      vaddr: Number(m[3]),
      paddr: Number(m[4]),
      filesz: Number(m[5]),
      memsz: Number(m[6]),
      flags: m[7]!,
      align: Number(m[8]),
    });
  }
  const interp = /\[Requesting program interpreter: (.*)\]/.exec(out);
  return {
    type: field('Type').split(' ')[0]!,
    entry: Number(field('Entry point address')),
    phoff: parseInt(field('Start of program headers'), 10),
    phentsize: parseInt(field('Size of program headers'), 10),
    phnum: parseInt(field('Number of program headers'), 10),
    phdrs,
    interp: interp ? interp[1]! : null,
  };
}

/** readelf's name for a p_type. */
const PT_NAMES: ReadonlyMap<string, number> = new Map([
  ['NULL', 0],
  ['LOAD', 1],
  ['DYNAMIC', 2],
  ['INTERP', 3],
  ['NOTE', 4],
  ['SHLIB', 5],
  ['PHDR', 6],
  ['TLS', 7],
  ['GNU_EH_FRAME', 0x6474e550],
  ['GNU_STACK', 0x6474e551],
  ['GNU_RELRO', 0x6474e552],
  ['GNU_PROPERTY', 0x6474e553],
  ['GNU_SFRAME', 0x6474e554],
]);
function ptFromName(name: string): number {
  const known = PT_NAMES.get(name);
  if (known !== undefined) return known;
  const m = /^(LOOS|LOPROC)\+0x([0-9a-f]+)$/.exec(name);
  assert.ok(m, `unknown readelf segment type ${name}`);
  return (m[1] === 'LOOS' ? 0x60000000 : 0x70000000) + parseInt(m[2]!, 16);
}
function flagsFromReadelf(f: string): number {
  return (f[0] === 'R' ? PF_R : 0) | (f[1] === 'W' ? PF_W : 0) | (f[2] === 'E' ? PF_X : 0);
}

/** Compares every field of parseElf's result with readelf's view of the same file. */
function assertMatchesReadelf(info: ElfInfo, re: ReadelfInfo): void {
  assert.equal(info.kind, re.type === 'EXEC' ? 'exec' : 'dyn');
  assert.ok(re.type === 'EXEC' || re.type === 'DYN');
  assert.equal(info.entry, re.entry);
  assert.equal(info.phoff, re.phoff);
  assert.equal(info.phentsize, re.phentsize);
  assert.equal(info.phnum, re.phnum);
  assert.equal(info.phdrs.length, re.phdrs.length);
  re.phdrs.forEach((r, i) => {
    const p = info.phdrs[i]!;
    const expected: ProgramHeader = {
      type: ptFromName(r.type),
      flags: flagsFromReadelf(r.flags),
      offset: r.offset,
      vaddr: r.vaddr,
      paddr: r.paddr,
      filesz: r.filesz,
      memsz: r.memsz,
      align: r.align,
    };
    // readelf shows only R/W/E; compare those bits (no other bits are set in these binaries anyway).
    assert.deepEqual({ ...p, flags: p.flags & (PF_R | PF_W | PF_X) }, expected, `program header ${i} (${r.type})`);
  });
  const reLoads = re.phdrs.filter((r) => r.type === 'LOAD');
  assert.deepEqual(
    info.loads.map((l) => [l.offset, l.vaddr, l.filesz, l.memsz]),
    reLoads.map((r) => [r.offset, r.vaddr, r.filesz, r.memsz]),
  );
  assert.equal(info.interp, re.interp);

  const stack = re.phdrs.find((r) => r.type === 'GNU_STACK');
  assert.equal(info.stackExecutable, stack ? stack.flags[2] === 'E' : true);
  assert.equal(info.stackSize, stack && stack.memsz !== 0 ? stack.memsz : null);

  const tls = re.phdrs.find((r) => r.type === 'TLS');
  assert.equal(info.tls?.vaddr ?? null, tls?.vaddr ?? null);
  assert.equal(info.tls?.memsz ?? null, tls?.memsz ?? null);

  const phdrRow = re.phdrs.find((r) => r.type === 'PHDR');
  const covering = reLoads.find((r) => r.offset <= re.phoff && re.phoff + re.phnum * re.phentsize <= r.offset + r.filesz);
  const expectedPhdr = phdrRow ? phdrRow.vaddr : covering ? covering.vaddr + re.phoff - covering.offset : null;
  assert.equal(info.phdrVaddr, expectedPhdr);

  const lo = Math.min(...reLoads.map((r) => r.vaddr));
  const hi = Math.max(...reLoads.map((r) => r.vaddr + r.memsz));
  assert.equal(info.minVaddr, Math.floor(lo / PAGE_SIZE) * PAGE_SIZE);
  assert.equal(info.maxVaddr, Math.ceil(hi / PAGE_SIZE) * PAGE_SIZE);
}

function expectExecError(fn: () => unknown, code: string, messagePart?: RegExp): ExecError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ExecError, `expected ExecError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.ok(!caught.message.includes('\n'), 'message is one line');
  assert.ok(caught.fix.length > 0, 'has a fix');
  if (messagePart) assert.match(caught.message, messagePart);
  return caught;
}

// ---------------------------------------------------------------------------------------------

describe('struct layouts', () => {
  test('Elf64_Ehdr is 64 bytes and Elf64_Phdr 56', () => {
    assert.equal(EHDR_SIZE, 64);
    assert.equal(PHDR_SIZE, 56);
    // The last field of each ends exactly at the struct size.
    assert.equal(EHDR.e_shstrndx + 2, EHDR_SIZE);
    assert.equal(PHDR.p_align + 8, PHDR_SIZE);
    assert.equal(EHDR.e_entry, 24);
    assert.equal(EHDR.e_phnum, 56);
    assert.equal(PHDR.p_flags, 4);
    assert.equal(PHDR.p_vaddr, 16);
  });

  test('protOf maps PF_* to PROT_*', () => {
    assert.equal(protOf(0), 0);
    assert.equal(protOf(PF_R), PROT_READ);
    assert.equal(protOf(PF_R | PF_W), PROT_READ | PROT_WRITE);
    assert.equal(protOf(PF_R | PF_X), PROT_READ | PROT_EXEC);
    assert.equal(protOf(PF_R | PF_W | PF_X), 7);
    assert.equal(protOf(PF_X), PROT_EXEC);
  });
});

describe('real binaries match readelf', { skip: !HAVE_READELF && 'readelf not installed' }, () => {
  let dir = '';
  const SRC = '#include <stdio.h>\n__thread int t = 1;\nint main(void) { printf("hi %d\\n", t); return 0; }\n';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mapvisor-elf-'));
    writeFileSync(join(dir, 'hello.c'), SRC);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const gcc = (out: string, ...flags: string[]): string => {
    const path = join(dir, out);
    execFileSync('gcc', ['-O1', ...flags, '-o', path, join(dir, 'hello.c')], { stdio: 'pipe' });
    return path;
  };

  test('/usr/bin/node (dynamic)', { skip: !existsSync('/usr/bin/node') && 'no /usr/bin/node' }, () => {
    const info = parseElf(readFileSync('/usr/bin/node'), '/usr/bin/node');
    const re = readelf('/usr/bin/node');
    assertMatchesReadelf(info, re);
    assert.ok(info.interp !== null, 'node is dynamically linked');
    assert.ok(info.phdrs.some((p) => p.type === PT_PHDR));
  });

  test('gcc -static (ET_EXEC, no interpreter)', { skip: !HAVE_GCC && 'gcc not installed' }, () => {
    const path = gcc('static', '-static');
    const info = parseElf(readFileSync(path), path);
    assertMatchesReadelf(info, readelf(path));
    assert.equal(info.kind, 'exec');
    assert.equal(info.interp, null);
    assert.ok(info.tls !== null, 'the __thread variable gives a PT_TLS');
    assert.equal(info.stackExecutable, false);
    // No PT_PHDR here: the table is found through the first PT_LOAD (offset 0).
    assert.equal(info.phdrVaddr, info.loads[0]!.vaddr + info.phoff);
  });

  test('gcc -static-pie (ET_DYN, no interpreter)', { skip: !HAVE_GCC && 'gcc not installed' }, () => {
    const path = gcc('static-pie', '-static-pie');
    const info = parseElf(readFileSync(path), path);
    assertMatchesReadelf(info, readelf(path));
    assert.equal(info.kind, 'dyn');
    assert.equal(info.interp, null);
    assert.equal(info.minVaddr, 0);
  });

  test('gcc -pie (ET_DYN with interpreter)', { skip: !HAVE_GCC && 'gcc not installed' }, () => {
    const path = gcc('pie', '-pie', '-fPIE');
    const info = parseElf(readFileSync(path), path);
    assertMatchesReadelf(info, readelf(path));
    assert.equal(info.kind, 'dyn');
    assert.match(info.interp ?? '', /ld-linux-x86-64\.so\.2$/);
  });

  test('gcc -c object file is refused as relocatable', { skip: !HAVE_GCC && 'gcc not installed' }, () => {
    const path = join(dir, 'hello.o');
    execFileSync('gcc', ['-c', '-o', path, join(dir, 'hello.c')], { stdio: 'pipe' });
    assert.equal(readelf(path).type, 'REL');
    const e = expectExecError(() => parseElf(readFileSync(path), path), ELF_ERR.type, /relocatable/);
    assert.match(e.fix, /link/);
  });
});

// ---------------------------------------------------------------------------------------------
// Synthetic files: a minimal valid ELF, then broken one way at a time.

interface SynPhdr {
  type: number;
  flags?: number;
  offset: number | bigint;
  vaddr: number | bigint;
  filesz: number | bigint;
  memsz: number | bigint;
  align?: number;
}

/** Builds an ELF64 image: header, program headers at 64, then `size` bytes in total. */
function synth(phdrs: SynPhdr[], opts: { size?: number; type?: number; machine?: number; entry?: number; extra?: Array<[number, Uint8Array]> } = {}): Uint8Array {
  const size = opts.size ?? 0x3000;
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0);
  v.setUint16(EHDR.e_type, opts.type ?? ET_EXEC, true);
  v.setUint16(EHDR.e_machine, opts.machine ?? EM_X86_64, true);
  v.setUint32(EHDR.e_version, 1, true);
  v.setBigUint64(EHDR.e_entry, BigInt(opts.entry ?? 0x401000), true);
  v.setBigUint64(EHDR.e_phoff, BigInt(EHDR_SIZE), true);
  v.setUint16(EHDR.e_ehsize, EHDR_SIZE, true);
  v.setUint16(EHDR.e_phentsize, PHDR_SIZE, true);
  v.setUint16(EHDR.e_phnum, phdrs.length, true);
  phdrs.forEach((p, i) => {
    const o = EHDR_SIZE + i * PHDR_SIZE;
    v.setUint32(o + PHDR.p_type, p.type, true);
    v.setUint32(o + PHDR.p_flags, p.flags ?? PF_R, true);
    v.setBigUint64(o + PHDR.p_offset, BigInt(p.offset), true);
    v.setBigUint64(o + PHDR.p_vaddr, BigInt(p.vaddr), true);
    v.setBigUint64(o + PHDR.p_paddr, BigInt(p.vaddr), true);
    v.setBigUint64(o + PHDR.p_filesz, BigInt(p.filesz), true);
    v.setBigUint64(o + PHDR.p_memsz, BigInt(p.memsz), true);
    v.setBigUint64(o + PHDR.p_align, BigInt(p.align ?? PAGE_SIZE), true);
  });
  for (const [off, data] of opts.extra ?? []) b.set(data, off);
  return b;
}

const TEXT: SynPhdr = { type: PT_LOAD, flags: PF_R | PF_X, offset: 0, vaddr: 0x400000, filesz: 0x1800, memsz: 0x1800 };
const DATA: SynPhdr = { type: PT_LOAD, flags: PF_R | PF_W, offset: 0x2000, vaddr: 0x402000, filesz: 0x800, memsz: 0x5000 };
const GOOD = [TEXT, DATA];

describe('synthetic files', () => {
  test('a minimal valid file parses', () => {
    const info = parseElf(synth(GOOD), 'good');
    assert.equal(info.kind, 'exec');
    assert.equal(info.loads.length, 2);
    assert.equal(info.minVaddr, 0x400000);
    assert.equal(info.maxVaddr, 0x407000);
    assert.equal(info.phdrVaddr, 0x400040);
    assert.equal(info.interp, null);
    assert.equal(info.stackExecutable, true, 'no PT_GNU_STACK: executable stack, as Linux x86-64');
    assert.equal(info.stackSize, null);
    assert.equal(info.tls, null);
  });

  test('ET_DYN, PT_INTERP, PT_GNU_STACK, PT_TLS and PT_PHDR are reported', () => {
    const interp = new TextEncoder().encode('/lib/ld.so\0');
    const info = parseElf(
      synth(
        [
          { type: PT_PHDR, offset: 64, vaddr: 0x40, filesz: 5 * PHDR_SIZE, memsz: 5 * PHDR_SIZE },
          { type: PT_INTERP, offset: 0x200, vaddr: 0x200, filesz: interp.length, memsz: interp.length },
          { ...TEXT, vaddr: 0 },
          { type: PT_TLS, offset: 0x1000, vaddr: 0x1000, filesz: 8, memsz: 0x20 },
          { type: PT_GNU_STACK, flags: PF_R | PF_W, offset: 0, vaddr: 0, filesz: 0, memsz: 0x800000 },
        ],
        { type: ET_DYN, extra: [[0x200, interp]] },
      ),
      'pie',
    );
    assert.equal(info.kind, 'dyn');
    assert.equal(info.interp, '/lib/ld.so');
    assert.equal(info.phdrVaddr, 0x40);
    assert.equal(info.stackExecutable, false);
    assert.equal(info.stackSize, 0x800000);
    assert.equal(info.tls?.memsz, 0x20);
    assert.equal(info.minVaddr, 0);
  });

  test('PT_GNU_STACK with PF_X gives an executable stack', () => {
    const info = parseElf(synth([TEXT, { type: PT_GNU_STACK, flags: PF_R | PF_W | PF_X, offset: 0, vaddr: 0, filesz: 0, memsz: 0 }]), 'x');
    assert.equal(info.stackExecutable, true);
    assert.equal(info.stackSize, null);
  });

  test('phdrVaddr is null when no PT_LOAD covers the table', () => {
    const info = parseElf(synth([{ ...TEXT, offset: 0x1000, vaddr: 0x401000, filesz: 0x1000, memsz: 0x1000 }]), 'x');
    assert.equal(info.phdrVaddr, null);
  });

  test('bad magic', () => {
    expectExecError(() => parseElf(new TextEncoder().encode('hello world, not a program'), 'f'), ELF_ERR.notElf, /not an ELF/);
    expectExecError(() => parseElf(new Uint8Array(0), 'f'), ELF_ERR.notElf, /empty/);
    const b = synth(GOOD);
    b[1] = 0x46;
    expectExecError(() => parseElf(b, 'f'), ELF_ERR.notElf);
  });

  test('a #! script is named as one', () => {
    const e = expectExecError(() => parseElf(new TextEncoder().encode('#!/bin/sh -e\necho hi\n'), 'run.sh'), ELF_ERR.script, /script for '\/bin\/sh'/);
    assert.match(e.fix, /\/bin\/sh run\.sh/);
  });

  test('32-bit', () => {
    const b = synth(GOOD);
    b[4] = 1;
    expectExecError(() => parseElf(b, 'f'), ELF_ERR.class32, /32-bit programs are not supported/);
  });

  test('big-endian', () => {
    const b = synth(GOOD);
    b[5] = 2;
    expectExecError(() => parseElf(b, 'f'), ELF_ERR.endian, /big-endian/);
  });

  test('other machines are named', () => {
    expectExecError(() => parseElf(synth(GOOD, { machine: 183 }), 'f'), ELF_ERR.machine, /aarch64/);
    expectExecError(() => parseElf(synth(GOOD, { machine: 3 }), 'f'), ELF_ERR.machine, /i386/);
    expectExecError(() => parseElf(synth(GOOD, { machine: 243 }), 'f'), ELF_ERR.machine, /riscv/);
    expectExecError(() => parseElf(synth(GOOD, { machine: 9999 }), 'f'), ELF_ERR.machine, /unknown machine \(e_machine 9999\)/);
  });

  test('relocatable and core files', () => {
    expectExecError(() => parseElf(synth(GOOD, { type: ET_REL }), 'f.o'), ELF_ERR.type, /relocatable/);
    expectExecError(() => parseElf(synth(GOOD, { type: ET_CORE }), 'core'), ELF_ERR.type, /core dump/);
  });

  test('truncated', () => {
    const b = synth(GOOD);
    expectExecError(() => parseElf(b.subarray(0, 4), 'f'), ELF_ERR.truncated);
    expectExecError(() => parseElf(b.subarray(0, 40), 'f'), ELF_ERR.truncated, /ELF header/);
    expectExecError(() => parseElf(b.subarray(0, EHDR_SIZE + PHDR_SIZE + 10), 'f'), ELF_ERR.truncated, /program header table/);
  });

  test('phentsize other than 56', () => {
    const b = synth(GOOD);
    new DataView(b.buffer).setUint16(EHDR.e_phentsize, 32, true);
    expectExecError(() => parseElf(b, 'f'), ELF_ERR.phentsize);
  });

  test('zero or too many program headers', () => {
    expectExecError(() => parseElf(synth([]), 'f'), ELF_ERR.phnum, /no program headers/);
    const many = Array.from({ length: 74 }, (): SynPhdr => ({ type: 4, offset: 0, vaddr: 0, filesz: 0, memsz: 0 }));
    expectExecError(() => parseElf(synth([TEXT, ...many], { size: 0x4000 }), 'f'), ELF_ERR.phnum);
  });

  test('no PT_LOAD', () => {
    expectExecError(() => parseElf(synth([{ type: 4, offset: 0, vaddr: 0, filesz: 0, memsz: 0 }]), 'f'), ELF_ERR.noLoad);
  });

  test('segment beyond the end of the file', () => {
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, offset: 0x2000, filesz: 0x1001 }]), 'f'), ELF_ERR.segmentFile);
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, offset: 0x5000, vaddr: 0x405000 }]), 'f'), ELF_ERR.segmentFile);
  });

  test('filesz larger than memsz', () => {
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, filesz: 0x800, memsz: 0x400 }]), 'f'), ELF_ERR.segmentSize);
  });

  test('vaddr not congruent to offset', () => {
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, vaddr: 0x402010 }]), 'f'), ELF_ERR.segmentAlign);
  });

  test('overlapping and unsorted PT_LOADs', () => {
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, vaddr: 0x401000, offset: 0x2000 }]), 'f'), ELF_ERR.segmentOrder, /overlaps/);
    expectExecError(() => parseElf(synth([DATA, TEXT]), 'f'), ELF_ERR.segmentOrder, /out of order/);
    // Sharing a page without overlapping bytes is allowed.
    parseElf(synth([TEXT, { ...DATA, offset: 0x1800, vaddr: 0x401800, filesz: 0x100 }]), 'f');
  });

  test('values beyond 2^47 are refused, not rounded', () => {
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, vaddr: 0x800000002000n }]), 'f'), ELF_ERR.range, /2\^47/);
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, memsz: 0xffffffffffffffffn }]), 'f'), ELF_ERR.range);
    expectExecError(() => parseElf(synth([TEXT, { ...DATA, vaddr: 0x7ffffffff000, memsz: 0x2000 }]), 'f'), ELF_ERR.range);
  });

  test('malformed PT_INTERP', () => {
    const noNul = new TextEncoder().encode('/lib/ld.so');
    expectExecError(
      () => parseElf(synth([{ type: PT_INTERP, offset: 0x200, vaddr: 0x400200, filesz: noNul.length, memsz: noNul.length }, TEXT], { extra: [[0x200, noNul]] }), 'f'),
      ELF_ERR.interp,
      /NUL/,
    );
    expectExecError(() => parseElf(synth([{ type: PT_INTERP, offset: 0x2f00, vaddr: 0, filesz: 0x200, memsz: 0x200 }, TEXT]), 'f'), ELF_ERR.interp);
  });

  test('every error code is distinct', () => {
    const codes = Object.values(ELF_ERR);
    assert.equal(new Set(codes).size, codes.length);
  });
});
