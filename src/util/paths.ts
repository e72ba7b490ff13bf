/**
 * Where the build's files are. Code runs from dist/src/... (tsc's output) or from dist/bundle/ (one file
 * per entry point, npm run build's esbuild step): both lie under dist/, beside the files the build
 * makes there (dist/stubs, dist/vdso), and dist/ lies in the checkout (ROOT/.cache holds fixtures).
 */
import { statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

let found: string | null = null;

/** The build's directory (dist/). */
export function distDir(): string {
  if (found !== null) return found;
  let d = dirname(fileURLToPath(import.meta.url));
  while (basename(d) !== 'dist') {
    const up = dirname(d);
    if (up === d) throw new Error(`mapvisor's code runs from ${fileURLToPath(import.meta.url)}, outside a dist/ directory`);
    d = up;
  }
  found = d;
  return d;
}

/** A file the build made: dist/...parts. */
export function distPath(...parts: string[]): string {
  return join(distDir(), ...parts);
}

/** The checkout (the directory holding dist/). */
export function rootPath(...parts: string[]): string {
  return join(dirname(distDir()), ...parts);
}

/**
 * A worker's or process's entry module: the bundle's (dist/bundle/NAME.js) when the build made one at
 * least as new as `own` (the same entry as tsc's module, e.g. new URL('./worker.js', import.meta.url)),
 * else `own`. Code that already runs from the bundle gets its neighbour either way; a tsc-only rebuild
 * (tsc -p .) is never shadowed by an older bundle.
 */
export function entryUrl(name: string, own: URL): URL {
  const bundled = distPath('bundle', `${name}.js`);
  try {
    if (statSync(bundled).mtimeMs >= statSync(fileURLToPath(own)).mtimeMs) return pathToFileURL(bundled);
  } catch {
    // no bundle (or no own file): the module itself
  }
  return own;
}
