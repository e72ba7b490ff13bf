/**
 * /proc/cpuinfo as Linux writes it: one block per CPU the program is given (--cpus), each with the
 * host CPU's vendor, family, model, caches and address sizes, and the feature flags the program really
 * has. On `process` the program runs on the host CPU under the host kernel: every host flag holds. On
 * `kvm` the program's instructions run natively on the host CPU too, so an instruction-set flag of the
 * host's holds there as well; but what needs the OS's help is the VM's: the XSAVE-managed extensions
 * (AVX and up) only when the VM runs with XSAVE on (else they fault, and Linux would not list them),
 * no fsgsbase (CR4.FSGSBASE is off), and the system-level features (virtualization, APIC, PCID, power
 * and performance monitoring, mitigations) only as the VM's CPUID (KVM_GET_SUPPORTED_CPUID) offers
 * them. Of the flags Linux makes up (no CPUID bit of their own) only those describing the CPU stay.
 */
import { readFileSync } from 'node:fs';

export interface GuestCpuidEntry {
  function: number;
  index: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

type Reg = 'eax' | 'ebx' | 'ecx' | 'edx';

/** Linux's flag names for CPUID bits (arch/x86/include/asm/cpufeatures.h): [leaf, subleaf, register, names by bit]. */
const CPUID_FLAGS: Array<[number, number, Reg, Record<number, string>]> = [
  [1, 0, 'edx', { 0: 'fpu', 1: 'vme', 2: 'de', 3: 'pse', 4: 'tsc', 5: 'msr', 6: 'pae', 7: 'mce', 8: 'cx8', 9: 'apic', 11: 'sep', 12: 'mtrr', 13: 'pge', 14: 'mca', 15: 'cmov', 16: 'pat', 17: 'pse36', 18: 'pn', 19: 'clflush', 21: 'dts', 22: 'acpi', 23: 'mmx', 24: 'fxsr', 25: 'sse', 26: 'sse2', 27: 'ss', 28: 'ht', 29: 'tm', 30: 'ia64', 31: 'pbe' }],
  [1, 0, 'ecx', { 0: 'pni', 1: 'pclmulqdq', 2: 'dtes64', 3: 'monitor', 4: 'ds_cpl', 5: 'vmx', 6: 'smx', 7: 'est', 8: 'tm2', 9: 'ssse3', 10: 'cid', 11: 'sdbg', 12: 'fma', 13: 'cx16', 14: 'xtpr', 15: 'pdcm', 17: 'pcid', 18: 'dca', 19: 'sse4_1', 20: 'sse4_2', 21: 'x2apic', 22: 'movbe', 23: 'popcnt', 24: 'tsc_deadline_timer', 25: 'aes', 26: 'xsave', 28: 'avx', 29: 'f16c', 30: 'rdrand', 31: 'hypervisor' }],
  [0x80000001, 0, 'edx', { 11: 'syscall', 19: 'mp', 20: 'nx', 22: 'mmxext', 25: 'fxsr_opt', 26: 'pdpe1gb', 27: 'rdtscp', 29: 'lm', 30: '3dnowext', 31: '3dnow' }],
  [0x80000001, 0, 'ecx', { 0: 'lahf_lm', 1: 'cmp_legacy', 2: 'svm', 3: 'extapic', 4: 'cr8_legacy', 5: 'abm', 6: 'sse4a', 7: 'misalignsse', 8: '3dnowprefetch', 9: 'osvw', 10: 'ibs', 11: 'xop', 12: 'skinit', 13: 'wdt', 15: 'lwp', 16: 'fma4', 17: 'tce', 19: 'nodeid_msr', 21: 'tbm', 22: 'topoext', 23: 'perfctr_core', 24: 'perfctr_nb', 26: 'bpext', 27: 'ptsc', 28: 'perfctr_llc', 29: 'mwaitx' }],
  [6, 0, 'eax', { 0: 'dtherm', 1: 'ida', 2: 'arat', 4: 'pln', 6: 'pts', 7: 'hwp', 8: 'hwp_notify', 9: 'hwp_act_window', 10: 'hwp_epp', 11: 'hwp_pkg_req' }],
  [7, 0, 'ebx', { 0: 'fsgsbase', 1: 'tsc_adjust', 2: 'sgx', 3: 'bmi1', 4: 'hle', 5: 'avx2', 6: 'fdp_excptn_only', 7: 'smep', 8: 'bmi2', 9: 'erms', 10: 'invpcid', 11: 'rtm', 12: 'cqm', 13: 'zero_fcs_fds', 14: 'mpx', 15: 'rdt_a', 16: 'avx512f', 17: 'avx512dq', 18: 'rdseed', 19: 'adx', 20: 'smap', 21: 'avx512ifma', 23: 'clflushopt', 24: 'clwb', 25: 'intel_pt', 26: 'avx512pf', 27: 'avx512er', 28: 'avx512cd', 29: 'sha_ni', 30: 'avx512bw', 31: 'avx512vl' }],
  [7, 0, 'ecx', { 1: 'avx512vbmi', 2: 'umip', 3: 'pku', 4: 'ospke', 5: 'waitpkg', 6: 'avx512_vbmi2', 7: 'shstk', 8: 'gfni', 9: 'vaes', 10: 'vpclmulqdq', 11: 'avx512_vnni', 12: 'avx512_bitalg', 13: 'tme', 14: 'avx512_vpopcntdq', 16: 'la57', 22: 'rdpid', 24: 'bus_lock_detect', 25: 'cldemote', 27: 'movdiri', 28: 'movdir64b', 29: 'enqcmd', 30: 'sgx_lc' }],
  [7, 0, 'edx', { 2: 'avx512_4vnniw', 3: 'avx512_4fmaps', 4: 'fsrm', 8: 'avx512_vp2intersect', 10: 'md_clear', 14: 'serialize', 16: 'tsxldtrk', 18: 'pconfig', 19: 'arch_lbr', 20: 'ibt', 22: 'amx_bf16', 23: 'avx512_fp16', 24: 'amx_tile', 25: 'amx_int8', 28: 'flush_l1d', 29: 'arch_capabilities' }],
  [7, 1, 'eax', { 4: 'avx_vnni', 5: 'avx512_bf16', 26: 'lam' }],
  [0xd, 1, 'eax', { 0: 'xsaveopt', 1: 'xsavec', 2: 'xgetbv1', 3: 'xsaves' }],
  [0x80000008, 0, 'ebx', { 0: 'clzero', 1: 'irperf', 2: 'xsaveerptr', 4: 'rdpru', 9: 'wbnoinvd' }],
];

/** Flags Linux makes up (no CPUID bit of their own) that describe the CPU rather than the host kernel. */
const CPU_PROPERTIES = new Set(['constant_tsc', 'nonstop_tsc', 'nopl', 'xtopology', 'tsc_reliable', 'tsc_known_freq', 'rep_good', 'cpuid', 'extd_apicid', 'amd_dcm', 'arch_perfmon', 'vmmcall']);

/** Flags of CPUID bits that are the system's, not the instruction set's: shown as the VM's CPUID says. */
const SYSTEM = new Set([
  'vme', 'de', 'pse', 'msr', 'pae', 'mce', 'apic', 'mtrr', 'pge', 'mca', 'pat', 'pse36', 'pn', 'dts', 'acpi', 'ss', 'ht', 'tm', 'ia64', 'pbe',
  'dtes64', 'monitor', 'ds_cpl', 'vmx', 'smx', 'est', 'tm2', 'cid', 'sdbg', 'xtpr', 'pdcm', 'pcid', 'dca', 'x2apic', 'tsc_deadline_timer', 'hypervisor',
  'mp', 'pdpe1gb', 'svm', 'extapic', 'cr8_legacy', 'osvw', 'ibs', 'skinit', 'wdt', 'lwp', 'tce', 'nodeid_msr', 'topoext', 'perfctr_core', 'perfctr_nb',
  'bpext', 'ptsc', 'perfctr_llc', 'mwaitx', 'dtherm', 'ida', 'arat', 'pln', 'pts', 'hwp', 'hwp_notify', 'hwp_act_window', 'hwp_epp', 'hwp_pkg_req',
  'tsc_adjust', 'sgx', 'smep', 'invpcid', 'cqm', 'mpx', 'rdt_a', 'smap', 'intel_pt', 'umip', 'pku', 'ospke', 'waitpkg', 'shstk', 'tme', 'la57',
  'bus_lock_detect', 'sgx_lc', 'md_clear', 'pconfig', 'arch_lbr', 'ibt', 'flush_l1d', 'arch_capabilities', 'irperf', 'rdpru', 'wbnoinvd', 'lam',
]);

/** Flags of the extensions whose state XSAVE manages: usable only where the OS enabled XSAVE. */
const NEEDS_XSAVE = /^(xsave|xsaveopt|xsavec|xgetbv1|xsaves|avx.*|fma|f16c|vaes|vpclmulqdq|amx_.*)$/;

/** The program's CPU when it is a VM's (set by whoever made the machine; null: the host's own). */
let guest: readonly GuestCpuidEntry[] | null = null;
let guestXsave = true;

/**
 * The CPUID the program's VM was given and whether it runs with XSAVE on (kvm), or null when the
 * program runs on the host CPU under the host kernel (process).
 */
export function setGuestCpuid(entries: readonly GuestCpuidEntry[] | null, xsave = true): void {
  guest = entries;
  guestXsave = xsave;
}

function has(entries: readonly GuestCpuidEntry[], fn: number, index: number, reg: Reg, bit: number): boolean {
  const e = entries.find((x) => x.function === fn && x.index === index);
  return e !== undefined && ((e[reg] >>> bit) & 1) === 1;
}

const BY_NAME = new Map<string, [number, number, Reg, number]>();
for (const [fn, index, reg, bits] of CPUID_FLAGS) for (const [bit, name] of Object.entries(bits)) BY_NAME.set(name, [fn, index, reg, Number(bit)]);

/** The flags the program has (see the top of this file): all of the host's on process, on kvm those that hold in the VM. */
export function guestFlags(hostFlags: string[], entries: readonly GuestCpuidEntry[] | null = guest, xsave = guestXsave): string[] {
  if (!entries) return hostFlags;
  return hostFlags.filter((f) => {
    if (f === 'fsgsbase') return false; // needs CR4.FSGSBASE, which the VM does not set: the instructions fault
    if (!xsave && NEEDS_XSAVE.test(f)) return false;
    const where = BY_NAME.get(f);
    if (where) return SYSTEM.has(f) ? has(entries, ...where) : true;
    return CPU_PROPERTIES.has(f);
  });
}

let hostBlock: Array<[string, string]> | null = null;

/** The first block of the host's /proc/cpuinfo, as (key, value) pairs in order. */
export function hostCpuinfo(): Array<[string, string]> {
  if (hostBlock) return hostBlock;
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    text = '';
  }
  const first = text.split('\n\n')[0] ?? '';
  hostBlock = first
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => {
      const i = l.indexOf(':');
      return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string];
    });
  if (hostBlock.length === 0) hostBlock = [['vendor_id', 'GenuineIntel'], ['model name', 'mapvisor vCPU'], ['flags', 'fpu tsc cx8 cmov sse sse2 syscall nx lm']];
  return hostBlock;
}

/** One value of the host's first cpuinfo block ('' when absent). */
export function hostCpu(key: string): string {
  return hostCpuinfo().find(([k]) => k === key)?.[1] ?? '';
}

/** The host's CPU clock in MHz (from cpuinfo; 0 when it does not say). */
export function cpuMhz(): number {
  return Number.parseFloat(hostCpu('cpu MHz')) || 0;
}

/** A cpumask as Linux prints it ("%*pb"): the first `n` CPUs' bits (or `bits`) in hex, in comma-separated groups of 32. */
export function cpuMask(n: number, bits: bigint = (1n << BigInt(n)) - 1n): string {
  const s = bits.toString(16).padStart(Math.max(1, Math.ceil(n / 4)), '0');
  const groups: string[] = [];
  for (let end = s.length; end > 0; end -= 8) groups.unshift(s.slice(Math.max(0, end - 8), end));
  return groups.join(',');
}

/** The first `n` CPUs as Linux prints a CPU list ("%*pbl"): 0, or 0-N. */
export function cpuList(n: number): string {
  return n <= 1 ? '0' : `0-${n - 1}`;
}

/** Linux pads each key with tabs to a column of 16 (`seq_printf(m, "processor\t: %u\n")`, ...). */
const KEY_FORMAT: Record<string, string> = {
  processor: 'processor\t', vendor_id: 'vendor_id\t', 'cpu family': 'cpu family\t', model: 'model\t\t', 'model name': 'model name\t',
  stepping: 'stepping\t', microcode: 'microcode\t', 'cpu MHz': 'cpu MHz\t\t', 'cache size': 'cache size\t', 'physical id': 'physical id\t',
  siblings: 'siblings\t', 'core id': 'core id\t\t', 'cpu cores': 'cpu cores\t', apicid: 'apicid\t\t', 'initial apicid': 'initial apicid\t',
  fpu: 'fpu\t\t', fpu_exception: 'fpu_exception\t', 'cpuid level': 'cpuid level\t', wp: 'wp\t\t', flags: 'flags\t\t', bugs: 'bugs\t\t',
  bogomips: 'bogomips\t', 'TLB size': 'TLB size\t', 'clflush size': 'clflush size\t', cache_alignment: 'cache_alignment\t',
  'address sizes': 'address sizes\t', 'power management': 'power management',
};

/** /proc/cpuinfo for `cpus` CPUs. */
export function cpuinfoText(cpus: number): string {
  const block = hostCpuinfo();
  const entries = guest;
  let out = '';
  for (let i = 0; i < cpus; i++) {
    for (const [key, value] of block) {
      let v = value;
      if (key === 'processor' || key === 'core id' || key === 'apicid' || key === 'initial apicid') v = String(i);
      else if (key === 'physical id') v = '0';
      else if (key === 'siblings' || key === 'cpu cores') v = String(cpus);
      else if (key === 'flags') v = guestFlags(value.split(/\s+/).filter(Boolean), entries).join(' ');
      else if (key === 'cpuid level' && entries) v = String(entries.find((e) => e.function === 0)?.eax ?? value);
      else if (key === 'vmx flags' && entries) continue; // VMX is the host's, not the VM's
      const k = KEY_FORMAT[key] ?? `${key}\t`;
      out += key === 'power management' ? `${k}:${v ? ` ${v}` : ''}\n` : `${k}: ${v}\n`;
    }
    out += '\n';
  }
  return out;
}
