/**
 * Kicking a running thread out of the program, whatever the platform: the KVM platform sets the vCPU's
 * immediate_exit and signals the host thread in KVM_RUN; the process platform signals the program's
 * host thread with the stub's kick signal, and the stub reports an interruption.
 */
import * as libc from '../host/libc.js';
import { installInterruptHandler, interruptThread } from '../host/interrupt.js';
import { kick as kickVcpu } from './kvm/kick.js';
import type { KickTarget } from './platform.js';
import { KICK_SIGNAL as STUB_KICK_SIGNAL } from './process/abi.js';

const SYS_tgkill = 234;

export function kickTarget(t: KickTarget): void {
  if (t.kind === 'kvm') {
    kickVcpu(t.runAddr, BigInt(t.thread));
    return;
  }
  // The program's thread, if it runs its own code; and the VMM's thread serving it, if the kernel
  // waits in a blocking host call for it (a read of the standard input).
  if (t.pid > 0 && t.tid > 0) libc.syscall3(SYS_tgkill, t.pid, t.tid, STUB_KICK_SIGNAL);
  if (t.thread !== '0') interruptThread(BigInt(t.thread));
}

/** Make this process ready to kick threads (the KVM platform's no-op signal handler). */
export function prepareKicks(): void {
  installInterruptHandler();
}

/**
 * A kick from another thread must not touch a vCPU being torn down (its kvm_run page unmapped, its
 * thread gone): the kicker and the teardown take turns through a lock word, and the owner clears the
 * alive word, under the lock, before it closes the vCPU.
 */
export class KickGuard {
  constructor(
    private readonly cells: Int32Array,
    private readonly lock: number,
    private readonly alive: number,
  ) {}
  private acquire(): void {
    while (Atomics.compareExchange(this.cells, this.lock, 0, 1) !== 0) Atomics.wait(this.cells, this.lock, 1, 1);
  }
  private release(): void {
    Atomics.store(this.cells, this.lock, 0);
    Atomics.notify(this.cells, this.lock);
  }
  /** The owner: the vCPU may be kicked (true), or is about to be closed (false). */
  setAlive(alive: boolean): void {
    this.acquire();
    Atomics.store(this.cells, this.alive, alive ? 1 : 0);
    this.release();
  }
  /** Kick the thread if it is still alive (`how` does the kick: see platform/kick.ts). */
  kick(how: () => void): void {
    this.acquire();
    try {
      if (Atomics.load(this.cells, this.alive) === 1) how();
    } finally {
      this.release();
    }
  }
}
