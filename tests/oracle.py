"""An independent reading of sensor CSV files, written with Python's csv and datetime
modules, to check naslake's output against. It implements the job's rules (declared
columns, required fields, finite numbers, ISO-8601 or epoch-millisecond timestamps)
without sharing any code with naslake."""
import csv
import datetime as dt
import gzip
import io
import math
import pathlib

LONG = [("sensor_id", "string", True), ("timestamp", "timestamp", True), ("value", "double", True),
        ("metric_name", "string", True), ("unit", "string", False)]
WIDE = [("timestamp", "timestamp", True), ("sensor_id", "string", True), ("temperature", "double", False),
        ("pressure", "double", False), ("vibration", "double", False), ("quality", "string", False)]
WIDE_UNITS = {"temperature": "degC", "pressure": "kPa", "vibration": "mm/s"}
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def to_micros(text):
    t = text.strip()
    if t.lstrip("-").isdigit():
        return int(t) * 1000
    d = dt.datetime.fromisoformat(t)
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    delta = d - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def convert(kind, text):
    if kind == "string":
        return text
    if kind == "double":
        v = float(text.strip())
        if not math.isfinite(v):
            raise ValueError("not finite")
        return v
    return to_micros(text)


def read_records(path):
    """Yields (line_number, fields) per record, or raises for an unreadable file."""
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""))
    last = 0
    for fields in reader:
        start = last + 1
        last = reader.line_num
        if fields:
            yield start, fields


def read_layout(root, prefix, layout):
    """(loaded rows keyed by (source_key, line), rejected (source_key, line) set)."""
    loaded, rejected = {}, set()
    for path in sorted((root / prefix).rglob("*")):
        if not path.is_file() or not path.name.lower().endswith((".csv", ".csv.gz")):
            continue
        key = path.relative_to(root).as_posix()
        records = read_records(path)
        header = next(records)[1]
        order = [name.strip().lower() for name in header]
        for line, fields in records:
            if len(fields) != len(order):
                rejected.add((key, line))
                continue
            row, ok = {}, True
            for name, kind, required in layout:
                text = fields[order.index(name)]
                if text == "" or (kind != "string" and text.strip() == ""):
                    if required:
                        ok = False
                        break
                    row[name] = None
                    continue
                try:
                    row[name] = convert(kind, text)
                except ValueError:
                    ok = False
                    break
            if ok:
                loaded[(key, line)] = row
            else:
                rejected.add((key, line))
    return loaded, rejected


def expected_readings(root):
    """The sensor_readings rows the job must write for the files under root, as
    (sensor_id, metric_name, reading_ts_micros, value, unit, quality, source_key, line_number, dt)."""
    root = pathlib.Path(root)
    long_rows, long_rej = read_layout(root, "long", LONG)
    wide_rows, wide_rej = read_layout(root, "wide", WIDE)
    out = []
    for (key, line), r in long_rows.items():
        out.append((r["sensor_id"], r["metric_name"], r["timestamp"], r["value"], r["unit"], None, key, line,
                    day(r["timestamp"])))
    for (key, line), r in wide_rows.items():
        for metric, unit in WIDE_UNITS.items():
            out.append((r["sensor_id"], metric, r["timestamp"], r[metric], unit, r["quality"], key, line,
                        day(r["timestamp"])))
    return sorted(out, key=repr), long_rej | wide_rej


def day(micros):
    return (EPOCH + dt.timedelta(microseconds=micros)).strftime("%Y-%m-%d")
