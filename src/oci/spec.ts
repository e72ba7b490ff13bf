/**
 * config.json (the OCI runtime spec) read into what mapvisor runs: the program, its identity, the
 * root file system, limits, mounts (the engine's files such as /etc/hosts and volumes are host mounts). Every
 * field it cannot honour is a one-line error naming the field (OciError), never a silent difference.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve as resolvePath } from 'node:path';
import { OciError } from './log.js';

export interface FileCopy {
  /** The host file the engine made. */
  source: string;
  /** Where it appears in the container. */
  destination: string;
}

export interface DirBind {
  source: string;
  destination: string;
  readonly: boolean;
}

export interface RunPlan {
  ociVersion: string;
  args: string[];
  /** Run under mapvisor's own init (podman --init's catatonit was asked for). */
  init: boolean;
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  terminal: boolean;
  rootPath: string;
  readonly: boolean;
  hostname: string | undefined;
  rlimits: Array<[number, number, number]>;
  mem: number | undefined;
  pids: number | undefined;
  cpus: number | undefined;
  /** linux.namespaces' network path: the network namespace the engine set up (the VMM joins it). */
  netns: string | undefined;
  /** Host files bound onto files of the container (also in binds); left out of the image cache's key. */
  files: FileCopy[];
  /** Host directories and files bound into the container (served by the kernel's host mounts). */
  binds: DirBind[];
  /** tmpfs mounts outside /dev, /proc, /sys: each is a fresh directory of the container's, mounted there. */
  tmpfs: Array<{ destination: string; mode: number }>;
  annotations: Record<string, string>;
}

const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10, RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

/** Mount types the kernel provides itself: accepted (the kernel's own /proc, /sys, /dev, ...). */
const OWN_MOUNTS = new Set(['proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2', 'shm']);
/** Where the kernel's own trees are: a bind of a host directory there is accepted as the kernel's own (podman binds /dev/shm). */
const OWN_TREES = ['/dev', '/proc', '/sys'];

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OciError(`config.json: ${field} is not an object`, 'fix the bundle\'s config.json');
  return v as Json;
}
function optObj(v: unknown, field: string): Json | undefined {
  return v === undefined || v === null ? undefined : obj(v, field);
}
function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new OciError(`config.json: ${field} is not a string`, 'fix the bundle\'s config.json');
  return v;
}
function strs(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new OciError(`config.json: ${field} is not an array of strings`, 'fix the bundle\'s config.json');
  return v as string[];
}
function uint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new OciError(`config.json: ${field} is not an unsigned integer`, 'fix the bundle\'s config.json');
  return v;
}
function unsupported(field: string, why: string, fix: string): never {
  throw new OciError(`config.json: ${field} ${why}`, fix);
}

/** Read and check BUNDLE/config.json. */
/**
 * `podIpc`: what to do with a namespace path of type ipc (a Kubernetes pod's containers join the pause
 * container's): 'refuse' (a one-line error), or 'own' (the container keeps its own System V IPC and
 * message queues; given with mapvisor-oci --pod-ipc own, e.g. in the BinaryName wrapper).
 */
export function readPlan(bundle: string, opts: { podIpc?: 'refuse' | 'own' } = {}): RunPlan {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new OciError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'give --bundle the directory holding config.json');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new OciError(`${path} is not JSON: ${(e as Error).message.split('\n')[0]}`, 'fix the bundle\'s config.json');
  }
  const c = obj(raw, 'the document');
  const ociVersion = str(c.ociVersion, 'ociVersion');
  const major = /^(\d+)\./.exec(ociVersion)?.[1];
  if (major !== '1') unsupported('ociVersion', `${JSON.stringify(ociVersion)} is not a 1.x runtime spec`, 'give a bundle made for runtime spec 1.x');

  const proc = obj(c.process, 'process');
  const args = strs(proc.args, 'process.args');
  if (args.length === 0) unsupported('process.args', 'is empty', 'give the program to run in process.args');
  if (proc.commandLine !== undefined) unsupported('process.commandLine', 'is for Windows', 'give process.args');
  const env = strs(proc.env, 'process.env');
  for (const e of env) if (!e.includes('=')) unsupported('process.env', `entry ${JSON.stringify(e)} is not KEY=VALUE`, 'fix the bundle\'s config.json');
  const cwd = str(proc.cwd ?? '/', 'process.cwd');
  if (!cwd.startsWith('/')) unsupported('process.cwd', `${JSON.stringify(cwd)} is not an absolute path`, 'give an absolute working directory');
  const user = optObj(proc.user, 'process.user') ?? {};
  const uid = user.uid === undefined ? 0 : uint(user.uid, 'process.user.uid');
  const gid = user.gid === undefined ? 0 : uint(user.gid, 'process.user.gid');
  const groups = ((user.additionalGids as unknown[] | undefined) ?? []).map((g, i) => uint(g, `process.user.additionalGids[${i}]`));
  if (user.username !== undefined) unsupported('process.user.username', 'is for Windows', 'give process.user.uid');
  const terminal = proc.terminal === true;
  const rlimits: Array<[number, number, number]> = [];
  for (const [i, r] of ((proc.rlimits as unknown[] | undefined) ?? []).entries()) {
    const o = obj(r, `process.rlimits[${i}]`);
    const type = str(o.type, `process.rlimits[${i}].type`);
    const n = RLIMITS[type];
    if (n === undefined) unsupported(`process.rlimits[${i}].type`, `${JSON.stringify(type)} is not a Linux resource limit`, 'give RLIMIT_NOFILE and the like');
    const lim = (v: unknown, f: string): number => (typeof v === 'number' && v >= 2 ** 53 ? Infinity : uint(v, f));
    rlimits.push([n, lim(o.soft, `process.rlimits[${i}].soft`), lim(o.hard, `process.rlimits[${i}].hard`)]);
  }
  // Accepted: the program never reaches the host kernel, so capabilities, noNewPrivileges, AppArmor,
  // SELinux, seccomp and OOM scores are the sandbox's own matter (its kernel answers as root with
  // the capabilities uid 0 has, and drops them for another uid).
  if (proc.consoleSize !== undefined) optObj(proc.consoleSize, 'process.consoleSize');

  const root = obj(c.root, 'root');
  const rootPath = resolvePath(bundle, str(root.path, 'root.path'));
  let st;
  try {
    st = statSync(rootPath);
  } catch {
    throw new OciError(`root.path ${rootPath} does not exist`, 'give the bundle\'s root file system directory in root.path');
  }
  if (!st.isDirectory()) unsupported('root.path', `${rootPath} is not a directory`, 'give the root file system directory');
  const readonly = root.readonly === true;
  const hostname = c.hostname === undefined ? undefined : str(c.hostname, 'hostname');
  if (c.domainname !== undefined && c.domainname !== '') unsupported('domainname', 'cannot be set in mapvisor (its domainname is "(none)")', 'drop domainname');

  const files: FileCopy[] = [];
  const binds: DirBind[] = [];
  const tmpfs: Array<{ destination: string; mode: number }> = [];
  for (const [i, m] of ((c.mounts as unknown[] | undefined) ?? []).entries()) {
    const o = obj(m, `mounts[${i}]`);
    const dest = str(o.destination, `mounts[${i}].destination`);
    if (!isAbsolute(dest)) unsupported(`mounts[${i}].destination`, `${JSON.stringify(dest)} is not absolute`, 'give an absolute destination');
    const type = o.type === undefined ? undefined : str(o.type, `mounts[${i}].type`);
    const options = strs(o.options, `mounts[${i}].options`);
    const bind = type === 'bind' || options.includes('bind') || options.includes('rbind');
    if (!bind) {
      if (type === 'tmpfs' && !OWN_TREES.some((t) => dest === t || dest.startsWith(`${t}/`))) {
        // mapvisor has no tmpfs: a fresh host directory of the container's (removed with it) stands in.
        const mode = /^mode=([0-7]{3,4})$/.exec(options.find((o) => o.startsWith('mode=')) ?? '')?.[1];
        tmpfs.push({ destination: dest, mode: mode ? parseInt(mode, 8) : 0o1777 });
        continue;
      }
      if (type !== undefined && OWN_MOUNTS.has(type)) continue;
      unsupported(`mounts[${i}]`, `of type ${JSON.stringify(type)} at ${dest} has no counterpart in mapvisor`, 'drop the mount');
    }
    const source = str(o.source, `mounts[${i}].source`);
    let sst;
    try {
      sst = statSync(source);
    } catch {
      unsupported(`mounts[${i}].source`, `${source} (bound at ${dest}) does not exist`, 'create it on the host first');
    }
    if (sst.isFile()) {
      // The engine's own files (/etc/hosts, /etc/resolv.conf, /etc/hostname, /run/.containerenv) and
      // file volumes: served live from the host like directories.
      files.push({ source, destination: dest });
      binds.push({ source, destination: dest, readonly: options.includes('ro') });
      continue;
    }
    if (OWN_TREES.some((t) => dest === t || dest.startsWith(`${t}/`))) continue; // e.g. /dev/shm: the kernel's own
    if (!sst.isDirectory()) unsupported(`mounts[${i}]`, `binds ${source} at ${dest}, which is neither a file nor a directory`, 'bind a file or a directory');
    binds.push({ source, destination: dest, readonly: options.includes('ro') });
  }

  let netns: string | undefined;
  let joinedUts: string | undefined;
  let mem: number | undefined;
  let pids: number | undefined;
  let cpus: number | undefined;
  const linux = optObj(c.linux, 'linux');
  if (linux) {
    for (const [i, ns] of ((linux.namespaces as unknown[] | undefined) ?? []).entries()) {
      const o = obj(ns, `linux.namespaces[${i}]`);
      const type = str(o.type, `linux.namespaces[${i}].type`);
      // Every sandbox is its own pid, network, ipc, uts, mount, user and cgroup namespace.
      if (!['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup', 'time'].includes(type)) unsupported(`linux.namespaces[${i}].type`, `${JSON.stringify(type)} is not a namespace`, 'fix the bundle\'s config.json');
      if (type === 'network' && typeof o.path === 'string' && o.path !== '') {
        // The engine's network (podman's netavark, a CNI plugin): the VMM runs in that namespace and the
        // program's sockets are host sockets there (--net host inside the container's network).
        netns = o.path;
        continue;
      }
      // A pod's UTS namespace: its containers share the hostname. The sandbox takes config.json's, or
      // (none given, as runc allows when joining) the one the namespace has.
      if (type === 'uts' && typeof o.path === 'string' && o.path !== '') {
        joinedUts = o.path;
        continue;
      }
      if (type === 'ipc' && opts.podIpc === 'own') continue;
      if (o.path !== undefined && o.path !== '') unsupported(`linux.namespaces[${i}].path`, `joins an existing ${type} namespace (${String(o.path)}), which a mapvisor sandbox cannot share`, 'drop the path (no --network=container:, --pod sharing)');
    }
    const res = optObj(linux.resources, 'linux.resources');
    if (res) {
      const memory = optObj(res.memory, 'linux.resources.memory');
      if (memory?.limit !== undefined && memory.limit !== null && memory.limit !== -1) {
        mem = uint(memory.limit, 'linux.resources.memory.limit');
        if (mem < 16 * 2 ** 20) unsupported('linux.resources.memory.limit', `${mem} is below mapvisor's 16 MiB minimum`, 'give --memory 16m or more');
      }
      const p = optObj(res.pids, 'linux.resources.pids');
      if (p?.limit !== undefined && p.limit !== null && (p.limit as number) > 0) pids = Math.min(uint(p.limit, 'linux.resources.pids.limit'), 32768);
      const cpu = optObj(res.cpu, 'linux.resources.cpu');
      if (cpu) {
        const quota = cpu.quota as number | undefined;
        const period = (cpu.period as number | undefined) ?? 100000;
        if (quota !== undefined && quota !== null && quota > 0) cpus = Math.max(1, Math.ceil(quota / period));
        if (typeof cpu.cpus === 'string' && cpu.cpus !== '') cpus = countCpus(cpu.cpus);
      }
    }
    // Accepted as the sandbox's own: seccomp, sysctl, maskedPaths, readonlyPaths, devices, cgroupsPath.
  }
  // podman --init: its catatonit, bound at /run/podman-init, runs `-- PROGRAM...` as pid 1. A bound file
  // cannot run in mapvisor (the kernel runs programs from the image): mapvisor's own init (--init) does
  // that job, reaping orphans with the program as pid 2.
  let init = false;
  let runArgs = args;
  if (args[1] === '--' && args.length > 2 && files.some((f) => f.destination === args[0] && /catatonit|tini|podman-init/.test(f.source + f.destination))) {
    init = true;
    runArgs = args.slice(2);
  }
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(optObj(c.annotations, 'annotations') ?? {})) annotations[k] = String(v);
  const name = hostname ?? (joinedUts !== undefined ? utsHostname(joinedUts) : undefined);
  return { ociVersion, args: runArgs, init, env, cwd, uid, gid, groups, terminal, rootPath, readonly, hostname: name, rlimits, mem, pids, cpus, netns, files, binds, tmpfs, annotations };
}

/** The hostname of the UTS namespace at `path` (a pod's): what uname -n says inside it. */
function utsHostname(path: string): string {
  const r = spawnSync('nsenter', [`--uts=${path}`, 'uname', '-n'], { encoding: 'utf8' });
  if (r.status !== 0) unsupported('linux.namespaces[uts].path', `cannot read the hostname of ${path}: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`, 'give the container a hostname in config.json, or run as root with util-linux\'s nsenter');
  return r.stdout.trim();
}

function countCpus(list: string): number {
  let n = 0;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) unsupported('linux.resources.cpu.cpus', `${JSON.stringify(list)} is not a CPU list`, 'give a list such as 0-1');
    n += m[2] ? Number(m[2]) - Number(m[1]) + 1 : 1;
  }
  return Math.max(1, Math.min(n, 64));
}
