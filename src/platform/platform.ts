/**
 * The platform boundary: what the kernel (src/kernel) needs from whatever runs the program's code, and
 * nothing more. As in gVisor's pkg/sentry/platform, a Platform hands out an address space and thread
 * contexts; a Context runs one thread until it needs the kernel (a system call, a fault, a kick) and
 * keeps its registers in a record the kernel reads and writes between runs.
 *
 * Two platforms implement it:
 *  - kvm (src/platform/kvm): a KVM VM with no guest kernel; the thread is a vCPU at CPL3.
 *  - process (src/platform/process): a host process started from mapvisor's stub, every system call
 *    trapped by seccomp into the stub and forwarded to the kernel through shared memory.
 *
 * The kernel owns the truth about memory (src/mm: regions, permissions, backings); a platform only
 * mirrors it through its Window: the VMM's own view of the program's memory, into which the same
 * files (the anonymous-memory memfd, the disk image) are mapped at the same guest addresses.
 */
import type { RegName } from './regs.js';
import type { Window } from './window.js';

export type PlatformName = 'kvm' | 'process';

/** kvm: how a system call returns to the program (see src/platform/kvm/vcpu.ts). */
export type SyscallReturn = 'sregs' | 'iretq';
export const PLATFORM_NAMES: readonly PlatformName[] = ['kvm', 'process'];

/** Why a thread stopped running program code. */
export type Exit =
  | { kind: 'syscall' }
  /** A CPU exception (vector) the platform could attribute; cr2 is the faulting address for #PF. */
  | { kind: 'exception'; vector: number; errorCode: number | null; rip: number; cr2: number }
  /** An access to program memory that is not mapped, or not with that permission (gpa: the address, when known). */
  | { kind: 'memfault'; rip: number; gpa: number | null; write: boolean | null }
  /** Another thread asked this one to stop (a kick). */
  | { kind: 'interrupted' }
  /** The platform failed; not the program's doing. */
  | { kind: 'fatal'; reason: string; rip: number }
  /** The program's host process is gone (killed by the host: an escaped system call, or from outside). */
  | { kind: 'gone'; signal: number | null; status: number | null; reason: string }
  /** The program damaged the platform's own state in its reach (the process platform's control area). */
  | { kind: 'damaged'; reason: string; rip: number };

/** A thread's whole user state: general registers (the regs.ts record), FS/GS bases, FXSAVE image. */
export interface ContextState {
  regs: Uint8Array;
  fsBase: number;
  gsBase: number;
  fpu: Uint8Array;
}

/** How another host thread makes a running context leave `enter()` (structured-clone safe). */
export type KickTarget =
  | { kind: 'kvm'; runAddr: number; thread: string }
  | { kind: 'process'; pid: number; tid: number; thread: string };

/** What another worker thread needs to run a context (threaded programs): structured-clone safe. */
export type ContextHandle =
  | { kind: 'kvm'; id: number; fd: number; runAddr: number; runSize: number; windowBase: number; windowSize: number; syscallReturn: 'sregs' | 'iretq' }
  | { kind: 'process'; id: number; ctlAddr: number; spaceSize: number; outerPid: number; innerPid: number };

/** One thread of the program. Registers are valid between an exit and the next `enter()`. */
export interface Context {
  readonly id: number;
  /** Exits by reason, for --stats. */
  readonly exitCounts: Map<string, number>;

  reg(name: RegName): number;
  regBig(name: RegName): bigint;
  setReg(name: RegName, v: number): void;
  setRegBig(name: RegName, v: bigint): void;
  regI32(name: RegName): number;
  regU32(name: RegName): number;
  regI64(name: RegName): number;
  fsBase: number;
  gsBase: number;
  /** The x87/SSE state as a 512-byte FXSAVE image, and loading one. */
  getFxsave(): Uint8Array;
  setFxsave(fx: Uint8Array): void;

  /** Run program code until the next exit. */
  enter(): Exit;
  /** rax = result; continue after the `syscall` instruction (rip = rcx, rflags = r11, as sysret). */
  completeSyscall(result: number | bigint): void;
  /** Continue at the `syscall` instruction again with rax = its number (a restart). */
  restartSyscall(): void;
  /** Put "just after the system call returned" into the registers (for a signal frame). */
  syscallReturnToRegs(): void;
  /** Continue at the user state in the registers (after an exception, a signal frame, sigreturn). */
  resumeUser(): void;
  /** The general registers were written with setReg: load them at the next entry. */
  regsChanged(): void;
  /** A copy of the general-register record, and putting it back. */
  saveRegs(): Uint8Array;
  restoreRegs(saved: Uint8Array): void;
  captureState(): ContextState;
  putState(s: ContextState): void;
  /** Ask a running enter() to return soon ('interrupted'); the kicker also signals the thread. */
  requestExit(): void;
  /** Count an exit seen by another thread's copy of this context. */
  noteExit(reason: string): void;
  /** How to kick this context when it runs in host thread `pthread` (null: this one). */
  kickTarget(pthread: bigint | null): KickTarget;
  /** Serializable description, for running it in another worker thread. */
  handle(): ContextHandle;
  /** The kernel is about to handle this context's exit (in the kernel's thread). */
  serving?(): void;
  /** The thread ended: let go of what the platform holds for it. */
  release?(): void;
}

/** A program's machine: its memory window and its thread contexts. */
export interface Platform {
  readonly name: PlatformName;
  /** The VMM's view of the program's memory; maps made through it reach the program. */
  readonly window: Window;
  /**
   * True when a MAP_PRIVATE file mapping is one set of pages for both the kernel and the program (kvm:
   * the window is the guest's memory). False on `process`, where the program's host process has its
   * own private copies: there a private mapping that is or becomes writable is made a copy in
   * anonymous memory, which both sides share.
   */
  readonly sharedPrivateMappings: boolean;
  /** Whether a MAP_SHARED writable mapping of the image may be the image's own pages (false: a copy kept in step). */
  readonly writableImageMappings: boolean;
  /** AT_HWCAP for the program's auxiliary vector (CPUID.1:EDX as the program sees it). */
  readonly hwcap: number;
  /** Whether AVX state is saved and offered (XSAVE on), for --stats. */
  readonly xsave: boolean;
  /** A fingerprint of the CPU features the program sees (checkpoints refuse another). */
  cpuFingerprint(): string;
  /** A thread context starting at rip with stack rsp (id: a free thread slot, < MAX_VCPUS). */
  createContext(id: number, rip: number, rsp: number): Context;
  /** The host files the program's memory may be mapped from, declared before the first thread runs. */
  declareFile(fd: number, writable: boolean): void;
  /** Dirty-page tracking for incremental checkpoints (null: not supported on this platform). */
  readonly dirtyLog: { enable(): void; readonly enabled: boolean; take(): number[] } | null;
  /** Everything the first thread needs is declared: make the program's host side (process: spawn it). */
  start(): void;
  /**
   * Begin making the host side now, so that a later start() only waits for it (process: spawn the
   * stub early); no file may be declared after it. Absent where there is nothing to begin.
   */
  launch?(): void;
  /**
   * Empty the program's memory so the machine can run another program (a later fork), its threads
   * gone; false when this platform cannot (then close it). `mapped`: the [start, length] ranges in use
   * (only they are released; else the whole user range).
   */
  recycle?(mapped?: ReadonlyArray<readonly [number, number]>): boolean;
  /** End the program's execution and free the platform. */
  close(): void;
}

/** A platform that cannot be used here, and why (for `mapvisor info` and `auto`). */
export interface PlatformProbe {
  name: PlatformName;
  works: boolean;
  why: string;
}
