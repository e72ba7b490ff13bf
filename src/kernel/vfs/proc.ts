/**
 * /proc/self basics that real programs read at start-up: exe, cmdline, maps, status, fd/N, and the
 * system-wide meminfo, cpuinfo (minimal), mounts. Contents are made when the file is opened.
 */
import { MemFile } from '../files/memfile.js';
import type { Kernel } from '../kernel.js';

function self(path: string, k: Kernel): string | null {
  const m = /^\/proc\/(self|thread-self|(\d+))(\/.*)?$/.exec(path);
  if (!m) return null;
  if (m[2] !== undefined && Number(m[2]) !== k.identity.pid) return null;
  return m[3] ?? '';
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

/** A readable /proc file, or null. */
export function procFile(k: Kernel, path: string): MemFile | null {
  const rest = self(path, k);
  let content: string | null = null;
  if (rest === '/cmdline') content = k.argv.map((a) => `${a}\0`).join('');
  else if (rest === '/maps') content = maps(k);
  else if (rest === '/status') {
    content = `Name:\t${k.exePath.split('/').pop()}\nState:\tR (running)\nTgid:\t${k.identity.pid}\nPid:\t${k.identity.pid}\nPPid:\t0\n` +
      `Uid:\t${k.identity.uid}\t${k.identity.uid}\t${k.identity.uid}\t${k.identity.uid}\nGid:\t${k.identity.gid}\t${k.identity.gid}\t${k.identity.gid}\t${k.identity.gid}\n` +
      `VmSize:\t${Math.round(k.space.mappedBytes() / 1024)} kB\nThreads:\t1\n`;
  } else if (rest === '/mounts' || path === '/proc/mounts') {
    content = k.root ? `/dev/root / ext4 ${k.root.readOnly ? 'ro' : 'rw'} 0 0\n` : '';
  } else if (path === '/proc/meminfo') {
    const kb = Math.round(k.space.layout.memLimit / 1024);
    const free = Math.max(0, kb - Math.round(k.space.mappedBytes() / 1024));
    content = `MemTotal:       ${kb} kB\nMemFree:        ${free} kB\nMemAvailable:   ${free} kB\n`;
  } else if (path === '/proc/cpuinfo') {
    content = Array.from({ length: k.cpus }, (_, i) => `processor\t: ${i}\nvendor_id\t: mapvisor\nmodel name\t: mapvisor vCPU\n\n`).join('');
  }
  if (content === null) return null;
  return new MemFile(path, content, k.mem, 0x1000 + path.length);
}

/** The target of a /proc symlink (exe, cwd, fd/N), or null. */
export function procLink(k: Kernel, path: string): string | null {
  const rest = self(path, k);
  if (path === '/proc/self' || path === '/proc/thread-self') return String(k.identity.pid);
  if (rest === '/exe') return k.exePath;
  if (rest === '/cwd') return k.cwd.path;
  if (rest === '/root') return '/';
  const fd = rest === null ? null : /^\/fd\/(\d+)$/.exec(rest);
  if (fd) {
    const f = k.fds.get(Number(fd[1]));
    return f ? f.ops.name : null;
  }
  return null;
}
