"""Benchmark body for scripts/bench-images (see there). Prints one line per tool:
images per second (median of the repeats), bytes read per image, peak RSS, and
the ratio of its throughput to the Python implementation's.

The Python side is what a user would otherwise write: Pillow + numpy over every
file, the same metrics (tests/image_oracle.py), in one process, as
  naive: Image.open → convert("L") → resize(BOX) (a full-size decode), and
  draft: the same with Image.draft first (libjpeg decodes at 1/2, 1/4 or 1/8 of the
  size by DCT scaling: faster, and not the same pixels; naslake decodes at full size).
Peak RSS is each tool's own process (wait4)."""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]

PYTHON = r"""
import os, sys
sys.path.insert(0, sys.argv[3])
import image_oracle
draft = sys.argv[2] == "draft"
n = read = 0
for root, _, names in os.walk(sys.argv[1]):
    for name in names:
        p = os.path.join(root, name)
        image_oracle.inspect(p, draft=draft)
        read += os.path.getsize(p)
        n += 1
print(n, read)
"""

GENERATE = r"""
import os, sys
import numpy as np
from PIL import Image, ImageDraw
out, count, width, height, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(20261201 + first)
y, x = np.mgrid[0:height, 0:width].astype(np.float32)
noise = rng.normal(0, 5, (height, width, 3)).astype(np.float32)
for i in range(first, first + count):
    # A scene of its own (no two are near-duplicates): a gradient in a random
    # direction, a random grid of parts, and sensor noise (one noise field rolled
    # by a random offset, so generating stays cheap).
    a = rng.uniform(0, 6.3)
    img = 110 + 50 * (np.cos(a) * x / width + np.sin(a) * y / height)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").convert("RGB")
    d = ImageDraw.Draw(im)
    for _ in range(40):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.02, 0.12) * width
        d.ellipse((cx - r, cy - r * 0.7, cx + r, cy + r * 0.7), fill=tuple(int(v) for v in rng.integers(20, 235, 3)))
    arr = np.asarray(im, dtype=np.float32) + np.roll(noise, int(rng.integers(0, width)), axis=1)
    station = f"line-{i % 8}"
    os.makedirs(os.path.join(out, station), exist_ok=True)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").save(os.path.join(out, station, f"{i:06d}.jpg"), quality=90)
"""


def measure_rss(cmd, env=None):
    """Wall time and peak RSS of one process (wait4: its own, not the maximum so
    far). Its output goes to files, so a chatty child never blocks on a pipe."""
    with tempfile.TemporaryFile() as o, tempfile.TemporaryFile() as e:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=o, stderr=e, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        o.seek(0)
        e.seek(0)
        out, err = o.read().decode(), e.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 3):
        raise SystemExit(f"{cmd[0]} failed ({code}):\n{out}\n{err}")
    return wall, usage.ru_maxrss / 1024, out


def generate(dst, count, width, height):
    # Two processes: generation is not what is measured, but it is slow.
    per = (count + 1) // 2
    procs = [subprocess.Popen([sys.executable, "-c", GENERATE, str(dst), str(min(per, count - i * per)),
                               str(width), str(height), str(i * per)]) for i in range(2) if count - i * per > 0]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("corpus generation failed")
    files = list(dst.rglob("*.jpg"))
    return len(files), sum(f.stat().st_size for f in files)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    width, height = map(int, (sys.argv[3] if len(sys.argv) > 3 else "2448x2048").split("x"))
    with tempfile.TemporaryDirectory(prefix="naslake-bench-images-") as tmp:
        tmp = pathlib.Path(tmp)
        n, size = generate(tmp / "in", count, width, height)
        env = {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        tools = ("python-naive", "python-draft", "naslake")
        results = {t: [] for t in tools}
        for r in range(repeats):
            lake = tmp / f"lake{r}"
            wall, rss, _ = measure_rss([BIN, "run", str(ROOT / "jobs" / "images.toml"), "--input", str(tmp / "in"),
                                        "--output", str(lake)], env)
            report = next((lake / "_naslake" / "runs").glob("*.json"))
            files = json.loads(report.read_text())["files"]
            read = sum(f["bytes_read"] for f in files)
            loaded = sum(f.get("loaded", 0) for f in files)
            results["naslake"].append((wall, rss, read, loaded))
            for mode in ("naive", "draft"):
                wall, rss, out = measure_rss([sys.executable, "-c", PYTHON, str(tmp / "in"), mode, str(ROOT / "tests")])
                ok, read = map(int, out.split())
                results[f"python-{mode}"].append((wall, rss, read, ok))
        print(f"corpus: {n} JPEGs of {width}x{height} ({size / 1e6:.0f} MB, {size / n / 1e6:.2f} MB each), "
              f"{repeats} repeats, median wall time, {os.cpu_count()} cores")
        rates = {t: n / statistics.median(r[0] for r in results[t]) for t in tools}
        for tool in tools:
            runs = results[tool]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            rate = rates[tool]
            print(f"{tool:13} {wall:7.2f} s  {rate:7.1f} images/s  {runs[0][2] / n / 1e6:6.2f} MB read/image  "
                  f"{runs[0][3]:6d} indexed  peak RSS {rss:6.0f} MiB  "
                  f"{rate / rates['python-naive']:5.2f}x naive  {rate / rates['python-draft']:5.2f}x draft")


if __name__ == "__main__":
    main()
