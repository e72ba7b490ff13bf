#!/usr/bin/env node
// npm run build's last step: each entry point of dist/src (tsc's output) bundled into one file in
// dist/bundle/ (esbuild), which bin/mapvisor.js and bin/mapvisor-oci run. A process then loads one
// module instead of a hundred or so (resolving and compiling them was most of a VMM's start-up). The
// workers' files keep their names, so `new URL('./worker.js', import.meta.url)` finds them beside the
// entry that starts them. koffi (a native module) stays external.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'dist', 'src');
const OUT = join(ROOT, 'dist', 'bundle');
const entries = {
  mapvisor: 'cli/main.js',
  oci: 'oci/main.js',
  worker: 'sandbox/worker.js',
  'vcpu-worker': 'sandbox/vcpu-worker.js',
  'hostwatch-worker': 'kernel/hostwatch-worker.js',
  'faultfill-worker': 'kernel/vfs/faultfill-worker.js',
  vmm: 'oci/vmm.js',
  'exec-wait': 'oci/exec-wait.js',
};
rmSync(OUT, { recursive: true, force: true });
await build({
  entryPoints: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, join(SRC, v)])),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  outdir: OUT,
  logLevel: 'warning',
});
