"""Shares and lakes the tests write and read, locally or on moto (S3 and Glue),
and the rows an independent reader (DuckDB, pyarrow) finds at the locations the
catalog registers, the way Athena reads them."""
import datetime
import json
import os
import pathlib
import urllib.parse
import uuid

import boto3
import duckdb
import pyarrow.fs as pafs
import pyarrow.parquet as pq

MOTO = os.environ.get("NASLAKE_TEST_MOTO")
REGION = "us-east-1"


class LocalShare:
    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = str(self.root)

    def put(self, key, data, keep_mtime=False):
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        old = path.stat() if keep_mtime and path.exists() else None
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        if old:
            # A NAS copy that keeps the original modification time.
            os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))

    def append(self, key, text):
        self.put(key, (self.root / key).read_bytes() + text.encode())

    def delete(self, key):
        (self.root / key).unlink()

    def copy_to(self, other):
        for p in sorted(self.root.rglob("*")):
            if p.is_file():
                other.put(str(p.relative_to(self.root)), p.read_bytes())


class LocalLake:
    """A local output with the local catalog under it."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.url = str(self.root)
        self.args = []
        self.env = {}

    def entry(self, table):
        path = self.root / "_naslake" / "catalog" / "naslake" / f"{table}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def locations(self, table):
        e = self.entry(table)
        if e is None:
            return []
        keys = [k["Name"] for k in e["TableInput"]["PartitionKeys"]]
        if not keys:
            return [(e["TableInput"]["StorageDescriptor"]["Location"], {})]
        return [(p["StorageDescriptor"]["Location"], dict(zip(keys, p["Values"]))) for p in e["Partitions"]]

    def files_at(self, location):
        d = pathlib.Path(urllib.parse.unquote(location[len("file://"):]))
        return sorted(str(f) for f in d.glob("*.parquet")) if d.is_dir() else []

    def all_data_files(self):
        return sorted(str(p) for p in self.root.rglob("*.parquet")
                      if "_naslake" not in p.parts and not p.name.startswith(("_", ".")))

    def read(self, files):
        return duckdb.connect().execute(
            f"SELECT * FROM read_parquet({files!r}, hive_partitioning=false)").fetchall()

    def state(self, job="sensor_readings"):
        d = self.root / "_naslake" / "state" / job
        cur = json.loads((d / "current.json").read_text())
        return json.loads((d / "commits" / f"{cur['run_id']}.json").read_text())["state"]


def table_rows(lake, table):
    """Every row at the catalog's locations, with its partition values, sorted."""
    out = []
    for location, values in lake.locations(table):
        files = lake.files_at(location)
        if not files:
            continue
        for row in lake.read(files):
            out.append(tuple(map(plain, row)) + tuple(sorted(values.items())))
    return sorted(out)


def plain(v):
    """A value as text that DuckDB's and pyarrow's readings of it share."""
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.timezone.utc).isoformat()
    return repr(v)


def aws_env():
    port = MOTO.rsplit(":", 1)[1]
    return {
        "AWS_ENDPOINT_URL": f"http://localhost:{port}",
        "AWS_ENDPOINT_URL_GLUE": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "NASLAKE_RETRY_BASE_MS": "50",
    }


def s3():
    return boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name=REGION)


def glue():
    return boto3.client("glue", endpoint_url=MOTO, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name=REGION)


class S3Share:
    def __init__(self, bucket, prefix):
        self.client, self.bucket, self.prefix = s3(), bucket, prefix
        self.url = f"s3://{bucket}/{prefix}"

    def put(self, key, data, keep_mtime=False):
        self.client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}",
                               Body=data if isinstance(data, bytes) else data.encode())

    def get(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read()

    def append(self, key, text):
        self.put(key, self.get(key) + text.encode())

    def delete(self, key):
        self.client.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")

    def copy_to(self, other):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix + "/")
        for page in pages:
            for o in page.get("Contents", []):
                other.put(o["Key"][len(self.prefix) + 1:], self.get(o["Key"][len(self.prefix) + 1:]))


class GlueLake:
    """An S3 output registered in a Glue database of its own."""

    def __init__(self, bucket, prefix):
        self.bucket, self.prefix = bucket, prefix
        self.url = f"s3://{bucket}/{prefix}"
        self.db = f"t_{uuid.uuid4().hex[:10]}"
        self.args = ["--catalog", f"glue:{self.db}"]
        self.env = aws_env()
        self.root = None
        host = MOTO.split("://", 1)[1]
        self.fs = pafs.S3FileSystem(endpoint_override=host, scheme="http", access_key="testing",
                                    secret_key="testing", region=REGION)

    def entry(self, table):
        try:
            t = glue().get_table(DatabaseName=self.db, Name=table)["Table"]
        except glue().exceptions.EntityNotFoundException:
            return None
        parts = []
        for page in glue().get_paginator("get_partitions").paginate(DatabaseName=self.db, TableName=table):
            parts += page["Partitions"]
        return t, sorted(parts, key=lambda p: p["Values"])

    def locations(self, table):
        e = self.entry(table)
        if e is None:
            return []
        t, parts = e
        keys = [k["Name"] for k in t["PartitionKeys"]]
        if not keys:
            return [(t["StorageDescriptor"]["Location"], {})]
        return [(p["StorageDescriptor"]["Location"], dict(zip(keys, p["Values"]))) for p in parts]

    def files_at(self, location):
        path = location[len("s3://"):].rstrip("/")
        infos = self.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet"))

    def all_data_files(self):
        infos = self.fs.get_file_info(pafs.FileSelector(f"{self.bucket}/{self.prefix}", recursive=True))
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(".parquet")
                      and "/_naslake/" not in i.path)

    def read(self, files):
        rows = []
        for f in files:
            t = pq.read_table(f, filesystem=self.fs)
            rows += [tuple(r.values()) for r in t.to_pylist()]
        return rows
