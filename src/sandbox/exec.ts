/**
 * Finding the program to run: a host file (static programs only), or a file inside the root file
 * system image, whose segments are then mapped in place (XIP) and whose PT_INTERP is loaded from the
 * image too.
 */
import { E } from '../abi/errno.js';
import { ExecError, EXIT_NOT_FOUND } from '../errors.js';
import type { RootFs } from '../kernel/vfs/rootfs.js';
import { PAGE_SIZE, parseElf } from '../loader/elf.js';
import type { ExecImageSource, XipRun } from '../loader/load.js';
import { FsError } from '../storage/ext4/errors.js';
import { checkProgram, inspectProgram } from './program.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

/** Read `path` from the image as an executable. */
export function execFromImage(root: RootFs, path: string, what = 'program'): ExecImageSource {
  const fs = root.fs;
  let ino: number;
  try {
    ino = fs.resolve(path);
  } catch (e) {
    if (e instanceof FsError && (e.errno === E.ENOENT || e.errno === E.ENOTDIR)) {
      throw new ExecError('ENOENT', `${what} ${path} does not exist in the image ${root.spec.path}`, 'give a path inside the image (see: debugfs -R "ls -l /usr/bin" IMAGE)', EXIT_NOT_FOUND);
    }
    if (e instanceof FsError) throw new ExecError('EIMAGEPATH', `cannot resolve ${path} in the image: ${e.message}`, 'check the path and the image');
    throw e;
  }
  const st = fs.stat(ino);
  if ((st.mode & S_IFMT) !== S_IFREG) throw new ExecError('ENOTREG', `${what} ${path} in the image is not a regular file`, 'give the path of a program file');
  if (!(st.mode & 0o111)) throw new ExecError('EACCES', `${what} ${path} in the image is not executable (mode ${(st.mode & 0o7777).toString(8)})`, 'chmod +x it in the image');
  // Read only what the ELF parser looks at (header, program headers, PT_INTERP's string) into a buffer
  // of the file's size: the segments themselves are mapped from the image, never copied, unless the
  // copy path needs them (complete()).
  const bytes = new Uint8Array(st.size);
  const readAt = (off: number, len: number): void => {
    if (off < st.size && len > 0) fs.read(ino, off, bytes.subarray(off, Math.min(st.size, off + len)));
  };
  readAt(0, 4096);
  const hdr = new DataView(bytes.buffer);
  if (st.size >= 64) {
    const phoff = Number(hdr.getBigUint64(32, true));
    const phnum = hdr.getUint16(56, true);
    if (phoff < st.size) {
      readAt(phoff, phnum * 56);
      for (let i = 0; i < phnum && phoff + (i + 1) * 56 <= st.size; i++) {
        const at = phoff + i * 56;
        if (hdr.getUint32(at, true) === 3 /* PT_INTERP */) readAt(Number(hdr.getBigUint64(at + 8, true)), Number(hdr.getBigUint64(at + 32, true)));
      }
    }
  }
  let complete = false;
  const elf = parseElf(bytes, path);
  const xipOk = root.mapsInPlace;
  return {
    path,
    bytes,
    elf,
    complete: () => {
      if (!complete) fs.read(ino, 0, bytes);
      complete = true;
      return bytes;
    },
    ...(xipOk
      ? { xip: { runs: (o: number, l: number) => xipRuns(root, ino, o, l), backingId: root.backingId, fd: root.fd, imagePath: root.spec.path } }
      : {}),
  };
}

/** The file's runs, each split where its pages lie now (the image's file, or a copy-on-write layer's). */
function xipRuns(root: RootFs, ino: number, offset: number, length: number): XipRun[] {
  const out: XipRun[] = [];
  for (const r of root.fs.fileRuns(ino, offset, length)) {
    if (r.physical === null || r.physical % PAGE_SIZE || r.length % PAGE_SIZE) {
      out.push(r);
      continue;
    }
    for (const src of root.sources(r.physical, r.length, false)) {
      out.push({ offset: r.offset + (src.offset - r.physical), length: src.length, physical: src.offset, id: src.id, fd: src.fd });
    }
  }
  return out;
}

/** The program and, for a dynamic one, its interpreter. */
export function findExecutable(root: RootFs | null, path: string): { main: ExecImageSource; interp: ExecImageSource | null } {
  if (!root) {
    const { bytes, elf } = inspectProgram(path);
    return { main: { path, bytes, elf }, interp: null };
  }
  const main = execFromImage(root, path);
  if (main.elf.interp === null) return { main, interp: null };
  const interp = execFromImage(root, main.elf.interp, 'interpreter');
  if (interp.elf.interp !== null) throw new ExecError('EINTERP', `the interpreter ${main.elf.interp} itself asks for an interpreter`, 'the image is broken');
  if (interp.elf.kind !== 'dyn') checkProgram(interp.elf, interp.path);
  return { main, interp };
}
