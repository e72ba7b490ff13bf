/**
 * Stopping a vCPU that never exits: set kvm_run.immediate_exit, then send its thread a real-time
 * signal whose handler is a harmless libc function (no JavaScript runs in a signal handler). KVM_RUN
 * returns EINTR; a blocking host call in that thread (read, poll) returns EINTR too.
 */
import * as libc from '../../host/libc.js';
import { RUN } from './structs.js';

/** The signal mapvisor kicks vCPU threads with (SIGRTMIN + 16; glibc's SIGRTMIN is 34). */
export const KICK_SIGNAL = 50;
const SIGACTION_SIZE = 152; // glibc's struct sigaction on x86-64: handler, mask[128], flags, restorer

let installed = false;

/** Install the no-op handler for KICK_SIGNAL, once per process. No SA_RESTART: blocked calls return EINTR. */
export function installKickHandler(): void {
  if (installed) return;
  const handler = libc.dlsym(0, 'getpid'); // RTLD_DEFAULT; getpid is async-signal-safe and harmless
  const act = Buffer.alloc(SIGACTION_SIZE);
  act.writeBigUInt64LE(BigInt(handler), 0);
  if (libc.sigaction(KICK_SIGNAL, act, null) !== 0) throw new Error(`sigaction(${KICK_SIGNAL}) failed: errno ${libc.errno()}`);
  installed = true;
}

/** Make the vCPU whose kvm_run page is at `runAddr`, running on pthread `thread`, leave KVM_RUN. */
export function kick(runAddr: number, thread: bigint | number): void {
  installKickHandler();
  new Uint8Array(libc.view(runAddr, RUN.immediate_exit + 1))[RUN.immediate_exit] = 1;
  libc.pthreadKill(thread, KICK_SIGNAL);
}

