/**
 * The program's address space as every platform lays it out: user space is [USER_START, size), the
 * stack at its top; below USER_START is the platform's own (the KVM platform's page tables, GDT and
 * trap stubs; the process platform's stub and control area). The kernel never maps anything there,
 * so a program can never map over, or be handed a pointer into, the platform's own memory.
 */
export const PAGE_SIZE = 0x1000;
export const HUGE_PAGE_SIZE = 0x20_0000;
export const GIB = 0x4000_0000;

/** The first address the program may map: 4 MiB, where classic non-PIE x86-64 executables are linked. */
export const USER_START = 0x40_0000;

/** The most threads (vCPUs, or host threads of the process platform) a program may have at once. */
export const MAX_VCPUS = 64;

/** Address-space sizes (--space): whole GiBs; the KVM platform's page tables describe at most 256 GiB. */
export const MIN_SPACE = 1 * GIB;
export const MAX_SPACE = 256 * GIB;
export const DEFAULT_SPACE = 16 * GIB;

/** Why `size` cannot be an address space, or null when it can. */
export function checkSpaceSize(size: number): string | null {
  if (!Number.isSafeInteger(size) || size % GIB !== 0) return 'must be a whole number of GiB';
  if (size < MIN_SPACE) return `must be at least ${MIN_SPACE / GIB} GiB`;
  if (size > MAX_SPACE) return `must be at most ${MAX_SPACE / GIB} GiB`;
  return null;
}
