/**
 * What every socket has, whatever carries its data: the socket-level options (SOL_SOCKET), the
 * credentials of whoever made it, the file operations read/write/stat on top of send/recv, and the
 * shape of messages in and out. Socket operations never wait: an operation that would wait answers
 * AGAIN, and the system-call layer (sys/net.ts) decides whether to wait (blocking socket), park the
 * thread (several threads) or answer EAGAIN (O_NONBLOCK, MSG_DONTWAIT).
 */
import { E } from '../../abi/errno.js';
import { S_IFSOCK, type StatInfo } from '../../abi/stat.js';
import { LINGER_SIZE, SO, UCRED_SIZE, type SockAddr } from '../../abi/socket.js';
import type { GuestMemory } from '../../mm/guest.js';
import { nap } from '../nap.js';
import { interestOf, waitHost, type HostInterest } from '../hostwatch.js';
import type { StopSignal } from '../files/host.js';
import { O_NONBLOCK, POLLIN, POLLOUT, type FileOps, type OpenFile } from '../files/file.js';

/** The answer of an operation that would have to wait. */
export const AGAIN = 'again' as const;
export type Again = typeof AGAIN;

/** SO_PEERCRED / SCM_CREDENTIALS: a process's pid (the sandbox's numbering), uid and gid. */
export interface Cred {
  pid: number;
  uid: number;
  gid: number;
}

/** A message on its way: bytes (from `off`), and what came with them. */
export interface Msg {
  data: Uint8Array;
  off: number;
  /** SCM_RIGHTS: descriptions in flight (each holds a reference until received or dropped). */
  fds: OpenFile[] | null;
  /** The sender's credentials (given to a receiver with SO_PASSCRED). */
  cred: Cred | null;
  /** Datagrams: who sent it. */
  from: SockAddr | null;
}

export interface SendArgs {
  data: Uint8Array;
  to: SockAddr | null;
  /** AF_UNIX: the name space key the kernel resolved `to` to. */
  toKey: string | null;
  fds: OpenFile[] | null;
  cred: Cred;
  flags: number;
}

export interface Received {
  /** The bytes for the program (at most the length it asked for). */
  data: Uint8Array;
  /** The message's whole length (datagrams: for MSG_TRUNC), or data.length. */
  full: number;
  from: SockAddr | null;
  fds: OpenFile[] | null;
  cred: Cred | null;
  /** MSG_TRUNC / MSG_EOR for msg_flags. */
  flags: number;
}

let nextSocketIno = 1;
const FIONREAD = 0x541b; // = SIOCINQ
const SIOCOUTQ = 0x5411; // = TIOCOUTQ

export const DEFAULT_BUF = 212_992; // net.core.{r,w}mem_default
const MIN_BUF = 2_304;
const MAX_BUF = 4 * 1024 * 1024;

/** The SOL_SOCKET options a socket keeps (those with effects are read by the socket kinds). */
export class SocketOptions {
  reuseAddr = false;
  reusePort = false;
  keepAlive = false;
  broadcast = false;
  passCred = false;
  oobInline = false;
  dontRoute = false;
  rcvBuf = DEFAULT_BUF;
  sndBuf = DEFAULT_BUF;
  rcvLowat = 1;
  priority = 0;
  mark = 0;
  /** SO_LINGER: [on, seconds]. */
  linger: [number, number] = [0, 0];
  /** SO_RCVTIMEO / SO_SNDTIMEO in ms (0: none). */
  rcvTimeoMs = 0;
  sndTimeoMs = 0;
  timestamp = false;
  busyPoll = 0;
  peekOff = -1;
}

/** A small integer option value as the program passed it (an int; shorter is EINVAL). */
export function intOpt(v: Uint8Array): number | null {
  if (v.length < 4) return null;
  return new DataView(v.buffer, v.byteOffset, 4).getInt32(0, true);
}

export function intBytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return b;
}

function timevalMs(v: Uint8Array): number | null {
  if (v.length < 16) return null;
  const dv = new DataView(v.buffer, v.byteOffset, 16);
  const sec = Number(dv.getBigInt64(0, true));
  const usec = Number(dv.getBigInt64(8, true));
  if (usec < 0 || usec >= 1_000_000 || sec < 0) return null;
  return sec * 1000 + Math.ceil(usec / 1000);
}

function timevalBytes(ms: number): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  dv.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
  return b;
}

/** What a socket kind reports for the SOL_SOCKET options only it knows. */
export interface SocketFacts {
  acceptConn: boolean;
  /** SO_ERROR: the pending error, cleared by reading it. */
  takeError(): number;
  peerCred: Cred | null;
}

/** SOL_SOCKET setsockopt: 0, -errno, or null when the option is not a socket-level one kept here. */
export function setSocketOption(o: SocketOptions, name: number, v: Uint8Array): number {
  if (name === SO.LINGER) {
    if (v.length < LINGER_SIZE) return -E.EINVAL;
    const dv = new DataView(v.buffer, v.byteOffset, LINGER_SIZE);
    o.linger = [dv.getInt32(0, true) ? 1 : 0, Math.max(0, dv.getInt32(4, true))];
    return 0;
  }
  if (name === SO.RCVTIMEO || name === SO.SNDTIMEO) {
    const ms = timevalMs(v);
    if (ms === null) return v.length < 16 ? -E.EINVAL : -E.EDOM;
    if (name === SO.RCVTIMEO) o.rcvTimeoMs = ms;
    else o.sndTimeoMs = ms;
    return 0;
  }
  if (name === SO.BINDTODEVICE) return v.length === 0 || v[0] === 0 || Buffer.from(v).toString('latin1').replace(/\0.*$/s, '') === 'lo' ? 0 : -E.ENODEV;
  const n = intOpt(v);
  if (n === null) return -E.EINVAL;
  const on = n !== 0;
  const buf = (x: number): number => Math.min(MAX_BUF, Math.max(MIN_BUF, Math.min(x, MAX_BUF / 2) * 2)); // Linux doubles the value
  switch (name) {
    case SO.REUSEADDR: o.reuseAddr = on; return 0;
    case SO.REUSEPORT: o.reusePort = on; return 0;
    case SO.KEEPALIVE: o.keepAlive = on; return 0;
    case SO.BROADCAST: o.broadcast = on; return 0;
    case SO.PASSCRED: o.passCred = on; return 0;
    case SO.OOBINLINE: o.oobInline = on; return 0;
    case SO.DONTROUTE: o.dontRoute = on; return 0;
    case SO.TIMESTAMP: o.timestamp = on; return 0;
    case SO.RCVBUF: case SO.RCVBUFFORCE: o.rcvBuf = buf(n); return 0;
    case SO.SNDBUF: case SO.SNDBUFFORCE: o.sndBuf = buf(n); return 0;
    case SO.RCVLOWAT: o.rcvLowat = Math.max(1, n); return 0;
    case SO.PRIORITY: if (n < 0 || n > 6) return -E.EPERM; o.priority = n; return 0;
    case SO.MARK: o.mark = n; return 0;
    case SO.BUSY_POLL: o.busyPoll = n; return 0;
    case SO.PEEK_OFF: o.peekOff = n; return 0;
    case SO.DEBUG: case SO.NO_CHECK: case SO.BSDCOMPAT: case SO.ZEROCOPY: case SO.PASSSEC: case SO.SNDLOWAT: return name === SO.SNDLOWAT ? -E.ENOPROTOOPT : 0;
    case SO.TYPE: case SO.ERROR: case SO.ACCEPTCONN: case SO.PEERCRED: case SO.PROTOCOL: case SO.DOMAIN: case SO.PEERSEC: case SO.COOKIE: case SO.INCOMING_CPU:
      return -E.ENOPROTOOPT; // read-only
    default:
      return -E.ENOPROTOOPT;
  }
}

/** SOL_SOCKET getsockopt: the value's bytes, or -errno (ENOPROTOOPT for an option Linux does not have). */
export function getSocketOption(
  o: SocketOptions,
  name: number,
  s: { domain: number; type: number; protocol: number },
  facts: SocketFacts,
): Uint8Array | number {
  switch (name) {
    case SO.TYPE: return intBytes(s.type);
    case SO.DOMAIN: return intBytes(s.domain);
    case SO.PROTOCOL: return intBytes(s.protocol);
    case SO.ERROR: return intBytes(facts.takeError());
    case SO.ACCEPTCONN: return intBytes(facts.acceptConn ? 1 : 0);
    case SO.REUSEADDR: return intBytes(o.reuseAddr ? 1 : 0);
    case SO.REUSEPORT: return intBytes(o.reusePort ? 1 : 0);
    case SO.KEEPALIVE: return intBytes(o.keepAlive ? 1 : 0);
    case SO.BROADCAST: return intBytes(o.broadcast ? 1 : 0);
    case SO.PASSCRED: return intBytes(o.passCred ? 1 : 0);
    case SO.OOBINLINE: return intBytes(o.oobInline ? 1 : 0);
    case SO.DONTROUTE: return intBytes(o.dontRoute ? 1 : 0);
    case SO.TIMESTAMP: return intBytes(o.timestamp ? 1 : 0);
    case SO.RCVBUF: return intBytes(o.rcvBuf);
    case SO.SNDBUF: return intBytes(o.sndBuf);
    case SO.RCVLOWAT: return intBytes(o.rcvLowat);
    case SO.SNDLOWAT: return intBytes(1);
    case SO.PRIORITY: return intBytes(o.priority);
    case SO.MARK: return intBytes(o.mark);
    case SO.BUSY_POLL: return intBytes(o.busyPoll);
    case SO.PEEK_OFF: return intBytes(o.peekOff);
    case SO.INCOMING_CPU: return intBytes(0);
    case SO.DEBUG: case SO.NO_CHECK: case SO.BSDCOMPAT: case SO.ZEROCOPY: case SO.PASSSEC: return intBytes(0);
    case SO.RCVTIMEO: return timevalBytes(o.rcvTimeoMs);
    case SO.SNDTIMEO: return timevalBytes(o.sndTimeoMs);
    case SO.LINGER: {
      const b = new Uint8Array(LINGER_SIZE);
      const dv = new DataView(b.buffer);
      dv.setInt32(0, o.linger[0], true);
      dv.setInt32(4, o.linger[1], true);
      return b;
    }
    case SO.PEERCRED: {
      const c = facts.peerCred ?? { pid: 0, uid: -1, gid: -1 };
      const b = new Uint8Array(UCRED_SIZE);
      const dv = new DataView(b.buffer);
      dv.setInt32(0, c.pid, true);
      dv.setInt32(4, c.uid, true);
      dv.setInt32(8, c.gid, true);
      return b;
    }
    case SO.PEERSEC: return -E.ENOPROTOOPT;
    case SO.COOKIE: return new Uint8Array(8);
    default: return -E.ENOPROTOOPT;
  }
}

/**
 * A socket as a file: read/write are recv/send without flags; fstat says S_IFSOCK. The socket kinds
 * (LocalSocket, HostSocket) extend this.
 */
export abstract class SocketFile implements FileOps {
  readonly kind = 'socket';
  readonly ino = nextSocketIno++;
  readonly name: string;
  readonly opts = new SocketOptions();
  abstract readonly domain: number;
  abstract readonly type: number;
  abstract readonly protocol: number;

  constructor(
    protected readonly mem: GuestMemory,
    protected readonly stop: StopSignal,
  ) {
    this.name = `socket:[${this.ino}]`;
  }

  get memory(): GuestMemory {
    return this.mem;
  }
  get stopSignal(): StopSignal {
    return this.stop;
  }

  // The socket calls (sys/net.ts). Addresses are decoded by the caller; AF_UNIX path names come with
  // the key of the inode they name.
  abstract bind(addr: SockAddr, unixKey: string | null): number;
  abstract listen(backlog: number): number;
  abstract connect(addr: SockAddr, unixKey: string | null, nonblock: boolean): number | Again;
  abstract disconnect(): number;
  abstract accept(): SocketFile | number | Again;
  abstract shutdown(how: number): number;
  abstract sockName(): Uint8Array | number;
  abstract peerName(): Uint8Array | number;
  /** getsockopt: the value (at most `room` bytes matter), or -errno. */
  abstract getOpt(level: number, name: number, room: number): Uint8Array | number;
  abstract setOpt(level: number, name: number, value: Uint8Array): number;
  /** FIONREAD and SIOCOUTQ. */
  abstract pending(): number;
  abstract unsent(): number;
  /** What the socket is, for refusals and /proc. */
  abstract describe(): string;

  /** Host fds whose readiness can change this socket's (a published port's listener, a host socket). */
  hostWatch(_dir: 'in' | 'out'): number[] {
    return [];
  }

  abstract send(a: SendArgs): number | Again;
  /** The credentials a plain write(2) sends with (the socket's maker: write has no caller's context here). */
  protected writerCred(): Cred {
    return { pid: 0, uid: 0, gid: 0 };
  }
  abstract recv(length: number, flags: number): Received | number | Again;
  abstract pollEvents(f?: OpenFile): number;

  read(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    this.mem.writable(addr, length); // EFAULT before anything is taken
    return this.waitFor((f.flags & O_NONBLOCK) !== 0, 'in', () => {
      const r = this.recv(length, 0);
      if (r === AGAIN || typeof r === 'number') return r;
      this.mem.write(addr, r.data);
      for (const fd of r.fds ?? []) fd.unref(); // (read(2) takes no descriptors: they are dropped)
      return r.data.length;
    });
  }

  write(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    const data = this.mem.copyIn(addr, length);
    return this.waitFor((f.flags & O_NONBLOCK) !== 0, 'out', () => this.send({ data, to: null, toKey: null, fds: null, cred: this.writerCred(), flags: 0 }));
  }

  /**
   * Run `op` until it does not answer AGAIN: O_NONBLOCK answers EAGAIN; with several threads the call
   * is parked ('block') and retried; a lone thread waits here for a host event (or the VMM's stop).
   */
  waitFor(nonblock: boolean, dir: 'in' | 'out', op: () => number | Again): number | 'stop' | 'block' {
    const timeoMs = dir === 'in' ? this.opts.rcvTimeoMs : this.opts.sndTimeoMs;
    const deadline = timeoMs > 0 ? performance.now() + timeoMs : Infinity;
    for (;;) {
      const r = op();
      if (r !== AGAIN) return r;
      if (nonblock) return -E.EAGAIN;
      if (this.stop.mustNotBlock?.()) return 'block';
      if (performance.now() >= deadline) return -E.EAGAIN;
      const w = waitHostOnce(interestOf(this, dir === 'in' ? POLLIN : POLLOUT), deadline, this.stop);
      if (w === 'stop') return 'stop';
    }
  }

  ioctl(_f: OpenFile, request: number, arg: number): number {
    if (request === FIONREAD) {
      const n = this.pending();
      if (n < 0) return n;
      this.mem.writeU32(arg, n);
      return 0;
    }
    if (request === SIOCOUTQ) {
      this.mem.writeU32(arg, this.unsent());
      return 0;
    }
    return -E.ENOTTY;
  }

  stat(): StatInfo {
    const now = Math.floor(Date.now() / 1000);
    return {
      dev: 0x08, ino: this.ino, nlink: 1, mode: S_IFSOCK | 0o777, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 4096, blocks: 0,
      atime: [now, 0], mtime: [now, 0], ctime: [now, 0],
    };
  }
}

/**
 * One wait of a lone thread: until one of the host fds in `host` is ready (a host event), the
 * deadline, or at most 200 ms; 'stop' when the VMM is stopping. Without host fds nothing can change
 * meanwhile: it sleeps (woken early by a pause or stop request).
 */
function waitHostOnce(host: HostInterest[], deadline: number, stop: StopSignal): 'stop' | 'again' {
  if (stop.stopRequested()) return 'stop';
  const slice = Math.max(0, Math.min(200, deadline - performance.now()));
  if (host.length) waitHost(host, slice);
  else nap(slice);
  return stop.stopRequested() ? 'stop' : 'again';
}
