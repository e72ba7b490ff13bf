/**
 * One VM worker as the Sandbox (main thread) drives it: its control words, its command port, kicks,
 * pause and the commands served while paused, and the messages it sends. A Sandbox has one at a time;
 * rejuvenation (Sandbox.rejuvenate) starts a second in standby and hands the program over to it.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ListeningEvent } from '../kernel/net/network.js';
import { MapvisorError } from '../errors.js';
import { entryUrl } from '../util/paths.js';
import { Doorbell } from '../kernel/mailbox.js';
import { KickGuard, kickTarget } from '../platform/kick.js';
import type { KickTarget } from '../platform/platform.js';
import type { SpawnSpec } from '../kernel/spawn.js';
import {
  CONTROL_BYTES,
  CONTROL_CMD,
  CONTROL_KICK_ALIVE,
  CONTROL_KICK_LOCK,
  CONTROL_PAUSE,
  CONTROL_SIGNALS,
  CONTROL_SIGNALS_MAIN,
  CONTROL_STOP,
  CONTROL_WAKE,
  type WorkerConfig,
  type WorkerMessage,
} from './protocol.js';

/** A VM worker's configuration, without the control words and command port VmHandle makes for it. */
export type VmConfig = Omit<WorkerConfig, 'control' | 'commands' | 'standby'>;

export type VmCommand =
  | { cmd: 'checkpoint'; dir: string; inPlace: boolean }
  | { cmd: 'resume' }
  | { cmd: 'stats' }
  | { cmd: 'exec'; spec: SpawnSpec; stdio: [number, number, number] }
  | { cmd: 'signal'; pid: number; sig: number };

/** What the owner hears from the worker besides the end. */
export interface VmEvents {
  standby(): void;
  ready(restoreMs: number | null): void;
  listening?(e: ListeningEvent): void;
  /** A process that exec started ended (wait status). */
  execExit?(pid: number, status: number): void;
}

export class VmHandle {
  private readonly control: Int32Array;
  private readonly guard: KickGuard;
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private readonly standbyFlag = new SharedArrayBuffer(4);
  private vcpu: KickTarget | null = null;
  private doorbell: Doorbell | null = null;
  private readonly waiters = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private onPaused: Array<() => void> = [];
  private onReleased: Array<() => void> = [];
  private nextId = 1;
  private over = false;
  paused = false;
  /** Set by an in-place checkpoint: the program continues in another VM; this one ends. */
  handedOff = false;
  /** Resolves with the worker's last message: the program's end, or an error. */
  readonly ended: Promise<WorkerMessage>;

  constructor(cfg: VmConfig, standby: boolean, events: VmEvents) {
    const sab = new SharedArrayBuffer(CONTROL_BYTES);
    this.control = new Int32Array(sab);
    this.guard = new KickGuard(this.control, CONTROL_KICK_LOCK, CONTROL_KICK_ALIVE);
    const channel = new MessageChannel();
    this.port = channel.port1;
    const workerData: WorkerConfig = { ...cfg, control: sab, commands: channel.port2, standby: standby ? this.standbyFlag : null };
    this.worker = new Worker(entryUrl('worker', new URL('./worker.js', import.meta.url)), { workerData, transferList: [channel.port2] });
    this.ended = new Promise<WorkerMessage>((resolve, reject) => {
      this.worker.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'standby':
            events.standby();
            break;
          case 'released':
            for (const f of this.onReleased.splice(0)) f();
            break;
          case 'ready':
            this.vcpu = m.kick;
            events.ready(m.restoreMs);
            if (Atomics.load(this.control, CONTROL_STOP) || Atomics.load(this.control, CONTROL_PAUSE)) this.kick();
            break;
          case 'threaded':
            this.doorbell = new Doorbell(m.doorbell);
            if (Atomics.load(this.control, CONTROL_PAUSE) || Atomics.load(this.control, CONTROL_STOP)) this.doorbell.ring();
            break;
          case 'listening':
            events.listening?.(m.event);
            break;
          case 'exec-exit':
            events.execExit?.(m.pid, m.status);
            break;
          case 'paused':
            this.paused = true;
            for (const f of this.onPaused.splice(0)) f();
            break;
          case 'reply': {
            const w = this.waiters.get(m.id);
            this.waiters.delete(m.id);
            if (m.ok) w?.resolve(m.result);
            else w?.reject(new MapvisorError('ECONTROL', m.error ?? 'the command failed', ''));
            break;
          }
          default:
            resolve(m);
        }
      });
      this.worker.on('error', reject);
      this.worker.on('exit', (code) => reject(new MapvisorError('EWORKER', `the VM worker stopped unexpectedly (exit ${code})`, 'report this as a mapvisor bug')));
    });
    // Whatever waits on this VM learns that it ended.
    this.ended.then(
      () => this.finish(),
      () => this.finish(),
    );
  }

  /** End naps and make the vCPU leave the guest (single-threaded: a kick; threaded: the doorbell). */
  private kick(): void {
    Atomics.add(this.control, CONTROL_WAKE, 1);
    Atomics.notify(this.control, CONTROL_WAKE);
    if (this.doorbell) this.doorbell.ring();
    else if (this.vcpu) {
      const target = this.vcpu;
      this.guard.kick(() => kickTarget(target));
    }
  }

  /** Forward signal `sig` (1..31) to the sandbox's foreground process group (mainOnly: to the program's first process). */
  signal(sig: number, mainOnly = false): void {
    Atomics.or(this.control, mainOnly ? CONTROL_SIGNALS_MAIN : CONTROL_SIGNALS, 1 << sig);
    this.kick();
  }

  /** Stop the program (SIGKILL); also ends a standby. */
  stop(): void {
    Atomics.store(this.control, CONTROL_STOP, 1);
    Atomics.add(this.control, CONTROL_CMD, 1);
    Atomics.notify(this.control, CONTROL_CMD);
    this.kick();
  }

  /** Standby: read the checkpoint now and run the program from it. */
  release(): void {
    const flag = new Int32Array(this.standbyFlag);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  }

  /** Stop the program at its next exit boundary (resolves once it is paused). */
  async pause(): Promise<void> {
    if (this.paused) return;
    if (this.over) throw new MapvisorError('ENOTRUNNING', 'the program ended before it could be paused', '');
    const paused = new Promise<void>((resolve) => this.onPaused.push(resolve));
    Atomics.store(this.control, CONTROL_PAUSE, 1);
    this.kick();
    await paused;
    if (!this.paused) {
      Atomics.store(this.control, CONTROL_PAUSE, 0);
      throw new MapvisorError('ENOTRUNNING', 'the program ended before it could be paused', '');
    }
  }

  /** A command served while paused. */
  command(c: VmCommand): Promise<unknown> {
    if (this.over) return Promise.reject(new MapvisorError('ENOTRUNNING', 'the program ended', ''));
    const id = this.nextId++;
    const p = new Promise<unknown>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
    this.port.postMessage({ ...c, id });
    Atomics.add(this.control, CONTROL_CMD, 1);
    Atomics.notify(this.control, CONTROL_CMD);
    return p;
  }

  async resume(): Promise<void> {
    if (!this.paused) return;
    await this.command({ cmd: 'resume' });
    this.paused = false;
  }

  /**
   * Pause, checkpoint in place into `dir` (the memory stays in its file), and let this VM end; resolves
   * once it let go of the image (its teardown goes on meanwhile).
   */
  async handOff(dir: string): Promise<{ dir: string; ms: number }> {
    await this.pause();
    const released = new Promise<void>((r) => this.onReleased.push(r));
    const r = (await this.command({ cmd: 'checkpoint', dir, inPlace: true })) as { dir: string; ms: number };
    this.handedOff = true;
    await released;
    return r;
  }

  /** The worker ended: fail what still waits on it. */
  private finish(): void {
    this.over = true;
    for (const w of this.waiters.values()) w.reject(new MapvisorError('ENOTRUNNING', 'the program ended', ''));
    this.waiters.clear();
    for (const f of this.onPaused.splice(0)) f();
    for (const f of this.onReleased.splice(0)) f();
  }

  /** After the end: close the port and the worker thread. */
  async close(): Promise<void> {
    this.port.close();
    await this.worker.terminate();
  }
}
