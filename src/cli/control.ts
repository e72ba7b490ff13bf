/**
 * The control API: `mapvisor run --api SOCKET` serves JSON lines on a Unix socket ({"verb": "pause" |
 * "resume" | "checkpoint" | "stats" | "stop", "dir"?: string}); `mapvisor ctl SOCKET VERB [DIR]` is its
 * client. Each request gets one JSON line back: {"ok": true, ...} or {"ok": false, "error": "..."}.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { existsSync, rmSync } from 'node:fs';
import { MapvisorError, UsageError } from '../errors.js';
import type { Sandbox } from '../sandbox/sandbox.js';

export const VERBS = ['pause', 'resume', 'checkpoint', 'stats', 'stop', 'rejuvenate'] as const;

export interface ControlHooks {
  /** Restart the VMM under the running program; resolves with the downtime once the new VMM runs it. */
  rejuvenate?: () => Promise<Record<string, unknown>>;
}

async function answer(sb: Sandbox, req: { verb?: unknown; dir?: unknown }, hooks: ControlHooks): Promise<Record<string, unknown>> {
  switch (req.verb) {
    case 'rejuvenate':
      // The CLI hands the program to a new process; without that hook, to a new VM in this process.
      return { ok: true, ...(await (hooks.rejuvenate ? hooks.rejuvenate() : sb.rejuvenate())) };
    case 'pause':
      await sb.pause();
      return { ok: true, paused: true };
    case 'resume':
      await sb.resume();
      return { ok: true, paused: false };
    case 'checkpoint':
      if (typeof req.dir !== 'string' || !req.dir) return { ok: false, error: 'checkpoint needs a directory: mapvisor ctl SOCKET checkpoint DIR' };
      return { ok: true, ...(await sb.checkpoint(req.dir)) };
    case 'stats':
      return { ok: true, stats: await sb.liveStats() };
    case 'stop':
      sb.stop();
      return { ok: true, stopped: true };
    default:
      return { ok: false, error: `unknown verb ${JSON.stringify(req.verb)}; the verbs are ${VERBS.join(', ')}` };
  }
}

/** Serve the control API for `sb` on a Unix socket at `path` (removed when closed). */
export function serveControl(sb: Sandbox, path: string, hooks: ControlHooks = {}): Server {
  if (existsSync(path)) rmSync(path);
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('data', (d: string) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let req: { verb?: unknown; dir?: unknown };
        try {
          req = JSON.parse(line) as typeof req;
        } catch {
          conn.write(`${JSON.stringify({ ok: false, error: 'not a JSON line' })}\n`);
          continue;
        }
        answer(sb, req, hooks)
          .catch((e: Error) => ({ ok: false, error: e instanceof MapvisorError ? e.oneLine() : e.message }))
          .then((r) => conn.write(`${JSON.stringify(r)}\n`));
      }
    });
    conn.on('error', () => undefined);
  });
  server.on('error', (e) => process.stderr.write(`mapvisor: the control socket ${path} failed: ${e.message}\n`));
  server.listen(path);
  // The caller removes the socket's name when it is done with it: a 'close' handler here would fire
  // only when the last connection ends, possibly after a rejuvenated VMM took the name over.
  return server;
}

/** `mapvisor ctl SOCKET VERB [DIR]`: send one request, print the answer, exit 0 when ok. */
export async function ctlCommand(argv: string[]): Promise<number> {
  const [socket, verb, dir] = argv;
  if (!socket || !verb) throw new UsageError('usage: mapvisor ctl SOCKET VERB [DIR]', `the verbs are ${VERBS.join(', ')}`);
  if (!(VERBS as readonly string[]).includes(verb)) throw new UsageError(`unknown verb ${JSON.stringify(verb)}`, `the verbs are ${VERBS.join(', ')}`);
  if (!existsSync(socket)) throw new UsageError(`no control socket at ${socket}`, 'start the program with mapvisor run --api SOCKET');
  const reply = await new Promise<string>((resolve, reject) => {
    const c = createConnection(socket, () => c.write(`${JSON.stringify({ verb, ...(dir ? { dir } : {}) })}\n`));
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        c.end();
        resolve(buf.slice(0, buf.indexOf('\n')));
      }
    });
    c.on('error', (e) => reject(new MapvisorError('ECTL', `cannot reach ${socket}: ${e.message}`, 'is the sandbox still running?')));
  });
  process.stdout.write(`${reply}\n`);
  return (JSON.parse(reply) as { ok?: boolean }).ok ? 0 : 1;
}
