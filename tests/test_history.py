"""Run history: `naslake runs` lists the runs of an output from their reports, newest
first, `naslake runs show` prints one report, and `naslake query` has the same rows
as the `naslake_runs` table. Checked against the reports the runs wrote."""
import csv
import io
import json

from conftest import SENSOR_JOB, naslake
from lakes import LocalLake, LocalShare
from test_incremental import change_share, set_a


def test_runs_lists_every_run_newest_first_as_its_report_says(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    args = ["--input", share.url, "--output", lake.url]
    first = naslake("run", SENSOR_JOB, *args, lake=lake.root)
    change_share(share)
    second = naslake("run", SENSOR_JOB, *args, "--incremental", lake=lake.root)
    share.append("long/b.csv", "press-02,2024-03-02T23:00:00Z,1.5,temperature,degC\n")
    url = naslake("plan", SENSOR_JOB, *args, "--shards", 2, "--incremental").stdout.strip().splitlines()[-1]
    for i in range(2):
        naslake("work", url, "--shard", i)
    third = naslake("commit", url, lake=lake.root)
    reports = [third.report, second.report, first.report]

    listed = naslake("runs", "--output", lake.url, "--format", "json")
    rows = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in reports]
    assert [(r["driver"], r["basis"]) for r in rows] == [("sharded", "incremental"), ("run", "incremental"),
                                                          ("run", "full")]
    for row, report in zip(rows, reports):
        t = report["totals"]
        assert (row["status"], row["started_at"]) == (report["status"], report["started_at"])
        assert (row["items_in"], row["items_rejected"], row["rows_in"], row["rows_out"], row["rows_rejected"]) == \
            (t["files_seen"], t["files_rejected"], t["records_in"], t["rows_out"], t["records_rejected"])
        assert row["tables_changed"] == sum(1 for x in report["tables"] if x["location"])

    last = naslake("runs", "--output", lake.url, "--last", 1, "--format", "csv")
    assert [r["run_id"] for r in csv.DictReader(io.StringIO(last.stdout))] == [third.report["run_id"]]
    other = naslake("runs", "--output", lake.url, "--job", "nosuch", "--format", "csv")
    assert list(csv.DictReader(io.StringIO(other.stdout))) == []

    shown = naslake("runs", "show", second.report["run_id"], "--output", lake.url)
    assert json.loads(shown.stdout) == second.report
    missing = naslake("runs", "show", "01aaaaaaaaaaaaaaaaaaaaaaaa", "--output", lake.url, check_codes=None)
    assert missing.code == 2 and "no report" in missing.stderr

    # A local catalog's directory is the output whose history it queries.
    q = naslake("query", "SELECT driver, count(*) AS n FROM naslake_runs GROUP BY driver ORDER BY driver",
                "--catalog", f"local:{lake.root}", "--format", "csv")
    assert list(csv.DictReader(io.StringIO(q.stdout))) == [{"driver": "run", "n": "2"}, {"driver": "sharded", "n": "1"}]
    # A report that cannot be read is left out, and the rest still listed.
    (lake.root / "_naslake" / "runs" / "01m00000000000000000000000.json").write_text("{not json")
    rest = naslake("runs", "--output", lake.url, "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(rest.stdout)))) == 3
    assert "cannot be read" in rest.stderr
    both = naslake("runs", "--output", lake.url, "--job", "sensor_readings", "--last", 2, "--format", "csv")
    assert [r["run_id"] for r in csv.DictReader(io.StringIO(both.stdout))] == \
        [third.report["run_id"], second.report["run_id"]]
    for bad in ["../../etc/passwd", "not-a-ulid"]:
        b = naslake("runs", "show", bad, "--output", lake.url, check_codes=None)
        assert b.code == 2 and "no report" in b.stderr
    # An output without runs has an empty history.
    empty = naslake("runs", "--output", tmp_path / "nothing", "--format", "csv")
    assert empty.stdout.strip().count("\n") == 0
