/**
 * Named pipes (FIFOs): an inode of the image whose type is S_IFIFO opens as an end of a pipe that the
 * kernel keeps per inode, shared by every process of the sandbox (the data never touches the image).
 * Opening blocks as Linux's fifo_open does: for reading until a writer opens, for writing until a
 * reader opens (O_NONBLOCK: a reader opens at once; a writer gets ENXIO without a reader); O_RDWR
 * never blocks.
 */
import { E } from '../../abi/errno.js';
import type { GuestMemory } from '../../mm/guest.js';
import type { StatInfo } from '../../abi/stat.js';
import type { StopSignal } from './host.js';
import { O_ACCMODE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY, OpenFile, type FileOps } from './file.js';
import { PipeBuffer, PipeReadEnd, PipeWriteEnd } from './pipe.js';

interface Fifo {
  buf: PipeBuffer;
  /** Bumped by every open for reading (writing): a blocked opener waits for the other side's count to change. */
  readOpens: number;
  writeOpens: number;
}

/** The sandbox's FIFOs by inode (one kernel thread serves them all). */
const fifos = new Map<number, Fifo>();

function fifoOf(ino: number): Fifo {
  let f = fifos.get(ino);
  // A FIFO with nobody at either end starts empty again, as on Linux (its pipe is freed).
  if (!f || (f.buf.readers === 0 && f.buf.writers === 0 && f.buf.length === 0)) {
    f = { buf: new PipeBuffer(), readOpens: 0, writeOpens: 0 };
    fifos.set(ino, f);
  }
  return f;
}

/** Both ends in one description (O_RDWR). */
class FifoBoth implements FileOps {
  readonly kind = 'pipe';
  readonly name: string;
  constructor(
    private readonly r: PipeReadEnd,
    private readonly w: PipeWriteEnd,
  ) {
    this.name = r.name;
  }
  read(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    return this.r.read(f, addr, length);
  }
  write(f: OpenFile, addr: number, length: number): number | 'stop' | 'block' {
    return this.w.write(f, addr, length);
  }
  pollEvents(): number {
    return this.r.pollEvents() | this.w.pollEvents();
  }
  stat(): StatInfo {
    return this.r.stat();
  }
  release(): void {
    this.r.release();
    this.w.release();
  }
}

/** An open of a FIFO that waits for the other side: the end it made, and the count it waits to change. */
export interface FifoWait {
  ino: number;
  file: OpenFile;
  seen: number;
}

/**
 * Open FIFO inode `ino` with `flags`: the open description, or -errno, or a wait (the caller parks the
 * call and calls again with the same wait until the other side has opened).
 */
export function openFifo(ino: number, flags: number, mem: GuestMemory, stop: StopSignal, pending: FifoWait | null): OpenFile | number | FifoWait {
  const acc = flags & O_ACCMODE;
  if (pending && pending.ino === ino) {
    const f = fifos.get(ino);
    if (!f) return -E.ENOENT;
    const ready = acc === O_RDONLY ? f.writeOpens !== pending.seen || f.buf.writers > 0 : f.readOpens !== pending.seen || f.buf.readers > 0;
    return ready ? pending.file : pending;
  }
  const f = fifoOf(ino);
  if (acc === O_RDWR) {
    f.readOpens++;
    f.writeOpens++;
    return new OpenFile(new FifoBoth(new PipeReadEnd(f.buf, mem, stop), new PipeWriteEnd(f.buf, mem, stop)), flags);
  }
  if (acc === O_RDONLY) {
    const file = new OpenFile(new PipeReadEnd(f.buf, mem, stop), flags);
    f.readOpens++;
    if (flags & O_NONBLOCK || f.buf.writers > 0) return file;
    return { ino, file, seen: f.writeOpens };
  }
  if (acc === O_WRONLY) {
    if (flags & O_NONBLOCK && f.buf.readers === 0) return -E.ENXIO;
    const file = new OpenFile(new PipeWriteEnd(f.buf, mem, stop), flags);
    f.writeOpens++;
    if (f.buf.readers > 0) return file;
    return { ino, file, seen: f.readOpens };
  }
  return -E.EINVAL;
}
