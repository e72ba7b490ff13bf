/**
 * The socket ABI's byte layouts (src/abi/socket.ts) against what a C compiler says of <sys/socket.h>,
 * <sys/un.h> and <netinet/in.h> on this host, and the address codec's round trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AF_INET,
  AF_INET6,
  AF_UNIX,
  CMSGHDR,
  LINGER_SIZE,
  MMSGHDR,
  MSGHDR,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_UN_SIZE,
  UCRED_SIZE,
  cmsgLen,
  cmsgSpace,
  decodeSockAddr,
  encodeSockAddr,
  formatSockAddr,
  isLoopback,
  isV4Mapped,
  mapV4,
  type InetAddr,
  type UnixAddr,
} from '../../src/abi/socket.js';

test('socket structures have the sizes and offsets the host C library says', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mv-sockabi-'));
  try {
    const src = join(dir, 'l.c');
    writeFileSync(src, `#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
int main(void) {
  printf("%zu %zu %zu %zu\\n", sizeof(struct sockaddr_un), sizeof(struct sockaddr_in), sizeof(struct sockaddr_in6), sizeof(struct ucred));
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\\n", sizeof(struct msghdr), offsetof(struct msghdr, msg_namelen), offsetof(struct msghdr, msg_iov), offsetof(struct msghdr, msg_iovlen), offsetof(struct msghdr, msg_control), offsetof(struct msghdr, msg_controllen), offsetof(struct msghdr, msg_flags), sizeof(struct mmsghdr));
  printf("%zu %zu %zu %zu %zu\\n", sizeof(struct cmsghdr), offsetof(struct cmsghdr, cmsg_level), offsetof(struct cmsghdr, cmsg_type), (size_t)CMSG_SPACE(12), (size_t)CMSG_LEN(12));
  printf("%zu %zu\\n", sizeof(struct linger), offsetof(struct mmsghdr, msg_len));
  return 0;
}
`);
    const bin = join(dir, 'l');
    const cc = spawnSync('gcc', ['-o', bin, src], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const out = spawnSync(bin, { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.split(' ').map(Number));
    assert.deepEqual(out[0], [SOCKADDR_UN_SIZE, SOCKADDR_IN_SIZE, SOCKADDR_IN6_SIZE, UCRED_SIZE]);
    assert.deepEqual(out[1], [MSGHDR.size, MSGHDR.namelen, MSGHDR.iov, MSGHDR.iovlen, MSGHDR.control, MSGHDR.controllen, MSGHDR.flags, MMSGHDR.size]);
    assert.deepEqual(out[2], [CMSGHDR.size, CMSGHDR.level, CMSGHDR.type, cmsgSpace(12), cmsgLen(12)]);
    assert.deepEqual(out[3], [LINGER_SIZE, MMSGHDR.len]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('AF_UNIX addresses: path, abstract and unnamed names round-trip with Linux lengths', () => {
  const path: UnixAddr = { family: AF_UNIX, kind: 'path', name: new Uint8Array(Buffer.from('/tmp/s')) };
  const enc = encodeSockAddr(path);
  assert.equal(enc.length, 2 + 6 + 1, 'family, the path, its NUL');
  assert.deepEqual(decodeSockAddr(enc, AF_UNIX), path);
  const abs: UnixAddr = { family: AF_UNIX, kind: 'abstract', name: new Uint8Array(Buffer.from('x\0y')) };
  const e2 = encodeSockAddr(abs);
  assert.equal(e2.length, 2 + 1 + 3, 'family, the leading NUL, the name (NULs kept)');
  assert.deepEqual(decodeSockAddr(e2, AF_UNIX), abs);
  assert.equal(encodeSockAddr({ family: AF_UNIX, kind: 'unnamed', name: new Uint8Array(0) }).length, 2);
  assert.equal(decodeSockAddr(new Uint8Array(111), AF_UNIX), -22, 'longer than sockaddr_un: EINVAL');
});

test('inet addresses: IPv4 is kept mapped, ports are big-endian, IPv6 keeps flow and scope', () => {
  const v4 = new Uint8Array(16);
  new DataView(v4.buffer).setUint16(0, AF_INET, true);
  new DataView(v4.buffer).setUint16(2, 8080, false);
  v4.set([127, 0, 0, 1], 4);
  const a = decodeSockAddr(v4, AF_INET) as InetAddr;
  assert.equal(a.port, 8080);
  assert.ok(isV4Mapped(a.ip) && isLoopback(a));
  assert.deepEqual(encodeSockAddr(a), v4);
  assert.equal(formatSockAddr(a), '127.0.0.1:8080');
  const v6 = encodeSockAddr({ family: AF_INET6, ip: mapV4(new Uint8Array([10, 0, 0, 1])), port: 1, flowinfo: 7, scopeId: 3 });
  const b = decodeSockAddr(v6, AF_INET6) as InetAddr;
  assert.equal(b.port, 1);
  assert.equal(b.flowinfo, 7);
  assert.equal(b.scopeId, 3);
  assert.ok(!isLoopback(b));
  assert.equal(decodeSockAddr(new Uint8Array([AF_INET, 0, 0, 80, 127, 0, 0, 1]), AF_INET), -22, 'a short sockaddr_in: EINVAL');
});
