/*
 * The page the mapvisor kernel keeps for the vDSO (the "vvar" page, one page below the vDSO's ELF
 * header). Offsets are fixed: src/vdso/layout.ts writes the same fields with DataView, and
 * test/unit/vdso.test.ts checks both sides agree.
 */
#ifndef MAPVISOR_VDSO_H
#define MAPVISOR_VDSO_H
#include <stdint.h>

#define VDSO_FLAG_TSC 1u    /* the TSC clocks below are valid; else every call is a system call */
#define VDSO_FLAG_CPU_AUX 2u /* rdtscp's TSC_AUX holds the vCPU number (getcpu needs no system call) */
#define VDSO_FLAG_CPU_ZERO 4u /* every thread is on CPU 0, as the kernel's getcpu and rseq say */

struct vdso_data {
  uint32_t seq;            /*  0: odd while the kernel writes (a seqlock) */
  uint32_t flags;          /*  4: VDSO_FLAG_* */
  uint64_t tsc_base;       /*  8: the program's TSC at the base point */
  uint64_t mono_base_ns;   /* 16: CLOCK_MONOTONIC at tsc_base, in ns */
  uint64_t mult;           /* 24: ns since the base = (tsc - tsc_base) * mult >> shift */
  uint32_t shift;          /* 32 */
  uint32_t ncpus;          /* 36: CPUs the program sees (getcpu folds TSC_AUX into them) */
  int64_t real_offset_ns;  /* 40: CLOCK_REALTIME - CLOCK_MONOTONIC */
  int64_t boot_offset_ns;  /* 48: CLOCK_BOOTTIME - CLOCK_MONOTONIC */
  int64_t tai_offset_ns;   /* 56: CLOCK_TAI - CLOCK_REALTIME */
  uint64_t coarse_res_ns;  /* 64: resolution of the *_COARSE clocks */
};
#define VDSO_DATA_SIZE 72

#endif
