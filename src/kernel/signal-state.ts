/**
 * Signal dispositions, the blocked mask and the alternate stack, as rt_sigaction/rt_sigprocmask/
 * sigaltstack record them. Delivery to handlers is not built yet: a signal whose disposition is a
 * handler cannot be delivered and is reported as such.
 */
import { NSIG } from '../abi/signals.js';

export const SIG_DFL = 0n;
export const SIG_IGN = 1n;

/** struct kernel_sigaction (x86-64): handler, flags, restorer, mask: 32 bytes. */
export const SIGACTION = { handler: 0, flags: 8, restorer: 16, mask: 24 } as const;
export const SIGACTION_SIZE = 32;

export interface SigAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export class SignalState {
  private readonly actions: SigAction[] = [];
  blocked = 0n;
  /** Signals sent but not yet delivered (bit sig-1). */
  pending = 0n;
  altStack = { sp: 0n, flags: 2 /* SS_DISABLE */, size: 0n };

  constructor() {
    for (let i = 0; i <= NSIG; i++) this.actions.push({ handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
  }

  get(sig: number): SigAction {
    return this.actions[sig]!;
  }

  set(sig: number, a: SigAction): void {
    this.actions[sig] = a;
  }

  /** The lowest pending signal that is not blocked, or 0. */
  nextDeliverable(): number {
    const ready = this.pending & ~this.blocked;
    if (ready === 0n) return 0;
    for (let s = 1; s <= NSIG; s++) if (ready & (1n << BigInt(s - 1))) return s;
    return 0;
  }

  isBlocked(sig: number): boolean {
    return (this.blocked & (1n << BigInt(sig - 1))) !== 0n;
  }
}
