/**
 * npm run bench:vm — what a VM's address space costs on this KVM: the time to create a machine (VM,
 * memory slot over the window, page tables) and the host kernel memory it takes (VmallocUsed from
 * /proc/meminfo, before and after), for several --space sizes, with the ratio to the default (16 GiB)
 * measured in the same run. On a shadow-paging KVM
 * the memory slot's reverse maps grow with the slot: this is why the default space is 16 GiB. Not a test.
 */
import { readFileSync } from 'node:fs';
import { Machine } from '../src/platform/kvm/machine.js';
import { GIB } from '../src/platform/kvm/layout.js';

function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) / 1024; // MiB
  }
  return out;
}

const sizes = [4, 16, 64];
const rows: Array<{ gib: number; ms: number; vmalloc: number }> = [];
for (const gib of sizes) {
  const times: number[] = [];
  let vmalloc = 0;
  for (let i = 0; i < 3; i++) {
    const before = meminfo().VmallocUsed!;
    const t0 = performance.now();
    const m = Machine.create({ spaceSize: gib * GIB, syscallReturn: 'sregs' });
    times.push(performance.now() - t0);
    vmalloc = meminfo().VmallocUsed! - before;
    m.close();
  }
  rows.push({ gib, ms: times.sort((x, y) => x - y)[1]!, vmalloc });
}
const base = rows.find((r) => r.gib === 16)!;
console.log('| --space | create (median of 3) | kernel vmalloc | vs 16 GiB (the default) |');
console.log('|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.gib} GiB | ${r.ms.toFixed(1)} ms | ${r.vmalloc.toFixed(1)} MiB | ${(r.ms / base.ms).toFixed(2)}× time, ${(r.vmalloc / base.vmalloc).toFixed(2)}× memory |`);
}
