#!/usr/bin/env node
// Prepares test fixtures into .cache/ at the repo root (gitignored).
//
//  (a) compiles every test/guest/*.c into .cache/guest/NAME with
//      `gcc -O2 -static`, plus any flags from a first-line `// build: FLAGS`
//      (and, for a source with a line `// also: musl`, into NAME.musl with musl-gcc)
//      comment (e.g. `// build: -pthread`, `// build: -mavx2`);
//  (b) obtains Debian's static busybox into .cache/busybox;
//  (c) builds the process-test images (.cache/images/shell.img, cc.img: Debian bash, python3, make,
//      gcc) with scripts/proc-images.mjs, which needs the build (dist/) and rebuilds only on change;
//  (d) builds the networking image (.cache/images/net.img: Debian python3 with http.server, redis-server
//      and redis-tools) with scripts/net-images.mjs, likewise;
//  (e) builds the /proc and /sys image (.cache/images/procfs.img: procps, util-linux, busybox, python3,
//      nodejs) with scripts/procfs-images.mjs, likewise.
//
// The images of the compat corpus's quick workloads (.cache/images/compat-NAME.img, for
// test/integration/compat.test.ts) are built with scripts/compat.mjs, likewise.
//
// Idempotent: a guest binary is rebuilt only when its source (or this script)
// is newer than the binary; busybox is fetched only when missing. Prints one
// short line per step it actually performs. On failure prints one line
// `fixtures: ...` to stderr and exits 1 (no stack trace).

import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(import.meta.url);
const ROOT = join(dirname(SCRIPT), '..');
const CACHE = join(ROOT, '.cache');
const GUEST_SRC = join(ROOT, 'test', 'guest');
const GUEST_OUT = join(CACHE, 'guest');
const BUSYBOX = join(CACHE, 'busybox');

class FixtureError extends Error {}

function fail(msg) {
  throw new FixtureError(msg);
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

/** Run a command; returns {status, stdout, stderr}. Never throws. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) return { status: -1, stdout: '', stderr: String(r.error.message) };
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** First non-empty line of some command output, for one-line error messages. */
function firstLine(s) {
  const l = s.split('\n').map((x) => x.trim()).filter(Boolean);
  // gcc puts the interesting part ("error: ...") on a later line; prefer it.
  return l.find((x) => /error/i.test(x)) ?? l[0] ?? '(no output)';
}

/** Extra gcc flags from a first-line `// build: FLAGS` comment. */
function buildFlags(src) {
  const first = readFileSync(src, 'utf8').split('\n', 1)[0];
  const m = /^\s*\/\/\s*build:\s*(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}

function buildGuests() {
  if (!existsSync(GUEST_SRC)) return;
  const sources = readdirSync(GUEST_SRC).filter((f) => f.endsWith('.c')).sort();
  if (sources.length === 0) return;
  mkdirSync(GUEST_OUT, { recursive: true });
  const scriptTime = mtime(SCRIPT);
  for (const file of sources) {
    const name = file.slice(0, -2);
    const src = join(GUEST_SRC, file);
    const out = join(GUEST_OUT, name);
    const outTime = mtime(out);
    if (outTime >= mtime(src) && outTime >= scriptTime) continue;
    const flags = buildFlags(src);
    const tmp = `${out}.tmp${process.pid}`;
    const args = ['-O2', '-static', '-Wall', ...flags, '-o', tmp, src];
    console.log(`fixtures: gcc ${['-O2', '-static', ...flags].join(' ')} ${relative(ROOT, src)}`);
    const r = run('gcc', args);
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      if (r.status === -1) fail(`cannot run gcc (${r.stderr}); install it: apt-get install gcc libc6-dev`);
      fail(`gcc failed on ${relative(ROOT, src)}: ${firstLine(r.stderr)}`);
    }
    renameSync(tmp, out);
  }
  buildMuslGuests(sources, scriptTime);
}

/**
 * A guest whose source says `// also: musl` is built a second time with musl's static libc, as
 * NAME.musl (so a test can check what musl does, e.g. find the vDSO). Without musl-gcc the build is
 * skipped with a note, and those tests skip saying so.
 */
function buildMuslGuests(sources, scriptTime) {
  const wanted = sources.filter((f) => /^\/\/\s*also:\s*musl\s*$/m.test(readFileSync(join(GUEST_SRC, f), 'utf8')));
  if (wanted.length === 0) return;
  if (run('musl-gcc', ['--version']).status !== 0) {
    console.log('fixtures: musl-gcc not installed (apt-get install musl-tools): the musl builds are skipped');
    return;
  }
  for (const file of wanted) {
    const src = join(GUEST_SRC, file);
    const out = join(GUEST_OUT, `${file.slice(0, -2)}.musl`);
    const outTime = mtime(out);
    if (outTime >= mtime(src) && outTime >= scriptTime) continue;
    const tmp = `${out}.tmp${process.pid}`;
    const flags = buildFlags(src);
    console.log(`fixtures: musl-gcc -O2 -static ${flags.join(' ')} ${relative(ROOT, src)}`);
    const r = run('musl-gcc', ['-O2', '-static', '-Wall', ...flags, '-o', tmp, src]);
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      fail(`musl-gcc failed on ${relative(ROOT, src)}: ${firstLine(r.stderr)}`);
    }
    renameSync(tmp, out);
  }
}

function fetchBusybox() {
  if (existsSync(BUSYBOX)) return;
  mkdirSync(CACHE, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'mapvisor-busybox-'));
  try {
    console.log('fixtures: apt-get download busybox-static');
    let r = run('apt-get', ['download', 'busybox-static'], { cwd: tmp });
    if (r.status === -1) fail('cannot run apt-get; busybox needs a Debian system (or put a static busybox at .cache/busybox)');
    if (r.status !== 0) {
      // Most likely the package lists are empty (fresh machine): update once, retry.
      console.log('fixtures: apt-get update');
      const u = run('apt-get', ['update', '-qq']);
      if (u.status !== 0) fail(`apt-get update failed: ${firstLine(u.stderr)} (run \`apt-get update\` as root, or put a static busybox at .cache/busybox)`);
      r = run('apt-get', ['download', 'busybox-static'], { cwd: tmp });
      if (r.status !== 0) fail(`apt-get download busybox-static failed: ${firstLine(r.stderr)} (check apt sources, or put a static busybox at .cache/busybox)`);
    }
    const deb = readdirSync(tmp).find((f) => f.endsWith('.deb'));
    if (!deb) fail('apt-get download busybox-static produced no .deb');
    const x = run('dpkg', ['-x', join(tmp, deb), join(tmp, 'x')]);
    if (x.status !== 0) fail(`dpkg -x ${deb} failed: ${firstLine(x.stderr)} (install dpkg)`);
    const bin = join(tmp, 'x', 'bin', 'busybox');
    if (!existsSync(bin)) fail(`${deb} has no bin/busybox`);
    const part = `${BUSYBOX}.tmp${process.pid}`;
    copyFileSync(bin, part);
    chmodSync(part, 0o755);
    renameSync(part, BUSYBOX);
    console.log(`fixtures: busybox from ${deb} -> .cache/busybox`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

try {
  buildGuests();
  fetchBusybox();
} catch (e) {
  const msg = e instanceof FixtureError ? e.message : `unexpected error: ${e && e.message ? e.message : String(e)}`;
  console.error(`fixtures: ${msg}`);
  process.exit(1);
}
// The process-test and networking images need dist/ (createImage): only when it is built (npm test builds first).
if (existsSync(join(ROOT, 'dist', 'src', 'image', 'create.js'))) {
  const { procImages } = await import('./proc-images.mjs');
  const { netImages } = await import('./net-images.mjs');
  const { compatImages, workloads } = await import('./compat.mjs');
  const { procfsImages } = await import('./procfs-images.mjs');
  try {
    await procImages({});
    await netImages({});
    await compatImages({ list: workloads({ quick: true }), keepGoing: true }); // a workload's broken image fails its own test
    await procfsImages({});
  } catch (e) {
    console.error(`fixtures: ${e && e.message ? e.message : String(e)}`);
    process.exit(1);
  }
}
