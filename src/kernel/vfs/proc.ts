/**
 * /proc and /sys as programs read them (proc(5), sysfs(5)). /proc holds every process's directory
 * (cmdline, comm, environ, maps, stat, statm, status, limits, mounts, mountinfo, cgroup, fd/ and
 * fdinfo/, task/TID/ with each thread's own files, and the exe, cwd and root links) and the
 * system-wide files (cpuinfo, meminfo, stat, uptime, loadavg, version, filesystems, swaps, sys/...);
 * /sys (sysfs.ts) the CPU and memory topology that runtimes read to size their thread pools. Every
 * figure agrees with --cpus and --mem, and with what the system calls say (sched_getaffinity, uname,
 * sysinfo). Contents are made when a file is opened, so they are what the kernel knows at that moment.
 * Writes are refused as Linux refuses them to a read-only file (EACCES).
 */
import { procMountinfoLines, procMountsLines } from './mounts.js';
import { fstatSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { StatInfo } from '../../abi/stat.js';
import { E } from '../../abi/errno.js';
import { MemFile } from '../files/memfile.js';
import type { FileOps, OpenFile } from '../files/file.js';
import type { Kernel } from '../kernel.js';
import { UNAME } from '../sys/process.js';
import { cpuinfoText, cpuList, cpuMask } from './cpuinfo.js';
import { sysRoot } from './sysfs.js';
import { DT_DIR, DT_LNK, dir, file, link, nodeStat, walk, type PDir, type PNode, type WalkResult } from './pseudo.js';

// ---------------------------------------------------------------------------------------------------
// What /proc needs that the kernel does not keep: each process's environment as execve gave it, and
// when it started. Set by the hooks in exec (procExec), fork (procFork) and the sandbox's first
// process (procStart).

interface ProcInfo {
  envp: string[];
  /** performance.now() when the process was made (fork), kept across execve as on Linux. */
  started: number;
  /** The largest VmSize seen (VmPeak). */
  peak: number;
  /** /proc/PID/oom_score_adj as last written (kept across fork and exec, as on Linux). */
  oomScoreAdj: number;
}
const info = new WeakMap<Kernel, ProcInfo>();

function infoOf(p: Kernel): ProcInfo {
  let i = info.get(p);
  if (!i) {
    i = { envp: [], started: bootMs(), peak: 0, oomScoreAdj: 0 };
    info.set(p, i);
  }
  return i;
}

/** The sandbox's first process starts with `envp`. */
export function procStart(k: Kernel, envp: readonly string[]): void {
  info.set(k, { envp: [...envp], started: performance.now(), peak: 0, oomScoreAdj: 0 });
}

/** A fork's child: its parent's environment, its own start time. */
export function procFork(parent: Kernel, child: Kernel): void {
  info.set(child, { envp: infoOf(parent).envp, started: performance.now(), peak: 0, oomScoreAdj: infoOf(parent).oomScoreAdj });
}

/** The environment execve gave process `k` (/proc/PID/environ; checkpoints keep it). */
export function procEnviron(k: Kernel): string[] {
  return [...infoOf(k).envp];
}

/** execve: the new program's environment. */
export function procExec(k: Kernel, envp: readonly string[]): void {
  const i = infoOf(k);
  i.envp = [...envp];
  i.peak = 0;
}

/** performance.now() at the sandbox's "boot" (the VMM process's start, as /proc/uptime and sysinfo count it). */
function bootMs(): number {
  return performance.now() - process.uptime() * 1000;
}

const CLK_TCK = 100;
const PAGE = 4096;
const kb = (bytes: number): number => Math.round(bytes / 1024);
const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

// ---------------------------------------------------------------------------------------------------
// Memory figures

interface MemUse {
  size: number;
  anonRss: number;
  fileRss: number;
  shmem: number;
  data: number;
  stack: number;
  exe: number;
  lib: number;
}

/** Bytes of the anonymous memory file that hold pages (what the process has touched and not freed). */
function anonResident(p: Kernel): number {
  try {
    return fstatSync(p.space.anon.fd).blocks * 512;
  } catch {
    return 0;
  }
}

function memUse(p: Kernel): MemUse {
  const u: MemUse = { size: 0, anonRss: 0, fileRss: 0, shmem: 0, data: 0, stack: 0, exe: 0, lib: 0 };
  if (p.zombie || p.released) return u;
  let anonMapped = 0;
  for (const r of p.space.regions.regions()) {
    const len = r.end - r.start;
    u.size += len;
    const isFile = r.backing.kind === 'file';
    if (isFile) u.fileRss += len;
    else anonMapped += len;
    if (r.shared && !isFile) u.shmem += len;
    if (r.tag === 'stack') u.stack += len;
    else if (r.prot & 2 && !r.shared) u.data += len;
    if (r.prot & 4 && r.path) {
      if (r.path === p.exePath) u.exe += len;
      else u.lib += len;
    }
  }
  u.anonRss = Math.min(anonMapped, anonResident(p));
  const i = infoOf(p);
  i.peak = Math.max(i.peak, u.size);
  return u;
}

/** The processes whose memory counts: every live one, a space shared (vfork, threads) counted once. */
function liveProcs(k: Kernel): Kernel[] {
  const all = k.procs ? k.procs.live() : [k];
  const seen = new Set<unknown>();
  return all.filter((p) => {
    if (p.zombie || p.released || seen.has(p.space)) return false;
    seen.add(p.space);
    return true;
  });
}

/** The sandbox's memory as meminfo and sysinfo report it: --mem is the machine's RAM. */
export function memoryFigures(k: Kernel): { total: number; free: number; available: number; cached: number; anon: number; shmem: number; committed: number; pageTables: number } {
  const total = k.space.layout.memLimit;
  let anon = 0;
  let cached = 0;
  let shmem = 0;
  let committed = 0;
  for (const p of liveProcs(k)) {
    const u = memUse(p);
    anon += u.anonRss;
    cached += u.fileRss;
    shmem += u.shmem;
    committed += u.size - u.fileRss;
  }
  anon = Math.min(anon, total);
  cached = Math.min(cached, total - anon);
  const free = total - anon - cached;
  return { total, free, available: free + cached, cached, anon, shmem: Math.min(shmem, anon), committed, pageTables: Math.round(committed / 512) };
}

function meminfo(k: Kernel): string {
  const m = memoryFigures(k);
  const rows: Array<[string, number]> = [
    ['MemTotal', m.total], ['MemFree', m.free], ['MemAvailable', m.available], ['Buffers', 0], ['Cached', m.cached], ['SwapCached', 0],
    ['Active', m.anon + Math.round(m.cached / 2)], ['Inactive', m.cached - Math.round(m.cached / 2)], ['Active(anon)', m.anon], ['Inactive(anon)', 0],
    ['Active(file)', Math.round(m.cached / 2)], ['Inactive(file)', m.cached - Math.round(m.cached / 2)], ['Unevictable', 0], ['Mlocked', 0],
    ['SwapTotal', 0], ['SwapFree', 0], ['Zswap', 0], ['Zswapped', 0], ['Dirty', 0], ['Writeback', 0], ['AnonPages', m.anon], ['Mapped', m.cached],
    ['Shmem', m.shmem], ['KReclaimable', 0], ['Slab', 0], ['SReclaimable', 0], ['SUnreclaim', 0], ['KernelStack', 0], ['PageTables', m.pageTables],
    ['SecPageTables', 0], ['NFS_Unstable', 0], ['Bounce', 0], ['WritebackTmp', 0], ['CommitLimit', m.total], ['Committed_AS', m.committed],
    ['VmallocTotal', 34359738367 * 1024], ['VmallocUsed', 0], ['VmallocChunk', 0], ['Percpu', 0], ['HardwareCorrupted', 0], ['AnonHugePages', 0],
    ['ShmemHugePages', 0], ['ShmemPmdMapped', 0], ['FileHugePages', 0], ['FilePmdMapped', 0],
  ];
  let out = rows.map(([n, v]) => `${`${n}:`.padEnd(15)} ${String(kb(v)).padStart(8)} kB\n`).join('');
  for (const n of ['HugePages_Total', 'HugePages_Free', 'HugePages_Rsvd', 'HugePages_Surp']) out += `${`${n}:`.padEnd(15)} ${'0'.padStart(8)}\n`;
  const direct = Math.ceil(m.total / (2 << 20)) * (2 << 20);
  for (const [n, v] of [['Hugepagesize', 2 << 20], ['Hugetlb', 0], ['DirectMap4k', 0], ['DirectMap2M', direct]] as Array<[string, number]>) {
    out += `${`${n}:`.padEnd(15)} ${String(kb(v)).padStart(8)} kB\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Per-process files

const comm = (p: Kernel): string => p.threadName || (p.exePath.split('/').pop() ?? '');

/** The names of threads other than a process's first (its own is Kernel.threadName, the process's comm). */
const threadNames = new WeakMap<object, string>();

function threadObject(p: Kernel, tid: number): object | null {
  const t = p.threads?.byTid.get(tid);
  return t && t.k === p ? t : null;
}

/** prctl(PR_SET_NAME), or a write to .../task/TID/comm: the name of thread `tid` of process `k` (cut to 15 bytes by the caller). */
export function setThreadName(k: Kernel, tid: number, name: string): void {
  if (tid === k.identity.pid) {
    k.threadName = name;
    return;
  }
  const t = threadObject(k, tid);
  if (t) threadNames.set(t, name);
}

/** prctl(PR_GET_NAME), task/TID/comm: a thread's name; one never named has the process's. */
export function threadName(k: Kernel, tid: number): string {
  const t = tid === k.identity.pid ? null : threadObject(k, tid);
  return (t && threadNames.get(t)) ?? comm(k);
}
const stateLetter = (p: Kernel): string => (p.zombie ? 'Z' : p.stopped ? 'T' : 'S');
const stateName: Record<string, string> = { R: 'running', S: 'sleeping', Z: 'zombie', T: 'stopped' };
const ppid = (p: Kernel): number => p.parent?.identity.pid ?? 0;

/** The thread `tid` of process `p` (its signal mask), or null for the process itself. */
function threadOf(p: Kernel, tid: number): { blocked: bigint } | null {
  const t = p.threads?.byTid.get(tid);
  if (!t || t.k !== p) return null;
  return { blocked: p.curThread === t ? p.signals.blocked : t.blocked };
}

function sigMasks(p: Kernel): { ign: bigint; cgt: bigint } {
  let ign = 0n;
  let cgt = 0n;
  for (let s = 1; s <= 64; s++) {
    let h: bigint;
    try {
      h = p.signals.get(s).handler;
    } catch {
      continue;
    }
    if (h === 1n) ign |= 1n << BigInt(s - 1);
    else if (h !== 0n) cgt |= 1n << BigInt(s - 1);
  }
  return { ign, cgt };
}

export { cpuList, cpuMask };

/** The capability sets of a process as /proc shows them: uid 0 holds what the sandbox grants root. */
const ROOT_CAPS = 0x5ffn; // CHOWN..SETPCAP and NET_BIND_SERVICE (see sys/caps.ts)

function status(p: Kernel, tid: number): string {
  const id = p.identity;
  const u = memUse(p);
  const th = threadOf(p, tid);
  const st = stateLetter(p);
  const { ign, cgt } = sigMasks(p);
  const caps = id.uid === 0 ? ROOT_CAPS : 0n;
  const maxFd = Math.max(0, ...p.fds.entries().map(([fd]) => fd));
  let fdSize = 64;
  while (fdSize <= maxFd) fdSize *= 2;
  const sigq = p.rlimits.get(11)?.[0] ?? Infinity;
  const vm = (n: string, bytes: number): string => `${n}:\t${String(kb(bytes)).padStart(8)} kB\n`;
  const mems = `${'00000000,'.repeat(31)}00000001`;
  return (
    `Name:\t${threadName(p, tid)}\nUmask:\t${p.umask.toString(8).padStart(4, '0')}\nState:\t${st} (${stateName[st]})\n` +
    `Tgid:\t${id.pid}\nNgid:\t0\nPid:\t${tid}\nPPid:\t${ppid(p)}\nTracerPid:\t0\n` +
    `Uid:\t${id.uid}\t${id.uid}\t${id.uid}\t${id.uid}\nGid:\t${id.gid}\t${id.gid}\t${id.gid}\t${id.gid}\n` +
    `FDSize:\t${fdSize}\nGroups:\t${p.groups.map((g) => `${g} `).join('')}\n` +
    `NStgid:\t${id.pid}\nNSpid:\t${tid}\nNSpgid:\t${p.pgid}\nNSsid:\t${p.sid}\n` +
    (p.zombie
      ? ''
      : vm('VmPeak', Math.max(infoOf(p).peak, u.size)) + vm('VmSize', u.size) + vm('VmLck', 0) + vm('VmPin', 0) +
        vm('VmHWM', u.anonRss + u.fileRss) + vm('VmRSS', u.anonRss + u.fileRss) +
        `RssAnon:\t${String(kb(u.anonRss)).padStart(8)} kB\nRssFile:\t${String(kb(u.fileRss)).padStart(8)} kB\nRssShmem:\t${String(kb(u.shmem)).padStart(8)} kB\n` +
        vm('VmData', u.data) + vm('VmStk', u.stack) + vm('VmExe', u.exe) + vm('VmLib', u.lib) + vm('VmPTE', Math.round(u.size / 512)) + vm('VmSwap', 0) +
        `HugetlbPages:\t${String(0).padStart(8)} kB\nCoreDumping:\t0\nTHP_enabled:\t1\n`) +
    `Threads:\t${p.zombie ? 1 : p.threadCount}\nSigQ:\t0/${Number.isFinite(sigq) ? sigq : 127431}\n` +
    `SigPnd:\t${hex16(0n)}\nShdPnd:\t${hex16(p.signals.pending)}\nSigBlk:\t${hex16(th ? th.blocked : p.signals.blocked)}\n` +
    `SigIgn:\t${hex16(ign)}\nSigCgt:\t${hex16(cgt)}\n` +
    `CapInh:\t${hex16(0n)}\nCapPrm:\t${hex16(caps)}\nCapEff:\t${hex16(caps)}\nCapBnd:\t${hex16(ROOT_CAPS)}\nCapAmb:\t${hex16(0n)}\n` +
    `NoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\nSpeculation_Store_Bypass:\tthread vulnerable\nSpeculationIndirectBranch:\tconditional enabled\n` +
    `Cpus_allowed:\t${cpuMask(p.cpus)}\nCpus_allowed_list:\t${cpuList(p.cpus)}\nMems_allowed:\t${mems}\nMems_allowed_list:\t0\n` +
    `voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n`
  );
}

/** /proc/PID/stat: the 52 fields of proc(5); times mapvisor does not keep are 0. */
function stat(p: Kernel, tid: number): string {
  const u = memUse(p);
  const th = threadOf(p, tid);
  const { ign, cgt } = sigMasks(p);
  const regions = p.zombie || p.released ? [] : p.space.regions.regions();
  const code = regions.filter((r) => r.prot & 4 && r.path === p.exePath);
  const stack = regions.find((r) => r.tag === 'stack');
  const heap = regions.filter((r) => r.tag === 'heap');
  const data = regions.filter((r) => r.path === p.exePath && r.prot & 2);
  const started = Math.max(0, Math.round(((infoOf(p).started - bootMs()) / 1000) * CLK_TCK));
  const rsslim = p.rlimits.get(5)?.[0] ?? Infinity;
  const f: Array<string | number | bigint> = [
    tid, `(${threadName(p, tid)})`, stateLetter(p), ppid(p), p.pgid, p.sid, 0, -1, 0x400000, 0, 0, 0, 0, 0, 0,
    Math.round((p.childTimes.user / 1e6) * CLK_TCK), Math.round((p.childTimes.sys / 1e6) * CLK_TCK),
    20 + p.nice, p.nice, p.zombie ? 1 : p.threadCount, 0, started, u.size, Math.ceil((u.anonRss + u.fileRss) / PAGE),
    Number.isFinite(rsslim) ? rsslim : '18446744073709551615',
    code[0]?.start ?? 0, code[code.length - 1]?.end ?? 0, stack ? stack.end - PAGE : 0, 0, 0,
    p.signals.pending & 0x7fffffffn, (th ? th.blocked : p.signals.blocked) & 0x7fffffffn, ign & 0x7fffffffn, cgt & 0x7fffffffn,
    0, 0, 0, p.exitSignal, 0, 0, 0, 0, 0, 0,
    data[0]?.start ?? 0, data[data.length - 1]?.end ?? 0, heap[0]?.start ?? 0, 0, 0, 0, 0, p.zombie ? p.zombie.status : 0,
  ];
  return f.join(' ') + '\n';
}

function statm(p: Kernel): string {
  const u = memUse(p);
  const pg = (n: number): number => Math.ceil(n / PAGE);
  return `${pg(u.size)} ${pg(u.anonRss + u.fileRss)} ${pg(u.fileRss + u.shmem)} ${pg(u.exe)} 0 ${pg(u.data + u.stack)} 0\n`;
}

/** st_dev of the disk image as stat reports it (ext4file.ts ROOT_DEV: 8:1). */
const ROOT_MAJOR = 8;
const ROOT_MINOR = 1;

/** The file offset and inode of an image file's pages: maps shows file offsets, not image offsets. */
function fileOffset(p: Kernel, path: string, imageOffset: number, cache: Map<string, { ino: number; runs: Array<{ offset: number; length: number; physical: number | null }> } | null>): { ino: number; offset: number } {
  let f = cache.get(path);
  if (f === undefined) {
    f = null;
    try {
      const fs = p.root?.fs;
      if (fs) {
        const ino = fs.resolve(path, { cwdIno: fs.rootIno, followFinal: true });
        f = { ino, runs: fs.fileRuns(ino, 0, Math.max(fs.stat(ino).size, 1)) };
      }
    } catch {
      f = null;
    }
    cache.set(path, f);
  }
  if (!f) return { ino: 0, offset: 0 };
  const run = f.runs.find((r) => r.physical !== null && imageOffset >= r.physical && imageOffset < r.physical + r.length);
  return { ino: f.ino, offset: run ? run.offset + (imageOffset - run.physical!) : 0 };
}

/**
 * The path of an image file with every symlink resolved, as Linux prints paths (d_path): a library
 * opened as /lib/x86_64-linux-gnu/libc.so.6 on a merged-/usr image is /usr/lib/x86_64-linux-gnu/libc.so.6.
 * The path itself when it cannot be resolved (no image, removed since).
 */
export function realPath(k: Kernel, path: string): string {
  const fs = k.root?.fs;
  if (!fs || !path.startsWith('/')) return path;
  let parts = path.split('/').filter((c) => c !== '');
  let out: string[] = [];
  let hops = 0;
  while (parts.length > 0) {
    const c = parts.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      out.pop();
      continue;
    }
    try {
      const ino = fs.resolve(`/${[...out, c].join('/')}`, { cwdIno: fs.rootIno, followFinal: false });
      if ((fs.stat(ino).mode & 0o170000) === 0o120000) {
        if (++hops > 40) return path;
        const t = new TextDecoder().decode(fs.readlink(ino));
        if (t.startsWith('/')) out = [];
        parts = [...t.split('/').filter((x) => x !== ''), ...parts];
        continue;
      }
    } catch {
      return path;
    }
    out.push(c);
  }
  return `/${out.join('/')}`;
}

/** The names Linux gives mappings of no file. */
const SPECIAL_NAMES: Record<string, string> = { stack: '[stack]', heap: '[heap]', vdso: '[vdso]', vvar: '[vvar]' };

interface MapLine {
  start: number;
  end: number;
  perms: string;
  off: number;
  ino: number;
  name: string;
  file: boolean;
  shared: boolean;
  stack: boolean;
}

/**
 * The lines of /proc/PID/maps. Neighbouring regions that Linux would hold as one VMA (the same
 * protection, name and kind, file offsets that continue) are one line, as there: the kernel's region
 * map splits what a program's brk or mprotect joins again.
 */
function mapLines(p: Kernel): MapLine[] {
  if (p.zombie || p.released) return [];
  const cache = new Map();
  const real = new Map<string, string>();
  const lines: MapLine[] = [];
  for (const r of p.space.regions.regions()) {
    const perms = `${r.prot & 1 ? 'r' : '-'}${r.prot & 2 ? 'w' : '-'}${r.prot & 4 ? 'x' : '-'}${r.shared ? 's' : 'p'}`;
    let off = 0;
    let ino = 0;
    const file = r.backing.kind === 'file';
    if (r.path && file) ({ offset: off, ino } = fileOffset(p, r.path, r.backing.offset, cache));
    else if (r.path) ino = fileOffset(p, r.path, -1, cache).ino;
    let name = SPECIAL_NAMES[r.tag] ?? '';
    if (r.path) {
      if (!real.has(r.path)) real.set(r.path, realPath(p, r.path));
      name = real.get(r.path)!;
    }
    const prev = lines[lines.length - 1];
    if (
      prev && prev.end === r.start && prev.perms === perms && prev.name === name && prev.ino === ino && prev.file === file &&
      (!file || prev.off + (prev.end - prev.start) === off) && name !== '[vdso]' && name !== '[vvar]'
    ) {
      prev.end = r.end;
      continue;
    }
    lines.push({ start: r.start, end: r.end, perms, off, ino, name, file, shared: r.shared, stack: r.tag === 'stack' });
  }
  return lines;
}

function mapHeader(l: MapLine): string {
  const hex = (n: number, w = 8): string => n.toString(16).padStart(w, '0');
  const dev = l.ino ? `${hex(ROOT_MAJOR, 2)}:${hex(ROOT_MINOR, 2)}` : '00:00';
  const head = `${hex(l.start)}-${hex(l.end)} ${l.perms} ${hex(l.off)} ${dev} ${l.ino}`;
  return l.name ? `${head.padEnd(72)} ${l.name}\n` : `${head} \n`;
}

function maps(p: Kernel): string {
  return mapLines(p).map(mapHeader).join('');
}

/** smaps' figures of one mapping, as Linux prints them ("%-16s%8lu kB"). */
function smapsFields(size: number, rss: number, anon: number, shared: boolean): string {
  const row = (n: string, v: number): string => `${`${n}:`.padEnd(16)}${String(kb(v)).padStart(8)} kB\n`;
  return (
    row('Size', size) + row('KernelPageSize', PAGE) + row('MMUPageSize', PAGE) + row('Rss', rss) + row('Pss', rss) + row('Pss_Dirty', anon) +
    row('Shared_Clean', shared ? rss - anon : 0) + row('Shared_Dirty', shared ? anon : 0) + row('Private_Clean', shared ? 0 : rss - anon) +
    row('Private_Dirty', shared ? 0 : anon) + row('Referenced', rss) + row('Anonymous', shared ? 0 : anon) + row('KSM', 0) + row('LazyFree', 0) +
    row('AnonHugePages', 0) + row('ShmemPmdMapped', 0) + row('FilePmdMapped', 0) + row('Shared_Hugetlb', 0) + row('Private_Hugetlb', 0) +
    row('Swap', 0) + row('SwapPss', 0) + row('Locked', 0)
  );
}

/**
 * /proc/PID/smaps (pmap -x): each mapping's figures. File mappings count as resident (the image's pages
 * are in the host's page cache); anonymous ones share the process's resident anonymous memory out in
 * proportion to their size (the kernel does not track residency per page).
 */
function smaps(p: Kernel): string {
  const lines = mapLines(p);
  const u = memUse(p);
  const anonSize = lines.filter((l) => !l.file).reduce((s, l) => s + l.end - l.start, 0);
  const share = anonSize > 0 ? u.anonRss / anonSize : 0;
  let out = '';
  for (const l of lines) {
    const size = l.end - l.start;
    const anon = l.file ? 0 : Math.min(size, Math.round((size * share) / PAGE) * PAGE);
    const rss = l.file ? size : anon;
    const flags = [l.perms[0] === 'r' ? 'rd' : '', l.perms[1] === 'w' ? 'wr' : '', l.perms[2] === 'x' ? 'ex' : '', l.shared ? 'sh' : '', 'mr', 'mw', 'me', l.shared ? 'ms' : '', l.stack ? 'gd' : '', l.file ? '' : 'ac'];
    out += mapHeader(l) + smapsFields(size, rss, anon, l.shared) + 'THPeligible:    0\n' + `VmFlags: ${flags.filter(Boolean).join(' ')} \n`;
  }
  return out;
}

function smapsRollup(p: Kernel): string {
  const lines = mapLines(p);
  const u = memUse(p);
  const head = lines.length ? `${mapHeader({ ...lines[0]!, end: lines[lines.length - 1]!.end, perms: '---p', off: 0, ino: 0, name: '[rollup]', file: false }).trimEnd()}\n` : '';
  const rows = smapsFields(u.size, u.anonRss + u.fileRss, u.anonRss, false).split('\n').filter((r) => !/^(Size|KernelPageSize|MMUPageSize):/.test(r));
  return head + rows.join('\n');
}

function mounts(k: Kernel): string {
  const mode = k.root?.readOnly ? 'ro' : 'rw';
  return (
    (k.root ? `/dev/root / ext4 ${mode},relatime 0 0\n` : '') +
    'proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\nsysfs /sys sysfs ro,nosuid,nodev,noexec,relatime 0 0\n' +
    procMountsLines(k).map((l) => `${l}\n`).join('')
  );
}

function mountinfo(k: Kernel): string {
  const mode = k.root?.readOnly ? 'ro' : 'rw';
  return (
    (k.root ? `21 1 ${ROOT_MAJOR}:${ROOT_MINOR} / / ${mode},relatime shared:1 - ext4 /dev/root ${mode}\n` : '') +
    '22 21 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n' +
    '23 21 0:21 / /sys ro,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs ro\n' +
    procMountinfoLines(k, 21).map((l) => `${l}\n`).join('')
  );
}

const LIMITS: Array<[string, string]> = [
  ['Max cpu time', 'seconds'], ['Max file size', 'bytes'], ['Max data size', 'bytes'], ['Max stack size', 'bytes'], ['Max core file size', 'bytes'],
  ['Max resident set', 'bytes'], ['Max processes', 'processes'], ['Max open files', 'files'], ['Max locked memory', 'bytes'],
  ['Max address space', 'bytes'], ['Max file locks', 'locks'], ['Max pending signals', 'signals'], ['Max msgqueue size', 'bytes'],
  ['Max nice priority', ''], ['Max realtime priority', ''], ['Max realtime timeout', 'us'],
];

function limits(p: Kernel): string {
  const v = (n: number): string => (Number.isFinite(n) ? String(n) : 'unlimited');
  let out = `${'Limit'.padEnd(25)} ${'Soft Limit'.padEnd(20)} ${'Hard Limit'.padEnd(20)} ${'Units'.padEnd(10)}\n`;
  LIMITS.forEach(([name, unit], r) => {
    const [soft, hard] = p.rlimits.get(r) ?? [Infinity, Infinity];
    out += `${name.padEnd(25)} ${v(soft).padEnd(20)} ${v(hard).padEnd(20)} ${unit ? `${unit.padEnd(10)}\n` : '\n'}`;
  });
  return out;
}

const cstrings = (list: readonly string[]): string => list.map((a) => `${a}\0`).join('');

function fdinfo(f: OpenFile, cloexec: boolean): string {
  const O_CLOEXEC = 0o2000000;
  const ino = (() => {
    try {
      return f.ops.stat(f).ino;
    } catch {
      return 0;
    }
  })();
  return `pos:\t${f.pos}\nflags:\t0${(f.flags | (cloexec ? O_CLOEXEC : 0)).toString(8).padStart(7, '0')}\nmnt_id:\t${f.ops.kind === 'ext4' ? 21 : 15}\nino:\t${ino}\n`;
}

/**
 * A write to /proc/PID/comm (or task/TID/comm: glibc's pthread_setname_np for another thread): the
 * name, cut to 15 bytes as Linux's set_task_comm does; only within the writer's own thread group.
 */
function writeComm(k: Kernel, p: Kernel, tid: number, data: Uint8Array): number {
  if (p !== k) return -E.EINVAL;
  const end = data.indexOf(0);
  const bytes = data.subarray(0, Math.min(end < 0 ? data.length : end, 15));
  setThreadName(p, tid, new TextDecoder().decode(bytes));
  return data.length;
}

/** A write to /proc/PID/oom_score_adj: an integer from -1000 to 1000 (lowering it needs CAP_SYS_RESOURCE, which the sandbox does not grant). */
function writeOomScoreAdj(p: Kernel, data: Uint8Array): number {
  const t = new TextDecoder().decode(data).trim();
  if (!/^[+-]?\d+$/.test(t)) return -E.EINVAL;
  const v = Number(t);
  if (v < -1000 || v > 1000) return -E.EINVAL;
  const i = infoOf(p);
  if (v < i.oomScoreAdj) return -E.EACCES;
  i.oomScoreAdj = v;
  return data.length;
}

/** A process's directory (tid: the thread it is about; the process itself when tid is its pid). */
function processDir(k: Kernel, p: Kernel, tid: number, withTasks: boolean): PDir {
  const alive = (): boolean => !p.zombie && !p.released;
  const children: Record<string, () => PNode | null> = {
    cgroup: () => file(() => '0::/\n'),
    cmdline: () => file(() => (alive() ? cstrings(p.argv) : '')),
    comm: () => ({ kind: 'file', read: () => `${threadName(p, tid)}\n`, mode: 0o644, write: (d) => writeComm(k, p, tid, d) }),
    cwd: () => link(() => (alive() ? p.cwd.path : null)),
    environ: () => file(() => (alive() ? cstrings(infoOf(p).envp) : ''), 0o400),
    exe: () => link(() => (alive() ? realPath(p, p.exePath) : null)),
    fd: () => fdDir(p, false),
    fdinfo: () => fdDir(p, true),
    limits: () => file(() => limits(p)),
    loginuid: () => file(() => '4294967295', 0o644),
    maps: () => file(() => maps(p)),
    smaps: () => file(() => smaps(p)),
    smaps_rollup: () => file(() => smapsRollup(p)),
    mountinfo: () => file(() => mountinfo(k)),
    mounts: () => file(() => mounts(k)),
    oom_score: () => file(() => '0\n'),
    oom_score_adj: () => ({ kind: 'file', read: () => `${infoOf(p).oomScoreAdj}\n`, mode: 0o644, write: (d) => writeOomScoreAdj(p, d) }),
    root: () => link(() => (alive() ? '/' : null)),
    sessionid: () => file(() => '4294967295'),
    stat: () => file(() => stat(p, tid)),
    statm: () => file(() => statm(p)),
    status: () => file(() => status(p, tid)),
    wchan: () => file(() => '0'),
  };
  if (withTasks) children.task = () => taskDir(k, p);
  return dir(children);
}

/**
 * What /proc/PID/fd/N reads as: a file of the image by its resolved path; a standard stream the
 * sandbox was given by what it is on the host (pipe:[ino], socket:[ino], /dev/null, a terminal as
 * /dev/pts/0); anything else by its own name (pipe:[N], socket:[N], anon_inode:[eventfd], /dev/zero).
 */
function fdTarget(p: Kernel, f: OpenFile): string {
  if (f.ops.kind === 'ext4') return realPath(p, f.ops.name);
  const hostFd = (f.ops as { hostFd?: unknown }).hostFd;
  if (f.ops.kind === 'host' && typeof hostFd === 'number') {
    try {
      const st = fstatSync(hostFd);
      if (st.isFIFO()) return `pipe:[${st.ino}]`;
      if (st.isSocket()) return `socket:[${st.ino}]`;
      if (st.isCharacterDevice()) return st.rdev === 0x103 ? '/dev/null' : '/dev/pts/0';
    } catch {
      // a closed host fd: its name
    }
  }
  return f.ops.name;
}

function fdDir(p: Kernel, infos: boolean): PDir {
  const list = (): Array<[string, number]> => (p.zombie || p.released ? [] : p.fds.entries().map(([fd]) => [String(fd), infos ? 8 : DT_LNK]));
  return {
    kind: 'dir',
    mode: 0o500,
    list,
    child: (name) => {
      if (!/^(0|[1-9]\d*)$/.test(name) || p.zombie || p.released) return null;
      const fd = Number(name);
      const f = p.fds.get(fd);
      if (!f) return null;
      if (infos) return file(() => fdinfo(f, p.fds.cloexec(fd)));
      return { kind: 'link', target: () => fdTarget(p, f), open: () => f };
    },
  };
}

function taskDir(k: Kernel, p: Kernel): PDir {
  const tids = (): number[] => (p.zombie || p.released ? [] : p.threads ? p.threads.of(p).map((t) => t.tid).sort((a, b) => a - b) : [p.identity.pid]);
  return {
    kind: 'dir',
    list: () => tids().map((t) => [String(t), DT_DIR]),
    child: (name) => (/^\d+$/.test(name) && tids().includes(Number(name)) ? processDir(k, p, Number(name), false) : null),
  };
}

// ---------------------------------------------------------------------------------------------------
// System-wide files

function uptime(): number {
  return process.uptime();
}

/** CPU time as /proc/stat counts it (USER_HZ ticks): the sandbox's own use, the rest of each CPU's time idle. */
function systemStat(k: Kernel): string {
  const ticks = uptime() * CLK_TCK;
  const used = process.cpuUsage();
  const user = Math.round((used.user / 1e6) * CLK_TCK);
  const sys = Math.round((used.system / 1e6) * CLK_TCK);
  const n = k.cpus;
  const line = (name: string, u: number, s: number, idle: number): string => `${name} ${u} 0 ${s} ${Math.max(0, Math.round(idle))} 0 0 0 0 0 0\n`;
  let out = line('cpu ', user, sys, ticks * n - user - sys);
  for (let i = 0; i < n; i++) out += line(`cpu${i}`, Math.floor(user / n), Math.floor(sys / n), ticks - (user + sys) / n);
  const procs = k.procs ? k.procs.live() : [k];
  const running = Math.max(1, procs.filter((p) => !p.zombie && !p.stopped).length);
  out += `intr 0\nctxt 0\nbtime ${Math.floor(Date.now() / 1000 - uptime())}\nprocesses ${(k.threads?.nextThreadId ?? 2) - 1}\n`;
  out += `procs_running ${Math.min(running, n)}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n`;
  return out;
}

/** /proc/vmstat: the page counts of meminfo, in pages; event counters the sandbox does not keep are 0. */
function vmstat(k: Kernel): string {
  const m = memoryFigures(k);
  const pg = (n: number): number => Math.floor(n / PAGE);
  const rows: Array<[string, number]> = [
    ['nr_free_pages', pg(m.free)], ['nr_zone_inactive_anon', 0], ['nr_zone_active_anon', pg(m.anon)], ['nr_zone_inactive_file', pg(m.cached) - Math.floor(pg(m.cached) / 2)],
    ['nr_zone_active_file', Math.floor(pg(m.cached) / 2)], ['nr_zone_unevictable', 0], ['nr_zone_write_pending', 0], ['nr_mlock', 0], ['nr_bounce', 0],
    ['nr_free_cma', 0], ['numa_hit', 0], ['numa_miss', 0], ['numa_foreign', 0], ['numa_interleave', 0], ['numa_local', 0], ['numa_other', 0],
    ['nr_inactive_anon', 0], ['nr_active_anon', pg(m.anon)], ['nr_inactive_file', pg(m.cached) - Math.floor(pg(m.cached) / 2)], ['nr_active_file', Math.floor(pg(m.cached) / 2)],
    ['nr_unevictable', 0], ['nr_slab_reclaimable', 0], ['nr_slab_unreclaimable', 0], ['nr_isolated_anon', 0], ['nr_isolated_file', 0],
    ['nr_anon_pages', pg(m.anon)], ['nr_mapped', pg(m.cached)], ['nr_file_pages', pg(m.cached)], ['nr_dirty', 0], ['nr_writeback', 0],
    ['nr_shmem', pg(m.shmem)], ['nr_anon_transparent_hugepages', 0], ['nr_kernel_stack', 0], ['nr_page_table_pages', pg(m.pageTables)],
    ['nr_dirty_threshold', pg(m.available) >> 3], ['nr_dirty_background_threshold', pg(m.available) >> 4],
    ['pgpgin', 0], ['pgpgout', 0], ['pswpin', 0], ['pswpout', 0], ['pgalloc_normal', 0], ['pgfree', 0], ['pgactivate', 0], ['pgdeactivate', 0],
    ['pgfault', 0], ['pgmajfault', 0], ['pgrefill', 0], ['pgsteal_kswapd', 0], ['pgsteal_direct', 0], ['pgscan_kswapd', 0], ['pgscan_direct', 0],
    ['oom_kill', 0], ['thp_fault_alloc', 0], ['thp_collapse_alloc', 0],
  ];
  return rows.map(([n, v]) => `${n} ${v}\n`).join('');
}

function loadavg(k: Kernel): string {
  const procs = k.procs ? k.procs.live().filter((p) => !p.zombie) : [k];
  const threads = procs.reduce((s, p) => s + p.threadCount, 0);
  return `0.00 0.00 0.00 1/${threads} ${(k.threads?.nextThreadId ?? 2) - 1}\n`;
}

/** The sandbox's boot id: one per VMM process, as one per boot on Linux. */
const BOOT_ID = randomUUID();

const text = (s: string | (() => string), mode = 0o444) => (): PNode => file(() => `${typeof s === 'string' ? s : s()}\n`, mode);

function procSys(k: Kernel): PDir {
  const threadsMax = Math.max(64, Math.floor(k.space.layout.memLimit / (8 * 16384)));
  return dir({
    fs: () =>
      dir({
        'file-max': text('9223372036854775807'),
        'file-nr': text(() => `${liveProcs(k).reduce((s, p) => s + p.fds.entries().length, 0)}\t0\t9223372036854775807`),
        inotify: () => dir({ max_queued_events: text('16384'), max_user_instances: text('128'), max_user_watches: text('65536') }),
        nr_open: text('1048576'),
        'pipe-max-size': text('1048576'),
        protected_symlinks: text('1'),
      }),
    kernel: () =>
      dir({
        cap_last_cap: text('40'),
        domainname: text(UNAME.domainname),
        hostname: text(UNAME.nodename),
        ngroups_max: text('65536'),
        osrelease: text(UNAME.release),
        ostype: text(UNAME.sysname),
        overflowgid: text('65534'),
        overflowuid: text('65534'),
        perf_event_paranoid: text('2'),
        pid_max: text('4194304'),
        random: () =>
          dir({
            boot_id: text(BOOT_ID),
            entropy_avail: text('256'),
            poolsize: text('256'),
            uuid: text(() => randomUUID()),
          }),
        randomize_va_space: text('2'),
        sem: text('32000\t1024000000\t500\t32000'),
        shmall: text('18446744073692774399'),
        shmmax: text('18446744073692774399'),
        shmmni: text('4096'),
        'threads-max': text(String(threadsMax)),
        version: text(UNAME.version),
        yama: () => dir({ ptrace_scope: text('1') }),
      }),
    net: () =>
      dir({
        core: () => dir({ somaxconn: text('4096') }),
        ipv4: () => dir({ ip_local_port_range: text('32768\t60999'), tcp_fin_timeout: text('60') }),
      }),
    vm: () =>
      dir({
        max_map_count: text('65530'),
        nr_hugepages: text('0'),
        overcommit_memory: text('0'),
        overcommit_ratio: text('50'),
        swappiness: text('60'),
      }),
  });
}

/** A process by pid, or the process a thread id belongs to (Linux lets /proc/TID be opened too). */
function processOf(k: Kernel, id: number): Kernel | null {
  if (id === k.identity.pid) return k;
  const p = k.procs?.get(id);
  if (p) return p;
  const t = k.threads?.byTid.get(id);
  return t ? t.k : null;
}

function procRoot(k: Kernel): PDir {
  const pids = (): number[] => (k.procs ? [...k.procs.byPid.keys()].sort((a, b) => a - b) : [k.identity.pid]);
  return dir(
    {
      cpuinfo: () => file(() => cpuinfoText(k.cpus)),
      filesystems: () => file(() => 'nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tpipefs\nnodev\tsockfs\n\text4\n'),
      loadavg: () => file(() => loadavg(k)),
      meminfo: () => file(() => meminfo(k)),
      mounts: () => link(() => 'self/mounts'),
      self: () => link(() => String(k.identity.pid)),
      stat: () => file(() => systemStat(k)),
      swaps: () => file(() => 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n'),
      sys: () => procSys(k),
      'thread-self': () => link(() => `${k.identity.pid}/task/${k.tid}`),
      uptime: () => file(() => {
        const up = uptime();
        return `${up.toFixed(2)} ${Math.max(0, up * k.cpus - process.cpuUsage().user / 1e6).toFixed(2)}\n`;
      }),
      vmstat: () => file(() => vmstat(k)),
      version: () => file(() => `Linux version ${UNAME.release} (root@mapvisor) (mapvisor) ${UNAME.version}\n`),
    },
    {
      list: () => pids().map((p) => [String(p), DT_DIR]),
      child: (name) => {
        if (!/^[1-9]\d*$/.test(name)) return null;
        const id = Number(name);
        const p = processOf(k, id);
        if (!p) return null;
        // /proc/TID of a thread that is not the leader: the thread's view (Linux's hidden tid entries).
        return processDir(k, p, id, true);
      },
    },
  );
}

// ---------------------------------------------------------------------------------------------------
// The interface the file system calls use (sys/fs.ts, exec.ts)

/** Resolve a path under /proc or /sys (links in the middle followed; the last one when `follow`). */
export function pseudoWalk(k: Kernel, abs: string, follow: boolean): WalkResult | number {
  return walk({ proc: () => procRoot(k), sys: () => sysRoot(k) }, abs, follow);
}

function nodeAt(k: Kernel, path: string): { node: PNode; path: string } | null {
  const w = pseudoWalk(k, path, false);
  return typeof w === 'number' || w.kind !== 'node' ? null : w;
}

/** A readable /proc or /sys file, or null. */
export function procFile(k: Kernel, path: string): MemFile | null {
  const n = nodeAt(k, path);
  if (!n || n.node.kind !== 'file') return null;
  return new PseudoFile(n.path, n.node.read(), k, nodeStat(n.path, n.node), n.node.write);
}

/** The text of a /proc or /sys file as a read of it would give it now (tests, strace), or null. */
export function procText(k: Kernel, path: string): string | null {
  const n = nodeAt(k, path);
  if (!n || n.node.kind !== 'file') return null;
  const c = n.node.read();
  return typeof c === 'string' ? c : new TextDecoder().decode(c);
}

/** The target of a /proc symlink (self, exe, cwd, root, fd/N, mounts), or null. */
export function procLink(k: Kernel, path: string): string | null {
  const n = nodeAt(k, path);
  return n && n.node.kind === 'link' ? n.node.target() : null;
}

export interface ProcEntry {
  name: string;
  /** DT_DIR, DT_REG or DT_LNK */
  type: number;
}

/** The entries of a /proc or /sys directory (. and .. first, as getdents gives them), or null when `path` is not one. */
export function procDirEntries(k: Kernel, path: string): ProcEntry[] | null {
  const n = nodeAt(k, path);
  if (!n || n.node.kind !== 'dir') return null;
  return [{ name: '.', type: DT_DIR }, { name: '..', type: DT_DIR }, ...n.node.list().map(([name, type]) => ({ name, type }))];
}

/** stat of a /proc or /sys path (not following a final link), or -errno. */
export function procStat(k: Kernel, path: string): StatInfo | number {
  const w = pseudoWalk(k, path, false);
  if (typeof w === 'number') return w;
  if (w.kind !== 'node') return -E.ENOENT;
  return nodeStat(w.path, w.node);
}

/** A /proc or /sys file as an open file: its content as it was at open, its stat as Linux gives it. */
class PseudoFile extends MemFile {
  constructor(
    name: string,
    content: string | Uint8Array,
    k: Kernel,
    private readonly st: StatInfo,
    private readonly writer?: (data: Uint8Array) => number,
  ) {
    super(name, content, k.mem, st.ino);
    this.k = k;
  }
  private readonly k: Kernel;
  override stat(): StatInfo {
    return this.st;
  }
  override write(_f?: OpenFile, addr = 0, length = 0): number {
    if (!this.writer) return -E.EACCES;
    return this.writer(this.k.mem.read(addr, Math.min(length, PAGE)));
  }
}

/** An open /proc or /sys directory: its entries as they were when it was opened. */
export class ProcDir implements FileOps {
  readonly kind = 'procdir';
  constructor(
    readonly name: string,
    readonly entries: ProcEntry[],
  ) {}
  read(): number {
    return -E.EISDIR;
  }
  write(): number {
    return -E.EISDIR;
  }
  stat(_f: OpenFile): StatInfo {
    return nodeStat(this.name, { kind: 'dir', list: () => [], child: () => null });
  }
}
