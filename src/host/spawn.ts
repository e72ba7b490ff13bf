/**
 * Starting a host program with exactly the fds it is given, through libc's posix_spawn (a vfork and
 * an exec: a fraction of a millisecond here, where Node's child_process.spawn takes several: the
 * process platform starts a stub per sandboxed process). The child gets /dev/null as fds 0-2, `fds`
 * as 3, 4, ..., default signal dispositions, an empty signal mask and an empty environment.
 */
import koffi from 'koffi';
import { HostError } from './errors.js';

const lib = koffi.load('libc.so.6');
const posixSpawn = lib.func('int posix_spawn(_Out_ int *pid, const char *path, void *fa, void *attr, const char **argv, const char **envp)') as (
  pid: number[],
  path: string,
  fa: Buffer,
  attr: Buffer,
  argv: Array<string | null>,
  envp: Array<string | null>,
) => number;
const faInit = lib.func('int posix_spawn_file_actions_init(void *fa)') as (fa: Buffer) => number;
const faDup2 = lib.func('int posix_spawn_file_actions_adddup2(void *fa, int fd, int newfd)') as (fa: Buffer, fd: number, newfd: number) => number;
const faClose = lib.func('int posix_spawn_file_actions_addclose(void *fa, int fd)') as (fa: Buffer, fd: number) => number;
const faOpen = lib.func('int posix_spawn_file_actions_addopen(void *fa, int fd, const char *path, int oflag, int mode)') as (
  fa: Buffer,
  fd: number,
  path: string,
  oflag: number,
  mode: number,
) => number;
const faDestroy = lib.func('int posix_spawn_file_actions_destroy(void *fa)') as (fa: Buffer) => number;
const attrInit = lib.func('int posix_spawnattr_init(void *attr)') as (attr: Buffer) => number;
const attrSetFlags = lib.func('int posix_spawnattr_setflags(void *attr, short flags)') as (attr: Buffer, flags: number) => number;
const attrSetSigmask = lib.func('int posix_spawnattr_setsigmask(void *attr, const void *set)') as (attr: Buffer, set: Buffer) => number;
const attrSetSigdefault = lib.func('int posix_spawnattr_setsigdefault(void *attr, const void *set)') as (attr: Buffer, set: Buffer) => number;
const attrDestroy = lib.func('int posix_spawnattr_destroy(void *attr)') as (attr: Buffer) => number;

/** glibc's sizes (x86-64): posix_spawn_file_actions_t 80 bytes, posix_spawnattr_t 336, sigset_t 128; with room to spare. */
const FA_BYTES = 256;
const ATTR_BYTES = 512;
const SIGSET_BYTES = 128;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const O_RDWR = 2;
/** Where the sources are parked first, so that no dup2 overwrites a later one's source. */
const PARK_FD = 900;

/** Spawn `path` (no arguments) with `fds` as its fds 3, 4, ...; returns the child's pid. */
export function spawnWithFds(path: string, fds: readonly number[]): number {
  const fa = Buffer.alloc(FA_BYTES);
  const attr = Buffer.alloc(ATTR_BYTES);
  let rc = faInit(fa);
  if (rc !== 0) throw new HostError('posix_spawn_file_actions_init', rc);
  try {
    rc = attrInit(attr);
    if (rc !== 0) throw new HostError('posix_spawnattr_init', rc);
    try {
      const none = Buffer.alloc(SIGSET_BYTES);
      const all = Buffer.alloc(SIGSET_BYTES, 0xff);
      if (attrSetFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) || attrSetSigmask(attr, none) || attrSetSigdefault(attr, all)) {
        throw new HostError('posix_spawnattr_set*', 22);
      }
      for (let fd = 0; fd < 3; fd++) if (faOpen(fa, fd, '/dev/null', O_RDWR, 0)) throw new HostError('posix_spawn_file_actions_addopen', 22);
      fds.forEach((fd, i) => {
        if (faDup2(fa, fd, PARK_FD + i)) throw new HostError('posix_spawn_file_actions_adddup2', 9);
      });
      fds.forEach((_fd, i) => {
        if (faDup2(fa, PARK_FD + i, 3 + i) || faClose(fa, PARK_FD + i)) throw new HostError('posix_spawn_file_actions_adddup2', 9);
      });
      const pid = [0];
      rc = posixSpawn(pid, path, fa, attr, [path, null], [null]);
      if (rc !== 0) throw new HostError(`posix_spawn ${path}`, rc);
      return pid[0]!;
    } finally {
      attrDestroy(attr);
    }
  } finally {
    faDestroy(fa);
  }
}
