"""Benchmark body for scripts/bench-dicom (see there). Prints one line per tool:
files per second (median of the repeats), bytes read per file, peak RSS, and the
ratio of its throughput to pydicom's. Peak RSS and bytes read come from the
tool's own process (wait4(); /proc/PID/io read_bytes + rchar is not portable, so
naslake's bytes are its run report's and pydicom's the sum of what it read)."""
import importlib.util
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]
KEY = "benchmark-pseudonym-key-0123456789"

PYDICOM = r"""
import os, sys, pydicom
read = 0
ok = 0
for root, _, names in os.walk(sys.argv[1]):
    for n in names:
        p = os.path.join(root, n)
        try:
            with open(p, 'rb') as f:
                ds = pydicom.dcmread(f, stop_before_pixels=True)
                read += f.tell()
            ok += 1
        except Exception:
            pass
print(ok, read)
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


def measure(cmd, env=None):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    out, err = p.stdout.read().decode(), p.stderr.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise SystemExit(f"{cmd[0]} failed ({code}):\n{out}\n{err}")
    return wall, usage.ru_maxrss / 1024, out


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
    with tempfile.TemporaryDirectory(prefix="naslake-bench-dicom-") as tmp:
        tmp = pathlib.Path(tmp)
        n, size = corpus(tmp / "in", copies)
        job = tmp / "job.toml"
        job.write_text(JOB.format(input=tmp / "in", root=ROOT))
        # RUST_BACKTRACE makes every dicom-rs (snafu) error capture a backtrace,
        # which a production task does not pay for: it is unset, as there.
        env = {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        env["NASLAKE_PSEUDONYM_KEY"] = KEY
        results = {"naslake": [], "pydicom": []}
        for r in range(repeats):
            lake = tmp / f"lake{r}"
            wall, rss, out = measure([BIN, "run", str(job), "--output", str(lake)], env)
            report = next((lake / "_naslake" / "runs").glob("*.json"))
            files = json.loads(report.read_text())["files"]
            read = sum(f["bytes_read"] for f in files)
            loaded = sum(f.get("loaded", 0) for f in files)
            results["naslake"].append((wall, rss, read, loaded))
            wall, rss, out = measure([sys.executable, "-c", PYDICOM, str(tmp / "in")])
            ok, read = map(int, out.split())
            results["pydicom"].append((wall, rss, read, ok))
        print(f"corpus: {n} files ({size / 1e6:.1f} MB; the wheels' .dcm files x{copies}), {repeats} repeats, median wall time")
        base = None
        for tool in ("pydicom", "naslake"):
            runs = results[tool]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            read = runs[0][2]
            indexed = runs[0][3]
            rate = n / wall
            base = base or rate
            print(f"{tool:8} {wall:7.2f} s  {rate:9.0f} files/s  {read / n:9.0f} B read/file  "
                  f"{indexed:6d} indexed  peak RSS {rss:6.0f} MiB  {rate / base:5.1f}x pydicom")


if __name__ == "__main__":
    main()
