// Build mapvisor's vDSO (src/vdso/vdso.c, laid out by vdso.lds, exported as vdso.map says) into
// dist/vdso/vdso.so with gcc. Run by `npm run build`; skipped when the output is newer than its sources.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'src/vdso');
const sources = ['vdso.c', 'vdso.h', 'vdso.lds', 'vdso.map', '../../scripts/build-vdso.mjs'].map((f) => join(dir, f));
const out = join(root, 'dist/vdso/vdso.so');

const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
if (!existsSync(out) || statSync(out).mtimeMs < newest) {
  mkdirSync(dirname(out), { recursive: true });
  const flags = [
    '-O2', '-fPIC', '-shared', '-nostdlib', '-fno-stack-protector', '-fno-builtin', '-mgeneral-regs-only', '-fcf-protection=none',
    '-Wall', '-Wextra', '-Werror',
    `-Wl,-T,${join(dir, 'vdso.lds')}`, `-Wl,--version-script=${join(dir, 'vdso.map')}`, '-Wl,--hash-style=both',
    '-Wl,-soname=linux-vdso.so.1', '-Wl,--build-id=none', '-Wl,-z,max-page-size=4096', '-Wl,--no-undefined', '-Wl,-Bsymbolic',
  ];
  try {
    execFileSync('gcc', [...flags, '-o', out, join(dir, 'vdso.c')], { stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (e) {
    const missing = e && e.code === 'ENOENT';
    console.error(`mapvisor build: ${missing ? 'gcc is not installed (apt-get install gcc)' : 'building the vDSO (src/vdso/vdso.c) failed'}`);
    process.exit(1);
  }
}
