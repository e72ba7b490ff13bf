/**
 * sendfile(2): bytes of a file of the image to a socket, a file or a host stream, through a bounce
 * buffer of the VMM's (the program's memory is not touched). The source must be a regular file of the
 * image, as Linux requires of in_fd (EINVAL otherwise). copy_file_range(2): between two regular files
 * of the image, through the same buffer.
 */
import { E } from '../../abi/errno.js';
import { SIG } from '../../abi/signals.js';
import * as libc from '../../host/libc.js';
import { Ext4File } from '../files/ext4file.js';
import { O_APPEND, O_NONBLOCK, type OpenFile } from '../files/file.js';
import { HostStream } from '../files/host.js';
import type { Kernel } from '../kernel.js';
import { SocketFile } from '../net/socket.js';
import type { SyscallResult, SyscallTable } from '../types.js';
import { raise } from './signal.js';

const BOUNCE = 1 << 20;
const MAX_RW = 0x7ffff000;

let bounce: { addr: number; view: Uint8Array } | null = null;
function bounceBuffer(): { addr: number; view: Uint8Array } {
  if (!bounce) {
    const addr = libc.mmap(0, BOUNCE, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
    if (addr === -1) throw new Error(`cannot map sendfile's buffer (errno ${libc.errno()})`);
    bounce = { addr, view: new Uint8Array(libc.view(addr, BOUNCE)) };
  }
  return bounce;
}

/** Write `n` bytes of the bounce buffer to `out` for `k`: the count taken, -errno, or a wait. */
function put(k: Kernel, out: OpenFile, n: number, first: boolean): number | 'stop' | 'block' {
  const b = bounceBuffer();
  const o = out.ops;
  if (o instanceof SocketFile) {
    const data = b.view.slice(0, n); // (a local socket keeps the bytes it queues)
    const nonblock = (out.flags & O_NONBLOCK) !== 0 || !first; // after the first chunk: what fits now
    const r = o.waitFor(nonblock, 'out', () => o.send({ data, to: null, toKey: null, fds: null, cred: { pid: k.identity.pid, uid: k.identity.uid, gid: k.identity.gid }, flags: 0 }));
    return !first && r === -E.EAGAIN ? 0 : r;
  }
  if (o instanceof Ext4File) return o.writeHost(out, b.addr, n, null);
  if (o instanceof HostStream) return o.writeHost(out, b.addr, n, null);
  return -E.EINVAL;
}

function sendfile(k: Kernel, outFd: number, inFd: number, offAddr: number, count: number): SyscallResult {
  const inF = k.fds.get(inFd);
  const outF = k.fds.get(outFd);
  if (!inF || !outF) return -E.EBADF;
  if (!inF.readable || !outF.writable) return -E.EBADF;
  if (!(inF.ops instanceof Ext4File) || inF.ops.isDir) return -E.EINVAL;
  if (outF.flags & O_APPEND) return -E.EINVAL;
  if (count < 0) return -E.EINVAL;
  let pos = inF.pos;
  if (offAddr !== 0) {
    const off = k.mem.readU64(offAddr);
    if (off < 0 || off > Number.MAX_SAFE_INTEGER) return -E.EINVAL;
    k.mem.writable(offAddr, 8);
    pos = off;
  }
  const src = inF.ops;
  const b = bounceBuffer();
  let total = 0;
  const want = Math.min(count, MAX_RW);
  while (total < want) {
    const n = src.readHost(inF, () => b.addr, Math.min(BOUNCE, want - total), pos);
    if (n < 0) {
      if (total === 0) return n;
      break;
    }
    if (n === 0) break;
    const w = put(k, outF, n, total === 0);
    if (w === 'stop' || w === 'block') {
      if (total > 0) break;
      return w === 'stop' ? { kind: 'stop' } : { kind: 'park', park: { kind: 'retry', deadline: Infinity, onTimeout: -E.EINTR } };
    }
    if (w < 0) {
      if (total > 0) break;
      if (w === -E.EPIPE) {
        const sig = raise(k, SIG.SIGPIPE, 'on a sendfile to a socket or pipe with no reader');
        if (typeof sig === 'object') return sig;
      }
      return w;
    }
    pos += w;
    total += w;
    if (w < n) break;
  }
  if (offAddr !== 0) k.mem.writeU64(offAddr, pos);
  else inF.pos = pos;
  return total;
}

/**
 * copy_file_range(2) as Linux answers it: EINVAL for flags, EBADF for a file not open for reading (in)
 * or writing (out) or opened O_APPEND (out), EISDIR for a directory, EINVAL for anything but regular
 * files or for overlapping ranges of the same file; copies up to `len` bytes (fewer at the source's end)
 * and advances the offsets given (or the files' positions).
 */
function copyFileRange(k: Kernel, inFd: number, offInAddr: number, outFd: number, offOutAddr: number, len: number, flags: number): SyscallResult {
  if (flags !== 0) return -E.EINVAL;
  const inF = k.fds.get(inFd);
  const outF = k.fds.get(outFd);
  if (!inF || !outF) return -E.EBADF;
  if (!inF.readable || !outF.writable || outF.flags & O_APPEND) return -E.EBADF;
  if (inF.ops instanceof Ext4File && inF.ops.isDir) return -E.EISDIR;
  if (outF.ops instanceof Ext4File && outF.ops.isDir) return -E.EISDIR;
  if (!(inF.ops instanceof Ext4File) || !(outF.ops instanceof Ext4File)) return -E.EINVAL;
  const src = inF.ops;
  const dst = outF.ops;
  if ((src.stat().mode & 0o170000) !== 0o100000 || (dst.stat().mode & 0o170000) !== 0o100000) return -E.EINVAL;
  let posIn = inF.pos;
  let posOut = outF.pos;
  if (offInAddr !== 0) posIn = k.mem.readU64(offInAddr);
  if (offOutAddr !== 0) posOut = k.mem.readU64(offOutAddr);
  if (posIn < 0 || posOut < 0 || posIn > Number.MAX_SAFE_INTEGER || posOut > Number.MAX_SAFE_INTEGER) return -E.EINVAL;
  if (offInAddr !== 0) k.mem.writable(offInAddr, 8);
  if (offOutAddr !== 0) k.mem.writable(offOutAddr, 8);
  const want = Math.min(len, MAX_RW);
  if (src.ino === dst.ino && posIn < posOut + want && posOut < posIn + want) return -E.EINVAL;
  const b = bounceBuffer();
  let total = 0;
  while (total < want) {
    const n = src.readHost(inF, () => b.addr, Math.min(BOUNCE, want - total), posIn);
    if (n < 0) {
      if (total === 0) return n;
      break;
    }
    if (n === 0) break;
    const w = dst.writeHost(outF, b.addr, n, posOut);
    if (w < 0) {
      if (total === 0) return w;
      break;
    }
    posIn += w;
    posOut += w;
    total += w;
    if (w < n) break;
  }
  if (offInAddr !== 0) k.mem.writeU64(offInAddr, posIn);
  else inF.pos = posIn;
  if (offOutAddr !== 0) k.mem.writeU64(offOutAddr, posOut);
  else outF.pos = posOut;
  return total;
}

export const sendfileSyscalls: SyscallTable = {
  sendfile: (k, a) => sendfile(k, a.i32(0), a.i32(1), a.u64(2), a.u64(3)),
  copy_file_range: (k, a) => copyFileRange(k, a.i32(0), a.u64(1), a.i32(2), a.u64(3), a.u64(4), a.u32(5)),
};
