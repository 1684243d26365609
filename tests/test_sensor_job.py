"""The sensor CSV job end to end on the bundled samples: what it writes, read back by
DuckDB and pyarrow, against an independent reading of the same CSV files."""
import datetime as dt
import json
import math
import pathlib

import duckdb
import pyarrow.parquet as pq
import pytest

from athena_types import problems
from conftest import ROOT, SENSOR_JOB, arrow_table, duck_rows, naslake, run_job
from oracle import expected_readings

SAMPLES = ROOT / "samples" / "sensor"
READING_COLS = ["sensor_id", "metric_name", "reading_ts", "value", "unit", "quality", "source_key", "line_number", "dt"]


def micros(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        delta = v - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
        return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return v


def normalise(rows):
    return sorted((tuple(micros(v) for v in r) for r in rows), key=repr)


def test_sample_run_exits_3_because_samples_have_bad_lines(sample_lake):
    assert sample_lake.code == 3, sample_lake.stdout + sample_lake.stderr
    assert "succeeded_with_rejects" in sample_lake.stdout


def test_readings_match_an_independent_reading_of_the_csv(sample_lake):
    expected, _ = expected_readings(SAMPLES)
    got = normalise(duck_rows(sample_lake.lake, "sensor_readings", READING_COLS))
    assert len(got) == len(expected) > 300
    assert got == normalise(expected)


def test_every_bad_line_is_a_reject_with_its_reason(sample_lake):
    _, rejected = expected_readings(SAMPLES)
    rows = duck_rows(sample_lake.lake, "sensor_rejects", ["source_key", "line_number", "reason", "raw_line"], partitioned=False)
    assert {(k, n) for k, n, _, _ in rows} == rejected
    reasons = {(k, n): r for k, n, r, _ in rows}
    assert reasons[("long/line1-2024-03-01.csv", 11)] == "expected 5 fields, found 4"
    assert "'6l.9' is not a number" in reasons[("long/line1-2024-03-01.csv", 21)]
    assert "date out of range" in reasons[("long/line1-2024-03-01.csv", 31)]
    assert "column `timestamp` is empty but required" in reasons[("long/line1-2024-03-02.csv.gz", 14)]
    assert "not a finite number" in reasons[("long/line1-2024-03-02.csv.gz", 20)]
    assert "column `sensor_id` is empty but required" in reasons[("wide/line7-2024-03-01.csv", 9)]
    raw = {(k, n): r for k, n, _, r in rows}
    assert raw[("wide/line7-2024-03-01.csv", 17)] == "2024-03-01 10:00:00,line-7,seventy,101.2,2.1,good"


def test_run_report_counts_add_up(sample_lake):
    report = sample_lake.report
    t = report["totals"]
    for f in report["files"]:
        assert f["records"] == f["loaded"] + f["rejected"], f
    assert t["records_in"] == t["records_loaded"] + t["records_rejected"]
    assert t["files_seen"] == 3 and t["objects_skipped"] == 1  # README.txt is listed, not read
    rejects = duck_rows(sample_lake.lake, "sensor_rejects", ["count(*)"], partitioned=False)[0][0]
    assert rejects == t["rejects_rows"] == t["records_rejected"]
    # Every loaded line is in sensor_readings (once per line, several readings for wide lines).
    lines = duck_rows(sample_lake.lake, "sensor_readings", ["count(DISTINCT (source_key, line_number))"])[0][0]
    assert lines == t["records_loaded"]
    tables = {x["table"]: x for x in report["tables"]}
    assert tables["sensor_readings"]["rows_written"] == len(duck_rows(sample_lake.lake, "sensor_readings", ["1"]))


def test_duckdb_pyarrow_and_naslake_query_agree_on_every_table(sample_lake):
    lake = sample_lake.lake
    for table, partitioned in [("sensor_readings", True), ("sensor_rejects", False), ("sensor_anomalies", True)]:
        arrow = arrow_table(lake, table, partitioned)
        cols = arrow.column_names
        via_arrow = normalise([tuple(r[c] for c in cols) for r in arrow.to_pylist()])
        via_duck = normalise(duck_rows(lake, table, cols, partitioned))
        out = naslake("query", f"SELECT {', '.join(cols)} FROM {table}", "--catalog", f"local:{lake}", "--format", "json").stdout
        via_query = []
        for line in out.splitlines():
            obj = json.loads(line)
            row = []
            for c in cols:
                v = obj.get(c)
                if c in ("reading_ts",) and v is not None:
                    v = micros(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
                row.append(v)
            via_query.append(tuple(row))
        via_query = normalise(via_query)
        assert len(via_arrow) > 0, table
        assert via_arrow == via_duck == via_query, table


def test_anomalies_match_zscores_computed_by_duckdb(sample_lake):
    lake = sample_lake.lake
    con = duckdb.connect()
    expected = con.execute(f"""
        WITH r AS (SELECT * FROM read_parquet('{lake}/sensor_readings/**/*.parquet', hive_partitioning=true)),
        s AS (SELECT sensor_id, metric_name, avg(value) m, stddev_samp(value) sd FROM r WHERE value IS NOT NULL GROUP BY ALL)
        SELECT source_key, line_number, metric_name FROM r JOIN s USING (sensor_id, metric_name)
        WHERE sd > 0 AND abs((value - m) / sd) > 3.0 ORDER BY ALL""").fetchall()
    got = sorted(duck_rows(lake, "sensor_anomalies", ["source_key", "line_number", "metric_name"]))
    assert got == expected
    spike = duck_rows(lake, "sensor_anomalies", ["value", "zscore", "threshold", "mean", "stddev"])
    assert any(v == 95.5 for v, *_ in spike)
    for value, z, threshold, mean, sd in spike:
        assert threshold == 3.0 and abs(z) > 3.0
        assert math.isclose(z, (value - mean) / sd, rel_tol=1e-9)


def test_threshold_is_a_job_param(tmp_path):
    run = run_job(SENSOR_JOB, tmp_path / "lake", "--set", "params.zscore_threshold=2.0")
    low = duck_rows(run.lake, "sensor_anomalies", ["count(*)", "min(threshold)"])[0]
    assert low[1] == 2.0 and low[0] > 1


def test_parquet_files_are_athena_safe(sample_lake):
    run_id = sample_lake.report["run_id"]
    for table in ["sensor_readings", "sensor_rejects", "sensor_anomalies"]:
        entry = sample_lake.catalog_entry(table)
        columns = [(c["Name"], c["Type"]) for c in entry["TableInput"]["StorageDescriptor"]["Columns"]]
        files = list((sample_lake.lake / table).rglob("part-*.parquet"))
        assert files, table
        for f in files:
            # Athena's strict reading of each file against its catalog types.
            assert problems(f, columns) == []
            meta = pq.ParquetFile(f)
            for field in meta.schema_arrow:
                t = str(field.type)
                assert "uint" not in t and "view" not in t and "large" not in t, (f, field)
            comp = {meta.metadata.row_group(0).column(i).compression for i in range(meta.metadata.num_columns)}
            assert comp <= {"ZSTD", "SNAPPY"}, comp
        # Files sit in this run's version directory of each partition, which is the
        # partition's (or, unpartitioned, the table's) registered location.
        assert {f.parent.name for f in files} == {f"v-{run_id}"}
        if entry["TableInput"]["PartitionKeys"]:
            dirs = {f"{f.parent.parent.name}/{f.parent.name}" for f in files}
            assert dirs == {"dt=" + p["Values"][0] + f"/v-{run_id}" for p in entry["Partitions"]}
            for p in entry["Partitions"]:
                assert p["StorageDescriptor"]["Location"].endswith(f"/{table}/dt={p['Values'][0]}/v-{run_id}/")
        else:
            assert entry["TableInput"]["StorageDescriptor"]["Location"].endswith(f"/{table}/v-{run_id}/")


def test_a_type_mismatch_is_caught_by_the_athena_check(tmp_path):
    """The check above can fail: a file whose timestamp is nanoseconds, or whose
    column is an int where the catalog says bigint, is reported."""
    import pyarrow as pa
    f = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"ts": pa.array([1], pa.timestamp("ns")), "n": pa.array([1], pa.int32())}), f)
    found = problems(f, [("ts", "timestamp"), ("n", "bigint")])
    assert len(found) == 2, found


def test_an_encoding_athena_cannot_decode_is_caught(tmp_path):
    """The encoding check can fail too: BYTE_STREAM_SPLIT doubles are reported."""
    import pyarrow as pa
    f = tmp_path / "bss.parquet"
    pq.write_table(pa.table({"v": pa.array([1.5, 2.5])}), f, use_dictionary=False,
                   column_encoding={"v": "BYTE_STREAM_SPLIT"})
    found = problems(f, [("v", "double")])
    assert len(found) == 1 and "BYTE_STREAM_SPLIT" in found[0], found


def test_integers_and_timestamps_are_delta_encoded_and_strings_use_a_dictionary(sample_lake):
    """Line numbers and reading times climb in small steps: their pages are
    DELTA_BINARY_PACKED (never plain 8-byte values); repeating strings get a dictionary."""
    for f in (sample_lake.lake / "sensor_readings").rglob("part-*.parquet"):
        meta = pq.ParquetFile(f).metadata
        for rg in range(meta.num_row_groups):
            chunks = {meta.row_group(rg).column(i).path_in_schema: meta.row_group(rg).column(i)
                      for i in range(meta.num_columns)}
            for name in ("line_number", "reading_ts"):
                assert "DELTA_BINARY_PACKED" in chunks[name].encodings, (f, name, chunks[name].encodings)
                assert "PLAIN" not in chunks[name].encodings, (f, name, chunks[name].encodings)
            for name in ("sensor_id", "metric_name", "source_key"):
                assert chunks[name].has_dictionary_page, (f, name)


def test_rerun_replaces_instead_of_duplicating(tmp_path):
    lake = tmp_path / "lake"
    first = run_job(SENSOR_JOB, lake)
    before = sorted(duck_rows(lake, "sensor_readings", ["source_key", "line_number", "metric_name"]))
    second = run_job(SENSOR_JOB, lake)
    after = sorted(duck_rows(lake, "sensor_readings", ["source_key", "line_number", "metric_name"]))
    assert before == after
    assert second.report["run_id"] != first.report["run_id"]
    files = [p.name for p in (lake / "sensor_readings").rglob("*.parquet")]
    assert files and all(second.report["run_id"] in n for n in files)
    tables = {t["table"]: t for t in second.report["tables"]}
    assert tables["sensor_readings"]["files_removed"] == len(first.report["tables"][0]["files"])


def test_catalog_entries_are_glue_table_inputs(sample_lake):
    entry = sample_lake.catalog_entry("sensor_readings")
    ti = entry["TableInput"]
    assert ti["TableType"] == "EXTERNAL_TABLE"
    assert ti["Parameters"]["classification"] == "parquet"
    sd = ti["StorageDescriptor"]
    assert sd["SerdeInfo"]["SerializationLibrary"] == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert sd["InputFormat"].endswith("MapredParquetInputFormat")
    assert [c["Name"] for c in ti["PartitionKeys"]] == ["dt"]
    assert all(c.get("Comment") for c in sd["Columns"])
    assert {p["Values"][0] for p in entry["Partitions"]} == {"2024-03-01", "2024-03-02"}
    listed = naslake("catalog", "list", "--catalog", f"local:{sample_lake.lake}").stdout
    assert "naslake.sensor_readings\t2 partitions" in listed
    shown = json.loads(naslake("catalog", "show", "sensor_readings", "--catalog", f"local:{sample_lake.lake}").stdout)
    assert shown == entry


def test_query_output_formats(sample_lake):
    cat = f"local:{sample_lake.lake}"
    sql = "SELECT dt, count(*) AS n FROM sensor_readings GROUP BY dt ORDER BY dt"
    csv_out = naslake("query", sql, "--catalog", cat, "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "dt,n" and csv_out[1].startswith("2024-03-01,")
    table_out = naslake("query", sql, "--catalog", cat).stdout
    assert "| dt " in table_out and "2024-03-02" in table_out
    bad = naslake("query", "SELECT nope FROM sensor_readings", "--catalog", cat, check_codes=None)
    assert bad.code == 1 and "nope" in bad.stderr
