/**
 * exec for static programs: map an ELF's PT_LOAD segments into the address space with their
 * permissions, set the break after them, map the stack and write the psABI initial stack on it.
 */
import { ExecError } from '../errors.js';
import { PROT_READ, PROT_WRITE } from '../kvm/libc.js';
import { pageDown, pageUp, type AddressSpace } from '../mm/space.js';
import { HUGE_PAGE_SIZE, PAGE_SIZE } from '../vm/layout.js';
import { protOf, type ElfInfo } from './elf.js';
import { AT, buildInitialStack } from './stack.js';

export interface ExecImage {
  path: string;
  bytes: Uint8Array;
  elf: ElfInfo;
}

export interface ExecParams {
  argv: string[];
  envp: string[];
  execfn: string;
  uid: number;
  gid: number;
  hwcap: number;
  random: Uint8Array;
}

export interface LoadedProgram {
  entry: number;
  sp: number;
  bias: number;
  brk: number;
  auxv: Array<[number, number]>;
}

/** Where a position-independent (static-PIE) program is placed. */
export function pieBase(spaceSize: number): number {
  const base = Math.min(4 * 2 ** 30, Math.floor(spaceSize / 4));
  return base - (base % HUGE_PAGE_SIZE);
}

/**
 * The page runs the segments cover, each with the union of the protections of the segments touching
 * it (two segments may share a page: the ELF rules only forbid overlapping bytes).
 */
export function segmentPages(elf: ElfInfo, bias: number): Array<{ start: number; end: number; prot: number }> {
  const prot = new Map<number, number>();
  for (const ph of elf.loads) {
    if (ph.memsz === 0) continue;
    for (let pg = pageDown(bias + ph.vaddr); pg < bias + ph.vaddr + ph.memsz; pg += PAGE_SIZE) {
      prot.set(pg, (prot.get(pg) ?? 0) | protOf(ph.flags));
    }
  }
  const runs: Array<{ start: number; end: number; prot: number }> = [];
  for (const pg of [...prot.keys()].sort((a, b) => a - b)) {
    const last = runs[runs.length - 1];
    const p = prot.get(pg)!;
    if (last && last.end === pg && last.prot === p) last.end += PAGE_SIZE;
    else runs.push({ start: pg, end: pg + PAGE_SIZE, prot: p });
  }
  return runs;
}

export function loadProgram(space: AddressSpace, image: ExecImage, params: ExecParams): LoadedProgram {
  const { elf, bytes } = image;
  const bias = elf.kind === 'dyn' ? pieBase(space.layout.size) - elf.minVaddr : 0;
  const lo = bias + elf.minVaddr;
  const hi = bias + elf.maxVaddr;
  if (lo < 0x40_0000 || hi > space.mmapTop) {
    throw new ExecError(
      'EELFRANGE',
      `${image.path} wants addresses 0x${lo.toString(16)}-0x${hi.toString(16)}, outside the VM's user space`,
      'use a bigger address space (--space) or a position-independent build',
    );
  }
  const pages = segmentPages(elf, bias);
  // Map every page writable, fill it, then give each range its real protection.
  for (const p of pages) {
    const r = space.map({
      addr: p.start,
      length: p.end - p.start,
      prot: PROT_READ | PROT_WRITE,
      shared: false,
      fixed: true,
      noReplace: false,
      tag: 'elf',
    });
    if (r < 0) {
      throw new ExecError('ENOMEM', `${image.path} does not fit in --mem (${(hi - lo) >> 20} MiB of segments)`, 'raise --mem');
    }
  }
  for (const ph of elf.loads) {
    if (ph.filesz > 0) space.window.bytes(bias + ph.vaddr, ph.filesz).set(bytes.subarray(ph.offset, ph.offset + ph.filesz));
    // The bss after filesz is already zero: the pages are fresh.
  }
  for (const p of pages) if (p.prot !== (PROT_READ | PROT_WRITE)) space.protect(p.start, p.end - p.start, p.prot);

  space.brkStart = space.brkCurrent = pageUp(hi);

  // The stack: RLIMIT_STACK's worth, mapped up front (never grown by faults), at the top of the space.
  const { stackTop, stackSize } = space.layout;
  const stackProt = PROT_READ | PROT_WRITE | (elf.stackExecutable ? 4 : 0);
  const sr = space.map({
    addr: stackTop - stackSize,
    length: stackSize,
    prot: stackProt,
    shared: false,
    fixed: true,
    noReplace: false,
    tag: 'stack',
  });
  if (sr < 0) throw new ExecError('ENOMEM', `the stack (${stackSize >> 20} MiB) does not fit in --mem`, 'raise --mem');

  const auxv: Array<[number, number]> = [
    [AT.PHDR, elf.phdrVaddr === null ? 0 : bias + elf.phdrVaddr],
    [AT.PHENT, elf.phentsize],
    [AT.PHNUM, elf.phnum],
    [AT.PAGESZ, PAGE_SIZE],
    [AT.BASE, 0],
    [AT.FLAGS, 0],
    [AT.ENTRY, bias + elf.entry],
    [AT.UID, params.uid],
    [AT.EUID, params.uid],
    [AT.GID, params.gid],
    [AT.EGID, params.gid],
    [AT.SECURE, 0],
    [AT.HWCAP, params.hwcap],
    [AT.HWCAP2, 0],
    [AT.CLKTCK, 100],
  ];
  const stack = buildInitialStack({
    top: stackTop,
    argv: params.argv,
    envp: params.envp,
    execfn: params.execfn,
    platform: 'x86_64',
    random: params.random,
    auxv,
  });
  if (stack.bytes.length > stackSize / 4) {
    throw new ExecError('E2BIG', 'arguments and environment take more than a quarter of the stack', 'pass fewer or shorter arguments');
  }
  space.window.bytes(stack.sp, stack.bytes.length).set(stack.bytes);
  return { entry: bias + elf.entry, sp: stack.sp, bias, brk: space.brkStart, auxv: stack.auxv };
}
