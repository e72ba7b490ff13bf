/**
 * The VM worker: the thread that owns a VM and its kernel. A single-threaded program's vCPU runs here
 * (KVM_RUN blocks this thread while the program runs); once the program has threads, every vCPU runs in
 * a worker of its own and this thread serves their exits (serve.ts). The main thread starts it, kicks
 * it, sends it control commands (pause, resume, checkpoint, stop) and reads the result.
 */
import { existsSync, readFileSync, writeSync } from 'node:fs';
import { Network } from '../kernel/net/network.js';
import { MountTable, mountTableOf, setMountTable } from '../kernel/vfs/mounts.js';
import { join, resolve as resolvePath } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { MapvisorError } from '../errors.js';
import { ioCounters } from '../kernel/files/ext4file.js';
import { OpenFile, O_RDONLY, O_WRONLY } from '../kernel/files/file.js';
import { HostStream } from '../kernel/files/host.js';
import { Kernel } from '../kernel/kernel.js';
import { Doorbell, Slot } from '../kernel/mailbox.js';
import { kickThread, serveThreads } from '../kernel/serve.js';
import { nap, wakeOn } from '../kernel/nap.js';
import { Strace } from '../kernel/strace.js';
import { normalizePath } from '../kernel/sys/fs.js';
import { runTask, type TaskEnd } from '../kernel/task.js';
import { spawnProcess } from '../kernel/spawn.js';
import { Threads, type Thread, type ThreadStart } from '../kernel/threads.js';
import { ProcessTable, type ForkedSpace, type ProcessHost } from '../kernel/procs.js';
import { HostError } from '../host/errors.js';
import { E } from '../abi/errno.js';
import { ST } from '../kernel/mailbox.js';
import { WorkerPool } from './pool.js';
import { RootFs } from '../kernel/vfs/rootfs.js';
import { CACHE_BACKING_ID } from '../kernel/vfs/sharedcache.js';
import { procStart } from '../kernel/vfs/proc.js';
import { setGuestCpuid, type GuestCpuidEntry } from '../kernel/vfs/cpuinfo.js';
import * as libc from '../host/libc.js';
import { REGS, REGS_SIZE, type RegName } from '../platform/regs.js';
import { loadProgram } from '../loader/load.js';
import { vdsoImage } from '../vdso/image.js';
import { PROT_READ } from '../host/libc.js';
import { timekeeper } from '../vdso/timekeeper.js';
import { AnonMemory } from '../mm/anon.js';
import { AddressSpace } from '../mm/space.js';
import { captureState, restoreKernel, restoreSpace, restoreThreads, updateMemoryFile } from '../snapshot/snapshot.js';
import { LAYER_FILE, MEMORY_FILE, memoryPath, readCheckpoint, saveLayer, writeCheckpoint, type SavedState } from '../snapshot/state.js';
import { MAX_VCPUS } from '../platform/layout.js';
import { KickGuard } from '../platform/kick.js';
import type { Context, Platform } from '../platform/platform.js';
import { acceptedCheckpoints, openPlatform } from '../platform/select.js';
import { findExecutable } from './exec.js';
import { applyIdentity } from './identity.js';
import { CONTROL_CMD, CONTROL_SIGNALS, CONTROL_SIGNALS_MAIN, CONTROL_KICK_ALIVE, CONTROL_KICK_LOCK, CONTROL_PAUSE, CONTROL_STOP, CONTROL_WAKE, type ControlCommand, type VmStats, type WorkerConfig, type WorkerMessage } from './protocol.js';

/** Region-map backing ids: anonymous memory, the root file system image, restored memory (private). */
const ANON_BACKING_ID = 1;
const IMAGE_BACKING_ID = 2;
const FRESH_ANON_BACKING_ID = 3;
/** The copy-on-write layer over the image (a `cow` image). */
const LAYER_BACKING_ID = 4;

/** The image's file (and its layer's) can be mapped into the program's memory: register and declare them. */
function attachRoot(space: AddressSpace, machine: { declareFile(fd: number, writable: boolean): void }, root: RootFs): void {
  space.registerFile(IMAGE_BACKING_ID, root.fd);
  machine.declareFile(root.fd, false);
  if (root.layer) {
    space.registerFile(LAYER_BACKING_ID, root.layer.layerFd);
    machine.declareFile(root.layer.layerFd, false);
  }
  if (space.rules.copyWritableSharedFiles && root.mapsInPlace && !root.readOnly) {
    const cache = root.enableSharedCache();
    space.registerFile(CACHE_BACKING_ID, cache.fd);
    space.writableFiles.add(CACHE_BACKING_ID);
    machine.declareFile(cache.fd, true);
  }
}

const cfg = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: WorkerMessage): void => port.postMessage(m);
const control = new Int32Array(cfg.control);
wakeOn(control, CONTROL_WAKE);
/** The main thread kicks vCPU 0 while it runs in this thread; never once it is being closed. */
const kickGuard = new KickGuard(control, CONTROL_KICK_LOCK, CONTROL_KICK_ALIVE);
const commands = cfg.commands as MessagePort | undefined;
/** Threads: once the program has more than one, the kernel's thread must never wait in a call. */
let threadedKernel: { threads: { threaded: boolean } | null } | null = null;
const stop = {
  // A pause request (or a signal from the host) also interrupts a blocking call (single-threaded
  // programs): it is restarted after.
  stopRequested: (): boolean =>
    Atomics.load(control, CONTROL_STOP) !== 0 ||
    ((Atomics.load(control, CONTROL_PAUSE) !== 0 || Atomics.load(control, CONTROL_SIGNALS) !== 0 || Atomics.load(control, CONTROL_SIGNALS_MAIN) !== 0) && !(threadedKernel?.threads?.threaded ?? false)),
  /** Signals the host sent (bit N: signal N), taken once. */
  takeSignals: (): number => Atomics.exchange(control, CONTROL_SIGNALS, 0),
  takeMainSignals: (): number => Atomics.exchange(control, CONTROL_SIGNALS_MAIN, 0),
  stopForGood: (): boolean => Atomics.load(control, CONTROL_STOP) !== 0,
  mustNotBlock: (): boolean => threadedKernel?.threads?.threaded ?? false,
};


/** The address space's rules for file mappings on `p` (see Platform.sharedPrivateMappings). */
function rulesOf(p: Platform): { copyPrivateFiles: boolean; copyWritableSharedFiles: boolean } {
  return { copyPrivateFiles: !p.sharedPrivateMappings, copyWritableSharedFiles: !p.writableImageMappings };
}

/** A VM ready to run: what boot() or bootRestore() made. */
interface Booted {
  machine: Platform;
  space: AddressSpace;
  anon: AnonMemory[];
  kernel: Kernel;
  vcpu: Context;
  streams: HostStream[];
  inPlace: boolean;
  interpInPlace: boolean | null;
  /** A restored multithreaded program's threads, put back when it starts. */
  threads?: SavedState['threads'];
  /** A restore: when it began (performance.now()), to report its time to the first instruction. */
  restoreStarted?: number;
}

/** A VM built before its checkpoint is known (standby): used when the checkpoint's space size fits. */
interface Warm {
  machine: Platform;
  vcpu: Context;
}

/** Set once the program is handed to another VMM: the image and memory need no flush to disk then. */
let handedOver = false;
/** How long a handed-over VM waits before its teardown, leaving the CPUs to the successor's restore. */
const HANDOVER_TEARDOWN_DELAY_MS = 250;

function newKernel(space: AddressSpace, root: RootFs | null, exePath: string, argv: string[]): { kernel: Kernel; streams: HostStream[] } {
  const strace = cfg.strace ? new Strace((line) => writeSync(cfg.traceFd, line)) : null;
  // --init: the program is pid 2, a child of the kernel's own init (pid 1).
  const pid = cfg.init && !cfg.restore ? 2 : 1;
  const net = new Network({ policy: cfg.net, publish: cfg.publish, onListening: (event) => post({ type: 'listening', event }) });
  if (cfg.mounts?.length) {
    const mounts = MountTable.open(cfg.mounts);
    setMountTable(net, mounts);
    if (root) mounts.createMountPoints(root.fs);
  }
  const kernel = new Kernel({ space, stop, identity: { pid, uid: 0, gid: 0 }, cpus: cfg.cpus, strace, exePath, root, argv, net });
  if (pid !== 1) {
    kernel.pgid = 1;
    kernel.sid = 1;
  }
  const streams = cfg.stdio.map((fd, i) => new HostStream(fd, ['stdin', 'stdout', 'stderr'][i]!, kernel.mem, stop));
  streams.forEach((s, i) => kernel.fds.install(new OpenFile(s, i === 0 ? O_RDONLY : O_WRONLY), false, i));
  return { kernel, streams };
}

function anonFile(): string | null {
  return cfg.memoryDir ? join(cfg.memoryDir, MEMORY_FILE) : null;
}

/** A new program: load its ELF (and interpreter) and build its stack. */
function boot(root: RootFs | null): Booted {
  const { main: exe, interp } = findExecutable(root, cfg.programPath);
  const machine = openPlatform(cfg.platform, { spaceSize: cfg.spaceSize, syscallReturn: cfg.syscallReturn, stopRequested: stop.stopForGood });
  const anon = new AnonMemory(ANON_BACKING_ID, anonFile());
  const space = new AddressSpace(machine.window, anon, { size: cfg.spaceSize, stackTop: cfg.spaceSize, stackSize: cfg.stackSize, memLimit: cfg.memLimit }, rulesOf(machine));
  machine.declareFile(anon.fd, true);
  if (root) attachRoot(space, machine, root);
  const loaded = loadProgram(space, exe, {
    argv: cfg.argv,
    envp: cfg.envp,
    execfn: cfg.argv[0] ?? cfg.programPath,
    uid: cfg.identity?.uid ?? 0,
    gid: cfg.identity?.gid ?? 0,
    hwcap: machine.hwcap,
    random: new Uint8Array(randomBytes(16)),
    vdso: vdsoImage(),
  }, interp);
  const { kernel, streams } = newKernel(space, root, root ? normalizePath(cfg.programPath) : resolvePath(cfg.programPath), cfg.argv);
  kernel.attachVvar(loaded.vvar);
  procStart(kernel, cfg.envp);
  if (cfg.identity) applyIdentity(kernel, cfg.identity);
  const vcpu = machine.createContext(0, loaded.entry, loaded.sp);
  if (cfg.memoryDir && machine.dirtyLog) {
    // Memory in a file: track what changes between checkpoints (the guest's stores and the VMM's).
    machine.dirtyLog.enable();
    kernel.mem.vmmDirty = new Set();
    anon.freedSinceCheckpoint = [];
  }
  return { machine, space, anon: [anon], kernel, vcpu, streams, inPlace: loaded.inPlace, interpInPlace: interp ? loaded.interpInPlace : null };
}

/** A program from a checkpoint: its regions mapped from the memory file, its state put back. */
function bootRestore(root: RootFs | null, state: SavedState, dir: string, inPlace: boolean, warm: Warm | null, started: number): Booted {
  const firstVcpu = state.threads ? state.threads.list[0]!.vcpu : 0;
  const fits = warm !== null && warm.machine.window.size === state.space.size && firstVcpu === 0;
  if (warm && !fits) {
    warm.machine.close();
  }
  const machine = fits ? warm.machine : openPlatform(cfg.platform, { spaceSize: state.space.size, syscallReturn: 'sregs', stopRequested: stop.stopForGood });
  const memPath = memoryPath(dir, state);
  // In place: continue on the checkpoint's memory file. Otherwise map it MAP_PRIVATE (pages load on
  // first touch, clones share them, the file never changes) and allocate new memory in a fresh file.
  const saved = new AnonMemory(state.space.anonId, memPath, { used: state.space.anonUsed });
  // A platform whose program process keeps private copies of a MAP_PRIVATE mapping (process) cannot
  // share the checkpoint's pages copy-on-write with the VMM: it continues on a copy of the file.
  const copied = !inPlace && !machine.sharedPrivateMappings ? AnonMemory.copyOf(saved, state.space.anonId, state.space.anonUsed) : null;
  if (copied) {
    saved.close();
    inPlace = true;
  }
  const base = copied ?? saved;
  const fresh = inPlace ? base : new AnonMemory(FRESH_ANON_BACKING_ID, null);
  const space = new AddressSpace(
    machine.window,
    fresh,
    {
      size: state.space.size,
      stackTop: state.space.stackTop,
      stackSize: state.space.stackSize,
      memLimit: state.space.memLimit,
    },
    rulesOf(machine),
  );
  machine.declareFile(fresh.fd, true);
  if (!inPlace) {
    space.registerFile(state.space.anonId, saved.fd);
    space.privateAnon.add(state.space.anonId);
    machine.declareFile(saved.fd, false);
  }
  if (root) attachRoot(space, machine, root);
  restoreSpace(space, state);
  const { kernel, streams } = newKernel(space, root, state.program.exePath, state.program.argv);
  procStart(kernel, state.program.envp ?? []);
  // A single-threaded program's vCPU gets its registers here; a threaded one's threads get theirs in
  // execute(), each on the vCPU it had (this one is the first thread's).
  const vcpu = fits ? warm.vcpu : machine.createContext(firstVcpu, 0, 0);
  restoreKernel(kernel, vcpu, state, streams);
  // The clocks continue from the checkpoint's (never back), and the vDSO's page is current before the
  // first instruction.
  if (state.clock) timekeeper().keepMonotonicFrom(BigInt(state.clock.monotonicNs));
  // The page is fresh memory of this run's (never the checkpoint's file, which must not change).
  const vvar = space.regions.regions().find((r) => r.tag === 'vvar');
  if (vvar && space.map({ addr: vvar.start, length: vvar.end - vvar.start, prot: PROT_READ, shared: false, fixed: true, noReplace: false, tag: 'vvar' }) >= 0) {
    kernel.attachVvar(vvar.start);
  }
  return {
    machine,
    space,
    anon: inPlace ? [base] : [saved, fresh],
    kernel,
    vcpu,
    streams,
    inPlace: false,
    interpInPlace: null,
    threads: state.threads,
    restoreStarted: started,
  };
}

/** This VMM run (a checkpoint records it; same run + same directory = incremental). */
const RUN_ID = randomUUID();

function sameRun(dir: string): boolean {
  try {
    const s = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { state?: { run?: string } };
    return s.state?.run === RUN_ID && existsSync(join(dir, MEMORY_FILE));
  } catch {
    return false;
  }
}

/** Paused at an exit boundary: answer control commands until resumed or stopped. */
/** What the pause loop asks of the running sandbox's process table (exec and its signals). */
interface ProcessOps {
  exec(c: Extract<ControlCommand, { cmd: 'exec' }>): number;
  signal(pid: number, sig: number): void;
}

function pauseLoop(b: Booted, ops: ProcessOps): 'resume' | TaskEnd {
  post({ type: 'paused' });
  for (;;) {
    const seen = Atomics.load(control, CONTROL_CMD);
    for (let m = commands ? receiveMessageOnPort(commands) : undefined; m; m = commands ? receiveMessageOnPort(commands) : undefined) {
      const c = m.message as ControlCommand;
      try {
        switch (c.cmd) {
          case 'checkpoint': {
            const procs = b.kernel.procs;
            if (procs && (procs.count > 1 || procs.kernelInit)) {
              throw new MapvisorError(
                'ECHECKPOINT',
                procs.kernelInit ? 'the sandbox runs with --init, and checkpoints of a process tree are not supported yet' : `the sandbox holds ${procs.count} processes, and checkpoints of a process tree are not supported yet`,
                'take the checkpoint while the program runs alone (before it forks, or after its children ended and were reaped)',
              );
            }
            const anon = b.anon[0]!;
            if (c.inPlace && !anon.path) throw new MapvisorError('ECHECKPOINT', 'an in-place checkpoint needs the memory in a file', 'run with --memory-dir DIR');
            const anonPath = anon.path ?? `/proc/${process.pid}/fd/${anon.fd}`;
            const t0 = performance.now();
            // The image as the checkpoint records it: on disk, or (a hand-over to another VMM, which maps
            // the same page cache) sealed in memory only.
            b.kernel.root?.sync(!c.inPlace);
            const materialized: Array<[number, number]> = [];
            const state = captureState(b.kernel, b.vcpu, b.space, b.machine.cpuFingerprint(), b.machine.name, cfg.programPath, RUN_ID, materialized);
            // A copy-on-write image: the checkpoint keeps a copy of the layer (sparse: the changed pages),
            // except for a hand-over onto a layer that lasts (the successor continues on it).
            const layer = b.kernel.root?.layer;
            if (layer && state.image?.layer && (!c.inPlace || b.kernel.root!.spec.layer === undefined)) {
              saveLayer(c.dir, `/proc/${process.pid}/fd/${layer.layerFd}`);
              state.image.layer.saved = true;
            }
            // With dirty logging (--memory-dir), a later checkpoint of this run into the same directory
            // writes only the pages changed since the previous one.
            const again = !c.inPlace && sameRun(c.dir); // a later checkpoint of this run into the same directory
            const incremental = again && (b.machine.dirtyLog?.enabled ?? false);
            let full: SavedState;
            let pages = -1;
            if (incremental) {
              const dirty = new Set([...(b.machine.dirtyLog?.take() ?? []), ...(b.kernel.mem.vmmDirty ?? [])]);
              pages = updateMemoryFile(join(c.dir, MEMORY_FILE), b.space, dirty, materialized);
              full = writeCheckpoint(c.dir, state, join(c.dir, MEMORY_FILE), false, true);
            } else {
              if (c.inPlace) handedOver = true; // the memory file stays where it is, in the page cache
              full = writeCheckpoint(c.dir, state, anonPath, c.inPlace);
              // The copy is the new base (not after a hand-over: this VM ends, and scanning the log of
              // the whole window costs milliseconds of downtime).
              if (b.machine.dirtyLog?.enabled && !c.inPlace) b.machine.dirtyLog.take();
            }
            b.kernel.mem.vmmDirty?.clear();
            if (anon.freedSinceCheckpoint) anon.freedSinceCheckpoint.length = 0;
            // Why a checkpoint that could have been incremental (same run, same directory) was not.
            const why = again && !incremental && !b.machine.dirtyLog ? { why: `a full copy: the ${b.machine.name} platform keeps no dirty-page log` } : {};
            post({ type: 'reply', id: c.id, ok: true, result: { dir: c.dir, memoryBytes: full.memory.size, ms: performance.now() - t0, incremental, pagesWritten: pages, ...why } });
            // A hand-over: the program continues in another VMM; this VM ends now.
            if (c.inPlace) return { kind: 'stopped' };
            break;
          }
          case 'resume':
            Atomics.store(control, CONTROL_PAUSE, 0);
            post({ type: 'reply', id: c.id, ok: true, result: {} });
            return 'resume';
          case 'stats':
            post({ type: 'reply', id: c.id, ok: true, result: b.kernel.stats.report() });
            break;
          case 'exec':
            post({ type: 'reply', id: c.id, ok: true, result: { pid: ops.exec(c) } });
            break;
          case 'signal':
            ops.signal(c.pid, c.sig);
            post({ type: 'reply', id: c.id, ok: true, result: {} });
            break;
        }
      } catch (e) {
        const err = e as Error;
        post({ type: 'reply', id: c.id, ok: false, error: e instanceof MapvisorError ? e.oneLine() : err.message });
      }
    }
    if (stop.stopForGood()) return { kind: 'stopped' };
    Atomics.wait(control, CONTROL_CMD, seen, 200);
  }
}

/** A process's machine and what the worker keeps for it (Kernel.machine). */
interface MachineEntry {
  machine: Platform;
  /** Every context the machine has made (KVM cannot destroy a vCPU: ended threads' are reused). */
  allVcpus: Context[];
  /** The slot of the worker that last ran each vCPU: a vCPU whose thread ended is reused once it is gone. */
  lastSlot: Map<number, Slot>;
  /** The process's own anonymous memory (null: the first process's, closed with the boot's). */
  anon: AnonMemory | null;
  closed: boolean;
}
const entryOf = (k: Kernel): MachineEntry => k.machine as MachineEntry;

/** Host memory a new machine takes besides the program's own (measured here: 41 MiB per 16 GiB kvm VM). */
function machineCost(platform: string, spaceSize: number): number {
  return platform === 'kvm' ? Math.ceil(spaceSize / 2 ** 30) * 2.6 * 2 ** 20 + 4 * 2 ** 20 : 8 * 2 ** 20;
}

/** Whether the host can give `bytes` and keep a reserve (5% of its memory, at least 256 MiB). */
function hostHasRoomFor(bytes: number): boolean {
  try {
    const info = readFileSync('/proc/meminfo', 'utf8');
    const kib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN) * 1024;
    const avail = kib('MemAvailable');
    const total = kib('MemTotal');
    if (!Number.isFinite(avail) || !Number.isFinite(total)) return true;
    return avail - bytes >= Math.max(256 * 2 ** 20, total * 0.05);
  } catch {
    return true;
  }
}

/** Backing ids for forked processes' anonymous memory: one per process, never reused. */
let nextAnonId = 100;

function execute(t0: bigint, root: RootFs | null, b: Booted): WorkerMessage {
  const { machine, space, kernel, vcpu, streams } = b;
  const slots = new Map<number, Slot>();
  const doorbell = Doorbell.create();
  // --cpus: how many vCPUs may run guest code at once (the kernel's own thread is not counted).
  const cpuGate = new Int32Array(new SharedArrayBuffer(16)); // [running, limit, waiting]
  cpuGate[1] = Math.max(1, cfg.cpus);
  // Two spare workers: a fork (or a new thread) then starts at once, and a fork-and-wait loop reuses them.
  const pool = new WorkerPool(cpuGate.buffer as SharedArrayBuffer, 2);
  const first: MachineEntry = { machine, allVcpus: [vcpu], lastSlot: new Map(), anon: null, closed: false };
  kernel.machine = first;
  kernel.hwcap = machine.hwcap;
  // /proc/cpuinfo's flags: the VM's CPUID on kvm, the host's own on process.
  setGuestCpuid((machine as { features?: { cpuid: GuestCpuidEntry[] } }).features?.cpuid ?? null, machine.xsave);
  const entries: MachineEntry[] = [first];
  const newVcpu = (e: MachineEntry, id: number): Context => {
    const v = e.machine.createContext(id, 0, 0);
    const at = e.allVcpus.findIndex((c) => c.id === id);
    if (at >= 0) e.allVcpus[at] = v;
    else e.allVcpus.push(v);
    return v;
  };
  const regsOf = (init: ThreadStart): Buffer => {
    const regs = Buffer.alloc(REGS_SIZE);
    for (const [name, value] of Object.entries(init.regs)) regs.writeBigUInt64LE(BigInt.asUintN(64, value!), REGS[name as RegName]);
    return regs;
  };
  const kick = (t: Thread): void => {
    const s = slots.get(t.tid);
    if (s && !s.gone) kickThread(t, s);
    else t.cpu.requestExit(); // (not started yet, or its worker is gone: the flag alone)
  };
  const threads: Threads = new Threads(kernel, vcpu, {
    create: (k, init, parent) => {
      const e = entryOf(k);
      // A thread id (vCPU, thread slot) no live thread uses and whose last worker is gone, or a new one
      // (the machine's threads: the process's, and a vfork child's borrowing it).
      const inUse = new Set([...threads.byTid.values()].filter((t) => entryOf(t.k) === e).map((t) => t.cpu.id));
      const ids = new Set(e.allVcpus.map((c) => c.id));
      let id = e.allVcpus.find((c) => !inUse.has(c.id) && e.lastSlot.get(c.id)?.gone === true)?.id;
      if (id === undefined) {
        id = 0;
        while (ids.has(id)) id++;
        if (id >= MAX_VCPUS) return null;
      }
      const v = newVcpu(e, id);
      // A new thread has the FPU state of the thread that made it, as clone() gives it on Linux.
      v.putState({ regs: regsOf(init), fsBase: init.fsBase, gsBase: parent.gsBase, fpu: parent.getFxsave() });
      v.resumeUser(); // a reused vCPU last stopped in the syscall stub
      return v;
    },
    start: (t) => {
      const slot = Slot.create();
      slots.set(t.tid, slot);
      entryOf(t.k).lastSlot.set(t.cpu.id, slot);
      pool.run({ context: t.cpu.handle(), slot: slot.sab, doorbell: doorbell.sab });
    },
  });
  /** Close a process's machine once none of its vCPUs runs any more. */
  const closeEntry = (e: MachineEntry, ts: Thread[], mapped: Array<[number, number]> | undefined): void => {
    if (e.closed) return;
    e.closed = true;
    const until = performance.now() + 2000;
    for (;;) {
      const running = ts.filter((t) => {
        const s = slots.get(t.tid);
        return s !== undefined && !s.gone;
      });
      if (running.length === 0 || performance.now() > until) break;
      for (const t of running) kick(t);
      const s0 = slots.get(running[0]!.tid)!;
      Atomics.wait(s0.i32, 0, s0.state, 0.2); // the worker notifies as it lets go of the thread
    }
    e.anon?.close();
    // Keep a couple of emptied machines for the next forks (kvm: a VM costs milliseconds to make).
    if (spares.length < 2 && (e.machine.recycle?.(mapped) ?? false)) spares.push(e.machine);
    else e.machine.close();
  };
  /** Machines of ended processes, closed (or recycled) when the kernel is idle, or when one is needed. */
  const closing: Array<() => void> = [];
  const closePending = (): void => {
    for (let f = closing.shift(); f; f = closing.shift()) f();
  };
  const spares: Platform[] = [];
  /** process: empty spaces whose stub was launched ahead of need (a fork then only maps and waits). */
  const launched: ForkedSpace[] = [];
  /** Whether the program has made processes (spare machines then pay). */
  let forking = false;
  /** A new machine (or a recycled one) and an empty address space over it, with context 0 made. */
  const emptySpace = (like: Kernel): ForkedSpace | number => {
    if (spares.length === 0) closePending(); // an ended process's machine is about to be recycled: take it
    const spare = spares.findIndex((x) => x.window.size === like.space.layout.size);
    // A new machine costs the host memory of its own (kvm: its memory slot's reverse maps, ~2.5 MiB per
    // GiB of --space): fork answers EAGAIN before it would leave the host short, whatever --pids allows.
    if (spare < 0 && !hostHasRoomFor(machineCost(cfg.platform, like.space.layout.size))) return -E.EAGAIN;
    let m: Platform;
    try {
      m = spare >= 0 ? spares.splice(spare, 1)[0]! : openPlatform(cfg.platform, { spaceSize: like.space.layout.size, syscallReturn: cfg.syscallReturn, stopRequested: stop.stopForGood });
    } catch (err) {
      if (err instanceof HostError || err instanceof MapvisorError) return -E.ENOMEM; // no machine to be had: as a failed allocation
      throw err;
    }
    const anon = new AnonMemory(nextAnonId++, null);
    const childSpace = new AddressSpace(m.window, anon, { ...like.space.layout }, rulesOf(m));
    m.declareFile(anon.fd, true);
    if (root) attachRoot(childSpace, m, root);
    const cpu = m.createContext(0, 0, 0);
    const e: MachineEntry = { machine: m, allVcpus: [cpu], lastSlot: new Map(), anon, closed: false };
    return { space: childSpace, cpu, machine: e };
  };
  /** A launched spare if one fits (its files are declared: the caller needs no others), else a new space. */
  const takeSpace = (like: Kernel, needsFiles: boolean): ForkedSpace | number => {
    forking = true;
    const at = needsFiles ? -1 : launched.findIndex((x) => x.space.layout.size === like.space.layout.size);
    return at >= 0 ? launched.splice(at, 1)[0]! : emptySpace(like);
  };
  /** The kernel is idle: close ended processes' machines, and launch a spare where that pays. */
  const idle = (): void => {
    closePending();
    // (kvm has nothing to begin ahead: its ended machines are recycled instead)
    if (!forking || !machine.launch || launched.length > 0 || stop.stopForGood()) return;
    const made = emptySpace(kernel);
    if (typeof made === 'number') return;
    try {
      (made.machine as MachineEntry).machine.launch?.();
      launched.push(made);
    } catch {
      dropSpace(made);
    }
  };
  /** Everything is declared: the machine may start (process: its stub is spawned). */
  const startEntry = (made: ForkedSpace): void => {
    const e = made.machine as MachineEntry;
    e.machine.start();
    entries.push(e);
  };
  const dropSpace = (made: ForkedSpace): void => {
    const e = made.machine as MachineEntry;
    e.closed = true;
    e.anon?.close();
    made.space.close();
    e.machine.close();
  };
  /** Threads of each process, as last known (a process's are gone from the table when it ends). */
  const threadsOf = new Map<Kernel, Thread[]>();
  const host: ProcessHost = {
    forkSpace: (parent, start, parentCpu) => {
      // Memory shared with the parent (MAP_SHARED anonymous) is a file the child's machine must be told of.
      const needsFiles = parent.space.regions.regions().some((r) => r.backing.kind === 'anon' && r.shared);
      const made = takeSpace(parent, needsFiles);
      if (typeof made === 'number') return made;
      try {
        parent.space.forkInto(made.space, (fd, w) => (made.machine as MachineEntry).machine.declareFile(fd, w));
        made.cpu.putState({ regs: regsOf(start), fsBase: start.fsBase, gsBase: parentCpu.gsBase, fpu: parentCpu.getFxsave() });
        made.cpu.resumeUser();
        startEntry(made);
        return made;
      } catch (err) {
        dropSpace(made);
        if (err instanceof HostError) return -E.ENOMEM;
        throw err;
      } finally {
        parent.activate();
      }
    },
    newSpace: (k) => {
      const made = takeSpace(k, false);
      if (typeof made === 'number') return made;
      try {
        startEntry(made);
      } catch (err) {
        dropSpace(made);
        if (err instanceof HostError || err instanceof MapvisorError) return -E.ENOMEM;
        throw err;
      }
      return made;
    },
    moveThread: (t, cpu) => {
      const old = slots.get(t.tid);
      old?.set(ST.TERMINATE); // its worker waits for this call's answer: it lets go of the old context
      t.cpu.release?.(); // (process: the old host thread, in the parent's process, ends)
      t.cpu = cpu;
      threads.unstarted.push(t);
    },
    dropSpace: (made) => dropSpace(made),
    stopThread: (t) => {
      const s = slots.get(t.tid);
      const list = threadsOf.get(t.k) ?? [];
      list.push(t);
      threadsOf.set(t.k, list);
      const at = threads.unstarted.indexOf(t);
      if (at >= 0) threads.unstarted.splice(at, 1);
      if (s) {
        // Only a thread running guest code needs a kick; one that waits for an answer (its exit is
        // posted) must not get one: on process its host thread may be ending, and a signal then kills
        // the host process (a vfork child's thread lives in its parent's).
        const running = s.state === ST.RUNNING;
        s.set(ST.TERMINATE);
        if (running && !s.gone) kick(t);
      }
    },
    kick,
    release: (k) => {
      const e = entryOf(k);
      if (k.borrowsFrom) {
        // A vfork child that ended in its parent's memory: only its thread's context goes.
        for (const t of threadsOf.get(k) ?? []) t.cpu.release?.();
        threadsOf.delete(k);
        return;
      }
      if (e === first) return; // the first process's machine is closed as the sandbox ends
      const ts = threadsOf.get(k) ?? [];
      threadsOf.delete(k);
      const space = k.space;
      const mapped = space.regions.regions().map((r): [number, number] => [r.start, r.end - r.start]);
      closing.push(() => {
        closeEntry(e, ts, mapped);
        space.close();
      });
    },
    initEnded: () => {},
  };
  const kernelInit =
    kernel.identity.pid === 1
      ? null
      : new Kernel({ space, stop, identity: { pid: 1, uid: 0, gid: 0 }, cpus: cfg.cpus, strace: null, exePath: '/mapvisor-init', root, argv: ['mapvisor-init'], mem: kernel.mem, net: kernel.net });
  const procs = new ProcessTable(kernel, threads, host, cfg.pids, kernelInit);
  for (const s of streams) s.jobControl = { get: () => procs.foreground, set: (g) => procs.setForeground(g) };
  kernel.threads = threads;
  threadedKernel = kernel;
  if (b.threads) {
    // A restored threaded program: every thread on the vCPU it had, waiting threads still waiting.
    restoreThreads(kernel, threads, b.threads, (id) => (id === vcpu.id ? vcpu : newVcpu(first, id)));
  }
  try {
    // Every thread of a restored program exists now: the platform may start running (process: the
    // program's host process starts and applies every mapping, and every thread, before any runs).
    machine.start();
  } catch (e) {
    machine.close();
    throw e;
  }
  kickGuard.setAlive(true);
  post({
    type: 'ready',
    kick: vcpu.kickTarget(BigInt(libc.pthreadSelf())),
    platform: machine.name,
    restoreMs: b.restoreStarted === undefined ? null : performance.now() - b.restoreStarted,
  });
  procs.onDetachedExit = (k, status) => post({ type: 'exec-exit', pid: k.identity.pid, status });
  const ops: ProcessOps = {
    exec: (c) => {
      if (kernel.zombie) throw new MapvisorError('ENOTRUNNING', 'the program has ended', '');
      const files = c.stdio.map((fd, i) => new OpenFile(new HostStream(fd, ['stdin', 'stdout', 'stderr'][i]!, kernel.mem, stop), i === 0 ? O_RDONLY : O_WRONLY));
      return spawnProcess(kernel, c.spec, files).identity.pid;
    },
    signal: (pid, sig) => {
      const k = procs.get(pid);
      if (!k || k.zombie || k.parent) throw new MapvisorError('ESRCH', `no process ${pid} that exec started is running in the sandbox`, 'it has ended');
      procs.signal(k, sig, { signo: sig, code: 0 /* SI_USER */ });
    },
  };
  /** Serving processes (serveThreads) rather than running the single program's vCPU here. */
  let serving = false;
  const hooks = {
    paused: (): boolean => Atomics.load(control, CONTROL_PAUSE) !== 0,
    pause: (): 'resume' | TaskEnd => pauseLoop(b, ops),
  };
  // The single program's loop: a process that exec started while it was paused makes it serve processes.
  const singleHooks = {
    paused: hooks.paused,
    pause: (): 'resume' | TaskEnd | { kind: 'threaded' } => {
      const r = pauseLoop(b, ops);
      return r === 'resume' && !serving && threads.threaded ? { kind: 'threaded' } : r;
    },
  };
  // A pause asked for before the program ran (the OCI runtime's create) holds it before its first instruction.
  const held = !b.threads && hooks.paused() ? singleHooks.pause() : 'resume';
  let end: TaskEnd | { kind: 'threaded' } = b.threads ? { kind: 'threaded' } : held !== 'resume' ? held : runTask(vcpu, kernel, singleHooks);
  if (end.kind === 'threaded') {
    // Several threads: every vCPU now runs in a worker of its own and this thread serves them.
    if (!b.threads) {
      const main = threads.byTid.get(kernel.identity.pid)!;
      main.ready = main.park === null; // (a vfork parent waits for its child)
      threads.unstarted.unshift(main);
    }
    post({ type: 'threaded', doorbell: doorbell.sab });
    serving = true;
    end = serveThreads(kernel, threads, { slotOf: (t) => slots.get(t.tid)!, doorbell, contended: () => Atomics.load(cpuGate, 2) > 0, idle }, hooks);
  }
  kickGuard.setAlive(false); // from here on the vCPUs are closed
  pool.close();
  closePending();
  for (const made of launched.splice(0)) dropSpace(made);
  for (const m of spares.splice(0)) m.close();
  // Every other process ends with the sandbox: its threads were stopped with the first process's.
  for (const e of entries) if (e !== first) closeEntry(e, [], undefined);
  for (const p of procs.live()) if (p !== kernel) p.fds.closeAll();
  const exits: Record<string, number> = {};
  // (a recycled machine's vCPU serves several processes in turn: count each vCPU once)
  for (const c of new Set(entries.flatMap((e) => e.allVcpus))) for (const [r, n] of c.exitCounts) exits[r] = (exits[r] ?? 0) + n;
  const stats: VmStats = {
    ...kernel.stats.report(),
    exits,
    mapChanges: machine.window.mapChanges,
    mappedBytes: space.mappedBytes(),
    wallNs: Number(process.hrtime.bigint() - t0),
    xsave: machine.xsave,
    bytesIn: streams[0]!.bytesRead,
    bytesOut: streams[1]!.bytesWritten + streams[2]!.bytesWritten,
    execInPlace: b.inPlace,
    interpInPlace: b.interpInPlace,
    fileBytesRead: ioCounters.bytesRead,
    fileBytesWritten: ioCounters.bytesWritten,
    storage: root ? root.storage : null,
    block: root?.blockStats() ?? null,
    writtenBack: kernel.sharedFileMaps.writtenBack,
    pagesFilledOnFault: kernel.pagesFilledOnFault,
    imageMappedBytes: space.regions
      .regions()
      .filter((r) => r.backing.kind === 'file' && (r.backing.id === IMAGE_BACKING_ID || r.backing.id === LAYER_BACKING_ID))
      .reduce((a, r) => a + (r.end - r.start), 0),
  };
  // blk mode: shared file mappings are copies; write them back before the files and image are closed
  // (not after a hand-over: the program, and its copies, live on in the other VMM).
  if (!handedOver) {
    kernel.writeBackSharedMaps();
  }
  kernel.fds.closeAll();
  mountTableOf(kernel)?.close();
  kernel.net.close();
  kernel.close();
  if (handedOver) {
    // Unlock the image first: the successor waits for it, not for this VM's teardown. The program's
    // mappings of the image hold its open file description, and so the lock: unmap them first.
    for (const r of space.regions.regions()) {
      if (r.backing.kind === 'file' && root?.ownsBacking(r.backing.id)) machine.window.release(r.start, r.end - r.start);
    }
    root?.close(false);
    post({ type: 'released' });
    // The successor restores now, on the same CPUs: tear this VM down (KVM's work, heavy) after it.
    nap(HANDOVER_TEARDOWN_DELAY_MS);
  }
  machine.close();
  for (const a of b.anon) a.close();
  return { type: 'end', end, stats };
}

/** A checkpoint of a copy-on-write image: the layer to continue on (a copy of the saved one, or the live one). */
function restoredLayer(state: SavedState, restore: { dir: string; layer?: string }): { layer?: string; layerFrom?: string } {
  const l = state.image?.layer;
  if (!l) return {};
  if (!l.saved) return { layer: l.path };
  return { layerFrom: join(restore.dir, LAYER_FILE), ...(restore.layer !== undefined ? { layer: restore.layer } : {}) };
}

/** Standby: build the VM now, then wait for the word to restore (or a stop). */
function standBy(flag: Int32Array): Warm {
  const machine = openPlatform(cfg.platform, { spaceSize: cfg.spaceSize, syscallReturn: 'sregs', stopRequested: stop.stopForGood });
  const warm = { machine, vcpu: machine.createContext(0, 0, 0) };
  // Run the register path once (its ioctl bindings' first calls are slow): the restore then finds it warm.
  warm.vcpu.putState(warm.vcpu.captureState());
  post({ type: 'standby' });
  while (Atomics.load(flag, 0) === 0) {
    if (stop.stopForGood()) {
      machine.close();
      throw new MapvisorError('ESTOPPED', 'the standby VMM was stopped before it restored anything', '');
    }
    Atomics.wait(flag, 0, 0, 50);
  }
  return warm;
}

function main(): void {
  const t0 = process.hrtime.bigint();
  let state: SavedState | null = null;
  const warm = cfg.standby && cfg.restore ? standBy(new Int32Array(cfg.standby)) : null;
  const restoreStarted = performance.now();
  if (cfg.restore) {
    // Check the checkpoint (and the CPU it needs) before anything is built.
    state = readCheckpoint(cfg.restore.dir, acceptedCheckpoints(cfg.platform), cfg.platform);
  }
  const imageSpec = state?.image ? { path: state.image.path, mode: state.image.mode, storage: 'memory' as const, ...restoredLayer(state, cfg.restore!) } : cfg.image;
  const root = imageSpec ? RootFs.open(imageSpec, IMAGE_BACKING_ID, LAYER_BACKING_ID) : null;
  let result: WorkerMessage;
  try {
    const booted = state ? bootRestore(root, state, cfg.restore!.dir, cfg.restore!.inPlace, warm, restoreStarted) : boot(root);
    result = execute(t0, root, booted);
  } finally {
    // Flush and unlock the image before anyone hears the program ended (a hand-over closed it already).
    root?.close();
  }
  post(result);
}

try {
  main();
} catch (e) {
  const err = e as Error;
  if (e instanceof MapvisorError) {
    post({ type: 'error', error: { name: e.name, code: e.code, message: e.message, fix: e.fix, exitCode: e.exitCode } });
  } else {
    post({
      type: 'error',
      error: { name: err.name, code: 'EINTERNAL', message: err.message, fix: '', exitCode: 125, ...(err.stack ? { stack: err.stack } : {}) },
    });
  }
}
