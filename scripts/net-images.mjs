#!/usr/bin/env node
// Builds the disk image the networking tests and bench:net run on, into .cache/images/ (gitignored):
//
//  net.img  Debian's python3 with its whole standard library (python3-minimal for /usr/bin/python3,
//           python3.11 for libpython3.11-stdlib: http.server, socketserver, email, mimetypes; media-types
//           for /etc/mime.types), redis-server and redis-tools (redis-benchmark, redis-cli; libjemalloc2,
//           liblzf1, libssl3, libsystemd0 come as library dependencies), dash (/bin/sh), coreutils (sleep,
//           cat, ...) and netbase (/etc/services, /etc/protocols); plus the tree .cache/net-root, written
//           by this script: /etc/hosts (127.0.0.1 localhost, ::1 localhost ip6-localhost),
//           /etc/nsswitch.conf (hosts: files, so that no resolver query leaves the sandbox) and /srv/www
//           (index.html, hello.txt and blob.bin, 1 MiB of deterministic bytes) for python's http.server.
//           The tests compare what they fetch with the files in .cache/net-root/srv/www.
//
// Needs `npm run build` first (it imports createImage from dist/). Idempotent: the image is rebuilt only
// when it is missing or its stamp (.cache/images/net.stamp: a hash of this script, the package list and
// the content of .cache/net-root) differs. Prints one short line per step with its time; on failure
// prints one line `net-images: ...` to stderr and exits 1 (no stack trace).
//
//   node scripts/net-images.mjs [--force] [--quiet] [net]
//   import { netImages, NET_ROOT } from './net-images.mjs'; const { net } = await netImages({ quiet: true });

import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = join(dirname(SCRIPT), '..');
const OUT_DIR = join(ROOT, '.cache', 'images');
const CREATE = join(ROOT, 'dist', 'src', 'image', 'create.js');
/** The tree added at / of net.img (written by writeNetRoot). */
export const NET_ROOT = join(ROOT, '.cache', 'net-root');

class ImageError extends Error {}

/**
 * The images: Debian packages, host directories to add ({host, dir}; a missing optional one is left
 * out), and a fixed size (null: createImage's default, content × 1.5 + 64 MiB).
 */
export const IMAGES = {
  net: {
    debian: ['python3-minimal', 'python3.11', 'redis-server', 'redis-tools', 'dash', 'coreutils', 'netbase'],
    add: [{ host: NET_ROOT, dir: '/', optional: false }],
    size: null,
  },
};

/** Files every image must hold (checked with debugfs after the build). */
const MUST_HAVE = {
  net: [
    '/usr/bin/python3', '/usr/bin/python3.11', '/usr/lib/python3.11/http/server.py', '/usr/lib/python3.11/socketserver.py',
    '/usr/lib/python3.11/email/parser.py', '/etc/mime.types',
    '/usr/bin/redis-server', '/usr/bin/redis-cli', '/usr/bin/redis-benchmark', '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
    '/usr/bin/sh', '/usr/bin/dash', '/usr/bin/sleep', '/usr/bin/cat',
    '/etc/hosts', '/etc/nsswitch.conf', '/etc/services', '/etc/protocols',
    '/srv/www/index.html', '/srv/www/hello.txt', '/srv/www/blob.bin',
  ],
};

/** The files of .cache/net-root: path → content (deterministic). */
function netRootFiles() {
  // blob.bin: 1 MiB, SHA-256 in counter mode over a fixed label (the same bytes on every machine).
  const blocks = [];
  for (let i = 0; i < (1 << 20) / 32; i++) blocks.push(createHash('sha256').update(`mapvisor net blob ${i}`).digest());
  return {
    'etc/hosts': '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n',
    'etc/nsswitch.conf': 'passwd:\tfiles\ngroup:\tfiles\nshadow:\tfiles\nhosts:\tfiles\nnetworks:\tfiles\nprotocols:\tfiles\nservices:\tfiles\n',
    'srv/www/index.html': '<!doctype html>\n<html><head><title>mapvisor net</title></head>\n<body><p>Served from inside a mapvisor sandbox.</p></body></html>\n',
    'srv/www/hello.txt': 'hello over tcp\n',
    'srv/www/blob.bin': Buffer.concat(blocks),
  };
}

/** Writes .cache/net-root (only the files whose content differs, so nothing changes on a rerun). */
function writeNetRoot() {
  for (const [rel, content] of Object.entries(netRootFiles())) {
    const p = join(NET_ROOT, rel);
    const want = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const have = existsSync(p) ? readFileSync(p) : null;
    if (have && have.equals(want) && (statSync(p).mode & 0o777) === 0o644) continue;
    mkdirSync(dirname(p), { recursive: true });
    const part = `${p}.tmp${process.pid}`;
    writeFileSync(part, want, { mode: 0o644 });
    chmodSync(part, 0o644);
    renameSync(part, p);
  }
  for (const d of ['etc', 'srv', 'srv/www']) chmodSync(join(NET_ROOT, d), 0o755);
}

function fail(msg) {
  throw new ImageError(msg);
}

const secs = (t0) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const mib = (n) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** Every regular file under `dir`, sorted, as [relative path, mode, content] into the hash. */
function treeDigest(dir, h) {
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        if (/\.tmp\d+$/.test(name)) continue; // a partial write of another run
        h.update(`${relative(dir, p)}\0${st.mode & 0o7777}\0`);
        h.update(readFileSync(p));
        h.update('\0');
      }
    }
  };
  walk(dir);
}

/** The stamp of an image: what it is built from. */
function stampOf(name, spec, adds) {
  const h = createHash('sha256');
  h.update(readFileSync(SCRIPT));
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
async function check(name, img) {
  const { spawnSync } = await import('node:child_process');
  const fsck = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  if (fsck.error) fail(`cannot run e2fsck (${fsck.error.message}); install e2fsprogs`);
  if (fsck.status !== 0) fail(`${name}.img: e2fsck -fn exited ${fsck.status}: ${(fsck.stdout + fsck.stderr).trim().split('\n').pop()}`);
  for (const f of MUST_HAVE[name]) {
    // debugfs does not follow the merged-/usr links (/bin -> usr/bin), so the paths above are /usr's.
    const out = await debugfs(img, `stat ${f}`);
    if (!/Type: (regular|symlink)/.test(out)) fail(`${name}.img lacks ${f}`);
  }
}

/**
 * Builds the images that are missing or stale; returns their paths. `names`: which (default all);
 * `force`: rebuild even when the stamp matches; `quiet`: print nothing.
 */
export async function netImages({ quiet = false, force = false, names = Object.keys(IMAGES) } = {}) {
  const log = quiet ? () => {} : (s) => console.log(`net-images: ${s}`);
  if (!existsSync(CREATE)) fail(`${relative(ROOT, CREATE)} is missing; run npm run build first`);
  const { createImage } = await import(pathToFileURL(CREATE).href);
  mkdirSync(OUT_DIR, { recursive: true });
  try {
    writeNetRoot();
  } catch (e) {
    fail(`cannot write ${relative(ROOT, NET_ROOT)}: ${e && e.message ? e.message.split('\n')[0] : String(e)}`);
  }
  const paths = {};
  for (const name of names) {
    const spec = IMAGES[name];
    if (!spec) fail(`no image named ${name} (there are ${Object.keys(IMAGES).join(', ')})`);
    const img = join(OUT_DIR, `${name}.img`);
    const stampFile = join(OUT_DIR, `${name}.stamp`);
    paths[name] = img;
    const adds = spec.add.filter((a) => {
      if (existsSync(a.host)) return true;
      if (!a.optional) fail(`${relative(ROOT, a.host)} is missing`);
      log(`${name}.img: ${relative(ROOT, a.host)} is missing; left out`);
      return false;
    });
    const stamp = stampOf(name, spec, adds);
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
      await check(name, img);
    } catch (e) {
      rmSync(img, { force: true });
      throw e;
    }
    log(`${name}.img:   checked: e2fsck clean, ${MUST_HAVE[name].length} files present (${secs(tc)})`);
    const part = `${stampFile}.tmp${process.pid}`;
    writeFileSync(part, `${stamp}\n`);
    renameSync(part, stampFile);
    log(`${name}.img: ${mib(result.size)}, ${result.packages.length} packages, built in ${secs(t0)}`);
  }
  return paths;
}

if (process.argv[1] && fileURLToPath(pathToFileURL(process.argv[1])) === SCRIPT) {
  const args = process.argv.slice(2);
  const names = args.filter((a) => !a.startsWith('-'));
  try {
    for (const a of args) if (a.startsWith('-') && a !== '--force' && a !== '--quiet') fail(`unknown option ${a} (use --force, --quiet, and image names: ${Object.keys(IMAGES).join(' ')})`);
    await netImages({ force: args.includes('--force'), quiet: args.includes('--quiet'), ...(names.length ? { names } : {}) });
  } catch (e) {
    const msg = e instanceof ImageError ? e.message : `unexpected error: ${e && e.message ? e.message.split('\n')[0] : String(e)}`;
    console.error(`net-images: ${msg}`);
    process.exit(1);
  }
}
