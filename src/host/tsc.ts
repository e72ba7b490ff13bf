/**
 * The host's time-stamp counter, read by a few bytes of machine code the VMM maps for itself (koffi
 * calls it like any C function): `lfence; rdtsc` and the 64-bit result stored at the pointer given.
 * The vDSO reads the same counter inside the program (the program's TSC is the host's on both
 * platforms here; see platform.tscOffset).
 */
import koffi from 'koffi';
import { HostError } from './errors.js';
import * as libc from './libc.js';

// lfence; rdtsc; shl rdx, 32; or rax, rdx; mov [rdi], rax; ret
const CODE = [0x0f, 0xae, 0xe8, 0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0x48, 0x89, 0x07, 0xc3];

// Two pages: the code (read+execute once written) and the word it stores into.
const page = libc.mmap(0, 8192, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
if (page === -1) throw new HostError('mmap (the TSC reader)', libc.errno());
new Uint8Array(libc.view(page, 4096)).set(CODE);
const OUT = 4096;
const out = new DataView(libc.view(page + OUT, 8));
if (libc.mprotect(page, 4096, libc.PROT_READ | libc.PROT_EXEC) !== 0) throw new HostError('mprotect (the TSC reader)', libc.errno());
const proto = koffi.proto('void mapvisor_rdtsc(uintptr_t out)');

/** The host's TSC now (ordered after earlier loads). */
export function rdtsc(): bigint {
  koffi.call(page, proto, page + OUT);
  return out.getBigUint64(0, true);
}
