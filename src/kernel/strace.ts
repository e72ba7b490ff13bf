/**
 * --strace: one line per system call, as strace(1) prints it: decoded arguments, the result, and the
 * errno name for failures. Buffers are shown as escaped strings, truncated like strace's -s 32.
 */
import { errnoName } from '../abi/errno.js';
import { signalName } from '../abi/signals.js';
import { syscallName } from '../abi/sysno.js';
import type { Kernel } from './kernel.js';
import type { SyscallArgs, SyscallResult } from './types.js';

type Kind =
  | 'int' // signed int
  | 'fd'
  | 'u' // unsigned decimal
  | 'x' // hex
  | 'ptr'
  | 'str' // NUL-terminated string
  | 'in0' | 'in1' | 'in2' // buffer whose length is argument N, read before the call
  | 'out' // buffer the call filled; its length is the result
  | 'prot'
  | 'mapflags'
  | 'oflags'
  | 'sig'
  | 'clock'
  | 'atfd';

const SPECS: Record<string, Kind[]> = {
  read: ['fd', 'out', 'u'],
  write: ['fd', 'in2', 'u'],
  pread64: ['fd', 'out', 'u', 'int'],
  pwrite64: ['fd', 'in2', 'u', 'int'],
  readv: ['fd', 'ptr', 'int'],
  writev: ['fd', 'ptr', 'int'],
  open: ['str', 'oflags', 'x'],
  openat: ['atfd', 'str', 'oflags', 'x'],
  close: ['fd'],
  fstat: ['fd', 'ptr'],
  newfstatat: ['atfd', 'str', 'ptr', 'x'],
  lseek: ['fd', 'int', 'int'],
  mmap: ['ptr', 'u', 'prot', 'mapflags', 'fd', 'x'],
  mprotect: ['ptr', 'u', 'prot'],
  munmap: ['ptr', 'u'],
  mremap: ['ptr', 'u', 'u', 'x', 'ptr'],
  madvise: ['ptr', 'u', 'int'],
  brk: ['ptr'],
  ioctl: ['fd', 'x', 'ptr'],
  fcntl: ['fd', 'int', 'x'],
  dup: ['fd'],
  dup2: ['fd', 'fd'],
  dup3: ['fd', 'fd', 'oflags'],
  exit: ['int'],
  exit_group: ['int'],
  kill: ['int', 'sig'],
  tgkill: ['int', 'int', 'sig'],
  tkill: ['int', 'sig'],
  rt_sigaction: ['sig', 'ptr', 'ptr', 'u'],
  rt_sigprocmask: ['int', 'ptr', 'ptr', 'u'],
  arch_prctl: ['x', 'ptr'],
  set_tid_address: ['ptr'],
  clock_gettime: ['clock', 'ptr'],
  clock_nanosleep: ['clock', 'int', 'ptr', 'ptr'],
  nanosleep: ['ptr', 'ptr'],
  getrandom: ['ptr', 'u', 'x'],
  futex: ['ptr', 'int', 'int', 'ptr', 'ptr', 'int'],
  poll: ['ptr', 'u', 'int'],
  prlimit64: ['int', 'int', 'ptr', 'ptr'],
  uname: ['ptr'],
  getcwd: ['ptr', 'u'],
  execve: ['str', 'ptr', 'ptr'],
  access: ['str', 'int'],
  faccessat: ['atfd', 'str', 'int'],
  faccessat2: ['atfd', 'str', 'int', 'x'],
  readlink: ['str', 'ptr', 'u'],
  readlinkat: ['atfd', 'str', 'ptr', 'u'],
  unlinkat: ['atfd', 'str', 'x'],
  mkdirat: ['atfd', 'str', 'x'],
  chdir: ['str'],
  statx: ['atfd', 'str', 'x', 'x', 'ptr'],
  getdents64: ['fd', 'ptr', 'u'],
};

const PROT_NAMES: Array<[number, string]> = [[1, 'PROT_READ'], [2, 'PROT_WRITE'], [4, 'PROT_EXEC']];
const MAP_NAMES: Array<[number, string]> = [
  [0x10, 'MAP_FIXED'], [0x20, 'MAP_ANONYMOUS'], [0x100, 'MAP_GROWSDOWN'], [0x800, 'MAP_DENYWRITE'],
  [0x4000, 'MAP_NORESERVE'], [0x8000, 'MAP_POPULATE'], [0x20000, 'MAP_STACK'], [0x100000, 'MAP_FIXED_NOREPLACE'],
];
const O_NAMES: Array<[number, string]> = [
  [0o100, 'O_CREAT'], [0o200, 'O_EXCL'], [0o400, 'O_NOCTTY'], [0o1000, 'O_TRUNC'], [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'], [0o200000, 'O_DIRECTORY'], [0o400000, 'O_NOFOLLOW'], [0o2000000, 'O_CLOEXEC'],
  [0o10000000, 'O_PATH'],
];
const CLOCKS = ['CLOCK_REALTIME', 'CLOCK_MONOTONIC', 'CLOCK_PROCESS_CPUTIME_ID', 'CLOCK_THREAD_CPUTIME_ID', 'CLOCK_MONOTONIC_RAW', 'CLOCK_REALTIME_COARSE', 'CLOCK_MONOTONIC_COARSE', 'CLOCK_BOOTTIME'];

function flags(v: number, names: Array<[number, string]>, base: string | null): string {
  const parts: string[] = base ? [base] : [];
  let rest = v;
  for (const [bit, name] of names) {
    if (v & bit) {
      parts.push(name);
      rest &= ~bit;
    }
  }
  if (rest) parts.push(`0x${rest.toString(16)}`);
  return parts.length ? parts.join('|') : '0';
}

const MAX_SHOWN = 32;
function quote(bytes: Uint8Array, total: number): string {
  let s = '"';
  for (const c of bytes.subarray(0, MAX_SHOWN)) {
    if (c === 0x22) s += '\\"';
    else if (c === 0x5c) s += '\\\\';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0d) s += '\\r';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\${c.toString(8)}`;
  }
  return s + '"' + (total > MAX_SHOWN ? '...' : '');
}

export class Strace {
  private readonly sink: (line: string) => void;
  constructor(sink: (line: string) => void) {
    this.sink = sink;
  }

  private arg(k: Kernel, kind: Kind, a: SyscallArgs, i: number, result: SyscallResult): string {
    const v = a.u64(i);
    const hex = (): string => `0x${a.big(i).toString(16)}`;
    try {
      switch (kind) {
        case 'int':
        case 'fd':
          return String(a.i32(i));
        case 'atfd':
          return a.i32(i) === -100 ? 'AT_FDCWD' : String(a.i32(i));
        case 'u':
          return String(v);
        case 'x':
          return hex();
        case 'ptr':
          return v === 0 ? 'NULL' : hex();
        case 'str': {
          if (v === 0) return 'NULL';
          const b = k.mem.readCStringBytes(v, 4096);
          return b ? quote(b, b.length) : hex();
        }
        case 'in0':
        case 'in1':
        case 'in2': {
          const len = a.u64(Number(kind[2]));
          return quote(k.mem.read(v, Math.min(len, MAX_SHOWN)), len);
        }
        case 'out': {
          if (typeof result !== 'number' || result < 0) return hex();
          return quote(k.mem.read(v, Math.min(result, MAX_SHOWN)), result);
        }
        case 'prot':
          return a.i32(i) === 0 ? 'PROT_NONE' : flags(a.i32(i), PROT_NAMES, null);
        case 'mapflags': {
          const f = a.i32(i);
          const type = f & 0xf;
          const base = type === 1 ? 'MAP_SHARED' : type === 2 ? 'MAP_PRIVATE' : type === 3 ? 'MAP_SHARED_VALIDATE' : `0x${type.toString(16)}`;
          return flags(f & ~0xf, MAP_NAMES, base);
        }
        case 'oflags': {
          const f = a.i32(i);
          const acc = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][f & 3]!;
          return flags(f & ~3, O_NAMES, acc);
        }
        case 'sig':
          return signalName(a.i32(i));
        case 'clock':
          return CLOCKS[a.i32(i)] ?? String(a.i32(i));
      }
    } catch {
      return hex(); // an unreadable buffer is shown as its address
    }
  }

  /** The arguments as the log shows them, read now (execve replaces the memory they point into). */
  formatArgs(k: Kernel, nr: number, a: SyscallArgs, result: SyscallResult = 0): string {
    const spec = SPECS[syscallName(nr)];
    return spec ? spec.map((kind, i) => this.arg(k, kind, a, i, result)).join(', ') : [0, 1, 2].map((i) => `0x${a.big(i).toString(16)}`).join(', ');
  }

  log(k: Kernel, nr: number, a: SyscallArgs, result: SyscallResult, before: string | null = null): void {
    const name = syscallName(nr);
    const args = before ?? this.formatArgs(k, nr, a, result);
    let res: string;
    if (typeof result === 'object') res = '?';
    else if (typeof result === 'bigint') res = `0x${result.toString(16)}`;
    else if (result < 0 && result >= -4095) res = `-1 ${errnoName(-result)}`;
    else if (name === 'mmap' || name === 'brk' || name === 'mremap') res = `0x${result.toString(16)}`;
    else res = String(result);
    // Once there are several processes (or threads), each line says whose call it was, as strace -f does.
    const who = (k.threads?.threaded ?? false) ? `[pid ${k.tid}] ` : '';
    this.sink(`${who}${name}(${args}) = ${res}\n`);
  }
}
