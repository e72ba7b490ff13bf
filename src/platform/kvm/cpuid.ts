/** The KVM platform's CPU fingerprint, for checkpoints: a hash of the CPUID leaves a program may rely on. */
import { createHash } from 'node:crypto';
import type { CpuidEntry } from './kvm.js';

/**
 * A hash of the CPU features a program may have relied on: vendor, family/model, the feature flags and
 * the XSAVE and address-size leaves. Fields that name the CPU the query ran on (APIC ids in leaf 1 EBX,
 * leaf 0xB/0x1F) are left out, or two queries on one machine would differ.
 */
export function cpuidHash(entries: readonly CpuidEntry[]): string {
  const pick = (fn: number, index: number, regs: Array<'eax' | 'ebx' | 'ecx' | 'edx'>): number[] => {
    const e = entries.find((x) => x.function === fn && x.index === index);
    return e ? regs.map((r) => e[r] >>> 0) : [];
  };
  const features = [
    pick(0, 0, ['eax', 'ebx', 'ecx', 'edx']),
    pick(1, 0, ['eax', 'ecx', 'edx']),
    pick(7, 0, ['ebx', 'ecx', 'edx']),
    pick(0xd, 0, ['eax', 'edx']),
    pick(0xd, 1, ['eax']),
    pick(0x80000001, 0, ['ecx', 'edx']),
    pick(0x80000008, 0, ['eax']),
  ];
  return createHash('sha256').update(JSON.stringify(features)).digest('hex');
}
