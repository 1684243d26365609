#!/usr/bin/env python3
"""Joins Pillow's view of every file under images/ with naslake's lake tables.
Usage: image_variants_survey.py IMAGES_DIR LAKE_DIR  → survey.tsv beside the lake, and a summary."""

import os
import sys
import warnings

import duckdb
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import image_oracle as oracle  # noqa: E402

_open = Image.open


def _open_stored(*a, **k):
    """Image.open that keeps a TIFF as stored (drops its Orientation before load)."""
    im = _open(*a, **k)
    if im.format == "TIFF" and 274 in im.tag_v2:
        im._size = im._tile_size
        im.tag_v2.pop(274, None)
        im.getexif().pop(274, None)
    return im


oracle.Image.open = _open_stored

root = sys.argv[1]
lake = sys.argv[2]
manifest = os.path.join(root, "manifest.tsv")
if os.path.exists(manifest):
    what = dict(line.rstrip("\n").split("\t") for line in open(manifest))
else:  # any collection: every file under root
    what = {os.path.relpath(os.path.join(d, f), root): "" for d, _, fs in os.walk(root) for f in fs}

con = duckdb.connect()
ins = {r[0]: r[1:] for r in con.execute(
    f"select source_key, width, height, color_type, bit_depth, orientation, brightness_p50, rms_contrast, entropy, "
    f"sharpness, phash, format from read_parquet('{lake}/image_inspections/**/*.parquet')").fetchall()}
rej = {r[0]: r[1:] for r in con.execute(
    f"select source_key, stage, reason from read_parquet('{lake}/image_rejects/**/*.parquet')").fetchall()}

rows = []
for rel in sorted(what):
    path = os.path.join(root, rel)
    info = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with Image.open(path) as im:
                info["size"] = im.size
                # Stored size: Pillow 13 turns a TIFF by its Orientation tag on
                # open/load (size swapped for 5-8), JPEG it leaves as stored.
                info["stored"] = getattr(im, "_tile_size", None) or im.size
                info["mode"] = im.mode
                im.load()
                info["ok"] = True
        except Exception as e:  # noqa: BLE001
            info["ok"] = False
            info["err"] = f"{type(e).__name__}: {e}"
    info["warn"] = "; ".join(str(w.message) for w in caught)
    if rel in ins:
        w, h, ct, bd, orient, p50, rms, ent, sharp, phash, fmt = ins[rel]
        nas = f"indexed {w}x{h} {ct}/{bd}"
        dims = (w, h) == tuple(info.get("stored") or ())
        metric = ""
        if info["ok"]:
            try:
                want = oracle.inspect(path)
                # JPEG data through another decoder: within a gray level, as
                # the image tests allow.
                jpeg_data = oracle.jpeg_data(path)
                tol = 1 if jpeg_data else 1e-9
                bad = []
                if abs(p50 - want["brightness_p50"]) > tol:
                    bad.append(f"p50 {p50:.0f}≠{want['brightness_p50']:.0f}")
                if abs(rms - want["rms_contrast"]) > (0.001 if jpeg_data else 1e-9):
                    bad.append(f"rms {rms:.3f}≠{want['rms_contrast']:.3f}")
                if not jpeg_data and phash != want["phash"]:
                    bad.append("phash")
                metric = "metrics=oracle" if not bad else "METRICS " + ",".join(bad)
            except Exception as e:  # noqa: BLE001
                metric = f"oracle failed: {e}"
        nas += "" if dims else " DIMS≠PILLOW"
        nas += " " + metric
    elif rel in rej:
        nas = f"REJECT [{rej[rel][0]}] {rej[rel][1]}"
    else:
        nas = "NOT LISTED"
    pil = ("ok" if info["ok"] else "FAIL " + info.get("err", "")) + f" {info.get('mode', '')} {info.get('size', '')}"
    if info.get("stored") and tuple(info["stored"]) != tuple(info["size"]):
        pil += f" stored {info['stored']}"
    if info["warn"]:
        pil += f" (warn: {info['warn'][:80]})"
    rows.append((rel, pil, nas, what[rel]))

with open(os.path.join(lake, "..", "survey.tsv"), "w") as f:
    f.write("file\tpillow\tnaslake\twhat\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
for r in rows:
    print(" | ".join(r[:3]))
okp = [r for r in rows if r[1].startswith("ok")]
idx = [r for r in okp if r[2].startswith("indexed") and "DIMS" not in r[2]]
same = [r for r in idx if "metrics=oracle" in r[2]]
print(f"\nPillow decodes {len(okp)}/{len(rows)}; of those naslake indexes {sum(r[2].startswith('indexed') for r in okp)}"
      f" ({len(idx)} with Pillow's dimensions) = {100 * len(idx) / len(okp):.1f}%;"
      f" {len(same)} with the oracle's metrics too = {100 * len(same) / len(okp):.1f}%")
