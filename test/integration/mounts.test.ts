/**
 * Host mounts (--mount HOST:TARGET[:ro], SandboxOptions.mounts), on the platform this run of the suite
 * tests, with Debian's python3 (.cache/images/net.img), coreutils and bash (shell.img), each on a
 * private rw copy of the image, so e2fsck can check it afterwards:
 *  - files written inside are on the host and host files are seen inside (read, write, append, seek,
 *    truncate, stat with the host's device and inode, listdir, mkdir/rename/unlink/rmdir, symlink,
 *    readlink, link, chmod, utime, mmap shared and private, flock, cp and mv from the image);
 *  - a read-only mount and a mounted single file (/etc/hosts style) refuse writes with EROFS;
 *  - escapes stay inside: links on the host and links the program makes (absolute, relative, `..`),
 *    `..` from the mount, dirfd-relative `..`, hard links and renames to or from the image (EXDEV);
 *  - /proc/self/mounts and mountinfo list the mounts; the image stays clean (e2fsck -fn);
 *  - bad --mount values at the CLI: exit 125 with one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const CLI = join(ROOT, 'bin', 'mapvisor.js');
const SHELL = join(ROOT, '.cache', 'images', 'shell.img');
const NET = join(ROOT, '.cache', 'images', 'net.img');
const noImage = existsSync(SHELL) ? false : `${SHELL} not built (node scripts/fixtures.mjs)`;
const noNet = existsSync(NET) ? false : `${NET} not built (node scripts/net-images.mjs)`;

/** A fresh host tree: DIR/data (mounted rw), DIR/ro (mounted ro), DIR/hosts (a file), DIR/secret.txt (never mounted). */
function hostTree(image = SHELL): { dir: string; data: string; ro: string; hosts: string; secret: string; img: string; cleanup: () => void } {
  const dir = mkdtempSync(join(process.env.MAPVISOR_TMPDIR ?? tmpdir(), 'mapvisor-mounts-'));
  const data = join(dir, 'data');
  const ro = join(dir, 'ro');
  mkdirSync(data);
  mkdirSync(ro);
  writeFileSync(join(data, 'from-host.txt'), 'written by the host\n');
  writeFileSync(join(ro, 'kept.txt'), 'read-only\n');
  writeFileSync(join(data, 'host-suid'), '#!/bin/sh\n', { mode: 0o4755 });
  chmodSync(join(data, 'host-suid'), 0o4755);
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, '127.0.0.1 localhost\n10.1.2.3 mounted-host\n');
  const secret = join(dir, 'secret.txt');
  writeFileSync(secret, 'HOST SECRET\n');
  // Links made on the host pointing out of the mount: absolute, relative, and to the host's /etc.
  symlinkSync(secret, join(data, 'abs-link'));
  symlinkSync('../secret.txt', join(data, 'rel-link'));
  symlinkSync('../../../../../../../../etc', join(data, 'etc-link'));
  symlinkSync('loop-b', join(data, 'loop-a'));
  symlinkSync('loop-a', join(data, 'loop-b'));
  const img = join(dir, 'root.img');
  const cp = spawnSync('cp', ['--sparse=always', image, img]);
  assert.equal(cp.status, 0, cp.stderr?.toString());
  return { dir, data, ro, hosts, secret, img, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const PY = String.raw`
import errno, fcntl, json, mmap, os, sys
secret, = sys.argv[1:]
out = {}
def err(f):
    try:
        r = f()
        return ('ok', r if isinstance(r, (str, int, list)) else None)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def read(p):
    with open(p) as f:
        return f.read()
out['host_file'] = read('/data/from-host.txt')
with open('/data/inside.txt', 'w') as f:
    f.write('written inside\n')
with open('/data/inside.txt', 'a') as f:
    f.write('appended\n')
with open('/data/inside.txt', 'r+') as f:
    f.seek(0); f.write('W')
    f.seek(0, 2); out['tell_end'] = f.tell()
os.truncate('/data/inside.txt', len('Written inside\nappended\n'))
st = os.stat('/data/inside.txt')
out['size'] = st.st_size
out['dev_differs'] = os.stat('/data').st_dev != os.stat('/').st_dev
out['ino'] = st.st_ino
os.mkdir('/data/dir', 0o750)
out['dir_mode'] = oct(os.stat('/data/dir').st_mode & 0o777)
os.rename('/data/inside.txt', '/data/dir/moved.txt')
with open('/data/dir/gone', 'w') as f: f.write('x')
os.unlink('/data/dir/gone')
os.mkdir('/data/dir/empty'); os.rmdir('/data/dir/empty')
out['listdir'] = sorted(os.listdir('/data/dir'))
os.symlink('moved.txt', '/data/dir/link')
out['readlink'] = os.readlink('/data/dir/link')
out['via_link'] = read('/data/dir/link')
os.link('/data/dir/moved.txt', '/data/dir/hard')
out['nlink'] = os.stat('/data/dir/moved.txt').st_nlink
os.chmod('/data/dir/hard', 0o600)
os.utime('/data/dir/hard', (1000000000, 1000000000))
out['mtime'] = os.stat('/data/dir/moved.txt').st_mtime
with open('/data/dir/excl', 'x') as f: pass
with open('/data/suid', 'w') as f: os.fchmod(f.fileno(), 0o4755)
os.chmod('/data/suid', 0o6755)
os.mkdir('/data/sgid-dir'); os.chmod('/data/sgid-dir', 0o2775)
pf = os.open('/data/dir', os.O_PATH | os.O_NOFOLLOW); os.chmod('/proc/self/fd/%d' % pf, 0o751); os.close(pf)  # glibc's fchmodat(AT_SYMLINK_NOFOLLOW), tar
with open('/data/host-suid', 'a') as f: f.write('echo rewritten\\n')
out['excl_again'] = err(lambda: open('/data/dir/excl', 'x'))
out['open_dir_w'] = err(lambda: open('/data/dir', 'w'))
out['notdir'] = err(lambda: open('/data/dir/moved.txt/x'))
out['enoent'] = err(lambda: open('/data/nope'))
# mmap: shared writes reach the host file, private ones do not
with open('/data/map.bin', 'wb') as f: f.write(b'a' * 8192)
with open('/data/map.bin', 'r+b') as f:
    m = mmap.mmap(f.fileno(), 8192, mmap.MAP_SHARED)
    m[0:6] = b'SHARED'
    out['coherent'] = os.pread(f.fileno(), 6, 0).decode()
    with open('/data/map.bin', 'r+b') as g: g.seek(8); g.write(b'HOSTSIDE')
    out['sees_write'] = m[8:16].decode()
    m.flush(); m.close()
    p = mmap.mmap(f.fileno(), 8192, mmap.MAP_PRIVATE)
    p[0:7] = b'PRIVATE'; out['private_sees'] = p[0:7].decode(); p.close()
with open('/data/map.bin', 'rb') as f: out['map_head'] = f.read(7).decode()
# flock on a host file: a second description conflicts
a = open('/data/map.bin'); b = open('/data/map.bin')
fcntl.flock(a, fcntl.LOCK_EX)
out['flock_conflict'] = err(lambda: fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB))
a.close(); b.close()
# cwd inside the mount, relative paths, .. out of it
os.chdir('/data/dir')
out['cwd'] = os.getcwd()
out['rel'] = read('moved.txt')[:7]
out['proc_cwd'] = read('/proc/self/cwd/moved.txt')[:7]
os.chdir('..'); os.chdir('..')
out['cwd_up'] = os.getcwd()
out['image_after_up'] = os.path.exists('usr/bin/python3')
# read-only mount and a mounted single file
out['ro_read'] = read('/ro/kept.txt')
out['ro_write'] = err(lambda: open('/ro/kept.txt', 'a'))
out['ro_create'] = err(lambda: open('/ro/new', 'w'))
out['ro_mkdir'] = err(lambda: os.mkdir('/ro/d'))
out['ro_unlink'] = err(lambda: os.unlink('/ro/kept.txt'))
out['ro_access_w'] = os.access('/ro/kept.txt', os.W_OK)
out['access'] = [os.access('/data/from-host.txt', os.R_OK | os.W_OK), os.access('/data/host-suid', os.X_OK), os.access('/data/dir', os.X_OK), os.access('/data/etc-link/', os.W_OK), os.access('/data/nope', os.F_OK)]
out['hosts'] = read('/etc/hosts')
out['hosts_write'] = err(lambda: open('/etc/hosts', 'a'))
out['hosts_rm'] = err(lambda: os.unlink('/etc/hosts'))
# across mounts and the image
out['rename_xdev'] = err(lambda: os.rename('/data/dir/moved.txt', '/tmp/moved.txt'))
out['rename_in_xdev'] = err(lambda: os.rename('/etc/passwd', '/data/passwd'))
out['link_xdev'] = err(lambda: os.link('/etc/passwd', '/data/pw'))
out['rmdir_mountpoint'] = err(lambda: os.rmdir('/data'))
# escapes: none reaches the host's secret
def leaked(p):
    try:
        with open(p) as f:
            return 'HOST SECRET' in f.read()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
out['abs_link'] = leaked('/data/abs-link')
out['rel_link'] = leaked('/data/rel-link')
out['dotdot'] = leaked('/data/../secret.txt')
out['dotdot_deep'] = leaked('/data/../../../../../../' + secret)
out['host_path'] = leaked(secret)
out['etc_link_shadow'] = err(lambda: read('/data/etc-link/hostname'))
os.symlink(secret, '/data/made-abs'); os.symlink('../secret.txt', '/data/made-rel'); os.symlink('../../../../../..' + secret, '/data/made-deep')
out['made_abs'] = leaked('/data/made-abs')
out['made_rel'] = leaked('/data/made-rel')
out['made_deep'] = leaked('/data/made-deep')
root = os.open('/', os.O_RDONLY | os.O_DIRECTORY)
out['link_via_symlink'] = err(lambda: os.link('data/made-rel', 'data/hl', src_dir_fd=root, dst_dir_fd=root, follow_symlinks=True))
out['link_nofollow'] = err(lambda: os.link('/data/made-rel', '/data/hl2', follow_symlinks=False))
out['hl2_is_link'] = os.path.islink('/data/hl2')
d = os.open('/data', os.O_RDONLY | os.O_DIRECTORY)
out['dirfd_up'] = leaked('/proc/self/fd/%d/../secret.txt' % d)
out['dirfd_rel'] = err(lambda: os.stat('../secret.txt', dir_fd=d))
out['dirfd_in'] = os.stat('from-host.txt', dir_fd=d).st_size
os.close(d)
out['loop'] = err(lambda: read('/data/loop-a'))
# links of the mount leading into the image work for every call, there
os.symlink('/tmp', '/data/to-tmp')
os.mkdir('/data/to-tmp/via-link')
os.rename('/data/to-tmp/via-link', '/data/to-tmp/via-link2')
with open('/data/to-tmp/via-link2/f', 'w') as f: f.write('in the image')
os.chmod('/data/to-tmp/via-link2/f', 0o640)
out['via_link_image'] = [os.path.isdir('/tmp/via-link2'), read('/tmp/via-link2/f'), oct(os.stat('/tmp/via-link2/f').st_mode & 0o777)]
os.unlink('/data/to-tmp/via-link2/f'); os.rmdir('/data/to-tmp/via-link2')
out['via_link_gone'] = os.path.exists('/tmp/via-link2')
os.chdir('/data/to-tmp'); out['cwd_via_link'] = os.getcwd(); os.chdir('/')
d = os.open('/data', os.O_RDONLY | os.O_DIRECTORY)
os.mkdir('../made-by-dirfd', dir_fd=d)
os.close(d)
out['dirfd_mkdir_image'] = os.path.isdir('/made-by-dirfd')
# links of the image leading into a mount
os.symlink('/data', '/link-to-data'); os.symlink('../data/dir', '/tmp/rel-to-dir')
out['image_link_into_mount'] = [read('/link-to-data/from-host.txt'), sorted(os.listdir('/tmp/rel-to-dir/')), os.path.islink('/link-to-data')]
with open('/tmp/rel-to-dir/via-image-link', 'w') as f: f.write('x')
out['mkdir_through_link'] = err(lambda: os.mkdir('/data/made-rel-dir/x'))
out['exec'] = err(lambda: os.execv('/data/from-host.txt', ['x']))
mi = read('/proc/self/mountinfo'); mo = read('/proc/self/mounts')
out['mountinfo'] = [l.split()[4] for l in mi.splitlines() if 'hostfs' in l]
out['mounts'] = [l.split()[1] + ':' + l.split()[3].split(',')[0] for l in mo.splitlines() if 'hostfs' in l]
print(json.dumps(out))
`;

test('host mounts: files both ways, ro, a single file, escapes stay inside, /proc lists them, e2fsck clean', { skip: noNet, timeout: 120_000 }, async () => {
  const t = hostTree(NET);
  try {
    const r = await Sandbox.run('/usr/bin/python3', ['-c', PY, t.secret], {
      image: t.img,
      platform: PLATFORM,
      stdout: 'pipe',
      stderr: 'pipe',
      timeout: 90,
      mounts: [
        { host: t.data, target: '/data' },
        { host: t.ro, target: '/ro', readonly: true },
        { host: t.hosts, target: '/etc/hosts', readonly: true },
      ],
    });
    assert.equal(r.status, 0, r.stderr?.toString());
    const o = JSON.parse(r.stdout!.toString()) as Record<string, unknown>;
    // both ways
    assert.equal(o.host_file, 'written by the host\n');
    assert.equal(readFileSync(join(t.data, 'dir', 'moved.txt'), 'utf8'), 'Written inside\nappended\n');
    assert.equal(o.tell_end, 'Written inside\nappended\n'.length);
    assert.equal(o.size, 24);
    assert.equal(o.dev_differs, true);
    assert.equal(o.ino, statSync(join(t.data, 'dir', 'moved.txt')).ino, 'the host inode number');
    assert.equal(o.dir_mode, '0o750');
    assert.deepEqual(o.listdir, ['moved.txt']);
    assert.deepEqual(readdirSync(join(t.data, 'dir')).sort(), ['excl', 'hard', 'link', 'moved.txt', 'via-image-link']);
    assert.equal(o.readlink, 'moved.txt');
    assert.equal(o.via_link, 'Written inside\nappended\n');
    assert.equal(o.nlink, 2);
    assert.equal(statSync(join(t.data, 'dir', 'moved.txt')).mode & 0o777, 0o600);
    assert.equal(o.mtime, 1000000000);
    assert.equal(statSync(join(t.data, 'suid')).mode & 0o7777, 0o755, 'no set-uid or set-gid file is made on the host');
    assert.equal(statSync(join(t.data, 'sgid-dir')).mode & 0o7777, 0o2775, 'a set-gid directory is kept');
    assert.equal(statSync(join(t.data, 'dir')).mode & 0o777, 0o751, 'chmod through /proc/self/fd of an O_PATH fd');
    assert.equal(statSync(join(t.data, 'host-suid')).mode & 0o7777, 0o755, 'a host set-uid file written by the program loses set-uid');
    assert.equal(o.excl_again, 'EEXIST');
    assert.equal(o.open_dir_w, 'EISDIR');
    assert.equal(o.notdir, 'ENOTDIR');
    assert.equal(o.enoent, 'ENOENT');
    assert.equal(o.private_sees, 'PRIVATE');
    if (PLATFORM === 'kvm') {
      // The host file itself is mapped: stores are the file's at once, and writes to the file are seen.
      assert.equal(o.coherent, 'SHARED');
      assert.equal(o.sees_write, 'HOSTSIDE');
    }
    assert.equal(o.map_head, 'SHAREDa');
    assert.equal(readFileSync(join(t.data, 'map.bin')).subarray(0, 7).toString(), 'SHAREDa');
    assert.equal(o.flock_conflict, 'EAGAIN');
    assert.equal(o.cwd, '/data/dir');
    assert.equal(o.rel, 'Written');
    assert.equal(o.proc_cwd, 'Written');
    assert.equal(o.cwd_up, '/');
    assert.equal(o.image_after_up, true);
    // read-only
    assert.equal(o.ro_read, 'read-only\n');
    for (const k of ['ro_write', 'ro_create', 'ro_mkdir', 'ro_unlink', 'hosts_write']) assert.equal(o[k], 'EROFS', k);
    assert.equal(o.ro_access_w, false);
    assert.deepEqual(o.access, [true, false, true, true, false]);
    assert.equal(o.hosts, '127.0.0.1 localhost\n10.1.2.3 mounted-host\n');
    assert.equal(o.hosts_rm, 'EROFS');
    assert.deepEqual(readdirSync(t.ro), ['kept.txt']);
    // across the image
    assert.equal(o.rename_xdev, 'EXDEV');
    assert.equal(o.rename_in_xdev, 'EXDEV');
    assert.equal(o.link_xdev, 'EXDEV');
    assert.equal(o.rmdir_mountpoint, 'EBUSY');
    // escapes: each resolves in the sandbox (where DIR/secret.txt does not exist), never on the host
    for (const k of ['abs_link', 'rel_link', 'dotdot', 'dotdot_deep', 'host_path', 'made_abs', 'made_rel', 'made_deep', 'dirfd_up']) {
      assert.equal(o[k], 'ENOENT', `${k}: ${String(o[k])}`);
    }
    assert.equal(o.dirfd_rel, 'ENOENT');
    assert.equal(o.dirfd_in, 'written by the host\n'.length);
    assert.equal(o.etc_link_shadow, 'ENOENT', 'a host link to /etc is the sandbox\'s /etc');
    assert.equal(o.link_via_symlink, 'EXDEV', 'a hard link through a link leading out of the mount');
    assert.deepEqual(o.link_nofollow, ['ok', null]);
    assert.equal(o.hl2_is_link, true);
    assert.equal(existsSync(join(t.data, 'hl')), false);
    assert.equal(lstatSync(join(t.data, 'hl2')).isSymbolicLink(), true, 'a hard link of the link itself, not of its target');
    assert.equal(o.loop, 'ELOOP');
    assert.deepEqual(o.via_link_image, [true, 'in the image', '0o640']);
    assert.equal(o.via_link_gone, false);
    assert.equal(o.cwd_via_link, '/tmp');
    assert.equal(o.dirfd_mkdir_image, true);
    assert.deepEqual(o.image_link_into_mount, ['written by the host\n', ['excl', 'hard', 'link', 'moved.txt'], true]);
    assert.equal(readFileSync(join(t.data, 'dir', 'via-image-link'), 'utf8'), 'x');
    assert.equal(existsSync(join(t.dir, 'made-by-dirfd')), false);
    assert.equal(existsSync('/made-by-dirfd'), false);
    assert.equal(o.mkdir_through_link, 'ENOENT');
    assert.equal(o.exec, 'EACCES');
    assert.equal(readFileSync(t.secret, 'utf8'), 'HOST SECRET\n');
    assert.deepEqual(o.mountinfo, ['/data', '/ro', '/etc/hosts']);
    assert.deepEqual(o.mounts, ['/data:rw', '/ro:ro', '/etc/hosts:ro']);
    // A shared mapping's stores reach the host file when the program ends without munmap (os._exit).
    const ex = await Sandbox.run('/usr/bin/python3', ['-c', 'import mmap, os\nf = open("/data/map.bin", "r+b")\nm = mmap.mmap(f.fileno(), 8192)\nm[0:4] = b"EXIT"\nos._exit(0)'], {
      image: t.img,
      platform: PLATFORM,
      stderr: 'pipe',
      timeout: 60,
      mounts: [{ host: t.data, target: '/data' }],
    });
    assert.equal(ex.status, 0, ex.stderr?.toString());
    assert.equal(readFileSync(join(t.data, 'map.bin')).subarray(0, 7).toString(), 'EXITEDa');
    const fsck = spawnSync('e2fsck', ['-fn', t.img], { encoding: 'utf8' });
    assert.equal(fsck.status, 0, fsck.stdout + fsck.stderr);
  } finally {
    t.cleanup();
  }
});

test('host mounts with coreutils and bash: cp, mv across, ls, a rw single file, host writes seen mid-run', { skip: noImage, timeout: 120_000 }, async () => {
  const t = hostTree();
  try {
    const script = [
      'set -e',
      'cp /usr/bin/python3 /data/py-copy', // copy_file_range from the image to the host
      'cp -a /data/from-host.txt /data/cp-a.txt',
      'echo moved > /tmp/m.txt && mv /tmp/m.txt /data/m.txt', // across: EXDEV, then copy + unlink
      'mv /data/cp-a.txt /tmp/back.txt && cat /tmp/back.txt',
      'ls /data | sort | tr "\\n" " "; echo',
      'echo "1.2.3.4 rw-file" >> /etc/hosts',
      'cat /etc/hosts | tail -1',
      ': > /data/ready; until [ -e /data/from-host-later ]; do sleep 0.05; done; cat /data/from-host-later',
      '[ "$(sha256sum < /usr/bin/python3)" = "$(sha256sum < /data/py-copy)" ] && echo same',
      'df /data >/dev/null && echo statfs-ok',
      'ls /srv/new', // a mount point the image lacks: made in the (cow) image, so its parent lists it
    ].join('\n');
    const sb = new Sandbox('/bin/bash', ['-c', script], {
      image: `${t.img},cow`,
      platform: PLATFORM,
      stdout: 'pipe',
      stderr: 'pipe',
      timeout: 90,
      mounts: [
        { host: t.data, target: '/data' },
        { host: t.hosts, target: '/etc/hosts' },
        { host: t.ro, target: '/srv/new/point', readonly: true },
      ],
    });
    const run = sb.run();
    const poll = setInterval(() => {
      if (existsSync(join(t.data, 'ready'))) {
        clearInterval(poll);
        writeFileSync(join(t.data, 'from-host-later'), 'the host wrote this while it ran\n');
      }
    }, 50);
    const r = await run.finally(() => clearInterval(poll));
    assert.equal(r.status, 0, r.stderr?.toString());
    const lines = r.stdout!.toString().split('\n');
    assert.equal(lines[0], 'written by the host');
    assert.match(lines[1]!, /^abs-link etc-link from-host.txt host-suid loop-a loop-b m.txt py-copy rel-link $/);
    assert.equal(lines[2], '1.2.3.4 rw-file');
    assert.equal(lines[3], 'the host wrote this while it ran');
    assert.equal(lines[4], 'same');
    assert.equal(lines[5], 'statfs-ok');
    assert.equal(lines[6], 'point');
    assert.equal(readFileSync(join(t.data, 'm.txt'), 'utf8'), 'moved\n');
    assert.equal(readFileSync(t.hosts, 'utf8'), '127.0.0.1 localhost\n10.1.2.3 mounted-host\n1.2.3.4 rw-file\n');
  } finally {
    t.cleanup();
  }
});

test('--mount at the CLI: a missing host path, a relative target, /proc: exit 125 with one line', { skip: noImage, timeout: 60_000 }, () => {
  const t = hostTree();
  try {
    const run = (m: string): { status: number | null; stderr: string; stdout: string } =>
      spawnSync('node', [CLI, 'run', '--image', `${SHELL},ro`, '--platform', PLATFORM, '--mount', m, '--', '/bin/cat', '/data/from-host.txt'], { encoding: 'utf8' });
    const ok = run(`${t.data}:/data:ro`);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'written by the host\n');
    for (const [m, re] of [
      [`${t.dir}/none:/data`, /host path .* does not exist/],
      [`${t.data}:data`, /absolute path/],
      [`${t.data}`, /names no target/],
      [`${t.data}:/proc/x`, /\/proc, \/sys or \/dev/],
      [`${t.data}:/`, /sandbox root/],
    ] as Array<[string, RegExp]>) {
      const r = run(m);
      assert.equal(r.status, 125, `${m}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  } finally {
    t.cleanup();
  }
});

test('a checkpoint is refused while a file of a host mount is open, with one line naming it', { skip: noNet, timeout: 60_000 }, async () => {
  const t = hostTree(NET);
  try {
    const sb = new Sandbox('/usr/bin/python3', ['-c', 'import time\nf = open("/data/from-host.txt")\nprint("open", flush=True)\ntime.sleep(30)'], {
      image: `${t.img},cow`,
      platform: PLATFORM,
      stdout: 'pipe',
      timeout: 45,
      mounts: [{ host: t.data, target: '/data' }],
    });
    const run = sb.run();
    for (let i = 0; i < 400; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const st = (await sb.liveStats()) as { syscalls: Array<{ name: string; count: number }> };
      if ((st.syscalls.find((c) => c.name === 'clock_nanosleep')?.count ?? 0) >= 1) break;
    }
    await assert.rejects(sb.checkpoint(join(t.dir, 'ckpt')), /fd \d+ is \/data\/from-host.txt of a host mount, which a checkpoint cannot hold yet/);
    sb.stop();
    await run;
  } finally {
    t.cleanup();
  }
});
