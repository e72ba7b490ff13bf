/**
 * The Linux socket ABI on x86-64: address families, socket types, option levels and names, message
 * flags, and the byte layouts of sockaddr_un/in/in6, msghdr, mmsghdr, cmsghdr, ucred and linger.
 * Values from <linux/socket.h>, <asm-generic/socket.h>, <linux/in.h>, <linux/in6.h>, <linux/tcp.h>.
 */

import { E } from './errno.js';

export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_TYPE_MASK = 0xf;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;

export const SOL_SOCKET = 1;
export const SOL_TCP = IPPROTO_TCP;
export const SOL_UDP = IPPROTO_UDP;
export const SOL_IP = IPPROTO_IP;
export const SOL_IPV6 = IPPROTO_IPV6;

export const SO = {
  DEBUG: 1,
  REUSEADDR: 2,
  TYPE: 3,
  ERROR: 4,
  DONTROUTE: 5,
  BROADCAST: 6,
  SNDBUF: 7,
  RCVBUF: 8,
  KEEPALIVE: 9,
  OOBINLINE: 10,
  NO_CHECK: 11,
  PRIORITY: 12,
  LINGER: 13,
  BSDCOMPAT: 14,
  REUSEPORT: 15,
  PASSCRED: 16,
  PEERCRED: 17,
  RCVLOWAT: 18,
  SNDLOWAT: 19,
  RCVTIMEO: 20,
  SNDTIMEO: 21,
  BINDTODEVICE: 25,
  TIMESTAMP: 29,
  ACCEPTCONN: 30,
  PEERSEC: 31,
  SNDBUFFORCE: 32,
  RCVBUFFORCE: 33,
  PASSSEC: 34,
  MARK: 36,
  PROTOCOL: 38,
  DOMAIN: 39,
  RXQ_OVFL: 40,
  PEEK_OFF: 42,
  BUSY_POLL: 46,
  INCOMING_CPU: 49,
  COOKIE: 57,
  ZEROCOPY: 60,
} as const;

export const TCP = {
  NODELAY: 1,
  MAXSEG: 2,
  CORK: 3,
  KEEPIDLE: 4,
  KEEPINTVL: 5,
  KEEPCNT: 6,
  SYNCNT: 7,
  LINGER2: 8,
  DEFER_ACCEPT: 9,
  WINDOW_CLAMP: 10,
  INFO: 11,
  QUICKACK: 12,
  CONGESTION: 13,
  USER_TIMEOUT: 18,
  FASTOPEN: 23,
  NOTSENT_LOWAT: 25,
} as const;

export const IP = { TOS: 1, TTL: 2, HDRINCL: 3, OPTIONS: 4, RECVERR: 11, MTU_DISCOVER: 10, BIND_ADDRESS_NO_PORT: 24 } as const;
export const IPV6 = { UNICAST_HOPS: 16, MULTICAST_LOOP: 19, V6ONLY: 26, RECVERR: 25, TCLASS: 67 } as const;

export const MSG = {
  OOB: 0x1,
  PEEK: 0x2,
  DONTROUTE: 0x4,
  CTRUNC: 0x8,
  TRUNC: 0x20,
  DONTWAIT: 0x40,
  EOR: 0x80,
  WAITALL: 0x100,
  CONFIRM: 0x800,
  ERRQUEUE: 0x2000,
  NOSIGNAL: 0x4000,
  MORE: 0x8000,
  WAITFORONE: 0x10000,
  FASTOPEN: 0x20000000,
  CMSG_CLOEXEC: 0x40000000,
} as const;

export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;
/** Linux's limit on fds in one SCM_RIGHTS message (SCM_MAX_FD). */
export const SCM_MAX_FD = 253;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

export const SOMAXCONN = 4096;

/** struct sockaddr_un: sa_family_t sun_family; char sun_path[108]. */
export const SOCKADDR_UN_SIZE = 110;
export const SUN_PATH_OFFSET = 2;
/** struct sockaddr_in: family, port (big-endian), addr (4), zero (8). */
export const SOCKADDR_IN_SIZE = 16;
/** struct sockaddr_in6: family, port, flowinfo, addr (16), scope_id. */
export const SOCKADDR_IN6_SIZE = 28;
export const SOCKADDR_STORAGE_SIZE = 128;

/** struct msghdr: name, namelen (+pad), iov, iovlen, control, controllen, flags (+pad). */
export const MSGHDR = { name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48, size: 56 } as const;
/** struct mmsghdr: a msghdr, then the bytes moved (+pad). */
export const MMSGHDR = { hdr: 0, len: 56, size: 64 } as const;
/** struct cmsghdr: len (size_t), level, type; data follows, each header and data aligned to 8. */
export const CMSGHDR = { len: 0, level: 8, type: 12, size: 16 } as const;
/** struct ucred: pid, uid, gid. */
export const UCRED_SIZE = 12;
/** struct linger: l_onoff, l_linger. */
export const LINGER_SIZE = 8;

export const cmsgAlign = (n: number): number => (n + 7) & ~7;
export const cmsgSpace = (dataLen: number): number => CMSGHDR.size + cmsgAlign(dataLen);
export const cmsgLen = (dataLen: number): number => CMSGHDR.size + dataLen;

/** A socket address as the kernel keeps it. */
export type SockAddr = UnixAddr | InetAddr;

export interface UnixAddr {
  readonly family: typeof AF_UNIX;
  /** 'path': a file name; 'abstract': a name in the abstract namespace; 'unnamed': none. */
  readonly kind: 'path' | 'abstract' | 'unnamed';
  /** The path's bytes (no NUL), or the abstract name's bytes (without the leading NUL). */
  readonly name: Uint8Array;
}

export interface InetAddr {
  readonly family: typeof AF_INET | typeof AF_INET6;
  /** 16 bytes: the IPv6 address, or the IPv4 address mapped (::ffff:a.b.c.d). */
  readonly ip: Uint8Array;
  readonly port: number;
  readonly flowinfo?: number;
  readonly scopeId?: number;
}

/** Decode a sockaddr the program passed; -EINVAL/-EAFNOSUPPORT as Linux answers a bad one. */
export function decodeSockAddr(b: Uint8Array, expectFamily: number): SockAddr | number {
  if (b.length < 2) return -E.EINVAL;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = dv.getUint16(0, true);
  if (expectFamily === AF_UNIX) {
    if (family !== AF_UNIX) return -E.EINVAL;
    if (b.length > SOCKADDR_UN_SIZE) return -E.EINVAL;
    const path = b.subarray(SUN_PATH_OFFSET);
    if (path.length === 0) return { family: AF_UNIX, kind: 'unnamed', name: new Uint8Array(0) };
    if (path[0] === 0) return { family: AF_UNIX, kind: 'abstract', name: path.slice(1) };
    const nul = path.indexOf(0);
    return { family: AF_UNIX, kind: 'path', name: path.slice(0, nul < 0 ? path.length : nul) };
  }
  if (family === AF_INET) {
    if (b.length < SOCKADDR_IN_SIZE) return -E.EINVAL;
    return { family: AF_INET, ip: mapV4(b.subarray(4, 8)), port: dv.getUint16(2, false) };
  }
  if (family === AF_INET6) {
    if (b.length < 24) return -E.EINVAL; // (SIN6_LEN_RFC2133: without the scope id)
    return { family: AF_INET6, ip: b.slice(8, 24), port: dv.getUint16(2, false), flowinfo: dv.getUint32(4, false), scopeId: b.length >= 28 ? dv.getUint32(24, true) : 0 };
  }
  return family === AF_UNSPEC ? { family: expectFamily as 2 | 10, ip: new Uint8Array(16), port: 0 } : -E.EAFNOSUPPORT;
}

/** Encode an address as Linux returns it (getsockname, accept, recvfrom): the bytes and the length. */
export function encodeSockAddr(a: SockAddr): Uint8Array {
  if (a.family === AF_UNIX) {
    const extra = a.kind === 'path' ? 1 : a.kind === 'abstract' ? 1 : 0;
    const out = new Uint8Array(SUN_PATH_OFFSET + a.name.length + extra);
    new DataView(out.buffer).setUint16(0, AF_UNIX, true);
    if (a.kind === 'path') out.set(a.name, SUN_PATH_OFFSET); // then the NUL
    else if (a.kind === 'abstract') out.set(a.name, SUN_PATH_OFFSET + 1); // after the leading NUL
    return out;
  }
  if (a.family === AF_INET) {
    const out = new Uint8Array(SOCKADDR_IN_SIZE);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, AF_INET, true);
    dv.setUint16(2, a.port, false);
    out.set(a.ip.subarray(12, 16), 4);
    return out;
  }
  const out = new Uint8Array(SOCKADDR_IN6_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, AF_INET6, true);
  dv.setUint16(2, a.port, false);
  dv.setUint32(4, a.flowinfo ?? 0, false);
  out.set(a.ip, 8);
  dv.setUint32(24, a.scopeId ?? 0, true);
  return out;
}

/** ::ffff:a.b.c.d for an IPv4 address. */
export function mapV4(v4: Uint8Array): Uint8Array {
  const ip = new Uint8Array(16);
  ip[10] = 0xff;
  ip[11] = 0xff;
  ip.set(v4.subarray(0, 4), 12);
  return ip;
}

/** Is the 16-byte address an IPv4-mapped one? */
export function isV4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

/** The any address (0.0.0.0 mapped, or ::). */
export function isWildcard(a: InetAddr): boolean {
  if (a.family === AF_INET) return a.ip[12] === 0 && a.ip[13] === 0 && a.ip[14] === 0 && a.ip[15] === 0;
  return a.ip.every((x) => x === 0);
}

/** 127.0.0.0/8 (plain or mapped) or ::1. */
export function isLoopback(a: InetAddr): boolean {
  if (a.family === AF_INET || isV4Mapped(a.ip)) return a.ip[12] === 127;
  for (let i = 0; i < 15; i++) if (a.ip[i] !== 0) return false;
  return a.ip[15] === 1;
}

export const V4_LOOPBACK = mapV4(new Uint8Array([127, 0, 0, 1]));
export const V6_LOOPBACK = (() => {
  const ip = new Uint8Array(16);
  ip[15] = 1;
  return ip;
})();

/** A printable form of an address (for /proc and messages). */
export function formatSockAddr(a: SockAddr): string {
  if (a.family === AF_UNIX) {
    const name = Buffer.from(a.name).toString('latin1');
    return a.kind === 'path' ? name : a.kind === 'abstract' ? `@${name}` : '(unnamed)';
  }
  if (a.family === AF_INET || isV4Mapped(a.ip)) return `${a.ip[12]}.${a.ip[13]}.${a.ip[14]}.${a.ip[15]}:${a.port}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((a.ip[i]! << 8) | a.ip[i + 1]!).toString(16));
  return `[${words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]:${a.port}`;
}
