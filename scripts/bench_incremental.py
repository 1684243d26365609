"""Driver of scripts/bench-incremental: builds a share of N small sensor CSV files
(seeded), runs the sensor job in full, changes 1% of the files (appended to,
replaced, deleted, added), then times an incremental run and a full run over the
changed share, and DuckDB re-reading the whole share into partitioned Parquet (what
a user with no incremental state does). Prints objects listed and opened, seconds,
peak RSS, and the ratios."""
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]
JOB = ROOT / "jobs" / "sensor_readings.toml"
MOTO = os.environ.get("NASLAKE_TEST_MOTO")
HEADER = "sensor_id,timestamp,value,metric_name,unit\n"


def csv_body(rng, i, lines=8):
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    rows = [f"s-{i % 500:03d},2024-{month:02d}-{day:02d}T{h:02d}:00:00Z,{rng.uniform(10, 90):.2f},temperature,degC\n"
            for h in range(lines)]
    return HEADER + "".join(rows)


def key(i):
    return f"long/line-{i % 50:02d}/f-{i:06d}.csv"


def changes(n, rng):
    """1% of n: half appended to, 30% replaced, 10% deleted, 10% new."""
    k = max(n // 100, 10)
    picked = rng.sample(range(n), k)
    a, r, d = k // 2, k * 3 // 10, k // 10
    return picked[:a], picked[a:a + r], picked[a + r:a + r + d], list(range(n, n + (k - a - r - d)))


def change_local_share(share, n, rng):
    """Changes 1% of a local share of n objects (see `changes`); returns the keys'
    numbers by change."""
    appended, replaced, deleted, added = changes(n, rng)
    for i in appended:
        with open(share / key(i), "a") as f:
            f.write(f"s-{i % 500:03d},2024-06-15T23:00:00Z,50.0,temperature,degC\n")
    for i in replaced:
        (share / key(i)).write_text(csv_body(rng, i + 7))
    for i in deleted:
        (share / key(i)).unlink()
    for i in added:
        p = share / key(i)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(csv_body(rng, i))
    return appended, replaced, deleted, added


def measure(cmd, env=None):
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
        if code not in (0, 3):
            err.seek(0)
            raise SystemExit(f"{cmd[:3]} failed ({code}):\n{text[-3000:]}\n{err.read().decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, text


def report_of(stdout, read_report):
    for line in stdout.splitlines():
        w = line.split()
        if len(w) >= 3 and w[0] == "naslake" and w[2].endswith(":"):
            return read_report(w[2].rstrip(":"))
    raise SystemExit("no run id in the summary")


def naslake(share_url, out_url, extra, env, read_report):
    wall, rss, stdout = measure([BIN, "run", str(JOB), "--input", share_url, "--output", out_url, *extra], env)
    r = report_of(stdout, read_report)
    return {"s": wall, "rss": rss, "listed": r["totals"]["objects_listed"], "opened": r["totals"]["files_seen"],
            "rows_out": r["totals"]["rows_out"], "inc": r.get("incremental", {})}


def table(title, first, rows):
    """Prints one share's results; ratios are to the first row (naslake full)."""
    print(f"\n### {title}\n")
    print(f"first (full) run: {first['s']:.2f} s, {first['rss']:.0f} MiB\n")
    print("| run over the changed share | objects listed | objects opened | s | peak RSS | vs naslake full |")
    print("|---|---|---|---|---|---|")
    base = rows[0][1]
    for name, m in rows:
        ratio = base["s"] / m["s"] if m["s"] else float("inf")
        print(f"| {name} | {m['listed']:,} | {m['opened']:,} | {m['s']:.2f} | {m['rss']:.0f} MiB | {ratio:.1f}× |")


def local(n, rng, work):
    share, lake = work / "share", work / "lake"
    for i in range(n):
        p = share / key(i)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(csv_body(rng, i))
    read = lambda run: json.loads((lake / "_naslake" / "runs" / f"{run}.json").read_text())
    first = naslake(str(share), str(lake), ["--incremental"], {}, read)
    appended, replaced, deleted, added = change_local_share(share, n, rng)
    inc = naslake(str(share), str(lake), ["--incremental"], {}, read)
    quiet = naslake(str(share), str(lake), ["--incremental"], {}, read)
    full_lake = work / "full"
    read_full = lambda run: json.loads((full_lake / "_naslake" / "runs" / f"{run}.json").read_text())
    full = naslake(str(share), str(full_lake), [], {}, read_full)
    duck_sql = (f"COPY (SELECT *, CAST(CAST(timestamp AS DATE) AS VARCHAR) AS dt FROM read_csv('{share}/long/*/*.csv', "
                f"columns={{'sensor_id':'VARCHAR','timestamp':'TIMESTAMPTZ','value':'DOUBLE','metric_name':'VARCHAR','unit':'VARCHAR'}}, header=true)) "
                f"TO '{work}/duck' (FORMAT parquet, PARTITION_BY (dt))")
    dwall, drss, _ = measure([sys.executable, "-c", f"import duckdb; duckdb.sql({duck_sql!r})"])
    duck = {"s": dwall, "rss": drss, "listed": n, "opened": n - len(deleted) + len(added)}
    table(f"local folder: {n:,} objects, {len(appended) + len(replaced) + len(deleted) + len(added):,} changed "
          f"({len(appended)} appended, {len(replaced)} replaced, {len(deleted)} deleted, {len(added)} new)", first,
          [("naslake full", full), ("DuckDB, whole share to Parquet", duck), ("naslake --incremental", inc),
           ("naslake --incremental, nothing changed", quiet)])
    print(f"\nincremental: {json.dumps(inc['inc'].get('objects'))}, rows added {inc['inc'].get('rows_added')}, "
          f"removed {inc['inc'].get('rows_removed')}")


def on_moto(n, rng):
    port = MOTO.rsplit(":", 1)[1]
    env = {"AWS_ENDPOINT_URL": f"http://localhost:{port}", "AWS_ENDPOINT_URL_GLUE": f"http://127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="bench-share")
    s3.create_bucket(Bucket="bench-lake")
    for i in range(n):
        s3.put_object(Bucket="bench-share", Key=key(i), Body=csv_body(rng, i).encode())

    def read_in(prefix):
        return lambda run: json.loads(s3.get_object(Bucket="bench-lake", Key=f"{prefix}/_naslake/runs/{run}.json")["Body"].read())

    glue = ["--catalog", "glue:bench_incremental"]
    first = naslake("s3://bench-share", "s3://bench-lake/inc", ["--incremental", *glue], env, read_in("inc"))
    appended, replaced, deleted, added = changes(n, rng)
    for i in appended:
        body = s3.get_object(Bucket="bench-share", Key=key(i))["Body"].read()
        s3.put_object(Bucket="bench-share", Key=key(i), Body=body + b"s-001,2024-06-15T23:00:00Z,50.0,temperature,degC\n")
    for i in replaced:
        s3.put_object(Bucket="bench-share", Key=key(i), Body=csv_body(rng, i + 7).encode())
    for i in deleted:
        s3.delete_object(Bucket="bench-share", Key=key(i))
    for i in added:
        s3.put_object(Bucket="bench-share", Key=key(i), Body=csv_body(rng, i).encode())
    inc = naslake("s3://bench-share", "s3://bench-lake/inc", ["--incremental", *glue], env, read_in("inc"))
    quiet = naslake("s3://bench-share", "s3://bench-lake/inc", ["--incremental", *glue], env, read_in("inc"))
    full = naslake("s3://bench-share", "s3://bench-lake/full", ["--catalog", "glue:bench_full"], env, read_in("full"))
    table(f"moto server (S3 in and out, Glue): {n:,} objects, 1% changed", first,
          [("naslake full", full), ("naslake --incremental", inc), ("naslake --incremental, nothing changed", quiet)])


def main():
    n_local = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    n_moto = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    rng = random.Random(20261201)
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-inc-"))
    try:
        local(n_local, rng, work)
        if MOTO and n_moto > 0:
            on_moto(n_moto, rng)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
