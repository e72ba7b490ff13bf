/**
 * npm run bench:oci — mapvisor as podman's OCI runtime, against the other runtimes installed here, in
 * the same run (not a test):
 *   - latency: `podman run --rm --network=none IMG /bin/true`, wall time of the whole command (podman,
 *     conmon, the runtime's create/start/delete), median of N runs interleaved across the runtimes;
 *   - density: 10 containers of one image (`podman run -d ... IMG /bin/sleep 600`, busybox; and the
 *     Debian image's python3 idle in time.sleep), then the host memory they hold: the sum of the
 *     proportional set size (Pss, /proc/PID/smaps_rollup: a page shared by k processes counts 1/k) of
 *     every process under each container's conmon (the runtime's processes: mapvisor's VMM, and on the
 *     process platform its stub processes; runsc's sandbox and gofer; crun/runc's container process);
 *     python3 also with --read-only (no layer at all). mapvisor's writable containers map the one shared
 *     image too, with a copy-on-write layer each, whose size is printed. The host's MemAvailable is
 *     not used: other work on a shared machine moves it by more than these containers hold.
 * Runtimes: mapvisor-oci on every platform that works here (--platform kvm|process|all), runsc
 * (--platform=ptrace --network=none, Debian's gVisor), crun and runc when installed. The images are the
 * tests' (test/integration/oci.test.ts imports them: localhost/mapvisor-oci-bb:1, -deb:1); a runtime that
 * fails a row says `failed: <first line>` and the bench goes on. --quick: fewer runs. Prints Markdown.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { activityLine, fmt, fx, hostActivity, pickPlatforms, platformArg, platformLines, processTree } from '../src/bench/host.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNTIME = join(ROOT, 'bin', 'mapvisor-oci');
const BB = 'localhost/mapvisor-oci-bb:1';
const DEB = 'localhost/mapvisor-oci-deb:1';
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const RUNS = quick ? 3 : 7;
const DENSITY = 10;

interface Runtime {
  id: string;
  label: string;
  flags: string[];
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const ULIMIT = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
const podman = (args: string[], timeout = 120_000): { status: number | null; stdout: string; stderr: string } => spawnSync('podman', args, { encoding: 'utf8', timeout });
const firstLine = (s: string): string => s.trim().split('\n').find((l) => l.trim()) ?? '';
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function runtimes(): { list: Runtime[]; notes: string[] } {
  const picked = pickPlatforms(platformArg(argv));
  const notes = platformLines(picked);
  const list: Runtime[] = picked.run.map((p) => ({ id: `mapvisor-${p}`, label: `mapvisor ${p}`, flags: [`--runtime=${RUNTIME}`, `--runtime-flag=platform=${p}`] }));
  // podman's default RLIMIT_NOFILE and RLIMIT_NPROC can be above the host's hard limits, which crun and
  // runc then fail to set (EPERM): every runtime gets the same lower limits (ULIMIT).
  if (has('runsc')) list.push({ id: 'runsc', label: 'runsc (ptrace)', flags: [`--runtime=${spawnSync('sh', ['-c', 'command -v runsc'], { encoding: 'utf8' }).stdout.trim()}`, '--runtime-flag=network=none', '--runtime-flag=platform=ptrace'] });
  else notes.push('runsc: not installed (apt-get install runsc)');
  for (const r of ['crun', 'runc']) {
    if (has(r)) list.push({ id: r, label: r, flags: [`--runtime=${spawnSync('sh', ['-c', `command -v ${r}`], { encoding: 'utf8' }).stdout.trim()}`] });
    else notes.push(`${r}: not installed`);
  }
  return { list, notes };
}

function latency(rt: Runtime): number | string {
  const t0 = performance.now();
  const r = podman(['run', '--rm', '--network=none', ...ULIMIT, ...rt.flags, BB, '/bin/true']);
  const ms = performance.now() - t0;
  return r.status === 0 ? ms : `failed: ${firstLine(r.stderr) || `status ${r.status}`}`;
}

function pss(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Bytes on disk of a mapvisor container's copy-on-write layer (ROOT/ID/layer under /run), or null. */
function layerBytes(id: string): number | null {
  const found = spawnSync('find', ['/run', '-maxdepth', '4', '-path', `*/${id}/layer`], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  if (!found) return null;
  try {
    return statSync(found).blocks * 512;
  } catch {
    return null;
  }
}

/** Mean layer size of the last density row's mapvisor containers, by runtime and row. */
const layers = new Map<string, number>();

/** Start DENSITY containers of `image` running `cmd`; resolves the memory they hold, then removes them. */
async function density(rt: Runtime, image: string, cmd: string[], extra: string[] = []): Promise<number | string> {
  const ids: string[] = [];
  try {
    for (let i = 0; i < DENSITY; i++) {
      const r = podman(['run', '-d', '--network=none', '--label', 'mapvisor-bench=oci', ...ULIMIT, ...extra, ...rt.flags, image, ...cmd]);
      if (r.status !== 0) return `failed: ${firstLine(r.stderr) || `status ${r.status}`}`;
      ids.push(r.stdout.trim());
    }
    await new Promise((r) => setTimeout(r, 3000)); // settled: programs started and asleep
    let total = 0;
    const sizes: number[] = [];
    for (const id of ids) {
      const conmon = Number(podman(['inspect', id, '--format', '{{.State.ConmonPid}}']).stdout.trim());
      for (const p of processTree(conmon).slice(1)) total += pss(p);
      const l = rt.id.startsWith('mapvisor') ? layerBytes(id) : null;
      if (l !== null) sizes.push(l);
    }
    if (sizes.length) layers.set(`${rt.id} ${image} ${extra.join(' ')}`, sizes.reduce((a, b) => a + b, 0) / sizes.length);
    return total;
  } finally {
    removeBenchContainers();
  }
}

const MiB = 2 ** 20;

/** Remove this bench's containers (a failed `podman run -d` leaves one created). */
function removeBenchContainers(): void {
  const ids = podman(['ps', '-aq', '--filter', 'label=mapvisor-bench=oci']).stdout.trim().split('\n').filter(Boolean);
  if (ids.length) podman(['rm', '-f', '-t', '0', ...ids]);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:oci runs rootful podman: run it as root');
  if (!has('podman')) throw new Error('podman is not installed (apt-get install podman)');
  for (const img of [BB, DEB]) {
    if (podman(['image', 'exists', img]).status !== 0) throw new Error(`podman has no ${img}: run the OCI tests first (node --test dist/test/integration/oci.test.js imports it)`);
  }
  removeBenchContainers();
  const { list, notes } = runtimes();
  const activity = hostActivity();
  const lat = new Map<string, number[]>();
  const fail = new Map<string, string>();
  for (const rt of list) latency(rt); // warm: image caches, page cache
  for (let i = 0; i < RUNS; i++) {
    for (const rt of list) {
      const v = latency(rt);
      if (typeof v === 'string') fail.set(rt.id, v);
      else lat.set(rt.id, [...(lat.get(rt.id) ?? []), v]);
    }
  }
  const dens = new Map<string, Array<number | string>>();
  const py = ['/usr/bin/python3', '-c', 'import time; time.sleep(600)'];
  for (const rt of list) {
    dens.set(rt.id, [await density(rt, BB, ['/bin/sleep', '600']), await density(rt, DEB, py), await density(rt, DEB, py, ['--read-only'])]);
  }
  const act = activity();
  const base = list.find((r) => r.id === 'crun' || r.id === 'runc');
  const baseMs = base && lat.has(base.id) ? median(lat.get(base.id)!) : null;
  const cell = (d: number | string | undefined): string => (typeof d === 'string' || d === undefined ? String(d ?? '') : `${fmt(d / MiB)} MiB`);
  const out: string[] = [];
  out.push(`# bench:oci (${new Date().toISOString()}; ${cpus().length} CPUs; podman ${firstLine(podman(['--version']).stdout).replace('podman version ', '')}; median of ${RUNS} runs)`);
  for (const n of notes) out.push(`# ${n}`);
  out.push(`# ${activityLine(act, cpus().length)}`);
  out.push('');
  out.push('| runtime | podman run --rm IMG true | 10 × busybox sleep | 10 × python3 idle | 10 × python3 idle, --read-only |');
  out.push('|---|---:|---:|---:|---:|');
  for (const rt of list) {
    const l = lat.get(rt.id);
    const ms = l ? `${fmt(median(l))} ms${baseMs ? ` (${fx(median(l) / baseMs)})` : ''}` : (fail.get(rt.id) ?? '');
    const [a, b, c] = dens.get(rt.id)!;
    out.push(`| ${rt.label} | ${ms} | ${cell(a)} | ${cell(b)} | ${cell(c)} |`);
  }
  out.push('', 'Memory: the sum of Pss of every process under the containers\' conmons (a page shared by k processes counts 1/k).');
  if (layers.size) {
    out.push('mapvisor\'s writable containers map the shared image and keep their changes in a copy-on-write layer each; mean layer size on disk:');
    for (const [k, v] of layers) out.push(`- ${k.trim()}: ${fmt(v / 1024)} KiB`);
  }
  if (baseMs) out.push(`(× is ÷ ${base!.label}, the host-kernel runtime.)`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`bench:oci: ${e.message}\n`);
  process.exitCode = 1;
});
