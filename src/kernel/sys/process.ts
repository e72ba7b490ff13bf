/** Process-level system calls: exit, identity, uname, limits, TLS (arch_prctl), CPU affinity, futex. */
import { capbsetRead } from './caps.js';
import { processCpu } from './rseq.js';
import { napUntil } from '../nap.js';
import { E } from '../../abi/errno.js';
import * as libc from '../../host/libc.js';
import type { Kernel } from '../kernel.js';
import { memoryFigures, setThreadName, threadName } from '../vfs/proc.js';
import type { SyscallArgs, SyscallResult, SyscallTable } from '../types.js';

const ARCH_SET_GS = 0x1001;
const ARCH_SET_FS = 0x1002;
const ARCH_GET_FS = 0x1003;
const ARCH_GET_GS = 0x1004;

const UTS_FIELD = 65;
export const UNAME = {
  sysname: 'Linux',
  nodename: 'mapvisor',
  release: '6.1.0-mapvisor',
  version: '#1 SMP PREEMPT_DYNAMIC mapvisor',
  machine: 'x86_64',
  domainname: '(none)',
} as const;

const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;
const RLIMIT_NLIMITS = 16;

function toRlim(v: number): bigint {
  return v === Infinity ? RLIM_INFINITY : BigInt(v);
}
function fromRlim(v: bigint): number {
  return v >= RLIM_INFINITY ? Infinity : Number(v);
}

function prlimit(caller: Kernel, pid: number, resource: number, newAddr: number, oldAddr: number): number {
  // Another process's limits (prlimit's pid) are read and set like the caller's own.
  const k = pid === 0 || pid === caller.identity.pid ? caller : caller.procs?.get(pid);
  if (!k || k.zombie) return -E.ESRCH;
  if (resource < 0 || resource >= RLIMIT_NLIMITS) return -E.EINVAL;
  const cur = k.rlimits.get(resource)!;
  let next: [number, number] | null = null;
  if (newAddr) {
    const soft = fromRlim(caller.mem.readBigU64(newAddr));
    const hard = fromRlim(caller.mem.readBigU64(newAddr + 8));
    if (soft > hard) return -E.EINVAL;
    if (hard > cur[1]) return -E.EPERM; // raising a hard limit needs privilege mapvisor does not grant
    next = [soft, hard];
  }
  if (oldAddr) {
    caller.mem.writeU64(oldAddr, toRlim(cur[0]));
    caller.mem.writeU64(oldAddr + 8, toRlim(cur[1]));
  }
  if (next) {
    k.rlimits.set(resource, next);
    if (resource === 7) k.fds.limit = Math.min(next[0], 1 << 20);
  }
  return 0;
}

function archPrctl(k: Kernel, a: SyscallArgs, cpu: Parameters<SyscallTable[string]>[2]): SyscallResult {
  const code = a.i32(0);
  const addr = a.u64(1);
  switch (code) {
    case ARCH_SET_FS:
    case ARCH_SET_GS:
      // A base must be a canonical user address (Linux refuses others with EPERM).
      if (!Number.isSafeInteger(addr) || addr >= 2 ** 47) return -E.EPERM;
      if (code === ARCH_SET_FS) cpu.fsBase = addr;
      else cpu.gsBase = addr;
      return 0;
    case ARCH_GET_FS:
      k.mem.writeU64(addr, cpu.fsBase);
      return 0;
    case ARCH_GET_GS:
      k.mem.writeU64(addr, cpu.gsBase);
      return 0;
    default:
      return -E.EINVAL;
  }
}

/**
 * futex. With one thread a wait can only end by its timeout (or never); with threads the waiter is
 * parked in the kernel's wait queue (threads.ts) and its vCPU worker sleeps until a WAKE answers it.
 */
/**
 * The key of a shared futex: the word `uaddr` of `k` is in a MAP_SHARED mapping and the operation is
 * not FUTEX_PRIVATE_FLAG: its place in the backing memory (a memfd extent or the image), which every
 * process that maps it shares. Otherwise undefined: the word is the address space's own.
 */
function futexKey(k: Kernel, uaddr: number, op: number): string | undefined {
  if (op & 128) return undefined; // FUTEX_PRIVATE_FLAG
  const r = k.space.regions.find(uaddr);
  if (!r || !r.shared) return undefined;
  return `${r.backing.kind}:${r.backing.id}:${r.backing.offset + (uaddr - r.start)}`;
}

function futex(k: Kernel, a: SyscallArgs): SyscallResult {
  const uaddr = a.u64(0);
  const key = futexKey(k, uaddr, a.i32(1));
  const op = a.i32(1) & ~(128 | 256); // FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME
  const val = a.u32(2);
  const FUTEX_WAIT = 0;
  const FUTEX_WAKE = 1;
  const FUTEX_REQUEUE = 3;
  const FUTEX_CMP_REQUEUE = 4;
  const FUTEX_WAIT_BITSET = 9;
  const FUTEX_WAKE_BITSET = 10;
  const threads = k.threads?.threaded ? k.threads : null;
  if (uaddr % 4) return -E.EINVAL;
  switch (op) {
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      k.mem.readU32(uaddr); // fault check, as Linux does
      const bitset = op === FUTEX_WAKE_BITSET ? a.u32(5) : 0xffffffff;
      if (bitset === 0) return -E.EINVAL;
      return threads ? threads.wake(k, uaddr, Math.max(0, a.i32(2)), bitset, key) : 0;
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      const to = a.u64(4);
      if (to % 4) return -E.EINVAL;
      // futex(uaddr, op, nr_wake, nr_requeue (in the timeout slot), uaddr2, val3)
      if (op === FUTEX_CMP_REQUEUE && k.mem.readU32(uaddr) !== a.u32(5)) return -E.EAGAIN;
      if (!threads) return 0;
      const woken = threads.wake(k, uaddr, Math.max(0, a.i32(2)), 0xffffffff, key);
      return woken + threads.requeue(k, uaddr, to, Math.max(0, a.i32(3)), key, futexKey(k, to, a.i32(1)));
    }
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      const bitset = op === FUTEX_WAIT_BITSET ? a.u32(5) : 0xffffffff;
      if (bitset === 0) return -E.EINVAL;
      if (k.mem.readU32(uaddr) !== val) return -E.EAGAIN;
      const ts = a.u64(3);
      let deadline = Infinity;
      if (ts) {
        const sec = Number(k.mem.readBigU64(ts));
        const nsec = Number(k.mem.readBigU64(ts + 8));
        if (sec < 0 || nsec < 0 || nsec >= 1e9) return -E.EINVAL;
        const ms = sec * 1000 + nsec / 1e6;
        // FUTEX_WAIT's timeout is relative; WAIT_BITSET's is absolute on CLOCK_MONOTONIC/REALTIME.
        deadline = op === FUTEX_WAIT ? Date.now() + ms : Date.now() + Math.max(0, ms - absNowMs(a.i32(1) & 256 ? 0 : 1));
      }
      if (threads) {
        const d = deadline === Infinity ? Infinity : performance.now() + (deadline - Date.now());
        return { kind: 'park', park: { kind: 'futex', uaddr, bitset, deadline: d, key } };
      }
      // Nobody else can wake us: sleep until the timeout or a stop request.
      const until = deadline === Infinity ? Infinity : performance.now() + (deadline - Date.now());
      return napUntil(until, () => k.stop.stopRequested()) ? -E.ETIMEDOUT : { kind: 'stop' };
    }
    default:
      return -E.ENOSYS;
  }
}

/** Now on CLOCK_REALTIME (0) or CLOCK_MONOTONIC (1), in ms (Node's hrtime is CLOCK_MONOTONIC). */
function absNowMs(clock: number): number {
  return clock === 0 ? Date.now() : Number(process.hrtime.bigint()) / 1e6;
}

export const processSyscalls: SyscallTable = {
  exit: (k, a) => (k.threads && k.threadCount > 1 ? { kind: 'thread-exit', status: a.i32(0) & 0xff } : k.exitOutcome(a.i32(0))),
  exit_group: (k, a) => k.exitOutcome(a.i32(0)),
  getpid: (k) => k.identity.pid,
  gettid: (k) => k.tid,
  getuid: (k) => k.identity.uid,
  geteuid: (k) => k.identity.uid,
  getgid: (k) => k.identity.gid,
  getegid: (k) => k.identity.gid,
  getresuid: (k, a) => {
    for (let i = 0; i < 3; i++) k.mem.writeU32(a.u64(i), k.identity.uid);
    return 0;
  },
  getresgid: (k, a) => {
    for (let i = 0; i < 3; i++) k.mem.writeU32(a.u64(i), k.identity.gid);
    return 0;
  },
  uname: (k, a) => {
    const addr = a.u64(0);
    const fields = [UNAME.sysname, UNAME.nodename, UNAME.release, UNAME.version, UNAME.machine, UNAME.domainname];
    const buf = new Uint8Array(UTS_FIELD * fields.length);
    const enc = new TextEncoder();
    fields.forEach((f, i) => buf.set(enc.encode(f).subarray(0, UTS_FIELD - 1), i * UTS_FIELD));
    k.mem.write(addr, buf);
    return 0;
  },
  arch_prctl: archPrctl,
  set_tid_address: (k, a) => {
    k.clearChildTid = a.u64(0);
    if (k.curThread) k.curThread.clearTid = a.u64(0);
    return k.tid;
  },
  set_robust_list: (k, a) => {
    if (a.u64(1) !== 24) return -E.EINVAL; // sizeof(struct robust_list_head)
    k.robustList = a.u64(0);
    return 0;
  },
  prlimit64: (k, a) => prlimit(k, a.i32(0), a.i32(1), a.u64(2), a.u64(3)),
  getrlimit: (k, a) => prlimit(k, 0, a.i32(0), 0, a.u64(1)),
  setrlimit: (k, a) => prlimit(k, 0, a.i32(0), a.u64(1), 0),
  sched_getaffinity: (k, a) => {
    const pid = a.i32(0);
    const len = a.u64(1);
    if (pid !== 0 && !k.hasThread(pid)) return -E.ESRCH;
    const size = 8 * Math.ceil(k.cpus / 64); // the kernel's cpumask size, in whole longs
    if (len < size || len % 8) return -E.EINVAL;
    const mask = new Uint8Array(size);
    for (let c = 0; c < k.cpus; c++) mask[c >> 3]! |= 1 << (c & 7);
    k.mem.write(a.u64(2), mask);
    return size;
  },
  sched_yield: () => 0,
  getpriority: (k, a) => {
    const PRIO_PROCESS = 0;
    if (a.i32(0) !== PRIO_PROCESS) return -E.EINVAL;
    if (a.i32(1) !== 0 && !k.hasThread(a.i32(1))) return -E.ESRCH;
    return 20 - k.nice; // the raw syscall answers 20 - nice
  },
  setpriority: (k, a) => {
    if (a.i32(0) !== 0) return -E.EINVAL;
    if (a.i32(1) !== 0 && !k.hasThread(a.i32(1))) return -E.ESRCH;
    const nice = Math.max(-20, Math.min(19, a.i32(2)));
    if (nice < k.nice) return -E.EACCES; // raising priority needs a privilege the sandbox does not grant
    k.nice = nice;
    return 0;
  },
  sysinfo: (k, a) => {
    // struct sysinfo: uptime, loads[3], totalram, freeram, sharedram, bufferram, totalswap, freeswap, procs, ..., mem_unit
    const b = new Uint8Array(112);
    const dv = new DataView(b.buffer);
    // The memory figures /proc/meminfo gives (free(1) and busybox free must agree).
    const m = memoryFigures(k);
    dv.setBigInt64(0, BigInt(Math.floor(process.uptime())), true);
    dv.setBigUint64(32, BigInt(m.total), true);
    dv.setBigUint64(40, BigInt(m.free), true);
    dv.setBigUint64(48, BigInt(m.shmem), true);
    dv.setUint16(80, k.threads?.count ?? 1, true);
    dv.setUint32(104, 1, true); // mem_unit
    k.mem.write(a.u64(0), b);
    return 0;
  },
  getrusage: (k, a) => {
    // The VMM thread's own usage stands in for the program's (guest time runs inside it).
    const who = a.i32(0);
    if (who !== 0 && who !== -1 && who !== 1) return -E.EINVAL;
    const u = process.resourceUsage();
    const b = new Uint8Array(144);
    const dv = new DataView(b.buffer);
    const tv = (o: number, us: number): void => {
      dv.setBigInt64(o, BigInt(Math.floor(us / 1e6)), true);
      dv.setBigInt64(o + 8, BigInt(Math.floor(us % 1e6)), true);
    };
    if (who !== -1) {
      tv(0, u.userCPUTime);
      tv(16, u.systemCPUTime);
      dv.setBigInt64(32, BigInt(u.maxRSS), true);
    }
    k.mem.write(a.u64(1), b);
    return 0;
  },
  sched_setaffinity: (k, a) => {
    // Record nothing, refuse nothing the host would: the mask must name one of the program's CPUs.
    const pid = a.i32(0);
    if (pid !== 0 && !k.hasThread(pid)) return -E.ESRCH;
    const len = Math.min(a.u64(1), 128);
    const mask = k.mem.read(a.u64(2), len);
    for (let c = 0; c < Math.min(k.cpus, len * 8); c++) if (mask[c >> 3]! & (1 << (c & 7))) return 0;
    return -E.EINVAL;
  },
  getcpu: (k, a) => {
    if (a.u64(0)) k.mem.writeU32(a.u64(0), processCpu(k));
    if (a.u64(1)) k.mem.writeU32(a.u64(1), 0);
    return 0;
  },
  membarrier: (_k, a) => {
    // One thread: every barrier is already satisfied. QUERY reports the commands that are.
    const MEMBARRIER_CMD_QUERY = 0;
    const SUPPORTED = 1 /* GLOBAL */ | 8 /* PRIVATE_EXPEDITED */ | 16 /* REGISTER_PRIVATE_EXPEDITED */;
    const cmd = a.i32(0);
    if (cmd === MEMBARRIER_CMD_QUERY) return SUPPORTED;
    return cmd & SUPPORTED && (cmd & (cmd - 1)) === 0 ? 0 : -E.EINVAL;
  },
  prctl: (k, a) => {
    const PR_SET_PDEATHSIG = 1;
    const PR_GET_PDEATHSIG = 2;
    const PR_GET_DUMPABLE = 3;
    const PR_SET_DUMPABLE = 4;
    const PR_SET_NAME = 15;
    const PR_GET_NAME = 16;
    const PR_SET_NO_NEW_PRIVS = 38;
    const PR_GET_NO_NEW_PRIVS = 39;
    const PR_CAPBSET_READ = 23;
    switch (a.i32(0)) {
      case PR_CAPBSET_READ:
        return capbsetRead(a.u64(1));
      case PR_SET_NAME: {
        const name = k.mem.readCStringBytes(a.u64(1), 16);
        setThreadName(k, k.tid, new TextDecoder().decode(name ?? k.mem.read(a.u64(1), 15))); // per thread, as Linux
        return 0;
      }
      case PR_GET_NAME:
        k.mem.writeCString(a.u64(1), threadName(k, k.tid), 16);
        return 0;
      case PR_SET_PDEATHSIG:
      case PR_SET_DUMPABLE:
      case PR_SET_NO_NEW_PRIVS:
        return 0;
      case PR_GET_PDEATHSIG:
        k.mem.writeU32(a.u64(1), 0);
        return 0;
      case PR_GET_DUMPABLE:
        return 1;
      case PR_GET_NO_NEW_PRIVS:
        return 0;
      default:
        return -E.EINVAL;
    }
  },
  getrandom: (k, a) => {
    const len = Math.min(a.u64(1), 33554431);
    if (a.u32(2) & ~7) return -E.EINVAL;
    if (len === 0) return 0;
    const n = libc.getrandom(k.mem.hostPtr(a.u64(0), len, libc.PROT_WRITE), len, 0);
    return n < 0 ? -libc.errno() : n;
  },
  futex,
};
