/**
 * Sandbox: run one Linux program in a mapvisor VM from Node. The CLI is built on it.
 *
 *   const r = await Sandbox.run('/path/to/busybox', ['echo', 'hi'], { stdout: 'pipe' });
 *   r.status === 0; r.stdout?.toString() === 'hi\n'
 *
 * The VM runs in a worker thread (KVM_RUN blocks); this class starts it, feeds and collects the
 * standard streams, enforces the timeout by kicking the vCPU, and resolves with the outcome.
 */
import { closeSync, createReadStream, createWriteStream, openSync } from 'node:fs';
import type { ListeningEvent, NetPolicy, Publish } from '../kernel/net/network.js';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import { join, resolve as resolvePath } from 'node:path';
import { SIG, signalName } from '../abi/signals.js';
import { MapvisorError, UsageError } from '../errors.js';
import * as libc from '../host/libc.js';
import { DEFAULT_SPACE, GIB } from '../platform/layout.js';
import { checkSpaceSize } from '../platform/layout.js';
import { prepareKicks } from '../platform/kick.js';
import type { SyscallReturn } from '../platform/platform.js';
import { resolvePlatform, type PlatformChoice } from '../platform/select.js';
import { PLATFORM_NAMES, type PlatformName } from '../platform/platform.js';
import { checkpointPlatform } from '../snapshot/state.js';
import { inspectProgram } from './program.js';
import { VmHandle, type VmConfig } from './vm-handle.js';
import { parseImageSpec } from '../kernel/vfs/rootfs.js';
import { MountTable, type MountSpec } from '../kernel/vfs/mounts.js';
import type { VmStats, WorkerMessage } from './protocol.js';
import type { StartIdentity } from './identity.js';

export type StdinOption = 'inherit' | 'ignore' | string | Uint8Array;
export type StdoutOption = 'inherit' | 'pipe';

export interface SandboxOptions {
  /** argv[0] as the program sees it (default: the program path). */
  argv0?: string;
  /** The program's environment as KEY=VALUE strings (default: a minimal PATH/HOME/TERM/LANG). */
  env?: string[];
  /** Bytes the program may map in all (like RLIMIT_AS). Default 4 GiB. */
  mem?: number;
  /** Guest address-space size (whole GiBs). Default 16 GiB. */
  space?: number;
  /** Stack size (RLIMIT_STACK). Default 8 MiB. */
  stack?: number;
  /** Seconds before the program is killed (SIGKILL). Default: none. */
  timeout?: number;
  strace?: boolean;
  /** Where --strace lines go (a host fd). Default: 2. */
  traceFd?: number;
  stdin?: StdinOption;
  stdout?: StdoutOption;
  stderr?: StdoutOption;
  /** CPUs the program is told it has. Default: the host's. */
  cpus?: number;
  /** The most processes the sandbox may hold at once (fork answers EAGAIN past it); default 256. */
  pids?: number;
  /** Run the program as pid 2 under a small init of the kernel's own that reaps orphans (like tini). */
  init?: boolean;
  /**
   * The network: 'none' (the default) gives the sandbox only a loopback of its own; 'host' makes its
   * AF_INET/AF_INET6 sockets host sockets (outbound allowed). AF_UNIX sockets are always the sandbox's.
   */
  net?: NetPolicy;
  /** Ports published to the host: the host listens on 127.0.0.1:hostPort and forwards each connection to the sandbox's port. */
  publish?: Publish[];
  /**
   * Host directories and files mounted into the sandbox (bind mounts): `host` (a directory or a regular
   * file) is served at `target` (an absolute path of the sandbox), read-write unless `readonly` (then
   * writes get EROFS). The kernel reads and writes the host files themselves; see src/kernel/vfs/mounts.ts.
   */
  mounts?: Array<{ host: string; target: string; readonly?: boolean }>;
  /**
   * A root file system: an ext4 image ("PATH[,ro|,cow]"); PROGRAM is then a path inside it. With
   * `cow`, the image is shared read-only and the program's changes go to a copy-on-write layer:
   * `layer` names a file that keeps them across runs (made when missing), else a temporary one.
   */
  image?: string | { path: string; mode?: 'rw' | 'ro' | 'cow'; layer?: string };
  /** How the image is reached: 'memory' (mapped, the default) or 'blk' (block device + cache). */
  storage?: 'memory' | 'blk';
  /** blk: bytes of block cache (default 256 MiB). */
  cache?: number;
  /** blk: 'none' opens the image with O_DIRECT (no host page cache); default 'writeback'. */
  cacheMode?: 'writeback' | 'none';
  /** blk: fill file mappings at mmap time ('eager', default) or on first touch ('fault': userfaultfd). */
  blkMmap?: 'eager' | 'fault';
  /** Keep the program's anonymous memory in DIR/memory.bin (a file) instead of host memory. */
  memoryDir?: string;
  /** How a syscall returns to the program: 'sregs' (default) or 'iretq'. */
  syscallReturn?: SyscallReturn;
  /**
   * What runs the program's code: 'kvm' (a VM with no guest kernel), 'process' (a host process whose
   * system calls are trapped by seccomp), or 'auto' (the default: kvm where /dev/kvm opens, else
   * process). The MAPVISOR_PLATFORM environment variable sets the default.
   */
  platform?: PlatformChoice;
  /** The first process's uid, gid, groups, working directory, hostname and rlimits (default: root in /). */
  identity?: StartIdentity;
}

/** A program to start in a running sandbox (Sandbox.exec; the OCI runtime's exec). */
export interface SandboxExecOptions {
  /** argv; a name without a slash is looked up in the image along PATH (of env, or the default). */
  args: string[];
  env?: string[];
  /** Working directory in the image (default /). */
  cwd?: string;
  uid?: number;
  gid?: number;
  groups?: number[];
  /**
   * Host fds for its stdin, stdout and stderr. The sandbox uses them until the process ends (the
   * caller closes them after `done`).
   */
  stdio: [number, number, number];
}

/** How a process that exec started ended: status as a shell shows it (128+N when killed by signal N). */
export interface SandboxExecResult {
  status: number;
  signal: number | null;
}

export interface SandboxResult {
  /** The exit status (0..255), or 128 + signal when the program was killed. */
  status: number;
  /** The signal that ended the program, or null when it exited. */
  signal: number | null;
  /** A one-line explanation when the program did not exit by itself. */
  reason: string | null;
  timedOut: boolean;
  stdout: Buffer | null;
  stderr: Buffer | null;
  stats: VmStats | null;
}

/** What checkpoint() reports. */
export interface CheckpointResult {
  dir: string;
  /** Size of the checkpoint's memory file. */
  memoryBytes: number;
  ms: number;
  /** Only pages dirtied since this run's previous checkpoint into the same directory were written. */
  incremental: boolean;
  /** Pages written by an incremental checkpoint (-1 for a full one). */
  pagesWritten: number;
  /** Why a checkpoint that could have been incremental was a full one (the platform has no dirty-page log). */
  why?: string;
}

/** Check the mounts now (one-line errors for a missing host path, a relative target...): the worker opens them again. */
function checkMounts(mounts: Array<{ host: string; target: string; readonly?: boolean }>): MountSpec[] {
  if (!Array.isArray(mounts)) throw new UsageError('mounts is not an array', 'give mounts: [{ host, target, readonly? }]');
  const specs = mounts.map((m) => ({ host: m?.host ? resolvePath(String(m.host)) : '', target: String(m?.target ?? ''), readonly: m?.readonly === true }));
  MountTable.open(specs).close();
  return specs;
}

/** Check the network options: ports in range, each host port once, no --publish under --net host. */
function checkPublish(net: NetPolicy, publish: Publish[]): Publish[] {
  if (net !== 'none' && net !== 'host') throw new UsageError(`net ${JSON.stringify(net)} is not none or host`, 'give --net none (the default) or --net host');
  const port = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
  const seen = new Set<number>();
  for (const p of publish) {
    if (!port(p.hostPort) || !port(p.port)) throw new UsageError(`publish ${p.hostPort}:${p.port} is not two ports from 1 to 65535`, 'give --publish HOST_PORT:PORT, e.g. --publish 8080:80');
    if (seen.has(p.hostPort)) throw new UsageError(`host port ${p.hostPort} is published twice`, 'publish each host port once');
    seen.add(p.hostPort);
  }
  if (net === 'host' && publish.length) throw new UsageError('--publish has no use with --net host: the sandbox\'s ports are the host\'s own', 'drop --publish, or use --net none');
  return publish.map((p) => ({ hostPort: p.hostPort, port: p.port }));
}

/** The platform when none is given: MAPVISOR_PLATFORM, else auto. */
export function defaultPlatform(): PlatformChoice {
  const env = process.env.MAPVISOR_PLATFORM;
  if (env === undefined || env === '') return 'auto';
  if (env === 'auto' || (PLATFORM_NAMES as readonly string[]).includes(env)) return env as PlatformChoice;
  throw new UsageError(`MAPVISOR_PLATFORM=${env} is not kvm, process or auto`, 'set MAPVISOR_PLATFORM to kvm, process or auto, or unset it');
}

export const DEFAULT_MEM = 4 * GIB;
export const DEFAULT_STACK = 8 * 2 ** 20;
export const MIN_MEM = 16 * 2 ** 20;
export const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/', 'LANG=C.UTF-8'];
/** The default --pids: enough for builds and shells, few enough that a fork bomb ends quickly. */
export const DEFAULT_PIDS = 256;

function pipe(): [number, number] {
  const fds = [0, 0];
  if (libc.pipe2(fds, libc.O_CLOEXEC) !== 0) throw new MapvisorError('EPIPE', `pipe2 failed: errno ${libc.errno()}`, '');
  return [fds[0]!, fds[1]!];
}

function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

export class Sandbox {
  readonly program: string;
  readonly args: string[];
  readonly options: SandboxOptions;
  /** The platform the program runs on, once run() has started it. */
  platform: PlatformName | null = null;

  constructor(program: string, args: string[] = [], options: SandboxOptions = {}) {
    this.program = program;
    this.args = args;
    this.options = options;
  }

  /** Run a program to completion. */
  static run(program: string, args: string[] = [], options: SandboxOptions = {}): Promise<SandboxResult> {
    return new Sandbox(program, args, options).run();
  }

  /** The VM worker's configuration (VmHandle adds its control words); throws on bad options. */
  private config(stdio: [number, number, number]): VmConfig {
    const o = this.options;
    const spaceSize = o.space ?? DEFAULT_SPACE;
    const problem = checkSpaceSize(spaceSize);
    if (problem) throw new UsageError(`--space ${spaceSize} ${problem}`, 'give a size such as 64G');
    const memLimit = o.mem ?? DEFAULT_MEM;
    if (!Number.isSafeInteger(memLimit) || memLimit < MIN_MEM) {
      throw new UsageError(`--mem ${memLimit} bytes is too small: the program needs at least 16 MiB`, 'give --mem 16M or more');
    }
    const stackSize = o.stack ?? DEFAULT_STACK;
    if (o.storage !== undefined && o.storage !== 'memory' && o.storage !== 'blk') throw new UsageError(`storage ${JSON.stringify(o.storage)} is not memory or blk`, 'give --storage memory or --storage blk');
    if (o.blkMmap !== undefined && o.blkMmap !== 'eager' && o.blkMmap !== 'fault') throw new UsageError(`blk-mmap ${JSON.stringify(o.blkMmap)} is not eager or fault`, 'give --blk-mmap eager or --blk-mmap fault');
    if ((o.storage === 'blk' || o.cache !== undefined || o.cacheMode !== undefined || o.blkMmap !== undefined) && o.image === undefined) {
      throw new UsageError('--storage, --cache and --cache-mode need a disk image', 'add --image PATH');
    }
    if (o.cache !== undefined && (!Number.isSafeInteger(o.cache) || o.cache < 16 * 4096)) throw new UsageError(`--cache ${o.cache} is too small`, 'give --cache 64M or more');
    if (o.timeout !== undefined && !(o.timeout > 0)) throw new UsageError(`timeout ${o.timeout} is not a positive number of seconds`, 'give --timeout 10');
    // A restore runs where its checkpoint was taken unless told otherwise.
    const choice = o.platform ?? (this.restoreFrom ? checkpointPlatform(this.restoreFrom.dir) : null) ?? defaultPlatform();
    if (choice !== 'auto' && !PLATFORM_NAMES.includes(choice)) throw new UsageError(`platform ${JSON.stringify(choice)} is not kvm, process or auto`, 'give --platform kvm, process or auto');
    const platform = resolvePlatform(choice);
    this.platform = platform;
    if (platform === 'process' && o.blkMmap === 'fault') throw new UsageError('--blk-mmap fault fills pages through the VM\'s own memory, which the process platform does not have', 'use --blk-mmap eager, or --platform kvm');
    if (platform === 'process' && o.syscallReturn !== undefined && o.syscallReturn !== 'sregs') throw new UsageError('--syscall-return is a kvm platform setting', 'drop it, or use --platform kvm');
    return {
      platform,
      programPath: this.program,
      argv: [o.argv0 ?? this.program, ...this.args],
      envp: o.env ?? DEFAULT_ENV,
      spaceSize,
      memLimit,
      stackSize,
      cpus: o.cpus ?? availableParallelism(),
      pids: o.pids ?? DEFAULT_PIDS,
      init: o.init ?? false,
      net: o.net ?? 'none',
      publish: checkPublish(o.net ?? 'none', o.publish ?? []),
      strace: o.strace ?? false,
      stdio,
      traceFd: o.traceFd ?? 2,
      syscallReturn: o.syscallReturn ?? 'sregs',
      image:
        o.image === undefined
          ? null
          : {
              ...(typeof o.image === 'string'
                ? parseImageSpec(o.image)
                : { path: o.image.path, mode: o.image.mode ?? (o.image.layer !== undefined ? 'cow' : 'rw'), ...(o.image.layer !== undefined ? { layer: o.image.layer } : {}) }),
              storage: o.storage ?? 'memory',
              ...(o.cache !== undefined ? { cacheBytes: o.cache } : {}),
              direct: o.cacheMode === 'none',
              blkMmap: o.blkMmap ?? 'eager',
            },
      mounts: checkMounts(o.mounts ?? []),
      memoryDir: o.memoryDir ?? null,
      restore: this.restoreFrom,
      identity: o.identity ?? null,
    };
  }

  private readonly listeners: Array<(e: ListeningEvent) => void> = [];
  /**
   * 'listening': a TCP port in the sandbox started listening ({ proto, port, family, hostPort? }:
   * hostPort when the port is published).
   */
  on(event: 'listening', f: (e: ListeningEvent) => void): this {
    if (event !== 'listening') throw new UsageError(`no event ${JSON.stringify(event)}`, "the Sandbox's event is 'listening'");
    this.listeners.push(f);
    return this;
  }
  private emitListening(e: ListeningEvent): void {
    for (const f of this.listeners) f(e);
  }

  /** Set by Sandbox.restore: start from this checkpoint instead of the program. */
  private restoreFrom: { dir: string; inPlace: boolean; standby: boolean; layer?: string } | null = null;
  /** While running: the VM worker running the program (another one after a rejuvenation). */
  private vm: VmHandle | null = null;
  private standbyWaiters: Array<() => void> = [];
  private isStandingBy = false;
  private readyWaiters: Array<() => void> = [];
  private isReady = false;
  /** The latest restore's time from its start (or release(), in standby) to the first instruction. */
  restoreMs: number | null = null;
  /** Set when the program was handed to another VMM process (handOff): run() then reports no death. */
  handedOff = false;

  /**
   * Start from a checkpoint written by checkpoint(): the program continues where it stopped. Its memory
   * is the checkpoint's memory file mapped copy-on-write (inPlace: continue on that file itself). With
   * standby, run() builds the VM and waits (whenStandby()) until release() says to restore.
   */
  /**
   * A program from a checkpoint. `layer` (a checkpoint of a copy-on-write image): where the restored
   * program's layer is kept, a copy of the checkpoint's (a path that does not exist yet); by default a
   * temporary one, so the checkpoint can be restored again.
   */
  static restore(dir: string, options: SandboxOptions & { inPlace?: boolean; standby?: boolean; layer?: string } = {}): Sandbox {
    const sb = new Sandbox('(restored)', [], options);
    sb.restoreFrom = { dir, inPlace: options.inPlace ?? false, standby: options.standby ?? false, ...(options.layer !== undefined ? { layer: options.layer } : {}) };
    return sb;
  }

  /** Standby: resolves once the VM is built and waits for release() (or when the run ended). */
  whenStandby(): Promise<void> {
    return this.isStandingBy ? Promise.resolve() : new Promise((r) => this.standbyWaiters.push(r));
  }
  private markStandby(): void {
    this.isStandingBy = true;
    for (const f of this.standbyWaiters.splice(0)) f();
  }

  /** Standby: read the checkpoint now and run the program from it. */
  release(): void {
    this.vm?.release();
  }

  /** Resolves once the program's VM is built and about to run (or has ended). */
  whenReady(): Promise<void> {
    return this.isReady ? Promise.resolve() : new Promise((r) => this.readyWaiters.push(r));
  }
  private markReady(): void {
    this.isReady = true;
    for (const f of this.readyWaiters.splice(0)) f();
  }

  private running(): VmHandle {
    if (!this.vm) throw new MapvisorError('ENOTRUNNING', 'the sandbox is not running', 'call run() first');
    return this.vm;
  }

  /** Stop the program at its next exit boundary (resolves once it is paused). */
  async pause(): Promise<void> {
    await this.running().pause();
  }

  /** Let a paused program continue. */
  async resume(): Promise<void> {
    await this.vm?.resume();
  }

  /** Pause for the duration of `f` (unless already paused). */
  private async whilePaused<T>(f: (vm: VmHandle) => Promise<T>): Promise<T> {
    const vm = this.running();
    const wasPaused = vm.paused;
    await vm.pause();
    try {
      return await f(vm);
    } finally {
      if (!wasPaused) await vm.resume().catch(() => undefined);
    }
  }

  /** Processes that exec started and that have not ended: their waiters. */
  private readonly execWaiters = new Map<number, (r: SandboxExecResult) => void>();
  /** Ends heard before anyone waited (the process may end before exec() returns). */
  private readonly execEnded = new Map<number, SandboxExecResult>();

  private execExit(pid: number, status: number): void {
    const killed = status & 0x7f;
    const r: SandboxExecResult = killed ? { status: 128 + killed, signal: killed } : { status: (status >> 8) & 0xff, signal: null };
    const w = this.execWaiters.get(pid);
    this.execWaiters.delete(pid);
    if (w) w(r);
    else this.execEnded.set(pid, r);
  }

  /**
   * Start another program in the running sandbox (what `podman exec` does to a container): a new
   * process of its own (a machine, memory, a session), ppid 0 as runc's exec'd processes show, seen by
   * the sandbox's other processes (ps). Resolves with its pid once it exists, and `done` with how it
   * ended. It ends with the sandbox (SIGKILL) when the sandbox's program ends first.
   */
  async exec(o: SandboxExecOptions): Promise<{ pid: number; done: Promise<SandboxExecResult> }> {
    if (!Array.isArray(o.args) || o.args.length === 0) throw new UsageError('exec needs a program', 'give args: [program, ...arguments]');
    const spec = { args: o.args, env: o.env ?? [], cwd: o.cwd ?? '/', uid: o.uid ?? 0, gid: o.gid ?? 0, groups: o.groups ?? [] };
    const r = (await this.whilePaused((vm) => vm.command({ cmd: 'exec', spec, stdio: o.stdio }))) as { pid: number };
    const pid = r.pid;
    const done = new Promise<SandboxExecResult>((resolve) => {
      const early = this.execEnded.get(pid);
      this.execEnded.delete(pid);
      if (early) resolve(early);
      else if (!this.vm) resolve({ status: 128 + SIG.SIGKILL, signal: SIG.SIGKILL });
      else this.execWaiters.set(pid, resolve);
    });
    return { pid, done };
  }

  /** Send signal `sig` (1..64) to process `pid`, one that exec() started (pausing the sandbox for the moment it takes). */
  async signalProcess(pid: number, sig: number): Promise<void> {
    if (!Number.isInteger(sig) || sig < 1 || sig > 64) throw new UsageError(`signal ${sig} cannot be sent`, 'give a signal number from 1 to 64');
    await this.whilePaused((vm) => vm.command({ cmd: 'signal', pid, sig }));
  }

  /** Write a checkpoint of the running program to `dir` (pausing it meanwhile). */
  checkpoint(dir: string): Promise<CheckpointResult> {
    return this.whilePaused((vm) => vm.command({ cmd: 'checkpoint', dir: resolvePath(dir), inPlace: false }) as Promise<CheckpointResult>);
  }

  /** The kernel's counters now (pauses the program for the moment it takes). */
  liveStats(): Promise<unknown> {
    return this.whilePaused((vm) => vm.command({ cmd: 'stats' }));
  }

  /**
   * Rejuvenation by another process, first half: pause, checkpoint in place into `dir` (the memory
   * stays in the --memory-dir file: nothing is copied), and end this VM. The CLI then has a fresh VMM
   * process restore `dir` in place. Resolves once this VM let go of the image.
   */
  async handOff(dir: string): Promise<{ dir: string; ms: number }> {
    const r = await this.running().handOff(resolvePath(dir));
    this.handedOff = true;
    return r;
  }

  /**
   * Rejuvenate in this process: a fresh VM worker (its kernel modules loaded anew, so an updated
   * mapvisor on disk takes over) is built in standby, the program is checkpointed in place into `dir`
   * (default: DIR/rejuvenate of memoryDir), and the new VM restores it and runs it; run() goes on to
   * report the program's end. Needs the memory in a file (memoryDir, or an in-place restore).
   */
  async rejuvenate(dir?: string): Promise<{ downtimeMs: number; restoreMs: number }> {
    const old = this.running();
    // The memory's own file is where the in-place checkpoint goes: --memory-dir, or an in-place restore's.
    const chosen = dir ?? (this.options.memoryDir ? join(this.options.memoryDir, 'rejuvenate') : this.restoreFrom?.inPlace ? this.restoreFrom.dir : null);
    if (chosen === null) throw new MapvisorError('ECHECKPOINT', 'rejuvenation needs the program\'s memory in a file', 'run it with --memory-dir DIR (memoryDir in the Sandbox API)');
    const target = resolvePath(chosen);
    const base = this.baseConfig;
    if (!base) throw new MapvisorError('ENOTRUNNING', 'the sandbox is not running', 'call run() first');
    let standby!: () => void;
    let ready!: (ms: number | null) => void;
    const standingBy = new Promise<void>((r) => (standby = r));
    const readyP = new Promise<number | null>((r) => (ready = r));
    const next = new VmHandle({ ...base, restore: { dir: target, inPlace: true }, memoryDir: null, image: null }, true, { standby, ready });
    next.ended.then(
      () => (standby(), ready(null)),
      () => (standby(), ready(null)),
    );
    await standingBy;
    let t0: number;
    try {
      t0 = performance.now();
      await old.handOff(target);
    } catch (e) {
      next.stop();
      await next.ended.catch(() => undefined);
      await next.close();
      throw e;
    }
    this.vm = next;
    next.release();
    const restoreMs = await readyP;
    const downtimeMs = performance.now() - t0;
    if (restoreMs === null) throw new MapvisorError('EREJUVENATE', `the new VM failed to restore the program (its checkpoint is in ${target})`, `restore it with: mapvisor restore ${target} --in-place`);
    this.restoreMs = restoreMs;
    return { downtimeMs, restoreMs };
  }

  /**
   * Send signal `sig` (1..31) to the sandbox's foreground process group, as a terminal or a container
   * runtime would (the CLI forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT this way). A program that is
   * pid 1 and has no handler for a terminating signal ends by it (unlike Linux's pid-namespace init,
   * which would ignore it): the sandbox ends, as `docker kill` would end it. `to: 'main'` sends it to
   * the program's first process alone (what runc's kill without --all does to a container's init).
   */
  kill(sig: number, to: 'foreground' | 'main' = 'foreground'): void {
    if (!Number.isInteger(sig) || sig < 1 || sig > 31) throw new UsageError(`signal ${sig} cannot be sent to a sandbox`, 'give a signal number from 1 to 31');
    this.vm?.signal(sig, to === 'main');
  }

  /** Stop the program (SIGKILL). */
  stop(): void {
    this.stopRequested = true;
    this.vm?.stop();
  }
  private stopRequested = false;
  /** The worker configuration of this run (a rejuvenation's new VM starts from it). */
  private baseConfig: VmConfig | null = null;

  async run(): Promise<SandboxResult> {
    this.config([0, 1, 2]); // option errors first
    if (this.options.image === undefined && !this.restoreFrom) inspectProgram(this.program); // fail fast, before a VM exists
    prepareKicks();
    const o = this.options;
    const toClose: number[] = [];
    const pending: Array<Promise<unknown>> = [];

    // stdin
    let stdinFd = 0;
    if (o.stdin === 'ignore') {
      stdinFd = openSync('/dev/null', 'r');
      toClose.push(stdinFd);
    } else if (o.stdin !== undefined && o.stdin !== 'inherit') {
      const [r, w] = pipe();
      stdinFd = r;
      toClose.push(r);
      const ws = createWriteStream('', { fd: w, autoClose: true });
      ws.on('error', () => undefined); // the program may exit without reading it all (EPIPE)
      ws.end(typeof o.stdin === 'string' ? Buffer.from(o.stdin) : o.stdin);
    }
    // stdout, stderr
    const out: Array<Promise<Buffer> | null> = [null, null];
    const outFds = [1, 2].map((fd, i) => {
      const mode = i === 0 ? o.stdout : o.stderr;
      if (mode !== 'pipe') return fd;
      const [r, w] = pipe();
      out[i] = collect(createReadStream('', { fd: r, autoClose: true }));
      toClose.push(w);
      return w;
    });

    const base = this.config([stdinFd, outFds[0]!, outFds[1]!]);
    this.baseConfig = base;
    let timedOut = false;
    const timer = o.timeout ? setTimeout(() => ((timedOut = true), this.vm?.stop()), o.timeout * 1000) : null;
    let vm = new VmHandle(base, this.restoreFrom?.standby ?? false, {
      listening: (e) => this.emitListening(e),
      execExit: (pid, status) => this.execExit(pid, status),
      standby: () => this.markStandby(),
      ready: (ms: number | null) => {
        this.restoreMs = ms;
        this.markReady();
      },
    });
    this.vm = vm;
    if (this.stopRequested) vm.stop();
    let message: WorkerMessage;
    try {
      // A rejuvenation replaces this.vm while the old VM ends: follow the program to its last VM.
      for (;;) {
        message = await vm.ended;
        if (this.vm === vm) break;
        await vm.close();
        vm = this.vm!;
      }
    } finally {
      if (timer) clearTimeout(timer);
      this.vm = null;
      // Processes that exec started end with the sandbox.
      for (const pid of [...this.execWaiters.keys()]) this.execExit(pid, SIG.SIGKILL);
      this.markReady();
      this.markStandby();
    }
    await vm.close();
    for (const fd of toClose) closeSync(fd);
    const [stdout, stderr] = await Promise.all([out[0] ?? null, out[1] ?? null, ...pending]);

    if (message.type === 'error') {
      const e = message.error;
      const err = new MapvisorError(e.code, e.message, e.fix, e.exitCode);
      if (e.stack) err.stack = e.stack;
      throw err;
    }
    const end = message.type === 'end' ? message.end : null;
    const stats = message.type === 'end' ? message.stats : null;
    const result = (status: number, signal: number | null, reason: string | null): SandboxResult => ({
      status,
      signal,
      reason,
      timedOut,
      stdout: stdout as Buffer | null,
      stderr: stderr as Buffer | null,
      stats,
    });
    if (!end) throw new MapvisorError('EWORKER', 'the VM worker sent no result', 'report this as a mapvisor bug');
    switch (end.kind) {
      case 'exited':
        return result(end.status, null, null);
      case 'killed':
        return result(128 + end.signal, end.signal, end.reason);
      case 'stopped':
        return result(
          128 + SIG.SIGKILL,
          SIG.SIGKILL,
          timedOut ? `SIGKILL: the program ran past --timeout ${o.timeout}s` : 'SIGKILL: the sandbox was stopped',
        );
      case 'failed':
        throw new MapvisorError('EVMFAILED', `the VM failed: ${end.reason}`, 'report this as a mapvisor bug, with --strace output');
    }
  }
}

export { signalName };
