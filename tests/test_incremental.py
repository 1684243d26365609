"""Incremental runs, exactly once: a share changes between runs (files added,
appended to, replaced, deleted, copied NAS-style with their old modification time
kept), and each incremental run must leave every table equal to a full run over the
same files, read only what changed, and come back cleanly from SIGKILL at any point.

Tables are compared by what an independent reader (DuckDB, pyarrow) finds at the
locations the catalog registers, the way Athena reads them."""
import gzip
import json
import os
import random
import shutil
import signal
import socket
import time
import uuid

import pytest

from conftest import ROOT, SENSOR_JOB, dry_run_report, naslake
from lakes import MOTO, GlueLake, LocalLake, LocalShare, S3Share, glue, s3, table_rows

TABLES = ["sensor_readings", "sensor_anomalies", "sensor_rejects"]
HEADER = "sensor_id,timestamp,value,metric_name,unit\n"


def reading(sensor, day, hour, value, metric="temperature", unit="degC"):
    return f"{sensor},2024-03-{day:02d}T{hour:02d}:00:00Z,{value},{metric},{unit}\n"


def long_file(sensor, day, n, bad=0, base=20.0):
    body = HEADER + "".join(reading(sensor, day, h % 24, base + h * 0.5) for h in range(n))
    return body + "".join(f"{sensor},not-a-time,1,temperature,degC\n" for _ in range(bad))


def registered_files(lake):
    files = set()
    for t in TABLES:
        for location, _ in lake.locations(t):
            files.update(lake.files_at(location))
    return files


# Every run here writes with one writer per core however small its input, the
# way big inputs are written: partitions whose files the writers then join.
SEVERAL_WRITERS = {"NASLAKE_BYTES_PER_WRITER": "1"}


def run(lake, share, *extra, env=None, **kw):
    return naslake("run", SENSOR_JOB, "--input", share.url, "--output", lake.url, *lake.args, *extra,
                   lake=lake.root if isinstance(lake, LocalLake) else None,
                   env={**SEVERAL_WRITERS, **lake.env, **(env or {})}, **kw)


def full_lake_rows(tmp_path, share, name="reference"):
    """The tables a plain full run over the share's files makes, in a lake of its own."""
    copy = LocalShare(tmp_path / f"{name}-share")
    share.copy_to(copy)
    ref = LocalLake(tmp_path / f"{name}-lake")
    run(ref, copy)
    return {t: table_rows(ref, t) for t in TABLES}


def read_keys(r):
    return sorted(f["key"] for f in r.report["files"])


def set_a(share):
    share.put("long/a.csv", long_file("press-01", 1, 30, bad=1))
    share.put("long/b.csv", long_file("press-02", 2, 20))
    share.put("long/c.csv.gz", gzip.compress(long_file("press-03", 3, 25, bad=2).encode()))
    share.put("long/d.csv", long_file("press-04", 1, 10))
    share.put("long/e.csv", long_file("press-05", 4, 12))


def change_share(share):
    """Adds one file, appends to one, replaces one, deletes one."""
    share.put("long/f.csv", long_file("press-06", 5, 15, bad=1))
    share.append("long/a.csv", reading("press-01", 1, 23, 99.5))
    share.put("long/c.csv.gz", gzip.compress(long_file("press-03", 6, 8).encode()))
    share.delete("long/d.csv")


# --- the sequence, locally ---------------------------------------------------------

def test_incremental_sequence_reads_only_what_changed_and_equals_a_full_run(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    first = run(lake, share, "--incremental")
    assert first.report["incremental"]["basis"] == "full"
    assert "no committed state" in first.report["incremental"]["reason"]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share, "a")

    change_share(share)
    second = run(lake, share, "--incremental")
    inc = second.report["incremental"]
    assert inc["basis"] == "incremental"
    assert inc["objects"] == {"new": 1, "changed": 2, "unchanged": 2, "deleted": 1}
    # Only the new and changed files were opened.
    assert read_keys(second) == ["long/a.csv", "long/c.csv.gz", "long/f.csv"]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share, "b")
    readings = next(t for t in second.report["tables"] if t["table"] == "sensor_readings")
    m = readings["incremental"]
    # a (31 rows with the new one) + c (8) + f (15) added; a (30), c (25), d (10) removed.
    assert (m["rows_added"], m["rows_removed"]) == (54, 65)
    # Day 2 (b only) and day 4 (e only) were not touched; days 1, 3 and 6 were.
    assert m["partitions_kept"] == 2
    entry = lake.entry("sensor_readings")
    by_day = {p["Values"][0]: p["StorageDescriptor"]["Location"] for p in entry["Partitions"]}
    assert first.report["run_id"] in by_day["2024-03-02"] and first.report["run_id"] in by_day["2024-03-04"]
    assert "2024-03-03" not in by_day  # c's rows moved to day 6: the partition went
    assert second.report["run_id"] in by_day["2024-03-06"]
    # No file the catalog does not register stays behind.
    assert set(lake.all_data_files()) == registered_files(lake)
    # Day 1 got a's new rows next to d's old ones (rewritten): still one file, and
    # so is every other partition.
    assert m["partitions_rewritten"] + m["partitions_copied"] >= 1
    for t in TABLES:
        for location, values in lake.locations(t):
            assert len(lake.files_at(location)) == 1, (t, values, lake.files_at(location))

    catalog_before = {t: lake.entry(t) for t in TABLES}
    state_before = lake.state()
    third = run(lake, share, "--incremental")
    inc = third.report["incremental"]
    assert inc["nothing_changed"] and inc["objects"]["unchanged"] == 5
    assert third.report["files"] == [] and third.report["totals"]["bytes_in"] == 0
    assert {t: lake.entry(t) for t in TABLES} == catalog_before
    assert lake.state() == state_before
    assert "nothing changed" in third.stdout


def test_keys_with_spaces_unicode_and_escapes_are_replaced_and_removed(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    odd = ["long/line 7/näht #1.csv", "long/100%/a=b.csv", "long/x/'quoted'.csv"]
    for i, k in enumerate(odd):
        share.put(k, long_file(f"odd-{i}", 8 + i, 6, bad=1))
    run(lake, share, "--incremental")
    share.put(odd[0], long_file("odd-0", 12, 4))
    share.delete(odd[1])
    second = run(lake, share, "--incremental")
    assert second.report["incremental"]["objects"] == {"new": 0, "changed": 1, "unchanged": 6, "deleted": 1}
    assert read_keys(second) == [odd[0]]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)
    assert set(lake.all_data_files()) == registered_files(lake)


def test_a_dry_run_says_what_an_incremental_run_would_read_and_writes_nothing(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share, "--incremental")
    change_share(share)
    state_before = lake.state()
    out = run(lake, share, "--incremental", "--dry-run")
    plan = dry_run_report(out.stdout)
    assert plan["status"] == "dry_run"
    assert plan["incremental"]["objects"] == {"new": 1, "changed": 2, "unchanged": 2, "deleted": 1}
    assert sorted(f["key"] for f in plan["files"]) == ["long/a.csv", "long/c.csv.gz", "long/f.csv"]
    assert lake.state() == state_before
    full = run(lake, share, "--dry-run")
    assert dry_run_report(full.stdout)["totals"]["files_seen"] == 5


def test_nas_copy_with_old_modification_time_is_read_again(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share, "--incremental")
    # Copied over with the original mtime kept: only the size tells.
    share.put("long/b.csv", long_file("press-02", 2, 21), keep_mtime=True)
    # A file whose mtime is older than the last run, new to the share.
    share.put("long/old.csv", long_file("press-07", 7, 5))
    os.utime(share.root / "long/old.csv", (946684800, 946684800))
    second = run(lake, share, "--incremental")
    assert second.report["incremental"]["objects"]["changed"] == 1
    assert second.report["incremental"]["objects"]["new"] == 1
    assert read_keys(second) == ["long/b.csv", "long/old.csv"]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)


def test_deleted_files_rows_are_kept_as_history_when_asked(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    keep = ["--set", "incremental.deletes=keep"]
    set_a(share)
    run(lake, share, "--incremental", *keep)
    before = table_rows(lake, "sensor_readings")
    share.delete("long/d.csv")
    second = run(lake, share, "--incremental", *keep)
    assert second.report["incremental"]["objects"]["deleted"] == 1
    assert table_rows(lake, "sensor_readings") == before
    # Said once: the next run has nothing to do.
    assert run(lake, share, "--incremental", *keep).report["incremental"]["nothing_changed"]
    # Back with other content: its old rows are replaced.
    share.put("long/d.csv", long_file("press-04", 1, 3))
    run(lake, share, "--incremental", *keep)
    rows = [r for r in table_rows(lake, "sensor_readings") if "'press-04'" in r]
    assert len(rows) == 3


def test_a_table_changed_by_hand_is_detected_and_full_is_the_way_out(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share, "--incremental")
    path = lake.root / "_naslake" / "catalog" / "naslake" / "sensor_readings.json"
    entry = json.loads(path.read_text())
    entry["Partitions"] = entry["Partitions"][1:]
    path.write_text(json.dumps(entry))
    share.put("long/f.csv", long_file("press-06", 5, 4))
    refused = run(lake, share, "--incremental", check_codes=(1,))
    assert "does not match the incremental state" in refused.stderr + refused.stdout
    assert "--full" in refused.stderr + refused.stdout
    run(lake, share, "--full")
    assert run(lake, share, "--incremental").report["incremental"]["nothing_changed"]
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)


def test_a_second_run_refuses_while_the_first_holds_the_lease(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share)
    lease = lake.root / "_naslake" / "state" / "sensor_readings" / "lease.json"
    held = {"run_id": "01other", "host": socket.gethostname(), "pid": os.getpid(),
            "acquired_at": "2026-01-01T00:00:00+00:00", "expires_at": "2999-01-01T00:00:00+00:00"}
    lease.write_text(json.dumps(held))
    busy = run(lake, share, check_codes=(1,))
    assert "already running" in busy.stderr and "01other" in busy.stderr
    assert json.loads(lease.read_text()) == held
    # Expired, or naming a process of this host that is gone: taken over.
    lease.write_text(json.dumps({**held, "expires_at": "2001-01-01T00:00:00+00:00"}))
    run(lake, share)
    assert not lease.exists()
    lease.write_text(json.dumps({**held, "pid": dead_pid()}))
    run(lake, share)
    assert not lease.exists()


def test_after_a_dead_run_only_its_and_older_versions_are_swept(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share)
    part = lake.root / "sensor_readings" / "dt=2024-03-01"
    older = part / "v-01h00000000000000000000000" / "part-x-00000.parquet"
    # A run that raced this one for the dead lease is newer than the dead run.
    newer = part / "v-7zzzzzzzzzzzzzzzzzzzzzzzzz" / "part-y-00000.parquet"
    for f in (older, newer):
        f.parent.mkdir(parents=True)
        shutil.copyfile(lake.files_at(lake.locations("sensor_readings")[0][0])[0], f)
    lease = lake.root / "_naslake" / "state" / "sensor_readings" / "lease.json"
    lease.write_text(json.dumps({"run_id": "01jz0000000000000000000000", "host": "elsewhere", "pid": 1,
                                 "acquired_at": "2025-01-01T00:00:00+00:00",
                                 "expires_at": "2025-01-01T00:10:00+00:00"}))
    after = run(lake, share)
    assert after.report["incremental"]["recovered"]["orphans_removed"] == 1
    assert not older.exists() and newer.exists()


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_the_lease_on_s3_is_refused_while_live_and_taken_over_when_expired(tmp_path):
    bucket = f"lease-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    share, lake = S3Share(bucket, "data"), GlueLake(bucket, "lake")
    set_a(share)
    key = "lake/_naslake/state/sensor_readings/lease.json"
    held = {"run_id": "01other", "host": "elsewhere", "pid": 1,
            "acquired_at": "2026-01-01T00:00:00+00:00", "expires_at": "2999-01-01T00:00:00+00:00"}
    s3().put_object(Bucket=bucket, Key=key, Body=json.dumps(held).encode())
    busy = run(lake, share, check_codes=(1,))
    assert "already running" in busy.stderr and "01other" in busy.stderr
    held["expires_at"] = "2001-01-01T00:00:00+00:00"
    s3().put_object(Bucket=bucket, Key=key, Body=json.dumps(held).encode())
    run(lake, share)
    with pytest.raises(s3().exceptions.ClientError):
        s3().head_object(Bucket=bucket, Key=key)


def dead_pid():
    import subprocess
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# --- killed at seeded points ---------------------------------------------------------

POINTS = {
    "discover.item": 6, "extract.item": 4, "write.file": 4, "write.join": 1, "commit.record": 1,
    "catalog.table": 3, "commit.catalog": 1, "commit.state": 1, "commit.cleanup": 3,
}


def fault_plan(seed, count):
    """`count` (point, n, which run) triples, every point at least twice."""
    rng = random.Random(seed)
    names = sorted(POINTS)
    picks = [names[i % len(names)] for i in range(count)]
    rng.shuffle(picks)
    return [(p, rng.randint(1, POINTS[p]), rng.choice(["first", "second"])) for p in picks]


def kill_then_recover(share, lake, point, n, which):
    """Runs 1 (set A) and 2 (changed), one killed at `point:n`, then the run that
    comes back; returns whether the process was killed."""
    set_a(share)
    fault = {"NASLAKE_FAULT": f"{point}:{n}"}
    if which == "first":
        killed = run(lake, share, "--incremental", env=fault, check_codes=None)
        run(lake, share, "--incremental")
        change_share(share)
        run(lake, share, "--incremental")
    else:
        run(lake, share, "--incremental")
        change_share(share)
        killed = run(lake, share, "--incremental", env=fault, check_codes=None)
        run(lake, share, "--incremental")
    # The point was reached (a kill) or lies beyond what the run does (it finished).
    assert killed.code in (-signal.SIGKILL, 0, 3), (point, killed.stderr[-2000:])
    return killed.code == -signal.SIGKILL


def kill_at_seeded_points(tmp_path, seed, make_share, make_lake, report_of):
    """24 seeded kills; after each, the tables equal an uninterrupted run's, no
    unregistered file is left, and one more run finds nothing changed."""
    want, kills = None, 0
    for i, (point, n, which) in enumerate(fault_plan(seed, 24)):
        share, lake = make_share(i), make_lake(i)
        kills += kill_then_recover(share, lake, point, n, which)
        want = want or full_lake_rows(tmp_path, share)
        assert {t: table_rows(lake, t) for t in TABLES} == want, (point, n, which)
        assert set(lake.all_data_files()) == registered_files(lake), ("orphaned files", point, n, which)
        again = run(lake, share, "--incremental")
        assert report_of(lake, again)["incremental"]["nothing_changed"], (point, n, which)
    assert kills >= 20


def test_killed_at_20_seeded_points_locally_the_next_run_completes_exactly_once(tmp_path):
    kill_at_seeded_points(
        tmp_path, 12, lambda i: LocalShare(tmp_path / f"share{i}"), lambda i: LocalLake(tmp_path / f"lake{i}"),
        lambda lake, r: r.report)


# --- on moto: S3 in and out, the Glue catalog ---------------------------------------

@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_incremental_sequence_over_moto_with_glue(tmp_path):
    bucket = f"share-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    share, lake = S3Share(bucket, "data"), GlueLake(bucket, "lake")
    set_a(share)
    run(lake, share, "--incremental")
    change_share(share)
    # Same size, new content: on S3 the ETag tells.
    body = share.get("long/e.csv").decode().replace("press-05", "press-55")
    share.put("long/e.csv", body)
    run(lake, share, "--incremental")
    report = latest_report(share, lake)
    assert report["incremental"]["objects"] == {"new": 1, "changed": 3, "unchanged": 1, "deleted": 1}
    assert sorted(f["key"] for f in report["files"]) == ["long/a.csv", "long/c.csv.gz", "long/e.csv", "long/f.csv"]
    want = full_lake_rows(tmp_path, share)
    for t in TABLES:
        got = table_rows(lake, t)
        assert got == want[t], repr((t, [r for r in got if r not in want[t]][:2], [r for r in want[t] if r not in got][:2]))
    assert set(lake.all_data_files()) == registered_files(lake)
    before = {t: lake.entry(t) for t in TABLES}
    versions = {t: glue().get_table(DatabaseName=lake.db, Name=t)["Table"].get("VersionId") for t in TABLES}
    third = run(lake, share, "--incremental")
    assert "nothing changed" in third.stdout
    assert {t: lake.entry(t) for t in TABLES} == before
    assert {t: glue().get_table(DatabaseName=lake.db, Name=t)["Table"].get("VersionId") for t in TABLES} == versions


def latest_report(share, lake):
    c = s3()
    pages = c.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket, Prefix=f"{lake.prefix}/_naslake/runs/")
    keys = sorted(o["Key"] for p in pages for o in p.get("Contents", []))
    return json.loads(c.get_object(Bucket=lake.bucket, Key=keys[-1])["Body"].read())


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_killed_at_20_seeded_points_on_moto_with_glue_the_next_run_completes_exactly_once(tmp_path):
    bucket = f"kill-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    kill_at_seeded_points(
        tmp_path, 34, lambda i: S3Share(bucket, f"data{i}"), lambda i: GlueLake(bucket, f"lake{i}"),
        lambda lake, r: latest_report(None, lake))


# --- the other jobs ------------------------------------------------------------------

def catalog_tables(lake):
    return sorted(p.stem for p in (lake.root / "_naslake" / "catalog" / "naslake").glob("*.json"))


@pytest.mark.parametrize("job,samples", [("dicom", "dicom"), ("images", "images")])
def test_dicom_and_image_jobs_run_incrementally_equal_to_a_full_run(tmp_path, job, samples):
    spec = ROOT / "jobs" / f"{job}.toml"
    share = tmp_path / "share"
    shutil.copytree(ROOT / "samples" / samples, share)
    files = sorted(p for p in share.rglob("*") if p.is_file() and not p.name.startswith("."))
    lake = LocalLake(tmp_path / "lake")

    def go(out, *extra):
        return naslake("run", spec, "--input", share, "--output", out.url, *extra, lake=out.root)

    go(lake, "--incremental")
    files[0].unlink()
    shutil.copyfile(files[2], files[1])
    # A new station with one file: baselines and duplicate flags move.
    added = share / "station-new" / files[3].name
    added.parent.mkdir()
    shutil.copyfile(files[3], added)
    second = go(lake, "--incremental")
    inc = second.report["incremental"]
    assert inc["basis"] == "incremental"
    assert (inc["objects"]["new"], inc["objects"]["changed"], inc["objects"]["deleted"]) == (1, 1, 1)
    # Only the changed file is opened. image_inspections flags each image against
    # its station (windows over the whole source): the unchanged images' rows come
    # back from its last version, not from the share.
    assert sorted(f["key"] for f in second.report["files"]) == sorted(
        str(p.relative_to(share)) for p in (files[1], added))
    assert inc["reread"] == 0
    ref = LocalLake(tmp_path / "ref")
    go(ref)
    assert catalog_tables(lake) == catalog_tables(ref)
    for t in catalog_tables(ref):
        assert table_rows(lake, t) == table_rows(ref, t), t
    assert go(lake, "--incremental").report["incremental"]["nothing_changed"]


def test_a_commit_record_an_older_naslake_left_is_rolled_back(tmp_path):
    """Killed mid-commit by the naslake before an upgrade: its record (state format
    1) cannot become the state, so the next run rolls it back, says so, and goes on."""
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    run(lake, share, "--incremental")
    commits = lake.root / "_naslake" / "state" / "sensor_readings" / "commits"
    current = lake.state()["run_id"]
    # A ULID after the current run's: its time part a second from now.
    alphabet, ms, old_run = "0123456789abcdefghjkmnpqrstvwxyz", int(time.time() * 1000) + 1000, ""
    for _ in range(10):
        old_run, ms = alphabet[ms % 32] + old_run, ms // 32
    old_run += "0" * 16
    assert old_run > current
    old = {"format": 1, "base_run": current, "entries": [], "replaced": [],
           "state": {"format": 1, "job": "sensor_readings", "run_id": old_run, "committed_at": "x",
                     "spec_digest": "d", "sources": {"long": {"long/a.csv": {"size": 1, "rows": {"t": [[0, 5]]}}}},
                     "tables": {}}}
    (commits / f"{old_run}.json").write_text(json.dumps(old))
    change_share(share)
    r = run(lake, share, "--incremental")
    assert r.report["incremental"]["basis"] == "incremental"
    assert r.report["incremental"]["recovered"]["rolled_back"] == [old_run]
    assert any("older naslake" in w for w in r.report["warnings"])
    assert not (commits / f"{old_run}.json").exists()
    assert {t: table_rows(lake, t) for t in TABLES} == full_lake_rows(tmp_path, share)
