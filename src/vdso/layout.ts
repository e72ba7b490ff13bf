/**
 * The vvar page: what the kernel keeps for the vDSO, one page below its ELF header. The same layout as
 * `struct vdso_data` in vdso.h (test/unit/vdso.test.ts compiles a probe that checks every offset).
 */
export const VVAR = {
  seq: 0, // u32: odd while the kernel writes
  flags: 4, // u32: VDSO_FLAG
  tscBase: 8, // u64: the program's TSC at the base point
  monoBaseNs: 16, // u64: CLOCK_MONOTONIC at tscBase
  mult: 24, // u64: ns since the base = (tsc - tscBase) * mult >> shift
  shift: 32, // u32
  ncpus: 36, // u32: CPUs the program sees
  realOffsetNs: 40, // i64: CLOCK_REALTIME - CLOCK_MONOTONIC
  bootOffsetNs: 48, // i64: CLOCK_BOOTTIME - CLOCK_MONOTONIC
  taiOffsetNs: 56, // i64: CLOCK_TAI - CLOCK_REALTIME
  coarseResNs: 64, // u64: resolution of the *_COARSE clocks
} as const;
export const VVAR_SIZE = 72;

export const VDSO_FLAG = {
  /** The clocks on the page are valid (else the vDSO makes the system call). */
  tsc: 1,
  /** rdtscp's TSC_AUX holds the vCPU's number: getcpu needs no system call. */
  cpuAux: 2,
  /** Every thread is on CPU 0 (the kernel's getcpu and rseq answer the same). */
  cpuZero: 4,
} as const;
