/** Messages between a Sandbox (main thread) and its VM worker. Plain data only (structured clone). */
import type { MessagePort } from 'node:worker_threads';
import type { StatsReport } from '../kernel/stats.js';
import type { TaskEnd } from '../kernel/task.js';
import type { SyscallReturn } from '../platform/platform.js';
import type { KickTarget, PlatformName } from '../platform/platform.js';
import type { BlockImageStats } from '../storage/blkdev.js';
import type { ImageSpec } from '../kernel/vfs/rootfs.js';
import type { MountSpec } from '../kernel/vfs/mounts.js';
import type { ListeningEvent, NetPolicy, Publish } from '../kernel/net/network.js';
import type { StartIdentity } from './identity.js';
import type { SpawnSpec } from '../kernel/spawn.js';

export interface WorkerConfig {
  /** What runs the program's code (resolved: never 'auto' here). */
  platform: PlatformName;
  programPath: string;
  argv: string[];
  envp: string[];
  spaceSize: number;
  memLimit: number;
  stackSize: number;
  cpus: number;
  /** --pids: the most processes the sandbox may hold (fork answers EAGAIN past it). */
  pids: number;
  /** --init: the program runs as pid 2 under the kernel's own init, which reaps orphans. */
  init: boolean;
  /** --net: the sandbox's own loopback only ('none'), or host sockets for AF_INET/AF_INET6 ('host'). */
  net: NetPolicy;
  /** --publish HOST_PORT:PORT: host listeners whose connections the sandbox's PORT accepts. */
  publish: Publish[];
  strace: boolean;
  /** Host fds for the program's stdin, stdout, stderr, and where --strace lines go. */
  stdio: [number, number, number];
  traceFd: number;
  syscallReturn: SyscallReturn;
  /** The root file system image, when the program runs from one. */
  image: ImageSpec | null;
  /** Host directories and files mounted into the sandbox (--mount; src/kernel/vfs/mounts.ts). */
  mounts?: MountSpec[];
  /** Int32Array over it: [0] = stop requested, [1] = pause requested, [2] = command counter, [3] = wake counter, [4..5] the kick guard. */
  control: SharedArrayBuffer;
  /** Control commands (pause loop), received synchronously by the worker. */
  commands?: MessagePort;
  /** Keep anonymous memory in DIR/memory.bin instead of a memfd. */
  memoryDir: string | null;
  /** Start from a checkpoint instead of a program. */
  restore: { dir: string; inPlace: boolean; layer?: string } | null;
  /** The first process's user, groups, working directory, hostname and limits (the OCI runtime sets them). */
  identity?: StartIdentity | null;
  /**
   * Standby (restore only): build the VM (spaceSize) and its first vCPU, post 'standby', and wait until
   * Int32Array(standby)[0] becomes 1 before reading the checkpoint: a warm VMM restores in milliseconds.
   */
  standby: SharedArrayBuffer | null;
}

export const CONTROL_STOP = 0;
export const CONTROL_PAUSE = 1;
export const CONTROL_CMD = 2;
/** Bumped (and notified) with every pause or stop request: ends the kernel thread's naps early. */
export const CONTROL_WAKE = 3;
/** KickGuard's words: a lock, and 1 while vCPU 0 (run by the worker thread) may be kicked. */
export const CONTROL_KICK_LOCK = 4;
export const CONTROL_KICK_ALIVE = 5;
/** Signals the host sent the VMM, to forward to the sandbox's foreground process group (bit N: signal N). */
export const CONTROL_SIGNALS = 6;
/** Signals for the program alone (its first process), not its foreground process group (bit N: signal N). */
export const CONTROL_SIGNALS_MAIN = 7;
export const CONTROL_BYTES = 32;

export type ControlCommand =
  | { id: number; cmd: 'checkpoint'; dir: string; inPlace: boolean }
  | { id: number; cmd: 'resume' }
  | { id: number; cmd: 'stats' }
  /** Start a process in the running sandbox (the OCI runtime's exec) on host fds `stdio`; answers its pid. */
  | { id: number; cmd: 'exec'; spec: SpawnSpec; stdio: [number, number, number] }
  /** Send signal `sig` to process `pid` of the sandbox (one that exec started). */
  | { id: number; cmd: 'signal'; pid: number; sig: number };

export interface VmStats extends StatsReport {
  exits: Record<string, number>;
  mapChanges: number;
  mappedBytes: number;
  wallNs: number;
  xsave: boolean;
  bytesIn: number;
  bytesOut: number;
  /** Whether the program's segments (and its interpreter's) are the image's own pages. */
  execInPlace: boolean;
  interpInPlace: boolean | null;
  /** Bytes copied between the image and the program's memory by read/write calls. */
  fileBytesRead: number;
  fileBytesWritten: number;
  /** Bytes of the program's address space that are the image's own pages at exit. */
  imageMappedBytes: number;
  /** How the image was reached, and the block device's counters in blk mode. */
  storage: 'memory' | 'blk' | null;
  block: BlockImageStats | null;
  /** blk mode: bytes of shared file mappings written back to their files. */
  writtenBack: number;
  /** blk mode with --blk-mmap fault: pages of file mappings filled on first touch. */
  pagesFilledOnFault: number;
}

export type WorkerMessage =
  | { type: 'standby' }
  /** After an in-place checkpoint (a hand-over): the program will not run here again, the image is unlocked. */
  | { type: 'released' }
  /** The program is about to run its first instruction; restoreMs: how long a restore took to get here. */
  | { type: 'ready'; kick: KickTarget; platform: PlatformName; restoreMs: number | null }
  | { type: 'paused' }
  /** A guest TCP port started listening. */
  | { type: 'listening'; event: ListeningEvent }
  | { type: 'threaded'; doorbell: SharedArrayBuffer }
  | { type: 'reply'; id: number; ok: boolean; result?: unknown; error?: string }
  /** A process that exec started ended with wait status `status` (and was reaped). */
  | { type: 'exec-exit'; pid: number; status: number }
  | { type: 'end'; end: TaskEnd; stats: VmStats }
  | { type: 'error'; error: { name: string; code: string; message: string; fix: string; exitCode: number; stack?: string } };
