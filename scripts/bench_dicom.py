"""Benchmark body for scripts/bench-dicom (see there). Prints one line per tool:
files per second (median of the repeats), bytes read per file, peak RSS, and the
ratio of its throughput to pydicom's at equal cores (the headline) and to one
pydicom process.

naslake uses every core in one process; so does pydicom here: one Python process
per core (os.sched_getaffinity), each started fresh and taking every N-th file of
the same sorted listing, timed from the first start to the last exit (interpreter
start-up and imports included, as a user pays them). The single-process figure is
the same worker given every file. Repetitions alternate: naslake, pydicom ×N,
pydicom ×1. Peak RSS comes from the kernel (wait4(), each process's own): naslake's
process, and for pydicom ×N the sum of its workers' peaks (they run at once).
Bytes read: /proc/PID/io read_bytes + rchar is not portable, so naslake's bytes
are its run report's and pydicom's the sum of what it read."""
import importlib.util
import json
import os
import pathlib
import shutil
import statistics
import sys
import tempfile

from bench_procs import measure

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]
KEY = "benchmark-pseudonym-key-0123456789"

# One worker: argv = DIR PART PARTS; reads every PARTS-th file of DIR's sorted
# listing, starting at PART (PARTS = 1: all of them, the single-process baseline).
PYDICOM = r"""
import os, sys, pydicom
part, parts = int(sys.argv[2]), int(sys.argv[3])
paths = []
for root, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    paths.extend(os.path.join(root, n) for n in sorted(names))
read = ok = failed = 0
for p in paths[part::parts]:
    try:
        with open(p, 'rb') as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            read += f.tell()
        ok += 1
    except Exception:
        failed += 1
print(ok, failed, read)
"""

JOB = """
name = "bench_dicom"
input = "{input}"
[sources.dicom]
format = "dicom"
suffixes = [".dcm"]
[sources.dicom.deidentification]
retain_longitudinal_temporal_information = "modified_dates"
retain_patient_characteristics = true
clean_descriptors = true
[tables.dicom_instances]
schema = "{root}/schemas/dicom_instances.toml"
mode = "overwrite"
[tables.dicom_rejects]
schema = "{root}/schemas/dicom_rejects.toml"
from = "rejects"
mode = "overwrite"
"""


def corpus(dst, copies):
    import pydicom
    bases = [pathlib.Path(pydicom.__file__).parent / "data" / "test_files",
             pathlib.Path(importlib.util.find_spec("data_store").origin).parent / "data"]
    files = [f for b in bases for f in b.rglob("*.dcm") if f.is_file()]
    total = 0
    for c in range(copies):
        for i, f in enumerate(files):
            d = dst / f"copy{c:02d}"
            d.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, d / f"{i:04d}_{f.name}")
            total += f.stat().st_size
    return len(files) * copies, total


def main():
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    cores = len(os.sched_getaffinity(0))
    # pydicom in one process per core (the headline), then in one process.
    variants = {f"pydicom x{k}": k for k in sorted({cores, 1}, reverse=True)}
    equal = f"pydicom x{cores}"
    with tempfile.TemporaryDirectory(prefix="naslake-bench-dicom-") as tmp:
        tmp = pathlib.Path(tmp)
        n, size = corpus(tmp / "in", copies)
        # The first run timed should not also pay for writing the copies out
        # (12 GB at 200 copies).
        os.sync()
        job = tmp / "job.toml"
        job.write_text(JOB.format(input=tmp / "in", root=ROOT))
        # RUST_BACKTRACE makes every dicom-rs (snafu) error capture a backtrace,
        # which a production task does not pay for: it is unset, as there.
        env = {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        env["NASLAKE_PSEUDONYM_KEY"] = KEY
        results = {"naslake": [], **{v: [] for v in variants}}
        for r in range(repeats):
            lake = tmp / f"lake{r}"
            wall, rss, walls, _ = measure([[BIN, "run", str(job), "--output", str(lake)]], env)
            report = next((lake / "_naslake" / "runs").glob("*.json"))
            files = json.loads(report.read_text())["files"]
            read = sum(f["bytes_read"] for f in files)
            loaded = sum(f.get("loaded", 0) for f in files)
            results["naslake"].append((wall, rss, read, loaded, walls))
            for name, parts in variants.items():
                wall, rss, walls, outs = measure(
                    [[sys.executable, "-c", PYDICOM, str(tmp / "in"), str(part), str(parts)] for part in range(parts)])
                counts = [tuple(map(int, out.split())) for out in outs]
                ok, failed, read = (sum(c[j] for c in counts) for j in range(3))
                # Every file went to exactly one worker, and the split changes nothing.
                if ok + failed != n:
                    raise SystemExit(f"{name}: its workers saw {ok + failed} files of {n}")
                results[name].append((wall, rss, read, ok, walls))
        python = [r for v in variants for r in results[v]]
        if len({(r[2], r[3]) for r in python}) != 1:
            raise SystemExit(f"pydicom runs disagree (bytes read, files read): {sorted({(r[2], r[3]) for r in python})}")
        print(f"corpus: {n} files ({size / 1e6:.1f} MB; the wheels' .dcm files x{copies}), {repeats} repeats, "
              f"median wall time, {cores} cores")
        rates = {t: n / statistics.median(r[0] for r in results[t]) for t in results}
        for tool in (*variants, "naslake"):
            runs = results[tool]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            read = runs[0][2]
            indexed = runs[0][3]
            rate = rates[tool]
            print(f"{tool:11} {wall:7.2f} s  {rate:9.0f} files/s  {read / n:9.0f} B read/file  "
                  f"{indexed:6d} indexed  peak RSS {rss:6.0f} MiB  "
                  + "  ".join(f"{rate / rates[v]:5.2f}x {v}" for v in variants))
        print(f"peak RSS: the largest over the repeats of each process's own peak (wait4); for pydicom xN the sum of "
              f"its N workers' peaks. pydicom xN's workers exit at "
              + "; ".join(", ".join(f"{w:.2f}" for w in sorted(r[4])) for r in results[equal]) + " s (each repeat).")
        print(f"equal cores: naslake {rates['naslake'] / rates[equal]:.2f}x pydicom in {cores} processes on {cores} cores"
              + (f" ({rates['naslake'] / rates['pydicom x1']:.2f}x one pydicom process)" if cores > 1 else ""))


if __name__ == "__main__":
    main()
