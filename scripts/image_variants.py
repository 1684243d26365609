#!/usr/bin/env python3
"""Small image variants (a few hundred pixels each) for the image job's decoder
survey (issue 27): the TIFF, BMP, JPEG, PNG and WebP variants that Pillow decodes
and field collections hold. Deterministic (fixed seed). Needs Pillow and numpy only:
the TIFF and BMP variants Pillow cannot write are made by the small writers below
(struct-level, so every tag and header field is explicit).

  make.py OUT_DIR          writes OUT_DIR/{tiff,bmp,jpeg,png,webp}/NAME.EXT
                           and OUT_DIR/manifest.tsv (file, what it is)

Every file's name says its variant; `describe` in the manifest says how it was made.
"""

import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

W, H = 32, 20  # not square, so a rotated size shows; 640 pixels
RNG = np.random.default_rng(27)

MANIFEST = []


def scene(w=W, h=H):
    """RGB uint8: a gradient, a checker and noise (every channel differs)."""
    y, x = np.mgrid[0:h, 0:w]
    base = 40 + 120 * (x / w) + 60 * (y / h)
    checker = ((x // 4 + y // 4) % 2) * 40
    img = (base + checker)[..., None] * np.array([1.0, 0.8, 0.6]) + RNG.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


RGB = scene()
GRAY = np.asarray(Image.fromarray(RGB, "RGB").convert("L"))


def save(out, rel, data, what):
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, Image.Image):
        raise TypeError
    with open(path, "wb") as f:
        f.write(data)
    MANIFEST.append((rel, what))


def pil_bytes(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


# ---------------------------------------------------------------- TIFF writer

TYPES = {1: "B", 2: "s", 3: "H", 4: "I", 5: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I", 16: "Q"}
SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 8: 2, 9: 4, 11: 4, 12: 8, 13: 4, 16: 8}


class Page:
    """One IFD: tags {tag: (type, [values])}, its chunks (strips or tiles, bytes),
    and child IFDs (SubIFDs, tag 330)."""

    def __init__(self, tags, chunks, tiled=False, children=()):
        self.tags, self.chunks, self.tiled, self.children = dict(tags), list(chunks), tiled, list(children)


def tiff_bytes(pages, bo="<"):
    buf = bytearray(b"II*\0" if bo == "<" else b"MM\0*")
    buf += b"\0\0\0\0"

    def align():
        if len(buf) % 2:
            buf.append(0)

    def put(data):
        align()
        at = len(buf)
        buf.extend(data)
        return at

    def write_ifd(page):
        child_offsets = [write_ifd(c) for c in page.children]
        offsets = [put(c) for c in page.chunks]
        counts = [len(c) for c in page.chunks]
        tags = dict(page.tags)
        if not page.chunks:
            pass
        elif page.tiled:
            tags[324] = (4, offsets)
            tags[325] = (4, counts)
        else:
            tags[273] = (4, offsets)
            tags[279] = (4, counts)
        if child_offsets:
            tags[330] = (getattr(page, "subifd_type", 4), child_offsets)
        if getattr(page, "exif_child", None) is not None:
            tags[34665] = (4, [write_ifd(page.exif_child)])
        entries = []
        for tag in sorted(tags):
            typ, vals = tags[tag]
            if typ == 2:
                raw = vals.encode() + b"\0"
                count = len(raw)
            elif typ == 5:
                raw = b"".join(struct.pack(bo + "II", n, d) for n, d in vals)
                count = len(vals)
            else:
                raw = struct.pack(bo + TYPES[typ] * len(vals), *vals)
                count = len(vals)
            if len(raw) <= 4:
                entries.append((tag, typ, count, raw.ljust(4, b"\0")))
            else:
                entries.append((tag, typ, count, struct.pack(bo + "I", put(raw))))
        align()
        at = len(buf)
        buf.extend(struct.pack(bo + "H", len(entries)))
        for tag, typ, count, val in entries:
            buf.extend(struct.pack(bo + "HHI", tag, typ, count) + val)
        buf.extend(b"\0\0\0\0")
        return at

    prev_next = 4
    for page in pages:
        at = write_ifd(page)
        buf[prev_next : prev_next + 4] = struct.pack(bo + "I", at)
        prev_next = len(buf) - 4  # this IFD's next-IFD field, the last 4 bytes written
    return bytes(buf)


def pack_bits(arr, bits, bo):
    """Rows of samples (h, w*spp) to bytes: whole bytes in the byte order, or
    1/4/12-bit samples packed MSB-first, each row padded to a byte."""
    h = arr.shape[0]
    rows = arr.reshape(h, -1)
    if bits in (8, 16, 32, 64):
        return rows.astype(rows.dtype.newbyteorder(bo)).tobytes()
    if bits == 128:  # complex64 pairs
        return rows.astype(rows.dtype.newbyteorder(bo)).tobytes()
    out = bytearray()
    for r in rows:
        acc, n = 0, 0
        row = bytearray()
        for v in r:
            acc = (acc << bits) | int(v)
            n += bits
            while n >= 8:
                n -= 8
                row.append((acc >> n) & 0xFF)
        if n:
            row.append((acc << (8 - n)) & 0xFF)
        out += row
    return bytes(out)


def packbits_encode(data):
    out = bytearray()
    i = 0
    while i < len(data):
        run = 1
        while i + run < len(data) and run < 128 and data[i + run] == data[i]:
            run += 1
        if run > 1:
            out += bytes([257 - run, data[i]])
            i += run
        else:
            j = i
            while j < len(data) and j - i < 128 and not (j + 1 < len(data) and data[j + 1] == data[j]):
                j += 1
            j = max(j, i + 1)
            out += bytes([j - i - 1]) + data[i:j]
            i = j
    return bytes(out)


def tiff_page(arr, photometric, bits, sample_format=1, bo="<", planar=False, tile=None,
              rows_per_strip=None, compression=1, extra=None, children=()):
    """A Page of `arr` (h, w) or (h, w, spp), samples of `bits` bits."""
    h, w = arr.shape[:2]
    spp = 1 if arr.ndim == 2 else arr.shape[2]
    tags = {
        256: (4, [w]), 257: (4, [h]), 258: (3, [bits] * spp), 259: (3, [compression]),
        262: (3, [photometric]), 277: (3, [spp]),
        282: (5, [(72, 1)]), 283: (5, [(72, 1)]), 296: (3, [2]),
    }
    if sample_format != 1:
        tags[339] = (3, [sample_format] * spp)
    if spp > 1:
        tags[284] = (3, [2 if planar else 1])
    enc = {1: lambda b: b, 8: zlib.compress, 32773: packbits_encode}.get(compression, lambda b: b)  # others: caller sets chunks
    chunks = []
    planes = [arr[..., i] for i in range(spp)] if planar else [arr]
    if tile:
        tw, tl = tile
        tags[322] = (3, [tw])
        tags[323] = (3, [tl])
        for p in planes:
            for ty in range(0, h, tl):
                for tx in range(0, w, tw):
                    t = np.zeros((tl, tw) + p.shape[2:], p.dtype)
                    part = p[ty : ty + tl, tx : tx + tw]
                    t[: part.shape[0], : part.shape[1]] = part
                    chunks.append(enc(pack_bits(t, bits, bo)))
    else:
        rps = rows_per_strip or h
        tags[278] = (4, [rps])
        for p in planes:
            for y0 in range(0, h, rps):
                chunks.append(enc(pack_bits(p[y0 : y0 + rps], bits, bo)))
    for k, v in (extra or {}).items():
        tags[k] = v
    return Page(tags, chunks, tiled=bool(tile), children=children)


def tiff(out, name, pages, what, bo="<"):
    if isinstance(pages, Page):
        pages = [pages]
    save(out, f"tiff/{name}.tif", tiff_bytes(pages, bo), what)


def ycbcr_of(rgb):
    """JPEG/TIFF default YCbCr (ITU-R 601, full range), uint8."""
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], -1)), 0, 255).astype(np.uint8)


def ycbcr_subsampled(rgb, sh, sv):
    """Uncompressed YCbCr data units (sh×sv Y, then Cb, Cr), as TIFF 6 stores them."""
    ycc = ycbcr_of(rgb).astype(np.float64)
    h, w = rgb.shape[:2]
    out = bytearray()
    for by in range(0, h, sv):
        for bx in range(0, w, sh):
            blk = ycc[by : by + sv, bx : bx + sh]
            ys = np.zeros((sv, sh))
            ys[: blk.shape[0], : blk.shape[1]] = blk[..., 0]
            out += bytes(np.rint(ys).astype(np.uint8).ravel())
            out += bytes([int(round(blk[..., 1].mean())), int(round(blk[..., 2].mean()))])
    return bytes(out)


def make_tiff(out):
    rgb, gray = RGB, GRAY
    pil_rgb = Image.fromarray(rgb, "RGB")
    pil_gray = Image.fromarray(gray, "L")
    bw = Image.fromarray(gray > 110).convert("1")

    # Baselines
    tiff(out, "rgb8", tiff_page(rgb, 2, 8), "RGB 8-bit, uncompressed, II (control)")
    tiff(out, "gray8", tiff_page(gray, 1, 8), "gray 8-bit, uncompressed (control)")
    tiff(out, "gray8-whiteiszero", tiff_page(255 - gray, 0, 8), "gray 8-bit, photometric 0 (WhiteIsZero)")
    alpha = np.dstack([rgb, np.full(gray.shape, 200, np.uint8)])
    tiff(out, "rgba8", tiff_page(alpha, 2, 8, extra={338: (3, [2])}), "RGBA 8-bit, unassociated alpha")
    tiff(out, "gray-alpha8", tiff_page(np.dstack([gray, np.full(gray.shape, 200, np.uint8)]), 1, 8,
                                       extra={338: (3, [2])}), "gray+alpha 8-bit")

    # YCbCr (photometric 6)
    ycc = ycbcr_of(rgb)
    tiff(out, "ycbcr-raw-1x1", tiff_page(ycc, 6, 8, extra={530: (3, [1, 1])}),
         "YCbCr uncompressed, subsampling 1×1 (tag 530)")
    sub = ycbcr_subsampled(rgb, 2, 2)
    page = tiff_page(ycc, 6, 8)
    page.chunks = [sub]
    page.tags[530] = (3, [2, 2])
    tiff(out, "ycbcr-raw-2x2", page, "YCbCr uncompressed, subsampling 2×2 (the default), data units")
    save(out, "tiff/ycbcr-raw-pillow.tif", pil_bytes(pil_rgb.convert("YCbCr"), "TIFF"),
         "YCbCr uncompressed as Pillow writes it (mode YCbCr)")
    save(out, "tiff/ycbcr-lzw.tif", pil_bytes(pil_rgb.convert("YCbCr"), "TIFF", compression="tiff_lzw"),
         "YCbCr LZW (Pillow/libtiff)")
    save(out, "tiff/ycbcr-jpeg.tif", pil_bytes(pil_rgb.convert("YCbCr"), "TIFF", compression="jpeg"),
         "YCbCr JPEG-compressed, compression 7 (Pillow/libtiff)")
    page = tiff_page(ycc, 6, 8, compression=7, extra={530: (3, [2, 2])})
    page.chunks = [pil_bytes(pil_rgb, "JPEG", quality=90, subsampling=2)]  # one self-contained 4:2:0 JPEG strip
    tiff(out, "ycbcr-jpeg-420", page, "YCbCr JPEG-compressed, subsampling 2×2 (the usual libtiff/camera kind)")
    save(out, "tiff/rgb-jpeg.tif", pil_bytes(pil_rgb, "TIFF", compression="jpeg"),
         "RGB (photometric 2) JPEG-compressed, compression 7 (Pillow/libtiff)")
    save(out, "tiff/gray-jpeg.tif", pil_bytes(pil_gray, "TIFF", compression="jpeg"),
         "gray JPEG-compressed, compression 7 (Pillow/libtiff)")

    # Sample formats and depths
    s8 = (gray.astype(np.int16) - 128).astype(np.int8)
    tiff(out, "int8-signed", tiff_page(s8, 1, 8, sample_format=2), "gray signed 8-bit (SampleFormat 2)")
    s16 = ((gray.astype(np.int32) - 128) * 200).astype(np.int16)
    tiff(out, "int16-signed", tiff_page(s16, 1, 16, sample_format=2), "gray signed 16-bit (SampleFormat 2)")
    tiff(out, "int16-signed-mm", tiff_page(s16, 1, 16, sample_format=2, bo=">"),
         "gray signed 16-bit, big-endian", bo=">")
    g12 = (gray.astype(np.uint16) << 4) | 0x7
    tiff(out, "gray12", tiff_page(g12, 1, 12), "gray 12-bit packed (BitsPerSample 12)")
    g16 = gray.astype(np.uint16) * 257
    tiff(out, "gray16", tiff_page(g16, 1, 16), "gray 16-bit (machine vision), II")
    tiff(out, "gray16-mm", tiff_page(g16, 1, 16, bo=">"), "gray 16-bit, big-endian MM", bo=">")
    tiff(out, "gray16-12in16", tiff_page(gray.astype(np.uint16) << 4, 1, 16),
         "gray 16-bit container holding 12-bit values (machine vision)")
    save(out, "tiff/gray16-deflate.tif",
         pil_bytes(Image.fromarray(g16), "TIFF", compression="tiff_adobe_deflate"),
         "gray 16-bit Deflate (Pillow/libtiff)")
    tiff(out, "gray32-uint", tiff_page(gray.astype(np.uint32) << 24, 1, 32), "gray unsigned 32-bit")
    tiff(out, "int32-signed", tiff_page((gray.astype(np.int32) - 128) << 20, 1, 32, sample_format=2),
         "gray signed 32-bit")
    f32 = gray.astype(np.float32) / 255
    tiff(out, "float32-gray", tiff_page(f32, 1, 32, sample_format=3), "gray 32-bit float, 0..1")
    tiff(out, "float32-gray-mm", tiff_page(f32, 1, 32, sample_format=3, bo=">"), "gray 32-bit float, MM", bo=">")
    tiff(out, "float32-rgb", tiff_page(rgb.astype(np.float32) / 255, 2, 32, sample_format=3),
         "RGB 32-bit float, 0..1")
    tiff(out, "float64-gray", tiff_page(gray.astype(np.float64) / 255, 1, 64, sample_format=3),
         "gray 64-bit float")
    tiff(out, "float16-gray", tiff_page(f32.astype(np.float16), 1, 16, sample_format=3), "gray 16-bit float")
    cpx = (gray.astype(np.float32) / 255).astype(np.complex64)
    page = tiff_page(cpx.view(np.float32).reshape(H, W * 2), 1, 64, sample_format=6)
    page.tags[256] = (4, [W])
    tiff(out, "complex64", page, "gray complex (SampleFormat 6, 2×32-bit float)")
    tiff(out, "rgb16", tiff_page(rgb.astype(np.uint16) * 257, 2, 16), "RGB 16-bit, II")
    tiff(out, "rgb16-mm", tiff_page(rgb.astype(np.uint16) * 257, 2, 16, bo=">"), "RGB 16-bit, MM", bo=">")
    tiff(out, "rgb8-mm", tiff_page(rgb, 2, 8, bo=">"), "RGB 8-bit, MM", bo=">")
    tiff(out, "gray4", tiff_page(gray >> 4, 1, 4), "gray 4-bit")

    # Bilevel and fax
    tiff(out, "bilevel1", tiff_page(np.asarray(bw).astype(np.uint8), 1, 1), "1-bit bilevel, uncompressed")
    save(out, "tiff/bilevel1-pillow.tif", pil_bytes(bw, "TIFF"), "1-bit bilevel as Pillow writes it")
    for comp, n, what in (("tiff_ccitt", 2, "CCITT modified Huffman"), ("group3", 3, "CCITT Group 3 fax"),
                          ("group4", 4, "CCITT Group 4 fax")):
        save(out, f"tiff/fax-c{n}.tif", pil_bytes(bw, "TIFF", compression=comp),
             f"1-bit, compression {n} ({what}, Pillow/libtiff)")

    # Compression
    save(out, "tiff/rgb-lzw.tif", pil_bytes(pil_rgb, "TIFF", compression="tiff_lzw"), "RGB LZW (Pillow/libtiff)")
    save(out, "tiff/rgb-packbits.tif", pil_bytes(pil_rgb, "TIFF", compression="packbits"),
         "RGB PackBits (Pillow/libtiff)")
    tiff(out, "gray-packbits", tiff_page(gray, 1, 8, compression=32773), "gray PackBits (own writer)")
    save(out, "tiff/rgb-deflate.tif", pil_bytes(pil_rgb, "TIFF", compression="tiff_adobe_deflate"),
         "RGB Adobe Deflate, compression 8 (Pillow/libtiff)")
    save(out, "tiff/rgb-deflate-old.tif", pil_bytes(pil_rgb, "TIFF", compression="tiff_deflate"),
         "RGB old Deflate, compression 32946 (Pillow/libtiff)")
    tiff(out, "rgb-deflate-strips", tiff_page(rgb, 2, 8, compression=8, rows_per_strip=3),
         "RGB Deflate in 3-row strips (own writer)")

    # Layout
    tiff(out, "rgb-tiled", tiff_page(rgb, 2, 8, tile=(16, 16)), "RGB tiled 16×16, partial edge tiles")
    tiff(out, "gray-tiled-deflate", tiff_page(gray, 1, 8, tile=(16, 16), compression=8), "gray tiled Deflate")
    tiff(out, "rgb-planar", tiff_page(rgb, 2, 8, planar=True), "RGB planar configuration 2 (separate planes)")
    tiff(out, "rgb16-planar", tiff_page(rgb.astype(np.uint16) * 257, 2, 16, planar=True), "RGB 16-bit planar")
    tiff(out, "rgb-tiled-planar", tiff_page(rgb, 2, 8, planar=True, tile=(16, 16)),
         "RGB planar, tiled 16×16 with partial edge tiles")
    tiff(out, "rgba16-tiled-planar-deflate",
         tiff_page(np.dstack([rgb, np.full(gray.shape, 255, np.uint8)]).astype(np.uint16) * 257, 2, 16, planar=True,
                   tile=(16, 16), compression=8, extra={338: (3, [2])}),
         "RGBA 16-bit planar, tiled, Deflate")
    tiff(out, "rgb-strips", tiff_page(rgb, 2, 8, rows_per_strip=7), "RGB 7-row strips")

    # Palette and CMYK
    pal = pil_rgb.quantize(16)
    save(out, "tiff/palette8.tif", pil_bytes(pal, "TIFF"), "palette (photometric 3) 8-bit, Pillow")
    cmap = np.asarray(pal.getpalette()[: 16 * 3]).reshape(16, 3).astype(np.uint16) * 257
    idx = np.asarray(pal)
    tiff(out, "palette4", tiff_page(idx, 3, 4, extra={320: (3, list(np.r_[
        np.pad(cmap[:, 0], (0, 0)), np.pad(cmap[:, 1], (0, 0)), np.pad(cmap[:, 2], (0, 0))]))}),
         "palette (photometric 3) 4-bit, own writer")
    for bits, colours in ((2, 4), (1, 2)):
        few = pil_rgb.quantize(colours)
        fmap = np.asarray(few.getpalette()[: colours * 3]).reshape(colours, 3).astype(np.uint16) * 257
        tiff(out, f"palette{bits}", tiff_page(np.asarray(few), 3, bits, extra={320: (3, list(fmap.T.reshape(-1)))}),
             f"palette (photometric 3) {bits}-bit, own writer")

    # Odd widths, white-is-zero beyond 8 bits, extra samples, byte orders, BigTIFF
    odd = gray[:, :31]
    tiff(out, "gray12-odd-strips", tiff_page((odd.astype(np.uint16) << 4) | 0x9, 1, 12, rows_per_strip=7),
         "gray 12-bit, width 31 (rows end mid-byte), 7-row strips")
    tiff(out, "gray12-mm", tiff_page((odd.astype(np.uint16) << 4) | 0x3, 1, 12, bo=">"),
         "gray 12-bit, width 31, big-endian", bo=">")
    tiff(out, "gray16-whiteiszero", tiff_page(65535 - gray.astype(np.uint16) * 257, 0, 16),
         "gray 16-bit, photometric 0 (WhiteIsZero)")
    tiff(out, "gray-alpha8-whiteiszero",
         tiff_page(np.dstack([255 - gray, np.full(gray.shape, 90, np.uint8)]), 0, 8, extra={338: (3, [2])}),
         "gray+alpha 8-bit, photometric 0 (WhiteIsZero)")
    tiff(out, "gray-alpha8-premultiplied",
         tiff_page(np.dstack([(gray.astype(np.uint16) * 90 // 255).astype(np.uint8), np.full(gray.shape, 90, np.uint8)]),
                   1, 8, extra={338: (3, [1])}),
         "gray+alpha 8-bit, alpha premultiplied (ExtraSamples 1)")
    tiff(out, "rgbx8", tiff_page(np.dstack([rgb, np.full(gray.shape, 7, np.uint8)]), 2, 8, extra={338: (3, [0])}),
         "RGB plus an unspecified extra sample (ExtraSamples 0)")
    tiff(out, "gray4-odd", tiff_page(odd >> 4, 1, 4), "gray 4-bit, width 31 (rows end mid-byte)")
    reverse = np.array([int(f"{b:08b}"[::-1], 2) for b in range(256)], np.uint8)
    page = tiff_page(gray, 1, 8, extra={266: (3, [2])})
    page.chunks = [reverse[gray].tobytes()]
    tiff(out, "gray8-fillorder2", page, "gray 8-bit, FillOrder 2 (bits of each byte reversed)")
    save(out, "tiff/rgb8-bigtiff.tif", pil_bytes(pil_rgb, "TIFF", big_tiff=True), "RGB 8-bit BigTIFF (Pillow)")
    save(out, "tiff/gray16-bigtiff-lzw.tif",
         pil_bytes(Image.fromarray(gray.astype(np.uint16) * 257), "TIFF", big_tiff=True, compression="tiff_lzw"),
         "gray 16-bit BigTIFF, LZW (Pillow)")
    save(out, "tiff/cmyk8.tif", pil_bytes(pil_rgb.convert("CMYK"), "TIFF"), "CMYK 8-bit (photometric 5), Pillow")
    save(out, "tiff/cmyk8-lzw.tif", pil_bytes(pil_rgb.convert("CMYK"), "TIFF", compression="tiff_lzw"),
         "CMYK 8-bit LZW, Pillow")

    # Several IFDs
    other = Image.fromarray(255 - rgb, "RGB").resize((20, 12))
    save(out, "tiff/multipage.tif", pil_bytes(pil_rgb, "TIFF", save_all=True, append_images=[other, other]),
         "3 pages (IFD chain), Pillow")
    thumb = rgb[::4, ::4].copy()
    tiff(out, "subifd", tiff_page(rgb, 2, 8, children=[tiff_page(thumb, 2, 8, extra={254: (4, [1])})]),
         "full image with a reduced child IFD (SubIFDs, tag 330)")
    tiff(out, "subifd-thumb-first", tiff_page(thumb, 2, 8, extra={254: (4, [1])},
                                               children=[tiff_page(rgb, 2, 8)]),
         "reduced image in IFD0, full image in a child IFD (DNG-like)")
    page = tiff_page(rgb, 2, 8, children=[tiff_page(thumb, 2, 8, extra={254: (4, [1])}),
                                          tiff_page(rgb[::2, ::2].copy(), 2, 8, extra={254: (4, [1])})])
    page.subifd_type = 13
    tiff(out, "subifd-type13", page, "two child IFDs, SubIFDs tag of type IFD (13)")
    exif = Page({36867: (2, "2026:01:02 03:04:05"), 271: (2, "Cam")}, [])
    tiff(out, "exif-ifd", tiff_page(rgb, 2, 8, extra={271: (2, "Cam"), 272: (2, "M1")}, children=[]),
         "RGB with Make/Model in IFD0 (control for EXIF)")
    page = tiff_page(rgb, 2, 8)
    page.exif_child = exif
    tiff(out, "exif-subifd", page, "RGB with an Exif IFD (tag 34665) holding DateTimeOriginal")
    tiff(out, "multipage-mm", [tiff_page(rgb, 2, 8, bo=">"), tiff_page(thumb, 2, 8, bo=">")],
         "2 pages, big-endian", bo=">")

    # Orientation 1-8
    for o in range(1, 9):
        tiff(out, f"orientation-{o}", tiff_page(rgb, 2, 8, extra={274: (3, [o])}), f"RGB, Orientation tag {o}")


# ---------------------------------------------------------------- BMP writer

def bmp_bytes(w, h, bpp, rows, header=40, compression=0, palette=None, masks=None, planes=1,
              topdown=False, data=None, clr_used=None, masks_in_header=None):
    """rows: a list of h row byte strings, top row first (padded here); or `data`
    ready-made (RLE). header: 12, 16, 40, 52, 56, 64, 108 or 124."""
    if data is None:
        stride = ((w * bpp + 31) // 32) * 4
        order = rows if topdown else rows[::-1]
        data = b"".join(r.ljust(stride, b"\0") for r in order)
    ncol = 0 if palette is None else len(palette)
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, planes, bpp)
        pal = b"".join(bytes([b, g, r]) for r, g, b in (palette or []))
    else:
        hh = -h if topdown else h
        fields = struct.pack("<IiiHHIIiiII", header, w, hh, planes, bpp, compression, len(data), 2835, 2835,
                             ncol if clr_used is None else clr_used, 0)
        extra = b""
        if header in (52, 56, 108, 124):
            m = list(masks or [0, 0, 0, 0]) + [0] * 4
            extra += struct.pack("<III", *m[:3])
            if header >= 56:
                extra += struct.pack("<I", m[3])
        if header in (108, 124):
            extra += b"BGRs" + b"\0" * 36 + b"\0" * 12
        if header == 124:
            extra += struct.pack("<IIII", 4, 0, 0, 0)  # LCS_GM_IMAGES
        if header == 64:
            extra += b"\0" * 24
        if header == 16:
            fields = fields[:16]
        info = (fields + extra)[:header] if header != 16 else fields
        if header == 40 and compression in (3, 6) and masks:
            info += struct.pack("<" + "I" * (3 if compression == 3 else 4), *masks[: 3 if compression == 3 else 4])
        pal = b"".join(bytes([b, g, r, 0]) for r, g, b in (palette or []))
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + pal + data


def rle8_rows(idx, eol=True, eob=True, absolute=True):
    """RLE8 of index rows (bottom row first in the stream)."""
    out = bytearray()
    for row in idx[::-1]:
        row = bytes(row)
        i = 0
        while i < len(row):
            run = 1
            while i + run < len(row) and run < 255 and row[i + run] == row[i]:
                run += 1
            if run == 1 and absolute and i + 3 <= len(row) and len(set(row[i : i + 3])) == 3:
                n = 3
                out += bytes([0, n]) + row[i : i + n] + b"\0"  # pad to a word
                i += n
            else:
                out += bytes([run, row[i]])
                i += run
        if eol:
            out += b"\0\0"
    if eob:
        out += b"\0\1"
    return bytes(out)


def rle4_rows(idx):
    out = bytearray()
    for row in idx[::-1]:
        row = [int(v) for v in row]
        i = 0
        while i < len(row):
            a = row[i]
            b = row[i + 1] if i + 1 < len(row) else a
            run = 2
            while i + run < len(row) and run < 255 and row[i + run] == (a if run % 2 == 0 else b):
                run += 1
            run = min(run, len(row) - i)
            out += bytes([run, (a << 4) | b])
            i += run
        out += b"\0\0"
    out += b"\0\1"
    return bytes(out)


def make_bmp(out):
    rgb, gray = RGB, GRAY
    pil = Image.fromarray(rgb, "RGB")
    p16 = pil.quantize(16)
    pal16 = [tuple(p16.getpalette()[3 * i : 3 * i + 3]) for i in range(16)]
    idx16 = np.asarray(p16)
    p256 = pil.quantize(200)
    pal256 = [tuple(p256.getpalette()[3 * i : 3 * i + 3]) for i in range(200)]
    idx256 = np.asarray(p256)
    bw = (gray > 110).astype(np.uint8)
    p4 = pil.quantize(4)
    pal4 = [tuple(p4.getpalette()[3 * i : 3 * i + 3]) for i in range(4)]
    idx4 = np.asarray(p4)

    def b(name, data, what):
        save(out, f"bmp/{name}.bmp", data, what)

    def bgr_rows(a):
        return [bytes(r[:, ::-1].ravel()) for r in a]

    b("pal1", bmp_bytes(W, H, 1, [bytes(np.packbits(r)) for r in bw], palette=[(0, 0, 0), (255, 255, 255)]),
      "1-bit palette")
    b("pal2", bmp_bytes(W, H, 2, [pack_bits(r[None], 2, "<") for r in idx4], palette=pal4),
      "2-bit palette (Windows CE)")
    b("pal4", bmp_bytes(W, H, 4, [pack_bits(r[None], 4, "<") for r in idx16], palette=pal16), "4-bit palette")
    b("pal8", bmp_bytes(W, H, 8, [bytes(r) for r in idx256], palette=pal256), "8-bit palette")
    forgot = bytearray(bmp_bytes(W, H, 8, [bytes(r) for r in idx256], palette=pal256))
    forgot[10:14] = struct.pack("<I", 14 + 40)
    b("pal8-offset-forgets-palette", bytes(forgot), "8-bit palette, bfOffBits right after the header (Pillow skips the palette)")
    odd = bmp_bytes(W - 1, H, 24, bgr_rows(RGB[:, : W - 1]))
    b("rgb24-last-row-short-of-padding", odd[:-3], "24-bit, width 31, the file ends 3 bytes short (the last row's padding)")
    b("pal8-topdown", bmp_bytes(W, H, 8, [bytes(r) for r in idx256], palette=pal256, topdown=True),
      "8-bit palette, top-down (negative height)")
    b("pal8-clrused0", bmp_bytes(W, H, 8, [bytes(r) for r in idx256],
                                 palette=pal256 + [(0, 0, 0)] * 56, clr_used=0), "8-bit, biClrUsed 0 (256 entries)")
    r5, g5, b5 = (rgb[..., 0] >> 3).astype(np.uint16), (rgb[..., 1] >> 3).astype(np.uint16), (rgb[..., 2] >> 3).astype(np.uint16)
    g6 = (rgb[..., 1] >> 2).astype(np.uint16)
    v555 = (r5 << 10) | (g5 << 5) | b5
    v565 = (r5 << 11) | (g6 << 5) | b5
    b("rgb555", bmp_bytes(W, H, 16, [r.astype("<u2").tobytes() for r in v555]), "16-bit 5-5-5, BI_RGB")
    b("rgb555-bitfields", bmp_bytes(W, H, 16, [r.astype("<u2").tobytes() for r in v555], compression=3,
                                    masks=[0x7C00, 0x3E0, 0x1F]), "16-bit 5-5-5, BI_BITFIELDS")
    b("rgb565", bmp_bytes(W, H, 16, [r.astype("<u2").tobytes() for r in v565], compression=3,
                          masks=[0xF800, 0x7E0, 0x1F]), "16-bit 5-6-5, BI_BITFIELDS")
    b("rgb24", bmp_bytes(W, H, 24, bgr_rows(rgb)), "24-bit")
    bgrx = [bytes(np.column_stack([r[:, 2], r[:, 1], r[:, 0], np.zeros(W, np.uint8)]).ravel()) for r in rgb]
    bgra = [bytes(np.column_stack([r[:, 2], r[:, 1], r[:, 0], np.full(W, 200, np.uint8)]).ravel()) for r in rgb]
    b("rgb32", bmp_bytes(W, H, 32, bgrx), "32-bit BI_RGB (BGRX, no alpha)")
    b("rgb32-bitfields", bmp_bytes(W, H, 32, bgrx, compression=3, masks=[0xFF0000, 0xFF00, 0xFF]),
      "32-bit BI_BITFIELDS, no alpha mask (40-byte header + masks)")
    b("rgba32-v3", bmp_bytes(W, H, 32, bgra, header=56, compression=3, masks=[0xFF0000, 0xFF00, 0xFF, 0xFF000000]),
      "32-bit BI_BITFIELDS with alpha mask, 56-byte V3 header")
    b("rgba32-alphabitfields", bmp_bytes(W, H, 32, bgra, compression=6, masks=[0xFF0000, 0xFF00, 0xFF, 0xFF000000]),
      "32-bit BI_ALPHABITFIELDS (6), 40-byte header + 4 masks")
    b("rgba32-v4", bmp_bytes(W, H, 32, bgra, header=108, compression=3, masks=[0xFF0000, 0xFF00, 0xFF, 0xFF000000]),
      "32-bit with alpha, V4 (108-byte) header")
    b("rgba32-v5", bmp_bytes(W, H, 32, bgra, header=124, compression=3, masks=[0xFF0000, 0xFF00, 0xFF, 0xFF000000]),
      "32-bit with alpha, V5 (124-byte) header")
    b("rgb24-v4", bmp_bytes(W, H, 24, bgr_rows(rgb), header=108), "24-bit, V4 header")
    b("rgb24-v5", bmp_bytes(W, H, 24, bgr_rows(rgb), header=124), "24-bit, V5 header")
    b("pal8-v5", bmp_bytes(W, H, 8, [bytes(r) for r in idx256], palette=pal256, header=124), "8-bit palette, V5 header")
    save(out, "bmp/rgba-pillow.bmp", pil_bytes(Image.fromarray(np.dstack([rgb, np.full(gray.shape, 200, np.uint8)]),
                                                               "RGBA"), "BMP"), "RGBA as Pillow writes it")
    # RLE
    b("rle8", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, data=rle8_rows(idx256)),
      "RLE8, bottom-up, with absolute runs")
    b("rle4", bmp_bytes(W, H, 4, None, compression=2, palette=pal16, data=rle4_rows(idx16)), "RLE4, bottom-up")
    b("rle8-topdown", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, topdown=True,
                                data=rle8_rows(idx256[::-1])), "RLE8, top-down (negative height)")
    b("rle4-topdown", bmp_bytes(W, H, 4, None, compression=2, palette=pal16, topdown=True,
                                data=rle4_rows(idx16[::-1])), "RLE4, top-down (negative height)")
    delta = bytearray(rle8_rows(idx256[H // 2 :], eob=False))
    delta += bytes([0, 2, 3, H // 2 - 1])  # a delta escape: skip right 3, up H/2-1 rows
    delta += rle8_rows(idx256[:1, 3:], eob=True)
    b("rle8-delta", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, data=bytes(delta)),
      "RLE8 with a delta escape (skipped pixels)")
    b("rle8-no-eob", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, data=rle8_rows(idx256, eob=False)),
      "corrupt RLE8: no end-of-bitmap marker")
    b("rle8-no-eol", bmp_bytes(W, H, 8, None, compression=1, palette=pal256,
                               data=rle8_rows(idx256, eol=False)), "corrupt RLE8: no end-of-line markers")
    full = rle8_rows(idx256)
    over = bytearray(rle8_rows(idx256[:-1]))
    over = bytes([W + 9, 5]) + b"\0\0" + bytes(over)  # a bottom row run 9 past the row end
    b("rle8-overrun", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, data=over),
      "corrupt RLE8: a run longer than the row")
    b("rle8-truncated", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, data=full[: len(full) // 2]),
      "corrupt RLE8: stream cut in half (no EOB)")
    b("rle8-short-rows", bmp_bytes(W, H, 8, None, compression=1, palette=pal256,
                                   data=rle8_rows(idx256[:, : W - 5])), "corrupt RLE8: every row 5 pixels short")
    b("rle8-bad-sizeimage", bmp_bytes(W, H, 8, None, compression=1, palette=pal256, data=full + b"\0" * 40),
      "RLE8 with trailing bytes after EOB")
    # OS/2
    b("os2v1-rgb24", bmp_bytes(W, H, 24, bgr_rows(rgb), header=12), "OS/2 1.x BITMAPCOREHEADER (12 bytes), 24-bit")
    b("os2v1-pal8", bmp_bytes(W, H, 8, [bytes(r) for r in idx256], header=12, palette=pal256 + [(0, 0, 0)] * 56),
      "OS/2 1.x (12 bytes), 8-bit palette, 3-byte entries")
    b("os2v1-pal1", bmp_bytes(W, H, 1, [bytes(np.packbits(r)) for r in bw], header=12,
                              palette=[(0, 0, 0), (255, 255, 255)]), "OS/2 1.x (12 bytes), 1-bit")
    b("os2v2-rgb24", bmp_bytes(W, H, 24, bgr_rows(rgb), header=64), "OS/2 2.x header (64 bytes), 24-bit")
    b("os2v2-pal8", bmp_bytes(W, H, 8, [bytes(r) for r in idx256], header=64, palette=pal256),
      "OS/2 2.x header (64 bytes), 8-bit palette")
    b("os2v2-16-rgb24", bmp_bytes(W, H, 24, bgr_rows(rgb), header=16), "OS/2 2.x short header (16 bytes), 24-bit")
    # Planes
    b("planes0", bmp_bytes(W, H, 24, bgr_rows(rgb), planes=0), "24-bit, biPlanes 0")
    b("planes2", bmp_bytes(W, H, 24, bgr_rows(rgb), planes=2), "24-bit, biPlanes 2")
    b("planes2-pal8", bmp_bytes(W, H, 8, [bytes(r) for r in idx256], palette=pal256, planes=2), "8-bit, biPlanes 2")


# ---------------------------------------------------------------- PNG writer

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(arr, color_type, bits, interlace=False, extra=b""):
    """arr (h, w[, c]) of samples; filter 0 on every scanline; Adam7 when interlaced."""
    h, w = arr.shape[:2]

    def raw(a):
        if a.shape[0] == 0 or a.shape[1] == 0:
            return b""
        return b"".join(b"\0" + pack_bits(r[None], bits, ">") for r in a)

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        body = b"".join(raw(arr[y0::dy, x0::dx]) for x0, y0, dx, dy in passes)
    else:
        body = raw(arr)
    ihdr = struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", zlib.compress(body))
            + png_chunk(b"IEND", b""))


def make_png(out):
    rgb, gray = RGB, GRAY
    pil = Image.fromarray(rgb, "RGB")

    def p(name, data, what):
        save(out, f"png/{name}.png", data, what)

    p("rgb8", pil_bytes(pil, "PNG"), "RGB 8-bit (control)")
    p("gray16", png_bytes(gray.astype(np.uint16) * 257, 0, 16), "gray 16-bit")
    p("rgb16", png_bytes(rgb.astype(np.uint16) * 257, 2, 16), "RGB 16-bit")
    p("rgba16", png_bytes(np.dstack([rgb, np.full(gray.shape, 200, np.uint8)]).astype(np.uint16) * 257, 6, 16),
      "RGBA 16-bit")
    p("gray-alpha8", png_bytes(np.dstack([gray, np.full(gray.shape, 200, np.uint8)]), 4, 8), "gray+alpha 8-bit")
    p("gray1", png_bytes((gray > 110).astype(np.uint8), 0, 1), "gray 1-bit")
    p("gray4", png_bytes(gray >> 4, 0, 4), "gray 4-bit")
    pal = pil.quantize(16)
    plte = png_chunk(b"PLTE", bytes(pal.getpalette()[:48]))
    trns = png_chunk(b"tRNS", bytes([0, 128] + [255] * 14))
    p("palette4-trns", png_bytes(np.asarray(pal), 3, 4, extra=plte + trns), "palette 4-bit with tRNS")
    p("palette8-trns", pil_bytes(pil.quantize(200), "PNG", transparency=0), "palette 8-bit with tRNS, Pillow")
    p("gray8-trns", png_bytes(gray, 0, 8, extra=png_chunk(b"tRNS", struct.pack(">H", 100))),
      "gray 8-bit with a tRNS key")
    p("rgb8-interlaced", png_bytes(rgb, 2, 8, interlace=True), "RGB 8-bit, Adam7 interlaced")
    p("gray16-interlaced", png_bytes(gray.astype(np.uint16) * 257, 0, 16, interlace=True), "gray 16-bit interlaced")
    p("palette4-interlaced", png_bytes(np.asarray(pal), 3, 4, interlace=True, extra=plte),
      "palette 4-bit interlaced")


# ---------------------------------------------------------------- JPEG, MPO, WebP

def exif_orientation(o):
    e = Image.Exif()
    e[0x0112] = o
    return e.tobytes()


def make_jpeg(out):
    rgb, gray = RGB, GRAY
    pil = Image.fromarray(rgb, "RGB")

    def j(name, data, what, ext="jpg"):
        save(out, f"jpeg/{name}.{ext}", data, what)

    j("baseline-420", pil_bytes(pil, "JPEG", quality=90), "baseline 4:2:0 (control)")
    j("baseline-444", pil_bytes(pil, "JPEG", quality=90, subsampling=0), "baseline 4:4:4")
    j("gray", pil_bytes(Image.fromarray(gray, "L"), "JPEG"), "gray")
    j("progressive", pil_bytes(pil, "JPEG", progressive=True), "progressive")
    j("cmyk-adobe", pil_bytes(pil.convert("CMYK"), "JPEG"), "CMYK with Adobe APP14, Pillow (see transform byte)")
    data = bytearray(pil_bytes(pil.convert("CMYK"), "JPEG"))
    at = data.find(b"Adobe")
    if at > 0:
        # Flip the Adobe transform byte to 2 (YCCK) on Pillow's CMYK: the decoded
        # colours are then wrong, but the structure is a valid YCCK JPEG.
        data[at + 11] = 2
        j("ycck-adobe-flag", bytes(data), "Adobe transform 2 (YCCK) on CMYK data (structure only)")
    j("restart-markers", pil_bytes(pil, "JPEG", restart_marker_blocks=1), "baseline with restart markers")
    for o in range(1, 9):
        j(f"orientation-{o}", pil_bytes(pil, "JPEG", exif=exif_orientation(o)), f"EXIF Orientation {o}")
    other = Image.fromarray(255 - rgb, "RGB")
    j("mpo", pil_bytes(pil, "MPO", save_all=True, append_images=[other]), "MPO, two pictures (Pillow)", ext="mpo")
    j("mpo-as-jpg", pil_bytes(pil, "MPO", save_all=True, append_images=[other]), "MPO named .jpg")


def make_webp(out):
    rgb = RGB
    pil = Image.fromarray(rgb, "RGB")

    def w(name, data, what):
        save(out, f"webp/{name}.webp", data, what)

    w("lossy", pil_bytes(pil, "WEBP", quality=80), "lossy (VP8)")
    w("lossy-alpha", pil_bytes(Image.fromarray(np.dstack([rgb, np.full(GRAY.shape, 200, np.uint8)]), "RGBA"),
                               "WEBP", quality=80), "lossy with alpha (VP8X+ALPH)")
    w("lossless", pil_bytes(pil, "WEBP", lossless=True), "lossless (VP8L)")
    other = Image.fromarray(255 - rgb, "RGB")
    w("animated", pil_bytes(pil, "WEBP", save_all=True, append_images=[other], duration=100, lossless=True),
      "animated, 2 frames (ANIM/ANMF)")
    w("animated-lossy", pil_bytes(pil, "WEBP", save_all=True, append_images=[other], duration=100, quality=80),
      "animated lossy, 2 frames")


def main(out):
    make_tiff(out)
    make_bmp(out)
    make_png(out)
    make_jpeg(out)
    make_webp(out)
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        for rel, what in MANIFEST:
            f.write(f"{rel}\t{what}\n")
    print(f"{len(MANIFEST)} files under {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "images")
