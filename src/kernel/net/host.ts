/**
 * Sockets that are host sockets: a connection from the host to a published port (accepted by a guest
 * listener), and every AF_INET/AF_INET6 socket under `--net host`. The host fd is always
 * non-blocking; the program's blocking is the kernel's (socket.ts waitFor), so a stop or pause is
 * never stuck in a host call. Addresses and option values keep Linux's layouts both sides, so they
 * pass through unchanged.
 */
import { E } from '../../abi/errno.js';
import { MSG, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCKADDR_STORAGE_SIZE, SOL_SOCKET, SO, decodeSockAddr, encodeSockAddr, type SockAddr } from '../../abi/socket.js';
import * as libc from '../../host/libc.js';
import * as hs from '../../host/sockets.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { StopSignal } from '../files/host.js';
import { POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP } from '../files/file.js';
import { hostEvents } from '../files/host.js';
import { AGAIN, SocketFile, type Again, type Received, type SendArgs } from './socket.js';
import type { LocalSocket } from './local.js';

export class HostSocket extends SocketFile {
  readonly hostFd: number;
  readonly domain: number;
  readonly type: number;
  readonly protocol: number;
  /** A published connection's addresses as the program sees them (null: ask the host). */
  private readonly names: { local: Uint8Array; remote: Uint8Array } | null;
  /** A blocking connect in progress. */
  private connecting = false;
  private listening = false;

  constructor(fd: number, domain: number, type: number, protocol: number, mem: GuestMemory, stop: StopSignal, names: { local: Uint8Array; remote: Uint8Array } | null) {
    super(mem, stop);
    this.hostFd = fd;
    this.domain = domain;
    this.type = type;
    this.protocol = protocol;
    this.names = names;
  }

  /** `--net host`: a new host socket; -errno when the host refuses. */
  static open(domain: number, type: number, protocol: number, mem: GuestMemory, stop: StopSignal): HostSocket | number {
    const fd = hs.socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
    if (fd < 0) return -libc.errno();
    return new HostSocket(fd, domain, type, protocol, mem, stop, null);
  }

  /** A host connection to a published port, for `listener`'s accept. */
  static accepted(fd: number, listener: LocalSocket, local: Uint8Array, remote: Uint8Array): HostSocket {
    return new HostSocket(fd, listener.domain, listener.type, listener.protocol, listener.memory, listener.stopSignal, { local, remote });
  }

  override hostWatch(): number[] {
    return [this.hostFd];
  }

  bind(addr: SockAddr): number {
    const b = Buffer.from(encodeSockAddr(addr));
    return hs.bind(this.hostFd, b, b.length) < 0 ? -libc.errno() : 0;
  }

  listen(backlog: number): number {
    if (hs.listen(this.hostFd, backlog) < 0) return -libc.errno();
    this.listening = true;
    return 0;
  }

  connect(addr: SockAddr, _unixKey: string | null, nonblock: boolean): number | Again {
    if (this.connecting) {
      if (!(hostEvents(this.hostFd, POLLOUT) & (POLLOUT | POLLERR | POLLHUP))) return nonblock ? -E.EALREADY : AGAIN;
      this.connecting = false;
      const err = this.takeError();
      return err ? -err : 0;
    }
    const b = Buffer.from(encodeSockAddr(addr));
    if (hs.connect(this.hostFd, b, b.length) === 0) return 0;
    const err = libc.errno();
    if (err !== E.EINPROGRESS) return -err;
    if (nonblock) return -E.EINPROGRESS;
    this.connecting = true;
    return AGAIN;
  }

  disconnect(): number {
    const b = Buffer.alloc(16); // AF_UNSPEC
    return hs.connect(this.hostFd, b, b.length) < 0 ? -libc.errno() : 0;
  }

  accept(): HostSocket | number | Again {
    if (!this.listening) return -E.EINVAL;
    const fd = hs.accept4(this.hostFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return new HostSocket(fd, this.domain, this.type, this.protocol, this.mem, this.stop, null);
    const err = libc.errno();
    return err === E.EAGAIN ? AGAIN : -err;
  }

  shutdown(how: number): number {
    return hs.shutdown(this.hostFd, how) < 0 ? -libc.errno() : 0;
  }

  sockName(): Uint8Array | number {
    if (this.names) return this.names.local;
    return this.nameOf(hs.getsockname);
  }

  peerName(): Uint8Array | number {
    if (this.names) return this.names.remote;
    return this.nameOf(hs.getpeername);
  }

  private nameOf(call: (fd: number, addr: Buffer, len: Buffer) => number): Uint8Array | number {
    const addr = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(SOCKADDR_STORAGE_SIZE);
    if (call(this.hostFd, addr, len) < 0) return -libc.errno();
    return new Uint8Array(addr.subarray(0, Math.min(len.readUInt32LE(0), SOCKADDR_STORAGE_SIZE)));
  }

  getOpt(level: number, name: number, room: number): Uint8Array | number {
    const v = Buffer.alloc(Math.max(4, Math.min(room, 1024)));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(v.length);
    if (hs.getsockopt(this.hostFd, level, name, v, len) < 0) return -libc.errno();
    return new Uint8Array(v.subarray(0, len.readUInt32LE(0)));
  }

  setOpt(level: number, name: number, value: Uint8Array): number {
    // The host fd stays non-blocking and the timeouts are the kernel's own (waitFor).
    if (level === SOL_SOCKET && (name === SO.RCVTIMEO || name === SO.SNDTIMEO)) return 0;
    const v = Buffer.from(value);
    return hs.setsockopt(this.hostFd, level, name, v, v.length) < 0 ? -libc.errno() : 0;
  }

  takeError(): number {
    const v = this.getOpt(SOL_SOCKET, SO.ERROR, 4);
    return typeof v === 'number' ? -v : new DataView(v.buffer, v.byteOffset, 4).getInt32(0, true);
  }

  send(a: SendArgs): number | Again {
    const to = a.to ? Buffer.from(encodeSockAddr(a.to)) : null;
    const n = hs.sendto(this.hostFd, Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength), a.data.length, (a.flags & ~MSG.DONTWAIT) | MSG.NOSIGNAL | MSG.DONTWAIT, to, to?.length ?? 0);
    if (n >= 0) return n;
    const err = libc.errno();
    return err === E.EAGAIN ? AGAIN : -err;
  }

  recv(length: number, flags: number): Received | number | Again {
    const buf = Buffer.alloc(Math.min(length, 1 << 20));
    const addr = Buffer.alloc(SOCKADDR_STORAGE_SIZE);
    const alen = Buffer.alloc(4);
    alen.writeUInt32LE(SOCKADDR_STORAGE_SIZE);
    const n = hs.recvfrom(this.hostFd, buf, buf.length, (flags & ~MSG.WAITALL) | MSG.DONTWAIT | (this.type === 2 ? MSG.TRUNC : 0), addr, alen);
    if (n < 0) {
      const err = libc.errno();
      return err === E.EAGAIN ? AGAIN : -err;
    }
    const got = Math.min(n, buf.length);
    const fromLen = alen.readUInt32LE(0);
    const from = fromLen >= 2 && !this.names ? decodeSockAddr(new Uint8Array(addr.subarray(0, fromLen)), this.domain) : null;
    return {
      data: new Uint8Array(buf.subarray(0, got)),
      full: n,
      from: typeof from === 'number' ? null : from,
      fds: null,
      cred: null,
      flags: n > got ? MSG.TRUNC : 0,
    };
  }

  override pollEvents(): number {
    return hostEvents(this.hostFd, POLLIN | POLLOUT | POLLRDHUP);
  }

  pending(): number {
    const v = Buffer.alloc(4);
    return libc.ioctlPtr(this.hostFd, 0x541b, v) < 0 ? 0 : v.readInt32LE(0); // FIONREAD
  }

  unsent(): number {
    const v = Buffer.alloc(4);
    return libc.ioctlPtr(this.hostFd, 0x5411, v) < 0 ? 0 : v.readInt32LE(0); // SIOCOUTQ
  }

  release(): void {
    libc.close(this.hostFd);
  }

  describe(): string {
    return `${this.names ? 'published connection' : 'host socket'} (host fd ${this.hostFd})`;
  }
}
