/**
 * execve and execveat: replace the calling process's program. The process keeps its pid, parent,
 * fds without close-on-exec, ignored signals and limits; its memory is emptied and the new program
 * (and its interpreter) mapped from the image, in place where the storage allows, exactly as the
 * first program was loaded. `#!` scripts run their interpreter with at most one argument, as Linux's
 * binfmt_script does.
 */
import { capsExec } from './sys/caps.js';
import { pkeyExec } from './sys/mm.js';
import { releaseMappedFiles } from './vfs/mapholds.js';
import { closePosix } from './files/locks.js';
import { rseqForget } from './sys/rseq.js';
import { randomBytes } from 'node:crypto';
import { E } from '../abi/errno.js';
import { ExecError } from '../errors.js';
import { MAX_ARG_STRLEN } from '../loader/stack.js';
import { loadProgram } from '../loader/load.js';
import { vdsoImage } from '../vdso/image.js';
import { REGS, REGS_SIZE } from '../platform/regs.js';
import type { Context } from '../platform/platform.js';
import { findExecutable } from '../sandbox/exec.js';
import type { Kernel } from './kernel.js';
import { resolve } from './sys/fs.js';
import { procExec, procLink } from './vfs/proc.js';
import { SharedFileMaps } from './vfs/sharedmaps.js';
import { deletePosixTimers } from './sys/posixtimer.js';
import type { SyscallResult } from './types.js';

const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const AT_SYMLINK_NOFOLLOW = 0x100;
/** Linux's limit on the argument and environment bytes (a quarter of an 8 MiB stack). */
const ARG_MAX = 2 * 1024 * 1024;
/** How many `#!` interpreters may chain (Linux: BINPRM_MAX_RECURSION). */
const MAX_INTERP_DEPTH = 4;
/** binfmt_script reads the first line within this many bytes. */
const SHEBANG_MAX = 256;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

/** A NULL-terminated array of string pointers (argv, envp); -errno on a fault or when too big. */
function readStrings(k: Kernel, addr: number, budget: { left: number }): string[] | number {
  const out: string[] = [];
  if (addr === 0) return out;
  for (let i = 0; ; i++) {
    if (!k.mem.ok(addr + i * 8, 8, 1)) return -E.EFAULT;
    const p = Number(k.mem.readBigU64(addr + i * 8));
    if (p === 0) return out;
    const s = k.mem.readCStringBytes(p, MAX_ARG_STRLEN);
    if (s === null) return -E.E2BIG;
    budget.left -= s.length + 1 + 8;
    if (budget.left < 0) return -E.E2BIG;
    out.push(new TextDecoder().decode(s));
  }
}

/** The errno Linux's execve answers for a loader refusal. */
function execErrno(e: ExecError): number {
  switch (e.code) {
    case 'ENOENT':
      return E.ENOENT;
    case 'EACCES':
    case 'ENOTREG':
      return E.EACCES;
    case 'ENOMEM':
      return E.ENOMEM;
    case 'E2BIG':
      return E.E2BIG;
    default:
      return E.ENOEXEC; // not an ELF this machine runs, a broken one, a broken interpreter
  }
}

/** A fresh FXSAVE image: x87 control word 0x37f, MXCSR 0x1f80 (as a new process starts). */
function initialFpu(like: Uint8Array): Uint8Array {
  const fx = new Uint8Array(like.length);
  const dv = new DataView(fx.buffer);
  dv.setUint16(0, 0x037f, true);
  dv.setUint32(24, 0x1f80, true);
  fx.set(like.subarray(28, 32), 28); // MXCSR_MASK: the CPU's, unchanged
  return fx;
}

/** Registers for a new program: at `entry` with stack `sp`, everything else as a new process has it. */
export function startAt(cpu: Context, entry: number, sp: number, fxLike: Uint8Array): void {
  const regs = Buffer.alloc(REGS_SIZE);
  regs.writeBigUInt64LE(BigInt(entry), REGS.rip);
  regs.writeBigUInt64LE(BigInt(sp), REGS.rsp);
  regs.writeBigUInt64LE(0x202n, REGS.rflags);
  cpu.putState({ regs, fsBase: 0, gsBase: 0, fpu: initialFpu(fxLike) });
  cpu.resumeUser();
}

/** The script's interpreter line: [interpreter, optional argument], or null when it is not a script. */
function shebang(head: Uint8Array): [string, string | null] | null | number {
  if (head.length < 2 || head[0] !== 0x23 || head[1] !== 0x21) return null;
  let end = head.indexOf(0x0a);
  if (end < 0) end = head.length; // Linux 5.x+: a line cut at the buffer is used as it is
  const line = new TextDecoder().decode(head.subarray(2, end)).replace(/[ \t]+$/, '').replace(/^[ \t]+/, '');
  if (!line) return -E.ENOEXEC;
  const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(line);
  if (!m) return -E.ENOEXEC;
  return [m[1]!, m[2] ?? null];
}

export function execve(k: Kernel, cpu: Context, dirfd: number, pathAddr: number, argvAddr: number, envpAddr: number, flags: number): SyscallResult {
  if (flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return -E.EINVAL;
  const path0 = k.mem.readCString(pathAddr, 4096);
  if (path0 === null) return -E.ENAMETOOLONG;
  const budget = { left: ARG_MAX };
  const argv = readStrings(k, argvAddr, budget);
  if (typeof argv === 'number') return argv;
  const envp = readStrings(k, envpAddr, budget);
  if (typeof envp === 'number') return envp;
  const root = k.root;
  if (!root) return -E.ENOENT; // no file system: nothing to run
  if (path0 === '' && !(flags & AT_EMPTY_PATH)) return -E.ENOENT;

  // Follow `#!` lines to the program that really runs.
  let path = path0;
  let args = argv;
  let at = dirfd;
  let abs = '';
  for (let depth = 0; ; depth++) {
    if (depth > MAX_INTERP_DEPTH) return -E.ELOOP;
    let t = resolve(k, path === '' ? dirfd : at, path === '' ? '.' : path, !(flags & AT_SYMLINK_NOFOLLOW) || depth > 0);
    if (typeof t === 'number') return t;
    if (t.kind === 'proc') {
      // /proc/self/exe and friends: the file the link names (busybox runs its applets this way).
      const link = procLink(k, t.path);
      if (link === null || !link.startsWith('/')) return -E.EACCES;
      t = resolve(k, AT_FDCWD, link, true);
      if (typeof t === 'number') return t;
    }
    if (t.kind !== 'inode') return -E.EACCES; // /dev and /proc entries are not programs
    const st = root.fs.stat(t.ino);
    if ((st.mode & S_IFMT) === S_IFDIR) return -E.EACCES;
    if ((st.mode & S_IFMT) !== S_IFREG || !(st.mode & 0o111)) return -E.EACCES;
    abs = t.path;
    const head = new Uint8Array(Math.min(SHEBANG_MAX, st.size));
    root.fs.read(t.ino, 0, head);
    const sb = shebang(head);
    if (typeof sb === 'number') return sb;
    if (sb === null) break;
    const [interp, arg] = sb;
    // The script's path replaces argv[0]; the interpreter (and its one argument) come first.
    args = [interp, ...(arg !== null ? [arg] : []), abs, ...args.slice(1)];
    path = interp;
    at = AT_FDCWD;
  }

  let main;
  let interp;
  try {
    ({ main, interp } = findExecutable(root, abs));
  } catch (e) {
    if (e instanceof ExecError) return -execErrno(e);
    throw e;
  }

  const procs = k.procs;
  const me = k.curThread;
  const params = { argv: args, envp, execfn: path0, uid: k.identity.uid, gid: k.identity.gid, hwcap: k.hwcap, random: new Uint8Array(randomBytes(16)), vdso: vdsoImage() };
  if (k.borrowsFrom && procs && me) {
    // A vfork child leaves its parent's memory: the program goes into memory (and a machine) of its
    // own, its thread moves there, and the parent, which waited, continues.
    const made = procs.host.newSpace(k);
    if (typeof made === 'number') return made;
    let loaded;
    try {
      loaded = loadProgram(made.space, main, params, interp);
    } catch (e) {
      procs.host.dropSpace(made);
      if (e instanceof ExecError) return -execErrno(e);
      throw e;
    }
    k.space = made.space;
    k.machine = made.machine;
    k.borrowsFrom = null;
    k.attachVvar(loaded.vvar);
    k.sharedFileMaps.clear();
    k.sharedFileMaps = new SharedFileMaps(made.space.window, k.root);
    k.activate();
    startAt(made.cpu, loaded.entry, loaded.sp, cpu.getFxsave());
    procs.host.moveThread(me, made.cpu);
  } else {
    // The point of no return: the old program goes.
    if (k.threads && procs) {
      for (const t of k.threads.of(k)) {
        if (t === me) continue;
        procs.host.stopThread(t);
        k.threads.byTid.delete(t.tid);
      }
      // The thread that execs becomes the process's only thread, with the process's id (de_thread).
      if (me && me.tid !== k.identity.pid) {
        k.threads.byTid.delete(me.tid);
        me.tid = k.identity.pid;
        k.threads.byTid.set(me.tid, me);
      }
    }
    k.writeBackSharedMaps();
    k.sharedFileMaps.clear(); // the old program's mappings go with it
    k.space.clear();
    let loaded;
    try {
      loaded = loadProgram(k.space, main, params, interp);
    } catch (e) {
      // Linux kills a process whose exec fails past the point of no return.
      if (e instanceof ExecError) return { kind: 'kill', signal: 11, reason: `SIGSEGV: execve of ${abs} failed after the old program was gone: ${e.message}` };
      throw e;
    }
    k.attachVvar(loaded.vvar);
    startAt(cpu, loaded.entry, loaded.sp, cpu.getFxsave());
  }

  k.signals.resetForExec(); // the blocked mask and pending signals stay, as on Linux
  deletePosixTimers(k);
  for (const [fd, f] of k.fds.entries()) if (k.fds.cloexec(fd)) closePosix(k, f); // closing them drops the process's record locks
  k.fds.closeOnExec();
  k.exePath = abs;
  k.argv = args;
  procExec(k, envp); // /proc/PID/environ
  // comm is the last component of the name execve was given, as Linux's bprm->filename: a script's own
  // name (not its interpreter's), "exe" for /proc/self/exe (busybox re-executes itself that way).
  k.threadName = ((path0 || abs).split('/').pop() ?? '').slice(0, 15);
  k.clearChildTid = 0;
  k.robustList = 0;
  k.sleepRestart = null;
  if (me) {
    me.clearTid = 0;
    me.robustList = 0;
    me.altStack = { sp: 0n, flags: 2, size: 0n };
  }
  capsExec(k);
  releaseMappedFiles(k);
  pkeyExec(k.space);
  rseqForget(cpu); // the new program has no rseq area (nor has the context a vfork child's thread moved to)
  rseqForget(me?.cpu);
  k.execCount++;
  procs?.releaseVforkParent(k);
  return { kind: 'resume' };
}
