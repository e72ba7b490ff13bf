/**
 * The task loop: run the program on its vCPU, hand each system call to the kernel, and turn
 * exceptions and bad memory accesses into the signal Linux would deliver (its default action, for now:
 * the program dies with a one-line report).
 */
import { SIG, signalName } from '../abi/signals.js';
import { PROT_READ, PROT_WRITE } from '../host/libc.js';
import { USER_START } from '../platform/layout.js';
import { BEYOND_EOF } from './sys/mm.js';
import { defaultAction } from '../abi/signals.js';
import { SIG_DFL, SIG_IGN } from './signal-state.js';
import { BUS_ADRERR, FPE_INTDIV, ILL_ILLOPN, SEGV_ACCERR, SEGV_MAPERR, SI_TKILL, TRAP_BRKPT, deliverSignal, type SigInfo } from './signal-frame.js';
import type { Context, Exit } from '../platform/platform.js';
import { rseqNotifyResume } from './sys/rseq.js';
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
      exit.cr2 < USER_START ? "the VMM's supervisor area" : exit.cr2 >= k.space.layout.size ? 'outside the address space' : 'not mapped';
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
function probeBeyondEof(cpu: Context, k: Kernel): boolean {
  const eof = k.space.regions.regions().filter((r) => r.tag === BEYOND_EOF);
  if (eof.length === 0) return false;
  const saved = cpu.saveRegs();
  for (const r of eof) k.space.window.protect(r.start, r.end - r.start, PROT_READ | PROT_WRITE);
  try {
    cpu.setReg('rflags', cpu.reg('rflags') | RFLAGS_TF);
    cpu.regsChanged();
    const again = cpu.enter();
    return again.kind === 'exception' && again.vector === 1;
  } finally {
    for (const r of eof) k.space.window.protect(r.start, r.end - r.start, 0);
    // Back to the state at the fault, so a SIGBUS handler sees the faulting instruction.
    cpu.restoreRegs(saved);
  }
}

/** si_code for a fault of `vector` (arch/x86/kernel/traps.c). */
function faultCode(vector: number, errorCode: number | null): number {
  switch (vector) {
    case 0:
      return FPE_INTDIV;
    case 6:
      return ILL_ILLOPN;
    case 1:
    case 3:
      return TRAP_BRKPT;
    case 14:
      return (errorCode ?? 0) & 1 ? SEGV_ACCERR : SEGV_MAPERR;
    case 17:
      return BUS_ADRERR;
    default:
      return SI_KERNEL;
  }
}
const SI_KERNEL = 0x80;

/**
 * A synchronous fault raises `sig`: run the program's handler if it has one and the signal is neither
 * blocked nor ignored (Linux forces the default action otherwise); null means the program continues.
 */
function fault(k: Kernel, cpu: Context, sig: number, info: SigInfo, reason: string): TaskEnd | null {
  const act = k.signals.get(sig);
  if (act.handler !== SIG_DFL && act.handler !== SIG_IGN && !k.signals.isBlocked(sig)) {
    if (deliverSignal(k, cpu, sig, act, info)) return null;
    return { kind: 'killed', signal: SIG.SIGSEGV, reason: `SIGSEGV: the ${signalName(sig)} handler cannot be entered (no SA_RESTORER, or no room for its frame on the stack) (${reason})` };
  }
  return { kind: 'killed', signal: sig, reason: `${signalName(sig)}: ${reason}` };
}

/**
 * Deliver the pending signals the program does not block, at a return to it. `savedMask`: the mask
 * to restore after the handler when the thread waited in rt_sigsuspend with a temporary one.
 */
export function deliverPending(k: Kernel, cpu: Context, savedMask: bigint | null = null): TaskEnd | null {
  for (let sig = k.signals.nextDeliverable(); sig !== 0; sig = k.signals.nextDeliverable()) {
    k.signals.pending &= ~(1n << BigInt(sig - 1));
    const info = k.signals.pendingInfo.get(sig) ?? { signo: sig, code: SI_TKILL, pid: k.identity.pid, uid: k.identity.uid };
    k.signals.pendingInfo.delete(sig);
    const act = k.signals.get(sig);
    if (act.handler === SIG_IGN) continue;
    if (act.handler === SIG_DFL) {
      const d = defaultAction(sig);
      const from = info.pid !== undefined && info.pid !== k.identity.pid ? `sent by process ${info.pid}` : 'sent by the program to itself';
      if (d === 'term' || d === 'core') return { kind: 'killed', signal: sig, reason: `${signalName(sig)} ${from}` };
      continue;
    }
    if (!deliverSignal(k, cpu, sig, act, info, savedMask)) {
      return { kind: 'killed', signal: SIG.SIGSEGV, reason: `SIGSEGV: the ${signalName(sig)} handler cannot be entered (no SA_RESTORER, or no room for its frame on the stack)` };
    }
    return null; // one frame at a time: the next is delivered when this handler returns
  }
  return null;
}

/**
 * A lone program (not served): signals the host forwarded, sent now, and delivered at this boundary.
 * (Once served, the server sends them.)
 */
function hostSignals(k: Kernel, cpu: Context): TaskEnd | null {
  if (k.threads?.threaded) return null;
  const mask = k.stop.takeSignals?.() ?? 0;
  const mainMask = k.stop.takeMainSignals?.() ?? 0;
  if ((!mask && !mainMask) || !k.procs) return null;
  if (mask) k.procs.signalFromHost(mask);
  if (mainMask) k.procs.signalFromHost(mainMask, true);
  const st = k.procs.main.zombie?.status;
  if (st !== undefined) return { kind: 'killed', signal: st & 0x7f, reason: `${signalName(st & 0x7f)} from the host` };
  return k.signals.nextDeliverable() !== 0 ? deliverPending(k, cpu) : null;
}

/** What handling one exit asks of the caller: continue the vCPU, or one of these. */
export type ExitResult =
  | TaskEnd
  | { kind: 'park' } // threads: the system call waits; the thread's park is set
  | { kind: 'thread-exit'; status: number }
  | { kind: 'threaded' }; // the second thread exists: serve threads from now on

/** Handle one exit of `cpu`; null means resume it. */
export function handleExit(k: Kernel, cpu: Context, exit: Exit): ExitResult | null {
  cpu.serving?.();
  k.activate();
  switch (exit.kind) {
    case 'syscall': {
      const r = k.syscall(cpu);
      let threaded = false;
      if (typeof r === 'object') {
        switch (r.kind) {
          case 'exit':
            return { kind: 'exited', status: r.status };
          case 'kill':
            return { kind: 'killed', signal: r.signal, reason: r.reason };
          case 'stop':
            if (k.stop.stopForGood?.() ?? true) return { kind: 'stopped' };
            // Only a pause (or a signal from the host): restart the call after it (back to the
            // `syscall` instruction, rax = nr).
            cpu.restartSyscall();
            return hostSignals(k, cpu);
          case 'park':
            if (k.curThread) k.curThread.park = r.park;
            return { kind: 'park' };
          case 'thread-exit':
            return { kind: 'thread-exit', status: r.status };
          case 'threaded':
            cpu.completeSyscall(r.result);
            threaded = true;
            break;
          case 'resume':
            break; // rt_sigreturn restored the registers itself
        }
      } else {
        cpu.completeSyscall(r);
      }
      if (k.signals.pending !== 0n) {
        if (typeof r !== 'object' || r.kind === 'threaded') cpu.syscallReturnToRegs();
        const saved = k.suspendMask;
        k.suspendMask = null;
        // (A vfork child's exec moved its thread to a context of its own.)
        const end = deliverPending(k, k.curThread?.cpu ?? cpu, saved);
        if (end) return end;
      } else if (k.suspendMask !== null) {
        k.signals.blocked = k.suspendMask;
        k.suspendMask = null;
      }
      return threaded ? { kind: 'threaded' } : null;
    }
    case 'exception': {
      const sig = exceptionSignal(exit.vector);
      const info: SigInfo = {
        signo: sig,
        code: faultCode(exit.vector, exit.errorCode),
        addr: exit.vector === 14 ? exit.cr2 : exit.vector === 13 ? 0 : exit.rip,
        trapno: exit.vector,
        err: exit.errorCode ?? 0,
        cr2: exit.vector === 14 ? exit.cr2 : 0,
      };
      return fault(k, cpu, sig, info, describeException(k, exit));
    }
    case 'memfault': {
      // A touch of a file mapping's pages past the end of the file is SIGBUS, as on Linux.
      const r = exit.gpa === null ? undefined : k.space.regions.find(exit.gpa);
      if (r?.tag === BEYOND_EOF) {
        return fault(k, cpu, SIG.SIGBUS, { signo: SIG.SIGBUS, code: BUS_ADRERR, addr: exit.gpa! }, `access to 0x${exit.gpa!.toString(16)}, past the end of the mapped file ${r.path ?? ''}`);
      }
      if (exit.gpa === null && !k.threads?.threaded && probeBeyondEof(cpu, k)) {
        return fault(k, cpu, SIG.SIGBUS, { signo: SIG.SIGBUS, code: BUS_ADRERR, addr: 0 }, `access past the end of a mapped file at rip ${hex(exit.rip)}`);
      }
      return fault(k, cpu, SIG.SIGSEGV, { signo: SIG.SIGSEGV, code: SEGV_MAPERR, addr: exit.gpa ?? 0 }, describeMemfault(k, exit));
    }
    case 'interrupted': {
      if (k.stop.stopForGood?.() ?? k.stop.stopRequested()) return { kind: 'stopped' };
      // The thread was preempted: an rseq critical section it was in restarts at its abort_ip.
      if (!rseqNotifyResume(k, cpu)) return { kind: 'killed', signal: SIG.SIGSEGV, reason: 'SIGSEGV: an invalid rseq critical-section descriptor (rseq_cs) or rseq area' };
      const end = hostSignals(k, cpu);
      if (end) return end;
      // A kick for a signal another process sent: deliver it at this boundary.
      return k.signals.nextDeliverable() !== 0 ? deliverPending(k, cpu) : null;
    }
    case 'fatal':
      return { kind: 'failed', reason: `${exit.reason} at rip ${hex(exit.rip)}` };
    case 'gone':
      // The host ended the program's process: a system call that escaped interception (the seccomp
      // filter's SIGSYS), a kill from outside the sandbox, or an exit the program made behind the
      // kernel's back (a jump into the stub's own exit_group).
      if (exit.signal !== null) {
        const why = exit.signal === SIG.SIGSYS ? 'a system call that escaped interception was refused by the seccomp filter' : exit.reason;
        return { kind: 'killed', signal: exit.signal, reason: `${signalName(exit.signal)}: ${why}` };
      }
      // A program's exit goes through the kernel (exit_group); this one did not: it ran the stub's own
      // code. It is reported as a kill, with the status it gave, never as an ordinary exit.
      return { kind: 'killed', signal: SIG.SIGKILL, reason: `SIGKILL: the program's host process ended behind the kernel's back (exit status ${exit.status ?? '?'}): it ran the platform stub's own code or damaged its control area` };
    case 'damaged':
      return { kind: 'killed', signal: SIG.SIGSEGV, reason: `SIGSEGV: ${exit.reason} (at rip ${hex(exit.rip)})` };
  }
}

/**
 * Run vCPU 0 in this thread until the program exits, dies, the VMM is stopped, or a second thread
 * appears ('threaded': the caller then serves the threads, serve.ts).
 */
export function runTask(
  cpu: Context,
  k: Kernel,
  hooks?: { paused(): boolean; pause(): 'resume' | TaskEnd | { kind: 'threaded' } },
): TaskEnd | { kind: 'threaded' } {
  for (;;) {
    const exit = cpu.enter();
    // A pause request (API: pause, checkpoint) stops the program at this exit boundary.
    if (exit.kind === 'interrupted' && hooks?.paused() && !(k.stop.stopForGood?.() ?? k.stop.stopRequested())) {
      const p = hooks.pause();
      if (p !== 'resume') return p;
      continue;
    }
    const r = handleExit(k, cpu, exit);
    if (r === null) continue;
    if (r.kind === 'park' && k.threads?.threaded) return { kind: 'threaded' }; // vfork: the child runs, the parent waits
    if (r.kind === 'park' || r.kind === 'thread-exit') {
      // Only possible with threads, which switch to serving before either can happen.
      return { kind: 'failed', reason: `a ${r.kind} outside threaded mode` };
    }
    return r;
  }
}
