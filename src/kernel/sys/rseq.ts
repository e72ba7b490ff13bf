/**
 * Restartable sequences (kernel/rseq.c, as Linux 6.1 has them: the sandbox's uname release).
 *
 * A thread registers one 32-byte `struct rseq` (rseq_len 32, 32-byte aligned) with a signature. The
 * kernel writes the CPU the thread runs on into cpu_id_start and cpu_id at registration and again
 * whenever it returns to the thread from a signal delivery. mapvisor's CPU is the one getcpu reports
 * (processCpu below, 0). A registered critical section (rseq->rseq_cs pointing at a `struct rseq_cs`)
 * that a signal delivery interrupts restarts at its abort_ip, checked as Linux's rseq_ip_fixup checks
 * it (version 0, no flags, addresses below TASK_SIZE, abort_ip outside the section, the signature in
 * the 4 bytes before abort_ip); a bad descriptor or an unwritable area is a SIGSEGV, as Linux's
 * force_sigsegv. A thread kicked out of guest code (a time slice, a kick) is preempted: its section
 * restarts too. Every thread reports CPU 0, so per-CPU data guarded by rseq is only safe when one thread
 * runs guest code at a time (--cpus 1).
 *
 * Registrations are per thread, kept by the thread's vCPU context: a new thread has none, a fork's
 * child has its parent's (not a vfork's: CLONE_VM), an exec drops it.
 */
import { E } from '../../abi/errno.js';
import type { Context } from '../../platform/platform.js';
import type { Kernel } from '../kernel.js';
import type { SyscallResult, SyscallTable } from '../types.js';

const RSEQ_SIZE = 32; // sizeof(struct rseq) of Linux 6.1 (ORIG_RSEQ_SIZE)
const RSEQ_FLAG_UNREGISTER = 1;
const RSEQ_CPU_ID_UNINITIALIZED = -1;
/** struct rseq: cpu_id_start u32, cpu_id u32, rseq_cs u64, flags u32. */
const OFF = { cpuIdStart: 0, cpuId: 4, rseqCs: 8, flags: 16 } as const;
/** Linux's TASK_SIZE_MAX on x86-64 (4-level paging). */
const TASK_SIZE = 2 ** 47 - 4096;
const PROT_READ = 1;
const PROT_WRITE = 2;

interface Registration {
  addr: number;
  len: number;
  sig: number;
}

const regs = new WeakMap<Context, Registration>();

/** The CPU a thread of `k` runs on, as getcpu and rseq's cpu_id report it. */
export function processCpu(_k: Kernel): number {
  return 0;
}

/** fork: the child's thread (`child`) inherits the registration of the thread that forked (`parent`); vfork's does not. */
export function rseqFork(parent: Context, child: Context, sharesVm: boolean): void {
  const r = regs.get(parent);
  if (r && !sharesVm) regs.set(child, { ...r });
  else regs.delete(child);
}

/** A context that starts a new thread, or a thread that execs: no registration. */
export function rseqForget(cpu: Context | null | undefined): void {
  if (cpu) regs.delete(cpu);
}

function writeCpuIds(k: Kernel, r: Registration, cpu: number): boolean {
  if (!k.mem.ok(r.addr, 8, PROT_WRITE)) return false;
  k.mem.writeU32(r.addr + OFF.cpuIdStart, cpu >>> 0);
  k.mem.writeU32(r.addr + OFF.cpuId, cpu >>> 0);
  return true;
}

/**
 * The thread of `cpu` left guest code and goes back to it (Linux's rseq_handle_notify_resume): a
 * signal is about to be delivered to it (rseq_signal_deliver, before the frame is built), or it was
 * kicked out of guest code (a time slice or a kick: a preemption). Restart an interrupted critical
 * section at its abort_ip and refresh the CPU ids. False means the thread must die by SIGSEGV.
 */
export function rseqNotifyResume(k: Kernel, cpu: Context): boolean {
  const r = regs.get(cpu);
  if (!r) return true;
  if (!ipFixup(k, cpu, r)) return false;
  return writeCpuIds(k, r, processCpu(k));
}

function ipFixup(k: Kernel, cpu: Context, r: Registration): boolean {
  if (!k.mem.ok(r.addr, RSEQ_SIZE, PROT_READ)) return false;
  const ptr = k.mem.readBigU64(r.addr + OFF.rseqCs);
  if (ptr === 0n) return true;
  if (ptr >= BigInt(TASK_SIZE)) return false;
  const csAddr = Number(ptr);
  if (!k.mem.ok(csAddr, 32, PROT_READ)) return false;
  // struct rseq_cs: version u32, flags u32, start_ip u64, post_commit_offset u64, abort_ip u64.
  const b = k.mem.read(csAddr, 32);
  const dv = new DataView(b.buffer, b.byteOffset, 32);
  const version = dv.getUint32(0, true);
  const csFlags = dv.getUint32(4, true);
  const start = dv.getBigUint64(8, true);
  const postCommit = dv.getBigUint64(16, true);
  const abort = dv.getBigUint64(24, true);
  const limit = BigInt(TASK_SIZE);
  if (start >= limit || start + postCommit >= limit || abort >= limit || version > 0) return false;
  if (abort - start < postCommit) return false; // abort_ip inside the section
  const abortIp = Number(abort);
  if (abortIp < 4 || !k.mem.ok(abortIp - 4, 4, PROT_READ)) return false;
  if (k.mem.readU32(abortIp - 4) !== r.sig) return false;
  const ip = cpu.regBig('rip');
  const clear = (): boolean => {
    if (!k.mem.ok(r.addr + OFF.rseqCs, 8, PROT_WRITE)) return false;
    k.mem.writeU64(r.addr + OFF.rseqCs, 0n);
    return true;
  };
  // Not within the section (unsigned: below start wraps to a large offset): only clear the pointer.
  if (((ip - start) & 0xffff_ffff_ffff_ffffn) >= postCommit) return clear();
  // The deprecated NO_RESTART flags, in the descriptor or in rseq->flags, are refused (Linux 6.1's rseq_warn_flags).
  if (csFlags !== 0) return false;
  if (k.mem.readU32(r.addr + OFF.flags) !== 0) return false;
  if (!clear()) return false;
  cpu.setRegBig('rip', abort);
  return true;
}

function rseq(k: Kernel, cpu: Context, addr: number, len: number, flags: number, sig: number): SyscallResult {
  const cur = regs.get(cpu);
  if (flags & RSEQ_FLAG_UNREGISTER) {
    if (flags & ~RSEQ_FLAG_UNREGISTER) return -E.EINVAL;
    if (!cur || cur.addr !== addr) return -E.EINVAL;
    if (len !== RSEQ_SIZE) return -E.EINVAL;
    if (cur.sig !== sig) return -E.EPERM;
    // rseq_reset_rseq_cpu_id: cpu_id_start 0, cpu_id RSEQ_CPU_ID_UNINITIALIZED.
    if (!k.mem.ok(addr, 8, PROT_WRITE)) return -E.EFAULT;
    k.mem.writeU32(addr + OFF.cpuIdStart, 0);
    k.mem.writeU32(addr + OFF.cpuId, RSEQ_CPU_ID_UNINITIALIZED >>> 0);
    regs.delete(cpu);
    return 0;
  }
  if (flags) return -E.EINVAL;
  if (cur) {
    if (cur.addr !== addr || len !== RSEQ_SIZE) return -E.EINVAL;
    if (cur.sig !== sig) return -E.EPERM;
    return -E.EBUSY;
  }
  if (addr % RSEQ_SIZE || len !== RSEQ_SIZE) return -E.EINVAL;
  if (addr + len > TASK_SIZE) return -E.EFAULT; // access_ok
  const r = { addr, len, sig };
  regs.set(cpu, r);
  // Linux writes the ids on the way back to the program; an area it cannot write is a SIGSEGV then.
  if (!writeCpuIds(k, r, processCpu(k))) return { kind: 'kill', signal: 11, reason: `SIGSEGV: the rseq area registered at 0x${addr.toString(16)} cannot be written` };
  return 0;
}

export const rseqSyscalls: SyscallTable = {
  rseq: (k, a, cpu) => rseq(k, cpu, a.u64(0), a.u32(1), a.i32(2), a.u32(3)),
};
