/**
 * Stopping a vCPU that never exits: set kvm_run.immediate_exit, then interrupt its host thread
 * (host/interrupt.ts): KVM_RUN returns EINTR.
 */
import * as libc from '../../host/libc.js';
import { interruptThread } from '../../host/interrupt.js';
import { RUN } from './structs.js';

/** Make the vCPU whose kvm_run page is at `runAddr`, running on pthread `thread`, leave KVM_RUN. */
export function kick(runAddr: number, thread: bigint | number): void {
  new Uint8Array(libc.view(runAddr, RUN.immediate_exit + 1))[RUN.immediate_exit] = 1;
  interruptThread(thread);
}

