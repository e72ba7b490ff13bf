/**
 * Rejuvenation: the running VMM hands its program to a fresh VMM process (possibly a newer mapvisor),
 * and the program notices nothing. The steps, over a socket pair that is the successor's fd 3:
 *
 *  1. The old VMM starts `mapvisor restore DIR --in-place --standby-fd 3 --space S [--api SOCKET]` on
 *     the program's own stdin, stdout and stderr. The successor loads, builds its VM and first vCPU,
 *     and says "standby". The program runs all along: this costs no downtime.
 *  2. The old VMM pauses the program, checkpoints it in place (registers and tables; the memory stays
 *     in the --memory-dir file, and nothing is flushed to disk: both VMMs map the same page cache),
 *     ends its VM (unlocking the image) and says "go".
 *  3. The successor reads the checkpoint, maps the memory file and the image, runs the program, serves
 *     the control socket, and says "running MS" (MS: its restore time to the first instruction).
 *
 * The downtime is from the pause to "running". The old process then only waits for the successor and
 * passes its exit status on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, writeSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { MapvisorError } from '../errors.js';

/** Lines read from a stream, one at a time. */
class Lines {
  private buf = '';
  private readonly queue: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;
  constructor(stream: NodeJS.ReadableStream) {
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

/** The old VMM's side: a successor started and standing by. */
export class Successor {
  private constructor(
    private readonly child: ChildProcess,
    private readonly channel: Duplex,
    private readonly lines: Lines,
    /** Resolves with the successor's exit status (128 + N for a signal). */
    readonly exit: Promise<number>,
  ) {}

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Start `mapvisor restore DIR --in-place --standby-fd 3 ...` and wait until it stands by. */
  static async start(cli: string, dir: string, args: string[]): Promise<Successor> {
    const child = spawn(process.execPath, [cli, 'restore', dir, '--in-place', '--standby-fd', '3', ...args], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'] });
    const channel = child.stdio[3] as Duplex;
    const exit = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1))));
    const s = new Successor(child, channel, new Lines(channel), exit);
    const first = await s.lines.next();
    if (first !== 'standby') {
      child.kill('SIGKILL');
      throw new MapvisorError('EREJUVENATE', `the new VMM did not start (it said ${JSON.stringify(first)}, exit ${await exit})`, 'see its message above; the program keeps running in this VMM');
    }
    return s;
  }

  /** The checkpoint is written and this VMM's VM is gone: restore. Resolves once the program runs. */
  async go(): Promise<{ restoreMs: number }> {
    this.channel.write('go\n');
    const line = await this.lines.next();
    const m = /^running (\S+)$/.exec(line ?? '');
    if (!m) throw new MapvisorError('EREJUVENATE', `the new VMM failed to restore the program (it said ${JSON.stringify(line)})`, 'see its message above; the checkpoint it was given is intact: mapvisor restore DIR --in-place');
    this.channel.end();
    return { restoreMs: Number(m[1]) };
  }

  /** Give up on the successor (the hand-over did not happen). */
  abandon(): void {
    this.child.kill('SIGKILL');
  }
}

/** The successor's side, on fd `fd`: say "standby", wait for "go", and later say "running MS". */
export class Standby {
  private readonly lines: Lines;
  constructor(private readonly fd: number) {
    this.lines = new Lines(createReadStream('', { fd, autoClose: false }));
  }
  ready(): void {
    writeSync(this.fd, 'standby\n');
  }
  async waitForGo(): Promise<void> {
    const line = await this.lines.next();
    if (line !== 'go') throw new MapvisorError('EREJUVENATE', 'the old VMM went away before handing the program over', 'nothing to restore; the checkpoint is unchanged');
  }
  running(restoreMs: number): void {
    writeSync(this.fd, `running ${restoreMs.toFixed(3)}\n`);
  }
  /** The restore failed (its error is on stderr, and in this process's exit status). */
  failed(): void {
    writeSync(this.fd, 'failed\n');
  }
}
