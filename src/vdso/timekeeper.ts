/**
 * The sandbox's clocks, one formula for the vDSO and the kernel alike: CLOCK_MONOTONIC is
 *
 *     monoBase + ((tsc - tscBase) * mult >> 32)
 *
 * on the host's TSC, and the other clocks are fixed offsets from it. The kernel's clock_gettime,
 * gettimeofday and time answer from the same formula, so a program never sees the vDSO and a system
 * call disagree.
 *
 * Calibration follows the host's own clocks: at start the TSC is timed against CLOCK_MONOTONIC for
 * about a millisecond; later updates (at 10 ms, 100 ms, 1 s, then every second, driven by the kernel's
 * served calls) measure the rate over everything since the start and steer the formula toward the
 * host clock over the next second, NTP-style: each new segment begins where the last one was (so time
 * never jumps back), and the rate correction is bounded (MAX_SLEW). CLOCK_REALTIME is re-read from
 * the host at each update (it may step, as on Linux).
 *
 * A checkpoint records the program's CLOCK_MONOTONIC; a restore whose host clock is behind it (another
 * boot) adds the difference to every later reading (`monoOffset`), so monotonic time never goes back.
 *
 * Every page the kernel keeps for a vDSO (vvar, layout.ts) is registered here and rewritten at each
 * update, under its seqlock.
 */
import * as libc from '../host/libc.js';
import { rdtsc } from '../host/tsc.js';
import { VDSO_FLAG, VVAR, VVAR_SIZE } from './layout.js';

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;
const CLOCK_REALTIME_COARSE = 5;
const CLOCK_MONOTONIC_COARSE = 6;
const CLOCK_BOOTTIME = 7;
const CLOCK_TAI = 11;
/** The clocks the formula answers (the rest are the host's: CPU time, MONOTONIC_RAW). */
export const FORMULA_CLOCKS = new Set([CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME, CLOCK_TAI]);

const SHIFT = 32n;
/** The most the rate is bent to catch up with the host clock: 500 ppm (Linux's NTP limit). */
const MAX_SLEW_PPM = 500n;
/** An update steers toward the host clock over this long (ns). */
const STEER_NS = 1_000_000_000n;
/** When updates happen, in ms after the start; then every UPDATE_EVERY_MS. */
const FIRST_UPDATES_MS = [10, 100, 1000];
const UPDATE_EVERY_MS = 1000;

const scratchAddr = libc.mmap(0, 4096, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
const scratch = new DataView(libc.view(scratchAddr, 16));

/** The host's reading of `clock`, in ns. */
export function hostNs(clock: number): bigint {
  libc.clockGettime(clock, scratchAddr);
  return scratch.getBigInt64(0, true) * 1_000_000_000n + scratch.getBigInt64(8, true);
}

interface Sample {
  tsc: bigint;
  mono: bigint;
  real: bigint;
  boot: bigint;
  tai: bigint;
}

/** The TSC and the host's clocks at (nearly) one instant: the narrowest of a few brackets. */
function sample(): Sample {
  let best: Sample | null = null;
  let bestWidth = 0n;
  for (let i = 0; i < 3; i++) {
    const t0 = rdtsc();
    const mono = hostNs(CLOCK_MONOTONIC);
    const t1 = rdtsc();
    const width = t1 - t0;
    if (best && width >= bestWidth) continue;
    const real = hostNs(CLOCK_REALTIME);
    const boot = hostNs(CLOCK_BOOTTIME);
    const tai = hostNs(CLOCK_TAI);
    best = { tsc: t0 + width / 2n, mono, real: real - (hostNs(CLOCK_MONOTONIC) - mono) / 2n, boot, tai };
    bestWidth = width;
  }
  return best!;
}

/** Something that keeps a vvar page: writes the page's bytes (called under the seqlock protocol). */
export interface VvarPage {
  /** Write `bytes` at `offset` in the page; false when the page is gone (the program unmapped it). */
  write(offset: number, bytes: Uint8Array): boolean;
  /** The TSC the program reads minus the host's (0 on both platforms here). */
  readonly tscOffset: bigint;
  /** getcpu can use rdtscp's TSC_AUX. */
  readonly cpuAux: boolean;
  readonly ncpus: number;
}

export class Timekeeper {
  private tscBase: bigint;
  private monoBase: bigint;
  private mult: bigint;
  private realOffset: bigint;
  private bootOffset: bigint;
  private taiOffset: bigint;
  /** Added to the host's CLOCK_MONOTONIC (and BOOTTIME) after a restore onto a host clock behind the checkpoint's. */
  private monoOffset = 0n;
  private readonly anchor: Sample;
  private readonly startMs = performance.now();
  private nextUpdate = 0;
  private updates = 0;
  private seq = 0;
  private readonly pages = new Set<VvarPage>();

  constructor() {
    // A first rate from ~1 ms of the TSC against CLOCK_MONOTONIC.
    this.anchor = sample();
    let s = sample();
    while (s.mono - this.anchor.mono < 1_000_000n) s = sample();
    this.mult = ((s.mono - this.anchor.mono) << SHIFT) / (s.tsc - this.anchor.tsc);
    this.tscBase = s.tsc;
    this.monoBase = s.mono;
    this.realOffset = s.real - s.mono;
    this.bootOffset = s.boot - s.mono;
    this.taiOffset = s.tai - s.real;
    this.nextUpdate = this.startMs + FIRST_UPDATES_MS[0]!;
  }

  private monoAt(tsc: bigint): bigint {
    const delta = tsc > this.tscBase ? tsc - this.tscBase : 0n;
    return this.monoBase + ((delta * this.mult) >> SHIFT);
  }

  /** `clock` now, in ns, for a clock in FORMULA_CLOCKS. */
  now(clock: number): bigint {
    const mono = this.monoAt(rdtsc());
    switch (clock) {
      case CLOCK_MONOTONIC:
      case CLOCK_MONOTONIC_COARSE:
        return mono;
      case CLOCK_BOOTTIME:
        return mono + this.bootOffset;
      case CLOCK_TAI:
        return mono + this.realOffset + this.taiOffset;
      default:
        return mono + this.realOffset;
    }
  }

  /** Called at each served system call: updates the formula when one is due. */
  tick(): void {
    if (performance.now() >= this.nextUpdate) this.update();
  }

  /** A new segment: continuous with the last, its rate steered toward the host clock. */
  update(): void {
    const s = sample();
    const ours = this.monoAt(s.tsc);
    const target = s.mono + this.monoOffset;
    // The rate over everything since the start (the longer, the truer), bent to close the gap in STEER_NS.
    const rate = ((s.mono - this.anchor.mono) << SHIFT) / (s.tsc - this.anchor.tsc > 0n ? s.tsc - this.anchor.tsc : 1n);
    let gap = target - ours;
    const limit = (STEER_NS * MAX_SLEW_PPM) / 1_000_000n;
    if (gap > limit) gap = limit;
    if (gap < -limit) gap = -limit;
    this.mult = (rate * (STEER_NS + gap)) / STEER_NS;
    this.tscBase = s.tsc;
    this.monoBase = ours;
    // REALTIME, BOOTTIME and TAI follow the host's exactly from here (REALTIME may step, as on Linux).
    this.realOffset = s.real - ours;
    this.bootOffset = s.boot - s.mono;
    this.taiOffset = s.tai - s.real;
    this.updates++;
    const elapsed = performance.now() - this.startMs;
    const next = FIRST_UPDATES_MS.find((t) => t > elapsed);
    this.nextUpdate = this.startMs + (next ?? elapsed + UPDATE_EVERY_MS);
    for (const p of this.pages) if (!this.writePage(p)) this.pages.delete(p);
  }

  /**
   * After a restore: CLOCK_MONOTONIC continues from at least `ns` (the checkpoint's reading). On the
   * same boot the host clock is already past it and nothing changes.
   */
  keepMonotonicFrom(ns: bigint): void {
    const now = this.now(CLOCK_MONOTONIC);
    if (now >= ns) return;
    this.monoOffset += ns - now;
    this.monoBase += ns - now;
    for (const p of this.pages) if (!this.writePage(p)) this.pages.delete(p);
  }

  /** Start keeping `page` current (written now, then at every update). */
  attach(page: VvarPage): void {
    this.pages.add(page);
    this.writePage(page);
  }

  detach(page: VvarPage): void {
    this.pages.delete(page);
  }

  /** The page's bytes for `page` (exported for tests). */
  pageBytes(page: Pick<VvarPage, 'tscOffset' | 'cpuAux' | 'ncpus'>): Uint8Array {
    const b = new Uint8Array(VVAR_SIZE);
    const d = new DataView(b.buffer);
    d.setUint32(VVAR.flags, VDSO_FLAG.tsc | (page.cpuAux ? VDSO_FLAG.cpuAux : VDSO_FLAG.cpuZero), true);
    d.setBigUint64(VVAR.tscBase, BigInt.asUintN(64, this.tscBase + page.tscOffset), true);
    d.setBigUint64(VVAR.monoBaseNs, this.monoBase, true);
    d.setBigUint64(VVAR.mult, this.mult, true);
    d.setUint32(VVAR.shift, Number(SHIFT), true);
    d.setUint32(VVAR.ncpus, page.ncpus, true);
    d.setBigInt64(VVAR.realOffsetNs, this.realOffset, true);
    d.setBigInt64(VVAR.bootOffsetNs, this.bootOffset, true);
    d.setBigInt64(VVAR.taiOffsetNs, this.taiOffset, true);
    d.setBigUint64(VVAR.coarseResNs, 4_000_000n, true);
    return b;
  }

  /** The seqlock write: seq odd, the fields, seq even (each write a host call: ordered). */
  private writePage(page: VvarPage): boolean {
    const body = this.pageBytes(page);
    const seq = new Uint8Array(4);
    const sv = new DataView(seq.buffer);
    this.seq = (this.seq + 1) | 1;
    sv.setUint32(0, this.seq >>> 0, true);
    if (!page.write(VVAR.seq, seq)) return false;
    page.write(VVAR.flags, body.subarray(VVAR.flags));
    this.seq = (this.seq + 1) >>> 0;
    sv.setUint32(0, this.seq, true);
    page.write(VVAR.seq, seq);
    return true;
  }

  /** How many times the formula was updated (for stats and tests). */
  get updateCount(): number {
    return this.updates;
  }
}

let sandboxClock: Timekeeper | null = null;

/** The sandbox's timekeeper (one per VMM thread that runs kernels). */
export function timekeeper(): Timekeeper {
  return (sandboxClock ??= new Timekeeper());
}
