'use strict';
const { parentPort, workerData } = require('worker_threads');
const a = new Int32Array(workerData.sab);
let primes = 0;
for (let n = 2; n < workerData.upto; n++) {
  let p = true;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) { p = false; break; }
  if (p) primes++;
}
Atomics.store(a, 0, primes);
parentPort.postMessage(`primes below ${workerData.upto}: ${primes}`);
