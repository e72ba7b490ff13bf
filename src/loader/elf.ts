/**
 * ELF64 x86-64 executable parser: reads the ELF header and program headers of a program file and
 * checks that Linux's binfmt_elf would accept it (fs/binfmt_elf.c), without mapping anything.
 *
 * Only little-endian ELF64 for EM_X86_64 of type ET_EXEC (fixed address) or ET_DYN (position
 * independent: a PIE program with PT_INTERP, or a static-PIE without) is accepted. Section headers
 * are never read: the loader needs only segments.
 *
 * All 64-bit fields are returned as numbers; values at or above 2^47 (beyond the x86-64 user
 * address space, and close to losing precision in a double) are refused rather than rounded.
 */
import { ExecError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// Layouts (<elf.h>). Offsets are byte offsets inside the structure.

/** Size of e_ident, the identification bytes at the start of every ELF file. */
export const EI_NIDENT = 16;
/** e_ident indices. */
export const EI_MAG0 = 0; // 0x7f 'E' 'L' 'F'
export const EI_CLASS = 4; // ELFCLASS32 / ELFCLASS64
export const EI_DATA = 5; // ELFDATA2LSB / ELFDATA2MSB
export const EI_VERSION = 6;
export const EI_OSABI = 7;

export const ELFMAG = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46); // "\x7fELF"
export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;

/** Elf64_Ehdr: 64 bytes. */
export const EHDR_SIZE = 64;
export const EHDR = {
  e_ident: 0, // unsigned char[16]
  e_type: 16, // u16
  e_machine: 18, // u16
  e_version: 20, // u32
  e_entry: 24, // u64
  e_phoff: 32, // u64
  e_shoff: 40, // u64
  e_flags: 48, // u32
  e_ehsize: 52, // u16
  e_phentsize: 54, // u16
  e_phnum: 56, // u16
  e_shentsize: 58, // u16
  e_shnum: 60, // u16
  e_shstrndx: 62, // u16
} as const;

/** Elf64_Phdr: 56 bytes. Note p_flags comes right after p_type in ELF64 (not at the end as in ELF32). */
export const PHDR_SIZE = 56;
export const PHDR = {
  p_type: 0, // u32
  p_flags: 4, // u32
  p_offset: 8, // u64
  p_vaddr: 16, // u64
  p_paddr: 24, // u64
  p_filesz: 32, // u64
  p_memsz: 40, // u64
  p_align: 48, // u64
} as const;

/** e_type values. */
export const ET_NONE = 0;
export const ET_REL = 1;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

/** e_machine values: the one we run, and the ones we can name in an error. */
export const EM_X86_64 = 62;
const MACHINE_NAMES: ReadonlyMap<number, string> = new Map([
  [2, 'sparc'],
  [3, 'i386'],
  [8, 'mips'],
  [20, 'powerpc'],
  [21, 'ppc64'],
  [22, 's390'],
  [40, 'arm'],
  [42, 'superh'],
  [43, 'sparc64'],
  [50, 'ia64'],
  [183, 'aarch64'],
  [243, 'riscv'],
  [258, 'loongarch'],
]);

/** p_type values. */
export const PT_NULL = 0;
export const PT_LOAD = 1;
export const PT_DYNAMIC = 2;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_SHLIB = 5;
export const PT_PHDR = 6;
export const PT_TLS = 7;
export const PT_GNU_EH_FRAME = 0x6474e550;
export const PT_GNU_STACK = 0x6474e551;
export const PT_GNU_RELRO = 0x6474e552;
export const PT_GNU_PROPERTY = 0x6474e553;

/** p_flags bits. */
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

/** Guest mmap/mprotect protection bits (Linux <asm-generic/mman-common.h>). */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;

/** The x86-64 page size; segments must be congruent to it (p_vaddr ≡ p_offset mod PAGE_SIZE). */
export const PAGE_SIZE = 4096;
/** Every address and size must be below this: the top of the x86-64 4-level user address space. */
export const ADDR_LIMIT = 2 ** 47;
/** Linux refuses program header tables larger than this (elf_read_phdrs: size > ELF_MIN_ALIGN). */
export const MAX_PHDR_TABLE_BYTES = 4096;
/** e_phnum value meaning "the count is in section header 0" (extended numbering); Linux does not support it for exec. */
const PN_XNUM = 0xffff;
/** Linux's PATH_MAX; a PT_INTERP longer than this is refused (binfmt_elf: p_filesz > PATH_MAX). */
const PATH_MAX = 4096;

/** Error codes of parseElf, one per way a file can be refused. */
export const ELF_ERR = {
  notElf: 'ENOTELF', // bad magic
  script: 'ESCRIPT', // starts with "#!": a script, not a program
  class32: 'EELFCLASS32', // 32-bit ELF
  endian: 'EELFENDIAN', // big-endian (or invalid) data encoding
  machine: 'EELFMACHINE', // not x86-64
  type: 'EELFTYPE', // not ET_EXEC / ET_DYN (a .o, a core dump, ...)
  truncated: 'EELFTRUNC', // file ends inside the ELF header or the program header table
  phentsize: 'EELFPHENT', // e_phentsize != 56
  phnum: 'EELFPHNUM', // no program headers, or too many
  range: 'EELFRANGE', // a 64-bit field beyond the user address space
  segmentFile: 'EELFSEGFILE', // a segment's file bytes reach beyond the end of the file
  segmentSize: 'EELFSEGSIZE', // p_filesz > p_memsz
  segmentAlign: 'EELFALIGN', // p_vaddr and p_offset disagree modulo the page size
  segmentOrder: 'EELFLOADORDER', // PT_LOADs unsorted or overlapping
  noLoad: 'EELFNOLOAD', // no PT_LOAD at all
  interp: 'EELFINTERP', // malformed PT_INTERP
} as const;
export type ElfErrorCode = (typeof ELF_ERR)[keyof typeof ELF_ERR];

// ---------------------------------------------------------------------------------------------
// Result types

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfInfo {
  /** 'exec': ET_EXEC, loaded at its link addresses; 'dyn': ET_DYN, loaded at a chosen base. */
  kind: 'exec' | 'dyn';
  /** e_entry (for 'dyn', relative to the load base). */
  entry: number;
  phoff: number;
  phentsize: number;
  phnum: number;
  /** All program headers, in file order. */
  phdrs: ProgramHeader[];
  /** The PT_LOAD headers, in file order (which is ascending, non-overlapping vaddr order). */
  loads: ProgramHeader[];
  /** PT_INTERP path without its NUL, or null for a static program. Reported, not refused. */
  interp: string | null;
  /** From PT_GNU_STACK's PF_X; true when there is no PT_GNU_STACK (Linux x86-64's default). */
  stackExecutable: boolean;
  /** PT_GNU_STACK p_memsz when non-zero (a requested stack size), else null. */
  stackSize: number | null;
  /** Where the program headers are in memory (before relocation): PT_PHDR's vaddr, else found through the PT_LOAD covering e_phoff; null when not loaded. */
  phdrVaddr: number | null;
  /** Lowest PT_LOAD vaddr rounded down to a page. */
  minVaddr: number;
  /** Highest PT_LOAD end (vaddr + memsz) rounded up to a page. */
  maxVaddr: number;
  /** The PT_TLS header, or null. */
  tls: ProgramHeader | null;
}

// ---------------------------------------------------------------------------------------------

/** Maps a segment's PF_R/PF_W/PF_X flags to PROT_READ/PROT_WRITE/PROT_EXEC. */
export function protOf(flags: number): number {
  let prot = PROT_NONE;
  if (flags & PF_R) prot |= PROT_READ;
  if (flags & PF_W) prot |= PROT_WRITE;
  if (flags & PF_X) prot |= PROT_EXEC;
  return prot;
}

const pageDown = (n: number): number => n - (n % PAGE_SIZE);
const pageUp = (n: number): number => pageDown(n + PAGE_SIZE - 1);
const hex = (n: number): string => `0x${n.toString(16)}`;

/** Fix text for files that are not a runnable x86-64 Linux program. */
const FIX_NOT_PROGRAM = 'mapvisor runs Linux x86-64 ELF programs; pass a compiled x86-64 executable';

/**
 * Parses and validates an ELF64 x86-64 executable. `path` is used only in error messages.
 * Throws ExecError (with a code from ELF_ERR) when Linux would refuse to exec the file, or when
 * mapvisor cannot run it.
 */
export function parseElf(bytes: Uint8Array, path: string): ElfInfo {
  checkIdent(bytes, path);
  if (bytes.length < EHDR_SIZE) {
    throw new ExecError(
      ELF_ERR.truncated,
      `'${path}' is truncated: ${bytes.length} bytes, shorter than the ${EHDR_SIZE}-byte ELF header`,
      'the file is damaged or incompletely copied; rebuild or copy it again',
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (off: number): number => view.getUint16(off, true);
  const u32 = (off: number): number => view.getUint32(off, true);
  const u64 = (off: number, field: string): number => readAddr(view, off, field, path);

  const machine = u16(EHDR.e_machine);
  if (machine !== EM_X86_64) {
    const name = MACHINE_NAMES.get(machine);
    throw new ExecError(
      ELF_ERR.machine,
      name
        ? `'${path}' is a program for ${name}, not x86-64`
        : `'${path}' is a program for an unknown machine (e_machine ${machine}), not x86-64`,
      'mapvisor runs only x86-64 programs; use an x86-64 build of it',
    );
  }

  const type = u16(EHDR.e_type);
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new ExecError(ELF_ERR.type, `'${path}' ${describeType(type)}, not an executable program`, fixForType(type));
  }

  const entry = u64(EHDR.e_entry, 'e_entry');
  const phoff = u64(EHDR.e_phoff, 'e_phoff');
  const phentsize = u16(EHDR.e_phentsize);
  const phnum = u16(EHDR.e_phnum);

  if (phentsize !== PHDR_SIZE) {
    throw new ExecError(
      ELF_ERR.phentsize,
      `'${path}' has ${phentsize}-byte program headers; ELF64 program headers are ${PHDR_SIZE} bytes`,
      'the ELF header is damaged; rebuild the program',
    );
  }
  if (phnum === 0 || phnum === PN_XNUM || phnum * PHDR_SIZE > MAX_PHDR_TABLE_BYTES) {
    throw new ExecError(
      ELF_ERR.phnum,
      phnum === 0
        ? `'${path}' has no program headers`
        : `'${path}' has ${phnum === PN_XNUM ? 'extended-numbered' : phnum} program headers, more than Linux accepts (${Math.floor(MAX_PHDR_TABLE_BYTES / PHDR_SIZE)})`,
      'the file is not a loadable program or is damaged; rebuild it',
    );
  }
  if (phoff + phnum * PHDR_SIZE > bytes.length) {
    throw new ExecError(
      ELF_ERR.truncated,
      `'${path}' is truncated: its program header table (${phnum} × ${PHDR_SIZE} bytes at ${hex(phoff)}) ends beyond the file's ${bytes.length} bytes`,
      'the file is damaged or incompletely copied; rebuild or copy it again',
    );
  }

  const phdrs: ProgramHeader[] = [];
  for (let i = 0; i < phnum; i++) {
    const base = phoff + i * PHDR_SIZE;
    const field = (name: keyof typeof PHDR): string => `program header ${i} ${name}`;
    phdrs.push({
      type: u32(base + PHDR.p_type),
      flags: u32(base + PHDR.p_flags),
      offset: u64(base + PHDR.p_offset, field('p_offset')),
      vaddr: u64(base + PHDR.p_vaddr, field('p_vaddr')),
      paddr: u64(base + PHDR.p_paddr, field('p_paddr')),
      filesz: u64(base + PHDR.p_filesz, field('p_filesz')),
      memsz: u64(base + PHDR.p_memsz, field('p_memsz')),
      align: u64(base + PHDR.p_align, field('p_align')),
    });
  }

  const loads = phdrs.filter((ph) => ph.type === PT_LOAD);
  checkLoads(loads, bytes.length, path);

  // Linux takes the first PT_INTERP and the first PT_GNU_STACK.
  const interpHdr = phdrs.find((ph) => ph.type === PT_INTERP);
  const interp = interpHdr ? readInterp(bytes, interpHdr, path) : null;
  const stackHdr = phdrs.find((ph) => ph.type === PT_GNU_STACK);
  const tls = phdrs.find((ph) => ph.type === PT_TLS) ?? null;

  const first = loads[0]!;
  const last = loads[loads.length - 1]!;
  return {
    kind: type === ET_EXEC ? 'exec' : 'dyn',
    entry,
    phoff,
    phentsize,
    phnum,
    phdrs,
    loads,
    interp,
    stackExecutable: stackHdr ? (stackHdr.flags & PF_X) !== 0 : true,
    stackSize: stackHdr && stackHdr.memsz !== 0 ? stackHdr.memsz : null,
    phdrVaddr: findPhdrVaddr(phdrs, loads, phoff, phnum * PHDR_SIZE),
    minVaddr: pageDown(first.vaddr),
    maxVaddr: pageUp(last.vaddr + last.memsz),
    tls,
  };
}

/** Checks e_ident: magic (or a "#!" script), class, and data encoding. */
function checkIdent(bytes: Uint8Array, path: string): void {
  const hasMagic = bytes.length >= ELFMAG.length && ELFMAG.every((b, i) => bytes[EI_MAG0 + i] === b);
  if (!hasMagic) {
    if (bytes[0] === 0x23 /* '#' */ && bytes[1] === 0x21 /* '!' */) {
      const interpLine = scriptInterpreter(bytes);
      throw new ExecError(
        ELF_ERR.script,
        `'${path}' is a script${interpLine ? ` for '${interpLine}'` : ''}, not an ELF program`,
        interpLine
          ? `run its interpreter with the script as an argument: mapvisor ${interpLine} ${path}`
          : 'run its interpreter with the script as an argument',
      );
    }
    throw new ExecError(
      ELF_ERR.notElf,
      bytes.length === 0 ? `'${path}' is empty, not an ELF program` : `'${path}' is not an ELF program (bad magic)`,
      FIX_NOT_PROGRAM,
    );
  }
  if (bytes.length <= EI_DATA) {
    throw new ExecError(
      ELF_ERR.truncated,
      `'${path}' is truncated: ${bytes.length} bytes, shorter than the ${EHDR_SIZE}-byte ELF header`,
      'the file is damaged or incompletely copied; rebuild or copy it again',
    );
  }
  const cls = bytes[EI_CLASS];
  if (cls === ELFCLASS32) {
    throw new ExecError(
      ELF_ERR.class32,
      `'${path}' is a 32-bit program; 32-bit programs are not supported`,
      'rebuild it as a 64-bit x86-64 program',
    );
  }
  if (cls !== ELFCLASS64) {
    throw new ExecError(ELF_ERR.class32, `'${path}' has an invalid ELF class (${cls})`, FIX_NOT_PROGRAM);
  }
  const data = bytes[EI_DATA];
  if (data !== ELFDATA2LSB) {
    throw new ExecError(
      ELF_ERR.endian,
      data === ELFDATA2MSB
        ? `'${path}' is a big-endian ELF file; x86-64 programs are little-endian`
        : `'${path}' has an invalid ELF data encoding (${data})`,
      FIX_NOT_PROGRAM,
    );
  }
}

/** The interpreter path of a "#!" line (without arguments), or '' if there is none. */
function scriptInterpreter(bytes: Uint8Array): string {
  // Linux's BINPRM_BUF_SIZE: only the first 256 bytes are looked at for the #! line.
  let end = 2;
  while (end < bytes.length && end < 256 && bytes[end] !== 0x0a) end++;
  const line = new TextDecoder().decode(bytes.subarray(2, end)).trim();
  return line.split(/[ \t]+/)[0] ?? '';
}

/** Reads a u64 field, refusing values that are not exactly representable user addresses/sizes. */
function readAddr(view: DataView, off: number, field: string, path: string): number {
  const v = view.getBigUint64(off, true);
  if (v >= BigInt(ADDR_LIMIT)) {
    throw new ExecError(
      ELF_ERR.range,
      `'${path}' has ${field} = 0x${v.toString(16)}, beyond the x86-64 user address space (2^47)`,
      'the ELF headers are damaged; rebuild the program',
    );
  }
  return Number(v);
}

/** Validates the PT_LOAD segments as binfmt_elf's mapping requires. */
function checkLoads(loads: ProgramHeader[], fileSize: number, path: string): void {
  const damaged = 'the program headers are damaged; rebuild the program';
  if (loads.length === 0) {
    throw new ExecError(ELF_ERR.noLoad, `'${path}' has no loadable (PT_LOAD) segment`, damaged);
  }
  let prevEnd = -1;
  for (const [i, ph] of loads.entries()) {
    const what = `'${path}' PT_LOAD segment ${i} (vaddr ${hex(ph.vaddr)})`;
    if (ph.offset + ph.filesz > fileSize) {
      throw new ExecError(
        ELF_ERR.segmentFile,
        `${what} needs file bytes up to ${hex(ph.offset + ph.filesz)}, beyond the file's ${hex(fileSize)} bytes`,
        'the file is truncated or damaged; rebuild or copy it again',
      );
    }
    if (ph.filesz > ph.memsz) {
      throw new ExecError(
        ELF_ERR.segmentSize,
        `${what} has p_filesz ${hex(ph.filesz)} larger than p_memsz ${hex(ph.memsz)}`,
        damaged,
      );
    }
    // The file page and the memory page must start at the same page offset, or mmap cannot map it.
    if (ph.vaddr % PAGE_SIZE !== ph.offset % PAGE_SIZE) {
      throw new ExecError(
        ELF_ERR.segmentAlign,
        `${what} has p_offset ${hex(ph.offset)} not congruent to p_vaddr modulo the ${PAGE_SIZE}-byte page`,
        damaged,
      );
    }
    if (ph.vaddr + ph.memsz > ADDR_LIMIT) {
      throw new ExecError(ELF_ERR.range, `${what} ends beyond the x86-64 user address space (2^47)`, damaged);
    }
    // The ELF spec requires PT_LOADs sorted by p_vaddr. Byte ranges must not overlap; two segments may
    // still share a page (the mapper then has to merge the page's contents and protections).
    if (ph.vaddr < prevEnd) {
      throw new ExecError(
        ELF_ERR.segmentOrder,
        `${what} ${ph.vaddr < loads[i - 1]!.vaddr ? 'is out of order' : 'overlaps the previous one'}`,
        damaged,
      );
    }
    prevEnd = ph.vaddr + ph.memsz;
  }
}

/** Reads the PT_INTERP path: NUL-terminated, inside the file, at most PATH_MAX (as binfmt_elf checks). */
function readInterp(bytes: Uint8Array, ph: ProgramHeader, path: string): string {
  const bad = (why: string): ExecError =>
    new ExecError(ELF_ERR.interp, `'${path}' has a malformed PT_INTERP: ${why}`, 'the program headers are damaged; rebuild the program');
  if (ph.filesz < 2 || ph.filesz > PATH_MAX) throw bad(`${ph.filesz}-byte interpreter path`);
  if (ph.offset + ph.filesz > bytes.length) throw bad('the path lies beyond the end of the file');
  const raw = bytes.subarray(ph.offset, ph.offset + ph.filesz);
  if (raw[raw.length - 1] !== 0) throw bad('the path is not NUL-terminated');
  const nul = raw.indexOf(0);
  if (nul === 0) throw bad('the path is empty');
  return new TextDecoder().decode(raw.subarray(0, nul));
}

/**
 * Where the program header table is in the (unrelocated) memory image: PT_PHDR's vaddr when present,
 * else translated through the PT_LOAD whose file bytes contain the whole table (what Linux passes as
 * AT_PHDR). Null when the table is not loaded at all.
 */
function findPhdrVaddr(phdrs: ProgramHeader[], loads: ProgramHeader[], phoff: number, tableSize: number): number | null {
  const phdr = phdrs.find((ph) => ph.type === PT_PHDR);
  if (phdr) return phdr.vaddr;
  const load = loads.find((ph) => ph.offset <= phoff && phoff + tableSize <= ph.offset + ph.filesz);
  return load ? load.vaddr + (phoff - load.offset) : null;
}

function describeType(type: number): string {
  switch (type) {
    case ET_REL:
      return 'is a relocatable object file (.o)';
    case ET_CORE:
      return 'is a core dump';
    case ET_NONE:
      return 'has no ELF file type (ET_NONE)';
    default:
      return `has ELF file type ${hex(type)}`;
  }
}

function fixForType(type: number): string {
  return type === ET_REL ? 'link it into an executable first, e.g. gcc file.o -o program' : FIX_NOT_PROGRAM;
}
