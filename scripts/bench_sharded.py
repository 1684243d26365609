"""Driver of scripts/bench-sharded (see there). Prints one line per way of running
the job: wall seconds, peak RSS (from wait4() on each process this script starts:
for the steps the largest of them, for Spark the spark-submit JVM, which runs the
driver and, in local mode, the executors), and the time each adds over `naslake
run`; every naslake variant must load every row."""
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

import duckdb

from bench_csv import DUCKDB_COPY, SEED_NOTE, generator
from bench_incremental import measure  # (wall s, peak RSS MiB, stdout) of one process

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]
JOB = ROOT / "scripts" / "bench" / "sensor_csv.toml"
DRIVER = ROOT / "deploy" / "emr-serverless" / "naslake_spark.py"


def rows_loaded(out_dir):
    reports = sorted((out_dir / "_naslake" / "runs").glob("*.json"))
    return json.loads(reports[-1].read_text())["totals"]["records_loaded"]


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-sharded-"))
    try:
        src = work / "in" / "long"
        src.mkdir(parents=True)
        rows = int(size_mb * 1e6 / 67)
        t0 = time.perf_counter()
        con = duckdb.connect()
        for f in range(files):
            lo, hi = rows * f // files, rows * (f + 1) // files
            con.execute(generator(f"{lo}, {hi}", src / f"part-{f:03d}.csv"))
        size = sum(p.stat().st_size for p in src.iterdir())
        print(f"input: {size / 2**20:.0f} MiB in {files} files, {rows:,} rows of long-layout sensor CSV "
              f"({SEED_NOTE}); generated in {time.perf_counter() - t0:.1f}s")
        print(f"machine: {os.cpu_count()} cores; one run each; peak RSS is the largest single process\n")

        def out(name):
            d = work / name
            shutil.rmtree(d, ignore_errors=True)
            return d

        results = []

        def record(name, wall, out_dir=None, rss=None):
            if out_dir is not None:
                assert rows_loaded(out_dir) == rows, name
            results.append((name, wall, rss))

        d = out("run")
        w, rss, _ = measure([BIN, "run", str(JOB), "--input", str(src.parent), "--output", str(d),
                             "--log-format", "json"])
        record("naslake run", w, d, rss)
        for shards in (2, 4):
            d = out(f"steps-{shards}")
            t = time.perf_counter()
            _, plan_rss, plan = measure([BIN, "plan", str(JOB), "--input", str(src.parent), "--output", str(d),
                                         "--shards", str(shards)])
            url = plan.strip().splitlines()[-1]
            rsss = [plan_rss]
            for i in range(shards):
                rsss.append(measure([BIN, "work", url, "--shard", str(i)])[1])
            rsss.append(measure([BIN, "commit", url, "--log-format", "json"])[1])
            record(f"plan + {shards} x work (one after another) + commit", time.perf_counter() - t, d, max(rsss))
        python = sys.executable
        spark_submit = str(pathlib.Path(python).parent / "spark-submit")
        env = {"NASLAKE_BIN": BIN, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python,
               "NASLAKE_LOG_FORMAT": "json"}
        for shards in (2, 4):
            d = out(f"spark-{shards}")
            w, rss, _ = measure([spark_submit, "--master", "local[2]", "--conf", "spark.ui.enabled=false",
                                 str(DRIVER), str(JOB), "--input", str(src.parent), "--output", str(d),
                                 "--shards", str(shards)], env)
            record(f"PySpark driver, local[2], {shards} shards", w, d, rss)
        w, rss, _ = measure([sys.executable, "-c", DUCKDB_COPY.format(src=src / "*.csv", dst=work / "duck.parquet")])
        record("DuckDB COPY read_csv -> parquet (no validation)", w, None, rss)

        base = results[0][1]
        print(f"{'way':<58} {'wall s':>7} {'MB/s':>6} {'peak RSS':>9} {'vs run':>7} {'added s':>8}")
        for name, wall, rss in results:
            print(f"{name:<58} {wall:7.2f} {size / 1e6 / wall:6.0f} {rss:6.0f} MiB {base / wall:6.2f}x {wall - base:8.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
