/** The supervisor area's tables, decoded back as the CPU would read them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGdtAndTss, buildIdt, segmentDescriptor, STUB_PORTS, TSS_SIZE, VECTORS_WITH_ERROR_CODE } from '../../src/platform/kvm/descriptors.js';
import { buildPageTables, checkSpaceSize, translate, PTE_U, PTE_W, PTE_P } from '../../src/platform/kvm/pagetables.js';
import {
  EXCEPTION_STUBS_ADDR,
  EXCEPTION_STUB_STRIDE,
  GDT_ADDR,
  GIB,
  IDT_ADDR,
  SEL,
  SUPERVISOR_END,
  SYSCALL_PAGE_ADDR,
  TSS_ADDR,
  USER_START,
  MAX_SPACE,
} from '../../src/platform/kvm/layout.js';

function supervisorArea(space: number): DataView {
  const mem = new DataView(new ArrayBuffer(SUPERVISOR_END));
  buildPageTables(mem, space);
  buildGdtAndTss(mem);
  buildIdt(mem);
  return mem;
}

test('identity map: every 2 MiB page maps to itself; only user space is user-accessible', () => {
  const space = 4 * GIB;
  const mem = supervisorArea(space);
  for (let addr = 0; addr < space; addr += 0x20_0000) {
    const t = translate(mem, addr + 0x1234);
    assert.ok(t, `0x${addr.toString(16)} unmapped`);
    assert.equal(t.frame, addr);
    if (addr < SUPERVISOR_END) assert.equal(t.flags & PTE_U, 0, 'supervisor area must not be user-accessible');
    else if (addr === SYSCALL_PAGE_ADDR) assert.equal(t.flags & (PTE_U | PTE_W), PTE_U, 'syscall page: user-readable, read-only');
    else assert.equal(t.flags, PTE_P | PTE_W | PTE_U);
  }
  assert.equal(translate(mem, space), null, 'nothing past the space is mapped');
  assert.ok(USER_START > SYSCALL_PAGE_ADDR);
});

test('address-space sizes are checked', () => {
  assert.equal(checkSpaceSize(64 * GIB), null);
  assert.match(checkSpaceSize(GIB + 1)!, /whole number/);
  assert.match(checkSpaceSize(0)!, /at least/);
  assert.match(checkSpaceSize(MAX_SPACE + GIB)!, /at most/);
});

test('GDT holds Linux-numbered kernel and user segments and a 64-bit TSS', () => {
  const mem = supervisorArea(GIB);
  const desc = (sel: number): bigint => mem.getBigUint64(GDT_ADDR + (sel & ~7), true);
  const access = (d: bigint): number => Number((d >> 40n) & 0xffn);
  const flags = (d: bigint): number => Number((d >> 52n) & 0xfn);
  assert.equal(access(desc(SEL.KERNEL_CS)), 0x9b);
  assert.equal(flags(desc(SEL.KERNEL_CS)) & 0x2, 0x2, 'kernel CS is 64-bit (L=1)');
  assert.equal(access(desc(SEL.USER_CS)), 0xfb, 'user CS: present, DPL3, code');
  assert.equal(flags(desc(SEL.USER_CS)) & 0x2, 0x2, 'user CS is 64-bit');
  assert.equal(access(desc(SEL.USER_DS)), 0xf3, 'user DS: DPL3 data');
  const tss = desc(SEL.TSS);
  assert.equal(access(tss), 0x89, '64-bit available TSS');
  assert.equal(Number((tss >> 16n) & 0xffffffn), TSS_ADDR);
  assert.equal(Number(tss & 0xffffn), TSS_SIZE - 1);
  assert.equal(segmentDescriptor(0x12345678, 0xabcde, 0x9b, 0xa), 0x12aa9b345678bcden);
});

test('TSS I/O bitmap opens exactly the stub ports', () => {
  const mem = supervisorArea(GIB);
  const base = mem.getUint16(TSS_ADDR + 0x66, true);
  const open = (port: number): boolean => {
    const at = TSS_ADDR + base + (port >> 3);
    if (at >= TSS_ADDR + TSS_SIZE) return false;
    return (mem.getUint8(at) & (1 << (port & 7))) === 0;
  };
  const allowed = new Set(STUB_PORTS);
  for (let port = 0; port < 0x10000; port++) assert.equal(open(port), allowed.has(port), `port 0x${port.toString(16)}`);
  assert.equal(mem.getUint8(TSS_ADDR + TSS_SIZE - 1), 0xff, 'the bitmap ends with 0xff');
});

test('IDT: vectors 0..31 are interrupt gates to their stubs; int3/into are callable from CPL3', () => {
  const mem = supervisorArea(GIB);
  for (let v = 0; v < 256; v++) {
    const lo = mem.getBigUint64(IDT_ADDR + v * 16, true);
    const hi = mem.getBigUint64(IDT_ADDR + v * 16 + 8, true);
    if (v >= 32) {
      assert.equal(lo, 0n);
      continue;
    }
    const target = Number((lo & 0xffffn) | ((lo >> 32n) & 0xffff0000n) | (hi << 32n));
    assert.equal(target, EXCEPTION_STUBS_ADDR + v * EXCEPTION_STUB_STRIDE);
    assert.equal(Number((lo >> 16n) & 0xffffn), SEL.KERNEL_CS);
    const type = Number((lo >> 40n) & 0xffn);
    assert.equal(type, v === 3 || v === 4 ? 0xee : 0x8e);
  }
  assert.deepEqual([...VECTORS_WITH_ERROR_CODE].sort((a, b) => a - b), [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
});
