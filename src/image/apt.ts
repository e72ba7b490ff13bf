/**
 * Resolves Debian package names to the set of .debs a minimal root needs: the named packages and the
 * closure of their Depends/Pre-Depends, as the host's apt knows them.
 *
 * One `apt-cache depends --recurse` gives the dependency graph (with alternatives and the providers of
 * virtual packages), one `apt-cache show` gives each package's candidate version, section and .deb.
 *
 * The rule for which dependencies go in (packages named explicitly always do):
 *  - `a | b`: the first alternative that has an installable version; a virtual package stands for its
 *    first provider (or one already chosen); a virtual package nobody provides is skipped.
 *  - kept: every package whose name starts with "lib" or whose section is "libs" (libc6, libgcc-s1,
 *    zlib1g, libreadline8, libpython3.11-stdlib, ...), except gcc-N-base (a copyright file only);
 *  - skipped: packages in the sections admin, doc, perl, shells and utils and a few named plumbing
 *    packages (dpkg, debconf, perl-base, coreutils, tar, install-info, readline-common, lsb-base, ...):
 *    package-management tools, maintainer-script helpers, shells, documentation and system-wide config
 *    that a program in a minimal root does not load. Name one with --debian to get it anyway.
 *  - everything else is kept (interpreters such as python3.11, data such as tzdata and media-types).
 *  A skipped package's own dependencies are not followed.
 */
import { exec, firstError } from './exec.js';
import { MapvisorError, UsageError } from '../errors.js';

/** One installable package: the candidate version apt would download. */
export interface DebPackage {
  name: string;
  version: string;
  arch: string;
  section: string;
  /** Pool path of the .deb; empty when this version is installed here but in no package list. */
  filename: string;
  sha256: string;
  /** Size of the .deb in bytes. */
  size: number;
}

/** A Debian package name (policy 5.6.1); anything else never reaches apt's command line. */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;

const DEPENDS_FLAGS = ['--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances'];

const SKIP_SECTIONS = new Set(['admin', 'doc', 'perl', 'shells', 'utils']);
const SKIP_NAMES = new Set([
  'base-files', 'base-passwd', 'bash', 'coreutils', 'dash', 'debconf', 'debianutils', 'dpkg', 'init-system-helpers',
  'install-info', 'lsb-base', 'perl', 'perl-base', 'readline-common', 'sensible-utils', 'sysvinit-utils', 'tar', 'ucf',
]);

/** A named package apt does not know (maybe only because its package lists are empty). */
export class UnknownPackageError extends UsageError {
  constructor(readonly names: string[]) {
    super(`no Debian package named ${names.join(', ')}`, `check the name${names.length > 1 ? 's' : ''} with apt-cache search ${names[0]}`);
    this.name = 'UnknownPackageError';
  }
}

/** Whether a dependency (not a package named explicitly) belongs in a minimal root; see the rule above. */
export function keepDependency(p: Pick<DebPackage, 'name' | 'section'>): boolean {
  if (/^gcc-\d+-base$/.test(p.name)) return false;
  const section = p.section.slice(p.section.lastIndexOf('/') + 1);
  if (p.name.startsWith('lib') || section === 'libs') return true;
  return !SKIP_SECTIONS.has(section) && !SKIP_NAMES.has(p.name);
}

export interface Alternative {
  name: string;
  virtual: boolean;
  /** Another architecture's package (libc6:i386): never chosen. */
  foreign: boolean;
  providers: string[];
}
export interface GraphNode {
  virtual: boolean;
  /** Each group is satisfied by one of its alternatives. */
  groups: Alternative[][];
}

/** Splits "<python3:any>" into its name and whether it is virtual/foreign. */
function parseName(text: string, arch: string): { name: string; virtual: boolean; foreign: boolean } {
  const virtual = text.startsWith('<') && text.endsWith('>');
  const bare = virtual ? text.slice(1, -1) : text;
  const colon = bare.indexOf(':');
  if (colon < 0) return { name: bare, virtual, foreign: false };
  const q = bare.slice(colon + 1);
  return { name: bare.slice(0, colon), virtual, foreign: !(q === 'any' || q === 'native' || q === arch) };
}

/** Parses `apt-cache depends` output into a graph keyed by package name. */
export function parseDepends(text: string, arch: string): Map<string, GraphNode> {
  const graph = new Map<string, GraphNode>();
  let node: GraphNode | null = null;
  let group: Alternative[] | null = null;
  let last: Alternative | null = null;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    if (!line.startsWith(' ')) {
      const n = parseName(line.trim(), arch);
      node = { virtual: n.virtual, groups: [] };
      if (!n.foreign && !graph.has(n.name)) graph.set(n.name, node); // else parsed but ignored
      group = null;
      last = null;
      continue;
    }
    const dep = /^ ([ |])([A-Za-z-]+): (\S+)$/.exec(line);
    if (dep && node) {
      if (dep[2] !== 'Depends' && dep[2] !== 'PreDepends') {
        last = null;
        continue;
      }
      last = { ...parseName(dep[3]!, arch), providers: [] };
      (group ??= []).push(last);
      if (dep[1] === ' ') {
        node.groups.push(group);
        group = null;
      }
      continue;
    }
    const provider = /^ {4}(\S+)$/.exec(line);
    if (provider && last) {
      const p = parseName(provider[1]!, arch);
      if (!p.foreign) last.providers.push(p.name);
    }
  }
  return graph;
}

/** Parses `apt-cache show` stanzas (the first stanza of each package wins; with `listed`, the first with a .deb in a list). */
export function parseShow(text: string, listed = false): Map<string, DebPackage> {
  const out = new Map<string, DebPackage>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    for (const m of stanza.matchAll(/^([A-Za-z0-9-]+):[ \t]*(.*)$/gm)) f.set(m[1]!, m[2]!.trim());
    const name = f.get('Package');
    if (!name || out.has(name) || (listed && !f.get('Filename'))) continue;
    out.set(name, {
      name,
      version: f.get('Version') ?? '',
      arch: f.get('Architecture') ?? '',
      section: f.get('Section') ?? '',
      filename: f.get('Filename') ?? '',
      sha256: f.get('SHA256') ?? '',
      size: Number(f.get('Size') ?? 0),
    });
  }
  return out;
}

/** Picks the package that satisfies a dependency group, or null when none can. */
function choose(group: Alternative[], candidates: Map<string, DebPackage>, chosen: Set<string>): string | null {
  for (const alt of group) {
    if (alt.foreign) continue;
    if (!alt.virtual) {
      if (candidates.has(alt.name)) return alt.name;
      continue;
    }
    const providers = alt.providers.filter((p) => candidates.has(p));
    if (providers.length) return providers.find((p) => chosen.has(p)) ?? providers[0]!;
  }
  return null;
}

/**
 * The closure of `names` under the rule above, in breadth-first order (named packages first). The
 * traversal itself is pure: `graph` from parseDepends, `candidates` from parseShow.
 */
export function closure(names: string[], graph: Map<string, GraphNode>, candidates: Map<string, DebPackage>): DebPackage[] {
  const chosen = new Set<string>(names);
  const queue = [...names];
  for (let i = 0; i < queue.length; i++) {
    for (const group of graph.get(queue[i]!)?.groups ?? []) {
      const pick = choose(group, candidates, chosen);
      if (pick === null || chosen.has(pick)) continue;
      chosen.add(pick);
      if (keepDependency(candidates.get(pick)!)) queue.push(pick);
    }
  }
  return queue.map((n) => candidates.get(n)!);
}

async function aptCache(args: string[]): Promise<string> {
  const r = await exec('apt-cache', args);
  // apt-cache exits 100 with "E: No packages found" when none of the names exists: that is an answer.
  if (r.status !== 0 && !/No packages found/.test(r.stderr)) {
    throw new MapvisorError('EAPT', `apt-cache ${args[0]} failed: ${firstError(r.stderr)}`, 'check that apt works here (apt-cache policy)');
  }
  return r.stdout;
}

/** The host's dpkg architecture (amd64). */
export async function nativeArch(): Promise<string> {
  const r = await exec('dpkg', ['--print-architecture']);
  return r.stdout.trim() || 'amd64';
}

/** True when apt has no package lists at all (a fresh container): `apt-get update` must run first. */
export async function listsEmpty(): Promise<boolean> {
  return !/\sPackages\s*$/m.test(await aptCache(['policy']));
}

/** Runs `apt-get update`; a one-line error when it fails (not root, no network). */
export async function aptUpdate(): Promise<void> {
  const r = await exec('apt-get', ['update', '-q']);
  if (r.status !== 0) {
    throw new MapvisorError('EAPT', `apt-get update failed: ${firstError(r.stderr)}`, 'run apt-get update as root with network access, then retry');
  }
}

/** For each package whose candidate has no .deb in any list: the newest version that has one (if any). */
async function listedVersions(names: string[], candidates: Map<string, DebPackage>): Promise<Map<string, DebPackage>> {
  const unlisted = names.filter((n) => candidates.has(n) && !candidates.get(n)!.filename);
  return unlisted.length ? parseShow(await aptCache(['show', ...unlisted]), true) : new Map();
}

/** Resolves the named packages and their dependencies (see the rule at the top of this file). */
export async function resolvePackages(names: string[]): Promise<DebPackage[]> {
  for (const n of names) {
    if (!PACKAGE_NAME.test(n)) throw new UsageError(`--debian ${JSON.stringify(n)} is not a Debian package name`, 'give names such as --debian sqlite3,curl');
  }
  const arch = await nativeArch();
  if (arch !== 'amd64') throw new MapvisorError('EARCH', `this host's Debian architecture is ${arch}, not amd64`, 'build --debian images on an amd64 host: mapvisor runs x86-64 programs');
  // A named package whose candidate is installed here from outside the lists (nodesource's nodejs, say)
  // is pinned to the newest version a list carries, and its dependencies are that version's.
  const pinned = await listedVersions(names, parseShow(await aptCache(['show', '--no-all-versions', ...names])));
  const query = names.map((n) => (pinned.has(n) ? `${n}=${pinned.get(n)!.version}` : n));
  const graph = parseDepends(await aptCache(['depends', '--recurse', ...DEPENDS_FLAGS, ...query]), arch);
  const real = [...graph].filter(([, n]) => !n.virtual).map(([name]) => name);
  const candidates = real.length ? parseShow(await aptCache(['show', '--no-all-versions', ...real])) : new Map<string, DebPackage>();
  for (const [name, p] of await listedVersions(real, candidates)) candidates.set(name, p);

  const missing = names.filter((n) => !candidates.has(n) && !graph.get(n)?.virtual);
  if (missing.length) throw new UnknownPackageError(missing);
  const virtual = names.filter((n) => graph.get(n)?.virtual);
  if (virtual.length) {
    throw new UsageError(`${virtual[0]} is a virtual package`, `name a package that provides it; apt-cache showpkg ${virtual[0]} lists them`);
  }
  return closure(names, graph, candidates);
}
