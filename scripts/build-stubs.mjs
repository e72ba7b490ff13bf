// Assemble src/platform/kvm/asm/stubs.S into the flat images the VMM loads (dist/stubs/*.bin), with GNU as and
// objcopy. Run by `npm run build`; skipped when the outputs are newer than the source.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src/platform/kvm/asm/stubs.S');
const outDir = join(root, 'dist/stubs');
const outputs = { '.syscall': 'syscall.bin', '.exceptions': 'exceptions.bin' };

const fresh = Object.values(outputs).every((f) => {
  const p = join(outDir, f);
  return existsSync(p) && statSync(p).mtimeMs >= statSync(src).mtimeMs;
});
if (!fresh) {
  mkdirSync(outDir, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'mapvisor-stubs-'));
  try {
    const obj = join(tmp, 'stubs.o');
    try {
      execFileSync('as', ['--64', '-o', obj, src], { stdio: ['ignore', 'inherit', 'inherit'] });
    } catch (e) {
      const missing = e && e.code === 'ENOENT';
      console.error(`mapvisor build: ${missing ? 'GNU as is not installed' : 'assembling stubs.S failed'} (install binutils: apt-get install binutils)`);
      process.exit(1);
    }
    for (const [section, file] of Object.entries(outputs)) {
      execFileSync('objcopy', ['-O', 'binary', '-j', section, obj, join(outDir, file)]);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
