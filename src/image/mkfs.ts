/** Writes the staging tree into an ext4 image file with the host's mkfs.ext4 -d. */
import { open } from 'node:fs/promises';
import { MapvisorError } from '../errors.js';
import { exec, firstError } from './exec.js';

/** Creates `file` (`size` bytes, sparse) holding the tree at `root`, with `inodes` inodes. */
export async function makeExt4(file: string, root: string, size: number, inodes: number): Promise<void> {
  const fd = await open(file, 'w').catch((e: NodeJS.ErrnoException) => {
    throw new MapvisorError('EWRITE', `cannot write ${file}: ${e.code ?? e.message}`, 'check the permissions and free space of the output directory');
  });
  try {
    await fd.truncate(size);
  } finally {
    await fd.close();
  }
  const r = await exec('mkfs.ext4', [
    '-q', '-F',
    '-d', root,
    '-b', '4096',
    // No journal: mapvisor's ext4 writer does not journal (it never writes or replays one), so a journal
    // would only cost space, and an image that had been mounted with one could need a replay we never do.
    '-O', '^has_journal',
    '-L', 'mapvisor',
    '-N', String(inodes),
    file,
  ]);
  if (r.status !== 0) {
    throw new MapvisorError('EMKFS', `mkfs.ext4 failed: ${firstError(r.stderr)}`, 'check the free space where the image goes; run with a larger --size');
  }
}
