/**
 * Choosing a platform: which ones work on this host and why not (`mapvisor info`), what `auto` takes
 * (kvm where /dev/kvm opens, process elsewhere), and making one. The only module outside
 * src/platform/{kvm,process} that names both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { MapvisorError } from '../errors.js';
import { KvmSystem } from './kvm/kvm.js';
import { Machine } from './kvm/machine.js';
import { cpuidHash } from './kvm/cpuid.js';
import { Vcpu, type SyscallReturn } from './kvm/vcpu.js';
import { VcpuFd } from './kvm/kvm.js';
import { Window } from './window.js';
import type { Context, ContextHandle, Platform, PlatformName, PlatformProbe } from './platform.js';
import { ProcessPlatform, stubPath } from './process/machine.js';
import { ProcessContext, SPIN_THREADED } from './process/context.js';
import { ControlArea } from './process/control.js';
import { HostProcess } from './process/host-process.js';

export type PlatformChoice = PlatformName | 'auto';

function probeKvm(): PlatformProbe {
  try {
    KvmSystem.open().close();
    return { name: 'kvm', works: true, why: '/dev/kvm opens' };
  } catch (e) {
    const why = e instanceof MapvisorError ? e.message : String(e);
    return { name: 'kvm', works: false, why: existsSync('/dev/kvm') ? why : '/dev/kvm absent (this host offers no KVM)' };
  }
}

function readProc(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function probeProcess(): PlatformProbe {
  if (!existsSync(stubPath())) return { name: 'process', works: false, why: `the stub is not built (${stubPath()}): run npm run build` };
  const actions = readProc('/proc/sys/kernel/seccomp/actions_avail');
  if (actions === null) return { name: 'process', works: false, why: 'the host kernel has no seccomp filters (/proc/sys/kernel/seccomp missing)' };
  for (const a of ['trap', 'kill_process']) if (!actions.includes(a)) return { name: 'process', works: false, why: `the host's seccomp lacks the ${a} action` };
  const userns = Number(readProc('/proc/sys/user/max_user_namespaces') ?? '0');
  if (!(userns > 0)) return { name: 'process', works: false, why: 'user namespaces are disabled (user.max_user_namespaces = 0)' };
  return { name: 'process', works: true, why: 'seccomp trap + user namespaces available' };
}

/** Every platform, whether it works here, and why (not). */
export function probePlatforms(): PlatformProbe[] {
  return [probeKvm(), probeProcess()];
}

/** The platform `choice` means here; a one-line error when it cannot run. */
export function resolvePlatform(choice: PlatformChoice): PlatformName {
  if (choice === 'auto') {
    const kvm = probeKvm();
    if (kvm.works) return 'kvm';
    const proc = probeProcess();
    if (proc.works) return 'process';
    throw new MapvisorError('ENOPLATFORM', `no platform works on this host: kvm: ${kvm.why}; process: ${proc.why}`, 'run `mapvisor info` for details');
  }
  if (choice === 'kvm') {
    // Opening /dev/kvm gives the precise error (absent, no permission); the fix names the other way.
    try {
      KvmSystem.open().close();
    } catch (e) {
      if (e instanceof MapvisorError && probeProcess().works) throw new MapvisorError(e.code, e.message, `${e.fix}; or run on the process platform: --platform process`, e.exitCode);
      throw e;
    }
    return 'kvm';
  }
  const p = probeProcess();
  if (!p.works) throw new MapvisorError('ENOPLATFORM', `the process platform cannot run here: ${p.why}`, 'use --platform kvm, or fix what the message names');
  return 'process';
}

export interface PlatformOptions {
  spaceSize: number;
  syscallReturn: SyscallReturn;
  /** The VMM was told to stop: a wait for the program's thread gives up (process). */
  stopRequested?: () => boolean;
}

export function openPlatform(name: PlatformName, opts: PlatformOptions): Platform {
  return name === 'kvm' ? Machine.create(opts) : ProcessPlatform.create(opts);
}

/** The CPU fingerprint a program on `name` would see (before building anything: checkpoint checks). */
export function platformFingerprint(name: PlatformName): string {
  return name === 'kvm' ? cpuidHash(Machine.features().cpuid) : ProcessPlatform.fingerprint();
}

/**
 * The checkpoints a restore on `target` can continue, by the platform that took them, with the CPU
 * fingerprint the program must have seen there. Each platform takes its own. `process` also takes
 * `kvm`'s when this host's KVM has the same fingerprint: a program on KVM saw a subset of the host
 * CPU's features, and the state (registers, FXSAVE image, regions) has one format on both. The other
 * way round is refused: a program on the host process may have used features (AVX) KVM hides.
 */
export function acceptedCheckpoints(target: PlatformName): Partial<Record<PlatformName, string>> {
  const accepts: Partial<Record<PlatformName, string>> = { [target]: platformFingerprint(target) };
  if (target === 'process' && probeKvm().works) accepts.kvm = platformFingerprint('kvm');
  return accepts;
}

/** Run a context in this (another) worker thread: the same vCPU or thread slot, seen from here. */
export function attachContext(h: ContextHandle): Context {
  if (h.kind === 'kvm') return new Vcpu(h.id, new VcpuFd(h.fd, h.runAddr, h.runSize), Window.attach(h.windowBase, h.windowSize), h.syscallReturn);
  const ctl = new ControlArea(h.ctlAddr);
  return new ProcessContext(h.id, ctl, h.spaceSize, new HostProcess(h.outerPid, h.innerPid, ctl), () => false, SPIN_THREADED);
}
