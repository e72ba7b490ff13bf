/**
 * mapvisor's own statement of its system-call coverage, beyond "there is a handler". docs/syscalls.md
 * is generated from it and from the dispatcher's table (`npm run docs:syscalls`, which runs
 * scripts/syscalls-doc.mjs); test/unit/syscalls-doc.test.ts fails when the two disagree or the file is
 * stale.
 *
 * A system call's status comes from the code first: with a handler in kernel.ts's table it is
 * "implemented", without one "not implemented" (it answers ENOSYS and is counted in --stats). An entry
 * here only says more:
 * - `partial`: the call has a handler, but parts of it are missing (flags refused, arguments ignored,
 *   semantics simplified). `missing` says what, with the errno a program gets where there is one.
 * - `refused`: the call has a handler that refuses every use of it, deliberately: `errno` and `why`.
 * - `not-implemented`: no handler, and something worth saying about that (`note`).
 * So a newly implemented call with no entry here shows as implemented, and an entry that no longer
 * matches the code (a `partial` call with no handler, a `not-implemented` one that has one) fails the
 * test. Every claim here was checked against the handlers in src/kernel/sys/*.ts; when a handler
 * changes, change its entry with it.
 */
import type { E } from '../abi/errno.js';
import { SYS, type SyscallName } from '../abi/sysno.js';

export type ErrnoName = keyof typeof E;

export type Coverage =
  | { status: 'partial'; missing: string }
  | { status: 'refused'; errno: ErrnoName; why: string }
  | { status: 'not-implemented'; note: string };

/** Calls with no entry point in Linux's own x86-64 table (syscall_64.tbl): ENOSYS on Linux too. */
const GONE_FROM_LINUX = 'not in Linux either: its x86-64 table has no entry point for it';
const gone: Coverage = { status: 'not-implemented', note: GONE_FROM_LINUX };

const RESTARTED = 'a signal handler installed with SA_RESTART restarts it (with its whole timeout) where Linux answers EINTR';
const NO_PERMISSION_CHECKS = 'permission bits and ownership are not checked (the program is treated as root)';
const IMAGE_ONLY = 'only files of the disk image';

export const COVERAGE: Partial<Record<SyscallName, Coverage>> = {
  // ---- files and file descriptors (sys/fs.ts, sys/io.ts, sys/sendfile.ts)
  pread64: { status: 'partial', missing: 'on a pipe, FIFO, socket, eventfd or timerfd the offset is ignored (an ordinary read) where Linux answers ESPIPE' },
  pwrite64: { status: 'partial', missing: 'on a pipe, FIFO, socket or eventfd the offset is ignored (an ordinary write) where Linux answers ESPIPE' },
  preadv: { status: 'partial', missing: 'as pread64' },
  pwritev: { status: 'partial', missing: 'as pwrite64' },
  open: { status: 'partial', missing: `${NO_PERMISSION_CHECKS}; O_TMPFILE is not supported (EISDIR); device nodes on the image answer ENXIO (the kernel's own /dev has null, zero, full, random and urandom); /proc and /sys are read-only but for /proc/PID/comm and oom_score_adj (EACCES for write access, or O_CREAT of a new name)` },
  openat: { status: 'partial', missing: 'as open' },
  creat: { status: 'partial', missing: NO_PERMISSION_CHECKS },
  access: { status: 'partial', missing: 'only the execute bit and a read-only image (EROFS for W_OK) are checked: the program is treated as root' },
  faccessat: { status: 'partial', missing: 'as access' },
  faccessat2: { status: 'partial', missing: 'as access; AT_EACCESS is the same check (one user id per process)' },
  chmod: { status: 'partial', missing: `${IMAGE_ONLY} (/dev and /proc entries: EPERM); ownership is not checked` },
  fchmod: { status: 'partial', missing: `${IMAGE_ONLY} (other fds: EINVAL); ownership is not checked` },
  fchmodat: { status: 'partial', missing: 'as chmod' },
  chown: { status: 'partial', missing: `${IMAGE_ONLY}; no permission check (anyone may give a file away)` },
  fchown: { status: 'partial', missing: `${IMAGE_ONLY} (other fds: EINVAL); no permission check` },
  lchown: { status: 'partial', missing: 'as chown' },
  fchownat: { status: 'partial', missing: 'as chown' },
  truncate: { status: 'partial', missing: `${IMAGE_ONLY}; no permission check` },
  ftruncate: { status: 'partial', missing: `${IMAGE_ONLY} (other fds: EINVAL)` },
  fallocate: { status: 'partial', missing: `${IMAGE_ONLY} (other fds: ENODEV); modes other than FALLOC_FL_KEEP_SIZE (punch hole, zero, collapse, insert range) answer EOPNOTSUPP` },
  lseek: { status: 'partial', missing: 'SEEK_DATA/SEEK_HOLE see no holes (the whole file is data); on devices every seek answers 0; a standard stream the host gave is never seekable (ESPIPE), even when it is a regular file' },
  statx: { status: 'partial', missing: 'the mask and AT_STATX_* sync flags are ignored: always the basic stats (plus btime where the image has it); stx_attributes, stx_mnt_id and the direct-I/O fields are zero' },
  statfs: { status: 'partial', missing: 'anything outside the image (/dev, /proc, /sys, and everything without an image) reports procfs\'s magic and sizes (/sys: sysfs\'s magic)' },
  fstatfs: { status: 'partial', missing: 'fds that are not files of the image (pipes, sockets, devices, /proc, /sys) report procfs\'s magic and sizes (/sys: sysfs\'s magic)' },
  mknod: { status: 'partial', missing: 'character and block device nodes answer EPERM (as for an unprivileged user namespace); FIFOs, sockets and regular files are made' },
  mknodat: { status: 'partial', missing: 'as mknod' },
  renameat2: { status: 'partial', missing: 'RENAME_WHITEOUT answers EINVAL' },
  chdir: { status: 'partial', missing: 'directories of the image, /proc and /sys; the path kept is the one resolved (no other mounts)' },
  fchdir: { status: 'partial', missing: 'directories of the image, /proc and /sys (other fds: ENOTDIR)' },
  sync_file_range: { status: 'partial', missing: 'the range and flags are ignored: the whole image is synced' },
  close_range: { status: 'partial', missing: 'CLOSE_RANGE_UNSHARE in a process of more than one thread answers ENOSYS (fd tables are per process here; with one thread it is a no-op, as on Linux)' },
  fcntl: {
    status: 'partial',
    missing:
      'F_DUPFD(_CLOEXEC), F_GETFD/F_SETFD, F_GETFL/F_SETFL, F_GETPIPE_SZ (a sandbox pipe\'s fixed 64 KiB; a host stream answers EBADF) and the record locks only; record locks (F_SETLK, F_SETLKW, F_GETLK, F_OFD_*) exclude between the sandbox\'s processes as on Linux, but F_SETLKW does not detect deadlocks (no EDEADLK), a process\'s POSIX locks are dropped by any close of the file (close, close_range, dup2 over an fd, exec\'s close-on-exec) and by its end; files of host mounts lock per open, not per file; F_GETOWN/F_SETOWN, F_SETSIG, F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ and F_ADD_SEALS/F_GET_SEALS answer EINVAL',
  },
  ioctl: {
    status: 'partial',
    missing:
      'FIONBIO, FIOCLEX and FIONCLEX on any fd; the standard streams the host gave (a terminal, a host pipe or file): TCGETS, TIOCGWINSZ, TIOCGPGRP, TIOCSPGRP and FIONREAD (setting terminal attributes, TCSETS*, answers ENOTTY); sockets: FIONREAD and SIOCOUTQ; everything else, on pipes, files and devices too, answers ENOTTY',
  },
  pipe2: { status: 'partial', missing: 'O_DIRECT (packet mode) is accepted but the pipe stays a byte stream' },
  select: { status: 'partial', missing: `the timeout is not updated with the time left; ${RESTARTED}` },
  pselect6: { status: 'partial', missing: `the timeout is not updated with the time left; ${RESTARTED}` },
  poll: { status: 'partial', missing: RESTARTED },
  ppoll: { status: 'partial', missing: `the timeout is not updated with the time left; ${RESTARTED}` },
  epoll_ctl: { status: 'partial', missing: 'EPOLLET is accepted but readiness is level-triggered; EPOLLEXCLUSIVE and EPOLLWAKEUP are ignored' },
  epoll_wait: { status: 'partial', missing: `edge-triggered interest is reported as level-triggered; ${RESTARTED}` },
  epoll_pwait: { status: 'partial', missing: `edge-triggered interest is reported as level-triggered; ${RESTARTED}` },
  epoll_pwait2: { status: 'partial', missing: `edge-triggered interest is reported as level-triggered; ${RESTARTED}` },
  setxattr: { status: 'refused', errno: 'EOPNOTSUPP', why: 'attributes are not written into the image (Linux\'s answer where a file system does not support one; ls and cp -a then fall back to the mode bits), after the checks Linux makes first (EINVAL, ERANGE, E2BIG, EPERM for user.* names on other than regular files and directories, EROFS, EEXIST, ENODATA)' },
  lsetxattr: { status: 'refused', errno: 'EOPNOTSUPP', why: 'as setxattr' },
  fsetxattr: { status: 'refused', errno: 'EOPNOTSUPP', why: 'as setxattr' },
  removexattr: { status: 'refused', errno: 'EOPNOTSUPP', why: 'as setxattr' },
  lremovexattr: { status: 'refused', errno: 'EOPNOTSUPP', why: 'as setxattr' },
  fremovexattr: { status: 'refused', errno: 'EOPNOTSUPP', why: 'as setxattr' },
  sendfile: { status: 'partial', missing: 'in_fd must be a regular file of the image (else EINVAL, as Linux); out_fd may be a socket, a file of the image or a standard stream: a pipe, eventfd or device answers EINVAL' },
  timerfd_settime: { status: 'partial', missing: 'TFD_TIMER_CANCEL_ON_SET is accepted and ignored' },

  // ---- memory (sys/mm.ts, sys/shm.ts)
  mmap: {
    status: 'partial',
    missing:
      'maps anonymous memory, /dev/zero and files of the image only (other fds: ENODEV); MAP_HUGETLB, MAP_LOCKED, MAP_POPULATE, MAP_NORESERVE and MAP_SYNC are accepted and ignored, and MAP_GROWSDOWN mappings do not grow',
  },
  mprotect: { status: 'partial', missing: 'PROT_GROWSDOWN/PROT_GROWSUP are accepted and ignored; on the process platform, adding write access to a MAP_SHARED mapping of the image answers EACCES' },
  mremap: { status: 'partial', missing: 'MREMAP_DONTUNMAP answers EINVAL' },
  pkey_alloc: { status: 'refused', errno: 'EINVAL', why: 'no protection keys, as Linux answers on a CPU without PKU: the first call EINVAL (it takes key 0 and cannot set its rights), every later one in the same address space ENOSPC' },
  pkey_free: { status: 'refused', errno: 'EINVAL', why: 'no key can have been allocated (pkey_alloc is refused)' },
  pkey_mprotect: { status: 'partial', missing: 'with key -1 it is mprotect; any other key answers EINVAL (no key can have been allocated)' },
  madvise: {
    status: 'partial',
    missing:
      'MADV_DONTNEED, MADV_FREE and MADV_REMOVE drop private anonymous memory only (it reads as zeros): a private file mapping keeps the pages the program changed (Linux reads the file again), and MADV_REMOVE punches no hole in shared memory or files; all other advice is accepted without effect, including MADV_DONTFORK and MADV_WIPEONFORK (a fork copies the range anyway)',
  },
  shmget: { status: 'partial', missing: 'segments belong to the process that made them: another process of the sandbox does not find its key (it gets ENOENT, or a segment of its own with IPC_CREAT), and a fork\'s child has none of its parent\'s segments; permissions are not checked' },
  shmat: { status: 'partial', missing: 'as shmget (the caller\'s own segments only); SHM_EXEC and SHM_REMAP are ignored' },
  shmdt: { status: 'partial', missing: 'the caller\'s own attachments only (a fork\'s inherited ones: EINVAL)' },
  shmctl: { status: 'partial', missing: 'IPC_STAT and IPC_RMID; IPC_SET is accepted and changes nothing; IPC_INFO, SHM_INFO, SHM_STAT and SHM_LOCK/SHM_UNLOCK answer EINVAL' },

  // ---- processes and threads (sys/procs.ts, sys/process.ts, threads.ts, exec.ts)
  clone: {
    status: 'partial',
    missing:
      'new namespaces (CLONE_NEW*) answer EPERM; a process sharing tables with its parent (CLONE_SIGHAND, CLONE_FS or CLONE_FILES without CLONE_THREAD), CLONE_PIDFD and CLONE_PTRACE answer EINVAL; CLONE_VM without CLONE_VFORK or CLONE_THREAD answers ENOSYS (counted as unimplemented), and a thread without all of CLONE_VM, CLONE_FS, CLONE_FILES and CLONE_SIGHAND answers ENOSYS',
  },
  clone3: { status: 'partial', missing: 'as clone; set_tid and cgroup are ignored, and so are flags above bit 31 (CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP)' },
  execve: { status: 'partial', missing: 'x86-64 ELF programs and #! scripts from the image only (without an image: ENOENT; 32-bit and other ELF: ENOEXEC)' },
  execveat: { status: 'partial', missing: 'as execve' },
  wait4: { status: 'partial', missing: 'the rusage it fills is all zeros' },
  waitid: { status: 'partial', missing: 'P_PIDFD answers EINVAL; the rusage it fills is all zeros' },
  kill: { status: 'partial', missing: 'no permission check: any process may signal any other process of the sandbox, whatever their user ids' },
  tkill: { status: 'partial', missing: 'the signal goes to the thread\'s process (pending signals are per process, not per thread); no permission check, as kill' },
  tgkill: { status: 'partial', missing: 'as tkill' },
  rt_sigpending: { status: 'partial', missing: 'pending signals are per process, not per thread' },
  setuid: { status: 'partial', missing: 'one user id per process: real, effective, saved and file-system ids are one' },
  setreuid: { status: 'partial', missing: 'as setuid (the effective id given becomes the one id)' },
  setresuid: { status: 'partial', missing: 'as setuid' },
  setgid: { status: 'partial', missing: 'one group id per process: real, effective, saved and file-system ids are one' },
  setregid: { status: 'partial', missing: 'as setgid' },
  setresgid: { status: 'partial', missing: 'as setgid' },
  setfsuid: { status: 'partial', missing: 'changes the process\'s one user id (there is no separate file-system id)' },
  setfsgid: { status: 'partial', missing: 'changes the process\'s one group id (there is no separate file-system id)' },
  set_robust_list: { status: 'partial', missing: 'the list is recorded but never walked: a thread that dies holding a robust mutex leaves it locked (no FUTEX_OWNER_DIED)' },
  futex: {
    status: 'partial',
    missing:
      'FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE and the _BITSET forms only; FUTEX_WAKE_OP and the priority-inheritance operations (FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2) answer ENOSYS; a futex word in a MAP_SHARED mapping used without FUTEX_PRIVATE_FLAG is keyed by its backing memory, so it wakes across processes, as Linux\'s shared futexes',
  },
  prctl: {
    status: 'partial',
    missing:
      'PR_SET_NAME/PR_GET_NAME (per thread), PR_CAPBSET_READ, PR_GET_PDEATHSIG (always 0), PR_GET_DUMPABLE (always 1) and PR_GET_NO_NEW_PRIVS (always 0); PR_SET_PDEATHSIG, PR_SET_DUMPABLE and PR_SET_NO_NEW_PRIVS are accepted and have no effect (no parent-death signal is ever sent); every other option answers EINVAL',
  },
  arch_prctl: { status: 'partial', missing: 'ARCH_SET_FS/GS and ARCH_GET_FS/GS only; ARCH_GET_CPUID/SET_CPUID, ARCH_REQ_XCOMP_PERM and the shadow-stack options answer EINVAL' },
  prlimit64: { status: 'partial', missing: 'limits are recorded and reported, but only RLIMIT_NOFILE is enforced by them (the address-space limit is --mem, whatever RLIMIT_AS says); raising a hard limit answers EPERM even for root' },
  getrlimit: { status: 'partial', missing: 'as prlimit64' },
  setrlimit: { status: 'partial', missing: 'as prlimit64' },
  getpriority: { status: 'partial', missing: 'PRIO_PROCESS only (PRIO_PGRP, PRIO_USER: EINVAL), for the caller\'s own threads (another process: ESRCH)' },
  setpriority: { status: 'partial', missing: 'as getpriority; the nice value is recorded and has no effect on scheduling; lowering it (raising the priority) answers EACCES' },
  sched_getaffinity: { status: 'partial', missing: 'the caller\'s own threads only (another process: ESRCH); every thread may run on all --cpus CPUs' },
  sched_setaffinity: { status: 'partial', missing: 'the mask is checked and not applied; the caller\'s own threads only (another process: ESRCH)' },
  getcpu: { status: 'partial', missing: 'always answers CPU 0, node 0' },
  rseq: { status: 'partial', missing: 'cpu_id is 0 on every vCPU (getcpu\'s CPU), so per-CPU data guarded by rseq is safe only when one thread runs guest code at a time (--cpus 1); the original 32-byte struct rseq only, as Linux 6.1 (a larger rseq_len: EINVAL)' },
  capget: { status: 'partial', missing: 'capabilities are kept per process (Linux: per thread); uid 0 holds only those the sandbox honours (its bounding set: CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_NET_BIND_SERVICE)' },
  capset: { status: 'partial', missing: 'as capget; the caller only (another pid: EPERM, as Linux); no file capabilities, ambient set or SECBIT_KEEP_CAPS' },
  membarrier: { status: 'partial', missing: 'QUERY reports GLOBAL, PRIVATE_EXPEDITED and REGISTER_PRIVATE_EXPEDITED, which succeed without interrupting other threads; the other commands answer EINVAL' },
  getrusage: { status: 'partial', missing: 'RUSAGE_SELF and RUSAGE_THREAD report the VMM host process\'s CPU time and maximum RSS; RUSAGE_CHILDREN reports zeros' },
  sysinfo: { status: 'partial', missing: 'totalram is --mem, freeram and sharedram as /proc/meminfo gives them, uptime the VMM process\'s; the load averages, bufferram and the swap figures are zero' },

  // ---- time (sys/time.ts, sys/itimer.ts, sys/posixtimer.ts)
  clock_gettime: { status: 'partial', missing: 'CLOCK_PROCESS_CPUTIME_ID and CLOCK_THREAD_CPUTIME_ID read the VMM\'s own CPU clocks; per-process and per-thread CPU clock ids (negative ids) answer EINVAL' },
  clock_getres: { status: 'partial', missing: 'as clock_gettime' },
  clock_nanosleep: { status: 'partial', missing: 'CPU-time clocks answer EOPNOTSUPP; a relative sleep that a signal handler interrupts answers EINTR without writing the time left to rem' },
  nanosleep: { status: 'partial', missing: 'a sleep that a signal handler interrupts answers EINTR without writing the time left to rem' },
  getitimer: { status: 'partial', missing: 'ITIMER_REAL only: ITIMER_VIRTUAL and ITIMER_PROF answer ENOSYS (counted as unimplemented)' },
  setitimer: { status: 'partial', missing: 'as getitimer' },
  timer_create: { status: 'partial', missing: 'CPU-time clocks (CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID, a pid\'s or thread\'s clock) answer ENOSYS (counted as unimplemented); SIGEV_THREAD_ID\'s signal goes to the process, not to the thread named; the _ALARM clocks run as their base clocks' },

  // ---- sockets (sys/net.ts, net/*.ts)
  socket: {
    status: 'partial',
    missing:
      'AF_UNIX (stream, datagram, seqpacket) and AF_INET/AF_INET6 TCP and UDP on the sandbox\'s own loopback (other addresses: ENETUNREACH for connect and sendto, EADDRNOTAVAIL for bind; with --net host: host sockets); raw sockets answer EPERM, ICMP ping sockets EACCES, AF_NETLINK and every other family EAFNOSUPPORT',
  },
  socketpair: { status: 'partial', missing: 'AF_UNIX only (AF_INET/AF_INET6: EOPNOTSUPP, as Linux; others: EAFNOSUPPORT)' },
  setsockopt: {
    status: 'partial',
    missing:
      'on the sandbox\'s own sockets SO_RCVBUF/SO_SNDBUF, SO_LINGER, SO_REUSEADDR/SO_REUSEPORT, SO_RCVTIMEO/SO_SNDTIMEO, SO_PASSCRED and IPV6_V6ONLY act; the other options are kept and read back without effect: SO_KEEPALIVE, SO_TIMESTAMP (no timestamps are delivered), SO_RCVLOWAT, SO_PEEK_OFF, SO_PRIORITY, SO_MARK and every TCP_*, IP_* and IPV6_* option (TCP_NODELAY, TCP_KEEPIDLE, ...); SO_BINDTODEVICE accepts only "lo" (else ENODEV); options Linux does not have answer ENOPROTOOPT. With --net host, internet sockets pass options to the host socket',
  },
  getsockopt: { status: 'partial', missing: 'as setsockopt; TCP_INFO gives only the state' },
  recvfrom: { status: 'partial', missing: 'MSG_OOB answers EINVAL (no urgent data); MSG_ERRQUEUE is not recognised on the sandbox\'s own sockets: it receives ordinary data (there is no error queue)' },
  recvmsg: { status: 'partial', missing: 'as recvfrom' },
  recvmmsg: { status: 'partial', missing: 'as recvfrom; the timeout argument is ignored' },
  sendmsg: { status: 'partial', missing: 'ancillary data: SCM_RIGHTS and SCM_CREDENTIALS on AF_UNIX; any other SOL_SOCKET message answers EINVAL; IP-level ones (IP_PKTINFO, IP_TOS, ...) are ignored' },
  sendmmsg: { status: 'partial', missing: 'as sendmsg' },

  // ---- not implemented, and not in Linux's x86-64 table either
  uselib: gone,
  _sysctl: gone,
  create_module: gone,
  get_kernel_syms: gone,
  query_module: gone,
  nfsservctl: gone,
  getpmsg: gone,
  putpmsg: gone,
  afs_syscall: gone,
  tuxcall: gone,
  security: gone,
  set_thread_area: { status: 'not-implemented', note: `${GONE_FROM_LINUX} (64-bit TLS is arch_prctl)` },
  get_thread_area: { status: 'not-implemented', note: `${GONE_FROM_LINUX} (64-bit TLS is arch_prctl)` },
  lookup_dcookie: gone,
  epoll_ctl_old: gone,
  epoll_wait_old: gone,
  vserver: gone,
};

/**
 * What holds for many calls at once, said once at the top of the table (each is checked against the
 * code like the entries above; a call's own entry repeats one where it is the heart of the call).
 */
export const THROUGHOUT: string[] = [
  'File permission bits are checked nowhere: every process has the access to files that root has (CAP_DAC_OVERRIDE), whatever its uid. Only a read-only image (EROFS) and the execute bit for execve and access(X_OK) are enforced.',
  'Without a disk image (`--image`) the file system is the kernel\'s own trees only: /dev, /proc and /sys; other paths answer ENOENT, and creating a file EROFS.',
  'Pending signals are per process, not per thread (blocked masks and alternate stacks are per thread).',
];

export type Status = 'implemented' | 'partial' | 'refused' | 'not implemented';

export interface SyscallRow {
  nr: number;
  name: string;
  status: Status;
  notes: string;
}

/** Every x86-64 system call, by number, with its status and notes, given the calls that have handlers. */
export function syscallRows(implemented: Iterable<string>): SyscallRow[] {
  const have = new Set(implemented);
  const cov = COVERAGE as Record<string, Coverage | undefined>;
  return Object.entries(SYS)
    .sort((a, b) => a[1] - b[1])
    .map(([name, nr]): SyscallRow => {
      const c = cov[name];
      if (!have.has(name)) return { nr, name, status: 'not implemented', notes: c?.status === 'not-implemented' ? c.note : '' };
      if (c?.status === 'partial') return { nr, name, status: 'partial', notes: c.missing };
      if (c?.status === 'refused') return { nr, name, status: 'refused', notes: `${c.errno}: ${c.why}` };
      return { nr, name, status: 'implemented', notes: '' };
    });
}

/** What in COVERAGE disagrees with the code: one line per problem (empty when all is consistent). */
export function coverageProblems(implemented: Iterable<string>): string[] {
  const have = new Set(implemented);
  const problems: string[] = [];
  for (const name of have) if (!(name in SYS)) problems.push(`${name} has a handler but is no x86-64 system call in src/abi/sysno.ts`);
  for (const [name, c] of Object.entries(COVERAGE as Record<string, Coverage>)) {
    if (!(name in SYS)) problems.push(`${name}: annotated in src/kernel/coverage.ts but no x86-64 system call of src/abi/sysno.ts`);
    else if (c.status === 'not-implemented' && have.has(name)) problems.push(`${name}: annotated "not-implemented" in src/kernel/coverage.ts but it has a handler now: remove or change the entry`);
    else if (c.status !== 'not-implemented' && !have.has(name)) problems.push(`${name}: annotated "${c.status}" in src/kernel/coverage.ts but it has no handler (it answers ENOSYS)`);
    const text = c.status === 'partial' ? c.missing : c.status === 'refused' ? c.why : c.note;
    if (!text.trim()) problems.push(`${name}: annotation in src/kernel/coverage.ts says nothing`);
  }
  return problems;
}

const STATUS_ORDER: Status[] = ['implemented', 'partial', 'refused', 'not implemented'];

function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** docs/syscalls.md, from the calls that have handlers (kernel.ts implementedSyscalls()) and COVERAGE. */
export function renderSyscallsDoc(implemented: Iterable<string>): string {
  const rows = syscallRows(implemented);
  const count = (s: Status): number => rows.filter((r) => r.status === s).length;
  const numbers = rows.map((r) => r.nr);
  const ranges: string[] = [];
  for (let i = 0; i < numbers.length; ) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === numbers[j]! + 1) j++;
    ranges.push(`${numbers[i]}..${numbers[j]}`);
    i = j + 1;
  }
  const label: Record<Status, string> = {
    implemented: 'implemented',
    partial: 'partial',
    refused: 'refused',
    'not implemented': 'not implemented (ENOSYS)',
  };
  const out: string[] = [];
  out.push('# System calls');
  out.push('');
  out.push(`Every x86-64 Linux system call (numbers ${ranges.join(' and ')}, as in Linux's arch/x86/entry/syscalls/syscall_64.tbl) and what mapvisor's kernel does with it.`);
  out.push('');
  out.push('**Generated; do not edit.** `npm run docs:syscalls` writes this file (scripts/syscalls-doc.mjs) from the code: the');
  out.push('numbers and names of src/abi/sysno.ts, the handlers the dispatcher has (src/kernel/kernel.ts, `implementedSyscalls()`,');
  out.push('built from the tables in src/kernel/sys/*.ts) and the coverage notes of src/kernel/coverage.ts. `npm test` fails when');
  out.push('this file differs from what the code says, or when a note no longer matches a handler (test/unit/syscalls-doc.test.ts).');
  out.push('');
  out.push('- **implemented**: a handler, with nothing known to be missing (beyond what "Throughout" below says).');
  out.push('- **partial**: a handler, with what is missing in the notes (refused flags and their errno, ignored arguments, simplifications).');
  out.push('- **refused**: a handler that deliberately refuses every use of the call, with the errno and why.');
  out.push('- **not implemented**: no handler: the call answers ENOSYS and is counted (`mapvisor run --stats`).');
  out.push('');
  out.push('Throughout:');
  out.push('');
  for (const t of THROUGHOUT) out.push(`- ${t}`);
  out.push('');
  out.push('## Summary');
  out.push('');
  out.push('| status | system calls |');
  out.push('|---|---:|');
  for (const s of STATUS_ORDER) out.push(`| ${label[s]} | ${count(s)} |`);
  out.push(`| total | ${rows.length} |`);
  out.push('');
  out.push('## Every system call');
  out.push('');
  out.push('| # | name | status | notes |');
  out.push('|---:|---|---|---|');
  for (const r of rows) out.push(`| ${r.nr} | ${r.name} | ${label[r.status]} | ${cell(r.notes)} |`);
  out.push('');
  return out.join('\n');
}
