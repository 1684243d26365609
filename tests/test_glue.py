"""The Glue Data Catalog backend against moto server speaking the real Glue API
(started by scripts/test on a loopback port). Each test uses a database of its own.

What Glue holds is read back with boto3; the data is read by DuckDB from exactly the
locations Glue registers (what Athena would read), and by `naslake query`."""
import json
import os
import pathlib
import textwrap
import urllib.parse
import uuid

import boto3
import duckdb
import pytest

from athena_types import problems
from conftest import ROOT, SENSOR_JOB, create_access_point, duck_rows, naslake
from glue_proxy import GlueProxy

MOTO = os.environ.get("NASLAKE_TEST_MOTO")
pytestmark = pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
REGION = "us-east-1"
PORT = int(MOTO.rsplit(":", 1)[1]) if MOTO else 0


def aws_env(glue_port=PORT):
    return {
        "AWS_ENDPOINT_URL": f"http://localhost:{PORT}",
        "AWS_ENDPOINT_URL_GLUE": f"http://127.0.0.1:{glue_port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "NASLAKE_RETRY_BASE_MS": "50",
    }


@pytest.fixture
def glue():
    return boto3.client("glue", endpoint_url=MOTO, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def db():
    return f"t_{uuid.uuid4().hex[:10]}"


def partitions(glue, db, table):
    out = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=table):
        out += page["Partitions"]
    return sorted(out, key=lambda p: p["Values"])


def local_path(location):
    """The directory a file:// location names (its path is percent-encoded)."""
    assert location.startswith("file:///"), location
    return pathlib.Path(urllib.parse.unquote(location[len("file://"):]))


def rows_at_glue_locations(glue, db, table, columns):
    """Rows DuckDB reads from the files under the locations Glue registers."""
    t = glue.get_table(DatabaseName=db, Name=table)["Table"]
    keys = [k["Name"] for k in t["PartitionKeys"]]
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    out = []
    if keys:
        places = [(p["StorageDescriptor"]["Location"], p["Values"]) for p in partitions(glue, db, table)]
    else:
        places = [(t["StorageDescriptor"]["Location"], [])]
    for location, values in places:
        files = sorted(str(f) for f in local_path(location).glob("*.parquet"))
        if not files:
            continue
        file_cols = [c for c in columns if c not in keys]
        got = con.execute(f"SELECT {', '.join(file_cols)} FROM read_parquet({files!r})").fetchall()
        for r in got:
            row = dict(zip(file_cols, r))
            row.update(zip(keys, values))
            out.append(tuple(row[c] for c in columns))
    return sorted(out, key=repr)


def table_definition(glue, db, table):
    """What a TableInput sets of a Glue table (not Glue's versions and times)."""
    t = glue.get_table(DatabaseName=db, Name=table)["Table"]
    return {k: t.get(k) for k in ("Name", "Description", "TableType", "Parameters",
                                  "StorageDescriptor", "PartitionKeys")}


def query_rows(db, sql, env=None):
    out = naslake("query", sql, "--catalog", f"glue:{db}", "--format", "json", env=env or aws_env()).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- the sensor job ------------------------------------------------------------

def test_sensor_job_registers_every_table_and_reruns_idempotently(tmp_path, glue, db):
    lake = tmp_path / "lake"
    first = naslake("run", SENSOR_JOB, "--output", lake, "--catalog", f"glue:{db}", env=aws_env(), lake=lake)
    assert first.code == 3, first.stdout + first.stderr
    database = glue.get_database(Name=db)["Database"]
    assert "naslake" in database["Description"]
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=db)["TableList"]}
    assert set(tables) == {"sensor_readings", "sensor_rejects", "sensor_anomalies"}
    t = tables["sensor_readings"]
    assert t["TableType"] == "EXTERNAL_TABLE"
    assert t["Parameters"]["classification"] == "parquet"
    assert t["Parameters"]["naslake.run_id"] == first.report["run_id"]
    sd = t["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"] == "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    assert {c["Name"]: c["Type"] for c in sd["Columns"]}["reading_ts"] == "timestamp"
    assert all(c.get("Comment") for c in sd["Columns"])
    assert [k["Name"] for k in t["PartitionKeys"]] == ["dt"]
    parts = partitions(glue, db, "sensor_readings")
    assert [p["Values"] for p in parts] == [["2024-03-01"], ["2024-03-02"]]
    run1 = first.report["run_id"]
    for p in parts:
        assert p["StorageDescriptor"]["Location"].endswith(f"/sensor_readings/dt={p['Values'][0]}/v-{run1}/")
        assert p["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")

    cols = ["sensor_id", "metric_name", "reading_ts", "value", "source_key", "line_number", "dt"]
    before = rows_at_glue_locations(glue, db, "sensor_readings", cols)
    assert before == sorted(duck_rows(lake, "sensor_readings", cols), key=repr)

    second = naslake("run", SENSOR_JOB, "--output", lake, "--catalog", f"glue:{db}", env=aws_env(), lake=lake)
    assert second.code == 3
    parts2 = partitions(glue, db, "sensor_readings")
    assert [p["Values"] for p in parts2] == [["2024-03-01"], ["2024-03-02"]]
    run2 = second.report["run_id"]
    assert all(f"/v-{run2}/" in p["StorageDescriptor"]["Location"] for p in parts2)
    assert rows_at_glue_locations(glue, db, "sensor_readings", cols) == before
    # The replaced versions are gone once the catalog points at the new ones.
    files = list((lake / "sensor_readings").rglob("*.parquet"))
    assert files and all(run2 in f.name for f in files)
    assert not list((lake / "sensor_readings").rglob(f"v-{run1}"))


def test_every_parquet_file_matches_its_glue_column_types(tmp_path, glue, db):
    lake = tmp_path / "lake"
    naslake("run", SENSOR_JOB, "--output", lake, "--catalog", f"glue:{db}", env=aws_env())
    checked = 0
    for t in glue.get_tables(DatabaseName=db)["TableList"]:
        cols = [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]]
        locations = [p["StorageDescriptor"]["Location"] for p in partitions(glue, db, t["Name"])] \
            if t["PartitionKeys"] else [t["StorageDescriptor"]["Location"]]
        for loc in locations:
            for f in local_path(loc).glob("*.parquet"):
                assert problems(f, cols) == []
                checked += 1
    assert checked >= 3


def test_query_over_glue_equals_local_catalog_and_duckdb(tmp_path, glue, db):
    lake = tmp_path / "lake"
    naslake("run", SENSOR_JOB, "--output", lake, "--catalog", f"glue:{db}", env=aws_env())
    local_lake = tmp_path / "local"
    naslake("run", SENSOR_JOB, "--output", local_lake)
    for table, cols in [
        ("sensor_readings", ["sensor_id", "metric_name", "value", "source_key", "line_number", "dt"]),
        ("sensor_rejects", ["source_key", "line_number", "reason"]),
        ("sensor_anomalies", ["sensor_id", "metric_name", "source_key", "line_number"]),
    ]:
        sql = f"SELECT {', '.join(cols)} FROM {table}"
        via_glue = sorted((tuple(r.get(c) for c in cols) for r in query_rows(db, sql)), key=repr)
        out = naslake("query", sql, "--catalog", f"local:{local_lake}", "--format", "json").stdout
        via_local = sorted((tuple(json.loads(l).get(c) for c in cols) for l in out.splitlines() if l.strip()), key=repr)
        assert via_glue == via_local, table
        assert via_glue == sorted(
            (tuple(r) for r in rows_at_glue_locations(glue, db, table, cols)), key=repr), table
        assert len(via_glue) > 0
    # `catalog list|show` read Glue too.
    listed = naslake("catalog", "list", "--catalog", f"glue:{db}", env=aws_env()).stdout
    assert f"{db}.sensor_readings\t2 partitions" in listed
    shown = json.loads(naslake("catalog", "show", "sensor_readings", "--catalog", f"glue:{db}", env=aws_env()).stdout)
    assert shown["TableInput"]["Name"] == "sensor_readings" and len(shown["Partitions"]) == 2


# --- a small job to exercise modes, evolution and partition counts -----------

def write_job(tmp, *, mode="append", columns=None, sql=None, extra="", days=None):
    """A job over tmp/input/*.csv (columns day, a, b) into table `events`, partitioned by day."""
    job = tmp / "job"
    job.mkdir(exist_ok=True)
    columns = columns or [("a", "bigint", True), ("b", "string", True)]
    schema = ['name = "events"', 'description = "Test events."']
    for name, typ, nullable in columns:
        schema.append(f'[[columns]]\nname = "{name}"\ntype = "{typ}"\nnullable = {str(nullable).lower()}\ncomment = "{name}"')
    schema.append('[[partition_keys]]\nname = "day"\ntype = "string"\ncomment = "the day"')
    (job / "events.schema.toml").write_text("\n".join(schema) + "\n")
    (job / "events.sql").write_text(sql or "SELECT a, b, day FROM src")
    (job / "events.toml").write_text(textwrap.dedent(f"""\
        name = "events"
        input = "{tmp / 'input'}"
        [sources.src]
        format = "csv"
        columns = [
          {{ name = "day", type = "string", nullable = false }},
          {{ name = "a", type = "bigint" }},
          {{ name = "b", type = "string" }},
        ]
        [tables.events]
        schema = "events.schema.toml"
        sql = "events.sql"
        mode = "{mode}"
        {extra}
        [tables.sensor_rejects]
        schema = "{ROOT / 'schemas' / 'sensor_rejects.toml'}"
        from = "rejects"
        """))
    return job / "events.toml"


def write_input(tmp, days, rows_per_day=2, tag="r"):
    inp = tmp / "input"
    if inp.exists():
        for f in inp.iterdir():
            f.unlink()
    inp.mkdir(exist_ok=True)
    lines = ["day,a,b"]
    for d in days:
        for i in range(rows_per_day):
            lines.append(f"{d},{i},{tag}-{d}-{i}")
    (inp / "events.csv").write_text("\n".join(lines) + "\n")


def run_events(job, db, env=None, codes=(0,)):
    return naslake("run", job, "--output", job.parent.parent / "lake", "--catalog", f"glue:{db}",
                   env=env or aws_env(), check_codes=codes, lake=job.parent.parent / "lake")


def locations(glue, db):
    return {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in partitions(glue, db, "events")}


def test_overwrite_replaces_the_whole_table(tmp_path, glue, db):
    job = write_job(tmp_path, mode="overwrite")
    write_input(tmp_path, ["d1", "d2"], tag="old")
    run_events(job, db)
    write_input(tmp_path, ["d2", "d3"], tag="new")
    run_events(job, db)
    assert sorted(locations(glue, db)) == ["d2", "d3"]
    got = rows_at_glue_locations(glue, db, "events", ["b", "day"])
    assert got == sorted([(f"new-{d}-{i}", d) for d in ("d2", "d3") for i in range(2)], key=repr)
    files = list((tmp_path / "lake" / "events").rglob("*.parquet"))
    assert len(files) == 2  # the old version's files were removed after the switch


def test_overwrite_partitions_replaces_only_what_it_writes(tmp_path, glue, db):
    job = write_job(tmp_path, mode="overwrite-partitions")
    write_input(tmp_path, ["d1", "d2"], tag="old")
    run_events(job, db)
    old = locations(glue, db)
    write_input(tmp_path, ["d2", "d3"], tag="new")
    proxy = GlueProxy(PORT)
    with proxy:
        run_events(job, db, env=aws_env(proxy.port))
    new = locations(glue, db)
    assert sorted(new) == ["d1", "d2", "d3"]
    assert new["d1"] == old["d1"]
    assert new["d2"] != old["d2"]  # re-pointed at the new version directory
    # d2 was registered: it is re-pointed with BatchUpdatePartition; only d3 is
    # created, and d1 is not touched.
    updates = proxy.bodies("BatchUpdatePartition")
    assert [e["PartitionValueList"] for b in updates for e in b["Entries"]] == [["d2"]]
    creates = proxy.bodies("BatchCreatePartition")
    assert [p["Values"] for b in creates for p in b["PartitionInputList"]] == [["d3"]]
    got = rows_at_glue_locations(glue, db, "events", ["b", "day"])
    want = [(f"old-d1-{i}", "d1") for i in range(2)] + [(f"new-{d}-{i}", d) for d in ("d2", "d3") for i in range(2)]
    assert got == sorted(want, key=repr)
    assert not local_path(old["d2"]).exists() or not list(local_path(old["d2"]).glob("*.parquet"))


def test_append_is_copy_on_write_through_new_version_directories(tmp_path, glue, db):
    """An append never writes where a reader of the catalog looks: the partitions it
    adds rows to get a new version directory holding the old files' copies and the
    new files, switched at commit; untouched partitions keep their location."""
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1", "d2"], tag="old")
    run_events(job, db)
    old = locations(glue, db)
    write_input(tmp_path, ["d2", "d3"], tag="new")
    second = run_events(job, db)
    new = locations(glue, db)
    assert new["d1"] == old["d1"]
    assert new["d2"] != old["d2"] and second.report["run_id"] in new["d2"]
    # The old d2 directory's files were copied forward, then removed.
    assert not list(local_path(old["d2"]).glob("*.parquet"))
    got = rows_at_glue_locations(glue, db, "events", ["b", "day"])
    want = [(f"old-{d}-{i}", d) for d in ("d1", "d2") for i in range(2)] + \
        [(f"new-{d}-{i}", d) for d in ("d2", "d3") for i in range(2)]
    assert got == sorted(want, key=repr)
    assert len(query_rows(db, "SELECT b FROM events")) == 8


def test_schema_evolution_adds_nullable_columns_and_refuses_type_changes(tmp_path, glue, db):
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1"], tag="v1")
    run_events(job, db)
    # A new nullable column: UpdateTable adds it; old files read it as NULL.
    write_job(tmp_path, mode="append", columns=[("a", "bigint", True), ("b", "string", True), ("c", "double", True)],
              sql="SELECT a, b, CAST(a AS DOUBLE) * 1.5 AS c, day FROM src")
    write_input(tmp_path, ["d2"], tag="v2")
    run_events(job, db)
    cols = [c["Name"] for c in glue.get_table(DatabaseName=db, Name="events")["Table"]["StorageDescriptor"]["Columns"]]
    assert cols == ["a", "b", "c"]
    got = sorted((r["day"], r["a"], r.get("c")) for r in query_rows(db, "SELECT day, a, c FROM events"))
    assert got == [("d1", 0, None), ("d1", 1, None), ("d2", 0, 0.0), ("d2", 1, 1.5)]

    # A type change is refused before anything is written, and Glue is unchanged.
    table_before = glue.get_table(DatabaseName=db, Name="events")["Table"]
    files_before = sorted((tmp_path / "lake" / "events").rglob("*.parquet"))
    write_job(tmp_path, mode="append", columns=[("a", "string", True), ("b", "string", True), ("c", "double", True)],
              sql="SELECT CAST(a AS VARCHAR) AS a, b, CAST(a AS DOUBLE) AS c, day FROM src")
    bad = run_events(job, db, codes=None)
    assert bad.code != 0
    assert "changed type from bigint to string" in bad.stderr + bad.stdout
    assert "mode=overwrite" in bad.stderr + bad.stdout
    assert glue.get_table(DatabaseName=db, Name="events")["Table"]["StorageDescriptor"] == table_before["StorageDescriptor"]
    assert sorted((tmp_path / "lake" / "events").rglob("*.parquet")) == files_before
    # A dropped column too.
    write_job(tmp_path, mode="append", columns=[("a", "bigint", True), ("b", "string", True)])
    bad = run_events(job, db, codes=None)
    assert bad.code != 0 and "`c` (double) was dropped" in bad.stderr + bad.stdout


def test_more_than_100_new_partitions_are_created_in_chunks(tmp_path, glue, db):
    days = [f"d{i:03d}" for i in range(250)]
    job = write_job(tmp_path, mode="overwrite-partitions")
    write_input(tmp_path, days, rows_per_day=1)
    proxy = GlueProxy(PORT, timeout_last={"BatchCreatePartition": 5})
    with proxy:
        run_events(job, db, env=aws_env(proxy.port))
    assert [p["Values"][0] for p in partitions(glue, db, "events")] == days
    sizes = [len(b["PartitionInputList"]) for b in proxy.bodies("BatchCreatePartition")]
    # Chunks of 100, 100 and 50; the 5 partitions of the first chunk reported as
    # timed out are retried after a backoff. Glue had applied them, so the retry
    # meets "already exists" and they are updated to the same definition.
    assert sizes == [100, 5, 100, 50]
    updated = [e["PartitionValueList"] for b in proxy.bodies("BatchUpdatePartition") for e in b["Entries"]]
    assert updated == [[d] for d in days[95:100]]
    assert len(rows_at_glue_locations(glue, db, "events", ["a", "day"])) == 250


def test_concurrent_modification_is_retried_with_a_fresh_version(tmp_path, glue, db):
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1"])
    run_events(job, db)
    write_input(tmp_path, ["d2"])
    proxy = GlueProxy(PORT, fail={"UpdateTable": ["ConcurrentModificationException", "ConcurrentModificationException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port))
    assert run.code == 0
    # Two conflicts, each followed by a fresh read of the table, then success; then
    # the rejects table's update.
    events = [b for b in proxy.bodies("UpdateTable") if b["TableInput"]["Name"] == "events"]
    assert len(events) == 3
    assert all(b.get("VersionId") for b in events), events
    assert all(b["SkipArchive"] is True for b in events)
    assert sorted(locations(glue, db)) == ["d1", "d2"]


def test_a_failed_commit_leaves_glue_and_files_as_they_were(tmp_path, glue, db):
    job = write_job(tmp_path, mode="overwrite-partitions")
    write_input(tmp_path, ["d1", "d2"], tag="old")
    run_events(job, db)
    tables_before = {t["Name"]: t["StorageDescriptor"] for t in glue.get_tables(DatabaseName=db)["TableList"]}
    parts_before = partitions(glue, db, "events")
    files_before = sorted((tmp_path / "lake").rglob("*.parquet"))
    write_input(tmp_path, ["d2", "d3"], tag="new")
    # The rejects table's update is refused after the events table was changed.
    proxy = GlueProxy(PORT, fail={"UpdateTable": [None, "AccessDeniedException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port), codes=None)
    assert run.code == 1, run.stdout + run.stderr
    assert "AccessDeniedException" in run.stdout + run.stderr
    assert {t["Name"]: t["StorageDescriptor"] for t in glue.get_tables(DatabaseName=db)["TableList"]} == tables_before
    assert [(p["Values"], p["StorageDescriptor"]["Location"]) for p in partitions(glue, db, "events")] == \
        [(p["Values"], p["StorageDescriptor"]["Location"]) for p in parts_before]
    assert sorted((tmp_path / "lake").rglob("*.parquet")) == files_before


# Glue may apply a table call and still answer with an error: a timeout after the
# server acted, a 5xx after the write. OperationTimeoutException (HTTP 400) is one
# the SDK does not retry, so the commit fails on it.

@pytest.mark.parametrize("failing", ["events", "sensor_rejects"])
def test_a_create_table_applied_but_answered_with_an_error_is_undone(tmp_path, glue, db, failing):
    """The first run's CreateTable of one table is applied, but answered with an
    error: the run fails, and no table is left in Glue (the unconfirmed one carries
    the run's id, so it was this run's), nor any of the run's files."""
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1", "d2"])
    answers = {"events": ["OperationTimeoutException"],
               "sensor_rejects": [None, "OperationTimeoutException"]}[failing]
    proxy = GlueProxy(PORT, fail_after_forward={"CreateTable": answers})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port), codes=None)
    assert run.code == 1, run.stdout + run.stderr
    assert "OperationTimeoutException" in run.stdout + run.stderr
    # Sent once each, not retried; the last one is the failing table's.
    creates = [b["TableInput"]["Name"] for b in proxy.bodies("CreateTable")]
    assert len(creates) == len(answers) and creates[-1] == failing
    assert glue.get_tables(DatabaseName=db)["TableList"] == []
    assert list((tmp_path / "lake").rglob("*.parquet")) == []


def test_an_update_table_applied_but_answered_with_an_error_is_undone(tmp_path, glue, db):
    """The second run adds a column; its UpdateTable is applied, but answered with
    an error: the run fails, and the table is the first run's again, with the first
    run's rows at the locations Glue holds."""
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1"], tag="old")
    first = run_events(job, db)
    before = table_definition(glue, db, "events")
    assert before["Parameters"]["naslake.run_id"] == first.report["run_id"]
    write_job(tmp_path, mode="append", columns=[("a", "bigint", True), ("b", "string", True), ("c", "double", True)],
              sql="SELECT a, b, CAST(a AS DOUBLE) AS c, day FROM src")
    write_input(tmp_path, ["d1", "d2"], tag="new")
    proxy = GlueProxy(PORT, fail_after_forward={"UpdateTable": ["OperationTimeoutException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port), codes=None)
    assert run.code == 1, run.stdout + run.stderr
    assert "OperationTimeoutException" in run.stdout + run.stderr
    sent = proxy.bodies("UpdateTable")[0]["TableInput"]
    assert sent["Name"] == "events" and [c["Name"] for c in sent["StorageDescriptor"]["Columns"]] == ["a", "b", "c"]
    assert table_definition(glue, db, "events") == before
    assert sorted(locations(glue, db)) == ["d1"]
    got = rows_at_glue_locations(glue, db, "events", ["a", "b", "day"])
    assert got == [(0, "old-d1-0", "d1"), (1, "old-d1-1", "d1")]


def test_an_update_table_applied_but_answered_with_a_conflict_is_undone(tmp_path, glue, db):
    """An UpdateTable applied whose answer is lost is retried by the SDK with the
    same version, and meets ConcurrentModificationException (the proxy forwards the
    call and answers the conflict). Read again, the table carries the run's id: the
    update was applied. When a later call fails, the undo puts back the definition
    that update replaced, not the run's own."""
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1"], tag="old")
    run_events(job, db)
    before = table_definition(glue, db, "events")
    write_job(tmp_path, mode="append", columns=[("a", "bigint", True), ("b", "string", True), ("c", "double", True)],
              sql="SELECT a, b, CAST(a AS DOUBLE) AS c, day FROM src")
    write_input(tmp_path, ["d2"], tag="new")
    proxy = GlueProxy(PORT, fail_after_forward={"UpdateTable": ["ConcurrentModificationException"]},
                      fail={"BatchCreatePartition": ["AccessDeniedException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port), codes=None)
    assert run.code == 1, run.stdout + run.stderr
    assert "AccessDeniedException" in run.stdout + run.stderr
    assert table_definition(glue, db, "events") == before
    assert sorted(locations(glue, db)) == ["d1"]
    got = rows_at_glue_locations(glue, db, "events", ["a", "b", "day"])
    assert got == [(0, "old-d1-0", "d1"), (1, "old-d1-1", "d1")]


def test_partition_projection_becomes_table_parameters(tmp_path, glue, db):
    extra = 'projection = { day = { type = "enum", values = ["d1", "d2"] } }'
    job = write_job(tmp_path, mode="append", extra=extra)
    write_input(tmp_path, ["d1"])
    run_events(job, db)
    t = glue.get_table(DatabaseName=db, Name="events")["Table"]
    p = t["Parameters"]
    assert p["projection.enabled"] == "true"
    assert p["projection.day.type"] == "enum" and p["projection.day.values"] == "d1,d2"
    assert p["storage.location.template"] == t["StorageDescriptor"]["Location"] + "day=${day}/"
    # Projected tables live in plain partition directories, which the template names.
    assert locations(glue, db)["d1"] == t["StorageDescriptor"]["Location"] + "day=d1/"
    # And overwrite modes are refused with projection.
    job = write_job(tmp_path, mode="overwrite", extra=extra)
    bad = run_events(job, db, codes=None)
    assert bad.code == 2 and "projection" in bad.stderr


def test_glue_tables_on_an_access_point_are_queried_through_it(tmp_path, glue, db):
    """Locations in Glue may name an access point (ARN); `query` reads through it."""
    s3 = boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name=REGION)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    naslake("run", SENSOR_JOB, "--output", f"s3://{bucket}/lake", "--catalog", f"glue:{db}", env=aws_env())
    want = query_rows(db, "SELECT count(*) AS n FROM sensor_readings")[0]["n"]
    assert want > 0
    # Re-point the table and its partitions at the same data through an access point.
    arn = create_access_point(MOTO, bucket, REGION)
    t = glue.get_table(DatabaseName=db, Name="sensor_readings")["Table"]
    ti = {k: t[k] for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")}
    ti["StorageDescriptor"]["Location"] = ti["StorageDescriptor"]["Location"].replace(f"s3://{bucket}", f"s3://{arn}")
    glue.update_table(DatabaseName=db, TableInput=ti)
    for p in partitions(glue, db, "sensor_readings"):
        sd = p["StorageDescriptor"]
        sd["Location"] = sd["Location"].replace(f"s3://{bucket}", f"s3://{arn}")
        glue.update_partition(DatabaseName=db, TableName="sensor_readings", PartitionValueList=p["Values"],
                              PartitionInput={"Values": p["Values"], "StorageDescriptor": sd})
    assert f"s3://{arn}/" in glue.get_table(DatabaseName=db, Name="sensor_readings")["Table"]["StorageDescriptor"]["Location"]
    assert query_rows(db, "SELECT count(*) AS n FROM sensor_readings")[0]["n"] == want


def test_nested_columns_are_registered_and_athena_readable(tmp_path, glue, db):
    job = write_job(tmp_path, mode="overwrite",
                    columns=[("a", "bigint", True), ("s", "struct<n:bigint,label:string>", True)],
                    sql="SELECT a, named_struct('n', a, 'label', b) AS s, day FROM src")
    write_input(tmp_path, ["d1"], tag="x")
    run_events(job, db)
    t = glue.get_table(DatabaseName=db, Name="events")["Table"]
    cols = [(c["Name"], c["Type"]) for c in t["StorageDescriptor"]["Columns"]]
    assert cols == [("a", "bigint"), ("s", "struct<n:bigint,label:string>")]
    files = [f for loc in locations(glue, db).values() for f in local_path(loc).glob("*.parquet")]
    assert files and all(problems(f, cols) == [] for f in files)
    got = sorted((r["a"], r["s"]["label"]) for r in query_rows(db, "SELECT a, s FROM events"))
    assert got == [(0, "x-d1-0"), (1, "x-d1-1")]


def test_throttled_calls_are_retried_and_archiving_is_a_setting(tmp_path, glue, db):
    job = write_job(tmp_path, mode="append", extra="archive_versions = true")
    write_input(tmp_path, ["d1"])
    run_events(job, db)
    write_input(tmp_path, ["d2"])
    proxy = GlueProxy(PORT, fail={"BatchCreatePartition": ["ThrottlingException", "ThrottlingException"],
                                  "GetTable": ["ThrottlingException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port))
    assert run.code == 0, run.stderr
    # The same call, sent again after each throttling answer.
    bodies = proxy.bodies("BatchCreatePartition")
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    assert sorted(locations(glue, db)) == ["d1", "d2"]
    # archive_versions = true: UpdateTable keeps the old version in Glue's history.
    events = [b for b in proxy.bodies("UpdateTable") if b["TableInput"]["Name"] == "events"]
    assert events and all(b["SkipArchive"] is False for b in events)


def test_a_commit_that_cannot_be_undone_keeps_the_files_and_says_so(tmp_path, glue, db):
    job = write_job(tmp_path, mode="overwrite-partitions")
    write_input(tmp_path, ["d1"], tag="old")
    run_events(job, db)
    files_before = set((tmp_path / "lake").rglob("*.parquet"))
    write_input(tmp_path, ["d1", "d2"], tag="new")
    # The rejects table's update fails, and so does putting the events table back.
    proxy = GlueProxy(PORT, fail={"UpdateTable": [None, "AccessDeniedException", "AccessDeniedException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port), codes=None)
    assert run.code == 1
    assert "files, which are kept" in run.stderr + run.stdout
    # Nothing was deleted: neither the old files nor the run's (the catalog may
    # point at them); the partitions themselves were put back.
    files_after = set((tmp_path / "lake").rglob("*.parquet"))
    assert files_before < files_after
    assert sorted(locations(glue, db)) == ["d1"]


@pytest.mark.parametrize("output", ["local", "s3"])
def test_partition_values_with_special_characters(tmp_path, glue, db, output):
    """Hive escapes `:` `/` `=` and friends in directory names; Athena unescapes them.
    The key (or file name) holds the escaped form once, and every reader gets the
    original values back."""
    days = ["2024-01-01 10:00", "a/b=c", "50%"]
    job = write_job(tmp_path, mode="overwrite")
    write_input(tmp_path, days, rows_per_day=1)
    if output == "s3":
        s3 = boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name=REGION)
        bucket = f"lake-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        out = f"s3://{bucket}/lake"
    else:
        out = tmp_path / "lake"
    for _ in range(2):  # the second run replaces the first run's escaped directories
        naslake("run", job, "--output", out, "--catalog", f"glue:{db}", env=aws_env())
    assert sorted(p["Values"][0] for p in partitions(glue, db, "events")) == sorted(days)
    got = sorted(r["day"] for r in query_rows(db, "SELECT day FROM events"))
    assert got == sorted(days)
    if output == "s3":
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="lake/events/")["Contents"]]
        dirs = sorted({k.split("/")[2] for k in keys})
        assert dirs == sorted(["day=2024-01-01 10%3A00", "day=a%2Fb%3Dc", "day=50%25"])
        assert len(keys) == 3  # the first run's files were removed
    else:
        dirs = sorted(p.name for p in (tmp_path / "lake" / "events").iterdir())
        assert dirs == sorted(["day=2024-01-01 10%3A00", "day=a%2Fb%3Dc", "day=50%25"])
        assert len(list((tmp_path / "lake" / "events").rglob("*.parquet"))) == 3


def test_undo_restores_a_partition_someone_else_registered_during_the_run(tmp_path, glue, db):
    """Between the run's start and its commit, another writer registers partition d2
    elsewhere. The run finds it ("already exists"), re-points it, then fails on
    another table: the undo puts d2 back where the other writer had it instead of
    deleting it."""
    job = write_job(tmp_path, mode="append")
    write_input(tmp_path, ["d1"])
    run_events(job, db)
    write_input(tmp_path, ["d2"])
    table = glue.get_table(DatabaseName=db, Name="events")["Table"]
    theirs = dict(table["StorageDescriptor"], Location="file:///elsewhere/day=d2/")

    def other_writer():
        glue.create_partition(DatabaseName=db, TableName="events",
                              PartitionInput={"Values": ["d2"], "StorageDescriptor": theirs})

    proxy = GlueProxy(PORT, before_first={"BatchCreatePartition": other_writer},
                      fail={"UpdateTable": [None, "AccessDeniedException"]})
    with proxy:
        run = run_events(job, db, env=aws_env(proxy.port), codes=None)
    assert run.code == 1, run.stdout + run.stderr
    assert [e["PartitionValueList"] for b in proxy.bodies("BatchUpdatePartition") for e in b["Entries"]][0] == ["d2"]
    assert locations(glue, db)["d2"] == "file:///elsewhere/day=d2/"
    assert sorted(locations(glue, db)) == ["d1", "d2"]
