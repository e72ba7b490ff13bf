/**
 * Which platform this run of the suite tests: MAPVISOR_PLATFORM (set by .ci/run, once per platform
 * that works here), else what `auto` picks. Tests that only one platform can pass skip on the other
 * with the reason printed.
 */
import { resolvePlatform } from '../src/platform/select.js';
import type { PlatformName } from '../src/platform/platform.js';

function current(): PlatformName {
  const env = process.env.MAPVISOR_PLATFORM;
  return resolvePlatform(env === 'kvm' || env === 'process' ? env : 'auto');
}

export const PLATFORM: PlatformName = current();

/** A test option: skip unless the suite runs on `p`, saying why the test needs it. */
export function onlyOn(p: PlatformName, why: string): string | false {
  return PLATFORM === p ? false : `${p} platform only (this run: ${PLATFORM}): ${why}`;
}
