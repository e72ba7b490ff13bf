/**
 * The register record every platform keeps a thread's general registers in: struct kvm_regs's layout
 * (18 registers of 8 bytes). The KVM platform's sync area holds it; the process platform's stub writes
 * it into the thread's control slot. One layout, so checkpoints carry the same bytes on both.
 */
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export const REGS: Readonly<Record<RegName, number>> = Object.freeze(
  Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])) as Record<RegName, number>,
);
export const REGS_SIZE = REG_NAMES.length * 8;

/** The FXSAVE image of the x87/SSE state (Intel SDM vol. 1, 10.5.1), the FPU format of every platform. */
export const FXSAVE_SIZE = 512;
export const FX = { cwd: 0, swd: 2, twd: 4, fop: 6, rip: 8, rdp: 16, mxcsr: 24, mxcsr_mask: 28, st: 32, xmm: 160 } as const;

/** The FPU state of a fresh thread (what FNINIT and a reset MXCSR give). */
export function initialFxsave(): Uint8Array {
  const b = new Uint8Array(FXSAVE_SIZE);
  const dv = new DataView(b.buffer);
  dv.setUint16(FX.cwd, 0x37f, true);
  dv.setUint32(FX.mxcsr, 0x1f80, true);
  dv.setUint32(FX.mxcsr_mask, 0xffff, true);
  return b;
}

/** RFLAGS bits: always-1, IF, and those a program may change (as Linux's FIX_EFLAGS plus IF). */
export const RFLAGS_FIXED = 1 << 1;
export const RFLAGS_IF = 1 << 9;
export const RFLAGS_USER_MASK = 0x254dd5 | RFLAGS_IF;
