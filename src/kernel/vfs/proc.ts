/**
 * /proc as programs read it: every process's exe, cmdline, comm, maps, stat, status, cwd and fd/N,
 * the /proc and /proc/PID/fd directories (for ps and friends), and the system-wide meminfo, cpuinfo,
 * mounts, uptime, loadavg and stat. Contents are made when the file is opened, from the process
 * table, so they are what the kernel knows at that moment.
 */
import { S_IFDIR, type StatInfo } from '../../abi/stat.js';
import { E } from '../../abi/errno.js';
import { MemFile } from '../files/memfile.js';
import type { FileOps, OpenFile } from '../files/file.js';
import type { Kernel } from '../kernel.js';

/** The process a /proc path is about, and the rest of the path ('' for the directory itself). */
function target(path: string, k: Kernel): { p: Kernel; rest: string } | null {
  const m = /^\/proc\/(self|thread-self|(\d+))(\/.*)?$/.exec(path);
  if (!m) return null;
  let p: Kernel | undefined = k;
  if (m[2] !== undefined) {
    const pid = Number(m[2]);
    p = pid === k.identity.pid ? k : (k.procs?.get(pid) ?? (k.hasThread(pid) ? k : undefined));
  }
  if (!p) return null;
  return { p, rest: m[3] ?? '' };
}

function maps(k: Kernel): string {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  return k.space.regions
    .regions()
    .map((r) => {
      const perms = `${r.prot & 1 ? 'r' : '-'}${r.prot & 2 ? 'w' : '-'}${r.prot & 4 ? 'x' : '-'}${r.shared ? 's' : 'p'}`;
      const off = r.backing.kind === 'file' ? r.backing.offset : 0;
      const name = r.path ?? (r.tag === 'stack' ? '[stack]' : r.tag === 'heap' ? '[heap]' : '');
      return `${hex(r.start)}-${hex(r.end)} ${perms} ${hex(off)} 00:00 0${name ? ' '.repeat(10) + name : ''}`;
    })
    .join('\n')
    .concat('\n');
}

const comm = (p: Kernel): string => p.threadName || (p.exePath.split('/').pop() ?? '');
const state = (p: Kernel): string => (p.zombie ? 'Z' : 'S');
const ppid = (p: Kernel): number => p.parent?.identity.pid ?? 0;

/** /proc/PID/stat: the 52 fields of proc(5); times mapvisor does not keep are 0. */
function stat(p: Kernel): string {
  const vsize = p.zombie ? 0 : p.space.mappedBytes();
  const f: Array<string | number> = [
    p.identity.pid, `(${comm(p)})`, state(p), ppid(p), p.pgid, p.sid, 0, -1, 0x400000, 0, 0, 0, 0, 0, 0, 0, 0,
    20, p.nice, p.zombie ? 0 : p.threadCount, 0, 0, vsize, Math.ceil(vsize / 4096), '18446744073709551615',
  ];
  while (f.length < 52) f.push(0);
  return f.join(' ') + '\n';
}

function status(p: Kernel): string {
  const id = p.identity;
  return (
    `Name:\t${comm(p)}\nUmask:\t${p.umask.toString(8).padStart(4, '0')}\nState:\t${state(p)} (${p.zombie ? 'zombie' : 'sleeping'})\n` +
    `Tgid:\t${id.pid}\nPid:\t${id.pid}\nPPid:\t${ppid(p)}\n` +
    `Uid:\t${id.uid}\t${id.uid}\t${id.uid}\t${id.uid}\nGid:\t${id.gid}\t${id.gid}\t${id.gid}\t${id.gid}\n` +
    `VmSize:\t${p.zombie ? 0 : Math.round(p.space.mappedBytes() / 1024)} kB\nThreads:\t${p.zombie ? 0 : p.threadCount}\n`
  );
}

/** A readable /proc file, or null. */
export function procFile(k: Kernel, path: string): MemFile | null {
  const t = target(path, k);
  let content: string | null = null;
  if (t) {
    const { p, rest } = t;
    if (rest === '/cmdline') content = p.zombie ? '' : p.argv.map((a) => `${a}\0`).join('');
    else if (rest === '/comm') content = `${comm(p)}\n`;
    else if (rest === '/maps') content = p.zombie ? '' : maps(p);
    else if (rest === '/stat') content = stat(p);
    else if (rest === '/status') content = status(p);
    else if (rest === '/mounts') content = k.root ? `/dev/root / ext4 ${k.root.readOnly ? 'ro' : 'rw'} 0 0\n` : '';
  } else if (path === '/proc/mounts') {
    content = k.root ? `/dev/root / ext4 ${k.root.readOnly ? 'ro' : 'rw'} 0 0\n` : '';
  } else if (path === '/proc/meminfo') {
    const kb = Math.round(k.space.layout.memLimit / 1024);
    const free = Math.max(0, kb - Math.round(k.space.mappedBytes() / 1024));
    content = `MemTotal:       ${kb} kB\nMemFree:        ${free} kB\nMemAvailable:   ${free} kB\n`;
  } else if (path === '/proc/cpuinfo') {
    content = Array.from({ length: k.cpus }, (_, i) => `processor\t: ${i}\nvendor_id\t: mapvisor\nmodel name\t: mapvisor vCPU\n\n`).join('');
  } else if (path === '/proc/uptime') {
    const up = process.uptime();
    content = `${up.toFixed(2)} ${(up * k.cpus).toFixed(2)}\n`;
  } else if (path === '/proc/loadavg') {
    const n = k.procs?.live().length ?? 1;
    content = `0.00 0.00 0.00 1/${n} ${k.threads?.nextThreadId ?? 2}\n`;
  } else if (path === '/proc/stat') {
    const cpus = Array.from({ length: k.cpus }, (_, i) => `cpu${i} 0 0 0 0 0 0 0 0 0 0\n`).join('');
    content = `cpu  0 0 0 0 0 0 0 0 0 0\n${cpus}btime ${Math.floor(Date.now() / 1000 - process.uptime())}\nprocesses ${k.threads?.nextThreadId ?? 2}\nprocs_running 1\nprocs_blocked 0\n`;
  }
  if (content === null) return null;
  return new MemFile(path, content, k.mem, 0x1000 + path.length);
}

/** The target of a /proc symlink (self, exe, cwd, root, fd/N), or null. */
export function procLink(k: Kernel, path: string): string | null {
  if (path === '/proc/self' || path === '/proc/thread-self') return path === '/proc/self' ? String(k.identity.pid) : `${k.identity.pid}/task/${k.tid}`;
  const t = target(path, k);
  if (!t || t.p.zombie) return null;
  const { p, rest } = t;
  if (rest === '/exe') return p.exePath;
  if (rest === '/cwd') return p.cwd.path;
  if (rest === '/root') return '/';
  const fd = /^\/fd\/(\d+)$/.exec(rest);
  if (fd) {
    const f = p.fds.get(Number(fd[1]));
    return f ? f.ops.name : null;
  }
  return null;
}

export interface ProcEntry {
  name: string;
  /** DT_DIR, DT_REG or DT_LNK */
  type: number;
}
const DT_DIR = 4;
const DT_REG = 8;
const DT_LNK = 10;

/** The entries of a /proc directory, or null when `path` is not one. */
export function procDirEntries(k: Kernel, path: string): ProcEntry[] | null {
  if (path === '/proc') {
    const pids = k.procs ? [...k.procs.byPid.keys()].sort((a, b) => a - b) : [k.identity.pid];
    return [
      ...pids.map((pid) => ({ name: String(pid), type: DT_DIR })),
      { name: 'self', type: DT_LNK },
      { name: 'thread-self', type: DT_LNK },
      ...['cpuinfo', 'loadavg', 'meminfo', 'mounts', 'stat', 'uptime'].map((name) => ({ name, type: DT_REG })),
    ];
  }
  const t = target(path, k);
  if (!t) return null;
  if (t.rest === '') {
    return [
      ...['cmdline', 'comm', 'maps', 'mounts', 'stat', 'status'].map((name) => ({ name, type: DT_REG })),
      ...['cwd', 'exe', 'root'].map((name) => ({ name, type: DT_LNK })),
      { name: 'fd', type: DT_DIR },
    ];
  }
  if (t.rest === '/fd') return t.p.zombie ? [] : t.p.fds.entries().map(([fd]) => ({ name: String(fd), type: DT_LNK }));
  return null;
}

/** An open /proc directory: its entries as they were when it was opened. */
export class ProcDir implements FileOps {
  readonly kind = 'procdir';
  constructor(
    readonly name: string,
    readonly entries: ProcEntry[],
  ) {}
  read(): number {
    return -E.EISDIR;
  }
  stat(_f: OpenFile): StatInfo {
    return procDirStat();
  }
}

export function procDirStat(): StatInfo {
  const now = Math.floor(Date.now() / 1000);
  return { dev: 0x04, ino: 1, nlink: 2, mode: S_IFDIR | 0o555, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 1024, blocks: 0, atime: [now, 0], mtime: [now, 0], ctime: [now, 0] };
}
