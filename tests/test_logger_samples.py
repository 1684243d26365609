"""The bundled logger samples (samples/loggers, scripts/make-logger-samples.py) run
through the shipped job (jobs/logger_readings.toml) give exactly what an independent
reading of the same bytes gives: every reading of logger_readings (logger, channel,
instant, value, unit, line) and every row of logger_rejects (file, line, reason).

The independent reading is tests/logger_files.py's oracle (Python's codecs, csv
module, datetime and zoneinfo), given the dialect each export is written in as this
file declares it; the job spec must declare the same. What each logger's channels
become (the unpivot of jobs/logger_readings.sql) is written down here too, and the
deliberately bad lines are the ones samples/README.md lists. One run of the job.
"""
import datetime as dt
import tomllib
import types

import pytest

from conftest import ROOT, duck_rows, run_job
from logger_files import PY_CODEC, Col, Dialect, Source, file_reports, read_expected

JOB = ROOT / "jobs" / "logger_readings.toml"
SAMPLES = ROOT / "samples" / "loggers"
UTC = dt.timezone.utc

# Each export's dialect and columns, as the files are written (scripts/make-logger-samples.py).
SOURCES = [
    Source("gl240", Dialect(encoding="shift_jis", skip_lines=5, skip_after_header=1, null_values=["", "+OVER"]), [
        Col("sample_no", "bigint", header="No.", nullable=False),
        Col("measured_at", "timestamp", nullable=False, from_=["日付", "時刻"],
            timestamp_format="%Y/%m/%d %H:%M:%S", time_zone="Asia/Tokyo"),
        Col("ch1_temp", "double", header="CH1 温度"),
        Col("ch2_humidity", "double", header="CH2 湿度"),
        Col("status", "string", header="状態"),
    ]),
    Source("eu", Dialect(encoding="windows-1252", delimiter=";", decimal=",", skip_lines=2,
                         null_values=["", "---"]), [
        Col("zeitstempel", "timestamp", header="Zeitstempel", nullable=False, timestamp_format="%d.%m.%Y %H:%M:%S",
            time_zone="Europe/Berlin", ambiguous="earliest"),
        Col("oil_temp", "double", header="Öltemperatur °C"),
        Col("pressure", "double", header="Druck mbar"),
    ]),
    Source("us", Dialect(comment="#"), [
        Col("logged_at", "timestamp", header="Date/Time", nullable=False, timestamp_format="%m/%d/%Y %I:%M:%S %p",
            time_zone="America/Chicago"),
        Col("zone1_temp", "double", header="Zone 1 (°F)"),
        Col("zone2_temp", "double", header="Zone 2 (°F)"),
    ]),
    Source("win", Dialect(encoding="utf-16le", delimiter="\t"), [
        Col("logged_at", "timestamp", header="Time", nullable=False, timestamp_format="iso8601",
            time_zone="Asia/Kolkata"),
        Col("vibration", "double", header="Vibration (mm/s)"),
        Col("spindle_rpm", "double", header="Spindle (rpm)"),
    ], suffixes=[".txt"]),
]

# Per source: the logger, its timestamp column, and its channels (channel, column, unit).
UNPIVOT = {
    "gl240": ("gl240-line3", "measured_at", [("ch1_temp", "ch1_temp", "degC"), ("ch2_humidity", "ch2_humidity", "%RH")]),
    "eu": ("press-07", "zeitstempel", [("oil_temp", "oil_temp", "degC"), ("pressure", "pressure", "mbar")]),
    "us": ("oven-2", "logged_at", [("zone1_temp", "zone1_temp", "degF"), ("zone2_temp", "zone2_temp", "degF")]),
    "win": ("mill-4", "logged_at", [("vibration", "vibration", "mm/s"), ("spindle_speed", "spindle_rpm", "rpm")]),
}

# The deliberately bad lines of samples/README.md: (file, line) -> reason fragments.
BAD_LINES = {
    ("gl240/line3-20241027.csv", 34): ["line has bytes that are not valid Shift_JIS"],
    ("eu/press-07_2024-10-27.csv", 27): ["column `pressure`", "6.012,5"],
    ("us/oven-2_2024-03-10.csv", 24): ["column `logged_at`", "does not exist in America/Chicago"],
    ("us/oven-2_2024-03-10.csv", 32): ["column `zone2_temp`", "34O.2"],
}


def oracle(src):
    """The oracle's reading of every file under the source's prefix."""
    out = []
    for path in sorted((SAMPLES / src.prefix).rglob("*")):
        if path.is_file() and path.name.lower().endswith(tuple(src.suffixes or [".csv", ".csv.gz"])):
            key = str(path.relative_to(SAMPLES))
            out.append(read_expected(path.read_bytes(), src.dialect, src.columns, key))
    assert out, f"no sample under {src.prefix}"
    return out


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    lake = tmp_path_factory.mktemp("loggers") / "lake"
    run = run_job(JOB, lake, check_codes=None)
    assert run.code == 3, f"exit {run.code}\n{run.stdout}\n{run.stderr}"  # 3: the bad lines are rejects
    return types.SimpleNamespace(run=run, expected={s.name: oracle(s) for s in SOURCES})


def test_the_job_declares_the_dialects_the_files_are_written_in():
    spec = tomllib.loads(JOB.read_text())
    assert sorted(spec["sources"]) == sorted(s.name for s in SOURCES)
    for src in SOURCES:
        got = spec["sources"][src.name]
        assert got["prefix"] == src.prefix
        assert got.get("suffixes") == src.suffixes
        assert got.get("csv", {}) == src.dialect.spec(), src.name
        assert got["columns"] == [c.spec() for c in src.columns], src.name


def test_every_reading_is_what_an_independent_reader_reads(samples):
    want = set()
    for src in SOURCES:
        logger, ts_col, channels = UNPIVOT[src.name]
        for e in samples.expected[src.name]:
            for line, row in e.rows.items():
                us = row[ts_col]
                day = (dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=us)).date().isoformat()
                for channel, column, unit in channels:
                    want.add((logger, channel, us, row[column], unit, e.key, line, day))
    rows = duck_rows(samples.run.lake, "logger_readings",
                     ["logger", "channel", "epoch_us(reading_ts)", "value", "unit", "source_key", "line_number", "dt"])
    got = set(rows)
    assert len(got) == len(rows), "a reading landed twice"
    assert got == want, (f"naslake only: {sorted(got - want, key=repr)[:8]}\n"
                         f"oracle only:  {sorted(want - got, key=repr)[:8]}")
    # The samples exercise what they say: NULL markers, two UTC dates per file, the
    # repeated October hour read as its first occurrence.
    assert sum(1 for r in rows if r[3] is None) == 3
    assert {r[7] for r in rows} == {"2024-03-10", "2024-10-26", "2024-10-27"}
    press = {r[6]: r[2] for r in rows if r[0] == "press-07" and r[1] == "oil_temp"}
    for first in range(13, 19):  # 02:00-02:50 written twice: lines 13-18, then 19-24
        assert press[first] == press[first + 6], first


def test_every_reject_is_a_bad_line_of_the_samples(samples):
    rejects = duck_rows(samples.run.lake, "logger_rejects", ["source", "source_key", "line_number", "reason", "raw_line"],
                        partitioned=False)
    got = {(key, line): (source, reason, raw) for source, key, line, reason, raw in rejects}
    assert len(got) == len(rejects)
    want = {}
    for src in SOURCES:
        for e in samples.expected[src.name]:
            assert e.file_error is None, e
            for line, rej, raw in e.rejects:
                want[(e.key, line)] = (src.name, rej, raw)
    # The oracle finds exactly the bad lines samples/README.md lists, and so does naslake.
    assert set(want) == set(BAD_LINES), sorted(want)
    assert set(got) == set(BAD_LINES), sorted(got)
    for k, (source, rej, raw) in want.items():
        got_source, reason, got_raw = got[k]
        assert got_source == source, k
        for fragment in [*rej.fragments, *BAD_LINES[k]]:
            assert fragment in reason, (k, reason, fragment)
        assert "\ufffd" not in got_raw, (k, got_raw)
        if raw is not None:
            assert got_raw.rstrip("\r\n") == raw, (k, got_raw, raw)
    assert got[("gl240/line3-20241027.csv", 34)][2] == "27,2024/10/27,11:20:00,79.1,\\x82,正常"


def test_the_run_report_counts_every_line(samples):
    reports = file_reports(samples.run)
    for src in SOURCES:
        for e in samples.expected[src.name]:
            f = reports[(src.name, e.key)]
            assert (f["records"], f["loaded"], f["rejected"]) == (e.records, len(e.rows), len(e.rejects)), f
            assert f.get("lines_skipped", 0) == e.lines_skipped, (f, e.lines_skipped)
            assert f.get("blank_lines", 0) == e.blank_lines, (f, e.blank_lines)
    totals = samples.run.report["totals"]
    assert totals["records_in"] == totals["records_loaded"] + totals["records_rejected"] == 121, totals
    assert totals["rejects_rows"] == len(BAD_LINES), totals


def readme_examples():
    """The example rows of README.md's "Reading logger exports": (line, the line as
    shown or "", channel, reading_ts, value, unit, dt), as written there."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Reading logger exports", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].isdigit():
            rows.append((int(cells[0]), cells[1].strip("`"), cells[2].strip("`"), *cells[3:]))
    return rows


def test_the_readme_shows_rows_the_job_writes(samples):
    examples = readme_examples()
    assert len(examples) >= 8, examples
    rows = duck_rows(samples.run.lake, "logger_readings",
                     ["channel", "line_number", "strftime(reading_ts, '%Y-%m-%dT%H:%M:%SZ')", "value", "unit", "dt",
                      "source_key"])
    # Each channel is one logger's, so (channel, line) names one reading.
    by_channel_line = {(r[0], r[1]): r[2:] for r in rows}
    encodings = {s.prefix: s.dialect.encoding or "utf-8" for s in SOURCES}
    for line, shown, channel, ts, value, unit, day in examples:
        got = by_channel_line.get((channel, line))
        assert got is not None, f"README shows {channel} line {line}, which the job did not write"
        got_ts, got_value, got_unit, got_day, key = got
        assert (got_ts, got_unit, got_day) == (ts, unit, day), (channel, line, got)
        assert (None if value == "NULL" else float(value)) == got_value, (channel, line, got)
        if shown:
            # The line as the README shows it is that line of the file (tabs as ␉).
            encoding = next(e for p, e in encodings.items() if key.startswith(p))
            data = (SAMPLES / key).read_bytes()
            # (The files carry deliberately bad bytes on other lines.)
            codec = "utf-16" if data[:2] == b"\xff\xfe" else PY_CODEC[encoding]
            text = data.decode(codec, errors="replace")
            assert text.splitlines()[line - 1] == shown.replace("␉", "\t"), (key, line)
