/**
 * The guest-physical (= guest-virtual: the page tables are an identity map) layout of a mapvisor VM.
 *
 *   0x000000 ┬ supervisor area (2 MiB page, U=0): nothing a CPL3 program can read or write
 *            │ 0x001000 PML4          0x002000 PDPT          0x003000 IDT (256 gates)
 *            │ 0x004000 GDT           0x005000 TSS           0x006000 exception stubs
 *            │ 0x008000..0x010000 exception stack (TSS.RSP0)
 *            │ 0x100000..0x200000 page directories, one 4 KiB PD per GiB of address space
 *   0x200000 ┼ syscall-entry page (2 MiB page, U=1, W=0): the LSTAR stub, and per-vCPU iret frames
 *   0x400000 ┼ user space: ELF segments, heap, mmaps, stack (top of the space)
 *   size     ┴
 *
 * The user area starts at 4 MiB, where classic non-PIE x86-64 executables are linked.
 */
import { MAX_SPACE, PAGE_SIZE } from '../layout.js';
export { PAGE_SIZE, HUGE_PAGE_SIZE, GIB, USER_START, MAX_VCPUS, MIN_SPACE, MAX_SPACE, DEFAULT_SPACE } from '../layout.js';

export const PML4_ADDR = 0x1000;
export const PDPT_ADDR = 0x2000;
export const IDT_ADDR = 0x3000;
export const IDT_ENTRIES = 256;
export const GDT_ADDR = 0x4000;
export const TSS_ADDR = 0x5000;
export const EXCEPTION_STUBS_ADDR = 0x6000;
/** Each exception vector's stub sits at EXCEPTION_STUBS_ADDR + v * EXCEPTION_STUB_STRIDE. */
export const EXCEPTION_STUB_STRIDE = 8;
export const EXCEPTION_STACK_BOTTOM = 0x8000;
export const EXCEPTION_STACK_TOP = 0x10000;
export const PD_AREA_ADDR = 0x10_0000;
export const SUPERVISOR_END = 0x20_0000;

export const SYSCALL_PAGE_ADDR = 0x20_0000;
/** Where the syscall stub's iretq return path finds its frame: 64 bytes per vCPU. */
export const IRET_FRAMES_ADDR = 0x20_1000;
export const IRET_FRAME_STRIDE = 64;


/** Port numbers the stubs use to exit: `out %al, $port`. */
export const SYSCALL_PORT = 0x30;
export const EXCEPTION_PORT_BASE = 0x40; // + vector (0..31)

/** The PD area describes at most 256 GiB (256 PDs of 1 GiB): the largest address space there is. */
export const PD_AREA_GIBS = (0x20_0000 - 0x10_0000) / PAGE_SIZE;
if (PD_AREA_GIBS * 0x4000_0000 !== MAX_SPACE) throw new Error('the PD area does not match MAX_SPACE');

/** Where KVM may put its real-mode TSS (required by KVM_SET_TSS_ADDR on Intel; unused in long mode). */
export const KVM_TSS_ADDR = 0xfffb_d000;

/** GDT selectors, as Linux numbers them so that signal frames and programs see familiar values. */
export const SEL = {
  KERNEL_CS: 0x10,
  KERNEL_DS: 0x18,
  USER32_CS: 0x23,
  USER_DS: 0x2b,
  USER_CS: 0x33,
  TSS: 0x40,
} as const;
export const GDT_ENTRIES = 10; // null, unused, kcs, kds, ucs32, uds, ucs, unused, tss (2 slots)
