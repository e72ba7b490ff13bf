#!/usr/bin/env node
// Hostile-image fuzzer for the ext4 driver (issue 15, second bullet).
//
// Seed images are made with mkfs.ext4 -d from a small staged tree (files of various sizes, holes, a
// fragmented file with an extent tree of depth 1, nested directories, an htree-indexed directory,
// symlinks incl. loops) in the feature sets mapvisor accepts (1 KiB blocks without checksums, 4 KiB
// with metadata_csum, ext2 block maps, a clean journal) and are mutated from a seeded PRNG: superblock
// fields and features (some must be refused), group descriptors, inodes, extent trees (self loops,
// overlaps, out-of-range blocks, absurd depth), directory entries, htree roots, symlinks, truncation.
//
// Each case runs in a worker child process with a time limit and a heap limit:
//   (a) through the ext4 module: open read-only, walk every directory, stat/read/readlink everything,
//       check the image is byte-for-byte unchanged; then on a writable copy (with guard bytes around
//       it) walk again, create + write + unlink a file, mkdir + rmdir, sync. Every outcome must be
//       success or an FsError / MapvisorError with a one-line message; a refused image must be
//       unchanged; a must-refuse mutation must be refused.
//   (b) for a sample (--cli N per 100 cases), through the CLI: mapvisor run --image COPY[,ro|,cow]
//       --timeout 10 -- /bin/busybox find /. Exit must be the program's, or 125/126/127/128+N with
//       exactly one `mapvisor:` line; never a stack trace or "internal error"; ,ro and ,cow leave the
//       image unchanged.
//
// Usage: node scripts/fuzz-images.mjs [--seeds A..B] [--minutes M] [--cli PERCENT] [--jobs N]
//                                      [--json] [--save DIR] [--replay FILE...]
// Prints counts (cases, outcomes by kind, findings); exits 1 if there is any finding.
import { fork, spawnSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const dist = (p) => pathToFileURL(path.join(ROOT, 'dist/src', p)).href;

const CASE_TIMEOUT_MS = 20_000;
const RSS_LIMIT = 1536 << 20; // a case that grows the worker past this is a finding
const HEAP_MB = 1024;

// ------------------------------------------------------------------------------------------ PRNG

/** mulberry32: small, seeded, deterministic. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    f: next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
    u32: () => (next() * 4294967296) >>> 0,
  };
  return r;
}

/** Interesting replacement values for a field of `bits` bits whose current value is `v`. */
function interesting(r, v, bits) {
  const max = bits === 32 ? 0xffffffff : bits === 16 ? 0xffff : 0xff;
  const vals = [0, 1, 2, max, max - 1, (max >>> 1) + 1, max >>> 1, v + 1, v - 1, v * 2, v + 1000, r.u32() & max, v ^ (1 << r.int(bits)), 7, 8, 11, 12, 1024, 4096, 65535, 65536];
  return (r.pick(vals) >>> 0) & max;
}

// ------------------------------------------------------------------------------------- seed images

function sh(cmd, args) {
  const p = spawnSync(cmd, args, { encoding: 'utf8' });
  if (p.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${p.stderr}`);
  return p.stdout;
}

function stageTree(dir, withBusybox) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  let s = 1;
  const bytes = (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
    return b;
  };
  for (const n of [0, 1, 100, 1023, 1025, 4097, 13 * 1024, 70_000, 300_000]) fs.writeFileSync(path.join(dir, `size-${n}`), bytes(n));
  // Holes: hole, data, hole, data, hole at the end.
  let fd = fs.openSync(path.join(dir, 'sparse'), 'w');
  fs.writeSync(fd, bytes(3000), 0, 3000, 200_000);
  fs.writeSync(fd, bytes(100), 0, 100, 900_000);
  fs.ftruncateSync(fd, 1_200_000);
  fs.closeSync(fd);
  // Many extents (more than the 4 in the inode): an extent tree of depth 1 with an external leaf.
  fd = fs.openSync(path.join(dir, 'frag'), 'w');
  for (let i = 0; i < 12; i++) fs.writeSync(fd, bytes(1024), 0, 1024, i * 16384);
  fs.closeSync(fd);
  let d = dir;
  for (let i = 0; i < 4; i++) {
    d = path.join(d, `level${i}`);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'file'), `depth ${i}\n`);
  }
  fs.mkdirSync(path.join(dir, 'empty'));
  // A directory large enough to be htree-indexed (e2fsck -D indexes it).
  fs.mkdirSync(path.join(dir, 'big'));
  for (let i = 0; i < 220; i++) fs.writeFileSync(path.join(dir, 'big', `entry-with-a-longish-name-${i}`), `${i}`);
  fs.symlinkSync('size-100', path.join(dir, 'fast-link'));
  fs.symlinkSync('level0/level1/../level1/' + 'z'.repeat(120), path.join(dir, 'slow-link'));
  fs.symlinkSync('level0/level1', path.join(dir, 'dir-link'));
  fs.symlinkSync('loop-b', path.join(dir, 'loop-a'));
  fs.symlinkSync('loop-a', path.join(dir, 'loop-b'));
  fs.symlinkSync('self', path.join(dir, 'self'));
  fs.symlinkSync('/nowhere', path.join(dir, 'dangling'));
  if (withBusybox) {
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.copyFileSync(path.join(ROOT, '.cache', 'busybox'), path.join(dir, 'bin', 'busybox'));
    fs.chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  }
}

/** Feature sets mapvisor accepts. */
export const CONFIGS = {
  plain1k: { bs: 1024, O: '^metadata_csum,^64bit,^has_journal', size: '6M' },
  csum4k: { bs: 4096, O: 'metadata_csum,64bit,^has_journal', size: '12M' },
  ext2: { bs: 1024, O: '^has_journal', t: 'ext2', size: '6M' },
  journal1k: { bs: 1024, O: '^metadata_csum,^64bit,has_journal', size: '8M', extra: ['-J', 'size=1'] },
};

function makeSeed(dir, name, withBusybox) {
  const c = CONFIGS[name];
  const tree = path.join(dir, withBusybox ? 'tree-bb' : 'tree');
  if (!fs.existsSync(tree)) stageTree(tree, withBusybox);
  const img = path.join(dir, `${name}${withBusybox ? '-bb' : ''}.img`);
  const size = withBusybox ? (c.bs === 4096 ? '16M' : '10M') : c.size;
  const args = ['-q', '-F', '-b', String(c.bs), '-O', c.O, '-E', 'lazy_itable_init=0', '-d', tree, ...(c.t ? ['-t', c.t] : []), ...(c.extra ?? []), img, size];
  sh('mkfs.ext4', args);
  const fsck = spawnSync('e2fsck', ['-fyD', img], { encoding: 'utf8' });
  if (fsck.status > 1) throw new Error(`e2fsck -fyD ${img}: ${fsck.stdout}`);
  return img;
}

// ------------------------------------------------------------------------------------ image layout

/** Locations of the metadata of a pristine image, found with the ext4 module. */
async function layout(buf) {
  const { Ext4 } = await import(dist('storage/ext4/fs.js'));
  const { BufferDev } = await import(dist('storage/blockdev.js'));
  const { descBlock } = await import(dist('storage/ext4/groups.js'));
  const e = Ext4.open(new BufferDev(new Uint8Array(buf), { readOnly: true }), { readOnly: true });
  const g = e.geo;
  const bs = g.blockSize;
  const gdOff = (n) => descBlock(g, n) * bs + (n % g.descPerBlock) * g.descSize;
  const itable = (n) => {
    const o = gdOff(n);
    return (buf.readUInt32LE(o + 8) + (g.descSize >= 64 ? buf.readUInt32LE(o + 0x28) * 2 ** 32 : 0)) * bs;
  };
  const inodeOff = (ino) => itable(Math.floor((ino - 1) / g.inodesPerGroup)) + ((ino - 1) % g.inodesPerGroup) * g.inodeSize;
  const inodes = []; // {ino, off, kind, path}
  const dirBlocks = []; // {ino, off, lblk}
  const extentBlocks = []; // {ino, off}
  const seen = new Set();
  const walk = (ino, p) => {
    for (const ent of e.readdir(ino).entries) {
      if (ent.name === '.' || ent.name === '..' || seen.has(ent.ino)) continue;
      seen.add(ent.ino);
      const st = e.stat(ent.ino);
      const fmt = st.mode & 0o170000;
      const kind = fmt === 0o040000 ? 'dir' : fmt === 0o120000 ? 'symlink' : 'file';
      const child = `${p}/${ent.name}`;
      inodes.push({ ino: ent.ino, off: inodeOff(ent.ino), kind, path: child });
      if (kind === 'dir') walk(ent.ino, child);
    }
  };
  inodes.push({ ino: 2, off: inodeOff(2), kind: 'dir', path: '/' });
  walk(2, '');
  for (const it of inodes) {
    const raw = buf.subarray(it.off, it.off + g.inodeSize);
    const flags = raw.readUInt32LE(0x20);
    it.extents = (flags & 0x80000) !== 0 && raw.readUInt16LE(0x28) === 0xf30a;
    it.htree = (flags & 0x1000) !== 0;
    it.generation = raw.readUInt32LE(0x64);
    if (it.kind === 'dir') {
      const size = e.stat(it.ino).size;
      for (const run of e.fileRuns(it.ino, 0, size)) {
        if (run.physical == null) continue;
        for (let o = 0; o < run.length; o += bs) dirBlocks.push({ ino: it.ino, off: run.physical + o, lblk: Math.floor((run.logical ?? 0) / bs) + o / bs, htree: it.htree, generation: it.generation });
      }
    }
    if (it.extents && raw.readUInt16LE(0x28 + 6) > 0) {
      const n = raw.readUInt16LE(0x28 + 2);
      for (let i = 0; i < n; i++) {
        const at = 0x28 + 12 + i * 12;
        const blk = raw.readUInt32LE(at + 4) + raw.readUInt16LE(at + 8) * 2 ** 32;
        extentBlocks.push({ ino: it.ino, off: blk * bs, generation: it.generation });
      }
    }
  }
  const gds = [];
  for (let n = 0; n < g.groupCount; n++) gds.push(gdOff(n));
  return {
    bs,
    inodeSize: g.inodeSize,
    csum: g.metadataCsum,
    csumSeed: g.csumSeed,
    descSize: g.descSize,
    groupCount: g.groupCount,
    gds,
    inodes,
    dirBlocks,
    extentBlocks,
    geo: g,
  };
}

// ---------------------------------------------------------------------------------------- mutations

const SB_FIELDS = [
  [0x00, 32, 's_inodes_count'], [0x04, 32, 's_blocks_count_lo'], [0x0c, 32, 's_free_blocks_count_lo'], [0x10, 32, 's_free_inodes_count'],
  [0x14, 32, 's_first_data_block'], [0x18, 32, 's_log_block_size'], [0x1c, 32, 's_log_cluster_size'], [0x20, 32, 's_blocks_per_group'],
  [0x24, 32, 's_clusters_per_group'], [0x28, 32, 's_inodes_per_group'], [0x3a, 16, 's_state'], [0x4c, 32, 's_rev_level'],
  [0x54, 32, 's_first_ino'], [0x58, 16, 's_inode_size'], [0x5c, 32, 's_feature_compat'], [0x60, 32, 's_feature_incompat'],
  [0x64, 32, 's_feature_ro_compat'], [0xce, 16, 's_reserved_gdt_blocks'], [0xe0, 32, 's_journal_inum'], [0xfc, 8, 's_def_hash_version'],
  [0xfe, 16, 's_desc_size'], [0x104, 32, 's_first_meta_bg'], [0x150, 32, 's_blocks_count_hi'], [0x15c, 16, 's_min_extra_isize'],
  [0x15e, 16, 's_want_extra_isize'], [0x160, 32, 's_flags'], [0x174, 8, 's_log_groups_per_flex'], [0x175, 8, 's_checksum_type'],
  [0x268, 32, 's_checksum_seed'], [0x24c, 32, 's_backup_bgs[0]'], [0x250, 32, 's_backup_bgs[1]'],
];
// Feature bits that must make open() refuse the image.
const MUST_REFUSE = [
  ['incompat', 0x0004, 'needs_recovery'], ['incompat', 0x0001, 'compression'], ['incompat', 0x0008, 'journal_dev'], ['incompat', 0x0100, 'mmp'],
  ['incompat', 0x0400, 'ea_inode'], ['incompat', 0x1000, 'dirdata'], ['incompat', 0x10000, 'encrypt'], ['incompat', 0x20000, 'casefold'],
  ['incompat', 0x40000000, 'unknown incompat bit 30'], ['incompat', 0x800, 'unknown incompat bit 11'], ['ro_compat', 0x10000, 'orphan_present'], ['ro_compat', 0x0200, 'bigalloc'],
];
const INODE_FIELDS = [
  [0x00, 16, 'i_mode'], [0x04, 32, 'i_size_lo'], [0x6c, 32, 'i_size_high'], [0x1a, 16, 'i_links_count'], [0x1c, 32, 'i_blocks_lo'],
  [0x74, 16, 'i_blocks_high'], [0x20, 32, 'i_flags'], [0x68, 32, 'i_file_acl_lo'], [0x80, 16, 'i_extra_isize'], [0x64, 32, 'i_generation'],
];
const BAD_MODES = [0o000000, 0o010644, 0o020644, 0o060644, 0o140755, 0o170777, 0o030000, 0o120777, 0o040755, 0o100644, 0o050000, 0o110000];
const FLAG_BITS = [0x80000 /* EXTENTS */, 0x1000 /* INDEX */, 0x10000000 /* INLINE_DATA */, 0x40000 /* HUGE_FILE */, 0x800 /* ENCRYPT */, 0x40000000 /* CASEFOLD */, 0x20000 /* EOFBLOCKS */, 0x200000 /* EA_INODE */];

function setField(b, off, bits, v) {
  if (off + bits / 8 > b.length) return;
  if (bits === 32) b.writeUInt32LE(v >>> 0, off);
  else if (bits === 16) b.writeUInt16LE(v & 0xffff, off);
  else b[off] = v & 0xff;
}
function getField(b, off, bits) {
  if (off + bits / 8 > b.length) return 0;
  return bits === 32 ? b.readUInt32LE(off) : bits === 16 ? b.readUInt16LE(off) : b[off];
}

/**
 * Mutates `b` (a copy of the seed image) in place; returns { what: [...descriptions], mustRefuse,
 * truncateTo, reseal: [...] }. `L` is the layout of the pristine image.
 */
function mutate(r, b, L) {
  const what = [];
  const reseal = { sb: false, inodes: new Set(), leaves: [], gds: new Set() };
  let mustRefuse = null;
  let truncateTo = null;
  const pickInode = (pred = () => true) => {
    const xs = L.inodes.filter(pred);
    return xs.length ? r.pick(xs) : null;
  };
  const kinds = ['sb', 'sb', 'gd', 'inode', 'inode', 'inode', 'extent', 'extent', 'dirent', 'dirent', 'dirent', 'htree', 'htree', 'symlink', 'bitflip', 'truncate', 'refuse', 'blockmap', 'blockmap'];
  const n = 1 + (r.chance(0.6) ? 0 : r.int(6));
  for (let m = 0; m < n; m++) {
    const kind = r.pick(kinds);
    switch (kind) {
      case 'sb': {
        const [off, bits, name] = r.pick(SB_FIELDS);
        const v = getField(b, 1024 + off, bits);
        const nv = name.startsWith('s_feature') ? (v ^ (1 << r.int(32))) >>> 0 : interesting(r, v, bits);
        setField(b, 1024 + off, bits, nv);
        reseal.sb = true;
        what.push(`sb ${name} ${v} -> ${nv}`);
        break;
      }
      case 'refuse': {
        const [field, bit, name] = r.pick(MUST_REFUSE);
        const off = 1024 + (field === 'incompat' ? 0x60 : 0x64);
        b.writeUInt32LE((b.readUInt32LE(off) | bit) >>> 0, off);
        reseal.sb = true;
        mustRefuse = name;
        what.push(`sb set feature ${name} (must be refused)`);
        break;
      }
      case 'gd': {
        const g = r.int(L.groupCount);
        const fields = [[0x00, 32, 'block_bitmap'], [0x04, 32, 'inode_bitmap'], [0x08, 32, 'inode_table'], [0x0c, 16, 'free_blocks'], [0x0e, 16, 'free_inodes'], [0x10, 16, 'used_dirs'], [0x12, 16, 'flags'], [0x1c, 16, 'itable_unused']];
        if (L.descSize >= 64) fields.push([0x20, 32, 'block_bitmap_hi'], [0x28, 32, 'inode_table_hi']);
        const [off, bits, name] = r.pick(fields);
        const at = L.gds[g] + off;
        const v = getField(b, at, bits);
        const nv = interesting(r, v, bits);
        setField(b, at, bits, nv);
        if (r.chance(0.8)) reseal.gds.add(g);
        what.push(`gd ${g} ${name} ${v} -> ${nv}`);
        break;
      }
      case 'inode': {
        const it = pickInode();
        const [off, bits, name] = r.pick(INODE_FIELDS);
        const v = getField(b, it.off + off, bits);
        let nv;
        if (name === 'i_mode') nv = (r.pick(BAD_MODES) | (r.chance(0.3) ? r.int(0o7777) : v & 0o7777)) & 0xffff;
        else if (name === 'i_flags') nv = (v ^ r.pick(FLAG_BITS)) >>> 0;
        else nv = interesting(r, v, bits);
        setField(b, it.off + off, bits, nv);
        if (r.chance(0.85)) reseal.inodes.add(it.ino);
        what.push(`inode ${it.ino} (${it.path}) ${name} ${v} -> ${nv}`);
        break;
      }
      case 'extent': {
        const it = pickInode((x) => x.extents);
        if (!it) break;
        const base = it.off + 0x28;
        const ext = L.extentBlocks.filter((x) => x.ino === it.ino);
        const sub = r.int(8);
        // Header: magic(2) entries(2) max(2) depth(2) gen(4); entries 12 bytes each.
        if (sub === 0) {
          const d = r.pick([1, 2, 5, 6, 32, 0xffff]);
          b.writeUInt16LE(d, base + 6);
          what.push(`inode ${it.ino} (${it.path}) extent depth -> ${d}`);
        } else if (sub === 1) {
          const c = r.pick([0, 5, 340, 0xffff]);
          b.writeUInt16LE(c, base + 2);
          what.push(`inode ${it.ino} (${it.path}) extent entries -> ${c}`);
        } else if (sub === 2) {
          // Out-of-range start or huge length in the first entry of the root.
          const s = r.pick([0, 1, L.geo.blocksCount - 1, L.geo.blocksCount, 0xfffffff0, r.u32()]);
          b.writeUInt32LE(s >>> 0, base + 12 + 8);
          if (r.chance(0.5)) b.writeUInt16LE(r.pick([0x7fff, 0x8000, 0xffff, 1000]), base + 12 + 4);
          what.push(`inode ${it.ino} (${it.path}) extent[0] start -> ${s} len ${b.readUInt16LE(base + 12 + 4)}`);
        } else if (sub === 3) {
          // Overlap: the second entry copies the first (same logical block), or entries out of order.
          const cnt = b.readUInt16LE(base + 2);
          if (cnt >= 2) b.copy(b, base + 24, base + 12, base + 24);
          else {
            b.copy(b, base + 24, base + 12, base + 24);
            b.writeUInt16LE(2, base + 2);
          }
          what.push(`inode ${it.ino} (${it.path}) extent[1] := extent[0] (overlap)`);
        } else if (sub === 4) {
          // Root turned into an index whose child is the inode table block holding the inode itself.
          const self = Math.floor(it.off / L.bs);
          b.writeUInt16LE(r.pick([1, 2]), base + 6);
          b.writeUInt32LE(self, base + 12 + 4);
          b.writeUInt16LE(0, base + 12 + 8);
          what.push(`inode ${it.ino} (${it.path}) extent root -> index to own inode table block ${self}`);
        } else if (ext.length && sub <= 6) {
          // A loop: the external block's first index entry points to itself (depth kept > 0).
          const x = r.pick(ext);
          const blk = x.off / L.bs;
          if (sub === 5) {
            b.writeUInt16LE(1, x.off + 6); // leaf claims depth 1
            b.writeUInt32LE(blk, x.off + 12 + 4);
            b.writeUInt16LE(0, x.off + 12 + 8);
            what.push(`inode ${it.ino} (${it.path}) extent block ${blk}: index to itself`);
          } else {
            const v = interesting(r, b.readUInt16LE(x.off + 2), 16);
            b.writeUInt16LE(v, x.off + 2);
            what.push(`inode ${it.ino} (${it.path}) extent block ${blk}: entries -> ${v}`);
          }
          reseal.inodes.add(it.ino);
        } else {
          // Random bytes in i_block.
          for (let k = 0; k < 4; k++) b[base + r.int(60)] = r.int(256);
          what.push(`inode ${it.ino} (${it.path}) random bytes in i_block`);
        }
        if (r.chance(0.85)) reseal.inodes.add(it.ino);
        break;
      }
      case 'blockmap': {
        const it = pickInode((x) => !x.extents && x.kind !== 'symlink');
        if (!it) break;
        const k = r.pick([0, 1, 5, 11, 12, 12, 13, 13, 14]);
        const at = it.off + 0x28 + k * 4;
        const self = Math.floor(it.off / L.bs);
        const old = b.readUInt32LE(at);
        if (k >= 12 && old && r.chance(0.5)) {
          // Inside the indirect block: a pointer to itself, out of range, or to the inode table.
          const o = old * L.bs + r.int(L.bs / 4) * 4;
          const v = r.pick([old, 0xffffffff, L.geo.blocksCount, self, 1]);
          b.writeUInt32LE(v >>> 0, o);
          what.push(`inode ${it.ino} (${it.path}) i_block[${k}] block ${old} entry -> ${v}`);
        } else {
          const v = r.pick([0, 1, self, L.geo.blocksCount, L.geo.blocksCount - 1, 0xffffffff, r.u32()]);
          b.writeUInt32LE(v >>> 0, at);
          what.push(`inode ${it.ino} (${it.path}) i_block[${k}] ${old} -> ${v}`);
        }
        if (r.chance(0.85)) reseal.inodes.add(it.ino);
        break;
      }
      case 'dirent': {
        const blocks = L.dirBlocks.filter((x) => !(x.htree && x.lblk === 0));
        const db = r.pick(blocks);
        // Walk the pristine entries to pick one.
        const offs = [];
        for (let o = 0; o + 8 <= L.bs && offs.length < 500; ) {
          offs.push(o);
          const rl = b.readUInt16LE(db.off + o + 4);
          if (rl < 8) break;
          o += rl;
        }
        const o = db.off + r.pick(offs);
        const sub = r.int(6);
        if (sub === 0) {
          const v = r.pick([0, 1, 4, 7, 9, 12, L.bs, L.bs + 4, 0xfffc, 0xffff, b.readUInt16LE(o + 4) + 4]);
          b.writeUInt16LE(v, o + 4);
          what.push(`dir ${db.ino} block ${db.lblk} entry @${o - db.off} rec_len -> ${v}`);
        } else if (sub === 1) {
          const v = r.pick([0, 255, b[o + 6] + 1, b.readUInt16LE(o + 4) - 7, 200]);
          b[o + 6] = v & 0xff;
          what.push(`dir ${db.ino} block ${db.lblk} entry @${o - db.off} name_len -> ${v & 0xff}`);
        } else if (sub === 2) {
          const v = r.pick([0, 1, 2, 3, 7, 11, L.geo.inodesCount, L.geo.inodesCount + 1, 0xffffffff, db.ino]);
          b.writeUInt32LE(v >>> 0, o);
          what.push(`dir ${db.ino} block ${db.lblk} entry @${o - db.off} inode -> ${v}`);
        } else if (sub === 3) {
          const v = r.pick([0, 1, 2, 7, 8, 0xff]);
          b[o + 7] = v;
          what.push(`dir ${db.ino} block ${db.lblk} entry @${o - db.off} file_type -> ${v}`);
        } else if (sub === 4) {
          // Name bytes: '/', NUL, '..'.
          const nm = r.pick([[0x2f], [0], [0x2e, 0x2e], [0x2e]]);
          for (let i = 0; i < nm.length; i++) b[o + 8 + i] = nm[i];
          if (r.chance(0.5)) b[o + 6] = nm.length;
          what.push(`dir ${db.ino} block ${db.lblk} entry @${o - db.off} name -> ${JSON.stringify(Buffer.from(nm).toString('latin1'))}`);
        } else {
          // The last entry's name runs past the block.
          const last = db.off + offs[offs.length - 1];
          b[last + 6] = 255;
          what.push(`dir ${db.ino} block ${db.lblk} last entry @${last - db.off} name_len 255 (past the block)`);
        }
        if (L.csum && r.chance(0.85)) reseal.leaves.push(db);
        break;
      }
      case 'htree': {
        const roots = L.dirBlocks.filter((x) => x.htree && x.lblk === 0);
        if (!roots.length) break;
        const root = r.pick(roots);
        // dx_root: '.'(12) '..'(rec_len to block end, 12 bytes) then dx_root_info at 0x18:
        // reserved(4) hash_version(1) info_length(1) indirect_levels(1) unused_flags(1); then limit(2) count(2) block(4), entries.
        const sub = r.int(6);
        const o = root.off;
        if (sub === 0) {
          const v = r.pick([3, 4, 5, 6, 0x7f, 0xff]);
          b[o + 0x1c] = v;
          what.push(`htree root ${root.ino} hash_version -> ${v}`);
        } else if (sub === 1) {
          const v = r.pick([0, 7, 9, 0xff]);
          b[o + 0x1d] = v;
          what.push(`htree root ${root.ino} info_length -> ${v}`);
        } else if (sub === 2) {
          const v = r.pick([1, 2, 3, 4, 0xff]);
          b[o + 0x1e] = v;
          what.push(`htree root ${root.ino} indirect_levels -> ${v}`);
        } else if (sub === 3) {
          const v = r.pick([0, 1, 0xffff, b.readUInt16LE(o + 0x20) + 1]);
          b.writeUInt16LE(v, o + 0x20 + r.pick([0, 2]));
          what.push(`htree root ${root.ino} limit/count -> ${v}`);
        } else if (sub === 4) {
          // A child block pointer: to the root itself, out of range, huge.
          const cnt = Math.max(1, b.readUInt16LE(o + 0x22));
          const i = r.int(cnt);
          const at = i === 0 ? o + 0x24 : o + 0x20 + i * 8 + 4;
          const v = r.pick([0, root.lblk, 1, 1000, 0xffffff, 0xffffffff]);
          b.writeUInt32LE(v >>> 0, at);
          what.push(`htree root ${root.ino} entry ${i} block -> ${v}`);
        } else {
          // Hashes out of order.
          const cnt = b.readUInt16LE(o + 0x22);
          if (cnt > 2) b.writeUInt32LE(0, o + 0x20 + (cnt - 1) * 8);
          what.push(`htree root ${root.ino} last hash -> 0 (out of order)`);
        }
        if (L.csum && r.chance(0.5)) reseal.leaves.push(root); // (dx tail checksum is not resealed; verifyChecksums:false reaches the parser)
        break;
      }
      case 'symlink': {
        const it = pickInode((x) => x.kind === 'symlink');
        if (!it) break;
        const sub = r.int(3);
        const raw = b.subarray(it.off, it.off + L.inodeSize);
        const fast = (raw.readUInt32LE(0x20) & 0x80000) === 0 && raw.readUInt32LE(0x04) < 60;
        if (sub === 0 && fast) {
          // Point it at itself (a loop) or through a loop.
          const t = Buffer.from(r.pick([it.path.split('/').pop(), '.', '/loop-a/x', '../../..', it.path + '/x']));
          raw.fill(0, 0x28, 0x28 + 60);
          t.copy(raw, 0x28, 0, Math.min(t.length, 59));
          raw.writeUInt32LE(Math.min(t.length, 59), 0x04);
          what.push(`symlink ${it.ino} (${it.path}) -> ${JSON.stringify(t.toString())}`);
        } else if (sub === 1) {
          const v = r.pick([0, 60, 61, 4095, 4096, 70000, 0xffffffff]);
          raw.writeUInt32LE(v >>> 0, 0x04);
          what.push(`symlink ${it.ino} (${it.path}) size -> ${v}`);
        } else {
          raw[0x28 + r.int(60)] = r.pick([0, 0x2f, 0x2e, 0xff]);
          what.push(`symlink ${it.ino} (${it.path}) byte in target/i_block`);
        }
        if (r.chance(0.85)) reseal.inodes.add(it.ino);
        break;
      }
      case 'bitflip': {
        const regions = [[1024, 1024], ...L.gds.map((o) => [o, L.descSize]), ...L.inodes.map((x) => [x.off, L.inodeSize]), ...L.dirBlocks.map((x) => [x.off, L.bs]), ...L.extentBlocks.map((x) => [x.off, L.bs])];
        const k = 1 + r.int(16);
        for (let i = 0; i < k; i++) {
          const [s, len] = r.pick(regions);
          b[s + r.int(len)] ^= 1 << r.int(8);
        }
        what.push(`${k} bit flips in metadata`);
        break;
      }
      case 'truncate': {
        const cut = r.chance(0.5) ? r.int(b.length) : r.int(b.length / L.bs) * L.bs;
        truncateTo = truncateTo === null ? cut : Math.min(truncateTo, cut);
        what.push(`truncate to ${cut} bytes`);
        break;
      }
    }
  }
  return { what, reseal, mustRefuse, truncateTo };
}

async function applyReseal(b, L, reseal) {
  if (!L.csum && !L.geo.gdtCsum) return;
  const { superblockChecksum } = await import(dist('storage/ext4/superblock.js'));
  const { setInodeChecksum, inodeCsumSeed } = await import(dist('storage/ext4/inode.js'));
  const { sealLeaf, hasTail } = await import(dist('storage/ext4/dirent.js'));
  const { groupDescChecksum } = await import(dist('storage/ext4/groups.js'));
  if (L.csum) {
    for (const ino of reseal.inodes) {
      const it = L.inodes.find((x) => x.ino === ino);
      setInodeChecksum(L.csumSeed, ino, b.subarray(it.off, it.off + L.inodeSize));
    }
    for (const db of reseal.leaves) {
      const blk = b.subarray(db.off, db.off + L.bs);
      if (hasTail(blk)) sealLeaf(inodeCsumSeed(L.csumSeed, db.ino, db.generation), blk);
    }
  }
  for (const g of reseal.gds) {
    const raw = b.subarray(L.gds[g], L.gds[g] + L.descSize);
    raw.writeUInt16LE(groupDescChecksum(L.geo, g, raw), 0x1e);
  }
  if (L.csum && reseal.sb) b.writeUInt32LE(superblockChecksum(b.subarray(1024, 2048)), 1024 + 0x3fc);
}

// ----------------------------------------------------------------------------- the case itself

const sha = (b) => createHash('sha256').update(b).digest('hex');

/** Runs the module steps on `img` (a Buffer); returns { outcome, errors: {kind: n}, finding? }. */
async function exerciseModule(img, { verifyChecksums = true, mustRefuse = null } = {}) {
  const { Ext4 } = await import(dist('storage/ext4/fs.js'));
  const { FsError } = await import(dist('storage/ext4/errors.js'));
  const { MapvisorError } = await import(dist('errors.js'));
  const { BufferDev } = await import(dist('storage/blockdev.js'));
  const errors = {};
  const typed = (x) => x instanceof FsError || x instanceof MapvisorError;
  const note = (x, where) => {
    if (!typed(x)) {
      const err = new Error(`untyped ${x?.constructor?.name ?? typeof x} in ${where}: ${x?.message ?? String(x)}`);
      err.finding = 'untyped-error';
      err.stack0 = x?.stack;
      throw err;
    }
    if (/[\r\n]/.test(x.message)) {
      const err = new Error(`multi-line message in ${where}: ${JSON.stringify(x.message)}`);
      err.finding = 'multiline-message';
      throw err;
    }
    const k = x instanceof FsError ? `FsError:${x.message.split(':')[0]}` : `MapvisorError:${x.code}`;
    errors[k] = (errors[k] ?? 0) + 1;
  };
  const step = (where, fn) => {
    try {
      return fn();
    } catch (x) {
      if (x?.finding) throw x;
      note(x, where);
      return undefined;
    }
  };
  const deadline = Date.now() + CASE_TIMEOUT_MS;
  const walkAll = (e, label) => {
    let budget = 4000;
    const seen = new Set();
    const walk = (ino, p, depth) => {
      if (depth > 24 || budget <= 0 || seen.has(ino)) return;
      seen.add(ino);
      const list = step(`${label} readdir ${p}`, () => e.readdir(ino).entries);
      if (!list) return;
      for (const ent of list) {
        if (--budget <= 0 || Date.now() > deadline) return;
        if (ent.name === '.' || ent.name === '..') continue;
        const child = `${p === '/' ? '' : p}/${ent.name}`;
        step(`${label} lookup ${child}`, () => e.lookup(ino, ent.name));
        step(`${label} resolve ${child}`, () => e.resolve(child));
        const st = step(`${label} stat ${child}`, () => e.stat(ent.ino));
        if (!st) continue;
        const fmt = st.mode & 0o170000;
        if (fmt === 0o040000) walk(ent.ino, child, depth + 1);
        else if (fmt === 0o120000) step(`${label} readlink ${child}`, () => e.readlink(ent.ino));
        else if (fmt === 0o100000) {
          const n = Math.min(st.size, 4 << 20);
          step(`${label} read ${child}`, () => e.read(ent.ino, 0, new Uint8Array(n)));
          if (st.size > n) step(`${label} read tail ${child}`, () => e.read(ent.ino, st.size - 4096, new Uint8Array(4096)));
          step(`${label} fileRuns ${child}`, () => e.fileRuns(ent.ino, 0, Math.min(st.size, 64 << 20)));
        }
      }
    };
    walk(e.rootIno, '/', 0);
    step(`${label} statfs`, () => e.statfs());
  };

  const before = sha(img);
  // Read-only pass: the image must not change.
  const ro = new Uint8Array(img);
  let refused = false;
  const e1 = step('open ro', () => Ext4.open(new BufferDev(ro, { readOnly: true }), { readOnly: true, name: 'fuzz.img', verifyChecksums }));
  if (!e1) refused = true;
  else walkAll(e1, 'ro');
  if (sha(ro) !== before) return { finding: 'ro-changed', detail: 'the image changed while opened read-only' };
  if (mustRefuse && !refused) return { finding: 'not-refused', detail: `an image with ${mustRefuse} was opened` };

  // Writable pass on a guarded copy.
  const GUARD = 4096;
  const whole = new Uint8Array(img.length + 2 * GUARD).fill(0xa5);
  whole.set(img, GUARD);
  const rwBuf = whole.subarray(GUARD, GUARD + img.length);
  const e2 = step('open rw', () => Ext4.open(new BufferDev(rwBuf), { name: 'fuzz.img', verifyChecksums }));
  if (!e2) {
    if (sha(rwBuf) !== before) return { finding: 'refused-changed', detail: 'a refused image was modified' };
  } else {
    walkAll(e2, 'rw');
    if (!e2.readOnly) {
      const r = e2.rootIno;
      const ino = step('create', () => e2.create(r, 'fuzz-new', 0o644));
      if (ino) {
        step('write', () => e2.write(ino, 0, new Uint8Array(5000).fill(0x5a)));
        step('write far', () => e2.write(ino, 1 << 20, new Uint8Array(100).fill(1)));
        step('unlink', () => e2.unlink(r, 'fuzz-new'));
      }
      const d = step('mkdir', () => e2.mkdir(r, 'fuzz-dir', 0o755));
      if (d) step('rmdir', () => e2.rmdir(r, 'fuzz-dir'));
      // Writes through the (possibly corrupted) structures the seed has: htree insertion and splits in
      // /big, filling holes of the extent tree of /frag, a new entry in a nested directory.
      const big = step('resolve /big', () => e2.resolve('/big'));
      if (big) {
        for (let i = 0; i < 40 && Date.now() < deadline; i++) {
          const f = step('create in htree', () => e2.create(big, `fuzz-added-name-that-is-rather-long-${i}`, 0o644));
          if (!f) break;
        }
        step('lookup in htree', () => e2.lookup(big, 'fuzz-added-name-that-is-rather-long-7'));
        step('unlink in htree', () => e2.unlink(big, 'fuzz-added-name-that-is-rather-long-3'));
        step('unlink seed entry in htree', () => e2.unlink(big, 'entry-with-a-longish-name-100'));
      }
      const frag = step('resolve /frag', () => e2.resolve('/frag'));
      if (frag) {
        step('write into hole', () => e2.write(frag, 5000, new Uint8Array(3000).fill(3)));
        step('punch hole', () => e2.punchHole(frag, 16384, 40000));
        step('allocate range', () => e2.allocateRange(frag, 200_000, 50_000, { unwritten: true }));
        step('truncate down', () => e2.truncate(frag, 20_000));
      }
      const sparse = step('resolve /sparse', () => e2.resolve('/sparse'));
      if (sparse) step('write sparse', () => e2.write(sparse, 600_000, new Uint8Array(9000).fill(4)));
      const lvl = step('resolve /level0/level1', () => e2.resolve('/level0/level1'));
      if (lvl) {
        step('create nested', () => e2.create(lvl, 'nested-new', 0o600));
        step('symlink nested', () => e2.symlink(lvl, 'nested-link', 'y'.repeat(100)));
        step('rename across', () => e2.rename(lvl, 'nested-new', r, 'moved-up'));
        step('rmdir non-empty', () => e2.rmdir(r, 'level0'));
      }
      step('unlink existing', () => e2.unlink(r, 'size-1023'));
      step('unlink symlink', () => e2.unlink(r, 'slow-link'));
      step('truncate', () => e2.truncate(step('resolve', () => e2.resolve('/size-300000')) ?? 0, 10));
      step('rename', () => e2.rename(r, 'size-100', r, 'renamed'));
      step('sync', () => e2.sync(false));
    }
  }
  const intact = whole.subarray(0, GUARD).every((x) => x === 0xa5) && whole.subarray(GUARD + img.length).every((x) => x === 0xa5);
  if (!intact) return { finding: 'write-outside', detail: 'a write landed outside the image' };
  // ELOOP/ENOENT come from the seed's own symlink loops and dangling links: not a sign of corruption seen.
  const corruptionSeen = Object.keys(errors).some((k) => !/ELOOP|ENOENT|ENOTEMPTY/.test(k));
  return { outcome: refused ? 'refused' : e2?.readOnly ? 'opened-readonly' : corruptionSeen ? 'opened-typed-errors' : 'opened-clean', errors };
}

const MAPVISOR_LINE = /^mapvisor: /;

function exerciseCli(imgPath, mode) {
  const before = sha(fs.readFileSync(imgPath));
  const spec = mode === 'rw' ? imgPath : `${imgPath},${mode}`;
  const p = spawnSync(process.execPath, [path.join(ROOT, 'bin/mapvisor.js'), 'run', '--image', spec, '--timeout', '10', '--', '/bin/busybox', 'find', '/'], {
    encoding: 'utf8',
    timeout: 40_000,
    maxBuffer: 64 << 20,
    env: { ...process.env },
  });
  const stderr = p.stderr ?? '';
  const lines = stderr.split('\n').filter((l) => MAPVISOR_LINE.test(l));
  const code = p.status;
  const res = { code, signal: p.signal, mapvisorLines: lines, stderrTail: stderr.slice(-600) };
  if (p.error || p.signal) return { ...res, finding: 'cli-hang-or-signal', detail: `${p.error?.message ?? ''} signal ${p.signal}` };
  if (/internal error|\n\s+at .*\(.*:\d+:\d+\)|\n\s+at [^\s]+:\d+:\d+/i.test(stderr)) return { ...res, finding: 'cli-stack-trace', detail: stderr.slice(0, 800) };
  if ((code >= 125 && code <= 127) || code >= 128) {
    if (lines.length !== 1) return { ...res, finding: 'cli-mapvisor-lines', detail: `exit ${code} with ${lines.length} mapvisor: lines: ${stderr.slice(0, 800)}` };
  }
  if ((mode === 'ro' || mode === 'cow') && sha(fs.readFileSync(imgPath)) !== before) return { ...res, finding: 'cli-image-changed', detail: `--image ,${mode} changed the image` };
  if (code >= 125 && code <= 127 && /corrupted|not an ext|needs recovery|does not support|too small|features|orphan|bigalloc|checksum/i.test(lines[0] ?? '') && mode === 'rw') {
    // A refusal: the image must be unchanged too.
    if (sha(fs.readFileSync(imgPath)) !== before) return { ...res, finding: 'cli-refused-changed', detail: 'a refused image was modified' };
  }
  return { ...res, outcome: `cli-exit-${code >= 128 ? '128+N' : code}` };
}

// ------------------------------------------------------------------------- case generation

/** Builds case `seed` against the seeds in `dir`; returns { buf, what, mustRefuse, config, verify }. */
async function buildCase(seed, seeds, cli) {
  const r = prng(seed * 2654435761);
  const names = Object.keys(CONFIGS);
  const config = cli ? r.pick(['plain1k', 'plain1k', 'csum4k', 'ext2']) : names[seed % names.length];
  const s = seeds[cli ? `${config}-bb` : config];
  const b = Buffer.from(s.buf);
  const m = mutate(r, b, s.layout);
  await applyReseal(b, s.layout, m.reseal);
  const verify = s.layout.csum ? r.chance(0.6) : true;
  const buf = m.truncateTo !== null ? b.subarray(0, m.truncateTo) : b;
  return { buf, what: m.what, mustRefuse: m.mustRefuse, config, verify, mode: r.pick(['ro', 'cow', 'rw']) };
}

async function loadSeeds(dir, withCli) {
  const seeds = {};
  for (const name of Object.keys(CONFIGS)) {
    for (const bb of withCli ? [false, true] : [false]) {
      const key = bb ? `${name}-bb` : name;
      const img = path.join(dir, `${key}.img`);
      if (!fs.existsSync(img)) makeSeed(dir, name, bb);
      const buf = fs.readFileSync(img);
      seeds[key] = { path: img, buf, layout: await layout(buf) };
    }
  }
  return seeds;
}

// ------------------------------------------------------------------------------------- worker

async function worker(dir, withCli) {
  const seeds = await loadSeeds(dir, withCli);
  process.send({ ready: true });
  process.on('message', async (msg) => {
    if (msg.exit) process.exit(0);
    const t0 = Date.now();
    let result;
    let c = null;
    try {
      if (msg.replay) {
        const buf = fs.readFileSync(msg.replay);
        result = { ...(await exerciseModule(buf, {})), what: [`replay ${msg.replay}`] };
      } else {
        c = await buildCase(msg.seed, seeds, msg.cli);
        if (msg.cli) {
          const f = path.join(dir, `cli-${process.pid}.img`);
          fs.writeFileSync(f, c.buf);
          result = { ...exerciseCli(f, c.mode), what: c.what, config: c.config, mode: c.mode };
          fs.rmSync(f, { force: true });
        } else {
          result = { ...(await exerciseModule(c.buf, { verifyChecksums: c.verify, mustRefuse: c.mustRefuse })), what: c.what, config: c.config, verify: c.verify };
        }
        if (result.finding && msg.save) {
          fs.mkdirSync(msg.save, { recursive: true });
          fs.writeFileSync(path.join(msg.save, `${result.finding}-seed${msg.seed}${msg.cli ? '-cli' : ''}.img`), c.buf);
        }
      }
    } catch (x) {
      result = { finding: x.finding ?? 'harness-exception', detail: x.message, stack: (x.stack0 ?? x.stack)?.split('\n').slice(0, 8).join('\n'), what: c?.what, config: c?.config, verify: c?.verify };
      if (c && msg.save) {
        fs.mkdirSync(msg.save, { recursive: true });
        fs.writeFileSync(path.join(msg.save, `${result.finding}-seed${msg.seed}${msg.cli ? '-cli' : ''}.img`), c.buf);
      }
    }
    const rss = process.memoryUsage().rss;
    if (!result.finding && rss > RSS_LIMIT) result = { ...result, finding: 'rss-blowup', detail: `worker RSS ${(rss / 2 ** 20).toFixed(0)} MiB after the case` };
    process.send({ id: msg.id, result, ms: Date.now() - t0, rss });
  });
}

// ----------------------------------------------------------------------------------- parent

class Pool {
  constructor(n, dir, withCli) {
    this.n = n;
    this.dir = dir;
    this.withCli = withCli;
    this.workers = [];
  }
  async spawnWorker() {
    const child = fork(SELF, ['--worker', this.dir, this.withCli ? '1' : '0'], { execArgv: [`--max-old-space-size=${HEAP_MB}`], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
    await new Promise((res, rej) => {
      child.once('message', (m) => (m.ready ? res() : rej(new Error('bad worker'))));
      child.once('exit', (code) => rej(new Error(`worker exited ${code} during start: ${stderr}`)));
    });
    return { child, stderr: () => stderr };
  }
  /** Runs one message on a worker; resolves with the result, or a finding on timeout/crash. */
  async run(w, msg, timeoutMs) {
    return new Promise((resolve) => {
      let done = false;
      const finish = (v, dead) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        w.child.removeListener('message', onMsg);
        w.child.removeListener('exit', onExit);
        resolve({ ...v, dead });
      };
      const onMsg = (m) => m.id === msg.id && finish(m, false);
      const onExit = (code, sig) => finish({ result: { finding: 'worker-crash', detail: `worker died (code ${code}, signal ${sig}): ${w.stderr().slice(-800)}` } }, true);
      const timer = setTimeout(() => {
        w.child.kill('SIGKILL');
        finish({ result: { finding: 'hang', detail: `no answer in ${timeoutMs} ms` } }, true);
      }, timeoutMs);
      w.child.on('message', onMsg);
      w.child.on('exit', onExit);
      w.child.send(msg);
    });
  }
}

function parseArgs(argv) {
  const o = { seeds: [1, 200], minutes: 0, cli: 3, jobs: Math.max(1, Math.min(8, os.cpus().length - 1)), json: false, save: null, replay: [], dir: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seeds') {
      const m = /^(\d+)(?:\.\.(\d+))?$/.exec(argv[++i]);
      if (!m) throw new Error('--seeds A..B');
      o.seeds = [Number(m[1]), Number(m[2] ?? m[1])];
    } else if (a === '--minutes') o.minutes = Number(argv[++i]);
    else if (a === '--cli') o.cli = Number(argv[++i]);
    else if (a === '--cli-seeds') {
      const m = /^(\d+)\.\.(\d+)$/.exec(argv[++i]);
      o.cliSeeds = [Number(m[1]), Number(m[2])];
    } else if (a === '--jobs') o.jobs = Number(argv[++i]);
    else if (a === '--json') o.json = true;
    else if (a === '--save') o.save = path.resolve(argv[++i]);
    else if (a === '--dir') o.dir = path.resolve(argv[++i]);
    else if (a === '--replay') {
      while (argv[i + 1] && !argv[i + 1].startsWith('--')) o.replay.push(path.resolve(argv[++i]));
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const t0 = Date.now();
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-fuzz-images-'));
  fs.mkdirSync(dir, { recursive: true });
  // CLI cases: either an explicit list (--cli-seeds) or --cli percent of the module seeds.
  const jobs = [];
  const [A, B] = o.seeds;
  for (const f of o.replay) jobs.push({ replay: f });
  if (!o.replay.length) {
    for (let s = A; s <= B; s++) jobs.push({ seed: s, cli: false });
    if (o.cliSeeds) for (let s = o.cliSeeds[0]; s <= o.cliSeeds[1]; s++) jobs.push({ seed: s, cli: true });
    else if (o.cli > 0) for (let s = A; s <= B; s++) if (prng(s ^ 0x5eed).f() * 100 < o.cli) jobs.push({ seed: s, cli: true });
  }
  const withCli = jobs.some((j) => j.cli);
  // Make the seed images once, before the workers start.
  await loadSeeds(dir, withCli);
  const pool = new Pool(o.jobs, dir, withCli);
  const counts = { cases: 0, module: 0, cli: 0, outcomes: {}, errors: {}, cliLines: {}, findings: [] };
  let next = 0;
  let extra = B + 1; // --minutes: keep going past B until the time is up
  const deadline = o.minutes > 0 ? t0 + o.minutes * 60_000 : 0;
  const take = () => {
    if (next < jobs.length) return jobs[next++];
    if (deadline && Date.now() < deadline && !o.replay.length) {
      const s = extra++;
      const cli = o.cli > 0 && prng(s ^ 0x5eed).f() * 100 < o.cli;
      return { seed: s, cli };
    }
    return null;
  };
  let id = 0;
  const lane = async () => {
    let w = await pool.spawnWorker();
    for (let job = take(); job; job = take()) {
      const msg = { ...job, id: ++id, save: o.save };
      const got = await pool.run(w, msg, job.cli ? 60_000 : CASE_TIMEOUT_MS + 10_000);
      const res = got.result;
      counts.cases++;
      counts[job.cli ? 'cli' : 'module']++;
      const kind = res.finding ? `finding:${res.finding}` : job.cli ? res.outcome : `module-${res.outcome}`;
      counts.outcomes[kind] = (counts.outcomes[kind] ?? 0) + 1;
      for (const [k, v] of Object.entries(res.errors ?? {})) counts.errors[k] = (counts.errors[k] ?? 0) + v;
      if (job.cli && res.mapvisorLines?.length) {
        const l = `exit ${res.code}: ${res.mapvisorLines[0].replace(/\/\S*cli-\d+\.img/g, 'IMG').replace(/\d{3,}/g, 'N')}`;
        counts.cliLines[l] = (counts.cliLines[l] ?? 0) + 1;
      }
      if (res.finding) {
        const f = { seed: job.seed, replay: job.replay, cli: !!job.cli, config: res.config, mode: res.mode, verifyChecksums: res.verify, mutation: res.what, finding: res.finding, detail: res.detail, stack: res.stack, exit: res.code };
        counts.findings.push(f);
        if (!o.json) console.log(`FINDING ${JSON.stringify(f)}`);
      }
      if (got.dead) w = await pool.spawnWorker();
    }
    w.child.send({ exit: true });
  };
  await Promise.all(Array.from({ length: o.jobs }, lane));
  counts.seconds = Math.round((Date.now() - t0) / 100) / 10;
  if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
  if (o.json) console.log(JSON.stringify(counts));
  else {
    console.log(`cases: ${counts.cases} (module ${counts.module}, cli ${counts.cli}) in ${counts.seconds} s`);
    console.log('outcomes:');
    for (const [k, v] of Object.entries(counts.outcomes).sort()) console.log(`  ${k}: ${v}`);
    console.log('typed errors seen (module):');
    for (const [k, v] of Object.entries(counts.errors).sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${k}: ${v}`);
    console.log('mapvisor: lines of the CLI cases:');
    for (const [k, v] of Object.entries(counts.cliLines).sort((a, b) => b[1] - a[1])) console.log(`  ${v} x ${k}`);
    console.log(`findings: ${counts.findings.length}`);
  }
  process.exit(counts.findings.length ? 1 : 0);
}

if (process.argv[2] === '--worker') worker(process.argv[3], process.argv[4] === '1');
else if (process.argv[1] && path.resolve(process.argv[1]) === SELF) {
  main().catch((e) => {
    console.error(e.stack ?? e);
    process.exit(2);
  });
}
