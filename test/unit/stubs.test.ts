/** The assembled trap stubs are what stubs.S says: checked by disassembling them with objdump. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadStubs, SYSCALL_STUB_IRET_OFFSET } from '../../src/platform/kvm/stubs.js';
import { EXCEPTION_PORT_BASE, EXCEPTION_STUB_STRIDE, SYSCALL_PORT } from '../../src/platform/kvm/layout.js';

function disassemble(bytes: Uint8Array): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-stubs-'));
  try {
    const f = join(dir, 'x.bin');
    writeFileSync(f, bytes);
    const out = execFileSync('objdump', ['-D', '-b', 'binary', '-mi386:x86-64', f], { encoding: 'utf8' });
    return out.split('\n').filter((l) => /^\s+[0-9a-f]+:\t/.test(l)).map((l) => l.split('\t').slice(2).join(' ').replace(/\s+/g, ' ').trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('syscall stub: out to the syscall port, then iretq', () => {
  const { syscall } = loadStubs();
  const ins = disassemble(syscall);
  assert.equal(ins[0], `out %al,$0x${SYSCALL_PORT.toString(16)}`);
  assert.equal(ins[1], 'iretq');
  assert.equal(syscall[SYSCALL_STUB_IRET_OFFSET], 0x48); // REX.W of iretq
});

test('exception stubs: vector v exits through port 0x40+v and touches no register', () => {
  const { exceptions } = loadStubs();
  for (let v = 0; v < 32; v++) {
    const ins = disassemble(exceptions.subarray(v * EXCEPTION_STUB_STRIDE, v * EXCEPTION_STUB_STRIDE + 3));
    assert.equal(ins[0], `out %al,$0x${(EXCEPTION_PORT_BASE + v).toString(16)}`);
    assert.equal(ins[1], 'hlt');
  }
});
