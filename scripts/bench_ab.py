"""Driver of scripts/bench-ab (see there): before against after, alternating."""
import json
import os
import pathlib
import random
import shutil
import statistics
import sys
import tempfile
import time

import duckdb

os.environ.setdefault("NASLAKE_BIN", sys.argv[1] if len(sys.argv) > 1 else "")
from bench_csv import QUOTINGS, generator  # noqa: E402
from bench_dicom import JOB as DICOM_JOB, KEY as DICOM_KEY, corpus as dicom_corpus  # noqa: E402
from bench_incremental import change_local_share, csv_body, key, measure  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH_JOB = ROOT / "scripts" / "bench" / "sensor_csv.toml"
SENSOR_JOB = ROOT / "jobs" / "sensor_readings.toml"


def loaded(out_dir):
    reports = sorted((out_dir / "_naslake" / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(reports[-1].read_text())["totals"]["records_loaded"]


def run_csv(binary, src, out):
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, _ = measure([binary, "run", str(BENCH_JOB), "--input", str(src), "--output", str(out)])
    return wall, rss, loaded(out)


def run_sharded(binary, src, out):
    shutil.rmtree(out, ignore_errors=True)
    total, peak = 0.0, 0.0
    wall, rss, text = measure([binary, "plan", str(BENCH_JOB), "--input", str(src), "--output", str(out),
                               "--shards", "2"])
    url = text.strip().splitlines()[-1]
    total, peak = total + wall, max(peak, rss)
    for i in range(2):
        wall, rss, _ = measure([binary, "work", url, "--shard", str(i)])
        total, peak = total + wall, max(peak, rss)
    wall, rss, _ = measure([binary, "commit", url])
    return total + wall, max(peak, rss), loaded(out)


def run_incremental(binary, share, base_lake, out):
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(base_lake, out)
    os.sync()  # the copy is written out before the run, not during it
    wall, rss, _ = measure([binary, "run", str(SENSOR_JOB), "--input", str(share), "--output", str(out),
                            "--incremental"])
    return wall, rss, loaded(out)


def run_dicom(binary, job, out):
    shutil.rmtree(out, ignore_errors=True)
    wall, rss, _ = measure([binary, "run", str(job), "--output", str(out)], {"NASLAKE_PSEUDONYM_KEY": DICOM_KEY})
    return wall, rss, loaded(out)


def main():
    before, after = sys.argv[1], sys.argv[2]
    csv_mb = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    files = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    repeats = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    dicom_copies = int(sys.argv[6]) if len(sys.argv) > 6 else 20
    only = os.environ.get("BENCH_AB_CASES", "")
    # The CSV cases' files, quoted as bench-csv's QUOTING says.
    quoting = os.environ.get("BENCH_AB_QUOTING", "plain")
    if quoting not in QUOTINGS:
        raise SystemExit(f"BENCH_AB_QUOTING is one of {', '.join(QUOTINGS)}, not {quoting!r}")
    # As bench-dicom: with RUST_BACKTRACE set, dicom-rs captures a backtrace for
    # every error it raises and drops, which a production task does not pay for.
    for var in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE"):
        os.environ.pop(var, None)
    names = ["run (bench-csv)", "plan+work+commit (bench-sharded)", "run --incremental, 1% (bench-incremental)",
             "run (bench-dicom)"]
    # BENCH_AB_CASES=dicom,incremental: only the cases whose names hold one of these,
    # and only their data is made.
    names = [c for c in names if not only or any(w in c for w in only.split(","))]
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-ab-"))
    try:
        cases, made = {}, []
        if any("csv" in c or "sharded" in c for c in names):
            src = work / "csv" / "long"
            src.mkdir(parents=True)
            rows = int(csv_mb * 1e6 / 67)
            con = duckdb.connect()
            for f in range(8):
                lo, hi = rows * f // 8, rows * (f + 1) // 8
                con.execute(generator(f"{lo}, {hi}", src / f"part-{f}.csv", quoting))
            size = sum(p.stat().st_size for p in src.iterdir())
            made.append(f"csv: {size / 2**20:.0f} MiB in 8 files, {rows:,} rows, {quoting}")
            cases["run (bench-csv)"] = lambda b, n: run_csv(b, work / "csv", work / f"out-csv-{n}")
            cases["plan+work+commit (bench-sharded)"] = \
                lambda b, n: run_sharded(b, work / "csv", work / f"out-sh-{n}")
        if any("incremental" in c for c in names):
            rng = random.Random(7)
            share = work / "share"
            for i in range(files):
                p = share / key(i)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(csv_body(rng, i))
            # Each binary's state to start from (their state formats may differ).
            bases = {}
            for name, binary in (("before", before), ("after", after)):
                bases[name] = work / f"base-{name}"
                measure([binary, "run", str(SENSOR_JOB), "--input", str(share), "--output", str(bases[name]),
                         "--incremental"])
            changed = sum(map(len, change_local_share(share, files, rng)))
            made.append(f"incremental: {files:,} files, {changed:,} changed")
            cases["run --incremental, 1% (bench-incremental)"] = \
                lambda b, n: run_incremental(b, share, bases[n], work / f"out-inc-{n}")
        if any("dicom" in c for c in names):
            dicom_files, _ = dicom_corpus(work / "dicom" / "in", dicom_copies)
            dicom_job = work / "dicom" / "job.toml"
            dicom_job.write_text(DICOM_JOB.format(input=work / "dicom" / "in", root=ROOT))
            made.append(f"dicom: {dicom_files:,} files")
            cases["run (bench-dicom)"] = lambda b, n: run_dicom(b, dicom_job, work / f"out-dicom-{n}")
        cases = {c: cases[c] for c in names}
        os.sync()  # the first repetition should not also pay for writing the inputs out
        print(f"{'; '.join(made)}; {repeats} repetitions alternating before/after; {os.cpu_count()} cores\n")
        # Each repetition runs both binaries back to back: its pair shares the
        # machine's state of the moment, which on a noisy machine moves the
        # medians more than a change of a few percent does.
        print(f"{'case':44} {'before s':>9} {'after s':>9} {'after/before':>13} {'pairs faster':>13} "
              f"{'pair ratio':>11} {'RSS before':>11} {'RSS after':>10}")
        for case, go in cases.items():
            times = {"before": [], "after": []}
            rss = {"before": [], "after": []}
            rows_seen = {}
            for r in range(repeats):
                order = [("before", before), ("after", after)]
                if r % 2:
                    order.reverse()
                for name, binary in order:
                    wall, peak, n = go(binary, name)
                    times[name].append(wall)
                    rss[name].append(peak)
                    rows_seen.setdefault(name, n)
                    assert rows_seen[name] == n, (case, name)
            assert rows_seen["before"] == rows_seen["after"], (case, rows_seen)
            b, a = statistics.median(times["before"]), statistics.median(times["after"])
            pairs = [y / x for x, y in zip(times["before"], times["after"])]
            faster = f"{sum(r < 1 for r in pairs)} of {len(pairs)}"
            print(f"{case:44} {b:9.3f} {a:9.3f} {a / b:13.3f} {faster:>13} {statistics.median(pairs):11.3f} "
                  f"{max(rss['before']):9.0f}Mi {max(rss['after']):8.0f}Mi")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
