/** The assembled trap stubs (src/platform/kvm/asm/stubs.S → dist/stubs/*.bin by scripts/build-stubs.mjs). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { distPath } from '../../util/paths.js';
import { MapvisorError } from '../../errors.js';
import { EXCEPTION_STUB_STRIDE } from './layout.js';

export interface TrapStubs {
  /** Loaded at SYSCALL_PAGE_ADDR; LSTAR points at its first byte. */
  syscall: Uint8Array;
  /** Loaded at EXCEPTION_STUBS_ADDR; vector v at v * EXCEPTION_STUB_STRIDE. */
  exceptions: Uint8Array;
}

/** Offset of the `iretq` in the syscall stub: right after the 2-byte `out %al, $0x30`. */
export const SYSCALL_STUB_IRET_OFFSET = 2;

let cached: TrapStubs | null = null;

export function loadStubs(): TrapStubs {
  if (cached) return cached;
  const dir = distPath('stubs');
  try {
    const syscall = new Uint8Array(readFileSync(join(dir, 'syscall.bin')));
    const exceptions = new Uint8Array(readFileSync(join(dir, 'exceptions.bin')));
    if (exceptions.length < 32 * EXCEPTION_STUB_STRIDE - EXCEPTION_STUB_STRIDE + 3) {
      throw new Error('exceptions.bin is too short');
    }
    cached = { syscall, exceptions };
    return cached;
  } catch (e) {
    throw new MapvisorError(
      'ESTUBS',
      `the trap stubs are missing from ${dir} (${(e as Error).message})`,
      'run npm run build (it needs GNU as and objcopy: apt-get install binutils)',
    );
  }
}
