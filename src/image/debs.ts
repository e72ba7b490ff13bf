/**
 * The .deb cache: `$XDG_CACHE_HOME/mapvisor/debs` (or `~/.cache/mapvisor/debs`). Packages already there
 * with the right SHA-256 are reused; the rest are fetched with one `apt-get download` into a private
 * partial directory and renamed into the cache, so an interrupted download never leaves a bad .deb.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MapvisorError } from '../errors.js';
import type { DebPackage } from './apt.js';
import { exec, firstError } from './exec.js';

/** A download failed; `stale` when refreshed package lists may fix it (404, hash mismatch). */
export class DownloadError extends MapvisorError {
  readonly stale: boolean;
  constructor(message: string, stale: boolean) {
    super('EDOWNLOAD', message, 'check the network connection to the Debian mirror; apt-get download PKG must work');
    this.name = 'DownloadError';
    this.stale = stale;
  }
}

export function debCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mapvisor', 'debs');
}

/** The file name apt-get download gives a package (an epoch's colon is written %3a). */
export function debFileName(p: DebPackage): string {
  return `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;
}

function sha256(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

async function cached(file: string, p: DebPackage): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
  } catch {
    return false;
  }
  return !p.sha256 || (await sha256(file)) === p.sha256;
}

/** "Get:5 http://deb.debian.org/debian bookworm/main amd64 libsqlite3-0 amd64 3.40.1-2 [839 kB]" */
const GET_LINE = /^Get:\d+\s.*\s(\S+)\s+\S+\s+\S+\s+\[[^\]]*\]\s*$/;

/** Makes sure every package's .deb is in `dir`; returns their paths in the order of `pkgs`. */
export async function fetchDebs(pkgs: DebPackage[], dir: string, progress: (line: string) => void): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files = pkgs.map((p) => join(dir, debFileName(p)));
  const need: DebPackage[] = [];
  for (let i = 0; i < pkgs.length; i++) if (!(await cached(files[i]!, pkgs[i]!))) need.push(pkgs[i]!);
  if (!need.length) {
    progress(`downloading nothing: ${pkgs.length} packages cached`);
    return files;
  }
  const partial = await mkdtemp(join(dir, '.partial-'));
  try {
    let n = 0;
    progress(`downloading 0/${need.length}`);
    // As root apt drops to the _apt user, which cannot write a directory under /root; it would fall back
    // with a warning, so ask for that directly.
    const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
    const r = await exec('apt-get', ['download', ...sandbox, ...need.map((p) => `${p.name}=${p.version}`)], {
      cwd: partial,
      onLine: (line) => {
        const m = GET_LINE.exec(line);
        if (m) progress(`downloading ${++n}/${need.length} ${m[1]}`);
      },
    });
    if (r.status !== 0) {
      const why = firstError(r.stderr);
      throw new DownloadError(`cannot download ${need.length} Debian package${need.length > 1 ? 's' : ''}: ${why}`, /\b404\b|Not Found|Hash Sum mismatch|Can't find a source|Unable to locate/i.test(r.stderr));
    }
    const got = await readdir(partial);
    for (const p of need) {
      const name = got.includes(debFileName(p)) ? debFileName(p) : got.find((f) => f.startsWith(`${p.name}_`) && f.endsWith('.deb'));
      if (!name) throw new DownloadError(`apt-get download did not produce ${debFileName(p)}`, true);
      await rename(join(partial, name), join(dir, debFileName(p)));
    }
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return files;
}
