#!/usr/bin/env python3
"""Writes the synthetic DICOM samples under samples/dicom/ with pydicom.

Every value is invented (no real person, hospital or device). Each file says so in
DeidentificationMethod (0012,0063), which is what lets the bundled samples run
without a pseudonym key (see src/sources/dicom/deidentify.rs). The set covers what
the DICOM job must handle: explicit and implicit VR, a file with no file meta and
no extension, UTF-8 text (ISO_IR 192), a multi-frame ultrasound with burned-in
annotation, a sequence, and two files that must be rejected (one cut off inside
its header, one that is not DICOM at all).

Usage: scripts/make-dicom-samples.py [OUT_DIR]   (default samples/dicom)
"""
import sys
from pathlib import Path

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundMultiFrameImageStorage,
)

MARK = "naslake synthetic sample: invented values, no PHI"
ROOT = "2.25.1234567890123456789"  # invented UID root for the samples


def base(patient, pid, study_n, series_n, instance_n, modality, sop_class):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"{ROOT}.{study_n}.{series_n}.{instance_n}"
    ds.StudyDate = f"2024031{study_n}"
    ds.SeriesDate = f"2024031{study_n}"
    ds.AcquisitionDate = f"2024031{study_n}"
    ds.StudyTime = "093015.250000"
    ds.SeriesTime = "093500"
    ds.AcquisitionTime = "093512.5"
    ds.AccessionNumber = f"ACC-SAMPLE-{study_n:04d}"
    ds.Modality = modality
    ds.Manufacturer = "Example Imaging Co"
    ds.InstitutionName = "Sample General Hospital"
    ds.ReferringPhysicianName = "Example^Referrer"
    ds.StationName = f"SAMPLE-{modality}-1"
    ds.StudyDescription = f"{modality} routine study"
    # Names the patient: Clean Descriptors drops it.
    ds.SeriesDescription = f"{modality} series of {patient.split('^')[1]}"
    ds.OperatorsName = "Sample^Operator"
    ds.ManufacturerModelName = "Model S"
    ds.PatientName = patient
    ds.PatientID = pid
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.PatientAge = "054Y"
    ds.PatientSize = "1.68"
    ds.PatientWeight = "61.5"
    ds.DeidentificationMethod = MARK
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = "2.5"
    ds.StudyInstanceUID = f"{ROOT}.{study_n}"
    ds.SeriesInstanceUID = f"{ROOT}.{study_n}.{series_n}"
    ds.StudyID = f"S{study_n}"
    ds.SeriesNumber = series_n
    ds.InstanceNumber = instance_n
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 8
    ds.Columns = 8
    ds.PixelSpacing = [0.75, 0.75]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = bytes(range(128))
    return ds


def save(ds, path, syntax, file_meta=True):
    if file_meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = syntax
        ds.preamble = b"\0" * 128
        dcmwrite(path, ds, enforce_file_format=True)
    else:
        dcmwrite(path, ds, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)


def main(out):
    for sub in ("ct", "us", "mr"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i in (1, 2):
        ds = base("Sample^Alice", "SAMPLE-0001", 1, 1, i, "CT", CTImageStorage)
        save(ds, out / f"ct/chest_{i:03d}.dcm", ExplicitVRLittleEndian)

    ds = base("Beispiel^Jürgen", "SAMPLE-0002", 2, 1, 1, "US", UltrasoundMultiFrameImageStorage)
    ds.StudyDescription = "Abdomen – Übersicht"
    ds.SeriesDescription = "Leber längs"
    ds.BodyPartExamined = "ABDOMEN"
    ds.NumberOfFrames = 2
    ds.BurnedInAnnotation = "YES"
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = bytes(128)
    item = Dataset()
    item.CodeValue = "T-62000"
    item.CodingSchemeDesignator = "SRT"
    item.CodeMeaning = "Liver"
    ds.AnatomicRegionSequence = Sequence([item])
    save(ds, out / "us/abdomen.dcm", ImplicitVRLittleEndian)

    # A file with no file meta and no extension, as older archives keep them.
    ds = base("Sample^Carol", "SAMPLE-0003", 3, 1, 1, "MR", MRImageStorage)
    ds.BodyPartExamined = "HEAD"
    save(ds, out / "mr/IM0001", ImplicitVRLittleEndian, file_meta=False)

    # Malformed: cut off inside its header.
    ds = base("Sample^Dave", "SAMPLE-0004", 4, 1, 1, "CT", CTImageStorage)
    save(ds, out / "ct/truncated.dcm", ExplicitVRLittleEndian)
    whole = (out / "ct/truncated.dcm").read_bytes()
    (out / "ct/truncated.dcm").write_bytes(whole[:400])

    # Not DICOM at all (hospital shares hold such files next to the images).
    (out / "mr/README.txt").write_text("Sample MR series exported for naslake's DICOM job.\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "samples/dicom"))
