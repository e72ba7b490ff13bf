/**
 * The container's VMM process: what `create` leaves running (detached, in its own session) and what
 * the pid file names. It builds the sandbox, pauses the program before its first instruction, tells
 * `create` it is ready (on fd 3), and serves ROOT/ID/ctl.sock: `start` lets the program run,
 * `checkpoint` writes one. Signals it receives reach the program (SIGKILL ends both); it exits with the
 * program's status, and when the program was killed by a signal it kills itself with that signal, so
 * conmon and containerd's shim see what runc would show them.
 *
 *   node dist/src/oci/vmm.js ROOT ID   (fd 3: the readiness pipe to create)
 */
import { closeSync, constants as constants_, openSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { constants } from 'node:os';
import { Sandbox, type SandboxOptions } from '../sandbox/sandbox.js';
import type { SpawnSpec } from '../kernel/spawn.js';
import { MapvisorError } from '../errors.js';
import { readState, writeState, type ContainerState } from './state.js';
import { log, logError, logInfo } from './log.js';
import * as libc from '../host/libc.js';

const TIOCSCTTY = 0x540e;

const [root, id, logFile, logFormat] = process.argv.slice(2) as [string, string, string | undefined, string | undefined];
if (logFile) log.file = logFile;
if (logFormat === 'json') log.format = 'json';
const READY_FD = 3;

function tellCreate(line: string): void {
  try {
    writeSync(READY_FD, `${line}\n`);
    closeSync(READY_FD);
  } catch {
    // create has gone (a restore without --detach waits differently)
  }
}

/** Signals that are the program's business (everything Node lets a process catch). */
const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR2', 'SIGWINCH', 'SIGALRM', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU', 'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGPWR', 'SIGSYS', 'SIGUSR1', 'SIGPIPE'];
/** Signals that leave a program that has not been started yet untouched (runc's init ignores them too). */
const HARMLESS = new Set(['SIGWINCH', 'SIGCONT', 'SIGURG', 'SIGCHLD', 'SIGPIPE']);

async function main(): Promise<number> {
  const state: ContainerState = readState(root, id);
  const p = state.run;
  const opts: SandboxOptions = {
    env: p.env,
    argv0: p.args[0]!,
    ...(p.init ? { init: true } : {}),
    image: p.layer === null ? { path: p.image, mode: 'ro' } : { path: p.image, mode: 'cow', layer: p.layer },
    net: p.net,
    ...(p.platform ? { platform: p.platform as 'kvm' | 'process' } : {}),
    ...(p.mem !== undefined ? { mem: p.mem } : {}),
    ...(p.pids !== undefined ? { pids: p.pids } : {}),
    ...(p.cpus !== undefined ? { cpus: p.cpus } : {}),
    identity: {
      uid: p.identity.uid,
      gid: p.identity.gid,
      groups: p.identity.groups,
      cwd: p.identity.cwd,
      rlimits: p.identity.rlimits,
      ...(p.identity.hostname !== undefined ? { hostname: p.identity.hostname } : {}),
    },
  };
  if (p.terminal) libc.ioctlInt(0, TIOCSCTTY, 0); // the pty is this session's terminal: resizes raise SIGWINCH here
  const mounts = p.binds.map((b) => ({ host: b.host, target: b.target, readonly: b.readonly }));
  if (mounts.length) opts.mounts = mounts;
  const sb = p.restoreFrom
    ? Sandbox.restore(p.restoreFrom, { ...(p.platform ? { platform: p.platform as 'kvm' | 'process' } : {}), ...(mounts.length ? { mounts } : {}), ...(p.layer !== null ? { layer: p.layer } : {}) })
    : new Sandbox(p.args[0]!, p.args.slice(1), opts);

  let started = p.restoreFrom !== null;
  let server: Server | null = null;
  const sock = join(root, id, 'ctl.sock');
  const onSignal = (sig: NodeJS.Signals): void => {
    const n = constants.signals[sig];
    if (!started) {
      if (HARMLESS.has(sig)) return;
      sb.stop();
      killedBy = sig;
      return;
    }
    try {
      // As runc: a signal for the container goes to its init (the program's first process); a
      // terminal's resize, to the terminal's foreground process group.
      sb.kill(n, sig === 'SIGWINCH' ? 'foreground' : 'main');
    } catch {
      // not a signal the sandbox takes
    }
  };
  let killedBy: NodeJS.Signals | null = null;
  for (const s of FORWARDED) process.on(s, onSignal);

  const running = sb.run();
  const ended = running.then(
    () => 'ended' as const,
    () => 'ended' as const,
  );
  try {
    if (!p.restoreFrom) {
      const pausing = sb.pause().then(
        () => 'paused' as const,
        () => 'ended' as const,
      );
      if ((await Promise.race([pausing, ended])) !== 'paused') await running; // throws the reason
    } else {
      await Promise.race([sb.whenReady(), ended]);
    }
    server = serve(sock, sb, state, () => (started = true));
    await new Promise<void>((r, j) => {
      server!.once('listening', r);
      server!.once('error', j);
    });
    if (p.restoreFrom) state.started = true; // create writes it with the pid
    tellCreate('ready');
  } catch (e) {
    const msg = e instanceof MapvisorError ? e.oneLine() : (e as Error).message;
    tellCreate(`error ${msg}`);
    sb.stop();
    await ended;
    return 125;
  }
  let status: number;
  let signal: number | null;
  try {
    const r = await running;
    status = r.status;
    signal = r.signal;
    if (r.reason && r.signal !== 9 && r.signal !== 15) writeSync(2, `mapvisor: program killed by ${r.reason}\n`);
  } catch (e) {
    const msg = e instanceof MapvisorError ? e.oneLine() : (e as Error).message;
    logError(`container ${id}: ${msg}`);
    try {
      writeSync(2, `mapvisor: ${msg}\n`);
    } catch {
      // no stderr
    }
    status = e instanceof MapvisorError ? e.exitCode : 125;
    signal = null;
  } finally {
    server?.close();
    rmSync(sock, { force: true });
    for (const s of FORWARDED) process.removeListener(s, onSignal);
  }
  logInfo(`container ${id}: the program ended with status ${status}`);
  const sigName = killedBy ?? (signal !== null ? (Object.entries(constants.signals).find(([, v]) => v === signal)?.[0] as NodeJS.Signals | undefined) : undefined);
  if (sigName && sigName !== 'SIGSTOP') {
    // Die of the program's signal, as runc's init would: conmon records "killed by SIG".
    process.kill(process.pid, sigName);
    await new Promise((r) => setTimeout(r, 200));
  }
  return status;
}

/** What `mapvisor-oci exec` asks for (config.json's process, resolved): what the kernel spawns. */
export type ExecRequest = SpawnSpec;

/**
 * The client's fds 0, 1, 2, opened anew through /proc/PID/fd (pipes, ttys, files; not sockets).
 * Non-blocking opens: a pipe's read end whose writer is gone opens (and reads EOF); a write end whose
 * reader is gone is /dev/null. A file keeps O_APPEND.
 */
function clientFds(client: number): number[] {
  const fds: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const path = `/proc/${client}/fd/${i}`;
      let flags = 0;
      try {
        flags = parseInt(/^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/${client}/fdinfo/${i}`, 'utf8'))?.[1] ?? '0', 8);
      } catch {
        throw new Error(`exec: the client's fd ${i} is not open`);
      }
      const want = (i === 0 ? constants_.O_RDONLY : constants_.O_WRONLY | (flags & constants_.O_APPEND)) | constants_.O_NONBLOCK;
      try {
        fds.push(openSync(path, want));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENXIO' && i > 0) fds.push(openSync('/dev/null', constants_.O_WRONLY));
        else throw new Error(`exec: cannot open the client's fd ${i} (${readlinkOr(path)}): ${code ?? (e as Error).message}; give exec pipes, files or a terminal for stdio, not sockets`);
      }
    }
    return fds;
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    throw e;
  }
}

function readlinkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '?';
  }
}

function serve(path: string, sb: Sandbox, state: ContainerState, onStart: () => void): Server {
  rmSync(path, { force: true });
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (/"verb":"exec"/.test(line)) {
        void execFor(line, conn);
        return;
      }
      void answer(line)
        .catch((e: Error) => ({ ok: false, error: e instanceof MapvisorError ? e.oneLine() : e.message }))
        .then((r) => conn.end(`${JSON.stringify(r)}\n`));
    });
  });
  /**
   * exec: a process in the running container. Its stdio are the client's fds 0, 1 and 2 (the engine
   * gave them to `mapvisor-oci exec`), opened here through /proc. The first line answers its pid; the
   * connection stays open until it ends, and the last line is how. A client that goes away kills it.
   */
  const execFor = async (line: string, conn: Socket): Promise<void> => {
    let fds: number[] = [];
    let pid = 0;
    let ended = false;
    try {
      const req = JSON.parse(line) as { spec: ExecRequest; client: number };
      if (!state.started) throw new Error('the container has not been started');
      fds = clientFds(req.client);
      const { pid: p, done } = await sb.exec({ ...req.spec, stdio: fds as [number, number, number] });
      pid = p;
      logInfo(`container ${id}: exec ${JSON.stringify(req.spec.args)} is pid ${pid} in the container`);
      conn.write(`${JSON.stringify({ ok: true, pid })}\n`);
      conn.on('close', () => {
        if (!ended) sb.signalProcess(pid, 9).catch(() => undefined);
      });
      const r = await done;
      ended = true;
      conn.end(`${JSON.stringify({ ok: true, status: r.status, signal: r.signal })}\n`);
    } catch (e) {
      ended = true;
      conn.end(`${JSON.stringify({ ok: false, error: e instanceof MapvisorError ? e.oneLine() : (e as Error).message })}\n`);
    } finally {
      for (const fd of fds) closeSync(fd);
    }
  };
  const answer = async (line: string): Promise<Record<string, unknown>> => {
    const req = JSON.parse(line) as { verb?: string; dir?: string; leaveRunning?: boolean; sig?: number; pid?: number };
    switch (req.verb) {
      case 'start':
        if (state.started) return { ok: false, error: 'the container was started already' };
        state.started = true;
        writeState(root, { ...readState(root, id), started: true }); // create wrote the pid after this process read the state
        onStart();
        await sb.resume();
        return { ok: true };
      case 'kill': {
        // kill --all: every process of the foreground process group (the sandbox's job), not the init alone.
        const n = Number(req.sig);
        if (!state.started) {
          process.kill(process.pid, n);
          return { ok: true };
        }
        sb.kill(n, 'foreground');
        return { ok: true };
      }
      case 'signal-exec':
        await sb.signalProcess(Number(req.pid), Number(req.sig));
        return { ok: true };
      case 'pause':
        await sb.pause();
        return { ok: true };
      case 'resume':
        await sb.resume();
        return { ok: true };
      case 'checkpoint': {
        if (!req.dir) return { ok: false, error: 'no directory' };
        // Paused throughout: the memory and the container's layer are saved at the same instant.
        await sb.pause();
        try {
          const r = await sb.checkpoint(req.dir);
          if (!req.leaveRunning) sb.stop();
          return { ok: true, ...r };
        } finally {
          if (req.leaveRunning) await sb.resume();
        }
      }
      default:
        return { ok: false, error: `unknown verb ${JSON.stringify(req.verb)}` };
    }
  };
  server.listen(path);
  return server;
}

process.exitCode = await main().catch((e: Error) => {
  logError(`container ${id}: ${e instanceof MapvisorError ? e.oneLine() : e.message}`);
  tellCreate(`error ${e.message}`);
  return 125;
});
