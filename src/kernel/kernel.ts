/**
 * The kernel: mapvisor's implementation of the Linux system-call interface for one program. It owns
 * all of the program's kernel state (address space, fd table, signal dispositions, limits) and is
 * driven by the task loop (task.ts), one system call at a time. It runs in exactly one thread, its
 * owner; vCPUs in other threads (a later step) hand their exits to it.
 */
import { E } from '../abi/errno.js';
import { syscallName } from '../abi/sysno.js';
import { GuestFault, GuestMemory } from '../mm/guest.js';
import type { AddressSpace } from '../mm/space.js';
import type { Context } from '../platform/platform.js';
import { FdTable } from './files/file.js';
import type { RootFs } from './vfs/rootfs.js';
import { SharedFileMaps } from './vfs/sharedmaps.js';
import { FaultFiller } from './vfs/faultfill.js';
import type { Thread, Threads } from './threads.js';
import type { ProcessTable } from './procs.js';
import type { StopSignal } from './files/host.js';
import { SignalState } from './signal-state.js';
import { Stats } from './stats.js';
import type { Strace } from './strace.js';
import { SyscallArgs, type Outcome, type SyscallHandler, type SyscallResult, type SyscallTable } from './types.js';

import { ioSyscalls } from './sys/io.js';
import { mmSyscalls } from './sys/mm.js';
import { processSyscalls } from './sys/process.js';
import { timeSyscalls } from './sys/time.js';
import { signalSyscalls } from './sys/signal.js';
import { fsSyscalls } from './sys/fs.js';
import { shmSyscalls } from './sys/shm.js';
import { procSyscalls } from './sys/procs.js';
import { itimerSyscalls } from './sys/itimer.js';
import { netSyscalls } from './sys/net.js';
import { sendfileSyscalls } from './sys/sendfile.js';
import { xattrSyscalls } from './sys/xattr.js';
import { posixTimerSyscalls } from './sys/posixtimer.js';
import { capsSyscalls } from './sys/caps.js';
import { rseqSyscalls } from './sys/rseq.js';
import { mountHooks } from './sys/hostmount.js';
import { Network } from './net/network.js';
import { SYS } from '../abi/sysno.js';
import { timekeeper, type VvarPage } from '../vdso/timekeeper.js';

export interface ProcessIdentity {
  pid: number;
  uid: number;
  gid: number;
}

export interface KernelOptions {
  space: AddressSpace;
  stop: StopSignal;
  identity: ProcessIdentity;
  /** Number of CPUs the program is told it has. */
  cpus: number;
  strace: Strace | null;
  /** The program's path as the program sees it (for /proc/self/exe and AT_EXECFN). */
  exePath: string;
  root?: RootFs | null;
  argv?: string[];
  /** The sandbox's shared view of guest memory (a fork's child shares its parent's). */
  mem?: GuestMemory;
  /** The sandbox's network (a fork's child shares its parent's); default: a loopback of its own. */
  net?: Network;
}

/** Resource limits the program sees (prlimit64). Infinity is RLIM_INFINITY. */
export type Rlimits = Map<number, [number, number]>;

function buildTable(): SyscallHandler[] {
  const table: SyscallHandler[] = [];
  const tables: SyscallTable[] = [ioSyscalls, fsSyscalls, mmSyscalls, processSyscalls, timeSyscalls, signalSyscalls, shmSyscalls, procSyscalls, itimerSyscalls, posixTimerSyscalls, netSyscalls, sendfileSyscalls, xattrSyscalls, capsSyscalls, rseqSyscalls];
  for (const t of tables.map(mountHooks)) {
    for (const [name, handler] of Object.entries(t)) {
      const nr = (SYS as Record<string, number>)[name];
      if (nr === undefined) throw new Error(`syscall table names unknown system call ${name}`);
      if (table[nr] !== undefined) throw new Error(`system call ${name} is implemented twice`);
      table[nr] = handler;
    }
  }
  return table;
}
const TABLE: Array<SyscallHandler | undefined> = buildTable();

/** The system calls mapvisor implements (for docs and tests). */
export function implementedSyscalls(): string[] {
  return TABLE.map((h, nr) => (h ? syscallName(nr) : '')).filter(Boolean);
}

export class Kernel {
  /** The process's memory (a vfork child borrows its parent's until it execs). */
  space: AddressSpace;
  readonly mem: GuestMemory;
  fds = new FdTable();
  signals = new SignalState();
  /** The sandbox's network (sockets' names, ports, policy): one for the whole sandbox, like `stats`. */
  readonly net: Network;
  /** System-call and exit counts: one for the whole sandbox (a fork's child shares its parent's). */
  stats = new Stats();
  readonly stop: StopSignal;
  readonly identity: ProcessIdentity;
  readonly cpus: number;
  readonly strace: Strace | null;
  exePath: string;
  rlimits: Rlimits;
  /** The process table this process is in (set by whoever runs the sandbox; null: a lone program). */
  procs: ProcessTable | null = null;
  /** The parent process (null for the sandbox's first process), its children, group and session. */
  parent: Kernel | null = null;
  readonly children = new Set<Kernel>();
  pgid: number;
  sid: number;
  /** The signal the parent gets when this process ends (SIGCHLD, or clone's exit signal). */
  exitSignal = 17;
  /** Set when the process has ended: its wait status (as wait4 reports it), until the parent reaps it. */
  zombie: { status: number } | null = null;
  /** Job control: the signal that stopped the process (0: running), and changes not yet reported to wait. */
  stopped = 0;
  stopReport: 'stopped' | 'continued' | null = null;
  /** Set once the process's threads are gone and its memory released (a zombie keeps only its status). */
  released = false;
  /** The thread whose signal mask and alternate stack `signals` holds now. */
  curThread: Thread | null = null;
  /** ITIMER_REAL (alarm, setitimer): when it fires next (performance.now ms) and its interval. */
  itimer: { deadline: number; intervalMs: number } | null = null;
  /** Supplementary groups (setgroups). */
  groups: number[] = [];
  /** AT_HWCAP for programs this process execs (the platform's). */
  hwcap = 0;
  /** How many times the process has exec'd (setpgid on a child that exec'd is EACCES). */
  execCount = 0;
  /** What the platform tells the vDSO: rdtscp's TSC_AUX is the vCPU's number; the program's TSC minus the host's. */
  vdsoPlatform = { cpuAux: false, tscOffset: 0n };
  /** The page this process's vDSO reads the clocks from (null: no vDSO). */
  private vvarPage: VvarPage | null = null;
  private vvarAt = 0;

  /** Keep the vvar page at `addr` (0: none) of this process's memory current, from now on. */
  attachVvar(addr: number): void {
    this.detachVvar();
    if (!addr) return;
    const space = this.space;
    const page: VvarPage = {
      write: (offset, bytes) => space.writeThroughBacking(addr + offset, bytes, 'vvar'),
      tscOffset: this.vdsoPlatform.tscOffset,
      cpuAux: this.vdsoPlatform.cpuAux,
      ncpus: this.cpus,
    };
    this.vvarPage = page;
    this.vvarAt = addr;
    timekeeper().attach(page);
  }

  detachVvar(): void {
    if (this.vvarPage) timekeeper().detach(this.vvarPage);
    this.vvarPage = null;
    this.vvarAt = 0;
  }

  /** The vvar page's address (0: none): a fork's child keeps it at the same place. */
  get vvarAddr(): number {
    return this.vvarAt;
  }

  /** The machine this process runs on, as the host that runs the sandbox knows it (opaque here). */
  machine: unknown = null;
  /** rt_sigsuspend's saved mask, for the frame of the signal that ends it. */
  suspendMask: bigint | null = null;
  /** User and system time of reaped children (wait4's rusage, RUSAGE_CHILDREN), in µs. */
  childTimes = { user: 0, sys: 0 };
  umask = 0o022;
  /** The root file system (the disk image), or null: then only /dev, /proc and pipes exist. */
  readonly root: RootFs | null;
  /** The working directory: its inode on the root file system (null without one) and its path. */
  cwd: { ino: number | null; path: string };
  /** The program's argv, for /proc/self/cmdline. */
  argv: string[];
  /** MAP_SHARED file mappings that are copies (blk mode), kept in step with their files. */
  sharedFileMaps: SharedFileMaps;
  /** A vfork child running in its parent's memory (until it execs or ends): the parent it borrows from. */
  borrowsFrom: Kernel | null = null;
  /** blk mode with --blk-mmap fault: fills file mappings on first touch (made on first use). */
  private filler: FaultFiller | null = null;

  faultFiller(): FaultFiller {
    if (!this.filler) this.filler = new FaultFiller(this.root!.fd);
    return this.filler;
  }

  /**
   * blk mode: write the copies that stand for MAP_SHARED file mappings back to their files (before
   * the mappings go: an exec, the process's end, the sandbox's end).
   */
  writeBackSharedMaps(): void {
    this.root?.beginOp();
    try {
      this.sharedFileMaps.writeBackAll();
    } finally {
      this.root?.endOp();
    }
  }

  /** Release what the kernel holds outside the address space (the fault handler thread). */
  close(): void {
    this.detachVvar();
    this.filler?.close();
    if (this.writeHook) this.root?.writeHooks.delete(this.writeHook);
  }

  private writeHook: ((ino: number, off: number, len: number, src: number) => void) | null = null;

  get pagesFilledOnFault(): number {
    return this.filler?.filled ?? 0;
  }
  /** set_tid_address: cleared (and futex-woken) when the thread exits. */
  clearChildTid = 0;
  /** The program's threads (set by the worker that owns the machine). */
  threads: Threads | null = null;
  /** setpriority (the whole process). */
  nice = 0;
  /** prctl(PR_SET_NAME) */
  threadName = '';
  robustList = 0;
  /**
   * A relative sleep cut short by a pause: when the program restarts the same call, it sleeps until
   * this deadline (on `clock`, ns), not for its whole duration again (Linux's restart_block).
   */
  sleepRestart: { clock: number; reqAddr: number; deadlineNs: bigint } | null = null;

  constructor(opts: KernelOptions) {
    this.space = opts.space;
    this.mem = opts.mem ?? new GuestMemory(opts.space);
    this.net = opts.net ?? new Network({ policy: 'none', publish: [] });
    this.mem.bind(opts.space);
    this.stop = opts.stop;
    this.identity = opts.identity;
    this.pgid = opts.identity.pid;
    this.sid = opts.identity.pid;
    this.cpus = opts.cpus;
    this.strace = opts.strace;
    this.exePath = opts.exePath;
    this.root = opts.root ?? null;
    this.cwd = { ino: this.root ? this.root.fs.rootIno : null, path: '/' };
    this.argv = opts.argv ?? [];
    this.threadName = (opts.exePath.split('/').pop() ?? '').slice(0, 15);
    this.sharedFileMaps = new SharedFileMaps(opts.space.window, this.root);
    if (this.root) {
      const root = this.root;
      this.writeHook = (ino, off, len, src) => this.sharedFileMaps.refresh(ino, off, len, src);
      root.writeHooks.add(this.writeHook);
      root.onWrite = (ino, off, len, src) => {
        for (const h of root.writeHooks) h(ino, off, len, src);
      };
    }
    const INF = Infinity;
    this.rlimits = new Map<number, [number, number]>([
      [0, [INF, INF]], // CPU
      [1, [INF, INF]], // FSIZE
      [2, [INF, INF]], // DATA
      [3, [opts.space.layout.stackSize, INF]], // STACK
      [4, [0, INF]], // CORE
      [5, [INF, INF]], // RSS
      [6, [INF, INF]], // NPROC
      [7, [this.fds.limit, this.fds.limit]], // NOFILE
      [8, [8 * 2 ** 20, 8 * 2 ** 20]], // MEMLOCK
      [9, [opts.space.layout.memLimit, opts.space.layout.memLimit]], // AS
      [10, [INF, INF]], // LOCKS
      [11, [INF, INF]], // SIGPENDING
      [12, [819200, 819200]], // MSGQUEUE
      [13, [0, 0]], // NICE
      [14, [0, 0]], // RTPRIO
      [15, [INF, INF]], // RTTIME
    ]);
  }

  /** Make this process the one guest-memory accesses reach (every exit of it is handled this way). */
  activate(): void {
    this.mem.bind(this.space);
  }

  /** Set while serve.ts retries a parked call (it is not a new system call of the program's). */
  retrying = false;

  /** Handle the system call the vCPU stopped at. Returns the value for rax, or an outcome. */
  syscall(cpu: Context): SyscallResult {
    this.activate();
    timekeeper().tick();
    this.net.caller = this.identity;
    const nr = cpu.reg('rax');
    const handler = nr < TABLE.length ? TABLE[nr] : undefined;
    const args = new SyscallArgs(cpu);
    const t0 = process.hrtime.bigint();
    // execve's arguments point into the memory it replaces: render them for --strace before the call.
    const before = this.strace && (nr === SYS.execve || nr === SYS.execveat) ? this.strace.formatArgs(this, nr, args) : null;
    let result: SyscallResult;
    if (!handler) {
      result = -E.ENOSYS;
      this.stats.unimplemented(nr);
    } else {
      this.root?.beginOp();
      try {
        result = handler(this, args, cpu);
      } catch (e) {
        if (e instanceof GuestFault) result = -E.EFAULT;
        else throw e;
      } finally {
        this.root?.endOp();
      }
    }
    // A parked call retried (serve.ts) is one system call of the program's, counted once.
    if (!this.retrying) this.stats.syscall(nr, Number(process.hrtime.bigint() - t0));
    if (this.strace) this.strace.log(this, nr, args, result, before);
    return result;
  }

  /** A helper for handlers: run `f`, answering -EFAULT for a bad guest pointer. */
  static guarded(f: () => number): number {
    try {
      return f();
    } catch (e) {
      if (e instanceof GuestFault) return -E.EFAULT;
      throw e;
    }
  }

  /** Is `tid` a live thread of the program (or the process itself)? */
  hasThread(tid: number): boolean {
    return tid === this.identity.pid || this.threads?.byTid.get(tid)?.k === this;
  }

  /** How many threads this process has. */
  get threadCount(): number {
    return this.threads ? this.threads.countOf(this) : 1;
  }

  /** The tid of the thread whose call is being handled. */
  get tid(): number {
    return this.curThread?.tid ?? this.identity.pid;
  }

  exitOutcome(status: number): Outcome {
    return { kind: 'exit', status: status & 0xff };
  }
}
