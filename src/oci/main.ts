/**
 * mapvisor-oci: an OCI runtime with runc's command line, as podman/conmon and containerd's runc shim
 * call it. Global options come before the command: --root DIR (default /run/mapvisor-oci), --log FILE,
 * --log-format json|text, --systemd-cgroup (accepted), and mapvisor's own --platform kvm|process|auto
 * and --net none|host (podman: --runtime-flag platform=kvm). Every failure is one line on stderr and in
 * the log, a non-zero exit, and no state left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { constants } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OciError, log, logError, logInfo } from './log.js';
import type { ExecRequest } from './vmm.js';
import { readPlan } from './spec.js';
import { DEFAULT_ROOT, checkId, containerDir, lockedAsync, processStart, readState, removeContainer, statusOf, writeState, type ContainerState, type VmmPlan } from './state.js';
// storage.js and pty.js load the C library (koffi): only create, run and restore import them, so that
// start, state, kill and delete (a Node start each, for every `podman run`) stay quick.

const VERSION = '0.1.0';
const SPEC_VERSION = '1.0.2';

interface Globals {
  root: string;
  platform: string | undefined;
  net: 'none' | 'host';
  /** A container asked to join another's IPC namespace (a Kubernetes pod's): 'refuse', or 'own' (it keeps its own). */
  podIpc: 'refuse' | 'own';
}

const GLOBAL_VALUE = new Set(['--root', '--log', '--log-format', '--platform', '--net', '--pod-ipc', '--criu', '--rootless']);
const GLOBAL_FLAG = new Set(['--systemd-cgroup', '--debug']);

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>, command: string): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new OciError(`${command}: ${(e as Error).message.split('\n')[0]!.replace(/\.$/, '')}`, `see mapvisor-oci ${command} --help`);
  }
}

async function ctl(g: Globals, id: string, req: Record<string, unknown>): Promise<Record<string, unknown>> {
  const sock = join(containerDir(g.root, id), 'ctl.sock');
  if (!existsSync(sock)) throw new OciError(`container ${id} is not running`, 'start it first');
  const reply = await new Promise<string>((resolve, reject) => {
    const c = createConnection(sock, () => c.write(`${JSON.stringify(req)}\n`));
    let buf = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (buf += d));
    c.on('end', () => resolve(buf));
    c.on('error', (e) => reject(new OciError(`cannot reach container ${id}'s VMM: ${e.message}`, 'is it still running?')));
  });
  const r = JSON.parse(reply.trim() || '{"ok":false,"error":"no answer"}') as Record<string, unknown>;
  if (!r.ok) throw new OciError(`container ${id}: ${String(r.error)}`, '');
  return r;
}

function vmmScript(): string {
  return fileURLToPath(new URL('./vmm.js', import.meta.url));
}

/** Start the VMM for a container whose state is written; resolves once it is ready (or throws its error). */

/** What a child started with a pipe as fd 3 writes there before closing it ("ready", or "error ..."). */
function readyLine(child: ChildProcess): Promise<string> {
  return new Promise<string>((resolve) => {
    let buf = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => (buf += d));
    pipe.on('end', () => resolve(buf.trim()));
    pipe.on('error', () => resolve(buf.trim()));
  });
}

async function startVmm(g: Globals, state: ContainerState, consoleSocket: string | undefined, detach: boolean): Promise<ChildProcess> {
  const { closeFd, joinNetns, openPty, sendFd } = await import('./pty.js');
  let stdio: Array<number | 'inherit' | 'pipe'> = ['inherit', 'inherit', 'inherit', 'pipe'];
  let toClose: number[] = [];
  if (consoleSocket !== undefined) {
    const [master, slave, name] = openPty();
    sendFd(consoleSocket, master, name);
    closeFd(master);
    stdio = [slave, slave, slave, 'pipe'];
    toClose = [slave];
  }
  // The engine's network namespace: this thread joins it so that the VMM is born there (setns of a
  // network namespace is per thread, and a child takes its creator's).
  if (state.run.netns) joinNetns(state.run.netns);
  // A small young generation (1 MiB semi-spaces, from 16): a few MiB less per idle container, and no
  // measurable cost to system-call service (npm run bench:oci; syscall-loop under mapvisor run).
  const child = spawn(process.execPath, ['--max-semi-space-size=1', vmmScript(), g.root, state.id, log.file ?? '', log.format], {
    stdio,
    detached: true, // its own session: the pty becomes its controlling terminal
    env: { ...process.env, MAPVISOR_TMPDIR: containerDir(g.root, state.id) },
  });
  for (const fd of toClose) closeFd(fd);
  const ready = await readyLine(child);
  if (ready !== 'ready') {
    child.kill('SIGKILL');
    throw new OciError(ready.replace(/^error /, '') || 'the VMM ended before the program was ready', '');
  }
  if (detach) child.unref();
  (child.stdio[3] as unknown as { destroy(): void }).destroy();
  return child;
}

function vmmPlanOf(g: Globals, bundle: string, id: string): { tmpfs: Array<{ dir: string; mode: number }>; plan: VmmPlan; annotations: Record<string, string>; files: Array<{ source: string; destination: string }>; rootPath: string; ociVersion: string } {
  const p = readPlan(bundle, { podIpc: g.podIpc });
  const tmpfs = p.tmpfs.map((t, i) => ({ dir: join(containerDir(g.root, id), `tmpfs-${i}`), mode: t.mode }));
  return {
    tmpfs,
    plan: {
      args: p.args,
      init: p.init,
      env: p.env,
      image: '', // the shared image, found (or built) by create
      layer: p.readonly ? null : join(containerDir(g.root, id), 'layer'),
      readonly: p.readonly,
      platform: g.platform,
      net: p.netns ? 'host' : g.net,
      netns: p.netns ?? null,
      mem: p.mem,
      pids: p.pids,
      cpus: p.cpus,
      identity: { uid: p.uid, gid: p.gid, groups: p.groups, cwd: p.cwd, hostname: p.hostname, rlimits: p.rlimits },
      binds: [
        ...p.binds.map((b) => ({ host: b.source, target: b.destination, readonly: b.readonly })),
        ...p.tmpfs.map((t, i) => ({ host: join(containerDir(g.root, id), `tmpfs-${i}`), target: t.destination, readonly: false })),
      ],
      restoreFrom: null,
      terminal: p.terminal,
    },
    annotations: p.annotations,
    files: p.files,
    rootPath: p.rootPath,
    ociVersion: p.ociVersion,
  };
}

/** create (and the first half of run and restore): the container's layer, state and VMM. */
async function create(g: Globals, id: string, bundle: string, pidFile: string | undefined, consoleSocket: string | undefined, detach: boolean, restoreFrom: string | null): Promise<{ child: ChildProcess; state: ContainerState }> {
  const { sharedImage } = await import('./storage.js');
  return await lockedAsync(g.root, id, async () => {
    if (existsSync(containerDir(g.root, id))) throw new OciError(`container ${id} exists already`, `delete it first: mapvisor-oci delete ${id}`);
    const spec = vmmPlanOf(g, bundle, id);
    spec.plan.restoreFrom = restoreFrom;
    mkdirSync(containerDir(g.root, id), { recursive: true, mode: 0o711 });
    try {
      for (const t of spec.tmpfs) {
        mkdirSync(t.dir);
        chmodSync(t.dir, t.mode);
      }
      if (restoreFrom !== null) {
        // A checkpoint names the shared image it ran on and holds a copy of the container's layer: the
        // restored program continues on a copy of that at the container's layer path (the same id).
        const saved = JSON.parse(readFileSync(join(restoreFrom, 'oci.json'), 'utf8')) as { image: string; layer: string | null };
        if (saved.layer !== spec.plan.layer) throw new OciError(`the checkpoint in ${restoreFrom} was taken of another container (its layer was ${saved.layer ?? 'none: a read-only root'})`, 'restore it under the id it had');
        if (!existsSync(saved.image)) throw new OciError(`the checkpoint's image ${saved.image} is gone`, 'restore under the --root the checkpoint was taken with');
        spec.plan.image = saved.image;
      } else {
        const shared = sharedImage(g.root, spec.rootPath, new Set(spec.plan.binds.map((b) => b.target)));
        if (spec.tmpfs.length) logInfo(`container ${id}: tmpfs mounts are directories of the container's (${spec.tmpfs.map((t) => t.dir).join(', ')})`);
        // Every container maps the shared image itself; a writable one keeps its changes in a layer of
        // its own (made empty by the VMM when it opens it).
        spec.plan.image = shared.path;
      }
      const state: ContainerState = {
        ociVersion: spec.ociVersion,
        id,
        bundle: resolvePath(bundle),
        pid: 0,
        pidStart: 0,
        created: new Date().toISOString(),
        annotations: spec.annotations,
        started: false,
        run: spec.plan,
      };
      writeState(g.root, state);
      const child = await startVmm(g, state, consoleSocket, detach);
      const fresh = readState(g.root, id);
      fresh.pid = child.pid!;
      fresh.pidStart = processStart(child.pid!) ?? 0;
      if (restoreFrom !== null) fresh.started = true;
      writeState(g.root, fresh);
      if (pidFile) writeFileSync(pidFile, String(child.pid));
      return { child, state: fresh };
    } catch (e) {
      removeContainer(g.root, id);
      throw e;
    }
  });
}

/** The process `exec` starts: --process (config.json's process object), else the container's own with the flags over it, as runc does. */
function execSpec(s: ContainerState, v: Record<string, string | boolean | string[] | undefined>, args: string[]): { spec: ExecRequest; terminal: boolean } {
  if (v.process !== undefined) {
    let p: { args?: unknown; env?: unknown; cwd?: unknown; terminal?: unknown; user?: { uid?: unknown; gid?: unknown; additionalGids?: unknown } };
    try {
      p = JSON.parse(readFileSync(v.process as string, 'utf8')) as typeof p;
    } catch (e) {
      throw new OciError(`exec --process ${String(v.process)}: ${(e as Error).message.split('\n')[0]}`, 'give a JSON file holding a runtime-spec process object');
    }
    const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((e) => typeof e === 'string');
    if (!strings(p.args) || p.args.length === 0) throw new OciError(`exec --process ${String(v.process)}: process.args is not a non-empty list of strings`, 'give the program and its arguments');
    if (p.env !== undefined && !strings(p.env)) throw new OciError(`exec --process ${String(v.process)}: process.env is not a list of strings`, 'give KEY=VALUE strings');
    if (p.cwd !== undefined && (typeof p.cwd !== 'string' || !p.cwd.startsWith('/'))) throw new OciError(`exec --process ${String(v.process)}: process.cwd is not an absolute path`, 'give an absolute path');
    const num = (x: unknown, d: number): number => (typeof x === 'number' && Number.isInteger(x) && x >= 0 ? x : d);
    const gids = Array.isArray(p.user?.additionalGids) ? p.user.additionalGids.map((x) => num(x, 0)) : s.run.identity.groups;
    return {
      spec: { args: p.args, env: (p.env as string[] | undefined) ?? s.run.env, cwd: (p.cwd as string | undefined) ?? s.run.identity.cwd, uid: num(p.user?.uid, s.run.identity.uid), gid: num(p.user?.gid, s.run.identity.gid), groups: gids },
      terminal: v.tty === true || p.terminal === true,
    };
  }
  if (args.length === 0) throw new OciError('exec needs a command', 'give the program and its arguments after the container id, or --process FILE');
  let uid = s.run.identity.uid;
  let gid = s.run.identity.gid;
  if (typeof v.user === 'string') {
    const m = /^(\d+)(?::(\d+))?$/.exec(v.user);
    if (!m) throw new OciError(`exec --user ${v.user} is not UID[:GID]`, 'give numbers (the engine resolves names)');
    uid = Number(m[1]);
    gid = m[2] !== undefined ? Number(m[2]) : 0;
  }
  const groups = (v['additional-gids'] as string[] | undefined)?.map((x) => {
    if (!/^\d+$/.test(x)) throw new OciError(`exec --additional-gids ${x} is not a number`, 'give group ids');
    return Number(x);
  }) ?? s.run.identity.groups;
  const env = [...s.run.env];
  for (const e of (v.env as string[] | undefined) ?? []) {
    const k = e.split('=')[0]!;
    const at = env.findIndex((x) => x.split('=')[0] === k);
    if (at >= 0) env[at] = e;
    else env.push(e);
  }
  const cwd = (v.cwd as string | undefined) ?? s.run.identity.cwd;
  if (!cwd.startsWith('/')) throw new OciError(`exec --cwd ${cwd} is not an absolute path`, 'give an absolute path');
  return { spec: { args, env, cwd, uid, gid, groups }, terminal: v.tty === true };
}

function execWaitScript(): string {
  return fileURLToPath(new URL('./exec-wait.js', import.meta.url));
}

/**
 * exec: without --detach or a console socket, this process is the exec'd process's host side (the pid
 * file names it); otherwise exec-wait.js is, started in a session of its own (with the pty as its
 * terminal), and exec returns once the process runs.
 */
async function execCommand(g: Globals, id: string, spec: ExecRequest, terminal: boolean, consoleSocket: string | undefined, pidFile: string | undefined, detach: boolean): Promise<number> {
  const { execInContainer, exitLike } = await import('./exec-client.js');
  if (terminal && consoleSocket === undefined && detach) throw new OciError('exec --tty --detach needs --console-socket', 'give the socket the terminal goes to');
  if (!detach && consoleSocket === undefined) {
    const r = await execInContainer(g.root, id, spec, () => {
      if (pidFile) writeFileSync(pidFile, String(process.pid));
    });
    return await exitLike(r);
  }
  let stdio: Array<number | 'inherit' | 'pipe'> = ['inherit', 'inherit', 'inherit', 'pipe'];
  const toClose: number[] = [];
  const { closeFd, openPty, sendFd } = await import('./pty.js');
  if (terminal && consoleSocket !== undefined) {
    const [master, slave, name] = openPty();
    sendFd(consoleSocket, master, name);
    closeFd(master);
    stdio = [slave, slave, slave, 'pipe'];
    toClose.push(slave);
  }
  const specFile = join(containerDir(g.root, id), `exec-${process.pid}-${Date.now()}.json`);
  writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
  const child = spawn(process.execPath, [execWaitScript(), g.root, id, specFile, log.file ?? '', log.format, terminal && consoleSocket !== undefined ? '1' : '0'], { stdio, detached: true });
  for (const fd of toClose) closeFd(fd);
  const ready = await readyLine(child);
  rmSync(specFile, { force: true });
  if (ready !== 'ready') {
    child.kill('SIGKILL');
    throw new OciError(ready.replace(/^error /, '') || 'the exec\'d process ended before it started', '');
  }
  (child.stdio[3] as unknown as { destroy(): void }).destroy();
  if (pidFile) writeFileSync(pidFile, String(child.pid));
  if (detach) {
    child.unref();
    return 0;
  }
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s2) => r([c, s2])));
  return await exitLike({ status: sig ? 128 + constants.signals[sig] : (code ?? 0), signal: sig ? constants.signals[sig] : null });
}

function signalNumber(s: string | undefined): number {
  if (s === undefined) return constants.signals.SIGTERM;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`) as keyof typeof constants.signals;
    const n = constants.signals[name];
    if (n !== undefined) return n;
  }
  throw new OciError(`${JSON.stringify(s)} is not a signal`, 'give a name such as TERM or KILL, or a number');
}

function stateJson(s: ContainerState): Record<string, unknown> {
  const status = statusOf(s);
  return {
    ociVersion: SPEC_VERSION,
    id: s.id,
    pid: status === 'stopped' ? 0 : s.pid,
    status,
    bundle: s.bundle,
    rootfs: s.run.image,
    created: s.created,
    owner: '',
    annotations: s.annotations,
  };
}

async function waitGone(pid: number, start: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (processStart(pid) !== start) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return processStart(pid) !== start;
}

const FEATURES = {
  ociVersionMin: '1.0.0',
  ociVersionMax: '1.1.0',
  hooks: [],
  mountOptions: ['bind', 'rbind', 'ro', 'rw', 'rprivate', 'private', 'nosuid', 'nodev', 'noexec'],
  linux: {
    namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
    capabilities: [],
    cgroup: { v1: false, v2: false, systemd: false, systemdUser: false },
    seccomp: { enabled: false },
    apparmor: { enabled: false },
    selinux: { enabled: false },
  },
  annotations: { 'org.mapvisor.platforms': 'kvm,process', 'org.mapvisor.storage': 'ext4 image mapped into memory' },
};

const USAGE = `usage: mapvisor-oci [--root DIR] [--log FILE] [--log-format json|text] [--platform kvm|process] [--net none|host] [--pod-ipc refuse|own] COMMAND
commands: create --bundle DIR [--pid-file F] [--console-socket S] ID | start ID | state ID | kill ID [SIG] [--all]
          delete [--force] ID | run [--bundle DIR] [--detach] ID | ps [--format json] ID | features | list
          pause ID | resume ID | checkpoint --image-path DIR [--leave-running] ID
          restore --image-path DIR --bundle DIR [--pid-file F] [--detach] ID
          exec [--process F] [--tty] [--console-socket S] [--pid-file F] [--detach] [-e K=V] [--cwd D] [--user U[:G]] ID [ARGS...]
`;

async function command(g: Globals, cmd: string | undefined, argv: string[]): Promise<number> {
  if (cmd !== undefined && (cmd === 'exec' ? argv[0] === '--help' || argv[0] === '-h' : argv.includes('--help') || argv.includes('-h'))) {
    process.stdout.write(USAGE); // podman asks `checkpoint --help` whether checkpoints are supported
    return 0;
  }
  const bundleOpts = { bundle: { type: 'string' as const, short: 'b' }, 'pid-file': { type: 'string' as const }, 'console-socket': { type: 'string' as const }, 'no-pivot': { type: 'boolean' as const }, 'no-new-keyring': { type: 'boolean' as const }, 'preserve-fds': { type: 'string' as const } };
  switch (cmd) {
    case 'create': {
      const { values, positionals } = parse(argv, bundleOpts, cmd);
      const id = checkId(positionals[0]);
      await create(g, id, (values.bundle as string | undefined) ?? '.', values['pid-file'] as string | undefined, values['console-socket'] as string | undefined, true, null);
      return 0;
    }
    case 'run': {
      const { values, positionals } = parse(argv, { ...bundleOpts, detach: { type: 'boolean', short: 'd' }, 'keep': { type: 'boolean' } }, cmd);
      const id = checkId(positionals[0]);
      const detach = values.detach === true;
      const { child } = await create(g, id, (values.bundle as string | undefined) ?? '.', values['pid-file'] as string | undefined, values['console-socket'] as string | undefined, detach, null);
      await ctl(g, id, { verb: 'start' });
      if (detach) return 0;
      const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s) => r([c, s])));
      removeContainer(g.root, id);
      return sig ? 128 + constants.signals[sig] : (code ?? 0);
    }
    case 'start': {
      const id = checkId(parse(argv, {}, cmd).positionals[0]);
      const s = readState(g.root, id);
      const st = statusOf(s);
      if (st !== 'created') throw new OciError(`container ${id} is ${st}, not created`, 'only a created container can be started');
      await ctl(g, id, { verb: 'start' });
      return 0;
    }
    case 'state': {
      const id = checkId(parse(argv, {}, cmd).positionals[0]);
      process.stdout.write(`${JSON.stringify(stateJson(readState(g.root, id)), null, 2)}\n`);
      return 0;
    }
    case 'kill': {
      const { values, positionals } = parse(argv, { all: { type: 'boolean', short: 'a' }, signal: { type: 'string', short: 's' } }, cmd);
      const id = checkId(positionals[0]);
      const sig = signalNumber(positionals[1] ?? (values.signal as string | undefined));
      const s = readState(g.root, id);
      if (statusOf(s) === 'stopped' || s.pid <= 1) throw new OciError(`container ${id} is not running`, 'it has stopped already');
      // --all: the whole job (the VMM forwards it to the foreground process group); otherwise the
      // VMM's own handler sends it to the program's first process, as runc signals the init.
      if (values.all && sig !== constants.signals.SIGKILL && sig !== constants.signals.SIGSTOP && sig < 32) await ctl(g, id, { verb: 'kill', sig });
      else process.kill(s.pid, sig);
      return 0;
    }
    case 'delete': {
      const { values, positionals } = parse(argv, { force: { type: 'boolean', short: 'f' } }, cmd);
      const id = checkId(positionals[0]);
      // As runc: --force of a container that is gone already is no error (containerd's shim cleans up twice).
      if (values.force && !existsSync(join(containerDir(g.root, id), 'state.json'))) {
        removeContainer(g.root, id);
        return 0;
      }
      const s = readState(g.root, id);
      const st = statusOf(s);
      if (st === 'running' && !values.force) throw new OciError(`container ${id} is running`, 'stop it first, or give delete --force');
      if (st !== 'stopped') {
        process.kill(s.pid, 'SIGKILL');
        await waitGone(s.pid, s.pidStart, 5000);
      }
      removeContainer(g.root, id);
      return 0;
    }
    case 'ps': {
      const { values, positionals } = parse(argv, { format: { type: 'string', short: 'f' } }, cmd);
      const id = checkId(positionals[0]);
      const s = readState(g.root, id);
      const pids = statusOf(s) === 'stopped' ? [] : [s.pid];
      if (values.format === 'json') process.stdout.write(`${JSON.stringify(pids)}\n`);
      else process.stdout.write(`PID CMD\n${pids.map((p) => `${p} ${s.run.args.join(' ')}`).join('\n')}\n`);
      return 0;
    }
    case 'list': {
      const { values } = parse(argv, { format: { type: 'string', short: 'f' }, quiet: { type: 'boolean', short: 'q' } }, cmd);
      const ids = existsSync(g.root) ? readdirSync(g.root).filter((n) => existsSync(join(g.root, n, 'state.json'))) : [];
      const states = ids.map((i) => stateJson(readState(g.root, i)));
      if (values.format === 'json') process.stdout.write(`${JSON.stringify(states)}\n`);
      else process.stdout.write(`ID PID STATUS BUNDLE\n${states.map((s) => `${String(s.id)} ${String(s.pid)} ${String(s.status)} ${String(s.bundle)}`).join('\n')}\n`);
      return 0;
    }
    case 'features':
      process.stdout.write(`${JSON.stringify(FEATURES, null, 2)}\n`);
      return 0;
    case 'pause':
    case 'resume': {
      const id = checkId(parse(argv, {}, cmd).positionals[0]);
      await ctl(g, id, { verb: cmd });
      return 0;
    }
    case 'checkpoint': {
      const { values, positionals } = parse(
        argv,
        {
          'image-path': { type: 'string' }, 'work-path': { type: 'string' }, 'leave-running': { type: 'boolean' }, 'tcp-established': { type: 'boolean' }, 'ext-unix-sk': { type: 'boolean' },
          'shell-job': { type: 'boolean' }, 'file-locks': { type: 'boolean' }, 'manage-cgroups-mode': { type: 'string' }, 'pre-dump': { type: 'boolean' }, 'parent-path': { type: 'string' },
          'lazy-pages': { type: 'boolean' }, 'auto-dedup': { type: 'boolean' }, 'empty-ns': { type: 'string', multiple: true }, 'status-fd': { type: 'string' }, 'page-server': { type: 'string' }, 'tcp-skip-in-flight': { type: 'boolean' }, 'link-remap': { type: 'boolean' },
        },
        cmd,
      );
      const id = checkId(positionals[0]);
      if (values['pre-dump'] || values['lazy-pages'] || values['page-server']) throw new OciError('checkpoint --pre-dump, --lazy-pages and --page-server are CRIU features mapvisor does not have', 'take a whole checkpoint');
      const dir = resolvePath((values['image-path'] as string | undefined) ?? 'checkpoint');
      const s = readState(g.root, id);
      if (statusOf(s) !== 'running') throw new OciError(`container ${id} is not running`, 'only a running container can be checkpointed');
      mkdirSync(dir, { recursive: true });
      // The checkpoint keeps a copy of the container's layer (its changes to the shared image).
      const t0 = performance.now();
      const r = await ctl(g, id, { verb: 'checkpoint', dir, leaveRunning: values['leave-running'] === true });
      writeFileSync(join(dir, 'oci.json'), JSON.stringify({ image: s.run.image, id, bundle: s.bundle, layer: s.run.layer }));
      // podman looks for CRIU's inventory before it asks for a restore: say what this checkpoint is instead.
      writeFileSync(join(dir, 'inventory.img'), 'mapvisor checkpoint (state.json, memory.bin, layer), not a CRIU image\n');
      logInfo(`container ${id}: checkpoint in ${dir} (${String(r.memoryBytes)} bytes of memory) in ${(performance.now() - t0).toFixed(0)} ms`);
      return 0;
    }
    case 'restore': {
      const { values, positionals } = parse(
        argv,
        {
          ...bundleOpts, 'image-path': { type: 'string' }, 'work-path': { type: 'string' }, detach: { type: 'boolean', short: 'd' }, 'tcp-established': { type: 'boolean' }, 'ext-unix-sk': { type: 'boolean' },
          'shell-job': { type: 'boolean' }, 'file-locks': { type: 'boolean' }, 'manage-cgroups-mode': { type: 'string' }, 'no-subreaper': { type: 'boolean' }, 'auto-dedup': { type: 'boolean' }, 'lazy-pages': { type: 'boolean' }, 'empty-ns': { type: 'string', multiple: true }, 'lsm-profile': { type: 'string' }, 'lsm-mount-context': { type: 'string' }, 'tcp-skip-in-flight': { type: 'boolean' }, 'link-remap': { type: 'boolean' },
        },
        cmd,
      );
      const id = checkId(positionals[0]);
      const dir = resolvePath((values['image-path'] as string | undefined) ?? 'checkpoint');
      if (!existsSync(join(dir, 'oci.json'))) throw new OciError(`${dir} holds no mapvisor-oci checkpoint`, 'give the --image-path a checkpoint was written to');
      const detach = values.detach === true;
      const { child } = await create(g, id, (values.bundle as string | undefined) ?? '.', values['pid-file'] as string | undefined, values['console-socket'] as string | undefined, detach, dir);
      if (detach) return 0;
      const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.on('exit', (c, s2) => r([c, s2])));
      return sig ? 128 + constants.signals[sig] : (code ?? 0);
    }
    case 'exec': {
      // Options end at the container id: what follows is the command's own (`exec ID sh -c ...`).
      const valued = new Set(['--process', '-p', '--console-socket', '--pid-file', '--cwd', '--env', '-e', '--user', '-u', '--additional-gids', '-g', '--cap', '-c', '--process-label', '--apparmor', '--preserve-fds', '--cgroup']);
      let at = 0;
      while (at < argv.length && argv[at]!.startsWith('-') && argv[at] !== '--') at += valued.has(argv[at]!) ? 2 : 1;
      const rest = argv[at] === '--' ? argv.slice(at + 1) : argv.slice(at);
      const { values } = parse(
        argv.slice(0, Math.min(at, argv.length)),
        {
          process: { type: 'string', short: 'p' }, tty: { type: 'boolean', short: 't' }, 'console-socket': { type: 'string' }, 'pid-file': { type: 'string' }, detach: { type: 'boolean', short: 'd' },
          cwd: { type: 'string' }, env: { type: 'string', short: 'e', multiple: true }, user: { type: 'string', short: 'u' }, 'additional-gids': { type: 'string', short: 'g', multiple: true },
          cap: { type: 'string', short: 'c', multiple: true }, 'no-new-privs': { type: 'boolean' }, 'process-label': { type: 'string' }, apparmor: { type: 'string' }, 'preserve-fds': { type: 'string' },
          cgroup: { type: 'string', multiple: true }, 'ignore-paused': { type: 'boolean' },
        },
        cmd,
      );
      const id = checkId(rest[0]);
      const s = readState(g.root, id);
      const st = statusOf(s);
      if (st !== 'running') throw new OciError(`container ${id} is ${st}, not running`, 'exec runs a process in a running container: start it first');
      if (values['preserve-fds'] !== undefined && values['preserve-fds'] !== '0') throw new OciError('exec --preserve-fds: mapvisor passes only stdin, stdout and stderr to an exec\'d process', 'drop --preserve-fds');
      const { spec, terminal } = execSpec(s, values, rest.slice(1));
      return await execCommand(g, id, spec, terminal, values['console-socket'] as string | undefined, values['pid-file'] as string | undefined, values.detach === true);
    }
    case 'spec':
      throw new OciError('spec is not provided', 'use runc spec or write config.json by hand');
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return cmd === undefined ? 1 : 0;
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`mapvisor-oci version ${VERSION}\nspec: ${SPEC_VERSION}\n`);
      return 0;
    default:
      throw new OciError(`unknown command ${JSON.stringify(cmd)}`, 'the commands are create, start, state, kill, delete, run, exec, ps, list, features, pause, resume, checkpoint, restore');
  }
}

export async function ociMain(argv: string[]): Promise<number> {
  const g: Globals = { root: DEFAULT_ROOT, platform: undefined, net: 'none', podIpc: 'refuse' };
  try {
    let i = 0;
    for (; i < argv.length; i++) {
      const a = argv[i]!;
      if (!a.startsWith('-') || a === '-v' || a === '-h' || a === '--help' || a === '--version') break;
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(0, eq) : a;
      if (GLOBAL_FLAG.has(name)) continue;
      if (!GLOBAL_VALUE.has(name)) throw new OciError(`unknown global option ${name}`, 'the global options are --root, --log, --log-format, --systemd-cgroup, --platform, --net, --pod-ipc');
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new OciError(`${name} needs a value`, USAGE.split('\n')[0]!);
      if (name === '--root') g.root = resolvePath(value);
      else if (name === '--log') log.file = value;
      else if (name === '--log-format') {
        if (value !== 'json' && value !== 'text') throw new OciError(`--log-format ${value} is not json or text`, 'give --log-format json');
        log.format = value;
      } else if (name === '--platform') {
        if (!['kvm', 'process', 'auto'].includes(value)) throw new OciError(`--platform ${value} is not kvm, process or auto`, 'give --runtime-flag platform=kvm or platform=process');
        g.platform = value;
      } else if (name === '--net') {
        if (value !== 'none' && value !== 'host') throw new OciError(`--net ${value} is not none or host`, 'give --runtime-flag net=none or net=host');
        g.net = value;
      } else if (name === '--pod-ipc') {
        if (value !== 'refuse' && value !== 'own') throw new OciError(`--pod-ipc ${value} is not refuse or own`, 'give --pod-ipc own (each container keeps its own System V IPC and message queues)');
        g.podIpc = value;
      }
    }
    return await command(g, argv[i], argv.slice(i + 1));
  } catch (e) {
    const msg = e instanceof OciError ? e.oneLine() : (e as { oneLine?: () => string }).oneLine?.() ?? (e as Error).message;
    logError(msg);
    if (process.env.MAPVISOR_DEBUG && (e as Error).stack) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}

