"""The image job's metrics by an independent implementation: Pillow decodes and
resizes, numpy measures. The definitions are the ones schemas/image_inspections.toml
states; naslake's Rust (src/sources/image/) is checked against these in
tests/test_images.py, and scripts/bench-images times both on one corpus.

The pipeline: open with Pillow; to gray levels (Pillow's "L": ITU-R 601-2 luma in fixed
point; CMYK through RGB; 16-bit samples by their high byte, and as src/sources/image/tiff/levels.rs
says for the other sample kinds of a TIFF); resized with
Image.BOX so the long side is `long` (never enlarged); then the metrics in numpy.
"""

import hashlib

import numpy as np
from PIL import Image

DARK_LEVEL = 5
BRIGHT_LEVEL = 250


def thumbnail_size(width, height, long):
    own = max(width, height)
    if own <= long:
        return width, height

    def scaled(side):
        return max(1, (side * long + own // 2) // own)

    return (long, scaled(height)) if width >= height else (scaled(width), long)


def jpeg_data(path):
    """Whether the pixels of the file at `path` are JPEG data (a JPEG, an MPO,
    or a TIFF's JPEG compression): decoded by another JPEG decoder than
    Pillow's, they are compared within a gray level, not exactly."""
    with Image.open(path) as im:
        return im.format in ("JPEG", "MPO") or (im.format == "TIFF" and im.tag_v2.get(259) in (6, 7))


def _tiff_sample(im):
    """(bits, sample format) of a TIFF's first sample by its tags; (None, 1)
    for other formats."""
    tags = getattr(im, "tag_v2", None) if im.format == "TIFF" else None
    if tags is None:
        return None, 1

    def first(tag, default):
        v = tags.get(tag, default)
        return v[0] if isinstance(v, tuple) else v

    return first(258, 1), first(339, 1)


def to_gray(im):
    """Gray levels of an opened image, by the rules above. Integer samples of n
    bits over 8 by their top 8 bits (v >> (n - 8)), signed ones offset to
    unsigned first (v + 2^(n-1)); floating point as 0.0..1.0, rounded. A TIFF
    whose white is zero (photometric 0) is inverted: Pillow inverts it itself
    for 1-, 4- and 8-bit gray ("1", "L"), not in its other modes."""
    gray = _levels(im)
    if im.format == "TIFF" and im.tag_v2.get(262) == 0 and im.mode not in ("1", "L", "P"):
        return Image.fromarray(255 - np.asarray(gray), "L")
    return gray


def _levels(im):
    bits, sample_format = _tiff_sample(im)
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        a = np.where(np.isnan(a), 0.0, a)
        return Image.fromarray(np.floor(np.clip(a, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), "L")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im).astype(np.int64)
        bits = bits or 16
        if sample_format == 2:
            a = a + (1 << (bits - 1))
        a = a & ((1 << bits) - 1)  # Pillow's "I" holds unsigned 32-bit as signed
        return Image.fromarray((a >> (bits - 8)).astype(np.uint8), "L")
    if im.mode == "L" and sample_format == 2:
        return Image.fromarray(np.asarray(im) ^ np.uint8(0x80), "L")
    if im.mode in ("LA", "LAB"):  # gray of gray with alpha; L* of L*a*b*
        return im.getchannel(0)
    if im.mode == "La":  # premultiplied: divided out by Pillow's La -> LA
        return im.convert("LA").getchannel(0)
    if im.mode in ("L",):
        return im
    if im.mode == "CMYK":
        return im.convert("RGB").convert("L")
    if im.mode in ("RGBA", "RGBX", "P", "PA", "1"):  # Pillow divides premultiplied alpha out
        return im.convert("RGB").convert("L")
    return im.convert("L")


def thumbnail(path, long=512, draft=False):
    """(the gray thumbnail as a uint8 array, the image's size, the JPEG scale).
    `draft` lets libjpeg decode a JPEG at 1/2, 1/4 or 1/8 of its size first (a
    faster Python, which the benchmark also times; naslake decodes at full size)."""
    im = Image.open(path)
    width, height = im.size
    tw, th = thumbnail_size(width, height, long)
    scale = 1
    if draft and im.format == "JPEG" and (tw, th) != (width, height):
        # Pillow's draft rule: the largest of 8, 4, 2, 1
        # within min(width // tw, height // th).
        room = min(width // tw, height // th)
        scale = next(a for a in (8, 4, 2, 1) if room >= a)
        im.draft(im.mode, (tw, th))
    g = to_gray(im)
    if g.size != (tw, th):
        g = g.resize((tw, th), Image.BOX)
    return np.asarray(g, dtype=np.uint8), (width, height), scale


def metrics(g):
    """The metrics of a gray uint8 array, as the schema defines them."""
    flat = g.astype(np.float64).ravel()
    n = flat.size
    hist = np.bincount(g.ravel(), minlength=256)
    p = hist[hist > 0] / n
    if g.shape[0] >= 3 and g.shape[1] >= 3:
        x = g.astype(np.int64)
        lap = x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] - 4 * x[1:-1, 1:-1]
        sharpness = float(lap.var())
    else:
        sharpness = 0.0
    return {
        "brightness_p1": float(np.percentile(g, 1, method="inverted_cdf")),
        "brightness_p50": float(np.percentile(g, 50, method="inverted_cdf")),
        "brightness_p99": float(np.percentile(g, 99, method="inverted_cdf")),
        "dark_fraction": float(hist[: DARK_LEVEL + 1].sum() / n),
        "bright_fraction": float(hist[BRIGHT_LEVEL:].sum() / n),
        "rms_contrast": float(flat.std() / 255.0),
        "sharpness": sharpness,
        "entropy": float(-(p * np.log2(p)).sum()),
        "phash": dhash(g),
    }


def dhash(g):
    small = np.asarray(Image.fromarray(g, "L").resize((9, 8), Image.BOX), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    h = 0
    for b in bits:
        h = (h << 1) | int(b)
    return h - (1 << 64) if h >= 1 << 63 else h


def inspect(path, long=512, draft=False):
    """Everything the oracle measures of one file."""
    g, (width, height), scale = thumbnail(path, long, draft)
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    out = metrics(g)
    out.update(
        width=width,
        height=height,
        thumbnail_width=g.shape[1],
        thumbnail_height=g.shape[0],
        content_sha256=sha,
    )
    return out


def hamming(a, b):
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")
