/**
 * Unpacks .debs into the staging root: each with `dpkg -x` into its own directory (several at once), then
 * merged into the root in package order with renames (mergeTree), which routes lib/ and bin/ through the
 * merged-/usr symlinks. No maintainer scripts run: the root gets the packages' files only.
 */
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { MapvisorError } from '../errors.js';
import { exec, firstError } from './exec.js';
import { mergeTree } from './rootfs.js';

export async function unpackDebs(debs: Array<{ name: string; file: string }>, root: string, work: string, progress: (line: string) => void): Promise<void> {
  const dirs = debs.map((_, i) => join(work, String(i)));
  let done = 0;
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < debs.length && !failed) {
      const i = next++;
      const deb = debs[i]!;
      await mkdir(dirs[i]!, { recursive: true });
      const r = await exec('dpkg', ['-x', deb.file, dirs[i]!]);
      if (r.status !== 0) {
        failed = true;
        throw new MapvisorError('EUNPACK', `cannot unpack ${basename(deb.file)}: ${firstError(r.stderr)}`, `delete it from the cache and retry (rm ${deb.file})`);
      }
      progress(`unpacking ${++done}/${debs.length} ${deb.name}`);
    }
  };
  // Every worker settles before this returns, so no dpkg still writes when the caller cleans up.
  const results = await Promise.allSettled(Array.from({ length: Math.min(debs.length, availableParallelism(), 8) }, worker));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) throw failure.reason;
  for (const dir of dirs) await mergeTree(dir, root, root, 'move');
}
