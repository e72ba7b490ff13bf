/**
 * I/O system calls on file descriptors: read/write and their vector and positional forms, poll,
 * ioctl, fcntl, dup, close, fstat, lseek.
 */
import { nap, napUntil } from '../nap.js';
import { Ext4File } from '../files/ext4file.js';
import { hostEvents } from '../files/host.js';
import { interestOf, waitHost, type HostInterest } from '../hostwatch.js';
import { E } from '../../abi/errno.js';
import { encodeStat } from '../../abi/stat.js';
import * as libc from '../../host/libc.js';
import { O_CLOEXEC, O_NONBLOCK, O_PATH, OpenFile, SETFL_MASK, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI } from '../files/file.js';
import { EPOLLERR, EPOLLHUP, EPOLLONESHOT, EpollFile, type Interest } from '../files/epoll.js';
import { PIPE_BUF_SIZE } from '../files/pipe.js';
import type { Kernel } from '../kernel.js';
import { SIG } from '../../abi/signals.js';
import { SYS } from '../../abi/sysno.js';
import { F_RDLCK, F_UNLCK, F_WRLCK, closePosix, flockFile, setRange, testRange } from '../files/locks.js';
import { raise } from './signal.js';
import type { SyscallArgs, SyscallResult, SyscallTable } from '../types.js';

const IOV_MAX = 1024;
const MAX_RW = 0x7ffff000; // Linux caps one read/write at this many bytes

const F_DUPFD = 0;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;
const F_GETLK = 5;
const F_SETLK = 6;
const F_SETLKW = 7;
const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const F_OFD_SETLKW = 38;
const FLOCK_SIZE = 32; // struct flock: l_type, l_whence, l_start, l_len, l_pid
const FD_CLOEXEC = 1;
const FIONBIO = 0x5421;
const FIONCLEX = 0x5450;
const FIOCLEX = 0x5451;

function file(k: Kernel, fd: number): OpenFile | number {
  const f = k.fds.get(fd);
  return f ?? -E.EBADF;
}

function stopOr(n: number | 'stop' | 'block', f?: OpenFile, events = 0): SyscallResult {
  if (n === 'block') return { kind: 'park', park: { kind: 'retry', deadline: Infinity, onTimeout: -E.EINTR, ...(f ? { host: interestOf(f.ops, events) } : {}) } };
  return n === 'stop' ? { kind: 'stop' } : n;
}

function doRead(k: Kernel, fd: number, addr: number, len: number, offset: number | null): SyscallResult {
  const f = file(k, fd);
  if (typeof f === 'number') return f;
  if (!f.readable) return -E.EBADF;
  if (!f.ops.read) return -E.EINVAL;
  if (len < 0) return -E.EINVAL;
  if (offset !== null && offset < 0) return -E.EINVAL;
  return stopOr(f.ops.read(f, addr, Math.min(len, MAX_RW), offset), f, POLLIN);
}

function doWrite(k: Kernel, fd: number, addr: number, len: number, offset: number | null): SyscallResult {
  const f = file(k, fd);
  if (typeof f === 'number') return f;
  if (!f.writable) return -E.EBADF;
  if (!f.ops.write) return -E.EINVAL;
  if (len < 0) return -E.EINVAL;
  if (offset !== null && offset < 0) return -E.EINVAL;
  const r = stopOr(f.ops.write(f, addr, Math.min(len, MAX_RW), offset), f, POLLOUT);
  // Writing to a pipe nobody reads raises SIGPIPE (its default action ends the program), then EPIPE.
  if (r === -E.EPIPE) {
    const sig = raise(k, SIG.SIGPIPE, 'on a write to a pipe or stream with no reader');
    if (typeof sig === 'object') return sig;
  }
  return r;
}

/** Decode an iovec array: [base, len] pairs. */
export function iovecs(k: Kernel, addr: number, count: number): Array<[number, number]> | number {
  if (count < 0 || count > IOV_MAX) return -E.EINVAL;
  if (count === 0) return [];
  const raw = k.mem.read(addr, count * 16);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: Array<[number, number]> = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const base = dv.getUint32(i * 16, true) + dv.getUint32(i * 16 + 4, true) * 2 ** 32;
    const len = Number(dv.getBigInt64(i * 16 + 8, true));
    if (len < 0) return -E.EINVAL;
    total += len;
    if (total > 2 ** 53) return -E.EINVAL;
    out.push([base, len]);
  }
  return out;
}

function vectored(
  k: Kernel,
  fd: number,
  iovAddr: number,
  count: number,
  offset: number | null,
  op: (fd: number, addr: number, len: number, offset: number | null) => SyscallResult,
): SyscallResult {
  const iov = iovecs(k, iovAddr, count);
  if (typeof iov === 'number') return iov;
  let done = 0;
  for (const [base, len] of iov) {
    if (len === 0) continue;
    const r = op(fd, base, len, offset === null ? null : offset + done);
    if (typeof r !== 'number') return done > 0 ? done : r;
    if (r < 0) return done > 0 ? done : r;
    done += r;
    if (r < len) break;
  }
  if (iov.length > 0 && done === 0 && iov.every(([, l]) => l === 0)) {
    // A vector of empty buffers still checks the fd, as Linux does.
    return op(fd, iov[0]![0], 0, offset);
  }
  return done;
}

/** The readiness of pollfd `i` for a file that is not a host fd, written into its revents. */
function pollLocal(req: Buffer, i: number, f: OpenFile): number {
  const ev = (f.ops.pollEvents?.(f) ?? 0) & (req.readInt16LE(i * 8 + 4) | 0x18);
  req.writeInt16LE(ev, i * 8 + 6);
  return ev;
}

/** poll/ppoll: host fds are polled by the host; other files answer their own readiness. */
function doPoll(k: Kernel, fdsAddr: number, nfds: number, timeoutMs: number): SyscallResult {
  if (nfds < 0 || nfds > k.fds.limit) return -E.EINVAL;
  const raw = nfds ? k.mem.read(fdsAddr, nfds * 8) : new Uint8Array(0);
  k.mem.writable(fdsAddr, nfds * 8); // must be writable too
  const req = Buffer.from(raw); // a copy: the host writes revents into it
  let ready = 0;
  const hostIdx: number[] = [];
  for (let i = 0; i < nfds; i++) {
    const fd = req.readInt32LE(i * 8);
    req.writeInt16LE(0, i * 8 + 6);
    if (fd < 0) continue;
    const f = k.fds.get(fd);
    if (!f) {
      req.writeInt16LE(POLLNVAL, i * 8 + 6);
      ready++;
    } else if (f.ops.hostFd !== undefined) {
      hostIdx.push(i);
    } else if (pollLocal(req, i, f)) ready++;
  }
  /** A pollfd array of the host fds alone, for the host's poll. */
  const hostPollfds = (): Buffer => {
    const host = Buffer.alloc(hostIdx.length * 8);
    hostIdx.forEach((i, j) => {
      host.writeInt32LE(k.fds.get(req.readInt32LE(i * 8))!.ops.hostFd!, j * 8);
      host.writeInt16LE(req.readInt16LE(i * 8 + 4), j * 8 + 4);
    });
    return host;
  };
  if (k.stop.mustNotBlock?.() && ready === 0 && timeoutMs !== 0) {
    // Threads: don't wait here; the thread is parked and the call retried until ready or timed out.
    const anyHost = hostIdx.length > 0 && libc.poll(hostPollfds(), hostIdx.length, 0) > 0;
    if (!anyHost) return { kind: 'park', park: { kind: 'retry', deadline: timeoutMs < 0 ? Infinity : performance.now() + timeoutMs, onTimeout: 0, host: pollInterest(k, req, nfds) } };
  }
  if (hostIdx.length) {
    const host = hostPollfds();
    // Block in slices so a stop request is noticed.
    const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      const slice = ready > 0 ? 0 : Math.min(200, Math.max(0, deadline - Date.now()));
      const rc = libc.poll(host, hostIdx.length, slice === Infinity ? 200 : slice);
      if (rc < 0 && libc.errno() !== E.EINTR) return -libc.errno();
      if (rc > 0 || ready > 0 || Date.now() >= deadline) break;
      if (k.stop.stopRequested()) return { kind: 'stop' };
    }
    hostIdx.forEach((i, j) => {
      const rev = host.readInt16LE(j * 8 + 6);
      req.writeInt16LE(rev, i * 8 + 6);
      if (rev) ready++;
    });
  } else if (ready === 0 && timeoutMs !== 0) {
    // Only a host event can make one ready (a published port's connection): wait for one, or sleep
    // out the timeout (or until stopped).
    const host = pollInterest(k, req, nfds);
    const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (k.stop.stopRequested()) return { kind: 'stop' };
      if (host.length) {
        waitHost(host, Math.min(200, deadline - Date.now()));
        let now = 0;
        for (let i = 0; i < nfds; i++) {
          const f = k.fds.get(req.readInt32LE(i * 8));
          if (f && pollLocal(req, i, f)) now++; // (no host fds in this branch)
        }
        if (now) {
          ready = now;
          break;
        }
      } else nap(Math.min(200, deadline - Date.now()));
    }
  }
  k.mem.write(fdsAddr, req);
  return ready;
}

/** Readiness of `fd` for `events` right now (POLLNVAL for a bad fd). */
function readiness(k: Kernel, fd: number, events: number): number {
  const f = k.fds.get(fd);
  if (!f) return POLLNVAL;
  if (f.ops.hostFd !== undefined) return hostEvents(f.ops.hostFd, events);
  return (f.ops.pollEvents?.(f) ?? 0) & (events | 0x18);
}

/** select/pselect6 over fd_set bitmaps, on the same readiness as poll. */
function doSelect(k: Kernel, nfds: number, rAddr: number, wAddr: number, eAddr: number, timeoutMs: number): SyscallResult {
  if (nfds < 0 || nfds > k.fds.limit) return -E.EINVAL;
  const bytes = Math.ceil(nfds / 64) * 8;
  const sets = [rAddr, wAddr, eAddr].map((a) => (a && bytes ? k.mem.copyIn(a, bytes) : null));
  const check = (): { ready: number; out: Array<Uint8Array | null> } => {
    const out = sets.map((s) => (s ? new Uint8Array(s.length) : null));
    let ready = 0;
    for (let fd = 0; fd < nfds; fd++) {
      const bit = 1 << (fd & 7);
      const want = sets.map((s) => (s ? (s[fd >> 3]! & bit) !== 0 : false));
      if (!want.some(Boolean)) continue;
      const ev = readiness(k, fd, (want[0] ? POLLIN : 0) | (want[1] ? POLLOUT : 0) | (want[2] ? POLLPRI : 0));
      if (ev & POLLNVAL) return { ready: -E.EBADF, out };
      const hits = [want[0] && ev & (POLLIN | POLLHUP | POLLERR), want[1] && ev & (POLLOUT | POLLERR), want[2] && ev & POLLPRI];
      hits.forEach((h, i) => {
        if (h) {
          out[i]![fd >> 3]! |= bit;
          ready++;
        }
      });
    }
    return { ready, out };
  };
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
  for (;;) {
    const { ready, out } = check();
    if (ready < 0) return ready;
    if (ready > 0 || performance.now() >= deadline) {
      [rAddr, wAddr, eAddr].forEach((a, i) => {
        if (a && out[i]) k.mem.write(a, out[i]!);
      });
      return ready;
    }
    const host = selectInterest(k, nfds, sets);
    if (k.stop.mustNotBlock?.()) return { kind: 'park', park: { kind: 'retry', deadline, onTimeout: 0, host } };
    if (k.stop.stopRequested()) return { kind: 'stop' };
    if (host.length) waitHost(host, Math.min(200, deadline - performance.now()));
    else nap(Math.min(10, deadline - performance.now()));
  }
}

/** The host fds a select's sets can be made ready by. */
function selectInterest(k: Kernel, nfds: number, sets: Array<Uint8Array | null>): HostInterest[] {
  const out: HostInterest[] = [];
  for (let fd = 0; fd < nfds; fd++) {
    const bit = 1 << (fd & 7);
    const ev = (sets[0] && sets[0][fd >> 3]! & bit ? POLLIN : 0) | (sets[1] && sets[1][fd >> 3]! & bit ? POLLOUT : 0);
    const f = ev ? k.fds.get(fd) : undefined;
    if (f) out.push(...interestOf(f.ops, ev));
  }
  return out;
}

/** The host fds a poll's pollfd array can be made ready by. */
function pollInterest(k: Kernel, req: Buffer, nfds: number): HostInterest[] {
  const out: HostInterest[] = [];
  for (let i = 0; i < nfds; i++) {
    const f = k.fds.get(req.readInt32LE(i * 8));
    if (f) out.push(...interestOf(f.ops, req.readInt16LE(i * 8 + 4)));
  }
  return out;
}

const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLL_EVENT_SIZE = 12; // packed on x86-64: u32 events, u64 data

function epollOf(k: Kernel, fd: number): EpollFile | number {
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  return f.ops instanceof EpollFile ? f.ops : -E.EINVAL;
}

/** Whether `from` is `to` or watches it through epolls (at most Linux's 4 levels deep, EP_MAX_NESTS). */
function epollReaches(k: Kernel, from: EpollFile, to: EpollFile, depth: number): boolean {
  if (from === to) return true;
  if (depth >= 4) return true; // too deep is refused too
  for (const fd of from.interest.keys()) {
    const f = k.fds.get(fd);
    if (f && f.ops instanceof EpollFile && epollReaches(k, f.ops, to, depth + 1)) return true;
  }
  return false;
}

function epollCtl(k: Kernel, epfd: number, op: number, fd: number, evAddr: number): number {
  const ep = epollOf(k, epfd);
  if (typeof ep === 'number') return ep;
  const target = k.fds.get(fd);
  if (!target) return -E.EBADF;
  if (fd === epfd || target.ops.kind === 'ext4' || target.ops.kind === 'device') return fd === epfd ? -E.EINVAL : -E.EPERM;
  const have = ep.interest.get(fd);
  // An epoll watching itself, or a cycle of epolls, is refused as Linux does (fs/eventpoll.c:
  // ep_loop_check): readiness would otherwise chase its own tail.
  if (target.ops === ep) return -E.EINVAL; // itself through a dup'ed fd, as fd === epfd
  if (op === EPOLL_CTL_ADD && target.ops instanceof EpollFile && epollReaches(k, target.ops, ep, 0)) return -E.ELOOP;
  switch (op) {
    case EPOLL_CTL_ADD:
    case EPOLL_CTL_MOD: {
      const b = k.mem.read(evAddr, EPOLL_EVENT_SIZE);
      const dv = new DataView(b.buffer, b.byteOffset, EPOLL_EVENT_SIZE);
      const events = dv.getUint32(0, true);
      const data = dv.getBigUint64(4, true);
      if (op === EPOLL_CTL_ADD && have) return -E.EEXIST;
      if (op === EPOLL_CTL_MOD && !have) return -E.ENOENT;
      ep.interest.set(fd, { events, data, disabled: false });
      return 0;
    }
    case EPOLL_CTL_DEL:
      return ep.interest.delete(fd) ? 0 : -E.ENOENT;
    default:
      return -E.EINVAL;
  }
}

/** epoll_wait: level-triggered readiness of the interest list (edge-triggered is reported as level). */
function epollWait(k: Kernel, epfd: number, evAddr: number, max: number, timeoutMs: number): SyscallResult {
  const ep = epollOf(k, epfd);
  if (typeof ep === 'number') return ep;
  if (max <= 0 || max > 65536) return -E.EINVAL;
  k.mem.writable(evAddr, max * EPOLL_EVENT_SIZE);
  const scan = (): Array<[number, number, Interest]> => {
    const out: Array<[number, number, Interest]> = [];
    for (const [fd, it] of ep.interest) {
      if (it.disabled) continue;
      if (!k.fds.get(fd)) {
        ep.interest.delete(fd); // closed: Linux drops it when the last reference goes
        continue;
      }
      const ev = readiness(k, fd, it.events & 0xffff) & (it.events | EPOLLERR | EPOLLHUP);
      if (ev) out.push([fd, ev, it]);
      if (out.length >= max) break;
    }
    return out;
  };
  ep.readyProbe = () => scan().length > 0;
  const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
  for (;;) {
    const ready = scan();
    if (ready.length > 0 || performance.now() >= deadline) {
      const b = new Uint8Array(ready.length * EPOLL_EVENT_SIZE);
      const dv = new DataView(b.buffer);
      ready.forEach(([, ev, it], i) => {
        dv.setUint32(i * EPOLL_EVENT_SIZE, ev, true);
        dv.setBigUint64(i * EPOLL_EVENT_SIZE + 4, it.data, true);
        if (it.events & EPOLLONESHOT) it.disabled = true;
      });
      if (b.length) k.mem.write(evAddr, b);
      return ready.length;
    }
    const host: HostInterest[] = [];
    for (const [fd, it] of ep.interest) {
      const f = it.disabled ? undefined : k.fds.get(fd);
      if (f) host.push(...interestOf(f.ops, it.events));
    }
    if (k.stop.mustNotBlock?.()) return { kind: 'park', park: { kind: 'retry', deadline, onTimeout: 0, host } };
    if (k.stop.stopRequested()) return { kind: 'stop' };
    if (host.length) waitHost(host, Math.min(200, deadline - performance.now()));
    else nap(Math.min(10, deadline - performance.now()));
  }
}

function timespecMs(k: Kernel, addr: number): number | null {
  if (addr === 0) return -1;
  const sec = Number(k.mem.readBigU64(addr));
  const nsec = Number(k.mem.readBigU64(addr + 8));
  if (sec < 0 || nsec < 0 || nsec >= 1e9) return null;
  return sec * 1000 + Math.ceil(nsec / 1e6);
}

/** A lock request that must wait: the thread parks and the call is retried when anything changes. */
function lockWait(k: Kernel): SyscallResult {
  if (k.threads?.threaded) return { kind: 'park', park: { kind: 'retry', deadline: Infinity, onTimeout: -E.EINTR } };
  // A lone process blocks on a lock of its own (another description of the file): forever, as on Linux.
  return napUntil(Infinity, () => k.stop.stopRequested()) ? -E.EINTR : { kind: 'stop' };
}

/** fcntl's record locks (F_GETLK, F_SETLK, F_SETLKW and their F_OFD_ forms): see files/locks.ts. */
function recordLock(k: Kernel, f: OpenFile, cmd: number, lk: number): SyscallResult {
  const b = k.mem.read(lk, FLOCK_SIZE);
  const dv = new DataView(b.buffer, b.byteOffset, FLOCK_SIZE);
  const type = dv.getInt16(0, true);
  const whence = dv.getInt16(2, true);
  const lStart = Number(dv.getBigInt64(8, true));
  const lLen = Number(dv.getBigInt64(16, true));
  const ofd = cmd === F_OFD_GETLK || cmd === F_OFD_SETLK || cmd === F_OFD_SETLKW;
  if (type !== F_RDLCK && type !== F_WRLCK && type !== F_UNLCK) return -E.EINVAL;
  if (ofd && dv.getInt32(24, true) !== 0) return -E.EINVAL; // l_pid must be 0
  // flock_to_posix_lock: the range from l_whence, l_start and l_len.
  let base: number;
  if (whence === 0) base = 0;
  else if (whence === 1) base = f.pos;
  else if (whence === 2) base = f.ops instanceof Ext4File && k.root ? k.root.fs.stat(f.ops.ino).size : 0;
  else return -E.EINVAL;
  let start = base + lStart;
  if (start < 0) return -E.EINVAL;
  let end: number;
  if (lLen > 0) end = start + lLen - 1;
  else if (lLen < 0) {
    if (start + lLen < 0) return -E.EINVAL;
    end = start - 1;
    start += lLen;
  } else end = Infinity;
  const owner = ofd ? f : k;
  const range = { type, start, end };
  if (cmd === F_GETLK || cmd === F_OFD_GETLK) {
    if (type === F_UNLCK) return -E.EINVAL;
    const c = testRange(k, f, owner, range);
    const out = new Uint8Array(FLOCK_SIZE);
    out.set(b);
    const ov = new DataView(out.buffer);
    if (!c) ov.setInt16(0, F_UNLCK, true);
    else {
      ov.setInt16(0, c.type, true);
      ov.setInt16(2, 0, true); // SEEK_SET
      ov.setBigInt64(8, BigInt(c.start), true);
      ov.setBigInt64(16, c.end === Infinity ? 0n : BigInt(c.end - c.start + 1), true);
      ov.setInt32(24, c.pid, true);
    }
    k.mem.write(lk, out);
    return 0;
  }
  if (type === F_WRLCK && !f.writable) return -E.EBADF;
  if (type === F_RDLCK && !f.readable) return -E.EBADF;
  if (setRange(k, f, owner, ofd ? -1 : k.identity.pid, range) === 0) return 0;
  return cmd === F_SETLKW || cmd === F_OFD_SETLKW ? lockWait(k) : -E.EAGAIN;
}

/** flock(2): LOCK_SH, LOCK_EX or LOCK_UN, with LOCK_NB. */
function flock(k: Kernel, fd: number, op: number): SyscallResult {
  const LOCK_SH = 1;
  const LOCK_EX = 2;
  const LOCK_NB = 4;
  const LOCK_UN = 8;
  const f = k.fds.get(fd);
  if (!f || f.flags & O_PATH) return -E.EBADF;
  const cmd = op & ~LOCK_NB;
  const type = cmd === LOCK_SH ? F_RDLCK : cmd === LOCK_EX ? F_WRLCK : cmd === LOCK_UN ? F_UNLCK : -1;
  if (type < 0) return -E.EINVAL;
  if (flockFile(k, f, type) === 0) return 0;
  return op & LOCK_NB ? -E.EAGAIN : lockWait(k); // EWOULDBLOCK is EAGAIN
}

const UNBLOCKABLE = (1n << 8n) | (1n << 18n); // SIGKILL, SIGSTOP
/** The caller's mask before a waiting call's own (pselect6, ppoll, epoll_pwait), kept across its retries. */
const maskBefore = new WeakMap<object, bigint>();

/**
 * pselect6, ppoll, epoll_pwait(2): run the wait `run` with the signal mask at `maskAddr` (0: the
 * caller's own) in place, as Linux's set_user_sigmask. When a signal ends the wait, its handler's frame
 * restores the caller's mask (restore_saved_sigmask); otherwise the mask is put back as the call returns.
 */
function withSigmask(k: Kernel, maskAddr: number, size: number, run: () => SyscallResult): SyscallResult {
  if (!maskAddr) return run();
  if (size !== 8) return -E.EINVAL;
  const mask = k.mem.readBigU64(maskAddr) & ~UNBLOCKABLE;
  const key: object = k.curThread ?? k;
  const saved = k.retrying && maskBefore.has(key) ? maskBefore.get(key)! : k.signals.blocked;
  maskBefore.delete(key);
  k.signals.blocked = mask;
  if (k.signals.nextDeliverable() !== 0) {
    k.suspendMask = saved; // the handler's frame restores it (task.ts)
    return -E.EINTR;
  }
  const r = run();
  if (typeof r === 'object' && r.kind === 'park' && r.park.kind === 'retry') {
    r.park.savedMask = saved;
    maskBefore.set(key, saved);
    return r;
  }
  k.signals.blocked = saved;
  return r;
}

/** fcntl(2) F_GETPIPE_SZ. */
const F_GETPIPE_SZ = 1032;

function fcntl(k: Kernel, a: SyscallArgs): SyscallResult {
  const fd = a.i32(0);
  const cmd = a.i32(1);
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  switch (cmd) {
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      const min = a.i32(2);
      if (min < 0 || min >= k.fds.limit) return -E.EINVAL;
      return k.fds.install(f, cmd === F_DUPFD_CLOEXEC, min);
    }
    case F_GETFD:
      return k.fds.cloexec(fd) ? FD_CLOEXEC : 0;
    case F_SETFD:
      k.fds.setCloexec(fd, (a.i32(2) & FD_CLOEXEC) !== 0);
      return 0;
    case F_GETFL:
      return f.flags & ~O_CLOEXEC;
    case F_SETFL:
      f.flags = (f.flags & ~SETFL_MASK) | (a.i32(2) & SETFL_MASK);
      return 0;
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
      return recordLock(k, f, cmd, a.u64(2));
    case F_GETPIPE_SZ:
      // A pipe's (or FIFO's) capacity: fixed at PIPE_BUF_SIZE here (F_SETPIPE_SZ is not supported).
      return (f.ops as { kind?: string }).kind === 'pipe' ? PIPE_BUF_SIZE : -E.EBADF;
    default:
      return -E.EINVAL;
  }
}

function dup3(k: Kernel, oldfd: number, newfd: number, flags: number): number {
  const f = k.fds.get(oldfd);
  if (!f) return -E.EBADF;
  if (flags & ~O_CLOEXEC) return -E.EINVAL;
  if (oldfd === newfd) return -E.EINVAL;
  const replaced = newfd >= 0 && newfd < k.fds.limit ? k.fds.get(newfd) : undefined;
  if (replaced) closePosix(k, replaced); // the fd it closes drops the process's record locks on its file
  return k.fds.installAt(newfd, f, (flags & O_CLOEXEC) !== 0);
}

export const ioSyscalls: SyscallTable = {
  read: (k, a) => doRead(k, a.i32(0), a.u64(1), a.u64(2), null),
  write: (k, a) => doWrite(k, a.i32(0), a.u64(1), a.u64(2), null),
  pread64: (k, a) => doRead(k, a.i32(0), a.u64(1), a.u64(2), a.i64(3)),
  pwrite64: (k, a) => doWrite(k, a.i32(0), a.u64(1), a.u64(2), a.i64(3)),
  readv: (k, a) => vectored(k, a.i32(0), a.u64(1), a.i32(2), null, (fd, p, l, o) => doRead(k, fd, p, l, o)),
  writev: (k, a) => vectored(k, a.i32(0), a.u64(1), a.i32(2), null, (fd, p, l, o) => doWrite(k, fd, p, l, o)),
  preadv: (k, a) => vectored(k, a.i32(0), a.u64(1), a.i32(2), a.i64(3), (fd, p, l, o) => doRead(k, fd, p, l, o)),
  pwritev: (k, a) => vectored(k, a.i32(0), a.u64(1), a.i32(2), a.i64(3), (fd, p, l, o) => doWrite(k, fd, p, l, o)),
  poll: (k, a) => doPoll(k, a.u64(0), a.i32(1), a.i32(2)),
  ppoll: (k, a) => {
    const ms = timespecMs(k, a.u64(2));
    if (ms === null) return -E.EINVAL;
    return withSigmask(k, a.u64(3), a.u64(4), () => doPoll(k, a.u64(0), a.i32(1), ms));
  },
  epoll_create1: (k, a) => {
    const flags = a.i32(0);
    if (flags & ~O_CLOEXEC) return -E.EINVAL;
    return k.fds.install(new OpenFile(new EpollFile(), 2), (flags & O_CLOEXEC) !== 0);
  },
  epoll_create: (k, a) => (a.i32(0) <= 0 ? -E.EINVAL : k.fds.install(new OpenFile(new EpollFile(), 2), false)),
  epoll_ctl: (k, a) => epollCtl(k, a.i32(0), a.i32(1), a.i32(2), a.u64(3)),
  epoll_wait: (k, a) => epollWait(k, a.i32(0), a.u64(1), a.i32(2), a.i32(3)),
  epoll_pwait: (k, a) => withSigmask(k, a.u64(4), a.u64(5), () => epollWait(k, a.i32(0), a.u64(1), a.i32(2), a.i32(3))),
  epoll_pwait2: (k, a) => {
    const ms = timespecMs(k, a.u64(3));
    if (ms === null) return -E.EINVAL;
    return withSigmask(k, a.u64(4), a.u64(5), () => epollWait(k, a.i32(0), a.u64(1), a.i32(2), ms));
  },
  select: (k, a) => {
    const tv = a.u64(4);
    let ms = -1;
    if (tv) {
      const sec = Number(k.mem.readBigU64(tv));
      const usec = Number(k.mem.readBigU64(tv + 8));
      if (sec < 0 || usec < 0 || usec >= 1e6) return -E.EINVAL;
      ms = sec * 1000 + usec / 1000;
    }
    return doSelect(k, a.i32(0), a.u64(1), a.u64(2), a.u64(3), ms);
  },
  pselect6: (k, a) => {
    const ms = timespecMs(k, a.u64(4));
    if (ms === null) return -E.EINVAL;
    // The sixth argument: { const sigset_t *ss; size_t ss_len } (or NULL).
    const sig = a.u64(5);
    const maskAddr = sig ? Number(k.mem.readBigU64(sig)) : 0;
    const size = sig ? Number(k.mem.readBigU64(sig + 8)) : 0;
    return withSigmask(k, maskAddr, size, () => doSelect(k, a.i32(0), a.u64(1), a.u64(2), a.u64(3), ms));
  },
  ioctl: (k, a) => {
    const fd = a.i32(0);
    const f = k.fds.get(fd);
    if (!f) return -E.EBADF;
    const request = a.u32(1);
    // The requests every file answers (fs/ioctl.c: do_vfs_ioctl).
    if (request === FIONBIO) {
      const on = k.mem.readI32(a.u64(2)) !== 0;
      f.flags = on ? f.flags | O_NONBLOCK : f.flags & ~O_NONBLOCK;
      return 0;
    }
    if (request === FIOCLEX || request === FIONCLEX) {
      k.fds.setCloexec(fd, request === FIOCLEX);
      return 0;
    }
    return f.ops.ioctl ? f.ops.ioctl(f, request, a.u64(2)) : -E.ENOTTY;
  },
  fcntl,
  close: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (f) closePosix(k, f); // closing any fd of a file drops the process's record locks on it
    return k.fds.close(a.i32(0));
  },
  flock: (k, a) => flock(k, a.i32(0), a.i32(1)),
  close_range: (k, a) => {
    // close_range(first, last, flags): close (or, CLOSE_RANGE_CLOEXEC, mark close-on-exec) every open
    // fd from first to last. CLOSE_RANGE_UNSHARE gives the caller a private fd table first: a no-op for
    // a process of one thread; fd tables are per process here, so with threads it is not supported.
    const CLOSE_RANGE_UNSHARE = 2;
    const CLOSE_RANGE_CLOEXEC = 4;
    const first = a.u32(0);
    const last = a.u32(1);
    const flags = a.u32(2);
    if (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) || first > last) return -E.EINVAL;
    if (flags & CLOSE_RANGE_UNSHARE && k.threadCount > 1) {
      k.stats.unimplemented(SYS.close_range);
      return -E.ENOSYS;
    }
    for (const [fd] of k.fds.entries()) {
      if (fd < first || fd > last) continue;
      if (flags & CLOSE_RANGE_CLOEXEC) k.fds.setCloexec(fd, true);
      else {
        closePosix(k, k.fds.get(fd)!);
        k.fds.close(fd);
      }
    }
    return 0;
  },
  dup: (k, a) => {
    const f = k.fds.get(a.i32(0));
    return f ? k.fds.install(f, false) : -E.EBADF;
  },
  dup2: (k, a) => {
    const oldfd = a.i32(0);
    const newfd = a.i32(1);
    if (!k.fds.get(oldfd)) return -E.EBADF;
    return oldfd === newfd ? newfd : dup3(k, oldfd, newfd, 0);
  },
  dup3: (k, a) => dup3(k, a.i32(0), a.i32(1), a.i32(2)),
  fstat: (k, a) => {
    const f = k.fds.get(a.i32(0));
    if (!f) return -E.EBADF;
    k.mem.write(a.u64(1), encodeStat(f.ops.stat(f)));
    return 0;
  },
};
