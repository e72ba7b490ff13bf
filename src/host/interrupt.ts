/**
 * Interrupting one of this process's threads: a real-time signal whose handler is a harmless libc
 * function (no JavaScript runs in a signal handler), installed without SA_RESTART, so a blocking host
 * call in that thread (KVM_RUN, read, poll) returns EINTR.
 */
import * as libc from './libc.js';

/** The signal (SIGRTMIN + 16; glibc's SIGRTMIN is 34). */
export const INTERRUPT_SIGNAL = 50;
const SIGACTION_SIZE = 152; // glibc's struct sigaction on x86-64: handler, mask[128], flags, restorer

let installed = false;

/** Install the no-op handler, once per process. */
export function installInterruptHandler(): void {
  if (installed) return;
  const handler = libc.dlsym(0, 'getpid'); // RTLD_DEFAULT; getpid is async-signal-safe and harmless
  const act = Buffer.alloc(SIGACTION_SIZE);
  act.writeBigUInt64LE(BigInt(handler), 0);
  if (libc.sigaction(INTERRUPT_SIGNAL, act, null) !== 0) throw new Error(`sigaction(${INTERRUPT_SIGNAL}) failed: errno ${libc.errno()}`);
  installed = true;
}

/** Interrupt pthread `thread` of this process. */
export function interruptThread(thread: bigint | number): void {
  installInterruptHandler();
  libc.pthreadKill(thread, INTERRUPT_SIGNAL);
}
