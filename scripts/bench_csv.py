"""Benchmark body for scripts/bench-csv (see there). Prints one line per tool with
wall seconds (median of the repeats), MB/s, rows/s, peak RSS and the ratio of its
throughput to DuckDB's; peak RSS comes from wait4() on each tool's own process.
Then naslake's file layout and, with valgrind, its instructions per row."""
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
DATAFUSION_COPY = str(pathlib.Path(BIN).parent / "examples" / "datafusion_copy")
INSTRUCTION_ROWS = 120_000  # the slice scripts/bench-instructions converts
SEED_NOTE = "rows derive from hash(i) in DuckDB: the same file every time"

GENERATE = """
COPY (
  SELECT
    'line-' || lpad(CAST(hash(i, 4) % 40 AS VARCHAR), 2, '0') || '/sensor-' || lpad(CAST(hash(i, 1) % 2000 AS VARCHAR), 4, '0') AS sensor_id,
    strftime(TIMESTAMP '2024-01-01' + to_microseconds(CAST(i * 137 AS BIGINT) * 1000), '%Y-%m-%dT%H:%M:%S.%gZ') AS "timestamp",
    round(20 + 10 * sin(i / 5000.0) + (hash(i, 2) % 10000) / 2500.0, 3) AS value,
    ['temperature', 'pressure', 'vibration'][1 + CAST(hash(i, 3) % 3 AS INTEGER)] AS metric_name,
    ['degC', 'kPa', 'mm/s'][1 + CAST(hash(i, 3) % 3 AS INTEGER)] AS unit
  FROM range({rows}) t(i){order}
) TO '{path}' (HEADER, DELIMITER ',')
"""

# DuckDB's typed read of the benchmark's CSV, which both of its COPYs below share.
DUCKDB_READ = """read_csv('{src}', header=true,
  columns={{'sensor_id': 'VARCHAR', 'timestamp': 'TIMESTAMPTZ', 'value': 'DOUBLE', 'metric_name': 'VARCHAR', 'unit': 'VARCHAR'}})"""

DUCKDB_COPY = """
import duckdb, sys
con = duckdb.connect()
con.execute('''COPY (SELECT * FROM """ + DUCKDB_READ + """)
  TO '{dst}' (FORMAT parquet, COMPRESSION snappy)''')
"""

# The same COPY partitioned by UTC day into hive directories (dt=YYYY-MM-DD/), as
# naslake's output is: the like-for-like reference when the order of the rows
# scatters the days.
DUCKDB_COPY_PARTITIONED = """
import duckdb, sys
con = duckdb.connect()
con.execute('''COPY (SELECT *, CAST(timezone('UTC', "timestamp") AS DATE) AS dt FROM """ + DUCKDB_READ + """)
  TO '{dst}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (dt))''')
"""

# Rows in a Parquet file or a hive-partitioned directory of them.
COUNT_ROWS = "import pyarrow.dataset as ds, sys; print(ds.dataset(sys.argv[1], format='parquet', partitioning='hive').count_rows())"

PYARROW_STREAM = """
import pyarrow as pa, pyarrow.csv as pc, pyarrow.parquet as pq
types = {{'sensor_id': pa.string(), 'timestamp': pa.timestamp('us', tz='UTC'), 'value': pa.float64(), 'metric_name': pa.string(), 'unit': pa.string()}}
reader = pc.open_csv('{src}', convert_options=pc.ConvertOptions(column_types=types))
with pq.ParquetWriter('{dst}', reader.schema, compression='snappy') as w:
    for batch in reader:
        w.write_batch(batch)
"""


def measure_usage(cmd, cwd=None):
    """Runs cmd; returns (wall seconds, CPU seconds (user + system), peak RSS in MiB,
    stdout). Both come from wait4() on the tool's own process."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise SystemExit(f"{cmd[0]} failed ({code}):\n{out}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


# How the generated file quotes its fields: not at all; every field (DuckDB's
# FORCE_QUOTE *, as many exporters write them); or the text fields only.
QUOTINGS = {"plain": None, "quoted": "*", "text-quoted": "(sensor_id, metric_name, unit)"}


# The order of the generated rows: in time (as a logger appends them, the
# default); by sensor, then time (an export per sensor: every chunk of the file
# holds rows of every day, so every dt partition is written to at once); or none
# (each row's place from a hash of its timestamp, the timestamp itself breaking
# the rare ties). The rows are the same; timestamps are unique per row.
ORDERS = {"time": None, "sensor": 'sensor_id, "timestamp"', "shuffled": 'hash("timestamp"), "timestamp"'}


def generator(rows, path, quoting="plain", order="time"):
    """The DuckDB statement that writes the benchmark's CSV, quoted as `quoting`
    says and in the order `order` names."""
    # DuckDB's ORDER BY may name the select list's columns (`sensor_id`, `"timestamp"`).
    by = "" if ORDERS[order] is None else f"\n  ORDER BY {ORDERS[order]}"
    generate = GENERATE.format(rows=rows, path=path, order=by)
    force = QUOTINGS[quoting]
    if force is None:
        return generate
    options = "(HEADER, DELIMITER ',')"
    assert options in generate, "the generator's COPY options changed: update the quoted variants"
    return generate.replace(options, f"(HEADER, DELIMITER ',', FORCE_QUOTE {force})")


def measure(cmd, cwd=None):
    """Runs cmd; returns (wall seconds, peak RSS in MiB, stdout)."""
    wall, _, rss, out = measure_usage(cmd, cwd)
    return wall, rss, out


def main():
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    quoting = sys.argv[3] if len(sys.argv) > 3 else "plain"
    if quoting not in QUOTINGS:
        raise SystemExit(f"QUOTING is one of {', '.join(QUOTINGS)}, not {quoting!r}")
    order = sys.argv[4] if len(sys.argv) > 4 else "time"
    if order not in ORDERS:
        raise SystemExit(f"ORDER is one of {', '.join(ORDERS)}, not {order!r}")
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-"))
    try:
        src_dir = work / "in"
        (src_dir / "long").mkdir(parents=True)
        src = src_dir / "long" / "sensors.csv"
        rows = int(size_mb * 1e6 / 67)  # 67 bytes per line on average
        t0 = time.perf_counter()
        # In a process of its own: sorting the rows takes DuckDB gigabytes, which
        # this process would keep, and a child forked from it would count them in
        # its peak RSS before it runs the tool. What the sort spills goes to the
        # work directory, not the repository.
        generate = ("import duckdb, sys; con = duckdb.connect(); "
                    "con.execute('SET enable_progress_bar = false'); "
                    "con.execute(\"SET temp_directory = '\" + sys.argv[2] + \"'\"); con.execute(sys.argv[1])")
        subprocess.run([sys.executable, "-c", generate, generator(rows, src, quoting, order), str(work / "duckdb-tmp")],
                       check=True)
        os.sync()  # the first tool timed should not also pay for writing the file out
        size = src.stat().st_size
        print(f"input: {size / 2**20:.0f} MiB, {rows:,} rows of long-layout sensor CSV, {quoting}, in {order} order ({SEED_NOTE}); generated in {time.perf_counter() - t0:.1f}s")
        print(f"machine: {os.cpu_count()} cores; each tool runs {repeats}x, median wall time reported\n")

        def naslake_cmd(out):
            return [BIN, "run", str(ROOT / "scripts" / "bench" / "sensor_csv.toml"), "--input", str(src_dir),
                    "--output", str(out), "--log-format", "json"]

        tools = {
            "naslake (typed, validated, lineage, rejects, dt partitions)": lambda out: naslake_cmd(out),
            "duckdb COPY read_csv -> parquet": lambda out: [sys.executable, "-c", DUCKDB_COPY.format(src=src, dst=out)],
            "datafusion COPY (no validation, one file)": lambda out: [DATAFUSION_COPY, str(src), str(out)],
            "duckdb COPY ... PARTITION_BY (dt)": lambda out: [
                sys.executable, "-c", DUCKDB_COPY_PARTITIONED.format(src=src, dst=out.with_suffix(".parts"))],
            "datafusion COPY ... PARTITIONED BY (dt)": lambda out: [
                DATAFUSION_COPY, str(src), str(out.with_suffix(".parts")), "partitioned"],
            "pyarrow open_csv -> ParquetWriter": lambda out: [sys.executable, "-c", PYARROW_STREAM.format(src=src, dst=out)],
        }
        results = {name: ([], []) for name in tools}
        # Repetitions alternate between the tools (and their order), so a slow
        # spell of a shared machine falls on all of them alike.
        for r in range(repeats):
            sequence = list(tools.items()) if r % 2 == 0 else list(tools.items())[::-1]
            for name, make in sequence:
                out = work / f"out-{r}"
                shutil.rmtree(out, ignore_errors=True)
                wall, rss, stdout = measure(make(out if "naslake" in name else out.with_suffix(".parquet")))
                results[name][0].append(wall)
                results[name][1].append(rss)
                if "naslake" not in name and r == 0:
                    # The references' outputs hold every row too (counted in a
                    # process of its own, for this one's peak RSS to stay small).
                    target = out.with_suffix(".parts" if "PARTITION" in name else ".parquet")
                    count = subprocess.run([sys.executable, "-c", COUNT_ROWS, str(target)],
                                           check=True, capture_output=True, text=True).stdout
                    assert int(count) == rows, f"{name} wrote {count.strip()} rows of {rows:,}"
                if "naslake" in name and r == 0:
                    report = json.loads(next((out / "_naslake" / "runs").glob("*.json")).read_text())
                    assert report["totals"]["records_loaded"] == rows, report["totals"]
                    files = list((out / "sensor_readings").rglob("*.parquet"))
                    days = {f.parent.parent.name for f in files}
                    layout = f"{len(files)} files for {len(days)} partitions, {sum(f.stat().st_size for f in files) / 2**20:.0f} MiB"
                shutil.rmtree(out, ignore_errors=True)
                shutil.rmtree(out.with_suffix(".parts"), ignore_errors=True)
                out.with_suffix(".parquet").unlink(missing_ok=True)
        duck = statistics.median(results[next(k for k in results if k.startswith("duckdb"))][0])
        print(f"{'tool':<64} {'wall s':>7} {'MB/s':>7} {'Mrows/s':>8} {'peak RSS':>9} {'vs DuckDB':>9}")
        for name, (walls, rsss) in results.items():
            wall = statistics.median(walls)
            print(f"{name:<64} {wall:7.2f} {size / 1e6 / wall:7.0f} {rows / 1e6 / wall:8.2f} {max(rsss):6.0f}MiB {duck / wall:8.2f}x")
        print(f"\nnaslake output: {layout}")
        label = lambda k: k.split()[0] + (" partitioned" if "PARTITION" in k else "")
        print("all runs (s): " + "; ".join(f"{label(k)} {', '.join(f'{w:.2f}' for w in v[0])}" for k, v in results.items()))
        instructions = ROOT / "scripts" / "bench-instructions"
        if shutil.which("valgrind"):
            ran = subprocess.run([str(instructions), quoting], capture_output=True, text=True)
            if ran.returncode != 0:
                raise SystemExit(f"scripts/bench-instructions failed:\n{ran.stdout}\n{ran.stderr}")
            out = ran.stdout
            total = next(l for l in out.splitlines() if "PROGRAM TOTALS" in l)
            count = int(total.split()[0].replace(",", ""))
            print(f"instructions per row (callgrind, {INSTRUCTION_ROWS:,}-row slice, {quoting}, time order): {count / INSTRUCTION_ROWS:,.0f}")
        else:
            print("instructions per row: needs valgrind (scripts/bench-instructions)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
