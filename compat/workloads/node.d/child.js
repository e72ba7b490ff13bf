'use strict';
process.on('message', (m) => {
  let s = 0;
  for (let i = 1; i <= m.n; i++) s += i;
  process.send({ sum: s, pid: typeof process.pid });
});
