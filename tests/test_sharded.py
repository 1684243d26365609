"""Sharded runs: `naslake plan`, `naslake work` per shard, `naslake commit`, the way
Spark on EMR Serverless and AWS Batch array jobs run them. Every test compares the
tables, as an independent reader (DuckDB, pyarrow) finds them at the catalog's
locations, with a plain `naslake run` over the same input, and checks that no file
of a losing attempt is left where a reader would see it."""
import http.server
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import BIN, ROOT, SENSOR_JOB, naslake
from lakes import MOTO, REGION, GlueLake, LocalLake, LocalShare, S3Share, aws_env, glue, s3, table_rows

SPARK_DRIVER = ROOT / "deploy" / "emr-serverless" / "naslake_spark.py"
SUBMIT = ROOT / "deploy" / "batch" / "submit-run.sh"
SENSOR_TABLES = ["sensor_readings", "sensor_anomalies", "sensor_rejects"]
HEADER = "sensor_id,timestamp,value,metric_name,unit\n"


def sensor_share(share, files=24):
    """Long-layout files over several days and sensors, of different sizes, some rows bad."""
    for i in range(files):
        day, sensor, n = 1 + i % 6, f"press-{i % 5:02d}", 5 + (i * 7) % 40
        rows = "".join(f"{sensor},2024-03-{day:02d}T{h % 24:02d}:{i:02d}:00Z,{20 + h * 0.5 + i},temperature,degC\n"
                       for h in range(n))
        bad = "".join(f"{sensor},not-a-time,1,temperature,degC\n" for _ in range(i % 3))
        share.put(f"long/line{i % 3}/f{i:03d}.csv", HEADER + rows + bad)
    # A spike, so the anomalies table (computed at the commit, over every shard) has rows.
    share.put("long/line0/spike.csv", HEADER + "".join(
        f"press-00,2024-03-01T{h:02d}:30:00Z,{500 if h == 7 else 20},temperature,degC\n" for h in range(24)))


def rounded(value):
    """A float to 10 significant digits: sums over other shards add up in another
    order (anomalies' mean and stddev), as they do between two parallel runs."""
    try:
        return format(float(value), ".10g") if not value.startswith(("'", '"')) else value
    except (TypeError, ValueError, AttributeError):
        return value


def tables_of(lake, tables):
    return {t: sorted(tuple(rounded(v) for v in row) for row in table_rows(lake, t)) for t in tables}


def plan(lake, share, job=SENSOR_JOB, *extra, **kw):
    r = naslake("plan", job, "--input", share.url, "--output", lake.url, *lake.args, *extra,
                env=lake.env, **kw)
    return r.stdout.strip().splitlines()[-1] if r.code == 0 else r


def plan_doc(url):
    return json.loads(pathlib.Path(url[len("file://"):]).read_text())


def work(url, shard, lake, attempt=0, env=None, **kw):
    return naslake("work", url, "--shard", shard, "--attempt", attempt, env={**lake.env, **(env or {})}, **kw)


def commit(url, lake, **kw):
    return naslake("commit", url, env=lake.env, lake=lake.root, **kw)


def reference(tmp_path, share, job=SENSOR_JOB, name="ref"):
    ref = LocalLake(tmp_path / name)
    naslake("run", job, "--input", share.url, "--output", ref.url, lake=ref.root)
    return ref


def unregistered_files(lake, tables):
    registered = set()
    for t in tables:
        for location, _ in lake.locations(t):
            registered.update(lake.files_at(location))
    return sorted(set(lake.all_data_files()) - registered)


def catalog_tables(lake):
    return sorted(p.stem for p in (lake.root / "_naslake" / "catalog" / "naslake").glob("*.json"))


@pytest.mark.parametrize("shards", [1, 3, 7])
def test_plan_work_commit_makes_the_tables_run_makes(tmp_path, shards):
    share = LocalShare(tmp_path / "share")
    sensor_share(share)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", shards)
    doc = plan_doc(url)
    assert len(doc["shards"]) == shards and doc["items"] == 25
    for i in range(shards):
        work(url, i, lake)
    c = commit(url, lake)
    ref = reference(tmp_path, share)
    assert tables_of(lake, SENSOR_TABLES) == tables_of(ref, SENSOR_TABLES)
    assert c.report["totals"]["records_rejected"] == sum(i % 3 for i in range(24))
    assert c.report["totals"]["files_seen"] == 25
    assert {t: len(lake.locations(t)) for t in SENSOR_TABLES} == {t: len(ref.locations(t)) for t in SENSOR_TABLES}
    assert unregistered_files(lake, SENSOR_TABLES) == []
    # The run's work is gone; its plan stays next to its report.
    run_dir = lake.root / "_naslake" / "runs" / doc["run_id"]
    assert sorted(p.name for p in run_dir.rglob("*") if p.is_file()) == ["plan.json"]
    assert c.report["started_at"] == doc["created_at"]


def test_an_incremental_run_builds_on_a_sharded_run(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", 3)
    for i in range(3):
        work(url, i, lake)
    commit(url, lake)
    quiet = naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, "--incremental", lake=lake.root)
    assert quiet.report["incremental"]["nothing_changed"]
    share.append("long/line1/f001.csv", "press-01,2024-03-02T05:00:00Z,21.5,temperature,degC\n")
    share.delete("long/line2/f002.csv")
    changed = naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, "--incremental", lake=lake.root)
    inc = changed.report["incremental"]
    assert (inc["basis"], inc["objects"]["changed"], inc["objects"]["deleted"]) == ("incremental", 1, 1)
    assert tables_of(lake, SENSOR_TABLES) == tables_of(reference(tmp_path, share), SENSOR_TABLES)


@pytest.mark.parametrize("job,samples,shards", [("dicom", "dicom", 4), ("images", "images", 3)])
def test_dicom_and_image_jobs_sharded_equal_a_run(tmp_path, job, samples, shards):
    share = LocalShare(tmp_path / "share")
    shutil.copytree(ROOT / "samples" / samples, share.root, dirs_exist_ok=True)
    spec = ROOT / "jobs" / f"{job}.toml"
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, spec, "--shards", shards)
    for i in range(shards):
        work(url, i, lake)
    commit(url, lake)
    ref = reference(tmp_path, share, spec)
    assert catalog_tables(lake) == catalog_tables(ref)
    for t in catalog_tables(ref):
        assert table_rows(lake, t) == table_rows(ref, t), t
    assert unregistered_files(lake, catalog_tables(ref)) == []


def test_the_acl_job_is_refused_with_a_reason(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    r = naslake("plan", ROOT / "jobs" / "acl.toml", "--output", lake.url, check_codes=None)
    assert r.code == 2 and "cannot be split into shards" in r.stderr


def test_plans_are_deterministic_and_balanced_by_bytes(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share, files=60)
    lakes = [LocalLake(tmp_path / f"lake{i}") for i in range(4)]
    lake = lakes[0]
    a, b = plan(lakes[0], share, SENSOR_JOB, "--shards", 4), plan(lakes[1], share, SENSOR_JOB, "--shards", 4)
    # A planned run holds the job's lease until its commit: a second plan waits.
    busy = plan(lakes[0], share, SENSOR_JOB, "--shards", 4, check_codes=None)
    assert busy.code == 1 and "sharded run" in busy.stderr and "holds the lease" in busy.stderr

    def shard_lists(url):
        d = pathlib.Path(url[len("file://"):]).parent / "shards"
        return [p.read_text() for p in sorted(d.iterdir())]

    assert shard_lists(a) == shard_lists(b)
    doc = plan_doc(a)
    sizes = [p.stat().st_size for p in share.root.rglob("*.csv")]
    share_bytes = sum(sizes)
    assert doc["bytes"] == share_bytes and sum(s["bytes"] for s in doc["shards"]) == share_bytes
    for s in doc["shards"]:
        assert abs(s["bytes"] - share_bytes / 4) <= max(sizes)
    # Every item once, in key order across the shards.
    keys = [json.loads(line)["key"] for text in shard_lists(a) for line in text.splitlines()]
    assert keys == sorted(keys) and len(keys) == 61
    sized = plan_doc(plan(lakes[2], share, SENSOR_JOB, "--shard-size", f"{share_bytes // 3 + 1}B"))
    assert len(sized["shards"]) == 3
    # A run named up front (AWS Batch); its plan step retried gives the same plan.
    run_id = "01kbsxxfpajavw6wvez8fa2efw"
    named = plan(lakes[3], share, SENSOR_JOB, "--run-id", run_id)
    assert named.endswith(f"/_naslake/runs/{run_id}/plan.json")
    assert plan(lakes[3], share, SENSOR_JOB, "--run-id", run_id) == named
    other = plan(lakes[3], share, SENSOR_JOB, "--run-id", run_id, "--set", "params.zscore_threshold=2",
                 check_codes=None)
    assert other.code == 2 and "already has another plan" in other.stderr
    for bad in ["batch-1", run_id.upper()]:
        refused = plan(lakes[3], share, SENSOR_JOB, "--run-id", bad, check_codes=None)
        assert refused.code == 2 and "ULID in lowercase" in refused.stderr


def test_a_commit_with_a_shard_missing_changes_nothing_and_completes_later(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share)
    lake = LocalLake(tmp_path / "lake")
    naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, lake=lake.root)
    before = {t: lake.entry(t) for t in SENSOR_TABLES}
    share.put("long/line1/late.csv", HEADER + "press-09,2024-03-09T01:00:00Z,30,temperature,degC\n")
    url = plan(lake, share, SENSOR_JOB, "--shards", 3)
    work(url, 0, lake)
    work(url, 2, lake)
    c = commit(url, lake, check_codes=None)
    # A failed run, with its report: the catalog as it was.
    assert c.code == 1 and "no result for shard 1" in c.report["error"]
    assert {t: lake.entry(t) for t in SENSOR_TABLES} == before
    work(url, 1, lake)
    commit(url, lake)
    assert tables_of(lake, SENSOR_TABLES) == tables_of(reference(tmp_path, share), SENSOR_TABLES)
    # A commit job retried after it succeeded ends well, and changes nothing.
    after = {t: lake.entry(t) for t in SENSOR_TABLES}
    again = commit(url, lake)
    assert again.code == 0 and "committed already" in again.stderr
    assert {t: lake.entry(t) for t in SENSOR_TABLES} == after


def test_a_killed_attempt_and_a_repeated_one_leave_exactly_one_attempt_per_shard(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", 3)
    # Killed after its first file: the file stays, with no result naming it.
    killed = work(url, 1, lake, attempt=0, env={"NASLAKE_FAULT": "write.file:1@shard1.attempt0"},
                  check_codes=None)
    assert killed.code == -9
    work(url, 1, lake, attempt=1)
    # A shard done twice: the second attempt replaces the first.
    work(url, 2, lake)
    work(url, 2, lake, attempt=1)
    work(url, 0, lake)
    run_dir = pathlib.Path(url[len("file://"):]).parent
    results = sorted(p.name[:5] for p in (run_dir / "results").iterdir())
    assert results == ["00000", "00001", "00002"]
    named = set()
    for r in (run_dir / "results").iterdir():
        named.update(f["url"] for t in json.loads(r.read_text())["tables"] for f in t["files"])
    staged = {f"file://{p}" for p in (run_dir / "staging" / "tables").rglob("*.parquet")}
    assert staged - named, "the killed attempt's file is in staging, named by no result"
    commit(url, lake)
    assert unregistered_files(lake, SENSOR_TABLES) == []
    assert not list((run_dir / "staging").rglob("*.parquet"))
    assert tables_of(lake, SENSOR_TABLES) == tables_of(reference(tmp_path, share), SENSOR_TABLES)


def test_a_sharded_run_holds_the_lease_and_one_that_dies_is_cleaned_up_after(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share, files=6)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", 2, "--set", "incremental.lease_seconds=3")
    work(url, 0, lake)
    busy = naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, check_codes=None)
    assert busy.code == 1 and "holds the lease" in busy.stderr
    run_dir = pathlib.Path(url[len("file://"):]).parent
    assert list((run_dir / "staging").rglob("*.parquet"))
    # Nobody renews it: the run is dead once its lease expires.
    time.sleep(4)
    after = naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, lake=lake.root)
    took_over = [json.loads(line) for line in after.stdout.splitlines()
                 if line.startswith("{") and "taking over the lease" in line]
    assert [t["run_id"] for t in took_over] == [plan_doc(url)["run_id"]]
    assert sorted(p.name for p in run_dir.rglob("*") if p.is_file()) == ["plan.json"]
    late = work(url, 1, lake, check_codes=None)
    assert late.code == 1 and "does not hold the job's lease" in late.stderr
    assert tables_of(lake, SENSOR_TABLES) == tables_of(reference(tmp_path, share), SENSOR_TABLES)


def test_a_commit_killed_after_it_moved_files_then_a_shard_done_again_leaves_no_strays(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", 2)
    work(url, 0, lake)
    work(url, 1, lake)
    # Killed writing sensor_anomalies: the shards' files are in their tables by then.
    killed = naslake("commit", url, env={"NASLAKE_FAULT": "write.file:1"}, check_codes=None)
    assert killed.code == -9
    assert lake.entry("sensor_readings") is None
    assert set(lake.all_data_files()), "moved, not registered"
    work(url, 0, lake, attempt=1)
    commit(url, lake)
    assert unregistered_files(lake, SENSOR_TABLES) == []
    assert tables_of(lake, SENSOR_TABLES) == tables_of(reference(tmp_path, share), SENSOR_TABLES)
    # Retried once more after it committed: nothing changes, and the cleanup is done.
    entries = {t: lake.entry(t) for t in SENSOR_TABLES}
    assert commit(url, lake).code == 0
    assert {t: lake.entry(t) for t in SENSOR_TABLES} == entries
    assert not (lake.root / "_naslake" / "state" / "sensor_readings" / "lease.json").exists()


def test_a_plan_of_an_empty_share_fails_and_leaves_the_job_free(tmp_path):
    share = LocalShare(tmp_path / "share")
    (share.root / "long").mkdir()
    lake = LocalLake(tmp_path / "lake")
    empty = plan(lake, share, SENSOR_JOB, "--shards", 2, check_codes=None)
    assert empty.code == 1 and "found nothing" in empty.stderr
    assert not list((lake.root / "_naslake" / "runs").rglob("plan.json"))
    # The failed plan gave the lease back: the next run of the job goes ahead.
    sensor_share(share, files=4)
    url = plan(lake, share, SENSOR_JOB, "--shards", 2)
    assert plan_doc(url)["items"] == 5


def test_a_file_changed_between_plan_and_work_is_rejected_and_counted(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share, files=6)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", 2)
    # Replaced after the listing: another size than the plan pinned.
    share.put("long/line1/f001.csv", HEADER + "press-01,2024-03-02T05:00:00Z,21.5,temperature,degC\n")
    work(url, 0, lake)
    work(url, 1, lake)
    c = commit(url, lake)
    assert c.code == 3
    changed = [f for f in c.report["files"] if f["key"] == "long/line1/f001.csv"]
    assert len(changed) == 1 and changed[0].get("item_error"), changed
    t = c.report["totals"]
    assert t["records_in"] == t["records_loaded"] + t["records_rejected"]
    assert t["rejects_rows"] == len(table_rows(lake, "sensor_rejects"))


def test_two_results_for_one_shard_fail_the_commit(tmp_path):
    share = LocalShare(tmp_path / "share")
    sensor_share(share, files=6)
    lake = LocalLake(tmp_path / "lake")
    url = plan(lake, share, SENSOR_JOB, "--shards", 2)
    work(url, 0, lake)
    work(url, 1, lake)
    results = pathlib.Path(url[len("file://"):]).parent / "results"
    first = sorted(results.iterdir())[0]
    shutil.copyfile(first, results / (first.name[:6] + "zzzz.json"))
    c = commit(url, lake, check_codes=None)
    assert c.code == 1 and "several results for shard 0" in c.report["error"]
    assert lake.entry("sensor_readings") is None


# --- on moto: S3 and Glue, as on AWS -------------------------------------------------

def moto_share_and_lakes(tag):
    bucket = f"shard-{tag}-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    share = S3Share(bucket, "data")
    sensor_share(share)
    return share, GlueLake(bucket, "lake"), GlueLake(bucket, "ref")


def run_on_moto(share, lake):
    naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, *lake.args, env=lake.env)


def table_versions(lake, table):
    return glue().get_table_versions(DatabaseName=lake.db, TableName=table)["TableVersions"]


def assert_one_commit_equal_to_a_run(lake, ref, run_id):
    assert tables_of(lake, SENSOR_TABLES) == tables_of(ref, SENSOR_TABLES)
    for t in SENSOR_TABLES:
        # Created once, by this run, and never updated after.
        versions = table_versions(lake, t)
        assert len(versions) == 1, (t, len(versions))
        assert versions[0]["Table"]["Parameters"]["naslake.run_id"] == run_id
    assert unregistered_files(lake, SENSOR_TABLES) == []


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_batch_array_children_then_commit_on_moto_with_glue(tmp_path):
    share, lake, ref = moto_share_and_lakes("batch")
    run_id = subprocess.run(["bash", "-c", f"source <(sed -n '/^ulid()/,/^}}/p' {SUBMIT}); ulid"],
                            capture_output=True, text=True, check=True).stdout.strip()
    url = plan(lake, share, SENSOR_JOB, "--shards", 3, "--run-id", run_id)
    assert url == f"{lake.url}/_naslake/runs/{run_id}/plan.json"
    for i in range(3):
        naslake("work", url, "--shard-from-env", env={**lake.env, "AWS_BATCH_JOB_ARRAY_INDEX": str(i),
                                                       "AWS_BATCH_JOB_ATTEMPT": "1"})
    naslake("commit", url, env=lake.env)
    run_on_moto(share, ref)
    assert_one_commit_equal_to_a_run(lake, ref, run_id)
    unset = naslake("work", url, "--shard-from-env", env=lake.env, check_codes=None)
    assert unset.code == 2 and "AWS_BATCH_JOB_ARRAY_INDEX" in unset.stderr


def spark_submit(*args, env=None):
    # The test's own Python is the venv's, with pyspark and its spark-submit.
    python = sys.executable
    e = {**os.environ, "NASLAKE_BIN": BIN, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python,
         "NASLAKE_LOG_FORMAT": "json", **(env or {})}
    submit = pathlib.Path(python).parent / "spark-submit"
    # local[2,2]: two cores, and a failed task is tried again once.
    return subprocess.run([str(submit), "--master", "local[2,2]", "--conf", "spark.ui.enabled=false",
                           str(SPARK_DRIVER), *map(str, args)], env=e, capture_output=True, text=True,
                          timeout=600)


def spark_output(proc):
    """What the driver printed: spark-submit sends the Python driver's stderr to its
    stdout, with the JVM's log lines in between."""
    return proc.stdout + proc.stderr


def spark_run_id(proc):
    found = re.search(r"naslake_spark: planned \d+ shards: \S+/_naslake/runs/([a-z0-9-]+)/plan.json",
                      spark_output(proc))
    assert found, spark_output(proc)[-3000:]
    return found.group(1)


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
@pytest.mark.parametrize("fault", [None, "write.file:1@shard1.attempt0"])
def test_the_spark_driver_on_moto_with_glue_commits_once(tmp_path, fault):
    share, lake, ref = moto_share_and_lakes("spark")
    env = {**lake.env, **({"NASLAKE_FAULT": fault} if fault else {})}
    p = spark_submit(SENSOR_JOB, "--input", share.url, "--output", lake.url, *lake.args, "--shards", 3, env=env)
    assert p.returncode == 3, spark_output(p)[-3000:]
    if fault:
        # The first attempt of shard 1 was killed; Spark's retry did it again.
        assert "naslake work shard 1 (attempt 0) exited -9" in spark_output(p)
    run_on_moto(share, ref)
    assert_one_commit_equal_to_a_run(lake, ref, spark_run_id(p))


def test_the_spark_driver_passes_on_exit_codes(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    bad = spark_submit(SENSOR_JOB, "--output", lake.url, "--shards", 2, "--set", "nonsense=1")
    assert bad.returncode == 2 and "unknown field `nonsense`" in spark_output(bad)
    both = spark_submit(SENSOR_JOB, "--output", lake.url, "--shards", 2, "--incremental", "--full")
    assert both.returncode == 2 and "not allowed with argument" in spark_output(both)
    dry = spark_submit(SENSOR_JOB, "--output", lake.url, "--shards", 2, "--dry-run", "--incremental")
    assert dry.returncode == 0 and '"status": "dry_run"' in spark_output(dry)
    assert '"basis": "full"' in spark_output(dry) and "no committed state" in spark_output(dry)
    assert not lake.root.exists(), "a dry run writes nothing"


class CredentialsEndpoint(http.server.BaseHTTPRequestHandler):
    """What ECS serves a task at AWS_CONTAINER_CREDENTIALS_FULL_URI."""
    token = "task-token"
    seen = []

    def do_GET(self):
        CredentialsEndpoint.seen.append((self.path, self.headers.get("Authorization")))
        if self.headers.get("Authorization") != self.token:
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"AccessKeyId": "ASIATASKROLE", "SecretAccessKey": "task-secret",
                           "Token": "task-session", "Expiration": "2099-01-01T00:00:00Z",
                           "RoleArn": "arn:aws:iam::123456789012:role/naslake-task"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_a_task_with_only_container_credentials_reads_and_writes(tmp_path):
    share, lake, _ = moto_share_and_lakes("ecs")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CredentialsEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({k: v for k, v in aws_env().items() if not k.startswith("AWS_ACCESS") and "SECRET" not in k})
        env.update({
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{server.server_port}/v2/credentials/task",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": CredentialsEndpoint.token,
            "AWS_REGION": REGION,
            "HOME": str(tmp_path),  # no shared config or credentials files either
        })
        assert not any(k in env for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"))
        r = naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, *lake.args,
                    env=env, replace_env=True)
    finally:
        server.shutdown()
    assert r.code == 3
    assert CredentialsEndpoint.seen and all(a == CredentialsEndpoint.token for _, a in CredentialsEndpoint.seen)
    assert lake.locations("sensor_readings") and table_rows(lake, "sensor_readings")
    assert "task-secret" not in r.stdout + r.stderr
