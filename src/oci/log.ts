/**
 * The runtime's log: runc's --log FILE and --log-format json|text. An error is one line there (json:
 * {"level":"error","msg":...,"time":...}, which conmon and containerd's shim read back) and on stderr.
 */
import { appendFileSync } from 'node:fs';

/** A failure of the runtime: one line naming the problem and the fix. */
export class OciError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
  oneLine(): string {
    return this.fix ? `${this.message} (${this.fix})` : this.message;
  }
}

export interface LogTarget {
  file: string | undefined;
  format: 'json' | 'text';
}

export const log: LogTarget = { file: undefined, format: 'text' };

function line(level: 'error' | 'info' | 'warning', msg: string): string {
  const time = new Date().toISOString();
  return log.format === 'json' ? `${JSON.stringify({ level, msg, time })}\n` : `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
}

function toFile(level: 'error' | 'info' | 'warning', msg: string): void {
  if (!log.file) return;
  try {
    appendFileSync(log.file, line(level, msg));
  } catch {
    // the log is best effort; stderr still has errors
  }
}

export function logInfo(msg: string): void {
  toFile('info', msg);
}

export function logWarning(msg: string): void {
  toFile('warning', msg);
}

export function logError(msg: string): void {
  toFile('error', msg);
  process.stderr.write(`mapvisor-oci: ${msg}\n`);
}
