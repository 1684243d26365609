#!/usr/bin/env python3
"""Writes the bundled inspection images under samples/images/ (fixed seed, so the
files are the same on every run): two stations of small synthetic photos, one case
per review flag, and the files the image job must reject.

  line-1/  part-0001.jpg        sharp textured part, EXIF (time with offset, make, model, orientation)
           part-0002.jpg        another sharp part (no EXIF: capture date from last-modified)
           part-0003-blur.jpg   part-0001 with a Gaussian blur          → blurry
           part-0004-dark.jpg   another part at 10% brightness           → too_dark
           part-0005-over.jpg   another part washed out                → overexposed
           part-0001-small.jpg  part-0001 resized to 60%               → near_duplicate
           part-0006-cmyk.jpg   progressive CMYK JPEG
  line-2/  board-0001.png       RGB PNG; board-0001-copy.png a byte copy → exact_duplicate
           board-0002.png       16-bit gray PNG; board-0003.png palette PNG with alpha
           blank.png            black frame                            → low_information, too_dark
           strip.webp           1600×400 strip                          → odd_aspect
           scan.tif             gray TIFF; label.bmp a palette BMP
           board-0004.jpg       a PNG named .jpg                        → wrong_suffix
           truncated.jpg        a JPEG cut in half                      → image_rejects (decode)
           notes.jpg            a text file named .jpg                  → image_rejects (recognise)

Usage: scripts/make-image-samples.py [OUTPUT_DIR]   (needs Pillow and numpy: the test venv)
"""

import io
import os
import shutil
import sys

import numpy as np
from PIL import Image, ImageFilter


def scene(rng, width, height):
    """A part on a conveyor: a gradient, a checker texture, bright and dark
    shapes, and sensor noise."""
    y, x = np.mgrid[0:height, 0:width]
    base = 90 + 60 * (x / width) + 30 * (y / height)
    checker = ((x // 12 + y // 12) % 2) * 50
    img = base + checker
    for _ in range(8):
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        r = rng.integers(width // 20, width // 8)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.integers(10, 245)
    img = img[..., None] * np.array([1.0, 0.95, 0.85]) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def exif_block(when, offset, make, model, orientation):
    e = Image.Exif()
    e[0x010F] = make
    e[0x0110] = model
    e[0x0112] = orientation
    ifd = e.get_ifd(0x8769)
    ifd[0x9003] = when  # DateTimeOriginal
    ifd[0x9011] = offset  # OffsetTimeOriginal
    ifd[0x9291] = "250"  # SubSecTimeOriginal
    return e


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "samples", "images")
    out = os.path.abspath(out)
    if os.path.isdir(out):
        shutil.rmtree(out)
    l1, l2 = os.path.join(out, "line-1"), os.path.join(out, "line-2")
    os.makedirs(l1)
    os.makedirs(l2)
    rng = np.random.default_rng(20261201)

    a = scene(rng, 800, 600)
    b = scene(rng, 800, 600)
    a.save(os.path.join(l1, "part-0001.jpg"), quality=88,
           exif=exif_block("2026:11:30 14:05:09", "+09:00", "Basler", "acA2440-20gc", 1))
    b.save(os.path.join(l1, "part-0002.jpg"), quality=88)
    a.filter(ImageFilter.GaussianBlur(6)).save(os.path.join(l1, "part-0003-blur.jpg"), quality=88,
                                               exif=exif_block("2026:11:30 14:06:00", "+09:00", "Basler", "acA2440-20gc", 6))
    Image.fromarray((np.asarray(scene(rng, 800, 600), dtype=np.float64) * 0.1).astype(np.uint8)).save(
        os.path.join(l1, "part-0004-dark.jpg"), quality=88)
    Image.fromarray(np.clip(np.asarray(scene(rng, 800, 600), dtype=np.float64) * 2.2 + 60, 0, 255).astype(np.uint8)).save(
        os.path.join(l1, "part-0005-over.jpg"), quality=88)
    a.resize((480, 360), Image.LANCZOS).save(os.path.join(l1, "part-0001-small.jpg"), quality=80)
    scene(rng, 400, 300).convert("CMYK").save(os.path.join(l1, "part-0006-cmyk.jpg"), quality=85, progressive=True)

    c = scene(rng, 320, 240)
    c.save(os.path.join(l2, "board-0001.png"))
    shutil.copyfile(os.path.join(l2, "board-0001.png"), os.path.join(l2, "board-0001-copy.png"))
    g16 = (np.asarray(scene(rng, 320, 240).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(g16).save(os.path.join(l2, "board-0002.png"))
    scene(rng, 320, 240).convert("RGBA").quantize(64).save(os.path.join(l2, "board-0003.png"), transparency=0)
    Image.new("L", (640, 480), 0).save(os.path.join(l2, "blank.png"))
    scene(rng, 1600, 400).save(os.path.join(l2, "strip.webp"), quality=80)
    scene(rng, 300, 200).convert("L").save(os.path.join(l2, "scan.tif"), compression="tiff_lzw")
    scene(rng, 300, 200).quantize(16).save(os.path.join(l2, "label.bmp"))
    buf = io.BytesIO()
    scene(rng, 240, 180).save(buf, "PNG")
    with open(os.path.join(l2, "board-0004.jpg"), "wb") as f:
        f.write(buf.getvalue())
    whole = io.BytesIO()
    scene(rng, 640, 480).save(whole, "JPEG", quality=85)
    with open(os.path.join(l2, "truncated.jpg"), "wb") as f:
        f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
    with open(os.path.join(l2, "notes.jpg"), "w") as f:
        f.write("shift notes: camera 2 lens cleaned at 14:00\n")
    print(f"wrote {sum(len(fs) for _, _, fs in os.walk(out))} files under {out}")


if __name__ == "__main__":
    main()
