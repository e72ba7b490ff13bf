/**
 * The host process of a detached `mapvisor-oci exec` (--detach, or a terminal from --console-socket):
 * what the pid file names and the engine (conmon) waits on and signals. It holds the exec'd process's
 * stdio (the VMM opens them through /proc), tells exec on fd 3 that the process started (or why not),
 * and exits as the process does.
 *
 *   node dist/src/oci/exec-wait.js ROOT ID SPECFILE LOGFILE LOGFORMAT TTY   (fd 3: the readiness pipe)
 */
import { closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { execInContainer, exitLike } from './exec-client.js';
import { log } from './log.js';
import type { ExecRequest } from './vmm.js';

const TIOCSCTTY = 0x540e;
const [root, id, specFile, logFile, logFormat, tty] = process.argv.slice(2) as [string, string, string, string, string, string];
if (logFile) log.file = logFile;
if (logFormat === 'json') log.format = 'json';

function tell(line: string): void {
  try {
    writeSync(3, `${line}\n`);
    closeSync(3);
  } catch {
    // exec has gone
  }
}

async function main(): Promise<number> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ExecRequest;
  rmSync(specFile, { force: true });
  if (tty === '1') {
    // The pty is this session's terminal: its resizes raise SIGWINCH here, forwarded to the process.
    const libc = await import('../host/libc.js');
    libc.ioctlInt(0, TIOCSCTTY, 0);
  }
  try {
    const r = await execInContainer(root, id, spec, () => tell('ready'));
    return await exitLike(r);
  } catch (e) {
    const msg = (e as { oneLine?: () => string }).oneLine?.() ?? (e as Error).message;
    tell(`error ${msg}`);
    return 1;
  }
}

process.exitCode = await main();
