/**
 * mapvisor's vDSO image (dist/vdso/vdso.so, built from vdso.c by scripts/build-vdso.mjs): checked
 * once when first needed, then copied into every program's memory at exec, after its vvar page.
 */
import { readFileSync } from 'node:fs';
import { distPath } from '../util/paths.js';
import { MapvisorError } from '../errors.js';
import { parseElf } from '../loader/elf.js';

export interface VdsoImage {
  bytes: Uint8Array;
  /** Bytes to map (the one PT_LOAD, page-rounded). */
  length: number;
}

let cached: VdsoImage | null = null;

/** The vDSO image; a one-line error when the build did not make it. */
export function vdsoImage(): VdsoImage {
  if (cached) return cached;
  const path = distPath('vdso', 'vdso.so');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch {
    throw new MapvisorError('EVDSO', `the vDSO image ${path} is missing`, 'run npm run build');
  }
  const elf = parseElf(bytes, path);
  const load = elf.loads;
  if (elf.kind !== 'dyn' || load.length !== 1 || load[0]!.vaddr !== 0 || load[0]!.offset !== 0 || load[0]!.filesz !== load[0]!.memsz) {
    throw new MapvisorError('EVDSO', `${path} is not one PT_LOAD at address 0`, 'rebuild it: npm run build');
  }
  cached = { bytes: bytes.subarray(0, load[0]!.filesz), length: Math.ceil(load[0]!.memsz / 4096) * 4096 };
  return cached;
}
