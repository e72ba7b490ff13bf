"""The compat workload python.sh: each section prints deterministic lines and writes files under /out."""
import asyncio
import hashlib
import json
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import zipfile


def square(x):
    return x * x


def producer(q, n):
    for i in range(n):
        q.put(i)
    q.put(None)


def bump(v):
    for _ in range(1000):
        with v.get_lock():
            v.value += 1


counter = 0


def script():
    global counter
    print("python", sys.version_info[:2])

    # json: a round trip and a file
    doc = {"name": "mapvisor", "n": [1, 2.5, None, True], "nested": {"k": "v\u00e9"}, "big": 2**70}
    text = json.dumps(doc, sort_keys=True, indent=1)
    assert json.loads(text) == doc
    with open("doc.json", "w") as f:
        f.write(text + "\n")
    print("json", len(text), json.dumps(json.loads('{"b": [1, {"c": null}], "a": 1.5e3}'), sort_keys=True))

    # hashlib
    data = b"".join(i.to_bytes(4, "little") for i in range(100000))
    for algo in ("md5", "sha1", "sha256", "sha512", "blake2b", "sha3_256"):
        print("hash", algo, hashlib.new(algo, data).hexdigest()[:32])
    print("pbkdf2", hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000).hex()[:32])

    # sqlite3: a file database with a transaction, an index, an aggregate
    db = sqlite3.connect("data.db")
    db.execute("create table t(id integer primary key, name text, score real)")
    with db:
        db.executemany("insert into t(name, score) values (?, ?)", [(f"n{i}", i * 1.5) for i in range(1000)])
    db.execute("create index t_score on t(score)")
    print("sqlite", db.execute("select count(*), sum(score), max(name) from t").fetchone())
    print("sqlite", db.execute("select name from t where score between 10 and 14 order by score desc").fetchall())
    db.execute("vacuum")
    db.close()

    # subprocess: pipes, exit status, input, a shell pipeline
    r = subprocess.run(["sort", "-r"], input="b\na\nc\n", capture_output=True, text=True)
    print("subprocess sort", r.returncode, r.stdout.split())
    r = subprocess.run("exit 3", shell=True)
    print("subprocess status", r.returncode)
    p = subprocess.Popen(["bash", "-c", "seq 1 1000 | wc -l; echo err >&2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    print("subprocess popen", out.strip(), err.strip(), p.wait())
    print("check_output", subprocess.check_output([sys.executable, "-c", "import os; print(os.getppid() > 0)"], text=True).strip())

    # threading: a lock, a condition, a barrier, a thread pool
    lock = threading.Lock()
    def work(n):
        global counter
        for _ in range(n):
            with lock:
                counter += 1
    threads = [threading.Thread(target=work, args=(20000,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("threads counter", counter)
    barrier = threading.Barrier(4)
    order = []
    def party(i):
        barrier.wait()
        with lock:
            order.append(i)
    ts = [threading.Thread(target=party, args=(i,)) for i in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("barrier", sorted(order))
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as ex:
        print("threadpool", sum(ex.map(lambda x: x * x, range(1000))))

    # multiprocessing: a pool (fork), a queue, a shared value
    if True:
        with multiprocessing.Pool(3) as pool:
            print("pool", sum(pool.map(square, range(2000))))
        q = multiprocessing.Queue()
        pr = multiprocessing.Process(target=producer, args=(q, 500))
        pr.start()
        total = 0
        while (v := q.get()) is not None:
            total += v
        pr.join()
        print("queue", total, pr.exitcode)
        val = multiprocessing.Value("i", 0)
        ps = [multiprocessing.Process(target=bump, args=(val,)) for _ in range(3)]
        [p.start() for p in ps]
        [p.join() for p in ps]
        print("shared value", val.value)
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2) as pool:
            print("spawn pool", pool.map(abs, [-3, -2, 1]))

    # tempfile
    with tempfile.TemporaryDirectory() as d:
        with tempfile.NamedTemporaryFile("w", dir=d, delete=False, suffix=".txt") as f:
            f.write("temp\n")
        print("tempfile", os.path.basename(d).startswith("tmp"), open(f.name).read().strip(), sorted(os.path.splitext(n)[1] for n in os.listdir(d)))
        sp = tempfile.SpooledTemporaryFile(max_size=10)
        sp.write(b"x" * 100)
        sp.seek(0)
        print("spooled", len(sp.read()))
    print("tempdir gone", not os.path.exists(d))

    # zipfile: a deterministic archive (fixed times), read back
    with zipfile.ZipFile("archive.zip", "w") as z:
        for name, body, comp in (("a.txt", b"alpha\n" * 100, zipfile.ZIP_DEFLATED), ("dir/b.bin", bytes(range(256)) * 4, zipfile.ZIP_STORED), ("doc.json", open("doc.json", "rb").read(), zipfile.ZIP_DEFLATED)):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.compress_type = comp
            info.external_attr = 0o644 << 16
            z.writestr(info, body)
    with zipfile.ZipFile("archive.zip") as z:
        print("zip", [(i.filename, i.file_size, i.CRC) for i in z.infolist()], z.testzip())
        z.extractall("unzipped")
    print("unzipped", sorted(os.path.join(r, n) for r, _, ns in os.walk("unzipped") for n in ns))

    # asyncio: a socket pair, both ends as streams, and a subprocess
    async def amain():
        a, b = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)
        async def echo():
            while line := await rb.readline():
                wb.write(line.upper())
                await wb.drain()
            wb.close()
        task = asyncio.create_task(echo())
        got = []
        for i in range(50):
            wa.write(f"line {i}\n".encode())
            await wa.drain()
            got.append((await ra.readline()).decode().strip())
        wa.write_eof()
        await task
        wa.close()
        print("asyncio socketpair", len(got), got[0], got[-1])
        res = await asyncio.gather(*(asyncio.sleep(0.01, result=i) for i in range(10)))
        print("asyncio gather", res)
        proc = await asyncio.create_subprocess_exec("echo", "from-child", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        print("asyncio subprocess", out.decode().strip(), proc.returncode)
        q = asyncio.Queue()
        async def prod():
            for i in range(100):
                await q.put(i)
            await q.put(None)
        async def cons():
            s = 0
            while (v := await q.get()) is not None:
                s += v
            return s
        _, s = await asyncio.gather(prod(), cons())
        print("asyncio queue", s)
    asyncio.run(amain())

    with open("done.txt", "w") as f:
        f.write("ok\n")
    print("done")


if __name__ == "__main__":
    script()
