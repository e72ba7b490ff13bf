/**
 * The socket system calls: socket, socketpair, bind, listen, accept/accept4, connect, shutdown,
 * get/setsockopt, getsockname/getpeername, and the data calls send/recv in all their forms
 * (sendto/recvfrom, sendmsg/recvmsg with SCM_RIGHTS and SCM_CREDENTIALS, sendmmsg/recvmmsg).
 *
 * A call that would wait waits here in the way the kernel waits everywhere: a lone thread waits in
 * the call (socket.ts waitFor), several threads park the caller and retry the call when anything
 * changed; O_NONBLOCK and MSG_DONTWAIT answer EAGAIN.
 */
import { E } from '../../abi/errno.js';
import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_UNIX,
  AF_UNSPEC,
  CMSGHDR,
  IPPROTO_TCP,
  IPPROTO_UDP,
  MMSGHDR,
  MSG,
  MSGHDR,
  SCM_CREDENTIALS,
  SCM_MAX_FD,
  SCM_RIGHTS,
  SOCKADDR_STORAGE_SIZE,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
  UCRED_SIZE,
  cmsgAlign,
  cmsgLen,
  cmsgSpace,
  decodeSockAddr,
  encodeSockAddr,
  type SockAddr,
} from '../../abi/socket.js';
import { SIG } from '../../abi/signals.js';
import { O_NONBLOCK, O_RDWR, OpenFile, POLLIN, POLLOUT } from '../files/file.js';
import type { Kernel } from '../kernel.js';
import { LocalSocket } from '../net/local.js';
import { HostSocket } from '../net/host.js';
import { MAX_SOCKETS } from '../net/network.js';
import { AGAIN, SocketFile, type Again, type Cred, type Received } from '../net/socket.js';
import type { SyscallResult, SyscallTable } from '../types.js';
import { findSocketNode, makeSocketNode, normalizePath } from './fs.js';
import { iovecs } from './io.js';
import { raise } from './signal.js';
import { interestOf } from '../hostwatch.js';

const MAX_OPTLEN = 4096;
const UIO_MAXIOV = 1024;

function socketOf(k: Kernel, fd: number): { f: OpenFile; s: SocketFile } | number {
  const f = k.fds.get(fd);
  if (!f) return -E.EBADF;
  return f.ops instanceof SocketFile ? { f, s: f.ops } : -E.ENOTSOCK;
}

function credOf(k: Kernel): Cred {
  return { pid: k.identity.pid, uid: k.identity.uid, gid: k.identity.gid };
}

/** A blocking answer as the task loop takes it: a park (threads) or a stop. */
function settle(s: SocketFile, dir: 'in' | 'out', r: number | 'stop' | 'block'): SyscallResult {
  if (r === 'stop') return { kind: 'stop' };
  if (r === 'block') {
    const timeo = dir === 'in' ? s.opts.rcvTimeoMs : s.opts.sndTimeoMs;
    const host = interestOf(s, dir === 'in' ? POLLIN : POLLOUT);
    return { kind: 'park', park: { kind: 'retry', deadline: timeo > 0 ? performance.now() + timeo : Infinity, onTimeout: timeo > 0 ? -E.EAGAIN : -E.EINTR, host } };
  }
  return r;
}

// ---- addresses ----

interface Dest {
  addr: SockAddr;
  /** AF_UNIX: the name space key (path names: the inode). */
  key: string | null;
}

/**
 * The address a call passed, with its AF_UNIX key: `bind` makes a path name's inode, the others find
 * it (ENOENT when there is none, ECONNREFUSED when it is not a socket).
 */
function addressArg(k: Kernel, s: SocketFile, addr: number, len: number, purpose: 'bind' | 'reach'): Dest | number {
  if (len < 0 || len > SOCKADDR_STORAGE_SIZE) return -E.EINVAL;
  const raw = k.mem.copyIn(addr, len);
  const a = decodeSockAddr(raw, s.domain);
  if (typeof a === 'number') return a;
  if (a.family !== AF_UNIX) return { addr: a, key: null };
  // Abstract names are per socket type (a datagram and a stream socket may hold the same one).
  if (a.kind === 'abstract') return { addr: a, key: `abstract:${s.type}:${Buffer.from(a.name).toString('latin1')}` };
  if (a.kind === 'unnamed') return purpose === 'bind' ? { addr: a, key: null } : -E.EINVAL;
  const path = Buffer.from(a.name).toString('utf8');
  if (!(s instanceof LocalSocket)) return -E.EINVAL;
  if (!k.root) {
    // No image: path names live in the kernel only.
    return { addr: a, key: `path:${normalizePath(path, k.cwd.path)}` };
  }
  const ino = purpose === 'bind' ? makeSocketNode(k, path) : findSocketNode(k, path);
  if (ino < 0) return ino;
  return { addr: a, key: `ino:${ino}` };
}

/** Write an address back (accept, getsockname, recvfrom): at most *lenAddr bytes, and its whole length. */
function putAddress(k: Kernel, bytes: Uint8Array, addr: number, lenAddr: number): number {
  if (addr === 0 || lenAddr === 0) return 0;
  const room = k.mem.readI32(lenAddr);
  if (room < 0) return -E.EINVAL;
  k.mem.write(addr, bytes.subarray(0, Math.min(room, bytes.length)));
  k.mem.writeU32(lenAddr, bytes.length);
  return 0;
}

// ---- making sockets ----

function newSocket(k: Kernel, domain: number, type: number, protocol: number): SocketFile | number {
  if (domain === AF_UNIX) {
    if (type !== SOCK_STREAM && type !== SOCK_DGRAM && type !== SOCK_SEQPACKET) return type === SOCK_RAW ? -E.EPROTONOSUPPORT : -E.ESOCKTNOSUPPORT;
    if (protocol !== 0 && protocol !== AF_UNIX) return -E.EPROTONOSUPPORT;
  } else if (domain === AF_INET || domain === AF_INET6) {
    if (type === SOCK_RAW) return -E.EPERM; // no CAP_NET_RAW in the sandbox
    if (type === SOCK_STREAM) {
      if (protocol !== 0 && protocol !== IPPROTO_TCP) return -E.EPROTONOSUPPORT;
      protocol = IPPROTO_TCP;
    } else if (type === SOCK_DGRAM) {
      if (protocol === 1 || protocol === 58) return -E.EACCES; // ICMP "ping" sockets: not in ping_group_range
      if (protocol !== 0 && protocol !== IPPROTO_UDP) return -E.EPROTONOSUPPORT;
      protocol = IPPROTO_UDP;
    } else return -E.ESOCKTNOSUPPORT;
    if (k.net.policy === 'host') return HostSocket.open(domain, type, protocol, k.mem, k.stop);
  } else if (domain === AF_NETLINK) {
    // No routing sockets: glibc's getaddrinfo then assumes both IPv4 and IPv6 (check_pf.c).
    return -E.EAFNOSUPPORT;
  } else return -E.EAFNOSUPPORT;
  if (k.net.sockets >= MAX_SOCKETS) return -E.ENFILE;
  return new LocalSocket(k.net, domain, type, protocol, credOf(k), k.mem, k.stop);
}

function install(k: Kernel, s: SocketFile, flags: number): number {
  const f = new OpenFile(s, O_RDWR | (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0));
  const fd = k.fds.install(f, (flags & SOCK_CLOEXEC) !== 0);
  if (fd < 0) f.discard();
  return fd;
}

function socket(k: Kernel, domain: number, rawType: number, protocol: number): number {
  const flags = rawType & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  const type = rawType & ~flags;
  if (type & ~0xf) return -E.EINVAL;
  const s = newSocket(k, domain, type, protocol);
  return typeof s === 'number' ? s : install(k, s, flags);
}

function socketpair(k: Kernel, domain: number, rawType: number, protocol: number, sv: number): number {
  const flags = rawType & (SOCK_NONBLOCK | SOCK_CLOEXEC);
  const type = rawType & ~flags;
  if (domain !== AF_UNIX) return domain === AF_INET || domain === AF_INET6 ? -E.EOPNOTSUPP : -E.EAFNOSUPPORT;
  k.mem.writable(sv, 8);
  const a = newSocket(k, domain, type, protocol);
  if (typeof a === 'number') return a;
  const b = newSocket(k, domain, type, protocol) as LocalSocket;
  const x = a as LocalSocket;
  if (type === SOCK_DGRAM) {
    x.peer = b;
    b.peer = x;
    x.state = 'connected';
    b.state = 'connected';
  } else LocalSocket.pair(x, b);
  x.peerCred = b.cred;
  b.peerCred = x.cred;
  const status = O_RDWR | (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0);
  const fds = k.fds.installPair(new OpenFile(x, status), new OpenFile(b, status), (flags & SOCK_CLOEXEC) !== 0);
  if (typeof fds === 'number') return fds;
  k.mem.writeU32(sv, fds[0]);
  k.mem.writeU32(sv + 4, fds[1]);
  return 0;
}

function accept(k: Kernel, fd: number, addr: number, lenAddr: number, flags: number): SyscallResult {
  if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) return -E.EINVAL;
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const { f, s } = so;
  if (s.type === SOCK_DGRAM) return -E.EOPNOTSUPP;
  if (addr !== 0) k.mem.writable(lenAddr, 4);
  let made: SocketFile | null = null;
  const r = s.waitFor((f.flags & O_NONBLOCK) !== 0, 'in', () => {
    const c = s.accept();
    if (c === AGAIN || typeof c === 'number') return c;
    made = c;
    return 0;
  });
  if (typeof r !== 'number' || r < 0) return settle(s, 'in', r);
  const c = made as SocketFile | null;
  if (!c) return -E.EINVAL;
  const nfd = install(k, c, flags);
  if (nfd < 0) return nfd;
  const peer = c.peerName();
  if (typeof peer !== 'number') putAddress(k, peer, addr, lenAddr);
  return nfd;
}

function connect(k: Kernel, fd: number, addr: number, len: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const { f, s } = so;
  if (len >= 2 && k.mem.read(addr, 2)[0] === AF_UNSPEC && k.mem.read(addr, 2)[1] === 0) return s.disconnect();
  const d = addressArg(k, s, addr, len, 'reach');
  if (typeof d === 'number') return d;
  const nonblock = (f.flags & O_NONBLOCK) !== 0;
  const r = s.waitFor(nonblock, 'out', () => s.connect(d.addr, d.key, nonblock));
  return settle(s, 'out', r);
}

// ---- data ----

/** A message to send, from msghdr or from send/sendto's arguments. */
interface Outgoing {
  data: Uint8Array;
  to: Dest | null;
  files: OpenFile[] | null;
  cred: Cred;
}

/** Parse msg_control for sending: SCM_RIGHTS descriptions and SCM_CREDENTIALS. */
function parseControl(k: Kernel, s: SocketFile, addr: number, len: number): { files: OpenFile[] | null; cred: Cred | null } | number {
  if (len === 0 || addr === 0) return { files: null, cred: null };
  if (len > 64 * 1024) return -E.ENOBUFS;
  const b = k.mem.copyIn(addr, len);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let files: OpenFile[] | null = null;
  let cred: Cred | null = null;
  for (let at = 0; at + CMSGHDR.size <= len; ) {
    const clen = Number(dv.getBigUint64(at + CMSGHDR.len, true));
    if (clen < CMSGHDR.size || at + clen > len) return -E.EINVAL;
    const level = dv.getInt32(at + CMSGHDR.level, true);
    const type = dv.getInt32(at + CMSGHDR.type, true);
    const dataLen = clen - CMSGHDR.size;
    if (level === SOL_SOCKET && s.domain === AF_UNIX) {
      if (type === SCM_RIGHTS) {
        const n = Math.floor(dataLen / 4);
        if (n + (files?.length ?? 0) > SCM_MAX_FD) return -E.EINVAL;
        files ??= [];
        for (let i = 0; i < n; i++) {
          const of = k.fds.get(dv.getInt32(at + CMSGHDR.size + i * 4, true));
          if (!of) return -E.EBADF;
          files.push(of);
        }
      } else if (type === SCM_CREDENTIALS) {
        if (dataLen < UCRED_SIZE) return -E.EINVAL;
        const c = { pid: dv.getInt32(at + 16, true), uid: dv.getInt32(at + 20, true), gid: dv.getInt32(at + 24, true) };
        // Only root may speak for another process or user (Linux: scm_check_creds).
        if (k.identity.uid !== 0 && (c.pid !== k.identity.pid || c.uid !== k.identity.uid || c.gid !== k.identity.gid)) return -E.EPERM;
        if (c.pid !== k.identity.pid && k.procs && !k.procs.byPid.has(c.pid)) return -E.ESRCH;
        cred = c;
      } else return -E.EINVAL;
    } else if (level === SOL_SOCKET) return -E.EINVAL;
    // (IP-level ancillary data such as IP_PKTINFO or IP_TOS means nothing on this loopback: ignored.)
    at += cmsgAlign(clen);
  }
  return { files, cred };
}

/** Send one message; EPIPE raises SIGPIPE unless MSG_NOSIGNAL. */
function sendOne(k: Kernel, f: OpenFile, s: SocketFile, m: Outgoing, flags: number): SyscallResult {
  const nonblock = (f.flags & O_NONBLOCK) !== 0 || (flags & MSG.DONTWAIT) !== 0;
  const r = s.waitFor(nonblock, 'out', (): number | Again => {
    const files = m.files ? m.files.map((x) => x.ref()) : null;
    const n = s.send({ data: m.data, to: m.to?.addr ?? null, toKey: m.to?.key ?? null, fds: files, cred: m.cred, flags });
    if (n === AGAIN || n < 0) for (const x of files ?? []) x.unref();
    return n;
  });
  if (r === -E.EPIPE && !(flags & MSG.NOSIGNAL)) {
    const sig = raise(k, SIG.SIGPIPE, 'on a send to a socket whose peer is gone');
    if (typeof sig === 'object') return sig;
  }
  return settle(s, 'out', r);
}

function sendto(k: Kernel, fd: number, buf: number, len: number, flags: number, addr: number, addrLen: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  if (len < 0) return -E.EINVAL;
  const data = k.mem.copyIn(buf, Math.min(len, 0x7ffff000));
  let to: Dest | null = null;
  if (addr !== 0 && so.s.type !== SOCK_STREAM) {
    const d = addressArg(k, so.s, addr, addrLen, 'reach');
    if (typeof d === 'number') return d;
    to = d;
  }
  return sendOne(k, so.f, so.s, { data, to, files: null, cred: credOf(k) }, flags);
}

/** Read a msghdr for sending: the gathered bytes, destination and ancillary data. */
function outgoingOf(k: Kernel, s: SocketFile, msgAddr: number): Outgoing | number {
  const h = k.mem.copyIn(msgAddr, MSGHDR.size);
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const name = Number(dv.getBigUint64(MSGHDR.name, true));
  const nameLen = dv.getInt32(MSGHDR.namelen, true);
  const iov = iovecs(k, Number(dv.getBigUint64(MSGHDR.iov, true)), Number(dv.getBigUint64(MSGHDR.iovlen, true)));
  if (typeof iov === 'number') return iov;
  const control = parseControl(k, s, Number(dv.getBigUint64(MSGHDR.control, true)), Number(dv.getBigUint64(MSGHDR.controllen, true)));
  if (typeof control === 'number') return control;
  const total = iov.reduce((a, [, l]) => a + l, 0);
  if (total > 0x7ffff000) return -E.EINVAL;
  const data = new Uint8Array(total);
  let at = 0;
  for (const [base, l] of iov) {
    data.set(k.mem.read(base, l), at);
    at += l;
  }
  let to: Dest | null = null;
  if (name !== 0 && nameLen > 0 && s.type !== SOCK_STREAM) {
    const d = addressArg(k, s, name, nameLen, 'reach');
    if (typeof d === 'number') return d;
    to = d;
  }
  return { data, to, files: control.files, cred: control.cred ?? credOf(k) };
}

function sendmsg(k: Kernel, fd: number, msgAddr: number, flags: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const m = outgoingOf(k, so.s, msgAddr);
  if (typeof m === 'number') return m;
  return sendOne(k, so.f, so.s, m, flags);
}

function sendmmsg(k: Kernel, fd: number, vec: number, vlen: number, flags: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const n = Math.min(vlen, UIO_MAXIOV);
  let sent = 0;
  for (let i = 0; i < n; i++) {
    const at = vec + i * MMSGHDR.size;
    const m = outgoingOf(k, so.s, at + MMSGHDR.hdr);
    if (typeof m === 'number') return sent > 0 ? sent : m;
    // Only the first message may wait: the call then answers how many went.
    const r = sendOne(k, so.f, so.s, m, sent > 0 ? flags | MSG.DONTWAIT : flags);
    if (typeof r !== 'number') return sent > 0 ? sent : r;
    if (r < 0) return sent > 0 ? sent : r;
    k.mem.writeU32(at + MMSGHDR.len, r);
    sent++;
  }
  return sent;
}

/** Receive one message into `room` bytes; `deliver` puts it where the call wants it. */
function recvOne(k: Kernel, f: OpenFile, s: SocketFile, room: number, flags: number, deliver: (r: Received) => number): SyscallResult {
  const nonblock = (f.flags & O_NONBLOCK) !== 0 || (flags & MSG.DONTWAIT) !== 0;
  if (flags & MSG.OOB) return -E.EINVAL; // no urgent data on these sockets
  const r = s.waitFor(nonblock, 'in', () => {
    const got = s.recv(room, flags);
    if (got === AGAIN || typeof got === 'number') return got;
    return deliver(got);
  });
  return settle(s, 'in', r);
}

function recvfrom(k: Kernel, fd: number, buf: number, len: number, flags: number, addr: number, lenAddr: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  if (len < 0) return -E.EINVAL;
  k.mem.writable(buf, len);
  if (addr !== 0) k.mem.writable(lenAddr, 4);
  return recvOne(k, so.f, so.s, len, flags, (r) => {
    k.mem.write(buf, r.data);
    for (const x of r.fds ?? []) x.unref();
    if (r.from) putAddress(k, encodeSockAddr(r.from), addr, lenAddr);
    else if (addr !== 0 && so.s.type !== SOCK_STREAM) k.mem.writeU32(lenAddr, 0);
    return flags & MSG.TRUNC && so.s.type !== SOCK_STREAM ? r.full : r.data.length;
  });
}


/** Fill a msghdr from a received message: data, sender, ancillary data, msg_flags. */
function deliverMsg(k: Kernel, s: SocketFile, msgAddr: number, r: Received, flags: number): number {
  const h = k.mem.copyIn(msgAddr, MSGHDR.size);
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const iov = iovecs(k, Number(dv.getBigUint64(MSGHDR.iov, true)), Number(dv.getBigUint64(MSGHDR.iovlen, true)));
  if (typeof iov === 'number') return iov;
  let at = 0;
  for (const [base, l] of iov) {
    if (at >= r.data.length) break;
    const n = Math.min(l, r.data.length - at);
    k.mem.write(base, r.data.subarray(at, at + n));
    at += n;
  }
  const name = Number(dv.getBigUint64(MSGHDR.name, true));
  if (name !== 0) {
    const room = dv.getInt32(MSGHDR.namelen, true);
    const bytes = r.from && s.type !== SOCK_STREAM ? encodeSockAddr(r.from) : new Uint8Array(0);
    k.mem.write(name, bytes.subarray(0, Math.max(0, Math.min(room, bytes.length))));
    k.mem.writeU32(msgAddr + MSGHDR.namelen, bytes.length);
  }
  // Ancillary data: descriptions (installed now), then credentials for SO_PASSCRED.
  const control = Number(dv.getBigUint64(MSGHDR.control, true));
  const controlLen = Number(dv.getBigUint64(MSGHDR.controllen, true));
  let used = 0;
  let outFlags = r.flags & (MSG.TRUNC | MSG.EOR);
  const files = r.fds ?? [];
  if (files.length) {
    const fit = control === 0 ? 0 : Math.max(0, Math.floor((controlLen - CMSGHDR.size) / 4));
    const n = Math.min(files.length, fit);
    const fds: number[] = [];
    for (let i = 0; i < n; i++) {
      const fd = k.fds.install(files[i]!, (flags & MSG.CMSG_CLOEXEC) !== 0);
      if (fd < 0) break;
      fds.push(fd);
    }
    for (const x of files) x.unref(); // the fds hold their own references now
    if (fds.length < files.length) outFlags |= MSG.CTRUNC;
    if (fds.length) {
      const c = new Uint8Array(cmsgSpace(fds.length * 4));
      const cv = new DataView(c.buffer);
      cv.setBigUint64(CMSGHDR.len, BigInt(cmsgLen(fds.length * 4)), true);
      cv.setInt32(CMSGHDR.level, SOL_SOCKET, true);
      cv.setInt32(CMSGHDR.type, SCM_RIGHTS, true);
      fds.forEach((fd, i) => cv.setInt32(CMSGHDR.size + i * 4, fd, true));
      const len = Math.min(c.length, controlLen);
      k.mem.write(control, c.subarray(0, len));
      used += len;
    }
  }
  if (s.opts.passCred && s.domain === AF_UNIX) {
    const cred = r.cred ?? { pid: 0, uid: 65534, gid: 65534 };
    const need = cmsgSpace(UCRED_SIZE);
    if (control !== 0 && controlLen - used >= cmsgLen(UCRED_SIZE)) {
      const c = new Uint8Array(need);
      const cv = new DataView(c.buffer);
      cv.setBigUint64(CMSGHDR.len, BigInt(cmsgLen(UCRED_SIZE)), true);
      cv.setInt32(CMSGHDR.level, SOL_SOCKET, true);
      cv.setInt32(CMSGHDR.type, SCM_CREDENTIALS, true);
      cv.setInt32(16, cred.pid, true);
      cv.setInt32(20, cred.uid, true);
      cv.setInt32(24, cred.gid, true);
      const len = Math.min(need, controlLen - used);
      k.mem.write(control + used, c.subarray(0, len));
      used += len;
    } else outFlags |= MSG.CTRUNC;
  }
  if (control !== 0 || controlLen !== 0) k.mem.writeU64(msgAddr + MSGHDR.controllen, used);
  k.mem.writeU32(msgAddr + MSGHDR.flags, outFlags);
  return flags & MSG.TRUNC && s.type !== SOCK_STREAM ? r.full : r.data.length;
}

/** The room a msghdr's iovecs give. */
function msgRoom(k: Kernel, msgAddr: number): number {
  const h = k.mem.copyIn(msgAddr, MSGHDR.size);
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const iov = iovecs(k, Number(dv.getBigUint64(MSGHDR.iov, true)), Number(dv.getBigUint64(MSGHDR.iovlen, true)));
  if (typeof iov === 'number') return iov;
  for (const [base, l] of iov) k.mem.writable(base, l);
  return Math.min(iov.reduce((a, [, l]) => a + l, 0), 0x7ffff000);
}

function recvmsg(k: Kernel, fd: number, msgAddr: number, flags: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const room = msgRoom(k, msgAddr);
  if (room < 0) return room;
  return recvOne(k, so.f, so.s, room, flags, (r) => deliverMsg(k, so.s, msgAddr, r, flags));
}

function recvmmsg(k: Kernel, fd: number, vec: number, vlen: number, flags: number): SyscallResult {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const n = Math.min(vlen, UIO_MAXIOV);
  let got = 0;
  for (let i = 0; i < n; i++) {
    const at = vec + i * MMSGHDR.size;
    const room = msgRoom(k, at + MMSGHDR.hdr);
    if (room < 0) return got > 0 ? got : room;
    // The first message may wait; then (MSG_WAITFORONE, or what is already queued) no more.
    const f = got > 0 ? flags | MSG.DONTWAIT : flags;
    const r = recvOne(k, so.f, so.s, room, f & ~MSG.WAITFORONE, (m) => deliverMsg(k, so.s, at + MMSGHDR.hdr, m, f));
    if (typeof r !== 'number') return got > 0 ? got : r;
    if (r < 0) return got > 0 ? got : r;
    k.mem.writeU32(at + MMSGHDR.len, r);
    got++;
  }
  return got;
}

// ---- options and names ----

function getsockopt(k: Kernel, fd: number, level: number, name: number, val: number, lenAddr: number): number {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  const room = k.mem.readI32(lenAddr);
  if (room < 0) return -E.EINVAL;
  const v = so.s.getOpt(level, name, room);
  if (typeof v === 'number') return v;
  const n = Math.min(room, v.length);
  k.mem.write(val, v.subarray(0, n));
  k.mem.writeU32(lenAddr, n);
  return 0;
}

function setsockopt(k: Kernel, fd: number, level: number, name: number, val: number, len: number): number {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  if (len < 0) return -E.EINVAL;
  const v = k.mem.copyIn(val, Math.min(len, MAX_OPTLEN));
  return so.s.setOpt(level, name, v);
}

function nameCall(k: Kernel, fd: number, addr: number, lenAddr: number, peer: boolean): number {
  const so = socketOf(k, fd);
  if (typeof so === 'number') return so;
  if (k.mem.readI32(lenAddr) < 0) return -E.EINVAL;
  const bytes = peer ? so.s.peerName() : so.s.sockName();
  if (typeof bytes === 'number') return bytes;
  return putAddress(k, bytes, addr, lenAddr);
}

export const netSyscalls: SyscallTable = {
  socket: (k, a) => socket(k, a.i32(0), a.i32(1), a.i32(2)),
  socketpair: (k, a) => socketpair(k, a.i32(0), a.i32(1), a.i32(2), a.u64(3)),
  bind: (k, a) => {
    const so = socketOf(k, a.i32(0));
    if (typeof so === 'number') return so;
    const d = addressArg(k, so.s, a.u64(1), a.i32(2), 'bind');
    return typeof d === 'number' ? d : so.s.bind(d.addr, d.key);
  },
  listen: (k, a) => {
    const so = socketOf(k, a.i32(0));
    return typeof so === 'number' ? so : so.s.listen(a.i32(1));
  },
  accept: (k, a) => accept(k, a.i32(0), a.u64(1), a.u64(2), 0),
  accept4: (k, a) => accept(k, a.i32(0), a.u64(1), a.u64(2), a.i32(3)),
  connect: (k, a) => connect(k, a.i32(0), a.u64(1), a.i32(2)),
  shutdown: (k, a) => {
    const so = socketOf(k, a.i32(0));
    return typeof so === 'number' ? so : so.s.shutdown(a.i32(1));
  },
  getsockname: (k, a) => nameCall(k, a.i32(0), a.u64(1), a.u64(2), false),
  getpeername: (k, a) => nameCall(k, a.i32(0), a.u64(1), a.u64(2), true),
  getsockopt: (k, a) => getsockopt(k, a.i32(0), a.i32(1), a.i32(2), a.u64(3), a.u64(4)),
  setsockopt: (k, a) => setsockopt(k, a.i32(0), a.i32(1), a.i32(2), a.u64(3), a.i32(4)),
  sendto: (k, a) => sendto(k, a.i32(0), a.u64(1), a.u64(2), a.i32(3), a.u64(4), a.i32(5)),
  recvfrom: (k, a) => recvfrom(k, a.i32(0), a.u64(1), a.u64(2), a.i32(3), a.u64(4), a.u64(5)),
  sendmsg: (k, a) => sendmsg(k, a.i32(0), a.u64(1), a.i32(2)),
  recvmsg: (k, a) => recvmsg(k, a.i32(0), a.u64(1), a.i32(2)),
  sendmmsg: (k, a) => sendmmsg(k, a.i32(0), a.u64(1), a.u32(2), a.i32(3)),
  recvmmsg: (k, a) => recvmmsg(k, a.i32(0), a.u64(1), a.u32(2), a.i32(3)),
};
