/**
 * Running out of space (issue 15): a seeded random model test of create/write/append/truncate/
 * fallocate/mkdir/unlink/rename/link/symlink/chmod/utimes/rmdir on small images that fill up. A write that runs out of space must either
 * write what fits and return the short count (the size covering it), or fail with ENOSPC having
 * allocated nothing; every other operation that fails with ENOSPC must leave the image as it was.
 * At checkpoints and at the end `e2fsck -fn` must exit 0 and every file must read back as the model
 * says (through the module and, at the end, through `debugfs rdump`).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MappedImage } from '../../src/storage/blockdev.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { FsError } from '../../src/storage/ext4/errors.js';
import { debugfs, fsckCheck, mkfs, type MkfsOptions } from '../../src/storage/ext4/mkimage.js';
import { E } from '../../src/abi/errno.js';

let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-ext4-enospc-'));
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/** xorshift32: a small PRNG with a fixed seed. */
function rng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return Math.floor((s / 2 ** 32) * n);
  };
}

function payload(r: (n: number) => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = r(2 ** 31) | 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const isEnospc = (x: unknown): boolean => x instanceof FsError && x.errno === E.ENOSPC;

/** A file's node is shared by all its hard links (the model's inode). */
type FileNode = { kind: 'file'; data: Buffer; mode: number; mtime: { sec: number; nsec: number } | null };
type Node = FileNode | { kind: 'dir' } | { kind: 'symlink'; target: string };

const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
const baseOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);

interface Figures {
  ops: number;
  writes: number;
  enospc: number;
  shortWrites: number;
  checks: number;
  /** Operations of the kinds added later: fallocate, link, symlink, chmod, utimes. */
  others: number;
}

function run(opts: MkfsOptions, seed: number, nops: number): Figures {
  const img = path.join(tmp, `enospc-${seed}.img`);
  mkfs(img, opts);
  const r = rng(seed);
  const nodes = new Map<string, Node>([['', { kind: 'dir' }]]);
  const fig: Figures = { ops: 0, writes: 0, enospc: 0, shortWrites: 0, checks: 0, others: 0 };
  const files = (): string[] => [...nodes.entries()].filter(([, n]) => n.kind === 'file').map(([p]) => p);
  const dirs = (): string[] => [...nodes.entries()].filter(([, n]) => n.kind === 'dir').map(([p]) => p);
  const pick = <T>(a: T[]): T | undefined => (a.length ? a[r(a.length)] : undefined);
  let serial = 0;

  const dev = MappedImage.open(img, 'rw');
  try {
    const e = Ext4.open(dev);
    const bs = e.geo.blockSize;
    const ino = (p: string): number => (p === '' ? e.rootIno : e.resolve('/' + p, { followFinal: false }));
    /** Runs an op; ENOSPC is counted and the model left alone. */
    const attempt = (f: () => void): void => {
      try {
        f();
      } catch (x) {
        if (!isEnospc(x)) throw x;
        fig.enospc++;
      }
    };
    const readBack = (what: string): void => {
      for (const [p, n] of nodes) {
        if (n.kind === 'symlink') {
          assert.equal(Buffer.from(e.readlink(ino(p))).toString('latin1'), n.target, `target of ${p} (${what})`);
          continue;
        }
        if (n.kind !== 'file') continue;
        const i = ino(p);
        const st = e.stat(i);
        assert.equal(st.size, n.data.length, `size of ${p} (${what})`);
        assert.equal(st.mode & 0o7777, n.mode, `mode of ${p} (${what})`);
        if (n.mtime) assert.deepEqual({ sec: st.mtime.sec, nsec: st.mtime.nsec }, n.mtime, `mtime of ${p} (${what})`);
        const buf = Buffer.alloc(n.data.length);
        e.read(i, 0, buf);
        assert.ok(buf.equals(n.data), `contents of ${p} (${what})`);
      }
    };
    const checkpoint = (what: string): void => {
      e.sync();
      const c = fsckCheck(img);
      fig.checks++;
      assert.equal(c.status, 0, `e2fsck -fn (seed ${seed}, ${what}):\n${c.output}`);
      readBack(what);
    };
    const writeAt = (p: string, off: number, data: Buffer): void => {
      const n = nodes.get(p) as FileNode;
      fig.writes++;
      let wrote = 0;
      try {
        wrote = e.write(ino(p), off, data);
      } catch (x) {
        if (!isEnospc(x)) throw x;
        fig.enospc++;
        return;
      }
      assert.ok(wrote > 0 && wrote <= data.length, `write count ${wrote} of ${data.length}`);
      if (wrote < data.length) {
        fig.shortWrites++;
        fig.enospc++;
      }
      const merged = Buffer.alloc(Math.max(n.data.length, off + wrote));
      n.data.copy(merged);
      data.copy(merged, off, 0, wrote);
      n.data = merged;
      n.mtime = null; // a write sets it to now
    };

    for (let op = 0; op < nops; op++) {
      fig.ops++;
      const k = r(120);
      if (k < 15) {
        const d = pick(dirs())!;
        const p = `${d}/f${serial++}`.replace(/^\//, '');
        attempt(() => {
          e.create(ino(d), baseOf(p), 0o644);
          nodes.set(p, { kind: 'file', data: Buffer.alloc(0), mode: 0o644, mtime: null });
        });
      } else if (k < 45) {
        const p = pick(files());
        if (!p) continue;
        const n = nodes.get(p) as FileNode;
        writeAt(p, r(n.data.length + 64 * 1024), payload(r, 1 + r(64 * 1024)));
      } else if (k < 62) {
        const p = pick(files());
        if (!p) continue;
        const n = nodes.get(p) as FileNode;
        writeAt(p, n.data.length, payload(r, 1 + r(r(2) ? bs : 64 * 1024)));
      } else if (k < 69) {
        const p = pick(files());
        if (!p) continue;
        const n = nodes.get(p) as FileNode;
        const size = r(3) === 0 ? r(n.data.length + 1) : n.data.length + r(32 * 1024);
        attempt(() => {
          e.truncate(ino(p), size);
          const t = Buffer.alloc(size);
          n.data.copy(t, 0, 0, Math.min(size, n.data.length));
          n.data = t;
          n.mtime = null;
        });
      } else if (k < 77) {
        const d = pick(dirs())!;
        if (d.split('/').length > 4) continue;
        const p = `${d}/d${serial++}`.replace(/^\//, '');
        attempt(() => {
          e.mkdir(ino(d), baseOf(p), 0o755);
          nodes.set(p, { kind: 'dir' });
        });
      } else if (k < 84) {
        const p = pick(files());
        if (!p) continue;
        attempt(() => {
          e.unlink(ino(dirOf(p)), baseOf(p));
          nodes.delete(p);
        });
      } else if (k < 95) {
        const from = pick(files());
        if (!from) continue;
        const d = pick(dirs())!;
        const to = `${d}/r${serial++}`.replace(/^\//, '');
        attempt(() => {
          e.rename(ino(dirOf(from)), baseOf(from), ino(d), baseOf(to));
          nodes.set(to, nodes.get(from)!);
          nodes.delete(from);
        });
      } else if (k >= 100) {
        // The later kinds (fallocate, link, symlink, chmod, utimes): 20 in 120.
        fig.others++;
        const kind = k - 100;
        if (kind < 6) {
          // fallocate: blocks for [off, off+len), the size grown to cover them unless KEEP_SIZE; the
          // contents never change (new blocks read as zeros). Running out of space changes nothing
          // the program can read (blocks allocated before the stop stay, as on Linux).
          const p = pick(files());
          if (!p) continue;
          const n = nodes.get(p) as FileNode;
          const off = r(n.data.length + 64 * 1024);
          const len = 1 + r(64 * 1024);
          const keep = r(2) === 0;
          n.mtime = null; // (the size may change before a shortfall is known)
          attempt(() => {
            try {
              e.fallocate(ino(p), off, len, keep);
            } catch (x) {
              // Block-mapped files (ext2) cannot hold unwritten blocks: EOPNOTSUPP, nothing changed.
              if (x instanceof FsError && x.errno === E.EOPNOTSUPP && opts.type === 'ext2') return;
              throw x;
            }
            if (!keep && off + len > n.data.length) {
              const t = Buffer.alloc(off + len);
              n.data.copy(t);
              n.data = t;
            }
          });
        } else if (kind < 10) {
          const from = pick(files());
          if (!from) continue;
          const d = pick(dirs())!;
          const to = `${d}/l${serial++}`.replace(/^\//, '');
          attempt(() => {
            e.link(ino(from), ino(d), baseOf(to));
            nodes.set(to, nodes.get(from)!); // the same inode
          });
        } else if (kind < 14) {
          const d = pick(dirs())!;
          const p = `${d}/s${serial++}`.replace(/^\//, '');
          // Short targets live in the inode; long ones take a block.
          const len = r(3) === 0 ? 60 + r(Math.min(bs, 4096) - 61) : 1 + r(59);
          const target = Array.from({ length: len }, () => 'abcdefghij/._-'[r(14)]!).join('');
          attempt(() => {
            e.symlink(ino(d), baseOf(p), target);
            nodes.set(p, { kind: 'symlink', target });
          });
        } else if (kind < 17) {
          const p = pick(files());
          if (!p) continue;
          const mode = r(0o10000);
          e.chmod(ino(p), mode);
          (nodes.get(p) as FileNode).mode = mode;
        } else {
          const p = pick(files());
          if (!p) continue;
          const mtime = { sec: r(2 ** 31), nsec: r(1_000_000_000) };
          e.utimes(ino(p), { mtime });
          (nodes.get(p) as FileNode).mtime = mtime;
        }
      } else {
        const empty = dirs().filter((d) => d !== '' && ![...nodes.keys()].some((q) => q.startsWith(d + '/')));
        const p = pick(empty);
        if (!p) continue;
        attempt(() => {
          e.rmdir(ino(dirOf(p)), baseOf(p));
          nodes.delete(p);
        });
      }
      if (op % 250 === 249) checkpoint(`after op ${op + 1}`);
    }
    e.close();
    checkpoint('at the end');
  } finally {
    dev.close();
  }

  // The same through the real tools.
  const out = fs.mkdtempSync(path.join(tmp, 'rdump-'));
  debugfs(img, `rdump / ${out}`);
  for (const [p, n] of nodes) {
    if (n.kind === 'symlink') assert.equal(fs.readlinkSync(path.join(out, p)), n.target, `debugfs target of ${p}`);
    if (n.kind !== 'file') continue;
    assert.ok(fs.readFileSync(path.join(out, p)).equals(n.data), `debugfs contents of ${p}`);
  }
  fs.rmSync(out, { recursive: true, force: true });
  return fig;
}

function report(what: string, figs: Figures[]): void {
  const sum = (k: keyof Figures) => figs.reduce((a, f) => a + f[k], 0);
  console.log(`# ${what}: ${figs.length} seeds, ${sum('ops')} ops (${sum('others')} fallocate/link/symlink/chmod/utimes), ${sum('writes')} writes, ${sum('enospc')} ENOSPC hits (${sum('shortWrites')} short writes), ${sum('checks')} e2fsck runs, all clean`);
  for (const f of figs) assert.ok(f.enospc > 0, 'the image fills up');
}

test('ENOSPC: 6 MiB ext4 with 1 KiB blocks, three seeds', () => {
  report('1 KiB ext4', [1, 2, 3].map((s) => run({ size: '6M', blockSize: 1024 }, s, 1500)));
});

test('ENOSPC: 6 MiB ext4 with 4 KiB blocks and metadata_csum', () => {
  report('4 KiB ext4', [4, 5].map((s) => run({ size: '6M', blockSize: 4096, features: 'metadata_csum' }, s, 1500)));
});

test('ENOSPC: 6 MiB ext2 (block maps, 1 KiB blocks)', () => {
  report('1 KiB ext2', [6].map((s) => run({ size: '6M', blockSize: 1024, type: 'ext2' }, s, 3000)));
});
