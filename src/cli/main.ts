/**
 * The mapvisor command line. Every failure is one line on stderr, `mapvisor: <problem> (<fix>)`, with
 * exit status 125 (mapvisor's own failure), 126 (the program cannot run here) or 127 (no such program);
 * a program's own status passes through, and death by signal N exits 128+N with a one-line reason.
 */
import { parseMountSpec } from '../kernel/vfs/mounts.js';
import { parseImageSpec } from '../kernel/vfs/rootfs.js';
import { parseCommandLine } from './args.js';
import { MapvisorError, UsageError, EXIT_INTERNAL } from '../errors.js';
import { Sandbox, type SandboxResult } from '../sandbox/sandbox.js';
import { parseSize, formatSize } from '../util/size.js';
import { formatStats } from './stats.js';
import { imageCommand } from './image.js';
import { benchCommand } from './bench.js';
import { ctlCommand, serveControl } from './control.js';
import { existsSync, fstatSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { Keeper, Standby } from './rejuvenate.js';
import { DEFAULT_SPACE, GIB } from '../platform/layout.js';
import { checkSpaceSize } from '../platform/layout.js';
import type { PlatformChoice } from '../platform/select.js';
import { infoCommand } from './info.js';

const USAGE = `usage: mapvisor run [options] -- PROGRAM [ARGS...]
       mapvisor image create [--size S] [--debian PKG...] [--add HOSTDIR[:DIR]...] OUT.img
       mapvisor image flatten IMAGE LAYER OUT.img
       mapvisor bench [--quick] [--only ID] [--platform kvm|process|all] [--json FILE] [--svg FILE]
       mapvisor restore DIR [--in-place | --clones N] [--api SOCKET]
       mapvisor ctl SOCKET pause|resume|checkpoint DIR|stats|stop|rejuvenate
       mapvisor info
       mapvisor oci [--root DIR] create|start|state|kill|delete|run|ps|checkpoint|restore ...  (an OCI runtime: docs/oci.md)

Runs a Linux x86-64 program under mapvisor's own kernel: a static program from the host, or any
program inside a disk image given with --image. The program's code runs on a platform: a KVM virtual
machine with no guest kernel (kvm), or a host process whose every system call is trapped (process).

options:
  --platform kvm|process|auto  what runs the program (default auto, or MAPVISOR_PLATFORM: kvm where
                      /dev/kvm opens, else process); \`mapvisor info\` says which work here
  --image PATH[,ro|,cow]  an ext4 disk image as the root file system; PROGRAM is a path inside it
                      (rw: exclusive, written in place; ro: shared, read-only; cow: shared, with the
                      program's changes in a copy-on-write layer of its own, gone at exit)
  --layer FILE        with --image: the copy-on-write layer that keeps the changes (made when missing,
                      used again by the next run; mapvisor image flatten lays it over the image)
  --storage memory|blk  how the image is reached: mapped into memory (default), or the conventional
                      path through a block device with a VMM-side cache (the baseline)
  --cache SIZE        blk: size of the block cache (default 256M)
  --cache-mode writeback|none  blk: none opens the image with O_DIRECT (no host page cache)
  --blk-mmap eager|fault  blk: fill file mappings at mmap time (default) or on first touch (userfaultfd)
  --mem SIZE          memory the program may map in all (default 4G), e.g. 256M
  --space SIZE        guest address-space size, whole GiBs (default 16G)
  --timeout SECONDS   kill the program (SIGKILL, exit 137) after this long
  --strace            print every system call to stderr, as strace does
  --stats             print exits, system calls and memory figures to stderr at the end
  --env KEY=VALUE     set an environment variable (repeatable; default PATH, HOME, LANG)
  --cpus N            CPUs the program sees and the most vCPUs running at once (default: the host's)
  --init              run the program as pid 2 under a small init of mapvisor's own that reaps
                      orphaned processes (like tini); the program's status is still mapvisor's
  --pids N            the most processes the sandbox may hold at once (default 256); fork answers
                      EAGAIN past it
  --net none|host     none (default): the sandbox has only a loopback network of its own;
                      host: its AF_INET/AF_INET6 sockets are host sockets (outbound allowed)
  --publish HOST_PORT:PORT  the host listens on 127.0.0.1:HOST_PORT and forwards each connection
                      to the sandbox's TCP PORT (repeatable); a line on stderr says when PORT listens
  --mount HOST:TARGET[:ro]  serve the host directory or file HOST at TARGET (an absolute path of
                      the sandbox), read-write, or read-only with :ro (repeatable)
  --api SOCKET        serve the control API (pause, resume, checkpoint DIR, stats, stop, rejuvenate) on a Unix socket
  --memory-dir DIR    keep the program's anonymous memory in DIR/memory.bin instead of host memory
  --syscall-return M  how a system call returns to the program: sregs (default) or iretq
  -h, --help          show this help
`;

function usage(problem: string, fix = 'see mapvisor run --help'): never {
  throw new UsageError(problem, fix);
}

/** --publish HOST_PORT:PORT */
function publishOption(v: string): { hostPort: number; port: number } {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(v);
  const ok = (n: number): boolean => n >= 1 && n <= 65535;
  if (!m || !ok(Number(m[1])) || !ok(Number(m[2]))) usage(`--publish ${JSON.stringify(v)} is not HOST_PORT:PORT with ports from 1 to 65535`, 'give --publish 8080:80');
  return { hostPort: Number(m[1]), port: Number(m[2]) };
}

function platformOption(value: string | undefined): PlatformChoice | undefined {
  if (value === undefined) return undefined;
  if (value !== 'auto' && value !== 'kvm' && value !== 'process') usage(`--platform ${JSON.stringify(value)} is not kvm, process or auto`, 'give --platform kvm, process or auto');
  return value;
}

function sizeOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = parseSize(value);
  if (n === null) usage(`--${name} ${JSON.stringify(value)} is not a size`, `give a size such as --${name} 512M`);
  return n;
}

/** --image PATH[,MODE] with --layer FILE: a copy-on-write image whose changes last in FILE. */
function imageOption(text: string | undefined, layer: string | undefined): string | { path: string; mode: 'cow'; layer: string } | undefined {
  if (layer === undefined) return text;
  if (text === undefined) usage('--layer needs an --image to lie over', 'give --image PATH --layer FILE');
  const spec = parseImageSpec(text);
  if (/,(rw|ro)$/.test(text)) usage(`--layer goes with a copy-on-write image, not ,${spec.mode}`, `give --image ${spec.path} --layer ${layer}`);
  return { path: spec.path, mode: 'cow', layer };
}

async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
    mem: { type: 'string' },
    platform: { type: 'string' },
    image: { type: 'string' },
    layer: { type: 'string' },
    storage: { type: 'string' },
    cache: { type: 'string' },
    'cache-mode': { type: 'string' },
    'blk-mmap': { type: 'string' },
    space: { type: 'string' },
    timeout: { type: 'string' },
    strace: { type: 'boolean' },
    stats: { type: 'boolean' },
    env: { type: 'string', multiple: true },
    'syscall-return': { type: 'string' },
    api: { type: 'string' },
    'memory-dir': { type: 'string' },
    cpus: { type: 'string' },
    pids: { type: 'string' },
    init: { type: 'boolean' },
    net: { type: 'string' },
    publish: { type: 'string', multiple: true },
    mount: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  },
    'mapvisor run --help',
  );
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [program, ...args] = positionals;
  if (!program) usage('no PROGRAM given', 'mapvisor run -- PROGRAM [ARGS...]');
  let timeout: number | undefined;
  if (values.timeout !== undefined) {
    timeout = Number(values.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0) usage(`--timeout ${JSON.stringify(values.timeout)} is not a positive number of seconds`, 'give --timeout 10');
  }
  const ret = values['syscall-return'];
  if (ret !== undefined && ret !== 'sregs' && ret !== 'iretq') usage(`--syscall-return ${JSON.stringify(ret)} is not sregs or iretq`);
  const env = values.env;
  for (const e of env ?? []) if (!e.includes('=')) usage(`--env ${JSON.stringify(e)} is not KEY=VALUE`, 'give --env NAME=value');
  const mem = sizeOption('mem', values.mem);
  const storage = values.storage;
  if (storage !== undefined && storage !== 'memory' && storage !== 'blk') usage(`--storage ${JSON.stringify(storage)} is not memory or blk`, 'give --storage memory or --storage blk');
  const cache = sizeOption('cache', values.cache);
  const cacheMode = values['cache-mode'];
  const blkMmap = values['blk-mmap'];
  if (blkMmap !== undefined && blkMmap !== 'eager' && blkMmap !== 'fault') usage(`--blk-mmap ${JSON.stringify(blkMmap)} is not eager or fault`, 'give --blk-mmap eager or --blk-mmap fault');
  if (cacheMode !== undefined && cacheMode !== 'writeback' && cacheMode !== 'none') usage(`--cache-mode ${JSON.stringify(cacheMode)} is not writeback or none`, 'give --cache-mode none for O_DIRECT');
  const space = sizeOption('space', values.space);
  if (space !== undefined) {
    const problem = checkSpaceSize(space);
    if (problem) usage(`--space ${values.space} ${problem}`, 'give a size such as --space 64G');
  }

  const started = process.hrtime.bigint();
  const memoryDir = values['memory-dir'];
  if (memoryDir !== undefined && !existsSync(memoryDir)) usage(`--memory-dir ${memoryDir} does not exist`, 'create the directory first');
  let pids: number | undefined;
  if (values.pids !== undefined) {
    pids = Number(values.pids);
    if (!Number.isInteger(pids) || pids < 1 || pids > 32768) usage(`--pids ${JSON.stringify(values.pids)} is not a number from 1 to 32768`, 'give --pids 64');
  }
  let cpus: number | undefined;
  if (values.cpus !== undefined) {
    cpus = Number(values.cpus);
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) usage(`--cpus ${JSON.stringify(values.cpus)} is not a number from 1 to 64`, 'give --cpus 2');
  }
  const net = values.net;
  if (net !== undefined && net !== 'none' && net !== 'host') usage(`--net ${JSON.stringify(net)} is not none or host`, 'give --net none (the default) or --net host');
  const publish = (values.publish ?? []).map(publishOption);
  const mounts = (values.mount ?? []).map(parseMountSpec);
  const platform = platformOption(values.platform);
  const image = imageOption(values.image, values.layer);
  const sb = new Sandbox(program, args, {
    ...(net ? { net } : {}),
    ...(publish.length ? { publish } : {}),
    ...(mounts.length ? { mounts } : {}),
    ...(platform ? { platform } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(pids !== undefined ? { pids } : {}),
    ...(values.init ? { init: true } : {}),
    ...(memoryDir ? { memoryDir } : {}),
    argv0: program,
    ...(env ? { env } : {}),
    ...(mem !== undefined ? { mem } : {}),
    ...(space !== undefined ? { space } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(ret ? { syscallReturn: ret } : {}),
    ...(image !== undefined ? { image } : {}),
    ...(storage ? { storage } : {}),
    ...(cache !== undefined ? { cache } : {}),
    ...(cacheMode ? { cacheMode } : {}),
    ...(blkMmap ? { blkMmap } : {}),
    strace: values.strace ?? false,
  });
  return finish(sb, values.api, values.stats ?? false, started, memoryDir ? join(memoryDir, 'rejuvenate') : undefined);
}

/**
 * Run a sandbox (serving the control API on `api` if given), report, and return the exit status. With
 * --memory-dir the API can rejuvenate (rejuvenate.ts): a fresh VMM process is started and stands by,
 * the program is checkpointed in place, this VM ends, and the successor takes the program over on the
 * same standard streams and socket; this process then only waits for it and passes on its exit status.
 * `standby` is the successor's side of that.
 */
async function finish(sb: Sandbox, api: string | undefined, stats: boolean, started: bigint, rejuvenateDir?: string, standby?: Standby): Promise<number> {
  let keeper: Keeper | null = null;
  let handOver: Promise<boolean> | null = null;
  const rejuvenate = async (dir: string): Promise<Record<string, unknown>> => {
    const space = sb.options.space ?? DEFAULT_SPACE;
    // The successor runs on the same platform (it builds its VM before the checkpoint exists).
    const args = ['--space', `${space / GIB}G`, ...(sb.platform ? ['--platform', sb.platform] : []), ...(api ? ['--api', api] : []), ...(stats ? ['--stats'] : [])];
    // The successor first (it builds its VM while the program runs), then the hand-over.
    let k: Keeper | null = null;
    if (standby) await standby.requestSuccessor(dir, args);
    else k = await Keeper.start(process.argv[1]!, dir, args);
    const t0 = performance.now();
    try {
      await sb.handOff(dir);
    } catch (e) {
      if (standby) standby.abandon();
      else k?.abandon();
      throw e;
    }
    closeApi(); // the successor serves the same socket name; this connection stays open for the reply
    keeper = k;
    const next = standby ? await standby.handOver() : { ...(await k!.go()), pid: k!.pid };
    return { downtimeMs: Math.round((next.runningAt - t0) * 100) / 100, restoreMs: next.restoreMs, restoredBy: next.pid };
  };
  const hooks = rejuvenateDir
    ? {
        rejuvenate: (): Promise<Record<string, unknown>> => {
          const p = rejuvenate(rejuvenateDir);
          handOver = p.then(
            () => true,
            () => false,
          );
          return p;
        },
      }
    : {};
  let server: ReturnType<typeof serveControl> | null = null;
  /** Stop accepting and free the socket's name; open connections stay open until answered. */
  const closeApi = (): void => {
    server?.close();
    if (api) rmSync(api, { force: true });
  };
  let result: SandboxResult;
  // Signals for mapvisor go to the sandbox's foreground process group (Ctrl-C reaches the program, a
  // shell's trap runs), as a terminal or a container runtime sends them.
  const forward = (sig: NodeJS.Signals, n: number): [NodeJS.Signals, () => void] => [sig, (): void => sb.kill(n)];
  const forwarded = [forward('SIGINT', 2), forward('SIGTERM', 15), forward('SIGHUP', 1), forward('SIGQUIT', 3)];
  for (const [sig, f] of forwarded) process.on(sig, f);
  try {
    sb.on('listening', (e) => {
      if (e.hostPort !== undefined) process.stderr.write(`mapvisor: tcp port ${e.port} is listening, published at 127.0.0.1:${e.hostPort}\n`);
    });
    const running = sb.run();
    const ended = running.then(
      () => undefined,
      () => undefined,
    );
    if (standby) {
      // A successor: build the VM now, restore when the old VMM says so (or end the standby VM).
      try {
        await Promise.race([sb.whenStandby(), ended]);
        standby.ready();
        await Promise.race([standby.waitForGo(), ended]);
      } catch (e) {
        sb.stop();
        await ended;
        throw e;
      }
      sb.release();
    }
    // Serve the API once the VM runs the program (a rejuvenating VMM waits for "running"); a run that
    // fails before that is reported below, by awaiting it.
    await Promise.race([sb.whenReady(), ended]);
    if (sb.restoreMs !== null) standby?.running(sb.restoreMs);
    else standby?.failed();
    if (api) {
      server = serveControl(sb, api, hooks);
      await Promise.race([once(server, 'listening'), ended]);
    }
    if (sb.restoreMs !== null) standby?.serving();
    result = await running;
  } finally {
    for (const [sig, f] of forwarded) process.removeListener(sig, f);
    if (!sb.handedOff) closeApi();
  }
  if (sb.handedOff) {
    // The program lives on in another VMM: this one answers the rejuvenate request, then the keeper
    // (the process the user started) waits for the program's end, and a successor just leaves.
    const ok = await (handOver as Promise<boolean> | null);
    standby?.close();
    if (!ok) {
      process.stderr.write(`mapvisor: the program was checkpointed in place into ${rejuvenateDir}, but no new VMM took it over (restore it with: mapvisor restore ${rejuvenateDir} --in-place)\n`);
      return EXIT_INTERNAL;
    }
    const k = keeper as Keeper | null;
    return k ? k.exit : 0;
  }
  standby?.close();
  if (result.reason) process.stderr.write(`mapvisor: program killed by ${result.reason}\n`);
  if (stats && sb.restoreMs !== null) process.stderr.write(`restore: ${sb.restoreMs.toFixed(2)} ms to the first instruction\n`);
  if (stats && result.stats) {
    process.stderr.write(formatStats(result.stats, Number(process.hrtime.bigint() - started)));
  }
  return result.status;
}

/** `mapvisor restore DIR [--in-place] [--api SOCKET] [--timeout S] [--stats]` */
async function restore(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      'in-place': { type: 'boolean' },
      clones: { type: 'string' },
      'standby-fd': { type: 'string' },
      space: { type: 'string' },
      api: { type: 'string' },
      timeout: { type: 'string' },
      stats: { type: 'boolean' },
      platform: { type: 'string' },
      layer: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    'mapvisor restore --help',
  );
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(
      'usage: mapvisor restore DIR [--in-place | --clones N] [--api SOCKET] [--timeout S] [--stats]\n' +
        '  --in-place      continue on the checkpoint\'s memory file itself (default: map it copy-on-write)\n' +
        '  --clones N      start N copies from the checkpoint, sharing its unmodified pages\n' +
        '  --stats         also print the restore time to the first instruction\n' +
        '  --platform P    kvm or process (default: the platform the checkpoint was taken on)\n' +
        '  --layer FILE    a copy-on-write image: keep the restored program\'s layer in FILE (a copy of the\n' +
        '                  checkpoint\'s; FILE must not exist yet); default a temporary one\n' +
        '  (--standby-fd FD and --space S are used by rejuvenation: build the VM, restore on "go" from FD)\n',
    );
    return 0;
  }
  const dir = positionals[0];
  if (!dir || positionals.length > 1) usage('give one checkpoint directory', 'mapvisor restore DIR');
  const platform = platformOption(values.platform);
  let timeout: number | undefined;
  if (values.timeout !== undefined) {
    timeout = Number(values.timeout);
    if (!Number.isFinite(timeout) || timeout <= 0) usage(`--timeout ${JSON.stringify(values.timeout)} is not a positive number of seconds`, 'give --timeout 10');
  }
  if (values.clones !== undefined) {
    // N copies from one checkpoint, each mapping its memory privately: they share the unmodified pages.
    const n = Number(values.clones);
    if (!Number.isInteger(n) || n < 1 || n > 256) usage(`--clones ${JSON.stringify(values.clones)} is not a number from 1 to 256`, 'give --clones 4');
    if (values['in-place'] || values.api) usage('--clones cannot be combined with --in-place or --api', 'restore clones copy-on-write, without an API');
    const results = await Promise.all(
      Array.from({ length: n }, () => Sandbox.restore(dir, { ...(timeout !== undefined ? { timeout } : {}), ...(platform ? { platform } : {}) }).run()),
    );
    results.forEach((r, i) => r.reason && process.stderr.write(`mapvisor: clone ${i + 1} killed by ${r.reason}\n`));
    return results.find((r) => r.status !== 0)?.status ?? 0;
  }
  // --standby-fd (rejuvenation's successor): build the VM first, restore when told so on that fd.
  let standby: Standby | undefined;
  if (values['standby-fd'] !== undefined) {
    const fd = Number(values['standby-fd']);
    if (!Number.isInteger(fd) || fd < 3) usage(`--standby-fd ${JSON.stringify(values['standby-fd'])} is not a file descriptor above 2`, 'it is given by mapvisor rejuvenation, not by hand');
    try {
      if (!fstatSync(fd).isSocket()) throw new Error('not a socket');
    } catch {
      usage(`--standby-fd ${fd} is not an open socket`, 'it is given by mapvisor rejuvenation, not by hand');
    }
    standby = new Standby(fd);
  }
  const space = sizeOption('space', values.space);
  const sb = Sandbox.restore(dir, {
    ...(platform ? { platform } : {}),
    inPlace: values['in-place'] ?? false,
    standby: standby !== undefined,
    ...(values.layer !== undefined ? { layer: values.layer } : {}),
    ...(space !== undefined ? { space } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
  });
  // In place, the program's memory is its own file: it can be rejuvenated again (into DIR).
  return finish(sb, values.api, values.stats ?? false, process.hrtime.bigint(), values['in-place'] ? dir : undefined, standby);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest);
      case 'image':
        return await imageCommand(rest);
      case 'bench':
        return await benchCommand(rest);
      case 'restore':
        return await restore(rest);
      case 'ctl':
        return await ctlCommand(rest);
      case 'info':
        return infoCommand(rest);
      case 'oci':
        // The OCI runtime (bin/mapvisor-oci), runc's command line: mapvisor oci [--root DIR] create ...
        return await (await import('../oci/main.js')).ociMain(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        return command === undefined ? EXIT_INTERNAL : 0;
      default:
        usage(`unknown command ${JSON.stringify(command)}`, 'the commands are: mapvisor run, image create, bench, restore, ctl, info, oci');
    }
  } catch (e) {
    if (e instanceof MapvisorError) {
      process.stderr.write(`mapvisor: ${e.oneLine()}\n`);
      if (process.env.MAPVISOR_DEBUG && e.stack) process.stderr.write(`${e.stack}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`mapvisor: internal error: ${err.message} (set MAPVISOR_DEBUG=1 for details and report it)\n`);
    if (process.env.MAPVISOR_DEBUG) process.stderr.write(`${err.stack}\n`);
    return EXIT_INTERNAL;
  }
}

export { formatSize };
