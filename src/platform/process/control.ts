/**
 * The control area: the memfd the supervisor shares with the program's host process (the stub maps it
 * at CTL_ADDR there). Here it is mapped once per VMM; every worker thread of the VMM reaches it at the
 * same host address, so a thread's context can run in any of them.
 *
 * The program can write every byte of it. Nothing read from it is trusted: values are range-checked
 * where they index or size anything, and a bad value can only make the program's own thread misbehave.
 */
import { HostError } from '../../host/errors.js';
import * as libc from '../../host/libc.js';
import { CTL_SIZE, SLOTS_OFF, SLOT_SIZE } from './abi.js';

/** A view of the control area: 32/64-bit little-endian words at byte offsets, and futex helpers. */
export class ControlArea {
  readonly addr: number;
  readonly i32: Int32Array;
  readonly dv: DataView;
  readonly bytes: Uint8Array;
  /** A timespec for futex waits (one per view: views are per thread). */
  private readonly timeout: { addr: number; view: BigInt64Array };

  constructor(addr: number) {
    this.addr = addr;
    const buf = libc.view(addr, CTL_SIZE);
    this.i32 = new Int32Array(buf);
    this.dv = new DataView(buf);
    this.bytes = new Uint8Array(buf);
    const ts = libc.mmap(0, 4096, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
    if (ts === -1) throw new HostError('mmap (futex timespec)', libc.errno());
    this.timeout = { addr: ts, view: new BigInt64Array(libc.view(ts, 16)) };
  }

  /** Make the control memfd and map it here. */
  static create(): { fd: number; area: ControlArea } {
    const fd = libc.memfdCreate('mapvisor-control', libc.MFD_CLOEXEC);
    if (fd < 0) throw new HostError('memfd_create (control area)', libc.errno());
    if (libc.ftruncate(fd, CTL_SIZE) !== 0) throw new HostError('ftruncate (control area)', libc.errno());
    const addr = libc.mmap(0, CTL_SIZE, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 0);
    if (addr === -1) throw new HostError('mmap (control area)', libc.errno());
    return { fd, area: new ControlArea(addr) };
  }

  load(off: number): number {
    return Atomics.load(this.i32, off >> 2);
  }
  store(off: number, v: number): void {
    Atomics.store(this.i32, off >> 2, v);
  }
  u64(off: number): number {
    return this.dv.getUint32(off, true) + this.dv.getUint32(off + 4, true) * 0x1_0000_0000;
  }
  setU64(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, true);
    this.dv.setUint32(off + 4, Math.floor(v / 0x1_0000_0000) >>> 0, true);
  }

  /** Sleep while the word at `off` is `val`, at most `ms` milliseconds. */
  wait(off: number, val: number, ms: number): void {
    this.timeout.view[0] = BigInt(Math.floor(ms / 1000));
    this.timeout.view[1] = BigInt(Math.floor((ms % 1000) * 1e6));
    libc.futexWait(this.addr + off, val, this.timeout.addr);
  }
  wake(off: number, n = 1): void {
    libc.futexWake(this.addr + off, n);
  }

  static slotOff(slot: number): number {
    return SLOTS_OFF + slot * SLOT_SIZE;
  }

  unmap(): void {
    libc.munmap(this.timeout.addr, 4096);
    libc.munmap(this.addr, CTL_SIZE);
  }
}
