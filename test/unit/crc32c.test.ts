import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc16Update, crc32c, crc32cUpdate } from '../../src/storage/ext4/crc32c.js';

const ascii = (s: string) => new TextEncoder().encode(s);

test('crc32c: standard check value', () => {
  assert.equal(crc32c(ascii('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('crc32c: RFC 3720 (iSCSI) vectors', () => {
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

test('crc32c: incremental updates equal one pass, at every split and alignment', () => {
  const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff);
  const whole = crc32cUpdate(0xffffffff, data);
  for (let split = 0; split <= data.length; split += 7) {
    const a = crc32cUpdate(0xffffffff, data, 0, split);
    assert.equal(crc32cUpdate(a, data, split), whole);
  }
  // Bytewise reference.
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  assert.equal(whole, c >>> 0);
});

test('crc16: ARC and MODBUS check values', () => {
  assert.equal(crc16Update(0, ascii('123456789')), 0xbb3d);
  assert.equal(crc16Update(0xffff, ascii('123456789')), 0x4b37);
});
