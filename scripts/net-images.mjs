#!/usr/bin/env node
// Builds the disk image the networking tests and bench:net run on, into .cache/images/ (gitignored):
//
//  net.img  Debian's python3 with its whole standard library (python3-minimal for /usr/bin/python3,
//           python3.11 for libpython3.11-stdlib: http.server, socketserver, email, mimetypes; media-types
//           for /etc/mime.types), redis-server and redis-tools (redis-benchmark, redis-cli; libjemalloc2,
//           liblzf1, libssl3, libsystemd0 come as library dependencies), dash (/bin/sh), coreutils (sleep,
//           cat, ...) and netbase (/etc/services, /etc/protocols); /etc/hosts, host.conf and
//           nsswitch.conf come from mapvisor image create itself (localhost is 127.0.0.1 and ::1; hosts
//           from files only, so no resolver query leaves the sandbox). Plus the tree .cache/net-root,
//           written by this script: /srv/www (index.html, hello.txt and blob.bin, 1 MiB of deterministic
//           bytes) for python's http.server; the tests compare what they fetch with those files.
//
// Needs `npm run build` first (it imports createImage from dist/). Idempotent: the image is rebuilt only
// when it is missing or its stamp (.cache/images/net.stamp; see image-builder.mjs) differs. Prints one short line per step with its time; on failure
// prints one line `net-images: ...` to stderr and exits 1 (no stack trace).
//
//   node scripts/net-images.mjs [--force] [--quiet] [net]
//   import { netImages, NET_ROOT } from './net-images.mjs'; const { net } = await netImages({ quiet: true });

import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, buildImages, fail, imagesCli } from './image-builder.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
/** The tree added at / of net.img (written by writeNetRoot). */
export const NET_ROOT = join(ROOT, '.cache', 'net-root');

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
export const MUST_HAVE = {
  net: [
    '/usr/bin/python3', '/usr/bin/python3.11', '/usr/lib/python3.11/http/server.py', '/usr/lib/python3.11/socketserver.py',
    '/usr/lib/python3.11/email/parser.py', '/etc/mime.types',
    '/usr/bin/redis-server', '/usr/bin/redis-cli', '/usr/bin/redis-benchmark', '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
    '/usr/bin/sh', '/usr/bin/dash', '/usr/bin/sleep', '/usr/bin/cat',
    '/etc/hosts', '/etc/host.conf', '/etc/nsswitch.conf', '/etc/services', '/etc/protocols',
    '/srv/www/index.html', '/srv/www/hello.txt', '/srv/www/blob.bin',
  ],
};

/** The files of .cache/net-root: path → content (deterministic). */
function netRootFiles() {
  // blob.bin: 1 MiB, SHA-256 in counter mode over a fixed label (the same bytes on every machine).
  const blocks = [];
  for (let i = 0; i < (1 << 20) / 32; i++) blocks.push(createHash('sha256').update(`mapvisor net blob ${i}`).digest());
  return {
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
  for (const d of ['srv', 'srv/www']) chmodSync(join(NET_ROOT, d), 0o755);
}

/** Builds the images that are missing or stale (after writing .cache/net-root); returns their paths. */
export function netImages(o = {}) {
  try {
    writeNetRoot();
  } catch (e) {
    fail(`cannot write ${relative(ROOT, NET_ROOT)}: ${e && e.message ? e.message.split('\n')[0] : String(e)}`);
  }
  return buildImages({ tag: 'net-images', script: SCRIPT, images: IMAGES, mustHave: MUST_HAVE, ...o });
}

await imagesCli('net-images', SCRIPT, IMAGES, netImages);
