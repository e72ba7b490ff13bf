#!/usr/bin/env node
// The compatibility corpus (`npm run compat`): real Debian programs run in mapvisor, on every platform
// that works on this machine, and natively on the host, with the same binaries both ways; their stdout,
// exit status and the files they write must be the same.
//
// A WORKLOAD is compat/workloads/NAME.sh, a bash script whose first comment lines say:
//
//   # compat: one-line description
//   # packages: a,b,c            Debian packages for its image (bash and coreutils are always added;
//                                may be empty)
//   # quick: yes|no              part of the CI subset (test/integration/compat.test.ts)
//   # timeout: SECONDS           per run (mapvisor's --timeout, and the native run's limit)
//   # normalise: NAME[,NAME]     optional: normalisations (below) applied to stdout and to the files in
//                                /out of both runs before they are compared
//
// It runs as `/bin/bash /compat/NAME.sh`, with cwd /out (an empty directory), the environment exactly
// PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 TZ=UTC, umask 022 and no standard input
// (/dev/null). The whole compat/workloads/ directory is in the image at /compat, so data files
// (compat/workloads/NAME.d/...) are reachable. A workload should write only under /out and /tmp: the
// native tree is extracted once and reused (its /out and /root are reset before each run, nothing else).
// What is compared: stdout, the exit status, and the tree /out after the run (paths, file types,
// permission bits, sizes and SHA-256 of regular files, symlink targets; not times, owners or directory
// sizes). stderr is shown on a mismatch, not compared.
//
// NORMALISATIONS (name: what it replaces; use one only for what must differ between two runs):
//   pids     a number after the word pid/pids/ppid/PID (`pid 1234`, `pid=1234`, `PID: 1234`) -> <pid>
//   times    dates and times: ISO 8601 (2026-12-06[ T]16:14[:46[.123]][ +0000|Z]), `Sun Dec  6 16:14:46`
//            (date(1), with an optional zone and year), ls -l's `Dec  6 16:14` / `Dec  6  2026` -> <time>
//   tmpdirs  names mktemp, Python's tempfile and the like make under /tmp: /tmp/tmp.XXXXXXXXXX,
//            /tmp/tmpabcd1234 (`/tmp/` then `tmp`, optional `.`/`_`, 6 or more letters/digits/_) -> /tmp/<tmp>
//
// Per workload: an image .cache/images/compat-NAME.img (bash, coreutils, its packages; the workloads at
// /compat; an empty /out), built with scripts/image-builder.mjs only when missing or stale (its stamp);
// the image's tree extracted once (debugfs rdump) into .cache/compat/native/NAME for the native run,
// which is `bwrap --bind TREE / --proc /proc --dev /dev --tmpfs /tmp --unshare-all --die-with-parent
// --chdir /out /bin/bash /compat/NAME.sh`; each mapvisor run is on a fresh copy of the image, read-write,
// as `mapvisor run --stats -- /usr/bin/env -C /out /bin/bash /compat/NAME.sh` (env -C: the working
// directory; it changes nothing else), then /out is read back with debugfs rdump and `e2fsck -fn` on the
// copy must be clean. Times are wall-clock times of the whole command (mapvisor's include starting Node
// and the VM). The ENOSYS column lists the system calls that answered ENOSYS in mapvisor (--stats).
// With --einval, each workload also runs once more natively under strace(1) and in mapvisor with
// --strace, and the EINVAL column lists the calls that answered EINVAL more often in mapvisor than
// natively (per system call name: a hint where mapvisor refuses what Linux accepts; it needs strace).
//
// Prints progress lines, then the table; exits 1 on any mismatch (or when a workload cannot be run),
// 0 when all match. Bad options or workload headers: one line `compat: ...` and exit 2.
//
// With --layer, each mapvisor run maps the workload's image itself, unchanged, with a fresh copy-on-write
// layer (mapvisor run --layer), and the checks read the image with the layer laid over it.
//
//   node scripts/compat.mjs [--quick] [--only NAME[,NAME]] [--platform kvm|process|all] [--einval] [--layer] [--json FILE] [--readme]
//   import { compatImages, workloads } from './compat.mjs';   (scripts/fixtures.mjs builds the quick images)

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ImageError, OUT_DIR, ROOT, buildImages, fail } from './image-builder.mjs';

const SCRIPT = fileURLToPath(import.meta.url);
export const WORKLOADS = join(ROOT, 'compat', 'workloads');
const CACHE = join(ROOT, '.cache', 'compat');
const EMPTY = join(CACHE, 'empty'); // added as /out
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const ENV = ['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/root', 'LANG=C.UTF-8', 'TZ=UTC'];
const BASE_PACKAGES = ['bash', 'coreutils'];
const README = join(ROOT, 'README.md');
const BEGIN = '<!-- compat-table:begin (written by `npm run compat -- --readme`) -->';
const END = '<!-- compat-table:end -->';

class CompatError extends Error {}
const usage = (msg) => {
  throw new CompatError(msg);
};

/** The normalisations a workload may name: name -> [regexp, replacement][] (applied in order). */
export const NORMALISATIONS = {
  pids: [[/\b(pp?ids?|PP?IDS?|P?PID)(\s*[=:]?\s*)\d+/g, '$1$2<pid>']],
  times: [
    [/\b\d{4}-\d\d-\d\d([ T]\d\d:\d\d(:\d\d(\.\d+)?)?( ?([+-]\d\d:?\d\d|Z|UTC))?)?/g, '<time>'],
    [/\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d( [A-Z]{3,4})?( \d{4})?/g, '<time>'],
    [/\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d ( \d{4}|\d\d:\d\d)\b/g, '<time>'],
  ],
  tmpdirs: [[/\/tmp\/tmp[._]?[A-Za-z0-9_]{6,}/g, '/tmp/<tmp>']],
};

// ---------------------------------------------------------------------------------------------------
// Workloads

/** Parses compat/workloads/*.sh headers; `only`: names to keep (an unknown one is an error). */
export function workloads({ quick = false, only = null } = {}) {
  if (!existsSync(WORKLOADS)) usage(`${relative(ROOT, WORKLOADS)} is missing (run from a checkout of mapvisor)`);
  const all = readdirSync(WORKLOADS)
    .filter((f) => f.endsWith('.sh'))
    .sort()
    .map((f) => parseWorkload(join(WORKLOADS, f)));
  if (only) {
    for (const n of only) if (!all.some((w) => w.name === n)) usage(`no workload named ${n} (there are ${all.map((w) => w.name).join(', ')})`);
    return all.filter((w) => only.includes(w.name) && (!quick || w.quick));
  }
  return all.filter((w) => !quick || w.quick);
}

function parseWorkload(file) {
  const name = file.slice(WORKLOADS.length + 1, -3);
  const where = relative(ROOT, file);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) usage(`${where}: a workload name is lower-case letters, digits, - and _ (rename the file)`);
  const h = {};
  for (const line of readFileSync(file, 'utf8').split('\n').slice(0, 40)) {
    const m = /^#\s*(compat|packages|quick|timeout|normalise):\s*(.*?)\s*$/.exec(line);
    if (m) h[m[1]] = m[2];
  }
  const need = (k, example) => {
    if (h[k] === undefined) usage(`${where}: no \`# ${k}:\` header line (add e.g. \`# ${k}: ${example}\`)`);
    return h[k];
  };
  const description = need('compat', 'what it runs');
  const packages = (h.packages ?? '').split(/[\s,]+/).filter(Boolean);
  for (const p of packages) if (!/^[a-z0-9][a-z0-9+.-]+$/.test(p)) usage(`${where}: \`${p}\` is not a Debian package name (# packages: a,b,c)`);
  const quick = need('quick', 'yes');
  if (quick !== 'yes' && quick !== 'no') usage(`${where}: \`# quick: ${quick}\` is not yes or no`);
  const timeout = Number(need('timeout', '60'));
  if (!Number.isFinite(timeout) || timeout <= 0) usage(`${where}: \`# timeout: ${h.timeout}\` is not a positive number of seconds`);
  const normalise = (h.normalise ?? '').split(/[\s,]+/).filter(Boolean);
  for (const n of normalise) if (!NORMALISATIONS[n]) usage(`${where}: no normalisation named ${n} (there are ${Object.keys(NORMALISATIONS).join(', ')})`);
  return { name, file, description, packages, quick: quick === 'yes', timeout, normalise };
}

// ---------------------------------------------------------------------------------------------------
// Images and native trees

const imageName = (w) => `compat-${w.name}`;

/** Builds (or finds current) the images of `list`; returns name -> image path (and `errors` with keepGoing). */
export async function compatImages({ list, quiet = false, force = false, keepGoing = false }) {
  const errors = {};
  mkdirSync(EMPTY, { recursive: true });
  for (const f of readdirSync(EMPTY)) rmSync(join(EMPTY, f), { recursive: true, force: true });
  chmodSync(EMPTY, 0o755);
  const images = {};
  const mustHave = {};
  for (const w of list) {
    images[imageName(w)] = {
      debian: [...new Set([...BASE_PACKAGES, ...w.packages])],
      add: [
        { host: WORKLOADS, dir: '/compat', optional: false },
        { host: EMPTY, dir: '/out', optional: false },
      ],
      size: null,
    };
    mustHave[imageName(w)] = ['/usr/bin/bash', '/usr/bin/env', `/compat/${w.name}.sh`];
  }
  const paths = {};
  // One buildImages call per image: the stamp's "script" is the workload itself (the harness's own
  // edits do not rebuild images; a workload's packages and the /compat tree are in the stamp anyway).
  // keepGoing: an image that cannot be built is left out of `paths` (its one-line reason in `errors`
  // and printed) and the others are still built.
  for (const w of list) {
    try {
      const p = await buildImages({ tag: 'compat', script: w.file, images, mustHave, quiet, force, names: [imageName(w)] });
      paths[w.name] = p[imageName(w)];
    } catch (e) {
      if (!keepGoing || !(e instanceof ImageError)) throw e;
      errors[w.name] = e.message;
      console.log(`compat: ${w.name}: no image: ${e.message}`);
    }
  }
  return keepGoing ? Object.assign(paths, { errors }) : paths;
}

/** The image's tree for native runs, extracted when missing or older than the image's stamp. */
function nativeTree(w, img) {
  const dir = join(CACHE, 'native', w.name);
  const stampFile = join(OUT_DIR, `${imageName(w)}.stamp`);
  const want = readFileSync(stampFile, 'utf8').trim();
  const mine = join(CACHE, 'native', `${w.name}.stamp`);
  if (existsSync(dir) && existsSync(mine) && readFileSync(mine, 'utf8').trim() === want) return dir;
  const t0 = performance.now();
  rmSync(mine, { force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('debugfs', ['-R', `rdump / ${dir}`, img], { encoding: 'utf8' });
  if (r.error) fail(`cannot run debugfs (${r.error.message}); install e2fsprogs`);
  if (r.status !== 0 || !existsSync(join(dir, 'usr', 'bin', 'bash'))) fail(`debugfs rdump of ${relative(ROOT, img)} failed: ${lastLine(r.stderr)}`);
  writeFileSync(mine, `${want}\n`);
  log(`${w.name}: native tree extracted into ${relative(ROOT, dir)} (${secs(t0)})`);
  return dir;
}

// ---------------------------------------------------------------------------------------------------
// Runs

const secs = (t0) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const lastLine = (s) => (s ?? '').trim().split('\n').filter(Boolean).pop() ?? '(no output)';
let quietLog = false;
const log = (s) => {
  if (!quietLog) console.log(`compat: ${s}`);
};

/** Runs a command; resolves {status, signal, stdout, stderr, ms, timedOut}. */
function runCommand(cmd, args, { env, timeout, label = null }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    let timedOut = false;
    // A progress line every minute of a long run.
    const beat = label ? setInterval(() => log(`${label} still running (${Math.round((performance.now() - t0) / 1000)} s of at most ${timeout} s)`), 60_000) : null;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    }, timeout * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      if (beat) clearInterval(beat);
      resolve({ status: -1, signal: null, stdout: Buffer.alloc(0), stderr: Buffer.from(e.message), ms: performance.now() - t0, timedOut, spawnError: e });
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      if (beat) clearInterval(beat);
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), ms: performance.now() - t0, timedOut });
    });
  });
}

/** A tree as sorted lines: `path type mode [size sha256 | -> target]` (no times, owners, dir sizes). */
function treeLines(dir, normalise, modes = null) {
  const lines = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const rel = relative(dir, p);
      const st = lstatSync(p);
      const mode = (modes?.get(rel) ?? st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isSymbolicLink()) lines.push(`${rel} symlink -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        lines.push(`${rel}/ dir ${mode}`);
        walk(p);
      } else if (st.isFile()) {
        const data = normaliseBuf(readFileSync(p), normalise);
        lines.push(`${rel} file ${mode} ${data.length} ${createHash('sha256').update(data).digest('hex').slice(0, 16)}`);
      } else lines.push(`${rel} ${st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'chardev' : 'blockdev'} ${mode}`);
    }
  };
  walk(dir);
  return lines;
}

function normaliseBuf(buf, names) {
  if (names.length === 0) return buf;
  return Buffer.from(normaliseText(buf.toString('latin1'), names), 'latin1');
}

export function normaliseText(s, names) {
  for (const n of names) for (const [re, rep] of NORMALISATIONS[n]) s = s.replace(re, rep);
  return s;
}

/** Resets an empty directory of the native tree to its image state (mode 0755 or as given). */
function resetDir(p, mode) {
  rmSync(p, { recursive: true, force: true });
  mkdirSync(p);
  chmodSync(p, mode);
}

/**
 * bwrap's arguments for a native run in `tree`, after emptying its /out and /root (so one native run of
 * a workload at a time: no bind mounts over them, which would show in df and /proc/self/mountinfo).
 */
function bwrapArgs(w, tree) {
  resetDir(join(tree, 'out'), 0o755);
  resetDir(join(tree, 'root'), 0o700);
  return ['--bind', tree, '/', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--unshare-all', '--die-with-parent', '--chdir', '/out', '/bin/bash', `/compat/${w.name}.sh`];
}

async function runNative(w, tree) {
  const out = join(tree, 'out');
  const r = await runCommand('bwrap', bwrapArgs(w, tree), { env: envObject(), timeout: w.timeout, label: `${w.name}: native` });
  if (r.spawnError) usage(`cannot run bwrap (${r.spawnError.message}); install it: apt-get install bubblewrap`);
  if (r.status === 1 && /^bwrap: /m.test(r.stderr.toString()) && r.stdout.length === 0) fail(`${w.name}: bwrap could not start the native run: ${lastLine(r.stderr.toString())}`);
  return { ...r, tree: treeLines(out, w.normalise) };
}

/** EINVAL answers per system call name in strace-style lines (`name(...) = -1 EINVAL`). */
function einvalCounts(text) {
  const counts = {};
  for (const line of text.split('\n')) {
    const m = /^(?:\[pid\s+\d+\]\s+|\d+\s+)?(?:<\.\.\. (\w+) resumed>|(\w+)\().*\)?\s+= -1 EINVAL\b/.exec(line);
    if (m) counts[m[1] ?? m[2]] = (counts[m[1] ?? m[2]] ?? 0) + 1;
  }
  return counts;
}

/** The native run once more under strace -f: EINVAL answers per call (bwrap's own included). */
async function nativeEinval(w, tree) {
  const log = join(CACHE, 'runs', `strace.${process.pid}.txt`);
  mkdirSync(dirname(log), { recursive: true });
  const args = ['-f', '-qq', '-e', 'status=failed', '-o', log, 'bwrap', ...bwrapArgs(w, tree)];
  const r = await runCommand('strace', args, { env: envObject(), timeout: w.timeout * 2 });
  if (r.spawnError) usage(`--einval needs strace (${r.spawnError.message}); install it: apt-get install strace`);
  const counts = existsSync(log) ? einvalCounts(readFileSync(log, 'utf8')) : {};
  rmSync(log, { force: true });
  return counts;
}

/** A mapvisor run with --strace on a fresh copy: EINVAL answers per call. */
async function mapvisorEinval(w, img, platform) {
  const copy = join(CACHE, 'runs', `${w.name}.${platform}.${process.pid}.strace.img`);
  try {
    const cp = spawnSync('cp', ['--sparse=always', '--reflink=auto', img, copy]);
    if (cp.status !== 0) fail(`cannot copy ${relative(ROOT, img)}: ${lastLine(cp.stderr?.toString())}`);
    const args = [CLI, 'run', '--image', copy, '--platform', platform, '--strace', '--timeout', String(w.timeout * 2), ...ENV.flatMap((e) => ['--env', e]), '--', '/usr/bin/env', '-C', '/out', '/bin/bash', `/compat/${w.name}.sh`];
    const r = await runCommand(process.execPath, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: w.timeout * 2 + 60 });
    return einvalCounts(r.stderr.toString());
  } finally {
    rmSync(copy, { force: true });
  }
}

/** Calls answering EINVAL more often in mapvisor than natively: name -> how many more. */
function moreEinval(box, nat) {
  const out = {};
  for (const [name, n] of Object.entries(box)) if (n > (nat[name] ?? 0)) out[name] = n - (nat[name] ?? 0);
  return out;
}

const envObject = () => Object.fromEntries(ENV.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));

/** Splits mapvisor's stderr into the program's part and the --stats report; ENOSYS calls from the latter. */
function splitStats(stderr) {
  const at = stderr.lastIndexOf('mapvisor stats: ');
  if (at < 0) return { programErr: stderr, enosys: null };
  const report = stderr.slice(at);
  const m = /unimplemented \(answered ENOSYS\): (.*)/.exec(report);
  const enosys = {};
  if (m && m[1] !== 'none') {
    for (const item of m[1].split(', ')) {
      const [name, count] = item.split(' ');
      enosys[name] = Number(count);
    }
  }
  return { programErr: stderr.slice(0, at), enosys };
}

async function runMapvisor(w, img, platform, layered = false) {
  const dir = join(CACHE, 'runs');
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, `${w.name}.${platform}.${process.pid}.img`);
  const layer = `${copy}.layer`;
  const outDir = `${copy}.out`;
  try {
    if (!layered) {
      const cp = spawnSync('cp', ['--sparse=always', '--reflink=auto', img, copy]);
      if (cp.status !== 0) fail(`cannot copy ${relative(ROOT, img)}: ${lastLine(cp.stderr?.toString())}`);
    }
    // --layer: the image itself, shared and unchanged, with a fresh copy-on-write layer; the layer is
    // then laid over a copy of the image for the checks below.
    const image = layered ? ['--image', img, '--layer', layer] : ['--image', copy];
    const args = [CLI, 'run', ...image, '--platform', platform, '--stats', '--timeout', String(w.timeout), ...ENV.flatMap((e) => ['--env', e]), '--', '/usr/bin/env', '-C', '/out', '/bin/bash', `/compat/${w.name}.sh`];
    const r = await runCommand(process.execPath, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: w.timeout + 60, label: `${w.name}: ${platform}` });
    if (layered) {
      const f = spawnSync(process.execPath, [CLI, 'image', 'flatten', img, layer, copy], { encoding: 'utf8' });
      if (f.status !== 0) fail(`cannot flatten the layer of ${w.name}: ${lastLine(f.stderr)}`);
    }
    const { programErr, enosys } = splitStats(r.stderr.toString());
    const fsck = spawnSync('e2fsck', ['-fn', copy], { encoding: 'utf8' });
    mkdirSync(outDir);
    const dump = spawnSync('debugfs', ['-R', `rdump /out ${outDir}`, copy], { encoding: 'utf8' });
    const tree = existsSync(join(outDir, 'out')) ? treeLines(join(outDir, 'out'), w.normalise, imageModes(copy, join(outDir, 'out'))) : null;
    return {
      ...r,
      stderr: Buffer.from(programErr),
      enosys,
      tree,
      fsck: fsck.status === 0 ? null : `e2fsck -fn exited ${fsck.status}: ${lastLine(fsck.stdout + fsck.stderr)}`,
      dumpError: tree ? null : `debugfs rdump /out failed: ${lastLine(dump.stderr)}`,
    };
  } finally {
    rmSync(copy, { force: true });
    rmSync(layer, { force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

/**
 * The permission bits of every entry under /out as the image has them (rel path -> mode): debugfs
 * rdump restores the owner after the mode, and Linux clears a directory's set-group-ID bit then.
 */
function imageModes(img, dumped) {
  const dirs = [''];
  const walk = (d) => {
    for (const name of readdirSync(join(dumped, d))) {
      const rel = d ? `${d}/${name}` : name;
      if (lstatSync(join(dumped, rel)).isDirectory()) {
        dirs.push(rel);
        walk(rel);
      }
    }
  };
  walk('');
  const cmds = `${CACHE}/runs/ls.${process.pid}.cmds`;
  writeFileSync(cmds, dirs.map((d) => `ls -l "/out/${d}"\n`).join(''));
  const r = spawnSync('debugfs', ['-f', cmds, img], { encoding: 'utf8', maxBuffer: 256 << 20 });
  rmSync(cmds, { force: true });
  const modes = new Map();
  let cur = null;
  for (const line of (r.stdout ?? '').split('\n')) {
    const c = /^debugfs: ls -l "\/out\/(.*)"$/.exec(line);
    if (c) {
      cur = c[1];
      continue;
    }
    const m = /^\s*\d+\s+([0-7]+)\s+\(\d+\)\s+\d+\s+\d+\s+[\d, ]+\s+\S+\s\d\d:\d\d\s(.*)$/.exec(line);
    if (cur === null || !m || m[2] === '.' || m[2] === '..') continue;
    modes.set(cur ? `${cur}/${m[2]}` : m[2], parseInt(m[1], 8) & 0o7777);
  }
  return modes;
}

/** The differences between a mapvisor run and the native one, as short lines (none: a match). */
function compare(w, nat, box) {
  const why = [];
  if (box.timedOut) why.push(`timed out after ${w.timeout + 60} s`);
  const natOut = normaliseText(nat.stdout.toString('latin1'), w.normalise);
  const boxOut = normaliseText(box.stdout.toString('latin1'), w.normalise);
  if (natOut !== boxOut) {
    const a = natOut.split('\n');
    const b = boxOut.split('\n');
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    why.push(`stdout differs at line ${i + 1}: native ${JSON.stringify(a[i] ?? '<end>')}, mapvisor ${JSON.stringify(b[i] ?? '<end>')}`);
    for (const l of stdoutDiff(natOut, boxOut)) why.push(`  ${l}`);
  }
  const st = (r) => (r.signal ? `signal ${r.signal}` : `exit ${r.status}`);
  if (st(nat) !== st(box)) why.push(`status: native ${st(nat)}, mapvisor ${st(box)}`);
  if (box.fsck) why.push(box.fsck);
  if (box.dumpError) why.push(box.dumpError);
  else {
    const a = new Set(nat.tree);
    const b = new Set(box.tree);
    const only = (x, y) => [...x].filter((l) => !y.has(l));
    const na = only(a, b);
    const nb = only(b, a);
    for (const l of na.slice(0, 8)) why.push(`/out native only: ${l}`);
    for (const l of nb.slice(0, 8)) why.push(`/out mapvisor only: ${l}`);
    if (na.length + nb.length > 16) why.push(`/out: ${na.length + nb.length} differing entries in all`);
  }
  return why;
}

/** The first lines of `diff -u native mapvisor` of two stdouts (none when diff is missing). */
function stdoutDiff(a, b) {
  const dir = join(CACHE, 'runs');
  mkdirSync(dir, { recursive: true });
  const fa = join(dir, `native.${process.pid}.txt`);
  const fb = join(dir, `mapvisor.${process.pid}.txt`);
  writeFileSync(fa, a, 'latin1');
  writeFileSync(fb, b, 'latin1');
  const r = spawnSync('diff', ['-u', '--label', 'native', '--label', 'mapvisor', fa, fb], { encoding: 'latin1' });
  rmSync(fa, { force: true });
  rmSync(fb, { force: true });
  const lines = (r.stdout ?? '').split('\n').slice(2).filter(Boolean);
  return lines.length > 30 ? [...lines.slice(0, 30), `... (${lines.length - 30} more diff lines)`] : lines;
}

// ---------------------------------------------------------------------------------------------------
// The table

const fmtS = (ms) => (ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`);

function table(rows, platforms, einval = false) {
  const head = ['workload', 'what it runs', ...platforms.map((p) => `${p}`), 'native', 'ENOSYS in mapvisor', ...(einval ? ['EINVAL in mapvisor, not native'] : [])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [`${r.name}${r.quick ? ' (quick)' : ''}`, r.description];
    for (const p of platforms) {
      const x = r.platforms[p];
      cells.push(!x ? '–' : x.ms === 0 ? '**FAIL** (no image)' : `${x.pass ? 'pass' : '**FAIL**'} ${fmtS(x.ms)}`);
    }
    cells.push(r.native ? fmtS(r.native.ms) : '–');
    const enosys = new Map();
    for (const p of platforms) for (const [k, v] of Object.entries(r.platforms[p]?.enosys ?? {})) enosys.set(k, Math.max(enosys.get(k) ?? 0, v));
    cells.push(enosys.size ? [...enosys].map(([k, v]) => `${k} ×${v}`).join(', ') : 'none');
    if (einval) {
      const more = new Map();
      for (const p of platforms) for (const [k, v] of Object.entries(r.platforms[p]?.einval ?? {})) more.set(k, Math.max(more.get(k) ?? 0, v));
      cells.push(more.size ? [...more].map(([k, v]) => `${k} ×${v}`).join(', ') : 'none');
    }
    lines.push(`| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return lines.join('\n');
}

function writeReadme(tbl, platforms, rows) {
  const text = readFileSync(README, 'utf8');
  const date = new Date().toISOString().slice(0, 10);
  const passed = rows.filter((r) => Object.values(r.platforms).every((x) => x.pass)).length;
  const block = [
    BEGIN,
    `${date}, platforms ${platforms.join(' and ')}: ${passed} of ${rows.length} workloads give the same stdout, exit status and /out as native.`,
    '',
    tbl,
    END,
  ].join('\n');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) usage(`README.md has no compat table markers (${BEGIN} ... ${END}); add them in the "## Compatibility" section`);
  const next = text.slice(0, a) + block + text.slice(b + END.length);
  const part = `${README}.tmp${process.pid}`;
  writeFileSync(part, next);
  renameSync(part, README);
  log(`README.md: the table written (${date}, ${platforms.join(', ')})`);
}

// ---------------------------------------------------------------------------------------------------
// Main

function parseArgs(argv) {
  const o = { quick: false, only: null, platform: 'all', json: null, readme: false, quiet: false, einval: false, layer: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) usage(`${a} needs a value (e.g. ${a} ${a === '--only' ? 'bash' : a === '--platform' ? 'kvm' : 'compat.json'})`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--readme') o.readme = true;
    else if (a === '--quiet') o.quiet = true;
    else if (a === '--einval') o.einval = true;
    else if (a === '--layer') o.layer = true;
    else if (a === '--only') o.only = value().split(',').filter(Boolean);
    else if (a === '--platform') {
      o.platform = value();
      if (!['kvm', 'process', 'all'].includes(o.platform)) usage(`--platform ${o.platform} is not kvm, process or all`);
    } else if (a === '--json') o.json = value();
    else usage(`unknown option ${a} (use --quick, --only NAME[,NAME], --platform kvm|process|all, --einval, --layer, --json FILE, --readme)`);
  }
  if (o.readme && (o.quick || o.only || o.layer)) usage('--readme writes the whole corpus\'s table; drop --quick, --only and --layer');
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  quietLog = o.quiet;
  process.umask(0o022);
  const list = workloads({ quick: o.quick, only: o.only });
  if (list.length === 0) usage('no workloads selected');
  if (!existsSync(join(ROOT, 'dist', 'src', 'platform', 'select.js'))) usage('dist/ is missing; run npm run build first (or npm run compat)');
  const { probePlatforms } = await import(pathToFileURL(join(ROOT, 'dist', 'src', 'platform', 'select.js')).href);
  const probes = probePlatforms();
  for (const p of probes) log(`platform ${p.name}: ${p.works ? 'works' : `cannot run here: ${p.why}`}`);
  let platforms = probes.filter((p) => p.works).map((p) => p.name);
  if (o.platform !== 'all') {
    const p = probes.find((x) => x.name === o.platform);
    if (!p.works) usage(`--platform ${o.platform} cannot run here: ${p.why} (use --platform all)`);
    platforms = [o.platform];
  }
  if (platforms.length === 0) usage('no platform works on this machine (see `mapvisor info`)');
  if (spawnSync('bwrap', ['--version']).error) usage('bwrap is missing; install it: apt-get install bubblewrap');
  if (o.einval && spawnSync('strace', ['-V']).error) usage('--einval needs strace; install it: apt-get install strace');

  const images = await compatImages({ list, quiet: o.quiet, keepGoing: true });
  const rows = [];
  let bad = 0;
  for (const w of list) {
    const row = { name: w.name, description: w.description, quick: w.quick, native: null, platforms: {}, mismatches: {} };
    rows.push(row);
    if (!images[w.name]) {
      for (const p of platforms) row.platforms[p] = { pass: false, ms: 0, enosys: {}, why: [`no image: ${images.errors[w.name]}`] };
      bad += platforms.length;
      continue;
    }
    const tree = nativeTree(w, images[w.name]);
    const nat = await runNative(w, tree);
    row.native = { ms: nat.ms, status: nat.status };
    log(`${w.name}: native ${nat.signal ? `signal ${nat.signal}` : `exit ${nat.status}`} in ${fmtS(nat.ms)}${nat.timedOut ? ' (timed out)' : ''}`);
    let natEinval = null;
    for (const p of platforms) {
      const box = await runMapvisor(w, images[w.name], p, o.layer);
      const why = compare(w, nat, box);
      row.platforms[p] = { pass: why.length === 0, ms: box.ms, enosys: box.enosys ?? {}, why };
      const enosys = Object.keys(box.enosys ?? {});
      log(`${w.name}: ${p} ${why.length ? 'MISMATCH' : 'same as native'} in ${fmtS(box.ms)}${enosys.length ? `; ENOSYS: ${enosys.join(', ')}` : ''}`);
      if (why.length) {
        bad++;
        for (const l of why) console.log(`compat:   ${l}`);
        const tail = (b) => b.toString().trim().split('\n').slice(-12).map((l) => `compat:     | ${l}`).join('\n');
        if (box.stderr.length) console.log(`compat:   mapvisor stderr (last lines):\n${tail(box.stderr)}`);
        if (nat.stderr.length) console.log(`compat:   native stderr (last lines):\n${tail(nat.stderr)}`);
      }
      if (o.einval) {
        natEinval ??= await nativeEinval(w, tree);
        row.platforms[p].einval = moreEinval(await mapvisorEinval(w, images[w.name], p), natEinval);
        const names = Object.keys(row.platforms[p].einval);
        log(`${w.name}: ${p} with --strace: ${names.length ? `EINVAL more often than natively from ${names.join(', ')}` : 'no EINVAL that native does not answer too'}`);
      }
    }
  }
  const tbl = table(rows, platforms, o.einval);
  console.log(`\n${tbl}\n`);
  console.log(`compat: ${rows.length - rows.filter((r) => Object.values(r.platforms).some((x) => !x.pass)).length} of ${rows.length} workloads the same as native on ${platforms.join(', ')}${bad ? `; ${bad} mismatches` : ''}`);
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ date: new Date().toISOString(), platforms, rows }, null, 2)}\n`);
  if (o.readme) writeReadme(tbl, platforms, rows);
  return bad ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(pathToFileURL(process.argv[1])) === SCRIPT) {
  try {
    process.exitCode = await main();
  } catch (e) {
    if (e instanceof CompatError) {
      console.error(`compat: ${e.message}`);
      process.exitCode = 2;
    } else if (e instanceof ImageError) {
      console.error(`compat: ${e.message}`);
      process.exitCode = 1;
    } else {
      console.error(`compat: unexpected error: ${e && e.message ? e.message.split('\n')[0] : String(e)}`);
      process.exitCode = 1;
    }
  }
}
