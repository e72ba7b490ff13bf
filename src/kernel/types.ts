/** The contract between the syscall dispatcher and the per-area syscall modules. */
import type { Context } from '../platform/platform.js';
import type { Kernel } from './kernel.js';
import type { Park } from './threads.js';

/** What a system call asks of the task loop besides returning a value. */
export type Outcome =
  | { kind: 'exit'; status: number } // exit_group / last thread's exit
  | { kind: 'kill'; signal: number; reason: string } // the program dies by a signal
  | { kind: 'stop' } // the VMM was asked to stop (timeout, API) while the call blocked
  | { kind: 'resume' } // the call set the registers itself (rt_sigreturn): resume as they are
  | { kind: 'park'; park: Park } // threads: the call waits; the kernel answers it later
  | { kind: 'thread-exit'; status: number } // threads: this thread ends (exit)
  | { kind: 'threaded'; result: number }; // clone made the second thread: answer `result`, then serve threads

/** A handler answers a number (>= 0 result, < 0 -errno), a bigint (a full 64-bit result) or an outcome. */
export type SyscallResult = number | bigint | Outcome;

/** The six argument registers of the x86-64 syscall ABI, with typed readers. */
export class SyscallArgs {
  private readonly cpu: Context;
  constructor(cpu: Context) {
    this.cpu = cpu;
  }
  private static readonly REG = ['rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9'] as const;
  /** Argument i as an unsigned 64-bit number (exact below 2^53; larger values are never valid pointers). */
  u64(i: number): number {
    return this.cpu.reg(SyscallArgs.REG[i]!);
  }
  big(i: number): bigint {
    return this.cpu.regBig(SyscallArgs.REG[i]!);
  }
  /** Argument i as a C `int` (the low 32 bits, signed), as Linux reads int parameters. */
  i32(i: number): number {
    return this.cpu.regI32(SyscallArgs.REG[i]!);
  }
  u32(i: number): number {
    return this.cpu.regU32(SyscallArgs.REG[i]!);
  }
  /** Argument i as a signed 64-bit value (off_t, long). */
  i64(i: number): number {
    return this.cpu.regI64(SyscallArgs.REG[i]!);
  }
}

export type SyscallHandler = (k: Kernel, a: SyscallArgs, cpu: Context) => SyscallResult;

/** A module's system calls by name (names as in <asm/unistd_64.h>). */
export type SyscallTable = Readonly<Record<string, SyscallHandler>>;
