"""See scripts/bench-glue. Uses the test helpers (tests/) for the job and the
recording proxy, so the job benchmarked is the one the tests check."""
import os
import pathlib
import sys
import tempfile
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import boto3  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import test_glue as tg  # noqa: E402
from glue_proxy import GlueProxy  # noqa: E402


def naslake_local(job, out):
    t0 = time.perf_counter()
    tg.naslake("run", job, "--output", out, "--catalog", f"local:{out}")
    return time.perf_counter() - t0


def naslake_run(job, db):
    """Wall time of a run against moto directly, and the Glue calls of the same run
    repeated through the recording proxy (which adds latency of its own)."""
    t0 = time.perf_counter()
    tg.run_events(job, db)
    wall = time.perf_counter() - t0
    proxy = GlueProxy(tg.PORT)
    with proxy:
        tg.run_events(job, f"{db}_counted", env=tg.aws_env(proxy.port))
    ops = {}
    for op, _ in proxy.calls:
        ops[op] = ops.get(op, 0) + 1
    return wall, ops


def by_hand(days, out, db):
    """pyarrow writes one file per partition; boto3 creates the table and registers
    the partitions 100 at a time, checking each call's per-partition errors."""
    glue = boto3.client("glue", endpoint_url=tg.MOTO, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name=tg.REGION)
    t0 = time.perf_counter()
    for i, d in enumerate(days):
        part = out / f"day={d}"
        part.mkdir(parents=True)
        pq.write_table(pa.table({"a": [0], "b": [f"r-{d}-0"]}), part / "part-0.parquet", compression="zstd")
    written = time.perf_counter()
    glue.create_database(DatabaseInput={"Name": db})
    sd = {"Columns": [{"Name": "a", "Type": "bigint"}, {"Name": "b", "Type": "string"}],
          "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
          "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
          "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}
    glue.create_table(DatabaseName=db, TableInput={
        "Name": "events", "TableType": "EXTERNAL_TABLE", "StorageDescriptor": dict(sd, Location=f"file://{out}/"),
        "PartitionKeys": [{"Name": "day", "Type": "string"}], "Parameters": {"classification": "parquet"}})
    calls = 2
    for i in range(0, len(days), 100):
        chunk = days[i:i + 100]
        r = glue.batch_create_partition(DatabaseName=db, TableName="events", PartitionInputList=[
            {"Values": [d], "StorageDescriptor": dict(sd, Location=f"file://{out}/day={d}/")} for d in chunk])
        assert not r.get("Errors"), r["Errors"][:3]
        calls += 1
    return written - t0, time.perf_counter() - written, calls


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-glue-"))
    days = [f"d{i:05d}" for i in range(n)]
    job = tg.write_job(tmp, mode="overwrite-partitions")
    tg.write_input(tmp, days, rows_per_day=1)
    db = f"bench_{uuid.uuid4().hex[:6]}"
    print(f"{n} partitions, one row each; moto at {tg.MOTO}")
    local = naslake_local(job, tmp / "local")
    wall, ops = naslake_run(job, db)
    wall2, ops2 = naslake_run(job, db)  # the same data again: every partition re-pointed
    write, register, calls = by_hand(days, tmp / "byhand", f"hand_{uuid.uuid4().hex[:6]}")
    rows = [
        ("naslake run, local catalog", local, "-"),
        ("naslake run, Glue (creates all)", wall, ops),
        ("naslake re-run, Glue (re-points all)", wall2, ops2),
        ("pyarrow writes the same files", write, "-"),
        ("boto3 registers them by hand", register, f"{calls} calls"),
    ]
    print(f"{'':<38} {'wall s':>7}  Glue calls")
    for name, t, c in rows:
        print(f"{name:<38} {t:>7.2f}  {c}")
    glue_cost = max(wall - local, 0.0)
    print(f"Glue commit within the naslake run: about {glue_cost:.2f} s "
          f"(run with Glue minus run with the local catalog), vs {register:.2f} s for boto3 by hand: "
          f"{glue_cost / register if register else float('nan'):.2f}x")
    print(f"whole naslake run (CSV in, validated, Parquet out, rejects, report, Glue) vs pyarrow + boto3: "
          f"{wall / (write + register):.2f}x the time")


if __name__ == "__main__":
    main()
