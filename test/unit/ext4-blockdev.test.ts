/** The BlockDev implementations: MappedImage (rw / cow / ro mappings of an image file) and BufferDev. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BufferDev, MappedImage } from '../../src/storage/blockdev.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { MapvisorError } from '../../src/errors.js';
import { debugfs, fsckCheck, mkfs } from '../../src/storage/ext4/mkimage.js';
import * as libc from '../../src/host/libc.js';

let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-blockdev-'));
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('MappedImage rw: writes through views reach the file after flush; base is the mapping', () => {
  const f = path.join(tmp, 'raw.bin');
  fs.writeFileSync(f, Buffer.alloc(1 << 20, 1));
  const m = MappedImage.open(f, 'rw');
  try {
    assert.equal(m.size, 1 << 20);
    assert.equal(m.readOnly, false);
    const v = m.bytes(8192, 4096);
    assert.equal(v[0], 1);
    v.fill(9);
    m.dirty(8192, 4096);
    m.flush(8192, 4096);
    // The same bytes seen through the raw address.
    assert.equal(new Uint8Array(libc.view(m.base + 8192, 16))[3], 9);
    assert.throws(() => m.bytes((1 << 20) - 10, 20), RangeError);
    assert.throws(() => m.bytes(-1, 2), RangeError);
  } finally {
    m.close();
  }
  const back = fs.readFileSync(f);
  assert.equal(back[8192], 9);
  assert.equal(back[8191], 1);
  assert.throws(() => m.bytes(0, 1), RangeError); // closed
});

test('MappedImage cow: writes stay private; ro: refuses writes', () => {
  const f = path.join(tmp, 'raw2.bin');
  fs.writeFileSync(f, Buffer.alloc(65536, 3));
  const c = MappedImage.open(f, 'cow');
  c.bytes(0, 100).fill(7);
  c.dirty(0, 100);
  assert.equal(c.bytes(0, 1)[0], 7);
  c.close();
  assert.equal(fs.readFileSync(f)[0], 3);
  const r = MappedImage.open(f, 'ro');
  assert.equal(r.readOnly, true);
  assert.equal(r.bytes(100, 1)[0], 3);
  assert.throws(() => r.dirty(0, 1), RangeError);
  r.close();
  assert.throws(() => MappedImage.open(path.join(tmp, 'missing.img')), MapvisorError);
  fs.writeFileSync(path.join(tmp, 'tiny.img'), 'x');
  assert.throws(() => MappedImage.open(path.join(tmp, 'tiny.img')), MapvisorError);
});

test('Ext4 over a cow mapping writes nothing to the file; over rw, e2fsck and debugfs see the writes', () => {
  const img = path.join(tmp, 'fs.img');
  mkfs(img, { size: '32M', blockSize: 4096 });
  const before = fs.readFileSync(img);
  const c = MappedImage.open(img, 'cow');
  const e1 = Ext4.open(c);
  e1.write(e1.create(e1.rootIno, 'private', 0o644), 0, Buffer.from('cow'));
  e1.close();
  c.close();
  assert.ok(fs.readFileSync(img).equals(before));

  const m = MappedImage.open(img, 'rw');
  const e = Ext4.open(m);
  const ino = e.create(e.rootIno, 'shared', 0o644);
  const data = Buffer.alloc(3 * 4096 + 10, 0x5a);
  e.allocateRange(ino, 0, data.length);
  // The zero-copy path: memmove from "guest memory" (an anonymous mapping here) straight into the image mapping.
  const scratchLen = 4 * 4096;
  const scratch = libc.mmap(0, scratchLen, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
  new Uint8Array(libc.view(scratch, data.length)).set(data);
  for (const r of e.fileRuns(ino, 0, data.length)) {
    assert.notEqual(r.physical, null);
    libc.memmove(m.base + r.physical!, scratch + r.offset, r.length);
  }
  libc.munmap(scratch, scratchLen);
  e.commitWrite(ino, data.length);
  e.close();
  m.close();
  assert.equal(fsckCheck(img).status, 0);
  assert.ok(debugfs(img, 'cat /shared').equals(data));
});

test('BufferDev: bounds and read-only', () => {
  const d = new BufferDev(new Uint8Array(4096));
  assert.equal(d.bytes(4000, 96).length, 96);
  assert.throws(() => d.bytes(4000, 97), RangeError);
  const ro = new BufferDev(new Uint8Array(4096), { readOnly: true });
  assert.throws(() => ro.dirty(0, 1), RangeError);
});
