/**
 * Byte layouts of the KVM structures mapvisor exchanges with the kernel (x86-64, <linux/kvm.h> and
 * <asm/kvm.h>). Each structure is a table of named offsets plus its size; test/unit/structs.test.ts
 * checks every offset and size against the C headers compiled on the machine.
 */

export const SIZEOF = {
  kvm_regs: 144,
  kvm_segment: 24,
  kvm_dtable: 16,
  kvm_sregs: 312,
  kvm_userspace_memory_region: 32,
  kvm_cpuid_entry2: 40,
  kvm_cpuid2: 8, // header; entries follow
  kvm_msr_entry: 16,
  kvm_msrs: 8, // header; entries follow
  kvm_fpu: 416,
  kvm_xsave: 4096,
  kvm_xcr: 16,
  kvm_xcrs: 392,
  kvm_dirty_log: 16,
  kvm_enable_cap: 104,
  kvm_sync_regs_area: 2048,
} as const;

/** struct kvm_regs: 18 general registers, 8 bytes each (the platform-neutral register record). */
export { REG_NAMES, REGS, type RegName } from '../regs.js';

/** struct kvm_segment. */
export const SEG = {
  base: 0, // u64
  limit: 8, // u32
  selector: 12, // u16
  type: 14, // u8
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
  padding: 23,
} as const;

/** struct kvm_dtable. */
export const DTABLE = { base: 0, limit: 8 } as const;

/** struct kvm_sregs. */
export const SREGS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apic_base: 272,
  interrupt_bitmap: 280, // u64[4]
} as const;
export type SegName = 'cs' | 'ds' | 'es' | 'fs' | 'gs' | 'ss' | 'tr' | 'ldt';

/** struct kvm_userspace_memory_region. */
export const MEMREGION = {
  slot: 0, // u32
  flags: 4, // u32
  guest_phys_addr: 8, // u64
  memory_size: 16, // u64
  userspace_addr: 24, // u64
} as const;
export const KVM_MEM_LOG_DIRTY_PAGES = 1;
export const KVM_MEM_READONLY = 2;

/** struct kvm_cpuid_entry2 (entries follow a kvm_cpuid2 header {nent u32, padding u32}). */
export const CPUID_ENTRY = { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 } as const;
export const CPUID2 = { nent: 0, entries: 8 } as const;

/** struct kvm_msr_entry (entries follow a kvm_msrs header {nmsrs u32, pad u32}). */
export const MSR_ENTRY = { index: 0, data: 8 } as const;
export const MSRS = { nmsrs: 0, entries: 8 } as const;

/** struct kvm_fpu. */
export const FPU = {
  fpr: 0, // u8[8][16]
  fcw: 128, // u16
  fsw: 130,
  ftwx: 132, // u8
  last_opcode: 134, // u16
  last_ip: 136, // u64
  last_dp: 144,
  xmm: 152, // u8[16][16]
  mxcsr: 408, // u32
} as const;

/** struct kvm_xcrs: {nr_xcrs u32, flags u32, xcrs[16] {xcr u32, reserved u32, value u64}, padding u64[16]}. */
export const XCRS = { nr_xcrs: 0, flags: 4, xcrs: 8 } as const;
export const XCR = { xcr: 0, value: 8 } as const;

/** struct kvm_dirty_log. */
export const DIRTY_LOG = { slot: 0, dirty_bitmap: 8 } as const;

/** struct kvm_enable_cap. */
export const ENABLE_CAP = { cap: 0, flags: 4, args: 8 } as const;

/** struct kvm_run (the vCPU's shared page). The exit-specific union starts at 32. */
export const RUN = {
  request_interrupt_window: 0, // u8
  immediate_exit: 1, // u8
  exit_reason: 8, // u32
  ready_for_interrupt_injection: 12,
  if_flag: 13,
  flags: 14, // u16
  cr8: 16,
  apic_base: 24,
  exit: 32, // union, 256 bytes
  kvm_valid_regs: 288, // u64
  kvm_dirty_regs: 296, // u64
  s: 304, // union kvm_sync_regs, 2048 bytes
} as const;
/** kvm_run.io (KVM_EXIT_IO). */
export const RUN_IO = { direction: 32, size: 33, port: 34, count: 36, data_offset: 40 } as const;
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;
/** kvm_run.fail_entry. */
export const RUN_FAIL_ENTRY = { hardware_entry_failure_reason: 32, cpu: 40 } as const;
/** kvm_run.internal (KVM_EXIT_INTERNAL_ERROR). */
export const RUN_INTERNAL = { suberror: 32, ndata: 36, data: 40 } as const;
/** kvm_run.memory_fault (KVM_EXIT_MEMORY_FAULT, with KVM_CAP_MEMORY_FAULT_INFO). */
export const RUN_MEMORY_FAULT = { flags: 32, gpa: 40, size: 48 } as const;
export const KVM_MEMORY_EXIT_FLAG_PRIVATE = 1 << 3;
/** struct kvm_sync_regs inside kvm_run.s: regs, then sregs, then events. */
export const SYNC = { regs: RUN.s, sregs: RUN.s + SIZEOF.kvm_regs, events: RUN.s + SIZEOF.kvm_regs + SIZEOF.kvm_sregs } as const;

/** A segment descriptor as KVM holds it. */
export interface Segment {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export function readSegment(dv: DataView, at: number): Segment {
  return {
    base: Number(dv.getBigUint64(at + SEG.base, true)),
    limit: dv.getUint32(at + SEG.limit, true),
    selector: dv.getUint16(at + SEG.selector, true),
    type: dv.getUint8(at + SEG.type),
    present: dv.getUint8(at + SEG.present),
    dpl: dv.getUint8(at + SEG.dpl),
    db: dv.getUint8(at + SEG.db),
    s: dv.getUint8(at + SEG.s),
    l: dv.getUint8(at + SEG.l),
    g: dv.getUint8(at + SEG.g),
    avl: dv.getUint8(at + SEG.avl),
    unusable: dv.getUint8(at + SEG.unusable),
  };
}

export function writeSegment(dv: DataView, at: number, s: Segment): void {
  dv.setBigUint64(at + SEG.base, BigInt(s.base), true);
  dv.setUint32(at + SEG.limit, s.limit, true);
  dv.setUint16(at + SEG.selector, s.selector, true);
  dv.setUint8(at + SEG.type, s.type);
  dv.setUint8(at + SEG.present, s.present);
  dv.setUint8(at + SEG.dpl, s.dpl);
  dv.setUint8(at + SEG.db, s.db);
  dv.setUint8(at + SEG.s, s.s);
  dv.setUint8(at + SEG.l, s.l);
  dv.setUint8(at + SEG.g, s.g);
  dv.setUint8(at + SEG.avl, s.avl);
  dv.setUint8(at + SEG.unusable, s.unusable);
  dv.setUint8(at + SEG.padding, 0);
}

/** Read a u64 as a JavaScript number (exact below 2^53; guest addresses and sizes are). */
export function getU64(dv: DataView, at: number): number {
  return dv.getUint32(at, true) + dv.getUint32(at + 4, true) * 0x1_0000_0000;
}
/** Write a non-negative number < 2^64 as a u64. */
export function setU64(dv: DataView, at: number, v: number): void {
  dv.setUint32(at, v >>> 0, true);
  dv.setUint32(at + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
}
