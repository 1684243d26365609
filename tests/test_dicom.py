"""The DICOM job on every file the pinned pydicom and pydicom-data wheels ship
(about 270, a dozen transfer syntaxes, the malformed ones among them), checked
against pydicom itself: every file ends in exactly one of dicom_instances and
dicom_rejects, every extracted column equals what pydicom reads (the differences
that remain are listed below, each with its reason), no identifying value reaches
any output, report or log line, hostile files stay small in memory, and a 2 GB file
costs kilobytes of I/O, locally and through moto.

The wheels' files are found on disk (site-packages); pydicom's download paths are
never used."""
import datetime
import hashlib
import hmac
import importlib.util
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import uuid

import duckdb
import pydicom
import pytest
from pydicom.errors import InvalidDicomError

from conftest import BIN, ROOT, naslake
from faulty_proxy import LoopbackProxy, forward, reply

KEY = "test-pseudonym-key: 0123456789abcdef"
MOTO = os.environ.get("NASLAKE_TEST_MOTO")
SCHEMAS = ROOT / "schemas"


def corpus_sources():
    """(relative key, path) of every file of the two wheels' data folders."""
    pyd = pathlib.Path(pydicom.__file__).parent / "data"
    store = pathlib.Path(importlib.util.find_spec("data_store").origin).parent / "data"
    for prefix, base in (("pydicom", pyd), ("pydicom-data", store)):
        for f in sorted(base.rglob("*")):
            if f.is_file() and "__pycache__" not in f.parts and f.suffix not in (".py", ".pyc"):
                yield f"{prefix}/{f.relative_to(base).as_posix()}", f


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom") / "in"
    files = {}
    for key, src in corpus_sources():
        dst = root / key
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        files[key] = dst
    assert len(files) > 250, len(files)
    return root, files


def write_job(dir, input, profile=None, recognise="content", extra=""):
    """A DICOM job over `input` writing dicom_instances and dicom_rejects. Keys stay
    in clear unless the profile says otherwise: these tests compare rows with files
    by key (test_dicom_keys.py tests the pseudonymous keys)."""
    profile = {"keys": "keep", **(profile or {})}
    lines = [f"{k} = {json.dumps(v)}" for k, v in profile.items()]
    job = pathlib.Path(dir) / f"dicom-{uuid.uuid4().hex[:6]}.toml"
    job.write_text(f"""
name = "dicom_test"
input = "{input}"
[sources.dicom]
format = "dicom"
recognise = "{recognise}"
{extra}
[sources.dicom.deidentification]
{chr(10).join(lines)}
[tables.dicom_instances]
schema = "{SCHEMAS / 'dicom_instances.toml'}"
mode = "overwrite"
[tables.dicom_rejects]
schema = "{SCHEMAS / 'dicom_rejects.toml'}"
from = "rejects"
mode = "overwrite"
""")
    return job


RETAIN_ALL = {
    "retain_longitudinal_temporal_information": "full_dates",
    "retain_patient_characteristics": True,
    "retain_uids": True,
    "retain_device_identity": True,
    "clean_descriptors": True,
}


def table(lake, name):
    """A table's rows (dicts) as DuckDB reads the files the catalog lists."""
    entry = json.loads((pathlib.Path(lake) / "_naslake" / "catalog" / "naslake" / f"{name}.json").read_text())
    location = entry["TableInput"]["StorageDescriptor"]["Location"].removeprefix("file://")
    files = [p for p in pathlib.Path(location).rglob("*.parquet") if not p.name.startswith(("_", "."))]
    if not files:
        return []
    con = duckdb.connect()
    rel = con.execute(f"SELECT * FROM read_parquet({[str(f) for f in files]!r}, union_by_name=true)")
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r)) for r in rel.fetchall()]


def run_dicom(tmp_path, input, profile=None, env=None, **kw):
    job = write_job(tmp_path, input, profile, **kw.pop("job", {}))
    lake = tmp_path / f"lake-{uuid.uuid4().hex[:6]}"
    e = {"NASLAKE_PSEUDONYM_KEY": KEY}
    e.update(env or {})
    run = naslake("run", job, "--output", lake, lake=lake, env=e, **kw)
    return run, lake


@pytest.fixture(scope="module")
def retained(corpus, tmp_path_factory):
    """One run over the corpus with every attribute retained (to compare with pydicom)."""
    root, files = corpus
    tmp = tmp_path_factory.mktemp("retained")
    run, lake = run_dicom(tmp, root, RETAIN_ALL)
    assert run.code in (0, 3), run.stderr
    return run, table(lake, "dicom_instances"), table(lake, "dicom_rejects")


def pseudonym(keyword, value):
    return hmac.new(KEY.encode(), keyword.encode() + b"\0" + value.encode(), hashlib.sha256).digest()[:16].hex()


def keyed_uid(uid):
    mac = hmac.new(KEY.encode(), b"UID\0" + uid.encode(), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(mac[:16], "big"))


def date_shift(patient_id):
    mac = hmac.new(KEY.encode(), b"DateShift\0" + patient_id.encode(), hashlib.sha256).digest()
    return 1 + int.from_bytes(mac[:4], "big") % 3650


# --- what pydicom says a column should hold -------------------------------------

def strip(v):
    return str(v).strip(" \0")


def element(ds, kw):
    try:
        return ds.data_element(kw)
    except Exception:
        return None


def text(ds, kw):
    v = element(ds, kw)
    if v is None or v.value is None:
        return None
    s = strip(v.value if not isinstance(v.value, pydicom.multival.MultiValue) else "\\".join(map(str, v.value)))
    return s or None


def texts(ds, kw):
    v = element(ds, kw)
    if v is None or v.value is None or v.value == "":
        return None
    values = list(v.value) if isinstance(v.value, (list, pydicom.multival.MultiValue)) else [v.value]
    values = [strip(x) for x in values]
    return values if any(values) else None


def first_int(ds, kw):
    v = element(ds, kw)
    if v is None or v.value is None or v.value == "" or v.value == b"":
        return None
    value = v.value[0] if isinstance(v.value, (list, pydicom.multival.MultiValue)) else v.value
    return int(str(value).strip()) if not isinstance(value, int) else value


def floats(ds, kw):
    vals = texts(ds, kw)
    return None if vals is None else [float(x) for x in vals]


def da(ds, kw):
    s = text(ds, kw)
    if s is None:
        return None
    s = s.replace(".", "") if len(s) == 10 else s
    return datetime.date(int(s[:4]), int(s[4:6]), int(s[6:8]))


def tm(ds, kw):
    s = text(ds, kw)
    if s is None:
        return None
    whole, _, frac = s.partition(".")
    whole = whole.replace(":", "")
    parts = [whole[i:i + 2] for i in range(0, len(whole), 2)]
    return ":".join(parts) + (f".{frac}" if frac else "")


def expected(ds, meta_ts):
    """The retained-profile row pydicom's reading implies, column by column: each
    value, or an exception (the value does not read as its VR)."""
    def attempt(f, *a):
        try:
            return f(*a)
        except (ValueError, TypeError, IndexError):
            return ValueError
    pid = text(ds, "PatientID")
    out = {
        "sop_instance_uid": text(ds, "SOPInstanceUID"),
        "study_instance_uid": text(ds, "StudyInstanceUID"),
        "series_instance_uid": text(ds, "SeriesInstanceUID"),
        "patient_id": pid and pseudonym("PatientID", pid),
        "accession_number": text(ds, "AccessionNumber") and pseudonym("AccessionNumber", text(ds, "AccessionNumber")),
        "study_id": text(ds, "StudyID") and pseudonym("StudyID", text(ds, "StudyID")),
        "patient_sex": text(ds, "PatientSex"),
        "patient_age": text(ds, "PatientAge"),
        "patient_size": attempt(lambda: (floats(ds, "PatientSize") or [None])[0]),
        "patient_weight": attempt(lambda: (floats(ds, "PatientWeight") or [None])[0]),
        "modality": text(ds, "Modality"),
        "modalities_in_study": texts(ds, "ModalitiesInStudy"),
        "body_part_examined": text(ds, "BodyPartExamined"),
        "manufacturer": text(ds, "Manufacturer"),
        "manufacturer_model_name": text(ds, "ManufacturerModelName"),
        "station_name": text(ds, "StationName"),
        "series_number": attempt(first_int, ds, "SeriesNumber"),
        "instance_number": attempt(first_int, ds, "InstanceNumber"),
        "rows": attempt(first_int, ds, "Rows"),
        "columns": attempt(first_int, ds, "Columns"),
        "bits_allocated": attempt(first_int, ds, "BitsAllocated"),
        "bits_stored": attempt(first_int, ds, "BitsStored"),
        "samples_per_pixel": attempt(first_int, ds, "SamplesPerPixel"),
        "photometric_interpretation": text(ds, "PhotometricInterpretation"),
        "number_of_frames": attempt(first_int, ds, "NumberOfFrames"),
        "pixel_spacing": attempt(floats, ds, "PixelSpacing"),
        "slice_thickness": attempt(lambda: (floats(ds, "SliceThickness") or [None])[0]),
        "image_type": texts(ds, "ImageType"),
        "burned_in_annotation": {"YES": True, "NO": False, None: None}.get(text(ds, "BurnedInAnnotation"), ValueError),
        "specific_character_set": [t for t in (texts(ds, "SpecificCharacterSet") or []) if t] or None,
    }
    for kw in ("StudyDate", "SeriesDate", "AcquisitionDate", "PerformedProcedureStepStartDate"):
        out[snake(kw)] = attempt(da, ds, kw)
    for kw in ("StudyTime", "SeriesTime", "AcquisitionTime", "PerformedProcedureStepStartTime"):
        out[snake(kw)] = attempt(tm, ds, kw)
    for kw in ("StudyDescription", "SeriesDescription"):
        out[snake(kw)] = text(ds, kw)
    file_meta = getattr(ds, "file_meta", None)
    sop_class = text(ds, "SOPClassUID") or (file_meta is not None and text(file_meta, "MediaStorageSOPClassUID")) or None
    out["sop_class_uid"] = sop_class
    return out


def snake(keyword):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", keyword).lower().replace("i_d", "id")


KEYWORD_OF = {
    "study_description": "StudyDescription", "series_description": "SeriesDescription",
}

# Differences that remain, and why. A key is (file, column); "*" for every file.
EXPLAINED = {
    # Clean Descriptors drops a description that holds an identifying value of the
    # same instance (the row lists it in cleaned_attributes); checked separately.
}


def read_pydicom(path):
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, Exception):
        pass
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:
        return None


def test_every_file_ends_in_exactly_one_table(corpus, retained):
    root, files = corpus
    run, instances, rejects = retained
    got = [r["source_key"] for r in instances] + [r["source_key"] for r in rejects]
    assert sorted(got) == sorted(files), set(files) ^ set(got)
    assert len(got) == len(set(got))
    # The report's counts add up, per file and in total.
    report = run.report
    assert report is not None
    totals = {}
    for f in report["files"]:
        for k in ("records", "loaded", "rejected"):
            totals[k] = totals.get(k, 0) + f.get(k, 0)
    assert totals["loaded"] == len(instances)
    # Every reject says where and why, and quotes no raw bytes.
    stages = {r["stage"] for r in rejects}
    assert stages <= {"recognise", "file_meta", "data_set", "pixel_data", "header_limit", "decode", "read"}, stages
    for r in rejects:
        assert r["reason"] and r["bytes_read"] <= 4 * 1024 * 1024


def test_the_malformed_files_pydicom_ships_are_rejected_or_read_as_their_bytes_allow(retained):
    run, instances, rejects = retained
    by_name = {pathlib.Path(r["source_key"]).name: r for r in rejects}
    read = {pathlib.Path(r["source_key"]).name for r in instances}
    problem = {pathlib.Path(r["source_key"]).name: r["pixel_data_problem"] for r in instances}
    # Pixel data cut short: the header is indexed, the problem named.
    for name in ("MR_truncated.dcm", "emri_small_jpeg_2k_lossless_too_short.dcm"):
        assert name in read and problem[name] and "truncated" in problem[name], (name, problem.get(name))
    assert problem["CT_small.dcm"] is None
    for name, stage in [
        ("UN_sequence.dcm", None),  # reads: the UN's items are implicit VR (CP-246)
        # One stray byte before the data set: no encoding reads it (pydicom, forced,
        # reads one element of garbage).
        ("no_meta.dcm", "recognise"),
        ("rtplan_truncated.dcm", "data_set"),
    ]:
        if stage is None:
            assert name in read, name
        else:
            assert name in by_name and by_name[name]["stage"] == stage, (name, by_name.get(name))
    # Not DICOM at all: recognised as such.
    for name in ("README.txt", "hashes.json", "crayons.icc", "rtplan.dump", "zipMR.gz"):
        assert name in by_name and by_name[name]["stage"] == "recognise", (name, by_name.get(name))
        assert name not in read
    for name in ("ExplVR_BigEndNoMeta.dcm", "ExplVR_LitEndNoMeta.dcm", "no_meta_group_length.dcm",
                 "meta_missing_tsyntax.dcm", "image_dfl.dcm", "empty_charset_LEI.dcm"):
        assert name in read, (name, by_name.get(name))


# Files pydicom reads (stop_before_pixels) that naslake rejects, and why.
REJECTED_THOUGH_PYDICOM_READS = {
    # Its last element (a sequence) declares more bytes than remain: pydicom keeps
    # what is there with a warning; a truncated header is a reject here.
    "pydicom/test_files/rtplan_truncated.dcm": "data_set",
}


def test_rejects_are_files_pydicom_cannot_read_either_or_explained(corpus, retained):
    root, files = corpus
    run, instances, rejects = retained
    for r in rejects:
        try:
            pydicom.dcmread(files[r["source_key"]], stop_before_pixels=True)
        except Exception:
            continue
        assert REJECTED_THOUGH_PYDICOM_READS.get(r["source_key"]) == r["stage"], r


def test_every_column_matches_pydicom(corpus, retained):
    root, files = corpus
    run, instances, rejects = retained
    compared = 0
    differences = []
    for row in instances:
        ds = read_pydicom(files[row["source_key"]])
        if ds is None:
            continue
        compared += 1
        meta_ts = getattr(ds, "file_meta", None) is not None and "TransferSyntaxUID" in ds.file_meta
        want = expected(ds, meta_ts)
        for col, value in want.items():
            got = row[col]
            keyword = "".join(w.capitalize() for w in col.split("_"))
            if value is ValueError:
                # Does not read as its VR: NULL, and named in invalid_attributes.
                if got is None and any(k.lower() == keyword.lower() for k in row["invalid_attributes"]):
                    continue
            if got is None and row["undecoded_attributes"] and any(
                    k.lower() == keyword.lower() for k in row["undecoded_attributes"]):
                continue
            if col in KEYWORD_OF and got is None and KEYWORD_OF[col] in row["cleaned_attributes"]:
                continue
            if isinstance(value, float) and isinstance(got, float) and abs(value - got) <= 1e-9 * max(1, abs(value)):
                continue
            if got != value and (row["source_key"], col) not in EXPLAINED and ("*", col) not in EXPLAINED:
                differences.append((row["source_key"], col, got, value))
        if meta_ts:
            assert row["transfer_syntax_uid"] == strip(ds.file_meta.TransferSyntaxUID) or row["transfer_syntax_guessed"]
    assert compared > 200, compared
    assert not differences, "\n".join(map(repr, differences[:60])) + f"\n{len(differences)} differences"


def test_pseudonyms_uids_and_dates_follow_the_profile(corpus, tmp_path):
    root, files = corpus
    run, lake = run_dicom(tmp_path, root, {"retain_longitudinal_temporal_information": "modified_dates"})
    rows = table(lake, "dicom_instances")
    checked = 0
    for row in rows:
        ds = read_pydicom(files[row["source_key"]])
        if ds is None:
            continue
        if text(ds, "StudyInstanceUID"):
            assert row["study_instance_uid"] == keyed_uid(text(ds, "StudyInstanceUID"))
        try:
            d = da(ds, "StudyDate")
        except ValueError:
            d = None
        if d and row["study_date"]:
            shift = date_shift(text(ds, "PatientID") or "")
            assert row["study_date"] == d - datetime.timedelta(days=shift), row["source_key"]
            checked += 1
        # Removed without their options.
        assert row["patient_sex"] is None and row["station_name"] is None and row["study_description"] is None
        assert row["deidentification_method_codes"] == ["113100", "113107"]
    assert checked > 50


IDENTIFYING = ["PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "PatientTelephoneNumbers",
               "OtherPatientIDs", "AccessionNumber", "ReferringPhysicianName", "PerformingPhysicianName",
               "OperatorsName", "InstitutionName", "InstitutionAddress", "StationName"]
# Attributes the profile keeps: a file whose institution is called like its
# manufacturer shows that name as the manufacturer, which is no leak.
KEPT = ["Manufacturer", "ManufacturerModelName", "BodyPartExamined", "Modality", "StudyDescription",
        "SeriesDescription", "SOPClassUID", "PhotometricInterpretation"]


def values_of(ds, keywords):
    out = set()
    for kw in keywords:
        v = element(ds, kw)
        if v is None or v.value is None:
            continue
        items = v.value if isinstance(v.value, (list, pydicom.multival.MultiValue)) else [v.value]
        for item in items:
            s = strip(item)
            # Short numbers collide with tags, counts and sizes ("0010").
            if len(s) >= 4 and not (s.isdigit() and len(s) < 6):
                out.add(s)
    return out


def found(value, text):
    return re.search(r"(?<![0-9A-Za-z])" + re.escape(value) + r"(?![0-9A-Za-z])", text) is not None


def test_no_identifying_value_reaches_an_output_a_report_or_a_log(corpus, tmp_path):
    root, files = corpus
    profile = {"retain_longitudinal_temporal_information": "modified_dates",
               "retain_patient_characteristics": True, "clean_descriptors": True}
    run, lake = run_dicom(tmp_path, root, profile, env={"NASLAKE_LOG": "debug", "NASLAKE_LOG_FORMAT": "text"})
    assert run.code in (0, 3)
    identifying, kept = {}, {}
    for key, path in files.items():
        ds = read_pydicom(path)
        if ds is not None:
            identifying[key] = values_of(ds, IDENTIFYING)
            kept[key] = values_of(ds, KEPT)
    everything = set().union(*identifying.values())
    assert len(everything) > 100, len(everything)
    leaks = []
    # Each row: none of its own file's identifying values, in any column but the
    # key (kept in clear here, keys = "keep"; test_dicom_keys.py checks the keys).
    for name in ("dicom_instances", "dicom_rejects"):
        for row in table(lake, name):
            cells = "\n".join(str(v) for k, v in row.items() if v is not None and k != "source_key")
            for value in identifying.get(row["source_key"], ()):
                if found(value, cells) and not any(found(value, k) for k in kept[row["source_key"]]):
                    leaks.append((row["source_key"], value))
    # Logs, the report and the catalog: no file's identifying value (keys aside).
    texts = [run.stdout, run.stderr] + [p.read_text(errors="replace") for p in (lake / "_naslake").rglob("*") if p.is_file()]
    text_all = "\n".join(texts)
    for key in sorted(files, key=len, reverse=True):
        text_all = text_all.replace(key, "<key>")
    leaks += [("log, report or catalog", v) for v in everything if found(v, text_all)]
    assert not leaks, leaks[:20]


def test_the_bundled_samples_run_without_a_key_and_nothing_else_does(corpus, tmp_path):
    lake = tmp_path / "lake"
    run = naslake("run", ROOT / "jobs" / "dicom.toml", "--output", lake, lake=lake,
                  env={"NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": ""})
    assert run.code in (0, 3), run.stderr
    instances = table(lake, "dicom_instances")
    rejects = table(lake, "dicom_rejects")
    assert len(instances) >= 4 and len(rejects) == 2
    assert {r["stage"] for r in rejects} == {"recognise", "data_set"}
    for name in ("dicom_studies_by_day", "dicom_series", "dicom_burned_in_review"):
        assert table(lake, name), name
    review = table(lake, "dicom_burned_in_review")
    assert any(r["burned_in_annotation"] for r in review)
    # Real files without a key: a clear error, and nothing is written.
    root, _ = corpus
    run, lake = run_dicom(tmp_path, root, env={"NASLAKE_PSEUDONYM_KEY": ""}, check_codes=None)
    assert run.code != 0 and "NASLAKE_PSEUDONYM_KEY" in run.stdout + run.stderr, run.stdout + run.stderr
    assert not (lake / "_naslake" / "catalog").exists() or not list((lake / "_naslake" / "catalog").rglob("*.json"))


# --- hostile files: memory ----------------------------------------------------------

def peak_rss_kib(args, env):
    """Peak RSS of a naslake run, measured by a fresh parent (so no other child counts)."""
    code = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:], capture_output=True);"
            "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", code, BIN, *map(str, args)], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=300, check=True)
    rc, kib = json.loads(out.stdout)
    return rc, kib


def crafted(kind):
    """A small file that declares far more than it holds."""
    meta = b"\0" * 128 + b"DICM"
    ts = b"1.2.840.10008.1.2.1.99" if kind == "deflate_bomb" else b"1.2.840.10008.1.2.1\0"
    el = struct.pack("<HH2sH", 2, 0x10, b"UI", len(ts)) + ts
    meta += struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(el)) + el
    ds = struct.pack("<HH2sH", 8, 0x60, b"CS", 2) + b"CT"
    if kind == "4gb_element":
        ds += struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, 0xFFFFFFF0) + b"\1" * 64
    elif kind == "4gb_in_sequence":
        ds += struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
        ds += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
        ds += struct.pack("<HH2sHI", 0x0008, 0x1155, b"UT", 0, 0xFFFFFFF0) + b"x" * 32
    elif kind == "deflate_bomb":
        # Deflated: 1 GiB of inflated data set behind an element that declares 4 GB.
        import zlib
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        out = z.compress(ds + struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, 0xFFFFFFF0))
        zeros = bytes(1 << 20)
        for _ in range(1024):
            out += z.compress(zeros)
        return meta + out + z.flush()
    elif kind == "4gb_no_meta":
        return struct.pack("<HHI", 8, 0x16, 0xFFFFFFF0) + b"1.2" * 10
    return meta + ds


HOSTILE_OUTCOME = {
    "UN_sequence.dcm": "indexed", "MR_truncated.dcm": "indexed", "rtplan_truncated.dcm": "data_set",
    "4gb_element.dcm": "data_set", "4gb_in_sequence.dcm": "data_set", "4gb_no_meta.dcm": "recognise",
    "deflate_bomb.dcm": "header_limit", "empty.dcm": "recognise", "baseline.dcm": "indexed",
}


def test_hostile_files_stay_small_in_memory(corpus, tmp_path):
    root, files = corpus
    cases = {"UN_sequence.dcm": None, "MR_truncated.dcm": None, "rtplan_truncated.dcm": None,
             "4gb_element.dcm": crafted("4gb_element"), "4gb_in_sequence.dcm": crafted("4gb_in_sequence"),
             "4gb_no_meta.dcm": crafted("4gb_no_meta"), "deflate_bomb.dcm": crafted("deflate_bomb"),
             "empty.dcm": b"",
             "baseline.dcm": None}
    by_name = {pathlib.Path(k).name: p for k, p in files.items()}
    results = {}
    for name, data in cases.items():
        d = tmp_path / name.replace(".", "_")
        d.mkdir()
        if data is None:
            src = by_name["CT_small.dcm" if name == "baseline.dcm" else name]
            shutil.copyfile(src, d / name)
        else:
            (d / name).write_bytes(data)
        job = write_job(tmp_path, d)
        rc, kib = peak_rss_kib(["run", job, "--output", tmp_path / f"lake_{d.name}"],
                               {"NASLAKE_PSEUDONYM_KEY": KEY})
        assert rc in (0, 3), (name, rc)
        results[name] = kib
        lake = tmp_path / f"lake_{d.name}"
        rejects = table(lake, "dicom_rejects")
        stage = rejects[0]["stage"] if rejects else "indexed"
        assert stage == HOSTILE_OUTCOME[name], (name, rejects)
    print("peak RSS (KiB):", results)
    base = results.pop("baseline.dcm")
    for name, kib in results.items():
        assert kib < base + 32 * 1024, (name, kib, base)


# --- a 2 GB file: kilobytes read ---------------------------------------------------

def big_file(path, src):
    """A real header (CT_small's) followed by a sparse 2 GB pixel data element."""
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    head = tmp = path.with_suffix(".head")
    ds.save_as(tmp, enforce_file_format=True)
    data = tmp.read_bytes()
    tmp.unlink()
    size = 2 * 1024 ** 3
    data += struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, size)
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(len(data) + size)
    return len(data) + size


def test_a_2_gb_file_is_indexed_with_kilobytes_read_locally(corpus, tmp_path):
    root, files = corpus
    src = next(p for k, p in files.items() if k.endswith("/CT_small.dcm"))
    d = tmp_path / "big"
    d.mkdir()
    size = big_file(d / "big.dcm", src)
    run, lake = run_dicom(tmp_path, d)
    [row] = table(lake, "dicom_instances")
    assert row["object_size"] == size and row["has_pixel_data"]
    assert row["header_bytes_read"] <= 64 * 1024, row["header_bytes_read"]
    assert sum(f["bytes_read"] for f in run.report["files"]) <= 64 * 1024
    print(f"2 GB file, local: {row['header_bytes_read']} bytes read")


class CountingProxy(LoopbackProxy):
    """Counts the body bytes the server sent in answers to GETs."""

    def __init__(self, upstream_port):
        super().__init__(upstream_port)
        self.sent = 0

    def handle(self, handler, body):
        status, headers, data = forward(handler, self.upstream_port, body)
        if handler.command == "GET":
            with self.lock:
                self.sent += len(data)
        reply(handler, status, headers, data)


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_a_2_gb_file_is_indexed_with_kilobytes_read_through_s3(corpus, tmp_path):
    import boto3
    from boto3.s3.transfer import TransferConfig
    root, files = corpus
    src = next(p for k, p in files.items() if k.endswith("/CT_small.dcm"))
    big = tmp_path / "big.dcm"
    size = big_file(big, src)
    s3 = boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    bucket = f"dicom-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(big), bucket, "share/big.dcm", Config=TransferConfig(multipart_chunksize=256 * 1024 ** 2))
    upstream = int(MOTO.rsplit(":", 1)[1])
    with CountingProxy(upstream) as proxy:
        env = {"AWS_ENDPOINT_URL": f"http://localhost:{proxy.port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
        run, lake = run_dicom(tmp_path, f"s3://{bucket}/share", env=env)
        sent = proxy.sent
    [row] = table(lake, "dicom_instances")
    assert row["object_size"] == size
    assert row["header_bytes_read"] <= 64 * 1024
    # The listing's XML aside, the server sent kilobytes.
    assert sent <= 128 * 1024, sent
    print(f"2 GB file through moto: {row['header_bytes_read']} bytes read, the server sent {sent} bytes")
    s3.delete_object(Bucket=bucket, Key="share/big.dcm")


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
def test_the_pseudonym_key_from_secrets_manager(corpus, tmp_path):
    import boto3
    sm = boto3.client("secretsmanager", endpoint_url=MOTO, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    name = f"naslake/pseudonym-{uuid.uuid4().hex[:6]}"
    sm.create_secret(Name=name, SecretString=KEY)
    root, files = corpus
    d = tmp_path / "one"
    d.mkdir()
    src = next(p for k, p in files.items() if k.endswith("/CT_small.dcm"))
    shutil.copyfile(src, d / "ct.dcm")
    env = {"NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": name, "AWS_ENDPOINT_URL": MOTO,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "NASLAKE_LOG": "debug"}
    run, lake = run_dicom(tmp_path, d, env=env)
    [row] = table(lake, "dicom_instances")
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    assert row["patient_id"] == pseudonym("PatientID", text(ds, "PatientID"))
    assert KEY not in run.stdout + run.stderr
    missing = dict(env, NASLAKE_PSEUDONYM_SECRET_ID="naslake/no-such-secret")
    run, _ = run_dicom(tmp_path, d, env=missing, check_codes=None)
    assert run.code != 0 and "naslake/no-such-secret" in run.stdout + run.stderr


@pytest.mark.skipif(not MOTO, reason="needs moto server: run scripts/test")
@pytest.mark.parametrize("change", ["replace", "delete"])
def test_an_object_changed_after_listing_is_a_read_reject_and_the_rest_index(corpus, tmp_path, change):
    import boto3
    from swap_proxy import SwapProxy
    root, files = corpus
    s3 = boto3.client("s3", endpoint_url=MOTO, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    bucket = f"dicom-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    names = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm"]
    by_name = {pathlib.Path(k).name: p for k, p in files.items() if k.startswith("pydicom/test_files/")}
    for n in names:
        s3.upload_file(str(by_name[n]), bucket, f"share/{n}")
    key = "share/MR_small.dcm"

    def swap():
        if change == "replace":
            s3.put_object(Bucket=bucket, Key=key, Body=by_name["CT_small.dcm"].read_bytes())
        else:
            s3.delete_object(Bucket=bucket, Key=key)

    upstream = int(MOTO.rsplit(":", 1)[1])
    with SwapProxy(upstream, f"/{bucket}/{key}", swap) as proxy:
        env = {"AWS_ENDPOINT_URL": f"http://localhost:{proxy.port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "NASLAKE_RETRY_BASE_MS": "50"}
        run, lake = run_dicom(tmp_path, f"s3://{bucket}/share", env=env, job={"recognise": "suffix"})
    assert proxy.fired
    assert run.code == 3, run.stdout + run.stderr
    [reject] = table(lake, "dicom_rejects")
    assert reject["source_key"] == "MR_small.dcm" and reject["stage"] == "read", reject
    assert ("deleted" if change == "delete" else "changed") in reject["reason"], reject
    assert sorted(r["source_key"] for r in table(lake, "dicom_instances")) == ["CT_small.dcm", "rtplan.dcm"]
