/**
 * Segment descriptors (GDT), the 64-bit TSS and the IDT, encoded as the CPU reads them
 * (Intel SDM vol. 3, 3.4.5 "Segment Descriptors", 7.7 "Task Management in 64-bit Mode", 6.14.1
 * "64-Bit Mode IDT").
 */
import { setU64 } from './structs.js';
import type { Segment } from './structs.js';
import {
  EXCEPTION_PORT_BASE,
  EXCEPTION_STACK_TOP,
  EXCEPTION_STUBS_ADDR,
  EXCEPTION_STUB_STRIDE,
  GDT_ADDR,
  GDT_ENTRIES,
  IDT_ADDR,
  IDT_ENTRIES,
  SEL,
  SYSCALL_PORT,
  TSS_ADDR,
} from './layout.js';

/** Access bytes (P, DPL, S, type) and flag nibbles (G, D/B, L) of the segments mapvisor uses. */
const ACCESS_KERNEL_CODE = 0x9b; // present, DPL0, code, execute/read, accessed
const ACCESS_KERNEL_DATA = 0x93; // present, DPL0, data, read/write, accessed
const ACCESS_USER_CODE = 0xfb; // present, DPL3, code, execute/read, accessed
const ACCESS_USER_DATA = 0xf3; // present, DPL3, data, read/write, accessed
const ACCESS_TSS = 0x89; // present, DPL0, system, available 64-bit TSS
const FLAGS_LONG_CODE = 0xa; // G=1, L=1
const FLAGS_COMPAT_CODE = 0xc; // G=1, D=1 (32-bit code segment, unused but Linux-shaped)
const FLAGS_DATA = 0xc; // G=1, B=1

const TSS_BASE_SIZE = 0x68; // the 64-bit TSS proper: 104 bytes
const TSS_RSP0 = 0x04;
const TSS_IOMAP_BASE = 0x66;
/** Ports the trap stubs exit through: 0x30 (syscall) and 0x40..0x5f (exception vectors). */
export const STUB_PORTS: readonly number[] = [SYSCALL_PORT, ...Array.from({ length: 32 }, (_, v) => EXCEPTION_PORT_BASE + v)];
/** The I/O permission bitmap covers ports 0..IOMAP_PORTS-1, then a terminating 0xff byte. */
const IOMAP_PORTS = 0x60;
const IOMAP_BYTES = IOMAP_PORTS / 8 + 1;
/** The TSS with its I/O permission bitmap. */
export const TSS_SIZE = TSS_BASE_SIZE + IOMAP_BYTES;

/** One 8-byte code/data descriptor. `flags` is the G/D/L/AVL nibble. */
export function segmentDescriptor(base: number, limit: number, access: number, flags: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit >>> 0);
  return (
    (l & 0xffffn) |
    ((b & 0xffffffn) << 16n) |
    (BigInt(access & 0xff) << 40n) |
    (((l >> 16n) & 0xfn) << 48n) |
    (BigInt(flags & 0xf) << 52n) |
    (((b >> 24n) & 0xffn) << 56n)
  );
}

/** The 16-byte 64-bit TSS descriptor, as two 8-byte GDT slots. */
export function tssDescriptor(base: number, limit: number): [bigint, bigint] {
  const low = segmentDescriptor(base, limit, ACCESS_TSS, 0);
  const high = BigInt(Math.floor(base / 2 ** 32));
  return [low, high];
}

/** Write the GDT (Linux's selector numbering) and the TSS into guest memory viewed from address 0. */
export function buildGdtAndTss(mem: DataView): void {
  const put = (sel: number, d: bigint): void => mem.setBigUint64(GDT_ADDR + sel, d, true);
  for (let i = 0; i < GDT_ENTRIES; i++) mem.setBigUint64(GDT_ADDR + 8 * i, 0n, true);
  put(SEL.KERNEL_CS, segmentDescriptor(0, 0xfffff, ACCESS_KERNEL_CODE, FLAGS_LONG_CODE));
  put(SEL.KERNEL_DS, segmentDescriptor(0, 0xfffff, ACCESS_KERNEL_DATA, FLAGS_DATA));
  put(SEL.USER32_CS & ~3, segmentDescriptor(0, 0xfffff, ACCESS_USER_CODE, FLAGS_COMPAT_CODE));
  put(SEL.USER_DS & ~3, segmentDescriptor(0, 0xfffff, ACCESS_USER_DATA, FLAGS_DATA));
  put(SEL.USER_CS & ~3, segmentDescriptor(0, 0xfffff, ACCESS_USER_CODE, FLAGS_LONG_CODE));
  const [lo, hi] = tssDescriptor(TSS_ADDR, TSS_SIZE - 1);
  put(SEL.TSS, lo);
  put(SEL.TSS + 8, hi);
  // The TSS: RSP0 (the stack the CPU switches to on an exception from CPL3) and an I/O permission
  // bitmap that opens exactly the stub ports. kvm_pvm runs the syscall entry at CPL3 (CS stays the
  // user's), so its `out` needs the bitmap; on hardware KVM the stub runs at CPL0 and the bitmap only
  // lets a program exit through a stub port itself, which is no more than a `syscall` can do.
  for (let i = 0; i < TSS_SIZE; i++) mem.setUint8(TSS_ADDR + i, 0);
  setU64(mem, TSS_ADDR + TSS_RSP0, EXCEPTION_STACK_TOP);
  mem.setUint16(TSS_ADDR + TSS_IOMAP_BASE, TSS_BASE_SIZE, true);
  for (let i = 0; i < IOMAP_BYTES; i++) mem.setUint8(TSS_ADDR + TSS_BASE_SIZE + i, 0xff); // 1 = denied
  for (const port of STUB_PORTS) {
    const at = TSS_ADDR + TSS_BASE_SIZE + (port >> 3);
    mem.setUint8(at, mem.getUint8(at) & ~(1 << (port & 7)));
  }
}

export const GDT_LIMIT = GDT_ENTRIES * 8 - 1;
export const IDT_LIMIT = IDT_ENTRIES * 16 - 1;

const GATE_INTERRUPT = 0x8e; // present, DPL0, 64-bit interrupt gate
const GATE_INTERRUPT_USER = 0xee; // present, DPL3: `int3` and `into` may be raised from CPL3

/** One 16-byte interrupt gate to `handler` in the kernel code segment. */
export function interruptGate(handler: number, access: number): [bigint, bigint] {
  const h = BigInt(handler);
  const low =
    (h & 0xffffn) | (BigInt(SEL.KERNEL_CS) << 16n) | (BigInt(access) << 40n) | (((h >> 16n) & 0xffffn) << 48n);
  return [low, (h >> 32n) & 0xffffffffn];
}

/** Exception vectors that push an error code (Intel SDM vol. 3, table 6-1). */
export const VECTORS_WITH_ERROR_CODE: ReadonlySet<number> = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

/** Write the IDT: vectors 0..31 reach their exit stubs; the rest are not present (→ #GP → SIGSEGV). */
export function buildIdt(mem: DataView): void {
  for (let v = 0; v < IDT_ENTRIES; v++) {
    let lo = 0n;
    let hi = 0n;
    if (v < 32) {
      const access = v === 3 || v === 4 ? GATE_INTERRUPT_USER : GATE_INTERRUPT;
      [lo, hi] = interruptGate(EXCEPTION_STUBS_ADDR + v * EXCEPTION_STUB_STRIDE, access);
    }
    mem.setBigUint64(IDT_ADDR + v * 16, lo, true);
    mem.setBigUint64(IDT_ADDR + v * 16 + 8, hi, true);
  }
}

/** Segment registers as KVM_SET_SREGS wants them for a program running at CPL3. */
export function userCodeSegment(): Segment {
  return { base: 0, limit: 0xffffffff, selector: SEL.USER_CS, type: 11, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 };
}
export function userDataSegment(base = 0): Segment {
  return { base, limit: 0xffffffff, selector: SEL.USER_DS, type: 3, present: 1, dpl: 3, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 };
}
export function taskSegment(): Segment {
  return { base: TSS_ADDR, limit: TSS_SIZE - 1, selector: SEL.TSS, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
}
export function nullSegment(): Segment {
  return { base: 0, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1 };
}
