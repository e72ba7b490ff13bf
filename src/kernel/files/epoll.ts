/** An epoll instance: the interest list. Waiting is in sys/io.ts (epoll_wait), on poll's readiness. */
import { S_IFREG, type StatInfo } from '../../abi/stat.js';
import { POLLIN, type FileOps } from './file.js';

export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
export const EPOLLEXCLUSIVE = 1 << 28;
export const EPOLLWAKEUP = 1 << 29;
export const EPOLLONESHOT = 1 << 30;
export const EPOLLET = 1 << 31;

export interface Interest {
  events: number;
  data: bigint;
  /** EPOLLONESHOT: reported once, then disabled until EPOLL_CTL_MOD. */
  disabled: boolean;
}

export class EpollFile implements FileOps {
  readonly kind = 'epoll';
  readonly name = 'anon_inode:[eventpoll]';
  readonly interest = new Map<number, Interest>();
  /** Set by epoll_wait: is any watched fd ready (for polling an epoll fd itself)? */
  readyProbe: (() => boolean) | null = null;

  /** Set while this epoll's readiness is computed: a cycle made through dup'ed fds ends there. */
  private probing = false;

  pollEvents(): number {
    if (this.probing) return 0;
    this.probing = true;
    try {
      return this.readyProbe?.() ? POLLIN : 0;
    } finally {
      this.probing = false;
    }
  }

  stat(): StatInfo {
    return { dev: 0x0e, ino: 3, nlink: 1, mode: S_IFREG | 0o600, uid: 0, gid: 0, rdev: 0, size: 0, blksize: 4096, blocks: 0, atime: [0, 0], mtime: [0, 0], ctime: [0, 0] };
  }
}
