/**
 * Thin typed wrappers over the three KVM file descriptors: the system (/dev/kvm), a VM and a vCPU.
 * Every failing ioctl raises KvmError naming the ioctl and errno. Nothing here knows about guests,
 * page tables or programs: that is src/vm.
 */
import { errnoName, E } from '../../abi/errno.js';
import { MapvisorError } from '../../errors.js';
import * as libc from '../../host/libc.js';
import { KVM, KVM_CAP, ioctlName } from './ioctl.js';
import {
  CPUID2,
  CPUID_ENTRY,
  MEMREGION,
  MSRS,
  MSR_ENTRY,
  SIZEOF,
  XCR,
  XCRS,
  DIRTY_LOG,
  ENABLE_CAP,
} from './structs.js';

/** A failed KVM ioctl or system call made by the VMM. */
export class KvmError extends MapvisorError {
  readonly op: string;
  readonly errno: number;
  constructor(op: string, errno: number, detail = '') {
    super(
      'EKVM',
      `${op} failed: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`,
      'this is a mapvisor or host KVM problem; run with --stats and report it',
    );
    this.name = 'KvmError';
    this.op = op;
    this.errno = errno;
  }
}

function check(rc: number, request: number, detail = ''): number {
  if (rc < 0) throw new KvmError(ioctlName(request), libc.errno(), detail);
  return rc;
}

export const KVM_API_VERSION = 12;

/** One CPUID leaf as KVM reports it. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** /dev/kvm: capabilities, supported CPUID, and VM creation. */
export class KvmSystem {
  readonly fd: number;
  readonly vcpuMmapSize: number;

  private constructor(fd: number) {
    this.fd = fd;
    const version = check(libc.ioctlInt(fd, KVM.GET_API_VERSION, 0), KVM.GET_API_VERSION);
    if (version !== KVM_API_VERSION) {
      libc.close(fd);
      throw new MapvisorError(
        'EKVMVERSION',
        `/dev/kvm speaks KVM API ${version}, mapvisor needs ${KVM_API_VERSION}`,
        'use a Linux kernel with the stable KVM API',
      );
    }
    this.vcpuMmapSize = check(libc.ioctlInt(fd, KVM.GET_VCPU_MMAP_SIZE, 0), KVM.GET_VCPU_MMAP_SIZE);
    for (const [name, cap] of [
      ['KVM_CAP_SYNC_REGS', KVM_CAP.SYNC_REGS],
      ['KVM_CAP_IMMEDIATE_EXIT', KVM_CAP.IMMEDIATE_EXIT],
      ['KVM_CAP_USER_MEMORY', KVM_CAP.USER_MEMORY],
    ] as const) {
      if (this.checkExtension(cap) <= 0) {
        throw new MapvisorError('EKVMCAP', `/dev/kvm lacks ${name}`, 'use a Linux kernel of 4.19 or newer');
      }
    }
  }

  /** Open /dev/kvm, with a clear error when it is missing or not permitted. */
  static open(path = '/dev/kvm'): KvmSystem {
    const fd = libc.open(path, libc.O_RDWR | libc.O_CLOEXEC, 0);
    if (fd < 0) {
      const err = libc.errno();
      if (err === E.ENOENT || err === E.ENXIO || err === E.ENODEV) {
        throw new MapvisorError(
          'ENOKVM',
          `${path} does not exist: this host offers no KVM`,
          'run on a Linux host with KVM (load kvm_intel/kvm_amd, or enable nested virtualization)',
        );
      }
      if (err === E.EACCES || err === E.EPERM) {
        throw new MapvisorError(
          'EKVMPERM',
          `no permission to open ${path}`,
          'add your user to the kvm group (sudo usermod -aG kvm $USER) or run as root',
        );
      }
      throw new KvmError(`open ${path}`, err);
    }
    return new KvmSystem(fd);
  }

  checkExtension(cap: number): number {
    const rc = libc.ioctlInt(this.fd, KVM.CHECK_EXTENSION, cap);
    return rc < 0 ? 0 : rc;
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the buffer until it fits. */
  supportedCpuid(): CpuidEntry[] {
    for (let n = 64; n <= 4096; n *= 2) {
      const buf = Buffer.alloc(SIZEOF.kvm_cpuid2 + n * SIZEOF.kvm_cpuid_entry2);
      buf.writeUInt32LE(n, CPUID2.nent);
      const rc = libc.ioctlPtr(this.fd, KVM.GET_SUPPORTED_CPUID, buf);
      if (rc < 0) {
        if (libc.errno() === E.E2BIG) continue;
        throw new KvmError('KVM_GET_SUPPORTED_CPUID', libc.errno());
      }
      return decodeCpuid(buf);
    }
    throw new KvmError('KVM_GET_SUPPORTED_CPUID', E.E2BIG);
  }

  createVm(): Vm {
    // KVM_CREATE_VM may be interrupted by a signal (a profiler's, a kick): try again.
    let rc = libc.ioctlInt(this.fd, KVM.CREATE_VM, 0);
    for (let i = 0; rc < 0 && libc.errno() === E.EINTR && i < 100; i++) rc = libc.ioctlInt(this.fd, KVM.CREATE_VM, 0);
    return new Vm(this, check(rc, KVM.CREATE_VM));
  }

  close(): void {
    libc.close(this.fd);
  }
}

function decodeCpuid(buf: Buffer): CpuidEntry[] {
  const n = buf.readUInt32LE(CPUID2.nent);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = CPUID2.entries + i * SIZEOF.kvm_cpuid_entry2;
    out.push({
      function: buf.readUInt32LE(at + CPUID_ENTRY.function),
      index: buf.readUInt32LE(at + CPUID_ENTRY.index),
      flags: buf.readUInt32LE(at + CPUID_ENTRY.flags),
      eax: buf.readUInt32LE(at + CPUID_ENTRY.eax),
      ebx: buf.readUInt32LE(at + CPUID_ENTRY.ebx),
      ecx: buf.readUInt32LE(at + CPUID_ENTRY.ecx),
      edx: buf.readUInt32LE(at + CPUID_ENTRY.edx),
    });
  }
  return out;
}

export function encodeCpuid(entries: readonly CpuidEntry[]): Buffer {
  const buf = Buffer.alloc(SIZEOF.kvm_cpuid2 + entries.length * SIZEOF.kvm_cpuid_entry2);
  buf.writeUInt32LE(entries.length, CPUID2.nent);
  entries.forEach((e, i) => {
    const at = CPUID2.entries + i * SIZEOF.kvm_cpuid_entry2;
    buf.writeUInt32LE(e.function, at + CPUID_ENTRY.function);
    buf.writeUInt32LE(e.index, at + CPUID_ENTRY.index);
    buf.writeUInt32LE(e.flags, at + CPUID_ENTRY.flags);
    buf.writeUInt32LE(e.eax >>> 0, at + CPUID_ENTRY.eax);
    buf.writeUInt32LE(e.ebx >>> 0, at + CPUID_ENTRY.ebx);
    buf.writeUInt32LE(e.ecx >>> 0, at + CPUID_ENTRY.ecx);
    buf.writeUInt32LE(e.edx >>> 0, at + CPUID_ENTRY.edx);
  });
  return buf;
}

/** A VM file descriptor. */
export class Vm {
  readonly system: KvmSystem;
  readonly fd: number;
  constructor(system: KvmSystem, fd: number) {
    this.system = system;
    this.fd = fd;
  }

  setUserMemoryRegion(slot: number, flags: number, guestPhys: number, size: number, hostAddr: number): void {
    const buf = Buffer.alloc(SIZEOF.kvm_userspace_memory_region);
    buf.writeUInt32LE(slot, MEMREGION.slot);
    buf.writeUInt32LE(flags, MEMREGION.flags);
    buf.writeBigUInt64LE(BigInt(guestPhys), MEMREGION.guest_phys_addr);
    buf.writeBigUInt64LE(BigInt(size), MEMREGION.memory_size);
    buf.writeBigUInt64LE(BigInt(hostAddr), MEMREGION.userspace_addr);
    check(libc.ioctlPtr(this.fd, KVM.SET_USER_MEMORY_REGION, buf), KVM.SET_USER_MEMORY_REGION, `slot ${slot}`);
  }

  setTssAddr(addr: number): void {
    check(libc.ioctlInt(this.fd, KVM.SET_TSS_ADDR, addr), KVM.SET_TSS_ADDR);
  }

  /** KVM_GET_DIRTY_LOG for `slot` into `bitmap` (one bit per 4 KiB page). */
  getDirtyLog(slot: number, bitmapAddr: number): void {
    const buf = Buffer.alloc(SIZEOF.kvm_dirty_log);
    buf.writeUInt32LE(slot, DIRTY_LOG.slot);
    buf.writeBigUInt64LE(BigInt(bitmapAddr), DIRTY_LOG.dirty_bitmap);
    check(libc.ioctlPtr(this.fd, KVM.GET_DIRTY_LOG, buf), KVM.GET_DIRTY_LOG);
  }

  enableCap(cap: number, args: readonly number[] = []): boolean {
    const buf = Buffer.alloc(SIZEOF.kvm_enable_cap);
    buf.writeUInt32LE(cap, ENABLE_CAP.cap);
    args.forEach((a, i) => buf.writeBigUInt64LE(BigInt(a), ENABLE_CAP.args + 8 * i));
    return libc.ioctlPtr(this.fd, KVM.ENABLE_CAP, buf) >= 0;
  }

  createVcpu(id: number): number {
    return check(libc.ioctlInt(this.fd, KVM.CREATE_VCPU, id), KVM.CREATE_VCPU);
  }

  close(): void {
    libc.close(this.fd);
  }
}

/**
 * A vCPU's file descriptor and its kvm_run page. Usable from any thread: the fd and the mapping are
 * process-wide, so a vCPU created by one worker can be driven by another.
 */
export class VcpuFd {
  readonly fd: number;
  readonly runAddr: number;
  readonly runSize: number;
  readonly run: DataView;

  constructor(fd: number, runAddr: number, runSize: number) {
    this.fd = fd;
    this.runAddr = runAddr;
    this.runSize = runSize;
    this.run = new DataView(libc.view(runAddr, runSize));
  }

  static create(vm: Vm, id: number): VcpuFd {
    const fd = vm.createVcpu(id);
    const size = vm.system.vcpuMmapSize;
    const addr = libc.mmap(0, size, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_SHARED, fd, 0);
    if (addr === -1) throw new KvmError('mmap kvm_run', libc.errno());
    return new VcpuFd(fd, addr, size);
  }

  /** KVM_RUN; returns 0 or -errno (EINTR after a kick, EFAULT for an access to unbacked memory). */
  runOnce(): number {
    const rc = libc.ioctlInt(this.fd, KVM.RUN, 0);
    return rc < 0 ? -libc.errno() : rc;
  }

  get(request: number, size: number): Buffer {
    const buf = Buffer.alloc(size);
    check(libc.ioctlPtr(this.fd, request, buf), request);
    return buf;
  }

  set(request: number, buf: Buffer): void {
    check(libc.ioctlPtr(this.fd, request, buf), request);
  }

  setCpuid(entries: readonly CpuidEntry[]): void {
    this.set(KVM.SET_CPUID2, encodeCpuid(entries));
  }

  setMsrs(msrs: ReadonlyArray<readonly [number, number | bigint]>): void {
    const buf = Buffer.alloc(SIZEOF.kvm_msrs + msrs.length * SIZEOF.kvm_msr_entry);
    buf.writeUInt32LE(msrs.length, MSRS.nmsrs);
    msrs.forEach(([index, data], i) => {
      const at = MSRS.entries + i * SIZEOF.kvm_msr_entry;
      buf.writeUInt32LE(index, at + MSR_ENTRY.index);
      buf.writeBigUInt64LE(BigInt(data), at + MSR_ENTRY.data);
    });
    const n = libc.ioctlPtr(this.fd, KVM.SET_MSRS, buf);
    if (n !== msrs.length) {
      const bad = n >= 0 ? msrs[n]?.[0] : undefined;
      throw new KvmError('KVM_SET_MSRS', n < 0 ? libc.errno() : E.EINVAL, bad === undefined ? '' : `MSR 0x${bad.toString(16)}`);
    }
  }

  getMsrs(indices: readonly number[]): bigint[] {
    const buf = Buffer.alloc(SIZEOF.kvm_msrs + indices.length * SIZEOF.kvm_msr_entry);
    buf.writeUInt32LE(indices.length, MSRS.nmsrs);
    indices.forEach((index, i) => buf.writeUInt32LE(index, MSRS.entries + i * SIZEOF.kvm_msr_entry + MSR_ENTRY.index));
    const n = libc.ioctlPtr(this.fd, KVM.GET_MSRS, buf);
    if (n !== indices.length) throw new KvmError('KVM_GET_MSRS', n < 0 ? libc.errno() : E.EINVAL);
    return indices.map((_, i) => buf.readBigUInt64LE(MSRS.entries + i * SIZEOF.kvm_msr_entry + MSR_ENTRY.data));
  }

  /** KVM_SET_XCRS with XCR0 = `xcr0`. */
  setXcr0(xcr0: bigint): void {
    const buf = Buffer.alloc(SIZEOF.kvm_xcrs);
    buf.writeUInt32LE(1, XCRS.nr_xcrs);
    buf.writeUInt32LE(0, XCRS.xcrs + XCR.xcr);
    buf.writeBigUInt64LE(xcr0, XCRS.xcrs + XCR.value);
    this.set(KVM.SET_XCRS, buf);
  }

  close(): void {
    libc.munmap(this.runAddr, this.runSize);
    libc.close(this.fd);
  }
}
