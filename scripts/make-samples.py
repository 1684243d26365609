#!/usr/bin/env python3
"""Writes the bundled sensor samples under samples/sensor (deterministic: seed 7).

Each file carries a few deliberately bad lines; samples/README.md lists them, and
tests/test_samples.py checks that each lands in sensor_rejects with its reason.
Run it again only to change the samples: the files are committed.
"""
import datetime as dt
import gzip
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parent.parent / "samples" / "sensor"
rng = random.Random(7)


def ts(base, i, minutes=5):
    return base + dt.timedelta(minutes=minutes * i)


def long_day1():
    base = dt.datetime(2024, 3, 1, 0, 0, tzinfo=dt.timezone.utc)
    lines = ["sensor_id,timestamp,value,metric_name,unit"]
    for i in range(60):
        t = ts(base, i)
        for sensor in ("press-01", "press-02"):
            temp = 61.0 + rng.gauss(0, 0.8)
            if sensor == "press-02" and i == 41:
                temp = 95.5  # an overheating spike: a sensor_anomalies row
            lines.append(f"{sensor},{t:%Y-%m-%dT%H:%M:%SZ},{temp:.2f},temperature,degC")
            if i % 3 == 0:
                # Same instant written with an offset and a fraction of a second.
                local = t.astimezone(dt.timezone(dt.timedelta(hours=9)))
                lines.append(f"{sensor},{local:%Y-%m-%dT%H:%M:%S}.250+09:00,{412 + rng.gauss(0, 3):.1f},pressure,kPa")
    # Deliberately bad lines.
    lines.insert(10, "press-01,2024-03-01T00:20:00Z,61.2,temperature")  # 4 fields
    lines.insert(20, "press-02,2024-03-01T00:45:00Z,6l.9,temperature,degC")  # bad number
    lines.insert(30, "press-01,2024-02-30T01:10:00Z,60.8,temperature,degC")  # no such day
    return "\n".join(lines) + "\n"


def long_day2_gz():
    # Epoch milliseconds, CRLF line ends, a BOM, and quoted fields with a comma
    # and a line break inside.
    base = dt.datetime(2024, 3, 2, 0, 0, tzinfo=dt.timezone.utc)
    lines = ["\ufeffsensor_id,timestamp,value,metric_name,unit"]
    for i in range(48):
        t = ts(base, i, 10)
        ms = int(t.timestamp() * 1000)
        lines.append(f"press-01,{ms},{61 + rng.gauss(0, 0.8):.2f},temperature,degC")
        lines.append(f"\"oven-3, zone A\",{ms},{180 + rng.gauss(0, 2):.1f},temperature,degC")
    lines.insert(5, "oven-3,1709337600000,182.1,temperature,\"deg\nC\"")  # multi-line field
    lines.insert(12, "press-01,,61.0,temperature,degC")  # empty required timestamp
    lines.insert(18, "press-01,1709340000000,NaN,temperature,degC")  # not a finite number
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def wide_day1():
    base = dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.timezone.utc)
    lines = ["timestamp,sensor_id,temperature,pressure,vibration,quality"]
    for i in range(40):
        t = ts(base, i, 15)
        vib = f"{2.0 + rng.gauss(0, 0.2):.3f}" if i % 7 else ""  # empty cell: NULL reading
        quality = "good" if i % 11 else "suspect"
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},line-7,{70 + rng.gauss(0, 1):.2f},{101 + rng.gauss(0, 0.5):.2f},{vib},{quality}")
    lines.insert(8, "2024-03-01 08:00:00,,70.1,101.2,2.1,good")  # empty required sensor_id
    lines.insert(16, "2024-03-01 10:00:00,line-7,seventy,101.2,2.1,good")  # bad number
    return "\n".join(lines) + "\n"


def main():
    (ROOT / "long").mkdir(parents=True, exist_ok=True)
    (ROOT / "wide").mkdir(parents=True, exist_ok=True)
    (ROOT / "long" / "line1-2024-03-01.csv").write_text(long_day1())
    # mtime=0 keeps the gzip bytes identical from run to run.
    with open(ROOT / "long" / "line1-2024-03-02.csv.gz", "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(long_day2_gz())
    (ROOT / "wide" / "line7-2024-03-01.csv").write_text(wide_day1())
    # Not a CSV: listed, skipped by the suffix filter, and counted as skipped.
    (ROOT / "long" / "README.txt").write_text("Long-layout sensor logs, one reading per line.\n")


if __name__ == "__main__":
    main()
