/**
 * Rejuvenation: the running VMM hands its program to a fresh VMM process (possibly a newer mapvisor),
 * and the program notices nothing.
 *
 * The process the user started (`mapvisor run`) is the keeper: it starts every successor on the
 * program's own stdin, stdout and stderr, with a socket pair as the successor's fd 3, and it is the one
 * that finally reports the program's exit status. So however often a program is rejuvenated, there are
 * two processes: the keeper (its VM gone after the first hand-over) and the VMM running the program.
 *
 * A hand-over, by the VMM running the program (the keeper itself the first time, else its current
 * successor, which asks the keeper over fd 3), in lines on the fd 3 channels:
 *  1. A successor is started: `mapvisor restore DIR --in-place --standby-fd 3 --space S [--api SOCKET]`.
 *     It loads, builds its VM and first vCPU, and says "standby". The program runs all along: no
 *     downtime yet.
 *  2. The running VMM pauses the program, checkpoints it in place (registers and tables; the memory stays
 *     in the --memory-dir file, and nothing is flushed to disk: both VMMs map the same page cache), ends
 *     its VM (unmapping the image and unlocking it) and says "go".
 *  3. The successor reads the checkpoint, maps the memory file and the image, runs the program and says
 *     "running MS" (MS: its restore time to the first instruction); then it serves the control socket
 *     and says "serving". The old VMM answers the rejuvenate request after that.
 * The downtime is from the pause to "running". A successor asking for a successor of its own says
 * "successor ARGS" to the keeper, which answers "standby" (or "failed WHY"), relays its "go" to the new
 * one and the new one's "running MS" and "serving" back; "abandon" drops a successor that will not be needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import type { Duplex } from 'node:stream';
import { MapvisorError } from '../errors.js';
import * as libc from '../host/libc.js';

/** Lines read from a stream, one at a time. */
class Lines {
  private buf = '';
  private readonly queue: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;
  constructor(stream: Duplex) {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      this.buf += d;
      for (let i = this.buf.indexOf('\n'); i >= 0; i = this.buf.indexOf('\n')) {
        this.push(this.buf.slice(0, i));
        this.buf = this.buf.slice(i + 1);
      }
    });
    const end = (): void => {
      this.ended = true;
      this.waiter?.(null);
      this.waiter = null;
    };
    stream.on('end', end);
    stream.on('error', end);
    stream.on('close', end);
  }
  private push(line: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(line);
    } else this.queue.push(line);
  }
  /** The next line, or null once the stream ended. */
  next(): Promise<string | null> {
    const l = this.queue.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.ended) return Promise.resolve(null);
    return new Promise((r) => (this.waiter = r));
  }
}

const failure = (what: string, said: string | null, fix: string): MapvisorError =>
  new MapvisorError('EREJUVENATE', `${what} (it said ${JSON.stringify(said)})`, fix);

/** The new VMM's "running MS [PID]" line (the keeper relays it with the pid added). */
function expectRunning(line: string | null): { restoreMs: number; pid: number | null } {
  const m = /^running (\S+)(?: (\d+))?$/.exec(line ?? '');
  if (!m) throw failure('the new VMM failed to restore the program', line, 'see its message above; the checkpoint is intact: mapvisor restore DIR --in-place');
  return { restoreMs: Number(m[1]), pid: m[2] === undefined ? null : Number(m[2]) };
}

/** Its "serving" line: the control socket is up. */
function expectServing(line: string | null): void {
  if (line !== 'serving') throw failure('the new VMM runs the program but cannot serve its control socket', line, 'see its message above');
}

/** Its "standby" line: the VM is built. */
function expectStandby(line: string | null): void {
  if (line !== 'standby') throw failure('the new VMM did not start', line, 'see its message above; the program keeps running where it was');
}

/** A successor process as its starter (the keeper) sees it. */
class Child {
  readonly lines: Lines;
  readonly exit: Promise<number>;
  handedOver = false;
  private constructor(
    readonly proc: ChildProcess,
    readonly channel: Duplex,
  ) {
    this.lines = new Lines(channel);
    // Exit status as a shell reports it: 128 + N for death by signal N.
    this.exit = new Promise<number>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + constants.signals[signal] : 1))));
  }

  /** Start a successor restoring `dir` in place; resolves once it stands by. */
  static async start(cli: string, dir: string, args: string[]): Promise<Child> {
    const proc = spawn(process.execPath, [cli, 'restore', dir, '--in-place', '--standby-fd', '3', ...args], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'] });
    const c = new Child(proc, proc.stdio[3] as Duplex);
    try {
      expectStandby(await c.lines.next());
    } catch (e) {
      proc.kill('SIGKILL');
      throw e;
    }
    return c;
  }

  /**
   * The old VM is gone: restore. `running` resolves with the restore time once the program runs again
   * (the downtime ends there); `serving` once the new VMM also serves the control socket.
   */
  go(): { running: Promise<number>; serving: Promise<void> } {
    this.channel.write('go\n');
    const running = this.lines.next().then((line) => expectRunning(line).restoreMs);
    const serving = running.then(async () => expectServing(await this.lines.next()));
    serving.catch(() => undefined);
    return { running, serving };
  }

  send(line: string): void {
    this.channel.write(`${line}\n`);
  }
}

/**
 * The keeper (the process the user started): hands its own VM's program to a first successor, then
 * serves its successors' requests for successors of their own, and ends with the program.
 */
export class Keeper {
  private current: Child;
  private resolveExit!: (status: number) => void;
  /** The program's exit status, from whichever VMM ran it last. */
  readonly exit = new Promise<number>((r) => (this.resolveExit = r));

  private constructor(
    first: Child,
    private readonly cli: string,
  ) {
    this.current = first;
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => this.current.proc.kill(sig));
  }

  /** Start the first successor (this process's VM still runs the program). */
  static async start(cli: string, dir: string, args: string[]): Promise<Keeper> {
    return new Keeper(await Child.start(cli, dir, args), cli);
  }

  get pid(): number {
    return this.current.proc.pid ?? 0;
  }

  /**
   * This process's VM is gone: the first successor restores (resolves with its restore time and when
   * the program ran again, performance.now()), and from then on its requests are served.
   */
  async go(): Promise<{ restoreMs: number; runningAt: number }> {
    const g = this.current.go();
    const restoreMs = await g.running;
    const runningAt = performance.now();
    await g.serving;
    void this.serve(this.current);
    return { restoreMs, runningAt };
  }

  abandon(): void {
    this.current.proc.kill('SIGKILL');
  }

  /** Serve `c` (running the program) until it exits: its requests for a successor, and its end. */
  private async serve(c: Child): Promise<void> {
    let next: Child | null = null;
    for (let line = await c.lines.next(); line !== null; line = await c.lines.next()) {
      if (line.startsWith('successor ')) {
        try {
          const { dir, args } = JSON.parse(line.slice(10)) as { dir: string; args: string[] };
          next = await Child.start(this.cli, dir, args);
          c.send('standby');
        } catch (e) {
          c.send(`failed ${(e as Error).message.replace(/\n/g, ' ')}`);
        }
      } else if (line === 'abandon') {
        next?.proc.kill('SIGKILL');
        next = null;
      } else if (line === 'go' && next) {
        // Relay: the new VMM's "running" (as soon as it comes: the downtime ends there), then "serving".
        const n: Child = next;
        next = null;
        try {
          const g = n.go();
          const ms = await g.running;
          c.handedOver = true;
          this.current = n;
          c.send(`running ${ms} ${n.proc.pid ?? 0}`);
          await g.serving;
          c.send('serving');
          void this.serve(n);
        } catch (e) {
          c.send(`failed ${(e as Error).message.replace(/\n/g, ' ')}`);
        }
      }
    }
    const status = await c.exit;
    if (!c.handedOver) this.resolveExit(status);
  }
}

/**
 * A successor's own end of fd 3 (mapvisor restore --standby-fd 3): says "standby", waits for "go",
 * says "running MS"; and later asks the keeper for a successor of its own.
 */
export class Standby {
  private readonly socket: Socket;
  private readonly lines: Lines;
  constructor(fd: number) {
    this.socket = new Socket({ fd, readable: true, writable: true });
    this.lines = new Lines(this.socket);
    // Die with the keeper: if it is killed, the program it reports on must not live on unseen.
    libc.prctl(libc.PR_SET_PDEATHSIG, 9, 0, 0, 0);
  }
  ready(): void {
    this.socket.write('standby\n');
  }
  async waitForGo(): Promise<void> {
    const line = await this.lines.next();
    if (line !== 'go') throw failure('the old VMM went away before handing the program over', line, 'nothing to restore; the checkpoint is unchanged');
  }
  /** The program runs again (the downtime ends here). */
  running(restoreMs: number): void {
    this.socket.write(`running ${restoreMs.toFixed(3)}\n`);
  }
  /** And the control socket is served. */
  serving(): void {
    this.socket.write('serving\n');
  }
  /** The restore failed (its error is on stderr, and in this process's exit status). */
  failed(): void {
    this.socket.write('failed\n');
  }

  /** Ask the keeper for a successor restoring `dir`; resolves once it stands by. */
  async requestSuccessor(dir: string, args: string[]): Promise<void> {
    this.socket.write(`successor ${JSON.stringify({ dir, args })}\n`);
    expectStandby(await this.lines.next());
  }
  /**
   * This VM is gone: let the successor restore. Resolves once it serves the control socket, with its
   * restore time, its pid, and when the program ran again (performance.now()).
   */
  async handOver(): Promise<{ restoreMs: number; pid: number; runningAt: number }> {
    this.socket.write('go\n');
    const running = expectRunning(await this.lines.next());
    const runningAt = performance.now();
    expectServing(await this.lines.next());
    return { restoreMs: running.restoreMs, pid: running.pid ?? 0, runningAt };
  }
  abandon(): void {
    this.socket.write('abandon\n');
  }
  /** Done with the channel (this VMM handed the program over, or the program ended). */
  close(): void {
    this.socket.destroy();
  }
}
