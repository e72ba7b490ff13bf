/**
 * A vCPU running a program at CPL3: entering the guest, decoding why it left, and the two ways back
 * from a system call. Registers are read and written in kvm_run's sync area (KVM_CAP_SYNC_REGS), so
 * an exit costs no GET/SET ioctls.
 */
import { E } from '../../abi/errno.js';
import { KVM, KVM_EXIT, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS, exitReasonName } from './ioctl.js';
import type { VcpuFd } from './kvm.js';
import type { Context, ContextHandle, ContextState, Exit, KickTarget } from '../platform.js';
import { FX, FXSAVE_SIZE } from '../regs.js';
import {
  FPU,
  REGS,
  RUN,
  RUN_IO,
  RUN_INTERNAL,
  RUN_MEMORY_FAULT,
  SEG,
  SIZEOF,
  SREGS,
  SYNC,
  getU64,
  setU64,
  writeSegment,
  type RegName,
} from './structs.js';
import { VECTORS_WITH_ERROR_CODE, userCodeSegment, userDataSegment } from './descriptors.js';
import { MSR_FS_BASE, MSR_GS_BASE, RFLAGS_FIXED, RFLAGS_USER_MASK } from './cpu.js';
import {
  EXCEPTION_PORT_BASE,
  EXCEPTION_STACK_TOP,
  EXCEPTION_STUBS_ADDR,
  EXCEPTION_STUB_STRIDE,
  IRET_FRAMES_ADDR,
  IRET_FRAME_STRIDE,
  SEL,
  SYSCALL_PAGE_ADDR,
  SYSCALL_PORT,
} from './layout.js';
import { SYSCALL_STUB_IRET_OFFSET } from './stubs.js';
import type { Window } from '../window.js';

export type { Exit } from '../platform.js';

/**
 * How a system call returns to the program; see src/vm/asm/stubs.S. 'sregs' (the default: ~3% faster
 * on kvm_pvm in bench:core) sets rip/rflags/cs/ss through KVM_CAP_SYNC_REGS; 'iretq' writes an iret
 * frame and lets the stub's `iretq` return, syncing only the general registers.
 */
export type { SyscallReturn } from '../platform.js';
import type { SyscallReturn } from '../platform.js';

/** What a vCPU's state is made of, for checkpoints and new threads: kvm_regs, FXSAVE, FS/GS bases. */
export type VcpuState = ContextState;

const USER_CS_BYTES = segmentBytes(userCodeSegment());
const USER_SS_BYTES = segmentBytes(userDataSegment());

function segmentBytes(s: ReturnType<typeof userCodeSegment>): Uint8Array {
  const b = new Uint8Array(24);
  writeSegment(new DataView(b.buffer), 0, s);
  return b;
}

export class Vcpu implements Context {
  readonly id: number;
  readonly fd: VcpuFd;
  readonly run: DataView;
  private readonly runBytes: Uint8Array;
  private readonly window: Window;
  readonly returnPath: SyscallReturn;
  private readonly syncSregs: boolean;
  /** Exits by reason name, for --stats. */
  readonly exitCounts = new Map<string, number>();

  constructor(id: number, fd: VcpuFd, window: Window, returnPath: SyscallReturn) {
    this.id = id;
    this.fd = fd;
    this.run = fd.run;
    this.runBytes = new Uint8Array(fd.run.buffer, fd.run.byteOffset, fd.run.byteLength);
    this.window = window;
    this.returnPath = returnPath;
    // Ask KVM to copy the registers into kvm_run on every exit; the segment registers only when the
    // return path writes them (the iretq path needs them only for rare events: faults, FS base).
    this.syncSregs = returnPath === 'sregs';
    setU64(this.run, RUN.kvm_valid_regs, KVM_SYNC_X86_REGS | (this.syncSregs ? KVM_SYNC_X86_SREGS : 0));
  }

  // --- registers (valid between an exit and the next entry) ---
  reg(name: RegName): number {
    return getU64(this.run, SYNC.regs + REGS[name]);
  }
  regBig(name: RegName): bigint {
    return this.run.getBigUint64(SYNC.regs + REGS[name], true);
  }
  setReg(name: RegName, v: number): void {
    setU64(this.run, SYNC.regs + REGS[name], v);
  }
  setRegBig(name: RegName, v: bigint): void {
    this.run.setBigUint64(SYNC.regs + REGS[name], BigInt.asUintN(64, v), true);
  }
  /** The low 32 bits of a register as a signed int (how Linux reads `int` arguments). */
  regI32(name: RegName): number {
    return this.run.getInt32(SYNC.regs + REGS[name], true);
  }
  regU32(name: RegName): number {
    return this.run.getUint32(SYNC.regs + REGS[name], true);
  }
  /** A register as a signed 64-bit number (exact for |v| < 2^53). */
  regI64(name: RegName): number {
    return Number(this.run.getBigInt64(SYNC.regs + REGS[name], true));
  }
  /** A field of kvm_sregs: from the sync area, or by KVM_GET_SREGS when sregs are not synced. */
  sreg(offset: number): number {
    if (this.syncSregs) return getU64(this.run, SYNC.sregs + offset);
    const b = this.fd.get(KVM.GET_SREGS, SIZEOF.kvm_sregs);
    return getU64(new DataView(b.buffer, b.byteOffset, b.length), offset);
  }

  private segBase(seg: number, msr: number): number {
    if (this.syncSregs) return getU64(this.run, SYNC.sregs + seg + SEG.base);
    return Number(this.fd.getMsrs([msr])[0]!);
  }
  private setSegBase(seg: number, msr: number, v: number): void {
    if (this.syncSregs) {
      setU64(this.run, SYNC.sregs + seg + SEG.base, v);
    } else {
      this.fd.setMsrs([[msr, v]]);
    }
  }
  get fsBase(): number {
    return this.segBase(SREGS.fs, MSR_FS_BASE);
  }
  set fsBase(v: number) {
    this.setSegBase(SREGS.fs, MSR_FS_BASE, v);
  }
  get gsBase(): number {
    return this.segBase(SREGS.gs, MSR_GS_BASE);
  }
  set gsBase(v: number) {
    this.setSegBase(SREGS.gs, MSR_GS_BASE, v);
  }

  /** Count an exit seen by another thread's copy of this vCPU (threaded programs). */
  noteExit(reason: string): void {
    this.count(reason);
  }

  private count(reason: string): void {
    this.exitCounts.set(reason, (this.exitCounts.get(reason) ?? 0) + 1);
  }

  /** Enter the guest until it exits; decode the exit. */
  enter(): Exit {
    const rc = this.fd.runOnce();
    setU64(this.run, RUN.kvm_dirty_regs, 0);
    if (rc < 0) {
      if (rc === -E.EINTR) {
        this.run.setUint8(RUN.immediate_exit, 0);
        this.count('interrupted');
        return { kind: 'interrupted' };
      }
      if (rc === -E.EFAULT) {
        // The guest touched a window page with no host mapping (or wrote a read-only one). With
        // KVM_CAP_MEMORY_FAULT_INFO the kernel says which guest-physical page.
        this.count('memory fault');
        const reason = this.run.getUint32(RUN.exit_reason, true);
        const known = reason === KVM_EXIT.MEMORY_FAULT;
        return {
          kind: 'memfault',
          rip: this.reg('rip'),
          gpa: known ? getU64(this.run, RUN_MEMORY_FAULT.gpa) : null,
          write: null,
        };
      }
      this.count('error');
      return { kind: 'fatal', reason: `KVM_RUN failed with errno ${-rc}`, rip: this.reg('rip') };
    }
    const reason = this.run.getUint32(RUN.exit_reason, true);
    if (reason === KVM_EXIT.IO) {
      const port = this.run.getUint16(RUN_IO.port, true);
      if (port === SYSCALL_PORT) {
        this.count('syscall');
        return { kind: 'syscall' };
      }
      const vector = port - EXCEPTION_PORT_BASE;
      if (vector >= 0 && vector < 32) {
        this.count('exception');
        return this.exceptionExit(vector);
      }
    }
    if (reason === KVM_EXIT.INTR) {
      this.run.setUint8(RUN.immediate_exit, 0);
      this.count('interrupted');
      return { kind: 'interrupted' };
    }
    const name = exitReasonName(reason);
    this.count(name.toLowerCase());
    let detail = name;
    if (reason === KVM_EXIT.INTERNAL_ERROR) detail += ` suberror ${this.run.getUint32(RUN_INTERNAL.suberror, true)}`;
    return { kind: 'fatal', reason: `unexpected VM exit ${detail}`, rip: this.reg('rip') };
  }

  /** The CPU pushed [error code,] rip, cs, rflags, rsp, ss on the exception stack. */
  private exceptionExit(vector: number): Exit {
    const hasCode = VECTORS_WITH_ERROR_CODE.has(vector);
    const frameSize = (hasCode ? 6 : 5) * 8;
    const frame = this.window.bytes(EXCEPTION_STACK_TOP - frameSize, frameSize);
    const dv = new DataView(frame.buffer, frame.byteOffset, frameSize);
    const errorCode = hasCode ? getU64(dv, 0) : null;
    const base = hasCode ? 8 : 0;
    const rip = getU64(dv, base);
    const rsp = getU64(dv, base + 24);
    const rflags = getU64(dv, base + 16);
    // Put the program's view back into the registers: where it faulted and its own stack.
    this.setReg('rip', rip);
    this.setReg('rsp', rsp);
    this.setReg('rflags', rflags);
    return { kind: 'exception', vector, errorCode, rip, cr2: this.sreg(SREGS.cr2) };
  }

  /** Complete a system call: rax = result, back to CPL3 after the `syscall` instruction. */
  completeSyscall(result: number | bigint): void {
    const rv = this.run;
    if (typeof result === 'bigint') rv.setBigUint64(SYNC.regs + REGS.rax, BigInt.asUintN(64, result), true);
    else if (result < 0) rv.setBigInt64(SYNC.regs + REGS.rax, BigInt(result), true);
    else setU64(rv, SYNC.regs + REGS.rax, result);
    const rip = this.reg('rcx');
    const rflags = (this.reg('r11') & RFLAGS_USER_MASK) | RFLAGS_FIXED;
    if (this.returnPath === 'iretq') {
      const frameAddr = IRET_FRAMES_ADDR + this.id * IRET_FRAME_STRIDE;
      const f = this.window.bytes(frameAddr, 40);
      const fv = new DataView(f.buffer, f.byteOffset, 40);
      setU64(fv, 0, rip);
      setU64(fv, 8, SEL.USER_CS);
      setU64(fv, 16, rflags);
      setU64(fv, 24, this.reg('rsp'));
      setU64(fv, 32, SEL.USER_DS);
      this.setReg('rsp', frameAddr);
      setU64(rv, RUN.kvm_dirty_regs, KVM_SYNC_X86_REGS);
      return;
    }
    this.setReg('rip', rip);
    this.setReg('rflags', rflags);
    this.runBytes.set(USER_CS_BYTES, SYNC.sregs + SREGS.cs);
    this.runBytes.set(USER_SS_BYTES, SYNC.sregs + SREGS.ss);
    setU64(rv, RUN.kvm_dirty_regs, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
  }

  /** Resume the program at user state already placed in the registers (after an exception). */
  resumeUser(): void {
    if (this.syncSregs) {
      this.runBytes.set(USER_CS_BYTES, SYNC.sregs + SREGS.cs);
      this.runBytes.set(USER_SS_BYTES, SYNC.sregs + SREGS.ss);
      setU64(this.run, RUN.kvm_dirty_regs, KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
      return;
    }
    const b = this.fd.get(KVM.GET_SREGS, SIZEOF.kvm_sregs);
    b.set(USER_CS_BYTES, SREGS.cs);
    b.set(USER_SS_BYTES, SREGS.ss);
    this.fd.set(KVM.SET_SREGS, b);
    setU64(this.run, RUN.kvm_dirty_regs, KVM_SYNC_X86_REGS);
  }

  /** A copy of the general registers (kvm_regs), to put back with restoreRegs. */
  saveRegs(): Uint8Array {
    return this.runBytes.slice(SYNC.regs, SYNC.regs + 144);
  }
  restoreRegs(saved: Uint8Array): void {
    this.runBytes.set(saved, SYNC.regs);
    this.regsChanged();
  }

  /**
   * Put the state "just after the system call returned" into the registers (rip = rcx, rflags = r11),
   * as a signal frame must record it; the caller then redirects the vCPU (resumeUser).
   */
  syscallReturnToRegs(): void {
    if (this.returnPath === 'iretq') {
      // completeSyscall left rsp pointing at the iret frame: take the user state back out of it.
      const f = this.window.bytes(this.reg('rsp'), 40);
      const fv = new DataView(f.buffer, f.byteOffset, 40);
      this.setReg('rip', getU64(fv, 0));
      this.setReg('rflags', getU64(fv, 16));
      this.setReg('rsp', getU64(fv, 24));
    }
    this.resumeUser();
  }

  /** Resume at the `syscall` instruction again, with rax still the call's number (a restart). */
  restartSyscall(): void {
    this.setReg('rip', this.reg('rcx') - 2); // `syscall` is two bytes: 0f 05
    this.setReg('rflags', (this.reg('r11') & RFLAGS_USER_MASK) | RFLAGS_FIXED);
    this.resumeUser();
  }

  /**
   * Fill the sync area from the vCPU's state as set by ioctls (a new thread's vCPU, a restored one),
   * so the kernel can read and change its registers as after an exit, and the sync area is always the
   * truth a checkpoint reads.
   */
  loadSyncArea(): void {
    this.runBytes.set(this.fd.get(KVM.GET_REGS, SIZEOF.kvm_regs), SYNC.regs);
    this.runBytes.set(this.fd.get(KVM.GET_SREGS, SIZEOF.kvm_sregs), SYNC.sregs);
    setU64(this.run, RUN.kvm_dirty_regs, 0);
  }

  /**
   * Registers, FS/GS bases and FPU state of a vCPU stopped at an exit boundary (for a checkpoint), as
   * the program's own state: never inside a ring-0 stub, which exists only on this platform.
   */
  captureState(): VcpuState {
    return { regs: this.programRegs(), fsBase: this.fsBase, gsBase: this.gsBase, fpu: this.getFxsave() };
  }

  /**
   * The general registers as the program's state. A kick can stop the vCPU at any instruction
   * boundary, so also inside a stub, between the CPU's entry and the stub's exit (seen on kvm_pvm):
   * - at the syscall entry: the program's `syscall` has run but the call has not reached the kernel,
   *   which is the program about to make it again (rip back at the instruction, rflags from r11);
   * - at the syscall stub's `iretq` (return path 'iretq'): the call is done; its result is in rax and
   *   the program's rip, rflags and rsp are in the iret frame at rsp;
   * - in an exception stub: the exception has not reached the kernel; the CPU's frame at rsp gives
   *   where the program was (a fault there happens again when it resumes).
   */
  private programRegs(): Uint8Array {
    const regs = this.saveRegs();
    const dv = new DataView(regs.buffer, regs.byteOffset, regs.byteLength);
    const rip = this.reg('rip');
    const fromFrame = (at: number): void => {
      const f = this.window.bytes(at, 40);
      const fv = new DataView(f.buffer, f.byteOffset, 40);
      setU64(dv, REGS.rip, getU64(fv, 0));
      setU64(dv, REGS.rflags, getU64(fv, 16));
      setU64(dv, REGS.rsp, getU64(fv, 24));
    };
    if (rip === SYSCALL_PAGE_ADDR) {
      setU64(dv, REGS.rip, this.reg('rcx') - 2); // `syscall` is two bytes
      setU64(dv, REGS.rflags, (this.reg('r11') & RFLAGS_USER_MASK) | RFLAGS_FIXED);
    } else if (rip === SYSCALL_PAGE_ADDR + SYSCALL_STUB_IRET_OFFSET && this.returnPath === 'iretq') {
      fromFrame(this.reg('rsp'));
    } else if (rip >= EXCEPTION_STUBS_ADDR && rip < EXCEPTION_STUBS_ADDR + 32 * EXCEPTION_STUB_STRIDE) {
      const vector = Math.floor((rip - EXCEPTION_STUBS_ADDR) / EXCEPTION_STUB_STRIDE);
      fromFrame(this.reg('rsp') + (VECTORS_WITH_ERROR_CODE.has(vector) ? 8 : 0));
    }
    return regs;
  }

  /** Put captured state back into a vCPU that has not run (restore), through ioctls and the sync area. */
  putState(s: VcpuState): void {
    this.fd.set(KVM.SET_REGS, Buffer.from(s.regs));
    this.setFxsave(s.fpu);
    this.loadSyncArea();
    // FS/GS bases through the sync area when it carries the segment registers: KVM_SET_MSRS of them
    // takes milliseconds on kvm_pvm, a dirty sync area costs nothing extra at the next entry.
    this.fsBase = s.fsBase;
    this.gsBase = s.gsBase;
    if (this.syncSregs) setU64(this.run, RUN.kvm_dirty_regs, KVM_SYNC_X86_SREGS);
  }

  /** Make KVM load the general registers written with setReg on the next entry. */
  regsChanged(): void {
    setU64(this.run, RUN.kvm_dirty_regs, getU64(this.run, RUN.kvm_dirty_regs) | KVM_SYNC_X86_REGS);
  }

  /** Ask a running KVM_RUN to return (the kicker also signals the thread). */
  requestExit(): void {
    this.run.setUint8(RUN.immediate_exit, 1);
  }

  kickTarget(pthread: bigint | null): KickTarget {
    return { kind: 'kvm', runAddr: this.fd.runAddr, thread: String(pthread ?? 0n) };
  }

  handle(): ContextHandle {
    return {
      kind: 'kvm',
      id: this.id,
      fd: this.fd.fd,
      runAddr: this.fd.runAddr,
      runSize: this.fd.runSize,
      windowBase: this.window.base,
      windowSize: this.window.size,
      syscallReturn: this.returnPath,
    };
  }

  /** The vCPU's FPU/SSE state as a 512-byte FXSAVE image (from KVM_GET_FPU). */
  getFxsave(): Uint8Array {
    const f = this.fd.get(KVM.GET_FPU, SIZEOF.kvm_fpu);
    const out = new Uint8Array(FXSAVE_SIZE);
    const o = new DataView(out.buffer);
    o.setUint16(FX.cwd, f.readUInt16LE(FPU.fcw), true);
    o.setUint16(FX.swd, f.readUInt16LE(FPU.fsw), true);
    o.setUint16(FX.twd, f.readUInt8(FPU.ftwx), true);
    o.setUint16(FX.fop, f.readUInt16LE(FPU.last_opcode), true);
    o.setBigUint64(FX.rip, f.readBigUInt64LE(FPU.last_ip), true);
    o.setBigUint64(FX.rdp, f.readBigUInt64LE(FPU.last_dp), true);
    o.setUint32(FX.mxcsr, f.readUInt32LE(FPU.mxcsr), true);
    o.setUint32(FX.mxcsr_mask, 0xffff, true);
    out.set(f.subarray(FPU.fpr, FPU.fpr + 128), FX.st);
    out.set(f.subarray(FPU.xmm, FPU.xmm + 256), FX.xmm);
    return out;
  }

  /** Load a 512-byte FXSAVE image into the vCPU (KVM_SET_FPU). */
  setFxsave(fx: Uint8Array): void {
    const i = new DataView(fx.buffer, fx.byteOffset, FXSAVE_SIZE);
    const f = Buffer.alloc(SIZEOF.kvm_fpu);
    f.set(fx.subarray(FX.st, FX.st + 128), FPU.fpr);
    f.writeUInt16LE(i.getUint16(FX.cwd, true), FPU.fcw);
    f.writeUInt16LE(i.getUint16(FX.swd, true), FPU.fsw);
    f.writeUInt8(i.getUint16(FX.twd, true) & 0xff, FPU.ftwx);
    f.writeUInt16LE(i.getUint16(FX.fop, true), FPU.last_opcode);
    f.writeBigUInt64LE(i.getBigUint64(FX.rip, true), FPU.last_ip);
    f.writeBigUInt64LE(i.getBigUint64(FX.rdp, true), FPU.last_dp);
    f.set(fx.subarray(FX.xmm, FX.xmm + 256), FPU.xmm);
    // A reserved MXCSR bit would make the restore fault (#GP): keep only the architectural ones.
    f.writeUInt32LE(i.getUint32(FX.mxcsr, true) & 0xffff, FPU.mxcsr);
    this.fd.set(KVM.SET_FPU, f);
  }
}
