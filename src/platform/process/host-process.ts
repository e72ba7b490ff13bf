/**
 * The program's host process as the host kernel sees it: whether it lives, how it ended, and its
 * threads' host tids. Read from /proc, never from the control area (which the program can write),
 * except the exit word the stub's outer process writes after the program's process is reaped: by then
 * nothing of the program is left to write it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Exit } from '../platform.js';
import { sleepMs } from '../../host/sleep.js';
import { H_EXIT_KIND, H_EXIT_VALUE } from './abi.js';
import type { ControlArea } from './control.js';
import type { ProcessInfo } from './context.js';

/** The state letter and the wait status (field 52, Linux >= 3.5) of a process, or null when it is gone. */
function procStat(pid: number): { state: string; exitCode: number } | null {
  if (!(pid > 1)) return null;
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: split after its last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
    return { state: rest[0] ?? '?', exitCode: Number(rest[49] ?? '0') };
  } catch {
    return null;
  }
}

const ended = (st: { state: string } | null): boolean => st === null || st.state === 'Z' || st.state === 'X';

/** A wait(2) status as the exit the kernel reports. */
function fromWaitStatus(status: number): Exit {
  const sig = status & 0x7f;
  if (sig === 0) return { kind: 'gone', signal: null, status: (status >> 8) & 0xff, reason: "the program's host process exited" };
  return { kind: 'gone', signal: sig, status: null, reason: "the program's host process was killed" };
}

export class HostProcess implements ProcessInfo {
  private readonly tids = new Map<number, number>();
  private ended: Exit | null = null;

  constructor(
    readonly outerPid: number,
    readonly innerPid: number,
    private readonly ctl: ControlArea,
  ) {}

  pid(): number {
    return this.innerPid;
  }

  pids(): { outer: number; inner: number } {
    return { outer: this.outerPid, inner: this.innerPid };
  }

  death(): Exit | null {
    if (this.ended) return this.ended;
    const inner = procStat(this.innerPid);
    if (!ended(inner)) return null;
    if (inner) {
      this.ended = fromWaitStatus(inner.exitCode);
      return this.ended;
    }
    // Reaped by the stub's outer process, which writes how it ended and exits: wait for it to be done.
    for (let i = 0; i < 200 && !ended(procStat(this.outerPid)); i++) sleepMs(5);
    const kind = this.ctl.load(H_EXIT_KIND);
    const value = this.ctl.load(H_EXIT_VALUE);
    if (kind === 2 && value >= 1 && value <= 64) this.ended = { kind: 'gone', signal: value, status: null, reason: "the program's host process was killed" };
    else if (kind === 1 && value >= 0 && value <= 255) this.ended = { kind: 'gone', signal: null, status: value, reason: "the program's host process exited" };
    else this.ended = { kind: 'gone', signal: 9, status: null, reason: "the program's host process ended (how is unknown)" };
    return this.ended;
  }

  hostTid(nsTid: number): number {
    const known = this.tids.get(nsTid);
    if (known) return known;
    try {
      for (const t of readdirSync(`/proc/${this.innerPid}/task`)) {
        const m = /NSpid:\s+(\d+)\s+(\d+)/.exec(readFileSync(`/proc/${this.innerPid}/task/${t}/status`, 'utf8'));
        if (m) this.tids.set(Number(m[2]), Number(m[1]));
        else this.tids.set(Number(t), Number(t)); // no pid namespace: the same number
      }
    } catch {
      return 0;
    }
    return this.tids.get(nsTid) ?? 0;
  }
}
