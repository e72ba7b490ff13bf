/**
 * Builds and checks ext4 images with the host's e2fsprogs (mkfs.ext4 -d, e2fsck, debugfs).
 * Used by tests and by tooling that prepares disk images; nothing here runs inside the sandbox.
 */
import { spawnSync } from 'node:child_process';
import { MapvisorError } from '../../errors.js';

export interface MkfsOptions {
  /** Directory whose contents populate the image (mkfs -d). */
  from?: string;
  /** Size, as mkfs accepts it ("64M"). */
  size: string;
  blockSize?: number;
  /** -O feature list, e.g. "^metadata_csum,^64bit". */
  features?: string;
  /** -t type ("ext2", "ext4"). */
  type?: string;
  /** Extra mkfs arguments. */
  extra?: string[];
}

function run(cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new MapvisorError('ETOOL', `cannot run ${cmd}: ${r.error.message}`, 'install e2fsprogs');
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Creates (overwrites) an image file with mkfs. */
export function mkfs(image: string, o: MkfsOptions): void {
  const args = ['-q', '-F'];
  if (o.type) args.push('-t', o.type);
  if (o.blockSize) args.push('-b', String(o.blockSize));
  if (o.features) args.push('-O', o.features);
  if (o.from) args.push('-d', o.from);
  args.push(...(o.extra ?? []));
  args.push(image, o.size);
  const r = run('mkfs.ext4', args);
  if (r.status !== 0) throw new MapvisorError('ETOOL', `mkfs.ext4 failed: ${r.stderr.trim()}`, 'check the mkfs options');
}

/** e2fsck -fn: returns the exit status and the output (0 = clean). */
export function fsckCheck(image: string): { status: number; output: string } {
  const r = run('e2fsck', ['-fn', image]);
  return { status: r.status, output: r.stdout + r.stderr };
}

/** e2fsck -fy with extra flags (e.g. -D to index directories); returns the exit status (0 or 1 = fine). */
export function fsckFix(image: string, flags: string[] = []): number {
  return run('e2fsck', ['-fy', ...flags, image]).status;
}

/** debugfs -R CMD (read-only unless `write`); returns stdout as bytes. */
export function debugfs(image: string, cmd: string, write = false): Buffer {
  const args = write ? ['-w', '-R', cmd, image] : ['-R', cmd, image];
  const r = spawnSync('debugfs', args, { maxBuffer: 256 << 20 });
  if (r.error) throw new MapvisorError('ETOOL', `cannot run debugfs: ${r.error.message}`, 'install e2fsprogs');
  return r.stdout;
}
