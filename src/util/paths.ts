/**
 * Where the build's files are. Code runs from dist/src/... (tsc's output) or from dist/bundle/ (one file
 * per entry point, npm run build's esbuild step): both lie under dist/, beside the files the build
 * makes there (dist/stubs, dist/vdso), and dist/ lies in the checkout (ROOT/.cache holds fixtures).
 */
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
