# compat: Python 3.11 standard library: json, sqlite3, subprocess, threading, multiprocessing, tempfile, zipfile, hashlib, asyncio over a socket pair
# packages: python3-minimal,python3.11,dash
# quick: yes
# timeout: 300
set -eu
python3 /compat/python.d/stdlib.py
echo "exit $?"
