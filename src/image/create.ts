/**
 * `mapvisor image create`: builds an ext4 root file system image from Debian packages (and their library
 * dependencies) and host directories.
 *
 * Steps: resolve and download the packages (debian.ts), unpack them into a temporary staging root with
 * the skeleton a program expects (rootfs.ts, unpack.ts), copy the --add paths over them, measure, and
 * write OUT.img.tmp with mkfs.ext4 -d, renamed to OUT.img only when complete. The staging directory and
 * any partial image are removed whatever happens (on SIGINT too when the CLI turns it into an exit).
 */
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { MapvisorError, UsageError } from '../errors.js';
import { formatSize } from '../util/size.js';
import { PACKAGE_NAME } from './apt.js';
import { fetchDebian } from './debian.js';
import { debCacheDir } from './debs.js';
import { findTool } from './exec.js';
import { defaultSize, inodeCount, measureTree, minimumSize, MiB, roundUp, SIZE_ALIGN } from './measure.js';
import { makeExt4 } from './mkfs.js';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { addHostPath, makeRootSkeleton, resolveInRoot } from './rootfs.js';
import { unpackDebs } from './unpack.js';

export interface CreateImageOptions {
  /** The image file to write (replaced if it exists). */
  out: string;
  /** Image size in bytes, rounded up to 2 MiB; default content × 1.5 + 64 MiB. */
  size?: number;
  /** Debian package names (entries may be comma lists). */
  debian: string[];
  /** Host paths to copy in: a directory's contents go into `dir`; a file goes to `dir`. */
  add: Array<{ host: string; dir: string }>;
  /**
   * Progress lines. Each line replaces the current step's line; a line whose first word differs from
   * the previous line's starts a new step ("resolving", "downloading", "unpacking", "copying", "making").
   */
  progress?: (line: string) => void;
  /** Where .debs are cached; default $XDG_CACHE_HOME/mapvisor/debs or ~/.cache/mapvisor/debs. */
  cacheDir?: string;
}

export interface CreateImageResult {
  /** Image size in bytes (a multiple of 2 MiB). */
  size: number;
  /** The packages unpacked into the image, named ones first. */
  packages: string[];
}

const LOADER = '/lib64/ld-linux-x86-64.so.2';

/** Package names from --debian values ("a,b c"), duplicates dropped. */
export function packageNames(values: string[]): string[] {
  const names = [...new Set(values.flatMap((v) => v.split(/[\s,]+/)).filter(Boolean))];
  for (const n of names) {
    if (!PACKAGE_NAME.test(n)) throw new UsageError(`--debian ${JSON.stringify(n)} is not a Debian package name`, 'give names such as --debian sqlite3,curl');
  }
  return names;
}

async function checkInputs(opts: CreateImageOptions): Promise<string> {
  if (!opts.out) throw new UsageError('no output image given', 'mapvisor image create [options] OUT.img');
  const out = resolve(opts.out);
  const dirSt = await stat(dirname(out)).catch(() => null);
  if (!dirSt?.isDirectory()) throw new UsageError(`directory ${dirname(out)} (for ${opts.out}) does not exist`, `create it first: mkdir -p ${dirname(out)}`);
  if ((await stat(out).catch(() => null))?.isDirectory()) throw new UsageError(`${opts.out} is a directory`, 'give the image file name, e.g. root.img');
  if (opts.size !== undefined && !(Number.isFinite(opts.size) && opts.size > 0)) {
    throw new UsageError(`--size ${opts.size} is not a positive size`, 'give a size such as --size 256M');
  }
  for (const a of opts.add) {
    const st = await stat(a.host).catch(() => null);
    if (!st) throw new UsageError(`--add ${a.host}: no such file or directory`, 'give an existing host directory: --add HOSTDIR[:/dir/in/image]');
    if (!st.isDirectory() && !st.isFile()) throw new UsageError(`--add ${a.host} is neither a directory nor a file`, 'give a host directory or regular file');
  }
  return out;
}

/**
 * /etc/ld.so.cache, as Debian's libc-bin trigger makes it at install time: without it the dynamic
 * loader probes every library directory (a dozen failed opens per library, per program start).
 * The host's ldconfig writes it for the root (-r); where there is none the image goes without.
 */
async function linkerCache(root: string, progress: (line: string) => void): Promise<void> {
  const ldconfig = ['/sbin/ldconfig', '/usr/sbin/ldconfig'].find((p) => existsSync(p));
  if (!ldconfig) {
    progress('no ldconfig on this host: the image has no /etc/ld.so.cache (programs start slower)');
    return;
  }
  progress('writing /etc/ld.so.cache (ldconfig -r)');
  const r = spawnSync(ldconfig, ['-r', root, '-X'], { encoding: 'utf8' });
  if (r.status !== 0) progress(`ldconfig -r failed (${(r.stderr || '').trim().split('\n')[0] ?? r.status}): the image has no /etc/ld.so.cache`);
}

export async function createImage(opts: CreateImageOptions): Promise<CreateImageResult> {
  const progress = opts.progress ?? ((): void => {});
  const out = await checkInputs(opts);
  const names = packageNames(opts.debian);
  findTool('mkfs.ext4');
  if (names.length) for (const tool of ['apt-get', 'apt-cache', 'dpkg']) findTool(tool);

  const work = await mkdtemp(join(tmpdir(), 'mapvisor-image-'));
  const partial = `${out}.tmp`;
  const cleanup = (): void => {
    rmSync(work, { recursive: true, force: true });
    rmSync(partial, { force: true });
  };
  process.once('exit', cleanup);
  let done = false;
  try {
    const root = join(work, 'root');
    await mkdir(root, { mode: 0o755 });
    let packages: string[] = [];
    if (names.length) {
      const fetched = await fetchDebian(names, opts.cacheDir ?? debCacheDir(), progress);
      packages = fetched.packages.map((p) => p.name);
      await makeRootSkeleton(root);
      await unpackDebs(fetched.packages.map((p, i) => ({ name: p.name, file: fetched.files[i]! })), root, join(work, 'unpack'), progress);
      if (packages.includes('libc6') && !(await stat(await resolveInRoot(root, LOADER)).catch(() => null))?.isFile()) {
        throw new MapvisorError('EIMAGE', `the dynamic loader ${LOADER} does not resolve in the image`, 'report this: libc6 was unpacked but its loader is missing');
      }
    }
    for (const a of opts.add) {
      progress(`copying ${a.host} to ${a.dir}`);
      await addHostPath(root, a.host, a.dir);
    }
    if (packages.includes('libc6')) await linkerCache(root, progress);

    const content = await measureTree(root);
    const needed = minimumSize(content);
    let size = defaultSize(content);
    if (opts.size !== undefined) {
      size = roundUp(opts.size, SIZE_ALIGN);
      if (size < needed) {
        throw new UsageError(
          `--size ${formatSize(opts.size)} is too small: the content needs an image of at least ${formatSize(needed)}`,
          `give --size ${needed / MiB}M or more, or leave --size out`,
        );
      }
    }
    progress(`making a ${formatSize(size)} ext4 image`);
    await makeExt4(partial, root, size, inodeCount(size, content.entries));
    await rename(partial, out);
    done = true;
    return { size, packages };
  } finally {
    process.removeListener('exit', cleanup);
    if (!done) await rm(partial, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}
