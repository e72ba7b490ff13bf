/**
 * Extended attributes of an ext4 inode, read as Linux's ext4_xattr_get/ext4_listxattr see them: the
 * entries in the inode's extra space (after i_extra_isize, magic 0xEA020000) first, then those of the
 * xattr block (i_file_acl: a 32-byte header, magic 0xEA020000, then entries). An entry is e_name_len
 * (u8), e_name_index (u8: the name's prefix), e_value_offs (u16), e_value_inum (u32: an EA inode holds
 * the value when non-zero), e_value_size (u32), e_hash (u32), the name, padded to 4 bytes; a zero u32
 * ends the list. Value offsets count from the first entry (in the inode) or from the block's start.
 * POSIX ACLs (indexes 2 and 3) are stored in ext4's compact form and given back in the VFS's
 * posix_acl_xattr form (version 2, every entry with an id), as getxattr(2) returns them.
 */
import { corrupted } from './errors.js';
import type { Ext4 } from './fs.js';
import { GOOD_OLD_INODE_SIZE } from './inode.js';

const MAGIC = 0xea020000;
const PREFIXES: Record<number, string> = {
  1: 'user.',
  2: 'system.posix_acl_access',
  3: 'system.posix_acl_default',
  4: 'trusted.',
  6: 'security.',
  7: 'system.',
  8: 'system.richacl',
};

export interface Xattr {
  name: string;
  value: Uint8Array;
}

/** Every extended attribute of inode `ino`, in the order Linux lists them (inode first, then block). */
export function readXattrs(fs: Ext4, ino: number): Xattr[] {
  const inode = fs.iget(ino);
  const out: Xattr[] = [];
  const raw = inode.raw;
  const start = GOOD_OLD_INODE_SIZE + inode.extraIsize;
  if (raw.length > GOOD_OLD_INODE_SIZE && start + 4 <= raw.length) {
    const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    if (v.getUint32(start, true) === MAGIC) entries(fs, ino, raw.subarray(start + 4), 0, out, 'in-inode');
  }
  const acl = inode.fileAcl;
  if (acl !== 0) {
    const blk = fs.block(acl);
    const v = new DataView(blk.buffer, blk.byteOffset, blk.byteLength);
    if (v.getUint32(0, true) !== MAGIC) throw corrupted(`inode ${ino}: bad xattr block ${acl}`);
    entries(fs, ino, blk, 32, out, `block ${acl}`);
  }
  return out;
}

function entries(fs: Ext4, ino: number, area: Uint8Array, first: number, out: Xattr[], where: string): void {
  const v = new DataView(area.buffer, area.byteOffset, area.byteLength);
  const bad = (): never => {
    throw corrupted(`inode ${ino}: bad xattr entry (${where})`);
  };
  let at = first;
  while (at + 4 <= area.length && v.getUint32(at, true) !== 0) {
    if (at + 16 > area.length) bad();
    const nameLen = area[at]!;
    const index = area[at + 1]!;
    const offs = v.getUint16(at + 2, true);
    const inum = v.getUint32(at + 4, true);
    const size = v.getUint32(at + 8, true);
    if (at + 16 + nameLen > area.length) bad();
    const suffix = new TextDecoder().decode(area.subarray(at + 16, at + 16 + nameLen));
    let value: Uint8Array;
    if (inum !== 0) {
      value = new Uint8Array(size);
      if (fs.read(inum, 0, value) !== size) bad();
    } else {
      // In the inode, offsets count from the first entry (`first` is 0 there); in a block, from its start.
      if (offs + size > area.length) bad();
      value = area.slice(offs, offs + size);
    }
    const prefix = PREFIXES[index];
    if (prefix !== undefined) {
      if (index === 2 || index === 3) out.push({ name: prefix, value: aclToXattr(value, bad) });
      else out.push({ name: prefix + suffix, value });
    }
    at += (16 + nameLen + 3) & ~3;
  }
}

/** ext4's ACL (version 1; ACL_USER/ACL_GROUP entries carry an id) -> posix_acl_xattr (version 2). */
function aclToXattr(a: Uint8Array, bad: () => never): Uint8Array {
  const v = new DataView(a.buffer, a.byteOffset, a.byteLength);
  if (a.length < 4 || v.getUint32(0, true) !== 1) bad();
  const items: Array<[number, number, number]> = [];
  let at = 4;
  while (at < a.length) {
    if (at + 4 > a.length) bad();
    const tag = v.getUint16(at, true);
    const perm = v.getUint16(at + 2, true);
    if (tag === 0x02 || tag === 0x08) {
      // ACL_USER, ACL_GROUP
      if (at + 8 > a.length) bad();
      items.push([tag, perm, v.getUint32(at + 4, true)]);
      at += 8;
    } else {
      items.push([tag, perm, 0xffffffff]);
      at += 4;
    }
  }
  const outb = new Uint8Array(4 + items.length * 8);
  const o = new DataView(outb.buffer);
  o.setUint32(0, 2, true);
  items.forEach(([tag, perm, id], i) => {
    o.setUint16(4 + i * 8, tag, true);
    o.setUint16(6 + i * 8, perm, true);
    o.setUint32(8 + i * 8, id, true);
  });
  return outb;
}
