/** Messages between a Sandbox (main thread) and its VM worker. Plain data only (structured clone). */
import type { StatsReport } from '../kernel/stats.js';
import type { TaskEnd } from '../kernel/task.js';
import type { SyscallReturn } from '../vm/vcpu.js';

export interface WorkerConfig {
  programPath: string;
  argv: string[];
  envp: string[];
  spaceSize: number;
  memLimit: number;
  stackSize: number;
  cpus: number;
  strace: boolean;
  /** Host fds for the program's stdin, stdout, stderr, and where --strace lines go. */
  stdio: [number, number, number];
  traceFd: number;
  syscallReturn: SyscallReturn;
  /** Int32Array over it: [0] = stop requested. */
  control: SharedArrayBuffer;
}

export const CONTROL_STOP = 0;

export interface VmStats extends StatsReport {
  exits: Record<string, number>;
  mapChanges: number;
  mappedBytes: number;
  wallNs: number;
  xsave: boolean;
  bytesIn: number;
  bytesOut: number;
}

export type WorkerMessage =
  | { type: 'ready'; runAddr: number; thread: string }
  | { type: 'end'; end: TaskEnd; stats: VmStats }
  | { type: 'error'; error: { name: string; code: string; message: string; fix: string; exitCode: number; stack?: string } };
