/**
 * `mapvisor image create [--size S] [--debian PKG...] [--add HOSTDIR[:DIR]]... OUT.img`.
 *
 * Errors are thrown as MapvisorError for the caller (main.ts) to print as one line. On a terminal each
 * step shows as one line updated in place; otherwise only the final summary is printed (on stderr).
 */
import { parseCommandLine } from './args.js';
import { existsSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { createImage } from '../image/create.js';
import { flattenLayer } from '../storage/layer.js';
import { formatSize, parseSize } from '../util/size.js';

const USAGE = `usage: mapvisor image create [options] OUT.img

Builds an ext4 root file system image (no journal, size a multiple of 2 MiB) for mapvisor.

options:
  --debian PKG[,PKG]   Debian packages to install with their library dependencies (repeatable);
                       .debs are cached in $XDG_CACHE_HOME/mapvisor/debs (~/.cache/mapvisor/debs)
  --add HOST[:DIR]     copy a host directory's contents into the image at DIR (default /), keeping
                       modes; or a host file to the path DIR (repeatable)
  --size SIZE          image size, e.g. 256M (default: content x 1.5 + 64 MiB)
  -h, --help           show this help

With --debian the image also gets merged /usr (bin -> usr/bin, lib -> usr/lib, ...), /tmp, /dev, /proc,
/root and an /etc/passwd and /etc/group with root. Package-management and maintainer-script packages
(dpkg, debconf, perl-base, coreutils, ...) are left out unless named.
`;

function usage(problem: string, fix = 'see mapvisor image create --help'): never {
  throw new UsageError(problem, fix);
}

/** "HOST[:DIR]", split at the last colon (unless the whole value is an existing host path). */
export function parseAdd(value: string): { host: string; dir: string } {
  const colon = value.lastIndexOf(':');
  const [host, dir] = colon < 0 || existsSync(value) ? [value, '/'] : [value.slice(0, colon), value.slice(colon + 1) || '/'];
  if (!host) usage(`--add ${JSON.stringify(value)} names no host path`, 'give --add HOSTDIR[:/dir/in/image]');
  return { host, dir };
}

/** Renders progress on a terminal: a step's line is rewritten in place, a new step starts a new line. */
class TtyProgress {
  private step: string | null = null;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  line = (text: string): void => {
    const step = /^\S*/.exec(text)![0];
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    const shown = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.stream.write(`${this.step === step ? '\r\x1b[K' : this.step === null ? '' : '\n'}${shown}`);
    this.step = step;
  };
  end(): void {
    if (this.step !== null) this.stream.write('\n');
    this.step = null;
  }
}

async function create(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
    size: { type: 'string' },
    debian: { type: 'string', multiple: true },
    add: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  },
    'mapvisor image create --help',
  );
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length === 0) usage('no OUT.img given', 'mapvisor image create [options] OUT.img');
  if (positionals.length > 1) usage(`one OUT.img expected, got ${positionals.length}: ${positionals.join(' ')}`, 'put options before OUT.img; list packages as --debian a,b');
  const out = positionals[0]!;
  let size: number | undefined;
  if (values.size !== undefined) {
    const n = parseSize(values.size);
    if (n === null || n <= 0) usage(`--size ${JSON.stringify(values.size)} is not a size`, 'give a size such as --size 256M');
    size = n;
  }
  const add = (values.add ?? []).map(parseAdd);

  const tty = process.stderr.isTTY ? new TtyProgress(process.stderr) : null;
  // Exiting (rather than dying of the signal) runs createImage's exit-time cleanup of its temp files.
  const onInt = (): never => process.exit(130);
  const onTerm = (): never => process.exit(143);
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  try {
    const r = await createImage({ out, debian: values.debian ?? [], add, ...(size !== undefined ? { size } : {}), ...(tty ? { progress: tty.line } : {}) });
    tty?.end();
    const n = r.packages.length;
    process.stderr.write(`mapvisor: wrote ${out} (${formatSize(r.size)}${n ? `, ${n} package${n > 1 ? 's' : ''}` : ''})\n`);
    return 0;
  } finally {
    tty?.end();
    process.removeListener('SIGINT', onInt);
    process.removeListener('SIGTERM', onTerm);
  }
}

/** `mapvisor image ...`; argv starts after "image" (with "create"). */
const FLATTEN_USAGE = `usage: mapvisor image flatten IMAGE LAYER OUT.img

Lays a copy-on-write layer (mapvisor run --image IMAGE --layer LAYER, or a container's) over a copy of
IMAGE: OUT.img is the file system the program saw, an ext4 image of its own. IMAGE must be as it was
when the layer was made.
`;

/** \`mapvisor image flatten IMAGE LAYER OUT.img\` */
function flatten(argv: string[]): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(FLATTEN_USAGE);
    return 0;
  }
  if (argv.length !== 3 || argv.some((a) => a.startsWith('-'))) usage('give an image, its layer and an output path', 'mapvisor image flatten IMAGE LAYER OUT.img');
  const [image, layer, out] = argv as [string, string, string];
  for (const [what, p] of [['image', image], ['layer', layer]] as const) if (!existsSync(p)) usage(`the ${what} ${p} does not exist`, `give the path of the ${what}`);
  if (existsSync(out)) usage(`${out} exists already`, 'give a path that does not exist yet');
  const t0 = performance.now();
  const bytes = flattenLayer(image, layer, out);
  process.stderr.write(`${out}: ${image} with ${formatSize(bytes)} from ${layer} (${(performance.now() - t0).toFixed(0)} ms)\n`);
  return 0;
}

export async function imageCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'create':
      return create(rest);
    case 'flatten':
      return flatten(rest);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case undefined:
      usage('no image command given', 'mapvisor image create [options] OUT.img');
    default:
      usage(`unknown image command ${JSON.stringify(sub)}`, 'the commands are: mapvisor image create [options] OUT.img, mapvisor image flatten IMAGE LAYER OUT.img');
  }
}
