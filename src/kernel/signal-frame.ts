/**
 * Running a program's signal handler, as Linux's x86-64 signal delivery does (arch/x86/kernel/signal.c):
 * the interrupted registers, FPU state, signal mask and alternate-stack state are saved in an
 * rt_sigframe on the program's stack (or its alternate stack), and the vCPU continues at the handler
 * with rdi = signo, rsi = &siginfo, rdx = &ucontext, returning through sa_restorer into rt_sigreturn,
 * which restores everything from the frame.
 */
import type { Context } from '../platform/platform.js';
import { FXSAVE_SIZE } from '../platform/regs.js';
import type { Kernel } from './kernel.js';
import type { SigAction } from './signal-state.js';
import { rseqNotifyResume } from './sys/rseq.js';

/** struct sigcontext (64-bit): general registers in this order, then cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate. */
const SC_REGS = ['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rax', 'rcx', 'rsp', 'rip', 'rflags'] as const;
const SC = { cs: 144, gs: 146, fs: 148, ss: 150, err: 152, trapno: 160, oldmask: 168, cr2: 176, fpstate: 184 } as const;
export const SIGCONTEXT_SIZE = 256;
/** struct ucontext: uc_flags, uc_link, uc_stack {sp, flags, size}, uc_mcontext, uc_sigmask. */
const UC = { flags: 0, link: 8, stack: 16, mcontext: 40, sigmask: 40 + SIGCONTEXT_SIZE } as const;
export const UCONTEXT_SIZE = UC.sigmask + 8;
export const SIGINFO_SIZE = 128;
/** struct rt_sigframe: pretcode, ucontext, siginfo. */
const FRAME = { pretcode: 0, uc: 8, info: 8 + UCONTEXT_SIZE } as const;
export const RT_SIGFRAME_SIZE = FRAME.info + SIGINFO_SIZE;
/** The legacy FXSAVE image (struct _fpstate_64) that holds the FPU state without XSAVE. */
export { FXSAVE_SIZE };

const UC_SIGCONTEXT_SS = 2;
const UC_STRICT_RESTORE_SS = 4;
const SA_ONSTACK = 0x08000000n;
const SA_RESETHAND = 0x80000000n;
const SA_NODEFER = 0x40000000n;
const SA_RESTORER = 0x04000000n;
const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const RED_ZONE = 128;
const RFLAGS_TF = 0x100;
const RFLAGS_DF = 0x400;
const RFLAGS_RF = 0x10000;
/** Flags a frame may restore (Linux's FIX_EFLAGS). */
const FIX_EFLAGS = 0x254dd5;

/** What the handler learns about the signal (siginfo_t). */
export interface SigInfo {
  signo: number;
  code: number;
  /** Fault address for SIGSEGV/SIGBUS/SIGILL/SIGFPE, or sender pid/uid for kill. */
  addr?: number;
  pid?: number;
  uid?: number;
  trapno?: number;
  err?: number;
  cr2?: number;
  /** SIGCHLD: the child's exit status or signal. */
  status?: number;
  /** SI_TIMER and sigqueue: si_value (pid/uid above are then si_timerid and si_overrun for a timer). */
  value?: bigint;
}

export const SI_USER = 0;
export const CLD_EXITED = 1;
export const CLD_KILLED = 2;
export const SI_TKILL = -6;
export const SEGV_MAPERR = 1;
export const SEGV_ACCERR = 2;
export const BUS_ADRERR = 2;
export const FPE_INTDIV = 1;
export const ILL_ILLOPN = 2;
export const TRAP_BRKPT = 1;

function onAltStack(k: Kernel, sp: number): boolean {
  const a = k.signals.altStack;
  if (a.flags & SS_DISABLE) return false;
  const base = Number(a.sp);
  return sp > base && sp - base <= Number(a.size);
}

/**
 * Build the frame for `sig` with action `act` from the vCPU's current registers (the interrupted
 * program state) and point the vCPU at the handler. Returns false when the frame cannot be written
 * (a bad stack): the caller then kills the program with SIGSEGV, as Linux does.
 */
export function deliverSignal(k: Kernel, cpu: Context, sig: number, act: SigAction, info: SigInfo, savedMask: bigint | null = null): boolean {
  // An interrupted rseq critical section restarts at its abort_ip: the frame saves that (rseq_signal_deliver).
  if (!rseqNotifyResume(k, cpu)) return false;
  const userSp = cpu.reg('rsp');
  const alt = k.signals.altStack;
  let sp: number;
  if (act.flags & SA_ONSTACK && !(alt.flags & SS_DISABLE) && !onAltStack(k, userSp)) {
    sp = Number(alt.sp) + Number(alt.size);
  } else {
    sp = userSp - RED_ZONE;
  }
  const fpAddr = Math.floor((sp - FXSAVE_SIZE) / 64) * 64;
  const frame = Math.floor((fpAddr - RT_SIGFRAME_SIZE) / 16) * 16 - 8;
  if (!(act.flags & SA_RESTORER)) return false; // x86-64 has no vDSO restorer to fall back on here
  const buf = new Uint8Array(fpAddr + FXSAVE_SIZE - frame);
  const dv = new DataView(buf.buffer);
  const at = (guest: number): number => guest - frame;
  buf.set(cpu.getFxsave(), at(fpAddr));
  dv.setBigUint64(FRAME.pretcode, act.restorer, true);
  // ucontext
  const uc = FRAME.uc;
  dv.setBigUint64(uc + UC.flags, BigInt(UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS), true);
  dv.setBigUint64(uc + UC.stack, alt.sp, true);
  dv.setInt32(uc + UC.stack + 8, (alt.flags & SS_DISABLE) | (onAltStack(k, userSp) ? SS_ONSTACK : 0), true);
  dv.setBigUint64(uc + UC.stack + 16, alt.size, true);
  const mc = uc + UC.mcontext;
  SC_REGS.forEach((r, i) => dv.setBigUint64(mc + 8 * i, cpu.regBig(r), true));
  dv.setUint16(mc + SC.cs, 0x33, true);
  dv.setUint16(mc + SC.ss, 0x2b, true);
  dv.setBigUint64(mc + SC.err, BigInt(info.err ?? 0), true);
  dv.setBigUint64(mc + SC.trapno, BigInt(info.trapno ?? 0), true);
  // The mask sigreturn puts back: the one before rt_sigsuspend's temporary mask, when it was one.
  const restoreMask = savedMask ?? k.signals.blocked;
  dv.setBigUint64(mc + SC.oldmask, restoreMask, true);
  dv.setBigUint64(mc + SC.cr2, BigInt(info.cr2 ?? 0), true);
  dv.setBigUint64(mc + SC.fpstate, BigInt(fpAddr), true);
  dv.setBigUint64(uc + UC.sigmask, restoreMask, true);
  // siginfo
  const si = FRAME.info;
  dv.setInt32(si, sig, true);
  dv.setInt32(si + 8, info.code, true);
  if (info.addr !== undefined) dv.setBigUint64(si + 16, BigInt(info.addr), true);
  else {
    dv.setInt32(si + 16, info.pid ?? 0, true);
    dv.setUint32(si + 20, info.uid ?? 0, true);
    if (info.status !== undefined) dv.setInt32(si + 24, info.status, true); // SIGCHLD: si_status
    if (info.value !== undefined) dv.setBigUint64(si + 24, info.value, true); // si_value
  }
  if (!k.mem.ok(frame, buf.length, 2 /* PROT_WRITE */)) return false;
  k.mem.write(frame, buf);

  // The handler runs with the signal (unless SA_NODEFER) and sa_mask blocked.
  k.signals.blocked |= act.mask | (act.flags & SA_NODEFER ? 0n : 1n << BigInt(sig - 1));
  k.signals.blocked &= ~((1n << 8n) | (1n << 18n)); // SIGKILL, SIGSTOP
  if (act.flags & SA_RESETHAND) k.signals.set(sig, { handler: 0n, flags: 0n, restorer: 0n, mask: 0n });
  cpu.setReg('rdi', sig);
  cpu.setReg('rsi', frame + FRAME.info);
  cpu.setReg('rdx', frame + FRAME.uc);
  cpu.setReg('rax', 0);
  cpu.setReg('rsp', frame);
  cpu.setRegBig('rip', act.handler);
  cpu.setReg('rflags', cpu.reg('rflags') & ~(RFLAGS_TF | RFLAGS_DF | RFLAGS_RF));
  cpu.resumeUser();
  return true;
}

/** rt_sigreturn: restore the state saved in the frame below rsp. False when the frame is unreadable. */
export function sigreturn(k: Kernel, cpu: Context): boolean {
  const frame = cpu.reg('rsp') - 8;
  if (!k.mem.ok(frame, RT_SIGFRAME_SIZE, 1)) return false;
  const b = k.mem.copyIn(frame, RT_SIGFRAME_SIZE);
  const dv = new DataView(b.buffer);
  const mc = FRAME.uc + UC.mcontext;
  const saved = SC_REGS.map((_, i) => dv.getBigUint64(mc + 8 * i, true));
  const rip = saved[16]!;
  if (rip >= 1n << 47n) return false; // not a canonical user address
  SC_REGS.forEach((r, i) => {
    if (r === 'rflags') cpu.setRegBig(r, (cpu.regBig('rflags') & ~BigInt(FIX_EFLAGS)) | (saved[i]! & BigInt(FIX_EFLAGS)) | 2n);
    else cpu.setRegBig(r, saved[i]!);
  });
  const fp = Number(dv.getBigUint64(mc + SC.fpstate, true));
  if (fp !== 0) {
    if (!k.mem.ok(fp, FXSAVE_SIZE, 1)) return false;
    cpu.setFxsave(k.mem.copyIn(fp, FXSAVE_SIZE));
  }
  k.signals.blocked = dv.getBigUint64(FRAME.uc + UC.sigmask, true) & ~((1n << 8n) | (1n << 18n));
  // The alternate stack as the frame records it (sigaltstack semantics on return).
  const ssFlags = dv.getInt32(FRAME.uc + UC.stack + 8, true);
  const ssSize = dv.getBigUint64(FRAME.uc + UC.stack + 16, true);
  if (!onAltStack(k, cpu.reg('rsp')) && (ssFlags & SS_DISABLE || ssSize >= 2048n)) {
    k.signals.altStack = { sp: dv.getBigUint64(FRAME.uc + UC.stack, true), flags: ssFlags & SS_DISABLE, size: ssSize };
  }
  cpu.resumeUser();
  return true;
}
