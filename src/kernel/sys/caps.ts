/**
 * Capabilities: capget and capset (kernel/capability.c, security/commoncap.c), kept per process.
 *
 * The sets say what the sandbox's kernel actually lets a process do. Its root (uid 0) may change its
 * ids and groups (CAP_SETUID, CAP_SETGID), chown, bypass file permissions (the file system checks
 * none), signal any process, bind any port of the sandbox's loopback, and set inheritable bits
 * (CAP_SETPCAP); it is refused what needs more (device nodes, namespaces, raw sockets, raising hard
 * limits or priority: CAP_MKNOD, CAP_SYS_ADMIN, CAP_NET_RAW, CAP_SYS_RESOURCE, CAP_SYS_NICE are not
 * in its sets). That granted set is also the bounding set. Any other uid has no capabilities.
 *
 * As on Linux: capset only lowers (permitted ⊆ old permitted, effective ⊆ new permitted, inheritable
 * ⊆ old inheritable ∪ old permitted unless CAP_SETPCAP, and always ⊆ old inheritable ∪ bounding);
 * changing the uid from 0 to another drops permitted and effective (no SECBIT_KEEP_CAPS here); an
 * execve by uid 0 gets permitted = effective = the bounding set back, by anyone else the empty set.
 * Capabilities are per process here, where Linux keeps them per thread.
 */
import { E } from '../../abi/errno.js';
import type { Kernel } from '../kernel.js';
import type { SyscallResult, SyscallTable } from '../types.js';

export const CAP = {
  CHOWN: 0,
  DAC_OVERRIDE: 1,
  DAC_READ_SEARCH: 2,
  FOWNER: 3,
  FSETID: 4,
  KILL: 5,
  SETGID: 6,
  SETUID: 7,
  SETPCAP: 8,
  NET_BIND_SERVICE: 10,
} as const;
/** CAP_CHECKPOINT_RESTORE, the last capability of Linux 6.1. */
export const CAP_LAST_CAP = 40;
const VALID = (1n << BigInt(CAP_LAST_CAP + 1)) - 1n;

/** What the sandbox grants uid 0: its bounding set. */
export const BOUNDING = Object.values(CAP).reduce((m, c) => m | (1n << BigInt(c)), 0n);

const VERSION_1 = 0x19980330;
const VERSION_2 = 0x20071026;
const VERSION_3 = 0x20080522;

interface CapSets {
  effective: bigint;
  permitted: bigint;
  inheritable: bigint;
}

const sets = new WeakMap<Kernel, CapSets>();

function capsOf(k: Kernel): CapSets {
  let c = sets.get(k);
  if (!c) {
    const all = k.identity.uid === 0 ? BOUNDING : 0n;
    c = { effective: all, permitted: all, inheritable: 0n };
    sets.set(k, c);
  }
  return c;
}

/** Does process `k` have capability `cap` in its effective set? */
export function capable(k: Kernel, cap: number): boolean {
  return (capsOf(k).effective & (1n << BigInt(cap))) !== 0n;
}

/** fork: the child has its parent's sets. */
export function capsFork(parent: Kernel, child: Kernel): void {
  sets.set(child, { ...capsOf(parent) });
}

/** execve: root gets the bounding set back; anyone else has none (no file capabilities, no ambient set). */
export function capsExec(k: Kernel): void {
  const c = capsOf(k);
  const all = k.identity.uid === 0 ? BOUNDING : 0n;
  c.permitted = all;
  c.effective = all;
}

/** The uid changed from `oldUid`: leaving uid 0 drops permitted and effective, as Linux's cap_emulate_setxuid. */
export function capsSetuid(k: Kernel, oldUid: number): void {
  if (oldUid === 0 && k.identity.uid !== 0) {
    const c = capsOf(k);
    c.permitted = 0n;
    c.effective = 0n;
  }
}

/** The data words a header's version asks for, or an errno (an unknown version is answered with the preferred one). */
function validateMagic(k: Kernel, header: number): number {
  const version = k.mem.readU32(header);
  switch (version) {
    case VERSION_1:
      return 1;
    case VERSION_2:
    case VERSION_3:
      return 2;
    default:
      k.mem.writeU32(header, VERSION_3);
      return -E.EINVAL;
  }
}

function capget(k: Kernel, header: number, data: number): SyscallResult {
  const words = validateMagic(k, header);
  // A null data pointer probes the version: 0 (an unknown one was answered in the header).
  if (data === 0) return words < 0 && words !== -E.EINVAL ? words : 0;
  if (words < 0) return words;
  const pid = k.mem.readI32(header + 4);
  if (pid < 0) return -E.EINVAL;
  let target: Kernel | undefined = k;
  if (pid !== 0 && !k.hasThread(pid)) {
    const p = k.procs?.get(pid);
    target = p && !p.zombie ? p : (k.threads?.byTid.get(pid)?.k ?? undefined);
    if (!target || target.zombie) return -E.ESRCH;
  }
  const c = capsOf(target);
  const out = new Uint8Array(12 * words);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < words; i++) {
    const w = (s: bigint): number => Number((s >> BigInt(32 * i)) & 0xffffffffn);
    dv.setUint32(12 * i, w(c.effective), true);
    dv.setUint32(12 * i + 4, w(c.permitted), true);
    dv.setUint32(12 * i + 8, w(c.inheritable), true);
  }
  k.mem.write(data, out);
  return 0;
}

function capset(k: Kernel, header: number, data: number): SyscallResult {
  const words = validateMagic(k, header);
  if (words < 0) return words;
  const pid = k.mem.readI32(header + 4);
  if (pid !== 0 && pid !== k.tid) return -E.EPERM; // may only affect the caller
  const b = k.mem.read(data, 12 * words);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let effective = 0n;
  let permitted = 0n;
  let inheritable = 0n;
  for (let i = 0; i < words; i++) {
    const sh = BigInt(32 * i);
    effective |= BigInt(dv.getUint32(12 * i, true)) << sh;
    permitted |= BigInt(dv.getUint32(12 * i + 4, true)) << sh;
    inheritable |= BigInt(dv.getUint32(12 * i + 8, true)) << sh;
  }
  effective &= VALID;
  permitted &= VALID;
  inheritable &= VALID;
  const old = capsOf(k);
  const sub = (a: bigint, b: bigint): boolean => (a & ~b) === 0n;
  if (!(old.effective & (1n << BigInt(CAP.SETPCAP))) && !sub(inheritable, old.inheritable | old.permitted)) return -E.EPERM;
  if (!sub(inheritable, old.inheritable | BOUNDING)) return -E.EPERM;
  if (!sub(permitted, old.permitted)) return -E.EPERM;
  if (!sub(effective, permitted)) return -E.EPERM;
  sets.set(k, { effective, permitted, inheritable });
  return 0;
}

/** prctl(PR_CAPBSET_READ, cap): 1 when `cap` is in the bounding set. */
export function capbsetRead(cap: number): number {
  if (cap < 0 || cap > CAP_LAST_CAP) return -E.EINVAL;
  return (BOUNDING >> BigInt(cap)) & 1n ? 1 : 0;
}

export const capsSyscalls: SyscallTable = {
  capget: (k, a) => capget(k, a.u64(0), a.u64(1)),
  capset: (k, a) => capset(k, a.u64(0), a.u64(1)),
};
