/**
 * Containers' state under the runtime's --root (default /run/mapvisor-oci): ROOT/ID/state.json (what
 * `state` reports, and what the VMM needs), ROOT/ID/ctl.sock (the VMM's control socket: start,
 * checkpoint), ROOT/ID/layer (the container's copy-on-write layer over its shared image in
 * ROOT/images). Changes happen under ROOT/ID.lock.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OciError } from './log.js';

export const DEFAULT_ROOT = '/run/mapvisor-oci';

export interface ContainerState {
  ociVersion: string;
  id: string;
  bundle: string;
  /** The VMM process (the pid file's). */
  pid: number;
  /** Its start time in clock ticks (/proc/PID/stat field 22): a reused pid is not this container. */
  pidStart: number;
  created: string;
  annotations: Record<string, string>;
  /** Set by the VMM when `start` let the program run. */
  started: boolean;
  /** The options the VMM runs with. */
  run: VmmPlan;
}

/** What the VMM process (vmm.ts) runs. */
export interface VmmPlan {
  args: string[];
  env: string[];
  /** mapvisor's own init as pid 1 (podman --init). */
  init: boolean;
  /** The shared image of the root file system (ROOT/images/HASH.img). */
  image: string;
  /** The container's copy-on-write layer over it (ROOT/ID/layer), or null for a read-only root. */
  layer: string | null;
  readonly: boolean;
  platform: string | undefined;
  net: 'none' | 'host';
  /** The engine's network namespace, joined by the VMM (the program's sockets are host sockets there). */
  netns: string | null;
  mem: number | undefined;
  pids: number | undefined;
  cpus: number | undefined;
  identity: { uid: number; gid: number; groups: number[]; cwd: string; hostname: string | undefined; rlimits: Array<[number, number, number]> };
  binds: Array<{ host: string; target: string; readonly: boolean }>;
  /** Start from this checkpoint (runc restore) instead of the program. */
  restoreFrom: string | null;
  /** The standard streams are a terminal (--console-socket): make it the VMM's controlling terminal. */
  terminal: boolean;
}

export function checkId(id: string | undefined): string {
  if (!id) throw new OciError('no container id given', 'give the container id as the last argument');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new OciError(`container id ${JSON.stringify(id)} has characters other than letters, digits, _ . -`, 'give an id such as web-1');
  return id;
}

export function containerDir(root: string, id: string): string {
  return join(root, id);
}

export function statePath(root: string, id: string): string {
  return join(root, id, 'state.json');
}

export function readState(root: string, id: string): ContainerState {
  const path = statePath(root, id);
  if (!existsSync(path)) throw new OciError(`container ${id} does not exist`, `see the containers under ${root}`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ContainerState;
  } catch (e) {
    throw new OciError(`the state of container ${id} (${path}) is unreadable: ${(e as Error).message}`, `delete it with: mapvisor-oci --root ${root} delete --force ${id}`);
  }
}

export function writeState(root: string, s: ContainerState): void {
  const path = statePath(root, s.id);
  writeFileSync(`${path}.tmp`, JSON.stringify(s));
  renameSync(`${path}.tmp`, path);
}

/** The start time of process `pid` (field 22 of /proc/PID/stat), or null when it is gone or a zombie. */
export function processStart(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z' || rest[0] === 'X') return null;
    return Number(rest[19]);
  } catch {
    return null;
  }
}

export type Status = 'creating' | 'created' | 'running' | 'stopped';

export function statusOf(s: ContainerState): Status {
  if (processStart(s.pid) !== s.pidStart) return 'stopped';
  return s.started ? 'running' : 'created';
}

export function removeContainer(root: string, id: string): void {
  rmSync(containerDir(root, id), { recursive: true, force: true });
  rmSync(join(root, `${id}.lock`), { force: true });
}

/** Run async `f` holding ROOT/ID.lock. */
export async function lockedAsync<T>(root: string, id: string, f: () => Promise<T>): Promise<T> {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const libc = await import('../host/libc.js'); // (koffi: loaded by create, run and restore only)
  const fd = openSync(join(root, `${id}.lock`), 'a');
  try {
    if (libc.flock(fd, libc.LOCK_EX) !== 0) throw new OciError(`cannot lock container ${id}`, `check the permissions of ${root}`);
    return await f();
  } finally {
    closeSync(fd);
  }
}
