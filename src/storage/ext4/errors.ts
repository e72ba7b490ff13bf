/** Errors of the file system layer. */
import { E, errnoName } from '../../abi/errno.js';

/** EFSCORRUPTED, as the kernel spells it (EUCLEAN). */
export const EFSCORRUPTED = E.EUCLEAN;
/** EFSBADCRC, as the kernel spells it (EBADMSG): a metadata checksum does not match. */
export const EFSBADCRC = E.EBADMSG;

/** A file system operation failed; the syscall layer returns -errno. */
export class FsError extends Error {
  readonly errno: number;
  constructor(errno: number, message?: string) {
    super(message ? `${errnoName(errno)}: ${message}` : errnoName(errno));
    this.name = 'FsError';
    this.errno = errno;
  }
}

/** Shorthand: a corrupted-structure error. */
export function corrupted(what: string): FsError {
  return new FsError(EFSCORRUPTED, what);
}
