/**
 * The KVM structure layouts and ioctl numbers in src/platform/kvm, checked against <linux/kvm.h> as the host's C
 * compiler sees it: a small C program prints every offsetof/sizeof/ioctl value and the test compares.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KVM } from '../../src/platform/kvm/ioctl.js';
import {
  CPUID_ENTRY,
  DIRTY_LOG,
  FPU,
  MEMREGION,
  MSR_ENTRY,
  REGS,
  RUN,
  RUN_IO,
  SEG,
  SIZEOF,
  SREGS,
  SYNC,
  XCRS,
} from '../../src/platform/kvm/structs.js';
import { STAT, STAT_SIZE } from '../../src/abi/stat.js';

/** name → [expected value from TypeScript, C expression]. */
const checks: Array<[string, number, string]> = [
  ['sizeof kvm_regs', SIZEOF.kvm_regs, 'sizeof(struct kvm_regs)'],
  ['sizeof kvm_segment', SIZEOF.kvm_segment, 'sizeof(struct kvm_segment)'],
  ['sizeof kvm_dtable', SIZEOF.kvm_dtable, 'sizeof(struct kvm_dtable)'],
  ['sizeof kvm_sregs', SIZEOF.kvm_sregs, 'sizeof(struct kvm_sregs)'],
  ['sizeof kvm_userspace_memory_region', SIZEOF.kvm_userspace_memory_region, 'sizeof(struct kvm_userspace_memory_region)'],
  ['sizeof kvm_cpuid_entry2', SIZEOF.kvm_cpuid_entry2, 'sizeof(struct kvm_cpuid_entry2)'],
  ['sizeof kvm_cpuid2', SIZEOF.kvm_cpuid2, 'sizeof(struct kvm_cpuid2)'],
  ['sizeof kvm_msr_entry', SIZEOF.kvm_msr_entry, 'sizeof(struct kvm_msr_entry)'],
  ['sizeof kvm_msrs', SIZEOF.kvm_msrs, 'sizeof(struct kvm_msrs)'],
  ['sizeof kvm_fpu', SIZEOF.kvm_fpu, 'sizeof(struct kvm_fpu)'],
  ['sizeof kvm_xsave', SIZEOF.kvm_xsave, 'sizeof(struct kvm_xsave)'],
  ['sizeof kvm_xcrs', SIZEOF.kvm_xcrs, 'sizeof(struct kvm_xcrs)'],
  ['sizeof kvm_dirty_log', SIZEOF.kvm_dirty_log, 'sizeof(struct kvm_dirty_log)'],
  ['sizeof kvm_enable_cap', SIZEOF.kvm_enable_cap, 'sizeof(struct kvm_enable_cap)'],
  ['sizeof struct stat', STAT_SIZE, 'sizeof(struct stat)'],
  ...Object.entries(REGS).map(([k, v]): [string, number, string] => [`kvm_regs.${k}`, v, `offsetof(struct kvm_regs, ${k})`]),
  ...Object.entries(SEG).map(([k, v]): [string, number, string] => [`kvm_segment.${k}`, v, `offsetof(struct kvm_segment, ${k})`]),
  ...Object.entries(SREGS).map(([k, v]): [string, number, string] => [`kvm_sregs.${k}`, v, `offsetof(struct kvm_sregs, ${k})`]),
  ...Object.entries(MEMREGION).map(([k, v]): [string, number, string] => [`memory_region.${k}`, v, `offsetof(struct kvm_userspace_memory_region, ${k})`]),
  ...Object.entries(CPUID_ENTRY).map(([k, v]): [string, number, string] => [`cpuid_entry2.${k}`, v, `offsetof(struct kvm_cpuid_entry2, ${k})`]),
  ...Object.entries(MSR_ENTRY).map(([k, v]): [string, number, string] => [`msr_entry.${k}`, v, `offsetof(struct kvm_msr_entry, ${k})`]),
  ...Object.entries(FPU).map(([k, v]): [string, number, string] => [`kvm_fpu.${k}`, v, `offsetof(struct kvm_fpu, ${k})`]),
  ['kvm_xcrs.nr_xcrs', XCRS.nr_xcrs, 'offsetof(struct kvm_xcrs, nr_xcrs)'],
  ['kvm_xcrs.xcrs', XCRS.xcrs, 'offsetof(struct kvm_xcrs, xcrs)'],
  ['kvm_dirty_log.slot', DIRTY_LOG.slot, 'offsetof(struct kvm_dirty_log, slot)'],
  ['kvm_dirty_log.dirty_bitmap', DIRTY_LOG.dirty_bitmap, 'offsetof(struct kvm_dirty_log, dirty_bitmap)'],
  ['kvm_run.immediate_exit', RUN.immediate_exit, 'offsetof(struct kvm_run, immediate_exit)'],
  ['kvm_run.exit_reason', RUN.exit_reason, 'offsetof(struct kvm_run, exit_reason)'],
  ['kvm_run.io.direction', RUN_IO.direction, 'offsetof(struct kvm_run, io.direction)'],
  ['kvm_run.io.port', RUN_IO.port, 'offsetof(struct kvm_run, io.port)'],
  ['kvm_run.io.data_offset', RUN_IO.data_offset, 'offsetof(struct kvm_run, io.data_offset)'],
  ['kvm_run.kvm_valid_regs', RUN.kvm_valid_regs, 'offsetof(struct kvm_run, kvm_valid_regs)'],
  ['kvm_run.kvm_dirty_regs', RUN.kvm_dirty_regs, 'offsetof(struct kvm_run, kvm_dirty_regs)'],
  ['kvm_run.s.regs.regs', SYNC.regs, 'offsetof(struct kvm_run, s.regs.regs)'],
  ['kvm_run.s.regs.sregs', SYNC.sregs, 'offsetof(struct kvm_run, s.regs.sregs)'],
  ['kvm_run.s.regs.events', SYNC.events, 'offsetof(struct kvm_run, s.regs.events)'],
  // struct stat's times are struct timespec st_atim etc.: *_nsec is the tv_sec offset + 8.
  ...Object.entries(STAT).map(([k, v]): [string, number, string] => [
    `stat.${k}`,
    v,
    `offsetof(struct stat, st_${k.replace('_nsec', '').replace(/^(a|m|c)time$/, '$1tim.tv_sec')})${k.endsWith('_nsec') ? '+8' : ''}`,
  ]),
  ...Object.entries(KVM).map(([k, v]): [string, number, string] => [`KVM_${k}`, v, `(unsigned long)KVM_${k}`]),
];

test('struct layouts and ioctl numbers match the C headers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-structs-'));
  try {
    const lines = checks.map(([, , expr]) => `  printf("%lu\\n", (unsigned long)(${expr}));`);
    const src = `#include <stdio.h>\n#include <stddef.h>\n#include <sys/stat.h>\n#include <linux/kvm.h>\nint main(void){\n${lines.join('\n')}\n  return 0;\n}\n`;
    writeFileSync(join(dir, 'layout.c'), src);
    execFileSync('gcc', ['-o', join(dir, 'layout'), join(dir, 'layout.c')]);
    const got = execFileSync(join(dir, 'layout'), { encoding: 'utf8' }).trim().split('\n').map(Number);
    assert.equal(got.length, checks.length);
    checks.forEach(([name, want], i) => assert.equal(want, got[i], `${name}: TypeScript says ${want}, C says ${got[i]}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
