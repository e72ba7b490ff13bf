/** The ext4 library's public surface (see fs.ts for the Ext4 class). */
export { Ext4, LINK_MAX, PATH_MAX, MAX_SYMLINKS, ROOT_INO } from './fs.js';
export type { Stat, Run, DirEntry, StatFs, ResolveOptions, OwnerOptions, OpenOptions, Timespec } from './fs.js';
export { FsError, EFSCORRUPTED, EFSBADCRC } from './errors.js';
export { encodeDev, decodeDev } from './inode.js';
export { crc32c, crc32cUpdate } from './crc32c.js';
export { mkfs, fsckCheck, fsckFix, debugfs } from './mkimage.js';
export type { MkfsOptions } from './mkimage.js';
