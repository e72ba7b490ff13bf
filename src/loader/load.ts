/**
 * exec for static programs: map an ELF's PT_LOAD segments into the address space with their
 * permissions, set the break after them, map the stack and write the psABI initial stack on it.
 */
import { ExecError } from '../errors.js';
import { PROT_EXEC, PROT_READ, PROT_WRITE } from '../host/libc.js';
import { pageDown, pageUp, type AddressSpace } from '../mm/space.js';
import { HUGE_PAGE_SIZE, PAGE_SIZE } from '../platform/layout.js';
import { protOf, type ElfInfo } from './elf.js';
import { AT, buildInitialStack } from './stack.js';
import type { VdsoImage } from '../vdso/image.js';

/**
 * Map the vvar page (read-only, written by the kernel) and the vDSO above it (read+execute, a copy of
 * the image), top-down below the other mappings; returns the vvar page's address.
 */
function mapVdso(space: AddressSpace, vdso: VdsoImage, lo: number): number {
  const total = PAGE_SIZE + vdso.length;
  const at = space.regions.findFree(total, { lo, hi: space.mmapTop, topDown: true });
  if (at === null) throw new ExecError('ENOMEM', 'no room for the vDSO', 'raise --space');
  const rw = PROT_READ | PROT_WRITE;
  mapOrFail(space, space.map({ addr: at, length: PAGE_SIZE, prot: rw, shared: false, fixed: true, noReplace: false, tag: 'vvar' }), '[vvar]');
  mapOrFail(space, space.map({ addr: at + PAGE_SIZE, length: vdso.length, prot: rw, shared: false, fixed: true, noReplace: false, tag: 'vdso' }), '[vdso]');
  space.window.bytes(at + PAGE_SIZE, vdso.bytes.length).set(vdso.bytes);
  space.protect(at, PAGE_SIZE, PROT_READ);
  space.protect(at + PAGE_SIZE, vdso.length, PROT_READ | PROT_EXEC);
  return at;
}

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
  /** The vDSO to map (with its vvar page below it) and pass as AT_SYSINFO_EHDR; absent: none. */
  vdso?: VdsoImage;
}

export interface LoadedProgram {
  /** Where the program starts: the interpreter's entry for a dynamic program. */
  entry: number;
  /** Whether the program's (and interpreter's) segments are the image's own pages. */
  inPlace: boolean;
  interpInPlace: boolean;
  sp: number;
  bias: number;
  brk: number;
  auxv: Array<[number, number]>;
  /** The vvar page's address (the vDSO's ELF header is the page after it); 0 without a vDSO. */
  vvar: number;
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

/** A run of a file's pages in the image. */
export interface XipRun {
  offset: number;
  length: number;
  physical: number | null;
  /** Backing id and host fd to map the run from, when not the image's own. */
  id?: number;
  fd?: number;
}

/** Where a file's pages can be mapped from directly (the root file system's image). */
export interface XipSource {
  /**
   * Runs of the file: physical byte offsets in the image (page-aligned when blocks are 4 KiB), and the
   * file they are mapped from when it is not the image's (a copy-on-write layer's, at the same offset).
   */
  runs(offset: number, length: number): XipRun[];
  /** Backing id and host fd of the image, for the region map and the window. */
  backingId: number;
  fd: number;
  imagePath: string;
}

export interface ExecImageSource extends ExecImage {
  xip?: XipSource;
  /** The whole file, when `bytes` holds only the headers (programs read from an image). */
  complete?: () => Uint8Array;
}

function mapOrFail(space: AddressSpace, r: number, path: string): void {
  if (r < 0) throw new ExecError('ENOMEM', `${path} does not fit in --mem`, 'raise --mem');
}

/**
 * Map one segment's file pages straight from the image (MAP_PRIVATE: a writable segment is
 * copy-on-write over the image's bytes). Returns false when a page is not block-aligned in the image,
 * or is a hole; the caller then copies.
 */
function mapSegmentInPlace(space: AddressSpace, image: ExecImageSource, bias: number, ph: ElfInfo['loads'][number]): boolean {
  const xip = image.xip!;
  const start = pageDown(bias + ph.vaddr);
  const fileStart = pageDown(ph.offset);
  const fileEnd = pageUp(ph.offset + ph.filesz);
  const runs = xip.runs(fileStart, fileEnd - fileStart);
  if (runs.some((r) => r.physical === null || r.physical % PAGE_SIZE || r.length % PAGE_SIZE)) return false;
  const prot = protOf(ph.flags);
  for (const r of runs) {
    mapOrFail(
      space,
      space.map({
        addr: start + (r.offset - fileStart),
        length: r.length,
        prot: prot | PROT_READ,
        shared: false,
        fixed: true,
        noReplace: false,
        tag: 'elf',
        file: { id: r.id ?? xip.backingId, fd: r.fd ?? xip.fd, offset: r.physical!, path: image.path },
      }),
      image.path,
    );
  }
  // The bss: the rest of the last file page is zeroed (a private copy of that page), and whole pages
  // past it are anonymous memory.
  const fileBytesEnd = bias + ph.vaddr + ph.filesz;
  const memEnd = pageUp(bias + ph.vaddr + ph.memsz);
  const filePagesEnd = start + (fileEnd - fileStart);
  if (ph.memsz > ph.filesz && fileBytesEnd < filePagesEnd) {
    if (!(prot & PROT_WRITE)) return false;
    space.window.bytes(fileBytesEnd, filePagesEnd - fileBytesEnd).fill(0);
  }
  if (memEnd > filePagesEnd) {
    mapOrFail(space, space.map({ addr: filePagesEnd, length: memEnd - filePagesEnd, prot, shared: false, fixed: true, noReplace: false, tag: 'elf' }), image.path);
  }
  return true;
}

/** Map an ELF's segments at `bias`: in place from the image when possible, else copied. */
export function mapElf(space: AddressSpace, image: ExecImageSource, bias: number): { inPlace: boolean } {
  const { elf } = image;
  // In place needs every segment on pages of its own (true of modern linkers' output).
  const pages = segmentPages(elf, bias);
  const ownPages = elf.loads.every((ph, i) => {
    const next = elf.loads[i + 1];
    return !next || pageUp(ph.vaddr + ph.memsz) <= pageDown(next.vaddr);
  });
  if (image.xip && ownPages) {
    const done: Array<{ start: number; end: number }> = [];
    let ok = true;
    for (const ph of elf.loads) {
      if (ph.memsz === 0) continue;
      if (!mapSegmentInPlace(space, image, bias, ph)) {
        ok = false;
        break;
      }
      done.push({ start: pageDown(bias + ph.vaddr), end: pageUp(bias + ph.vaddr + ph.memsz) });
    }
    if (ok) return { inPlace: true };
    for (const d of done) space.unmap(d.start, d.end - d.start);
  }
  // Copy: map every page writable, fill it, then give each range its real protection.
  const bytes = image.complete ? image.complete() : image.bytes;
  for (const p of pages) {
    mapOrFail(space, space.map({ addr: p.start, length: p.end - p.start, prot: PROT_READ | PROT_WRITE, shared: false, fixed: true, noReplace: false, tag: 'elf' }), image.path);
  }
  for (const ph of elf.loads) {
    if (ph.filesz > 0) space.window.bytes(bias + ph.vaddr, ph.filesz).set(bytes.subarray(ph.offset, ph.offset + ph.filesz));
  }
  for (const p of pages) if (p.prot !== (PROT_READ | PROT_WRITE)) space.protect(p.start, p.end - p.start, p.prot);
  return { inPlace: false };
}

export function loadProgram(space: AddressSpace, image: ExecImageSource, params: ExecParams, interp: ExecImageSource | null = null): LoadedProgram {
  const { elf } = image;
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
  const main = mapElf(space, image, bias);
  let interpBase = 0;
  let interpInPlace = false;
  if (interp) {
    const span = interp.elf.maxVaddr - interp.elf.minVaddr;
    const at = space.regions.findFree(span, { lo: pageUp(hi) + 0x100_0000, hi: space.mmapTop, topDown: true });
    if (at === null) throw new ExecError('ENOMEM', `no room for the interpreter ${interp.path}`, 'raise --space');
    interpBase = at - interp.elf.minVaddr;
    interpInPlace = mapElf(space, interp, interpBase).inPlace;
  }
  space.brkStart = space.brkCurrent = pageUp(hi);
  const vvar = params.vdso ? mapVdso(space, params.vdso, pageUp(hi) + 0x100_0000) : 0;

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
    ...(vvar ? ([[AT.SYSINFO_EHDR, vvar + PAGE_SIZE]] as Array<[number, number]>) : []),
    [AT.PHDR, elf.phdrVaddr === null ? 0 : bias + elf.phdrVaddr],
    [AT.PHENT, elf.phentsize],
    [AT.PHNUM, elf.phnum],
    [AT.PAGESZ, PAGE_SIZE],
    [AT.BASE, interpBase],
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
  const entry = interp ? interpBase + interp.elf.entry : bias + elf.entry;
  return { entry, sp: stack.sp, bias, brk: space.brkStart, auxv: stack.auxv, inPlace: main.inPlace, interpInPlace, vvar };
}
