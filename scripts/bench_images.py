"""Benchmark body for scripts/bench-images (see there). Prints one line per tool:
images per second (median of the repeats), bytes read per image, peak RSS, and
the ratio of its throughput to the Python implementation's.

The Python side is what a user would otherwise write: Pillow + numpy over every
file, the same metrics (tests/image_oracle.py), as
  naive: Image.open → convert("L") → resize(BOX) (a full-size decode), and
  draft: the same with Image.draft first (libjpeg decodes at 1/2, 1/4 or 1/8 of the
  size by DCT scaling: faster, and not the same pixels; naslake decodes at full size),
each in one process per core (os.sched_getaffinity; naslake uses every core in one
process) and in one process. The per-core processes are started fresh, each takes
every N-th file of the same sorted listing, and the time runs from the first start
to the last exit (interpreter start-up and imports included, as a user pays them).
The headline is naslake against naive at equal cores. Repetitions alternate:
naslake, then each mode with N processes and with one.
Peak RSS comes from the kernel (wait4(), each process's own): naslake's process,
and for N Python processes the sum of their peaks (they run at once).
Last, for JPEGs only, the decode alone on one core (examples/jpeg_decode_floor.rs,
naslake's own decode; Pillow to RGB and to gray; the first 200 files in memory,
medians of three passes, measured once after the repeats) and the ceiling it sets
on naslake at equal cores: the cores' decode rate over naive's rate.

FORMAT progressive writes the same scenes as progressive JPEGs (Pillow's
`progressive=True`, quality 90, timed as JPEGs are). FORMAT png writes the same
scenes as PNG (Pillow's default compression level) and runs naive only: `draft`
changes nothing for a PNG (it only scales JPEG decodes)."""
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from bench_procs import measure

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = os.environ["NASLAKE_BIN"]

# One worker: argv = DIR MODE ORACLE_DIR PART PARTS; inspects every PARTS-th file
# of DIR's sorted listing, starting at PART (PARTS = 1: all of them).
PYTHON = r"""
import os, sys
sys.path.insert(0, sys.argv[3])
import image_oracle
draft = sys.argv[2] == "draft"
part, parts = int(sys.argv[4]), int(sys.argv[5])
paths = []
for root, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    paths.extend(os.path.join(root, name) for name in sorted(names))
n = read = 0
for p in paths[part::parts]:
    image_oracle.inspect(p, draft=draft)
    read += os.path.getsize(p)
    n += 1
print(n, read)
"""

# Pillow's decode alone, one core, the first FLOOR_FILES files in memory: to RGB,
# and to gray at full size (draft("L") with the image's own size asks
# libjpeg-turbo for luma only); the median of three passes each, as
# examples/jpeg_decode_floor.rs times zune-jpeg.
FLOOR_FILES = 200
PILLOW_DECODE = r"""
import io, os, statistics, sys, time
from PIL import Image
paths = sorted(os.path.join(r, f) for r, _, fs in os.walk(sys.argv[1]) for f in fs if f.endswith(".jpg"))
data = [open(p, "rb").read() for p in paths[:int(sys.argv[2])]]
ms = []
for gray in (False, True):
    passes = []
    for _ in range(3):
        start = time.perf_counter()
        for b in data:
            im = Image.open(io.BytesIO(b))
            if gray:
                im.draft("L", im.size)
            im.load()
        passes.append((time.perf_counter() - start) * 1e3 / len(data))
    ms.append(statistics.median(passes))
print(len(data), *ms)
"""

GENERATE = r"""
import os, sys
import numpy as np
from PIL import Image, ImageDraw
out, count, width, height, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fmt = sys.argv[6]
save = {"jpg": {"quality": 90}, "progressive": {"quality": 90, "progressive": True}, "png": {}}[fmt]
suffix = "png" if fmt == "png" else "jpg"
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
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").save(os.path.join(out, station, f"{i:06d}.{suffix}"), **save)
"""


def generate(dst, count, width, height, fmt="jpg"):
    # Two processes: generation is not what is measured, but it is slow.
    per = (count + 1) // 2
    procs = [subprocess.Popen([sys.executable, "-c", GENERATE, str(dst), str(min(per, count - i * per)),
                               str(width), str(height), str(i * per), fmt])
             for i in range(2) if count - i * per > 0]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit("corpus generation failed")
    files = list(dst.rglob("*.png" if fmt == "png" else "*.jpg"))
    return len(files), sum(f.stat().st_size for f in files)


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    size_arg = sys.argv[3] if len(sys.argv) > 3 else "2448x2048"
    try:
        width, height = map(int, size_arg.split("x"))
    except ValueError:
        raise SystemExit(f"WIDTHxHEIGHT is two numbers, as in 2448x2048, not {size_arg!r}") from None
    fmt = sys.argv[4] if len(sys.argv) > 4 else "jpg"
    if fmt not in ("jpg", "progressive", "png"):
        raise SystemExit(f"FORMAT is jpg, progressive or png, not {fmt!r}")
    cores = len(os.sched_getaffinity(0))
    procs = sorted({cores, 1}, reverse=True)
    # Each mode in one process per core (first: the equal-core baseline), then in
    # one. `draft` only scales JPEG decodes: for PNGs it would time naive again.
    modes = ("naive",) if fmt == "png" else ("naive", "draft")
    variants = {f"{mode} x{k}": (mode, k) for mode in modes for k in procs}
    baselines = [f"{mode} x{cores}" for mode in modes]
    naive = baselines[0]
    with tempfile.TemporaryDirectory(prefix="naslake-bench-images-") as tmp:
        tmp = pathlib.Path(tmp)
        n, size = generate(tmp / "in", count, width, height, fmt)
        os.sync()  # the first run timed should not also pay for writing the corpus out
        env = {k: v for k, v in os.environ.items() if k not in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE")}
        results = {"naslake": [], **{v: [] for v in variants}}
        for r in range(repeats):
            lake = tmp / f"lake{r}"
            wall, rss, walls, _ = measure([[BIN, "run", str(ROOT / "jobs" / "images.toml"), "--input", str(tmp / "in"),
                                            "--output", str(lake)]], env)
            report = next((lake / "_naslake" / "runs").glob("*.json"))
            files = json.loads(report.read_text())["files"]
            read = sum(f["bytes_read"] for f in files)
            loaded = sum(f.get("loaded", 0) for f in files)
            # A run that skipped or refused images is not a faster run.
            if (loaded, read) != (n, size):
                raise SystemExit(f"naslake: {loaded} images ({read} bytes) indexed of {n} ({size} bytes)")
            results["naslake"].append((wall, rss, read, loaded, walls))
            for name, (mode, parts) in variants.items():
                wall, rss, walls, outs = measure(
                    [[sys.executable, "-c", PYTHON, str(tmp / "in"), mode, str(ROOT / "tests"), str(part), str(parts)]
                     for part in range(parts)])
                counts = [tuple(map(int, out.split())) for out in outs]
                ok, read = sum(c[0] for c in counts), sum(c[1] for c in counts)
                # Every image went to exactly one worker, and was inspected.
                if (ok, read) != (n, size):
                    raise SystemExit(f"python {name}: {ok} images ({read} bytes) inspected of {n} ({size} bytes)")
                results[name].append((wall, rss, read, ok, walls))
        kind = {"jpg": "JPEGs", "progressive": "progressive JPEGs", "png": "PNGs"}[fmt]
        print(f"corpus: {n} {kind} of {width}x{height} ({size / 1e6:.0f} MB, {size / n / 1e6:.2f} MB each), "
              f"{repeats} repeats, median wall time, {cores} cores")
        rates = {t: n / statistics.median(r[0] for r in results[t]) for t in results}
        for tool in (*(f"python-{v}" for v in variants), "naslake"):
            runs = results[tool.removeprefix("python-")]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            rate = rates[tool.removeprefix("python-")]
            print(f"{tool:16} {wall:7.2f} s  {rate:7.1f} images/s  {runs[0][2] / n / 1e6:6.2f} MB read/image  "
                  f"{runs[0][3]:6d} indexed  peak RSS {rss:6.0f} MiB  "
                  + "  ".join(f"{rate / rates[b]:5.2f}x {b}" for b in baselines)
                  + (f"  {rate / rates['naive x1']:5.2f}x naive x1" if cores > 1 else ""))
        print("peak RSS: the largest over the repeats of each process's own peak (wait4); for python-MODE xN the sum "
              "of its N workers' peaks. Workers exit at (each repeat): "
              + "  ".join(f"{v} " + "; ".join(", ".join(f"{w:.1f}" for w in sorted(r[4])) for r in results[v])
                          for v in baselines) + " s")
        print(f"equal cores: naslake {rates['naslake'] / rates[naive]:.2f}x Pillow + numpy (full decode) in {cores} "
              f"processes on {cores} cores"
              + (f" ({rates['naslake'] / rates['naive x1']:.2f}x one process)" if cores > 1 else ""))
        if fmt == "png":
            return
        # The floor under naslake's time: the decode alone on one core (files in
        # memory), zune-jpeg as naslake asks for it, beside libjpeg-turbo (in
        # Pillow) decoding to RGB and, with draft("L") at full size, to gray.
        floor = subprocess.run([str(pathlib.Path(BIN).parent / "examples" / "jpeg_decode_floor"), str(tmp / "in"),
                                str(FLOOR_FILES)], capture_output=True, text=True, check=True, env=env)
        files, zune_ms, pixels = floor.stdout.split()
        if int(pixels) != int(files) * width * height:
            raise SystemExit(f"jpeg_decode_floor decoded {pixels} pixels of {files} images of {width}x{height}")
        zune_ms = float(zune_ms)
        pillow = subprocess.run([sys.executable, "-c", PILLOW_DECODE, str(tmp / "in"), str(FLOOR_FILES)],
                                capture_output=True, text=True, check=True)
        _, rgb_ms, gray_ms = map(float, pillow.stdout.split())
        print(f"decode alone, one core, median of 3 passes over {files} images, ms/image: zune-jpeg to luma as "
              f"naslake runs it {zune_ms:.1f}; Pillow (libjpeg-turbo) to RGB {rgb_ms:.1f}, to gray {gray_ms:.1f}")
        print(f"ceiling at equal cores with zune-jpeg, were all but its decode free: "
              f"{cores * 1e3 / zune_ms / rates[naive]:.2f}x Pillow + numpy (full decode) in {cores} processes")


if __name__ == "__main__":
    main()
