/**
 * The platform boundary holds: the kernel, memory manager, loader, storage, snapshots, CLI and
 * sandbox API import no platform's own code (src/platform/kvm, src/platform/process). Only
 * src/platform/select.ts and src/platform/kick.ts, which choose among platforms, name them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(fileURLToPath(new URL('../../..', import.meta.url)), 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('only src/platform names a platform', () => {
  const offenders: string[] = [];
  for (const f of files(SRC)) {
    const rel = relative(SRC, f);
    if (rel.startsWith('platform/')) continue;
    for (const m of readFileSync(f, 'utf8').matchAll(/from\s+'([^']+)'/g)) {
      if (/platform\/(kvm|process)\//.test(m[1]!)) offenders.push(`${rel} imports ${m[1]}`);
    }
  }
  assert.deepEqual(offenders, []);
});
