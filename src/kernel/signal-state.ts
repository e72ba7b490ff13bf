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
  /** What the sender said about a pending signal (kill's pid and uid, SIGCHLD's child), by number. */
  readonly pendingInfo = new Map<number, import('./signal-frame.js').SigInfo>();
  altStack = { sp: 0n, flags: 2 /* SS_DISABLE */, size: 0n };

  constructor() {
    for (let i = 0; i <= NSIG; i++) this.actions.push({ handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
  }

  /** A fork's child: the same dispositions and mask, nothing pending, the same alternate stack. */
  fork(): SignalState {
    const c = new SignalState();
    for (let i = 0; i <= NSIG; i++) c.actions[i] = { ...this.actions[i]! };
    c.blocked = this.blocked;
    c.altStack = { ...this.altStack };
    return c;
  }

  /** execve: handled signals go back to their default action; ignored ones stay ignored. */
  resetForExec(): void {
    for (let i = 1; i <= NSIG; i++) {
      const a = this.actions[i]!;
      if (a.handler !== SIG_IGN) this.actions[i] = { handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n };
      else this.actions[i] = { ...a, flags: 0n, mask: 0n };
    }
    this.altStack = { sp: 0n, flags: 2, size: 0n };
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
