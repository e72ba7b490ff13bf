/**
 * A checkpoint: the program's whole state as data. Because memory and storage are one, it is the
 * registers, the region map, the fd table and a few kernel records (state.json, versioned and
 * checksummed), plus the anonymous-memory file (memory.bin, a sparse copy); file mappings and programs
 * run in place are the disk image's pages and are recorded by offset, with the image's identity.
 */
import type { PlatformName } from '../platform/platform.js';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MapvisorError } from '../errors.js';
import type { RegionMapJSON } from '../mm/regions.js';
import type { SavedStats } from '../kernel/stats.js';

export const STATE_FORMAT = 'mapvisor-checkpoint';
export const STATE_VERSION = 3; // 3: FPU state as an FXSAVE image (was kvm_fpu), the platform recorded
export const STATE_FILE = 'state.json';
export const MEMORY_FILE = 'memory.bin';
/** The copy of a copy-on-write image's layer in a checkpoint's directory. */
export const LAYER_FILE = 'layer';

/** An open file description, shared by the fds that dup()ed it (their offset and flags are one). */
export type SavedFile = { flags: number; pos: number } & (
  | { kind: 'host'; stdio: number }
  | { kind: 'ext4'; path: string; ino: number }
  | { kind: 'device'; name: string }
  | { kind: 'pipe'; pipe: number; end: 'read' | 'write' }
  | { kind: 'eventfd'; count: string; semaphore: boolean }
  | { kind: 'epoll'; interest: Array<{ fd: number; events: number; data: string; disabled: boolean }> }
  /** remainingNs: time left to the next expiry (decimal ns; null when disarmed). */
  | { kind: 'timerfd'; clock: number; remainingNs: string | null; intervalNs: string }
);

/** An fd: its description (an index into `files`) and close-on-exec. */
export interface SavedFd {
  fd: number;
  cloexec: boolean;
  file: number;
}

/** One vCPU's state: kvm_regs and kvm_fpu (base64), and the FS/GS bases. */
export interface SavedCpu {
  regs: string;
  fsBase: number;
  gsBase: number;
  fpu: string;
}

/** A thread waiting in a system call (threads.ts's Park), its time-out as the time that was left. */
export type SavedPark =
  | { kind: 'futex'; uaddr: number; bitset: number; remainingMs: number | null }
  | { kind: 'sleep'; remainingMs: number | null }
  | { kind: 'retry'; remainingMs: number | null; onTimeout: number };

/** A thread of a multithreaded program: its vCPU and its per-thread kernel records. */
export interface SavedThread {
  tid: number;
  vcpu: number;
  cpu: SavedCpu;
  clearTid: number;
  robustList: number;
  blocked: string;
  altStack: { sp: string; flags: number; size: string };
  /** Its unanswered system call (a futex waiter, a sleep, blocking I/O), or null when it runs. */
  park: SavedPark | null;
}

export interface SavedState {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  created: string;
  /** The VMM run that took it: a later checkpoint of the same run into the same directory is incremental. */
  run: string;
  /** sha256 of the CPUID the program ran with: restoring on another CPU is refused. */
  cpuid: string;
  /** The platform the program ran on (its CPU fingerprint is that platform's). */
  platform: PlatformName;
  /** envp: the environment execve gave, for /proc/PID/environ (absent in older checkpoints). */
  program: { path: string; exePath: string; argv: string[]; envp?: string[] };
  /**
   * The image, and (cow) its copy-on-write layer: `saved` when the checkpoint holds a copy of it
   * (LAYER_FILE in the checkpoint's directory), else the live layer at `path` (a hand-over).
   */
  image: { path: string; mode: 'rw' | 'ro' | 'cow'; size: number; mtimeMs: number; superblock: string; layer?: { path: string; saved: boolean } | null } | null;
  space: {
    size: number;
    stackTop: number;
    stackSize: number;
    memLimit: number;
    brkStart: number;
    brkCurrent: number;
    regions: RegionMapJSON;
    anonId: number;
    anonUsed: number;
  };
  /** The memory file: a copy in the checkpoint directory, or (in place) the live --memory-dir file. */
  memory: { size: number; mtimeMs: number; path?: string };
  /** The vCPU of a single-threaded program (of a threaded one: the current thread's, as in `threads`). */
  cpu: SavedCpu;
  /** The program's CLOCK_MONOTONIC when the checkpoint was taken (a restore never goes back from it); absent in older checkpoints. */
  clock?: { monotonicNs: string };
  /** A multithreaded program's threads (null for a single-threaded one). */
  threads: { nextTid: number; current: number; list: SavedThread[] } | null;
  kernel: {
    identity: { pid: number; uid: number; gid: number };
    umask: number;
    cwd: string;
    nice: number;
    threadName: string;
    clearChildTid: number;
    robustList: number;
    /** A relative sleep a pause cut short: the time it had left (ns, decimal), restarted with it. */
    sleepRestart: { clock: number; reqAddr: number; remainingNs: string } | null;
    /** The system-call counters (--stats), which go on counting after a restore. */
    counters: SavedStats;
    rlimits: Array<[number, number | null, number | null]>;
    signals: {
      actions: Array<{ handler: string; flags: string; restorer: string; mask: string }>;
      blocked: string;
      pending: string;
      altStack: { sp: string; flags: number; size: string };
    };
  };
  files: SavedFile[];
  fds: SavedFd[];
  /** The bytes waiting in each pipe (base64), in order; SavedFile.pipe indexes this. */
  pipes: string[];
}


/** A checkpoint or restore that cannot be done: a typed error with its fix. */
export function refuse(message: string, fix: string): never {
  throw new MapvisorError('ECHECKPOINT', message, fix);
}

/**
 * The image's identity: its size and a hash of its superblock with the fields that change on every
 * sync zeroed (mount and write times, mount count, bytes written, checksum), so block and inode counts
 * and everything else that a change to the file system moves are covered.
 */
export function imageIdentity(path: string): { size: number; mtimeMs: number; superblock: string } {
  const st = statSync(path);
  const sb = Buffer.alloc(1024);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, sb, 0, 1024, 1024);
  } finally {
    closeSync(fd);
  }
  for (const [off, len] of [[0x2c, 8], [0x34, 2], [0x178, 8], [0x3fc, 4]] as const) sb.fill(0, off, off + len);
  return { size: st.size, mtimeMs: st.mtimeMs, superblock: createHash('sha256').update(sb).digest('hex') };
}

/** Copy a copy-on-write image's layer into the checkpoint's directory (sparse: the pages it holds). */
export function saveLayer(dir: string, layerPath: string): void {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `${LAYER_FILE}.tmp`);
  const r = spawnSync('cp', ['--reflink=auto', '--sparse=always', layerPath, tmp], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    refuse(`cannot copy the layer ${layerPath} into ${dir}: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`, 'check free space where the checkpoint goes');
  }
  renameSync(tmp, join(dir, LAYER_FILE));
}

/**
 * Write the checkpoint: memory first (a sparse copy of the anonymous-memory file, or with `inPlace` a
 * reference to the live --memory-dir file, already flushed), then the state.
 */
export function writeCheckpoint(dir: string, state: Omit<SavedState, 'memory'>, memoryFile: string, inPlace = false, memoryWritten = false): SavedState {
  mkdirSync(dir, { recursive: true });
  let mem = join(dir, MEMORY_FILE);
  if (inPlace) {
    mem = memoryFile;
  } else if (!memoryWritten) {
    const tmp = `${mem}.tmp`;
    try {
      execFileSync('cp', ['--sparse=always', '--reflink=auto', memoryFile, tmp]);
    } catch (e) {
      refuse(`cannot write the checkpoint's memory to ${dir}: ${(e as Error).message.split('\n')[0]}`, 'check free space and permissions of the checkpoint directory');
    }
    // Durable before the state names it (an incremental checkpoint fsyncs its pages too).
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, mem);
  }
  const st = statSync(mem);
  const full: SavedState = { ...state, memory: { size: st.size, mtimeMs: st.mtimeMs, ...(inPlace ? { path: mem } : {}) } };
  const body = JSON.stringify(full);
  const file = JSON.stringify({ sha256: createHash('sha256').update(body).digest('hex'), state: full });
  writeFileSync(join(dir, `${STATE_FILE}.tmp`), file);
  renameSync(join(dir, `${STATE_FILE}.tmp`), join(dir, STATE_FILE));
  return full;
}

/** Where a checkpoint's memory is. */
export function memoryPath(dir: string, state: SavedState): string {
  return state.memory.path ?? join(dir, MEMORY_FILE);
}

/** The platform a checkpoint was taken on (null when the state file cannot say): restores default to it. */
export function checkpointPlatform(dir: string): PlatformName | null {
  try {
    const p = (JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { state?: { platform?: unknown } }).state?.platform;
    return p === 'kvm' || p === 'process' ? p : null;
  } catch {
    return null;
  }
}

/**
 * Read and check a checkpoint: format, version, checksum, platform and CPU, memory file, image.
 * `accepts` holds, for each platform whose checkpoints this restore can run, the CPU fingerprint a
 * program there saw on this host (see platform/select.ts acceptedCheckpoints).
 */
export function readCheckpoint(dir: string, accepts: Partial<Record<PlatformName, string>>, platform: PlatformName): SavedState {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) refuse(`${dir} holds no checkpoint (no ${STATE_FILE})`, 'give the directory a checkpoint was written to');
  let outer: { sha256?: unknown; state?: unknown };
  try {
    outer = JSON.parse(readFileSync(path, 'utf8')) as typeof outer;
  } catch {
    refuse(`the checkpoint state ${path} is truncated or not JSON`, 'take the checkpoint again');
  }
  const state = outer.state as SavedState | undefined;
  if (!state || typeof outer.sha256 !== 'string') refuse(`the checkpoint state ${path} is malformed`, 'take the checkpoint again');
  if (createHash('sha256').update(JSON.stringify(state)).digest('hex') !== outer.sha256) {
    refuse(`the checkpoint state ${path} is corrupted (checksum mismatch)`, 'take the checkpoint again');
  }
  if (state.format !== STATE_FORMAT) refuse(`${path} is not a mapvisor checkpoint`, 'give a directory written by mapvisor checkpoint');
  if (state.version !== STATE_VERSION) {
    refuse(`the checkpoint is format version ${state.version}; this mapvisor reads version ${STATE_VERSION}`, 'restore it with the mapvisor that wrote it');
  }
  const cpuid = accepts[state.platform];
  if (cpuid === undefined) refuse(`the checkpoint was taken on the ${state.platform} platform, whose programs this restore on ${platform} cannot continue here`, `restore it with --platform ${state.platform}`);
  if (state.cpuid !== cpuid) refuse('the checkpoint was taken on a CPU with different features (CPUID mismatch)', 'restore it on the machine (kind) that took it');
  const mem = memoryPath(dir, state);
  if (!existsSync(mem)) refuse(`the checkpoint's memory file ${mem} is missing`, 'take the checkpoint again');
  const st = statSync(mem);
  if (st.size !== state.memory.size || Math.abs(st.mtimeMs - state.memory.mtimeMs) > 1) {
    refuse(`the checkpoint's memory file ${mem} changed since the checkpoint`, 'take the checkpoint again (or restore with --in-place only once)');
  }
  if (state.image) {
    if (!existsSync(state.image.path)) refuse(`the checkpoint's disk image ${state.image.path} is missing`, 'put the image back where it was');
    const id = imageIdentity(state.image.path);
    if (id.size !== state.image.size || id.superblock !== state.image.superblock) {
      refuse(`the disk image ${state.image.path} changed since the checkpoint`, 'restore with the image as it was at the checkpoint');
    }
    const layer = state.image.layer;
    if (layer) {
      const at = layer.saved ? join(dir, LAYER_FILE) : layer.path;
      if (!existsSync(at)) refuse(`the checkpoint's layer ${at} is missing`, layer.saved ? 'take the checkpoint again' : 'put the layer back where it was');
    }
  }
  return state;
}
