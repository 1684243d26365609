"""Benchmark body for scripts/bench-csv (see there). Prints one line per tool with
wall seconds (median of the repeats), MB/s, rows/s, peak RSS and the ratio of its
throughput to DuckDB's; peak RSS comes from wait4() on each tool's own process."""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]
SEED_NOTE = "rows derive from hash(i) in DuckDB: the same file every time"

GENERATE = """
COPY (
  SELECT
    'line-' || lpad(CAST(hash(i, 4) % 40 AS VARCHAR), 2, '0') || '/sensor-' || lpad(CAST(hash(i, 1) % 2000 AS VARCHAR), 4, '0') AS sensor_id,
    strftime(TIMESTAMP '2024-01-01' + to_microseconds(CAST(i * 137 AS BIGINT) * 1000), '%Y-%m-%dT%H:%M:%S.%gZ') AS "timestamp",
    round(20 + 10 * sin(i / 5000.0) + (hash(i, 2) % 10000) / 2500.0, 3) AS value,
    ['temperature', 'pressure', 'vibration'][1 + CAST(hash(i, 3) % 3 AS INTEGER)] AS metric_name,
    ['degC', 'kPa', 'mm/s'][1 + CAST(hash(i, 3) % 3 AS INTEGER)] AS unit
  FROM range({rows}) t(i)
) TO '{path}' (HEADER, DELIMITER ',')
"""

DUCKDB_COPY = """
import duckdb, sys
con = duckdb.connect()
con.execute('''COPY (SELECT * FROM read_csv('{src}', header=true,
  columns={{'sensor_id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'value': 'DOUBLE', 'metric_name': 'VARCHAR', 'unit': 'VARCHAR'}}))
  TO '{dst}' (FORMAT parquet, COMPRESSION snappy)''')
"""

PYARROW_STREAM = """
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
types = {{'sensor_id': pa.string(), 'timestamp': pa.timestamp('us', tz='UTC'), 'value': pa.float64(), 'metric_name': pa.string(), 'unit': pa.string()}}
reader = pc.open_csv('{src}', convert_options=pc.ConvertOptions(column_types=types))
with pq.ParquetWriter('{dst}', reader.schema, compression='snappy') as w:
    for batch in reader:
        w.write_batch(batch)
"""


def measure(cmd, cwd=None):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise SystemExit(f"{cmd[0]} failed ({code}):\n{out}\n{err}")
    return wall, usage.ru_maxrss / 1024, out


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-"))
    try:
        src_dir = work / "in"
        (src_dir / "long").mkdir(parents=True)
        src = src_dir / "long" / "sensors.csv"
        rows = int(size_mb * 1e6 / 67)  # 67 bytes per line on average
        import duckdb
        t0 = time.perf_counter()
        duckdb.connect().execute(GENERATE.format(rows=rows, path=src))
        size = src.stat().st_size
        print(f"input: {size / 2**20:.0f} MiB, {rows:,} rows of long-layout sensor CSV ({SEED_NOTE}); generated in {time.perf_counter() - t0:.1f}s")
        print(f"machine: {os.cpu_count()} cores; each tool runs {repeats}x, median wall time reported\n")

        def naslake_cmd(out):
            return [BIN, "run", str(ROOT / "scripts" / "bench" / "sensor_csv.toml"), "--input", str(src_dir),
                    "--output", str(out), "--log-format", "json"]

        tools = {
            "naslake (typed, validated, lineage, rejects, dt partitions)": lambda out: naslake_cmd(out),
            "duckdb COPY read_csv -> parquet": lambda out: [sys.executable, "-c", DUCKDB_COPY.format(src=src, dst=out)],
            "pyarrow open_csv -> ParquetWriter": lambda out: [sys.executable, "-c", PYARROW_STREAM.format(src=src, dst=out)],
        }
        results = {}
        for name, make in tools.items():
            walls, rsss = [], []
            for r in range(repeats):
                out = work / f"out-{r}"
                shutil.rmtree(out, ignore_errors=True)
                wall, rss, stdout = measure(make(out if "naslake" in name else out.with_suffix(".parquet")))
                walls.append(wall)
                rsss.append(rss)
                if "naslake" in name and r == 0:
                    report = json.loads(next((out / "_naslake" / "runs").glob("*.json")).read_text())
                    assert report["totals"]["records_loaded"] == rows, report["totals"]
                shutil.rmtree(out, ignore_errors=True)
                out.with_suffix(".parquet").unlink(missing_ok=True)
            results[name] = (statistics.median(walls), max(rsss), walls)
        duck = next(v for k, v in results.items() if k.startswith("duckdb"))
        print(f"{'tool':<64} {'wall s':>7} {'MB/s':>7} {'Mrows/s':>8} {'peak RSS':>9} {'vs DuckDB':>9}")
        for name, (wall, rss, walls) in results.items():
            print(f"{name:<64} {wall:7.2f} {size / 1e6 / wall:7.0f} {rows / 1e6 / wall:8.2f} {rss:7.0f}MB {duck[0] / wall:8.2f}x")
        print("\nall runs (s): " + "; ".join(f"{k.split()[0]} {', '.join(f'{w:.2f}' for w in v[2])}" for k, v in results.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
