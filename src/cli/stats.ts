/** The --stats report, printed to stderr after the program ends. */
import type { VmStats } from '../sandbox/protocol.js';
import { formatSize } from '../util/size.js';

const ms = (ns: number): string => `${(ns / 1e6).toFixed(2)} ms`;

export function formatStats(s: VmStats, totalNs: number): string {
  const exits = Object.entries(s.exits).sort((a, b) => b[1] - a[1]);
  const nExits = exits.reduce((a, [, n]) => a + n, 0);
  const lines = [
    `mapvisor stats: ${s.totalSyscalls} system calls, ${nExits} VM exits, ${ms(s.vmmNs)} handling syscalls in the VMM, ${ms(s.wallNs)} in the VM worker, ${ms(totalNs)} in all`,
    `  exits: ${exits.map(([r, n]) => `${r} ${n}`).join(', ') || 'none'}`,
    `  syscalls: ${s.syscalls.map((c) => `${c.name} ${c.count}`).join(', ') || 'none'}`,
    `  unimplemented (answered ENOSYS): ${s.unimplemented.map((c) => `${c.name} ${c.count}`).join(', ') || 'none'}`,
    `  memory: ${s.mapChanges} host map changes in the window, ${formatSize(s.mappedBytes)} mapped at exit; XSAVE/AVX ${s.xsave ? 'on' : 'off'}`,
    `  standard streams: ${formatSize(s.bytesIn)} in, ${formatSize(s.bytesOut)} out`,
    `  storage: ${s.storage ?? 'no image'}`,
    `  files: ${formatSize(s.fileBytesRead)} read, ${formatSize(s.fileBytesWritten)} written by the VMM; ${formatSize(s.imageMappedBytes)} of the address space are the image's own pages`,
    ...(s.block
      ? [
          `  block device: ${s.block.requests} requests (${s.block.readRequests} reads, ${s.block.writeRequests} writes), ${formatSize(s.block.bytesRead)} read, ${formatSize(s.block.bytesWritten)} written; cache ${s.block.hits} hits, ${s.block.misses} misses, ${s.block.evictions} evictions, ${formatSize(s.block.cachedBytes)} cached; ${formatSize(s.writtenBack)} of shared mappings written back; ${s.pagesFilledOnFault} pages filled on first touch`,
        ]
      : []),
    `  program: ${s.execInPlace ? 'executed in place from the image' : 'copied into memory'}${s.interpInPlace === null ? '' : `; interpreter ${s.interpInPlace ? 'executed in place' : 'copied'}`}`,
  ];
  return lines.join('\n') + '\n';
}
