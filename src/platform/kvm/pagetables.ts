/**
 * The identity map: PML4 → one PDPT → one page directory per GiB, 2 MiB pages. Built once before the
 * first KVM_RUN and never changed (kvm_pvm's shadow MMU does not see host-side page-table writes, and
 * `invlpg`/`mov cr3` fault there): all later memory management is host mmap/mprotect in the window.
 */
import { getU64, setU64 } from './structs.js';
import { checkSpaceSize } from '../layout.js';
export { checkSpaceSize };
import {
  GIB,
  HUGE_PAGE_SIZE,
  PAGE_SIZE,
  PD_AREA_ADDR,
  PDPT_ADDR,
  PML4_ADDR,
  SUPERVISOR_END,
  SYSCALL_PAGE_ADDR,
} from './layout.js';

export const PTE_P = 1 << 0; // present
export const PTE_W = 1 << 1; // writable
export const PTE_U = 1 << 2; // user-accessible
export const PTE_PS = 1 << 7; // 2 MiB page (in a PD entry)

/** The flags of the 2 MiB page at `addr`: supervisor-only, the read-only syscall page, or user RW. */
export function hugePageFlags(addr: number): number {
  if (addr < SUPERVISOR_END) return PTE_P | PTE_W | PTE_PS; // page tables, GDT, IDT, TSS, stubs: U=0
  if (addr === SYSCALL_PAGE_ADDR) return PTE_P | PTE_U | PTE_PS; // syscall stub: user-readable, read-only
  return PTE_P | PTE_W | PTE_U | PTE_PS; // user memory: the host mapping decides what really exists
}

/** Check that an address-space size is usable: whole GiBs, between MIN_SPACE and MAX_SPACE. */

/**
 * Write the page tables for an identity map of [0, size) into `mem`, a view of guest-physical memory
 * starting at address 0 that covers at least the supervisor area.
 */
export function buildPageTables(mem: DataView, size: number): void {
  const problem = checkSpaceSize(size);
  if (problem) throw new RangeError(`address space size ${size}: ${problem}`);
  const gibs = size / GIB;
  // PML4[0] covers 512 GiB: enough for any allowed size.
  setU64(mem, PML4_ADDR, PDPT_ADDR | PTE_P | PTE_W | PTE_U);
  for (let g = 0; g < gibs; g++) {
    const pd = PD_AREA_ADDR + g * PAGE_SIZE;
    setU64(mem, PDPT_ADDR + g * 8, pd | PTE_P | PTE_W | PTE_U);
    for (let i = 0; i < 512; i++) {
      const addr = g * GIB + i * HUGE_PAGE_SIZE;
      setU64(mem, pd + i * 8, addr + hugePageFlags(addr));
    }
  }
}

/** Walk the tables in `mem` for `addr` as the MMU would: the 2 MiB frame and effective flags, or null. */
export function translate(mem: DataView, addr: number): { frame: number; flags: number } | null {
  const entry = (table: number, index: number): number => getU64(mem, table + index * 8);
  const frameOf = (e: number): number => e - (e % PAGE_SIZE) - Math.floor(e / 2 ** 52) * 2 ** 52;
  const e4 = entry(PML4_ADDR, Math.floor(addr / 2 ** 39) % 512);
  if (!(e4 & PTE_P)) return null;
  const e3 = entry(frameOf(e4), Math.floor(addr / GIB) % 512);
  if (!(e3 & PTE_P)) return null;
  const e2 = entry(frameOf(e3), Math.floor(addr / HUGE_PAGE_SIZE) % 512);
  if (!(e2 & PTE_P) || !(e2 & PTE_PS)) return null;
  return { frame: frameOf(e2) - (frameOf(e2) % HUGE_PAGE_SIZE), flags: e4 & e3 & e2 & (PTE_P | PTE_W | PTE_U) };
}
