/**
 * /proc and /sys as real programs read them, in a sandbox of 3 CPUs and 512 MiB (--cpus 3 --mem 512M):
 * coreutils' and busybox's nproc, procps' free, ps and vmstat, util-linux's lscpu, Python's
 * os.cpu_count/os.sched_getaffinity/sysconf, Node's os.cpus/totalmem/availableParallelism (libuv's
 * readers) all see 3 CPUs and 512 MiB; /proc/self's files are in Linux's formats (the same fields as
 * the host's own /proc where the host has them); directories list, entries stat and links read as on
 * Linux, and writes are refused with Linux's errors. The image is built by scripts/procfs-images.mjs
 * (from `npm test`'s fixtures step; cached in .cache/images).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const IMG = join(ROOT, '.cache', 'images', 'procfs.img');
const skip = existsSync(IMG) ? false : `${IMG} not built (node scripts/procfs-images.mjs)`;
const MEM = 512 * 2 ** 20;
const CPUS = 3;
const ENV = ['PATH=/usr/bin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'MAPVISOR_TEST=procfs x=y'];

async function inBox(prog: string, args: string[]): Promise<{ status: number; out: string; err: string }> {
  const r = await Sandbox.run(prog, args, { image: `${IMG},ro`, cpus: CPUS, mem: MEM, env: ENV, stdout: 'pipe', stderr: 'pipe', timeout: 120 });
  return { status: r.status, out: r.stdout!.toString(), err: r.stderr!.toString() + (r.reason ? `\n[${r.reason}]` : '') };
}

/** Runs a shell script whose sections start with `== NAME`; returns each section's output. */
async function sections(script: string): Promise<Record<string, string>> {
  const r = await inBox('/bin/sh', ['-c', script]);
  assert.equal(r.status, 0, `${r.out}\n${r.err}`);
  const out: Record<string, string> = {};
  let cur = '';
  for (const line of r.out.split('\n')) {
    const m = /^== (.*)$/.exec(line);
    if (m) cur = m[1]!;
    else if (cur) out[cur] = (out[cur] ?? '') + line + '\n';
  }
  return out;
}

const hostKeys = (path: string): Set<string> => {
  try {
    return new Set(readFileSync(path, 'utf8').split('\n').filter((l) => l.includes(':')).map((l) => l.slice(0, l.indexOf(':')).trim()));
  } catch {
    return new Set();
  }
};

test(`nproc, lscpu, free, ps and vmstat see --cpus 3 --mem 512M [${PLATFORM}]`, { timeout: 180_000, skip }, async () => {
  const s = await sections(
    [
      'echo "== nproc"; nproc; nproc --all; busybox nproc',
      'echo "== online"; cat /sys/devices/system/cpu/online /sys/devices/system/cpu/possible /sys/devices/system/cpu/present',
      'echo "== cpudirs"; ls /sys/devices/system/cpu | grep "^cpu[0-9]"',
      'echo "== processors"; grep -c "^processor" /proc/cpuinfo',
      'echo "== lscpu"; lscpu',
      'echo "== free"; free -k',
      'echo "== bbfree"; busybox free',
      'echo "== ps"; ps -o pid=,ppid=,comm= ',
      'echo "== vmstat"; vmstat',
      'echo "== uptime"; uptime',
      'echo "== pmap"; pmap -x $$ | tail -1',
      'echo "== statfs"; stat -f -c "%n %T" /proc /proc/self/status /sys /sys/devices/system/cpu/online',
    ].join('\n'),
  );
  assert.deepEqual(s.nproc!.trim().split('\n'), ['3', '3', '3']);
  assert.deepEqual(s.online!.trim().split('\n'), ['0-2', '0-2', '0-2']);
  assert.deepEqual(s.cpudirs!.trim().split('\n'), ['cpu0', 'cpu1', 'cpu2']);
  assert.equal(s.processors!.trim(), '3');
  assert.match(s.lscpu!, /^CPU\(s\):\s+3$/m);
  assert.match(s.lscpu!, /^On-line CPU\(s\) list:\s+0-2$/m);
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  if (model) assert.match(s.lscpu!, new RegExp(`^Model name:\\s+${model.replace(/[()[\].*+?^$|\\]/g, '\\$&')}$`, 'm'));
  // free: total is --mem; used + free + buff/cache = total; available ≤ total.
  for (const [name, text] of [['free', s.free!], ['busybox free', s.bbfree!]] as const) {
    const mem = /^Mem:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(text);
    assert.ok(mem, `${name}:\n${text}`);
    const [total, used, free, , cache, avail] = mem.slice(1).map(Number) as [number, number, number, number, number, number];
    assert.equal(total, MEM / 1024, name);
    assert.ok(Math.abs(used + free + cache - total) <= 2, `${name}: used + free + buff/cache = total\n${text}`);
    assert.ok(avail <= total && avail >= free, `${name}: available\n${text}`);
    assert.ok(used > 0 && used < 64 * 1024, `${name}: used is what the programs hold\n${text}`);
  }
  // ps: the shell (pid 1) and ps itself, its parent the shell.
  const ps = s.ps!.trim().split('\n').map((l) => l.trim().split(/\s+/));
  assert.deepEqual(ps[0]!.slice(0, 2), ['1', '0']);
  assert.ok(ps.some((r) => r[1] === '1' && r[2] === 'ps'), s.ps);
  assert.match(s.vmstat!, /^\s*\d+\s+\d+\s+\d+\s+\d+/m);
  assert.match(s.uptime!, /load average: 0\.00, 0\.00, 0\.00/);
  assert.equal(s.statfs!.trim(), '/proc proc\n/proc/self/status proc\n/sys sysfs\n/sys/devices/system/cpu/online sysfs');
  assert.match(s.pmap!, /^total kB\s+\d+\s+[1-9]\d*\s+\d+\s*$/m, 'pmap -x reads smaps');
});

test(`Python and Node size themselves from 3 CPUs and 512 MiB [${PLATFORM}]`, { timeout: 180_000, skip }, async () => {
  const py = await inBox('/usr/bin/python3', [
    '-c',
    'import os, json; print(json.dumps([os.cpu_count(), sorted(os.sched_getaffinity(0)), os.sysconf("SC_NPROCESSORS_CONF"), os.sysconf("SC_NPROCESSORS_ONLN"), os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]))',
  ]);
  assert.equal(py.status, 0, py.err);
  assert.deepEqual(JSON.parse(py.out), [3, [0, 1, 2], 3, 3, MEM]);
  const node = await inBox('/usr/bin/node', [
    '-e',
    'const os = require("os"); const c = os.cpus(); console.log(JSON.stringify([c.length, os.availableParallelism(), os.totalmem(), os.freemem() <= os.totalmem() && os.freemem() > 0, c.every((x) => x.times.idle >= 0 && x.model.length > 0), os.loadavg().length, os.uptime() >= 0]))',
  ]);
  assert.equal(node.status, 0, node.err);
  assert.deepEqual(JSON.parse(node.out), [3, 3, MEM, true, true, 3, true]);
});

/** A Python program that reads /proc/self and friends and prints what it found as JSON. */
const FORMATS = String.raw`
import os, json, threading, errno
def kv(path):
    out = {}
    for line in open(path):
        k, _, v = line.partition(':')
        out[k.strip()] = v.strip()
    return out
r = {}
r['status'] = kv('/proc/self/status')
r['meminfo'] = kv('/proc/meminfo')
st = open('/proc/self/stat').read()
r['stat'] = [st[:st.index('(')].strip(), st[st.index('(') + 1:st.rindex(')')]] + st[st.rindex(')') + 2:].split()
r['statm'] = open('/proc/self/statm').read().split()
r['maps'] = open('/proc/self/maps').read().splitlines()
r['environ'] = open('/proc/self/environ').read().split('\0')
r['cmdline'] = open('/proc/self/cmdline').read().split('\0')
r['mountinfo'] = open('/proc/self/mountinfo').read().splitlines()
r['mounts'] = open('/proc/mounts').read().splitlines()
r['limits'] = open('/proc/self/limits').read().splitlines()
r['procstat'] = open('/proc/stat').read().splitlines()
r['uptime'] = open('/proc/uptime').read().split()
r['loadavg'] = open('/proc/loadavg').read().split()
r['exe'] = os.readlink('/proc/self/exe')
r['self'] = os.readlink('/proc/self')
r['pid'] = os.getpid()
sysk = {}
for n in ['ostype', 'osrelease', 'version', 'hostname', 'pid_max', 'threads-max', 'random/boot_id', 'random/uuid', 'ngroups_max', 'cap_last_cap']:
    sysk[n] = open('/proc/sys/kernel/' + n).read()
r['sysk'] = sysk
r['uname'] = list(os.uname())
r['overcommit'] = open('/proc/sys/vm/overcommit_memory').read()
ev = threading.Event(); done = threading.Event()
t = threading.Thread(target=lambda: (ev.set(), done.wait()))
t.start(); ev.wait()
r['tasks'] = sorted(int(x) for x in os.listdir('/proc/self/task'))
r['threads'] = kv('/proc/self/status')['Threads']
r['task_status'] = [kv('/proc/self/task/%d/status' % x)['Pid'] for x in r['tasks']]
done.set(); t.join()
fd = os.open('/proc/self/status', os.O_RDONLY)
r['fd_link'] = os.readlink('/proc/self/fd/%d' % fd)
r['fdinfo'] = kv('/proc/self/fdinfo/%d' % fd)
os.close(fd)
print(json.dumps(r))
`;

test(`/proc/self and the system files in Linux's formats [${PLATFORM}]`, { timeout: 180_000, skip }, async () => {
  const box = await inBox('/usr/bin/python3', ['-c', FORMATS, 'arg one']);
  assert.equal(box.status, 0, box.err);
  const r = JSON.parse(box.out);
  // status: every field tools read, parseable; the same names as the host's where it has them.
  const st = r.status as Record<string, string>;
  for (const f of ['Name', 'Umask', 'State', 'Tgid', 'Ngid', 'Pid', 'PPid', 'TracerPid', 'Uid', 'Gid', 'FDSize', 'Groups', 'VmPeak', 'VmSize', 'VmRSS', 'VmData', 'VmStk', 'VmExe', 'VmLib', 'Threads', 'SigQ', 'SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp', 'Cpus_allowed', 'Cpus_allowed_list', 'Mems_allowed', 'voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches']) {
    assert.ok(f in st, `status has ${f}`);
  }
  const host = hostKeys('/proc/self/status');
  if (host.size) for (const f of Object.keys(st)) assert.ok(host.has(f), `status field ${f} is one the host's Linux has`);
  assert.equal(st.Name, 'python3');
  assert.equal(Number(st.Pid), r.pid);
  assert.match(st.Uid!, /^0\s+0\s+0\s+0$/);
  assert.equal(st.Cpus_allowed, '7');
  assert.equal(st.Cpus_allowed_list, '0-2');
  for (const f of ['VmPeak', 'VmSize', 'VmRSS', 'VmData', 'VmStk', 'VmExe', 'VmLib']) assert.match(st[f]!, /^\d+ kB$/, f);
  assert.ok(parseInt(st.VmRSS!) > 0 && parseInt(st.VmRSS!) <= parseInt(st.VmSize!));
  for (const f of ['SigPnd', 'ShdPnd', 'SigBlk', 'SigIgn', 'SigCgt', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(st[f]!, /^[0-9a-f]{16}$/, f);
  assert.notEqual(BigInt(`0x${st.SigIgn}`) & (1n << 12n), 0n, 'python ignores SIGPIPE');
  assert.notEqual(BigInt(`0x${st.SigCgt}`) & (1n << 1n), 0n, 'python catches SIGINT');
  // meminfo: MemTotal is --mem; the fields consistent; names as the host's.
  const mi = r.meminfo as Record<string, string>;
  const kB = (f: string): number => Number(/^(\d+) kB$/.exec(mi[f]!)?.[1]);
  assert.equal(kB('MemTotal'), MEM / 1024);
  assert.ok(kB('MemFree') <= kB('MemAvailable') && kB('MemAvailable') <= kB('MemTotal'));
  for (const f of ['Buffers', 'Cached', 'SwapTotal', 'SwapFree', 'Shmem', 'AnonPages', 'CommitLimit', 'Committed_AS', 'Hugepagesize']) assert.ok(Number.isFinite(kB(f)), f);
  const hostMi = hostKeys('/proc/meminfo');
  if (hostMi.size) for (const f of ['MemTotal', 'MemFree', 'MemAvailable', 'Buffers', 'Cached', 'SwapTotal', 'SwapFree', 'Shmem', 'SReclaimable']) assert.ok(hostMi.has(f) && f in mi, f);
  // stat: 52 fields, pid, comm, state, ppid; statm: 7 numbers.
  assert.equal(r.stat.length, 52);
  assert.equal(Number(r.stat[0]), r.pid);
  assert.equal(r.stat[1], 'python3');
  assert.match(r.stat[2], /^[RSDZT]$/);
  for (const x of r.stat.slice(3)) assert.match(x, /^-?\d+$/);
  assert.equal(Number(r.stat[19]), 1, 'num_threads');
  assert.equal(r.statm.length, 7);
  // maps: Linux's columns; libc mapped from the image with its inode and file offsets, [heap] and [stack].
  for (const l of r.maps) assert.match(l, /^[0-9a-f]+-[0-9a-f]+ [r-][w-][x-][ps] [0-9a-f]{8,} [0-9a-f]{2}:[0-9a-f]{2} \d+ ?( +\S.*)?$/, l);
  const libc = r.maps.filter((l: string) => / 08:01 [1-9]\d* +\/usr\/lib\/x86_64-linux-gnu\/libc\.so\.6$/.test(l));
  assert.ok(libc.length >= 3, r.maps.join('\n'));
  assert.equal(libc[0].split(' ')[2], '00000000');
  assert.ok(libc.some((l: string) => /^\S+ r-xp [0-9a-f]*[1-9a-f][0-9a-f]* /.test(l)), 'libc\'s code at its offset in the file');
  assert.equal(r.maps.filter((l: string) => l.endsWith(' [heap]')).length, 1, 'the heap is one mapping');
  assert.ok(r.maps.some((l: string) => l.endsWith(' [stack]')));
  // environ: what execve gave; cmdline: argv.
  assert.deepEqual(r.environ.slice(0, -1), ENV);
  assert.deepEqual(r.cmdline, ['/usr/bin/python3', '-c', FORMATS, 'arg one', '']);
  // mountinfo and mounts: the image at /, proc and sysfs.
  assert.match(r.mountinfo[0], /^\d+ \d+ \d+:\d+ \/ \/ ro,relatime\S* .*- ext4 \S+ ro$/);
  assert.ok(r.mountinfo.some((l: string) => / \/proc .* - proc proc /.test(l)));
  assert.ok(r.mounts.some((l: string) => /^proc \/proc proc /.test(l)));
  assert.match(r.limits[0], /^Limit\s+Soft Limit\s+Hard Limit\s+Units\s*$/);
  assert.ok(r.limits.some((l: string) => /^Max open files\s+\d+\s+\d+\s+files\s*$/.test(l)));
  // /proc/stat: cpu, cpu0..cpu2 with 10 numbers each, btime.
  const cpuLines = r.procstat.filter((l: string) => /^cpu/.test(l));
  assert.deepEqual(cpuLines.map((l: string) => l.split(/\s+/)[0]), ['cpu', 'cpu0', 'cpu1', 'cpu2']);
  for (const l of cpuLines) assert.match(l, /^cpu\d*\s+(\d+ ){9}\d+$/);
  assert.ok(r.procstat.some((l: string) => /^btime \d+$/.test(l)));
  assert.match(r.uptime.join(' '), /^\d+\.\d\d \d+\.\d\d$/);
  assert.equal(r.loadavg.length, 5);
  assert.match(r.loadavg[3], /^\d+\/\d+$/);
  assert.equal(r.exe, '/usr/bin/python3.11');
  assert.equal(r.self, String(r.pid));
  // /proc/sys/kernel agrees with uname.
  assert.equal(r.sysk.ostype, `${r.uname[0]}\n`);
  assert.equal(r.sysk.hostname, `${r.uname[1]}\n`);
  assert.equal(r.sysk.osrelease, `${r.uname[2]}\n`);
  assert.equal(r.sysk.version, `${r.uname[3]}\n`);
  assert.match(r.sysk['random/boot_id'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\n$/);
  assert.match(r.sysk['random/uuid'], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n$/);
  for (const n of ['pid_max', 'threads-max', 'ngroups_max', 'cap_last_cap']) assert.match(r.sysk[n], /^\d+\n$/, n);
  assert.equal(r.overcommit, '0\n');
  // task/: both threads, each its own status; Threads counts them.
  assert.equal(r.tasks.length, 2);
  assert.equal(r.tasks[0], r.pid);
  assert.equal(r.threads, '2');
  assert.deepEqual(r.task_status, r.tasks.map(String));
  assert.equal(r.fd_link, `/proc/${r.pid}/status`);
  assert.match(r.fdinfo.pos, /^\d+$/);
  assert.match(r.fdinfo.flags, /^0[0-7]+$/);
});

/** Listing, stat, readlink and writes under /proc and /sys. */
const TREE = String.raw`
import os, json, errno, stat as S
r = {'errors': [], 'refused': {}}
def walk(top):
    n = 0
    seen = {}
    for d, dirs, files in os.walk(top, onerror=lambda e: r['errors'].append(str(e))):
        st = os.lstat(d)
        key = (st.st_dev, st.st_ino)
        if key in seen: r['errors'].append('same inode: %s %s' % (seen[key], d))
        seen[key] = d
        for f in files:
            p = os.path.join(d, f)
            st = os.lstat(p)
            if S.S_ISLNK(st.st_mode): os.readlink(p)
            elif S.S_ISREG(st.st_mode) and not p.endswith('/environ'):
                open(p, 'rb').read()
            n += 1
    return n
r['self_files'] = walk('/proc/self/')
r['sys_files'] = walk('/sys/devices/system/cpu')
r['proc_sys'] = walk('/proc/sys')
r['listing'] = sorted(os.listdir('/proc/self'))
r['root'] = sorted(os.listdir('/proc'))
r['cpu0'] = sorted(os.listdir('/sys/devices/system/cpu/cpu0'))
r['kinds'] = {p: oct(os.lstat(p).st_mode) for p in ['/proc', '/proc/self', '/proc/self/exe', '/proc/self/status', '/proc/cpuinfo', '/sys/devices/system/cpu/online']}
r['followed'] = S.S_ISREG(os.stat('/proc/self/exe').st_mode) and os.stat('/proc/self/exe').st_size == os.stat('/usr/bin/python3.11').st_size
r['through_link'] = open('/proc/self/root/etc/passwd').read().split(':')[0]
r['cwd'] = os.readlink('/proc/self/cwd')
d = os.open('/proc/self', os.O_RDONLY | os.O_DIRECTORY)
r['openat'] = open('status', opener=lambda p, f: os.open(p, f, dir_fd=d)).readline().strip()
os.close(d)
os.chdir('/proc/self/task')
r['chdir'] = [os.getcwd(), sorted(os.listdir('.')) == [str(os.getpid())], open('../status').readline().strip()]
fd = os.open('/sys/devices', os.O_RDONLY)
os.fchdir(fd); os.close(fd)
r['fchdir'] = [os.getcwd(), open('system/cpu/online').read(), os.path.exists('../etc/passwd')]
os.chdir('/')
def refused(name, f):
    try:
        f(); r['refused'][name] = 0
    except OSError as e:
        r['refused'][name] = errno.errorcode[e.errno]
def w(p, v):
    fd = os.open(p, os.O_WRONLY)
    try: return os.write(fd, v.encode())
    except OSError as e: return errno.errorcode[e.errno]
    finally: os.close(fd)
r['comm'] = [w('/proc/self/comm', 'worker'), open('/proc/self/status').readline().strip()]
r['oom'] = [w('/proc/self/oom_score_adj', v) for v in ['500', '100', 'x', '2000']] + [open('/proc/self/oom_score_adj').read()]
refused('write cpuinfo', lambda: open('/proc/cpuinfo', 'w'))
refused('write hostname', lambda: open('/proc/sys/kernel/hostname', 'w'))
refused('write sys online', lambda: open('/sys/devices/system/cpu/online', 'w'))
refused('create in proc', lambda: open('/proc/newfile', 'w'))
refused('mkdir in sys', lambda: os.mkdir('/sys/newdir'))
refused('unlink in proc', lambda: os.unlink('/proc/cpuinfo'))
refused('missing', lambda: open('/proc/self/nonexistent'))
refused('readlink of a file', lambda: os.readlink('/proc/cpuinfo'))
refused('cpu3', lambda: os.listdir('/sys/devices/system/cpu/cpu3'))
refused('file as dir', lambda: os.listdir('/proc/cpuinfo'))
refused('chdir to a file', lambda: os.chdir('/proc/cpuinfo'))
print(json.dumps(r))
`;

test(`/proc and /sys: listings, stat, links, and writes refused as Linux does [${PLATFORM}]`, { timeout: 180_000, skip }, async () => {
  const box = await inBox('/usr/bin/python3', ['-c', TREE]);
  assert.equal(box.status, 0, box.err);
  const r = JSON.parse(box.out);
  assert.deepEqual(r.errors, []);
  assert.ok(r.self_files > 20 && r.sys_files > 30 && r.proc_sys > 20, JSON.stringify([r.self_files, r.sys_files, r.proc_sys]));
  for (const n of ['cmdline', 'comm', 'cwd', 'environ', 'exe', 'fd', 'fdinfo', 'maps', 'mountinfo', 'mounts', 'root', 'stat', 'statm', 'status', 'task', 'limits', 'cgroup']) {
    assert.ok(r.listing.includes(n), `/proc/self lists ${n}`);
  }
  for (const n of ['1', 'self', 'thread-self', 'cpuinfo', 'meminfo', 'stat', 'uptime', 'loadavg', 'version', 'filesystems', 'mounts', 'sys']) assert.ok(r.root.includes(n), `/proc lists ${n}`);
  assert.ok(r.cpu0.includes('topology') && !r.cpu0.includes('online'), r.cpu0.join(' '));
  assert.equal(r.kinds['/proc'], '0o40555');
  assert.equal(r.kinds['/proc/self'], '0o120777');
  assert.equal(r.kinds['/proc/self/exe'], '0o120777');
  assert.equal(r.kinds['/proc/self/status'], '0o100444');
  assert.equal(r.kinds['/proc/cpuinfo'], '0o100444');
  assert.equal(r.kinds['/sys/devices/system/cpu/online'], '0o100444');
  assert.equal(r.followed, true);
  assert.equal(r.through_link, 'root');
  assert.equal(r.cwd, '/');
  assert.match(r.openat, /^Name:\s+python3$/);
  assert.deepEqual(r.chdir, [`/proc/${r.chdir[0].split('/')[2]}/task`, true, 'Name:\tpython3']);
  assert.deepEqual(r.fchdir, ['/sys/devices', '0-2\n', false]);
  // The files Linux lets a process write: its name (pthread_setname_np), its OOM score adjustment (only raised).
  assert.deepEqual(r.comm, [6, 'Name:\tworker']);
  assert.deepEqual(r.oom, [3, 'EACCES', 'EINVAL', 'EINVAL', '500\n']);
  assert.deepEqual(r.refused, {
    'write cpuinfo': 'EACCES',
    'write hostname': 'EACCES',
    'write sys online': 'EACCES',
    'create in proc': 'EACCES',
    'mkdir in sys': 'EPERM',
    'unlink in proc': 'EPERM',
    missing: 'ENOENT',
    'readlink of a file': 'EINVAL',
    cpu3: 'ENOENT',
    'file as dir': 'ENOTDIR',
    'chdir to a file': 'ENOTDIR',
  });
});

/** Thread names: prctl(PR_SET_NAME) in a thread names that thread only; task/TID/comm reads and writes it. */
const THREAD_NAMES = String.raw`
import ctypes, threading, os
libc = ctypes.CDLL(None)
ev = threading.Event(); done = threading.Event(); tid = []
def run():
    libc.prctl(15, b"worker-1", 0, 0, 0)
    tid.append(threading.get_native_id()); ev.set(); done.wait()
t = threading.Thread(target=run); t.start(); ev.wait()
buf = ctypes.create_string_buffer(16); libc.prctl(16, buf, 0, 0, 0)
print(open('/proc/self/comm').read().strip(), open('/proc/self/task/%d/comm' % tid[0]).read().strip(), buf.value.decode())
print(open('/proc/self/task/%d/stat' % tid[0]).read().split()[1], open('/proc/self/task/%d/status' % tid[0]).readline().strip())
fd = os.open('/proc/self/task/%d/comm' % tid[0], os.O_WRONLY); os.write(fd, b'renamed'); os.close(fd)
print(open('/proc/self/task/%d/comm' % tid[0]).read().strip(), open('/proc/self/comm').read().strip())
done.set(); t.join()
`;

test(`thread names are per thread: prctl, task/TID/comm, stat and status (the same as native) [${PLATFORM}]`, { timeout: 120_000, skip }, async () => {
  const box = await inBox('/usr/bin/python3', ['-c', THREAD_NAMES]);
  assert.equal(box.status, 0, box.err);
  assert.equal(box.out, 'python3 worker-1 python3\n(worker-1) Name:\tworker-1\nrenamed python3\n');
});
