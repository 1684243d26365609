"""A bug's panic fails the run as an error does: the catalog is left as it was,
no upload is left under way, and nothing the run prints or keeps quotes the
panic's message, which may quote input data. The panics come from fault points
armed with NASLAKE_FAULT_KIND=panic (src/base/faults.rs), whose message quotes
PANIC_DATA."""
import json
import uuid

import duckdb
import pytest

from conftest import SENSOR_JOB, naslake
from lakes import MOTO, aws_env, s3

# src/base/faults.rs's PANIC_DATA.
PANIC_DATA = "Doe^Jane 1970-01-01"


def one_day_of_readings(share, rows):
    """`rows` readings of one day in one file, values random enough that the
    day's Parquet file outgrows an upload part (5 MiB) and goes up in parts."""
    (share / "long").mkdir(parents=True)
    duckdb.execute(f"""COPY (SELECT 'press-' || lpad(CAST(i % 500 AS VARCHAR), 3, '0') AS sensor_id,
            strftime(TIMESTAMP '2024-03-01' + to_microseconds(i * 40), '%Y-%m-%dT%H:%M:%S.%fZ') AS timestamp,
            round(random() * 1000, 6) AS value, 'temperature' AS metric_name, 'degC' AS unit
        FROM range({rows}) t(i)) TO '{share}/long/day.csv' (HEADER, DELIMITER ',')""")


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_a_writer_that_panics_aborts_its_uploads_and_quotes_nothing(tmp_path):
    # S3 (moto server), where an upload dropped unaborted stays under way (a
    # local store's upload removes its file when dropped).
    bucket = f"panic-{uuid.uuid4().hex[:8]}"
    s3().create_bucket(Bucket=bucket)
    share = tmp_path / "share"
    one_day_of_readings(share, 1_500_000)
    env = {**aws_env(), "NASLAKE_FAULT": "write.part:1", "NASLAKE_FAULT_KIND": "panic"}
    run = naslake("run", SENSOR_JOB, "--input", share, "--output", f"s3://{bucket}/lake", env=env,
                  check_codes=(1,))
    said = run.stdout + run.stderr
    assert "a table writer panicked at src/base/faults.rs" in said, said[-3000:]
    assert PANIC_DATA not in said
    # The upload the panic interrupted was aborted.
    assert not s3().list_multipart_uploads(Bucket=bucket).get("Uploads")
    keys = [o["Key"] for o in s3().list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if k.endswith(".parquet")], "a failed run's files are deleted"
    assert not [k for k in keys if "/_naslake/catalog/" in k], "nothing was registered"
    # The run's report says it failed, and why, without the message.
    [report] = [k for k in keys if "/_naslake/runs/" in k and k.endswith(".json")]
    report = s3().get_object(Bucket=bucket, Key=report)["Body"].read().decode()
    assert json.loads(report)["status"] == "failed"
    assert "a table writer panicked at" in report and PANIC_DATA not in report
    for k in keys:
        assert PANIC_DATA.encode() not in s3().get_object(Bucket=bucket, Key=k)["Body"].read(), k


def test_the_message_is_shown_only_when_asked_for(tmp_path):
    # The same panic with the messages asked for (as a developer reproducing a
    # bug on data of their own needs them): the message does reach this far,
    # so its absence above is the hook's doing.
    share, lake = tmp_path / "share", tmp_path / "lake"
    one_day_of_readings(share, 1_500_000)
    env = {"NASLAKE_FAULT": "write.part:1", "NASLAKE_FAULT_KIND": "panic", "NASLAKE_PANIC_MESSAGES": "1"}
    run = naslake("run", SENSOR_JOB, "--input", share, "--output", lake, env=env, check_codes=(1,))
    assert PANIC_DATA in run.stdout + run.stderr


def test_a_panic_while_listing_fails_the_run_without_its_message(tmp_path):
    # Discovery runs in tasks of its own, before any source table is built.
    share, lake = tmp_path / "share", tmp_path / "lake"
    (share / "long").mkdir(parents=True)
    (share / "long" / "a.csv").write_text("sensor_id,timestamp,value,metric_name,unit\n"
                                          "press-01,2024-03-01T00:00:00Z,1.5,temperature,degC\n")
    env = {"NASLAKE_FAULT": "discover.item:1", "NASLAKE_FAULT_KIND": "panic"}
    run = naslake("run", SENSOR_JOB, "--input", share, "--output", lake, env=env, check_codes=(1,))
    said = run.stdout + run.stderr
    assert "discovery panicked at src/base/faults.rs" in said, said[-3000:]
    assert PANIC_DATA not in said
    for report in (lake / "_naslake" / "runs").glob("*.json"):
        assert PANIC_DATA not in report.read_text()
