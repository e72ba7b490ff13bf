/**
 * The task loop: run the program on its vCPU, hand each system call to the kernel, and turn
 * exceptions and bad memory accesses into the signal Linux would deliver (its default action, for now:
 * the program dies with a one-line report).
 */
import { SIG, signalName } from '../abi/signals.js';
import { PROT_READ, PROT_WRITE } from '../kvm/libc.js';
import { SUPERVISOR_END } from '../vm/layout.js';
import { BEYOND_EOF } from './sys/mm.js';
import type { Vcpu, Exit } from '../vm/vcpu.js';
import type { Kernel } from './kernel.js';

export type TaskEnd =
  | { kind: 'exited'; status: number }
  | { kind: 'killed'; signal: number; reason: string }
  | { kind: 'stopped' } // the VMM was asked to stop (timeout, API)
  | { kind: 'failed'; reason: string }; // a VMM or KVM failure, not the program's doing

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Linux's signal for an exception vector from user mode (arch/x86/kernel/traps.c). */
export function exceptionSignal(vector: number): number {
  switch (vector) {
    case 0: // #DE divide error
    case 16: // #MF x87 error
    case 19: // #XM SIMD error
      return SIG.SIGFPE;
    case 1: // #DB
    case 3: // #BP int3
      return SIG.SIGTRAP;
    case 6: // #UD
      return SIG.SIGILL;
    case 17: // #AC alignment check
      return SIG.SIGBUS;
    default: // #GP, #PF, #SS, #NP, #TS, #OF, #BR, #DF...
      return SIG.SIGSEGV;
  }
}

const VECTOR_NAMES: Record<number, string> = {
  0: 'divide error',
  1: 'debug trap',
  3: 'breakpoint',
  4: 'overflow',
  5: 'bound range exceeded',
  6: 'invalid opcode',
  7: 'device not available',
  8: 'double fault',
  10: 'invalid TSS',
  11: 'segment not present',
  12: 'stack fault',
  13: 'general protection fault (privileged instruction or bad segment)',
  14: 'page fault',
  16: 'x87 floating-point error',
  17: 'alignment check',
  18: 'machine check',
  19: 'SIMD floating-point error',
};

function describeException(k: Kernel, exit: Extract<Exit, { kind: 'exception' }>): string {
  const what = VECTOR_NAMES[exit.vector] ?? `exception ${exit.vector}`;
  if (exit.vector === 14) {
    const code = exit.errorCode ?? 0;
    const access = code & 16 || exit.cr2 === exit.rip ? 'execution' : code & 2 ? 'write' : 'read';
    const where =
      exit.cr2 < SUPERVISOR_END ? "the VMM's supervisor area" : exit.cr2 >= k.space.layout.size ? 'outside the address space' : 'not mapped';
    return `${access} of ${hex(exit.cr2)} at rip ${hex(exit.rip)} (${where})`;
  }
  return `${what} at rip ${hex(exit.rip)}`;
}

function describeMemfault(k: Kernel, exit: Extract<Exit, { kind: 'memfault' }>): string {
  if (exit.gpa === null) return `access to unmapped or protected memory at rip ${hex(exit.rip)} (address not reported by KVM)`;
  const r = k.space.regions.find(exit.gpa);
  const why = !r ? 'unmapped' : !(r.prot & PROT_WRITE) ? 'read-only or protected' : 'protected';
  return `access to ${hex(exit.gpa)} (${why}) at rip ${hex(exit.rip)}`;
}

const RFLAGS_TF = 0x100;

/**
 * This KVM does not report which address an EFAULT was for. Was it a page of a file mapping past the
 * end of the file (SIGBUS) rather than unmapped memory (SIGSEGV)? Make those pages accessible for a
 * moment and re-run the faulting instruction alone (the trap flag raises #DB after it): if it now
 * completes, it touched them. The program is about to die either way, so its state need not survive.
 */
function probeBeyondEof(cpu: Vcpu, k: Kernel): boolean {
  const eof = k.space.regions.regions().filter((r) => r.tag === BEYOND_EOF);
  if (eof.length === 0) return false;
  for (const r of eof) k.space.window.protect(r.start, r.end - r.start, PROT_READ | PROT_WRITE);
  try {
    cpu.setReg('rflags', cpu.reg('rflags') | RFLAGS_TF);
    cpu.regsChanged();
    const again = cpu.enter();
    return again.kind === 'exception' && again.vector === 1;
  } finally {
    for (const r of eof) k.space.window.protect(r.start, r.end - r.start, 0);
  }
}

/** Run until the program exits, dies, or the VMM is stopped. */
export function runTask(cpu: Vcpu, k: Kernel): TaskEnd {
  for (;;) {
    const exit = cpu.enter();
    switch (exit.kind) {
      case 'syscall': {
        const r = k.syscall(cpu);
        if (typeof r === 'object') {
          if (r.kind === 'exit') return { kind: 'exited', status: r.status };
          if (r.kind === 'kill') return { kind: 'killed', signal: r.signal, reason: r.reason };
          return { kind: 'stopped' };
        }
        cpu.completeSyscall(r);
        break;
      }
      case 'exception': {
        const sig = exceptionSignal(exit.vector);
        return { kind: 'killed', signal: sig, reason: `${signalName(sig)}: ${describeException(k, exit)}` };
      }
      case 'memfault': {
        // A touch of a file mapping's pages past the end of the file is SIGBUS, as on Linux.
        const r = exit.gpa === null ? undefined : k.space.regions.find(exit.gpa);
        if (r?.tag === BEYOND_EOF) {
          return { kind: 'killed', signal: SIG.SIGBUS, reason: `SIGBUS: access to 0x${exit.gpa!.toString(16)}, past the end of the mapped file ${r.path ?? ''}` };
        }
        if (exit.gpa === null && probeBeyondEof(cpu, k)) {
          return { kind: 'killed', signal: SIG.SIGBUS, reason: `SIGBUS: access past the end of a mapped file at rip ${hex(exit.rip)}` };
        }
        return { kind: 'killed', signal: SIG.SIGSEGV, reason: `SIGSEGV: ${describeMemfault(k, exit)}` };
      }
      case 'interrupted':
        if (k.stop.stopRequested()) return { kind: 'stopped' };
        break;
      case 'fatal':
        return { kind: 'failed', reason: `${exit.reason} at rip ${hex(exit.rip)}` };
    }
  }
}
