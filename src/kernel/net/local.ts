/**
 * Sockets whose both ends are in the sandbox: AF_UNIX (stream, datagram, seqpacket) and the loopback
 * network's TCP and UDP (AF_INET, AF_INET6). The kernel moves the bytes between queues of its own;
 * names (paths, abstract names, ports) are the Network's (network.ts).
 *
 * Connection-oriented sockets pair two endpoints: each queues what it receives, and a sender may queue
 * up to the receiver's SO_RCVBUF. A listener keeps connections made to it (already paired, as Linux
 * keeps them) until accept takes them, at most its backlog + 1. Datagram sockets queue whole messages
 * with their sender's address: AF_UNIX senders wait when the queue is full, UDP drops the message.
 */
import { E } from '../../abi/errno.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  IP,
  IPV6,
  MSG,
  SOL_IP,
  SOL_IPV6,
  SOL_SOCKET,
  SOL_TCP,
  SOL_UDP,
  TCP,
  encodeSockAddr,
  formatSockAddr,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SOCK_DGRAM,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOMAXCONN,
  V4_LOOPBACK,
  V6_LOOPBACK,
  isV4Mapped,
  isWildcard,
  type InetAddr,
  type SockAddr,
  type UnixAddr,
} from '../../abi/socket.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { StopSignal } from '../files/host.js';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, type OpenFile } from '../files/file.js';
import { AGAIN, SocketFile, getSocketOption, intBytes, intOpt, setSocketOption, type Again, type Cred, type Msg, type Received, type SendArgs } from './socket.js';
import type { Network } from './network.js';
import type { HostSocket } from './host.js';

/** How many datagrams an AF_UNIX socket queues (net.unix.max_dgram_qlen is 10; Linux also bounds by bytes). */
const UNIX_DGRAM_QLEN = 512;

type State = 'new' | 'bound' | 'listening' | 'connecting' | 'connected' | 'closed';

export class LocalSocket extends SocketFile {
  readonly domain: number;
  readonly type: number;
  readonly protocol: number;
  state: State = 'new';
  local: SockAddr | null = null;
  remote: SockAddr | null = null;
  /** Connection-oriented: the other end (null before a connection, and after the peer is gone). */
  peer: LocalSocket | null = null;
  /** What this socket has received and not yet read. */
  readonly rx: Msg[] = [];
  rxBytes = 0;
  /** A listener's connections not yet accepted. */
  readonly backlog: LocalSocket[] = [];
  backlogMax = 0;
  /** Set when this end can no longer read (SHUT_RD) or write (SHUT_WR). */
  rdShut = false;
  wrShut = false;
  /** The peer will send nothing more (it shut its writing down, or closed): reads end at EOF. */
  eof = false;
  /** The peer closed (writes: EPIPE). */
  peerGone = false;
  /** SO_ERROR: ECONNRESET after a reset, ECONNREFUSED after a failed connect; reported once. */
  error = 0;
  /** A connection that was reset: reads and writes fail with ECONNRESET/EPIPE. */
  reset = false;
  /** Who made the socket (SO_PEERCRED for the other end), and the other end's. */
  readonly cred: Cred;
  peerCred: Cred | null = null;
  /** TCP: a connect waiting for room in a listener's backlog, and the address it was made to. */
  private connecting: { listener: LocalSocket; dest: SockAddr } | null = null;
  /** AF_UNIX: the key of this socket's name in the Network, and of a datagram socket's destination. */
  unixKey: string | null = null;
  remoteKey: string | null = null;
  /** A non-blocking TCP connect completed and no connect() has been told yet. */
  private connectUnreported = false;
  /** Made by a listener for a connection (it shares the listener's port: it holds no port of its own). */
  accepted = false;
  /** IPV6_V6ONLY; TCP_NODELAY and the other per-protocol options are kept in `protoOpts`. */
  v6only = false;
  readonly protoOpts = new Map<string, Uint8Array>();
  constructor(
    readonly net: Network,
    domain: number,
    type: number,
    protocol: number,
    cred: Cred,
    mem: GuestMemory,
    stop: StopSignal,
  ) {
    super(mem, stop);
    this.domain = domain;
    this.type = type;
    this.protocol = protocol;
    this.cred = cred;
    net.sockets++;
  }

  get isStream(): boolean {
    return this.type !== SOCK_DGRAM;
  }
  get isInet(): boolean {
    return this.domain !== AF_UNIX;
  }
  get proto(): 'tcp' | 'udp' | 'unix' {
    return this.domain === AF_UNIX ? 'unix' : this.type === SOCK_STREAM ? 'tcp' : 'udp';
  }

  /** How many more bytes this socket takes in its receive queue. */
  room(): number {
    return this.opts.rcvBuf - this.rxBytes;
  }

  override hostWatch(dir: 'in' | 'out'): number[] {
    if (dir === 'in' && this.state === 'listening') return this.net.publishedFds(this);
    return [];
  }

  // ---- names ----

  /** bind(): `unixKey` is the name's key for an AF_UNIX address (the caller made a path name's inode). */
  bind(addr: SockAddr, unixKey: string | null): number {
    if (this.state === 'closed') return -E.EINVAL;
    if (this.local !== null && !(this.domain === AF_UNIX && (this.local as UnixAddr).kind === 'unnamed')) return -E.EINVAL; // already bound
    let r: number;
    if (this.domain === AF_UNIX) {
      if (addr.family !== AF_UNIX) return -E.EINVAL;
      r = addr.kind === 'unnamed' ? this.net.autobind(this) : this.net.bindUnix(this, addr, unixKey!);
    } else {
      r = this.net.bindInet(this, addr as InetAddr);
    }
    if (r < 0) return r;
    if (this.state === 'new') this.state = 'bound';
    return 0;
  }

  listen(backlog: number): number {
    if (!this.isStream) return -E.EOPNOTSUPP;
    if (this.state === 'connected' || this.state === 'connecting') return -E.EINVAL;
    if (this.local === null) {
      const r = this.net.autobind(this);
      if (r < 0) return r;
    }
    this.backlogMax = Math.min(Math.max(backlog, 0), SOMAXCONN);
    if (this.state !== 'listening') {
      const r = this.net.startListening(this);
      if (r < 0) return r;
    }
    this.state = 'listening';
    return 0;
  }

  // ---- connections ----

  connect(addr: SockAddr, unixKey: string | null, nonblock: boolean): number | Again {
    if (!this.isStream) return this.connectDgram(addr, unixKey);
    if (this.state === 'listening') return -E.EINVAL;
    if (this.state === 'connected') {
      // A non-blocking TCP connect that completed: the next connect() says so once.
      if (this.connectUnreported) {
        this.connectUnreported = false;
        return 0;
      }
      return -E.EISCONN;
    }
    if (this.state === 'closed') return -E.EINVAL;
    if (this.connecting) {
      // A connect in progress: it completes when the listener has room.
      const r = this.tryEnter(this.connecting.listener, this.connecting.dest);
      if (r === 0) return nonblock ? -E.EISCONN : 0;
      if (r === AGAIN) return nonblock ? -E.EALREADY : AGAIN;
      return r;
    }
    const found = this.net.findListener(this, addr, unixKey);
    const tcpNonblock = nonblock && this.proto === 'tcp';
    if (typeof found === 'number') {
      // TCP answers a non-blocking connect at once and reports a refusal later (SO_ERROR, POLLERR).
      if (tcpNonblock && found === -E.ECONNREFUSED) {
        this.error = E.ECONNREFUSED;
        return -E.EINPROGRESS;
      }
      return found;
    }
    const r = this.tryEnter(found.listener, found.dest);
    if (r === 0 && tcpNonblock) {
      this.connectUnreported = true;
      return -E.EINPROGRESS;
    }
    if (r !== AGAIN) return r;
    if (this.proto === 'unix') return nonblock ? -E.EAGAIN : AGAIN;
    // TCP: the connection waits for room in the backlog (Linux would retry its SYN).
    this.connecting = found;
    this.state = 'connecting';
    return nonblock ? -E.EINPROGRESS : AGAIN;
  }

  /** Join `listener`'s backlog as a new connection: 0, AGAIN when the backlog is full, or -errno. */
  private tryEnter(listener: LocalSocket, dest: SockAddr): number | Again {
    if (listener.state !== 'listening') {
      this.connecting = null;
      this.state = this.local ? 'bound' : 'new';
      return -E.ECONNREFUSED;
    }
    if (listener.backlog.length > listener.backlogMax) return AGAIN;
    if ((this.local === null && (this.isInet || this.opts.passCred)) || (this.isInet && this.local !== null && (this.local as InetAddr).port === 0)) {
      const r = this.net.autobind(this, dest);
      if (r < 0) return r;
    } else if (this.isInet && isWildcard(this.local as InetAddr)) {
      // A socket bound to the any address sends from the loopback address toward its destination.
      const d = dest as InetAddr;
      this.local = { ...(this.local as InetAddr), ip: isV4Mapped(d.ip) ? V4_LOOPBACK.slice() : V6_LOOPBACK.slice() };
    }
    const server = new LocalSocket(this.net, listener.domain, this.type, listener.protocol, listener.cred, this.mem, this.stop);
    server.accepted = true;
    server.opts.rcvBuf = listener.opts.rcvBuf;
    server.opts.sndBuf = listener.opts.sndBuf;
    for (const [k, v] of listener.protoOpts) server.protoOpts.set(k, v);
    server.local = this.net.localFor(listener, dest);
    server.remote = this.local ? this.net.inFamily(this.local, listener.domain) : null;
    this.remote = this.net.inFamily(dest, this.domain);
    LocalSocket.pair(this, server);
    this.peerCred = listener.cred;
    server.peerCred = this.cred;
    this.connecting = null;
    listener.backlog.push(server);
    return 0;
  }

  private connectDgram(addr: SockAddr, unixKey: string | null): number {
    const target = this.net.findDgramTarget(this, addr, unixKey);
    if (typeof target === 'number' && !(this.isInet && target === -E.EINVAL)) return target;
    if (this.local === null) {
      const r = this.net.autobind(this, addr);
      if (r < 0) return r;
    }
    this.remote = this.isInet ? (this.net.reach(this, addr) as InetAddr) : addr;
    this.remoteKey = unixKey;
    this.peer = null;
    this.state = 'connected';
    return 0;
  }

  /** connect(AF_UNSPEC) of a datagram socket: forget the destination. */
  disconnect(): number {
    if (this.isStream) return this.state === 'connected' ? -E.EISCONN : 0;
    this.remote = null;
    this.remoteKey = null;
    this.peer = null;
    if (this.state === 'connected') this.state = this.local ? 'bound' : 'new';
    return 0;
  }

  /** Where a datagram goes: the socketpair's other end, the connected destination, or `to`. */
  private dgramTarget(to: SockAddr | null, toKey: string | null): LocalSocket | null | number {
    if (to === null && this.state === 'connected' && this.remote === null) {
      // A socketpair: the other end itself (gone: ECONNREFUSED, as for a closed name).
      return this.peer && this.peer.state !== 'closed' ? this.peer : -E.ECONNREFUSED;
    }
    const dest = to ?? this.remote;
    if (dest === null) return this.proto === 'udp' ? -E.EDESTADDRREQ : -E.ENOTCONN;
    const t = this.net.findDgramTarget(this, dest, to ? toKey : this.remoteKey);
    if (to === null && t === -E.ECONNREFUSED && this.proto === 'unix') {
      // The connected peer is gone: this send is refused, and the socket is no longer connected.
      this.remote = null;
      this.remoteKey = null;
      this.state = this.local ? 'bound' : 'new';
    }
    if (to === null && t === null && this.proto === 'udp') this.error = E.ECONNREFUSED; // (the ICMP port unreachable, on the next call)
    return t;
  }

  /** Two connected endpoints (socketpair, or a connect to a listener). */
  static pair(a: LocalSocket, b: LocalSocket): void {
    a.peer = b;
    b.peer = a;
    a.state = 'connected';
    b.state = 'connected';
  }

  accept(): LocalSocket | HostSocket | number | Again {
    if (this.state !== 'listening') return -E.EINVAL;
    const s = this.backlog.shift();
    if (s) return s;
    const fromHost = this.net.acceptPublished(this);
    if (fromHost) return fromHost;
    return AGAIN;
  }

  shutdown(how: number): number {
    if (how !== SHUT_RD && how !== SHUT_WR && how !== SHUT_RDWR) return -E.EINVAL;
    if (this.state === 'listening' && this.isStream) {
      // Linux: shutdown of a listener stops it (its pending connections are reset).
      this.stopListening();
      this.state = 'bound';
      return 0;
    }
    if (this.state !== 'connected') return this.proto === 'unix' ? 0 : -E.ENOTCONN;
    if (how !== SHUT_WR) this.rdShut = true;
    if (how !== SHUT_RD) {
      this.wrShut = true;
      if (this.peer) this.peer.eof = true;
    }
    return 0;
  }

  // ---- data ----

  send(a: SendArgs): number | Again {
    if (this.isStream) return this.sendStream(a);
    return this.sendDgram(a);
  }

  private sendStream(a: SendArgs): number | Again {
    if (this.state === 'connecting') return AGAIN;
    if (a.to !== null && this.proto === 'unix' && this.state === 'connected') return -E.EISCONN;
    if (this.reset) return this.takeErrorOr(-E.EPIPE);
    if (this.state !== 'connected') return this.proto === 'tcp' ? -E.EPIPE : -E.ENOTCONN;
    if (this.wrShut || this.peerGone || !this.peer) return -E.EPIPE;
    const peer = this.peer;
    if (peer.rdShut && this.proto === 'unix') return -E.EPIPE;
    const len = a.data.length;
    if (this.type === SOCK_SEQPACKET) {
      if (len > this.opts.sndBuf) return -E.EMSGSIZE;
      if (peer.room() < len && peer.rx.length > 0) return AGAIN;
      peer.take({ data: a.data, off: 0, fds: a.fds, cred: a.cred, from: null });
      return len;
    }
    if (len === 0) return 0;
    const room = peer.room();
    if (room <= 0) return AGAIN;
    const n = Math.min(len, room);
    peer.take({ data: n === len ? a.data : a.data.subarray(0, n), off: 0, fds: a.fds, cred: a.cred, from: null });
    return n;
  }

  private sendDgram(a: SendArgs): number | Again {
    const len = a.data.length;
    if (len > 65_507 && this.proto === 'udp') return -E.EMSGSIZE;
    if (len > this.opts.sndBuf && this.proto === 'unix') return -E.EMSGSIZE;
    if (a.to !== null && this.proto === 'unix' && this.state === 'connected') return -E.EISCONN;
    if (this.local === null && this.isInet) {
      const r = this.net.autobind(this, a.to ?? this.remote ?? undefined);
      if (r < 0) return r;
    }
    const target = this.dgramTarget(a.to, a.toKey);
    if (typeof target === 'number') return target;
    if (target === null) return len; // UDP to a port nobody holds: gone (no ICMP on this loopback)
    if (this.proto === 'unix') {
      // A datagram socket connected elsewhere takes only its peer's datagrams (Linux: EPERM).
      if (target.state === 'connected' && target !== this && target.peer !== this && (target.remoteKey === null || target.remoteKey !== this.unixKey)) return -E.EPERM;
      if (target.rx.length >= UNIX_DGRAM_QLEN || target.room() < len) return AGAIN;
    } else if (target.room() < len || (target.state === 'connected' && target.remote !== null && !sameInet(target.remote, this.net.sourceFor(this, target)))) {
      for (const fd of a.fds ?? []) fd.unref();
      return len; // UDP: a full receive queue, or a socket connected to someone else, drops the datagram
    }
    target.take({ data: a.data, off: 0, fds: a.fds, cred: a.cred, from: this.net.sourceFor(this, target) });
    return len;
  }

  /** Queue a message for this socket to read. */
  take(m: Msg): void {
    this.rx.push(m);
    this.rxBytes += m.data.length - m.off;
  }

  recv(length: number, flags: number): Received | number | Again {
    return this.isStream ? this.recvStream(length, flags) : this.recvDgram(length, flags);
  }

  private recvStream(length: number, flags: number): Received | number | Again {
    const peek = (flags & MSG.PEEK) !== 0;
    if (this.state === 'listening' || this.state === 'new' || this.state === 'bound') return this.proto === 'unix' && this.state !== 'listening' ? -E.EINVAL : -E.ENOTCONN;
    if (this.rx.length === 0) {
      if (this.error) return this.takeErrorOr(0); // a reset is reported once; then EOF
      if (this.eof || this.rdShut || this.state === 'closed') return empty();
      if (this.state === 'connecting') return AGAIN;
      return AGAIN;
    }
    if (this.type === SOCK_SEQPACKET) {
      const m = this.rx[0]!;
      const full = m.data.length - m.off;
      const n = Math.min(full, length);
      const data = m.data.slice(m.off, m.off + n);
      if (!peek) this.drop(1);
      return { data, full, from: null, fds: peek ? null : m.fds, cred: m.cred, flags: n < full ? MSG.TRUNC : MSG.EOR };
    }
    if (flags & MSG.WAITALL && !peek && this.rxBytes < length && !this.eof && !this.rdShut && this.room() > 0) return AGAIN;
    // Stream: bytes from as many messages as fit, but descriptors or credentials only with the first
    // message's bytes (a later message with descriptors waits for the next read, as on Linux).
    const out = new Uint8Array(Math.min(length, this.rxBytes));
    let n = 0;
    let i = 0;
    let fds: OpenFile[] | null = null;
    const cred = this.rx[0]!.cred;
    while (n < out.length && i < this.rx.length) {
      const m = this.rx[i]!;
      if (i > 0 && (m.fds !== null || (this.opts.passCred && !sameCred(m.cred, cred)))) break;
      if (i === 0) fds = m.fds;
      const take = Math.min(out.length - n, m.data.length - m.off);
      out.set(m.data.subarray(m.off, m.off + take), n);
      n += take;
      if (!peek) {
        m.off += take;
        this.rxBytes -= take;
        if (m.fds) m.fds = null; // handed over with these bytes
      }
      if (m.off < m.data.length && !peek) break;
      i++;
    }
    if (!peek) while (this.rx.length && this.rx[0]!.off >= this.rx[0]!.data.length) this.rx.shift();
    return { data: out.subarray(0, n), full: n, from: null, fds: peek ? null : fds, cred, flags: 0 };
  }

  private recvDgram(length: number, flags: number): Received | number | Again {
    const peek = (flags & MSG.PEEK) !== 0;
    if (this.rx.length === 0) {
      if (this.error) return this.takeErrorOr(0);
      if (this.rdShut) return empty();
      return AGAIN;
    }
    const m = this.rx[0]!;
    const full = m.data.length;
    const n = Math.min(full, length);
    const data = m.data.slice(0, n);
    if (!peek) this.drop(1);
    return { data, full, from: m.from, fds: peek ? null : m.fds, cred: m.cred, flags: n < full ? MSG.TRUNC : 0 };
  }

  /** Take the first `count` messages off the queue (their descriptors now belong to the reader). */
  private drop(count: number): void {
    for (const m of this.rx.splice(0, count)) this.rxBytes -= m.data.length - m.off;
  }

  private takeErrorOr(n: number): number {
    const e = this.error;
    this.error = 0;
    return e ? -e : n;
  }

  /** SO_ERROR */
  takeError(): number {
    const e = this.error;
    this.error = 0;
    return e;
  }

  /** FIONREAD/SIOCINQ: bytes ready to read (a datagram socket: the first message's size); -EINVAL for a TCP listener. */
  pending(): number {
    if (this.state === 'listening') return this.proto === 'tcp' ? -E.EINVAL : 0;
    if (!this.isStream || this.type === SOCK_SEQPACKET) return this.rx.length ? this.rx[0]!.data.length - this.rx[0]!.off : 0;
    return this.rxBytes;
  }

  /** SIOCOUTQ: bytes sent and not yet read by the peer. */
  unsent(): number {
    return this.peer?.rxBytes ?? 0;
  }

  pollEvents(): number {
    if (this.state === 'listening') return this.backlog.length > 0 || this.net.publishedReady(this) ? POLLIN : 0;
    if (this.connecting) {
      const r = this.tryEnter(this.connecting.listener, this.connecting.dest);
      if (r === AGAIN) return 0;
      if (typeof r === 'number' && r < 0) {
        this.error = -r;
        return POLLOUT | POLLERR | POLLHUP;
      }
    }
    let ev = 0;
    if (this.error) ev |= POLLERR;
    if (!this.isStream) {
      if (this.rx.length) ev |= POLLIN;
      if (this.rdShut) ev |= POLLIN | POLLRDHUP;
      if (this.proto === 'unix' && this.state === 'connected') {
        const t = this.dgramTarget(null, null);
        if (typeof t !== 'number' && t !== null && t.rx.length < UNIX_DGRAM_QLEN && t.room() > 0) ev |= POLLOUT;
        else if (typeof t === 'number') ev |= POLLOUT | POLLERR;
      } else ev |= POLLOUT;
      return ev;
    }
    if (this.state !== 'connected') return ev | POLLOUT | POLLHUP; // an unconnected stream socket, as Linux
    if (this.rx.length || this.eof || this.rdShut || this.reset) ev |= POLLIN;
    if (this.eof || this.rdShut) ev |= POLLRDHUP;
    if ((this.eof && this.wrShut) || this.reset || (this.peerGone && this.proto === 'unix')) ev |= POLLHUP;
    if (this.peer && !this.wrShut && !this.peerGone && this.peer.room() > 0) ev |= POLLOUT;
    else if (this.peerGone || this.wrShut || this.reset) ev |= POLLOUT; // a write answers at once (EPIPE)
    return ev;
  }

  private stopListening(): void {
    for (const s of this.backlog.splice(0)) s.close(true);
  }

  /** The last fd is closed. */
  release(): void {
    this.close(false);
  }

  /**
   * Close this end: the peer sees EOF, or a reset when unread data is thrown away (or SO_LINGER
   * {1, 0} on TCP), as Linux's unix_release_sock and tcp_close decide.
   */
  close(abort: boolean): void {
    if (this.state === 'closed') return;
    if (this.state === 'listening') this.stopListening();
    const peer = this.peer;
    const unread = this.rx.length > 0;
    for (const m of this.rx.splice(0)) for (const fd of m.fds ?? []) fd.unref();
    this.rxBytes = 0;
    if (peer) {
      peer.peer = null;
      peer.peerGone = true;
      peer.eof = true;
      if (abort || unread || (this.proto === 'tcp' && this.opts.linger[0] === 1 && this.opts.linger[1] === 0)) {
        peer.error = E.ECONNRESET;
        peer.reset = true;
      }
    }
    this.peer = null;
    this.connecting = null;
    this.net.unbind(this);
    this.state = 'closed';
    this.net.sockets--;
  }

  protected override writerCred(): Cred {
    return this.net.caller ?? this.cred;
  }

  sockName(): Uint8Array {
    if (this.local) return encodeSockAddr(this.local);
    if (this.domain === AF_UNIX) return encodeSockAddr({ family: AF_UNIX, kind: 'unnamed', name: new Uint8Array(0) });
    return encodeSockAddr({ family: this.domain === AF_INET ? AF_INET : AF_INET6, ip: new Uint8Array(16), port: 0 }); // the any address, port 0
  }

  peerName(): Uint8Array | number {
    if (this.isStream && (this.state !== 'connected' || (!this.peer && !this.eof))) return -E.ENOTCONN;
    if (!this.isStream && this.state !== 'connected') return -E.ENOTCONN;
    if (this.remote) return encodeSockAddr(this.remote);
    return encodeSockAddr({ family: AF_UNIX, kind: 'unnamed', name: new Uint8Array(0) });
  }

  setOpt(level: number, name: number, value: Uint8Array): number {
    if (level === SOL_SOCKET) return setSocketOption(this.opts, name, value);
    const proto = protoLevel(this, level);
    if (proto === null) return levelError(this, level);
    if (level === SOL_IPV6 && name === IPV6.V6ONLY) {
      const n = intOpt(value);
      if (n === null) return -E.EINVAL;
      if (this.local) return -E.EINVAL; // fixed once bound
      this.v6only = n !== 0;
      return 0;
    }
    if (!knownProtoOption(level, name)) return -E.ENOPROTOOPT;
    if (level === SOL_TCP && name === TCP.CONGESTION) {
      const algo = Buffer.from(value).toString('latin1').replace(/\0.*$/s, '');
      if (algo !== 'cubic' && algo !== 'reno') return -E.ENOENT;
      this.protoOpts.set(`${level}:${name}`, value.slice());
      return 0;
    }
    if (intOpt(value) === null) return -E.EINVAL;
    this.protoOpts.set(`${level}:${name}`, value.slice(0, 4));
    return 0;
  }

  getOpt(level: number, name: number): Uint8Array | number {
    if (level === SOL_SOCKET) {
      return getSocketOption(this.opts, name, this, { acceptConn: this.state === 'listening', takeError: () => this.takeError(), peerCred: this.peerCred });
    }
    const proto = protoLevel(this, level);
    if (proto === null) return levelError(this, level);
    if (level === SOL_IPV6 && name === IPV6.V6ONLY) return intBytes(this.v6only ? 1 : 0);
    if (!knownProtoOption(level, name)) return -E.ENOPROTOOPT;
    const kept = this.protoOpts.get(`${level}:${name}`);
    if (kept) return kept;
    if (level === SOL_TCP) {
      switch (name) {
        case TCP.MAXSEG: return intBytes(65_483);
        case TCP.CONGESTION: return Buffer.from('cubic\0\0\0\0\0\0\0\0\0\0\0', 'latin1');
        case TCP.KEEPIDLE: return intBytes(7200);
        case TCP.KEEPINTVL: return intBytes(75);
        case TCP.KEEPCNT: return intBytes(9);
        case TCP.SYNCNT: return intBytes(6);
        case TCP.INFO: {
          const info = new Uint8Array(232);
          info[0] = this.state === 'connected' ? 1 : this.state === 'listening' ? 10 : 7; // TCP_ESTABLISHED, TCP_LISTEN, TCP_CLOSE
          return info;
        }
        default: return intBytes(0);
      }
    }
    if (level === SOL_IP && name === IP.TTL) return intBytes(64);
    if (level === SOL_IPV6 && name === IPV6.UNICAST_HOPS) return intBytes(64);
    if (level === SOL_IP && name === IP.MTU_DISCOVER) return intBytes(1);
    return intBytes(0);
  }

  /** A line for /proc/net and refusals: what the socket is and where it is connected. */
  describe(): string {
    const name = (a: SockAddr | null): string => (a ? formatSockAddr(a) : '-');
    return `${this.proto} ${this.type === SOCK_SEQPACKET ? 'seqpacket ' : this.type === SOCK_DGRAM && this.proto === 'unix' ? 'dgram ' : ''}${this.state} ${name(this.local)}${this.remote ? ` -> ${name(this.remote)}` : ''}`;
  }
}

function sameInet(a: SockAddr, b: SockAddr | null): boolean {
  if (b === null || a.family === AF_UNIX || b.family === AF_UNIX) return false;
  return a.port === b.port && Buffer.from(a.ip).equals(Buffer.from(b.ip));
}

function empty(): Received {
  return { data: new Uint8Array(0), full: 0, from: null, fds: null, cred: null, flags: 0 };
}

function sameCred(a: Cred | null, b: Cred | null): boolean {
  return a === b || (a !== null && b !== null && a.pid === b.pid && a.uid === b.uid && a.gid === b.gid);
}


/** An option level the socket does not have: EOPNOTSUPP for a level unknown to it, ENOPROTOOPT for a known one of another protocol. */
function levelError(s: LocalSocket, level: number): number {
  if (s.domain === AF_UNIX) return -E.EOPNOTSUPP;
  return level === SOL_TCP || level === SOL_UDP || level === SOL_IP || level === SOL_IPV6 ? -E.ENOPROTOOPT : -E.EOPNOTSUPP;
}

/** The protocol level a socket answers options of (null: not one of its levels). */
function protoLevel(s: LocalSocket, level: number): number | null {
  if (s.domain === AF_UNIX) return null;
  if (level === SOL_TCP) return s.proto === 'tcp' ? level : null;
  if (level === SOL_UDP) return s.proto === 'udp' ? level : null;
  if (level === SOL_IP) return level;
  if (level === SOL_IPV6) return s.domain === AF_INET6 ? level : null;
  return null;
}

const KNOWN_PROTO_OPTIONS: Record<number, number[]> = {
  [SOL_TCP]: Object.values(TCP),
  [SOL_UDP]: [1 /* UDP_CORK */, 100 /* UDP_ENCAP */, 102 /* UDP_NO_CHECK6_TX */, 103 /* UDP_SEGMENT */, 104 /* UDP_GRO */],
  [SOL_IP]: [...Object.values(IP), 8 /* IP_RECVTTL */, 6 /* IP_RECVOPTS */, 7 /* IP_RETOPTS */, 13 /* IP_RECVTOS */, 15 /* IP_FREEBIND */, 19 /* IP_TRANSPARENT */, 32 /* IP_MULTICAST_IF */, 33 /* IP_MULTICAST_TTL */, 34 /* IP_MULTICAST_LOOP */],
  [SOL_IPV6]: [...Object.values(IPV6), 17 /* IPV6_MULTICAST_IF */, 18 /* IPV6_MULTICAST_HOPS */, 23 /* IPV6_MTU_DISCOVER */, 49 /* IPV6_RECVPKTINFO */],
};

function knownProtoOption(level: number, name: number): boolean {
  return KNOWN_PROTO_OPTIONS[level]?.includes(name) ?? false;
}
