#!/usr/bin/env node
// Builds the disk images the process tests and bench:procs run on, into .cache/images/ (gitignored):
//
//  shell.img  bash, dash (/bin/sh), busybox (Debian's dynamic one, /bin/busybox), coreutils,
//             python3-minimal (subprocess, selectors, signal, threading, os are in libpython3.11-minimal;
//             _posixsubprocess, select, fcntl are built into the interpreter) and make; plus every static
//             test program from .cache/guest in /guest (when fixtures.mjs has built them).
//  cc.img     gcc, make, libc6-dev, dash (/bin/sh for make's recipes) and coreutils (rm for `make
//             clean`); test/fixtures/make-hello in /src (main.c, util.c, util.h, Makefile: `make -C /src`
//             builds /src/hello with gcc, cc1, as and ld from the image).
//
// Needs `npm run build` first (it imports createImage from dist/). Idempotent: an image is rebuilt only
// when it is missing or its stamp (.cache/images/NAME.stamp; see image-builder.mjs) differs. Prints one short line per step with its time; on
// failure prints one line `proc-images: ...` to stderr and exits 1 (no stack trace).
//
//   node scripts/proc-images.mjs [--force] [--quiet] [shell] [cc]
//   import { procImages } from './proc-images.mjs'; const { shell, cc } = await procImages({ quiet: true });

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, buildImages, imagesCli } from './image-builder.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
const GUEST = join(ROOT, '.cache', 'guest');
const MAKE_HELLO = join(ROOT, 'test', 'fixtures', 'make-hello');

/**
 * The images: Debian packages, host directories to add ({host, dir}; a missing optional one is left
 * out), and a fixed size (null: createImage's default, content × 1.5 + 64 MiB).
 */
export const IMAGES = {
  shell: {
    debian: ['bash', 'dash', 'busybox', 'coreutils', 'python3-minimal', 'make'],
    add: [{ host: GUEST, dir: '/guest', optional: true }],
    size: null,
  },
  cc: {
    debian: ['gcc', 'make', 'libc6-dev', 'dash', 'coreutils'],
    add: [{ host: MAKE_HELLO, dir: '/src', optional: false }],
    size: null,
  },
};

/** Files every image must hold (checked with debugfs after the build). */
export const MUST_HAVE = {
  shell: ['/usr/bin/bash', '/usr/bin/sh', '/usr/bin/busybox', '/usr/bin/true', '/usr/bin/seq', '/usr/bin/make', '/usr/bin/python3.11', '/usr/lib/python3.11/subprocess.py', '/usr/lib/python3.11/selectors.py'],
  cc: ['/usr/bin/gcc-12', '/usr/bin/x86_64-linux-gnu-as', '/usr/bin/x86_64-linux-gnu-ld.bfd', '/usr/bin/make', '/usr/bin/sh', '/usr/lib/gcc/x86_64-linux-gnu/12/cc1', '/usr/lib/x86_64-linux-gnu/crt1.o', '/usr/lib/x86_64-linux-gnu/libc.so', '/src/Makefile'],
};

/** Builds the images that are missing or stale; returns their paths (see image-builder.mjs). */
export function procImages(o = {}) {
  return buildImages({ tag: 'proc-images', script: SCRIPT, images: IMAGES, mustHave: MUST_HAVE, ...o });
}

await imagesCli('proc-images', SCRIPT, IMAGES, procImages);
