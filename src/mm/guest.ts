/**
 * The kernel's access to the program's memory. Every guest pointer a system call receives is checked
 * against the region map before the VMM touches it: an address outside the program's mappings (the
 * supervisor area with the page tables, a PROT_NONE gap, a read-only page for a write) is EFAULT, as
 * in Linux's copy_from_user/copy_to_user, and never a host fault in the VMM.
 */
import { PROT_READ, PROT_WRITE } from '../host/libc.js';
import type { AddressSpace } from './space.js';

/** Thrown by accessors for a bad guest pointer; the syscall layer answers -EFAULT. */
export class GuestFault extends Error {
  readonly addr: number;
  constructor(addr: number, length: number) {
    super(`bad guest address 0x${addr.toString(16)} (+${length})`);
    this.addr = addr;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

export class GuestMemory {
  /**
   * The address space the accessors reach: the current process's. Every process of a sandbox shares
   * one GuestMemory (files hold it), and the kernel binds it to the process whose call it handles.
   */
  private space: AddressSpace;

  bind(space: AddressSpace): void {
    this.space = space;
  }

  /** The address space accesses reach now (to bind back after working on another process's). */
  get bound(): AddressSpace {
    return this.space;
  }
  /** When set, guest pages the VMM writes (system-call results) are recorded, for incremental checkpoints. */
  vmmDirty: Set<number> | null = null;

  private noteWrite(addr: number, length: number): void {
    if (!this.vmmDirty || length <= 0) return;
    for (let p = Math.floor(addr / 4096); p <= Math.floor((addr + length - 1) / 4096); p++) this.vmmDirty.add(p);
  }

  constructor(space: AddressSpace) {
    this.space = space;
  }

  /** Is [addr, addr+length) mapped with `prot`? */
  ok(addr: number, length: number, prot: number): boolean {
    if (!Number.isSafeInteger(addr) || addr < 0 || !Number.isSafeInteger(length) || length < 0) return false;
    return this.space.regions.check(addr, length, prot);
  }

  private need(addr: number, length: number, prot: number): void {
    if (!this.ok(addr, length, prot)) throw new GuestFault(addr, length);
  }

  /** The host address of guest [addr, addr+length), checked for `prot`: for host syscalls (read/write). */
  hostPtr(addr: number, length: number, prot: number): number {
    this.need(addr, length, prot);
    if (prot & PROT_WRITE) this.noteWrite(addr, length);
    return this.space.window.hostAddr(addr);
  }

  /** A live view of guest memory for reading (checked). */
  read(addr: number, length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    this.need(addr, length, PROT_READ);
    return this.space.window.bytes(addr, length);
  }

  /** A live view of guest memory for writing (checked). */
  writable(addr: number, length: number): Uint8Array {
    if (length === 0) return new Uint8Array(0);
    this.need(addr, length, PROT_WRITE);
    this.noteWrite(addr, length);
    return this.space.window.bytes(addr, length);
  }

  /** Copy `data` into the program's memory at `addr`. */
  write(addr: number, data: Uint8Array): void {
    this.writable(addr, data.length).set(data);
  }

  /** Copy out of the program's memory (a copy, safe to keep). */
  copyIn(addr: number, length: number): Uint8Array {
    return this.read(addr, length).slice();
  }

  readU32(addr: number): number {
    const b = this.read(addr, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
  readI32(addr: number): number {
    return this.readU32(addr) | 0;
  }
  readU64(addr: number): number {
    const b = this.read(addr, 8);
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    return dv.getUint32(0, true) + dv.getUint32(4, true) * 0x1_0000_0000;
  }
  readBigU64(addr: number): bigint {
    const b = this.read(addr, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }
  writeU32(addr: number, v: number): void {
    const b = this.writable(addr, 4);
    new DataView(b.buffer, b.byteOffset, 4).setUint32(0, v >>> 0, true);
  }
  writeU64(addr: number, v: number | bigint): void {
    const b = this.writable(addr, 8);
    new DataView(b.buffer, b.byteOffset, 8).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
  }

  /**
   * A NUL-terminated string of at most `max` bytes (including the NUL). Returns null when no NUL is
   * found within `max` (ENAMETOOLONG for paths), throws GuestFault on a bad pointer.
   */
  readCString(addr: number, max = 4096): string | null {
    const bytes = this.readCStringBytes(addr, max);
    return bytes === null ? null : decoder.decode(bytes);
  }

  readCStringBytes(addr: number, max = 4096): Uint8Array | null {
    // Read page by page so a string that ends just before an unmapped page is fine.
    const out: Uint8Array[] = [];
    let total = 0;
    let at = addr;
    while (total < max) {
      const pageLeft = 0x1000 - (at % 0x1000);
      const n = Math.min(pageLeft, max - total);
      const chunk = this.read(at, n);
      const nul = chunk.indexOf(0);
      if (nul >= 0) {
        out.push(chunk.subarray(0, nul));
        return concat(out);
      }
      out.push(chunk);
      total += n;
      at += n;
    }
    return null;
  }

  /** Write a NUL-terminated string, truncated to `max` bytes including the NUL. Returns bytes written. */
  writeCString(addr: number, s: string, max: number): number {
    const enc = encoder.encode(s);
    const n = Math.min(enc.length, max - 1);
    const dst = this.writable(addr, n + 1);
    dst.set(enc.subarray(0, n));
    dst[n] = 0;
    return n + 1;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
