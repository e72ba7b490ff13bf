// npm run demo: the point of mapvisor in under a minute. `mapvisor info` says which platforms work
// here; a program runs under mapvisor's kernel on each of them (a KVM VM with no guest kernel, and a
// host process whose every system call is trapped); then `mapvisor bench --quick` builds a small
// Debian image and measures the same workloads with the image mapped into memory, through a
// conventional block device and cache, natively, and under bubblewrap when it is installed, and
// prints the side-by-side table. In between, Debian's redis-server and redis-cli talk over the
// sandbox's own loopback network (the image built by the fixtures step).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
const net = join(root, '.cache', 'images', 'net.img');
if (existsSync(net) && platforms.length) {
  const script = 'redis-server --save "" --port 6379 >/dev/null & until redis-cli ping >/dev/null 2>&1; do sleep 0.1; done; redis-cli set greeting "hello over the sandbox\'s loopback"; redis-cli get greeting; redis-cli shutdown nosave';
  show(`mapvisor run --image net.img,cow -- /bin/sh -c '${script}'`, ['run', '--image', `${net},cow`, '--timeout', '60', '--', '/bin/sh', '-c', script]);
}
show('mapvisor bench --quick --svg .cache/bench.svg', ['bench', '--quick', '--svg', join(root, '.cache', 'bench.svg')]);
