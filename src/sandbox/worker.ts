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
import { RootFs } from '../kernel/vfs/rootfs.js';
import { ioCounters } from '../kernel/files/ext4file.js';

/** The region-map backing id of the root file system image (1 is anonymous memory). */
const IMAGE_BACKING_ID = 2;
import { CONTROL_STOP, type VmStats, type WorkerConfig, type WorkerMessage } from './protocol.js';

const cfg = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: WorkerMessage): void => port.postMessage(m);
const control = new Int32Array(cfg.control);
const stop = { stopRequested: (): boolean => Atomics.load(control, CONTROL_STOP) !== 0 };

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
  post({ type: 'ready', runAddr: vcpu.fd.runAddr, thread: String(libc.pthreadSelf()) });
  const end = runTask(vcpu, kernel);
  const report = kernel.stats.report();
  const stats: VmStats = {
    ...report,
    exits: Object.fromEntries(vcpu.exitCounts),
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
  kernel.fds.closeAll();
  kernel.close();
  // blk mode: shared file mappings are copies; write them back before the image is closed.
  kernel.root?.beginOp();
  try {
    kernel.sharedFileMaps.writeBackAll();
  } finally {
    kernel.root?.endOp();
  }
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
