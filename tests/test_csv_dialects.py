"""CSV as data loggers write it (issue 25): encodings, device preambles, units rows,
comment lines, decimal commas, NULL markers, local times across DST changes, split
date and time columns, `date` columns, and `naslake sniff`.

Every file here is built byte by byte the way a logger writes it (tests/logger_files.py),
and every expectation comes from an independent reading of the same bytes with
Python's codecs, csv module, datetime and zoneinfo (`logger_files.read_expected`),
never from naslake's code. Runs are grouped to keep the file fast: one job reads
the four dialects of the issue and the keys around them (`dialects`), one the bad
input (`bad_input`), one the random dialects of the property test (`random_dialects`),
one the blocks `naslake sniff` wrote (`sniffed`); plan-time errors are one short run
each.
"""
import csv
import dataclasses
import datetime as dt
import random
import tomllib
import types

import pyarrow as pa
import pytest

from conftest import arrow_table, duck_rows, naslake, run_job
from logger_files import (
    BOM_OF, Col, Dialect, Expected, LoggerFile, Reject, Source, canonical,
    check_source, check_totals, encodable, is_plain_local, local_to_utc, micros, read_expected,
    rejects_rows, schema_toml, select_expr, table_rows, toml_value, write_job,
)

UTC = dt.timezone.utc


# =====================================================================================
# The four dialects of the issue
# =====================================================================================

# (a) A Japanese line: Shift_JIS, four lines of device information, the header, a
# units row, date and time in two columns, local time in Tokyo (no DST), and `+OVER`
# when a channel is out of range.
JP_DIALECT = Dialect(encoding="shift_jis", skip_lines=4, skip_after_header=1, null_values=["", "+OVER"])


def jp_columns(time_zone="Asia/Tokyo"):
    return [
        Col("sample_no", "bigint", header="No.", nullable=False),
        Col("measured_at", "timestamp", from_=["日付", "時刻"], timestamp_format="%Y/%m/%d %H:%M:%S",
            time_zone=time_zone, nullable=False),
        Col("ch1_temp", "double", header="CH1 温度"),
        Col("ch2_pressure", "double", header="ch2 圧力"),  # the file says "CH2 圧力": any case
        Col("ch3_state", "string", header="CH3 状態"),     # the file's cell is "CH3 状態 ": trimmed
    ]


def japanese_file():
    f = LoggerFile("LR8431_20240310.csv", "shift_jis")
    f.line('"ロガー","LR8431-30","Ver 2.10"')
    f.line('"機器名","ライン3 炉温"')
    f.line('"測定開始","2024/03/10 00:00:00"')
    f.line('"サンプリング","1 s"')
    f.row(["No.", "日付", "時刻", "CH1 温度", "CH2 圧力", "CH3 状態 "])
    f.row(["", "", "", "℃", "kPa", ""])
    readings = [
        ("2024/03/09", "23:59:59", "23.5", "101.3", "正常"),
        ("2024/03/10", "00:00:00", "+OVER", "101.3", "温度オーバー"),
        # ソ and 表 end in byte 0x5C, ポ in 0x7C ('|'): a byte-wise splitter trips on them.
        ("2024/03/10", "01:59:59", "24.25", "+OVER", "ソフト表示"),
        ("2024/03/10", "02:30:00", "+OVER", "99.875", "+OVER"),  # Chicago's gap; Tokyo has none
        ("2024/03/31", "02:30:00", "-5.5", "100", "ｵｰﾊﾞｰ"),      # Berlin's gap; half-width kana
        ("2024/10/27", "02:30:00", "0", "101.325", "ポンプ|停止"),
        ("2024/11/03", "01:30:00", "+OVER", "102", "正常"),
        ("2024/12/31", "23:59:59", "-0.5", "101", "年末 ℃ 確認"),
    ]
    for n, r in enumerate(readings, 1):
        f.row([str(n), *r])
    return f


# (b) A European line: windows-1252, `;`, decimal commas, two preamble lines and a
# units row, `dd.mm.yyyy HH:MM:SS` in Europe/Berlin over both DST changes of 2024.
EU_DIALECT = Dialect(encoding="windows-1252", delimiter=";", decimal=",", skip_lines=2, skip_after_header=1,
                     null_values=["", "---"])


def eu_columns(ambiguous=None, time_zone="Europe/Berlin"):
    return [
        Col("zeitstempel", "timestamp", header="Zeitstempel", timestamp_format="%d.%m.%Y %H:%M:%S",
            time_zone=time_zone, ambiguous=ambiguous, nullable=False),
        Col("temperatur_c", "double", header="Temperatur °C"),
        Col("druck_hpa", "double", header="Druck (hPa)"),
        Col("zaehler", "bigint", header="ZÄHLER"),  # the file says "Zähler": Unicode lower case
        Col("bemerkung", "string", header="Bemerkung"),
    ]


def european_file():
    f = LoggerFile("Messung_2024.csv", "windows-1252", delimiter=";")
    f.line("Messprotokoll Anlage Süd;Linie 2")
    f.line("Gerät: Datenlogger DL-200;Seriennr. 4711")
    f.row(["Zeitstempel", "Temperatur °C", "Druck (hPa)", "Zähler", "Bemerkung"])
    f.row(["dd.mm.yyyy hh:mm:ss", "°C", "hPa", "", ""])
    readings = [
        ("15.01.2024 12:00:00", "-3,5", "1013,25", "Frost – Ölstand prüfen"),
        # DST starts on 31 March 2024 at 02:00 CET: 02:00-02:59 do not exist.
        ("31.03.2024 01:59:59", "12,5", "---", "Frühling"),
        ("31.03.2024 02:00:00", "12,75", "1012", "Lücke"),
        ("31.03.2024 02:30:00", "13", "1011,5", "Lücke"),
        ("31.03.2024 03:00:00", "13,25", "---", "Sommerzeit"),
        ("15.07.2024 14:00:00", "31,25", "1009,5", "Hitze; Lüfter an"),
        # DST ends on 27 October 2024 at 03:00 CEST: 02:00-02:59 happen twice, and the
        # logger writes them twice.
        ("27.10.2024 01:59:59", "9,5", "1020", "Herbst"),
        ("27.10.2024 02:00:00", "9,25", "1020", "erste Stunde"),
        ("27.10.2024 02:30:00", "9", "---", "erste Stunde"),
        ("27.10.2024 02:00:00", "8,75", "1021", "zweite Stunde"),
        ("27.10.2024 02:30:00", "8,5", "1021", "zweite Stunde"),
        ("27.10.2024 03:00:00", "8,25", "1021", "Winterzeit"),
        ("31.12.2024 23:59:59", "0,0", "1000", 'Silvester "Feuerwerk" 5 €'),
    ]
    for n, (ts, temp, druck, note) in enumerate(readings, 1):
        f.row([ts, temp, druck, str(n), note])
    return f


# (c) A US export: UTF-8 with a BOM (Excel's "CSV UTF-8"), 12-hour clock,
# America/Chicago over both DST changes of 2024.
US_PATTERN = "%m/%d/%Y %I:%M:%S %p"


def us_columns(ambiguous=None, time_zone="America/Chicago"):
    return [
        Col("logged_at", "timestamp", header="Timestamp", timestamp_format=US_PATTERN, time_zone=time_zone,
            ambiguous=ambiguous, nullable=False),
        Col("temp_f", "double", header="Temp (°F)"),
        Col("reading_count", "bigint", header="Count"),
        Col("operator", "string", header="Operator"),
    ]


def us_file():
    f = LoggerFile("TempLog_export.csv", "utf-8", bom=True, newline="\n")
    f.row(["Timestamp", "Temp (°F)", "Count", "Operator"])
    readings = [
        ("3/9/2024 11:59:59 PM", "68.5", "J. Smith"),
        ("3/10/2024 12:00:00 AM", "68.25", ""),  # midnight
        ("3/10/2024 1:59:59 AM", "", "O'Brien"),
        # DST starts on 10 March 2024 at 2:00 AM CST: 2:00-2:59 do not exist.
        ("3/10/2024 2:00:00 AM", "67", "Nuñez, R."),
        ("3/10/2024 2:30:00 AM", "67.5", "Nuñez, R."),
        ("3/10/2024 3:00:00 AM", "66.75", "José"),
        ("3/10/2024 12:30:00 PM", "71", "J. Smith"),  # half past noon
        ("3/15/2024 8:05:00 AM", "-4.0", "Zoë"),
        ("07/04/2024 06:00:00 PM", "88.5", "July 4th"),  # zero-padded
        # DST ends on 3 November 2024 at 2:00 AM CDT: 1:00-1:59 happen twice.
        ("11/3/2024 12:59:59 AM", "50", "night shift"),
        ("11/3/2024 1:00:00 AM", "50.5", "night shift"),
        ("11/3/2024 1:30:00 AM", "51", "night shift"),
        ("11/3/2024 1:00:00 AM", "49.5", "night shift"),
        ("11/3/2024 1:30:00 AM", "49", "night shift"),
        ("11/3/2024 2:00:00 AM", "48.5", "night shift"),
    ]
    for n, (ts, temp, who) in enumerate(readings, 1):
        f.row([ts, temp, str(n), who])
    return f


# (d) A Windows export: UTF-16 with a BOM (what str.encode("utf-16") writes), tabs, CRLF.
def win_columns():
    return [
        Col("logged_at", "timestamp", header="Time"),
        Col("sensor", "string", header="Sensor", nullable=False),
        Col("value", "double", header="Value"),
        Col("note", "string", header="Note"),
    ]


def windows_file(encoding):
    f = LoggerFile("export.txt", encoding, bom=True, delimiter="\t")
    f.row(["Time", "Sensor", "Value", "Note"])
    for r in [
        ("2024-03-10 01:59:59", "S-01", "1.5", "ok"),
        ("2024-03-10T02:30:00.250", "S-02", "-0.125", "Ω 日本 ä"),
        ("2024-03-10 03:00:00", "S-03", "", "𠮷野家 😀"),  # surrogate pairs in UTF-16
        ("2024-11-03 01:30:00", "S-01", "2.5e3", "tab\there\nand a line break"),
        ("2024-11-03 01:30:00.5", "S-02", "1000000", ""),
        ("2024-12-31T23:59:59.999999", "S-03", "-0", "Ende"),
    ]:
        f.row(r)
    return f


# --- the keys around them ---------------------------------------------------------------

def offsets_source():
    """Values with an offset: the offset wins over time_zone, even for a local time
    that would not exist or would be ambiguous there (and ambiguous = "reject")."""
    f = LoggerFile("offsets.csv", newline="\n")
    f.row(["iso_at", "pattern_at", "label"])
    for r in [
        ("2024-07-01T12:00:00+02:00", "01.07.2024 12:00:00 +0200", "offset east"),
        ("2024-07-01T12:00:00Z", "31.03.2024 02:30:00 +0100", "Z; Berlin gap time with an offset"),
        ("2024-07-01 12:00:00", "27.10.2024 02:30:00 +0200", "Chicago summer time; first 02:30 in Berlin"),
        ("2024-03-10T02:30:00-06:00", "27.10.2024 02:30:00 +0100", "Chicago gap time with an offset"),
        ("2024-11-03T01:30:00-05:00", "15.01.2024 08:00:00 -0330", "first 01:30 in Chicago"),
        ("2024-11-03T01:30:00-06:00", "15.01.2024 08:00:00 +0000", "second 01:30 in Chicago"),
        ("1720000000000", "01.01.2024 00:00:00 +1400", "epoch milliseconds are instants"),
        ("2024-11-03T01:30:00", "01.07.2024 12:00:00 +0200", "no offset, ambiguous: rejected"),
        ("2024-03-10T02:30:00", "01.07.2024 12:00:00 +0200", "no offset, in the gap: rejected"),
    ]:
        f.row(r)
    return Source("offsets", Dialect(), [
        Col("iso_at", "timestamp", time_zone="America/Chicago", ambiguous="reject"),
        Col("pattern_at", "timestamp", timestamp_format="%d.%m.%Y %H:%M:%S %z", time_zone="Europe/Berlin",
            ambiguous="reject"),
        Col("label", "string"),
    ], [f])


COMMENT_COLUMNS = [Col("id", "bigint", nullable=False), Col("reading", "double"), Col("note", "string")]


def commented_sources():
    """Comment lines in the preamble, between rows and at the end; a blank line (a
    `blank_lines` note, not `lines_skipped`); a quoted field holding `#` and a line break."""
    f = LoggerFile("log.csv", newline="\n")
    f.line("# exported by LoggerSoft 5.1")  # in the preamble: skip_lines counts it
    f.line("Device,DL-7")
    f.line("# channel setup follows")
    f.row(["id", "reading", "note"])
    f.row(["1", "1.5", "first"])
    f.line("# paused")
    f.line("# resumed")
    f.row(["2", "2.5", "#2 is quoted, so not a comment"])
    f.blank()
    f.row(["3", "3.5", "multi\nline"])
    f.line("#4,4.5,a row commented out")
    f.row(["5", "5.5", "last"])
    f.line("# end of file")
    hash_source = Source("commented", Dialect(comment="#", skip_lines=3), COMMENT_COLUMNS, [f])

    g = LoggerFile("log.csv", newline="\r\n")
    g.line("// LoggerSoft export: a comment before the header, no preamble")
    g.row(["note", "id", "reading"])
    g.row(["a", "1", "1.5"])
    g.row(["/ one slash is data", "2", "2.5"])
    g.line("// two are a comment")
    g.row(["x", "3", "3.5"])
    return [hash_source, Source("commented2", Dialect(comment="//"), COMMENT_COLUMNS, [g])]


def dates_source():
    f = LoggerFile("days.csv", newline="\n")
    f.row(["Tag", "iso_day", "value"])
    for r in [("29.02.2024", "2024-02-29", "1"), ("31.12.1999", "1999-12-31", "2"), ("01.01.2000", "2000-01-01", "3"),
              ("", "", "4"),
              ("31.02.2024", "2024-03-01", "5"),   # no 31 February: rejected
              ("15.06.2024", "2024/06/15", "6")]:  # not %Y-%m-%d: rejected
        f.row(r)
    return Source("dates", Dialect(), [
        Col("day", "date", header="Tag", date_format="%d.%m.%Y"),
        Col("iso_day", "date"),
        Col("value", "double"),
    ], [f])


def null_sources():
    """NULL markers in every type of column, trimmed; one in a `nullable = false`
    column is a reject; a list without "" makes empty cells values, not NULLs."""
    f = LoggerFile("nulls.csv", newline="\n")
    f.row(["id", "x", "n", "s", "at", "ok"])
    for r in [
        ("1", "1.5", "10", "text", "2024-05-01T00:00:00Z", "true"),
        ("2", "NaN", "---", "---", "---", "+OVER"),
        ("3", " NaN ", "  +OVER ", "nan", "+OVER", "NaN"),  # markers match exactly, after trimming
        ("4", "", "", "", "", ""),
        ("NaN", "1", "2", "s", "2024-05-01T00:00:00Z", "false"),  # id is required: rejected
        ("6", "-0.5", "+OVER", "-- -", "2024-05-01 01:00:00", "yes"),
        ("---", "1", "1", "x", "", "no"),  # rejected
        ("8", "1", "1", " +OVER ", "", "no"),
    ]:
        f.row(r)
    nulls = Source("nulls", Dialect(null_values=["", "NaN", "---", "+OVER"]), [
        Col("id", "bigint", nullable=False), Col("x", "double"), Col("n", "bigint"), Col("s", "string"),
        Col("at", "timestamp"), Col("ok", "boolean"),
    ], [f])

    g = LoggerFile("nulls.csv", newline="\n")
    g.row(["id", "x", "s"])
    for r in [("1", "NaN", "NaN"), ("2", "2.5", ""), ("3", "", "x"), ("4", "4.5", "ok")]:
        g.row(r)
    g.raw('5,5.5,""')
    replaced = Source("nulls_replace", Dialect(null_values=["NaN"]),
                      [Col("id", "bigint", nullable=False), Col("x", "double"), Col("s", "string")], [g])
    return [nulls, replaced]


def decimals_source():
    """Decimal commas: a "." in a double cell is rejected (no thousands grouping read
    as a decimal point)."""
    f = LoggerFile("werte.csv", "windows-1252", delimiter=";")
    f.row(["id", "wert"])
    for r in [("1", "1,5"), ("2", "1.234,5"), ("3", "-0,25"), ("4", "1.5"), ("5", "  7,0 "), ("6", "1000")]:
        f.row(r)
    return Source("decimals", Dialect(encoding="windows-1252", delimiter=";", decimal=","),
                  [Col("id", "bigint", nullable=False), Col("wert", "double")], [f])


def dialect_sources():
    sources = [Source("jp", JP_DIALECT, jp_columns(), [japanese_file()])]
    for policy in ("earliest", "latest", "reject"):
        # "earliest" is the default: that source leaves `ambiguous` out.
        amb = None if policy == "earliest" else policy
        sources.append(Source(f"eu_{policy}", EU_DIALECT, eu_columns(amb), [european_file()]))
        sources.append(Source(f"us_{policy}", Dialect(), us_columns(amb), [us_file()]))
    sources.append(Source("win_le", Dialect(encoding="utf-16le", delimiter="\t"), win_columns(),
                          [windows_file("utf-16le")], suffixes=[".txt"]))
    # A UTF-16BE file with its BOM, where the spec says UTF-8: the BOM decides.
    sources.append(Source("win_be", Dialect(encoding="utf-8", delimiter="\t"), win_columns(),
                          [windows_file("utf-16be")], suffixes=[".txt"]))
    sources += [offsets_source(), *commented_sources(), dates_source(), *null_sources(), decimals_source()]
    return sources


@pytest.fixture(scope="module")
def dialects(tmp_path_factory):
    """One run of a job reading every source above."""
    root = tmp_path_factory.mktemp("dialects")
    sources = dialect_sources()
    job = write_job(root / "job", root / "in", sources)
    run = run_job(job, root / "lake", check_codes=None)
    assert run.code == 3, f"exit {run.code}\n{run.stdout}\n{run.stderr}"  # 3: some lines are rejects
    return types.SimpleNamespace(run=run, sources={s.name: s for s in sources}, rejects=rejects_rows(run.lake))


@pytest.mark.parametrize("name", [s.name for s in dialect_sources()])
def test_source_loads_what_an_independent_reader_reads(dialects, name):
    """Every row (every column, at its physical line), every reject (line, reason,
    raw_line) and every file's counts (records = loaded + rejected, lines_skipped,
    blank_lines) equal the oracle's reading of the same bytes."""
    check_source(dialects.run, dialects.sources[name], all_rejects=dialects.rejects)


def _rejects_of(dialects, source):
    return {line: reason for src, _, line, reason, _ in dialects.rejects if src == source}


def test_japanese_logger_in_tokyo_time(dialects):
    """Shift_JIS, preamble and units row skipped, Date + Time joined, Asia/Tokyo (no
    DST: every instant is the wall time less nine hours), `+OVER` NULL in a double
    and a string column."""
    src = dialects.sources["jp"]
    f = src.files[0]
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    assert _rejects_of(dialects, "jp") == {}
    assert sorted(line for _, line in rows) == sorted(f.records)[2:]  # all but the header and units row
    for line, (n, date, time, temp, pressure, state) in list(f.records.items())[2:]:
        row = rows[(src.prefix + f.name, line)]
        wall = dt.datetime.strptime(f"{date} {time}", "%Y/%m/%d %H:%M:%S")
        assert row["measured_at"] == micros(wall.replace(tzinfo=UTC) - dt.timedelta(hours=9)), (line, row)
        assert row["sample_no"] == int(n)
        assert row["ch1_temp"] == (None if temp == "+OVER" else float(temp))
        assert row["ch2_pressure"] == (None if pressure == "+OVER" else float(pressure))
        assert row["ch3_state"] == (None if state == "+OVER" else state)


def _dst_check(dialects, source, fmt, zone, gap_day, repeat_day, repeated_hour, summer_offset, policy):
    """The rows of a file over both DST changes: wall times in the spring gap (02:00 to
    02:59) are rejects naming the zone; those in the hour repeated in autumn are the
    summer-time instant (earliest), the winter-time one an hour later (latest) or
    rejects naming the zone (reject); every other row loads at the oracle's instant.
    `summer_offset` is the zone's UTC offset in hours on summer time."""
    src = dialects.sources[source]
    f = src.files[0]
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    rejects = _rejects_of(dialects, source)
    ts_col = src.columns[0].name
    data_lines = [ln for ln, cells in f.records.items() if _parses(cells[0], fmt)]
    assert len(data_lines) > 10
    for line in data_lines:
        wall = dt.datetime.strptime(f.records[line][0], fmt)
        key = (src.prefix + f.name, line)
        in_gap = wall.date() == gap_day and wall.hour == 2
        repeated = wall.date() == repeat_day and wall.hour == repeated_hour
        if in_gap:
            assert key not in rows and f"does not exist in {zone}" in rejects.get(line, ""), (line, rejects.get(line))
        elif repeated and policy == "reject":
            assert key not in rows and f"is ambiguous in {zone}" in rejects.get(line, ""), (line, rejects.get(line))
        else:
            assert line not in rejects, (line, rejects[line])
            if repeated:
                hours = summer_offset if policy == "earliest" else summer_offset - 1
                assert rows[key][ts_col] == micros(wall.replace(tzinfo=UTC) - dt.timedelta(hours=hours)), (line, policy)
            else:
                assert rows[key][ts_col] == local_to_utc(wall, zone), line


def _parses(text, fmt):
    try:
        dt.datetime.strptime(text, fmt)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("policy", ["earliest", "latest", "reject"])
def test_berlin_local_times_over_both_dst_changes(dialects, policy):
    _dst_check(dialects, f"eu_{policy}", "%d.%m.%Y %H:%M:%S", "Europe/Berlin", dt.date(2024, 3, 31),
               dt.date(2024, 10, 27), 2, 2, policy)


@pytest.mark.parametrize("policy", ["earliest", "latest", "reject"])
def test_chicago_12_hour_clock_over_both_dst_changes(dialects, policy):
    _dst_check(dialects, f"us_{policy}", US_PATTERN, "America/Chicago", dt.date(2024, 3, 10),
               dt.date(2024, 11, 3), 1, -5, policy)


def test_european_decimal_commas_and_strings(dialects):
    """windows-1252 strings (ü, ö, –, €, quotes) arrive as the text they are; decimal
    commas are numbers; `---` is NULL."""
    src = dialects.sources["eu_earliest"]
    f = src.files[0]
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    notes = {r["bemerkung"] for r in rows.values()}
    assert {"Frost – Ölstand prüfen", 'Silvester "Feuerwerk" 5 €', "Hitze; Lüfter an"} <= notes
    for line, (ts, temp, druck, n, note) in list(f.records.items())[2:]:
        row = rows.get((src.prefix + f.name, line))
        if row:
            assert row["temperatur_c"] == float(temp.replace(",", "."))
            assert row["druck_hpa"] == (None if druck == "---" else float(druck.replace(",", ".")))
            assert row["zaehler"] == int(n)


@pytest.mark.parametrize("name", ["win_le", "win_be"])
def test_windows_utf16_export(dialects, name):
    """UTF-16 with its BOM (little-endian as Windows writes it; big-endian where the spec
    says utf-8: the BOM wins), tabs, characters outside the BMP."""
    src = dialects.sources[name]
    f = src.files[0]
    assert f.data.startswith(BOM_OF[f.encoding])
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    assert _rejects_of(dialects, name) == {}
    got = {line: (r["sensor"], r["note"]) for (_, line), r in rows.items()}
    assert got == {line: (cells[1], cells[3] or None) for line, cells in list(f.records.items())[1:]}


def test_offset_in_the_value_wins_over_time_zone(dialects):
    src = dialects.sources["offsets"]
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    by_label = {r["label"]: r for r in rows.values()}
    # Independent of the oracle: an offset in the text gives the instant directly.
    assert by_label["offset east"]["iso_at"] == micros(dt.datetime(2024, 7, 1, 10, tzinfo=UTC))
    assert by_label["Chicago gap time with an offset"]["iso_at"] == micros(dt.datetime(2024, 3, 10, 8, 30, tzinfo=UTC))
    assert by_label["Z; Berlin gap time with an offset"]["pattern_at"] == micros(dt.datetime(2024, 3, 31, 1, 30, tzinfo=UTC))
    first, second = by_label["first 01:30 in Chicago"], by_label["second 01:30 in Chicago"]
    assert second["iso_at"] - first["iso_at"] == 3_600_000_000
    # The two values without an offset fall into Chicago's gap and repeated hour.
    rejects = sorted(_rejects_of(dialects, "offsets").values())
    assert len(rejects) == 2, rejects
    assert any("does not exist in America/Chicago" in r for r in rejects), rejects
    assert any("is ambiguous in America/Chicago" in r for r in rejects), rejects


def test_comment_lines_are_skipped_counted_and_keep_line_numbers(dialects):
    src = dialects.sources["commented"]
    f = src.files[0]
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    ids = {line: r["id"] for (_, line), r in rows.items()}
    # Each row keeps the physical line it is on in the file.
    assert ids == {line: int(cells[0]) for line, cells in f.records.items() if cells[0] != "id"}
    assert ids[max(ids)] == 5 and "#2 is quoted, so not a comment" in {r["note"] for r in rows.values()}
    report = {(x["source"], x["key"]): x for x in dialects.run.report["files"]}
    entry = report[("commented", "commented/log.csv")]
    comment_lines = sum(1 for ln in f.data.decode().split("\n") if ln.startswith("#"))
    # Skipped: the comment lines and the one preamble line that is not a comment.
    assert entry.get("lines_skipped") == comment_lines + 1 and entry.get("blank_lines") == 1, entry
    assert entry["rejected"] == 0 and entry["records"] == len(ids)


def test_date_columns_read_back_as_dates(dialects):
    src = dialects.sources["dates"]
    table = arrow_table(dialects.run.lake, src.table, partitioned=False)
    assert table.schema.field("day").type == pa.date32()
    assert table.schema.field("iso_day").type == pa.date32()
    rows = table_rows(dialects.run.lake, src.table, src.columns)
    assert {r["day"] for r in rows.values()} == {dt.date(2024, 2, 29), dt.date(1999, 12, 31), dt.date(2000, 1, 1), None}
    assert all(r["day"] == r["iso_day"] for r in rows.values())
    bad = [line for line, cells in src.files[0].records.items() if cells[0] == "31.02.2024" or cells[1] == "2024/06/15"]
    assert sorted(_rejects_of(dialects, "dates")) == bad and len(bad) == 2


def test_null_marker_in_a_required_column_is_a_reject(dialects):
    rejects = _rejects_of(dialects, "nulls")
    assert len(rejects) == 2 and all("`id`" in r for r in rejects.values()), rejects
    rows = table_rows(dialects.run.lake, "t_nulls", dialects.sources["nulls"].columns)
    assert {r["s"] for r in rows.values()} == {"text", None, "nan", "-- -"}
    replaced = table_rows(dialects.run.lake, "t_nulls_replace", dialects.sources["nulls_replace"].columns)
    # Without "" in the list an empty string cell is an empty string.
    assert sorted(r["s"] for r in replaced.values() if r["s"] is not None) == ["", "", "ok"]


def test_tables_have_the_declared_parquet_types(dialects):
    want = {"string": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "boolean": pa.bool_(),
            "date": pa.date32()}
    for src in dialects.sources.values():
        schema = arrow_table(dialects.run.lake, src.table, partitioned=False).schema
        for c in src.columns:
            t = schema.field(c.name).type
            if c.type == "timestamp":
                assert pa.types.is_timestamp(t) and t.unit == "us" and t.tz in ("UTC", "+00:00"), (src.name, c.name, t)
            else:
                assert t == want[c.type] or (c.type == "string" and t == pa.large_string()), (src.name, c.name, t)


def test_dialect_run_counts_add_up(dialects):
    check_totals(dialects.run, dialects.sources.values())


# =====================================================================================
# Bytes that do not decode, files in the wrong encoding, and other bad input
# =====================================================================================

BAD_COLUMNS = [Col("sample_no", "bigint", nullable=False), Col("label", "string"), Col("value", "double")]

# Per encoding: a good label in its script, and lines with bytes that do not decode
# (each a lead byte followed by ASCII, or a byte that starts nothing; Python's codec
# and the WHATWG decoder agree on all of them).
UNDECODABLE = {
    "shift_jis": ("温度ソ表", [["2,", b"\xfc", ",2.5"], ["4,ok", b"\x81", ",4.5"], ["5,x,5.5", b"\x81"]]),
    "utf-8": ("café ☕", [["2,caf", b"\xe9", ",2.5"], ["4,", b"\xe2\x82", ",4.5"], ["5,", b"\xc0\xaf", ",5.5"]]),
    "utf-16le": ("Ω 𠮷", [["2,a", b"\x00\xd8", ",2.5"], ["4,", b"\x00\xdc", "b,4.5"]]),
    "gb18030": ("温度 测试", [["2,", b"\x81", ",2.5"], ["4,ok", b"\xff", ",4.5"]]),
    "euc-kr": ("온도 압력", [["2,", b"\xb0", ",2.5"], ["4,", b"\xff", ",4.5"]]),
}


def undecodable_source(encoding):
    label, bad_lines = UNDECODABLE[encoding]
    f = LoggerFile(f"{encoding}.csv", encoding, bom=encoding == "utf-16le")
    f.row(["sample_no", "label", "value"])
    f.row(["1", label, "1.5"])
    for k, parts in enumerate(bad_lines):
        f.raw(*parts)
        f.row([str(10 + k), f"{label} {k}", f"{k}.25"])
    f.row(["99", label, "9.5"])
    return Source("bad_" + encoding.replace("-", "_"), Dialect(encoding=encoding), BAD_COLUMNS, [f])


def bad_input_sources():
    sources = [undecodable_source(e) for e in UNDECODABLE]

    # A header that does not decode: the file is rejected whole.
    h = LoggerFile("bad_header.csv", "shift_jis")
    h.raw("sample_no,label", b"\xfc", ",value")
    h.row(["1", "温度", "1.5"])
    sources.append(Source("bad_header", Dialect(encoding="shift_jis"), BAD_COLUMNS, [h]))

    # Shift_JIS bytes in a file read as UTF-8: its non-ASCII lines are rejects.
    m = LoggerFile("mislabeled.csv", "shift_jis")
    for r in [("sample_no", "label", "value"), ("1", "abc", "1.5"), ("2", "温度", "2.5"), ("3", "ｱｲｳ", "3.5"),
              ("4", "ok", "4.5")]:
        m.row(r)
    sources.append(Source("sjis_as_utf8", Dialect(), BAD_COLUMNS, [m]))

    # A windows-1252 file declared UTF-16LE (no BOM to correct it): nothing reads as
    # a header, so the file is rejected whole and nothing is lost.
    w = LoggerFile("falsch.csv", "windows-1252", delimiter=";")
    for r in [("Zeit", "Wert", "Bemerkung"), ("01.02.2024 10:00", "1,5", "Grüße"), ("01.02.2024 10:01", "1,75", "Süß")]:
        w.row(r)
    sources.append(Source("cp1252_as_utf16", Dialect(encoding="utf-16le", delimiter=";"),
                          [Col("zeit", "string"), Col("wert", "string"), Col("bemerkung", "string")], [w]))

    # A pattern that matches no value: every row a reject with its reason.
    p = LoggerFile("iso.csv", newline="\n")
    p.row(["reading_time", "value"])
    for k in range(5):
        p.row([f"2024-03-10T0{k}:00:00", f"{k}.5"])
    sources.append(Source("no_match", Dialect(), [
        Col("reading_time", "timestamp", timestamp_format="%Y/%m/%d %H:%M:%S"), Col("value", "double")], [p]))

    # `from` naming a header one file lacks: that file is rejected whole, the other loads.
    good = LoggerFile("a_good.csv", newline="\n")
    bad = LoggerFile("b_missing.csv", newline="\n")
    good.row(["Date", "Time", "value"])
    bad.row(["Datum", "Time", "value"])
    for k in range(3):
        good.row(["2024-03-10", f"0{k}:15:00", f"{k}.5"])
        bad.row(["2024-03-10", f"0{k}:15:00", f"{k}.5"])
    sources.append(Source("from_missing", Dialect(), [
        Col("reading_time", "timestamp", from_=["Date", "Time"], timestamp_format="%Y-%m-%d %H:%M:%S"),
        Col("value", "double")], [good, bad]))
    return sources


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    sources = bad_input_sources()
    job = write_job(root / "job", root / "in", sources, name="bad_input")
    run = run_job(job, root / "lake", check_codes=None)
    assert run.code == 3, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    return types.SimpleNamespace(run=run, sources={s.name: s for s in sources}, rejects=rejects_rows(run.lake))


@pytest.mark.parametrize("name", [s.name for s in bad_input_sources()])
def test_bad_input_against_an_independent_reader(bad_input, name):
    """Only the lines with bytes that do not decode are rejects (raw_line shows the
    bytes as \\xNN); every other line loads; whole files are rejected where the
    header cannot be read or lacks a `from` column; counts add up per file."""
    check_source(bad_input.run, bad_input.sources[name], all_rejects=bad_input.rejects)


@pytest.mark.parametrize("encoding", list(UNDECODABLE))
def test_undecodable_bytes_show_as_hex_in_raw_line(bad_input, encoding):
    src = bad_input.sources["bad_" + encoding.replace("-", "_")]
    mine = [(line, reason, raw) for s, _, line, reason, raw in bad_input.rejects if s == src.name]
    assert len(mine) == len(UNDECODABLE[encoding][1]), mine
    for line, reason, raw in mine:
        assert "line has bytes that are not valid" in reason and "\\x" in raw and "\ufffd" not in raw, (line, reason, raw)
    rows = table_rows(bad_input.run.lake, src.table, src.columns)
    assert len(rows) == len(UNDECODABLE[encoding][1]) + 2


def test_no_replacement_character_lands_anywhere(bad_input, dialects):
    for ns in (bad_input, dialects):
        for src in ns.sources.values():
            for row in table_rows(ns.run.lake, src.table, src.columns).values():
                for v in row.values():
                    assert not (isinstance(v, str) and "\ufffd" in v), (src.name, row)
        for _, key, line, reason, raw in ns.rejects:
            assert "\ufffd" not in raw, (key, line, raw)


def test_pattern_matching_nothing_rejects_every_row_with_its_reason(bad_input):
    f = next(x for x in bad_input.run.report["files"] if x["source"] == "no_match")
    assert f["records"] == f["rejected"] == 5 and f["loaded"] == 0, f
    reasons = [r for s, _, _, r, _ in bad_input.rejects if s == "no_match"]
    assert len(reasons) == 5
    assert all("column `reading_time`" in r and "is not a valid timestamp" in r for r in reasons), reasons


def test_bad_input_counts_add_up(bad_input):
    check_totals(bad_input.run, bad_input.sources.values())


# --- errors found before any work: exit 2, nothing written ---------------------------------

def _one_source(dialect=Dialect(), columns=None):
    f = LoggerFile("a.csv", newline="\n")
    f.row(["Date", "Time", "value"])
    f.row(["2024-03-10", "01:00:00", "1.5"])
    return Source("bad_src", dialect, columns or [
        Col("reading_time", "timestamp", from_=["Date", "Time"], timestamp_format="%Y-%m-%d %H:%M:%S"),
        Col("value", "double")], [f])


PLAN_ERRORS = {
    # A zone the tz database does not know: the message names the column and the zone.
    "unknown_zone": (_one_source(columns=[
        Col("reading_time", "timestamp", from_=["Date", "Time"], timestamp_format="%Y-%m-%d %H:%M:%S",
            time_zone="Mars/Olympus_Mons"),
        Col("value", "double")]), ["reading_time", "Mars/Olympus_Mons"]),
    # A label the Encoding Standard does not know: the message names the key.
    "unknown_encoding": (_one_source(Dialect(encoding="klingon-8")), ["bad_src", "csv.encoding", "klingon-8"]),
    # Not chrono syntax (%Q is no field).
    "bad_pattern": (_one_source(columns=[
        Col("reading_time", "timestamp", from_=["Date", "Time"], timestamp_format="%Y-%m-%d %Q"),
        Col("value", "double")]), []),
    "bad_ambiguous": (_one_source(columns=[
        Col("reading_time", "timestamp", from_=["Date", "Time"], timestamp_format="%Y-%m-%d %H:%M:%S",
            ambiguous="sometimes"),
        Col("value", "double")]), ["sometimes"]),
    # `from` names header columns: a file without a header has none.
    "from_without_header": (_one_source(Dialect(header=False)), ["header"]),
}


@pytest.mark.parametrize("case", list(PLAN_ERRORS))
def test_spec_errors_exit_2_before_any_work(tmp_path, case):
    src, fragments = PLAN_ERRORS[case]
    job = write_job(tmp_path / "job", tmp_path / "in", [src], name="plan_error")
    run = naslake("run", job, "--output", tmp_path / "lake", check_codes=None)
    assert run.code == 2, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    assert run.stderr.strip()
    for fragment in fragments:
        assert fragment in run.stderr, (fragment, run.stderr)
    assert not (tmp_path / "lake").exists()


# =====================================================================================
# Property test: random dialects written with Python's csv module come back as written
# =====================================================================================

SEEDS = list(range(25))
ENCODINGS = ["utf-8", "shift_jis", "windows-1252", "utf-16le", "utf-16be", "gb18030", "euc-kr"]
# Labels a job spec may name each encoding by (WHATWG labels, any case).
ALIASES = {
    "utf-8": ["utf-8", "UTF-8", "utf8"],
    "shift_jis": ["shift_jis", "Shift_JIS", "sjis", "windows-31j", "ms932"],
    "windows-1252": ["windows-1252", "cp1252", "latin1", "ISO-8859-1"],
    "utf-16le": ["utf-16le", "UTF-16LE", "utf-16"],
    "utf-16be": ["utf-16be", "UTF-16BE"],
    "gb18030": ["gb18030", "GB18030"],
    "euc-kr": ["euc-kr", "EUC-KR", "korean", "windows-949"],
}
ZONES = ["UTC", "Asia/Tokyo", "Europe/Berlin", "America/Chicago", "Australia/Adelaide"]
PATTERNS = ["%Y/%m/%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", US_PATTERN, "%Y-%m-%d %H:%M:%S"]
DATE_FORMATS = ["%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d", "%m/%d/%Y"]
OFFSETS = {"Z": 0, "+09:00": 540, "-05:00": -300, "+05:30": 330, "-0330": -210, "+01": 60}
# No "#" or "/": comment prefixes must never start a continuation line of a quoted field.
ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" * 2 + " .,;|\t\"'-_()=+*:?\\~\n"
NON_ASCII = "äöüßéÄÖÜ°µ€–温度圧力表ソポ能ｱｲｳ한국어압력값中文测试数据𠮷ΩЖ😀"
HEADERS = ["No.", "Zähler", "Wert °C", "Druck (hPa)", "温度", "圧力", "압력", "测试值", "Bemerkung", "Time Stamp",
           "Datum", "Status; Text", "Flag", "Kanal 1", "Messwert"]
UNITS = ["", "°C", "kPa", "%", "s", "mm/s", "-", "℃"]
BOOL_TEXTS = ["true", "false", "yes", "no", "1", "0", "t", "f", "y", "n", "TRUE", "False"]


@dataclasses.dataclass
class Case:
    """One seed: a source with one file, and the values written into it."""
    source: Source
    truth: dict          # first line of each record -> {column: value written}
    lines_skipped: int


def random_case(seed):
    rng = random.Random(seed)
    enc = rng.choice(ENCODINGS)
    bom = enc.startswith("utf") and rng.random() < (0.5 if enc == "utf-8" else 0.7)
    declared = rng.choice(ALIASES[enc])
    if bom and rng.random() < 0.3:  # a BOM decides, whatever the spec says
        declared = rng.choice(ALIASES[rng.choice(ENCODINGS)])
    delim = rng.choice([",", ";", "\t", "|"])
    decimal = "," if delim in ";\t" and rng.random() < 0.5 else "."
    comment = rng.choice([None, "#", "//"])
    skip_lines = rng.randint(0, 3)
    units = rng.random() < 0.5
    quoting = rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])
    nulls = rng.choice([None, ["", "NaN"], ["", "---", "NaN"]])
    null_texts = set(nulls or [""])
    alphabet = ASCII + "".join(ch for ch in NON_ASCII if encodable(ch, enc))

    def text(n_max=14):
        while True:
            s = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, n_max)))
            if s == s.strip(" \t\n") and "\n\n" not in s and s not in null_texts | {"NaN", "---", "+OVER"}:
                return s

    # Columns, under random headers, in a random order in the file.
    zone = rng.choice(ZONES)
    ts_mode = rng.choice(["iso", "pattern"])
    pattern = rng.choice(PATTERNS) if ts_mode == "pattern" else None
    headers = rng.sample([h for h in HEADERS if encodable(h, enc)], 7)
    columns = [
        Col("c_n", "bigint", header=headers[0], nullable=False),
        Col("c_s", "string", header=headers[1]),
        Col("c_x", "double", header=headers[2]),
        Col("c_t", "timestamp", header=headers[3], timestamp_format=pattern or rng.choice([None, "iso8601"]),
            time_zone=None if zone == "UTC" and rng.random() < 0.5 else zone),
    ]
    if rng.random() < 0.5:
        columns.append(Col("c_d", "date", header=headers[4], date_format=rng.choice(DATE_FORMATS)))
    if rng.random() < 0.5:
        columns.append(Col("c_b", "boolean", header=headers[5]))
    order = rng.sample(columns, len(columns))

    def wall(seconds=True):
        while True:
            w = dt.datetime(2001, 1, 1) + dt.timedelta(seconds=rng.randrange(29 * 365 * 86400))
            if not seconds:
                w = w.replace(second=0)
            if is_plain_local(w, zone):
                return w

    def cell(col):
        """(what the csv module writes, the value naslake must give back)"""
        if col.nullable and rng.random() < 0.1:
            return None, None
        if col.type == "bigint":
            v = rng.choice([rng.randint(-10**12, 10**12), rng.randint(-99, 99)])
            return (v if quoting == csv.QUOTE_NONNUMERIC else str(v)), v
        if col.type == "string":
            if "---" in null_texts and rng.random() < 0.05:
                return "---", None
            v = text()
            return v, v
        if col.type == "double":
            if "NaN" in null_texts and rng.random() < 0.05:
                return "NaN", None
            k = rng.randint(0, 6)
            if decimal == ",":
                t = f"{round(rng.uniform(-1e5, 1e5), k):.{k}f}"
                return t.replace(".", ","), float(t)
            v = round(rng.uniform(-1e5, 1e5), k) if rng.random() < 0.8 else rng.uniform(-1, 1) * 10.0 ** rng.randint(-9, 15)
            return v, float(repr(v))  # the csv module writes repr(v)
        if col.type == "boolean":
            t = rng.choice(BOOL_TEXTS)
            return t, t.lower() in ("true", "yes", "1", "t", "y")
        if col.type == "date":
            d = dt.date(1990, 1, 1) + dt.timedelta(days=rng.randrange(46 * 365))
            return d.strftime(col.date_format), d
        # timestamp
        if pattern:
            w = wall(seconds="%S" in pattern)
            if pattern == US_PATTERN:
                h12, half = (w.hour % 12 or 12), ("AM" if w.hour < 12 else "PM")
                t = (f"{w.month}/{w.day}/{w.year} {h12}:{w.minute:02}:{w.second:02} {half}" if rng.random() < 0.5
                     else f"{w.month:02}/{w.day:02}/{w.year} {h12:02}:{w.minute:02}:{w.second:02} {half}")
            else:
                t = w.strftime(pattern)
            return t, local_to_utc(w, zone)
        w = wall().replace(microsecond=rng.choice([0, 0, rng.randrange(1000) * 1000, rng.randrange(10**6)]))
        t = w.strftime(f"%Y-%m-%d{rng.choice('T ')}%H:%M:%S")
        if w.microsecond:
            t += f".{w.microsecond // 1000:03d}" if w.microsecond % 1000 == 0 else f".{w.microsecond:06d}"
        if rng.random() < 0.4:
            off = rng.choice(list(OFFSETS))
            tz = dt.timezone(dt.timedelta(minutes=OFFSETS[off]))
            return t + off, micros(w.replace(tzinfo=tz))
        return t, local_to_utc(w, zone)

    f = LoggerFile(f"seed{seed}.csv", enc, bom=bom, newline=rng.choice(["\r\n", "\n"]), delimiter=delim,
                   quoting=quoting)
    skipped = 0
    for _ in range(skip_lines):
        word = rng.choice([w for w in ["Device", "Serial", "Gerät", "機器名", "Logger", "Model"] if encodable(w, enc)])
        info = "".join(rng.choice(ASCII[:124] + " ") for _ in range(8)).strip() or "x"
        f.line(f"{comment} {info}" if comment and rng.random() < 0.3 else f"{word}{delim}{info}")
        skipped += 1
    if comment and rng.random() < 0.3:
        f.line(f"{comment} header follows")
        skipped += 1
    f.row([c.header for c in order])
    if units:
        f.row([rng.choice([u for u in UNITS if encodable(u, enc)]) for _ in order])
        skipped += 1
    truth = {}
    for _ in range(rng.randint(15, 30)):
        cells = {c.name: cell(c) for c in order}
        line = f.row([cells[c.name][0] for c in order])
        truth[line] = {c.name: cells[c.name][1] for c in columns}
        if comment and rng.random() < 0.15:
            f.line(comment + "".join(rng.choice(ASCII[:124] + " ") for _ in range(rng.randint(0, 12))))
            skipped += 1
    dialect = Dialect(encoding=declared, delimiter=delim, decimal="," if decimal == "," else rng.choice([None, "."]),
                      skip_lines=skip_lines or rng.choice([None, 0]), skip_after_header=1 if units else None,
                      comment=comment, null_values=nulls)
    return Case(Source(f"p{seed:02d}", dialect, columns, [f]), truth, skipped)


def _truth_expected(case):
    f = case.source.files[0]
    return Expected(case.source.prefix + f.name, rows=case.truth, records=len(case.truth),
                    lines_skipped=case.lines_skipped)


def test_the_oracle_reads_back_what_the_generator_wrote():
    """Pure Python, no naslake: the independent reader, given each random file and its
    spec, finds exactly the values written (so it can be trusted for the others)."""
    encodings = set()
    for seed in SEEDS:
        case = random_case(seed)
        got = case.source.expected()[0]
        want = _truth_expected(case)
        assert (got.rows, got.rejects, got.records, got.lines_skipped, got.file_error) == \
               (want.rows, [], want.records, want.lines_skipped, None), seed
        encodings.add(canonical(case.source.dialect.encoding))
    assert len(encodings) >= 5  # the seeds cover most encodings


@pytest.fixture(scope="module")
def random_dialects(tmp_path_factory):
    """Every seed's file in one run, one source (and table) per seed."""
    root = tmp_path_factory.mktemp("random")
    cases = {seed: random_case(seed) for seed in SEEDS}
    job = write_job(root / "job", root / "in", [c.source for c in cases.values()], name="random_dialects")
    run = run_job(job, root / "lake", check_codes=None)
    # 0 when every seed reads back; a seed with rejects (exit 3) fails its own test.
    assert run.code in (0, 3) and run.report, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    return types.SimpleNamespace(run=run, cases=cases, rejects=rejects_rows(run.lake))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_dialect_gives_the_values_back(random_dialects, seed):
    case = random_dialects.cases[seed]
    check_source(random_dialects.run, case.source, [_truth_expected(case)], all_rejects=random_dialects.rejects)


# =====================================================================================
# naslake sniff
# =====================================================================================

# The files sniffed: the source (dialect and columns) each was written for, and what
# its block must say (a key not listed may be anything that reads the file).
SNIFF_CASES = {
    "jp_logger": (lambda: Source("jp", JP_DIALECT, jp_columns(), [japanese_file()]),
                  dict(encoding="shift_jis", delimiter=",", skip_lines=4, skip_after_header=1, null="+OVER")),
    "eu_logger": (lambda: Source("eu", EU_DIALECT, eu_columns(), [european_file()]),
                  dict(encoding="windows-1252", delimiter=";", decimal=",", skip_lines=2, skip_after_header=1,
                       null="---")),
    "us_logger": (lambda: Source("us", Dialect(), us_columns(), [us_file()]),
                  dict(encoding="utf-8", delimiter=",", skip_lines=0, skip_after_header=0)),
    "win_export": (lambda: Source("win", Dialect(encoding="utf-16le", delimiter="\t"), win_columns(),
                                  [windows_file("utf-16le")]),
                   dict(delimiter="\t", skip_lines=0, skip_after_header=0)),
}


def _utc(columns):
    """The same columns with every zone UTC: what a sniffed block (which never guesses
    a zone) reads."""
    return [dataclasses.replace(c, time_zone="UTC", ambiguous=None) if c.type == "timestamp" else c for c in columns]


def _comments(text):
    return "\n".join(ln for ln in text.splitlines() if ln.lstrip().startswith("#"))


@pytest.fixture(scope="module")
def sniffed(tmp_path_factory):
    """`naslake sniff` on each file, then one job whose sources are the blocks as
    printed (each given a `prefix` line, so one job can hold them all) and whose
    tables are built from the blocks' columns."""
    root = tmp_path_factory.mktemp("sniff")
    inp = root / "in"
    out = {}
    for name, (make, _) in SNIFF_CASES.items():
        src = make()
        f = src.files[0]
        path = inp / name / f.name
        path.parent.mkdir(parents=True)
        path.write_bytes(f.data)
        run = naslake("sniff", path, "--name", name, check_codes=None)
        try:
            block = tomllib.loads(run.stdout)
        except tomllib.TOMLDecodeError:
            block = None
        out[name] = types.SimpleNamespace(src=src, file=f, sniff=run, block=block)

    job_dir = root / "job"
    job_dir.mkdir()
    parts = [f'name = "sniffed"\ninput = {toml_value(str(inp))}\n']
    tables = []
    for name, s in out.items():
        spec = ((s.block or {}).get("sources") or {}).get(name)
        if s.sniff.code != 0 or not spec or not isinstance(spec.get("columns"), list):
            continue
        lines = s.sniff.stdout.splitlines()
        at = [k for k, ln in enumerate(lines) if ln.split("#")[0].strip() == f"[sources.{name}]"]
        if not at:
            continue
        if "prefix" not in spec:
            lines.insert(at[0] + 1, f'prefix = "{name}/"')
        parts.append("\n".join(lines) + "\n")
        schema = job_dir / f"t_{name}.schema.toml"
        schema.write_text(schema_toml(f"t_{name}", [(c["name"], c["type"], c.get("nullable", True))
                                                    for c in spec["columns"]]))
        tables.append(f'[tables.t_{name}]\nschema = "{schema.name}"\nsource = "{name}"\n')
    job = job_dir / "sniffed.toml"
    job.write_text("\n".join(parts + tables + ['[tables.rejects]\nfrom = "rejects"\n']))
    run = run_job(job, root / "lake", check_codes=None) if tables else None
    return types.SimpleNamespace(cases=out, run=run, job=job)


@pytest.mark.parametrize("name", list(SNIFF_CASES))
def test_sniff_prints_one_csv_source_block(sniffed, name):
    s = sniffed.cases[name]
    assert s.sniff.code == 0, s.sniff.stderr
    assert s.block is not None, f"stdout is not TOML:\n{s.sniff.stdout}"
    assert list(s.block) == ["sources"] and list(s.block["sources"]) == [name], s.block
    spec = s.block["sources"][name]
    assert spec["format"] == "csv"
    want = SNIFF_CASES[name][1]
    keys = spec.get("csv", {})
    if "encoding" in want:
        assert canonical(keys.get("encoding", "utf-8")) == want["encoding"], keys
    for key, default in [("delimiter", ","), ("decimal", "."), ("skip_lines", 0), ("skip_after_header", 0)]:
        if key in want:
            assert keys.get(key, default) == want[key], (key, keys)
    if "null" in want:
        assert want["null"] in keys.get("null_values", []), keys
    # Timestamps: typed, with the zone written as UTC and a comment saying none was found.
    stamps = [c for c in spec["columns"] if c["type"] == "timestamp"]
    assert len(stamps) == 1 and stamps[0].get("time_zone") == "UTC", spec["columns"]
    assert "zone" in _comments(s.sniff.stdout).lower()
    if name == "jp_logger":
        assert stamps[0].get("from") == ["日付", "時刻"], stamps


@pytest.mark.parametrize("name", list(SNIFF_CASES))
def test_sniffed_block_run_as_is_loads_every_good_line(sniffed, name):
    """Pasted into a job, the block reads every line of the file: timestamps typed
    timestamp (wall times taken as UTC), numbers double or bigint, NULL markers NULL."""
    s = sniffed.cases[name]
    assert sniffed.run is not None and s.block, "no block to run"
    run = sniffed.run
    # Exit 0 when every block read its file without a reject; a block that rejects
    # lines (exit 3) fails its own test below, on its rows and rejects.
    assert run.code in (0, 3) and run.report, f"exit {run.code}\n{sniffed.job.read_text()}\n{run.stdout}\n{run.stderr}"
    spec = s.block["sources"][name]
    # Each sniffed column is one of the columns the file was written for: by its
    # header (or `from`), matched as naslake matches headers.
    mine = {c.header_text().strip().lower(): c for c in _utc(s.src.columns) if not c.from_}
    froms = {tuple(h.lower() for h in c.from_): c for c in _utc(s.src.columns) if c.from_}
    pairs = []
    for c in spec["columns"]:
        if "from" in c:
            pairs.append((c, froms[tuple(h.strip().lower() for h in c["from"])]))
        else:
            pairs.append((c, mine[c.get("header", c["name"]).strip().lower()]))
    assert sorted(m.name for _, m in pairs) == sorted(c.name for c in s.src.columns), pairs
    for c, m in pairs:
        allowed = {"timestamp": {"timestamp"}, "double": {"double"}, "bigint": {"bigint", "double"},
                   "string": {"string"}}[m.type]
        assert c["type"] in allowed, (c, m)

    expected = read_expected(s.file.data, s.src.dialect, _utc(s.src.columns), f"{name}/{s.file.name}")
    assert not expected.rejects and expected.rows
    got = {}
    for r in duck_rows(run.lake, f"t_{name}", [select_expr(c["name"], c["type"]) for c, _ in pairs]
                       + ["source_key", "line_number"], partitioned=False):
        got[(r[-2], r[-1])] = tuple(r[:-2])
    want = {(expected.key, line): tuple(row[m.name] for _, m in pairs) for line, row in expected.rows.items()}
    assert got == want
    assert [x for x in rejects_rows(run.lake) if x[0] == name] == []
    schema = arrow_table(run.lake, f"t_{name}", partitioned=False).schema
    for c, m in pairs:
        if m.type == "timestamp":
            assert pa.types.is_timestamp(schema.field(c["name"]).type)


def test_sniff_names_both_day_month_orders_when_both_parse(tmp_path):
    f = LoggerFile("ambiguous_dates.csv", newline="\n")
    f.row(["Datum", "Wert"])
    for k in range(1, 13):
        f.row([f"{k:02d}/{13 - k:02d}/2024 10:{k:02d}:00", f"{k}.5"])
    path = tmp_path / f.name
    path.write_bytes(f.data)
    run = naslake("sniff", path, check_codes=None)
    assert run.code == 0, run.stderr
    comments = _comments(run.stdout)
    assert "%d/%m" in comments and "%m/%d" in comments, run.stdout
    (spec,) = tomllib.loads(run.stdout)["sources"].values()
    (stamp,) = [c for c in spec["columns"] if c["type"] == "timestamp"]
    assert "%d/%m/%Y" in stamp["timestamp_format"] or "%m/%d/%Y" in stamp["timestamp_format"], stamp


def test_sniff_names_the_source_after_the_file(tmp_path):
    path = tmp_path / "Line3-Export.csv"
    path.write_bytes(us_file().data)
    run = naslake("sniff", path, check_codes=None)
    assert run.code == 0, run.stderr
    assert list(tomllib.loads(run.stdout)["sources"]) == ["line3_export"], run.stdout


@pytest.mark.parametrize("content", [bytes(range(256)) * 64, b""], ids=["binary", "empty"])
def test_sniff_refuses_a_file_it_cannot_read(tmp_path, content):
    path = tmp_path / "not_a_log.csv"
    path.write_bytes(content)
    run = naslake("sniff", path, check_codes=None)
    assert run.code == 2, (run.code, run.stdout, run.stderr)
    assert run.stdout.strip() == "" and run.stderr.strip()


# =====================================================================================
# The oracle itself (pure Python)
# =====================================================================================

def test_the_oracle_knows_the_dst_rules():
    """zoneinfo, as the oracle uses it, against the 2024 DST changes as published."""
    berlin, chicago = "Europe/Berlin", "America/Chicago"
    assert isinstance(local_to_utc(dt.datetime(2024, 3, 31, 2, 30), berlin), Reject)
    assert local_to_utc(dt.datetime(2024, 3, 31, 3, 0), berlin) == micros(dt.datetime(2024, 3, 31, 1, tzinfo=UTC))
    assert local_to_utc(dt.datetime(2024, 10, 27, 2, 30), berlin) == micros(dt.datetime(2024, 10, 27, 0, 30, tzinfo=UTC))
    assert local_to_utc(dt.datetime(2024, 10, 27, 2, 30), berlin, "latest") == micros(dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC))
    assert isinstance(local_to_utc(dt.datetime(2024, 10, 27, 2, 30), berlin, "reject"), Reject)
    assert isinstance(local_to_utc(dt.datetime(2024, 3, 10, 2, 30), chicago), Reject)
    assert local_to_utc(dt.datetime(2024, 11, 3, 1, 30), chicago) == micros(dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC))
    assert local_to_utc(dt.datetime(2024, 11, 3, 1, 30), chicago, "latest") == micros(dt.datetime(2024, 11, 3, 7, 30, tzinfo=UTC))
    assert local_to_utc(dt.datetime(2024, 3, 10, 2, 30), "Asia/Tokyo") == micros(dt.datetime(2024, 3, 9, 17, 30, tzinfo=UTC))


def test_the_oracle_reads_the_dialect_files():
    """Pure Python: the oracle finds the rejects the files were built to have."""
    by_name = {s.name: s for s in dialect_sources()}
    jp = by_name["jp"].expected()[0]
    assert jp.lines_skipped == 5 and not jp.rejects and len(jp.rows) == 8 and min(jp.rows) == 7
    eu = by_name["eu_reject"].expected()[0]
    assert [r.fragments for _, r, _ in eu.rejects] == [("does not exist in Europe/Berlin",)] * 2 + \
           [("is ambiguous in Europe/Berlin",)] * 4
    us = by_name["us_latest"].expected()[0]
    assert [r.fragments for _, r, _ in us.rejects] == [("does not exist in America/Chicago",)] * 2
    assert by_name["win_be"].expected()[0].rows == by_name["win_le"].expected()[0].rows
    bad = {s.name: s.expected() for s in bad_input_sources()}
    for enc in UNDECODABLE:
        (e,) = bad["bad_" + enc.replace("-", "_")]
        assert len(e.rejects) == len(UNDECODABLE[enc][1]) and all("\\x" in raw for _, _, raw in e.rejects), e
    assert bad["bad_header"][0].file_error and bad["cp1252_as_utf16"][0].file_error
    assert len(bad["sjis_as_utf8"][0].rejects) == 2
    assert [e.file_error is not None for e in bad["from_missing"]] == [False, True]
