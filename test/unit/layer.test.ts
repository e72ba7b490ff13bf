/**
 * The copy-on-write layer (src/storage/layer.ts): its header layout, writes that reach the layer and
 * never the image, the layer found again at the next open, and the ext4 writer on a layered image
 * checked by e2fsck after flattening.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { LAYER_HEADER, LayeredImage, decodeLayerHeader, encodeLayerHeader, flattenLayer, layerRuns } from '../../src/storage/layer.js';
import { Ext4 } from '../../src/storage/ext4/fs.js';
import { debugfs, fsckCheck, mkfs } from '../../src/storage/ext4/mkimage.js';
import { MapvisorError } from '../../src/errors.js';
import * as libc from '../../src/host/libc.js';

const PAGE = 4096;
let tmp = '';
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mapvisor-layer-'));
});
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Open `layer` over `image` (read-only fd, as RootFs does); returns the device and a closer. */
function openLayered(image: string, layer: string): { dev: LayeredImage; close: () => void } {
  const fd = fs.openSync(image, 'r');
  const dev = LayeredImage.open(image, fd, layer);
  return {
    dev,
    close: () => {
      dev.close();
      fs.closeSync(fd);
    },
  };
}

test('layer header: named offsets fit one page and round-trip', () => {
  assert.ok(LAYER_HEADER.size <= PAGE);
  assert.equal(LAYER_HEADER.basePath + 1024, LAYER_HEADER.size);
  const h = { version: 1, pageSize: PAGE, imageSize: 123 * PAGE + 5, baseId: Buffer.alloc(32, 0xab), basePath: '/images/é.img' };
  const b = encodeLayerHeader(h);
  assert.equal(b.length, PAGE);
  assert.equal(b.toString('ascii', 0, 8), 'MVLAYER1');
  assert.equal(b.readBigUInt64LE(LAYER_HEADER.imageSize), BigInt(h.imageSize));
  assert.deepEqual(decodeLayerHeader(b), h);
  assert.equal(decodeLayerHeader(Buffer.alloc(PAGE)), null);
});

test('writes go to the layer, never to the image; the next open finds them; holes stay the image', () => {
  const img = path.join(tmp, 'raw.img');
  const pattern = Buffer.alloc(64 * PAGE);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7) & 0xff;
  fs.writeFileSync(img, pattern);
  const layer = path.join(tmp, 'raw.layer');
  const a = openLayered(img, layer);
  a.dev.bytes(3 * PAGE + 10, 5).fill(1); // a metadata-style write, reported after
  a.dev.dirty(3 * PAGE + 10, 5);
  a.dev.prepareWrite(10 * PAGE, 3 * PAGE); // data: whole pages, not copied
  a.dev.bytes(10 * PAGE, 3 * PAGE).fill(2);
  a.dev.prepareWrite(40 * PAGE + 100, 200); // a partial page: its other bytes are kept
  a.dev.bytes(40 * PAGE + 100, 200).fill(3);
  assert.ok(a.dev.inLayer(3 * PAGE) && a.dev.inLayer(12 * PAGE) && a.dev.inLayer(40 * PAGE));
  assert.ok(!a.dev.inLayer(30 * PAGE));
  const runs = a.dev.sources(0, 64 * PAGE);
  assert.deepEqual(runs.map((r) => r.layer), runs.map((_, i) => i % 2 === 1), 'alternating image and layer runs');
  a.close();
  assert.equal(sha(fs.readFileSync(img)), sha(pattern), 'the image never changes');
  const expect = Buffer.from(pattern);
  expect.fill(1, 3 * PAGE + 10, 3 * PAGE + 15);
  expect.fill(2, 10 * PAGE, 13 * PAGE);
  expect.fill(3, 40 * PAGE + 100, 40 * PAGE + 300);
  const b = openLayered(img, layer);
  try {
    assert.equal(sha(b.dev.bytes(0, 64 * PAGE)), sha(expect), 'the layer over the image, reopened');
    assert.ok(b.dev.stats().pages >= 5 && b.dev.stats().pages < 64);
  } finally {
    b.close();
  }
  // Only changed pages (and short gaps between them) take room in the layer.
  const fd = fs.openSync(layer, 'r');
  const held = layerRuns(fd, 64 * PAGE).reduce((n, [, len]) => n + len, 0);
  fs.closeSync(fd);
  assert.ok(held <= 20 * PAGE, `layer holds ${held / PAGE} pages`);
  const flat = path.join(tmp, 'raw.flat');
  flattenLayer(img, layer, flat);
  assert.equal(sha(fs.readFileSync(flat)), sha(expect));
});

test('random writes through a layer equal the same writes on a plain copy (property)', () => {
  const img = path.join(tmp, 'prop.img');
  const base = Buffer.alloc(48 * PAGE);
  for (let i = 0; i < base.length; i++) base[i] = (i * 13 + 5) & 0xff;
  fs.writeFileSync(img, base);
  const op = fc.record({ off: fc.integer({ min: 0, max: 48 * PAGE - 1 }), len: fc.integer({ min: 1, max: 3 * PAGE }), byte: fc.integer({ min: 0, max: 255 }), how: fc.constantFrom('dirty', 'announced', 'writeFrom', 'zero') });
  // A host buffer for writeFrom (the kernel writes from the program's memory).
  const src = libc.mmap(0, 3 * PAGE, libc.PROT_READ | libc.PROT_WRITE, libc.MAP_PRIVATE | libc.MAP_ANONYMOUS, -1, 0);
  const srcView = new Uint8Array(libc.view(src, 3 * PAGE));
  let n = 0;
  fc.assert(
    fc.property(fc.array(op, { maxLength: 25 }), fc.boolean(), (ops, reopen) => {
      const layer = path.join(tmp, `prop-${n++}.layer`);
      const model = Buffer.from(base);
      let l = openLayered(img, layer);
      try {
        ops.forEach((o, i) => {
          const len = Math.min(o.len, model.length - o.off);
          const byte = o.how === 'zero' ? 0 : o.byte;
          model.fill(byte, o.off, o.off + len);
          if (o.how === 'announced') {
            l.dev.prepareWrite(o.off, len);
            l.dev.bytes(o.off, len).fill(byte);
          } else if (o.how === 'writeFrom') {
            srcView.fill(byte, 0, len);
            l.dev.writeFrom(o.off, src, len);
          } else if (o.how === 'zero') {
            l.dev.zero(o.off, len);
          } else {
            l.dev.bytes(o.off, len).fill(byte);
            l.dev.dirty(o.off, len);
          }
          if (reopen && i === Math.floor(ops.length / 2)) {
            l.close();
            l = openLayered(img, layer);
          }
        });
        assert.equal(sha(l.dev.bytes(0, model.length)), sha(model));
      } finally {
        l.close();
        fs.rmSync(layer);
      }
      assert.equal(sha(fs.readFileSync(img)), sha(base));
    }),
    { numRuns: 80 },
  );
  libc.munmap(src, 3 * PAGE);
});

test('the ext4 writer on a layered image: the image is unchanged, the flattened image checks clean and holds the files', () => {
  const img = path.join(tmp, 'fs.img');
  mkfs(img, { size: '32M', blockSize: 4096, features: '^has_journal' });
  const before = sha(fs.readFileSync(img));
  const layer = path.join(tmp, 'fs.layer');
  const l = openLayered(img, layer);
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  try {
    const e = Ext4.open(l.dev, { name: img });
    const d = e.mkdir(e.rootIno, 'dir', 0o755);
    for (let i = 0; i < 40; i++) {
      const f = e.create(d, `f${i}`, 0o644);
      e.write(f, 0, data.subarray(0, 1000 * (i + 1)));
    }
    e.unlink(d, 'f7');
    e.close();
  } finally {
    l.close();
  }
  assert.equal(sha(fs.readFileSync(img)), before, 'the image never changes');
  const flat = path.join(tmp, 'fs.flat');
  flattenLayer(img, layer, flat);
  const f = fsckCheck(flat);
  assert.equal(f.status, 0, f.output);
  assert.equal(sha(debugfs(flat, 'cat /dir/f39')), sha(data.subarray(0, 40_000)));
  assert.doesNotMatch(debugfs(flat, 'ls /dir').toString(), /\bf7\b/);
});

test('bad layers are refused with the problem named', () => {
  const img = path.join(tmp, 'a.img');
  const other = path.join(tmp, 'b.img');
  fs.writeFileSync(img, Buffer.alloc(16 * PAGE, 1));
  fs.writeFileSync(other, Buffer.alloc(20 * PAGE, 1));
  const layer = path.join(tmp, 'a.layer');
  openLayered(img, layer).close();
  assert.throws(() => openLayered(other, layer), (e: unknown) => e instanceof MapvisorError && /made over .*a\.img/.test(e.message));
  // The same size, another superblock: another image (or this one changed).
  const changed = path.join(tmp, 'c.img');
  const c = Buffer.alloc(16 * PAGE, 1);
  c[1024 + 100] = 9;
  fs.writeFileSync(changed, c);
  assert.throws(() => openLayered(changed, layer), (e: unknown) => e instanceof MapvisorError && /has changed or is another image/.test(e.message));
  const junk = path.join(tmp, 'junk.layer');
  fs.writeFileSync(junk, 'not a layer');
  assert.throws(() => openLayered(img, junk), (e: unknown) => e instanceof MapvisorError && /not a mapvisor layer/.test(e.message));
  // One VM at a time.
  const first = openLayered(img, layer);
  try {
    assert.throws(() => openLayered(img, layer), (e: unknown) => e instanceof MapvisorError && /in use by another VM/.test(e.message));
  } finally {
    first.close();
  }
});
