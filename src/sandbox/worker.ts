/**
 * The VM worker: one thread that owns a VM, its kernel, and (for now) its single vCPU, whose KVM_RUN
 * blocks this thread while the program runs. The main thread only starts it, kicks it, and reads the
 * result.
 */
import { writeSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { normalizePath } from '../kernel/sys/fs.js';
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { MapvisorError } from '../errors.js';
import { OpenFile, O_RDONLY, O_WRONLY } from '../kernel/files/file.js';
import { HostStream } from '../kernel/files/host.js';
import { Kernel } from '../kernel/kernel.js';
import { Strace } from '../kernel/strace.js';
import { runTask } from '../kernel/task.js';
import * as libc from '../kvm/libc.js';
import { loadProgram } from '../loader/load.js';
import { AnonMemory } from '../mm/anon.js';
import { AddressSpace } from '../mm/space.js';
import { Machine } from '../vm/machine.js';
import { findExecutable } from './exec.js';
import { Worker } from 'node:worker_threads';
import { Threads } from '../kernel/threads.js';
import { serveThreads } from '../kernel/serve.js';
import { Doorbell, Slot } from '../kernel/mailbox.js';
import type { TaskEnd } from '../kernel/task.js';
import { KVM } from '../kvm/ioctl.js';
import { REGS, SIZEOF, type RegName } from '../kvm/structs.js';
import { MSR_FS_BASE } from '../vm/cpu.js';
import { MAX_VCPUS } from '../vm/layout.js';
import { RootFs } from '../kernel/vfs/rootfs.js';
import { ioCounters } from '../kernel/files/ext4file.js';

/** The region-map backing id of the root file system image (1 is anonymous memory). */
const IMAGE_BACKING_ID = 2;
import { CONTROL_STOP, type VmStats, type WorkerConfig, type WorkerMessage } from './protocol.js';

const cfg = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: WorkerMessage): void => port.postMessage(m);
const control = new Int32Array(cfg.control);
/** Threads: once the program has more than one, the kernel's thread must never wait in a call. */
let threadedKernel: { threads: { threaded: boolean } | null } | null = null;
const stop = {
  stopRequested: (): boolean => Atomics.load(control, CONTROL_STOP) !== 0,
  mustNotBlock: (): boolean => threadedKernel?.threads?.threaded ?? false,
};

function hwcap(machine: Machine): number {
  return machine.features.cpuid.find((e) => e.function === 1 && e.index === 0)?.edx ?? 0;
}

function main(): void {
  const t0 = process.hrtime.bigint();
  const root = cfg.image ? RootFs.open(cfg.image, IMAGE_BACKING_ID) : null;
  let result: WorkerMessage;
  try {
    result = run(t0, root);
  } finally {
    // Flush and unlock the image before anyone hears the program ended.
    root?.close();
  }
  post(result);
}

function run(t0: bigint, root: RootFs | null): WorkerMessage {
  const { main: exe, interp } = findExecutable(root, cfg.programPath);
  const machine = Machine.create({ spaceSize: cfg.spaceSize, syscallReturn: cfg.syscallReturn });
  const anon = new AnonMemory(1);
  const space = new AddressSpace(machine.window, anon, {
    size: cfg.spaceSize,
    stackTop: cfg.spaceSize,
    stackSize: cfg.stackSize,
    memLimit: cfg.memLimit,
  });
  const identity = { pid: 1, uid: 0, gid: 0 };
  if (root) space.registerFile(IMAGE_BACKING_ID, root.fd);
  const loaded = loadProgram(space, exe, {
    argv: cfg.argv,
    envp: cfg.envp,
    execfn: cfg.argv[0] ?? cfg.programPath,
    uid: identity.uid,
    gid: identity.gid,
    hwcap: hwcap(machine),
    random: new Uint8Array(randomBytes(16)),
  }, interp);
  const strace = cfg.strace ? new Strace((line) => writeSync(cfg.traceFd, line)) : null;
  const kernel = new Kernel({ space, stop, identity, cpus: cfg.cpus, strace, exePath: root ? normalizePath(cfg.programPath) : resolvePath(cfg.programPath), root, argv: cfg.argv });
  const streams = cfg.stdio.map((fd, i) => new HostStream(fd, ['stdin', 'stdout', 'stderr'][i]!, kernel.mem, stop));
  streams.forEach((s, i) => kernel.fds.install(new OpenFile(s, i === 0 ? O_RDONLY : O_WRONLY), false, i));

  const vcpu = machine.createVcpu(0, loaded.entry, loaded.sp);
  const slots = new Map<number, Slot>();
  const allVcpus = [vcpu];
  const doorbell = Doorbell.create();
  const threads = new Threads(vcpu, identity.pid, {
    max: MAX_VCPUS,
    create: (id, init) => {
      const v = machine.createVcpu(id, 0, 0);
      allVcpus.push(v);
      const regs = Buffer.alloc(SIZEOF.kvm_regs);
      for (const [name, value] of Object.entries(init.regs)) regs.writeBigUInt64LE(BigInt.asUintN(64, value!), REGS[name as RegName]);
      v.fd.set(KVM.SET_REGS, regs);
      v.fd.setMsrs([[MSR_FS_BASE, init.fsBase]]);
      return v;
    },
    start: (t) => {
      const slot = Slot.create();
      slots.set(t.tid, slot);
      new Worker(new URL('./vcpu-worker.js', import.meta.url), {
        workerData: {
          id: t.cpu.id,
          fd: t.cpu.fd.fd,
          runAddr: t.cpu.fd.runAddr,
          runSize: t.cpu.fd.runSize,
          windowBase: machine.window.base,
          windowSize: machine.window.size,
          syscallReturn: cfg.syscallReturn,
          slot: slot.sab,
          doorbell: doorbell.sab,
        },
      }).unref();
    },
  });
  kernel.threads = threads;
  threadedKernel = kernel;
  post({ type: 'ready', runAddr: vcpu.fd.runAddr, thread: String(libc.pthreadSelf()) });
  let end: TaskEnd | { kind: 'threaded' } = runTask(vcpu, kernel);
  if (end.kind === 'threaded') {
    // A second thread exists: every vCPU now runs in a worker of its own and this thread serves them.
    const main = threads.byTid.get(identity.pid)!;
    main.ready = true;
    threads.unstarted.unshift(main);
    end = serveThreads(kernel, threads, { slotOf: (t) => slots.get(t.tid)!, doorbell });
  }
  const exits: Record<string, number> = {};
  for (const c of allVcpus) for (const [r, n] of c.exitCounts) exits[r] = (exits[r] ?? 0) + n;
  const report = kernel.stats.report();
  const stats: VmStats = {
    ...report,
    exits,
    mapChanges: machine.window.mapChanges,
    mappedBytes: space.mappedBytes(),
    wallNs: Number(process.hrtime.bigint() - t0),
    xsave: machine.xcr0 !== null,
    bytesIn: streams[0]!.bytesRead,
    bytesOut: streams[1]!.bytesWritten + streams[2]!.bytesWritten,
    execInPlace: loaded.inPlace,
    interpInPlace: interp ? loaded.interpInPlace : null,
    fileBytesRead: ioCounters.bytesRead,
    fileBytesWritten: ioCounters.bytesWritten,
    storage: root ? root.storage : null,
    block: root?.blockStats() ?? null,
    writtenBack: kernel.sharedFileMaps.writtenBack,
    pagesFilledOnFault: kernel.pagesFilledOnFault,
    imageMappedBytes: space.regions
      .regions()
      .filter((r) => r.backing.kind === 'file' && r.backing.id === IMAGE_BACKING_ID)
      .reduce((a, r) => a + (r.end - r.start), 0),
  };
  // blk mode: shared file mappings are copies; write them back before the files and image are closed.
  kernel.root?.beginOp();
  try {
    kernel.sharedFileMaps.writeBackAll();
  } finally {
    kernel.root?.endOp();
  }
  kernel.fds.closeAll();
  kernel.close();
  machine.close();
  anon.close();
  machine.window.destroy();
  return { type: 'end', end, stats };
}

try {
  main();
} catch (e) {
  const err = e as Error;
  if (e instanceof MapvisorError) {
    post({ type: 'error', error: { name: e.name, code: e.code, message: e.message, fix: e.fix, exitCode: e.exitCode } });
  } else {
    post({
      type: 'error',
      error: { name: err.name, code: 'EINTERNAL', message: err.message, fix: '', exitCode: 125, ...(err.stack ? { stack: err.stack } : {}) },
    });
  }
}
