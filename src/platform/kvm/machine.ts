/**
 * A VM with no guest kernel: the KVM VM, its memory window, and the supervisor area (identity-map page
 * tables, GDT, TSS, IDT, trap stubs) written once before any vCPU runs. vCPUs are created on demand.
 */
import { KvmSystem, VcpuFd, type Vm } from './kvm.js';
import * as libc from '../../host/libc.js';
import { PROT_READ, PROT_WRITE } from '../../host/libc.js';
import { KVM_MEM_LOG_DIRTY_PAGES } from './structs.js';
import { buildGdtAndTss, buildIdt } from './descriptors.js';
import { cpuFeatures, initVcpu, type CpuFeatures } from './cpu.js';
import {
  EXCEPTION_STUBS_ADDR,
  KVM_TSS_ADDR,
  MAX_VCPUS,
  PAGE_SIZE,
  SUPERVISOR_END,
  SYSCALL_PAGE_ADDR,
} from './layout.js';
import { buildPageTables } from './pagetables.js';
import { loadStubs } from './stubs.js';
import { Vcpu, type SyscallReturn } from './vcpu.js';
import { Window } from '../window.js';
import { USER_START } from '../layout.js';
import type { Platform } from '../platform.js';
import { cpuidHash } from './cpuid.js';

export interface MachineOptions {
  /** Size of the guest address space in bytes (whole GiBs). */
  spaceSize: number;
  syscallReturn: SyscallReturn;
}

export class Machine implements Platform {
  readonly name = 'kvm' as const;
  readonly sharedPrivateMappings = true;
  readonly writableImageMappings = true;
  readonly system: KvmSystem;
  readonly vm: Vm;
  readonly window: Window;
  readonly features: CpuFeatures;
  readonly options: MachineOptions;
  /** XCR0 in force (null: XSAVE off, AVX hidden). Known after the first vCPU is made. */
  xcr0: bigint | null = null;
  private readonly vcpus: Vcpu[] = [];

  private constructor(system: KvmSystem, vm: Vm, window: Window, options: MachineOptions) {
    this.system = system;
    this.vm = vm;
    this.window = window;
    this.options = options;
    this.features = cpuFeatures(system);
  }

  /** The CPU features a VM would get on this host (to check a checkpoint before building a VM). */
  static features(): CpuFeatures {
    const system = KvmSystem.open();
    try {
      return cpuFeatures(system);
    } finally {
      system.close();
    }
  }

  static create(options: MachineOptions): Machine {
    const system = KvmSystem.open();
    const vm = system.createVm();
    vm.setTssAddr(KVM_TSS_ADDR);
    const window = Window.reserve(options.spaceSize);
    vm.setUserMemoryRegion(0, 0, 0, options.spaceSize, window.base);
    const m = new Machine(system, vm, window, options);
    m.buildSupervisorArea();
    return m;
  }

  private buildSupervisorArea(): void {
    const w = this.window;
    w.mapZero(0, SUPERVISOR_END, PROT_READ | PROT_WRITE);
    const sup = w.bytes(0, SUPERVISOR_END);
    const dv = new DataView(sup.buffer, sup.byteOffset, sup.byteLength);
    buildPageTables(dv, this.options.spaceSize);
    buildGdtAndTss(dv);
    buildIdt(dv);
    const stubs = loadStubs();
    sup.set(stubs.exceptions, EXCEPTION_STUBS_ADDR);
    // The syscall page (stub) and the iret-frame page after it; the guest sees both read-only.
    w.mapZero(SYSCALL_PAGE_ADDR, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE);
    w.bytes(SYSCALL_PAGE_ADDR, stubs.syscall.length).set(stubs.syscall);
    w.protect(SYSCALL_PAGE_ADDR, PAGE_SIZE, PROT_READ);
  }

  private dirtyBitmap: { addr: number; bytes: Uint8Array } | null = null;

  /** Turn on KVM dirty logging for the window (incremental checkpoints). */
  enableDirtyLog(): void {
    if (this.dirtyBitmap) return;
    this.vm.setUserMemoryRegion(0, KVM_MEM_LOG_DIRTY_PAGES, 0, this.window.size, this.window.base);
    const len = Math.ceil(this.window.size / PAGE_SIZE / 64) * 8;
    const addr = libc.mmap(0, len, PROT_READ | PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
    this.dirtyBitmap = { addr, bytes: new Uint8Array(libc.view(addr, len)) };
  }

  get dirtyLogging(): boolean {
    return this.dirtyBitmap !== null;
  }

  /** Guest page numbers the guest wrote since the last call (KVM_GET_DIRTY_LOG, which resets it). */
  takeDirtyPages(): number[] {
    const d = this.dirtyBitmap;
    if (!d) return [];
    this.vm.getDirtyLog(0, d.addr);
    const pages: number[] = [];
    const b = d.bytes;
    for (let i = 0; i < b.length; i++) {
      const v = b[i]!;
      if (v === 0) continue;
      for (let bit = 0; bit < 8; bit++) if (v & (1 << bit)) pages.push(i * 8 + bit);
    }
    return pages;
  }

  get hwcap(): number {
    return this.features.cpuid.find((e) => e.function === 1 && e.index === 0)?.edx ?? 0;
  }

  get xsave(): boolean {
    return this.xcr0 !== null;
  }

  cpuFingerprint(): string {
    return cpuidHash(this.features.cpuid);
  }

  /** The VM maps the host's files itself: nothing to declare. */
  declareFile(): void {}

  /** The VM is ready as created. */
  start(): void {}

  get dirtyLog(): Platform['dirtyLog'] {
    const dirtyLogging = (): boolean => this.dirtyLogging;
    return {
      enable: (): void => this.enableDirtyLog(),
      get enabled(): boolean {
        return dirtyLogging();
      },
      take: (): number[] => this.takeDirtyPages(),
    };
  }

  /** vCPU `id`: a new one, or the one a thread that ended left (KVM cannot destroy a vCPU). */
  createContext(id: number, rip: number, rsp: number): Vcpu {
    return this.vcpus[id] ?? this.createVcpu(id, rip, rsp);
  }

  /** Create vCPU `id` ready to run at CPL3 at `rip` with stack `rsp`. */
  createVcpu(id: number, rip: number, rsp: number): Vcpu {
    if (id >= MAX_VCPUS) throw new RangeError(`at most ${MAX_VCPUS} vCPUs`);
    const fd = VcpuFd.create(this.vm, id);
    this.xcr0 = initVcpu(fd, this.features, rip, rsp);
    const v = new Vcpu(id, fd, this.window, this.options.syscallReturn);
    this.vcpus[id] = v;
    return v;
  }

  /**
   * Empty the program's part of the window for another program (a new process after this one ended):
   * the VM, its supervisor area and its vCPUs stay, which saves creating a VM (its memory slot, page
   * tables and stubs) for the next fork. Not with dirty logging on (a checkpoint's base is per program).
   */
  recycle(mapped?: ReadonlyArray<readonly [number, number]>): boolean {
    if (this.dirtyBitmap) return false;
    // Releasing the whole 16 GiB range costs this KVM milliseconds (its MMU notifier walks it all):
    // release only what was mapped when that is known.
    if (mapped) for (const [start, len] of mapped) this.window.release(start, len);
    else this.window.release(USER_START, this.window.size - USER_START);
    return true;
  }

  /** Close the vCPUs and the VM, and unmap the memory window (the machine made it). */
  close(): void {
    for (const v of this.vcpus) v?.fd.close();
    this.vm.close();
    this.system.close();
    this.window.destroy();
  }
}
