"""Logger CSV files and an independent reading of them, for tests/test_csv_dialects.py.

Data loggers write CSV in many dialects: legacy encodings (Shift_JIS, windows-1252,
UTF-16 with a byte order mark, ...), device information before the header, a units
row after it, decimal commas, local times, NULL markers such as `+OVER`. This module

- builds such files byte by byte (`LoggerFile`), the way a logger writes them;
- describes a CSV source of a job spec in Python (`Col`, `Dialect`, `Source`) and
  renders it, with its table's schema file, as TOML (`write_job`);
- reads the same bytes back with nothing of naslake's: Python's codecs, its `csv`
  module, `datetime.strptime`/`fromisoformat` and `zoneinfo` (`read_expected`). That
  reading implements the contract of issue 25 (physical line numbers, skipped and
  comment lines, NULL markers, decimal commas, time zones and their DST rules) and
  says, per file, which rows load with which values and which lines are rejected;
- compares a run's Parquet output (read with DuckDB), its rejects table and its run
  report with that reading (`check_source`, `check_totals`).

Python codec names differ from the WHATWG labels naslake takes: WHATWG's Shift_JIS is
Microsoft's code page 932 (`cp932`), its windows-1252 is `cp1252`, and so on
(`PY_CODEC`). Where Python's codec and the WHATWG decoder disagree (cp932 decodes a
lone 0xA0 or 0xFD–0xFF to private-use characters; cp1252 refuses 0x81, 0x8D, 0x8F,
0x90, 0x9D which WHATWG maps to C1 controls; gb18030 0x80), the tests do not use
those bytes.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import io
import json
import math
import pathlib
import re
from zoneinfo import ZoneInfo

from conftest import duck_rows

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)

# --- encodings ----------------------------------------------------------------------

# Canonical WHATWG encoding (as this module names it) -> Python codec.
PY_CODEC = {
    "utf-8": "utf-8",
    "shift_jis": "cp932",
    "windows-1252": "cp1252",
    "utf-16le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "gb18030": "gb18030",
    "euc-kr": "euc_kr",
}

# Canonical encoding -> the name encoding_rs gives it, which reject reasons carry
# (`line has bytes that are not valid <NAME>`).
RS_NAME = {
    "utf-8": "UTF-8",
    "shift_jis": "Shift_JIS",
    "windows-1252": "windows-1252",
    "utf-16le": "UTF-16LE",
    "utf-16be": "UTF-16BE",
    "gb18030": "gb18030",
    "euc-kr": "EUC-KR",
}

# WHATWG labels (https://encoding.spec.whatwg.org/#names-and-labels) of those
# encodings, lower case -> canonical. Labels are matched case-insensitively.
LABELS = {
    **dict.fromkeys(["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8",
                     "x-unicode20utf8"], "utf-8"),
    **dict.fromkeys(["csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis",
                     "windows-31j", "x-sjis"], "shift_jis"),
    **dict.fromkeys(["ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
                     "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1",
                     "iso_8859-1:1987", "l1", "latin1", "us-ascii", "windows-1252",
                     "x-cp1252"], "windows-1252"),
    **dict.fromkeys(["csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff",
                     "utf-16", "utf-16le"], "utf-16le"),
    **dict.fromkeys(["unicodefffe", "utf-16be"], "utf-16be"),
    "gb18030": "gb18030",
    **dict.fromkeys(["cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean",
                     "ks_c_5601-1987", "ks_c_5601-1989", "ksc5601", "ksc_5601",
                     "windows-949"], "euc-kr"),
}

# A byte order mark decides the encoding whatever the job spec says.
BOMS = [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16le"), (codecs.BOM_UTF16_BE, "utf-16be")]
BOM_OF = {enc: bom for bom, enc in BOMS}


def canonical(label):
    """The canonical encoding of a WHATWG label (KeyError for one these tests do not know)."""
    return LABELS[label.strip().lower()]


def _hex_bytes(err):
    """Decode error handler: the bytes that do not decode, as `\\xNN` (upper-case hex)."""
    return "".join(f"\\x{b:02X}" for b in err.object[err.start:err.end]), err.end


codecs.register_error("naslake_hex", _hex_bytes)


def shown(raw, encoding):
    """A line as a rejects row's raw_line shows it: decoded, with every byte that does
    not decode as `\\xNN`."""
    return raw.decode(PY_CODEC[encoding], "naslake_hex")


def decodes(raw, encoding):
    try:
        raw.decode(PY_CODEC[encoding])
        return True
    except UnicodeDecodeError:
        return False


def encodable(text, encoding):
    """`text` survives a round trip through the encoding (so a logger could write it)."""
    try:
        return text.encode(PY_CODEC[encoding]).decode(PY_CODEC[encoding]) == text
    except UnicodeError:
        return False


# --- time ---------------------------------------------------------------------------

def micros(aware):
    """Microseconds since the epoch of an aware datetime, exactly (integer arithmetic)."""
    return (aware - EPOCH) // dt.timedelta(microseconds=1)


class Reject:
    """What the oracle expects for a record naslake must reject: the fragments its
    reason must contain."""

    def __init__(self, *fragments):
        self.fragments = fragments

    def __repr__(self):
        return f"Reject{self.fragments!r}"


def local_to_utc(wall, zone, ambiguous="earliest"):
    """The instant (µs since the epoch) of a wall-clock time in an IANA zone, with the
    contract's DST rules, worked out by zoneinfo: a time in the spring-forward gap
    does not exist (Reject naming the zone); a time in the hour repeated when DST ends
    is the first occurrence (fold=0, "earliest"), the second (fold=1, "latest"), or a
    Reject ("reject"). A time that does not exist is the one whose round trip through
    UTC does not come back to the same wall time."""
    z = ZoneInfo(zone)
    first = wall.replace(tzinfo=z, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=z, fold=1).astimezone(UTC)
    if first.astimezone(z).replace(tzinfo=None) != wall:
        return Reject(f"does not exist in {zone}")
    if first != second:
        assert first < second  # fold=0 is the earlier instant for a repeated hour
        if ambiguous == "reject":
            return Reject(f"is ambiguous in {zone}")
        return micros(second if ambiguous == "latest" else first)
    return micros(first)


def is_plain_local(wall, zone):
    """The wall time occurs exactly once in the zone (neither in a gap nor repeated)."""
    return isinstance(local_to_utc(wall, zone, "reject"), int)


# --- a source in a job spec ------------------------------------------------------------

@dataclasses.dataclass
class Col:
    """A declared column of a CSV source (`sources.NAME.columns[]`)."""
    name: str
    type: str
    header: str | None = None
    nullable: bool = True
    timestamp_format: str | None = None  # None: the default ("auto": ISO-8601 or epoch ms)
    time_zone: str | None = None          # None: the default (UTC)
    ambiguous: str | None = None          # None: the default ("earliest")
    date_format: str | None = None        # None: the default ("%Y-%m-%d")
    from_: list | None = None             # `from = [...]`: header columns joined by a space

    def spec(self):
        d = {"name": self.name, "type": self.type}
        for key, value in [("header", self.header), ("timestamp_format", self.timestamp_format),
                           ("time_zone", self.time_zone), ("ambiguous", self.ambiguous),
                           ("date_format", self.date_format), ("from", self.from_)]:
            if value is not None:
                d[key] = value
        if not self.nullable:
            d["nullable"] = False
        return d

    def header_text(self):
        return self.header if self.header is not None else self.name


@dataclasses.dataclass
class Dialect:
    """A CSV source's `csv = {...}` keys; None leaves a key out (its default applies)."""
    encoding: str | None = None
    delimiter: str = ","
    decimal: str | None = None
    skip_lines: int | None = None
    skip_after_header: int | None = None
    comment: str | None = None
    null_values: list | None = None
    header: bool | None = None

    def spec(self):
        d = {}
        if self.delimiter != ",":
            d["delimiter"] = self.delimiter
        for key in ("encoding", "decimal", "skip_lines", "skip_after_header", "comment", "null_values", "header"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        return d

    # The values the contract gives the keys left out.
    def nulls(self):
        return [""] if self.null_values is None else self.null_values

    def dec(self):
        return self.decimal or "."


@dataclasses.dataclass
class Source:
    """A source of a job: its keys, and the files under its prefix."""
    name: str
    dialect: Dialect
    columns: list
    files: list = dataclasses.field(default_factory=list)
    suffixes: list | None = None
    prefix: str | None = None

    def __post_init__(self):
        if self.prefix is None:
            self.prefix = f"{self.name}/"

    @property
    def table(self):
        return f"t_{self.name}"

    def write_files(self, input_dir):
        for f in self.files:
            path = pathlib.Path(input_dir) / self.prefix / f.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.data)

    def expected(self, columns=None):
        """The oracle's reading of every file of the source (optionally with other
        column declarations, e.g. the same columns in UTC)."""
        return [read_expected(f.data, self.dialect, columns or self.columns, self.prefix + f.name)
                for f in self.files]


# --- TOML ------------------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        # A JSON string is a valid TOML basic string (same escapes; \uXXXX for controls).
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def source_toml(src):
    lines = [f"[sources.{src.name}]", 'format = "csv"', f"prefix = {toml_value(src.prefix)}"]
    if src.suffixes:
        lines.append(f"suffixes = {toml_value(src.suffixes)}")
    lines.append("columns = [")
    lines += [f"  {toml_value(c.spec())}," for c in src.columns]
    lines.append("]")
    csv_keys = src.dialect.spec()
    if csv_keys:
        lines.append(f"\n[sources.{src.name}.csv]")
        lines += [f"{k} = {toml_value(v)}" for k, v in csv_keys.items()]
    return "\n".join(lines) + "\n"


def schema_toml(table, columns):
    """A table schema file: `columns` are (name, type, nullable), then the lineage columns."""
    out = [f'name = "{table}"', f'description = "Rows of {table}."']
    for name, type_, nullable in [*columns, ("source_key", "string", False), ("line_number", "bigint", False)]:
        out.append(f'\n[[columns]]\nname = "{name}"\ntype = "{type_}"\nnullable = {toml_value(nullable)}\n'
                   f'comment = "The {name}."')
    return "\n".join(out) + "\n"


def write_job(job_dir, input_dir, sources, name="dialects"):
    """A job over `input_dir` with the sources, one table per source (`source = NAME`,
    its schema the source's columns plus lineage) and one rejects table, `rejects`,
    with the built-in CSV rejects columns. Writes the sources' files; returns the spec."""
    job_dir = pathlib.Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    parts = [f'name = "{name}"\ninput = {toml_value(str(input_dir))}\n']
    for src in sources:
        src.write_files(input_dir)
        parts.append(source_toml(src))
    for src in sources:
        schema = job_dir / f"{src.table}.schema.toml"
        schema.write_text(schema_toml(src.table, [(c.name, c.type, c.nullable) for c in src.columns]))
        parts.append(f'[tables.{src.table}]\nschema = "{schema.name}"\nsource = "{src.name}"\n')
    parts.append('[tables.rejects]\nfrom = "rejects"\n')
    job = job_dir / f"{name}.toml"
    job.write_text("\n".join(parts))
    return job


# --- writing a logger file ---------------------------------------------------------------

class LoggerFile:
    """A file as a logger writes it, line by line, in `encoding` (canonical name), with
    an optional byte order mark; remembers the physical line each record starts on."""

    def __init__(self, name, encoding="utf-8", *, bom=False, newline="\r\n", delimiter=",",
                 quoting=csv.QUOTE_MINIMAL):
        self.name = name
        self.encoding = encoding
        self.codec = PY_CODEC[encoding]
        self.newline = newline
        self.delimiter = delimiter
        self.quoting = quoting
        self.chunks = [BOM_OF[encoding] if bom else b""]
        self.next_line = 1
        self.records = {}  # first line of each row written with row() -> its cells

    def enc(self, text):
        return text.encode(self.codec)

    def line(self, text):
        """One physical line of literal text (a preamble line, a comment, ...); returns
        the number of the line it starts on."""
        return self.raw(text)

    def row(self, cells):
        """One CSV record as Python's csv module writes it (quoting fields as needed, so
        a field may hold the delimiter, quotes or line breaks)."""
        buf = io.StringIO()
        csv.writer(buf, delimiter=self.delimiter, quoting=self.quoting, lineterminator="\n").writerow(cells)
        first = self.raw(buf.getvalue()[:-1])
        self.records[first] = list(cells)
        return first

    def raw(self, *parts):
        """One record from text and raw bytes (bytes as they are: a bad byte in the
        file's encoding); returns its first line."""
        first = self.next_line
        data = b"".join(p if isinstance(p, bytes) else self.enc(p) for p in parts)
        self.chunks.append(data + self.enc(self.newline))
        self.next_line += sum(p.count("\n") for p in parts if isinstance(p, str)) + 1
        return first

    def blank(self):
        return self.raw("")

    @property
    def data(self):
        return b"".join(self.chunks)


# --- reading it back: the oracle ---------------------------------------------------------

@dataclasses.dataclass
class Expected:
    """What the oracle makes of one file."""
    key: str
    rows: dict = dataclasses.field(default_factory=dict)     # line -> {column: value}
    rejects: list = dataclasses.field(default_factory=list)  # (line, Reject, raw_line or None)
    records: int = 0
    lines_skipped: int = 0
    blank_lines: int = 0
    file_error: Reject | None = None


def physical_lines(body, encoding):
    """The file's physical lines as bytes, split at line feeds in the encoding's code
    units (two bytes in UTF-16), without their CR LF / LF."""
    nl = "\n".encode(PY_CODEC[encoding])
    step = len(nl)
    lines, start, i = [], 0, 0
    while i + step <= len(body):
        if body[i:i + step] == nl:
            lines.append(body[start:i])
            start = i + step
        i += step
    if start < len(body):
        lines.append(body[start:])
    cr = "\r".encode(PY_CODEC[encoding])
    return [ln[:-len(cr)] if ln.endswith(cr) and (len(ln) - len(cr)) % step == 0 else ln for ln in lines]


TRIM = " \t"


def read_expected(data, dialect, columns, key):
    """The contract applied to a file's bytes by Python's codecs, csv module, datetime
    and zoneinfo: which records load with which values, which are rejected and why."""
    exp = Expected(key)
    encoding = canonical(dialect.encoding or "utf-8")
    for bom, enc in BOMS:
        if data.startswith(bom):
            encoding, data = enc, data[len(bom):]
            break
    lines = physical_lines(data, encoding)
    rs = RS_NAME[encoding]
    skip_lines = dialect.skip_lines or 0
    skip_after = dialect.skip_after_header or 0
    header, mapping, after = None, None, 0
    i = 0
    while i < len(lines):
        raw, number = lines[i], i + 1
        i += 1
        if number <= skip_lines:  # the preamble: physical lines, comments included
            exp.lines_skipped += 1
            continue
        text = shown(raw, encoding)
        ok = decodes(raw, encoding)
        if dialect.comment and text.startswith(dialect.comment):
            exp.lines_skipped += 1
            continue
        if raw == b"":
            exp.blank_lines += 1
            continue
        if header is None:
            if not ok:  # a header that does not decode rejects the file (the reason names the encoding)
                exp.file_error = Reject(rs)
                return exp
            header = next(csv.reader([text], delimiter=dialect.delimiter))
            mapping = header_mapping(header, columns)
            if isinstance(mapping, Reject):
                exp.file_error = mapping
                return exp
            continue
        if after < skip_after:
            after += 1
            exp.lines_skipped += 1
            continue
        exp.records += 1
        if not ok:
            exp.rejects.append((number, Reject(f"line has bytes that are not valid {rs}"), text))
            continue
        # A record goes on over line breaks inside quotes: read lines until its quotes pair up.
        while text.count('"') % 2 and i < len(lines):
            text += "\n" + lines[i].decode(PY_CODEC[encoding])
            i += 1
        fields = next(csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter))
        if len(fields) != len(header):
            exp.rejects.append((number, Reject(f"expected {len(header)} fields, found {len(fields)}"), None))
            continue
        row = {}
        for col, idx in zip(columns, mapping):
            value = cell_value(col, [fields[j] for j in idx], dialect)
            if isinstance(value, Reject):
                exp.rejects.append((number, value, None))
                break
            row[col.name] = value
        else:
            exp.rows[number] = row
    return exp


def header_mapping(header, columns):
    """Per column, the indexes of its header cells (matched trimmed, case-insensitively);
    a Reject naming what is missing (or which header is unknown) otherwise."""
    where = {h.strip(TRIM).lower(): k for k, h in enumerate(header)}
    mapping, missing, used = [], [], set()
    for c in columns:
        names = c.from_ or [c.header_text()]
        idx = [where.get(n.strip(TRIM).lower()) for n in names]
        missing += [n for n, k in zip(names, idx) if k is None]
        used.update(k for k in idx if k is not None)
        mapping.append(idx)
    if missing:
        return Reject("header does not match", f"missing {missing[0]}")
    if len(used) != len(header):
        return Reject("header does not match", "unexpected")
    return mapping


INT_RE = re.compile(r"[+-]?[0-9]+")
FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
BOOLS = {"true": True, "t": True, "yes": True, "y": True, "1": True,
         "false": False, "f": False, "no": False, "n": False, "0": False}


def cell_value(col, cells, dialect):
    """A cell's value as the contract reads it, or a Reject."""
    text = " ".join(cells)
    t = text.strip(TRIM)
    bad = Reject(f"column `{col.name}`")
    if t in dialect.nulls():
        return None if col.nullable else bad
    if col.type == "string":
        return text
    if col.type == "bigint":
        return int(t) if INT_RE.fullmatch(t) else bad
    if col.type == "double":
        if dialect.dec() == ",":
            if "." in t:
                return bad
            t = t.replace(",", ".")
        if not FLOAT_RE.fullmatch(t) or not math.isfinite(float(t)):
            return bad
        return float(t)
    if col.type == "boolean":
        return BOOLS.get(t.lower(), bad)
    if col.type == "date":
        try:
            return dt.datetime.strptime(t, col.date_format or "%Y-%m-%d").date()
        except ValueError:
            return bad
    assert col.type == "timestamp", col
    not_ts = Reject(f"column `{col.name}`", f"'{t}' is not a valid timestamp")
    fmt = col.timestamp_format or "auto"
    try:
        if "%" in fmt:
            value = dt.datetime.strptime(t, fmt)
        elif fmt == "auto" and re.fullmatch(r"-?[0-9]+", t):
            return int(t) * 1000  # epoch milliseconds: an instant, whatever the zone
        else:
            value = dt.datetime.fromisoformat(t)
    except ValueError:
        return not_ts
    if value.tzinfo is not None:  # an offset in the value wins over time_zone
        return micros(value)
    return local_to_utc(value, col.time_zone or "UTC", col.ambiguous or "earliest")


# --- what a run wrote, against the oracle ----------------------------------------------------

def select_expr(name, type_):
    """A column as DuckDB selects it (quoted: a column may be named like a keyword)."""
    return f'epoch_us("{name}")' if type_ == "timestamp" else f'"{name}"'


def table_rows(lake, table, columns):
    """{(source_key, line_number): {column: value}} of a table, read by DuckDB
    (timestamps as µs since the epoch, dates as datetime.date)."""
    names = [c.name for c in columns]
    rows = duck_rows(lake, table, [select_expr(c.name, c.type) for c in columns] + ["source_key", "line_number"],
                     partitioned=False)
    out = {}
    for r in rows:
        assert (r[-2], r[-1]) not in out, f"{table}: line {r[-2]}:{r[-1]} loaded twice"
        out[(r[-2], r[-1])] = dict(zip(names, r[:-2]))
    return out


def rejects_rows(lake):
    """Every row of the job's rejects table: (source, source_key, line_number, reason, raw_line)."""
    return duck_rows(lake, "rejects", ["source", "source_key", "line_number", "reason", "raw_line"],
                     partitioned=False)


def diff(got, want, limit=8):
    """A readable account of how two {key: row} maps differ."""
    lines = []
    for k in sorted(set(got) | set(want), key=repr):
        if got.get(k, "absent") != want.get(k, "absent"):
            lines.append(f"  {k}:\n    naslake {got.get(k, 'absent')!r}\n    oracle  {want.get(k, 'absent')!r}")
    return f"{len(lines)} differences\n" + "\n".join(lines[:limit])


def file_reports(run):
    """The run report's per-file entries, by (source, key)."""
    return {(f["source"], f["key"]): f for f in run.report["files"]}


def check_source(run, src, expected=None, all_rejects=None):
    """Everything naslake wrote for a source equals the oracle's reading of its files:
    each loaded row (every column, keyed by source_key and physical line_number), each
    reject (line, reason fragments, and raw_line where the oracle knows it), and each
    file's counts in the run report (records = loaded + rejected, lines_skipped)."""
    expected = expected or src.expected()
    got = table_rows(run.lake, src.table, src.columns)
    want = {(e.key, line): row for e in expected for line, row in e.rows.items()}
    assert got == want, f"{src.table}: " + diff(got, want)

    all_rejects = rejects_rows(run.lake) if all_rejects is None else all_rejects
    mine = {}
    for source, key, line, reason, raw in all_rejects:
        if source == src.name:
            assert (key, line) not in mine, f"{src.name}: two rejects for {key}:{line}"
            mine[(key, line)] = (reason, raw)
    wanted = {}
    for e in expected:
        for line, rej, raw in e.rejects:
            wanted[(e.key, line)] = (rej, raw)
        if e.file_error:
            wanted[(e.key, None)] = (e.file_error, None)
    assert set(mine) == set(wanted), (
        f"{src.name}: rejects at {sorted(mine, key=repr)}, expected {sorted(wanted, key=repr)}\n"
        + "\n".join(f"  {k}: {v[0]}" for k, v in sorted(mine.items(), key=repr)))
    for k, (rej, raw) in wanted.items():
        reason, got_raw = mine[k]
        for fragment in rej.fragments:
            assert fragment in reason, f"{src.name} {k}: reason {reason!r} lacks {fragment!r}"
        assert "\ufffd" not in got_raw, f"{src.name} {k}: raw_line has U+FFFD: {got_raw!r}"
        if raw is not None:
            assert got_raw.rstrip("\r\n") == raw, f"{src.name} {k}: raw_line {got_raw!r}, expected {raw!r}"

    reports = file_reports(run)
    for e in expected:
        f = reports.get((src.name, e.key))
        assert f is not None, f"no report entry for {src.name} {e.key}: {sorted(reports)}"
        assert f["records"] == f["loaded"] + f["rejected"], f
        if e.file_error:
            assert f.get("item_error") and f["loaded"] == 0, f
            continue
        assert "item_error" not in f, f
        assert (f["records"], f["loaded"], f["rejected"]) == (e.records, len(e.rows), len(e.rejects)), (
            f"{src.name} {e.key}: report {f}, oracle records={e.records} rows={len(e.rows)} rejects={len(e.rejects)}")
        assert f.get("lines_skipped", 0) == e.lines_skipped, (f, e.lines_skipped)
        assert f.get("blank_lines", 0) == e.blank_lines, (f, e.blank_lines)


def check_totals(run, sources):
    """The report's totals add up, against the tables themselves."""
    t = run.report["totals"]
    assert t["records_in"] == t["records_loaded"] + t["records_rejected"], t
    rejects = duck_rows(run.lake, "rejects", ["count(*)"], partitioned=False)
    assert t["rejects_rows"] == (rejects[0][0] if rejects else 0), t
    loaded = sum(len(table_rows(run.lake, s.table, s.columns)) for s in sources)
    assert t["records_loaded"] == loaded, (t, loaded)
    files = run.report["files"]
    assert t["records_in"] == sum(f["records"] for f in files), t
