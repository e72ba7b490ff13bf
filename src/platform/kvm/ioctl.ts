/**
 * KVM ioctl request numbers, computed from the Linux _IOC encoding (include/uapi/asm-generic/ioctl.h):
 *   bits 0..7 number, 8..15 type ('KVMIO' = 0xAE), 16..29 argument size, 30..31 direction.
 */
import { SIZEOF } from './structs.js';

export { IO, IOR, IOW, IOWR } from '../../host/ioctl.js';
import { IO, IOR, IOW, IOWR } from '../../host/ioctl.js';

export const KVMIO = 0xae;

/** The ioctls mapvisor uses, by their <linux/kvm.h> names. */
export const KVM = {
  GET_API_VERSION: IO(KVMIO, 0x00),
  CREATE_VM: IO(KVMIO, 0x01),
  CHECK_EXTENSION: IO(KVMIO, 0x03),
  GET_VCPU_MMAP_SIZE: IO(KVMIO, 0x04),
  GET_SUPPORTED_CPUID: IOWR(KVMIO, 0x05, SIZEOF.kvm_cpuid2),
  CREATE_VCPU: IO(KVMIO, 0x41),
  GET_DIRTY_LOG: IOW(KVMIO, 0x42, SIZEOF.kvm_dirty_log),
  SET_USER_MEMORY_REGION: IOW(KVMIO, 0x46, SIZEOF.kvm_userspace_memory_region),
  SET_TSS_ADDR: IO(KVMIO, 0x47),
  RUN: IO(KVMIO, 0x80),
  GET_REGS: IOR(KVMIO, 0x81, SIZEOF.kvm_regs),
  SET_REGS: IOW(KVMIO, 0x82, SIZEOF.kvm_regs),
  GET_SREGS: IOR(KVMIO, 0x83, SIZEOF.kvm_sregs),
  SET_SREGS: IOW(KVMIO, 0x84, SIZEOF.kvm_sregs),
  GET_MSRS: IOWR(KVMIO, 0x88, SIZEOF.kvm_msrs),
  SET_MSRS: IOW(KVMIO, 0x89, SIZEOF.kvm_msrs),
  GET_FPU: IOR(KVMIO, 0x8c, SIZEOF.kvm_fpu),
  SET_FPU: IOW(KVMIO, 0x8d, SIZEOF.kvm_fpu),
  SET_CPUID2: IOW(KVMIO, 0x90, SIZEOF.kvm_cpuid2),
  ENABLE_CAP: IOW(KVMIO, 0xa3, SIZEOF.kvm_enable_cap),
  GET_XSAVE: IOR(KVMIO, 0xa4, SIZEOF.kvm_xsave),
  SET_XSAVE: IOW(KVMIO, 0xa5, SIZEOF.kvm_xsave),
  GET_XCRS: IOR(KVMIO, 0xa6, SIZEOF.kvm_xcrs),
  SET_XCRS: IOW(KVMIO, 0xa7, SIZEOF.kvm_xcrs),
} as const;

export type KvmIoctlName = keyof typeof KVM;

const names = new Map<number, string>(Object.entries(KVM).map(([name, nr]) => [nr, `KVM_${name}`]));
/** "KVM_RUN" for KVM.RUN, or the number in hex. */
export function ioctlName(request: number): string {
  return names.get(request) ?? `ioctl 0x${request.toString(16)}`;
}

/** KVM_CHECK_EXTENSION capability numbers. */
export const KVM_CAP = {
  IRQCHIP: 0,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_MEMSLOTS: 10,
  SYNC_REGS: 74,
  IMMEDIATE_EXIT: 136,
  XSAVE: 55,
  XCRS: 56,
  READONLY_MEM: 81,
  XSAVE2: 208,
  MEMORY_FAULT_INFO: 232,
} as const;

/** kvm_run.exit_reason values. */
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  MEMORY_FAULT: 39,
} as const;

const exitNames = new Map<number, string>(Object.entries(KVM_EXIT).map(([n, v]) => [v, n]));
export function exitReasonName(reason: number): string {
  return exitNames.get(reason) ?? `EXIT_${reason}`;
}

/** kvm_run.kvm_valid_regs / kvm_dirty_regs bits (KVM_CAP_SYNC_REGS). */
export const KVM_SYNC_X86_REGS = 1;
export const KVM_SYNC_X86_SREGS = 2;
export const KVM_SYNC_X86_EVENTS = 4;
