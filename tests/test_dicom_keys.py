"""Object keys de-identified (docs/sources/dicom.md, "Object keys"): the files of the
pydicom wheels laid out under folders named after their own PatientName, PatientID
and AccessionNumber, as hospital shares name them, run in full, then incrementally
with one file replaced and one deleted, then sharded, with debug logs. No patient
name, ID or accession number appears in any file under the output (Parquet read
back by DuckDB, everything else as bytes), in the catalog, or in any log line;
each source_key is the keyed name an independent HMAC (Python's hmac) gives the
real key; the restricted dicom_key_links table maps exactly the objects the lake
holds back to their real keys; `naslake dicom locate` finds one."""
import hashlib
import hmac
import json
import os
import pathlib
import re
import shutil

import duckdb
import pydicom
import pytest

from conftest import ROOT, naslake
from test_dicom import KEY, corpus_sources, read_pydicom, table
from test_dicom import write_job as dicom_job

PHI_KEYWORDS = ("PatientName", "PatientID", "AccessionNumber")
KEPT_SUFFIXES = (".dcm", ".dicom", ".ima", ".gz")


def pseudonym(segment):
    """A key segment's pseudonym: HMAC-SHA-256 under the job's key, domain SourceKey."""
    if segment == "":
        return ""
    return hmac.new(KEY.encode(), b"SourceKey\0" + segment.encode(), hashlib.sha256).hexdigest()[:20]


def file_name(name):
    stem = name
    while True:
        for s in KEPT_SUFFIXES:
            if stem.lower().endswith(s) and len(stem) > len(s):
                stem = stem[: -len(s)]
                break
        else:
            return pseudonym(stem) + name[len(stem):]


def name_of(key, prefix=""):
    """The name a run gives `key` (the rules of src/sources/dicom/keys.rs)."""
    segments, clear = key.split("/"), prefix.split("/")
    n = 0
    while n < min(len(segments), len(clear)) and segments[n] == clear[n]:
        n += 1
    return "/".join(s if i < n else file_name(s) if i == len(segments) - 1 else pseudonym(s)
                    for i, s in enumerate(segments))


def folder(value):
    """A folder name as a share would make it from a value: letters of any script
    kept, what a path cannot hold replaced, not hidden (`_…`, `.…` are skipped)."""
    name = "".join(c if c.isalnum() or c in "._- " else "_" for c in value).strip()
    return name.lstrip("_.") or "x"


def identifiers(ds):
    """PatientName, PatientID and AccessionNumber as text (issue 29's rule: four
    characters or more; digit-only ones of six or more)."""
    out = set()
    for kw in PHI_KEYWORDS:
        v = ds.get(kw)
        if v is None or str(v) == "":
            continue
        s = str(v).strip(" \0")
        if len(s) >= 4 and not (s.isdigit() and len(s) < 6):
            out.add(s)
    return out


@pytest.fixture(scope="module")
def share(tmp_path_factory):
    """{real key: identifiers} of the wheels' files that name a patient, under
    PATIENT_NAME/PATIENT_ID/ACCESSION/FILE, and the directory holding them."""
    root = tmp_path_factory.mktemp("share") / "in"
    files = {}
    for key, src in corpus_sources():
        ds = read_pydicom(src)
        if ds is None or not ds.get("PatientName") or not ds.get("PatientID"):
            continue
        ids = identifiers(ds)
        if not ids:
            continue
        parts = [folder(str(ds.PatientName)), folder(str(ds.PatientID))]
        if ds.get("AccessionNumber"):
            parts.append(folder(str(ds.AccessionNumber)))
        real = "/".join(parts + [pathlib.PurePath(key).name])
        if real in files:
            continue
        dst = root / real
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        # The folder names are identifiers too (as the share writes them).
        files[real] = ids | {p for p in parts if len(p) >= 4 and not (p.isdigit() and len(p) < 6)}
    assert len(files) > 80, len(files)
    return root, files


def write_job(dir, input, links=None, prefix="", keys=None):
    """test_dicom's job (keys pseudonymized unless `keys` says otherwise),
    incremental, with the key links table when `links` names its location."""
    job = dicom_job(dir, input, {"keys": keys or "pseudonymize"}, extra=f'prefix = "{prefix}"')
    text = job.read_text() + "\n[incremental]\nenabled = true\n"
    if links:
        text += f'\n[tables.dicom_key_links]\nlocation = "{links}"\ndatabase = "dicom_restricted"\n'
    job.write_text(text)
    return job


ENV = {"NASLAKE_PSEUDONYM_KEY": KEY, "NASLAKE_LOG": "debug"}


def found(value, text):
    """`value` in `text`, not inside a longer run of letters or digits."""
    return re.search(r"(?<![0-9A-Za-z])" + re.escape(value) + r"(?![0-9A-Za-z])", text) is not None


def everything_under(path):
    """The text of every file under `path`: Parquet as DuckDB reads its cells (a
    compressed page would hide bytes), anything else as its bytes."""
    texts = []
    con = duckdb.connect()
    for p in sorted(pathlib.Path(path).rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".parquet":
            rel = con.execute(f"SELECT * FROM read_parquet('{p}')")
            texts.append("\n".join("\t".join(str(c) for c in row) for row in rel.fetchall()))
        texts.append(p.read_bytes().decode("latin-1"))
    return "\n".join(texts)


def links_rows(links):
    files = [str(p) for p in pathlib.Path(links).rglob("*.parquet")]
    assert files, f"no key links under {links}"
    con = duckdb.connect()
    return {r[0]: r[1] for r in con.execute(
        f"SELECT source_key, object_key FROM read_parquet({files!r})").fetchall()}


def share_with_links(share, tmp_path):
    """A copy of the share (runs change it), a lake, a links location outside it,
    and a job writing the key links there: (root, lake, links, job)."""
    root = tmp_path / "in"
    shutil.copytree(share[0], root)
    lake, links = tmp_path / "lake", tmp_path / "restricted" / "links"
    return root, lake, links, write_job(tmp_path, root, links=links)


def test_no_identifier_in_any_output_or_log_through_full_incremental_and_sharded_runs(share, tmp_path):
    files = share[1]
    root, lake, links, job = share_with_links(share, tmp_path)
    logs = []

    full = naslake("run", job, "--output", lake, lake=lake, env=ENV)
    logs += [full.stdout, full.stderr]
    present = dict(files)
    names = {name_of(k): k for k in present}
    assert len(names) == len(present), "two keys share a name"
    rows = table(lake, "dicom_instances") + table(lake, "dicom_rejects")
    assert sorted(r["source_key"] for r in rows) == sorted(names)
    assert links_rows(links) == names

    # One file replaced by another's bytes, one deleted: read again and dropped.
    replaced, deleted = sorted(present)[:2]
    donor = sorted(present)[-1]
    shutil.copyfile(root / donor, root / replaced)
    (root / deleted).unlink()
    del present[deleted]
    inc = naslake("run", job, "--output", lake, lake=lake, env=ENV)
    logs += [inc.stdout, inc.stderr]
    report = json.loads(sorted((lake / "_naslake" / "runs").glob("*.json"))[-1].read_text())
    assert report["incremental"]["basis"] == "incremental", report["incremental"]
    assert [f["key"] for f in report["files"]] == [name_of(replaced)]
    names = {name_of(k): k for k in present}
    instances = table(lake, "dicom_instances")
    rows = instances + table(lake, "dicom_rejects")
    assert sorted(r["source_key"] for r in rows) == sorted(names)
    assert name_of(deleted) not in {r["source_key"] for r in rows}
    size = {r["source_key"]: r["object_size"] for r in rows}
    assert size[name_of(replaced)] == (root / donor).stat().st_size
    assert links_rows(links) == names

    # A sharded run (in full), each shard with debug logs.
    plan = naslake("plan", job, "--output", lake, "--shards", "2", "--full", env=ENV)
    logs += [plan.stdout, plan.stderr]
    url = plan.stdout.strip().splitlines()[-1]
    for shard in ("0", "1"):
        w = naslake("work", url, "--shard", shard, env=ENV)
        logs += [w.stdout, w.stderr]
    c = naslake("commit", url, env=ENV, lake=lake)
    logs += [c.stdout, c.stderr]
    rows = table(lake, "dicom_instances") + table(lake, "dicom_rejects")
    assert sorted(r["source_key"] for r in rows) == sorted(names)
    assert links_rows(links) == names
    # One version is left, in the job's folder; the earlier ones are gone whole.
    versions = list((links / "dicom_test").iterdir())
    assert len(versions) == 1 and versions[0].name.startswith("v-"), versions

    # The restricted table's example query runs, on the lake that has it.
    section = (ROOT / "docs" / "tables.md").read_text().split("### `dicom_key_links`")[1]
    example = re.findall(r"```sql\n(.*?)```", section, re.S)[1]
    out = naslake("query", "--catalog", f"local:{lake}", "--format", "json", "--", example).stdout
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert got and all(g["object_key"] in present for g in got), got[:3]

    # The run history, as an operator reads it.
    history = naslake("runs", "--output", lake, "--format", "json")
    last = json.loads(history.stdout.splitlines()[0])["run_id"]
    logs += [history.stdout, naslake("runs", "show", last, "--output", lake).stdout]

    # Nothing anywhere under the output (tables, catalog, state, reports, the
    # plan and the shards' results) or in a log line names a patient.
    text = everything_under(lake) + "\n".join(logs)
    assert "DEBUG" in text, "the runs logged at debug level"
    leaks = sorted({v for ids in files.values() for v in ids if found(v, text)})
    assert not leaks, leaks[:20]
    # The links are the one place the real keys are, outside the output.
    assert any(found(v, everything_under(links)) for ids in files.values() for v in ids)


def test_locate_finds_the_real_key_of_a_name(share, tmp_path):
    root, files = share
    key = sorted(files)[3]
    name = name_of(key)
    got = naslake("dicom", "locate", name, "--input", root, env={"NASLAKE_PSEUDONYM_KEY": KEY})
    assert got.stdout.splitlines() == [key]
    missing = naslake("dicom", "locate", "0" * 20 + "/x.dcm", "--input", root,
                      env={"NASLAKE_PSEUDONYM_KEY": KEY}, check_codes=(1,))
    assert missing.stdout == ""
    nokey = naslake("dicom", "locate", name, "--input", root,
                    env={"NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": ""}, check_codes=(2,))
    assert "pseudonym key" in nokey.stderr


def test_the_prefix_stays_in_clear_and_keep_keeps_keys(share, tmp_path):
    src, files = share
    root = tmp_path / "in"
    shutil.copytree(src, root / "studies" / "2024")
    lake = tmp_path / "lake"
    naslake("run", write_job(tmp_path, root, prefix="studies/2024/"), "--output", lake, lake=lake, env=ENV)
    keys = {r["source_key"] for r in table(lake, "dicom_instances") + table(lake, "dicom_rejects")}
    assert keys == {name_of(f"studies/2024/{k}", "studies/2024/") for k in files}
    assert all(k.startswith("studies/2024/") for k in keys)

    kept = tmp_path / "kept"
    naslake("run", write_job(tmp_path, root, keys="keep"), "--output", kept, lake=kept, env=ENV)
    keys = {r["source_key"] for r in table(kept, "dicom_instances") + table(kept, "dicom_rejects")}
    assert keys == {f"studies/2024/{k}" for k in files}


@pytest.mark.parametrize("links, why", [
    (None, "location"),
    ("INSIDE", "overlaps the job's input or output"),
])
def test_a_key_links_table_needs_a_location_of_its_own(share, tmp_path, links, why):
    root, _ = share
    lake = tmp_path / "lake"
    job = write_job(tmp_path, root)
    location = f'location = "{lake / "links"}"' if links == "INSIDE" else ""
    job.write_text(job.read_text() + f"\n[tables.dicom_key_links]\n{location}\n")
    run = naslake("run", job, "--output", lake, env=ENV, check_codes=(2,))
    assert why in run.stderr, run.stderr
    assert not (lake / "_naslake" / "catalog").exists()


def phi_in(text, files):
    return sorted({v for ids in files.values() for v in ids if found(v, text)})


def test_without_a_key_a_share_of_real_files_stops_before_naming_one(share, tmp_path):
    """The samples run without a key and keep their keys in clear; a real share
    without a key stops before discovery has named an object, so no key reaches
    the console, a report or a plan."""
    root, files = share
    nokey = {"NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": "", "NASLAKE_LOG": "debug"}
    job = write_job(tmp_path, root)
    lake = tmp_path / "lake"
    run = naslake("run", job, "--output", lake, env=nokey, check_codes=(2,))
    assert "no pseudonym key" in run.stderr + run.stdout
    plan = naslake("plan", job, "--output", lake, "--shards", "2", env=nokey, check_codes=(2,))
    text = run.stdout + run.stderr + plan.stdout + plan.stderr
    # A sample among the real files changes nothing; a prefix that selects nothing
    # says so without example keys.
    mixed = tmp_path / "mixed"
    shutil.copytree(root, mixed)
    shutil.copyfile(ROOT / "samples" / "dicom" / "ct" / "chest_001.dcm", mixed / "0000.dcm")
    run = naslake("run", write_job(tmp_path, mixed), "--output", lake, env=nokey, check_codes=(2,))
    empty = naslake("run", write_job(tmp_path, mixed, prefix="nothing/"), "--output", lake, env=nokey,
                    check_codes=None)
    assert empty.code != 0 and "found nothing to read" in empty.stdout + empty.stderr
    text += run.stdout + run.stderr + empty.stdout + empty.stderr
    if lake.exists():
        text += everything_under(lake)
    assert not phi_in(text, files), phi_in(text, files)[:10]


def test_a_commit_without_the_plans_key_changes_nothing(share, tmp_path):
    files = share[1]
    root, lake, links, job = share_with_links(share, tmp_path)
    plan = naslake("plan", job, "--output", lake, "--shards", "1", env=ENV)
    url = plan.stdout.strip().splitlines()[-1]
    naslake("work", url, "--shard", "0", env=ENV)
    nokey = {"NASLAKE_PSEUDONYM_KEY": "", "NASLAKE_PSEUDONYM_SECRET_ID": ""}
    c = naslake("commit", url, env=nokey, check_codes=(2,))
    assert "pseudonym key" in c.stderr + c.stdout
    assert not list((lake / "_naslake" / "catalog").rglob("*.json")) if (lake / "_naslake" / "catalog").exists() else True
    assert not list(links.rglob("*.parquet"))
    # With the key, the same plan commits.
    naslake("commit", url, env=ENV, lake=lake)
    assert links_rows(links) == {name_of(k): k for k in files}


def test_a_listing_error_is_told_without_the_key_it_quotes(share, tmp_path):
    src, files = share
    root = tmp_path / "in"
    shutil.copytree(src, root)
    patient = next(iter(files)).split("/")[0]
    # A name the store cannot represent (not UTF-8), in a patient's folder.
    try:
        with open(os.path.join(os.fsencode(root / patient), b"bad\xff.dcm"), "wb") as f:
            f.write(b"x")
    except OSError:
        pytest.skip("this file system takes UTF-8 names only")
    lake = tmp_path / "lake"
    run = naslake("run", write_job(tmp_path, root), "--output", lake, env=ENV, check_codes=(1,))
    assert "withheld" in run.stdout + run.stderr, run.stderr
    text = run.stdout + run.stderr + everything_under(lake)
    assert not phi_in(text, files), phi_in(text, files)[:10]


def test_links_killed_before_their_registration_catch_up_with_the_next_run(share, tmp_path):
    """A run killed after its switch but before the links' registration: the next
    run, which finds nothing changed and commits nothing, registers them."""
    files = share[1]
    root, lake, links, job = share_with_links(share, tmp_path)
    naslake("run", job, "--output", lake, lake=lake, env=ENV)
    extra = sorted(files)[0]
    shutil.copyfile(root / extra, root / "NEW_PATIENT_0099.dcm")
    killed = naslake("run", job, "--output", lake, env={**ENV, "NASLAKE_FAULT": "commit.cleanup:1"},
                     check_codes=None)
    assert killed.code != 0
    names = {name_of(k): k for k in files} | {name_of("NEW_PATIENT_0099.dcm"): "NEW_PATIENT_0099.dcm"}
    entry = json.loads((lake / "_naslake" / "catalog" / "dicom_restricted" / "dicom_key_links.json").read_text())
    registered = pathlib.Path(entry["TableInput"]["StorageDescriptor"]["Location"].removeprefix("file://"))
    assert name_of("NEW_PATIENT_0099.dcm") not in links_rows(registered), "still the version before"
    quiet = naslake("run", job, "--output", lake, lake=lake, env=ENV)
    assert quiet.report["incremental"]["nothing_changed"], quiet.report["incremental"]
    entry = json.loads((lake / "_naslake" / "catalog" / "dicom_restricted" / "dicom_key_links.json").read_text())
    registered = pathlib.Path(entry["TableInput"]["StorageDescriptor"]["Location"].removeprefix("file://"))
    assert links_rows(registered) == names
    assert len(list((links / "dicom_test").iterdir())) == 1
