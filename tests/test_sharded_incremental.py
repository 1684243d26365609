"""Incremental sharded runs: `naslake plan --incremental` plans only the new and
changed objects and the deletes against the job's state, `work` and `commit`
carry it out, and the tables end equal to a full run over the same files, with
the same state `naslake run --incremental` keeps, so the two follow each other
in any order. Killed at seeded points in any step, the steps done again end in
the same tables, with no file left that the catalog does not register.

Tables are compared by what an independent reader (DuckDB, pyarrow) finds at the
locations the catalog registers, the way Athena reads them."""
import json
import pathlib
import random
import shutil
import signal
import time
import uuid

import pytest

from conftest import ROOT, SENSOR_JOB, dry_run_report, naslake
from lakes import MOTO, GlueLake, LocalLake, LocalShare, S3Share, s3, table_rows
from test_incremental import TABLES, change_share, full_lake_rows, registered_files, set_a

SEVERAL_WRITERS = {"NASLAKE_BYTES_PER_WRITER": "1"}


def new_run_id():
    """A ULID in lowercase, as deploy/batch/submit-run.sh makes one (a step done
    again names its run, so it picks the run's lease up)."""
    import time
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    ms, out = int(time.time() * 1000), ""
    for _ in range(10):
        out = alphabet[ms % 32] + out
        ms //= 32
    return out + "".join(random.choice(alphabet) for _ in range(16))


def step(lake, *args, env=None, **kw):
    return naslake(*args, env={**SEVERAL_WRITERS, **lake.env, **(env or {})},
                   lake=lake.root if isinstance(lake, LocalLake) else None, **kw)


def plan(lake, share, *extra, env=None, **kw):
    r = step(lake, "plan", SENSOR_JOB, "--input", share.url, "--output", lake.url, *lake.args, *extra,
             env=env, **kw)
    return r.stdout.strip().splitlines()[-1] if r.code == 0 else r


def plan_doc(lake, url):
    if isinstance(lake, LocalLake):
        return json.loads(pathlib.Path(url[len("file://"):] if url.startswith("file://") else url).read_text())
    key = url[len(f"s3://{lake.bucket}/"):]
    return json.loads(s3().get_object(Bucket=lake.bucket, Key=key)["Body"].read())


def sharded(lake, share, shards, *extra):
    """plan, every shard's work, commit; returns the plan's document and the commit."""
    url = plan(lake, share, "--shards", shards, *extra)
    for i in range(shards):
        step(lake, "work", url, "--shard", i)
    return plan_doc(lake, url), step(lake, "commit", url)


def run(lake, share, *extra, **kw):
    return step(lake, "run", SENSOR_JOB, "--input", share.url, "--output", lake.url, *lake.args, *extra, **kw)


def current_run(lake):
    return lake.state()["run_id"]


def test_sharded_and_single_runs_follow_each_other_incrementally(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    # No state yet: the first incremental plan reads everything and starts one.
    doc, first = sharded(lake, share, 3, "--incremental")
    assert doc["basis"]["basis"] == "full" and "no committed state" in doc["basis"]["reason"]
    assert first.report["incremental"]["basis"] == "full"
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share, "r1")

    # Nothing changed: the plan succeeds with empty shards, the steps read nothing,
    # and the commit changes nothing.
    entries = {t: lake.entry(t) for t in TABLES}
    state_run = current_run(lake)
    doc, quiet = sharded(lake, share, 2, "--incremental")
    assert doc["basis"]["basis"] == "incremental" and doc["basis"]["quiet"]
    assert doc["items"] == 0 and [s["items"] for s in doc["shards"]] == [0, 0]
    assert quiet.report["incremental"]["nothing_changed"]
    assert quiet.report["totals"]["bytes_in"] == 0 and quiet.report["totals"]["files_seen"] == 0
    assert {t: lake.entry(t) for t in TABLES} == entries and current_run(lake) == state_run

    # A change: only the new and changed objects are planned; the deletes are merged.
    change_share(share)
    dry = step(lake, "plan", SENSOR_JOB, "--input", share.url, "--output", lake.url, "--shards", 2,
               "--incremental", "--dry-run")
    dry_report = dry_run_report(dry.stdout)
    assert dry_report["status"] == "dry_run"
    assert dry_report["incremental"]["objects"] == {"new": 1, "changed": 2, "unchanged": 2, "deleted": 1}
    doc, changed = sharded(lake, share, 2, "--incremental")
    assert doc["items"] == 3, doc
    inc = changed.report["incremental"]
    assert (inc["basis"], inc["previous_run"]) == ("incremental", state_run)
    assert inc["objects"] == {"new": 1, "changed": 2, "unchanged": 2, "deleted": 1}
    assert sorted(f["key"] for f in changed.report["files"]) == ["long/a.csv", "long/c.csv.gz", "long/f.csv"]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share, "r2")
    assert set(lake.all_data_files()) == registered_files(lake)

    # `naslake run --incremental` takes up the sharded run's state, and back.
    assert "nothing changed" in run(lake, share, "--incremental").stdout
    share.append("long/b.csv", "press-02,2024-03-02T23:00:00Z,1.5,temperature,degC\n")
    share.delete("long/e.csv")
    single = run(lake, share, "--incremental")
    assert single.report["incremental"]["objects"]["changed"] == 1
    doc, after = sharded(lake, share, 2, "--incremental")
    assert doc["basis"]["quiet"] and after.report["incremental"]["nothing_changed"]
    share.put("long/g.csv", "sensor_id,timestamp,value,metric_name,unit\npress-07,2024-03-05T01:00:00Z,3,temperature,degC\n")
    doc, last = sharded(lake, share, 3, "--incremental")
    assert doc["items"] == 1 and last.report["incremental"]["objects"]["new"] == 1
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share, "r3")
    assert set(lake.all_data_files()) == registered_files(lake)
    # --full reads everything again, sharded as well.
    doc, full = sharded(lake, share, 2, "--full")
    assert doc["basis"] == {"basis": "full", "reason": "--full", "forced": True} and doc["items"] == 5
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share, "r4")


def test_a_commit_against_a_state_that_moved_fails_and_changes_nothing(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share)
    change_share(share)
    url = plan(lake, share, "--shards", 1, "--incremental")
    step(lake, "work", url, "--shard", 0)
    # Someone rewrites the plan's basis to name another state (a plan made
    # against a state that is no longer current).
    path = pathlib.Path(url[len("file://"):] if url.startswith("file://") else url)
    doc = json.loads(path.read_text())
    doc["basis"]["increment"]["previous_run"] = "01aaaaaaaaaaaaaaaaaaaaaaaa"
    path.write_text(json.dumps(doc))
    entries = {t: lake.entry(t) for t in TABLES}
    c = step(lake, "commit", url, check_codes=None)
    assert c.code == 1 and "plan it again" in c.stderr
    assert {t: lake.entry(t) for t in TABLES} == entries
    # The run is given up: its lease is free and its work is gone.
    assert not (lake.root / "_naslake" / "state" / "sensor_readings" / "lease.json").exists()
    assert only_the_plan_is_left(lake, doc["run_id"])
    again = plan(lake, share, "--shards", 1, "--incremental")
    step(lake, "work", again, "--shard", 0)
    step(lake, "commit", again)
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)


def only_the_plan_is_left(lake, run_id):
    run_dir = lake.root / "_naslake" / "runs" / run_id
    return sorted(p.name for p in run_dir.rglob("*") if p.is_file()) == ["plan.json"]


def left_in_run_dirs(lake):
    """Every sharded run's work is gone once it committed or was cleaned up after:
    what is left of a run is its plan (none, for a plan that died)."""
    runs = lake.root / "_naslake" / "runs"
    return [str(p.relative_to(runs)) for p in runs.rglob("*")
            if p.is_file() and p.parent != runs and p.name != "plan.json"]


@pytest.mark.parametrize("killed_step,fault", [
    ("plan", "discover.item:3"), ("work", "write.file:1"), ("commit", "write.file:1"),
    ("commit", "write.join:1"), ("commit", "commit.record:1"), ("commit", "commit.state:1")])
def test_a_sharded_run_that_died_is_completed_or_undone_by_the_next_run(tmp_path, killed_step, fault):
    """Not the step done again: a `naslake run` once the sharded run's lease expired."""
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share)
    change_share(share)
    kill = {"NASLAKE_FAULT": fault}
    args = ["--shards", 2, "--incremental", "--set", "incremental.lease_seconds=3"]
    url = plan(lake, share, *args, env=kill if killed_step == "plan" else None, check_codes=None)
    if killed_step == "plan":
        assert url.code == -signal.SIGKILL, url.stderr[-2000:]
    else:
        killed = None
        for i in range(2):
            env = kill if killed_step == "work" and i == 1 else None
            killed = step(lake, "work", url, "--shard", i, env=env, check_codes=None)
        if killed_step == "commit":
            killed = step(lake, "commit", url, env=kill, check_codes=None)
        assert killed.code == -signal.SIGKILL, killed.stderr[-2000:]
    time.sleep(4)
    after = run(lake, share, "--incremental", "--set", "incremental.lease_seconds=3")
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)
    assert set(lake.all_data_files()) == registered_files(lake)
    assert left_in_run_dirs(lake) == []
    took_over = [json.loads(line) for line in after.stdout.splitlines()
                 if line.startswith("{") and "taking over the lease" in line]
    assert len(took_over) == 1
    assert "nothing changed" in run(lake, share, "--incremental").stdout


# --- killed at seeded points ---------------------------------------------------------

# Points each step passes, and how often at most on these inputs.
POINTS = {
    "plan": {"discover.item": 6},
    "work": {"discover.item": 3, "extract.item": 2, "write.file": 2},
    "commit": {"write.file": 4, "write.join": 1, "commit.record": 1, "catalog.table": 3,
               "commit.catalog": 1, "commit.state": 1, "commit.cleanup": 3},
}


def fault_plan(seed, count):
    """`count` (step, point, n) triples, every step's points in turn."""
    rng = random.Random(seed)
    picks = [(s, p) for s, points in sorted(POINTS.items()) for p in sorted(points)]
    picks = [picks[i % len(picks)] for i in range(count)]
    rng.shuffle(picks)
    return [(s, p, rng.randint(1, POINTS[s][p])) for s, p in picks]


def killed_sharded_run(lake, share, killed_step, point, n):
    """An incremental sharded run (2 shards) with `killed_step` killed at
    `point:n`, then that step done again and the rest of the run; returns whether
    the process was killed."""
    run_id = new_run_id()
    fault = {"NASLAKE_FAULT": f"{point}:{n}"}
    args = ["--shards", 2, "--incremental", "--run-id", run_id]
    env = fault if killed_step == "plan" else None
    first = plan(lake, share, *args, env=env, check_codes=None)
    killed = not isinstance(first, str)
    url = plan(lake, share, *args) if killed else first
    if killed:
        assert first.code == -signal.SIGKILL, first.stderr[-2000:]
    for i in range(2):
        env = {"NASLAKE_FAULT": f"{point}:{n}@shard{i}.attempt0"} if killed_step == "work" else None
        w = step(lake, "work", url, "--shard", i, "--attempt", 0, env=env, check_codes=None)
        if w.code != 0:
            assert w.code == -signal.SIGKILL, w.stderr[-2000:]
            killed = True
            step(lake, "work", url, "--shard", i, "--attempt", 1)
    env = fault if killed_step == "commit" else None
    c = step(lake, "commit", url, env=env, check_codes=None)
    if c.code not in (0, 3):
        assert c.code == -signal.SIGKILL, c.stderr[-2000:]
        killed = True
        step(lake, "commit", url)
    return killed


def kill_sharded_at_seeded_points(tmp_path, seed, count, make_share, make_lake):
    want, kills = None, 0
    for i, (killed_step, point, n) in enumerate(fault_plan(seed, count)):
        share, lake = make_share(i), make_lake(i)
        set_a(share)
        run(lake, share, "--incremental")
        change_share(share)
        kills += killed_sharded_run(lake, share, killed_step, point, n)
        want = want or full_lake_rows(tmp_path, share)
        where = (killed_step, point, n)
        assert {t: table_rows(lake, t) for t in TABLES} == want, where
        assert set(lake.all_data_files()) == registered_files(lake), ("orphaned files", where)
        if isinstance(lake, LocalLake):
            assert left_in_run_dirs(lake) == [], where
        again = run(lake, share, "--incremental")
        assert "nothing changed" in again.stdout, where
    return kills


def test_sharded_incremental_runs_killed_at_seeded_points_locally_end_exactly_once(tmp_path):
    kills = kill_sharded_at_seeded_points(
        tmp_path, 7, 16, lambda i: LocalShare(tmp_path / f"share{i}"), lambda i: LocalLake(tmp_path / f"lake{i}"))
    assert kills >= 12


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_sharded_incremental_runs_killed_at_seeded_points_on_moto_with_glue(tmp_path):
    bucket = f"skill-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    kills = kill_sharded_at_seeded_points(
        tmp_path, 23, 8, lambda i: S3Share(bucket, f"share{i}"), lambda i: GlueLake(bucket, f"lake{i}"))
    assert kills >= 6


# --- as AWS Batch and Spark run it, on moto with Glue --------------------------------

@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_batch_array_children_run_incrementally_on_moto_with_glue(tmp_path):
    bucket = f"sinc-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    share, lake = S3Share(bucket, "data"), GlueLake(bucket, "lake")
    set_a(share)
    run(lake, share)
    change_share(share)
    # Same size, new content: on S3 the ETag tells.
    share.put("long/e.csv", share.get("long/e.csv").decode().replace("press-05", "press-55"))
    run_id = new_run_id()
    url = plan(lake, share, "--shards", 3, "--incremental", "--run-id", run_id)
    for i in range(3):
        step(lake, "work", url, "--shard-from-env",
             env={"AWS_BATCH_JOB_ARRAY_INDEX": str(i), "AWS_BATCH_JOB_ATTEMPT": "1"})
    step(lake, "commit", url)
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)
    assert set(lake.all_data_files()) == registered_files(lake)
    assert "nothing changed" in run(lake, share, "--incremental").stdout


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_the_spark_driver_runs_incrementally_on_moto_with_glue(tmp_path):
    from test_sharded import spark_output, spark_submit
    bucket = f"spinc-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    share, lake = S3Share(bucket, "data"), GlueLake(bucket, "lake")
    set_a(share)
    args = ["--input", share.url, "--output", lake.url, *lake.args, "--shards", 2, "--incremental"]
    env = {**lake.env, **SEVERAL_WRITERS}
    first = spark_submit(SENSOR_JOB, *args, env=env)
    assert first.returncode == 3, spark_output(first)[-3000:]
    change_share(share)
    second = spark_submit(SENSOR_JOB, *args, env=env)
    assert second.returncode == 3, spark_output(second)[-3000:]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)
    assert set(lake.all_data_files()) == registered_files(lake)
    assert "nothing changed" in run(lake, share, "--incremental").stdout


def test_the_image_job_sharded_incrementally_equals_a_run(tmp_path):
    """Its station windows read every image: unchanged images' rows come from the
    table's last version (the commit reads them back), or the images are read again."""
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    shutil.copytree(ROOT / "samples" / "images", share.root, dirs_exist_ok=True)
    spec = ROOT / "jobs" / "images.toml"

    def images_sharded(*extra):
        r = step(lake, "plan", spec, "--input", share.url, "--output", lake.url, "--shards", 2, *extra)
        url = r.stdout.strip().splitlines()[-1]
        for i in range(2):
            step(lake, "work", url, "--shard", i)
        return plan_doc(lake, url), step(lake, "commit", url)

    images_sharded("--incremental")
    files = sorted(p for p in share.root.rglob("*") if p.is_file())
    files[0].unlink()
    shutil.copyfile(files[1], files[1].with_name("copy-" + files[1].name))
    doc, c = images_sharded("--incremental")
    assert doc["basis"]["basis"] == "incremental" and not doc["basis"]["quiet"]
    assert c.report["incremental"]["objects"]["deleted"] == 1
    ref = LocalLake(tmp_path / "ref")
    naslake("run", spec, "--input", share.url, "--output", ref.url, lake=ref.root)
    tables = sorted(p.stem for p in (ref.root / "_naslake" / "catalog" / "naslake").glob("*.json"))
    for t in tables:
        assert table_rows(lake, t) == table_rows(ref, t), t
    assert set(lake.all_data_files()) <= {f for t in tables for loc, _ in lake.locations(t) for f in lake.files_at(loc)}
