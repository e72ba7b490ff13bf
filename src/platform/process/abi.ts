/**
 * The process platform's contract with its stub: the numbers of src/platform/process/stub/abi.h, which
 * test/unit/process-abi.test.ts checks against the header. See that header for what each one means.
 */
export const STUB_LOAD_ADDR = 0x10000;
export const CTL_ADDR = 0x100000;
export const CTL_SIZE = 0x280000;
export const CTL_FD = 3;
export const FIRST_MAP_FD = 4;
export const LAST_MAP_FD = 15;

export const H_MAGIC = 0x00;
export const CTL_MAGIC = 0x4350564d;
export const H_VERSION = 0x04;
export const ABI_VERSION = 1;
export const H_DEAD = 0x08;
export const H_EXIT_KIND = 0x0c;
export const H_EXIT_VALUE = 0x10;
export const H_INNER_PID = 0x14;
export const H_SETUP_STEP = 0x18;
export const H_SETUP_ERRNO = 0x1c;
export const H_READY = 0x20;
export const H_OPS_LOCK = 0x24;
export const H_OPS_HEAD = 0x28;
export const H_OPS_DONE = 0x30;
export const H_UID = 0x38;
export const H_GID = 0x3c;
export const H_NAMESPACES = 0x40;
export const H_MAP_FDS = 0x44;

export const SETUP_MAP_CTL = 1;
export const SETUP_UNSHARE = 2;
export const SETUP_IDMAP = 3;
export const SETUP_FORK = 4;
export const SETUP_MOUNT = 5;
export const SETUP_PIVOT = 6;
export const SETUP_SIGNALS = 7;
export const SETUP_NNP = 8;
export const SETUP_SECCOMP = 9;
export const SETUP_MAGIC = 10;

export const SETUP_STEPS: Readonly<Record<number, string>> = {
  1: 'mapping the control area',
  2: 'unshare (fresh user, pid, mount, network, ipc and uts namespaces)',
  3: 'writing the user namespace id maps',
  4: 'fork',
  5: 'mounting an empty tmpfs root',
  6: 'pivot_root into the empty root',
  7: 'installing signal handlers',
  8: 'PR_SET_NO_NEW_PRIVS',
  9: 'installing the seccomp filter',
  10: 'checking the control area (version)',
};

export const OPS_OFF = 0x1000;
export const OPS_CAP = 1024;
export const OP_SIZE = 48;
export const OP_KIND = 0;
export const OP_PROT = 4;
export const OP_FLAGS = 8;
export const OP_FD = 12;
export const OP_ADDR = 16;
export const OP_LEN = 24;
export const OP_OFFSET = 32;
export const OP_ARG = 40;
export const OPK_MAP = 1;
export const OPK_PROTECT = 2;
export const OPK_UNMAP = 3;
export const OPK_SPAWN = 4;

export const SLOTS_OFF = 0x10000;
export const SLOT_SIZE = 0x1000;
export const MAX_THREADS = 64;
export const S_STATE = 0x000;
export const S_KIND = 0x004;
export const S_NSTID = 0x008;
export const S_FLAGS = 0x00c;
export const S_SUP_SLEEPING = 0x010;
export const S_STUB_SLEEPING = 0x014;
export const S_GONE = 0x018;
export const S_REGS = 0x020;
export const S_FS_BASE = 0x0b0;
export const S_GS_BASE = 0x0b8;
export const S_SIGNO = 0x0c0;
export const S_SICODE = 0x0c4;
export const S_ADDR = 0x0c8;
export const S_TRAPNO = 0x0d0;
export const S_ERR = 0x0d8;
export const S_FXSAVE = 0x100;
export const S_END = 0x300;
export const S_SUP_KICK = 0x300;

export const ST_USER = 0;
export const ST_POSTED = 1;
export const ST_RESUME = 2;
export const ST_APPLY = 3;
export const ST_EXIT = 4;

export const EV_SYSCALL = 1;
export const EV_FAULT = 2;
export const EV_INTERRUPT = 3;
export const EV_START = 4;
export const EV_APPLIED = 5;

export const F_FPU = 1;
export const F_FS = 2;
export const F_GS = 4;

export const ALT_OFF = 0x50000;
export const ALT_SIZE = 0x8000;

export const KICK_SIGNAL = 40;
