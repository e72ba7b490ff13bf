/**
 * A host file descriptor handed to the program as one of its standard streams (the terminal, a pipe
 * or a file the user redirected). Data moves with host read/write straight between the host fd and
 * guest memory; the host's O_NONBLOCK state is hidden: a blocking read by the program waits in poll.
 */
import { E } from '../../abi/errno.js';
import { S_IFCHR, S_IFIFO, S_IFMT, S_IFREG, STAT, type StatInfo } from '../../abi/stat.js';
import * as libc from '../../host/libc.js';
import { PROT_READ, PROT_WRITE } from '../../host/libc.js';
import type { GuestMemory } from '../../mm/guest.js';
import { O_NONBLOCK, POLLIN, POLLOUT, type FileOps, type OpenFile } from './file.js';

const TCGETS = 0x5401;
const TIOCGWINSZ = 0x5413;
const TIOCGPGRP = 0x540f;
const TIOCSPGRP = 0x5410;
const FIONREAD = 0x541b;
const KERNEL_TERMIOS_SIZE = 36;
const WINSIZE_SIZE = 8;

/** Checked by blocking operations after EINTR: has the VMM been asked to stop? */
export interface StopSignal {
  /** Should a blocking call give up now (the VMM stops, or wants the program paused)? */
  stopRequested(): boolean;
  /**
   * True when the VMM really ends the program; false when it only wants it paused: then a call that
   * gave up is restarted after the pause, as Linux restarts an interrupted system call.
   */
  stopForGood?(): boolean;
  /**
   * True when the kernel serves several threads: a call that would wait must answer 'block' instead,
   * and the kernel parks the thread and retries the call later.
   */
  mustNotBlock?(): boolean;
  /** Signals the host sent the sandbox since the last call (bit N: signal N). */
  takeSignals?(): number;
  /** Signals the host sent the program alone (runc's kill of a container's init, without --all). */
  takeMainSignals?(): number;
}

/** The events host fd `fd` is ready for now, of `events` (and POLLERR/POLLHUP/POLLNVAL); 0: none. */
export function hostEvents(fd: number, events: number): number {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  return libc.poll(pfd, 1, 0) > 0 ? pfd.readInt16LE(6) : 0;
}

/** Is `fd` ready for `events` right now? */
export function hostReady(fd: number, events: number): boolean {
  return hostEvents(fd, events) !== 0;
}

export class HostStream implements FileOps {
  readonly kind = 'host';
  readonly hostFd: number;
  readonly name: string;
  private readonly mem: GuestMemory;
  private readonly stop: StopSignal;
  /** Bytes moved, for stats. */
  bytesRead = 0;
  bytesWritten = 0;

  constructor(hostFd: number, name: string, mem: GuestMemory, stop: StopSignal) {
    this.hostFd = hostFd;
    this.name = name;
    this.mem = mem;
    this.stop = stop;
  }

  /** Wait until the host fd is ready for `events`; false when the VMM is stopping. */
  private wait(events: number): boolean | 'block' {
    if (this.stop.mustNotBlock?.()) return 'block';
    const pfd = Buffer.alloc(8);
    pfd.writeInt32LE(this.hostFd, 0);
    pfd.writeInt16LE(events, 4);
    for (;;) {
      if (this.stop.stopRequested()) return false;
      const rc = libc.poll(pfd, 1, 200);
      if (rc > 0) return true;
      if (rc < 0 && libc.errno() !== E.EINTR) return true; // let the real call report the error
    }
  }

  read(f: OpenFile, addr: number, length: number, offset: number | null): number | 'stop' | 'block' {
    if (length === 0) return 0;
    const ptr = this.mem.hostPtr(addr, length, PROT_WRITE);
    if (this.stop.mustNotBlock?.() && offset === null && !hostReady(this.hostFd, POLLIN)) return f.flags & O_NONBLOCK ? -E.EAGAIN : 'block';
    for (;;) {
      const n = offset === null ? libc.read(this.hostFd, ptr, length) : libc.pread(this.hostFd, ptr, length, offset);
      if (n >= 0) {
        this.bytesRead += n;
        return n;
      }
      const err = libc.errno();
      if (err === E.EAGAIN && !(f.flags & O_NONBLOCK)) {
        const w = this.wait(POLLIN);
        if (w !== true) return w === 'block' ? 'block' : 'stop';
        continue;
      }
      if (err === E.EINTR) {
        if (this.stop.stopRequested()) return 'stop';
        continue;
      }
      return -err;
    }
  }

  write(f: OpenFile, addr: number, length: number, offset: number | null): number | 'stop' | 'block' {
    if (length === 0) return 0;
    return this.writeHost(f, this.mem.hostPtr(addr, length, PROT_READ), length, offset);
  }

  /** write() from host memory at `ptr` (the program's memory, sendfile's buffer). */
  writeHost(f: OpenFile, ptr: number, length: number, offset: number | null): number | 'stop' | 'block' {
    let done = 0;
    while (done < length) {
      const n =
        offset === null
          ? libc.write(this.hostFd, ptr + done, length - done)
          : libc.pwrite(this.hostFd, ptr + done, length - done, offset + done);
      if (n >= 0) {
        done += n;
        this.bytesWritten += n;
        continue;
      }
      const err = libc.errno();
      if (err === E.EAGAIN && !(f.flags & O_NONBLOCK)) {
        const w = this.wait(POLLOUT);
        if (w !== true) return done || (w === 'block' ? 'block' : 'stop');
        continue;
      }
      if (err === E.EINTR) {
        if (this.stop.stopRequested()) return done || 'stop';
        continue;
      }
      return done || -err;
    }
    return done;
  }

  /** The sandbox's terminal foreground process group (tcgetpgrp/tcsetpgrp), when the worker offers one. */
  jobControl: { get(): number; set(pgid: number): number } | null = null;

  ioctl(_f: OpenFile, request: number, arg: number): number {
    let size: number;
    if (request === TIOCSPGRP) {
      // Only a terminal has a foreground group: ask the host whether this is one.
      if (libc.ioctlPtr(this.hostFd, TCGETS, Buffer.alloc(KERNEL_TERMIOS_SIZE)) < 0) return -libc.errno();
      const pgid = this.mem.readU32(arg) | 0;
      if (pgid < 0) return -E.EINVAL;
      return this.jobControl ? this.jobControl.set(pgid) : -E.ENOTTY;
    }
    switch (request) {
      case TCGETS:
        size = KERNEL_TERMIOS_SIZE;
        break;
      case TIOCGWINSZ:
      case TIOCGPGRP:
      case FIONREAD:
        size = request === TIOCGWINSZ ? WINSIZE_SIZE : 4;
        break;
      default:
        return -E.ENOTTY;
    }
    const buf = Buffer.alloc(size);
    if (libc.ioctlPtr(this.hostFd, request, buf) < 0) return -libc.errno();
    if (request === TIOCGPGRP) buf.writeInt32LE(this.jobControl?.get() ?? 1, 0); // the sandbox's foreground group, not the host's
    this.mem.write(arg, buf);
    return 0;
  }

  stat(): StatInfo {
    const buf = Buffer.alloc(144);
    let mode = S_IFCHR | 0o620;
    let size = 0;
    let blksize = 4096;
    if (libc.fstat(this.hostFd, buf) === 0) {
      const m = buf.readUInt32LE(STAT.mode);
      const type = m & S_IFMT;
      mode = (type === S_IFREG || type === S_IFIFO || type === S_IFCHR ? type : S_IFCHR) | (m & 0o777);
      if (type === S_IFREG) size = Number(buf.readBigInt64LE(STAT.size));
      blksize = Number(buf.readBigInt64LE(STAT.blksize)) || 4096;
    }
    const now = Math.floor(Date.now() / 1000);
    return {
      dev: 0x0d,
      ino: this.hostFd + 1,
      nlink: 1,
      mode,
      uid: 0,
      gid: 0,
      rdev: (mode & S_IFMT) === S_IFCHR ? 0x8800 : 0,
      size,
      blksize,
      blocks: Math.ceil(size / 512),
      atime: [now, 0],
      mtime: [now, 0],
      ctime: [now, 0],
    };
  }
}
