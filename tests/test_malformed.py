"""Input nobody should have to clean by hand: every malformed file or line ends up in
sensor_rejects with a reason, the rest still loads, and the counts add up."""
import gzip
import shutil

import pytest

from conftest import SENSOR_JOB, duck_rows, naslake, run_job

HEADER = "sensor_id,timestamp,value,metric_name,unit\n"
GOOD = "s1,2024-05-01T00:00:00Z,1.5,temperature,degC\n"


def corpus(root):
    """Writes the malformed corpus; returns {file: expected (line, reason fragment) rejects}."""
    d = root / "long"
    d.mkdir(parents=True)
    (root / "wide").mkdir()
    files = {
        "wrong_count.csv": (HEADER + GOOD + "s1,2024-05-01T00:01:00Z,1.6,temperature\n" + GOOD, [(3, "expected 5 fields, found 4")]),
        "bad_number.csv": (HEADER + "s1,2024-05-01T00:00:00Z,1.2.3,temperature,degC\n" + GOOD, [(2, "is not a number")]),
        "bad_timestamp.csv": (HEADER + "s1,2024-05-01T25:00:00Z,1,temperature,degC\n" + GOOD, [(2, "not a valid timestamp")]),
        "empty.csv": ("", [(None, "empty file")]),
        "header_only.csv": (HEADER, []),
        "bom_crlf.csv": ("\ufeff" + (HEADER + GOOD + GOOD).replace("\n", "\r\n"), []),
        "quoted.csv": (HEADER + '"s,1",2024-05-01T00:00:00Z,2,temperature,"deg\nC"\n' + GOOD, []),
        "reordered_header.csv": ("unit,metric_name,value,timestamp,sensor_id\ndegC,temperature,3,2024-05-01T00:00:00Z,s9\n", []),
        "wrong_header.csv": ("id,ts,val\n1,2,3\n", [(None, "header does not match source `long`")]),
        "unterminated_quote.csv": (HEADER + 's1,2024-05-01T00:00:00Z,1,"temperature,degC\n' + GOOD, [(2, "unterminated quoted field")]),
    }
    for name, (text, _) in files.items():
        (d / name).write_bytes(text.encode("utf-8"))
    expected = {f"long/{k}": v[1] for k, v in files.items()}
    # A line that is not UTF-8 in an otherwise good file.
    (d / "latin1_line.csv").write_bytes((HEADER + GOOD).encode() + "s2,2024-05-01T00:00:00Z,1,temp\xe9rature,degC\n".encode("latin-1") + GOOD.encode())
    expected["long/latin1_line.csv"] = [(3, "line has bytes that are not valid UTF-8")]
    # A header that is not UTF-8: the file is rejected whole.
    (d / "latin1_header.csv").write_bytes("sensor_id,timestamp,valu\xe9,metric_name,unit\n".encode("latin-1") + GOOD.encode())
    expected["long/latin1_header.csv"] = [(None, "header line is not valid UTF-8; set `csv.encoding`")]
    # UTF-16 with a byte order mark: the mark decides, whatever the source declares.
    (d / "utf16.csv").write_bytes((HEADER + GOOD).encode("utf-16"))
    expected["long/utf16.csv"] = []
    # UTF-16 without one is not text in the declared UTF-8.
    (d / "utf16_no_bom.csv").write_bytes((HEADER + GOOD).encode("utf-16-le"))
    expected["long/utf16_no_bom.csv"] = [(None, "binary content")]
    # Binary junk.
    (d / "junk.csv").write_bytes(bytes(range(256)) * 64)
    expected["long/junk.csv"] = [(None, "binary content")]
    # A 10 MB line between good ones: rejected, the good lines still load.
    (d / "huge_line.csv").write_bytes((HEADER + GOOD + "s1," + "x" * (10 << 20) + "\n" + GOOD).encode())
    expected["long/huge_line.csv"] = [(3, "longer than csv.max_record_bytes")]
    # gzip: a good one and a truncated one.
    (d / "good.csv.gz").write_bytes(gzip.compress((HEADER + GOOD * 3).encode()))
    expected["long/good.csv.gz"] = []
    blob = gzip.compress((HEADER + GOOD * 5000).encode())
    (d / "truncated.csv.gz").write_bytes(blob[: len(blob) // 2])
    expected["long/truncated.csv.gz"] = [(None, "corrupt")]
    # Not a CSV suffix: skipped, not rejected.
    (d / "notes.txt").write_text("hello")
    return expected


def test_malformed_corpus_gives_rejects_and_no_crash(tmp_path):
    inp = tmp_path / "in"
    expected = corpus(inp)
    run = run_job(SENSOR_JOB, tmp_path / "lake", "--input", inp)
    assert run.code == 3, run.stdout + run.stderr
    rejects = duck_rows(run.lake, "sensor_rejects", ["source_key", "line_number", "reason", "raw_line_bytes", "length(raw_line)"], partitioned=False)
    by_file = {}
    for key, line, reason, nbytes, nchars in rejects:
        by_file.setdefault(key, []).append((line, reason, nbytes, nchars))
    for key, want in expected.items():
        got = sorted(by_file.get(key, []), key=lambda r: (r[0] is not None, r[0] or 0))
        if key == "long/truncated.csv.gz":
            # Whatever decompressed whole loads; the corrupt rest is one reject.
            assert len(got) == 1 and "corrupt" in got[0][1], got
            continue
        assert len(got) == len(want), (key, got)
        for (line, reason, _, _), (want_line, fragment) in zip(got, want):
            assert line == want_line and fragment in reason, (key, line, reason)
    huge = by_file["long/huge_line.csv"][0]
    assert huge[2] > 10 << 20 and huge[3] <= 4096  # full length recorded, raw text capped

    report = run.report
    files = {f["key"]: f for f in report["files"]}
    for f in files.values():
        assert f["records"] == f["loaded"] + f["rejected"]
    assert "long/notes.txt" not in files
    assert files["long/header_only.csv"]["records"] == 0 and "file_error" not in files["long/header_only.csv"]
    assert files["long/bom_crlf.csv"]["loaded"] == 2
    assert files["long/huge_line.csv"]["loaded"] == 2
    assert files["long/truncated.csv.gz"]["loaded"] > 0
    readings = duck_rows(run.lake, "sensor_readings", ["source_key", "sensor_id", "unit"])
    assert ("long/quoted.csv", "s,1", "deg\nC") in readings
    assert ("long/reordered_header.csv", "s9", "degC") in readings
    loaded = duck_rows(run.lake, "sensor_readings", ["count(DISTINCT (source_key, line_number))"])[0][0]
    assert loaded == report["totals"]["records_loaded"]
    assert len(rejects) == report["totals"]["rejects_rows"]


def test_bad_spec_fails_before_work_naming_file_and_key(tmp_path):
    spec = tmp_path / "job.toml"
    text = SENSOR_JOB.read_text().replace('input = "../samples/sensor"', f'input = "{SENSOR_JOB.parent.parent / "samples/sensor"}"')
    text = text.replace("../schemas/", f"{SENSOR_JOB.parent.parent}/schemas/").replace('sql = "sensor_', f'sql = "{SENSOR_JOB.parent}/sensor_')
    spec.write_text(text.replace('prefix = "long/"', 'prefix = "long/"\nsufixes = [".csv"]'))
    run = naslake("run", spec, "--output", tmp_path / "lake", check_codes=None)
    assert run.code == 2
    assert str(spec) in run.stderr and "sufixes" in run.stderr and "suffixes" in run.stderr
    assert not (tmp_path / "lake").exists()
    bad_set = naslake("run", SENSOR_JOB, "--output", tmp_path / "lake", "--set", "tables.sensor_readings.mode=sideways", check_codes=None)
    assert bad_set.code == 2 and "sideways" in bad_set.stderr and "overwrite" in bad_set.stderr


def test_output_inside_input_is_refused(tmp_path):
    inp = tmp_path / "in"
    corpus(inp)
    run = naslake("run", SENSOR_JOB, "--input", inp, "--output", inp / "lake", check_codes=None)
    assert run.code == 2 and "read-only" in run.stderr
    assert not (inp / "lake").exists()


def test_failed_run_leaves_catalog_and_files_as_they_were(tmp_path):
    lake = tmp_path / "lake"
    run_job(SENSOR_JOB, lake)
    catalog_before = {p.name: p.read_text() for p in (lake / "_naslake" / "catalog" / "naslake").glob("*.json")}
    files_before = sorted(p.relative_to(lake) for p in lake.rglob("*.parquet"))
    # A job whose last table's SQL fails at run time, after the first table was
    # written: it plans (a SQL that does not is refused before any work), but puts a
    # NULL into the NOT NULL sensor_id when it runs.
    jobs = tmp_path / "jobs"
    shutil.copytree(SENSOR_JOB.parent, jobs)
    shutil.copytree(SENSOR_JOB.parent.parent / "schemas", tmp_path / "schemas")
    shutil.copytree(SENSOR_JOB.parent.parent / "samples", tmp_path / "samples")
    sql = (jobs / "sensor_anomalies.sql").read_text()
    assert "\nSELECT sensor_id, metric_name," in sql
    (jobs / "sensor_anomalies.sql").write_text(
        sql.replace("\nSELECT sensor_id, metric_name,", "\nSELECT CAST(NULL AS VARCHAR) AS sensor_id, metric_name,"))
    failed = naslake("run", jobs / "sensor_readings.toml", "--output", lake, check_codes=None)
    assert failed.code == 1, failed.stdout + failed.stderr
    assert '"table written","table":"sensor_readings"' in failed.stdout
    assert "failed" in failed.stdout
    catalog_after = {p.name: p.read_text() for p in (lake / "_naslake" / "catalog" / "naslake").glob("*.json")}
    assert catalog_after == catalog_before
    assert sorted(p.relative_to(lake) for p in lake.rglob("*.parquet")) == files_before


def test_memory_limit_setting_is_checked(tmp_path):
    bad = naslake("run", SENSOR_JOB, "--output", tmp_path / "lake", env={"NASLAKE_MEMORY_LIMIT": "lots"}, check_codes=None)
    assert bad.code == 2 and "NASLAKE_MEMORY_LIMIT=lots" in bad.stderr
    assert not (tmp_path / "lake").exists()  # rejected before any work
    # Streaming extraction and writing need little of it: a small limit still runs the job.
    ok = run_job(SENSOR_JOB, tmp_path / "lake2", env={"NASLAKE_MEMORY_LIMIT": "64 MiB"})
    assert ok.code == 3


def test_big_file_cut_into_chunks_matches_an_independent_reading(tmp_path):
    """A file several times the reader's 2 MiB chunk, with quoted line breaks and bad
    rows everywhere (so chunk cuts land next to them), plain and gzipped: every row
    and reject equals the Python csv module's reading of the same bytes."""
    import random
    from oracle import expected_readings

    rng = random.Random(3)
    inp = tmp_path / "in"
    (inp / "long").mkdir(parents=True)
    (inp / "wide").mkdir()
    lines = [HEADER.rstrip("\n")]
    for i in range(150_000):
        ts = f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}Z"
        kind = rng.random()
        if kind < 0.01:
            lines.append(f"s{i % 97},{ts},{i}.5,temperature,\"deg\nC, quoted\"")
        elif kind < 0.02:
            lines.append(f"s{i % 97},{ts},not-a-number,temperature,degC")
        elif kind < 0.025:
            lines.append(f"s{i % 97},{ts},1.0,temperature")
        else:
            lines.append(f"s{i % 97},{ts},{rng.uniform(-50, 50):.4f},temperature,degC")
    text = "\n".join(lines) + "\n"
    assert len(text) > 3 * (2 << 20)
    (inp / "long" / "big.csv").write_text(text)
    (inp / "long" / "big.csv.gz").write_bytes(gzip.compress(text.encode()))
    run = run_job(SENSOR_JOB, tmp_path / "lake", "--input", inp)
    assert run.code == 3, run.stderr
    expected, rejected = expected_readings(inp)
    cols = ["sensor_id", "metric_name", "epoch_us(reading_ts)", "value", "unit", "quality", "source_key", "line_number", "dt"]
    got = sorted(duck_rows(run.lake, "sensor_readings", cols), key=repr)
    assert len(got) == len(expected) > 150_000
    assert got == sorted(expected, key=repr)
    rej = {(k, n) for k, n in duck_rows(run.lake, "sensor_rejects", ["source_key", "line_number"], partitioned=False)}
    assert rej == rejected and len(rej) > 1000
