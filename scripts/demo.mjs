// npm run demo: what mapvisor does, in a few runs of Debian's static busybox and a hostile program,
// each in a KVM VM with no guest kernel. Needs `npm run build` and the fixtures (npm run demo does both).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'bin', 'mapvisor.js');
const busybox = join(root, '.cache', 'busybox');
const guest = (n) => join(root, '.cache', 'guest', n);

function show(title, args, input) {
  console.log(`\n$ ${title}`);
  const r = spawnSync(process.execPath, [cli, 'run', ...args], { input, stdio: ['pipe', 'inherit', 'inherit'] });
  console.log(`[exit status ${r.status}]`);
}

show('echo hi | mapvisor run -- busybox wc -c', ['--', busybox, 'wc', '-c'], 'hi\n');
show('mapvisor run -- busybox false', ['--', busybox, 'false']);
show('mapvisor run --stats -- busybox sha256sum < 4 MiB of zeros', ['--stats', '--', busybox, 'sha256sum'], Buffer.alloc(4 << 20));
show('mapvisor run --strace -- hello', ['--strace', '--', guest('hello')]);
show('mapvisor run -- write-pagetable   (a program that writes the page tables)', ['--', guest('write-pagetable')]);
show('mapvisor run --timeout 1 -- loop-forever', ['--timeout', '1', '--', guest('loop-forever')]);
