/**
 * The sandbox's network: one per sandbox, shared by all its processes. It holds the name spaces
 * sockets bind in (AF_UNIX path and abstract names; the loopback's TCP and UDP ports), the policy
 * (`--net none`: only this loopback; `--net host`: AF_INET/AF_INET6 sockets are host sockets), and
 * the published ports: a host listener on 127.0.0.1:HOST_PORT whose connections a guest listener on
 * PORT accepts.
 *
 * Addresses are kept as 16 bytes (IPv4 mapped into IPv6), so that a dual-stack listener on `::`
 * matches IPv4 connections as Linux's does. The loopback is 127.0.0.0/8 and ::1; any other address
 * is unreachable (ENETUNREACH), and binding one is EADDRNOTAVAIL.
 */
import { E } from '../../abi/errno.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  SOCK_STREAM,
  V4_LOOPBACK,
  V6_LOOPBACK,
  encodeSockAddr,
  isLoopback,
  isV4Mapped,
  isWildcard,
  mapV4,
  type InetAddr,
  type SockAddr,
  type UnixAddr,
} from '../../abi/socket.js';
import * as libc from '../../host/libc.js';
import * as hs from '../../host/sockets.js';
import { MapvisorError } from '../../errors.js';
import type { LocalSocket } from './local.js';
import { HostSocket } from './host.js';
import { POLLIN } from '../files/file.js';
import { hostEvents } from '../files/host.js';

export type NetPolicy = 'none' | 'host';

export interface Publish {
  /** The host's port (127.0.0.1). */
  hostPort: number;
  /** The sandbox's TCP port. */
  port: number;
}

/** A guest port started listening (the Sandbox API's 'listening' event). */
export interface ListeningEvent {
  proto: 'tcp' | 'udp';
  port: number;
  family: 4 | 6;
  /** The host port it is published at, if it is. */
  hostPort?: number;
}

export interface NetworkOptions {
  policy: NetPolicy;
  publish: Publish[];
  onListening?: (e: ListeningEvent) => void;
}

const EPHEMERAL_FIRST = 32768;
const EPHEMERAL_LAST = 60999;
/** Sockets the whole sandbox may hold at once; past it socket() answers ENFILE. */
export const MAX_SOCKETS = 65536;

/** A unix socket address with the name space key the kernel resolved for it (an inode, a path, a name). */
export type UnixKey = string;

export class Network {
  readonly policy: NetPolicy;
  sockets = 0;
  /** Who makes the system call being handled (the kernel sets it): the sender of a plain write(2). */
  caller: { pid: number; uid: number; gid: number } | null = null;
  private readonly unixNames = new Map<UnixKey, LocalSocket>();
  private readonly ports = { tcp: new Map<number, LocalSocket[]>(), udp: new Map<number, LocalSocket[]>() };
  private nextPort = { tcp: EPHEMERAL_FIRST, udp: EPHEMERAL_FIRST };
  private nextAutobind = 1;
  /** Published ports: the sandbox's port -> the host's listener. */
  private readonly published = new Map<number, { hostPort: number; fd: number }>();
  private readonly onListening: ((e: ListeningEvent) => void) | null;

  constructor(o: NetworkOptions) {
    this.policy = o.policy;
    this.onListening = o.onListening ?? null;
    try {
      for (const p of o.publish) this.published.set(p.port, { hostPort: p.hostPort, fd: listenOnHost(p.hostPort) });
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Close the host's listeners (the sandbox ends). */
  close(): void {
    for (const p of this.published.values()) if (p.fd >= 0) libc.close(p.fd);
    this.published.clear();
  }

  // ---- AF_UNIX names ----

  /** bind() of a unix socket: `key` is the name's key (see keyOf), made by the caller for path names. */
  bindUnix(s: LocalSocket, addr: UnixAddr, key: UnixKey): number {
    if (this.unixNames.has(key)) return -E.EADDRINUSE;
    this.unixNames.set(key, s);
    s.local = addr;
    s.unixKey = key;
    return 0;
  }

  /** A unique abstract name of five hex digits (Linux's autobind). */
  private autobindUnix(s: LocalSocket): number {
    for (let i = 0; i < 0x100000; i++) {
      const name = (this.nextAutobind++ & 0xfffff).toString(16).padStart(5, '0');
      const key = `abstract:${s.type}:${name}`;
      if (!this.unixNames.has(key)) return this.bindUnix(s, { family: AF_UNIX, kind: 'abstract', name: Buffer.from(name, 'latin1') }, key);
    }
    return -E.EADDRINUSE;
  }

  // ---- the loopback's ports ----

  /** bind() of an inet socket. */
  bindInet(s: LocalSocket, a: InetAddr): number {
    if (a.family !== s.domain) return s.domain === AF_INET6 ? -E.EINVAL : -E.EAFNOSUPPORT;
    if (s.domain === AF_INET6 && isV4Mapped(a.ip) && s.v6only) return -E.EINVAL;
    if (!isWildcard(a) && !isLoopback(a)) return -E.EADDRNOTAVAIL;
    const proto = s.proto as 'tcp' | 'udp';
    if (a.port === 0) return this.bindEphemeral(s, a.ip);
    if (a.port < 1024 && s.cred.uid !== 0) return -E.EACCES;
    if (this.conflicts(s, a.ip, a.port)) return -E.EADDRINUSE;
    this.addPort(proto, a.port, s);
    s.local = { family: s.domain as 2 | 10, ip: a.ip.slice(), port: a.port };
    return 0;
  }

  private bindEphemeral(s: LocalSocket, ip: Uint8Array): number {
    const proto = s.proto as 'tcp' | 'udp';
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < span; i++) {
      const port = EPHEMERAL_FIRST + ((this.nextPort[proto] - EPHEMERAL_FIRST + i) % span);
      if (this.ports[proto].has(port)) continue;
      this.nextPort[proto] = port + 1 > EPHEMERAL_LAST ? EPHEMERAL_FIRST : port + 1;
      this.addPort(proto, port, s);
      s.local = { family: s.domain as 2 | 10, ip: ip.slice(), port };
      return 0;
    }
    return -E.EADDRINUSE; // (Linux: EAGAIN for a connect, EADDRINUSE for a bind)
  }

  private addPort(proto: 'tcp' | 'udp', port: number, s: LocalSocket): void {
    const list = this.ports[proto].get(port);
    if (list) list.push(s);
    else this.ports[proto].set(port, [s]);
  }

  /** Does binding (ip, port) clash with a socket already bound there (SO_REUSEADDR/SO_REUSEPORT as Linux)? */
  private conflicts(s: LocalSocket, ip: Uint8Array, port: number): boolean {
    for (const o of this.ports[s.proto as 'tcp' | 'udp'].get(port) ?? []) {
      if (o === s || !o.local) continue;
      if (!overlaps(ip, s.domain, s.v6only, (o.local as InetAddr).ip, o.domain, o.v6only)) continue;
      if (s.opts.reusePort && o.opts.reusePort) continue;
      if (s.opts.reuseAddr && o.opts.reuseAddr && o.state !== 'listening') continue;
      return true;
    }
    return false;
  }

  /** Give an unbound socket a name: an abstract unix name, or an ephemeral port on the loopback. */
  autobind(s: LocalSocket, toward?: SockAddr): number {
    if (s.domain === AF_UNIX) return this.autobindUnix(s);
    const ip = toward && toward.family !== AF_UNIX ? this.sourceIp(s, toward as InetAddr) : new Uint8Array(16);
    return this.bindEphemeral(s, ip);
  }

  /** The loopback address a socket sends from toward `dest`. */
  private sourceIp(s: LocalSocket, dest: InetAddr): Uint8Array {
    if (isV4Mapped(dest.ip)) return V4_LOOPBACK.slice();
    return s.domain === AF_INET6 ? V6_LOOPBACK.slice() : V4_LOOPBACK.slice();
  }

  /** The address as the sandbox's policy allows it to be reached: 0.0.0.0 is 127.0.0.1, :: is ::1. */
  reach(s: LocalSocket, a: SockAddr): InetAddr | number {
    if (a.family === AF_UNIX) return -E.EINVAL;
    if (s.domain === AF_INET && a.family !== AF_INET) return -E.EAFNOSUPPORT;
    if (s.domain === AF_INET6 && a.family !== AF_INET6) return -E.EAFNOSUPPORT;
    if (s.domain === AF_INET6 && isV4Mapped(a.ip) && s.v6only) return -E.ENETUNREACH;
    if (isWildcard(a)) return { ...a, ip: a.family === AF_INET || isV4Mapped(a.ip) ? V4_LOOPBACK.slice() : V6_LOOPBACK.slice() };
    if (!isLoopback(a)) return -E.ENETUNREACH;
    return a;
  }

  /** The listener a stream connect to `a` reaches, or -errno (ECONNREFUSED: nobody listens there). */
  findListener(s: LocalSocket, a: SockAddr, unixKey: UnixKey | null): { listener: LocalSocket; dest: SockAddr } | number {
    if (s.domain === AF_UNIX) {
      const l = unixKey === null ? undefined : this.unixNames.get(unixKey);
      if (!l) return -E.ECONNREFUSED;
      if (l.type !== s.type) return -E.EPROTOTYPE; // (a path's inode is shared by all types)
      if (l.state !== 'listening') return -E.ECONNREFUSED;
      return { listener: l, dest: l.local! };
    }
    const dest = this.reach(s, a);
    if (typeof dest === 'number') return dest;
    if (dest.port === 0) return -E.ECONNREFUSED;
    for (const l of this.ports.tcp.get(dest.port) ?? []) {
      if (l.state !== 'listening' || !l.local) continue;
      if (matches(dest.ip, l)) return { listener: l, dest };
    }
    return -E.ECONNREFUSED;
  }

  /** The new connection's local address: the address the client reached, in the listener's family. */
  localFor(listener: LocalSocket, dest: SockAddr): SockAddr {
    if (listener.domain === AF_UNIX) return listener.local!;
    const d = dest as InetAddr;
    return { family: listener.domain as 2 | 10, ip: d.ip.slice(), port: (listener.local as InetAddr).port };
  }

  /** An address as a socket of `domain` sees it (IPv4 addresses are mapped for an AF_INET6 socket). */
  inFamily(a: SockAddr, domain: number): SockAddr {
    if (a.family === AF_UNIX) return a;
    return { family: domain === AF_INET6 ? AF_INET6 : AF_INET, ip: a.ip, port: a.port };
  }

  /** A stream socket starts listening (the 'listening' event; a published port is said to be ready). */
  startListening(s: LocalSocket): number {
    if (s.proto === 'tcp' && s.local) {
      const port = (s.local as InetAddr).port;
      const pub = this.published.get(port);
      this.onListening?.({ proto: 'tcp', port, family: s.domain === AF_INET6 ? 6 : 4, ...(pub ? { hostPort: pub.hostPort } : {}) });
    }
    return 0;
  }

  /** The host's listener whose connections `s` accepts (a TCP listener on a published port). */
  private publishedFor(s: LocalSocket): { hostPort: number; fd: number } | undefined {
    if (s.proto !== 'tcp' || s.state !== 'listening' || !s.local) return undefined;
    const a = s.local as InetAddr;
    // Host connections arrive as if from 127.0.0.1: a listener that 127.0.0.1 reaches takes them.
    if (!matches(V4_LOOPBACK, s)) return undefined;
    return this.published.get(a.port);
  }

  publishedFds(s: LocalSocket): number[] {
    const p = this.publishedFor(s);
    return p ? [p.fd] : [];
  }

  publishedReady(s: LocalSocket): boolean {
    const p = this.publishedFor(s);
    return p !== undefined && (hostEvents(p.fd, POLLIN) & POLLIN) !== 0;
  }

  /** A connection from the host to a published port, as a socket for `listener`'s accept; null: none waiting. */
  acceptPublished(listener: LocalSocket): HostSocket | null {
    const p = this.publishedFor(listener);
    if (!p) return null;
    const addr = Buffer.alloc(128);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(128);
    const fd = hs.accept4(p.fd, addr, len, 0o4000 | 0o2000000); // SOCK_NONBLOCK | SOCK_CLOEXEC
    if (fd < 0) return null;
    const peerPort = addr.readUInt16BE(2);
    const local = this.inFamily({ family: AF_INET, ip: V4_LOOPBACK.slice(), port: (listener.local as InetAddr).port }, listener.domain);
    const remote = this.inFamily({ family: AF_INET, ip: V4_LOOPBACK.slice(), port: peerPort }, listener.domain);
    return HostSocket.accepted(fd, listener, encodeSockAddr(local), encodeSockAddr(remote));
  }

  // ---- datagrams ----

  /** Where a datagram to `a` goes: a socket, null (UDP: nobody holds the port: dropped), or -errno. */
  findDgramTarget(s: LocalSocket, a: SockAddr, unixKey: UnixKey | null): LocalSocket | null | number {
    if (s.domain === AF_UNIX) {
      const t = unixKey === null ? undefined : this.unixNames.get(unixKey);
      if (!t || t.state === 'closed') return -E.ECONNREFUSED;
      if (t.type !== s.type) return -E.EPROTOTYPE;
      return t;
    }
    const dest = this.reach(s, a);
    if (typeof dest === 'number') return dest;
    if (dest.port === 0) return -E.EINVAL;
    for (const t of this.ports.udp.get(dest.port) ?? []) if (matches(dest.ip, t)) return t;
    return null;
  }

  /** The sender's address as the receiver reports it. */
  sourceFor(sender: LocalSocket, target: LocalSocket): SockAddr | null {
    if (!sender.local) return null;
    return this.inFamily(sender.local, target.domain);
  }

  /** A socket is closed: its names go. */
  unbind(s: LocalSocket): void {
    if (s.unixKey !== null && this.unixNames.get(s.unixKey) === s) this.unixNames.delete(s.unixKey);
    if (s.isInet && s.local && !s.accepted) {
      const proto = s.proto as 'tcp' | 'udp';
      const port = (s.local as InetAddr).port;
      const list = this.ports[proto].get(port);
      if (list) {
        const rest = list.filter((x) => x !== s);
        if (rest.length) this.ports[proto].set(port, rest);
        else this.ports[proto].delete(port);
      }
    }
  }
}

/** Does a socket bound at `l` take traffic for `ip` (its own address, or a wildcard that covers it)? */
function matches(ip: Uint8Array, l: LocalSocket): boolean {
  const a = l.local as InetAddr;
  if (!isWildcard(a)) return Buffer.from(a.ip).equals(Buffer.from(ip));
  if (l.domain === AF_INET) return isV4Mapped(ip);
  return !isV4Mapped(ip) || !l.v6only;
}

/** Do two bindings cover a common address? */
function overlaps(a: Uint8Array, aDomain: number, aV6only: boolean, b: Uint8Array, bDomain: number, bV6only: boolean): boolean {
  const wild = (ip: Uint8Array, domain: number): boolean => (domain === AF_INET ? isV4Mapped(ip) && ip[12] === 0 && ip[13] === 0 && ip[14] === 0 && ip[15] === 0 : ip.every((x) => x === 0));
  const covers = (ip: Uint8Array, domain: number, v6only: boolean, other: Uint8Array): boolean => {
    if (!wild(ip, domain)) return Buffer.from(ip).equals(Buffer.from(other));
    if (domain === AF_INET) return isV4Mapped(other);
    return !isV4Mapped(other) || !v6only;
  };
  if (wild(a, aDomain) && wild(b, bDomain)) {
    // Two wildcards: 0.0.0.0 and :: clash unless the IPv6 one is v6-only.
    if (aDomain === bDomain) return true;
    return aDomain === AF_INET6 ? !aV6only : !bV6only;
  }
  return covers(a, aDomain, aV6only, b) || covers(b, bDomain, bV6only, a);
}

/** A non-blocking host listener on 127.0.0.1:port for a published port. */
function listenOnHost(port: number): number {
  const fd = hs.socket(AF_INET, SOCK_STREAM | 0o4000 | 0o2000000, 0);
  if (fd < 0) throw new MapvisorError('EPUBLISH', `cannot make a host socket for --publish ${port} (errno ${libc.errno()})`, 'check the host allows sockets');
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  hs.setsockopt(fd, 1, 2, one, 4); // SO_REUSEADDR
  const addr = Buffer.from(encodeSockAddr({ family: AF_INET, ip: mapV4(new Uint8Array([127, 0, 0, 1])), port }));
  if (hs.bind(fd, addr, addr.length) < 0 || hs.listen(fd, 128) < 0) {
    const err = libc.errno();
    libc.close(fd);
    const why = err === E.EADDRINUSE ? 'is already in use on the host' : err === E.EACCES ? 'needs privileges on the host' : `cannot be listened on (errno ${err})`;
    throw new MapvisorError('EPUBLISH', `host port ${port} ${why}`, 'publish at another host port: --publish OTHER_PORT:PORT');
  }
  return fd;
}
