'use strict';
// The compat workload node.sh: deterministic lines on stdout, files under /out.
const fs = require('fs');
const fsp = require('fs/promises');
const path = require('path');
const cp = require('child_process');
const crypto = require('crypto');
const zlib = require('zlib');
const { Worker } = require('worker_threads');
const { pipeline } = require('stream/promises');

async function main() {
  // fs: sync and promise APIs, directories, rename, stat, a stream pipeline through gzip
  fs.mkdirSync('tree/sub', { recursive: true });
  for (let i = 0; i < 20; i++) fs.writeFileSync(`tree/sub/f${String(i).padStart(2, '0')}.txt`, `line ${i}\n`.repeat(i + 1));
  fs.renameSync('tree/sub/f00.txt', 'tree/renamed.txt');
  fs.symlinkSync('renamed.txt', 'tree/link');
  console.log('readdir', fs.readdirSync('tree/sub').length, fs.readdirSync('tree').sort().join(','));
  console.log('stat', fs.statSync('tree/sub/f05.txt').size, fs.lstatSync('tree/link').isSymbolicLink(), fs.readlinkSync('tree/link'));
  await fsp.writeFile('data.json', JSON.stringify({ a: [1, 2, 3], b: 'x' }, null, 2) + '\n');
  const data = JSON.parse(await fsp.readFile('data.json', 'utf8'));
  console.log('promises', data.a.length, data.b);
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  fs.writeFileSync('big.bin', big);
  await pipeline(fs.createReadStream('big.bin'), zlib.createGzip({ level: 6 }), fs.createWriteStream('big.bin.gz'));
  const back = zlib.gunzipSync(fs.readFileSync('big.bin.gz'));
  console.log('gzip roundtrip', back.equals(big));
  const fh = await fsp.open('appended.txt', 'a');
  for (let i = 0; i < 10; i++) await fh.write(`append ${i}\n`);
  await fh.close();
  console.log('appended', fs.readFileSync('appended.txt', 'utf8').split('\n').length - 1);
  const watchedDir = fs.opendirSync('tree/sub');
  let n = 0;
  for (let e = watchedDir.readSync(); e; e = watchedDir.readSync()) n++;
  watchedDir.closeSync();
  console.log('opendir', n);

  // crypto
  console.log('sha256', crypto.createHash('sha256').update(big).digest('hex').slice(0, 32));
  console.log('hmac', crypto.createHmac('sha1', 'key').update('data').digest('hex'));
  console.log('pbkdf2', crypto.pbkdf2Sync('pw', 'salt', 1000, 16, 'sha256').toString('hex'));
  const key = crypto.scryptSync('pw', 'salt', 32);
  const c = crypto.createCipheriv('aes-256-cbc', key, Buffer.alloc(16, 1));
  console.log('aes', Buffer.concat([c.update('secret message'), c.final()]).toString('hex'));
  console.log('random bytes', crypto.randomBytes(16).length);

  // child_process
  console.log('execSync', cp.execSync('echo hi | tr a-z A-Z', { encoding: 'utf8' }).trim());
  const r = cp.spawnSync('sh', ['-c', 'echo out; echo err >&2; exit 4'], { encoding: 'utf8' });
  console.log('spawnSync', r.status, r.stdout.trim(), r.stderr.trim());
  const out = await new Promise((resolve, reject) => {
    const child = cp.spawn('sort', ['-n'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let s = '';
    child.stdout.on('data', (d) => (s += d));
    child.on('close', (code) => resolve(`${code} ${s.split('\n').slice(0, 3).join(',')}`));
    child.on('error', reject);
    child.stdin.end('10\n9\n100\n1\n');
  });
  console.log('spawn', out);
  const ef = await new Promise((resolve) => cp.execFile('node', ['-e', 'process.stdout.write(String(6*7)); process.exit(3)'], (err, stdout) => resolve(`${err && err.code} ${stdout}`)));
  console.log('execFile', ef);
  const forked = await new Promise((resolve) => {
    const ch = cp.fork(path.join(__dirname, 'child.js'));
    ch.on('message', (m) => {
      ch.disconnect();
      resolve(m);
    });
    ch.send({ n: 10 });
  });
  console.log('fork ipc', JSON.stringify(forked));

  // a worker thread with a SharedArrayBuffer and messages
  const sab = new SharedArrayBuffer(4 * 4);
  const result = await new Promise((resolve, reject) => {
    const w = new Worker(path.join(__dirname, 'worker.js'), { workerData: { sab, upto: 100000 } });
    w.on('message', resolve);
    w.on('error', reject);
  });
  console.log('worker', result, Atomics.load(new Int32Array(sab), 0));
  const workers = await Promise.all(
    [1, 2, 3].map(
      (i) =>
        new Promise((resolve, reject) => {
          const w = new Worker('const { parentPort, workerData } = require("worker_threads"); parentPort.postMessage(workerData * 2);', { eval: true, workerData: i });
          w.on('message', resolve);
          w.on('error', reject);
        }),
    ),
  );
  console.log('workers', workers.join(','));

  // timers and the event loop
  const order = [];
  await new Promise((resolve) => {
    setTimeout(() => order.push('timeout20'), 20);
    setTimeout(() => {
      order.push('timeout40');
      resolve();
    }, 40);
    setImmediate(() => order.push('immediate'));
    process.nextTick(() => order.push('tick'));
    Promise.resolve().then(() => order.push('micro'));
  });
  console.log('event loop', order.join(','));
  fs.writeFileSync('done.txt', 'ok\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
