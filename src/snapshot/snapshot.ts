/** Capturing a paused program into a SavedState, and putting a SavedState back into a fresh VM. */
import { HOST_BACKING_BASE } from '../kernel/vfs/mounts.js';
import { CACHE_BACKING_ID } from '../kernel/vfs/sharedcache.js';
import type { PlatformName } from '../platform/platform.js';
import { SocketFile } from '../kernel/net/socket.js';
import { FXSAVE_SIZE, REGS_SIZE } from '../platform/regs.js';
import type { Kernel } from '../kernel/kernel.js';
import { Device, isDevice } from '../kernel/files/devices.js';
import { Ext4File } from '../kernel/files/ext4file.js';
import { OpenFile, type FileOps } from '../kernel/files/file.js';
import { PipeBuffer, PipeReadEnd, PipeWriteEnd } from '../kernel/files/pipe.js';
import { EFD_SEMAPHORE, EventFd } from '../kernel/files/eventfd.js';
import { EpollFile } from '../kernel/files/epoll.js';
import { TimerFd } from '../kernel/files/timerfd.js';
import { HostStream } from '../kernel/files/host.js';
import { RegionMap, type Region } from '../mm/regions.js';
import type { AddressSpace } from '../mm/space.js';
import type { Context, ContextState } from '../platform/platform.js';
import { imageIdentity, refuse, STATE_VERSION, type SavedCpu, type SavedFd, type SavedFile, type SavedPark, type SavedState, type SavedThread } from './state.js';
import type { Park, Thread, Threads } from '../kernel/threads.js';
import { nowNs } from '../kernel/sys/time.js';
import { shmSegmentCount } from '../kernel/sys/shm.js';
import { closeSync, openSync, readSync } from 'node:fs';
import * as libc from '../host/libc.js';
import { PROT_READ } from '../host/libc.js';
import { procEnviron } from '../kernel/vfs/proc.js';

const hex = (v: bigint): string => v.toString(16);
const unhex = (s: string): bigint => BigInt(`0x${s}`);

type AltStack = { sp: bigint; flags: number; size: bigint };
type SavedAltStack = { sp: string; flags: number; size: string };
const saveAltStack = (a: AltStack): SavedAltStack => ({ sp: hex(a.sp), flags: a.flags, size: hex(a.size) });
const loadAltStack = (a: SavedAltStack): AltStack => ({ sp: unhex(a.sp), flags: a.flags, size: unhex(a.size) });

/** Is any page of host range [addr, addr+len) a private copy (written since it was mapped from a file)? */
function hasPrivateCopies(pagemap: number, hostAddr: number, length: number): boolean {
  // /proc/self/pagemap: 8 bytes per page; bit 63 present, bit 61 file-page or shared-anonymous.
  const pages = length / 4096;
  const buf = Buffer.alloc(pages * 8);
  readSync(pagemap, buf, 0, buf.length, (hostAddr / 4096) * 8);
  for (let i = 0; i < pages; i++) {
    const hi = buf.readUInt32LE(i * 8 + 4);
    if (hi & 0x80000000 && !(hi & 0x20000000)) return true;
  }
  return false;
}

/**
 * Private file mappings whose pages the program changed (relocated GOTs, .data) hold those changes only
 * in host copy-on-write pages, which the image does not have: copy such regions into the
 * anonymous-memory file and record them as anonymous memory, so the checkpoint carries them.
 */
function materializePrivateFilePages(space: AddressSpace, written: Array<[number, number]>): RegionMap {
  const out = space.regions.clone();
  const pagemap = openSync('/proc/self/pagemap', 'r');
  try {
    for (const r of space.regions.regions()) {
      if (r.backing.kind !== 'file' || r.shared || r.prot === 0) continue;
      if (hasPrivateCopies(pagemap, space.window.hostAddr(r.start), r.end - r.start)) materialize(space, r, out, written);
    }
  } finally {
    closeSync(pagemap);
  }
  return out;
}

/** Copy private file region `r`'s pages into the anonymous-memory file; record it there in `out`. */
function materialize(space: AddressSpace, r: Region, out: RegionMap, written: Array<[number, number]>): void {
  const len = r.end - r.start;
  const host = space.window.hostAddr(r.start);
  const offset = space.anon.allocate(len);
  if (!(r.prot & PROT_READ)) space.window.protect(r.start, len, r.prot | PROT_READ);
  try {
    for (let done = 0; done < len; ) {
      const n = libc.pwrite(space.anon.fd, host + done, len - done, offset + done);
      if (n <= 0) refuse(`cannot save the program's private pages at 0x${r.start.toString(16)} (errno ${libc.errno()})`, 'check free space for the memory file');
      done += n;
    }
  } finally {
    if (!(r.prot & PROT_READ)) space.window.protect(r.start, len, r.prot);
  }
  written.push([offset, len]);
  const { path: _path, ...rest } = r;
  out.map({ ...rest, backing: { kind: 'anon', id: space.anon.id, offset }, tag: r.tag });
}

const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

function saveCpu(v: Context): SavedCpu {
  const c = v.captureState();
  return { regs: b64(c.regs), fsBase: c.fsBase, gsBase: c.gsBase, fpu: b64(c.fpu) };
}

export function loadCpu(c: SavedCpu): ContextState {
  const regs = Buffer.from(c.regs, 'base64');
  const fpu = Buffer.from(c.fpu, 'base64');
  if (regs.length !== REGS_SIZE || fpu.length !== FXSAVE_SIZE) refuse('the checkpoint\'s register state has the wrong size', 'take the checkpoint again');
  return { regs, fsBase: c.fsBase, gsBase: c.gsBase, fpu };
}

const remaining = (deadline: number): number | null => (deadline === Infinity ? null : Math.max(0, deadline - performance.now()));
const deadline = (remainingMs: number | null): number => (remainingMs === null ? Infinity : performance.now() + remainingMs);

function savePark(p: Park): SavedPark {
  switch (p.kind) {
    case 'futex':
      return { kind: 'futex', uaddr: p.uaddr, bitset: p.bitset, remainingMs: remaining(p.deadline) };
    case 'sleep':
      return { kind: 'sleep', remainingMs: remaining(p.deadline) };
    case 'retry':
      return { kind: 'retry', remainingMs: remaining(p.deadline), onTimeout: p.onTimeout };
    case 'signal':
      return refuse('a thread waits in rt_sigsuspend or pause, which a checkpoint cannot record yet', 'take the checkpoint when no thread waits for a signal');
    case 'vfork':
      return refuse('a thread waits for its vfork child, and checkpoints of several processes are not supported', 'take the checkpoint before the program starts other processes');
  }
}

function loadPark(p: SavedPark): Park {
  switch (p.kind) {
    case 'futex':
      return { kind: 'futex', uaddr: p.uaddr, bitset: p.bitset, deadline: deadline(p.remainingMs) };
    case 'sleep':
      return { kind: 'sleep', deadline: deadline(p.remainingMs) };
    case 'retry':
      return { kind: 'retry', deadline: deadline(p.remainingMs), onTimeout: p.onTimeout };
  }
}

/** A thread's record; `sig` holds its signal mask and altstack (the kernel's for the current thread). */
function saveThread(t: Thread, sig: { blocked: bigint; altStack: AltStack }): SavedThread {
  return {
    tid: t.tid,
    vcpu: t.cpu.id,
    cpu: saveCpu(t.cpu),
    clearTid: t.clearTid,
    robustList: t.robustList,
    blocked: hex(sig.blocked),
    altStack: saveAltStack(sig.altStack),
    park: t.park ? savePark(t.park) : null,
  };
}

/**
 * A threaded program's threads back, each on a vCPU made by `vcpuFor` with its registers, FPU state
 * and (for a waiting thread) its unanswered call; the current thread's signal state into the kernel.
 */
export function restoreThreads(k: Kernel, threads: Threads, saved: NonNullable<SavedState['threads']>, vcpuFor: (id: number) => Context): void {
  const list: Thread[] = saved.list.map((st) => {
    const cpu = vcpuFor(st.vcpu);
    cpu.putState(loadCpu(st.cpu));
    return {
      tid: st.tid,
      k,
      cpu,
      clearTid: st.clearTid,
      robustList: st.robustList,
      park: st.park ? loadPark(st.park) : null,
      ready: st.park === null,
      blocked: unhex(st.blocked),
      altStack: loadAltStack(st.altStack),
    };
  });
  if (!list.length) refuse('the checkpoint holds a threaded program with no threads', 'take the checkpoint again');
  threads.restore(list, saved.nextTid, saved.current);
  k.signals.blocked = threads.current.blocked;
  k.signals.altStack = threads.current.altStack;
}

/** The fd table as descriptions (each once, however many fds share it), fds, and pipe contents. */
function saveFdTable(k: Kernel): { files: SavedFile[]; fds: SavedFd[]; pipes: string[] } {
  const files: SavedFile[] = [];
  const fds: SavedFd[] = [];
  const pipes: string[] = [];
  const fileIndex = new Map<OpenFile, number>();
  const pipeIndex = new Map<PipeBuffer, number>();
  const pipeOf = (p: PipeBuffer): number => {
    let i = pipeIndex.get(p);
    if (i === undefined) {
      i = pipes.push(Buffer.from(p.contents()).toString('base64')) - 1;
      pipeIndex.set(p, i);
    }
    return i;
  };
  for (const [fd, f] of k.fds.entries()) {
    let index = fileIndex.get(f);
    if (index === undefined) {
      const base = { flags: f.flags, pos: f.pos };
      const o = f.ops;
      let saved: SavedFile;
      if (o instanceof HostStream) saved = { ...base, kind: 'host', stdio: ['stdin', 'stdout', 'stderr'].indexOf(o.name) };
      else if (o instanceof Ext4File) {
        if (k.root?.fs.isOrphan(o.ino)) refuse(`fd ${fd} is a file that was unlinked (${o.name}), which a checkpoint cannot hold yet`, 'close it before checkpointing');
        saved = { ...base, kind: 'ext4', path: o.name, ino: o.ino };
      } else if (o instanceof Device) saved = { ...base, kind: 'device', name: o.name.slice(5) };
      else if (o instanceof PipeReadEnd) saved = { ...base, kind: 'pipe', pipe: pipeOf(o.p), end: 'read' };
      else if (o instanceof PipeWriteEnd) saved = { ...base, kind: 'pipe', pipe: pipeOf(o.p), end: 'write' };
      else if (o instanceof EventFd) saved = { ...base, kind: 'eventfd', count: o.count.toString(), semaphore: o.semaphore };
      else if (o instanceof EpollFile) {
        const interest = [...o.interest.entries()].map(([watched, i]) => ({ fd: watched, events: i.events, data: i.data.toString(), disabled: i.disabled }));
        saved = { ...base, kind: 'epoll', interest };
      } else if (o instanceof TimerFd) {
        const t = o.save();
        saved = { ...base, kind: 'timerfd', clock: o.clock, remainingNs: t.remainingNs === null ? null : t.remainingNs.toString(), intervalNs: t.intervalNs.toString() };
      }
      else if (o instanceof SocketFile) refuse(`fd ${fd} is a socket (${o.describe()}), which a checkpoint cannot hold yet`, 'checkpoint the program before it opens sockets, or after it closes them');
      else if (o.kind === 'hostfile') refuse(`fd ${fd} is ${o.name} of a host mount, which a checkpoint cannot hold yet`, 'close the files of host mounts before checkpointing');
      else refuse(`fd ${fd} is a ${o.kind}, which a checkpoint cannot hold yet`, 'close it before checkpointing');
      index = files.push(saved) - 1;
      fileIndex.set(f, index);
    }
    fds.push({ fd, cloexec: k.fds.cloexec(fd), file: index });
  }
  return { files, fds, pipes };
}

/** Open the saved descriptions again and install every fd on its own. */
function restoreFdTable(k: Kernel, s: SavedState, stdio: HostStream[]): void {
  const pipes = s.pipes.map((b) => PipeBuffer.holding(Buffer.from(b, 'base64')));
  const files = s.files.map((f, i): OpenFile => {
    let ops: FileOps;
    if (f.kind === 'host') {
      const st = stdio[f.stdio];
      if (!st) refuse(`open file ${i} was standard stream ${f.stdio}, which this VM does not have`, 'this is a mapvisor bug; report it');
      ops = st;
    } else if (f.kind === 'device') {
      if (!isDevice(f.name)) refuse(`open file ${i} names an unknown device ${f.name}`, 'take the checkpoint again');
      ops = new Device(f.name, k.mem);
    } else if (f.kind === 'pipe') {
      const p = pipes[f.pipe];
      if (!p) refuse(`open file ${i} names pipe ${f.pipe}, which the checkpoint does not hold`, 'take the checkpoint again');
      ops = f.end === 'read' ? new PipeReadEnd(p, k.mem, k.stop) : new PipeWriteEnd(p, k.mem, k.stop);
    } else if (f.kind === 'epoll') {
      const ep = new EpollFile();
      for (const i of f.interest) ep.interest.set(i.fd, { events: i.events, data: BigInt(i.data), disabled: i.disabled });
      ops = ep;
    } else if (f.kind === 'timerfd') {
      const t = new TimerFd(f.clock, k.mem, k.stop);
      t.load({ remainingNs: f.remainingNs === null ? null : BigInt(f.remainingNs), intervalNs: BigInt(f.intervalNs) });
      ops = t;
    } else if (f.kind === 'eventfd') {
      const e = new EventFd(0, f.semaphore ? EFD_SEMAPHORE : 0, k.mem, k.stop);
      e.count = BigInt(f.count);
      ops = e;
    } else {
      const root = k.root;
      if (!root) refuse(`open file ${i} is a file of an image, and no image is attached`, 'restore with the image');
      ops = new Ext4File(root, k.mem, f.ino, f.path);
    }
    const file = new OpenFile(ops, f.flags);
    file.pos = f.pos;
    return file;
  });
  k.fds.closeAll();
  for (const fd of s.fds) {
    const file = files[fd.file];
    if (!file) refuse(`fd ${fd.fd} names open file ${fd.file}, which the checkpoint does not hold`, 'take the checkpoint again');
    k.fds.installAt(fd.fd, file, fd.cloexec);
  }
}

/** The state of a paused program (everything but its memory): every thread when it has several. */
export function captureState(
  k: Kernel,
  cpu: Context,
  space: AddressSpace,
  cpuid: string,
  platform: PlatformName,
  programPath: string,
  run: string,
  materialized: Array<[number, number]> = [],
): Omit<SavedState, 'memory'> {
  if (shmSegmentCount(k) > 0) refuse('the program has System V shared memory segments, which a checkpoint cannot hold yet', 'checkpoint it before shmget, or after shmctl(IPC_RMID) and shmdt');
  const cached = space.regions.regions().find((r) => r.backing.kind === 'file' && r.backing.id === CACHE_BACKING_ID);
  if (cached) refuse(`the program maps ${cached.path ?? 'a file'} shared and writable through the sandbox's shared-file cache (process platform), which a checkpoint cannot hold yet`, 'unmap it before checkpointing, or checkpoint on the kvm platform');
  const hostMap = space.regions.regions().find((r) => r.backing.kind === 'file' && r.backing.id >= HOST_BACKING_BASE);
  if (hostMap) refuse(`the program maps ${hostMap.path ?? 'a file'} of a host mount, which a checkpoint cannot hold yet`, 'unmap the files of host mounts before checkpointing');
  const { files, fds, pipes } = saveFdTable(k);
  const sig = k.signals;
  const threads = k.threads?.threaded ? k.threads : null;
  const root = k.root;
  return {
    format: 'mapvisor-checkpoint',
    version: STATE_VERSION,
    created: new Date().toISOString(),
    run,
    cpuid,
    platform,
    program: { path: programPath, exePath: k.exePath, argv: k.argv, envp: procEnviron(k) },
    image: root ? { path: root.spec.path, mode: root.spec.mode, ...imageIdentity(root.spec.path), layer: root.layer ? { path: root.layer.layerPath, saved: false } : null } : null,
    space: {
      size: space.layout.size,
      stackTop: space.layout.stackTop,
      stackSize: space.layout.stackSize,
      memLimit: space.layout.memLimit,
      brkStart: space.brkStart,
      brkCurrent: space.brkCurrent,
      regions: materializePrivateFilePages(space, materialized).toJSON(),
      anonId: space.anon.id,
      anonUsed: space.anon.used,
    },
    cpu: saveCpu(threads ? threads.current.cpu : cpu),
    clock: { monotonicNs: nowNs(1 /* CLOCK_MONOTONIC */).toString() },
    threads: threads
      ? {
          nextTid: threads.nextThreadId,
          current: threads.current.tid,
          list: [...threads.byTid.values()].map((t) => saveThread(t, t === threads.current ? sig : t)),
        }
      : null,
    kernel: {
      identity: k.identity,
      umask: k.umask,
      cwd: k.cwd.path,
      nice: k.nice,
      threadName: k.threadName,
      clearChildTid: k.clearChildTid,
      robustList: k.robustList,
      counters: k.stats.save(),
      sleepRestart: k.sleepRestart
        ? { clock: k.sleepRestart.clock, reqAddr: k.sleepRestart.reqAddr, remainingNs: String(k.sleepRestart.deadlineNs - nowNs(k.sleepRestart.clock)) }
        : null,
      rlimits: [...k.rlimits.entries()].map(([r, [s, h]]) => [r, s === Infinity ? null : s, h === Infinity ? null : h]),
      signals: {
        actions: Array.from({ length: 65 }, (_, i) => {
          const a = sig.get(i);
          return { handler: hex(a.handler), flags: hex(a.flags), restorer: hex(a.restorer), mask: hex(a.mask) };
        }),
        blocked: hex(sig.blocked),
        pending: hex(sig.pending),
        altStack: saveAltStack(sig.altStack),
      },
    },
    files,
    fds,
    pipes,
  };
}

/**
 * An incremental checkpoint's memory: bring the previous checkpoint's memory file of this run up to
 * date with only the pages written since (the guest's, from KVM's dirty log, and the VMM's own), the
 * ranges freed since (punched out), and `extra` extents (private file pages saved this time).
 * Returns the number of pages written.
 */
export function updateMemoryFile(file: string, space: AddressSpace, pages: Iterable<number>, extra: Array<[number, number]>): number {
  const fd = libc.open(file, libc.O_RDWR | libc.O_CLOEXEC, 0);
  if (fd < 0) refuse(`cannot open ${file} for an incremental checkpoint (errno ${libc.errno()})`, 'take a full checkpoint into a new directory');
  let written = 0;
  try {
    const copy = (hostAddr: number, len: number, offset: number): void => {
      for (let done = 0; done < len; ) {
        const n = libc.pwrite(fd, hostAddr + done, len - done, offset + done);
        if (n <= 0) refuse(`cannot write ${file} (errno ${libc.errno()})`, 'check free space');
        done += n;
      }
    };
    for (const p of pages) {
      const addr = p * 4096;
      const r = space.regions.find(addr);
      if (!r || r.backing.kind !== 'anon' || r.backing.id !== space.anon.id || !(r.prot & PROT_READ)) continue;
      copy(space.window.hostAddr(addr), 4096, r.backing.offset + (addr - r.start));
      written++;
    }
    for (const [offset, len] of extra) {
      // Private file pages saved this time: they were written into the live memory file; copy them over.
      const tmp = libc.mmap(0, len, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
      try {
        if (libc.pread(space.anon.fd, tmp, len, offset) !== len) refuse(`cannot read the memory file (errno ${libc.errno()})`, 'take a full checkpoint');
        copy(tmp, len, offset);
      } finally {
        libc.munmap(tmp, len);
      }
      written += len / 4096;
    }
    for (const [offset, len] of space.anon.freedSinceCheckpoint ?? []) {
      libc.fallocate(fd, libc.FALLOC_FL_PUNCH_HOLE | libc.FALLOC_FL_KEEP_SIZE, offset, len);
    }
    libc.ftruncate(fd, Math.max(space.anon.used, 0));
    libc.fsync(fd);
  } finally {
    libc.close(fd);
  }
  return written;
}

/** Put the saved regions into the (empty) address space: every mapping as it was. */
export function restoreSpace(space: AddressSpace, s: SavedState): void {
  space.brkStart = s.space.brkStart;
  space.brkCurrent = s.space.brkCurrent;
  for (const r of RegionMap.fromJSON(s.space.regions).regions()) space.mapRegion(r);
}

/** Put the saved kernel records, fds and FPU state back. */
export function restoreKernel(k: Kernel, cpu: Context, s: SavedState, stdio: HostStream[]): void {
  const ks = s.kernel;
  k.umask = ks.umask;
  k.nice = ks.nice;
  k.threadName = ks.threadName;
  k.clearChildTid = ks.clearChildTid;
  k.robustList = ks.robustList;
  k.stats.load(ks.counters);
  const sr = ks.sleepRestart;
  k.sleepRestart = sr ? { clock: sr.clock, reqAddr: sr.reqAddr, deadlineNs: nowNs(sr.clock) + BigInt(sr.remainingNs) } : null;
  for (const [r, soft, hard] of ks.rlimits) k.rlimits.set(r, [soft ?? Infinity, hard ?? Infinity]);
  ks.signals.actions.forEach((a, i) => {
    if (i > 0) k.signals.set(i, { handler: unhex(a.handler), flags: unhex(a.flags), restorer: unhex(a.restorer), mask: unhex(a.mask) });
  });
  k.signals.blocked = unhex(ks.signals.blocked);
  k.signals.pending = unhex(ks.signals.pending);
  k.signals.altStack = loadAltStack(ks.signals.altStack);
  if (k.root && ks.cwd !== '/') {
    try {
      k.cwd = { ino: k.root.fs.resolve(ks.cwd), path: ks.cwd };
    } catch {
      refuse(`the working directory ${ks.cwd} no longer exists in the image`, 'restore with the image as it was');
    }
  }
  restoreFdTable(k, s, stdio);
  // A single-threaded program's vCPU (a threaded one's threads are put back by restoreThreads).
  if (!s.threads) cpu.putState(loadCpu(s.cpu));
}
