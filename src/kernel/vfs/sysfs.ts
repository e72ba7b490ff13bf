/**
 * /sys as runtimes read it to size themselves: the CPUs (/sys/devices/system/cpu: online, possible,
 * present, cpuN/ with its topology), the one NUMA node, and transparent huge pages' settings (Go reads
 * hpage_pmd_size). Every CPU figure is --cpus, as sched_getaffinity, /proc/cpuinfo and /proc/stat say:
 * glibc's get_nprocs reads `online`, get_nprocs_conf counts the cpuN directories, libuv's uv_cpu_info
 * reads cpuN/cpufreq/scaling_cur_freq. /sys/fs/cgroup is absent (no cgroup limits: the sandbox's own
 * --cpus and --mem are the machine's size). Attribute files are 0444 and 4096 bytes, as sysfs shows them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import type { Kernel } from '../kernel.js';
import { cpuList, cpuMask, cpuMhz } from './cpuinfo.js';
import { dir, file, link, type PDir, type PNode } from './pseudo.js';

const attr = (s: string | (() => string)) => (): PNode => file(() => `${typeof s === 'string' ? s : s()}\n`, 0o444, 4096);

const cpuRange = cpuList;
const mask = (bits: bigint, n: number): string => cpuMask(n, bits);

interface HostCache {
  index: string;
  attrs: Record<string, string>;
  /** Shared by more than one CPU on the host (an L3): shared by all of the program's CPUs too. */
  shared: boolean;
}
let hostCaches: HostCache[] | null = null;

/** The host's cache hierarchy (its first CPU's), read once: lscpu and hwloc read it from sysfs. */
function caches(): HostCache[] {
  if (hostCaches) return hostCaches;
  const base = '/sys/devices/system/cpu/cpu0/cache';
  const read = (f: string): string | null => {
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      return null;
    }
  };
  hostCaches = [];
  let names: string[] = [];
  try {
    names = readdirSync(base).filter((n) => /^index\d+$/.test(n)).sort();
  } catch {
    names = [];
  }
  for (const index of names) {
    const attrs: Record<string, string> = {};
    for (const a of ['level', 'type', 'size', 'coherency_line_size', 'ways_of_associativity', 'number_of_sets', 'physical_line_partition']) {
      const v = read(`${base}/${index}/${a}`);
      if (v !== null) attrs[a] = v;
    }
    const list = read(`${base}/${index}/shared_cpu_list`) ?? '0';
    hostCaches.push({ index, attrs, shared: /[-,]/.test(list) });
  }
  return hostCaches;
}

function cacheDir(k: Kernel, i: number): PDir {
  const n = k.cpus;
  const all = (1n << BigInt(n)) - 1n;
  const children: Record<string, () => PNode | null> = {};
  for (const c of caches()) {
    const files: Record<string, () => PNode | null> = {};
    for (const [a, v] of Object.entries(c.attrs)) files[a] = attr(v);
    files.id = attr(c.shared ? '0' : String(i));
    files.shared_cpu_list = attr(c.shared ? cpuRange(n) : String(i));
    files.shared_cpu_map = attr(mask(c.shared ? all : 1n << BigInt(i), n));
    children[c.index] = () => dir(files);
  }
  return dir(children);
}

function cpuDir(k: Kernel, i: number): PDir {
  const n = k.cpus;
  const all = (1n << BigInt(n)) - 1n;
  const children: Record<string, () => PNode | null> = {
    cache: () => cacheDir(k, i),
    topology: () =>
      dir({
        cluster_cpus: attr(mask(all, n)),
        cluster_cpus_list: attr(cpuRange(n)),
        cluster_id: attr('0'),
        core_cpus: attr(mask(1n << BigInt(i), n)),
        core_cpus_list: attr(String(i)),
        core_id: attr(String(i)),
        core_siblings: attr(mask(all, n)),
        core_siblings_list: attr(cpuRange(n)),
        die_cpus: attr(mask(all, n)),
        die_cpus_list: attr(cpuRange(n)),
        die_id: attr('0'),
        package_cpus: attr(mask(all, n)),
        package_cpus_list: attr(cpuRange(n)),
        physical_package_id: attr('0'),
        thread_siblings: attr(mask(1n << BigInt(i), n)),
        thread_siblings_list: attr(String(i)),
      }),
    node0: () => link(() => '../../node/node0'),
  };
  const mhz = cpuMhz();
  if (mhz > 0) {
    const khz = String(Math.round(mhz * 1000));
    children.cpufreq = () => dir({ cpuinfo_cur_freq: attr(khz), cpuinfo_max_freq: attr(khz), cpuinfo_min_freq: attr(khz), scaling_cur_freq: attr(khz) });
  }
  // As on x86 Linux, the boot CPU cannot go offline and has no `online` file.
  if (i > 0) children.online = attr('1');
  return dir(children);
}

function cpusDir(k: Kernel): PDir {
  const n = k.cpus;
  return dir(
    {
      isolated: attr(''),
      kernel_max: attr('8191'),
      offline: attr(''),
      online: attr(cpuRange(n)),
      possible: attr(cpuRange(n)),
      present: attr(cpuRange(n)),
      smt: () => dir({ active: attr('0'), control: attr('notsupported') }),
    },
    {
      list: () => Array.from({ length: n }, (_, i) => [`cpu${i}`, 4] as [string, number]),
      child: (name) => {
        const m = /^cpu(0|[1-9]\d*)$/.exec(name);
        return m && Number(m[1]) < n ? cpuDir(k, Number(m[1])) : null;
      },
    },
  );
}

function nodeDir(k: Kernel): PDir {
  const n = k.cpus;
  const totalKb = Math.round(k.space.layout.memLimit / 1024);
  return dir({
    has_cpu: attr('0'),
    has_memory: attr('0'),
    has_normal_memory: attr('0'),
    node0: () =>
      dir({
        cpulist: attr(cpuRange(n)),
        cpumap: attr(mask((1n << BigInt(n)) - 1n, n)),
        distance: attr('10'),
        meminfo: attr(() => `Node 0 MemTotal:       ${String(totalKb).padStart(8)} kB`),
      }),
    online: attr('0'),
    possible: attr('0'),
  });
}

/** The root of /sys for process `k`. */
export function sysRoot(k: Kernel): PDir {
  return dir({
    block: () => dir({}),
    bus: () => dir({}),
    class: () => dir({}),
    dev: () => dir({}),
    devices: () => dir({ system: () => dir({ cpu: () => cpusDir(k), node: () => nodeDir(k) }) }),
    firmware: () => dir({}),
    fs: () => dir({}),
    kernel: () =>
      dir({
        mm: () =>
          dir({
            transparent_hugepage: () =>
              dir({
                defrag: attr('always defer defer+madvise [madvise] never'),
                enabled: attr('always [madvise] never'),
                hpage_pmd_size: attr('2097152'),
                shmem_enabled: attr('always within_size advise [never] deny force'),
              }),
          }),
      }),
    module: () => dir({}),
    power: () => dir({}),
  });
}
