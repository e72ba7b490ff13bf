/** Helpers for tests that act on a running sandbox. */
import assert from 'node:assert/strict';
import type { Sandbox } from '../src/index.js';

/** Wait (up to 20 s) until the running program has made `n` calls of `name` (live stats). */
export async function untilCalls(sb: Sandbox, name: string, n: number): Promise<void> {
  for (let i = 0; i < 400; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const st = (await sb.liveStats()) as { syscalls: Array<{ name: string; count: number }> };
    if ((st.syscalls.find((c) => c.name === name)?.count ?? 0) >= n) return;
  }
  assert.fail(`the program made fewer than ${n} ${name} calls in 20 s`);
}
