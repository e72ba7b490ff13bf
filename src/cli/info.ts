/** `mapvisor info`: every platform, whether it works on this host and why (not), and what auto picks. */
import { UsageError } from '../errors.js';
import { probePlatforms } from '../platform/select.js';
import { defaultPlatform } from '../sandbox/sandbox.js';

export function infoCommand(argv: string[]): number {
  const json = argv.includes('--json');
  const unknown = argv.filter((a) => a !== '--json');
  if (unknown.length > 0) throw new UsageError(`mapvisor info takes no argument ${JSON.stringify(unknown[0])}`, 'run mapvisor info [--json]');
  const probes = probePlatforms();
  const choice = defaultPlatform();
  const auto = probes.find((p) => p.works)?.name ?? null;
  const chosen = choice === 'auto' ? auto : choice;
  if (json) {
    process.stdout.write(`${JSON.stringify({ platforms: probes, default: choice, chosen }, null, 2)}\n`);
    return 0;
  }
  for (const p of probes) process.stdout.write(`${p.name.padEnd(8)} ${p.works ? 'works  ' : 'no     '} ${p.why}\n`);
  const from = process.env.MAPVISOR_PLATFORM ? ' (MAPVISOR_PLATFORM)' : '';
  process.stdout.write(`default: ${choice}${from} -> ${chosen ?? 'none: no platform works here'}\n`);
  return 0;
}
