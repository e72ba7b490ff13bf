/**
 * /proc and /sys formats without a machine: a process made of plain data (3 CPUs, 512 MiB, a few
 * regions) and the files its /proc shows, each checked for the fields tools read, parseable, in the
 * layout of the host's own /proc where the host has the same file; the cpuinfo flag filter against a
 * made-up CPUID; and path resolution through the pseudo trees (links in the middle and at the end,
 * loops, redirects into the image).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Kernel } from '../../src/kernel/kernel.js';
import { FdTable } from '../../src/kernel/files/file.js';
import { SignalState } from '../../src/kernel/signal-state.js';
import { procDirEntries, procLink, procStat, procText, pseudoWalk, cpuMask, cpuList } from '../../src/kernel/vfs/proc.js';
import { cpuinfoText, guestFlags, hostCpuinfo, type GuestCpuidEntry } from '../../src/kernel/vfs/cpuinfo.js';
import { dir, file, link, walk } from '../../src/kernel/vfs/pseudo.js';

const MEM = 512 * 2 ** 20;
const CPUS = 3;

/** A process as the /proc code sees it: the fields it reads, nothing running. */
function fakeProcess(): Kernel {
  const signals = new SignalState();
  signals.set(13, { handler: 1n, flags: 0n, restorer: 0n, mask: 0n }); // SIGPIPE ignored
  signals.set(2, { handler: 0x401000n, flags: 0n, restorer: 0n, mask: 0n }); // SIGINT caught
  signals.blocked = 1n << 9n;
  const regions = [
    { start: 0x400000, end: 0x401000, prot: 1, shared: false, backing: { kind: 'anon', id: 1, offset: 0 }, tag: 'elf', path: '/usr/bin/prog' },
    { start: 0x401000, end: 0x402000, prot: 5, shared: false, backing: { kind: 'anon', id: 1, offset: 0x1000 }, tag: 'elf', path: '/usr/bin/prog' },
    { start: 0x600000, end: 0x621000, prot: 3, shared: false, backing: { kind: 'anon', id: 1, offset: 0x2000 }, tag: 'heap' },
    { start: 0x621000, end: 0x642000, prot: 3, shared: false, backing: { kind: 'anon', id: 1, offset: 0x23000 }, tag: 'heap' },
    { start: 0x3ff800000, end: 0x400000000, prot: 3, shared: false, backing: { kind: 'anon', id: 1, offset: 0x50000 }, tag: 'stack' },
  ];
  const k = {
    identity: { pid: 1, uid: 0, gid: 0 }, umask: 0o022, zombie: null, released: false, stopped: 0, threadName: 'prog', exePath: '/usr/bin/prog',
    argv: ['prog', 'a b'], parent: null, pgid: 1, sid: 1, groups: [0, 100], cpus: CPUS, nice: 0, exitSignal: 17, childTimes: { user: 0, sys: 0 },
    signals, fds: new FdTable(), rlimits: new Map<number, [number, number]>([[7, [1024, 1024]], [3, [8 << 20, Infinity]]]), threads: null, threadCount: 1,
    curThread: null, tid: 1, cwd: { ino: null, path: '/data' }, root: null, procs: null,
    space: { layout: { memLimit: MEM }, anon: { fd: -1 }, regions: { regions: () => regions } },
  };
  return k as unknown as Kernel;
}

const hostLines = (path: string): string[] => {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};
const keyOf = (l: string): string => l.slice(0, l.indexOf(':'));

test('/proc/PID/status: the fields tools read, tab-separated, named and ordered as Linux does', () => {
  const k = fakeProcess();
  const text = procText(k, '/proc/self/status')!;
  const lines = text.trimEnd().split('\n');
  for (const l of lines) assert.match(l, /^[A-Za-z_]+:\t/, l);
  const f = Object.fromEntries(lines.map((l) => [keyOf(l), l.slice(l.indexOf('\t') + 1)]));
  for (const n of ['Name', 'Umask', 'State', 'Tgid', 'Ngid', 'Pid', 'PPid', 'TracerPid', 'Uid', 'Gid', 'FDSize', 'Groups', 'VmPeak', 'VmSize', 'VmRSS', 'VmData', 'VmStk', 'VmExe', 'Threads', 'SigQ', 'SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Cpus_allowed', 'Cpus_allowed_list', 'Mems_allowed', 'voluntary_ctxt_switches']) {
    assert.ok(n in f, n);
  }
  assert.equal(f.Name, 'prog');
  assert.equal(f.Umask, '0022');
  assert.equal(f.Groups, '0 100 ');
  assert.equal(f.SigIgn, '0000000000001000');
  assert.equal(f.SigCgt, '0000000000000002');
  assert.equal(f.SigBlk, '0000000000000200');
  assert.equal(f.Cpus_allowed, '7');
  assert.equal(f.Cpus_allowed_list, '0-2');
  assert.equal(f.VmSize, `${String((0x2000 + 0x42000 + 0x800000) / 1024).padStart(8)} kB`);
  assert.equal(f.VmStk, `${String(8192).padStart(8)} kB`);
  assert.equal(f.VmExe, `${String(4).padStart(8)} kB`);
  // The order of the host's fields, for those both have.
  const host = hostLines('/proc/self/status').map(keyOf);
  if (host.length) {
    const ours = lines.map(keyOf).filter((n) => host.includes(n));
    assert.deepEqual(ours, host.filter((n) => ours.includes(n)));
    assert.ok(ours.length >= lines.length - 1, `fields the host does not have: ${lines.map(keyOf).filter((n) => !host.includes(n))}`);
  }
});

test('/proc/PID/stat has 52 fields; statm 7; maps merges the heap and names it', () => {
  const k = fakeProcess();
  const stat = procText(k, '/proc/1/stat')!;
  assert.match(stat, /^1 \(prog\) S 0 1 1 0 -1 \d+ /);
  const rest = stat.slice(stat.indexOf(') ') + 2).trim().split(' ');
  assert.equal(rest.length + 2, 52);
  for (const x of rest.slice(1)) assert.match(x, /^-?\d+$/);
  assert.equal(rest[17], '1', 'num_threads (field 20)');
  assert.equal(procText(k, '/proc/1/statm')!.trim().split(' ').length, 7);
  const maps = procText(k, '/proc/self/maps')!.trimEnd().split('\n');
  assert.equal(maps.length, 4);
  assert.match(maps[2]!, /^00600000-00642000 rw-p 00000000 00:00 0 {27}\s*\[heap\]$/);
  assert.equal(maps[2]!.indexOf('[heap]'), 73);
  assert.match(maps[3]!, /\[stack\]$/);
  const smaps = procText(k, '/proc/self/smaps')!.split('\n');
  assert.equal(smaps.filter((l) => /^[0-9a-f]+-[0-9a-f]+ /.test(l)).length, 4);
  for (const l of smaps.filter((l) => l && !/^[0-9a-f]+-/.test(l))) assert.match(l, /^([A-Za-z_]+: +\d+ kB|THPeligible: +\d|VmFlags:( [a-z]{2})+ )$/, l);
  assert.ok(smaps.includes('VmFlags: rd wr mr mw me gd ac '), 'the stack');
  assert.match(procText(k, '/proc/self/smaps_rollup')!, /\[rollup\]\nRss: +\d+ kB\n/);
  assert.equal(procText(k, '/proc/self/cmdline'), 'prog\0a b\0');
  assert.equal(procLink(k, '/proc/self/cwd'), '/data');
  assert.equal(procLink(k, '/proc/self'), '1');
  assert.deepEqual(procDirEntries(k, '/proc/self/task')?.map((e) => e.name), ['.', '..', '1']);
});

test('/proc/meminfo: every field of the host\'s, in its order and layout, consistent with --mem', () => {
  const k = fakeProcess();
  const lines = procText(k, '/proc/meminfo')!.trimEnd().split('\n');
  for (const l of lines) assert.match(l, /^[A-Za-z0-9_()]+: +\d+( kB)?$/, l);
  const v = Object.fromEntries(lines.map((l) => [keyOf(l), Number(/(\d+)( kB)?$/.exec(l)![1])]));
  assert.equal(v.MemTotal, MEM / 1024);
  assert.ok(v.MemFree! <= v.MemAvailable! && v.MemAvailable! <= v.MemTotal!);
  assert.equal(v.SwapTotal, 0);
  assert.equal(lines[0]!.length, 'MemTotal:         524288 kB'.length);
  const host = hostLines('/proc/meminfo').map(keyOf);
  if (host.length) {
    const ours = lines.map(keyOf);
    for (const n of ['MemTotal', 'MemFree', 'MemAvailable', 'Buffers', 'Cached', 'SwapCached', 'Active', 'Inactive', 'SwapTotal', 'SwapFree', 'Dirty', 'AnonPages', 'Mapped', 'Shmem', 'Slab', 'SReclaimable', 'CommitLimit', 'Committed_AS', 'HugePages_Total', 'Hugepagesize']) {
      assert.ok(ours.includes(n) && host.includes(n), n);
    }
    const common = ours.filter((n) => host.includes(n));
    assert.deepEqual(common, host.filter((n) => common.includes(n)), 'the host\'s order');
  }
});

test('/proc/stat, uptime, loadavg, limits, mountinfo and sys/kernel parse', () => {
  const k = fakeProcess();
  const stat = procText(k, '/proc/stat')!.split('\n');
  assert.deepEqual(stat.filter((l) => l.startsWith('cpu')).map((l) => l.split(' ')[0]), ['cpu', 'cpu0', 'cpu1', 'cpu2']);
  for (const l of stat.filter((l) => l.startsWith('cpu'))) assert.match(l, /^cpu\d* +(\d+ ){9}\d+$/);
  assert.ok(stat.some((l) => /^btime \d+$/.test(l)) && stat.some((l) => /^processes \d+$/.test(l)));
  assert.match(procText(k, '/proc/uptime')!, /^\d+\.\d\d \d+\.\d\d\n$/);
  assert.match(procText(k, '/proc/loadavg')!, /^\d\.\d\d \d\.\d\d \d\.\d\d \d+\/\d+ \d+\n$/);
  const limits = procText(k, '/proc/self/limits')!.split('\n');
  assert.equal(limits[0], `${'Limit'.padEnd(25)} ${'Soft Limit'.padEnd(20)} ${'Hard Limit'.padEnd(20)} ${'Units'.padEnd(10)}`);
  assert.ok(limits.includes(`${'Max open files'.padEnd(25)} ${'1024'.padEnd(20)} ${'1024'.padEnd(20)} ${'files'.padEnd(10)}`));
  assert.ok(limits.includes(`${'Max stack size'.padEnd(25)} ${'8388608'.padEnd(20)} ${'unlimited'.padEnd(20)} ${'bytes'.padEnd(10)}`));
  const hostLimits = hostLines('/proc/self/limits');
  if (hostLimits.length) assert.deepEqual(limits.filter(Boolean).map((l) => l.slice(0, 25)), hostLimits.map((l) => l.slice(0, 25)));
  for (const l of procText(k, '/proc/self/mountinfo')!.trimEnd().split('\n')) assert.match(l, /^\d+ \d+ \d+:\d+ \/ \S+ \S+( \S+:\d+)* - \S+ \S+ \S+$/);
  for (const n of ['pid_max', 'threads-max', 'ngroups_max', 'cap_last_cap']) assert.match(procText(k, `/proc/sys/kernel/${n}`)!, /^\d+\n$/);
  assert.equal(procText(k, '/proc/sys/kernel/random/boot_id'), procText(k, '/proc/sys/kernel/random/boot_id'));
  assert.notEqual(procText(k, '/proc/sys/kernel/random/uuid'), procText(k, '/proc/sys/kernel/random/uuid'));
  assert.equal(procText(k, '/sys/devices/system/cpu/online'), '0-2\n');
  assert.deepEqual(procDirEntries(k, '/sys/devices/system/cpu')!.filter((e) => /^cpu\d+$/.test(e.name)).map((e) => e.name), ['cpu0', 'cpu1', 'cpu2']);
  assert.equal(procText(k, '/sys/devices/system/cpu/cpu2/topology/core_cpus_list'), '2\n');
  assert.equal(procStat(k, '/sys/devices/system/cpu/cpu3'), -2);
  assert.equal(cpuMask(3), '7');
  assert.equal(cpuMask(40), 'ff,ffffffff');
  assert.equal(cpuList(1), '0');
  assert.equal(cpuList(4), '0-3');
});

test('/proc/cpuinfo: one block per CPU, the host\'s keys and layout', () => {
  const text = cpuinfoText(3);
  const blocks = text.trimEnd().split('\n\n');
  assert.equal(blocks.length, 3);
  blocks.forEach((b, i) => assert.match(b, new RegExp(`^processor\\t: ${i}\\n`)));
  assert.match(blocks[2]!, /^core id\t\t: 2$/m);
  assert.match(blocks[2]!, /^siblings\t: 3$/m);
  const host = hostLines('/proc/cpuinfo');
  if (host.length) {
    const hostFirst = readFileSync('/proc/cpuinfo', 'utf8').split('\n\n')[0]!.split('\n');
    const ours = blocks[0]!.split('\n');
    assert.deepEqual(ours.map(keyOf), hostFirst.map(keyOf), 'the same keys, padded with the same tabs');
    assert.deepEqual(hostCpuinfo().map(([key]) => key), hostFirst.map((l) => keyOf(l).trim()));
  }
});

test('cpuinfo flags on kvm: the host\'s instruction set, the VM\'s system features, XSAVE extensions only with XSAVE on', () => {
  const cpuid: GuestCpuidEntry[] = [
    { function: 0, index: 0, eax: 0xd, ebx: 0, ecx: 0, edx: 0 },
    { function: 1, index: 0, eax: 0, ebx: 0, ecx: (1 << 21) | (1 << 31), edx: 1 << 0 },
    { function: 7, index: 0, eax: 0, ebx: 1 << 0, ecx: 0, edx: 0 },
  ];
  const host = ['fpu', 'sse', 'sse2', 'ht', 'pni', 'sse4_2', 'avx', 'avx2', 'fma', 'xsave', 'fsgsbase', 'constant_tsc', 'pti', 'ibrs', 'hypervisor', 'x2apic', 'pcid', 'vmx', 'bmi1', 'flexpriority'];
  assert.deepEqual(guestFlags(host, cpuid, true), ['fpu', 'sse', 'sse2', 'pni', 'sse4_2', 'avx', 'avx2', 'fma', 'xsave', 'constant_tsc', 'hypervisor', 'x2apic', 'bmi1']);
  assert.deepEqual(guestFlags(host, cpuid, false), ['fpu', 'sse', 'sse2', 'pni', 'sse4_2', 'constant_tsc', 'hypervisor', 'x2apic', 'bmi1']);
  assert.deepEqual(guestFlags(host, null), host, 'process: the host CPU, every flag');
});

test('pseudo trees: links in the middle and at the end, redirects, loops, errors', () => {
  const roots = {
    t: () =>
      dir({
        a: () => dir({ f: () => file(() => 'x') }),
        rel: () => link(() => 'a'),
        abs: () => link(() => '/t/a/f'),
        out: () => link(() => '/etc'),
        loop: () => link(() => 'loop'),
        gone: () => link(() => null),
        pipe: () => link(() => 'pipe:[5]'),
      }),
  };
  const at = (p: string, follow = true): string | number => {
    const w = walk(roots, p, follow);
    return typeof w === 'number' ? w : w.kind === 'redirect' ? `redirect ${w.path}` : `${w.node.kind} ${w.path}`;
  };
  assert.equal(at('/t/rel/f'), 'file /t/a/f');
  assert.equal(at('/t/rel', false), 'link /t/rel');
  assert.equal(at('/t/rel'), 'dir /t/a');
  assert.equal(at('/t/abs'), 'file /t/a/f');
  assert.equal(at('/t/out/passwd'), 'redirect /etc/passwd');
  assert.equal(at('/t/loop'), -40);
  assert.equal(at('/t/gone'), -2);
  assert.equal(at('/t/pipe/x'), -2);
  assert.equal(at('/t/a/f/x'), -20);
  assert.equal(at('/t/missing'), -2);
  const k = fakeProcess();
  const w = pseudoWalk(k, '/proc/self/cwd/x', true);
  assert.deepEqual(w, { kind: 'redirect', path: '/data/x' });
  assert.equal(pseudoWalk(k, '/proc/thread-self/status', true) !== null, true);
  assert.equal(typeof procStat(k, '/proc/self/task/1/status'), 'object');
});
