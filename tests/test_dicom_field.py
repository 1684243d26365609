"""The DICOM job on crafted files of the kinds other DICOM toolkits keep in their
test suites (tests/dicom_crafted.py: ACR-NEMA, big endian, odd sequence lengths,
an encapsulated icon, a DICOMDIR, deflate, UN private sequences, ISO 2022 and
GB18030, DICM in the wrong place, damaged or oversized pixel data, invalid VRs, a
US value of an odd length),
checked against pydicom and against what was written: every file ends in exactly
one of dicom_instances and dicom_rejects, what pydicom reads cleanly is indexed,
the structural columns are the top-level values, damaged pixel data is indexed
with its problem named, an invalid VR or a value of the wrong length is named in
invalid_attributes, and none of it costs memory."""
import shutil
import warnings

import pydicom
import pytest

import dicom_crafted as crafted
from test_dicom import KEY, RETAIN_ALL, peak_rss_kib, run_dicom, table, write_job

CASES = list(crafted.CASES)
DICOM_CASES = [c for c in CASES if c not in crafted.NOT_DICOM]

ENCODING_UID = {(True, True): crafted.IMPLICIT_LE, (False, True): crafted.EXPLICIT_LE,
                (False, False): crafted.EXPLICIT_BE}


@pytest.fixture(scope="module")
def crafted_files(tmp_path_factory):
    """(input root, {case: path}, {case: structural values written})."""
    root = tmp_path_factory.mktemp("crafted") / "in"
    written = {}
    paths = crafted.make_all(root, written)
    return root, paths, written


class Outcome:
    """One retained-profile run over every crafted file, by case (keys in clear:
    test_dicom.write_job keeps them)."""

    def __init__(self, run, root, paths, instances, rejects):
        self.run = run
        self.key = {case: path.relative_to(root).as_posix() for case, path in paths.items()}
        self.names = {case: {key} for case, key in self.key.items()}
        self.instances = instances
        self.rejects = rejects

    def rows(self, case):
        return [r for r in self.instances if r["source_key"] in self.names[case]]

    def reject_rows(self, case):
        return [r for r in self.rejects if r["source_key"] in self.names[case]]

    def row(self, case):
        """The case's dicom_instances row, or a failure that says how it was rejected."""
        rows = self.rows(case)
        if not rows:
            pytest.fail(f"{case} is not indexed: {self.reject_rows(case)}")
        assert len(rows) == 1, rows
        return rows[0]


@pytest.fixture(scope="module")
def outcome(crafted_files, tmp_path_factory):
    root, paths, _ = crafted_files
    tmp = tmp_path_factory.mktemp("crafted_run")
    run, lake = run_dicom(tmp, root, RETAIN_ALL)
    return Outcome(run, root, paths, table(lake, "dicom_instances"), table(lake, "dicom_rejects"))


# --- what pydicom says ----------------------------------------------------------

def touch(ds):
    """Decodes every value of the file meta and the data set, nested ones too."""
    if getattr(ds, "file_meta", None) is not None:
        for elem in ds.file_meta:
            str(elem.value)
    for elem in ds.iterall():
        str(elem.value)


def pydicom_read(path, force=False):
    """(data set, None) when pydicom reads the whole file (pixel data included) and
    decodes every value with warnings turned into errors; else (None, why)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ds = pydicom.dcmread(path, force=force)
            touch(ds)
        except Exception as e:  # noqa: BLE001 - any failure means "not clean"
            return None, f"{type(e).__name__}: {e}"
    return ds, None


def reference(path):
    """pydicom's clean reading, without force or else with it; None when neither is."""
    ds, _ = pydicom_read(path)
    if ds is None:
        ds, _ = pydicom_read(path, force=True)
    return ds


def structure(ds):
    """The structural columns as pydicom reads them (None for absent or empty)."""
    def value(keyword, kind):
        elem = ds.get(keyword)
        if elem is None or elem == "":
            return None
        if isinstance(elem, pydicom.multival.MultiValue):
            elem = elem[0]
        return kind(str(elem).strip(" \0")) if kind is str else kind(elem)

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        ts = str(meta.TransferSyntaxUID).strip(" \0")
    else:
        ts = ENCODING_UID[ds.original_encoding]
    sop_class = value("SOPClassUID", str)
    if sop_class is None and meta is not None and "MediaStorageSOPClassUID" in meta:
        sop_class = str(meta.MediaStorageSOPClassUID).strip(" \0")
    return {
        "modality": value("Modality", str), "rows": value("Rows", int), "columns": value("Columns", int),
        "sop_class_uid": sop_class, "bits_allocated": value("BitsAllocated", int),
        "samples_per_pixel": value("SamplesPerPixel", int),
        "photometric_interpretation": value("PhotometricInterpretation", str),
        "number_of_frames": value("NumberOfFrames", int),  # IS: an int, "" when empty
        "transfer_syntax_uid": ts,
    }


def differences(row, want):
    return {col: (row.get(col, "<no such column>"), value) for col, value in want.items()
            if row.get(col, "<no such column>") != value}


# --- every file accounted for ---------------------------------------------------

def test_every_crafted_file_ends_in_exactly_one_table(crafted_files, outcome):
    got = [r["source_key"] for r in outcome.instances] + [r["source_key"] for r in outcome.rejects]
    for case in outcome.key:
        assert len(outcome.rows(case)) + len(outcome.reject_rows(case)) == 1, (case, outcome.names[case])
    assert len(got) == len(outcome.key), got
    for r in outcome.rejects:
        assert r["stage"] and r["reason"], r


@pytest.mark.parametrize("case", CASES)
def test_pydicom_reads_them_as_documented(crafted_files, case):
    """dicom_crafted.PYDICOM_CLEAN says what pydicom does; keep it true."""
    root, paths, _ = crafted_files
    ds, why = pydicom_read(paths[case])
    assert (ds is not None) == crafted.PYDICOM_CLEAN[case], why


@pytest.mark.parametrize("case", CASES)
def test_what_pydicom_reads_cleanly_is_not_rejected(crafted_files, outcome, case):
    root, paths, _ = crafted_files
    ds, why = pydicom_read(paths[case])
    if ds is None:
        pytest.skip(f"pydicom does not read it cleanly: {why[:200]}")
    assert not outcome.reject_rows(case), outcome.reject_rows(case)
    assert len(outcome.rows(case)) == 1


@pytest.mark.parametrize("case", DICOM_CASES)
def test_every_dicom_case_is_indexed(outcome, case):
    """Legal encodings, damaged pixel data and invalid VRs all have a header that
    reads: none is a reject."""
    outcome.row(case)


@pytest.mark.parametrize("case", crafted.NOT_DICOM)
def test_a_file_that_is_not_dicom_is_a_recognise_reject(outcome, case):
    assert not outcome.rows(case), outcome.rows(case)
    [reject] = outcome.reject_rows(case)
    assert reject["stage"] == "recognise", reject


# --- the structural columns -----------------------------------------------------

@pytest.mark.parametrize("case", DICOM_CASES)
def test_structural_columns_match_pydicom(crafted_files, outcome, case):
    """For each indexed file pydicom reads cleanly (with force if it must), the
    top-level Modality, Rows, ... as pydicom reads them."""
    root, paths, _ = crafted_files
    if case in crafted.PYDICOM_MISREADS:
        pytest.skip(f"pydicom misreads it: {crafted.PYDICOM_MISREADS[case]}")
    ds = reference(paths[case])
    if ds is None:
        pytest.skip("pydicom does not read it cleanly, even with force")
    if not outcome.rows(case):
        pytest.skip(f"not indexed: {outcome.reject_rows(case)}")
    row = outcome.row(case)
    assert not differences(row, structure(ds)), differences(row, structure(ds))


@pytest.mark.parametrize("case", DICOM_CASES)
def test_structural_columns_are_what_was_written(crafted_files, outcome, case):
    """For each indexed file, the structural values of the data set its writer
    wrote (whatever pydicom makes of it)."""
    root, paths, written = crafted_files
    if not outcome.rows(case):
        pytest.skip(f"not indexed: {outcome.reject_rows(case)}")
    row = outcome.row(case)
    assert not differences(row, written[case]), differences(row, written[case])


# --- damage ------------------------------------------------------------------------

@pytest.mark.parametrize("case", crafted.PIXEL_PROBLEM)
def test_damaged_or_oversized_pixel_data_is_indexed_with_its_problem_named(outcome, case):
    row = outcome.row(case)
    assert "pixel_data_problem" in row, "dicom_instances has no pixel_data_problem column"
    assert row["pixel_data_problem"] is not None, row
    assert row["has_pixel_data"], row


@pytest.mark.parametrize("case", [c for c in DICOM_CASES if c not in crafted.PIXEL_PROBLEM])
def test_sound_pixel_data_has_no_problem(outcome, case):
    if not outcome.rows(case):
        pytest.skip(f"not indexed: {outcome.reject_rows(case)}")
    row = outcome.row(case)
    assert "pixel_data_problem" in row, "dicom_instances has no pixel_data_problem column"
    assert row["pixel_data_problem"] is None, row["pixel_data_problem"]


@pytest.mark.parametrize("case", list(crafted.INVALID_VR))
def test_an_invalid_vr_is_indexed_and_named_in_invalid_attributes(outcome, case):
    row = outcome.row(case)
    keyword = crafted.INVALID_VR[case]
    assert keyword in row["invalid_attributes"], row["invalid_attributes"]
    column = {"SliceThickness": "slice_thickness", "BodyPartExamined": "body_part_examined",
              "BitsStored": "bits_stored"}[keyword]
    assert row[column] is None, row[column]
    # The element after it reads as written (not a byte early).
    if case == "us_odd_length":
        assert row["burned_in_annotation"] is False, row


# --- memory ---------------------------------------------------------------------

HOSTILE = ["pixel_length_claims_4gb", "pixel_geometry_claims_gb", "pixel_data_truncated",
           "encapsulated_no_sequence_delimiter", "private_un_undefined_length_sequence",
           "deflated_nested_sequence", "seq_explicit_length_with_delimiter", "invalid_vr_nul",
           "us_odd_length"]


def test_crafted_hostile_files_stay_small_in_memory(crafted_files, tmp_path):
    """Each hostile file alone costs at most 32 MiB of peak RSS over a sound one."""
    root, paths, _ = crafted_files
    results = {}
    for case in ["empty_sequences_and_items", *HOSTILE]:
        d = tmp_path / case
        d.mkdir()
        shutil.copyfile(paths[case], d / paths[case].name)
        job = write_job(tmp_path, d, RETAIN_ALL)
        rc, kib = peak_rss_kib(["run", job, "--output", tmp_path / f"lake_{case}"], {"NASLAKE_PSEUDONYM_KEY": KEY})
        assert rc in (0, 3), (case, rc)
        results[case] = kib
    print("peak RSS (KiB):", results)
    base = results.pop("empty_sequences_and_items")
    for case, kib in results.items():
        assert kib < base + 32 * 1024, (case, kib, base)


def test_an_identifier_under_a_bad_vr_still_cleans_descriptions(tmp_path):
    """PatientName written with VR bytes that are no VR: its value is not read,
    so a description that may quote it is dropped, not kept unchecked; a
    PatientID that cannot be read leaves modified dates out rather than shifting
    them as another patient's."""
    from pydicom.dataset import Dataset, FileMetaDataset
    ds = Dataset()
    ds.SOPClassUID = crafted.CT
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.Modality = "CT"
    ds.StudyDate = "20240102"
    ds.PatientName = "YAMADA^TARO"
    ds.PatientID = "PID0012345"
    ds.StudyDescription = "CT chest YAMADA TARO"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = crafted.EXPLICIT_LE
    ds.file_meta.MediaStorageSOPClassUID = crafted.CT
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6"
    d = tmp_path / "in"
    d.mkdir()
    path = d / "bad_pn.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    for tag, vr in ((b"\x10\x00\x10\x00", b"PN"), (b"\x10\x00\x20\x00", b"LO")):
        at = data.index(tag + vr)
        data[at + 4:at + 6] = b"P1" if vr == b"PN" else b"L0"
    path.write_bytes(bytes(data))
    profile = {"clean_descriptors": True, "retain_longitudinal_temporal_information": "modified_dates"}
    run, lake = run_dicom(tmp_path, d, profile)
    [row] = table(lake, "dicom_instances")
    assert {"PatientName", "PatientID"} <= set(row["invalid_attributes"]), row["invalid_attributes"]
    assert row["study_description"] is None and "StudyDescription" in row["cleaned_attributes"], row
    assert row["study_date"] is None, row["study_date"]
    assert row["modality"] == "CT"


def test_modified_dates_need_a_patient_id_to_shift_by(tmp_path):
    """Dates are shifted per patient: a file with no PatientID (or an empty one) has
    no shift of its own, so its dates are left out, not shifted as every other such
    file's."""
    from pydicom.dataset import Dataset, FileMetaDataset
    d = tmp_path / "in"
    d.mkdir()
    for name, pid in (("with_id.dcm", "PID0012345"), ("empty_id.dcm", ""), ("no_id.dcm", None)):
        ds = Dataset()
        ds.SOPClassUID = crafted.CT
        ds.SOPInstanceUID = f"1.2.3.4.5.{len(name)}{0 if pid is None else len(pid)}"
        ds.Modality = "CT"
        ds.StudyDate = "20240102"
        if pid is not None:
            ds.PatientID = pid
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = crafted.EXPLICIT_LE
        ds.file_meta.MediaStorageSOPClassUID = crafted.CT
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(d / name, enforce_file_format=True)
    run, lake = run_dicom(tmp_path, d, {"retain_longitudinal_temporal_information": "modified_dates"})
    dates = {r["source_key"]: r["study_date"] for r in table(lake, "dicom_instances")}
    assert dates["with_id.dcm"] is not None and str(dates["with_id.dcm"]) < "2024-01-02", dates
    assert dates["empty_id.dcm"] is None and dates["no_id.dcm"] is None, dates
