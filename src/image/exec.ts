/**
 * Runs the host tools that `mapvisor image create` drives (apt-cache, apt-get, dpkg, mkfs.ext4): finds
 * them (also in the sbin directories a normal user's PATH often lacks), runs them with the C locale so
 * their output parses, and turns "not installed" into a one-line MapvisorError naming the package to
 * install.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { constants as osConstants } from 'node:os';
import { MapvisorError } from '../errors.js';

/** How to get each tool onto a Debian host. */
const INSTALL_FIX: Record<string, string> = {
  'mkfs.ext4': 'apt-get install e2fsprogs',
  'apt-get': 'building --debian images needs a Debian or Ubuntu host with apt',
  'apt-cache': 'building --debian images needs a Debian or Ubuntu host with apt',
  dpkg: 'apt-get install dpkg',
  cp: 'apt-get install coreutils',
};

/** Where sbin tools live when PATH lacks them (ordinary users on Debian have no /usr/sbin in PATH). */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/**
 * The absolute path of an executable `name`, searched in `searchPath` (default: PATH and the sbin
 * directories); throws a one-line error naming the package to install when it is missing.
 */
export function findTool(name: string, searchPath?: string): string {
  const dirs = searchPath !== undefined ? searchPath.split(delimiter) : [...(process.env.PATH ?? '').split(delimiter), ...SBIN_DIRS];
  for (const dir of dirs) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  throw new MapvisorError('ETOOL', `${name} is not installed`, INSTALL_FIX[name] ?? `install ${name}`);
}

export interface ExecResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  cwd?: string;
  /** Called with each complete line of standard output as it arrives. */
  onLine?: (line: string) => void;
}

/** Runs a tool to completion and collects its output; a non-zero exit is not an error here. */
export function exec(name: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const file = findTool(name);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C', DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let partial = '';
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      if (!opts.onLine) return;
      partial += d.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) opts.onLine(l);
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => reject(new MapvisorError('ETOOL', `cannot run ${name}: ${e.message}`, INSTALL_FIX[name] ?? `install ${name}`)));
    child.on('close', (code, signal) => {
      if (partial && opts.onLine) opts.onLine(partial);
      resolve({
        status: code ?? 128 + (signal ? osConstants.signals[signal] : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** The most telling line of a tool's error output (apt's "E: ..." line, else the first non-empty one). */
export function firstError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => l.startsWith('E: ')) ?? lines[0] ?? 'no error output').replace(/^E: /, '');
}
