/**
 * The mount table (src/kernel/vfs/mounts.ts) without a VM: --mount parsing and its one-line errors, the
 * longest-prefix choice of a mount, and walks that must stay inside the mounted directory whatever
 * the host tree holds (links out by absolute and relative paths, a link swapped in for a directory).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MountTable, done, parseMountSpec, type HostLoc } from '../../src/kernel/vfs/mounts.js';
import { UsageError } from '../../src/errors.js';

test('--mount HOST:TARGET[:ro] parses, and bad values are one-line usage errors', () => {
  assert.deepEqual(parseMountSpec('/a/b:/data'), { host: '/a/b', target: '/data', readonly: false });
  assert.deepEqual(parseMountSpec('./x:/data/y:ro'), { host: './x', target: '/data/y', readonly: true });
  assert.deepEqual(parseMountSpec('/h:/t:rw'), { host: '/h', target: '/t', readonly: false });
  assert.throws(() => parseMountSpec('/only-host'), (e: unknown) => e instanceof UsageError && /names no target/.test(e.message));
  assert.throws(() => parseMountSpec('/h:relative'), (e: unknown) => e instanceof UsageError && /absolute/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-mt-'));
  try {
    assert.throws(() => MountTable.open([{ host: join(dir, 'none'), target: '/d' }]), /does not exist/);
    assert.throws(() => MountTable.open([{ host: dir, target: 'd' }]), /not an absolute path/);
    assert.throws(() => MountTable.open([{ host: dir, target: '/' }]), /sandbox root/);
    assert.throws(() => MountTable.open([{ host: dir, target: '/dev/x' }]), /\/proc, \/sys or \/dev/);
    assert.throws(() => MountTable.open([{ host: dir, target: '/d' }, { host: dir, target: '/d/' }]), /mounted twice/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('walks choose the longest mount and never leave the mounted directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-mt-'));
  const data = join(dir, 'data');
  mkdirSync(join(data, 'sub'), { recursive: true });
  writeFileSync(join(data, 'sub', 'f'), 'x');
  writeFileSync(join(dir, 'secret'), 'secret');
  writeFileSync(join(dir, 'single'), 'single');
  symlinkSync(join(dir, 'secret'), join(data, 'abs'));
  symlinkSync('../secret', join(data, 'rel'));
  symlinkSync('sub', join(data, 'in'));
  symlinkSync('../../../../..', join(data, 'up'));
  const t = MountTable.open([
    { host: data, target: '/data' },
    { host: join(dir, 'single'), target: '/data/sub/single', readonly: true },
  ]);
  try {
    assert.equal(t.find('/data/x')?.target, '/data');
    assert.equal(t.find('/data/sub/single')?.target, '/data/sub/single');
    assert.equal(t.find('/database'), null);
    const loc = (p: string, follow = true): HostLoc => {
      const w = t.walk(p, follow);
      assert.ok(typeof w === 'object' && w.kind === 'host', `${p}: ${JSON.stringify(w)}`);
      return w;
    };
    const l = loc('/data/sub/f');
    assert.equal(l.name, 'f');
    done(l);
    // A link inside the mount: followed in the sandbox's namespace.
    const i = loc('/data/in/f');
    assert.equal(i.path, '/data/sub/f');
    done(i);
    // Links out of the mount lead to sandbox paths, never to the host's.
    assert.deepEqual(t.walk('/data/abs', true), { kind: 'outside', path: join(dir, 'secret') });
    assert.deepEqual(t.walk('/data/rel', true), { kind: 'outside', path: '/secret' });
    assert.deepEqual(t.walk('/data/up/etc/shadow', true), { kind: 'outside', path: '/etc/shadow' });
    // Not followed when last and not asked to: the link itself.
    const nl = loc('/data/abs', false);
    assert.equal(nl.name, 'abs');
    done(nl);
    // The single-file mount is its own root; a path under it is ENOTDIR.
    const s = loc('/data/sub/single');
    assert.equal(s.name, '');
    assert.equal(s.mount.readonly, true);
    assert.equal(t.walk('/data/sub/single/x', true), -20); // ENOTDIR
    // /proc lines.
    assert.deepEqual(t.mountsLines(), [`${data} /data hostfs rw,relatime 0 0`, `${join(dir, 'single')} /data/sub/single hostfs ro,relatime 0 0`]);
    assert.match(t.mountinfoLines(21)[0]!, /^100 21 \d+:\d+ \S+ \/data rw,relatime - hostfs /);
  } finally {
    t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
