//! The DICOM source's options in a job spec (`sources.NAME`): how objects are
//! recognised, how much of each is read, and the de-identification profile.

use bytesize::ByteSize;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DicomOptions {
    /// `suffix`: the objects whose keys end in `suffixes` (`.dcm`, `.dicom` by
    /// default). `content`: every object under the prefix (or with one of
    /// `suffixes`, when given), recognised by its `DICM` prefix at offset 128 or,
    /// for files without a file meta group, by a data set that reads whole;
    /// objects that are neither are rejects with stage `recognise`.
    #[serde(default)]
    pub recognise: Recognise,
    /// The first read of each object; later reads double it as the header needs.
    #[serde(default = "default_first_read")]
    pub first_read: ByteSize,
    /// Most bytes read (or, deflated, inflated) of one object's header: a header
    /// that does not end within it is rejected with stage `header_limit`. This
    /// also bounds the memory one file can take.
    #[serde(default = "default_max_header")]
    pub max_header_bytes: ByteSize,
    /// Objects read at once (each a reader thread doing ranged reads).
    #[serde(default = "default_readers")]
    pub readers: usize,
    /// The de-identification profile (PS3.15 Annex E) and its options.
    #[serde(default)]
    pub deidentification: Profile,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recognise {
    #[default]
    Suffix,
    Content,
}

/// PS3.15 E.1 Basic Application Level Confidentiality Profile, with the options
/// naslake supports. With none of them: no dates or times, no patient
/// characteristics, UIDs replaced, descriptions and the station name dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Retain Longitudinal Temporal Information: `full_dates` (113106) keeps
    /// dates and times, `modified_dates` (113107) shifts every date of a patient
    /// by the same keyed number of days (intervals within a patient hold), `off`
    /// removes them.
    #[serde(default)]
    pub retain_longitudinal_temporal_information: Temporal,
    /// Retain Patient Characteristics (113108): sex, age, size and weight.
    #[serde(default)]
    pub retain_patient_characteristics: bool,
    /// Retain UIDs (113110); else study, series and instance UIDs become `2.25.`
    /// UIDs derived by HMAC, consistent across files and runs.
    #[serde(default)]
    pub retain_uids: bool,
    /// Retain Device Identity (113109): the station name.
    #[serde(default)]
    pub retain_device_identity: bool,
    /// Clean Descriptors (113105): study and series descriptions are kept when
    /// they hold none of the instance's identifying values; else they are dropped.
    #[serde(default)]
    pub clean_descriptors: bool,
    /// Object keys, whose folder and file names often name patients and
    /// accessions: `pseudonymize` replaces each (after the source's prefix) by a
    /// keyed pseudonym wherever the run shows a key (see `keys.rs`); `keep`
    /// leaves them in clear, for shares whose names are known to hold none.
    #[serde(default)]
    pub keys: Keys,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keys {
    #[default]
    Pseudonymize,
    Keep,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temporal {
    #[default]
    Off,
    ModifiedDates,
    FullDates,
}

fn default_first_read() -> ByteSize {
    ByteSize::kib(8)
}
fn default_max_header() -> ByteSize {
    ByteSize::mib(4)
}
fn default_readers() -> usize {
    8
}

impl DicomOptions {
    pub fn check(&self) -> Result<(), String> {
        if self.first_read.as_u64() < 256 {
            return Err(
                "`first_read` must be at least 256 B (the preamble and prefix are 132)".into(),
            );
        }
        if self.max_header_bytes < self.first_read {
            return Err("`max_header_bytes` must be at least `first_read`".into());
        }
        if !(1..=256).contains(&self.readers) {
            return Err("`readers` must be between 1 and 256".into());
        }
        Ok(())
    }
}

impl Profile {
    /// The options applied: their CID 7050 (De-identification Method) codes and
    /// names.
    fn applied(&self) -> Vec<(&'static str, &'static str)> {
        let temporal = match self.retain_longitudinal_temporal_information {
            Temporal::Off => None,
            Temporal::FullDates => Some((
                "113106",
                "Retain Longitudinal Temporal Information With Full Dates",
            )),
            Temporal::ModifiedDates => Some((
                "113107",
                "Retain Longitudinal Temporal Information With Modified Dates",
            )),
        };
        let flags = [
            (
                self.retain_patient_characteristics,
                ("113108", "Retain Patient Characteristics"),
            ),
            (
                self.retain_device_identity,
                ("113109", "Retain Device Identity"),
            ),
            (self.retain_uids, ("113110", "Retain UIDs")),
            (self.clean_descriptors, ("113105", "Clean Descriptors")),
        ];
        temporal
            .into_iter()
            .chain(
                flags
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, option)| option),
            )
            .collect()
    }

    /// The codes of the profile (113100) and of the options it applies.
    pub fn codes(&self) -> Vec<&'static str> {
        std::iter::once("113100")
            .chain(self.applied().into_iter().map(|(code, _)| code))
            .collect()
    }

    /// The profile in words, as the output records it.
    pub fn describe(&self) -> String {
        let options: Vec<&str> = self.applied().into_iter().map(|(_, name)| name).collect();
        let mut text = "DICOM PS3.15 Basic Application Level Confidentiality Profile".to_string();
        if !options.is_empty() {
            text.push_str(" with ");
            text.push_str(&options.join(", "));
        }
        text
    }
}
