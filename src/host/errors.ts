/** A host system call made by mapvisor itself failed: a mapvisor or host problem, not the program's. */
import { errnoName } from '../abi/errno.js';
import { MapvisorError } from '../errors.js';

export class HostError extends MapvisorError {
  readonly op: string;
  readonly errno: number;
  constructor(op: string, errno: number, detail = '', code = 'EHOST') {
    super(code, `${op} failed: ${errnoName(errno)}${detail ? ` (${detail})` : ''}`, 'this is a mapvisor or host problem; run with --stats and report it');
    this.name = 'HostError';
    this.op = op;
    this.errno = errno;
  }
}
