/**
 * Signals: dispositions, the blocked mask and the alternate stack; signals the program sends itself;
 * rt_sigreturn. Handlers run through signal-frame.ts, from the task loop.
 */
import { E } from '../../abi/errno.js';
import { NSIG, SIG, defaultAction, signalName } from '../../abi/signals.js';
import type { Kernel } from '../kernel.js';
import { SIGACTION, SIGACTION_SIZE, SIG_DFL, SIG_IGN } from '../signal-state.js';
import type { SyscallResult, SyscallTable } from '../types.js';
import { sigreturn } from '../signal-frame.js';

const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;
const SIG_SETMASK = 2;
const UNBLOCKABLE = (1n << BigInt(SIG.SIGKILL - 1)) | (1n << BigInt(SIG.SIGSTOP - 1));
const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const MINSIGSTKSZ = 2048;

/**
 * The program sends itself `sig`. A handled or blocked signal becomes pending and is delivered when the
 * system call returns (task.ts); an ignored one is dropped; otherwise the default action is taken now.
 */
export function raise(k: Kernel, sig: number, why = 'sent by the program to itself'): SyscallResult {
  if (sig === 0) return 0;
  if (sig < 1 || sig > NSIG) return -E.EINVAL;
  const act = k.signals.get(sig);
  const unblockable = sig === SIG.SIGKILL || sig === SIG.SIGSTOP;
  if (!unblockable) {
    if (act.handler === SIG_IGN) return 0;
    if (act.handler !== SIG_DFL || k.signals.isBlocked(sig)) {
      k.signals.pending |= 1n << BigInt(sig - 1);
      return 0;
    }
  }
  const action = defaultAction(sig);
  if (action === 'stop') {
    // Job control: a process of a served sandbox stops (its parent can continue it); a lone program
    // or the sandbox's first process has no one to continue it, and ignores it (as pid 1 does).
    const procs = k.procs;
    if (procs && k.threads?.threaded && k !== procs.init) procs.stop(k, sig);
    return 0;
  }
  if (action === 'ignore' || action === 'continue') return 0;
  return { kind: 'kill', signal: sig, reason: `${signalName(sig)} ${why}` };
}

export const signalSyscalls: SyscallTable = {
  rt_sigaction: (k, a) => {
    const sig = a.i32(0);
    const act = a.u64(1);
    const old = a.u64(2);
    if (a.u64(3) !== 8) return -E.EINVAL; // sigsetsize
    if (sig < 1 || sig > NSIG) return -E.EINVAL;
    if (act && (sig === SIG.SIGKILL || sig === SIG.SIGSTOP)) return -E.EINVAL;
    let next = null;
    if (act) {
      const b = k.mem.read(act, SIGACTION_SIZE);
      const dv = new DataView(b.buffer, b.byteOffset, SIGACTION_SIZE);
      next = {
        handler: dv.getBigUint64(SIGACTION.handler, true),
        flags: dv.getBigUint64(SIGACTION.flags, true),
        restorer: dv.getBigUint64(SIGACTION.restorer, true),
        mask: dv.getBigUint64(SIGACTION.mask, true) & ~UNBLOCKABLE,
      };
    }
    if (old) {
      const cur = k.signals.get(sig);
      const b = new Uint8Array(SIGACTION_SIZE);
      const dv = new DataView(b.buffer);
      dv.setBigUint64(SIGACTION.handler, cur.handler, true);
      dv.setBigUint64(SIGACTION.flags, cur.flags, true);
      dv.setBigUint64(SIGACTION.restorer, cur.restorer, true);
      dv.setBigUint64(SIGACTION.mask, cur.mask, true);
      k.mem.write(old, b);
    }
    if (next) k.signals.set(sig, next);
    return 0;
  },
  rt_sigprocmask: (k, a) => {
    const how = a.i32(0);
    const set = a.u64(1);
    const old = a.u64(2);
    if (a.u64(3) !== 8) return -E.EINVAL;
    let next: bigint | null = null;
    if (set) {
      const m = k.mem.readBigU64(set);
      if (how === SIG_BLOCK) next = k.signals.blocked | m;
      else if (how === SIG_UNBLOCK) next = k.signals.blocked & ~m;
      else if (how === SIG_SETMASK) next = m;
      else return -E.EINVAL;
    }
    if (old) k.mem.writeU64(old, k.signals.blocked);
    if (next !== null) k.signals.blocked = next & ~UNBLOCKABLE;
    return 0;
  },
  sigaltstack: (k, a) => {
    const ss = a.u64(0);
    const old = a.u64(1);
    if (old) {
      const b = new Uint8Array(24);
      const dv = new DataView(b.buffer);
      dv.setBigUint64(0, k.signals.altStack.sp, true);
      dv.setInt32(8, k.signals.altStack.flags, true);
      dv.setBigUint64(16, k.signals.altStack.size, true);
      k.mem.write(old, b);
    }
    if (ss) {
      const b = k.mem.read(ss, 24);
      const dv = new DataView(b.buffer, b.byteOffset, 24);
      const flags = dv.getInt32(8, true);
      if (flags & ~(SS_DISABLE | SS_ONSTACK | 0x80000000)) return -E.EINVAL;
      const size = dv.getBigUint64(16, true);
      if (!(flags & SS_DISABLE) && size < BigInt(MINSIGSTKSZ)) return -E.ENOMEM;
      k.signals.altStack = { sp: dv.getBigUint64(0, true), flags: flags & SS_DISABLE, size };
    }
    return 0;
  },
  rt_sigpending: (k, a) => {
    if (a.u64(1) > 8) return -E.EINVAL;
    k.mem.writeU64(a.u64(0), k.signals.pending & k.signals.blocked);
    return 0;
  },
  rt_sigreturn: (k, _a, cpu) => (sigreturn(k, cpu) ? { kind: 'resume' } : { kind: 'kill', signal: SIG.SIGSEGV, reason: 'SIGSEGV: rt_sigreturn found no valid signal frame' }),
};
