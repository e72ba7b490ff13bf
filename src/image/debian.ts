/**
 * From Debian package names to .deb files in the cache: resolve the closure (apt.ts), download what is
 * not cached (debs.ts). apt's package lists are refreshed with `apt-get update` at most once per run:
 * when a named package is unknown and the lists are empty (a fresh container), or when they turn out
 * stale (a candidate no list carries, a 404 on download).
 */
import { MapvisorError } from '../errors.js';
import { aptUpdate, listsEmpty, resolvePackages, UnknownPackageError, type DebPackage } from './apt.js';
import { DownloadError, fetchDebs } from './debs.js';

export interface FetchedPackages {
  packages: DebPackage[];
  /** The cached .deb of each package, in the same order. */
  files: string[];
}

export async function fetchDebian(names: string[], cacheDir: string, progress: (line: string) => void): Promise<FetchedPackages> {
  let updated = false;
  const update = async (): Promise<void> => {
    progress('updating the apt package lists (apt-get update)');
    await aptUpdate();
    updated = true;
  };
  for (;;) {
    const what = `resolving ${names.length} package${names.length > 1 ? 's' : ''}…`;
    progress(what);
    let packages: DebPackage[];
    try {
      packages = await resolvePackages(names);
    } catch (e) {
      // Checked only now: each apt-cache run costs ~0.5 s when apt keeps no binary cache (containers).
      if (e instanceof UnknownPackageError && !updated && (await listsEmpty())) {
        await update();
        continue;
      }
      throw e;
    }
    progress(`${what} ${packages.length} packages`);
    const unlisted = packages.find((p) => !p.filename);
    if (unlisted) {
      if (!updated) {
        await update();
        continue;
      }
      throw new MapvisorError('EAPT', `${unlisted.name} ${unlisted.version} is in no apt package list`, 'check /etc/apt/sources.list and run apt-get update');
    }
    try {
      return { packages, files: await fetchDebs(packages, cacheDir, progress) };
    } catch (e) {
      if (e instanceof DownloadError && e.stale && !updated) {
        await update();
        continue;
      }
      throw e;
    }
  }
}
