/**
 * Typed errors. Every error the user can cause is a MapvisorError with a stable `code`, a message that
 * names the problem and a `fix` that names the remedy; the CLI prints them as one line
 * (`mapvisor: <message> (<fix>)`) and exits with `exitCode`, never with a stack trace.
 */

/** Exit codes of the CLI for failures of mapvisor itself (as env(1) and timeout(1) use them). */
export const EXIT_INTERNAL = 125; // mapvisor could not do its job: bad usage, no /dev/kvm, ...
export const EXIT_CANNOT_EXECUTE = 126; // the program exists but cannot run here (not ELF, 32-bit, ...)
export const EXIT_NOT_FOUND = 127; // the program does not exist

export class MapvisorError extends Error {
  readonly code: string;
  readonly fix: string;
  readonly exitCode: number;
  constructor(code: string, message: string, fix: string, exitCode: number = EXIT_INTERNAL) {
    super(message);
    this.name = 'MapvisorError';
    this.code = code;
    this.fix = fix;
    this.exitCode = exitCode;
  }
  /** The one line the CLI prints. */
  oneLine(): string {
    return this.fix ? `${this.message} (${this.fix})` : this.message;
  }
}

/** A usage or configuration error: a flag, size or path the user gave is wrong. */
export class UsageError extends MapvisorError {
  constructor(message: string, fix: string) {
    super('EUSAGE', message, fix, EXIT_INTERNAL);
    this.name = 'UsageError';
  }
}

/** The program cannot be executed by mapvisor (format, architecture, linking). */
export class ExecError extends MapvisorError {
  constructor(code: string, message: string, fix: string, exitCode: number = EXIT_CANNOT_EXECUTE) {
    super(code, message, fix, exitCode);
    this.name = 'ExecError';
  }
}
