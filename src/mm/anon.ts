/**
 * Anonymous memory for the program: one host memfd per VM, handed out in page-aligned extents that
 * are mapped MAP_SHARED into the window. Keeping anonymous memory in a file (rather than host
 * MAP_ANONYMOUS) lets a region move (mremap) by mapping the same pages elsewhere, without a copy and
 * without ever leaving a hole in the window; and it is the seam where checkpoints put memory in files.
 *
 * Extents are allocated by a bump pointer and never reused; freeing punches a hole, so the host gets
 * the memory back at once and the file stays sparse.
 */
import { HostError } from '../host/errors.js';
import { MapvisorError } from '../errors.js';
import * as libc from '../host/libc.js';

const ALIGN_SMALL = 0x1000;
const ALIGN_LARGE = 0x20_0000; // extents of 2 MiB or more start 2 MiB-aligned (host huge pages)

/**
 * Copy `len` bytes of host file `src` at `srcOff` to `dst` at `dstOff`, data extents only (found with
 * SEEK_DATA/SEEK_HOLE): holes stay holes. sendfile, not copy_file_range: a checkpoint's file and a
 * memfd are on different file systems.
 */
export function copyExtents(src: number, srcOff: number, dst: number, dstOff: number, len: number): void {
  const end = srcOff + len;
  const inOff = Buffer.alloc(8);
  let at = srcOff;
  while (at < end) {
    const data = libc.lseek(src, at, libc.SEEK_DATA);
    if (data < 0 || data >= end) break; // ENXIO: no data past `at`
    const hole = Math.min(end, Math.max(data + 1, libc.lseek(src, data, libc.SEEK_HOLE)));
    let pos = data;
    while (pos < hole) {
      inOff.writeBigInt64LE(BigInt(pos));
      const to = dstOff + (pos - srcOff);
      if (libc.lseek(dst, to, 0) !== to) throw new HostError('lseek (memory copy)', libc.errno());
      const n = libc.sendfile(dst, src, inOff, hole - pos);
      if (n <= 0) throw new HostError('sendfile (memory copy)', libc.errno());
      pos += n;
    }
    at = hole;
  }
}

export class AnonMemory {
  readonly fd: number;
  readonly id: number;
  private next = 0;

  /** The file's path when it is a file in --memory-dir (else a memfd). */
  readonly path: string | null;

  /**
   * `file`: keep the memory in this regular file (--memory-dir) instead of a memfd; `resume`: continue
   * an existing file whose first `used` bytes are allocated (restore in place).
   */
  constructor(id: number, file: string | null = null, resume: { used: number } | null = null) {
    this.id = id;
    this.path = file;
    if (file) {
      const O_CREAT = 0o100;
      const O_TRUNC = 0o1000;
      this.fd = libc.open(file, libc.O_RDWR | libc.O_CLOEXEC | O_CREAT | (resume ? 0 : O_TRUNC), 0o600);
      if (this.fd < 0) {
        throw new MapvisorError('EMEMDIR', `cannot create the memory file ${file} (errno ${libc.errno()})`, 'give --memory-dir a writable directory');
      }
      this.next = resume?.used ?? 0;
    } else {
      this.fd = libc.memfdCreate('mapvisor-anon', libc.MFD_CLOEXEC);
      if (this.fd < 0) throw new HostError('memfd_create', libc.errno());
    }
  }

  /**
   * A memfd holding a copy of `src`'s first `used` bytes, holes kept as holes (sendfile of each data
   * extent): a restore on a platform whose program process cannot share a private mapping with
   * the VMM continues on such a copy, as it would in place.
   */
  static copyOf(src: AnonMemory, id: number, used: number): AnonMemory {
    const copy = new AnonMemory(id, null);
    copy.next = used;
    if (libc.ftruncate(copy.fd, used) !== 0) throw new HostError('ftruncate (memory copy)', libc.errno());
    copyExtents(src.fd, 0, copy.fd, 0, used);
    return copy;
  }

  /** Bytes of the file handed out so far (its logical size). */
  get used(): number {
    return this.next;
  }

  /** Reserve `length` bytes of the file; returns their offset. The file grows (sparsely) to fit. */
  allocate(length: number): number {
    const align = length >= ALIGN_LARGE ? ALIGN_LARGE : ALIGN_SMALL;
    const offset = Math.ceil(this.next / align) * align;
    this.next = offset + length;
    if (libc.ftruncate(this.fd, this.next) !== 0) throw new HostError('ftruncate anonymous memory', libc.errno());
    return offset;
  }

  /** Give the pages at [offset, offset+length) back to the host; they read as zeros afterwards. */
  /** Ranges freed since the last incremental checkpoint (they must read as zeros in it too). */
  freedSinceCheckpoint: Array<[number, number]> | null = null;

  /** Extents another process maps too (MAP_SHARED memory inherited by a fork): never punched. */
  private readonly pinned: Array<[number, number]> = [];

  pin(offset: number, length: number): void {
    this.pinned.push([offset, offset + length]);
  }

  free(offset: number, length: number): void {
    if (length <= 0) return;
    if (this.pinned.some(([s, e]) => s < offset + length && offset < e)) return; // the other process still maps them
    this.freedSinceCheckpoint?.push([offset, length]);
    const rc = libc.fallocate(this.fd, libc.FALLOC_FL_PUNCH_HOLE | libc.FALLOC_FL_KEEP_SIZE, offset, length);
    if (rc !== 0) throw new HostError('fallocate(PUNCH_HOLE) on anonymous memory', libc.errno());
  }

  /** Make the file's contents durable (a --memory-dir file, before an in-place checkpoint). */
  sync(): void {
    libc.fsync(this.fd);
  }

  close(): void {
    libc.close(this.fd);
  }
}
