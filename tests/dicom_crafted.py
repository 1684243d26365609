"""Small crafted DICOM files of the kinds other DICOM toolkits keep in their test
suites (dcmtk, dicom-rs, fo-dicom, GDCM, pydicom): encodings that are legal but
rare, structures readers get wrong, and damage a reader should survive.

`make_all(dir)` writes one file per case and returns {case: path}. pydicom's writer
makes every file it can; the rest (and the damage) are raw bytes spliced with
`struct`. Every file carries the structural attributes the DICOM job keeps (Modality,
Rows, Columns, SOPClassUID, BitsAllocated, SamplesPerPixel,
PhotometricInterpretation, NumberOfFrames where meaningful) and a PatientName /
PatientID, all synthetic.

"Clean" below means pydicom 3.0.2 reads the file with `dcmread` (no `force`, pixel
data included) and every element's value decodes, with warnings turned into
errors; `PYDICOM_CLEAN` records it per case and tests/test_dicom_field.py checks the
record against pydicom itself."""
import io
import pathlib
import shutil
import struct
import tempfile

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import generate_uid

# Transfer syntaxes.
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"

# SOP classes.
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
CR = "1.2.840.10008.5.1.4.1.1.1"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
PT = "1.2.840.10008.5.1.4.1.1.128"
SC = "1.2.840.10008.5.1.4.1.1.7"
US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
XA = "1.2.840.10008.5.1.4.1.1.12.1"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

# A minimal JPEG-looking byte stream (SOI, APP0, EOI): never decoded, only carried.
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"

# Whether pydicom reads each case cleanly (see the module docstring), with the
# reason when it does not. Checked by test_pydicom_reads_them_as_documented.
PYDICOM_CLEAN = {
    "acr_nema_implicit_le": False,            # no DICM prefix: InvalidDicomError without force
    "explicit_be_undefined_lengths": True,
    "seq_explicit_length_with_delimiter": True,
    "jpeg_baseline_encapsulated_icon": True,
    "dicomdir": True,
    "deflated_nested_sequence": True,
    "private_un_undefined_length_sequence": True,
    "charset_iso2022_ir87": True,
    "charset_gb18030": True,
    "empty_sequences_and_items": True,
    "dicm_in_preamble_and_value": True,
    "acr_nema_dicm_at_128": False,            # DICM at 128 inside a value: pydicom reads on from 132, garbage
    "not_dicom_dicm_at_0": False,             # not DICOM: InvalidDicomError
    "pixel_length_claims_4gb": True,          # pydicom reads the bytes there are, silently
    "pixel_geometry_claims_gb": True,         # pydicom does not compare the geometry with the value
    "pixel_data_truncated": True,             # pydicom reads the bytes there are, silently
    "encapsulated_no_sequence_delimiter": False,  # warns: end of file before the delimiter
    "invalid_vr_zz": False,                   # NotImplementedError: unknown VR 'ZZ' when the value is touched
    "invalid_vr_nul": True,                   # but misread: see PYDICOM_MISREADS
    "us_odd_length": False,                   # BytesLengthException when BitsStored is touched
}

# Cases pydicom reads without a word but wrongly: its values are no reference.
PYDICOM_MISREADS = {
    "invalid_vr_nul": "VR 00 00 taken for a switch to implicit VR: a length of 0x00060000, and "
                      "BodyPartExamined swallows the rest of the file (Rows, Columns, ... are lost)",
}

# Cases whose pixel data is damaged or claims far more than the file holds: the
# header reads, so they should be indexed, with the problem named.
PIXEL_PROBLEM = ["pixel_length_claims_4gb", "pixel_geometry_claims_gb", "pixel_data_truncated",
                 "encapsulated_no_sequence_delimiter"]

# Cases with one element that does not read as its VR (its VR bytes are no VR, or
# its length no whole number of values): case -> its keyword.
INVALID_VR = {"invalid_vr_zz": "SliceThickness", "invalid_vr_nul": "BodyPartExamined",
              "us_odd_length": "BitsStored"}

# Cases that are not DICOM at all.
NOT_DICOM = ["not_dicom_dicm_at_0"]

# File names (relative to make_all's dir) where the case name is not the file name.
FILE_NAMES = {"dicomdir": "dicomdir/DICOMDIR", "not_dicom_dicm_at_0": "not_dicom_dicm_at_0.bin"}


# --- building blocks --------------------------------------------------------------

def uid(case, what):
    """A deterministic UID under pydicom's root, the same in every run."""
    return generate_uid(entropy_srcs=["naslake-crafted", case, what])


def image(case, sop_class, modality, rows, columns, bits=16, samples=1, photometric="MONOCHROME2",
          frames=None, pixel=True):
    """A data set with the usual patient, study, series and image attributes; native
    pixel data of the size its geometry implies unless `pixel` is False."""
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid(case, "sop")
    ds.StudyDate = "20240131"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC-" + case[:10]
    ds.Modality = modality
    ds.Manufacturer = "naslake crafted"
    ds.StudyDescription = "Crafted test case"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "CRAFT-" + case
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = uid(case, "study")
    ds.SeriesInstanceUID = uid(case, "series")
    ds.StudyID = "S1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    if frames is not None:
        ds.NumberOfFrames = frames
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if pixel:
        size = rows * columns * samples * (bits // 8) * (frames or 1)
        ds.PixelData = bytes(i % 251 for i in range(size + size % 2))
        ds["PixelData"].VR = "OW" if bits > 8 else "OB"
    return ds


def with_meta(ds, ts):
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    return ds


# The structural attributes of the data set the last writer call wrote (what a
# reader should find, damage aside); make_all hands them out per case.
_written = {}

STRUCTURAL = ["modality", "rows", "columns", "sop_class_uid", "bits_allocated", "samples_per_pixel",
              "photometric_interpretation", "number_of_frames", "transfer_syntax_uid"]


def record(ds, ts, sop_class=None):
    def get(keyword, kind):
        value = ds.get(keyword)
        return None if value is None or value == "" else kind(value)
    _written["truth"] = {
        "modality": get("Modality", str), "rows": get("Rows", int), "columns": get("Columns", int),
        "sop_class_uid": sop_class or get("SOPClassUID", str), "bits_allocated": get("BitsAllocated", int),
        "samples_per_pixel": get("SamplesPerPixel", int),
        "photometric_interpretation": get("PhotometricInterpretation", str),
        "number_of_frames": get("NumberOfFrames", int), "transfer_syntax_uid": ts,
    }


def acr_nema(ds, path):
    """Writes `ds` with no preamble and no file meta, in implicit VR little endian."""
    dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    record(ds, IMPLICIT_LE)


def part10(ds, ts, path, preamble=None):
    """Writes `ds` as a Part-10 file (128-byte preamble, DICM, file meta) in `ts`."""
    record(ds, ts)
    with_meta(ds, ts)
    if preamble is not None:
        ds.preamble = preamble
    if any(isinstance(e, RawDataElement) for e in ds._dict.values()):
        # Keep pydicom's writer from decoding the raw elements: they are already
        # in the file's encoding (explicit VR little endian).
        assert ts == EXPLICIT_LE, ts
        ds.set_original_encoding(False, True, ds._character_set)
    dcmwrite(path, ds, enforce_file_format=True)
    return pathlib.Path(path).read_bytes()


def encode(ds, implicit=False, little=True):
    """The bytes of a data set (or an item's content) in one encoding, no file meta."""
    fp = DicomBytesIO()
    fp.is_implicit_VR, fp.is_little_endian = implicit, little
    write_dataset(fp, ds)
    return fp.getvalue()


def tag_bytes(group, element):
    return struct.pack("<HH", group, element)


def item(content, length=None):
    """A sequence item (FFFE,E000) with an explicit length (the content's unless given)."""
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(content) if length is None else length) + content


ITEM_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
UNDEFINED = 0xFFFFFFFF


def raw(tag, vr, value, length=None):
    """An element pydicom's writer copies as it is: explicit VR, `value`'s bytes, its
    length unless `length` is UNDEFINED (then the writer appends a sequence delimiter)."""
    return RawDataElement(Tag(tag), vr, len(value) if length is None else length, value, 0, False, True)


def code(value, scheme, meaning):
    d = Dataset()
    d.CodeValue, d.CodingSchemeDesignator, d.CodeMeaning = value, scheme, meaning
    return d


# --- the cases ----------------------------------------------------------------------

def acr_nema_implicit_le(case, path):
    """No preamble, no DICM, no file meta: an ACR-NEMA style data set in implicit VR
    little endian, starting with its first group-0008 element. pydicom: not clean
    (InvalidDicomError without force; reads it with force=True)."""
    ds = image(case, CT, "CT", 32, 32)
    acr_nema(ds, path)


def explicit_be_undefined_lengths(case, path):
    """Explicit VR big endian (retired, still written by old scanners), with nested
    sequences and items of undefined length (item and sequence delimiters), a
    two-frame MR. pydicom: clean."""
    ds = image(case, MR, "MR", 16, 16, frames=2)
    inner = Dataset()
    inner.ReferencedSOPClassUID = MR
    inner.ReferencedSOPInstanceUID = uid(case, "ref")
    purpose = code("121311", "DCM", "Localizer")
    purpose.is_undefined_length_sequence_item = True
    inner.PurposeOfReferenceCodeSequence = Sequence([purpose])
    inner["PurposeOfReferenceCodeSequence"].is_undefined_length = True
    inner.is_undefined_length_sequence_item = True
    second = Dataset()
    second.ReferencedSOPClassUID = MR
    second.ReferencedSOPInstanceUID = uid(case, "ref2")
    second.is_undefined_length_sequence_item = True
    ds.ReferencedImageSequence = Sequence([inner, second])
    ds["ReferencedImageSequence"].is_undefined_length = True
    proc = code("MRHEAD", "99LOCAL", "MR head")
    proc.is_undefined_length_sequence_item = True
    ds.ProcedureCodeSequence = Sequence([proc])
    ds["ProcedureCodeSequence"].is_undefined_length = True
    part10(ds, EXPLICIT_BE, path)


def seq_explicit_length_with_delimiter(case, path):
    """Explicit VR LE; ReferencedImageSequence has an explicit length that also
    covers a sequence delimitation item after its two items, and
    SourceImageSequence's item has an explicit length that covers an item
    delimitation item (both seen from writers that count the delimiters). pydicom:
    clean (a delimiter ends the sequence or item wherever it is)."""
    ds = image(case, CT, "CT", 32, 32)
    items = b""
    for n in (1, 2):
        ref = Dataset()
        ref.ReferencedSOPClassUID = CT
        ref.ReferencedSOPInstanceUID = uid(case, f"ref{n}")
        items += item(encode(ref))
    ds[0x00081140] = raw(0x00081140, "SQ", items + SEQUENCE_DELIMITER)
    src = Dataset()
    src.ReferencedSOPClassUID = CT
    src.ReferencedSOPInstanceUID = uid(case, "source")
    ds[0x00082112] = raw(0x00082112, "SQ", item(encode(src) + ITEM_DELIMITER))
    part10(ds, EXPLICIT_LE, path)


def jpeg_baseline_encapsulated_icon(case, path):
    """JPEG baseline (1.2.840.10008.1.2.4.50) two-frame ultrasound: top-level pixel
    data encapsulated (basic offset table, two fragments per frame), and an
    IconImageSequence item holding a 64x64 icon whose own pixel data is encapsulated
    (offset table, one fragment) with its own sequence delimiter inside the item.
    The icon's Rows/Columns/PhotometricInterpretation differ from the image's.
    pydicom: clean."""
    ds = image(case, US_MULTIFRAME, "US", 120, 160, bits=8, samples=3, photometric="YBR_FULL_422",
               frames=2, pixel=False)
    icon = Dataset()
    icon.SamplesPerPixel = 1
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.Rows = 64
    icon.Columns = 64
    icon.BitsAllocated = 8
    icon.BitsStored = 8
    icon.HighBit = 7
    icon.PixelRepresentation = 0
    icon.PixelData = encapsulate([FAKE_JPEG], has_bot=True)
    icon["PixelData"].VR = "OB"
    icon["PixelData"].is_undefined_length = True
    ds.IconImageSequence = Sequence([icon])
    frames = [FAKE_JPEG + b"\x00\x00" * n for n in (1, 2)]
    ds.PixelData = encapsulate(frames, fragments_per_frame=2, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    part10(ds, JPEG_BASELINE, path)


def dicomdir(case, path):
    """A DICOMDIR (Media Storage Directory Storage) pydicom's FileSet writes for one
    CT instance: file-set attributes, DirectoryRecordSequence with PATIENT, STUDY,
    SERIES and IMAGE records (the SERIES record holds Modality, the IMAGE record
    Rows/Columns); no image attributes at top level and no SOPClassUID in the data
    set (only MediaStorageSOPClassUID in the meta). pydicom: clean."""
    from pydicom.fileset import FileSet

    ds = with_meta(image(case, CT, "CT", 16, 16), EXPLICIT_LE)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    with tempfile.TemporaryDirectory() as tmp:
        fs = FileSet()
        fs.ID = "CRAFTED"
        fs.add(ds)
        fs.write(tmp)
        shutil.copyfile(pathlib.Path(tmp) / "DICOMDIR", path)
    record(Dataset(), EXPLICIT_LE, sop_class=MEDIA_STORAGE_DIRECTORY)


def deflated_nested_sequence(case, path):
    """Deflated explicit VR little endian (1.2.840.10008.1.2.1.99): the whole data set
    after the file meta is raw deflate; it holds a sequence nested two deep
    (ReferencedImageSequence > PurposeOfReferenceCodeSequence) before the image
    attributes. pydicom: clean."""
    ds = image(case, SC, "OT", 24, 24, bits=8)
    ref = Dataset()
    ref.ReferencedSOPClassUID = SC
    ref.ReferencedSOPInstanceUID = uid(case, "ref")
    ref.PurposeOfReferenceCodeSequence = Sequence([code("121311", "DCM", "Localizer")])
    ds.ReferencedImageSequence = Sequence([ref])
    ds.ConversionType = "WSD"
    part10(ds, DEFLATED_LE, path)


def private_un_undefined_length_sequence(case, path):
    """Explicit VR LE with a private block: creator (0009,0010) "NASLAKE CRAFTED",
    (0009,1010) written as VR UN with undefined length whose value is a sequence in
    implicit VR LE (PS3.5 6.2.2, CP-246): an undefined-length item holding a nested
    undefined-length sequence, and, to catch a reader that lets nested values leak
    to the top, a Modality "XX" and Rows 999 inside the item; then (0009,1020) UN of
    explicit length. pydicom: clean (infers SQ for the UN and reads it as implicit
    VR)."""
    ds = image(case, CT, "CT", 32, 32)
    ds.add_new(0x00090010, "LO", "NASLAKE CRAFTED")
    nested = Dataset()
    nested.CodeValue = "N1"
    nested.CodingSchemeDesignator = "99NASLAKE"
    nested_bytes = item(encode(nested, implicit=True), UNDEFINED) + ITEM_DELIMITER
    inner = Dataset()
    inner.Modality = "XX"
    inner.CodeValue = "P1"
    inner.CodingSchemeDesignator = "99NASLAKE"
    inner.Rows = 999
    content = encode(inner, implicit=True)
    # (0040,A043) ConceptNameCodeSequence, implicit VR, undefined length: the item's last element.
    content += tag_bytes(0x0040, 0xA043) + struct.pack("<I", UNDEFINED) + nested_bytes + SEQUENCE_DELIMITER
    ds[0x00091010] = raw(0x00091010, "UN", item(content, UNDEFINED) + ITEM_DELIMITER, UNDEFINED)
    ds[0x00091020] = raw(0x00091020, "UN", b"\x01\x02\x03\x04private")
    part10(ds, EXPLICIT_LE, path)


def charset_iso2022_ir87(case, path):
    """SpecificCharacterSet `\\ISO 2022 IR 87` (Japanese, PS3.5 H.3.1): PatientName
    and StudyDescription with ISO 2022 escape sequences to JIS X 0208 and back.
    pydicom: clean."""
    ds = image(case, MR, "MR", 16, 16)
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.StudyDescription = "頭部ＭＲ"
    part10(ds, EXPLICIT_LE, path)


def charset_gb18030(case, path):
    """SpecificCharacterSet GB18030 (Chinese, PS3.5 K.2): PatientName and
    StudyDescription in GB18030, a CR image. pydicom: clean."""
    ds = image(case, CR, "CR", 16, 16)
    ds.SpecificCharacterSet = "GB18030"
    ds.PatientName = "Wang^XiaoDong=王^小东="
    ds.StudyDescription = "胸部正位"
    part10(ds, EXPLICIT_LE, path)


def empty_sequences_and_items(case, path):
    """Explicit VR LE PET image with: ReferencedStudySequence of explicit length 0;
    ReferencedPerformedProcedureStepSequence of undefined length with no item (its
    delimiter only); ReferencedImageSequence holding one empty item of explicit
    length 0; SourceImageSequence holding one empty undefined-length item (its item
    delimiter only); an empty PatientOrientationCodeSequence (length 0) in group
    0054, after the image attributes. pydicom: clean."""
    ds = image(case, PT, "PT", 16, 16)
    ds.ReferencedStudySequence = Sequence()
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds["ReferencedPerformedProcedureStepSequence"].is_undefined_length = True
    ds.ReferencedImageSequence = Sequence([Dataset()])
    empty = Dataset()
    empty.is_undefined_length_sequence_item = True
    ds.SourceImageSequence = Sequence([empty])
    ds.PatientOrientationCodeSequence = Sequence()
    part10(ds, EXPLICIT_LE, path)


def dicm_in_preamble_and_value(case, path):
    """A valid Part-10 DX file whose 128-byte preamble starts with "DICM" (offset 0)
    and whose ImageComments and a private OB value hold "DICM" too. pydicom: clean."""
    ds = image(case, DX, "DX", 16, 16)
    ds.ImageComments = "DICM DICM"
    ds.add_new(0x00090010, "LO", "NASLAKE CRAFTED")
    ds.add_new(0x00091001, "OB", b"\x00" * 124 + b"DICM" + b"\x02\x00\x10\x00UI")
    part10(ds, EXPLICIT_LE, path, preamble=b"DICM" + b"\x00" * 124)


def acr_nema_dicm_at_128(case, path):
    """An ACR-NEMA style file (no preamble, no meta, implicit VR LE) whose first
    element, ImageType (0008,0008), has values that put "DICM" at offset 128, where a
    Part-10 prefix would be, in the middle of the value. A reader that trusts the offset misreads it. pydicom:
    not clean (takes the first 128 bytes for a preamble, reads on from offset 132
    in the middle of the value, warns "Expected implicit VR, but found explicit VR"
    and fails on a garbage element: NotImplementedError, unknown VR)."""
    ds = image(case, CT, "CT", 32, 32)
    values = ["ORIGINAL", "PRIMARY", "AXIAL"]
    # The value starts at offset 8; "DICM" must start 120 bytes into it.
    while len("\\".join(values)) + 1 < 120:
        values.append("FILLER"[:120 - len("\\".join(values)) - 2] or "F")
    values += ["DICM_INSIDE", "A_VALUE"]
    ds.ImageType = values
    acr_nema(ds, path)
    data = pathlib.Path(path).read_bytes()
    assert data[128:132] == b"DICM" and data[:4] == b"\x08\x00\x08\x00", data[:140]


def not_dicom_dicm_at_0(case, path):
    """Not DICOM: a text file that begins with "DICM" (no preamble, nothing after it
    reads as elements). pydicom: not clean (InvalidDicomError)."""
    pathlib.Path(path).write_bytes(b"DICM is the DICOM prefix; this file only talks about it.\n" * 20)


def pixel_length_claims_4gb(case, path):
    """Explicit VR LE CT of 8191 frames of 512x512x16 bits (about 4 GB), whose Pixel
    Data (OW) declares 0xFFFFFFF0 bytes; the file ends 256 bytes later. pydicom:
    clean (it reads the 256 bytes there are, silently)."""
    ds = image(case, CT, "CT", 512, 512, frames=8191, pixel=False)
    ds.PixelData = bytes(256)
    ds["PixelData"].VR = "OW"
    data = bytearray(part10(ds, EXPLICIT_LE, path))
    assert data[-268:-256] == struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, 256)
    data[-260:-256] = struct.pack("<I", 0xFFFFFFF0)
    pathlib.Path(path).write_bytes(data)


def pixel_geometry_claims_gb(case, path):
    """Explicit VR LE XA multi-frame whose geometry claims 4096x4096x16 bits x 500
    frames (about 16.8 GB) while its Pixel Data (OW) holds, and declares, 64 bytes.
    pydicom: clean (it does not compare the geometry with the value)."""
    ds = image(case, XA, "XA", 4096, 4096, frames=500, pixel=False)
    ds.PixelData = bytes(64)
    ds["PixelData"].VR = "OW"
    part10(ds, EXPLICIT_LE, path)


def pixel_data_truncated(case, path):
    """Explicit VR LE MR 256x256x16 bits: Pixel Data declares 131072 bytes, the file
    ends 1000 bytes into it (a copy cut short). pydicom: clean (it reads the bytes
    there are, silently)."""
    ds = image(case, MR, "MR", 256, 256)
    data = part10(ds, EXPLICIT_LE, path)
    assert data[-131084:-131072] == struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, 131072)
    pathlib.Path(path).write_bytes(data[:-131072 + 1000])


def encapsulated_no_sequence_delimiter(case, path):
    """JPEG baseline single-frame CR whose encapsulated Pixel Data (offset table, one
    fragment) ends at the end of the file without its sequence delimitation item.
    pydicom: not clean (warns "End of file reached before delimiter (FFFE,E0DD)
    found"; without warnings as errors it keeps the fragments)."""
    ds = image(case, CR, "CR", 64, 64, bits=8, pixel=False)
    ds.PixelData = encapsulate([FAKE_JPEG], has_bot=True)
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression = "01"
    data = part10(ds, JPEG_BASELINE, path)
    assert data.endswith(SEQUENCE_DELIMITER)
    pathlib.Path(path).write_bytes(data[:-8])


def invalid_vr(case, path, tag, vr, value):
    ds = image(case, CT, "CT", 32, 32)
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "2.5"
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)
    part10(ds, EXPLICIT_LE, path)
    data = pathlib.Path(path).read_bytes()
    group, element = divmod(tag, 0x10000)
    assert struct.pack("<HH", group, element) + vr.encode("latin-1") + struct.pack("<H", len(value)) in data


def invalid_vr_zz(case, path):
    """Explicit VR LE CT whose SliceThickness (0018,0050) has VR bytes "ZZ" (2-byte
    length, value "2.5 "). pydicom: not clean (reads it as an unknown VR 'ZZ';
    touching the value raises NotImplementedError)."""
    invalid_vr(case, path, 0x00180050, "ZZ", b"2.5 ")


def invalid_vr_nul(case, path):
    """Explicit VR LE CT whose BodyPartExamined (0018,0015) has VR bytes 00 00
    (2-byte length 6, value "CHEST "). pydicom: reads it without a warning or an
    error, but wrongly (PYDICOM_MISREADS): it takes 00 00 for a switch to implicit
    VR, reads a length of 0x00060000 and BodyPartExamined swallows the rest of the
    file, so Rows, Columns and the pixel data are lost."""
    invalid_vr(case, path, 0x00180015, "\0\0", b"CHEST ")


def us_odd_length(case, path):
    """Explicit VR LE CT whose BitsStored (0028,0101) is a US of three bytes. Read a
    word at a time (as dicom-rs does), every element after it would be read one byte
    early. pydicom: not clean (BytesLengthException when the value is touched)."""
    ds = image(case, CT, "CT", 32, 32)
    ds.BurnedInAnnotation = "NO"
    ds[0x00280101] = RawDataElement(Tag(0x00280101), "US", 3, b"\x0c\x00\x00", 0, False, True)
    part10(ds, EXPLICIT_LE, path)
    assert b"\x28\x00\x01\x01US\x03\x00\x0c\x00\x00" in pathlib.Path(path).read_bytes()


CASES = {f.__name__: f for f in (
    acr_nema_implicit_le, explicit_be_undefined_lengths, seq_explicit_length_with_delimiter,
    jpeg_baseline_encapsulated_icon, dicomdir, deflated_nested_sequence, private_un_undefined_length_sequence,
    charset_iso2022_ir87, charset_gb18030, empty_sequences_and_items, dicm_in_preamble_and_value,
    acr_nema_dicm_at_128, not_dicom_dicm_at_0, pixel_length_claims_4gb, pixel_geometry_claims_gb,
    pixel_data_truncated, encapsulated_no_sequence_delimiter, invalid_vr_zz, invalid_vr_nul,
    us_odd_length,
)}
assert set(CASES) == set(PYDICOM_CLEAN)


def make_all(dir, written=None):
    """Writes every case under `dir`; returns {case: path}. With a dict `written`,
    also fills it with {case: the STRUCTURAL values of the data set written} (None
    for a file that is not DICOM)."""
    dir = pathlib.Path(dir)
    out = {}
    for name, make in CASES.items():
        path = dir / FILE_NAMES.get(name, f"{name}.dcm")
        path.parent.mkdir(parents=True, exist_ok=True)
        _written.clear()
        make(name, path)
        out[name] = path
        if written is not None:
            written[name] = _written.get("truth")
    return out


if __name__ == "__main__":
    import sys

    for name, path in make_all(sys.argv[1] if len(sys.argv) > 1 else "crafted").items():
        print(f"{path.stat().st_size:8d}  {path}")
