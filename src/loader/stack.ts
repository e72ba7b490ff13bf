/**
 * The initial process stack of a new program, laid out as Linux builds it (fs/exec.c copy_strings and
 * fs/binfmt_elf.c create_elf_tables) and as the x86-64 psABI (§3.4.1) describes it. From high to low
 * addresses:
 *
 *   top ->  8 zero bytes                 end marker (exec.c starts at STACK_TOP - sizeof(void *))
 *           execfn\0                     the path given to execve (AT_EXECFN points here)
 *           envp[m-1]\0 ...              environment strings, contiguous,
 *           envp[0]\0                    envp[0] at the lowest address of the block ...
 *           argv[n-1]\0 ...              ... directly above the argument strings,
 *           argv[0]\0                    argv[0] at the lowest address of the strings area
 *           (padding to 16 bytes)        arch_align_stack (without its randomization)
 *           platform\0                   "x86_64" (AT_PLATFORM points here)
 *           16 random bytes              AT_RANDOM points here (not aligned, as in Linux)
 *           (padding)                    so that sp ends up 16-aligned
 *           auxv pairs ... AT_NULL, 0    (type, value) u64 pairs
 *           envp pointers ..., NULL
 *           argv pointers ..., NULL
 *   sp ->   argc                         u64, at a 16-byte aligned address
 *
 * The builder is pure: it returns the bytes to copy to guest memory at `sp`.
 */
import { ExecError } from '../errors.js';

/** Auxiliary vector entry types (<uapi/linux/auxvec.h>, <asm/auxvec.h> for x86). */
export const AT = {
  NULL: 0, // end of vector
  IGNORE: 1, // entry should be ignored
  EXECFD: 2, // file descriptor of program
  PHDR: 3, // program headers for program
  PHENT: 4, // size of program header entry
  PHNUM: 5, // number of program headers
  PAGESZ: 6, // system page size
  BASE: 7, // base address of interpreter
  FLAGS: 8, // flags
  ENTRY: 9, // entry point of program
  NOTELF: 10, // program is not ELF
  UID: 11, // real uid
  EUID: 12, // effective uid
  GID: 13, // real gid
  EGID: 14, // effective gid
  PLATFORM: 15, // string identifying CPU for optimizations
  HWCAP: 16, // arch dependent hints at CPU capabilities
  CLKTCK: 17, // frequency at which times() increments
  SECURE: 23, // secure mode boolean
  BASE_PLATFORM: 24, // string identifying real platform
  RANDOM: 25, // address of 16 random bytes
  HWCAP2: 26, // extension of AT_HWCAP
  RSEQ_FEATURE_SIZE: 27, // rseq supported feature size
  RSEQ_ALIGN: 28, // rseq allocation alignment
  HWCAP3: 29, // extension of AT_HWCAP
  HWCAP4: 30, // extension of AT_HWCAP
  EXECFN: 31, // filename of program
  SYSINFO: 32, // (i386 only) vsyscall entry
  SYSINFO_EHDR: 33, // address of the vDSO ELF header
  MINSIGSTKSZ: 51, // minimal stack size for signal delivery
} as const;

/** Longest single argument or environment string, NUL included (Linux MAX_ARG_STRLEN = 32 pages). */
export const MAX_ARG_STRLEN = 32 * 4096;
/** Most argument or environment strings (Linux MAX_ARG_STRINGS). */
export const MAX_ARG_STRINGS = 0x7fffffff;
/**
 * Limit on argument + environment strings and their pointers. Linux allows a quarter of the stack
 * rlimit (2 MiB for the usual 8 MiB stack); mapvisor uses that fixed value.
 */
export const ARG_MAX_BYTES = 2 * 1024 * 1024;

/** Bytes of the end marker at the very top of the stack. */
const END_MARKER_SIZE = 8;
/** Bytes of AT_RANDOM data. */
export const RANDOM_BYTES = 16;
/** sp alignment at process entry (psABI: the stack is 16-byte aligned at argc). */
export const STACK_ALIGN = 16;
const WORD = 8;

export interface StackSpec {
  /** Highest stack address + 1; must be 16-byte aligned. */
  top: number;
  argv: string[];
  envp: string[];
  /** The path given to execve, for AT_EXECFN. */
  execfn: string;
  /** AT_PLATFORM string ("x86_64"); '' omits the string and the AT_PLATFORM entry (as Linux does without one). */
  platform: string;
  /** The 16 bytes AT_RANDOM points at. */
  random: Uint8Array;
  /**
   * Auxiliary vector entries in the order they should appear (AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ,
   * AT_BASE, AT_FLAGS, AT_ENTRY, ids, AT_SECURE, AT_HWCAP...). Must not contain AT_RANDOM, AT_EXECFN,
   * AT_PLATFORM or AT_NULL: the builder appends those, pointing at what it places.
   */
  auxv: Array<[number, number]>;
}

export interface BuiltStack {
  /** The initial stack pointer (address of argc), 16-byte aligned. */
  sp: number;
  /** Exactly top - sp bytes, to be copied to guest memory at sp. */
  bytes: Uint8Array;
  /** Guest address of each argv string (argv[i] is what the pointer array holds). */
  argvAddrs: number[];
  /** Guest address of each envp string. */
  envpAddrs: number[];
  /** The auxiliary vector as written, ending with [AT.NULL, 0]. */
  auxv: Array<[number, number]>;
}

/** Auxv types the builder owns; a caller supplying them is a programming error. */
const BUILDER_OWNED: ReadonlySet<number> = new Set([AT.NULL, AT.RANDOM, AT.EXECFN, AT.PLATFORM]);

/**
 * Lays out the initial stack. Throws ExecError 'E2BIG' when the arguments and environment exceed
 * Linux's limits (what execve would fail with), and RangeError for an invalid spec (a caller bug).
 */
export function buildInitialStack(spec: StackSpec): BuiltStack {
  checkSpec(spec);
  // Since Linux 5.18 an empty argv gets one empty string so that argv[0] is never NULL.
  const argv = spec.argv.length === 0 ? [''] : spec.argv;
  const enc = new TextEncoder();
  const argvBytes = argv.map((s) => enc.encode(s));
  const envpBytes = spec.envp.map((s) => enc.encode(s));
  const execfnBytes = enc.encode(spec.execfn);
  const platformBytes = enc.encode(spec.platform);
  checkLimits(argvBytes, envpBytes, execfnBytes);

  // Strings and random bytes, top down.
  let pos = spec.top - END_MARKER_SIZE;
  pos -= execfnBytes.length + 1;
  const execfnAddr = pos;

  const stringsSize = [...argvBytes, ...envpBytes].reduce((n, b) => n + b.length + 1, 0);
  pos -= stringsSize;
  const argvAddrs: number[] = [];
  const envpAddrs: number[] = [];
  let cursor = pos; // argv strings first (lowest), then envp, ascending
  for (const b of argvBytes) {
    argvAddrs.push(cursor);
    cursor += b.length + 1;
  }
  for (const b of envpBytes) {
    envpAddrs.push(cursor);
    cursor += b.length + 1;
  }

  pos = alignDown(pos, STACK_ALIGN);
  let platformAddr: number | null = null;
  if (platformBytes.length > 0) {
    pos -= platformBytes.length + 1;
    platformAddr = pos;
  }
  pos -= RANDOM_BYTES;
  const randomAddr = pos;

  const auxv: Array<[number, number]> = [...spec.auxv, [AT.RANDOM, randomAddr], [AT.EXECFN, execfnAddr]];
  if (platformAddr !== null) auxv.push([AT.PLATFORM, platformAddr]);
  auxv.push([AT.NULL, 0]);

  // The table: argc, argv pointers + NULL, envp pointers + NULL, auxv pairs. Linux's STACK_ROUND
  // rounds its start down to 16 so argc is aligned; the gap above it stays zero.
  const words = 1 + (argv.length + 1) + (spec.envp.length + 1) + auxv.length * 2;
  const sp = alignDown(pos - words * WORD, STACK_ALIGN);

  const bytes = new Uint8Array(spec.top - sp);
  const view = new DataView(bytes.buffer);
  const at = (addr: number): number => addr - sp;
  const put = (addr: number, b: Uint8Array): void => bytes.set(b, at(addr)); // the NUL is already zero

  put(execfnAddr, execfnBytes);
  argvBytes.forEach((b, i) => put(argvAddrs[i]!, b));
  envpBytes.forEach((b, i) => put(envpAddrs[i]!, b));
  if (platformAddr !== null) put(platformAddr, platformBytes);
  put(randomAddr, spec.random);

  let w = sp;
  const word = (v: number): void => {
    view.setBigUint64(at(w), BigInt(v), true);
    w += WORD;
  };
  word(argv.length);
  argvAddrs.forEach(word);
  word(0);
  envpAddrs.forEach(word);
  word(0);
  for (const [type, value] of auxv) {
    word(type);
    word(value);
  }
  return { sp, bytes, argvAddrs, envpAddrs, auxv };
}

function alignDown(n: number, align: number): number {
  return n - (n % align);
}

function checkSpec(spec: StackSpec): void {
  if (!Number.isSafeInteger(spec.top) || spec.top <= 0 || spec.top % STACK_ALIGN !== 0) {
    throw new RangeError(`stack top ${spec.top} is not a positive ${STACK_ALIGN}-byte aligned address`);
  }
  if (spec.random.length !== RANDOM_BYTES) {
    throw new RangeError(`AT_RANDOM needs ${RANDOM_BYTES} bytes, got ${spec.random.length}`);
  }
  for (const [type, value] of spec.auxv) {
    if (BUILDER_OWNED.has(type)) throw new RangeError(`auxv entry type ${type} is added by buildInitialStack itself`);
    if (!Number.isSafeInteger(type) || type < 0) throw new RangeError(`auxv type ${type} is not a valid u64`);
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`auxv value ${value} (type ${type}) is not a valid u64`);
  }
}

/** The checks execve makes before building the stack (fs/exec.c copy_strings, bprm_stack_limits). */
function checkLimits(argv: Uint8Array[], envp: Uint8Array[], execfn: Uint8Array): void {
  const fix = 'pass fewer or shorter arguments or environment variables';
  if (argv.length > MAX_ARG_STRINGS || envp.length > MAX_ARG_STRINGS) {
    throw new ExecError('E2BIG', `too many arguments or environment variables (more than ${MAX_ARG_STRINGS})`, fix);
  }
  let total = (argv.length + envp.length) * WORD; // Linux counts the pointers too
  for (const [list, what] of [
    [argv, 'an argument'],
    [envp, 'an environment variable'],
    [[execfn], 'the program path'],
  ] as const) {
    for (const b of list) {
      if (b.length + 1 > MAX_ARG_STRLEN) {
        throw new ExecError('E2BIG', `${what} is ${b.length + 1} bytes long, more than the ${MAX_ARG_STRLEN}-byte limit`, fix);
      }
      total += b.length + 1;
    }
  }
  if (total > ARG_MAX_BYTES) {
    throw new ExecError('E2BIG', `the arguments and environment take ${total} bytes, more than the ${ARG_MAX_BYTES}-byte limit`, fix);
  }
}
