/** Linux x86-64 signal numbers, names and default actions (signal(7)). */
export const SIG = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
} as const;
export const NSIG = 64;

const names = new Map<number, string>(Object.entries(SIG).map(([n, v]) => [v, n]));
export function signalName(sig: number): string {
  if (names.has(sig)) return names.get(sig)!;
  if (sig >= 32 && sig <= NSIG) return `SIGRT${sig - 32}`;
  return `signal ${sig}`;
}

export type DefaultAction = 'term' | 'core' | 'ignore' | 'stop' | 'continue';
const IGNORE = new Set<number>([SIG.SIGCHLD, SIG.SIGURG, SIG.SIGWINCH]);
const CORE = new Set<number>([SIG.SIGQUIT, SIG.SIGILL, SIG.SIGTRAP, SIG.SIGABRT, SIG.SIGBUS, SIG.SIGFPE, SIG.SIGSEGV, SIG.SIGXCPU, SIG.SIGXFSZ, SIG.SIGSYS]);
const STOP = new Set<number>([SIG.SIGSTOP, SIG.SIGTSTP, SIG.SIGTTIN, SIG.SIGTTOU]);
export function defaultAction(sig: number): DefaultAction {
  if (IGNORE.has(sig)) return 'ignore';
  if (CORE.has(sig)) return 'core';
  if (STOP.has(sig)) return 'stop';
  if (sig === SIG.SIGCONT) return 'continue';
  return 'term';
}
