"""Benchmark body for scripts/bench-flat (see there). The first run of a file is not
measured: on this machine it pays for faulting the file into the page cache and the
binary's first start (4.3 s against 2.7 s at 1 GB, 33 s against 27 s at 10 GB), which
says nothing about how throughput scales. Both inputs must fit the page cache at once,
or the larger is read from disk and the comparison measures the disk."""
import os
import pathlib
import shutil
import statistics
import sys
import tempfile

import json

import duckdb

from bench_csv import BIN, ROOT, generator, measure_usage


def main():
    small_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    large_mb = int(sys.argv[2]) if len(sys.argv) > 2 else 10240
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    work = pathlib.Path(tempfile.mkdtemp(prefix="naslake-bench-flat-"))
    try:
        inputs = {}
        for mb in (small_mb, large_mb):
            src = work / f"in-{mb}" / "long" / "sensors.csv"
            src.parent.mkdir(parents=True)
            duckdb.connect().execute(generator(int(mb * 1e6 / 67), src))
            inputs[mb] = (src, int(mb * 1e6 / 67))
        os.sync()
        total = sum(p.stat().st_size for p, _ in inputs.values())
        print(f"inputs: {', '.join(f'{p.stat().st_size / 2**20:.0f} MiB' for p, _ in inputs.values())} "
              f"({total / 2**30:.1f} GiB together; the page cache must hold both)")

        def run(mb):
            src, rows = inputs[mb]
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [BIN, "run", str(ROOT / "scripts" / "bench" / "sensor_csv.toml"),
                   "--input", str(src.parent.parent), "--output", str(out), "--log-format", "json"]
            wall, cpu, rss, _ = measure_usage(cmd)
            # A run that loaded less is not a faster run.
            report = json.loads(next((out / "_naslake" / "runs").glob("*.json")).read_text())
            assert report["totals"]["records_loaded"] == rows, (mb, report["totals"])
            shutil.rmtree(out, ignore_errors=True)
            return wall, cpu, rss

        for mb in inputs:
            run(mb)  # warm-up, not measured (see the module doc)
        results = {mb: [] for mb in inputs}
        for r in range(repeats):
            for mb in (list(inputs) if r % 2 == 0 else list(inputs)[::-1]):
                results[mb].append(run(mb))
        # Peak RSS as the goal reads it: the median of the repetitions, as for
        # time. Same-size runs spread by 10% and more (189-214 MiB over five 1 GB runs:
        # how much freed memory the allocator still holds when a peak is reached), so
        # a single run, or the largest of a few, cannot tell a 5% growth from that
        # spread; the largest is shown too.
        print(f"{'input':>10} {'wall s':>8} {'MB/s':>7} {'CPU s/GB':>9} {'peak RSS':>9} {'largest':>8}   runs (s; MiB)")
        rows = {}
        for mb, runs in results.items():
            size = inputs[mb][0].stat().st_size
            wall = statistics.median(r[0] for r in runs)
            cpu_per_gb = statistics.median(r[1] for r in runs) / (size / 1e9)
            rss = statistics.median(r[2] for r in runs)
            largest = max(r[2] for r in runs)
            rows[mb] = (size / 1e6 / wall, cpu_per_gb, rss, largest)
            print(f"{size / 2**20:8.0f}Mi {wall:8.2f} {rows[mb][0]:7.0f} {cpu_per_gb:9.2f} {rss:6.0f}MiB {largest:5.0f}MiB   "
                  + ", ".join(f"{r[0]:.2f}" for r in runs) + "; " + ", ".join(f"{r[2]:.0f}" for r in runs))
        (s_mbs, s_cpu, s_rss, s_top), (l_mbs, l_cpu, l_rss, l_top) = rows[small_mb], rows[large_mb]
        print(f"\nlarge/small: throughput {l_mbs / s_mbs:.3f}x, CPU per GB {l_cpu / s_cpu:.3f}x, "
              f"peak RSS {l_rss / s_rss:.3f}x (medians; the largest runs' {l_top / s_top:.3f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
