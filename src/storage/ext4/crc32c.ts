/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven (slicing by 8).
 *
 * `crc32cUpdate` is the raw register update with no pre- or post-inversion, as the kernel's
 * `crc32c()` / e2fsprogs' `ext2fs_crc32c_le()` use it for ext4 metadata checksums (seeded with ~0
 * or with the file system's checksum seed). `crc32c` is the standard checksum (~update(~0, data)).
 */
const POLY = 0x82f63b78;

const T = new Uint32Array(8 * 256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c >>> 0;
}
for (let n = 0; n < 256; n++) {
  let c = T[n]!;
  for (let t = 1; t < 8; t++) {
    c = (T[c & 0xff]! ^ (c >>> 8)) >>> 0;
    T[t * 256 + n] = c;
  }
}

/** Raw CRC-32C register update over `data[start, end)`. */
export function crc32cUpdate(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc >>> 0;
  let i = start;
  // Slicing by 8.
  while (end - i >= 8) {
    const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
    const b = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c =
      T[7 * 256 + (a & 0xff)]! ^
      T[6 * 256 + ((a >>> 8) & 0xff)]! ^
      T[5 * 256 + ((a >>> 16) & 0xff)]! ^
      T[4 * 256 + (a >>> 24)]! ^
      T[3 * 256 + (b & 0xff)]! ^
      T[2 * 256 + ((b >>> 8) & 0xff)]! ^
      T[1 * 256 + ((b >>> 16) & 0xff)]! ^
      T[b >>> 24]!;
    i += 8;
  }
  while (i < end) {
    c = T[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return c >>> 0;
}

/** Raw update with a little-endian u32 (ext4 seeds checksums with inode and group numbers). */
export function crc32cU32(crc: number, value: number): number {
  // Slicing by 4 over the value's little-endian bytes, with no allocation (this runs for every inode
  // and group checksum).
  const a = (crc ^ value) >>> 0;
  return (T[3 * 256 + (a & 0xff)]! ^ T[2 * 256 + ((a >>> 8) & 0xff)]! ^ T[256 + ((a >>> 16) & 0xff)]! ^ T[a >>> 24]!) >>> 0;
}

/** The standard CRC-32C of `data` (iSCSI / RFC 3720): crc32c("123456789") = 0xE3069283. */
export function crc32c(data: Uint8Array): number {
  return ~crc32cUpdate(0xffffffff, data) >>> 0;
}

/** CRC-16 (ANSI, reflected polynomial 0xA001) as the kernel's crc16(), used by the gdt_csum feature. */
const T16 = new Uint16Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  T16[n] = c;
}
export function crc16Update(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc & 0xffff;
  for (let i = start; i < end; i++) c = (T16[(c ^ data[i]!) & 0xff]! ^ (c >>> 8)) & 0xffff;
  return c;
}
