# compat: node 18 (Debian's nodejs): fs (sync, promises, streams), child_process (spawn, exec, execFile), a worker thread, zlib, crypto, timers
# packages: nodejs,dash
# quick: yes
# timeout: 300
set -eu
node -p '"node " + process.versions.node.split(".")[0]'
node /compat/node.d/main.js
echo "exit $?"
