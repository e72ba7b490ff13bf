/** Checks on the program file made before a VM is built, each with a one-line error. */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { ExecError, EXIT_NOT_FOUND } from '../errors.js';
import { parseElf, type ElfInfo } from '../loader/elf.js';

/** Refuse what a host-path program cannot be: dynamically linked programs need their interpreter. */
export function checkProgram(elf: ElfInfo, path: string): void {
  if (elf.interp !== null) {
    throw new ExecError(
      'EDYNAMIC',
      `${path} is dynamically linked (interpreter ${elf.interp}), and a host-path program runs with no file system`,
      'use a statically linked build (gcc -static), or run it from a disk image that holds its interpreter and libraries',
    );
  }
}

/** Read and check a host program file: exists, is a regular file, readable, a static x86-64 ELF. */
export function inspectProgram(path: string): { bytes: Uint8Array; elf: ElfInfo } {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ExecError('ENOENT', `program ${path} does not exist`, 'give the path of a program file on this host', EXIT_NOT_FOUND);
  }
  if (st.isDirectory()) throw new ExecError('EISDIR', `program ${path} is a directory`, 'give the path of a program file');
  if (!st.isFile()) throw new ExecError('ENOTREG', `program ${path} is not a regular file`, 'give the path of a program file');
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw new ExecError('EACCES', `program ${path} is not readable`, 'check its permissions');
  }
  const bytes = new Uint8Array(readFileSync(path));
  const elf = parseElf(bytes, path);
  checkProgram(elf, path);
  return { bytes, elf };
}
