// npm run demo: the point of mapvisor in under a minute. `mapvisor info` says which platforms work
// here; a program runs under mapvisor's kernel on each of them (a KVM VM with no guest kernel, and a
// host process whose every system call is trapped); then `mapvisor bench --quick` builds a small
// Debian image and measures the same workloads with the image mapped into memory, through a
// conventional block device and cache, natively, and under bubblewrap when it is installed, and
// prints the side-by-side table.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'mapvisor.js');

function show(title, args, input) {
  console.log(`\n$ ${title}`);
  const r = spawnSync(process.execPath, [cli, ...args], { input, stdio: ['pipe', 'inherit', 'inherit'] });
  if (r.status !== 0 && args[0] === 'bench') process.exit(r.status ?? 1);
  return r.status;
}

show('mapvisor info', ['info']);
const info = spawnSync(process.execPath, [cli, 'info', '--json'], { encoding: 'utf8' });
const platforms = info.status === 0 ? JSON.parse(info.stdout).platforms.filter((p) => p.works).map((p) => p.name) : [];
for (const p of platforms) {
  show(`echo hi | mapvisor run --platform ${p} -- busybox wc -c`, ['run', '--platform', p, '--', join(root, '.cache', 'busybox'), 'wc', '-c'], 'hi\n');
}
show('mapvisor bench --quick --svg .cache/bench.svg', ['bench', '--quick', '--svg', join(root, '.cache', 'bench.svg')]);
