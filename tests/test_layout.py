"""File layout: whatever the order of the input, a run writes one file per
partition (the writer spills the rows of a partition whose file it closed to make
room, and writes the partition again as one file at its end), and loses or
duplicates no row doing so. Read back with DuckDB."""
import collections
import datetime
import pathlib
import random
import signal

import duckdb
import pytest

from conftest import SENSOR_JOB, run_job

HEADER = "sensor_id,timestamp,value,metric_name,unit\n"


def unordered_share(root, files, per_file, days, seed, by_sensor=False):
    """Readings at random times; with `by_sensor`, each file sorted by sensor and
    then time, as an export per sensor is: runs of one day, every day in each
    file."""
    rng = random.Random(seed)
    base = datetime.date(2020, 1, 1)
    share = root / "long"
    share.mkdir(parents=True)
    for f in range(files):
        rows = [(f"s-{rng.randrange(50 if not by_sensor else 3):02d}",
                 f"{base + datetime.timedelta(days=rng.randrange(days))}T"
                 f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
                 f"{rng.uniform(0, 100):.3f}")
                for _ in range(per_file)]
        if by_sensor:
            rows.sort()
        text = "".join(f"{s},{t},{v},temperature,degC\n" for s, t, v in rows)
        (share / f"f{f:04d}.csv").write_text(HEADER + text)
    return root


@pytest.mark.parametrize("writers", ["one", "per core"])
def test_unordered_input_gives_one_file_per_partition_and_every_row(tmp_path, writers):
    # The case: 2,000 readings over 254 days in unordered files (it gave
    # 552 files, and 1,777 for this seed, before). With a writer per core (what
    # inputs over 256 MiB get) each writer has files of most partitions, which
    # the run joins at the end.
    share = unordered_share(tmp_path / "share", files=50, per_file=40, days=254, seed=7)
    lake = tmp_path / "lake"
    env = {"NASLAKE_BYTES_PER_WRITER": "1"} if writers == "per core" else {}
    run = run_job(SENSOR_JOB, lake, "--input", share, env=env)
    assert ("files of one partition from several writers joined" in run.stdout + run.stderr) == (writers == "per core")
    files = collections.Counter(p.parent.parent.name for p in (lake / "sensor_readings").rglob("*.parquet"))
    assert files and max(files.values()) == 1, files.most_common(3)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    want = con.execute(f"""SELECT strftime(CAST(timestamp AS TIMESTAMPTZ), '%Y-%m-%d'), count(*)
        FROM read_csv('{share}/long/*.csv', header=true, columns={{'sensor_id': 'VARCHAR',
        'timestamp': 'VARCHAR', 'value': 'DOUBLE', 'metric_name': 'VARCHAR', 'unit': 'VARCHAR'}})
        GROUP BY 1 ORDER BY 1""").fetchall()
    got = con.execute(f"""SELECT dt, count(*) FROM read_parquet('{lake}/sensor_readings/**/*.parquet',
        hive_partitioning=true, hive_types_autocast=false) GROUP BY dt ORDER BY dt""").fetchall()
    assert got == want
    assert len(files) == len(want)
    # No row twice: every (file, line) once.
    total, distinct = con.execute(f"""SELECT count(*), count(DISTINCT (source_key, line_number))
        FROM read_parquet('{lake}/sensor_readings/**/*.parquet')""").fetchone()
    assert total == distinct == 2000


def test_a_run_killed_while_joining_leaves_the_catalog_and_the_next_run_cleans_up(tmp_path):
    """Killed right after the first partition's files were joined: nothing was
    registered; the next run writes one file per partition and every file left is
    one the catalog points at (the killed run's are gone)."""
    from lakes import LocalLake
    share = unordered_share(tmp_path / "share", files=50, per_file=40, days=254, seed=7)
    lake = LocalLake(tmp_path / "lake")
    several = {"NASLAKE_BYTES_PER_WRITER": "1"}
    killed = run_job(SENSOR_JOB, lake.root, "--input", share, check_codes=None,
                     env={**several, "NASLAKE_FAULT": "write.join:1"})
    assert killed.code == -signal.SIGKILL, killed.stderr[-2000:]
    assert lake.locations("sensor_readings") == []
    run_job(SENSOR_JOB, lake.root, "--input", share, env=several)
    readings = [pathlib.Path(p) for p in lake.all_data_files() if "/sensor_readings/" in p]
    files = collections.Counter(p.parent.parent.name for p in readings)
    assert files and max(files.values()) == 1, files.most_common(3)
    registered = set()
    for table in ("sensor_readings", "sensor_rejects", "sensor_anomalies"):
        for location, _ in lake.locations(table):
            registered.update(lake.files_at(location))
    assert set(lake.all_data_files()) == registered


@pytest.mark.parametrize("writers", ["one", "per core"])
def test_input_sorted_by_sensor_puts_every_reading_in_its_day(tmp_path, writers):
    # Each batch has runs of one day for every day (more than the 16 runs under
    # which the writer slices the batch): the rows are grouped run by run.
    share = unordered_share(tmp_path / "share", files=8, per_file=3000, days=60, seed=11,
                            by_sensor=True)
    lake = tmp_path / "lake"
    env = {"NASLAKE_BYTES_PER_WRITER": "1"} if writers == "per core" else {}
    run = run_job(SENSOR_JOB, lake, "--input", share,
                  env={**env, "NASLAKE_LOG": "warn,naslake=info,naslake::write=debug"})
    # Sixty days' files do not fit the writer's budget: rows were spilled and
    # their partitions written again at the end.
    assert "partitions that came back written as one file each" in run.stdout + run.stderr
    files = collections.Counter(p.parent.parent.name for p in (lake / "sensor_readings").rglob("*.parquet"))
    assert files and max(files.values()) == 1, files.most_common(3)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    want = con.execute(f"""SELECT strftime(CAST(timestamp AS TIMESTAMPTZ), '%Y-%m-%d'), sensor_id,
        strftime(CAST(timestamp AS TIMESTAMPTZ), '%H:%M'), value
        FROM read_csv('{share}/long/*.csv', header=true, columns={{'sensor_id': 'VARCHAR',
        'timestamp': 'VARCHAR', 'value': 'DOUBLE', 'metric_name': 'VARCHAR', 'unit': 'VARCHAR'}})
        ORDER BY ALL""").fetchall()
    got = con.execute(f"""SELECT dt, sensor_id, strftime(reading_ts AT TIME ZONE 'UTC', '%H:%M'), value
        FROM read_parquet('{lake}/sensor_readings/**/*.parquet', hive_partitioning=true,
        hive_types_autocast=false) ORDER BY ALL""").fetchall()
    assert len(want) == 8 * 3000
    assert got == want
    assert len(files) == len({row[0] for row in want})
