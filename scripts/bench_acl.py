"""Benchmark body for scripts/bench-acl (see there). Prints paths per second
(median of the repeats) for naslake and for a sequential client, their ratio, the
peak requests in flight the stand-in saw against naslake's limit, and naslake's
peak RSS (wait4)."""
import http.client
import json
import os
import pathlib
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_acl import ADMIN_FULL, PASSWORD, SVM, USER, VOLUME, Standin, ace, ntfs  # noqa: E402

BIN = os.environ["NASLAKE_BIN"]
DEFAULT_IN_FLIGHT = 32

JOB = """
name = "bench_acl"
[sources.acl]
format = "acl"
[tables.acl_entries]
schema = "{root}/schemas/acl_entries.toml"
[tables.acl_rejects]
schema = "{root}/schemas/acl_rejects.toml"
from = "rejects"
"""


def tree(files, per_dir=100):
    perm = ntfs(acls=[ADMIN_FULL, ace("CORP\\Finance-Team", "modify"), ace("Everyone", "read", inherited=True)])
    t = {"/": {"type": "directory", "perm": perm}}
    for i in range(files):
        d = f"/d{i // per_dir:03}"
        t.setdefault(d, {"type": "directory", "perm": perm})
        t[f"{d}/f{i:06}.dat"] = {"type": "file", "perm": perm}
    return t


def sequential(standin, limit):
    """One request at a time over one kept-alive connection: the walk's listings and
    a permissions call per path, as a script around the REST API does it."""
    ctx = ssl.create_default_context(cafile=standin.ca)
    conn = http.client.HTTPSConnection("127.0.0.1", standin.port, context=ctx)
    import base64
    auth = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}

    def get(target):
        conn.request("GET", target, headers=auth)
        r = conn.getresponse()
        return r.status, json.loads(r.read())

    q = urllib.parse.quote
    done = 0
    start = time.monotonic()
    dirs = ["/"]
    while dirs and done < limit:
        d = dirs.pop()
        p = "%2F" if d == "/" else q(d.lstrip("/"), safe="")
        _, page = get(f"/api/storage/volumes/{VOLUME}/files/{p}?fields=name,type&max_records=1000")
        for r in page["records"]:
            if r["name"] in (".", ".."):
                continue
            child = (d.rstrip("/") + "/" + r["name"])
            if r["type"] == "directory":
                dirs.append(child)
            get(f"/api/protocols/file-security/permissions/{SVM}/{q('/vol1' + child, safe='')}")
            done += 1
            if done >= limit:
                break
    return done / (time.monotonic() - start)


def naslake_run(standin, tmp, job):
    env = dict(os.environ, **standin.env(), NASLAKE_LOG="warn")
    start = time.monotonic()
    p = subprocess.Popen([BIN, "run", str(job), "--output", str(tmp / f"lake-{time.time_ns()}")],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"naslake failed: {p.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main():
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
    latency = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    t = tree(files)
    paths = len(t)
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        job = tmp / "bench_acl.toml"
        job.write_text(JOB.format(root=ROOT))
        s = Standin(tmp, t, latency_ms=latency)
        try:
            ours, seq, rss, cpus = [], [], [], []
            for _ in range(repeats):
                elapsed, peak, cpu = naslake_run(s, tmp, job)
                ours.append(paths / elapsed)
                rss.append(peak)
                cpus.append(cpu / elapsed)
                seq.append(sequential(s, min(paths, 300)))
            stats = s.stats()
        finally:
            s.stop()
    n, q = statistics.median(ours), statistics.median(seq)
    print(f"{paths} paths, {latency:g} ms per call, {repeats} repeats (median), 2 cores")
    print(f"naslake     {n:8.0f} paths/s  peak RSS {max(rss):6.1f} MiB  CPU {statistics.median(cpus):.2f} cores  ({DEFAULT_IN_FLIGHT} in flight at most)")
    print(f"sequential  {q:8.0f} paths/s  (one request at a time, first 300 paths)")
    print(f"ratio       {n / q:8.1f}x")
    print(f"stand-in: {stats['requests']} requests, peak in flight {stats['max_in_flight']} (limit {DEFAULT_IN_FLIGHT})")


if __name__ == "__main__":
    main()
