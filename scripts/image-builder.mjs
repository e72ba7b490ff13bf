#!/usr/bin/env node
// What scripts/proc-images.mjs and scripts/net-images.mjs share: building test images from Debian
// packages and host trees with mapvisor's own createImage (dist/src/image), each only when it is
// missing or its stamp changed (a hash of the calling script, this one, the image builder's code, the
// package list and the trees added), then checked with e2fsck -fn and debugfs. One short line per step
// with its time; a failure is one line (ImageError), never a stack trace.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
export const ROOT = join(dirname(SCRIPT), '..');
export const OUT_DIR = join(ROOT, '.cache', 'images');
const CREATE = join(ROOT, 'dist', 'src', 'image', 'create.js');

export class ImageError extends Error {}

export function fail(msg) {
  throw new ImageError(msg);
}

const secs = (t0) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const mib = (n) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** Every regular file and symlink under `dir`, sorted, as [relative path, kind, mode, content hash]. */
function treeDigest(dir, h) {
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        if (name.endsWith('.tmp') || /\.tmp\d+$/.test(name)) continue; // fixtures.mjs's partial outputs
        h.update(`${relative(dir, p)}\0${st.mode & 0o7777}\0`);
        h.update(readFileSync(p));
        h.update('\0');
      }
    }
  };
  walk(dir);
}

/** The stamp of an image: what it is built from. */
function stampOf(script, name, spec, adds) {
  const h = createHash('sha256');
  h.update(readFileSync(script));
  h.update(readFileSync(SCRIPT));
  // The image builder's own code (dist/src/image): what it puts in every image (/etc files) changes with it.
  treeDigest(join(ROOT, 'dist', 'src', 'image'), h);
  h.update(`\0${name}\0${spec.debian.join(',')}\0${spec.size}\0`);
  for (const a of adds) {
    h.update(`${a.dir}\0`);
    treeDigest(a.host, h);
  }
  return h.digest('hex');
}

/** debugfs -R CMD IMG; returns stdout (debugfs prints its banner on stderr). */
async function debugfs(img, cmd) {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('debugfs', ['-R', cmd, img], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) fail(`cannot run debugfs (${r.error.message}); install e2fsprogs`);
  return r.stdout;
}

/** e2fsck -fn and a debugfs stat of every file the image must hold. */
async function check(name, img, files) {
  const { spawnSync } = await import('node:child_process');
  const fsck = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  if (fsck.error) fail(`cannot run e2fsck (${fsck.error.message}); install e2fsprogs`);
  if (fsck.status !== 0) fail(`${name}.img: e2fsck -fn exited ${fsck.status}: ${(fsck.stdout + fsck.stderr).trim().split('\n').pop()}`);
  for (const f of files) {
    // Follow the merged-/usr links the way the guest does: /bin -> usr/bin etc. are in the paths above.
    const out = await debugfs(img, `stat ${f}`);
    if (!/Type: (regular|symlink)/.test(out)) fail(`${name}.img lacks ${f}`);
  }
}

/**
 * Builds the images that are missing or stale; returns their paths. `names`: which (default all);
 * `force`: rebuild even when the stamp matches; `quiet`: print nothing.
 */
export async function buildImages({ tag, script, images, mustHave, quiet = false, force = false, names = Object.keys(images) }) {
  const log = quiet ? () => {} : (s) => console.log(`${tag}: ${s}`);
  if (!existsSync(CREATE)) fail(`${relative(ROOT, CREATE)} is missing; run npm run build first`);
  const { createImage } = await import(pathToFileURL(CREATE).href);
  mkdirSync(OUT_DIR, { recursive: true });
  const paths = {};
  for (const name of names) {
    const spec = images[name];
    if (!spec) fail(`no image named ${name} (there are ${Object.keys(images).join(', ')})`);
    const img = join(OUT_DIR, `${name}.img`);
    const stampFile = join(OUT_DIR, `${name}.stamp`);
    paths[name] = img;
    const adds = spec.add.filter((a) => {
      if (existsSync(a.host)) return true;
      if (!a.optional) fail(`${relative(ROOT, a.host)} is missing`);
      log(`${name}.img: ${relative(ROOT, a.host)} is missing (run node scripts/fixtures.mjs); left out`);
      return false;
    });
    const stamp = stampOf(script, name, spec, adds);
    if (!force && existsSync(img) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp) continue;

    const t0 = performance.now();
    log(`${name}.img: building from ${spec.debian.join(' ')}${adds.map((a) => ` + ${relative(ROOT, a.host)}:${a.dir}`).join('')}`);
    rmSync(stampFile, { force: true });
    // /bin/sh comes from dash, which ships the bin/sh -> dash link itself.
    let result;
    try {
      let step = '';
      let stepT = performance.now();
      const progress = (line) => {
        const word = line.split(' ', 1)[0];
        if (word === step) return;
        if (step) log(`${name}.img:   ${step} done (${secs(stepT)})`);
        step = word;
        stepT = performance.now();
        log(`${name}.img:   ${line}`);
      };
      result = await createImage({
        out: img,
        debian: spec.debian,
        add: adds.map((a) => ({ host: a.host, dir: a.dir })),
        ...(spec.size ? { size: spec.size } : {}),
        progress,
      });
      if (step) log(`${name}.img:   ${step} done (${secs(stepT)})`);
    } catch (e) {
      rmSync(img, { force: true });
      const msg = e && typeof e.oneLine === 'function' ? e.oneLine() : e && e.message ? e.message : String(e);
      fail(`${name}.img: ${msg.split('\n')[0]}`);
    }
    const tc = performance.now();
    try {
      await check(name, img, mustHave[name]);
    } catch (e) {
      rmSync(img, { force: true });
      throw e;
    }
    log(`${name}.img:   checked: e2fsck clean, ${mustHave[name].length} files present (${secs(tc)})`);
    const part = `${stampFile}.tmp${process.pid}`;
    writeFileSync(part, `${stamp}\n`);
    renameSync(part, stampFile);
    log(`${name}.img: ${mib(result.size)}, ${result.packages.length} packages, built in ${secs(t0)}`);
  }
  return paths;
}


/** A script's command line: `[--force] [--quiet] [NAME...]`; a failure is one line and exit 1. */
export async function imagesCli(tag, script, images, build) {
  if (!process.argv[1] || fileURLToPath(pathToFileURL(process.argv[1])) !== script) return;
  const args = process.argv.slice(2);
  const names = args.filter((a) => !a.startsWith('-'));
  try {
    for (const a of args) if (a.startsWith('-') && a !== '--force' && a !== '--quiet') fail(`unknown option ${a} (use --force, --quiet, and image names: ${Object.keys(images).join(' ')})`);
    await build({ force: args.includes('--force'), quiet: args.includes('--quiet'), ...(names.length ? { names } : {}) });
  } catch (e) {
    const msg = e instanceof ImageError ? e.message : `unexpected error: ${e && e.message ? e.message.split('\n')[0] : String(e)}`;
    console.error(`${tag}: ${msg}`);
    process.exit(1);
  }
}
