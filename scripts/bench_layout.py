"""Driver of scripts/bench-layout (see there)."""
import collections
import datetime
import os
import pathlib
import random
import shutil
import sys
import tempfile

from bench_incremental import measure  # (wall s, peak RSS MiB, stdout) of one process

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]


def main():
    files, per_file, days = (int(a) for a in (sys.argv[1:] + ["500", "200", "5000"][len(sys.argv) - 1:])[:3])
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-layout-"))
    try:
        share = work / "share" / "long"
        share.mkdir(parents=True)
        rng = random.Random(7)
        base = datetime.date(2020, 1, 1)
        for f in range(files):
            rows = ["sensor_id,timestamp,value,metric_name,unit"]
            for _ in range(per_file):
                d = base + datetime.timedelta(days=rng.randrange(days))
                rows.append(f"s-{rng.randrange(50):02d},{d.isoformat()}T{rng.randrange(24):02d}:00:00Z,"
                            f"{rng.uniform(0, 100):.3f},temperature,degC")
            (share / f"f{f:04d}.csv").write_text("\n".join(rows) + "\n")
        out = work / "lake"
        wall, rss, _ = measure([BIN, "run", str(ROOT / "jobs" / "sensor_readings.toml"), "--input",
                                str(work / "share"), "--output", str(out), "--log-format", "json"])
        per = collections.Counter(f.parent.parent.name for f in (out / "sensor_readings").rglob("*.parquet"))
        print(f"{files} unordered files x {per_file} readings over {days} days: {wall:.2f} s, "
              f"peak RSS {rss:.0f} MiB; sensor_readings: {len(per)} partitions, "
              f"{sum(per.values())} files, at most {max(per.values())} per partition")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
