/**
 * CRIU baseline for bench/checkpoint.ts: checkpoint and restore of a *native* program with CRIU.
 *
 * criuMeasure starts the program in its own session (spawn detached = setsid, stdin /dev/null, stdout and
 * stderr to a file), waits until that file shows readyText, then times `criu dump -t PID -D IMG` (which
 * freezes the program, writes its images and kills it), waits until Node has reaped it (so its PID is free
 * again: CRIU restores the same PID), and times `criu restore -D IMG -d --pidfile F` twice: until criu
 * returns (restoreMs; -d = criu exits once the restored task runs on its own), and until the restored
 * program has written to its stdout file again (restoreToOutputMs; CRIU reopens the file at its dumped
 * offset, so a size above the size at dump time means new output; it can come before criu itself exits).
 * Then it kills the restored process (init reaps it) and removes its temp dir.
 *
 * Flags: none beyond those: no --shell-job (the program has its own session and no tty), no --skip-mnt,
 * --manage-cgroups or --ext-unix-sk (a file-backed stdio tree dumps cleanly here). `-o` puts the logs
 * outside the image dir, so imageMiB is the images alone. The log's "Can't setup RLIMIT_NOFILE" error is
 * harmless.
 *
 * Which criu: $CRIU (a path or a wrapper script) if set, else .cache/criu/criu (scripts/install-criu.sh), else `criu` on PATH. Debian 12's package (criu
 * 3.17.1) does NOT work on this kernel (6.18): every command fails with "vdso: Unexpected rt vDSO area
 * bounds", since kernels >= 6.13 split [vvar] into [vvar] + [vvar_vclock], which CRIU knows from 4.1 on.
 * Debian 13's criu 4.1.1 works; it needs glibc >= 2.38, so run it with trixie's own loader and libc
 * extracted from the trixie `criu` and `libc6` .debs (its other libraries come from bookworm's `criu`):
 *   exec $R/usr/lib64/ld-linux-x86-64.so.2 --library-path $R/usr/lib/x86_64-linux-gnu $R/usr/sbin/criu "$@"
 * criu needs root. criuAvailable() runs `criu check` and says why it does not work, if it does not.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CriuResult { dumpMs: number; restoreMs: number; restoreToOutputMs: number; imageMiB: number }

/** $CRIU, else scripts/install-criu.sh's private install in .cache/criu, else `criu` on PATH. */
const LOCAL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.cache', 'criu', 'criu');
const CRIU = process.env.CRIU || (existsSync(LOCAL) ? LOCAL : 'criu');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** Run criu; resolves with its exit code (-1 if it could not be started) and its output. */
function criu(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const p = spawn(CRIU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.on('error', (e) => resolve({ code: -1, out: e.message }));
    p.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : -1), out }));
  });
}

/** The first telling "Error" line of a criu log or output (or its last line). */
function firstError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/RLIMIT_NOFILE|exited, status/.test(l));
  return lines.find((l) => /Error/.test(l)) ?? lines.at(-1) ?? 'no output';
}
const readLog = (path: string): string => { try { return readFileSync(path, 'utf8'); } catch { return ''; } };

/** null when criu is installed and `criu check` passes, else a one-line reason. */
export async function criuAvailable(): Promise<string | null> {
  if (process.getuid && process.getuid() !== 0) return 'criu needs root';
  const r = await criu(['check']);
  if (r.code === -1) return `criu not found (${CRIU}): ${r.out}`;
  if (r.code !== 0) {
    const v = (await criu(['--version'])).out.match(/Version: (\S+)/)?.[1] ?? '?';
    return `criu ${v} check failed: ${firstError(r.out)}`;
  }
  return null;
}

/** Dump and restore `program args` (native) with CRIU once it printed readyText. Uses a temp dir in workDir. */
export async function criuMeasure(program: string, args: string[], readyText: string, workDir: string): Promise<CriuResult> {
  const dir = mkdtempSync(join(workDir, 'criu-'));
  const img = join(dir, 'img'), out = join(dir, 'stdout.txt'), pidFile = join(dir, 'restored.pid');
  const dumpLog = join(dir, 'dump.log'), restoreLog = join(dir, 'restore.log');
  let restoredPid = 0;
  mkdirSync(img);
  const fd = openSync(out, 'w');
  const child = spawn(program, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited = false;
  const exit = new Promise<void>((r) => child.on('exit', () => { exited = true; r(); }));
  child.on('error', () => { exited = true; });
  try {
    for (let t = nowMs(); !readFileSync(out, 'utf8').includes(readyText); await sleep(2)) {
      if (exited) throw new Error(`${program} exited before printing ${JSON.stringify(readyText)}`);
      if (nowMs() - t > 120_000) throw new Error(`${program}: no ${JSON.stringify(readyText)} within 120 s`);
    }
    const pid = child.pid!;
    let t0 = nowMs();
    const d = await criu(['dump', '-t', String(pid), '-D', img, '-o', dumpLog]);
    const dumpMs = nowMs() - t0;
    if (d.code !== 0) throw new Error(`criu dump failed (${d.code}): ${firstError(readLog(dumpLog) || d.out)}`);
    await exit; // reaped: its PID is free for the restore
    const imageMiB = readdirSync(img).reduce((s, f) => s + statSync(join(img, f)).size, 0) / 2 ** 20;
    const size0 = statSync(out).size;

    t0 = nowMs();
    let restoreMs = 0, failed = false;
    const restore = criu(['restore', '-D', img, '-d', '--pidfile', pidFile, '-o', restoreLog]).then((r) => {
      restoreMs = nowMs() - t0;
      failed = r.code !== 0;
      return r;
    });
    let restoreToOutputMs = 0;
    while (!restoreToOutputMs) {
      if (statSync(out).size > size0) restoreToOutputMs = nowMs() - t0;
      else if (failed) break;
      else if (nowMs() - t0 > 30_000) throw new Error('restored process wrote nothing within 30 s');
      else await sleep(1);
    }
    const r = await restore;
    try { restoredPid = Number(readFileSync(pidFile, 'utf8').trim()); } catch { /* no pidfile */ }
    if (r.code !== 0) throw new Error(`criu restore failed (${r.code}): ${firstError(readLog(restoreLog) || r.out)}`);
    return { dumpMs, restoreMs, restoreToOutputMs, imageMiB };
  } finally {
    for (const p of [restoredPid, exited ? 0 : child.pid ?? 0]) if (p > 0) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  }
}
