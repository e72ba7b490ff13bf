/**
 * The architectural state a vCPU starts with: long mode with the identity map, Linux-shaped segments,
 * the syscall MSRs pointing at the stub, CPUID from KVM, and XSAVE enabled when KVM allows it.
 */
import type { CpuidEntry, KvmSystem, VcpuFd } from './kvm.js';
import { KVM } from './ioctl.js';
import { DTABLE, REGS, SIZEOF, SREGS, setU64, writeSegment } from './structs.js';
import { GDT_LIMIT, IDT_LIMIT, nullSegment, taskSegment, userCodeSegment, userDataSegment } from './descriptors.js';
import { GDT_ADDR, IDT_ADDR, PML4_ADDR, SEL, SYSCALL_PAGE_ADDR } from './layout.js';

export const MSR_EFER = 0xc0000080;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SYSCALL_MASK = 0xc0000084;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;

export const CR0_PE = 1 << 0;
export const CR0_MP = 1 << 1;
export const CR0_ET = 1 << 4;
export const CR0_NE = 1 << 5;
export const CR0_WP = 1 << 16;
export const CR0_AM = 1 << 18;
export const CR0_PG = 2 ** 31;
export const CR4_PAE = 1 << 5;
export const CR4_OSFXSR = 1 << 9;
export const CR4_OSXMMEXCPT = 1 << 10;
export const CR4_OSXSAVE = 1 << 18;
export const EFER_SCE = 1 << 0;
export const EFER_LME = 1 << 8;
export const EFER_LMA = 1 << 10;

/** RFLAGS bits; the flags a program may own are Linux's FIX_EFLAGS (AC, OF, DF, TF, SF, ZF, AF, PF, CF, ID, RF) and IF. */
import { RFLAGS_FIXED, RFLAGS_IF } from '../regs.js';
export { RFLAGS_FIXED, RFLAGS_IF, RFLAGS_USER_MASK } from '../regs.js';

/** Flags cleared on `syscall` entry (Linux: TF, DF, IF, IOPL, AC, NT). */
export const SYSCALL_FLAG_MASK = 0x47700;

/** XCR0 components mapvisor enables when KVM offers them: x87, SSE, AVX, and the AVX-512 states. */
export const XCR0_X87 = 1n;
export const XCR0_SSE = 2n;
export const XCR0_AVX = 4n;
export const XCR0_WANTED = XCR0_X87 | XCR0_SSE | XCR0_AVX | 0xe0n; // opmask, ZMM_Hi256, Hi16_ZMM

export interface CpuFeatures {
  cpuid: CpuidEntry[];
  /** XCR0 set on every vCPU, or null when XSAVE is off (then AVX is hidden from CPUID). */
  xcr0: bigint | null;
}

function leaf(cpuid: readonly CpuidEntry[], fn: number, index = 0): CpuidEntry | undefined {
  return cpuid.find((e) => e.function === fn && e.index === index);
}

/** The XCR0 KVM supports (CPUID.0xD.0 EAX:EDX) masked to what mapvisor wants, or null without XSAVE. */
export function chooseXcr0(cpuid: readonly CpuidEntry[]): bigint | null {
  const l1 = leaf(cpuid, 1);
  if (!l1 || !(l1.ecx & (1 << 26))) return null; // no XSAVE
  const d = leaf(cpuid, 0xd, 0);
  if (!d) return null;
  const supported = BigInt(d.eax >>> 0) | (BigInt(d.edx >>> 0) << 32n);
  let x = supported & XCR0_WANTED;
  if ((x & 0xe0n) !== 0xe0n) x &= ~0xe0n; // the AVX-512 states go together or not at all
  return (x & (XCR0_X87 | XCR0_SSE)) === (XCR0_X87 | XCR0_SSE) ? x : null;
}

/** CPUID with AVX (and everything that needs XSAVE state) hidden, for a KVM that cannot enable XSAVE. */
export function hideXsaveFeatures(cpuid: readonly CpuidEntry[]): CpuidEntry[] {
  return cpuid.map((e) => {
    const c = { ...e };
    if (c.function === 1) c.ecx &= ~((1 << 26) | (1 << 27) | (1 << 28) | (1 << 12) | (1 << 29)); // XSAVE, OSXSAVE, AVX, FMA, F16C
    if (c.function === 7 && c.index === 0) c.ebx &= ~((1 << 5) | (1 << 16) | (1 << 17) | (1 << 28) | (1 << 30) | (1 << 31) | (1 << 21) | (1 << 26) | (1 << 27));
    return c;
  });
}

/** Decide the CPU features once per VM (the same for every vCPU). */
export function cpuFeatures(system: KvmSystem): CpuFeatures {
  const cpuid = system.supportedCpuid();
  return { cpuid, xcr0: chooseXcr0(cpuid) };
}

/** Put a fresh vCPU into 64-bit CPL3 state at `rip` with stack `rsp`. Returns the XCR0 in force. */
export function initVcpu(vcpu: VcpuFd, features: CpuFeatures, rip: number, rsp: number): bigint | null {
  let xcr0 = features.xcr0;
  let cpuid = features.cpuid;
  if (xcr0 === null) cpuid = hideXsaveFeatures(cpuid);
  vcpu.setCpuid(cpuid);

  const sregs = vcpu.get(KVM.GET_SREGS, SIZEOF.kvm_sregs);
  const dv = new DataView(sregs.buffer, sregs.byteOffset, sregs.length);
  writeSegment(dv, SREGS.cs, userCodeSegment());
  for (const s of [SREGS.ds, SREGS.es, SREGS.ss, SREGS.fs, SREGS.gs]) writeSegment(dv, s, userDataSegment());
  writeSegment(dv, SREGS.tr, taskSegment());
  writeSegment(dv, SREGS.ldt, nullSegment());
  setU64(dv, SREGS.gdt + DTABLE.base, GDT_ADDR);
  dv.setUint16(SREGS.gdt + DTABLE.limit, GDT_LIMIT, true);
  setU64(dv, SREGS.idt + DTABLE.base, IDT_ADDR);
  dv.setUint16(SREGS.idt + DTABLE.limit, IDT_LIMIT, true);
  setU64(dv, SREGS.cr0, CR0_PG + (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM));
  setU64(dv, SREGS.cr3, PML4_ADDR);
  setU64(dv, SREGS.cr4, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | (xcr0 !== null ? CR4_OSXSAVE : 0));
  setU64(dv, SREGS.efer, EFER_SCE | EFER_LME | EFER_LMA);
  vcpu.set(KVM.SET_SREGS, sregs);

  if (xcr0 !== null) {
    try {
      vcpu.setXcr0(xcr0);
    } catch {
      // This KVM refused XCR0: run without XSAVE and hide what needs it.
      xcr0 = null;
      vcpu.setCpuid(hideXsaveFeatures(features.cpuid));
      const s2 = vcpu.get(KVM.GET_SREGS, SIZEOF.kvm_sregs);
      const d2 = new DataView(s2.buffer, s2.byteOffset, s2.length);
      setU64(d2, SREGS.cr4, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT);
      vcpu.set(KVM.SET_SREGS, s2);
    }
  }

  vcpu.setMsrs([
    // SYSCALL loads CS = STAR[47:32] (kernel CS), SS = +8; SYSRET would use STAR[63:48] + 16 / + 8.
    [MSR_STAR, (BigInt(SEL.USER32_CS) << 48n) | (BigInt(SEL.KERNEL_CS) << 32n)],
    [MSR_LSTAR, SYSCALL_PAGE_ADDR],
    [MSR_CSTAR, 0],
    [MSR_SYSCALL_MASK, SYSCALL_FLAG_MASK],
    [MSR_KERNEL_GS_BASE, 0],
  ]);

  const regs = Buffer.alloc(SIZEOF.kvm_regs);
  const rv = new DataView(regs.buffer, regs.byteOffset, regs.length);
  setU64(rv, REGS.rip, rip);
  setU64(rv, REGS.rsp, rsp);
  setU64(rv, REGS.rflags, RFLAGS_FIXED | RFLAGS_IF);
  vcpu.set(KVM.SET_REGS, regs);
  return xcr0;
}
