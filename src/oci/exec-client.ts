/**
 * The client half of `mapvisor-oci exec`: asks the container's VMM (its ctl.sock) to start a process
 * on this process's fds 0, 1, 2, forwards the signals this process gets to it, and answers how it
 * ended. Run by exec itself, or (--detach, --console-socket) by exec-wait.js, the host process the pid
 * file names, which the engine waits on and signals as runc's exec'd process.
 */
import { createConnection } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { OciError } from './log.js';
import { containerDir } from './state.js';
import type { ExecRequest } from './vmm.js';

/** Signals that are the exec'd program's business (every one Node lets a process catch). */
const FORWARDED: NodeJS.Signals[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGALRM', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGPIPE'];

async function ctlOnce(sock: string, req: Record<string, unknown>): Promise<void> {
  await new Promise<void>((resolve) => {
    const c = createConnection(sock, () => c.end(`${JSON.stringify(req)}\n`));
    c.on('data', () => undefined);
    c.on('close', () => resolve());
    c.on('error', () => resolve());
  });
}

/**
 * Start `spec` in container `id` and wait for it. `onStarted` hears its pid in the container once it
 * runs. Resolves with its status and the signal that ended it, if one did.
 */
export async function execInContainer(root: string, id: string, spec: ExecRequest, onStarted: (pid: number) => void): Promise<{ status: number; signal: number | null }> {
  const sock = join(containerDir(root, id), 'ctl.sock');
  return await new Promise((resolve, reject) => {
    let buf = '';
    let pid = 0;
    let settled = false;
    const forward = (sig: NodeJS.Signals): void => {
      if (pid) void ctlOnce(sock, { verb: 'signal-exec', pid, sig: constants.signals[sig] });
    };
    const finish = (f: () => void): void => {
      if (settled) return;
      settled = true;
      for (const s of FORWARDED) process.removeListener(s, forward);
      f();
    };
    const c = createConnection(sock, () => c.write(`${JSON.stringify({ verb: 'exec', spec, client: process.pid })}\n`));
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const r = JSON.parse(line) as { ok: boolean; error?: string; pid?: number; status?: number; signal?: number | null };
        if (!r.ok) return finish(() => reject(new OciError(`container ${id}: ${r.error ?? 'exec failed'}`, '')));
        if (r.status !== undefined) return finish(() => resolve({ status: r.status!, signal: r.signal ?? null }));
        pid = r.pid!;
        for (const s of FORWARDED) process.on(s, forward);
        onStarted(pid);
      }
    });
    c.on('error', (e) => finish(() => reject(new OciError(`cannot reach container ${id}'s VMM: ${e.message}`, 'is it still running?'))));
    // The container ended under the exec'd process: it ended with it (SIGKILL).
    c.on('close', () => finish(() => (pid ? resolve({ status: 128 + 9, signal: 9 }) : reject(new OciError(`container ${id} ended before the exec'd process started`, '')))));
  });
}

/** Exit as the exec'd process did: its status, or (killed) by its signal, so the engine sees what runc shows. */
export async function exitLike(r: { status: number; signal: number | null }): Promise<number> {
  const name = r.signal !== null ? (Object.entries(constants.signals).find(([, v]) => v === r.signal)?.[0] as NodeJS.Signals | undefined) : undefined;
  if (name && name !== 'SIGSTOP' && name !== 'SIGKILL') {
    process.removeAllListeners(name);
    process.kill(process.pid, name);
    await new Promise((res) => setTimeout(res, 200));
  } else if (name === 'SIGKILL') {
    process.kill(process.pid, 'SIGKILL');
  }
  return r.status;
}
