/**
 * Sockets in the sandbox: test/guest/net.c's 57 checks of Linux's socket semantics give the same
 * output in the sandbox as natively; the default policy has no outside network; a socket flood stays
 * bounded; `--net host` reaches a host server that the default policy cannot; a checkpoint refuses an
 * open socket by name. (Real servers over --publish: net-debian.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MapvisorError, Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SHELL = join(ROOT, '.cache', 'images', 'shell.img');
const NET = join(ROOT, '.cache', 'guest', 'net');
const noImage = existsSync(SHELL) && existsSync(NET) ? false : `${SHELL} or ${NET} not built (node scripts/fixtures.mjs)`;

async function inBox(prog: string, args: string[], extra: Partial<Parameters<typeof Sandbox.run>[2]> = {}): Promise<{ status: number; out: string; err: string }> {
  const r = await Sandbox.run(prog, args, { image: `${SHELL},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 120, ...extra });
  return { status: r.status, out: r.stdout!.toString(), err: r.stderr!.toString() + (r.reason ? `\n[${r.reason}]` : '') };
}

test(`net.c: 57 socket checks give the same output as natively [${PLATFORM}]`, { timeout: 180_000, skip: noImage }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mv-net-'));
  try {
    const native = spawnSync(NET, [dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(native.status, 0, `native run failed:\n${native.stdout}`);
    const box = await inBox('/guest/net', ['/tmp']);
    assert.equal(box.out, native.stdout, box.err);
    assert.equal(box.status, 0, box.err);
    assert.match(box.out, /^done 57$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`--net none: an address off the loopback is unreachable [${PLATFORM}]`, { timeout: 60_000, skip: noImage }, async () => {
  const box = await inBox('/guest/net', ['netcheck']);
  assert.equal(box.out, 'connect 192.0.2.1: ENETUNREACH\n', box.err);
});

test(`a flood of sockets, connects and fd-passing cycles ends by itself, within the limits [${PLATFORM}]`, { timeout: 300_000, skip: noImage }, async () => {
  const box = await inBox('/guest/netflood', [], { timeout: 240 });
  assert.equal(box.status, 0, box.err);
  assert.match(box.out, /^socket stopped at \d+: EMFILE$/m);
  assert.match(box.out, /^unix connect stopped at \d+: EAGAIN$/m, 'a full backlog refuses more');
  assert.match(box.out, /^netflood done$/m);
});

test(`--net host reaches a host server; the default policy reaches the sandbox's own loopback [${PLATFORM}]`, { timeout: 120_000, skip: noImage }, async () => {
  const server = createServer((c) => c.end('from the host\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const code = `import socket\ntry:\n  s = socket.create_connection(("127.0.0.1", ${port}), timeout=10)\n  print(s.recv(100).decode().strip())\nexcept OSError as e:\n  print("errno", e.errno)`;
    const host = await inBox('/usr/bin/python3', ['-c', code], { net: 'host' });
    assert.equal(host.out, 'from the host\n', host.err);
    const none = await inBox('/usr/bin/python3', ['-c', code]);
    assert.equal(none.out, 'errno 111\n', `nobody listens on ${port} in the sandbox: ECONNREFUSED\n${none.err}`);
  } finally {
    server.close();
  }
});

test(`a checkpoint names the open socket it cannot hold [${PLATFORM}]`, { timeout: 120_000, skip: noImage }, async () => {
  const code = 'import socket, time\ns = socket.socket()\ns.bind(("127.0.0.1", 8123))\ns.listen()\nprint("ready", flush=True)\ntime.sleep(60)';
  const sb = new Sandbox('/usr/bin/python3', ['-c', code], { image: `${SHELL},cow`, stdout: 'pipe', stderr: 'pipe', timeout: 90 });
  const run = sb.run();
  const dir = mkdtempSync(join(tmpdir(), 'mv-net-ckpt-'));
  try {
    // Wait until the listener exists (python writes "ready" after listen).
    for (let i = 0; i < 200; i++) {
      const s = (await sb.liveStats().catch(() => null)) as { syscalls?: Array<{ name: string }> } | null;
      if (s?.syscalls?.some((c) => c.name === 'listen')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await assert.rejects(sb.checkpoint(dir), (e: unknown) => e instanceof MapvisorError && /is a socket \(tcp listening 127\.0\.0\.1:8123\)/.test(e.message));
  } finally {
    sb.stop();
    await run;
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`bad network options are one-line errors [${PLATFORM}]`, { timeout: 60_000 }, async () => {
  await assert.rejects(Sandbox.run('/bin/true', [], { net: 'bogus' as 'none' }), (e: unknown) => e instanceof MapvisorError && /not none or host/.test(e.message));
  await assert.rejects(Sandbox.run('/bin/true', [], { publish: [{ hostPort: 0, port: 80 }] }), (e: unknown) => e instanceof MapvisorError && /1 to 65535/.test(e.message));
  await assert.rejects(Sandbox.run('/bin/true', [], { net: 'host', publish: [{ hostPort: 8080, port: 80 }] }), (e: unknown) => e instanceof MapvisorError && /--net host/.test(e.message));
  // A host port that is taken is refused at start, naming it.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const taken = (server.address() as AddressInfo).port;
  try {
    await assert.rejects(
      Sandbox.run(join(ROOT, '.cache', 'guest', 'hello'), [], { publish: [{ hostPort: taken, port: 80 }], stdout: 'pipe' }),
      (e: unknown) => e instanceof MapvisorError && new RegExp(`host port ${taken} is already in use`).test(e.message) && /--publish/.test(e.fix),
    );
  } finally {
    server.close();
  }
});

test(`sendfile from a file of the image to a socket; localhost resolves to 127.0.0.1 and ::1 [${PLATFORM}]`, { timeout: 120_000, skip: noImage }, async () => {
  const code = [
    'import socket, os, threading',
    'fd = os.open("/bin/sh", os.O_RDONLY)',
    'size = os.fstat(fd).st_size',
    's = socket.create_server(("localhost", 0))',
    'c = socket.create_connection(("localhost", s.getsockname()[1]))',
    'x, _ = s.accept()',
    'got = bytearray()',
    'def rd():',
    '    while True:',
    '        d = x.recv(1 << 16)',
    '        if not d: break',
    '        got.extend(d)',
    't = threading.Thread(target=rd); t.start()',
    'sent = 0',
    'while sent < size: sent += os.sendfile(c.fileno(), fd, sent, size - sent)',
    'c.close(); t.join()',
    'print(sent == size, bytes(got) == open("/bin/sh", "rb").read(), os.lseek(fd, 0, os.SEEK_CUR))',
    'print(sorted({a[4][0] for a in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)}))',
  ].join('\n');
  const box = await inBox('/usr/bin/python3', ['-c', code]);
  assert.equal(box.out, "True True 0\n['127.0.0.1', '::1']\n", box.err);
});
