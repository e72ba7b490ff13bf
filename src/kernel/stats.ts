/** Counters the kernel keeps for --stats and the Sandbox API. */
import { syscallName } from '../abi/sysno.js';

export interface SyscallStat {
  name: string;
  count: number;
  /** Total nanoseconds spent handling it in the VMM (excluding the exit itself). */
  ns: number;
}

export interface StatsReport {
  syscalls: SyscallStat[];
  unimplemented: Array<{ name: string; count: number }>;
  totalSyscalls: number;
  vmmNs: number;
}

export interface SavedStats {
  counts: Array<[number, number, number]>;
  missing: Array<[number, number]>;
  total: number;
  vmmNs: number;
}

export class Stats {
  private readonly counts = new Map<number, { count: number; ns: number }>();
  private readonly missing = new Map<number, number>();
  total = 0;
  vmmNs = 0;

  syscall(nr: number, ns: number): void {
    let c = this.counts.get(nr);
    if (!c) this.counts.set(nr, (c = { count: 0, ns: 0 }));
    c.count++;
    c.ns += ns;
    this.total++;
    this.vmmNs += ns;
  }

  unimplemented(nr: number): void {
    this.missing.set(nr, (this.missing.get(nr) ?? 0) + 1);
  }

  /** The counters as data (a checkpoint carries them, so a restored program's counts go on). */
  save(): SavedStats {
    return {
      counts: [...this.counts.entries()].map(([nr, c]) => [nr, c.count, c.ns]),
      missing: [...this.missing.entries()],
      total: this.total,
      vmmNs: this.vmmNs,
    };
  }

  load(s: SavedStats): void {
    for (const [nr, count, ns] of s.counts) this.counts.set(nr, { count, ns });
    for (const [nr, count] of s.missing) this.missing.set(nr, count);
    this.total = s.total;
    this.vmmNs = s.vmmNs;
  }

  report(): StatsReport {
    return {
      syscalls: [...this.counts.entries()]
        .map(([nr, c]) => ({ name: syscallName(nr), count: c.count, ns: c.ns }))
        .sort((a, b) => b.count - a.count),
      unimplemented: [...this.missing.entries()]
        .map(([nr, count]) => ({ name: syscallName(nr), count }))
        .sort((a, b) => b.count - a.count),
      totalSyscalls: this.total,
      vmmNs: this.vmmNs,
    };
  }
}
