/**
 * Directory index hashes (fs/ext4/hash.c): legacy (dx_hack_hash), half-MD4 and TEA, each in the
 * signed-char and unsigned-char flavours.
 */
export const DX_HASH_LEGACY = 0;
export const DX_HASH_HALF_MD4 = 1;
export const DX_HASH_TEA = 2;
export const DX_HASH_LEGACY_UNSIGNED = 3;
export const DX_HASH_HALF_MD4_UNSIGNED = 4;
export const DX_HASH_TEA_UNSIGNED = 5;
export const DX_HASH_SIPHASH = 6;

const HTREE_EOF_32BIT = 0x7fffffff;

function rol32(x: number, s: number): number {
  return ((x << s) | (x >>> (32 - s))) >>> 0;
}

function teaTransform(buf: Uint32Array, inp: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0]!;
  let b1 = buf[1]!;
  const a = inp[0]!;
  const b = inp[1]!;
  const c = inp[2]!;
  const d = inp[3]!;
  for (let n = 16; n > 0; n--) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] = buf[0]! + b0;
  buf[1] = buf[1]! + b1;
}

const K2 = 0o13240474631;
const K3 = 0o15666365641;
const F = (x: number, y: number, z: number) => z ^ (x & (y ^ z));
const G = (x: number, y: number, z: number) => ((x & y) + ((x ^ y) & z)) >>> 0;
const H = (x: number, y: number, z: number) => x ^ y ^ z;

function halfMd4Transform(buf: Uint32Array, inp: Uint32Array): void {
  let a = buf[0]!;
  let b = buf[1]!;
  let c = buf[2]!;
  let d = buf[3]!;
  const R = (f: (x: number, y: number, z: number) => number, w: number, x: number, y: number, z: number, i: number, k: number, s: number) =>
    rol32((w + f(x, y, z) + inp[i]! + k) >>> 0, s);
  a = R(F, a, b, c, d, 0, 0, 3);
  d = R(F, d, a, b, c, 1, 0, 7);
  c = R(F, c, d, a, b, 2, 0, 11);
  b = R(F, b, c, d, a, 3, 0, 19);
  a = R(F, a, b, c, d, 4, 0, 3);
  d = R(F, d, a, b, c, 5, 0, 7);
  c = R(F, c, d, a, b, 6, 0, 11);
  b = R(F, b, c, d, a, 7, 0, 19);

  a = R(G, a, b, c, d, 1, K2, 3);
  d = R(G, d, a, b, c, 3, K2, 5);
  c = R(G, c, d, a, b, 5, K2, 9);
  b = R(G, b, c, d, a, 7, K2, 13);
  a = R(G, a, b, c, d, 0, K2, 3);
  d = R(G, d, a, b, c, 2, K2, 5);
  c = R(G, c, d, a, b, 4, K2, 9);
  b = R(G, b, c, d, a, 6, K2, 13);

  a = R(H, a, b, c, d, 3, K3, 3);
  d = R(H, d, a, b, c, 7, K3, 9);
  c = R(H, c, d, a, b, 2, K3, 11);
  b = R(H, b, c, d, a, 6, K3, 15);
  a = R(H, a, b, c, d, 1, K3, 3);
  d = R(H, d, a, b, c, 5, K3, 9);
  c = R(H, c, d, a, b, 0, K3, 11);
  b = R(H, b, c, d, a, 4, K3, 15);

  buf[0] = buf[0]! + a;
  buf[1] = buf[1]! + b;
  buf[2] = buf[2]! + c;
  buf[3] = buf[3]! + d;
}

function dxHackHash(name: Uint8Array, signed: boolean): number {
  let hash0 = 0x12a3fe2d;
  let hash1 = 0x37abe8f9;
  for (let i = 0; i < name.length; i++) {
    const ch = signed ? (name[i]! << 24) >> 24 : name[i]!;
    let hash = (hash1 + ((hash0 ^ Math.imul(ch, 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

function str2hashbuf(msg: Uint8Array, off: number, len: number, out: Uint32Array, num: number, signed: boolean): void {
  let pad = (len | (len << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  if (len > num * 4) len = num * 4;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const ch = signed ? (msg[off + i]! << 24) >> 24 : msg[off + i]!;
    val = (ch + ((val << 8) >>> 0)) >>> 0;
    if (i % 4 === 3) {
      out[o++] = val;
      val = pad;
      num--;
    }
  }
  if (--num >= 0) out[o++] = val;
  while (--num >= 0) out[o++] = pad;
}

export interface DirHash {
  hash: number;
  minor: number;
}

/**
 * The directory hash of `name` (ext4fs_dirhash). `version` is a DX_HASH_* value that already
 * includes the unsigned flavour; `seed` is s_hash_seed (all zero means the default seed).
 */
export function dirHash(name: Uint8Array, version: number, seed: readonly number[]): DirHash {
  const buf = new Uint32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
  if (seed.some((x) => x !== 0)) for (let i = 0; i < 4; i++) buf[i] = seed[i]!;
  let hash: number;
  let minor = 0;
  switch (version) {
    case DX_HASH_LEGACY:
    case DX_HASH_LEGACY_UNSIGNED:
      hash = dxHackHash(name, version === DX_HASH_LEGACY);
      break;
    case DX_HASH_HALF_MD4:
    case DX_HASH_HALF_MD4_UNSIGNED: {
      const inp = new Uint32Array(8);
      for (let p = 0, len = name.length; len > 0; len -= 32, p += 32) {
        str2hashbuf(name, p, len, inp, 8, version === DX_HASH_HALF_MD4);
        halfMd4Transform(buf, inp);
      }
      minor = buf[2]!;
      hash = buf[1]!;
      break;
    }
    case DX_HASH_TEA:
    case DX_HASH_TEA_UNSIGNED: {
      const inp = new Uint32Array(4);
      for (let p = 0, len = name.length; len > 0; len -= 16, p += 16) {
        str2hashbuf(name, p, len, inp, 4, version === DX_HASH_TEA);
        teaTransform(buf, inp);
      }
      hash = buf[0]!;
      minor = buf[1]!;
      break;
    }
    default:
      throw new RangeError(`unsupported directory hash version ${version}`);
  }
  hash = (hash & ~1) >>> 0;
  if (hash === HTREE_EOF_32BIT * 2) hash = (HTREE_EOF_32BIT - 1) * 2;
  return { hash, minor };
}
