/**
 * `--console-socket`: a pseudo-terminal for `podman run -it`. The runtime opens a pty pair, sends the
 * master to the engine's Unix socket (SCM_RIGHTS, as runc does) and gives the slave to the VMM as its
 * standard streams and controlling terminal; the program sees the host pty as its terminal.
 */
import koffi from 'koffi';
import { OciError } from './log.js';

const lib = koffi.load('libc.so.6');
const posixOpenpt = lib.func('int posix_openpt(int flags)') as (flags: number) => number;
const grantpt = lib.func('int grantpt(int fd)') as (fd: number) => number;
const unlockpt = lib.func('int unlockpt(int fd)') as (fd: number) => number;
const ptsnameR = lib.func('int ptsname_r(int fd, _Out_ char *buf, size_t len)') as (fd: number, buf: Buffer, len: number) => number;
const open = lib.func('int open(const char *path, int flags, int mode)') as (path: string, flags: number, mode: number) => number;
const close = lib.func('int close(int fd)') as (fd: number) => number;
const socket = lib.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const connect = lib.func('int connect(int fd, void *addr, unsigned int len)') as (fd: number, addr: Buffer, len: number) => number;
const sendmsg = lib.func('intptr_t sendmsg(int fd, void *msg, int flags)') as (fd: number, msg: Buffer, flags: number) => number;
const addressOf = (b: Buffer): bigint => BigInt(koffi.address(b) as number | bigint);

const O_RDWR = 2;
const O_NOCTTY = 0o400;
const O_CLOEXEC = 0o2000000;

/** Open a pty pair: [master fd, slave fd, slave path]. */
export function openPty(): [number, number, string] {
  const master = posixOpenpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) !== 0 || unlockpt(master) !== 0) throw new OciError('cannot open a pseudo-terminal for --console-socket', 'check that /dev/ptmx exists and devpts is mounted');
  const name = Buffer.alloc(128);
  if (ptsnameR(master, name, name.length) !== 0) throw new OciError('cannot name the pseudo-terminal', 'check /dev/pts');
  const path = name.toString('utf8', 0, name.indexOf(0));
  const slave = open(path, O_RDWR | O_NOCTTY, 0);
  if (slave < 0) throw new OciError(`cannot open ${path}`, 'check /dev/pts');
  return [master, slave, path];
}

/** Send `fd` over the Unix socket at `path` (SCM_RIGHTS), with the slave's name as the message. */
export function sendFd(path: string, fd: number, name: string): void {
  const s = socket(1 /* AF_UNIX */, 1 /* SOCK_STREAM */ | O_CLOEXEC, 0);
  if (s < 0) throw new OciError('cannot make a socket for --console-socket', 'report this as a mapvisor bug');
  try {
    const addr = Buffer.alloc(110);
    addr.writeUInt16LE(1, 0);
    addr.write(path, 2);
    if (connect(s, addr, 2 + Buffer.byteLength(path) + 1) !== 0) throw new OciError(`cannot connect to the console socket ${path}`, 'the engine gives --console-socket; is it still listening?');
    const data = Buffer.from(name);
    const iov = Buffer.alloc(16);
    iov.writeBigUInt64LE(addressOf(data), 0);
    iov.writeBigUInt64LE(BigInt(data.length), 8);
    const control = Buffer.alloc(24); // cmsghdr (len 20, padded to 24)
    control.writeBigUInt64LE(20n, 0);
    control.writeInt32LE(1 /* SOL_SOCKET */, 8);
    control.writeInt32LE(1 /* SCM_RIGHTS */, 12);
    control.writeInt32LE(fd, 16);
    const msg = Buffer.alloc(56);
    msg.writeBigUInt64LE(addressOf(iov), 16);
    msg.writeBigUInt64LE(1n, 24);
    msg.writeBigUInt64LE(addressOf(control), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
    if (sendmsg(s, msg, 0) < 0) throw new OciError(`cannot send the terminal to ${path}`, 'the engine gives --console-socket; is it still listening?');
  } finally {
    close(s);
  }
}

const setns = lib.func('int setns(int fd, int nstype)') as (fd: number, nstype: number) => number;
const errnoLoc = lib.func('int *__errno_location()') as () => unknown;
const CLONE_NEWNET = 0x40000000;

/** Make this thread (and the processes it starts) join the network namespace at `path`. */
export function joinNetns(path: string): void {
  const fd = open(path, O_CLOEXEC, 0);
  if (fd < 0) throw new OciError(`cannot open the network namespace ${path}`, 'is the engine\'s network still there? or give podman --network=none');
  try {
    if (setns(fd, CLONE_NEWNET) !== 0) {
      const errno = koffi.decode(errnoLoc(), 'int') as number;
      throw new OciError(`cannot join the network namespace ${path} (errno ${errno})`, 'run as root, or give podman --network=none');
    }
  } finally {
    close(fd);
  }
}

export { close as closeFd };
