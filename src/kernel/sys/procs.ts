/**
 * Process system calls: fork, vfork, clone (threads and processes), execve, wait4, waitid, the
 * process tree (getppid, process groups, sessions), kill and friends across processes, and the
 * waits for a signal (rt_sigsuspend, pause). The process model itself is procs.ts.
 */
import { CAP, capable, capsFork, capsSetuid } from './caps.js';
import { rseqFork, rseqForget } from './rseq.js';
import { pkeyFork } from './mm.js';
import { forkMappedFiles } from '../vfs/mapholds.js';
import { E } from '../../abi/errno.js';
import { procFork } from '../vfs/proc.js';
import { NSIG, SIG } from '../../abi/signals.js';
import type { RegName } from '../../platform/regs.js';
import type { Context } from '../../platform/platform.js';
import { execve } from '../exec.js';
import { Kernel } from '../kernel.js';
import { napUntil } from '../nap.js';
import { CLD_EXITED, CLD_KILLED, SI_USER } from '../signal-frame.js';
import { CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID, CLONE_SETTLS, CLONE_THREAD, CLONE_VM, type CloneArgs } from '../threads.js';
import type { SyscallResult, SyscallTable } from '../types.js';
import type { ForkedSpace } from '../procs.js';
import { raise } from './signal.js';

const CLONE_VFORK = 0x4000;
const CLONE_PARENT = 0x8000;
const CLONE_NEWNS = 0x20000;
const CLONE_PIDFD = 0x1000;
const CLONE_SIGHAND = 0x800;
const CLONE_FILES = 0x400;
const CLONE_FS = 0x200;
const CLONE_SYSVSEM = 0x40000;
const CLONE_DETACHED = 0x400000;
const CLONE_UNTRACED = 0x800000;
const CLONE_IO = 0x80000000;
/** Flags a new process may have here (others: EINVAL, or for namespaces EPERM as for an unprivileged caller). */
const FORK_KNOWN = CLONE_VFORK | CLONE_PARENT | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID | CLONE_SYSVSEM | CLONE_DETACHED | CLONE_UNTRACED | CLONE_IO | CLONE_VM | 0xff;
const NAMESPACE_FLAGS = CLONE_NEWNS | 0x02000000 /* NEWCGROUP */ | 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ | 0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000 /* NEWNET */;

const WNOHANG = 1;
const WUNTRACED = 2;
const WEXITED = 4;
const WCONTINUED = 8;
const WNOWAIT = 0x01000000;
const __WNOTHREAD = 0x20000000;
const __WALL = 0x40000000;
const __WCLONE = 0x80000000 | 0;
const P_ALL = 0;
const P_PID = 1;
const P_PGID = 2;
const UNBLOCKABLE = (1n << BigInt(SIG.SIGKILL - 1)) | (1n << BigInt(SIG.SIGSTOP - 1));

const SIGINFO_SIZE = 128;
const RUSAGE_SIZE = 144;

/** The registers a new thread or process starts with: the caller's as the syscall returns, rax = 0. */
export function childRegs(parent: Context, stack: number): Partial<Record<RegName, bigint>> {
  const regs: Partial<Record<RegName, bigint>> = {};
  for (const r of ['rbx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r12', 'r13', 'r14', 'r15', 'rcx', 'r11'] as const) regs[r] = parent.regBig(r);
  regs.rax = 0n;
  regs.rsp = stack ? BigInt(stack) : parent.regBig('rsp');
  regs.rip = parent.regBig('rcx');
  regs.rflags = (parent.regBig('r11') & 0x254dd5n) | 0x202n;
  return regs;
}

/**
 * fork, vfork and clone without CLONE_THREAD: a new process with a copy of the caller's memory
 * (shared mappings stay shared), its fds (sharing their descriptions), dispositions and limits, and
 * one thread: the caller's, returning 0. CLONE_VM without CLONE_THREAD (posix_spawn's
 * CLONE_VM|CLONE_VFORK) also gets a copy: the parent waits until the child execs or exits, so the
 * only difference a program can see is that the child's writes before its exec stay its own.
 */
export function forkProcess(k: Kernel, cpu: Context, args: CloneArgs & { exitSignal: number }): SyscallResult {
  const f = args.flags;
  const procs = k.procs;
  const threads = k.threads;
  if (!procs || !threads) return -E.ENOSYS;
  if (f & NAMESPACE_FLAGS) return -E.EPERM; // new namespaces need privilege the sandbox does not grant
  if (f & (CLONE_SIGHAND | CLONE_FS | CLONE_FILES | CLONE_PIDFD)) return -E.EINVAL; // shared tables between processes: not supported
  if (f & CLONE_VM && !(f & CLONE_VFORK)) {
    // A process sharing its parent's memory without waiting for it (not a thread, not vfork): not
    // supported. Counted as unimplemented, like an unknown system call.
    k.stats.unimplemented(56);
    return -E.ENOSYS;
  }
  if (f & ~FORK_KNOWN) return -E.EINVAL;
  if (args.exitSignal < 0 || args.exitSignal > NSIG) return -E.EINVAL;
  if (f & CLONE_SETTLS && (!Number.isSafeInteger(args.tls) || args.tls >= 2 ** 47)) return -E.EPERM;
  if (procs.count >= procs.limit) return -E.EAGAIN; // --pids
  const regs = childRegs(cpu, args.stack);
  const start = { regs, fsBase: f & CLONE_SETTLS ? args.tls : cpu.fsBase };
  // vfork (CLONE_VM|CLONE_VFORK): the child runs in the parent's memory, on the parent's machine,
  // while the parent waits; it gets memory of its own when it execs. fork: a copy now.
  let made: ForkedSpace | number;
  if (f & CLONE_VM) {
    const c = threads.newContext(k, start, cpu);
    made = c ? { space: k.space, cpu: c, machine: k.machine } : -E.EAGAIN;
  } else {
    made = procs.host.forkSpace(k, start, cpu);
  }
  if (typeof made === 'number') return made;
  const pid = threads.allocId();
  const wasThreaded = threads.threaded;
  const child = new Kernel({
    space: made.space,
    stop: k.stop,
    identity: { pid, uid: k.identity.uid, gid: k.identity.gid },
    cpus: k.cpus,
    strace: k.strace,
    exePath: k.exePath,
    root: k.root,
    argv: k.argv,
    mem: k.mem,
    net: k.net,
  });
  child.machine = made.machine;
  child.stats = k.stats;
  if (f & CLONE_VM) child.borrowsFrom = k.borrowsFrom ?? k;
  child.hwcap = k.hwcap;
  child.vdsoPlatform = k.vdsoPlatform;
  // The child's copy of the vvar page is its own to keep (a CLONE_VM child reads its parent's).
  if (!(f & CLONE_VM)) child.attachVvar(k.vvarAddr);
  // The child maps the shared-file cache's slots the parent maps (a vfork child borrows the parent's).
  if (!(f & CLONE_VM)) child.sharedFileMaps.inherit(k.sharedFileMaps);
  child.fds = k.fds.fork();
  child.signals = k.signals.fork();
  child.cwd = { ...k.cwd };
  child.umask = k.umask;
  child.rlimits = new Map([...k.rlimits].map(([r, v]) => [r, [v[0], v[1]] as [number, number]]));
  child.nice = k.nice;
  child.groups = [...k.groups];
  child.threadName = k.threadName;
  procFork(k, child); // /proc: the environment, the start time
  child.threads = threads;
  child.pgid = k.pgid;
  child.sid = k.sid;
  child.exitSignal = args.exitSignal;
  const parent = f & CLONE_PARENT && k.parent ? k.parent : k;
  child.parent = parent;
  parent.children.add(child);
  procs.add(child);
  const t = threads.addProcess(child, made.cpu, k.signals.blocked);
  capsFork(k, child);
  rseqFork(cpu, made.cpu, (f & CLONE_VM) !== 0);
  pkeyFork(k.space, made.space);
  forkMappedFiles(k, child);
  if (f & CLONE_CHILD_CLEARTID) t.clearTid = args.ctid;
  if (f & CLONE_PARENT_SETTID) k.mem.writeU32(args.ptid, pid);
  if (f & CLONE_CHILD_SETTID) {
    child.activate();
    try {
      if (child.mem.ok(args.ctid, 4, 2)) child.mem.writeU32(args.ctid, pid);
    } finally {
      k.activate();
    }
  }
  if (f & CLONE_VFORK) return { kind: 'park', park: { kind: 'vfork', child: pid, deadline: Infinity } };
  // The first other process: from now on every thread runs in a worker and the kernel serves them all.
  return wasThreaded ? pid : { kind: 'threaded', result: pid };
}

/** clone: a thread (CLONE_THREAD) or a process. */
function clone(k: Kernel, cpu: Context, args: CloneArgs & { exitSignal: number }): SyscallResult {
  if (args.flags & CLONE_THREAD) {
    if (!k.threads) return -E.ENOSYS;
    if (args.exitSignal !== 0) return -E.EINVAL;
    const wasThreaded = k.threads.threaded;
    const r = k.threads.clone(k, args);
    if (typeof r === 'number' && r > 0) rseqForget(k.threads.byTid.get(r)?.cpu); // a new thread has no rseq area
    if (typeof r === 'number' && r > 0 && !wasThreaded) return { kind: 'threaded', result: r };
    return r;
  }
  return forkProcess(k, cpu, args);
}

/** Does child `c` match wait's pid argument (as wait4 reads it) for the waiting process `k`? */
function matches(k: Kernel, c: Kernel, pid: number): boolean {
  if (pid > 0) return c.identity.pid === pid;
  if (pid === -1) return true;
  if (pid === 0) return c.pgid === k.pgid;
  return c.pgid === -pid;
}

/**
 * The waiting part of wait4 and waitid: a zombie child that matches (or, asked for, one that stopped
 * or continued since it was last reported), 0 (WNOHANG), or a park.
 */
function waitFor(k: Kernel, pid: number, options: number, collect: (c: Kernel) => number, job?: (c: Kernel, what: 'stopped' | 'continued') => number, exited = true): SyscallResult {
  const kids = [...k.children].filter((c) => matches(k, c, pid));
  if (kids.length === 0) return -E.ECHILD;
  const z = exited ? kids.find((c) => c.zombie) : undefined;
  if (z) return collect(z);
  if (job) {
    const s = kids.find((c) => (c.stopReport === 'stopped' && options & WUNTRACED) || (c.stopReport === 'continued' && options & WCONTINUED));
    if (s) return job(s, s.stopReport!);
  }
  if (options & WNOHANG) return 0;
  if (!k.threads?.threaded) return -E.ECHILD; // cannot happen: a child exists only once processes are served
  return { kind: 'park', park: { kind: 'retry', deadline: Infinity, onTimeout: -E.EINTR } };
}

function wait4(k: Kernel, pid: number, statusAddr: number, options: number, rusageAddr: number): SyscallResult {
  if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WNOTHREAD | __WALL | __WCLONE)) return -E.EINVAL;
  if (pid === -0x80000000) return -E.ESRCH;
  return waitFor(
    k,
    pid,
    options,
    (z) => {
      if (statusAddr) k.mem.writeU32(statusAddr, z.zombie!.status);
      if (rusageAddr) k.mem.write(rusageAddr, new Uint8Array(RUSAGE_SIZE));
      k.procs!.reap(z);
      return z.identity.pid;
    },
    (c, what) => {
      // WIFSTOPPED: 0x7f | sig << 8; WIFCONTINUED: 0xffff.
      if (statusAddr) k.mem.writeU32(statusAddr, what === 'stopped' ? 0x7f | (c.stopped << 8) : 0xffff);
      if (rusageAddr) k.mem.write(rusageAddr, new Uint8Array(RUSAGE_SIZE));
      c.stopReport = null;
      return c.identity.pid;
    },
  );
}

function waitid(k: Kernel, idtype: number, id: number, infop: number, options: number, rusageAddr: number): SyscallResult {
  if (options & ~(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | __WNOTHREAD | __WALL | __WCLONE)) return -E.EINVAL;
  if (!(options & (WEXITED | WUNTRACED | WCONTINUED))) return -E.EINVAL;
  let pid: number;
  if (idtype === P_ALL) pid = -1;
  else if (idtype === P_PID) {
    if (id <= 0) return -E.EINVAL;
    pid = id;
  } else if (idtype === P_PGID) {
    if (id < 0) return -E.EINVAL;
    pid = id === 0 ? 0 : -id;
  } else return -E.EINVAL;
  const info = (c: Kernel, code: number, status: number): void => {
    if (!infop) return;
    const b = new Uint8Array(SIGINFO_SIZE);
    const dv = new DataView(b.buffer);
    dv.setInt32(0, SIG.SIGCHLD, true);
    dv.setInt32(8, code, true);
    dv.setInt32(16, c.identity.pid, true);
    dv.setUint32(20, c.identity.uid, true);
    dv.setInt32(24, status, true);
    k.mem.write(infop, b);
  };
  // (waitid's WSTOPPED is wait4's WUNTRACED)
  const r = waitFor(
    k,
    pid,
    options,
    (z) => {
      const st = z.zombie!.status;
      const killed = (st & 0x7f) !== 0;
      info(z, killed ? CLD_KILLED : CLD_EXITED, killed ? st & 0x7f : (st >> 8) & 0xff);
      if (rusageAddr) k.mem.write(rusageAddr, new Uint8Array(RUSAGE_SIZE));
      if (!(options & WNOWAIT)) k.procs!.reap(z);
      return 0;
    },
    (c, what) => {
      info(c, what === 'stopped' ? 5 /* CLD_STOPPED */ : 6 /* CLD_CONTINUED */, what === 'stopped' ? c.stopped : SIG.SIGCONT);
      if (!(options & WNOWAIT)) c.stopReport = null;
      return 0;
    },
    (options & WEXITED) !== 0,
  );
  if (r === 0 && infop && options & WNOHANG) {
    // WNOHANG with no child ready: Linux answers 0 with si_pid zeroed (callers test it).
    const still = [...k.children].some((c) => matches(k, c, pid) && c.zombie);
    if (!still) k.mem.write(infop, new Uint8Array(SIGINFO_SIZE));
  }
  return r;
}

/** kill(pid, sig): to a process, a group (0: the caller's, < -1: -pid), or every process (-1). */
function kill(k: Kernel, pid: number, sig: number): SyscallResult {
  if (sig < 0 || sig > NSIG) return -E.EINVAL;
  const procs = k.procs;
  const info = { signo: sig, code: SI_USER, pid: k.identity.pid, uid: k.identity.uid };
  if (!procs) {
    if (pid !== k.identity.pid && pid !== 0 && pid !== -1) return -E.ESRCH;
    return raise(k, sig);
  }
  let targets: Kernel[];
  if (pid > 0) {
    const t = procs.get(pid);
    if (!t) return -E.ESRCH;
    targets = [t];
  } else if (pid === -1) {
    targets = procs.live().filter((p) => p !== procs.init || p === k);
    if (targets.length === 0) return -E.ESRCH;
  } else {
    if (pid === -0x80000000) return -E.ESRCH;
    targets = procs.group(pid === 0 ? k.pgid : -pid);
    if (targets.length === 0) return -E.ESRCH;
  }
  // Others first: the caller's own signal may end it (then nothing after it would run).
  for (const t of targets) if (t !== k) procs.signal(t, sig, info);
  return targets.includes(k) ? raise(k, sig, pid > 0 ? 'sent by the program to itself' : 'sent to its own process group') : 0;
}

/** tgkill/tkill: a signal for one thread (delivered to its process: per-thread delivery is not modelled). */
function threadKill(k: Kernel, tgid: number | null, tid: number, sig: number): SyscallResult {
  if (sig < 0 || sig > NSIG) return -E.EINVAL;
  if (tid <= 0 || (tgid !== null && tgid <= 0)) return -E.EINVAL;
  const t = k.threads?.byTid.get(tid);
  const owner = t?.k ?? (tid === k.identity.pid ? k : undefined);
  if (!owner || (tgid !== null && owner.identity.pid !== tgid)) return -E.ESRCH;
  if (owner === k) return raise(k, sig);
  k.procs?.signal(owner, sig, { signo: sig, code: -6 /* SI_TKILL */, pid: k.identity.pid, uid: k.identity.uid });
  return 0;
}

function setpgid(k: Kernel, pid: number, pgid: number): number {
  if (pgid < 0) return -E.EINVAL;
  const procs = k.procs;
  const target = pid === 0 || pid === k.identity.pid ? k : procs?.get(pid);
  if (!target || (target !== k && target.parent !== k)) return -E.ESRCH;
  if (target !== k && target.sid !== k.sid) return -E.EPERM;
  if (target !== k && target.execCount > 0) return -E.EACCES;
  if (target.sid === target.identity.pid) return -E.EPERM; // a session leader keeps its group
  const group = pgid === 0 ? target.identity.pid : pgid;
  if (group !== target.identity.pid && !(procs?.live().some((p) => p.pgid === group && p.sid === target.sid) ?? false)) return -E.EPERM;
  target.pgid = group;
  return 0;
}

function lookup(k: Kernel, pid: number): Kernel | number {
  if (pid < 0) return -E.EINVAL;
  if (pid === 0 || pid === k.identity.pid) return k;
  const p = k.procs?.get(pid);
  return p ?? -E.ESRCH;
}

/** rt_sigsuspend / pause: wait, with `mask` blocked meanwhile (null: as it is), until a signal is delivered. */
function suspend(k: Kernel, mask: bigint | null): SyscallResult {
  const saved = k.signals.blocked;
  if (mask !== null) k.signals.blocked = mask & ~UNBLOCKABLE;
  if (k.signals.nextDeliverable() !== 0) {
    // Already pending: the call ends now, and the handler's frame restores the caller's mask.
    if (mask !== null) k.suspendMask = saved;
    return -E.EINTR;
  }
  if (k.threads?.threaded) return { kind: 'park', park: { kind: 'signal', deadline: Infinity, onTimeout: -E.EINTR, savedMask: mask !== null ? saved : null } };
  // A lone single-threaded program: no one can send it a signal; it waits until the VMM stops it.
  napUntil(Infinity, () => k.stop.stopRequested());
  k.signals.blocked = saved;
  return { kind: 'stop' };
}

/**
 * Changing identity. mapvisor keeps one user and one group id per process (real, effective, saved
 * and file-system ids are the same): root may change them to anything; anyone else only "changes"
 * them to what they are (EPERM otherwise), as Linux answers an unprivileged caller.
 */
const ID_UNCHANGED = 0xffffffff;
function setIds(k: Kernel, which: 'uid' | 'gid', ids: number[]): number {
  const cur = k.identity[which];
  const given = ids.filter((v) => v !== ID_UNCHANGED);
  if (given.some((v) => v < 0 || v > 0xfffffffe)) return -E.EINVAL;
  if (!capable(k, which === 'uid' ? CAP.SETUID : CAP.SETGID) && given.some((v) => v !== cur)) return -E.EPERM;
  // The effective id is what the process acts as: the second of (r, e, s), else the first given.
  const next = ids.length >= 2 && ids[1] !== ID_UNCHANGED ? ids[1]! : given[0];
  const oldUid = k.identity.uid;
  if (next !== undefined) k.identity[which] = next;
  if (which === 'uid') capsSetuid(k, oldUid);
  return 0;
}

export const procSyscalls: SyscallTable = {
  setuid: (k, a) => (a.u32(0) === ID_UNCHANGED ? -E.EINVAL : setIds(k, 'uid', [a.u32(0)])),
  setgid: (k, a) => (a.u32(0) === ID_UNCHANGED ? -E.EINVAL : setIds(k, 'gid', [a.u32(0)])),
  setreuid: (k, a) => setIds(k, 'uid', [a.u32(0), a.u32(1)]),
  setregid: (k, a) => setIds(k, 'gid', [a.u32(0), a.u32(1)]),
  setresuid: (k, a) => setIds(k, 'uid', [a.u32(0), a.u32(1), a.u32(2)]),
  setresgid: (k, a) => setIds(k, 'gid', [a.u32(0), a.u32(1), a.u32(2)]),
  setfsuid: (k, a) => {
    const old = k.identity.uid;
    setIds(k, 'uid', [a.u32(0)]);
    return old;
  },
  setfsgid: (k, a) => {
    const old = k.identity.gid;
    setIds(k, 'gid', [a.u32(0)]);
    return old;
  },
  getgroups: (k, a) => {
    const size = a.i32(0);
    if (size < 0) return -E.EINVAL;
    if (size === 0) return k.groups.length;
    if (size < k.groups.length) return -E.EINVAL;
    k.groups.forEach((g, i) => k.mem.writeU32(a.u64(1) + 4 * i, g));
    return k.groups.length;
  },
  setgroups: (k, a) => {
    const size = a.i32(0);
    if (size < 0 || size > 65536) return -E.EINVAL;
    if (!capable(k, CAP.SETGID)) return -E.EPERM;
    const groups: number[] = [];
    for (let i = 0; i < size; i++) groups.push(k.mem.readU32(a.u64(1) + 4 * i));
    k.groups = groups;
    return 0;
  },
  fork: (k, _a, cpu) => forkProcess(k, cpu, { flags: 0, stack: 0, ptid: 0, ctid: 0, tls: 0, exitSignal: SIG.SIGCHLD }),
  vfork: (k, _a, cpu) => forkProcess(k, cpu, { flags: CLONE_VFORK | CLONE_VM, stack: 0, ptid: 0, ctid: 0, tls: 0, exitSignal: SIG.SIGCHLD }),
  clone: (k, a, cpu) => {
    const flags = a.u64(0);
    return clone(k, cpu, { flags: flags & ~0xff, stack: a.u64(1), ptid: a.u64(2), ctid: a.u64(3), tls: a.u64(4), exitSignal: flags & 0xff });
  },
  clone3: (k, a, cpu) => {
    const size = a.u64(1);
    if (size < 64) return -E.EINVAL;
    const b = k.mem.read(a.u64(0), 64);
    const dv = new DataView(b.buffer, b.byteOffset, 64);
    const u = (o: number): number => Number(dv.getBigUint64(o, true));
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls
    if (u(0) & 0xff) return -E.EINVAL; // the exit signal has a field of its own
    return clone(k, cpu, { flags: u(0), ctid: u(16), ptid: u(24), exitSignal: u(32), stack: u(40) ? u(40) + u(48) : 0, tls: u(56) });
  },
  execve: (k, a, cpu) => execve(k, cpu, -100, a.u64(0), a.u64(1), a.u64(2), 0),
  execveat: (k, a, cpu) => execve(k, cpu, a.i32(0), a.u64(1), a.u64(2), a.u64(3), a.i32(4)),
  wait4: (k, a) => wait4(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3)),
  waitid: (k, a) => waitid(k, a.i32(0), a.i32(1), a.u64(2), a.i32(3), a.u64(4)),
  getppid: (k) => k.parent?.identity.pid ?? 0,
  getpgrp: (k) => k.pgid,
  getpgid: (k, a) => {
    const p = lookup(k, a.i32(0));
    return typeof p === 'number' ? p : p.pgid;
  },
  getsid: (k, a) => {
    const p = lookup(k, a.i32(0));
    return typeof p === 'number' ? p : p.sid;
  },
  setpgid: (k, a) => setpgid(k, a.i32(0), a.i32(1)),
  setsid: (k) => {
    if (k.pgid === k.identity.pid || (k.procs?.live().some((p) => p !== k && p.pgid === k.identity.pid) ?? false)) return -E.EPERM;
    k.sid = k.identity.pid;
    k.pgid = k.identity.pid;
    return k.sid;
  },
  kill: (k, a) => kill(k, a.i32(0), a.i32(1)),
  tkill: (k, a) => threadKill(k, null, a.i32(0), a.i32(1)),
  tgkill: (k, a) => threadKill(k, a.i32(0), a.i32(1), a.i32(2)),
  rt_sigsuspend: (k, a) => {
    if (a.u64(1) !== 8) return -E.EINVAL;
    return suspend(k, k.mem.readBigU64(a.u64(0)));
  },
  pause: (k) => suspend(k, null),
};
