/**
 * Extended attributes read from the image (in the inode and in an xattr block, set with debugfs
 * ea_set), the answers of setxattr/removexattr, copy_file_range, and /dev/fd: test/guest/xattr.c on a
 * fresh image (what ls -l, cp -a, bash's process substitution and coreutils' cp meet in the compat corpus).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const XATTR = join(ROOT, '.cache', 'guest', 'xattr');

test(`xattrs, copy_file_range and /dev/fd on an image [${PLATFORM}]`, { timeout: 120_000, skip: existsSync(XATTR) ? false : `${XATTR} not built (node scripts/fixtures.mjs)` }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-xattr-'));
  try {
    const stage = join(dir, 'stage');
    mkdirSync(join(stage, 'd'), { recursive: true });
    copyFileSync(XATTR, join(stage, 'xattr'));
    writeFileSync(join(stage, 'd', 'f'), 'file\n');
    symlinkSync('f', join(stage, 'd', 'link'));
    writeFileSync(join(dir, 'big'), 'b'.repeat(300));
    const img = join(dir, 'x.img');
    execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-I', '256', '-d', stage, '-b', '4096', img, '64M'], { stdio: 'ignore' });
    // A short value fits in the inode; a 300-byte one goes to an xattr block.
    execFileSync('debugfs', ['-w', '-R', 'ea_set /d/f user.small hello', img], { stdio: 'ignore' });
    execFileSync('debugfs', ['-w', '-R', `ea_set -f ${join(dir, 'big')} /d/f user.big`, img], { stdio: 'ignore' });
    const r = await Sandbox.run('/xattr', ['/d'], { image: img, stdout: 'pipe', stderr: 'pipe', timeout: 60 });
    const out = r.stdout!.toString();
    assert.match(out, /\nxattr ok\n$/, `${out}\n${r.stderr!.toString()}`);
    assert.equal(r.status, 0);
    const fsck = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
