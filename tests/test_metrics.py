"""The run's CloudWatch Embedded Metric Format records: with JSON logs, a run's last
log lines are EMF records (one per table written, the run's last) that CloudWatch
Logs turns into metrics. Each is checked against the EMF specification's rules and
against the run's report."""
import json

from conftest import ROOT, SENSOR_JOB, naslake

# The units CloudWatch accepts (the EMF specification refers to MetricDatum's).
UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
         "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
         "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
         "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
         "Count/Second", "None"}


def check_emf(record):
    """The specification's required structure; returns the directive."""
    aws = record["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_500_000_000_000
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and len(directives) == 1
    d = directives[0]
    assert isinstance(d["Namespace"], str) and 1 <= len(d["Namespace"]) <= 255
    for dimension_set in d["Dimensions"]:
        assert 1 <= len(dimension_set) <= 30
        for name in dimension_set:
            assert isinstance(record[name], str) and record[name], name
    assert 1 <= len(d["Metrics"]) <= 100
    for m in d["Metrics"]:
        assert isinstance(m["Name"], str) and 1 <= len(m["Name"]) <= 255
        assert m.get("Unit", "None") in UNITS
        assert isinstance(record[m["Name"]], (int, float)), m["Name"]
    return d


def emf_records(stdout):
    """The EMF lines at the end of the output, in order."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    records = []
    for line in reversed(lines):
        if not line.startswith("{"):
            break
        doc = json.loads(line)
        if "_aws" not in doc:
            break
        records.append(doc)
    return list(reversed(records))


def test_a_runs_last_log_lines_are_emf_records_of_its_report(tmp_path):
    lake = tmp_path / "lake"
    r = naslake("run", SENSOR_JOB, "--output", lake, lake=lake, env={"NASLAKE_LOG_FORMAT": "json"})
    records = emf_records(r.stdout)
    # One per table written, then the run's, as the last lines of the output.
    assert len(records) == len(r.report["tables"]) + 1
    run = records[-1]
    d = check_emf(run)
    assert d["Namespace"] == "naslake" and d["Dimensions"] == [["job"]]
    t = r.report["totals"]
    assert (run["job"], run["run_id"], run["status"]) == ("sensor_readings", r.report["run_id"], "succeeded_with_rejects")
    assert (run["RowsIn"], run["RowsOut"], run["RowsRejected"], run["ItemsRejected"], run["BytesRead"]) == \
        (t["records_in"], t["rows_out"], t["records_rejected"], t["files_rejected"], t["bytes_in"])
    assert run["RejectsRows"] == t["rejects_rows"] > 0
    assert run["ExitCode"] == r.code == 3 and run["DurationSeconds"] > 0
    tables = records[:-1]
    assert sorted(x["table"] for x in tables) == sorted(x["table"] for x in r.report["tables"])
    for rec in tables:
        d = check_emf(rec)
        assert d["Dimensions"] == [["job", "table"]]
        want = next(x for x in r.report["tables"] if x["table"] == rec["table"])
        assert (rec["RowsWritten"], rec["BytesWritten"]) == (want["rows_written"], want["bytes_written"])


def test_text_logs_have_no_metrics_and_a_dicom_jobs_records_name_no_key(tmp_path):
    lake = tmp_path / "lake"
    text = naslake("run", SENSOR_JOB, "--output", lake, lake=lake, env={"NASLAKE_LOG_FORMAT": "text"})
    assert "_aws" not in text.stdout + text.stderr
    dicom = naslake("run", ROOT / "jobs" / "dicom.toml", "--output", tmp_path / "d", lake=tmp_path / "d",
                    env={"NASLAKE_LOG_FORMAT": "json", "NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": ""})
    records = emf_records(dicom.stdout)
    assert records
    # The samples' files rejected whole count as rejects rows, not rejected rows.
    run = records[-1]
    assert run["RejectsRows"] == dicom.report["totals"]["rejects_rows"] > 0
    for rec in records:
        check_emf(rec)
        strings = {k for k, v in rec.items() if isinstance(v, str)}
        # Names and the run's id and status only: no object key, path or address.
        assert strings <= {"job", "table", "run_id", "status"}, strings
        assert not any("/" in v for v in rec.values() if isinstance(v, str))


def test_a_run_that_fails_before_it_has_a_report_still_ends_with_its_run_record(tmp_path):
    lake = tmp_path / "lake"
    env = {"NASLAKE_LOG_FORMAT": "json"}
    # A spec that does not load: the job is named as its spec names it.
    bad = naslake("run", SENSOR_JOB, "--output", lake, "--set", "tables.extra.sql=x.sql", env=env, check_codes=(2,))
    [run] = emf_records(bad.stdout)
    d = check_emf(run)
    assert d["Dimensions"] == [["job"]]
    assert (run["job"], run["ExitCode"], run["status"], run["RowsIn"]) == ("sensor_readings", 2, "failed", 0)
    # A spec that cannot be read at all is named by its file.
    missing = naslake("run", tmp_path / "nightly.toml", "--output", lake, env=env, check_codes=(1, 2))
    [run] = emf_records(missing.stdout)
    check_emf(run)
    assert (run["job"], run["ExitCode"]) == ("nightly", missing.code)
    # Text logs carry no metrics.
    text = naslake("run", SENSOR_JOB, "--output", lake, "--set", "tables.extra.sql=x.sql",
                   env={"NASLAKE_LOG_FORMAT": "text"}, check_codes=(2,))
    assert emf_records(text.stdout) == []
