/**
 * The process platform: the program runs as a host process started from mapvisor's stub
 * (dist/stubs/mapvisor-stub, built from src/platform/process/stub). The stub puts itself in fresh
 * user, pid, mount, network, ipc and uts namespaces with an empty root, drops every fd but the ones
 * given here, and installs a seccomp filter under which every system call the program makes traps into
 * the stub's SIGSYS handler and from there, through the control area, to this kernel. The host kernel
 * executes nothing for the program except what the stub does on the kernel's orders: map, protect and
 * unmap memory (the ops ring), start a thread, end a thread.
 *
 * Memory: the program's process maps the same anonymous-memory memfd and the same image as the VMM's
 * window, at the same addresses (see window.ts), so a load or store to mapped file data is a plain
 * memory access in the image's page cache, never an interception. The image is given to the program's
 * process read-only; a writable MAP_SHARED file mapping is a copy kept in step by the kernel.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { distPath } from '../../util/paths.js';
import { errnoName } from '../../abi/errno.js';
import { MapvisorError } from '../../errors.js';
import * as libc from '../../host/libc.js';
import { sleepMs } from '../../host/sleep.js';
import { spawnWithFds } from '../../host/spawn.js';
import { MAX_VCPUS } from '../layout.js';
import type { Exit, Platform } from '../platform.js';
import { initialFxsave, RFLAGS_FIXED, RFLAGS_IF } from '../regs.js';
import {
  ABI_VERSION,
  CTL_FD,
  CTL_MAGIC,
  FIRST_MAP_FD,
  H_DEAD,
  H_INNER_PID,
  H_GID,
  H_MAGIC,
  H_MAP_FDS,
  H_NAMESPACES,
  H_OPS_DONE,
  H_OPS_HEAD,
  H_READY,
  H_SETUP_ERRNO,
  H_SETUP_STEP,
  H_UID,
  H_VERSION,
  LAST_MAP_FD,
  OPK_MAP,
  OPK_PROTECT,
  OPK_SPAWN,
  OPK_UNMAP,
  OPS_CAP,
  OPS_OFF,
  OP_ADDR,
  OP_ARG,
  OP_FD,
  OP_FLAGS,
  OP_KIND,
  OP_LEN,
  OP_OFFSET,
  OP_PROT,
  OP_SIZE,
  SETUP_STEPS,
  SLOT_SIZE,
} from './abi.js';
import { ControlArea } from './control.js';
import { ProcessContext, type ProcessInfo } from './context.js';
import { ProcessWindow, type OpSink } from './window.js';
import { HostProcess } from './host-process.js';

/** The stub binary, built by `npm run build` (scripts/build-process-stub.mjs). */
export function stubPath(): string {
  return distPath('stubs', 'mapvisor-stub');
}

interface Op {
  kind: number;
  prot: number;
  flags: number;
  fd: number;
  addr: number;
  len: number;
  offset: number;
  arg: number;
}

/** How long the program's process may take to set itself up. */
const START_TIMEOUT_MS = 10_000;

export class ProcessPlatform implements Platform, OpSink, ProcessInfo {
  readonly name = 'process' as const;
  readonly sharedPrivateMappings = false;
  readonly writableImageMappings = false;
  readonly xsave = true;
  readonly window: ProcessWindow;
  readonly dirtyLog = null;
  private readonly ctl: ControlArea;
  private readonly ctlFd: number;
  private readonly spaceSize: number;
  /** Host fd → the fd the program's process has it as (read-only where it can be). */
  private readonly fdMap = new Map<number, { childFd: number; hostFd: number; own: boolean }>();
  private readonly pending: Op[] = [];
  private readonly contexts = new Map<number, ProcessContext>();
  /** The stub's outer process (mapvisor reaps it in close()). */
  private child: { pid: number } | null = null;
  private host: HostProcess | null = null;
  /** The context whose exit the kernel is serving (its stub waits, so it can apply ops at once). */
  private current: ProcessContext | null = null;
  private closed = false;

  private readonly stopRequested: () => boolean;

  private constructor(spaceSize: number, stopRequested: () => boolean) {
    this.spaceSize = spaceSize;
    this.stopRequested = stopRequested;
    const { fd, area } = ControlArea.create();
    this.ctlFd = fd;
    this.ctl = area;
    this.window = ProcessWindow.reserveMirrored(spaceSize, this);
  }

  static create(opts: { spaceSize: number; stopRequested?: () => boolean }): ProcessPlatform {
    if (!existsSync(stubPath())) {
      throw new MapvisorError('ENOSTUB', `the process platform's stub is not built (${stubPath()} is missing)`, 'run `npm run build` (it needs gcc)');
    }
    return new ProcessPlatform(opts.spaceSize, opts.stopRequested ?? ((): boolean => false));
  }

  get hwcap(): number {
    return hostHwcap();
  }

  cpuFingerprint(): string {
    return ProcessPlatform.fingerprint();
  }

  static fingerprint(): string {
    return hostCpuFingerprint();
  }

  declareFile(fd: number, writable: boolean): void {
    if (this.fdMap.has(fd)) return;
    if (this.child) throw new Error(`file ${fd} declared after the program's process started`);
    const childFd = FIRST_MAP_FD + this.fdMap.size;
    if (childFd > LAST_MAP_FD) throw new Error('too many files for the program process to map');
    // Read-only where the program does not write through it: the image is never writable from there.
    let hostFd = fd;
    let own = false;
    if (!writable) {
      hostFd = libc.open(`/proc/self/fd/${fd}`, libc.O_RDONLY | libc.O_CLOEXEC, 0);
      if (hostFd < 0) throw new MapvisorError('EPLATFORM', `cannot reopen a file read-only for the program's process (${errnoName(libc.errno())})`, 'report this as a mapvisor bug');
      own = true;
    }
    this.fdMap.set(fd, { childFd, hostFd, own });
  }

  createContext(id: number, rip: number, rsp: number): ProcessContext {
    if (id < 0 || id >= MAX_VCPUS) throw new RangeError(`at most ${MAX_VCPUS} threads`);
    const old = this.contexts.get(id);
    if (old) {
      // A slot used again: its last host thread must be gone before a new one starts there.
      const until = performance.now() + 1000;
      while (!old.hostThreadGone && performance.now() < until) sleepMs(1);
    }
    const c = new ProcessContext(id, this.ctl, this.spaceSize, this, this.stopRequested);
    c.onServe = (ctx): void => {
      this.current = ctx;
    };
    // The whole slot, the supervisor's own words (a stale kick flag) included.
    const off = ControlArea.slotOff(id);
    this.ctl.bytes.fill(0, off, off + SLOT_SIZE);
    c.setReg('rip', rip);
    c.setReg('rsp', rsp);
    c.setReg('rflags', RFLAGS_FIXED | RFLAGS_IF);
    c.setFxsave(initialFxsave());
    c.fsBase = 0;
    c.gsBase = 0;
    this.contexts.set(id, c);
    if (id !== 0) {
      this.push({ kind: OPK_SPAWN, prot: 0, flags: 0, fd: 0, addr: 0, len: 0, offset: 0, arg: id });
      // Start the host thread now, through the thread the kernel serves (the one calling clone): the
      // new thread's worker may otherwise wait for it while holding one of the --cpus places.
      if (this.child && this.current) {
        const r = this.current.applyOps();
        if (r) throw new MapvisorError('EPLATFORM', "the program's process ended while it started a thread", '');
      }
    }
    return c;
  }

  // --- ops: what the program's process must do to its memory ---
  map(guest: number, length: number, prot: number, hostFd: number, offset: number, shared: boolean): void {
    const f = this.fdMap.get(hostFd);
    if (!f) throw new Error(`the program's process cannot map host fd ${hostFd}: it was not declared`);
    this.push({ kind: OPK_MAP, prot, flags: shared ? libc.MAP_SHARED : libc.MAP_PRIVATE, fd: f.childFd, addr: guest, len: length, offset, arg: 0 });
  }
  protect(guest: number, length: number, prot: number): void {
    this.push({ kind: OPK_PROTECT, prot, flags: 0, fd: 0, addr: guest, len: length, offset: 0, arg: 0 });
  }
  unmap(guest: number, length: number): void {
    this.push({ kind: OPK_UNMAP, prot: 0, flags: 0, fd: 0, addr: guest, len: length, offset: 0, arg: 0 });
  }

  private push(op: Op): void {
    if (!this.child) {
      this.pending.push(op);
      return;
    }
    this.write(op);
  }

  /** Write one op into the ring; when it is full, have a waiting thread apply what is there first. */
  private write(op: Op): void {
    const head = this.ctl.u64(H_OPS_HEAD);
    const done = this.ctl.u64(H_OPS_DONE);
    if (head - done >= OPS_CAP) {
      // The thread the kernel serves waits in the stub's handler: it applies the ring now.
      const r = this.current?.applyOps();
      if (r) throw new MapvisorError('EPLATFORM', "the program's process ended while it applied memory changes", '');
      if (this.ctl.u64(H_OPS_HEAD) - this.ctl.u64(H_OPS_DONE) >= OPS_CAP) {
        // Nobody applied them: the program damaged the ring's counters or its thread's slot. It can
        // only hurt itself (its memory map goes wrong); start the ring again.
        this.ctl.setU64(H_OPS_DONE, head);
      }
    }
    const at = OPS_OFF + (head % OPS_CAP) * OP_SIZE;
    const dv = this.ctl.dv;
    dv.setUint32(at + OP_KIND, op.kind, true);
    dv.setUint32(at + OP_PROT, op.prot, true);
    dv.setUint32(at + OP_FLAGS, op.flags, true);
    dv.setInt32(at + OP_FD, op.fd, true);
    this.ctl.setU64(at + OP_ADDR, op.addr);
    this.ctl.setU64(at + OP_LEN, op.len);
    this.ctl.setU64(at + OP_OFFSET, op.offset);
    this.ctl.setU64(at + OP_ARG, op.arg);
    // The head last (a seq-cst store after the body): a stub thread never sees a half-written op.
    this.ctl.dv.setUint32(H_OPS_HEAD + 4, Math.floor((head + 1) / 0x1_0000_0000), true);
    Atomics.store(this.ctl.i32, H_OPS_HEAD >> 2, (head + 1) | 0);
  }

  /**
   * Spawn the stub now and let it set itself up (namespaces, filter) while the caller does other
   * work: start() then only waits for it. No file may be declared after this.
   */
  launch(): void {
    if (this.child) return;
    const c = this.ctl;
    c.dv.setUint32(H_MAGIC, CTL_MAGIC, true);
    c.dv.setUint32(H_VERSION, ABI_VERSION, true);
    c.dv.setUint32(H_UID, process.getuid?.() ?? 0, true);
    c.dv.setUint32(H_GID, process.getgid?.() ?? 0, true);
    c.dv.setUint32(H_NAMESPACES, process.env.MAPVISOR_PROCESS_NO_NAMESPACES === '1' ? 0 : 1, true);
    const files = [...this.fdMap.values()].sort((a, b) => a.childFd - b.childFd);
    c.dv.setUint32(H_MAP_FDS, files.length, true);
    if (CTL_FD !== 3) throw new Error('the control fd must be 3');
    files.forEach((f, i) => {
      if (f.childFd !== FIRST_MAP_FD + i) throw new Error('the mapped files must follow the control fd');
    });
    // posix_spawn, not child_process.spawn: 0.3 ms instead of 3-4 (a stub per process of the sandbox).
    this.child = { pid: spawnWithFds(stubPath(), [this.ctlFd, ...files.map((f) => f.hostFd)]) };
    this.launched = true;
  }

  private launched = false;

  /** Start the program's process: the stub, its namespaces and filter; then the ops so far. */
  start(): void {
    if (this.host) return;
    if (!this.launched) this.launch();
    const c = this.ctl;
    const until = performance.now() + START_TIMEOUT_MS;
    while (c.load(H_READY) === 0 && c.load(H_DEAD) === 0) {
      if (performance.now() > until) throw new MapvisorError('EPLATFORM', "the program's process did not start within 10 s", 'check the host: user namespaces and seccomp must be available');
      c.wait(H_READY, 0, 20);
    }
    if (c.load(H_READY) === 0) {
      const step = c.load(H_SETUP_STEP);
      const err = c.load(H_SETUP_ERRNO);
      const what = SETUP_STEPS[step] ?? `set-up step ${step}`;
      throw new MapvisorError(
        'EPLATFORM',
        `the process platform could not set up the program's process: ${what} failed (${err > 0 ? errnoName(err) : 'no errno'})`,
        step === 2 || step === 3 ? 'allow user namespaces on this host (sysctl user.max_user_namespaces > 0), or use --platform kvm' : 'use --platform kvm, or report this as a mapvisor bug',
      );
    }
    this.host = new HostProcess(this.child?.pid ?? 0, this.findInner(), this.ctl);
    const ops = this.pending.splice(0);
    // The first thread applies what the kernel mapped (and starts the threads of a restored program)
    // before any thread runs: a thread's worker must never wait for a thread that is not there.
    const first = this.contexts.get(0) ?? new ProcessContext(0, this.ctl, this.spaceSize, this, this.stopRequested);
    const failed = (): never => {
      throw new MapvisorError('EPLATFORM', "the program's process ended before the program started", 'run with MAPVISOR_DEBUG=1 and report it');
    };
    // Its first thread waits for orders (EV_START) before anything is written: a full ring is applied
    // through it.
    if (first.waitStarted()) failed();
    this.current = first;
    for (const op of ops) this.write(op);
    if (ops.length > 0 && first.applyOps()) failed();
    this.current = null;
  }

  /** Whether host process `pid` is a child of `parent` (the host's word). */
  private isChildOf(pid: number, parent: number): boolean {
    try {
      return readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).includes(String(pid));
    } catch {
      return false;
    }
  }

  /** The program's process: the only child of the stub's outer process (the kernel's word, not the control area's). */
  private findInner(): number {
    const outer = this.child?.pid ?? 0;
    for (let i = 0; i < 200; i++) {
      try {
        const kids = readFileSync(`/proc/${outer}/task/${outer}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        if (kids.length === 1 && kids[0]! > 1) return kids[0]!;
      } catch {
        break;
      }
      sleepMs(i < 50 ? 0.1 : 5); // (the outer process forks it at once: poll finely first)
    }
    throw new MapvisorError('EPLATFORM', "the program's process could not be found under the stub", 'report this as a mapvisor bug');
  }

  pid(): number {
    return this.host?.innerPid ?? 0;
  }

  death(): Exit | null {
    return this.host?.death() ?? null;
  }

  hostTid(nsTid: number): number {
    return this.host?.hostTid(nsTid) ?? 0;
  }

  /** The program's host process and the stub's outer process (for other threads' contexts). */
  pids(): { outer: number; inner: number } {
    return { outer: this.host?.outerPid ?? 0, inner: this.host?.innerPid ?? 0 };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Kill the program's process and let the outer process reap it (it waits for it, and then
    // exits): killing both at once would leave the program's process a zombie of the host's init.
    // The outer one is killed too if it has not ended soon after.
    const kill = (pid: number): void => {
      if (pid <= 1) return;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const outer = this.child?.pid ?? 0;
    let inner = this.host?.innerPid ?? 0;
    if (inner <= 1 && outer > 1) {
      // Launched but never started (a spare): no program code ran, so the control area's word for the
      // program's process is still the outer process's. Wait briefly for it: killing only the outer
      // process would leave the inner one behind.
      const until = performance.now() + 2000;
      while ((inner = this.ctl.load(H_INNER_PID)) <= 1 && this.ctl.load(H_DEAD) === 0 && performance.now() < until) this.ctl.wait(H_INNER_PID, inner, 5);
      if (inner > 1 && !this.isChildOf(inner, outer)) inner = 0; // (not ours: never kill a stranger)
    }
    kill(inner > 1 ? inner : outer);
    // Reap the outer process here: a worker thread's event loop may never run again to do it, and a
    // long-lived host process (the Sandbox API) would collect zombies. It ends within a fraction of a
    // millisecond of the kill: poll finely first.
    // Only if it has not ended after a second is it killed too (then its child may stay a zombie of
    // the host's init: under load a prompt kill left such zombies on a host whose init does not reap).
    for (let i = 0; outer > 1 && i < 3100 && libc.waitpidNoStatus(outer, null, libc.WNOHANG) === 0; i++) {
      if (i === 1100) kill(outer);
      sleepMs(i < 100 ? 0.05 : 1);
    }
    for (const f of this.fdMap.values()) if (f.own) libc.close(f.hostFd);
    this.window.destroy();
    this.ctl.unmap();
    libc.close(this.ctlFd);
  }
}

/** AT_HWCAP of this (the VMM's) process: what the host tells every program. */
function hostHwcap(): number {
  try {
    const b = readFileSync('/proc/self/auxv');
    for (let o = 0; o + 16 <= b.length; o += 16) {
      if (b.readBigUInt64LE(o) === 16n) return Number(b.readBigUInt64LE(o + 8) & 0xffff_ffffn);
    }
  } catch {
    // no auxv: no hwcap
  }
  return 0;
}

/** The host CPU's vendor, family, model and feature flags, hashed (a checkpoint refuses another). */
function hostCpuFingerprint(): string {
  const info = readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0] ?? '';
  const pick = (k: string): string => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  const flags = pick('flags').split(/\s+/).sort().join(' ');
  return 'host:' + createHash('sha256').update([pick('vendor_id'), pick('cpu family'), pick('model'), flags].join('|')).digest('hex').slice(0, 32);
}
