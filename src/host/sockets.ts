/**
 * The host C library's socket calls, through koffi (for published ports and `--net host`). Socket
 * addresses and option values are Buffers in Linux's own layouts (src/abi/socket.ts); data moves
 * through Buffers too. Like libc.ts, this module only binds: callers check for -1 and read errno().
 */
import koffi from 'koffi';

const lib = koffi.load('libc.so.6');

export const socket = lib.func('int socket(int domain, int type, int protocol)') as (domain: number, type: number, protocol: number) => number;
export const bind = lib.func('int bind(int fd, void *addr, unsigned int len)') as (fd: number, addr: Buffer, len: number) => number;
export const listen = lib.func('int listen(int fd, int backlog)') as (fd: number, backlog: number) => number;
export const connect = lib.func('int connect(int fd, void *addr, unsigned int len)') as (fd: number, addr: Buffer, len: number) => number;
/** accept4; `addr`/`len` may be null (len: a 4-byte Buffer holding the room, then the length). */
export const accept4 = lib.func('int accept4(int fd, void *addr, void *len, int flags)') as (fd: number, addr: Buffer | null, len: Buffer | null, flags: number) => number;
export const getsockname = lib.func('int getsockname(int fd, void *addr, void *len)') as (fd: number, addr: Buffer, len: Buffer) => number;
export const getpeername = lib.func('int getpeername(int fd, void *addr, void *len)') as (fd: number, addr: Buffer, len: Buffer) => number;
export const setsockopt = lib.func('int setsockopt(int fd, int level, int name, void *value, unsigned int len)') as (
  fd: number,
  level: number,
  name: number,
  value: Buffer,
  len: number,
) => number;
export const getsockopt = lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)') as (
  fd: number,
  level: number,
  name: number,
  value: Buffer,
  len: Buffer,
) => number;
export const shutdown = lib.func('int shutdown(int fd, int how)') as (fd: number, how: number) => number;
export const sendto = lib.func('intptr_t sendto(int fd, void *buf, size_t len, int flags, void *addr, unsigned int addrlen)') as (
  fd: number,
  buf: Buffer,
  len: number,
  flags: number,
  addr: Buffer | null,
  addrLen: number,
) => number;
export const recvfrom = lib.func('intptr_t recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *addrlen)') as (
  fd: number,
  buf: Buffer,
  len: number,
  flags: number,
  addr: Buffer | null,
  addrLen: Buffer | null,
) => number;
