/**
 * Real Debian programs that spawn: bash pipelines, Python's subprocess and os.fork, and make running
 * gcc (cc1, as, collect2, ld) on a two-file project, each in the sandbox and (where the host has the
 * same program) natively, with the same stdout and exit status. The images are built by
 * scripts/proc-images.mjs (from `npm test`'s fixtures step; cached in .cache/images).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, cpSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sandbox } from '../../src/index.js';
import { PLATFORM } from '../platform.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SHELL = join(ROOT, '.cache', 'images', 'shell.img');
const CC = join(ROOT, '.cache', 'images', 'cc.img');
const noImage = (p: string): string | false => (existsSync(p) ? false : `${p} not built (node scripts/proc-images.mjs)`);

async function inBox(img: string, prog: string, args: string[], mode = 'ro'): Promise<{ status: number; out: string; err: string }> {
  const r = await Sandbox.run(prog, args, { image: `${img},${mode}`, stdout: 'pipe', stderr: 'pipe', timeout: 240 });
  return { status: r.status, out: r.stdout!.toString(), err: r.stderr!.toString() + (r.reason ? `\n[${r.reason}]` : '') };
}

const BASH: Record<string, string> = {
  'the issue\'s pipeline': 'for i in 1 2 3; do echo $i; done | sort -r | head -2; exit 3',
  'pipelines, here-docs and arithmetic': 'cat <<EOF | tr a-z A-Z | tac | sort -r\nalpha\nbeta\nEOF\necho $(( $(seq 1 100 | paste -sd+) )); read a b <<< "x y"; echo "$b$a"',
  'jobs, wait and traps': 'trap "echo trapped TERM" TERM; (sleep 0.2; echo child) & wait $!; kill -TERM $$; echo after; f() { return 4; }; f; echo "f=$?"',
  'command substitution in a loop (200 execs)': 'n=0; for i in $(seq 200); do /bin/true && n=$((n+1)); done; echo $n',
  'PIPESTATUS and process substitution': 'false | true | (exit 5); echo "${PIPESTATUS[@]}"; while read l; do echo "got $l"; done < <(printf "x\\ny\\n")',
};

for (const [name, script] of Object.entries(BASH)) {
  test(`Debian bash: ${name} (same as native bash) [${PLATFORM}]`, { timeout: 300_000, skip: noImage(SHELL) }, async () => {
    const box = await inBox(SHELL, '/bin/bash', ['-c', script], 'cow');
    const host = spawnSync('/bin/bash', ['-c', script], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/nonexistent' } });
    assert.equal(box.out, host.stdout, `${box.err}\n--- native stderr\n${host.stderr}`);
    assert.equal(box.status, host.status, box.err);
  });
}

test(`Debian python3: subprocess.run, os.fork + os.waitpid, shell=True [${PLATFORM}]`, { timeout: 300_000, skip: noImage(SHELL) }, async () => {
  const code = [
    'import subprocess, os, sys',
    'r = subprocess.run(["/bin/echo", "from child"], capture_output=True, text=True)',
    'print("run", r.returncode, r.stdout.strip())',
    'print(subprocess.check_output("echo a b | tr a-z A-Z", shell=True).decode().strip())',
    'pid = os.fork()',
    'if pid == 0:',
    '    os._exit(7)',
    '_, st = os.waitpid(pid, 0)',
    'print("fork", os.WEXITSTATUS(st))',
    'p = subprocess.Popen(["/bin/cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)',
    'out, _ = p.communicate(b"x" * 200000)',
    'print("cat", len(out), p.returncode)',
    'try:',
    '    subprocess.run(["/nonexistent"])',
    'except FileNotFoundError as e:',
    '    print("missing", e.errno)',
    'sys.exit(subprocess.call(["/bin/sh", "-c", "exit 9"]))',
  ].join('\n');
  const box = await inBox(SHELL, '/usr/bin/python3', ['-c', code]);
  const expected = 'run 0 from child\nA B\nfork 7\ncat 200000 0\nmissing 2\n';
  assert.equal(box.out, expected, box.err);
  assert.equal(box.status, 9, box.err);
  const host = spawnSync('python3', ['-c', code], { encoding: 'utf8' });
  if (host.status !== null && !host.error) assert.equal(host.stdout, expected, 'the same program natively');
});

test(`Debian make runs gcc on a two-file project; the program runs [${PLATFORM}]`, { timeout: 600_000, skip: noImage(CC) }, async () => {
  const box = await inBox(CC, '/bin/sh', ['-c', 'cd /src && make 2>&1 && ./hello'], 'cow');
  assert.equal(box.status, 0, `${box.out}\n${box.err}`);
  assert.match(box.out, /gcc -O2 -Wall -c main\.c/);
  assert.match(box.out, /gcc -O2 -Wall -o hello main\.o util\.o/);
  // Natively: the same project with the host's make and gcc prints the same.
  const dir = mkdtempSync(join(tmpdir(), 'mapvisor-make-'));
  try {
    cpSync(join(ROOT, 'test', 'fixtures', 'make-hello'), dir, { recursive: true });
    const host = spawnSync('/bin/sh', ['-c', 'make 2>&1 && ./hello'], { cwd: dir, encoding: 'utf8' });
    assert.equal(host.status, 0, host.stdout);
    assert.equal(box.out, host.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
