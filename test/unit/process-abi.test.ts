/**
 * The process platform's contract: every number the stub's C header (src/platform/process/stub/abi.h)
 * defines is the same in src/platform/process/abi.ts, and the slot and control-area layouts fit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as abi from '../../src/platform/process/abi.js';
import { USER_START } from '../../src/platform/layout.js';
import { REGS_SIZE, FXSAVE_SIZE } from '../../src/platform/regs.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const header = readFileSync(`${ROOT}/src/platform/process/stub/abi.h`, 'utf8');

function defines(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of header.matchAll(/^#define\s+([A-Z_0-9]+)\s+(0x[0-9a-fA-F]+|\d+)U?L?U?\b/gm)) out.set(m[1]!, Number(m[2]!));
  return out;
}

test('abi.ts has every number of abi.h, with the same value', () => {
  const d = defines();
  assert.ok(d.size > 60, `parsed ${d.size} defines`);
  const ts = abi as unknown as Record<string, unknown>;
  for (const [name, value] of d) {
    assert.ok(name in ts, `abi.ts lacks ${name}`);
    assert.equal(ts[name], value, name);
  }
});

test('the control area and the stub sit below user space; slots hold their records', () => {
  assert.ok(abi.STUB_LOAD_ADDR < abi.CTL_ADDR);
  assert.ok(abi.CTL_ADDR + abi.CTL_SIZE <= USER_START);
  assert.ok(abi.OPS_OFF + abi.OPS_CAP * abi.OP_SIZE <= abi.SLOTS_OFF);
  assert.ok(abi.SLOTS_OFF + abi.MAX_THREADS * abi.SLOT_SIZE <= abi.ALT_OFF);
  assert.ok(abi.ALT_OFF + abi.MAX_THREADS * abi.ALT_SIZE <= abi.CTL_SIZE);
  assert.equal(abi.S_FS_BASE - abi.S_REGS, REGS_SIZE);
  assert.equal(abi.S_FXSAVE % 16, 0);
  assert.ok(abi.S_FXSAVE + FXSAVE_SIZE <= abi.S_END);
  assert.ok(abi.S_SUP_KICK >= abi.S_END && abi.S_SUP_KICK < abi.SLOT_SIZE);
});
