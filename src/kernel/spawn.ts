/**
 * A process started from outside the sandbox (the OCI runtime's exec, Sandbox.exec): a new program
 * in the running sandbox's process table, with a machine and memory of its own (as a vfork child that
 * execs gets them), its own session, and no parent inside the sandbox (ppid 0, as runc's exec'd
 * processes show inside a container's pid namespace). Its end is reported to the host, which reaps it.
 */
import { randomBytes } from 'node:crypto';
import { ExecError, MapvisorError } from '../errors.js';
import { loadProgram } from '../loader/load.js';
import { vdsoImage } from '../vdso/image.js';
import { findExecutable } from '../sandbox/exec.js';
import { applyIdentity } from '../sandbox/identity.js';
import { startAt } from './exec.js';
import type { OpenFile } from './files/file.js';
import { Kernel } from './kernel.js';
import { procStart } from './vfs/proc.js';
import { rseqForget } from './sys/rseq.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface SpawnSpec {
  /** argv; argv[0] is looked up in PATH (of env) when it has no slash, as runc does. */
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
}

/** The image path of `name`: itself when it has a slash, else the first PATH entry where it is a file. */
function lookPath(k: Kernel, name: string, env: string[]): string {
  if (name.includes('/')) return name.startsWith('/') ? name : `/${name}`;
  const path = env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/')) continue;
    const p = `${dir.replace(/\/+$/, '')}/${name}`;
    try {
      const ino = k.root!.fs.resolve(p);
      if ((k.root!.fs.stat(ino).mode & 0o170000) === 0o100000) return p;
    } catch {
      // not in this directory
    }
  }
  throw new ExecError('ENOENT', `exec: ${JSON.stringify(name)}: executable file not found in $PATH (${path})`, 'give its full path, or a program the image holds');
}

/** A script's interpreter and its optional argument, or null when `path` is not a `#!` script. */
function shebangOf(k: Kernel, path: string): [string, string | null] | null {
  const fs = k.root!.fs;
  let ino: number;
  try {
    ino = fs.resolve(path);
  } catch {
    return null; // findExecutable says why
  }
  const head = new Uint8Array(Math.min(256, fs.stat(ino).size));
  fs.read(ino, 0, head);
  if (head[0] !== 0x23 || head[1] !== 0x21) return null;
  let end = head.indexOf(0x0a);
  if (end < 0) end = head.length;
  const m = /^[ \t]*(\S+)(?:[ \t]+(.*?))?[ \t]*$/.exec(new TextDecoder().decode(head.subarray(2, end)));
  if (!m) throw new ExecError('ENOEXEC', `${path} starts with #! but names no interpreter`, 'fix its first line');
  return [m[1]!, m[2] || null];
}

/**
 * Start `spec` in `main`'s sandbox with `files` as its fds 0, 1, 2. Returns the new process (its first
 * thread is unstarted: it runs once the kernel serves processes). Throws a one-line error when the
 * program cannot be started.
 */
export function spawnProcess(main: Kernel, spec: SpawnSpec, files: OpenFile[]): Kernel {
  const procs = main.procs;
  const threads = main.threads;
  if (!procs || !threads) throw new MapvisorError('EEXEC', 'this sandbox cannot hold another process', '');
  if (!main.root) throw new MapvisorError('EEXEC', 'the sandbox runs a host program with no file system: there is nothing to exec', 'run the sandbox from an image');
  if (!spec.args.length) throw new MapvisorError('EEXEC', 'exec needs a program to run', 'give its arguments');
  if (procs.count >= procs.limit) throw new MapvisorError('EAGAIN', `the sandbox holds ${procs.count} processes, its --pids limit`, 'raise the pids limit');
  const current = threads.current.k;
  let path = lookPath(main, spec.args[0]!, spec.env);
  let args = spec.args;
  // A `#!` script runs its interpreter (with at most one argument), as execve does; one level.
  const script = shebangOf(main, path);
  if (script) {
    args = [script[0], ...(script[1] !== null ? [script[1]] : []), path, ...spec.args.slice(1)];
    path = script[0];
  }
  const { main: exe, interp } = findExecutable(main.root, path);
  const made = procs.host.newSpace(main);
  if (typeof made === 'number') throw new MapvisorError('ENOMEM', `no machine for a new process (errno ${-made})`, 'free host memory');
  let child: Kernel | null = null;
  try {
    const loaded = loadProgram(made.space, exe, { argv: args, envp: spec.env, execfn: spec.args[0]!, uid: spec.uid, gid: spec.gid, hwcap: main.hwcap, random: new Uint8Array(randomBytes(16)), vdso: vdsoImage() }, interp);
    const pid = threads.allocId();
    child = new Kernel({ space: made.space, stop: main.stop, identity: { pid, uid: 0, gid: 0 }, cpus: main.cpus, strace: main.strace, exePath: path, root: main.root, argv: args, mem: main.mem, net: main.net });
    child.machine = made.machine;
    child.stats = main.stats;
    child.hwcap = main.hwcap;
    child.vdsoPlatform = main.vdsoPlatform;
    child.attachVvar(loaded.vvar);
    child.rlimits = new Map([...main.rlimits].map(([r, v]) => [r, [v[0], v[1]] as [number, number]]));
    child.umask = main.umask;
    child.exitSignal = 0;
    applyIdentity(child, { uid: spec.uid, gid: spec.gid, groups: spec.groups, cwd: spec.cwd });
    files.forEach((f, i) => child!.fds.install(f, false, i));
    procStart(child, spec.env);
    child.threads = threads;
    child.parent = null; // ppid 0: the process came from outside the container
    procs.add(child);
    startAt(made.cpu, loaded.entry, loaded.sp, made.cpu.getFxsave());
    rseqForget(made.cpu); // (a recycled machine's vCPU may still name its last program's rseq area)
    threads.addProcess(child, made.cpu, 0n);
    return child;
  } catch (e) {
    if (child && procs.get(child.identity.pid) === child) procs.byPid.delete(child.identity.pid);
    procs.host.dropSpace(made);
    throw e;
  } finally {
    current.activate(); // (a new Kernel binds the shared memory view to its space)
  }
}
