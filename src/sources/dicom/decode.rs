//! From a walked header to a de-identified `dicom_instances` row: the kept
//! elements are decoded by dicom-rs (character sets, value multiplicity, binary
//! VRs), typed as Athena reads them, and passed through the profile.
//!
//! dicom-rs gets a data set naslake wrote: the kept elements, re-encoded in
//! explicit VR little endian with the VR the dictionary gives (a file may encode a
//! known attribute as UN, and implicit VR has none), text it could not decode
//! and US values of an odd length left out. Its decoder reads them element by
//! element, as its data set reader would, without building an object of them.
//! Its errors are never quoted (they could hold a value).

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use dicom_core::PrimitiveValue;
use dicom_core::header::HasLength;
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::decode::basic::LittleEndianBasicDecoder;
use dicom_encoding::decode::explicit_le::ExplicitVRLittleEndianDecoder;
use dicom_encoding::text::SpecificCharacterSet;
use dicom_parser::{StatefulDecode, StatefulDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::attributes::{self as a, Attribute};
use super::deidentify::{self, Key};
use super::options::{Profile, Temporal};
use super::walk::{Encoding, Tag, Walked};

/// One `dicom_instances` row, lineage aside.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    pub sop_class_uid: Option<String>,
    pub sop_class_name: Option<String>,
    pub sop_instance_uid: Option<String>,
    pub study_instance_uid: Option<String>,
    pub series_instance_uid: Option<String>,
    pub transfer_syntax_uid: String,
    pub transfer_syntax_name: Option<String>,
    pub transfer_syntax_guessed: bool,
    pub patient_id: Option<String>,
    pub accession_number: Option<String>,
    pub study_id: Option<String>,
    pub patient_sex: Option<String>,
    pub patient_age: Option<String>,
    pub patient_size: Option<f64>,
    pub patient_weight: Option<f64>,
    pub study_date: Option<NaiveDate>,
    pub study_time: Option<String>,
    pub series_date: Option<NaiveDate>,
    pub series_time: Option<String>,
    pub acquisition_date: Option<NaiveDate>,
    pub acquisition_time: Option<String>,
    pub performed_procedure_step_start_date: Option<NaiveDate>,
    pub performed_procedure_step_start_time: Option<String>,
    pub modality: Option<String>,
    pub modality_category: Option<&'static str>,
    pub modalities_in_study: Option<Vec<String>>,
    pub body_part_examined: Option<String>,
    pub manufacturer: Option<String>,
    pub manufacturer_model_name: Option<String>,
    pub station_name: Option<String>,
    pub study_description: Option<String>,
    pub series_description: Option<String>,
    pub series_number: Option<i32>,
    pub instance_number: Option<i32>,
    pub rows: Option<i32>,
    pub columns: Option<i32>,
    pub bits_allocated: Option<i32>,
    pub bits_stored: Option<i32>,
    pub samples_per_pixel: Option<i32>,
    pub photometric_interpretation: Option<String>,
    pub number_of_frames: Option<i32>,
    pub pixel_spacing: Option<Vec<f64>>,
    pub slice_thickness: Option<f64>,
    pub image_type: Option<Vec<String>>,
    pub burned_in_annotation: Option<bool>,
    pub has_pixel_data: bool,
    pub pixel_data_problem: Option<String>,
    pub specific_character_set: Option<Vec<String>>,
    pub character_set_supported: bool,
    pub undecoded_attributes: Vec<String>,
    pub invalid_attributes: Vec<String>,
    pub cleaned_attributes: Vec<String>,
    /// What the profile applied (the same for every row of a source).
    pub deidentification: Arc<Applied>,
}

/// The profile's record in every row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    pub codes: Vec<String>,
    pub method: String,
}

impl Applied {
    pub fn of(profile: &Profile) -> Self {
        Applied {
            codes: profile.codes().into_iter().map(String::from).collect(),
            method: profile.describe(),
        }
    }
}

/// The declared character set: its terms, and whether dicom-rs decodes it whole
/// (one term it knows; several terms are ISO 2022 code extensions, which it does
/// not switch between).
struct Charset {
    terms: Vec<String>,
    supported: bool,
}

fn charset(walked: &Walked) -> Charset {
    let Some(raw) = walked.raw(&a::SPECIFIC_CHARACTER_SET) else {
        return Charset {
            terms: Vec::new(),
            supported: true,
        };
    };
    let text = String::from_utf8_lossy(raw);
    let terms: Vec<String> = text
        .split('\\')
        .map(|t| t.trim_matches(|c: char| c == ' ' || c == '\0').to_string())
        .collect();
    let named: Vec<&String> = terms.iter().filter(|t| !t.is_empty()).collect();
    let supported = match named.as_slice() {
        [] => true,
        [one] if terms.len() == 1 => {
            dicom_encoding::text::SpecificCharacterSet::from_code(one).is_some()
        }
        _ => false,
    };
    Charset {
        terms: terms.into_iter().filter(|t| !t.is_empty()).collect(),
        supported,
    }
}

/// The data set dicom-rs reads, and the kept values left out of it.
struct Rewritten {
    data_set: Vec<u8>,
    /// Text in a character set that is not decoded (keywords).
    undecoded: Vec<String>,
    /// Values that cannot be what their VR says (keywords).
    invalid: Vec<String>,
}

/// The kept elements as an explicit VR little endian data set for dicom-rs; the
/// values that cannot be decoded are left out and named.
fn rewrite(walked: &Walked, charset: &Charset) -> Rewritten {
    let mut out = Vec::with_capacity(walked.kept.len() + 8 * walked.elements.len());
    let mut undecoded = Vec::new();
    let mut invalid = Vec::new();
    for kept in &walked.elements {
        let attribute = kept.attribute;
        let value = &walked.kept[kept.value.clone()];
        if a::is_text(attribute.vr) {
            let plain = value.iter().all(|&b| b < 0x80 && b != 0x1B);
            let escapes = value.contains(&0x1B);
            // The default repertoire (no SpecificCharacterSet) is ASCII only.
            let declared = !charset.terms.is_empty();
            if !plain && (!declared || !charset.supported || escapes) {
                undecoded.push(attribute.keyword.to_string());
                continue;
            }
        }
        // US values are 16-bit words. Of an odd length, dicom-rs's decoder reads
        // one byte short and takes the next bytes for a header, whose length it
        // allocates (up to 4 GiB) before it finds them missing.
        if &attribute.vr == b"US" && !value.len().is_multiple_of(2) {
            invalid.push(attribute.keyword.to_string());
            continue;
        }
        let mut value: Cow<[u8]> = Cow::Borrowed(value);
        if walked.encoding == Encoding::ExplicitBig && &attribute.vr == b"US" {
            let mut swapped = value.into_owned();
            for pair in swapped.chunks_exact_mut(2) {
                pair.swap(0, 1);
            }
            value = Cow::Owned(swapped);
        }
        encode_element(&mut out, attribute, &value);
    }
    Rewritten {
        data_set: out,
        undecoded,
        invalid,
    }
}

/// The kept elements as dicom-rs decodes them: text in the declared character
/// set (the SpecificCharacterSet element switches it, as in a file), values
/// split by multiplicity, binary VRs typed.
struct Decoded<'a> {
    /// In the order written; of a tag written twice the last is the one read,
    /// as a dicom-rs object keeps it.
    elements: Vec<(dicom_core::Tag, Value<'a>)>,
    /// The tags strictly ascend, as a data set's must (PS3.5 7.1): an element is
    /// then found by bisection instead of a scan from the end (some sixty
    /// lookups per file, one per attribute read).
    ascending: bool,
}

impl<'a> Decoded<'a> {
    /// Reads what [`rewrite`] wrote with dicom-rs's decoder, one element after
    /// another as its data set reader does, and ending where it ends: when no
    /// byte is left, or too few for a tag. Building its object of them (a tree,
    /// and a reader that tracks sequences this data set never has) cost as much
    /// again as decoding the values.
    fn read(data_set: &'a [u8]) -> Result<Self, DecodeFailed> {
        let left = Cell::new(data_set);
        let mut decoder = StatefulDecoder::new(
            Unread(&left),
            ExplicitVRLittleEndianDecoder::default(),
            LittleEndianBasicDecoder,
            SpecificCharacterSet::default(),
        );
        let mut elements = Vec::new();
        while !left.get().is_empty() {
            // The decoder reads from `left`, so moving `left` past bytes read here
            // moves it too (its own count of bytes read, which only its errors
            // show, falls behind).
            let header = match text_header(left.get()) {
                Some(header) => {
                    left.set(&left.get()[TEXT_HEADER_LEN..]);
                    header
                }
                None => match decoder.decode_header() {
                    Ok(header) => header,
                    Err(dicom_parser::stateful::decode::Error::DecodeElementHeader {
                        source: dicom_encoding::decode::Error::ReadHeaderTag { source, .. },
                        ..
                    }) if source.kind() == std::io::ErrorKind::UnexpectedEof => break,
                    Err(_) => return Err(DecodeFailed),
                },
            };
            let value = match ascii_text(&header, left.get()) {
                // Read here, and stepped over (`ascii_text` saw all its bytes).
                Some(value) => {
                    let len = usize::try_from(header.len.0).map_err(|_| DecodeFailed)?;
                    left.set(left.get().get(len..).ok_or(DecodeFailed)?);
                    value
                }
                None => decoder
                    .read_value_preserved(&header)
                    .map(Value::Decoded)
                    .map_err(|_| DecodeFailed)?,
            };
            elements.push((header.tag, value));
        }
        let ascending = elements.windows(2).all(|w| w[0].0 < w[1].0);
        Ok(Decoded {
            elements,
            ascending,
        })
    }

    fn get(&self, tag: Tag) -> Option<&Value<'a>> {
        let tag = dicom_core::Tag(tag.0, tag.1);
        if self.ascending {
            let at = self.elements.binary_search_by_key(&tag, |(t, _)| *t).ok()?;
            return Some(&self.elements[at].1);
        }
        self.elements
            .iter()
            .rev()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v)
    }
}

/// A value of the data set: ASCII text borrowed from it as it stands (see
/// [`ascii_text`]), or what dicom-rs's decoder read. Most values of a header are
/// ASCII text; reading them in place spares a `String` per value, and
/// dicom-rs's joins and splits in `to_str` and `to_multi_str` (a second `String`
/// per value, and a third for numbers), with their frees.
#[derive(Debug)]
enum Value<'a> {
    /// The value's bytes, ASCII without an escape; `multi` for the VRs that
    /// dicom-rs splits at backslashes into several values.
    Ascii {
        text: &'a str,
        multi: bool,
    },
    Decoded(PrimitiveValue),
}

/// Spaces and NULs pad text values (PS3.5 6.2); they are not part of them.
fn trim_padding(s: &str) -> &str {
    s.trim_matches(|c: char| c == ' ' || c == '\0')
}

impl Value<'_> {
    /// The whole value as text as dicom-rs's `PrimitiveValue::to_str` gives it
    /// (each value's trailing padding dropped, several joined by backslashes),
    /// then trimmed at both ends.
    fn text(&self) -> Cow<'_, str> {
        match self {
            Value::Ascii { text, multi } if *multi && text.contains('\\') => {
                let values: Vec<&str> = text
                    .split('\\')
                    .map(|v| v.trim_end_matches([' ', '\0']))
                    .collect();
                Cow::Owned(trim_padding(&values.join("\\")).to_string())
            }
            Value::Ascii { text, .. } => Cow::Borrowed(trim_padding(text)),
            Value::Decoded(value) => match value.to_str() {
                Cow::Borrowed(s) => Cow::Borrowed(trim_padding(s)),
                Cow::Owned(s) => Cow::Owned(trim_padding(&s).to_string()),
            },
        }
    }

    /// Every value as dicom-rs's `PrimitiveValue::to_multi_str` gives them, each
    /// trimmed at both ends.
    fn texts(&self) -> Vec<Cow<'_, str>> {
        match self {
            Value::Ascii { text, multi: true } => text
                .split('\\')
                .map(|v| Cow::Borrowed(trim_padding(v)))
                .collect(),
            Value::Ascii { text, multi: false } => vec![Cow::Borrowed(trim_padding(text))],
            Value::Decoded(value) => value
                .to_multi_str()
                .iter()
                .map(|v| Cow::Owned(trim_padding(v).to_string()))
                .collect(),
        }
    }

    /// dicom-rs's own value: what its decoder reads for the same bytes, when
    /// they are not empty (of no bytes it reads `Empty`, which `ascii_text`
    /// leaves to it).
    #[cfg(test)]
    fn to_primitive(&self) -> PrimitiveValue {
        match self {
            Value::Ascii { text, multi: true } => {
                PrimitiveValue::Strs(text.split('\\').map(str::to_owned).collect())
            }
            Value::Ascii { text, multi: false } => PrimitiveValue::Str(text.to_string()),
            Value::Decoded(value) => value.clone(),
        }
    }
}

/// An element header of explicit VR little endian: tag, VR, 16-bit length.
const TEXT_HEADER_LEN: usize = 8;

/// The header of a text element, as [`encode_element`] writes one, read as
/// dicom-rs's decoder reads it (`None` for any other header, which the decoder
/// reads): tag, VR and a 16-bit length, for the text VRs that have one in
/// explicit VR (PS3.5 7.1.2). The decoder's own route (a read per field, the VR
/// looked up as a string) was about 4% of a run's samples. Items (group FFFE)
/// have no VR and are left to the decoder. The decoder also replaces the VR of
/// the dictionary's US-or-SS attributes, by tag, once it has read a
/// PixelRepresentation of 1; that cannot happen here, as PixelRepresentation is
/// not kept (`no_kept_attribute_makes_the_decoder_swap_vrs`). A property test
/// holds the two equal on everything else.
fn text_header(left: &[u8]) -> Option<dicom_core::DataElementHeader> {
    use dicom_core::VR;
    let b: &[u8; TEXT_HEADER_LEN] = left.get(..TEXT_HEADER_LEN)?.try_into().ok()?;
    let group = u16::from_le_bytes([b[0], b[1]]);
    if group == 0xFFFE {
        return None;
    }
    let vr = match &[b[4], b[5]] {
        b"AE" => VR::AE,
        b"AS" => VR::AS,
        b"CS" => VR::CS,
        b"DA" => VR::DA,
        b"DS" => VR::DS,
        b"DT" => VR::DT,
        b"IS" => VR::IS,
        b"LO" => VR::LO,
        b"LT" => VR::LT,
        b"PN" => VR::PN,
        b"SH" => VR::SH,
        b"ST" => VR::ST,
        b"TM" => VR::TM,
        b"UI" => VR::UI,
        _ => return None,
    };
    Some(dicom_core::DataElementHeader::new(
        dicom_core::Tag(group, u16::from_le_bytes([b[2], b[3]])),
        vr,
        dicom_core::Length(u32::from(u16::from_le_bytes([b[6], b[7]]))),
    ))
}

/// A text value of ASCII bytes as dicom-rs's decoder reads it, without it; `None`
/// for any other value, which the decoder reads. Every character set dicom-rs
/// decodes maps ASCII to itself, except for ISO 2022's escape (ESC), which
/// switches sets, so the value reads the same whatever set is declared; the decoder's
/// own route (the `encoding` crate, one character at a time into a growing
/// string) was most of its time. The SpecificCharacterSet element is left to
/// the decoder, which switches to it. A property test holds the two equal.
fn ascii_text<'a>(header: &dicom_core::DataElementHeader, left: &'a [u8]) -> Option<Value<'a>> {
    use dicom_core::VR;
    let len = usize::try_from(header.len.get()?).ok()?;
    if len == 0 || header.tag == dicom_core::Tag(0x0008, 0x0005) {
        return None;
    }
    let bytes = left.get(..len)?;
    if !bytes.iter().all(|&b| b.is_ascii() && b != 0x1B) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let multi = match header.vr {
        // What dicom-rs reads as several values, split at backslashes.
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DS
        | VR::DT
        | VR::IS
        | VR::LO
        | VR::PN
        | VR::SH
        | VR::TM
        | VR::UC
        | VR::UI => true,
        // One value, backslashes and all.
        VR::LT | VR::ST | VR::UR | VR::UT => false,
        _ => return None,
    };
    Some(Value::Ascii { text, multi })
}

/// A data set the decoder reads while [`Decoded::read`] still sees how much of
/// it is left (the decoder owns its reader and does not give it back), and moves
/// past what it reads itself (text headers and ASCII values).
struct Unread<'c, 'a>(&'c Cell<&'a [u8]>);

impl std::io::Read for Unread<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut left = self.0.get();
        let n = left.read(buf)?;
        self.0.set(left);
        Ok(n)
    }
}

/// One element in explicit VR little endian, with the attribute's VR. Every kept
/// VR has a 16-bit length, and a kept value fits one (a longer one is left out).
fn encode_element(out: &mut Vec<u8>, attribute: &Attribute, value: &[u8]) {
    let Ok(len) = u16::try_from(value.len()) else {
        return;
    };
    out.extend_from_slice(&attribute.tag.0.to_le_bytes());
    out.extend_from_slice(&attribute.tag.1.to_le_bytes());
    out.extend_from_slice(&attribute.vr);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value);
}

/// Reads typed values of a decoded data set, noting the ones that do not read.
struct Values<'a> {
    decoded: &'a Decoded<'a>,
    invalid: Vec<String>,
}

impl<'a> Values<'a> {
    fn element(&self, attribute: &Attribute) -> Option<&'a Value<'a>> {
        self.decoded.get(attribute.tag)
    }

    fn invalid(&mut self, attribute: &Attribute) {
        self.invalid.push(attribute.keyword.to_string());
    }

    /// The value as text, trimmed; `None` when absent or empty.
    fn text(&self, attribute: &Attribute) -> Option<String> {
        let s = self.element(attribute)?.text();
        (!s.is_empty()).then(|| s.into_owned())
    }

    /// Every value, trimmed; `None` when absent or all empty.
    fn texts(&self, attribute: &Attribute) -> Option<Vec<String>> {
        let values = self.text_values(attribute)?;
        Some(values.into_iter().map(Cow::into_owned).collect())
    }

    /// [`Self::texts`] without a copy of each: for values read as numbers.
    fn text_values(&self, attribute: &Attribute) -> Option<Vec<Cow<'a, str>>> {
        let values = self.element(attribute)?.texts();
        values.iter().any(|v| !v.is_empty()).then_some(values)
    }

    /// An IS or US value (the first of several).
    fn int(&mut self, attribute: &Attribute) -> Option<i32> {
        if &attribute.vr == b"US"
            && let Value::Decoded(e) = self.element(attribute)?
        {
            if e.is_empty() {
                return None;
            }
            return match e.to_int::<i32>() {
                Ok(v) => Some(v),
                Err(_) => {
                    self.invalid(attribute);
                    None
                }
            };
        }
        let text = self.text_values(attribute)?;
        match text[0].parse::<i32>() {
            Ok(v) => Some(v),
            Err(_) => {
                self.invalid(attribute);
                None
            }
        }
    }

    /// DS values; `None` (and invalid) when any does not read.
    fn floats(&mut self, attribute: &Attribute) -> Option<Vec<f64>> {
        let texts = self.text_values(attribute)?;
        let parsed: Result<Vec<f64>, _> = texts.iter().map(|t| t.parse::<f64>()).collect();
        match parsed {
            Ok(v) if v.iter().all(|f| f.is_finite()) => Some(v),
            _ => {
                self.invalid(attribute);
                None
            }
        }
    }

    fn float(&mut self, attribute: &Attribute) -> Option<f64> {
        self.floats(attribute).map(|v| v[0])
    }

    fn date(&mut self, attribute: &Attribute) -> Option<NaiveDate> {
        let text = self.text(attribute)?;
        let date = parse_date(&text);
        if date.is_none() {
            self.invalid(attribute);
        }
        date
    }

    fn time(&mut self, attribute: &Attribute) -> Option<String> {
        let text = self.text(attribute)?;
        let time = parse_time(&text);
        if time.is_none() {
            self.invalid(attribute);
        }
        time
    }
}

/// A DA value: `YYYYMMDD`, or the ACR-NEMA `YYYY.MM.DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let digits: String = match text.len() {
        8 => text.to_string(),
        10 if text.as_bytes()[4] == b'.' && text.as_bytes()[7] == b'.' => text.replace('.', ""),
        _ => return None,
    };
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(
        digits[0..4].parse().ok()?,
        digits[4..6].parse().ok()?,
        digits[6..8].parse().ok()?,
    )
}

/// A TM value (`HH[MM[SS[.F{1,6}]]]`, or the ACR-NEMA `HH:MM:SS`) as
/// `HH[:MM[:SS[.F]]]`.
pub fn parse_time(text: &str) -> Option<String> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text, None),
    };
    let whole: String =
        if whole.len() == 8 && whole.as_bytes()[2] == b':' && whole.as_bytes()[5] == b':' {
            whole.replace(':', "")
        } else {
            whole.to_string()
        };
    if !matches!(whole.len(), 2 | 4 | 6) || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<u32> = whole
        .as_bytes()
        .chunks(2)
        .map(|c| ((c[0] - b'0') * 10 + (c[1] - b'0')) as u32)
        .collect();
    let limits = [23, 59, 60];
    if parts.iter().zip(limits).any(|(v, max)| *v > max) {
        return None;
    }
    let mut out = parts
        .iter()
        .map(|p| format!("{p:02}"))
        .collect::<Vec<_>>()
        .join(":");
    if let Some(f) = fraction {
        if whole.len() != 6 || f.is_empty() || f.len() > 6 || !f.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// The grouping of a modality (PS3.3 C.7.3.1.1.1 defined terms).
pub fn modality_category(modality: &str) -> &'static str {
    match modality {
        "CT" | "MR" | "OCT" | "OPT" => "cross_sectional",
        "CR" | "DX" | "MG" | "XA" | "RF" | "IO" | "PX" | "RG" | "DF" | "DS" | "CF" | "BMD" => {
            "projection"
        }
        "US" | "IVUS" => "ultrasound",
        "PT" | "NM" => "nuclear",
        "RTIMAGE" | "RTDOSE" | "RTSTRUCT" | "RTPLAN" | "RTRECORD" | "RTION" | "RTTREAT" => {
            "radiotherapy"
        }
        "XC" | "ES" | "GM" | "SM" | "OP" | "OSS" => "visible_light",
        "ECG" | "EPS" | "HD" | "EEG" | "EMG" | "EOG" | "RESP" | "AU" | "BI" => "waveform",
        "SR" | "DOC" | "KO" | "PR" | "REG" | "SEG" | "FID" | "PLAN" => "document",
        _ => "other",
    }
}

/// The attributes that identify a patient, a person or a place: never output,
/// read only to clean descriptors.
const IDENTIFYING: &[&Attribute] = &[
    &a::PATIENT_NAME,
    &a::PATIENT_ID,
    &a::OTHER_PATIENT_IDS,
    &a::PATIENT_BIRTH_DATE,
    &a::PATIENT_ADDRESS,
    &a::PATIENT_TELEPHONE_NUMBERS,
    &a::ACCESSION_NUMBER,
    &a::REFERRING_PHYSICIAN_NAME,
    &a::PERFORMING_PHYSICIAN_NAME,
    &a::OPERATORS_NAME,
    &a::INSTITUTION_NAME,
    &a::INSTITUTION_ADDRESS,
    &a::STATION_NAME,
];

/// What the parser needs besides the header.
pub struct Context<'a> {
    pub key: &'a Key,
    pub profile: &'a Profile,
    pub applied: &'a Arc<Applied>,
}

/// Why decoding failed (the walk succeeded, dicom-rs did not read what it kept).
#[derive(Debug)]
pub struct DecodeFailed;

pub fn decode(walked: &Walked, cx: &Context<'_>) -> Result<Instance, DecodeFailed> {
    let charset = charset(walked);
    let Rewritten {
        data_set,
        undecoded,
        invalid,
    } = rewrite(walked, &charset);
    let decoded = Decoded::read(&data_set)?;
    // The identifying values are read apart: whether they read is not reported, as
    // they are not output.
    let ids = Values {
        decoded: &decoded,
        invalid: Vec::new(),
    };
    let mut v = Values {
        decoded: &decoded,
        invalid: walked
            .oversized
            .iter()
            .filter(|o| !IDENTIFYING.iter().any(|a| a.tag == o.tag))
            .map(|a| a.keyword.to_string())
            .chain(
                invalid
                    .iter()
                    .filter(|k| !IDENTIFYING.iter().any(|a| a.keyword == *k))
                    .cloned(),
            )
            .collect(),
    };
    let profile = cx.profile;
    let key = cx.key;

    // Identifying values: never output, only pseudonymised or used to clean.
    let patient_id = ids.text(&a::PATIENT_ID);
    let mut identifiers: Vec<String> = Vec::new();
    for attribute in IDENTIFYING {
        if let Some(values) = ids.texts(attribute) {
            identifiers.extend(values.into_iter().filter(|s| !s.is_empty()));
        }
    }
    // Cleaning needs every identifying value: when one could not be read whole (its
    // character set, or its length), no description is kept.
    // (An element read under bytes that are no VR has no value here either.)
    let whole = |a: &Attribute| {
        !(undecoded.iter().chain(&invalid).any(|k| k == a.keyword)
            || walked.oversized.iter().any(|o| o.tag == a.tag)
            || walked.invalid_vrs.contains(&a.tag)
            || walked.invalid_vrs_overflow)
    };
    let identifiers_whole = IDENTIFYING.iter().all(|a| whole(a));

    let uid = |value: Option<String>| -> Option<String> {
        value.map(|u| if profile.retain_uids { u } else { key.uid(&u) })
    };
    let shift = match profile.retain_longitudinal_temporal_information {
        Temporal::ModifiedDates => Some(key.date_shift_days(patient_id.as_deref().unwrap_or(""))),
        _ => None,
    };
    // Modified dates need the patient's own shift: with a PatientID that is
    // absent, empty or could not be read, dates are left out rather than shifted
    // as every other such file's (one known date would reveal them all).
    let temporal = match profile.retain_longitudinal_temporal_information {
        Temporal::Off => false,
        Temporal::ModifiedDates => {
            whole(&a::PATIENT_ID) && patient_id.as_deref().is_some_and(|p| !p.trim().is_empty())
        }
        Temporal::FullDates => true,
    };
    let date = |v: &mut Values<'_>, attribute: &Attribute| -> Option<NaiveDate> {
        if !temporal {
            return None;
        }
        let date = v.date(attribute)?;
        match shift {
            Some(days) => date.checked_sub_days(Days::new(days as u64)),
            None => Some(date),
        }
    };
    let time = |v: &mut Values<'_>, attribute: &Attribute| -> Option<String> {
        temporal.then(|| v.time(attribute)).flatten()
    };
    let characteristics = profile.retain_patient_characteristics;
    let mut cleaned = Vec::new();
    let mut descriptor = |v: &mut Values<'_>, attribute: &Attribute| -> Option<String> {
        if !profile.clean_descriptors {
            return None;
        }
        let text = v.text(attribute)?;
        let kept = if identifiers_whole {
            deidentify::clean(&text, &identifiers)
        } else {
            None
        };
        if kept.is_none() {
            cleaned.push(attribute.keyword.to_string());
        }
        kept
    };

    let meta = walked.meta.as_ref();
    let declared_ts = meta.and_then(|m| m.transfer_syntax.clone());
    let guessed = walked.guessed || declared_ts.is_none();
    let transfer_syntax_uid = match (&declared_ts, walked.guessed) {
        (Some(uid), false) => uid.clone(),
        _ => walked.encoding.uid().to_string(),
    };
    let transfer_syntax_name = TransferSyntaxRegistry
        .get(&transfer_syntax_uid)
        .map(|ts| ts.name().to_string());
    let sop_class_uid = v
        .text(&a::SOP_CLASS_UID)
        .or_else(|| meta.and_then(|m| m.media_sop_class.clone()));
    let sop_class_name = sop_class_uid.as_deref().and_then(|uid| {
        use dicom_core::dictionary::UidDictionary;
        dicom_dictionary_std::sop_class::registry()
            .by_uid(uid)
            .map(|e| e.name.to_string())
    });
    let modality = v.text(&a::MODALITY);
    let burned_in_annotation = match v.text(&a::BURNED_IN_ANNOTATION).as_deref() {
        None => None,
        Some("YES") => Some(true),
        Some("NO") => Some(false),
        Some(_) => {
            v.invalid(&a::BURNED_IN_ANNOTATION);
            None
        }
    };

    let mut instance = Instance {
        sop_class_name,
        sop_class_uid,
        sop_instance_uid: uid(v.text(&a::SOP_INSTANCE_UID)),
        study_instance_uid: uid(v.text(&a::STUDY_INSTANCE_UID)),
        series_instance_uid: uid(v.text(&a::SERIES_INSTANCE_UID)),
        transfer_syntax_uid,
        transfer_syntax_name,
        transfer_syntax_guessed: guessed,
        patient_id: patient_id.as_deref().map(|p| key.pseudonym("PatientID", p)),
        accession_number: ids
            .text(&a::ACCESSION_NUMBER)
            .map(|x| key.pseudonym("AccessionNumber", &x)),
        study_id: v.text(&a::STUDY_ID).map(|x| key.pseudonym("StudyID", &x)),
        patient_sex: characteristics.then(|| v.text(&a::PATIENT_SEX)).flatten(),
        patient_age: characteristics.then(|| v.text(&a::PATIENT_AGE)).flatten(),
        patient_size: characteristics.then(|| v.float(&a::PATIENT_SIZE)).flatten(),
        patient_weight: characteristics
            .then(|| v.float(&a::PATIENT_WEIGHT))
            .flatten(),
        study_date: date(&mut v, &a::STUDY_DATE),
        study_time: time(&mut v, &a::STUDY_TIME),
        series_date: date(&mut v, &a::SERIES_DATE),
        series_time: time(&mut v, &a::SERIES_TIME),
        acquisition_date: date(&mut v, &a::ACQUISITION_DATE),
        acquisition_time: time(&mut v, &a::ACQUISITION_TIME),
        performed_procedure_step_start_date: date(&mut v, &a::PERFORMED_PROCEDURE_STEP_START_DATE),
        performed_procedure_step_start_time: time(&mut v, &a::PERFORMED_PROCEDURE_STEP_START_TIME),
        modality_category: modality.as_deref().map(modality_category),
        modality,
        modalities_in_study: v.texts(&a::MODALITIES_IN_STUDY),
        body_part_examined: v.text(&a::BODY_PART_EXAMINED),
        manufacturer: v.text(&a::MANUFACTURER),
        manufacturer_model_name: v.text(&a::MANUFACTURER_MODEL_NAME),
        station_name: profile
            .retain_device_identity
            .then(|| v.text(&a::STATION_NAME))
            .flatten(),
        study_description: descriptor(&mut v, &a::STUDY_DESCRIPTION),
        series_description: descriptor(&mut v, &a::SERIES_DESCRIPTION),
        series_number: v.int(&a::SERIES_NUMBER),
        instance_number: v.int(&a::INSTANCE_NUMBER),
        rows: v.int(&a::ROWS),
        columns: v.int(&a::COLUMNS),
        bits_allocated: v.int(&a::BITS_ALLOCATED),
        bits_stored: v.int(&a::BITS_STORED),
        samples_per_pixel: v.int(&a::SAMPLES_PER_PIXEL),
        photometric_interpretation: v.text(&a::PHOTOMETRIC_INTERPRETATION),
        number_of_frames: v.int(&a::NUMBER_OF_FRAMES),
        pixel_spacing: v.floats(&a::PIXEL_SPACING),
        slice_thickness: v.float(&a::SLICE_THICKNESS),
        image_type: v.texts(&a::IMAGE_TYPE),
        burned_in_annotation,
        has_pixel_data: walked.pixel_data.is_some(),
        pixel_data_problem: None,
        specific_character_set: (!charset.terms.is_empty()).then(|| charset.terms.clone()),
        character_set_supported: charset.supported,
        undecoded_attributes: undecoded,
        invalid_attributes: Vec::new(),
        cleaned_attributes: Vec::new(),
        deidentification: cx.applied.clone(),
    };
    instance.cleaned_attributes = cleaned;
    instance.pixel_data_problem = walked
        .pixel_data_problem
        .clone()
        .or_else(|| short_pixel_data(walked, &instance));
    let mut invalid = v.invalid;
    invalid.extend(walked.invalid_vrs.iter().map(|t| keyword_of(*t)));
    invalid.sort();
    invalid.dedup();
    instance.invalid_attributes = invalid;
    Ok(instance)
}

/// Native pixel data shorter than its geometry calls for (rows × columns ×
/// frames × samples × bits allocated): the frames are not all there.
fn short_pixel_data(walked: &Walked, i: &Instance) -> Option<String> {
    // Only native pixel data has the geometry's size (a compressed syntax may
    // write a defined length too).
    const NATIVE: [&str; 4] = [
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
        "1.2.840.10008.1.2.2",
        super::walk::DEFLATED,
    ];
    let declared = walked
        .meta
        .as_ref()
        .and_then(|m| m.transfer_syntax.as_deref());
    if declared.is_some_and(|ts| !NATIVE.contains(&ts)) {
        return None;
    }
    let length = walked.pixel_data?.length? as u64;
    let dim = |v: Option<i32>| u64::try_from(v?).ok().filter(|n| *n > 0);
    let (rows, columns, bits) = (dim(i.rows)?, dim(i.columns)?, dim(i.bits_allocated)?);
    let frames = dim(i.number_of_frames).unwrap_or(1);
    let mut samples = dim(i.samples_per_pixel).unwrap_or(1);
    // 4:2:2 chroma subsampling stores two samples per pixel, not three.
    if samples == 3
        && i.photometric_interpretation
            .as_deref()
            .is_some_and(|p| p.ends_with("_422"))
    {
        samples = 2;
    }
    let bits_needed = rows
        .checked_mul(columns)?
        .checked_mul(frames)?
        .checked_mul(samples)?
        .checked_mul(bits)?;
    let needed = bits_needed.div_ceil(8);
    (length < needed).then(|| {
        format!(
            "pixel data holds {length} bytes; {rows} rows × {columns} columns × {frames} frames × {samples} samples × {bits} bits allocated call for {needed}"
        )
    })
}

/// An element's keyword from the standard dictionary; a tag it does not know as
/// the walk shows one (never its bytes, which may be a value).
fn keyword_of(tag: Tag) -> String {
    use dicom_core::dictionary::DataDictionary;
    dicom_dictionary_std::StandardDataDictionary
        .by_tag(dicom_core::Tag(tag.0, tag.1))
        .map(|e| e.alias.to_string())
        .unwrap_or_else(|| tag.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dicom_core::header::Header;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn dates_and_times_read_as_the_standard_writes_them() {
        assert_eq!(parse_date("20240229"), NaiveDate::from_ymd_opt(2024, 2, 29));
        assert_eq!(
            parse_date("1999.12.31"),
            NaiveDate::from_ymd_opt(1999, 12, 31)
        );
        for bad in ["20230229", "2024022", "2024-02-29", "abcdefgh", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_time("070907.0705").as_deref(), Some("07:09:07.0705"));
        assert_eq!(parse_time("1012").as_deref(), Some("10:12"));
        assert_eq!(parse_time("10:12:13").as_deref(), Some("10:12:13"));
        for bad in ["2500", "1", "10.5", "101213.1234567", "12a0"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    /// A data set as [`rewrite`] writes one: tag, the attribute's VR, a 16-bit
    /// length, the value.
    fn data_set(elements: &[(&Attribute, Vec<u8>)], trailing: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (attribute, value) in elements {
            encode_element(&mut out, attribute, value);
        }
        out.extend_from_slice(trailing);
        out
    }

    /// dicom-rs's own reading of a data set into its object: what
    /// [`Decoded::read`] replaces.
    fn by_object(data_set: &[u8]) -> Option<Vec<(dicom_core::Tag, PrimitiveValue)>> {
        let ts = TransferSyntaxRegistry.get(Encoding::ExplicitLittle.uid())?;
        let obj = dicom_object::InMemDicomObject::read_dataset_with_ts(data_set, ts).ok()?;
        Some(
            obj.iter()
                .map(|e| (e.tag(), e.value().primitive().cloned().expect("flat")))
                .collect(),
        )
    }

    fn element() -> impl Strategy<Value = (&'static Attribute, Vec<u8>)> {
        let value = prop_oneof![
            // Text as files write it: several values, padding, NULs.
            4 => proptest::collection::vec(
                prop_oneof![
                    Just(b'\\'),
                    Just(b' '),
                    Just(0u8),
                    Just(b'.'),
                    Just(b'^'),
                    b'0'..=b'9',
                    b'A'..=b'Z',
                    // ISO 2022's shifts and escape, controls, DEL.
                    proptest::sample::select(vec![0x0E, 0x0F, 0x1B, b'\t', b'\n', 0x7F]),
                ],
                0..24
            ),
            // Anything: other character sets' bytes, escapes, odd lengths.
            2 => proptest::collection::vec(any::<u8>(), 0..24),
        ];
        // US values are whole words: `rewrite` leaves out any other (see
        // `an_odd_length_us_value_is_left_out_and_named`).
        (proptest::sample::select(a::ALL), value).prop_map(|(attribute, mut value)| {
            if &attribute.vr == b"US" && !value.len().is_multiple_of(2) {
                value.pop();
            }
            (attribute, value)
        })
    }

    fn charset_term() -> impl Strategy<Value = Vec<u8>> {
        proptest::sample::select(vec![
            &b""[..],
            b"ISO_IR 100",
            b"ISO_IR 192",
            b"GB18030",
            b"ISO_IR 144",
            b"ISO_IR 13",
            b"ISO 2022 IR 87",
            b"ISO_IR 149",
            b"GBK",
            b"ISO_IR 166",
            b"ISO_IR 6 ",
            b"\\ISO 2022 IR 87",
            b"ISO_IR 100\\ISO_IR 192",
            b"NOT A CHARSET",
        ])
        .prop_map(|t| t.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every data set of the shape `rewrite` writes (whole US words) reads
        /// to the values dicom-rs's object holds (the last of a repeated tag),
        /// or fails in both.
        #[test]
        fn values_read_as_dicom_rs_object_reads_them(
            charset in proptest::option::of(charset_term()),
            elements in proptest::collection::vec(element(), 0..12),
            // In tag order, as a file's (the reader then bisects), or as drawn.
            ascending in any::<bool>(),
            // Too short for a header: mostly where dicom-rs ends (under 4
            // bytes), else where it fails.
            trailing in prop_oneof![
                3 => proptest::collection::vec(any::<u8>(), 0..4),
                1 => proptest::collection::vec(any::<u8>(), 4..8),
            ],
        ) {
            let mut all: Vec<(&Attribute, Vec<u8>)> = Vec::new();
            if let Some(term) = charset {
                all.push((&a::SPECIFIC_CHARACTER_SET, term));
            }
            all.extend(elements);
            if ascending {
                all.sort_by_key(|(attribute, _)| attribute.tag);
                all.dedup_by_key(|(attribute, _)| attribute.tag);
            }
            let bytes = data_set(&all, &trailing);
            let ours = Decoded::read(&bytes).ok();
            match (by_object(&bytes), ours) {
                (None, None) => {}
                (Some(reference), Some(ours)) => {
                    let tags: BTreeSet<_> = ours.elements.iter().map(|(t, _)| *t).collect();
                    prop_assert_eq!(tags.len(), reference.len());
                    for (tag, value) in &reference {
                        let read = ours.get(Tag(tag.0, tag.1)).map(Value::to_primitive);
                        prop_assert_eq!(read.as_ref(), Some(value));
                    }
                }
                (reference, ours) => prop_assert!(
                    false,
                    "dicom-rs read {:?}, naslake {:?}",
                    reference.is_some(),
                    ours.is_some()
                ),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// ASCII text read in place gives the text and the values that dicom-rs's
        /// own value for the same bytes gives (`to_str`, `to_multi_str`), trimmed
        /// the same: padding around and between values, empty values, one value
        /// or several.
        #[test]
        fn text_read_in_place_reads_as_dicom_rs_values(
            text in proptest::collection::vec(
                proptest::sample::select(vec![' ', '\0', '\\', 'A', '1', '.', '^', '\t']),
                0..24,
            ),
            multi in any::<bool>(),
        ) {
            let text: String = text.into_iter().collect();
            let ours = Value::Ascii { text: &text, multi };
            let theirs = Value::Decoded(ours.to_primitive());
            prop_assert_eq!(ours.text(), theirs.text());
            prop_assert_eq!(ours.texts(), theirs.texts());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// A header `text_header` reads is the one dicom-rs's decoder reads from
        /// the same bytes, and takes as many bytes; it reads every text VR's.
        #[test]
        fn text_headers_read_as_dicom_rs_reads_them(
            group in prop_oneof![Just(0xFFFEu16), Just(0x0008), Just(0x0028), any::<u16>()],
            element in any::<u16>(),
            vr in prop_oneof![
                3 => proptest::sample::select(ALL_VRS).prop_map(|v| *v),
                1 => any::<[u8; 2]>(),
            ],
            rest in proptest::collection::vec(any::<u8>(), 0..10),
        ) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&group.to_le_bytes());
            bytes.extend_from_slice(&element.to_le_bytes());
            bytes.extend_from_slice(&vr);
            bytes.extend_from_slice(&rest);
            let ours = text_header(&bytes);
            let short_texts: &[&[u8; 2]] = &[
                b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"LT", b"PN", b"SH",
                b"ST", b"TM", b"UI",
            ];
            prop_assert_eq!(
                ours.is_some(),
                group != 0xFFFE && short_texts.contains(&&vr) && rest.len() >= 2
            );
            if let Some(ours) = ours {
                let mut decoder = StatefulDecoder::new(
                    &bytes[..],
                    ExplicitVRLittleEndianDecoder::default(),
                    LittleEndianBasicDecoder,
                    SpecificCharacterSet::default(),
                );
                let theirs = decoder.decode_header().expect("a header");
                prop_assert_eq!(ours, theirs);
                prop_assert_eq!(decoder.position(), TEXT_HEADER_LEN as u64);
            }
        }
    }

    /// dicom-rs's decoder gives the dictionary's US-or-SS attributes the VR SS,
    /// whatever their header says, once it has read a PixelRepresentation of 1;
    /// `text_header` can read headers in its place only while that cannot happen.
    #[test]
    fn no_kept_attribute_makes_the_decoder_swap_vrs() {
        assert!(!a::ALL.iter().any(|a| a.tag == Tag(0x0028, 0x0103)));
    }

    /// The VRs of PS3.5 table 6.2-1 but SQ (a sequence has no value to read).
    const ALL_VRS: &[&[u8; 2]] = &[
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
        b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SS", b"ST", b"SV", b"TM", b"UC",
        b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    ];

    /// Of those, the VRs with a 32-bit length in explicit VR.
    const LONG_VRS: &[&[u8; 2]] = &[
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
    ];

    /// Every character set dicom-rs knows, by a term that names it.
    const KNOWN_CHARSETS: &[&str] = &[
        "ISO_IR 6",
        "ISO_IR 13",
        "ISO 2022 IR 87",
        "ISO_IR 100",
        "ISO_IR 101",
        "ISO_IR 109",
        "ISO_IR 110",
        "ISO_IR 126",
        "ISO_IR 127",
        "ISO_IR 138",
        "ISO_IR 144",
        "ISO_IR 149",
        "ISO_IR 166",
        "ISO_IR 192",
        "GB18030",
        "GBK",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever character set is in force, a value `ascii_text` reads is the
        /// one dicom-rs's decoder reads, and it reads every ASCII text value
        /// without an escape, in every VR (kept attributes or not).
        #[test]
        fn ascii_text_reads_what_dicom_rs_decodes(
            charset in proptest::sample::select(KNOWN_CHARSETS),
            tag in proptest::sample::select(vec![
                dicom_core::Tag(0x0008, 0x0005),
                dicom_core::Tag(0x0008, 0x0060),
                dicom_core::Tag(0x0010, 0x0010),
                dicom_core::Tag(0x0011, 0x1001),
            ]),
            vr in proptest::sample::select(ALL_VRS),
            value in proptest::collection::vec(
                prop_oneof![
                    8 => 0u8..0x80,
                    1 => proptest::sample::select(vec![0x0E, 0x0F, 0x1B, b'\\', 0]),
                    1 => 0x80u8..=0xFF,
                ],
                0..40,
            ),
        ) {
            let set = SpecificCharacterSet::from_code(charset).expect("known");
            // Explicit VR little endian: a 32-bit length after two reserved bytes
            // for the VRs that have one (PS3.5 7.1.2).
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&tag.0.to_le_bytes());
            bytes.extend_from_slice(&tag.1.to_le_bytes());
            bytes.extend_from_slice(vr);
            if LONG_VRS.contains(&vr) {
                bytes.extend_from_slice(&[0, 0]);
                bytes.extend_from_slice(&(value.len() as u32).to_le_bytes());
            } else {
                bytes.extend_from_slice(&(value.len() as u16).to_le_bytes());
            }
            bytes.extend_from_slice(&value);
            let left = Cell::new(&bytes[..]);
            let mut decoder = StatefulDecoder::new(
                Unread(&left),
                ExplicitVRLittleEndianDecoder::default(),
                LittleEndianBasicDecoder,
                set,
            );
            let header = decoder.decode_header().expect("a header");
            let ours = ascii_text(&header, left.get());
            let plain = !value.is_empty() && value.iter().all(|&b| b < 0x80 && b != 0x1B);
            let texts: &[&[u8; 2]] = &[
                b"AE", b"AS", b"CS", b"DA", b"DS", b"DT", b"IS", b"LO", b"PN", b"SH", b"TM",
                b"UC", b"UI", b"LT", b"ST", b"UR", b"UT",
            ];
            prop_assert_eq!(
                ours.is_some(),
                plain && texts.contains(&vr) && tag != dicom_core::Tag(0x0008, 0x0005)
            );
            if let Some(ours) = ours {
                let theirs = decoder.read_value_preserved(&header).expect("decodes");
                prop_assert_eq!(ours.to_primitive(), theirs);
            }
        }
    }

    #[test]
    fn an_odd_length_us_value_is_left_out_and_named() {
        // Rows with three bytes: dicom-rs would read two of them, and every
        // element after it from one byte early.
        let mut kept = Vec::new();
        let mut elements = Vec::new();
        let mut push = |attribute: &'static Attribute, value: &[u8]| {
            elements.push(crate::sources::dicom::walk::Kept {
                attribute,
                value: kept.len()..kept.len() + value.len(),
            });
            kept.extend_from_slice(value);
        };
        push(&a::MODALITY, b"CT");
        push(&a::ROWS, &[0, 2, 0]);
        push(&a::COLUMNS, &[0, 2]);
        push(&a::STUDY_DESCRIPTION, b"HEAD OB ~~~~");
        let walked = Walked {
            meta: None,
            encoding: Encoding::ExplicitLittle,
            guessed: false,
            deflated: false,
            kept,
            elements,
            oversized: Vec::new(),
            pixel_data: None,
            pixel_data_problem: None,
            invalid_vrs: Vec::new(),
            invalid_vrs_overflow: false,
        };
        let rewritten = rewrite(&walked, &charset(&walked));
        assert_eq!(rewritten.invalid, ["Rows"]);
        let decoded = Decoded::read(&rewritten.data_set).unwrap();
        let mut v = Values {
            decoded: &decoded,
            invalid: Vec::new(),
        };
        assert_eq!(v.int(&a::ROWS), None);
        assert_eq!(v.int(&a::COLUMNS), Some(512));
        assert_eq!(v.text(&a::MODALITY).as_deref(), Some("CT"));
        assert_eq!(
            v.text(&a::STUDY_DESCRIPTION).as_deref(),
            Some("HEAD OB ~~~~")
        );
        assert!(v.invalid.is_empty());
    }

    #[test]
    fn modalities_fall_into_categories() {
        assert_eq!(modality_category("CT"), "cross_sectional");
        assert_eq!(modality_category("US"), "ultrasound");
        assert_eq!(modality_category("ECG"), "waveform");
        assert_eq!(modality_category("XC"), "visible_light");
        assert_eq!(modality_category("ZZ"), "other");
    }
}
