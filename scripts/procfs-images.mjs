#!/usr/bin/env node
// Builds the disk image the /proc and /sys tests run on, into .cache/images/ (gitignored):
//
//  procfs.img  the programs that read /proc and /sys to size themselves or to report on the machine:
//              procps (free, ps, uptime, vmstat), util-linux (lscpu), coreutils (nproc, cat, stat,
//              readlink, ls), busybox (Debian's dynamic one: its nproc, free and cat), grep,
//              python3-minimal and python3.11 (the standard library: json, threading) for os.cpu_count and
//              os.sched_getaffinity, and nodejs (os.cpus, os.totalmem,
//              os.availableParallelism: libuv's readers), dash (/bin/sh).
//
// Needs `npm run build` first (it imports createImage from dist/). Idempotent: the image is rebuilt only
// when it is missing or its stamp (.cache/images/procfs.stamp; see image-builder.mjs) differs. Prints one
// short line per step with its time; on failure prints one line `procfs-images: ...` to stderr and exits 1.
//
//   node scripts/procfs-images.mjs [--force] [--quiet] [procfs]
//   import { procfsImages } from './procfs-images.mjs'; const { procfs } = await procfsImages({ quiet: true });

import { fileURLToPath } from 'node:url';
import { buildImages, imagesCli } from './image-builder.mjs';

const SCRIPT = fileURLToPath(import.meta.url);

export const IMAGES = {
  procfs: {
    debian: ['procps', 'util-linux', 'coreutils', 'busybox', 'grep', 'dash', 'python3-minimal', 'python3.11', 'nodejs'],
    add: [],
    size: null,
  },
};

export const MUST_HAVE = {
  procfs: ['/usr/bin/free', '/usr/bin/ps', '/usr/bin/lscpu', '/usr/bin/nproc', '/usr/bin/busybox', '/usr/bin/grep', '/usr/bin/sh', '/usr/bin/python3', '/usr/bin/node'],
};

/** Builds the image when missing or stale; returns its path (see image-builder.mjs). */
export function procfsImages(o = {}) {
  return buildImages({ tag: 'procfs-images', script: SCRIPT, images: IMAGES, mustHave: MUST_HAVE, ...o });
}

await imagesCli('procfs-images', SCRIPT, IMAGES, procfsImages);
