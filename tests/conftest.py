"""Shared fixtures: the naslake binary, runs into temporary lakes, and independent
readers (DuckDB, pyarrow) for what a run wrote."""
import json
import os
import pathlib
import subprocess

import duckdb
import pyarrow.dataset as pads
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ.get("NASLAKE_BIN") or str(
    pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "naslake"
)
SENSOR_JOB = ROOT / "jobs" / "sensor_readings.toml"


class Run:
    def __init__(self, proc, lake):
        self.proc = proc
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lake = pathlib.Path(lake) if lake else None
        self.report = None
        # The summary names the run; its report is OUTPUT/_naslake/runs/RUNID.json.
        for line in proc.stdout.splitlines():
            words = line.split()
            if self.lake and len(words) >= 3 and words[0] == "naslake" and words[2].endswith(":"):
                path = self.lake / "_naslake" / "runs" / f"{words[2].rstrip(':')}.json"
                if path.exists():
                    self.report = json.loads(path.read_text())

    def catalog_entry(self, table, db="naslake"):
        return json.loads((self.lake / "_naslake" / "catalog" / db / f"{table}.json").read_text())


def naslake(*args, cwd=ROOT, env=None, lake=None, check_codes=(0, 3), replace_env=False):
    e = {} if replace_env else dict(os.environ)
    e.setdefault("NASLAKE_LOG_FORMAT", "json")
    if env:
        e.update(env)
    proc = subprocess.run([BIN, *map(str, args)], cwd=cwd, env=e, capture_output=True, text=True, timeout=600)
    run = Run(proc, lake)
    if check_codes is not None and proc.returncode not in check_codes:
        raise AssertionError(f"naslake {args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return run


def dry_run_report(stdout):
    """The JSON report --dry-run prints (after any log lines)."""
    lines = stdout.splitlines()
    start = lines.index("{")
    report, _ = json.JSONDecoder().raw_decode("\n".join(lines[start:]))
    return report


def run_job(job, lake, *extra, **kw):
    return naslake("run", job, "--output", lake, *extra, lake=lake, **kw)


def create_access_point(moto, bucket, region="us-east-1", account="123456789012"):
    """An S3 access point on `bucket` in moto server; returns its ARN."""
    import boto3

    ctl = boto3.client("s3control", endpoint_url=moto, aws_access_key_id="testing",
                       aws_secret_access_key="testing", region_name=region)
    host = moto.split("://", 1)[1]

    def to_moto(request, **_):
        # botocore puts the account id in front of the endpoint's host; send the call
        # to moto itself, under the host moto routes S3 Control calls by.
        request.url = request.url.replace(f"{account}.{host}", host)
        request.headers["Host"] = f"{account}.s3-control.{region}.amazonaws.com"

    ctl.meta.events.register("before-send.s3-control.*", to_moto)
    name = f"ap-{bucket}"
    ctl.create_access_point(AccountId=account, Name=name, Bucket=bucket)
    return f"arn:aws:s3:{region}:{account}:accesspoint/{name}"


def duck_rows(lake, table, columns, partitioned=True):
    """Rows of a table as DuckDB reads the Parquet files (an independent reader)."""
    path = pathlib.Path(lake) / table
    files = [p for p in path.rglob("*.parquet") if not p.name.startswith(("_", "."))]
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    cols = ", ".join(columns)
    src = f"read_parquet('{path}/**/*.parquet', hive_partitioning={str(partitioned).lower()}, hive_types_autocast=false)"
    return con.execute(f"SELECT {cols} FROM {src}").fetchall()


def arrow_table(lake, table, partitioned=True):
    """A table as pyarrow's dataset reader sees it (hive partition columns as strings)."""
    path = pathlib.Path(lake) / table
    return pads.dataset(str(path), format="parquet", partitioning="hive" if partitioned else None).to_table()


@pytest.fixture(scope="session")
def sample_lake(tmp_path_factory):
    """One run of the sensor job on the bundled samples, shared by read-only tests."""
    lake = tmp_path_factory.mktemp("sample") / "lake"
    run = run_job(SENSOR_JOB, lake)
    return run
