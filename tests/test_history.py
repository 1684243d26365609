"""Run history: `naslake runs` lists the runs of an output from their reports, newest
first, `naslake runs show` prints one report, and `naslake query` has the same rows
as the `naslake_runs` table. Checked against the reports the runs wrote."""
import csv
import datetime
import io
import json
import signal

from conftest import ROOT, SENSOR_JOB, naslake
from lakes import LocalLake, LocalShare
from test_incremental import change_share, set_a

# What a job adds to its spec to keep the run history as a table.
DECLARE = ["--set", "tables.naslake_runs.mode=overwrite"]


def when(text):
    """A timestamp as the report writes it (+00:00) or Arrow prints it (Z)."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


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
        assert row["status"] == report["status"]
        assert when(row["started_at"]) == when(report["started_at"])
        assert (row["items_in"], row["items_rejected"], row["rows_in"], row["rows_out"], row["rows_rejected"]) == \
            (t["files_seen"], t["files_rejected"], t["records_in"], t["rows_out"], t["records_rejected"])
        assert row["tables_changed"] == sum(1 for x in report["tables"] if x["location"])

    last = naslake("runs", "--output", lake.url, "--last", 1, "--format", "csv")
    assert [r["run_id"] for r in csv.DictReader(io.StringIO(last.stdout))] == [third.report["run_id"]]
    other = naslake("runs", "--output", lake.url, "--job", "nosuch", "--format", "csv")
    assert list(csv.DictReader(io.StringIO(other.stdout))) == []

    shown = naslake("runs", "show", second.report["run_id"], "--output", lake.url)
    assert json.loads(shown.stdout) == second.report
    # Stored on one line, shown indented with the fields in the order stored.
    stored = (lake.root / "_naslake" / "runs" / f"{second.report['run_id']}.json").read_text()
    assert stored.count("\n") <= 1
    # Python's own indenting of the stored report, numbers as Python reads them.
    assert shown.stdout == json.dumps(json.loads(stored), indent=2, ensure_ascii=False) + "\n"
    assert shown.stdout.startswith('{\n  "run_id": ')
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
    assert naslake("runs", "show", "01m00000000000000000000000", "--output", lake.url).stdout == "{not json\n"
    both = naslake("runs", "--output", lake.url, "--job", "sensor_readings", "--last", 2, "--format", "csv")
    assert [r["run_id"] for r in csv.DictReader(io.StringIO(both.stdout))] == \
        [third.report["run_id"], second.report["run_id"]]
    for bad in ["../../etc/passwd", "not-a-ulid"]:
        b = naslake("runs", "show", bad, "--output", lake.url, check_codes=None)
        assert b.code == 2 and "no report" in b.stderr
    # An output without runs has an empty history.
    empty = naslake("runs", "--output", tmp_path / "nothing", "--format", "csv")
    assert empty.stdout.strip().count("\n") == 0


def history_table(lake):
    """The naslake_runs table at the location the catalog registers, read by DuckDB."""
    import duckdb
    [(location, _)] = lake.locations("naslake_runs")
    files = lake.files_at(location)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cur = con.execute(f"SELECT * FROM read_parquet({files!r}) ORDER BY run_id DESC")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def listed(lake):
    out = naslake("runs", "--output", lake.url, "--format", "json").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_job_that_declares_naslake_runs_keeps_its_history_as_a_parquet_table(tmp_path):
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    args = ["--input", share.url, "--output", lake.url, *DECLARE]
    naslake("run", SENSOR_JOB, *args, lake=lake.root)
    [one] = history_table(lake)
    assert (one["status"], one["driver"], one["basis"]) == ("succeeded_with_rejects", "run", "full")
    before = lake.entry("naslake_runs")

    # A run killed while writing changes nothing, the history table included.
    change_share(share)
    killed = naslake("run", SENSOR_JOB, *args, "--incremental", env={"NASLAKE_FAULT": "write.file:1"},
                     check_codes=None)
    assert killed.code == -signal.SIGKILL
    assert lake.entry("naslake_runs") == before
    # A run that fails (its SQL gets no memory) has a report but commits nothing.
    naslake("run", SENSOR_JOB, *args, env={"NASLAKE_MEMORY_LIMIT": "1KiB"}, check_codes=(1,))
    assert lake.entry("naslake_runs") == before

    # The next run recovers and commits; then a sharded, incremental one.
    naslake("run", SENSOR_JOB, *args, "--incremental", lake=lake.root)
    share.append("long/b.csv", "press-02,2024-03-02T23:00:00Z,1.5,temperature,degC\n")
    url = naslake("plan", SENSOR_JOB, *args, "--shards", 2, "--incremental").stdout.strip().splitlines()[-1]
    for i in range(2):
        naslake("work", url, "--shard", i)
    last = naslake("commit", url, lake=lake.root)

    table, runs = history_table(lake), listed(lake)
    # Every report of the output is a row, the failed run's too, and nothing else.
    assert [r["run_id"] for r in table] == [r["run_id"] for r in runs]
    assert table[0]["run_id"] == last.report["run_id"]
    assert table[0]["driver"] == "sharded" and table[0]["basis"] == "incremental"
    assert "failed" in [r["status"] for r in table]
    for row, run in zip(table, runs):
        for column in ("job", "driver", "basis", "status", "items_in", "items_rejected", "rows_in",
                       "rows_out", "rows_rejected", "tables_changed"):
            assert row[column] == run[column], (column, row, run)
        assert row["started_at"] == when(run["started_at"])
    # A committed run's row is as its commit wrote it (its duration up to the commit);
    # a failed run's comes from its report.
    for row, run in zip(table, runs):
        assert 0 < row["duration_seconds"] <= run["duration_seconds"]
        if run["status"] == "failed":
            assert row["duration_seconds"] == run["duration_seconds"]
    # Its catalog entry is the schema file's, registered like any other table.
    ddl = naslake("catalog", "show", "naslake_runs", "--ddl", "--catalog", f"local:{lake.root}").stdout
    assert "`tables_changed` bigint" in ddl and "`started_at` timestamp" in ddl


def test_naslake_runs_is_declared_by_name_alone(tmp_path):
    for extra, says in [(["--set", "tables.naslake_runs.sql=x.sql"], "declare it without"),
                        (["--set", "tables.naslake_runs.mode=append"], "written whole")]:
        out = naslake("run", SENSOR_JOB, "--output", tmp_path / "lake", *extra, "--dry-run", check_codes=(2,))
        assert "tables.naslake_runs" in out.stderr and says in out.stderr, out.stderr


def test_the_history_table_keeps_a_run_whose_commit_a_later_run_completed(tmp_path):
    """A run killed in its commit has no report; the run that completes its commit
    keeps the row that commit wrote, and so does every later version."""
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    args = ["--input", share.url, "--output", lake.url, *DECLARE]
    naslake("run", SENSOR_JOB, *args, lake=lake.root)
    change_share(share)
    killed = naslake("run", SENSOR_JOB, *args, "--incremental", env={"NASLAKE_FAULT": "commit.catalog:1"},
                     check_codes=None)
    assert killed.code == -signal.SIGKILL
    share.append("long/b.csv", "press-02,2024-03-02T23:00:00Z,1.5,temperature,degC\n")
    naslake("run", SENSOR_JOB, *args, "--incremental", lake=lake.root)
    share.append("long/b.csv", "press-02,2024-03-02T23:30:00Z,1.6,temperature,degC\n")
    naslake("run", SENSOR_JOB, *args, "--incremental", lake=lake.root)
    ids = [r["run_id"] for r in history_table(lake)]
    reported = [r["run_id"] for r in listed(lake)]
    assert len(ids) == 4 and len(reported) == 3
    assert set(reported) < set(ids)


def test_declaring_the_history_table_keeps_incremental_runs_incremental(tmp_path):
    """The table is not in the digest or the state: turning it on, and a second job
    that declares it in the same output, leave each job's incremental runs alone."""
    share, lake = LocalShare(tmp_path / "share"), LocalLake(tmp_path / "lake")
    set_a(share)
    args = ["--input", share.url, "--output", lake.url]
    naslake("run", SENSOR_JOB, *args, lake=lake.root)
    share.append("long/b.csv", "press-02,2024-03-02T23:00:00Z,1.5,temperature,degC\n")
    on = naslake("run", SENSOR_JOB, *args, *DECLARE, "--incremental", lake=lake.root)
    assert on.report["incremental"]["basis"] == "incremental", on.report["incremental"]
    other = ROOT / "jobs" / "images.toml"
    naslake("run", other, "--output", lake.url, *DECLARE, lake=lake.root)
    share.append("long/b.csv", "press-02,2024-03-02T23:30:00Z,1.6,temperature,degC\n")
    again = naslake("run", SENSOR_JOB, *args, *DECLARE, "--incremental", lake=lake.root)
    assert again.report["incremental"]["basis"] == "incremental", again.report["incremental"]
    jobs = {r["job"] for r in history_table(lake)}
    assert jobs == {"sensor_readings", "images"}
    # A run that finds nothing changed commits nothing: its row is in the reports only,
    # as is a failed run's, until the next commit.
    quiet = naslake("run", SENSOR_JOB, *args, *DECLARE, "--incremental", lake=lake.root)
    assert quiet.report["incremental"]["nothing_changed"]
    naslake("run", SENSOR_JOB, *args, *DECLARE, env={"NASLAKE_MEMORY_LIMIT": "1KiB"}, check_codes=(1,))
    in_table = {r["run_id"] for r in history_table(lake)}
    assert quiet.report["run_id"] not in in_table and len(listed(lake)) == len(in_table) + 2

    def count(*extra):
        q = naslake("query", "SELECT count(*) AS n FROM naslake.naslake_runs", "--catalog",
                    f"local:{lake.root}", *extra, "--format", "csv")
        return int(next(csv.DictReader(io.StringIO(q.stdout)))["n"])
    # The catalog's table wins without --output; with it, the reports, which hold every run.
    assert count() == len(in_table)
    assert count("--output", lake.url) == len(listed(lake))


def test_the_history_tables_ddl_is_the_reference_pages(tmp_path):
    from test_readme import table_sections
    import re
    lake = LocalLake(tmp_path / "lake")
    naslake("run", SENSOR_JOB, "--output", lake.url, *DECLARE, lake=lake.root)
    ddl = naslake("catalog", "show", "naslake_runs", "--ddl", "--catalog", f"local:{lake.root}").stdout
    ddl = re.sub(r"LOCATION 'file://[^']*/naslake_runs/v-[0-9a-z]+/'", "LOCATION 's3://LAKE/naslake_runs/v-RUNID/'", ddl)
    assert table_sections(shipped=False)["naslake_runs"][0][0] == ddl
