"""End-to-end checks of the runner's review fixes: a query that stops early or a write
that fails mid-stream ends promptly and changes nothing; reads through S3 are pinned
to the listing; overwrite deletes exactly what the replaced catalog entries named;
append is copy-on-write; --dry-run plans the SQL; an input that lists nothing never
empties a table; --set errors name the key; a CSV feed needs only a spec and a schema.

What a run made visible is read the way a catalog reader (Athena, `naslake query`)
reads it: DuckDB over the files lying directly in the locations the local catalog
registers (`lake/_naslake/catalog/DB/TABLE.json`)."""
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import urllib.parse
import uuid

import duckdb
import pytest

from conftest import BIN, ROOT, SENSOR_JOB, Run, dry_run_report, duck_rows, naslake, run_job

MOTO = os.environ.get("NASLAKE_TEST_MOTO")
needs_moto = pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
HEADER = "sensor_id,timestamp,value,metric_name,unit"
APPEND_ALL = ["--set", "tables.sensor_readings.mode=append",
              "--set", "tables.sensor_anomalies.mode=append",
              "--set", "tables.sensor_rejects.mode=append"]
SENSOR_TABLES = ("sensor_readings", "sensor_anomalies", "sensor_rejects")


# --- helpers -------------------------------------------------------------------

def run_limited(*args, lake=None, env=None, timeout=120):
    """naslake with a deadline: a run that hangs fails the test (TimeoutExpired, the
    process is killed) instead of hanging the suite."""
    e = dict(os.environ)
    e.setdefault("NASLAKE_LOG_FORMAT", "json")
    e.update(env or {})
    proc = subprocess.run([BIN, *map(str, args)], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)
    return Run(proc, lake)


def variant_job(tmp_path, **files):
    """A copy of jobs/, schemas/ and samples/ under tmp_path (so the spec's relative
    paths hold) with some job files replaced: `files` maps a file name in jobs/ to its
    new text, or to a function of its old text. Returns the copied job spec."""
    jobs = tmp_path / "jobs"
    shutil.copytree(ROOT / "jobs", jobs)
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    for name, new in files.items():
        path = jobs / name
        path.write_text(new(path.read_text()) if callable(new) else new)
    return jobs / "sensor_readings.toml"


def catalog_dir(lake, db="naslake"):
    return pathlib.Path(lake) / "_naslake" / "catalog" / db


def catalog_snapshot(lake):
    """Every table entry of the local catalog, as text."""
    return {p.name: p.read_text() for p in sorted(catalog_dir(lake).glob("*.json"))}


def parquet_files(lake):
    return sorted(str(p.relative_to(lake)) for p in pathlib.Path(lake).rglob("*.parquet"))


def entry(lake, table):
    return json.loads((catalog_dir(lake) / f"{table}.json").read_text())


def url_path(location):
    """The directory a file:// location names (percent-encoded)."""
    assert location.startswith("file:///"), location
    return pathlib.Path(urllib.parse.unquote(location[len("file://"):]))


def registered(lake, table):
    """[(directory, partition values)] a catalog reader reads the table from: each
    partition's location, or the table's location when it has no partition keys."""
    e = entry(lake, table)
    if e["TableInput"].get("PartitionKeys"):
        return [(url_path(p["StorageDescriptor"]["Location"]), p["Values"]) for p in e.get("Partitions", [])]
    return [(url_path(e["TableInput"]["StorageDescriptor"]["Location"]), [])]


def rows_at_locations(lake, table, columns):
    """Rows DuckDB reads from the .parquet files directly in the registered locations
    (partition values appended), sorted."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    out = []
    for directory, values in registered(lake, table):
        files = sorted(str(f) for f in directory.glob("*.parquet"))
        if files:
            got = con.execute(f"SELECT {', '.join(columns)} FROM read_parquet({files!r})").fetchall()
            out += [tuple(r) + tuple(values) for r in got]
    return sorted(out, key=repr)


def count_at_locations(lake, table):
    return len(rows_at_locations(lake, table, ["1"]))


def files_outside_locations(lake, table):
    """Parquet files under lake/TABLE/ that do not lie directly in a registered location."""
    places = {d.resolve() for d, _ in registered(lake, table)}
    return sorted(str(p) for p in (pathlib.Path(lake) / table).rglob("*.parquet") if p.parent.resolve() not in places)


def message(run):
    """Everything a run told its caller: summary and logs (stdout), usage errors (stderr)."""
    return run.stdout + run.stderr


def long_csv(rows, prefix="s", day_span=4, seed=1):
    """A long-layout sensor CSV: `rows` readings spread over `day_span` days of May 2024."""
    rng = random.Random(seed)
    metrics = (("temperature", "degC"), ("pressure", "kPa"), ("vibration", "mm/s"))
    lines = [HEADER]
    for i in range(rows):
        metric, unit = metrics[i % 3]
        sec = i * day_span * 86400 // rows
        day, rest = divmod(sec, 86400)
        lines.append(f"{prefix}{i % 50},2024-05-{1 + day:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:"
                     f"{rest % 60:02d}Z,{rng.uniform(-50, 50):.3f},{metric},{unit}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """An input with one ~60 MB long-layout CSV (1.4 million readings over 4 days)."""
    root = tmp_path_factory.mktemp("big") / "in"
    (root / "long").mkdir(parents=True)
    (root / "long" / "big.csv").write_text(long_csv(1_400_000, seed=7))
    assert (root / "long" / "big.csv").stat().st_size > 55 << 20
    return root


def good_run_into(lake, inp):
    run = run_job(SENSOR_JOB, lake, "--input", inp)
    assert run.code == 0, message(run)
    assert count_at_locations(lake, "sensor_readings") == 1_400_000
    return catalog_snapshot(lake), parquet_files(lake)


# --- 1. early stop and failed writes end promptly and change nothing ---------------

def test_sql_that_stops_reading_early_fails_promptly_and_changes_nothing(tmp_path, big_input):
    """A job whose SQL ends in LIMIT 5 stops reading the 60 MB file after a few
    batches. The run must not hang on the unread rest (readers blocked on a full
    channel), must fail (exit 1) saying the input was not read to the end (its rows
    were neither loaded nor rejected, so the counts cannot add up), and must leave the
    catalog and the table files of the earlier good run exactly as they were."""
    lake = tmp_path / "lake"
    catalog_before, files_before = good_run_into(lake, big_input)
    job = variant_job(tmp_path, **{"sensor_readings.sql": lambda sql: f"SELECT * FROM (\n{sql}\n) LIMIT 5\n"})
    run = run_limited("run", job, "--input", big_input, "--output", lake, lake=lake)
    assert run.code == 1, message(run)
    assert "not read to the end" in run.stdout
    assert run.report is not None and "not read to the end" in run.report["error"]
    assert catalog_snapshot(lake) == catalog_before
    assert parquet_files(lake) == files_before


def test_sql_that_stops_early_on_a_small_input_fails_too(tmp_path):
    """On the small samples the readers have handed every unit over before the LIMIT
    stops the query: what the parsers never took would still be lost, so the run
    fails the same way (exit 1, "not read to the end") and changes nothing."""
    lake = tmp_path / "lake"
    run_job(SENSOR_JOB, lake)
    catalog_before, files_before = catalog_snapshot(lake), parquet_files(lake)
    job = variant_job(tmp_path, **{"sensor_readings.sql": lambda sql: f"SELECT * FROM (\n{sql}\n) LIMIT 5\n"})
    run = run_limited("run", job, "--output", lake, lake=lake)
    assert run.code == 1, message(run)
    assert "not read to the end" in run.stdout
    assert catalog_snapshot(lake) == catalog_before
    assert parquet_files(lake) == files_before


def test_null_in_non_nullable_column_late_in_the_stream_fails_promptly_and_changes_nothing(tmp_path, big_input):
    """The SQL makes a NOT NULL column (sensor_id) NULL for lines after 500000, so the
    writer fails in the middle of the stream, with files of the table already written.
    The run must end (not hang on readers still feeding a writer that is gone), exit 1
    with a message about the NULL values in the non-nullable column, and leave the
    earlier run's catalog and files exactly as they were."""
    lake = tmp_path / "lake"
    catalog_before, files_before = good_run_into(lake, big_input)
    long_branch = "SELECT\n  sensor_id,\n  metric_name,"

    def null_late(sql):
        assert sql.count(long_branch) == 1, "the long branch of sensor_readings.sql changed"
        return sql.replace(long_branch, "SELECT\n  CASE WHEN line_number > 500000 THEN NULL ELSE sensor_id END"
                                        " AS sensor_id,\n  metric_name,")

    job = variant_job(tmp_path, **{"sensor_readings.sql": null_late})
    run = run_limited("run", job, "--input", big_input, "--output", lake, lake=lake)
    assert run.code == 1, message(run)
    err = run.report["error"] if run.report else message(run)
    assert "NULL" in err and "non-nullable" in err and "sensor_id" in err, err
    assert catalog_snapshot(lake) == catalog_before
    assert parquet_files(lake) == files_before


# --- 2. reads pinned to the listing, through S3 -------------------------------------

def s3():
    import boto3

    return boto3.client("s3", endpoint_url=MOTO, **CREDS)


def s3_case(tmp_path, change):
    """Three 1000-row long files in a fresh moto bucket under data/long/; naslake reads
    s3://BUCKET/data through a proxy that, on the first GET of data/long/f1.csv, first
    calls change(client, bucket, key) on moto directly. Returns (run, proxy)."""
    from swap_proxy import SwapProxy

    client = s3()
    bucket = f"pin-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    for n in range(3):
        client.put_object(Bucket=bucket, Key=f"data/long/f{n}.csv",
                          Body=long_csv(1000, prefix=f"f{n}-s", day_span=2, seed=n).encode())
    key = "data/long/f1.csv"
    port = int(MOTO.rsplit(":", 1)[1])
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "NASLAKE_RETRY_BASE_MS": "50",
    }
    lake = tmp_path / "lake"
    with SwapProxy(port, f"/{bucket}/{key}", lambda: change(client, bucket, key)) as proxy:
        env["AWS_ENDPOINT_URL"] = f"http://localhost:{proxy.port}"
        run = naslake("run", SENSOR_JOB, "--input", f"s3://{bucket}/data", "--output", lake,
                      env=env, lake=lake, check_codes=None)
    assert proxy.fired, f"naslake never fetched {key} through the proxy: {proxy.requests}"
    return run


def check_rejected_whole(run, reason_fragment):
    """long/f1.csv is one reject row (no line number) with the reason, the report's
    entry for it has an item_error, none of its rows loaded, and f0 and f2 loaded."""
    assert run.code == 3, message(run)
    rejects = duck_rows(run.lake, "sensor_rejects", ["source_key", "line_number", "reason"], partitioned=False)
    assert len(rejects) == 1, rejects
    key, line, reason = rejects[0]
    assert key == "long/f1.csv" and line is None and reason_fragment in reason, rejects
    files = {f["key"]: f for f in run.report["files"]}
    assert reason_fragment in (files["long/f1.csv"].get("item_error") or ""), files["long/f1.csv"]
    assert files["long/f1.csv"]["loaded"] == 0
    keys = [r[0] for r in rows_at_locations(run.lake, "sensor_readings", ["source_key"])]
    assert "long/f1.csv" not in keys
    assert sorted(set(keys)) == ["long/f0.csv", "long/f2.csv"] and len(keys) == 2000, len(keys)


@needs_moto
def test_s3_object_replaced_after_listing_is_rejected_whole(tmp_path):
    """The object is replaced (1500 other rows instead of the listed 1000) between the
    listing and the GET. A read pinned to the listing sees another ETag and rejects the
    file whole ("changed while reading"), loading neither version's rows, while the
    other files load and the run ends with rejects (exit 3)."""
    def replace(client, bucket, key):
        client.put_object(Bucket=bucket, Key=key, Body=long_csv(1500, prefix="new-s", day_span=2, seed=99).encode())

    check_rejected_whole(s3_case(tmp_path, replace), "changed while reading")


@needs_moto
def test_s3_object_grown_after_listing_is_rejected_whole(tmp_path):
    """The object is rewritten as the listed 1000 lines plus 500 more. The listed bytes
    are still its first bytes, but an S3 object has no appends: another ETag is another
    object, so (as documented) it is rejected whole as changed, not read as listed."""
    def grow(client, bucket, key):
        listed = client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        more = long_csv(500, prefix="f1-s", day_span=1, seed=5).split("\n", 1)[1]
        client.put_object(Bucket=bucket, Key=key, Body=(listed + more).encode())

    check_rejected_whole(s3_case(tmp_path, grow), "changed while reading")


@needs_moto
def test_s3_object_deleted_after_listing_is_rejected_whole(tmp_path):
    """The object is deleted between the listing and the GET: the file is rejected
    whole ("deleted after it was listed") and the run goes on with the others; a 404
    on a listed key is neither a storage failure nor an empty file."""
    def delete(client, bucket, key):
        client.delete_object(Bucket=bucket, Key=key)

    check_rejected_whole(s3_case(tmp_path, delete), "deleted after it was listed")


# --- 3. overwrite deletes exactly what the replaced entries referenced --------------

def test_overwrite_deletes_exactly_the_files_the_replaced_entries_referenced(tmp_path):
    """The commit of an overwrite deletes the data files of the locations the replaced
    catalog entries pointed at, and nothing else under the table: files nobody
    registered (another writer's version directory, a stray file) are not its to
    delete. The report counts exactly the files removed, and readers of the catalog
    see the new run's rows, as many as the first run's."""
    lake = tmp_path / "lake"
    first = run_job(SENSOR_JOB, lake)
    assert first.code == 3, message(first)
    first_files = parquet_files(lake)
    first_readings = [f for f in first_files if f.startswith("sensor_readings/")]
    assert first_readings
    first_count = count_at_locations(lake, "sensor_readings")
    assert first_count == {t["table"]: t for t in first.report["tables"]}["sensor_readings"]["rows_written"] > 0
    planted = [lake / "sensor_readings" / "dt=2024-03-01" / "v-notthisrun" / "part-x-00000.parquet",
               lake / "sensor_readings" / "stray.parquet"]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lake / first_readings[0], p)

    second = run_job(SENSOR_JOB, lake)
    assert second.code == 3, message(second)
    for p in planted:
        assert p.exists(), f"{p} was deleted although no catalog entry referenced it"
    left = set(parquet_files(lake)) & set(first_files)
    assert not left, f"files of the first run remain: {sorted(left)}"
    table = {t["table"]: t for t in second.report["tables"]}["sensor_readings"]
    assert table["files_removed"] == len(first_readings), table
    assert count_at_locations(lake, "sensor_readings") == first_count


# --- 4. append is copy-on-write; a failed append leaves nothing visible -------------

def test_append_is_copy_on_write_and_a_failed_append_leaves_nothing_visible(tmp_path):
    """With mode = append, run 2 copies each partition's existing files into its own
    version directory and re-points the partition there: every registered location is
    run 2's v-RUNID directory, the rows read through the catalog double, and run 1's
    directories (now referenced by nothing) are gone. A run 3 that fails after writing
    sensor_readings (its anomalies SQL plans, but puts a NULL into the NOT NULL
    sensor_id when it runs) exits 1, leaves the catalog as it was, and leaves none of
    its files under the table's registered locations or anywhere else."""
    lake = tmp_path / "lake"
    run1 = run_job(SENSOR_JOB, lake, *APPEND_ALL)
    assert run1.code == 3, message(run1)
    count1 = {t: count_at_locations(lake, t) for t in ("sensor_readings", "sensor_rejects")}
    assert all(count1.values()), count1
    run2 = run_job(SENSOR_JOB, lake, *APPEND_ALL)
    assert run2.code == 3, message(run2)
    run2_id = run2.report["run_id"]
    for table in SENSOR_TABLES:
        places = registered(lake, table)
        assert places, table
        for directory, _ in places:
            assert directory.name == f"v-{run2_id}", (table, directory)
        assert not files_outside_locations(lake, table), (table, files_outside_locations(lake, table))
    for table, n in count1.items():
        assert count_at_locations(lake, table) == 2 * n, table

    catalog_before = catalog_snapshot(lake)
    anomalies = (ROOT / "jobs" / "sensor_anomalies.sql").read_text()
    assert "\nSELECT sensor_id, metric_name," in anomalies
    failing = anomalies.replace("\nSELECT sensor_id, metric_name,", "\nSELECT CAST(NULL AS VARCHAR) AS sensor_id, metric_name,")
    job = variant_job(tmp_path, **{"sensor_anomalies.sql": failing})
    run3 = naslake("run", job, "--output", lake, *APPEND_ALL, lake=lake, check_codes=None)
    run3_id = run3.report["run_id"] if run3.report else None
    assert run3_id and run3.report["status"] == "failed", message(run3)
    assert catalog_snapshot(lake) == catalog_before
    assert not files_outside_locations(lake, "sensor_readings"), files_outside_locations(lake, "sensor_readings")
    assert not [f for f in parquet_files(lake) if run3_id in f]
    assert count_at_locations(lake, "sensor_readings") == 2 * count1["sensor_readings"]
    assert run3.code == 1, f"run 3 exited {run3.code}: {message(run3)}"


# --- 5. --dry-run plans the SQL -------------------------------------------------------


def test_dry_run_plans_every_table_sql_and_writes_nothing(tmp_path):
    """--dry-run lists the inputs and plans every table's SQL against the sources' and
    earlier tables' columns, without reading or writing: the sample job passes and
    prints the files it would read; SQL naming a column that does not exist, or
    returning other columns than the table's schema, fails as a config error (exit 2)
    naming the table. None of them creates the output folder."""
    out = tmp_path / "lake"
    ok = naslake("run", SENSOR_JOB, "--output", out, "--dry-run", check_codes=None)
    assert ok.code == 0, message(ok)
    report = dry_run_report(ok.stdout)
    assert report["status"] == "dry_run"
    samples = ROOT / "samples" / "sensor"
    expected = sorted(p.relative_to(samples).as_posix() for p in samples.rglob("*")
                      if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    assert sorted(f["key"] for f in report["files"]) == expected
    assert not out.exists()

    unknown_column = variant_job(tmp_path / "a", **{"sensor_anomalies.sql": "SELECT no_such_column FROM sensor_readings"})
    bad = naslake("run", unknown_column, "--output", out, "--dry-run", check_codes=None)
    assert bad.code == 2, message(bad)
    assert "sensor_anomalies" in bad.stderr, bad.stderr
    assert not out.exists()

    wrong_columns = variant_job(tmp_path / "b", **{
        "sensor_readings.sql": lambda sql: f"SELECT sensor_id, metric_name, reading_ts FROM (\n{sql}\n) AS t\n"})
    bad = naslake("run", wrong_columns, "--output", out, "--dry-run", check_codes=None)
    assert bad.code == 2, message(bad)
    assert "sensor_readings" in bad.stderr, bad.stderr
    assert not out.exists()


# --- 6. an input that lists nothing never empties a table ---------------------------

def test_missing_input_or_empty_source_never_empties_a_table(tmp_path):
    """A typo in the input, an unmounted share or a prefix that matches nothing would
    make an overwrite replace the table with nothing. Such a run fails (exit 1) and
    changes nothing, saying where it looked and what lies outside the prefix; only
    `sources.long.allow_empty = true` makes an empty source an (empty) result."""
    lake = tmp_path / "lake"
    good = run_job(SENSOR_JOB, lake)
    assert good.code == 3, message(good)
    catalog_before = catalog_snapshot(lake)
    partitions_before = [v for _, v in registered(lake, "sensor_readings")]
    rows_before = rows_at_locations(lake, "sensor_readings", ["sensor_id", "reading_ts", "value", "source_key", "line_number"])
    assert len(partitions_before) == 2 and rows_before

    def unchanged():
        assert [v for _, v in registered(lake, "sensor_readings")] == partitions_before
        assert rows_at_locations(lake, "sensor_readings",
                                 ["sensor_id", "reading_ts", "value", "source_key", "line_number"]) == rows_before
        assert catalog_snapshot(lake) == catalog_before

    missing = naslake("run", SENSOR_JOB, "--input", "/no/such/dir", "--output", lake, lake=lake, check_codes=None)
    assert missing.code == 1, message(missing)
    assert "/no/such/dir" in message(missing) and "does not exist" in message(missing), message(missing)
    unchanged()

    flat = tmp_path / "flat"
    flat.mkdir()
    samples = ROOT / "samples" / "sensor"
    for p in [*(samples / "long").glob("*.csv*"), *(samples / "wide").glob("*.csv")]:
        shutil.copy(p, flat / p.name)
    names = sorted(p.name for p in flat.iterdir())
    assert len(names) == 3
    empty = naslake("run", SENSOR_JOB, "--input", flat, "--output", lake, lake=lake, check_codes=None)
    assert empty.code == 1, message(empty)
    msg = empty.report["error"] if empty.report else message(empty)
    assert "long/" in msg and "sources.long.allow_empty" in msg, msg
    assert re.search(r"\b3 objects outside", msg), msg
    assert any(n in msg for n in names), msg
    unchanged()

    allowed = naslake("run", SENSOR_JOB, "--input", flat, "--output", lake, "--set", "sources.long.allow_empty=true",
                      lake=lake, check_codes=None)
    assert allowed.code == 0, message(allowed)
    assert registered(lake, "sensor_readings") == []
    assert count_at_locations(lake, "sensor_readings") == 0
    assert not list((lake / "sensor_readings").rglob("*.parquet"))


# --- 7. --set errors ----------------------------------------------------------------

def test_set_errors_name_the_key_and_the_allowed_values(tmp_path):
    """A bad --set is a config error (exit 2, nothing written) whose message names the
    dotted key and what it allows, so the caller can fix the command line."""
    out = tmp_path / "lake"

    def bad(setting):
        run = naslake("run", SENSOR_JOB, "--output", out, "--set", setting, check_codes=None)
        assert run.code == 2, (setting, message(run))
        assert not out.exists(), setting
        return run.stderr

    err = bad("tables.sensor_readings.mode=bogus")
    for word in ("tables.sensor_readings.mode", "bogus", "overwrite-partitions", "append"):
        assert word in err, (word, err)
    err = bad("sources.long.csv.delimiter=;;")
    assert "sources.long" in err and "csv.delimiter" in err, err
    err = bad('sources.long.sufixes=[".csv"]')
    assert "sufixes" in err, err
    listed = err.split("sufixes", 1)[1]
    assert re.search(r"\bsuffixes\b", listed), err


# --- 8. a new CSV feed: a job spec and a table schema -------------------------------

FEED_JOB = """\
name = "feedjob"
input = "in"

[sources.feed_csv]
format = "csv"
prefix = "feed/"
columns = [
  { name = "id", type = "bigint", nullable = false },
  { name = "label", type = "string" },
  { name = "amount", type = "double" },
  { name = "at", type = "timestamp" },
]

[tables.feed_rows]
schema = "SCHEMA"
"""


def feed_schema(columns):
    text = 'name = "feed_rows"\ndescription = "Rows of the feed."\n'
    for name, type_, nullable in columns:
        text += f'\n[[columns]]\nname = "{name}"\ntype = "{type_}"\n'
        if not nullable:
            text += "nullable = false\n"
        text += f'comment = "The {name}."\n'
    return text


FEED_COLUMNS = [("id", "bigint", False), ("label", "string", True), ("amount", "double", True),
                ("at", "timestamp", True), ("source_key", "string", False), ("line_number", "bigint", False)]


def test_new_csv_feed_needs_only_a_job_spec_and_a_table_schema(tmp_path):
    """A job with one CSV source and one table with neither sql nor a rejects table:
    the table is the source's rows as they are, and the job gets a JOB_rejects table
    with the built-in CSV rejects columns holding the bad line. A schema naming a
    column the source does not have is a config error naming the column and source."""
    (tmp_path / "in" / "feed").mkdir(parents=True)
    (tmp_path / "in" / "feed" / "one.csv").write_text(
        "id,label,amount,at\n"
        "1,a,1.5,2024-05-01T00:00:00Z\n"
        "2,b,2.5,2024-05-01T01:00:00Z\n"
        "x,bad,3,2024-05-01T02:00:00Z\n"
        "3,c,,2024-05-02T00:00:00Z\n")
    (tmp_path / "feed_rows.toml").write_text(feed_schema(FEED_COLUMNS))
    job = tmp_path / "feed.toml"
    job.write_text(FEED_JOB.replace("SCHEMA", "feed_rows.toml"))
    lake = tmp_path / "lake"
    run = naslake("run", job, "--output", lake, lake=lake, check_codes=None)
    assert run.code == 3, message(run)
    rows = sorted(duck_rows(lake, "feed_rows", ["id", "label", "amount", "source_key", "line_number"], partitioned=False))
    assert rows == [(1, "a", 1.5, "feed/one.csv", 2), (2, "b", 2.5, "feed/one.csv", 3), (3, "c", None, "feed/one.csv", 5)]

    listing = naslake("catalog", "list", "--catalog", f"local:{lake}").stdout
    assert re.search(r"\bfeedjob_rejects\b", listing), listing
    cols = [c["Name"] for c in entry(lake, "feedjob_rejects")["TableInput"]["StorageDescriptor"]["Columns"]]
    assert cols == ["source", "source_key", "line_number", "raw_line", "raw_line_bytes", "reason"]
    rejects = rows_at_locations(lake, "feedjob_rejects", ["source", "source_key", "line_number", "raw_line"])
    assert len(rejects) == 1, rejects
    assert rejects[0][:3] == ("feed_csv", "feed/one.csv", 4) and rejects[0][3].startswith("x,bad,3"), rejects

    (tmp_path / "feed_rows_bad.toml").write_text(feed_schema(
        [c if c[0] != "label" else ("labelz", "string", True) for c in FEED_COLUMNS]))
    bad_job = tmp_path / "feed_bad.toml"
    bad_job.write_text(FEED_JOB.replace("SCHEMA", "feed_rows_bad.toml"))
    bad = naslake("run", bad_job, "--output", tmp_path / "lake2", check_codes=None)
    assert bad.code == 2, message(bad)
    assert "labelz" in bad.stderr and "feed_csv" in bad.stderr, bad.stderr
    assert not (tmp_path / "lake2").exists()
