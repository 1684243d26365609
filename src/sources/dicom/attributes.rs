//! The top-level attributes the header walk keeps: the ones `dicom_instances`
//! derives a column from, and the identifying ones the de-identification needs to
//! recognise (to clean descriptors) but never outputs. Sorted by tag.

use super::walk::Tag;

/// An attribute as the standard dictionary (PS3.6) defines it.
#[derive(Debug, PartialEq, Eq)]
pub struct Attribute {
    pub tag: Tag,
    pub keyword: &'static str,
    /// The VR kept elements are decoded with (implicit VR files have none, and a
    /// file may encode a known attribute as UN).
    pub vr: [u8; 2],
}

macro_rules! attributes {
    ($($name:ident = ($g:literal, $e:literal, $kw:literal, $vr:literal);)*) => {
        $(pub const $name: Attribute = Attribute { tag: Tag($g, $e), keyword: $kw, vr: *$vr };)*
        /// Every kept attribute, ascending.
        pub const ALL: &[&Attribute] = &[$(&$name),*];
    };
}

attributes! {
    SPECIFIC_CHARACTER_SET = (0x0008, 0x0005, "SpecificCharacterSet", b"CS");
    IMAGE_TYPE = (0x0008, 0x0008, "ImageType", b"CS");
    SOP_CLASS_UID = (0x0008, 0x0016, "SOPClassUID", b"UI");
    SOP_INSTANCE_UID = (0x0008, 0x0018, "SOPInstanceUID", b"UI");
    STUDY_DATE = (0x0008, 0x0020, "StudyDate", b"DA");
    SERIES_DATE = (0x0008, 0x0021, "SeriesDate", b"DA");
    ACQUISITION_DATE = (0x0008, 0x0022, "AcquisitionDate", b"DA");
    STUDY_TIME = (0x0008, 0x0030, "StudyTime", b"TM");
    SERIES_TIME = (0x0008, 0x0031, "SeriesTime", b"TM");
    ACQUISITION_TIME = (0x0008, 0x0032, "AcquisitionTime", b"TM");
    ACCESSION_NUMBER = (0x0008, 0x0050, "AccessionNumber", b"SH");
    MODALITY = (0x0008, 0x0060, "Modality", b"CS");
    MODALITIES_IN_STUDY = (0x0008, 0x0061, "ModalitiesInStudy", b"CS");
    MANUFACTURER = (0x0008, 0x0070, "Manufacturer", b"LO");
    INSTITUTION_NAME = (0x0008, 0x0080, "InstitutionName", b"LO");
    INSTITUTION_ADDRESS = (0x0008, 0x0081, "InstitutionAddress", b"ST");
    REFERRING_PHYSICIAN_NAME = (0x0008, 0x0090, "ReferringPhysicianName", b"PN");
    STATION_NAME = (0x0008, 0x1010, "StationName", b"SH");
    STUDY_DESCRIPTION = (0x0008, 0x1030, "StudyDescription", b"LO");
    SERIES_DESCRIPTION = (0x0008, 0x103E, "SeriesDescription", b"LO");
    PERFORMING_PHYSICIAN_NAME = (0x0008, 0x1050, "PerformingPhysicianName", b"PN");
    OPERATORS_NAME = (0x0008, 0x1070, "OperatorsName", b"PN");
    MANUFACTURER_MODEL_NAME = (0x0008, 0x1090, "ManufacturerModelName", b"LO");
    PATIENT_NAME = (0x0010, 0x0010, "PatientName", b"PN");
    PATIENT_ID = (0x0010, 0x0020, "PatientID", b"LO");
    PATIENT_BIRTH_DATE = (0x0010, 0x0030, "PatientBirthDate", b"DA");
    PATIENT_SEX = (0x0010, 0x0040, "PatientSex", b"CS");
    OTHER_PATIENT_IDS = (0x0010, 0x1000, "OtherPatientIDs", b"LO");
    PATIENT_AGE = (0x0010, 0x1010, "PatientAge", b"AS");
    PATIENT_SIZE = (0x0010, 0x1020, "PatientSize", b"DS");
    PATIENT_WEIGHT = (0x0010, 0x1030, "PatientWeight", b"DS");
    PATIENT_ADDRESS = (0x0010, 0x1040, "PatientAddress", b"LO");
    PATIENT_TELEPHONE_NUMBERS = (0x0010, 0x2154, "PatientTelephoneNumbers", b"SH");
    PATIENT_IDENTITY_REMOVED = (0x0012, 0x0062, "PatientIdentityRemoved", b"CS");
    DEIDENTIFICATION_METHOD = (0x0012, 0x0063, "DeidentificationMethod", b"LO");
    BODY_PART_EXAMINED = (0x0018, 0x0015, "BodyPartExamined", b"CS");
    SLICE_THICKNESS = (0x0018, 0x0050, "SliceThickness", b"DS");
    STUDY_INSTANCE_UID = (0x0020, 0x000D, "StudyInstanceUID", b"UI");
    SERIES_INSTANCE_UID = (0x0020, 0x000E, "SeriesInstanceUID", b"UI");
    STUDY_ID = (0x0020, 0x0010, "StudyID", b"SH");
    SERIES_NUMBER = (0x0020, 0x0011, "SeriesNumber", b"IS");
    INSTANCE_NUMBER = (0x0020, 0x0013, "InstanceNumber", b"IS");
    SAMPLES_PER_PIXEL = (0x0028, 0x0002, "SamplesPerPixel", b"US");
    PHOTOMETRIC_INTERPRETATION = (0x0028, 0x0004, "PhotometricInterpretation", b"CS");
    NUMBER_OF_FRAMES = (0x0028, 0x0008, "NumberOfFrames", b"IS");
    ROWS = (0x0028, 0x0010, "Rows", b"US");
    COLUMNS = (0x0028, 0x0011, "Columns", b"US");
    PIXEL_SPACING = (0x0028, 0x0030, "PixelSpacing", b"DS");
    BITS_ALLOCATED = (0x0028, 0x0100, "BitsAllocated", b"US");
    BITS_STORED = (0x0028, 0x0101, "BitsStored", b"US");
    BURNED_IN_ANNOTATION = (0x0028, 0x0301, "BurnedInAnnotation", b"CS");
    PERFORMED_PROCEDURE_STEP_START_DATE = (0x0040, 0x0244, "PerformedProcedureStepStartDate", b"DA");
    PERFORMED_PROCEDURE_STEP_START_TIME = (0x0040, 0x0245, "PerformedProcedureStepStartTime", b"TM");
}

/// The kept attribute with this tag.
pub fn by_tag(tag: Tag) -> Option<&'static Attribute> {
    // Most elements of a header are not kept: private (odd) groups and the ones
    // past the last kept group are told at once.
    if tag.0 & 1 == 1 || tag > ALL[ALL.len() - 1].tag {
        return None;
    }
    ALL.binary_search_by(|a| a.tag.cmp(&tag))
        .ok()
        .map(|i| ALL[i])
}

/// [`by_tag`] for the tags of one data set, met in the ascending order a header
/// lists them: each lookup moves on from where the last stopped (a merge of two
/// sorted lists, where a search per element was a tenth of the walk's time). A
/// tag out of order is searched for.
#[derive(Debug, Default)]
pub struct Cursor {
    /// Where the search for a tag above the last one found starts: `ALL[..at]`
    /// are at or below it. A tag at or below `ALL[at - 1]` is searched for.
    at: usize,
}

impl Cursor {
    pub fn find(&mut self, tag: Tag) -> Option<&'static Attribute> {
        if self.at > 0 && ALL[self.at - 1].tag >= tag {
            return by_tag(tag);
        }
        while ALL.get(self.at).is_some_and(|a| a.tag < tag) {
            self.at += 1;
        }
        let found = ALL.get(self.at).filter(|a| a.tag == tag).copied()?;
        self.at += 1;
        Some(found)
    }
}

/// Values in the text VRs a Specific Character Set applies to (PS3.5 6.1.2.3).
pub fn is_text(vr: [u8; 2]) -> bool {
    matches!(&vr, b"SH" | b"LO" | b"ST" | b"LT" | b"UT" | b"UC" | b"PN")
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::strategy::Strategy as _;

    proptest::proptest! {
        /// Whatever order tags come in (ascending, as headers list them, with
        /// repeats and a few steps back, or any order), the cursor finds what a
        /// search finds.
        #[test]
        fn a_cursor_finds_what_a_search_finds(
            tags in proptest::collection::vec(
                proptest::prop_oneof![
                    3 => proptest::sample::select(ALL).prop_map(|a| a.tag),
                    2 => (0u16..0x30, proptest::num::u16::ANY).prop_map(|(g, e)| Tag(g, e)),
                    1 => proptest::num::u16::ANY.prop_map(|g| Tag(g, 0x0010)),
                ],
                0..60,
            ),
            sort in proptest::bool::ANY,
            swaps in proptest::collection::vec((0usize..60, 0usize..60), 0..3),
        ) {
            let mut tags = tags;
            if sort {
                tags.sort();
                // A few steps back in an otherwise ascending header.
                for (i, j) in swaps {
                    if i < tags.len() && j < tags.len() {
                        tags.swap(i, j);
                    }
                }
            }
            let mut cursor = Cursor::default();
            for tag in tags {
                proptest::prop_assert_eq!(cursor.find(tag), by_tag(tag), "{:?}", tag);
            }
        }
    }

    #[test]
    fn attributes_are_ascending_and_match_the_standard_dictionary() {
        use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
        assert!(ALL.windows(2).all(|w| w[0].tag < w[1].tag));
        let dict = dicom_dictionary_std::StandardDataDictionary;
        for a in ALL {
            let entry = dict
                .by_tag(dicom_core::Tag(a.tag.0, a.tag.1))
                .unwrap_or_else(|| panic!("{} is in the dictionary", a.keyword));
            assert_eq!(entry.alias(), a.keyword);
            assert_eq!(
                entry.vr().relaxed().to_string(),
                String::from_utf8_lossy(&a.vr)
            );
        }
    }
}
