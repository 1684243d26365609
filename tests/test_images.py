"""The image job against an independent implementation: Pillow decodes, numpy
measures (tests/image_oracle.py), on a corpus built here with a fixed seed: every
format and colour model the job reads, the constructed review cases, and the files
it must reject (a decompression bomb, a truncated JPEG, a text file named .jpg)."""
import io
import json
import os
import pathlib
import struct
import sys
import zlib

import duckdb
import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import BIN, ROOT, naslake

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import image_oracle as oracle  # noqa: E402

JOB = ROOT / "jobs" / "images.toml"
PARAMS = {"duplicate_distance": 10}


def checkerboard(size=512, square=16):
    y, x = np.mgrid[0:size, 0:size]
    return Image.fromarray((((x // square + y // square) % 2) * 255).astype(np.uint8), "L")


def textured(rng, w, h):
    """A scene of its own: random blobs of light and shade over a random texture,
    so no two are near-duplicates unless made so."""
    y, x = np.mgrid[0:h, 0:w]
    fx, fy, px = rng.uniform(4, 14), rng.uniform(4, 14), rng.uniform(0, 6.3)
    img = 110 + 50 * np.sin(x / fx + px) * np.cos(y / fy)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.05, 0.25) * min(w, h)
        img = img + rng.uniform(-70, 70) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    img = img[..., None] * rng.uniform(0.8, 1.0, 3) + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def bomb_png(width, height):
    """A valid PNG header declaring width × height gray pixels, with a tiny
    compressed body (the classic decompression bomb: a few KB on disk)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\0" + b"\0" * width
    body = zlib.compressobj(9)
    data = b"".join(body.compress(row) for _ in range(64)) + body.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def exif(when, offset=None, make="Basler", model="acA1300", orientation=1):
    e = Image.Exif()
    e[0x010F], e[0x0110], e[0x0112] = make, model, orientation
    ifd = e.get_ifd(0x8769)
    ifd[0x9003] = when
    if offset:
        ifd[0x9011] = offset
    return e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    st = {n: root / n for n in ("cam-a", "cam-b", "cam-c", "cam-d", "bad")}
    for d in st.values():
        d.mkdir()
    # Formats and colour models, each recognised by its bytes.
    big = textured(rng, 2448, 2048)
    big.save(st["cam-a"] / "rgb-baseline.jpg", quality=90, exif=exif("2026:11:30 23:30:00", "-05:00"))
    big.save(st["cam-a"] / "rgb-progressive.jpg", quality=90, progressive=True,
             exif=exif("2026:11:29 08:00:00", orientation=6))
    big.convert("L").save(st["cam-a"] / "gray.jpg", quality=90)
    textured(rng, 900, 700).convert("CMYK").save(st["cam-a"] / "cmyk.jpg", quality=90)
    # RGB stored as RGB (an Adobe marker, transform 0), not YCbCr.
    textured(rng, 800, 600).save(st["cam-a"] / "rgb-adobe.jpg", quality=90, keep_rgb=True)
    textured(rng, 1200, 900).save(st["cam-b"] / "rgb8.png")
    Image.fromarray((np.asarray(textured(rng, 700, 500).convert("L"), dtype=np.uint16) * 257)).save(st["cam-b"] / "gray16.png")
    textured(rng, 600, 400).quantize(100).save(st["cam-b"] / "palette.png")
    rgba = textured(rng, 640, 480).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(st["cam-b"] / "rgba.png")
    textured(rng, 800, 600).save(st["cam-b"] / "rgb.tif")
    textured(rng, 640, 480).convert("L").save(st["cam-b"] / "gray-lzw.tif", compression="tiff_lzw")
    textured(rng, 500, 400).convert("LA").save(st["cam-b"] / "gray-alpha.png")
    # A JPEG whose EXIF block is garbage: indexed, with exif_error.
    ok = io.BytesIO()
    textured(rng, 320, 240).save(ok, "JPEG", quality=85)
    junk = b"Exif\0\0II*\0\xff\xff\xff\x7f" + b"\x13" * 20
    app1 = b"\xff\xe1" + struct.pack(">H", len(junk) + 2) + junk
    (st["cam-b"] / "bad-exif.jpg").write_bytes(ok.getvalue()[:2] + app1 + ok.getvalue()[2:])
    textured(rng, 640, 480).save(st["cam-b"] / "rgb24.bmp")
    textured(rng, 320, 240).quantize(16).save(st["cam-b"] / "palette.bmp")
    textured(rng, 800, 600).save(st["cam-b"] / "lossy.webp", quality=85)
    textured(rng, 400, 300).save(st["cam-b"] / "lossless.webp", lossless=True)
    # The review cases.
    board = checkerboard()
    board.save(st["cam-d"] / "checker.png")
    board.filter(ImageFilter.GaussianBlur(4)).save(st["cam-d"] / "checker-blur.png")
    Image.new("L", (640, 480), 0).save(st["cam-c"] / "black.png")
    Image.new("L", (640, 480), 255).save(st["cam-c"] / "white.png")
    scene = textured(rng, 1024, 768)
    scene.save(st["cam-c"] / "scene.jpg", quality=92)
    scene.resize((512, 384), Image.LANCZOS).save(st["cam-c"] / "scene-small.jpg", quality=80)
    (st["cam-c"] / "scene-copy.jpg").write_bytes((st["cam-c"] / "scene.jpg").read_bytes())
    textured(rng, 2000, 400).save(st["cam-c"] / "strip.png")
    buf = io.BytesIO()
    textured(rng, 300, 200).save(buf, "PNG")
    (st["cam-c"] / "really-a-png.jpg").write_bytes(buf.getvalue())
    # Rejects.
    (st["bad"] / "bomb.png").write_bytes(bomb_png(50_000, 50_000))
    whole = io.BytesIO()
    textured(rng, 640, 480).save(whole, "JPEG", quality=90)
    (st["bad"] / "truncated.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    (st["bad"] / "notes.jpg").write_text("not an image\n")
    (st["bad"] / "empty.png").write_bytes(b"")
    return root


def run_images(input, lake, *extra, **kw):
    return naslake("run", JOB, "--input", input, "--output", lake, *extra, lake=lake, **kw)


def rows(lake, table):
    entry = json.loads((pathlib.Path(lake) / "_naslake" / "catalog" / "naslake" / f"{table}.json").read_text())
    location = entry["TableInput"]["StorageDescriptor"]["Location"].removeprefix("file://")
    files = [str(p) for p in pathlib.Path(location).rglob("*.parquet") if not p.name.startswith(("_", "."))]
    if not files:
        return []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.execute(f"SELECT * FROM read_parquet({files!r}, hive_partitioning = true, union_by_name = true)")
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]


@pytest.fixture(scope="module")
def indexed(corpus, tmp_path_factory):
    lake = tmp_path_factory.mktemp("lake")
    run = run_images(corpus, lake)
    inspections = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    rejects = {r["source_key"]: r for r in rows(lake, "image_rejects")}
    return run, lake, inspections, rejects


def files(corpus):
    return sorted(str(p.relative_to(corpus)) for p in corpus.rglob("*") if p.is_file())


def test_every_file_is_a_row_or_a_reject_and_the_report_adds_up(corpus, indexed):
    run, _, inspections, rejects = indexed
    assert run.code == 3, run.stdout + run.stderr  # 3: done, with rejects
    assert not set(inspections) & set(rejects)
    assert sorted(set(inspections) | set(rejects)) == files(corpus)
    assert set(rejects) == {"bad/bomb.png", "bad/truncated.jpg", "bad/notes.jpg", "bad/empty.png"}
    report = run.report
    loaded = sum(f.get("loaded", 0) for f in report["files"])
    rejected = sum(f.get("rejected", 0) for f in report["files"])
    assert (loaded, rejected) == (len(inspections), len(rejects))
    assert len(report["files"]) == len(files(corpus))


PILLOW_MODES = {
    # Pillow's mode → (color_type, bit_depth) as the schema names them.
    "L": ("gray", 8), "RGB": ("rgb", 8), "RGBA": ("rgba", 8), "CMYK": ("cmyk", 8),
    "P": ("palette", None), "I;16": ("gray", 16), "LA": ("gray_alpha", 8), "I;16B": ("gray", 16),
}


def test_dimensions_format_and_colour_model_match_pillow(corpus, indexed):
    _, _, inspections, _ = indexed
    for key, row in inspections.items():
        im = Image.open(corpus / key)
        assert (row["width"], row["height"]) == im.size, key
        assert row["format"] == im.format.lower(), key
        color, bits = PILLOW_MODES[im.mode]
        assert row["color_type"] == color, (key, im.mode)
        if bits:
            assert row["bit_depth"] == bits, key
        assert row["suffix_matches"] == (key != "cam-c/really-a-png.jpg"), key
        if im.format == "JPEG":
            assert row["jpeg_progressive"] == bool(im.info.get("progressive")), key
        else:
            assert row["jpeg_progressive"] is None
    assert inspections["cam-b/palette.png"]["bit_depth"] == 8
    assert inspections["cam-b/palette.bmp"]["bit_depth"] in (4, 8)


# Tolerances: PNG, TIFF, BMP and WebP decode to the same pixels in both, so every
# metric is equal up to float rounding. A JPEG goes through another decoder
# (zune-jpeg, its Y plane, against libjpeg-turbo's RGB turned to L), whose
# rounding differs by a gray level here and there: measured differences are under
# 0.2% of pixels in a fraction, 0.0001 in contrast and entropy, 0.03% in sharpness.
JPEG_TOLERANCE = {
    "brightness_p1": 1, "brightness_p50": 1, "brightness_p99": 1,
    "dark_fraction": 0.002, "bright_fraction": 0.002, "rms_contrast": 0.001, "entropy": 0.005,
}


def assert_measures_match(key, row, want):
    """A row's dimensions, thumbnail, hash and measures against the oracle's: equal
    up to float rounding, or within JPEG_TOLERANCE for a JPEG."""
    for col in ("width", "height", "thumbnail_width", "thumbnail_height", "content_sha256"):
        assert row[col] == want[col], (key, col, row[col], want[col])
    jpeg = row["format"] == "jpeg"
    for col, tol in JPEG_TOLERANCE.items():
        assert abs(row[col] - want[col]) <= (tol if jpeg else 1e-9), (key, col, row[col], want[col])


def test_every_metric_matches_numpy_on_the_same_thumbnail(corpus, indexed):
    _, _, inspections, _ = indexed
    for key, row in inspections.items():
        want = oracle.inspect(corpus / key)
        assert_measures_match(key, row, want)
        jpeg = row["format"] == "jpeg"
        if jpeg:
            assert row["sharpness"] == pytest.approx(want["sharpness"], rel=0.01), key
            assert oracle.hamming(row["phash"], want["phash"]) <= 2, key
        else:
            assert row["sharpness"] == pytest.approx(want["sharpness"], rel=1e-9, abs=1e-9), key
            assert row["phash"] == want["phash"], key


def test_exif_capture_time_camera_and_orientation(indexed):
    _, _, inspections, _ = indexed
    utc = inspections["cam-a/rgb-baseline.jpg"]
    # 23:30 at UTC-5 is 04:30 UTC the next day; the partition is the camera's date.
    assert utc["captured_at"].strftime("%Y-%m-%d %H:%M:%S") == "2026-12-01 04:30:00"
    assert utc["capture_time_source"] == "exif_utc"
    assert str(utc["capture_date"]) == "2026-11-30"
    assert (utc["camera_make"], utc["camera_model"], utc["orientation"]) == ("Basler", "acA1300", 1)
    local = inspections["cam-a/rgb-progressive.jpg"]
    assert local["captured_at"].strftime("%Y-%m-%d %H:%M:%S") == "2026-11-29 08:00:00"
    assert local["capture_time_source"] == "exif_local"
    assert local["orientation"] == 6
    none = inspections["cam-b/rgb8.png"]
    assert none["capture_time_source"] == "last_modified" and none["captured_at"] is None
    assert none["capture_date"] is not None
    assert inspections["cam-b/bad-exif.jpg"]["exif_error"].startswith("EXIF: ")
    assert all(r["exif_error"] is None for k, r in inspections.items() if k != "cam-b/bad-exif.jpg")


def test_the_review_flags_on_constructed_cases(indexed):
    _, _, ins, _ = indexed

    def reasons(key):
        return list(ins[key]["review_reasons"])

    assert not ins["cam-d/checker.png"]["blurry"]
    assert ins["cam-d/checker-blur.png"]["blurry"]
    assert ins["cam-d/checker-blur.png"]["sharpness"] < ins["cam-d/checker.png"]["sharpness"] / 20
    assert {"too_dark", "low_information"} <= set(reasons("cam-c/black.png"))
    assert "overexposed" not in reasons("cam-c/black.png")
    assert {"overexposed", "low_information"} <= set(reasons("cam-c/white.png"))
    assert "too_dark" not in reasons("cam-c/white.png")
    assert ins["cam-c/strip.png"]["odd_aspect"] and not ins["cam-c/scene.jpg"]["odd_aspect"]
    assert ins["cam-c/scene-copy.jpg"]["exact_duplicate"] and ins["cam-c/scene.jpg"]["exact_duplicate"]
    assert not ins["cam-c/scene-small.jpg"]["exact_duplicate"]
    assert ins["cam-c/scene-small.jpg"]["near_duplicate"]
    assert reasons("cam-c/really-a-png.jpg")[-1] == "wrong_suffix"
    for key, r in ins.items():
        assert r["needs_review"] == bool(r["review_reasons"]), key
        order = ["blurry", "too_dark", "overexposed", "low_information", "odd_aspect",
                 "exact_duplicate", "near_duplicate", "wrong_suffix"]
        flags = [f for f in order[:-1] if r[f]] + (["wrong_suffix"] if r["suffix_matches"] is False else [])
        assert list(r["review_reasons"]) == flags, key
    # A sharp, well-exposed, unique photo needs no review.
    assert not ins["cam-b/rgb8.png"]["needs_review"], reasons("cam-b/rgb8.png")


def test_rejects_name_the_stage_and_the_reason(indexed):
    _, _, _, rejects = indexed
    bomb = rejects["bad/bomb.png"]
    assert bomb["stage"] == "limits" and "50000 × 50000" in bomb["reason"], bomb
    assert rejects["bad/truncated.jpg"]["stage"] == "decode"
    assert rejects["bad/notes.jpg"]["stage"] == "recognise"
    assert "selected by its suffix" in rejects["bad/notes.jpg"]["reason"]
    assert rejects["bad/empty.png"]["stage"] == "recognise"
    for r in rejects.values():
        assert r["source"] == "images" and r["object_size"] >= 0


def test_near_duplicate_pairs_equal_comparing_every_pair(indexed):
    _, lake, ins, _ = indexed
    pairs = {(r["source_key_a"], r["source_key_b"]): r for r in rows(lake, "image_duplicates")}
    keys = sorted(ins)
    d = PARAMS["duplicate_distance"]
    want = {}
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            dist = oracle.hamming(ins[a]["phash"], ins[b]["phash"])
            if dist <= d:
                want[(a, b)] = dist
    assert {k: v["distance"] for k, v in pairs.items()} == want
    assert ("cam-c/scene-copy.jpg", "cam-c/scene.jpg") in pairs
    assert pairs[("cam-c/scene-copy.jpg", "cam-c/scene.jpg")]["identical"]
    assert ("cam-c/scene-small.jpg", "cam-c/scene.jpg") in pairs or ("cam-c/scene.jpg", "cam-c/scene-small.jpg") in pairs
    in_pairs = {k for p in pairs for k in p}
    for key, r in ins.items():
        assert r["near_duplicate"] == (key in in_pairs), key


def test_blur_against_the_stations_own_baseline(tmp_path):
    """line-9: ten sharp frames and one soft (under the floor, and far under the
    station's median in robust z-score): blurry. line-8: eleven frames all as soft
    (under the floor, but that is the station's normal): none blurry. line-7: two
    frames, too few for a baseline: the floor alone decides. Keys without a
    station (no folder) have no baseline either."""
    rng = np.random.default_rng(3)
    root = tmp_path / "in"
    for d in ("line-9", "line-8", "line-7"):
        (root / d).mkdir(parents=True)
    for i in range(10):
        textured(rng, 640, 480).save(root / "line-9" / f"frame-{i:02}.png")
    textured(rng, 640, 480).filter(ImageFilter.GaussianBlur(0.6)).save(root / "line-9" / "soft.png")
    for i in range(11):
        textured(rng, 640, 480).filter(ImageFilter.GaussianBlur(0.6)).save(root / "line-8" / f"frame-{i:02}.png")
    textured(rng, 640, 480).save(root / "line-7" / "sharp.png")
    textured(rng, 640, 480).filter(ImageFilter.GaussianBlur(0.6)).save(root / "line-7" / "soft.png")
    for i in range(9):
        textured(rng, 640, 480).save(root / f"loose-{i}.png")
    lake = tmp_path / "lake"
    run = run_images(root, lake)
    assert run.code == 0, run.stderr
    ins = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    for station in ("line-9", "line-8"):
        mine = {k: r for k, r in ins.items() if r["station"] == station}
        sharp = np.array([r["sharpness"] for r in mine.values()])
        median = np.median(sharp)
        mad = np.median(np.abs(sharp - median))
        for key, r in mine.items():
            assert r["sharpness_z"] == pytest.approx((r["sharpness"] - median) / (1.4826 * mad), rel=1e-9), key
    soft = ins["line-9/soft.png"]
    assert soft["sharpness"] < 100 and soft["sharpness_z"] < -3 and soft["blurry"]
    assert not any(r["blurry"] for k, r in ins.items() if r["station"] == "line-9" and k != "line-9/soft.png")
    assert all(r["sharpness"] < 100 for r in ins.values() if r["station"] == "line-8")
    assert not any(r["blurry"] for r in ins.values() if r["station"] == "line-8"), "the station's normal"
    assert ins["line-7/soft.png"]["sharpness_z"] is None and ins["line-7/soft.png"]["blurry"]
    assert not ins["line-7/sharp.png"]["blurry"]
    loose = [r for k, r in ins.items() if k.startswith("loose-")]
    assert len(loose) == 9 and all(r["station"] is None and r["sharpness_z"] is None for r in loose)


def peak_rss_kib(args):
    code = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:], capture_output=True);"
            "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    import subprocess
    out = subprocess.run([sys.executable, "-c", code, BIN, *map(str, args)], capture_output=True, text=True,
                         timeout=300, check=True)
    return json.loads(out.stdout)


def bomb_bmp(width, height):
    """A BMP header declaring width × height 24-bit pixels, and no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info


def bomb_tiff(width, height):
    """A little-endian TIFF whose one strip declares width × height gray pixels."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, width * height)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd


def bomb_webp(width, height):
    """A lossless WebP header declaring width × height (at most 16 384 each)."""
    bits = (width - 1) | ((height - 1) << 14) | (1 << 28)
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\0" * 8
    chunk = b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def test_a_decompression_bomb_is_refused_from_its_header_in_little_memory(tmp_path):
    src = tmp_path / "in" / "cam"
    src.mkdir(parents=True)
    # 2.5 gigapixels declared (2.5 GB of gray pixels), 9 KB on disk; the same
    # lie in a BMP, a TIFF and a WebP header; and a 65 000 × 65 000 JPEG header.
    (src / "bomb.png").write_bytes(bomb_png(50_000, 50_000))
    (src / "bomb.bmp").write_bytes(bomb_bmp(50_000, 50_000))
    (src / "bomb.tif").write_bytes(bomb_tiff(50_000, 50_000))
    (src / "bomb.webp").write_bytes(bomb_webp(16_000, 16_000))
    tiny = io.BytesIO()
    Image.new("L", (8, 8)).save(tiny, "JPEG")
    jpeg = bytearray(tiny.getvalue())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    (src / "bomb.jpg").write_bytes(bytes(jpeg))
    assert (src / "bomb.png").stat().st_size < 20_000
    lake = tmp_path / "lake"
    rc, kib = peak_rss_kib(["run", JOB, "--input", tmp_path / "in", "--output", lake])
    assert rc == 3, rc
    rej = {r["source_key"]: r for r in rows(lake, "image_rejects")}
    assert set(rej) == {f"cam/bomb.{x}" for x in ("png", "bmp", "tif", "webp", "jpg")}
    for key, r in rej.items():
        assert r["stage"] == "limits" and "over max_pixels" in r["reason"], (key, r)
    assert "65000 × 65000" in rej["cam/bomb.jpg"]["reason"]
    print(f"peak RSS on the decompression bombs: {kib / 1024:.0f} MiB")
    assert kib < 300 * 1024, f"peak RSS {kib} KiB"


def test_a_lower_pixel_limit_and_memory_cap_are_options(corpus, tmp_path):
    job = tmp_path / "small.toml"
    job.write_text(JOB.read_text().replace("max_pixels = 100_000_000", "max_pixels = 1_000_000")
                   .replace('input = "../samples/images"', f'input = "{corpus}"')
                   .replace('"../schemas/', f'"{ROOT}/schemas/').replace('sql = "image', f'sql = "{ROOT}/jobs/image'))
    lake = tmp_path / "lake"
    run = naslake("run", job, "--output", lake, lake=lake)
    rej = {r["source_key"]: r for r in rows(lake, "image_rejects")}
    assert rej["cam-a/rgb-baseline.jpg"]["stage"] == "limits", run.stderr
    assert "cam-b/rgb8.png" in rej, "1200 × 900 is over a million pixels"
    assert "cam-b/palette.png" not in rej
    # Under max_pixels, over the memory one decode may take: 1200 × 900 RGB is
    # 3.2 MB decoded (and 1.1 MB of gray levels), over 2 MiB; 600 × 400 is not.
    job.write_text(job.read_text().replace("max_pixels = 1_000_000", "max_pixels = 100_000_000")
                   .replace('max_decode_bytes = "512 MiB"', 'max_decode_bytes = "2 MiB"'))
    lake = tmp_path / "lake2"
    naslake("run", job, "--output", lake, lake=lake)
    rej = {r["source_key"]: r for r in rows(lake, "image_rejects")}
    assert rej["cam-b/rgb8.png"]["stage"] == "limits" and "max_decode_bytes" in rej["cam-b/rgb8.png"]["reason"]
    assert "max_decode_bytes" in rej["cam-a/rgb-baseline.jpg"]["reason"]
    assert "cam-b/palette.png" not in rej and "cam-b/gray-lzw.tif" not in rej


def test_content_recognition_reads_keys_without_a_suffix(tmp_path):
    """recognise = "content": every key is opened; an image with no suffix is indexed
    with suffix_matches NULL and no wrong_suffix reason, a misnamed one still gets
    it, and what is not an image is a reject."""
    src = tmp_path / "in" / "cam"
    src.mkdir(parents=True)
    rng = np.random.default_rng(11)
    textured(rng, 320, 240).save(src / "frame-0001", "PNG")
    textured(rng, 320, 240).save(src / "frame-0002.jpg", "PNG")
    (src / "log.txt").write_text("not an image\n")
    job = tmp_path / "content.toml"
    job.write_text(JOB.read_text().replace('recognise = "suffix"', 'recognise = "content"')
                   .replace('input = "../samples/images"', f'input = "{tmp_path / "in"}"')
                   .replace('"../schemas/', f'"{ROOT}/schemas/').replace('sql = "image', f'sql = "{ROOT}/jobs/image'))
    lake = tmp_path / "lake"
    run = naslake("run", job, "--output", lake, lake=lake)
    assert run.code == 3, run.stderr
    ins = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    rej = {r["source_key"]: r for r in rows(lake, "image_rejects")}
    assert ins["cam/frame-0001"]["suffix_matches"] is None
    assert "wrong_suffix" not in ins["cam/frame-0001"]["review_reasons"]
    assert ins["cam/frame-0002.jpg"]["suffix_matches"] is False
    assert list(ins["cam/frame-0002.jpg"]["review_reasons"]) == ["wrong_suffix"]
    assert rej["cam/log.txt"]["stage"] == "recognise"
    assert "selected by its suffix" not in rej["cam/log.txt"]["reason"]


def test_the_bundled_samples(tmp_path):
    lake = tmp_path / "lake"
    run = naslake("run", JOB, "--output", lake, lake=lake)
    assert run.code == 3
    ins = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    rej = {r["source_key"]: r for r in rows(lake, "image_rejects")}
    assert set(rej) == {"line-2/truncated.jpg", "line-2/notes.jpg"}
    flagged = {k for k, r in ins.items() if r["needs_review"]}
    assert {"line-1/part-0003-blur.jpg", "line-1/part-0004-dark.jpg", "line-1/part-0005-over.jpg",
            "line-1/part-0001-small.jpg", "line-2/board-0001-copy.png", "line-2/blank.png",
            "line-2/strip.webp", "line-2/board-0004.jpg"} <= flagged
    assert not ins["line-1/part-0002.jpg"]["needs_review"], ins["line-1/part-0002.jpg"]["review_reasons"]
    first = ins["line-1/part-0001.jpg"]
    assert first["station"] == "line-1"
    # 14:05:09.250 at +09:00.
    assert first["captured_at"].strftime("%Y-%m-%d %H:%M:%S.%f") == "2026-11-30 05:05:09.250000"
    assert str(first["capture_date"]) == "2026-11-30" and first["capture_time_source"] == "exif_utc"


def test_width_and_height_are_stored_for_all_eight_orientations_in_jpeg_and_tiff(tmp_path):
    """width and height are the dimensions as stored, in every format, whatever the
    orientation: Pillow's own for a JPEG, the TIFF's ImageWidth and ImageLength
    tags (Pillow's size swaps them for orientations 5 to 8); `orientation` says
    how to display the image, as written (EXIF in a JPEG, the TIFF's tag 274)."""
    src = tmp_path / "in"
    src.mkdir()
    stored = np.random.RandomState(3).randint(0, 256, (88, 590), dtype=np.uint8)  # 590 wide
    for o in range(1, 9):
        im = Image.fromarray(stored)
        e = im.getexif()
        e[0x0112] = o
        im.save(src / f"o{o}.jpg", exif=e, quality=90)
        im.save(src / f"o{o}.tif", tiffinfo={274: o})
    lake = tmp_path / "lake"
    run_images(src, lake)
    got = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    assert len(got) == 16, sorted(got)
    for name, row in got.items():
        with Image.open(src / name) as im:
            if name.endswith(".tif"):
                want = (im.tag_v2[256], im.tag_v2[257], im.tag_v2[274])
            else:
                want = (*im.size, im.getexif()[0x0112])
        assert (row["width"], row["height"], row["orientation"]) == want == (590, 88, want[2]), (name, row)
    assert sorted(r["orientation"] for r in got.values()) == sorted(list(range(1, 9)) * 2)


# --- BMP headers other writers make, and MPO ----------------------------------------

def bmp_file(w, h, bpp, data, header=40, compression=0, palette=(), planes=1, top_down=False, masks=()):
    """A BMP with a header of `header` bytes (40: Windows BITMAPINFOHEADER; 64:
    OS/2 2.x BITMAPINFOHEADER2, whose first 40 bytes are laid out the same),
    `data` the pixel array as stored (rows bottom-up unless `top_down`, or RLE),
    and BI_BITFIELDS `masks` after the header."""
    info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, planes, bpp, compression,
                       len(data), 2835, 2835, len(palette), 0).ljust(header, b"\0")
    info += b"".join(struct.pack("<I", m) for m in masks)
    pal = b"".join(bytes([b, g, r, 0]) for r, g, b in palette)
    off = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", off + len(data), 0, 0, off) + info + pal + data


def bmp_rows(rows, bpp):
    """Rows (top first, as bytes) stored bottom-up, each padded to 4 bytes."""
    stride = (len(rows[0]) * 8 // bpp * bpp + 31) // 32 * 4
    return b"".join(r.ljust(stride, b"\0") for r in rows[::-1])


def rle(rows, nibbles=False):
    """RLE8 (or RLE4) runs of each row, in the order given, with end-of-line
    markers and an end-of-bitmap."""
    out = bytearray()
    for row in rows:
        i = 0
        while i < len(row):
            n = 1
            while i + n < len(row) and n < 254 and row[i + n] == row[i]:
                n += 1
            out += bytes([n, row[i] * 17 if nibbles else row[i]])
            i += n
        out += b"\0\0"
    return bytes(out + b"\0\1")


def test_bmp_headers_pillow_reads_are_indexed_as_pillow_reads_them(tmp_path):
    """biPlanes other than 1, OS/2 2.x 64-byte headers, top-down RLE (which the
    `image` crate refuses; src/sources/image/bmp.rs rewrites their headers), and
    an MPO file: each indexed, its dimensions and metrics those of Pillow."""
    rng = np.random.RandomState(7)
    w, h = 40, 24
    idx = rng.randint(0, 16, (h, w)).astype(np.uint8)
    idx[:, : w // 2] = idx[:, :1]  # runs for the RLE
    pal = [(i * 16, 255 - i * 16, (i * 37) % 256) for i in range(16)]
    rgb = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    bgr = [bytes(r[:, ::-1].tobytes()) for r in rgb]
    rows8 = [bytes(r) for r in idx]
    src = tmp_path / "in"
    src.mkdir()
    files = {
        "planes0.bmp": bmp_file(w, h, 24, bmp_rows(bgr, 24), planes=0),
        "planes2-pal8.bmp": bmp_file(w, h, 8, bmp_rows(rows8, 8), palette=pal, planes=2),
        "os2v2-rgb24.bmp": bmp_file(w, h, 24, bmp_rows(bgr, 24), header=64),
        "os2v2-pal8.bmp": bmp_file(w, h, 8, bmp_rows(rows8, 8), header=64, palette=pal),
        "topdown-rle8.bmp": bmp_file(w, h, 8, rle(rows8), compression=1, palette=pal, top_down=True),
        "topdown-rle4.bmp": bmp_file(w, h, 4, rle(rows8, nibbles=True), compression=2, palette=pal,
                                     top_down=True),
    }
    for name, data in files.items():
        (src / name).write_bytes(data)
    first = Image.fromarray(rgb).resize((320, 192))
    first.save(src / "stereo.mpo", save_all=True, append_images=[first.rotate(180)], quality=92)
    for name in (*files, "stereo.mpo"):
        with Image.open(src / name) as im:
            im.load()  # Pillow reads each whole
    lake = tmp_path / "lake"
    run_images(src, lake)
    got = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    assert sorted(got) == sorted([*files, "stereo.mpo"]), rows(lake, "image_rejects")
    for key, row in got.items():
        want = oracle.inspect(src / key)
        assert_measures_match(key, row, want)
        if row["format"] != "jpeg":
            # The hash sees which way up the picture is (the measures above do not).
            assert row["phash"] == want["phash"], key
    assert got["stereo.mpo"]["format"] == "jpeg"


def tiff_and_bmp_variants(out):
    """The TIFF and BMP variants of scripts/image_variants.py (every sample kind,
    YCbCr, palettes, planes, tiles, fax, sub-IFDs…; headers, RLE with deltas and
    short rows, offsets and padding writers get wrong), written under `out`."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import image_variants
    finally:
        sys.path.pop(0)
    image_variants.make_tiff(str(out))
    image_variants.make_bmp(str(out))
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.suffix in (".tif", ".bmp"))


def pillow_reads(path):
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001 - any failure means Pillow does not read it whole
        return False


def test_tiff_and_bmp_variants_pillow_reads_are_indexed_with_its_dimensions_and_levels(tmp_path):
    """Every TIFF and BMP variant Pillow decodes whole (signed, 12-, 32-bit and
    float samples, YCbCr raw, LZW and JPEG, CCITT modified Huffman and Group 3
    and 4 fax, palettes of 1 to 8 bits, gray with
    alpha, premultiplied alpha, separate planes in strips and tiles, both byte orders,
    BigTIFF, FillOrder 2; BMP RLE deltas and short rows, a forgotten palette
    offset, a last row short of its padding) is indexed with Pillow's dimensions
    and the oracle's measures (tests/image_oracle.py states the level of each
    sample kind); the rest are rejects that name the feature. Each file is in
    exactly one table."""
    src = tmp_path / "in"
    names = [n for n in tiff_and_bmp_variants(src) if not n.startswith("tiff/orientation-")]
    lake = tmp_path / "lake"
    run_images(src, lake)
    got = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    rejected = {r["source_key"]: r["reason"] for r in rows(lake, "image_rejects")}
    assert not set(got) & set(rejected)
    readable = [n for n in names if pillow_reads(src / n)]
    assert len(readable) >= 40, readable  # the writer still makes the variants
    for name in readable:
        assert name in got, (name, rejected.get(name))
        row = got[name]
        if name == "tiff/rgb16-planar.tif":
            # Pillow reads this file's planes wrong (each pixel twice, half the
            # image); it holds the same picture as rgb16.tif, 257 × each level.
            want = oracle.inspect(src / "tiff/rgb16.tif")
            want["content_sha256"] = row["content_sha256"]
        else:
            want = oracle.inspect(src / name)
        if oracle.jpeg_data(src / name):  # another JPEG decoder: within the JPEG tolerance
            for col in ("width", "height", "thumbnail_width", "thumbnail_height"):
                assert row[col] == want[col], (name, col)
            # 640 pixels: one level here and there moves the entropy more than
            # on the corpus' camera-sized frames.
            for col, tol in {**JPEG_TOLERANCE, "entropy": 0.02}.items():
                assert abs(row[col] - want[col]) <= tol, (name, col, row[col], want[col])
        else:
            assert_measures_match(name, row, want)
            assert row["phash"] == want["phash"], name
    for name in names:
        assert (name in got) != (name in rejected), name
    assert "complex" in rejected["tiff/complex64.tif"]
    assert "2 × 2 chroma subsampling" in rejected["tiff/ycbcr-raw-2x2.tif"]
    # Pillow opens none of these; naslake reads them by the same rules.
    for name, level in (("tiff/float64-gray.tif", "gray"), ("tiff/float16-gray.tif", "gray")):
        assert got[name]["color_type"] == level
        assert got[name]["brightness_p50"] == got["tiff/gray8.tif"]["brightness_p50"], name
    assert got["tiff/gray12.tif"]["bit_depth"] == 12
    assert got["tiff/palette4.tif"]["color_type"] == "palette"


def test_16_bit_bmp_levels_are_pillows(tmp_path):
    """5- and 6-bit channels of 16-bit BMPs (5-5-5, and 5-6-5 by BI_BITFIELDS):
    measured on Pillow's levels (v * 255 / 31, rounded down), not the decoder's
    (rounded to nearest), so every measure equals the oracle's."""
    rng = np.random.RandomState(11)
    w, h = 40, 24
    src = tmp_path / "in"
    src.mkdir()
    for name, bits, masks in (("rgb555.bmp", (5, 5, 5), ()), ("rgb565.bmp", (5, 6, 5), (0xF800, 0x07E0, 0x001F))):
        r, g, b = (rng.randint(0, 1 << n, (h, w)).astype(np.uint16) for n in bits)
        px = (r << (bits[1] + bits[2])) | (g << bits[2]) | b
        data = bmp_rows([row.astype("<u2").tobytes() for row in px], 16)
        (src / name).write_bytes(bmp_file(w, h, 16, data, compression=3 if masks else 0, masks=masks))
    lake = tmp_path / "lake"
    run_images(src, lake)
    got = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    assert sorted(got) == ["rgb555.bmp", "rgb565.bmp"], rows(lake, "image_rejects")
    for key, row in got.items():
        want = oracle.inspect(src / key)
        assert_measures_match(key, row, want)
        assert row["phash"] == want["phash"] and row["sharpness"] == pytest.approx(want["sharpness"], abs=1e-9), key


def test_mutated_tiff_and_bmp_files_are_each_a_row_or_a_reject(tmp_path):
    """Hostile input for the TIFF and BMP paths: the variants above with bytes
    overwritten, flipped, cut short and fields set to huge values (a fixed seed).
    The run succeeds with rejects, every file is a row or a reject (never both,
    never neither), and no decoder panics."""
    import random

    made = tmp_path / "variants"
    names = tiff_and_bmp_variants(made)
    rng = random.Random(2712)
    src = tmp_path / "in"
    src.mkdir()
    count = 600
    for i in range(count):
        name = rng.choice(names)
        b = bytearray((made / name).read_bytes())
        kind = rng.random()
        if kind < 0.4:  # bytes of the header and directory overwritten
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(min(len(b), 512))] = rng.randrange(256)
        elif kind < 0.6:  # cut short
            b = b[: rng.randrange(8, len(b))]
        elif kind < 0.8:  # bits flipped anywhere
            for _ in range(rng.randint(1, 32)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        else:  # 4-byte fields set to huge values
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(max(1, min(len(b) - 4, 400)))
                b[at : at + 4] = rng.choice([b"\xff\xff\xff\x7f", b"\x00\x00\x01\x00", b"\xff\xff\x00\x00"])
        (src / f"m{i:04d}{pathlib.Path(name).suffix}").write_bytes(bytes(b))
    lake = tmp_path / "lake"
    run = run_images(src, lake, "--set", "sources.images.recognise=content")
    assert run.proc.returncode in (0, 3), run.proc.stderr
    got = {r["source_key"] for r in rows(lake, "image_inspections")}
    rejected = {r["source_key"]: r["reason"] for r in rows(lake, "image_rejects")}
    assert not got & set(rejected)
    assert len(got) + len(rejected) == count
    panicked = {k: v for k, v in rejected.items() if "panicked" in v}
    assert not panicked, panicked


def test_random_rle_bitmaps_are_expanded_as_pillow_expands_them(tmp_path):
    """src/sources/image/rle.rs against Pillow's own RLE decoder on random
    RLE8 and RLE4 streams (a fixed seed): encoded and absolute runs, runs past
    the row's end, ends of line, deltas, early ends, bottom-up and top-down.
    Every bitmap Pillow reads whole is indexed with its measures exactly; the
    rest are rows or rejects, never lost."""
    import random

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from image_variants import bmp_bytes
    finally:
        sys.path.pop(0)
    rng = random.Random(27)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(300):
        rle4 = rng.random() < 0.5
        w, h = rng.randint(3, 40), rng.randint(2, 16)
        top = 16 if rle4 else 256
        data = bytearray()
        for _ in range(rng.randint(1, 3 * h)):
            op = rng.random()
            if op < 0.5:  # encoded run, sometimes past the row's end
                data += bytes([rng.randint(1, w + 8), rng.randrange(256 if rle4 else top)])
            elif op < 0.75:  # absolute run, padded to a 16-bit word
                n = rng.randint(3, w + 4)
                body = bytes(rng.randrange(256 if rle4 else top) for _ in range((n + 1) // 2 if rle4 else n))
                data += bytes([0, n]) + body + (b"\0" if len(body) % 2 else b"")
            elif op < 0.9:  # end of line
                data += b"\0\0"
            else:  # delta
                data += bytes([0, 2, rng.randint(0, 5), rng.randint(0, 2)])
        if rng.random() < 0.9:
            data += b"\0\1"  # end of bitmap
        palette = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(16 if rle4 else 64)]
        (src / f"r{i:03d}.bmp").write_bytes(
            bmp_bytes(w, h, 4 if rle4 else 8, None, compression=2 if rle4 else 1, palette=palette,
                      topdown=rng.random() < 0.3, data=bytes(data)))
    lake = tmp_path / "lake"
    run_images(src, lake)
    got = {r["source_key"]: r for r in rows(lake, "image_inspections")}
    rejected = {r["source_key"] for r in rows(lake, "image_rejects")}
    assert len(got) + len(rejected) == 300 and not set(got) & rejected
    compared = 0
    for key in sorted(set(got) | rejected):
        if not pillow_reads(src / key):
            continue
        assert key in got, key
        want = oracle.inspect(src / key)
        assert_measures_match(key, got[key], want)
        assert got[key]["phash"] == want["phash"], key
        compared += 1
    assert compared >= 80, compared  # a third of the streams fill their bitmap (98 with this seed)
