//! The header walk: finds a DICOM object's encoding, its file meta, the top-level
//! elements naslake extracts and where its header ends, without trusting a single
//! declared length. It is the only code that sees a file's raw bytes; dicom-rs
//! decodes only what it keeps ([`Walked::kept`]), so no length dicom-rs reads was
//! left unchecked.
//!
//! The rules (PS3.5 chapter 7, PS3.10 chapter 7):
//! - The file meta group follows `DICM` at offset 128 (after the preamble) or at
//!   offset 0 (no preamble); it is always explicit VR little endian, and it is
//!   walked element by element while the group is 0002 (its group length is not
//!   trusted, nor required).
//! - Its Transfer Syntax UID decides the data set's encoding: implicit VR little
//!   endian, explicit VR big endian, deflated explicit VR little endian (inflated
//!   here, as far as the header needs), or explicit VR little endian for every
//!   other (native or encapsulated) syntax. A file with no meta, or a meta without
//!   a transfer syntax, is tried in explicit VR LE, implicit VR LE and explicit VR
//!   BE, most likely first: a guess is accepted only if the whole header reads
//!   with ascending top-level tags.
//! - Every declared length is checked against the bytes that exist before it is
//!   used: an element that would end past the data is a truncated file.
//! - Defined-length elements are stepped over without being read (a large
//!   private blob costs nothing). Undefined-length sequences are walked item by
//!   item, nested at most [`MAX_DEPTH`] deep; an undefined-length UN element holds
//!   implicit VR little endian (CP-246), whatever the file's encoding.
//! - An element whose VR bytes are no VR is read as pydicom reads it (its
//!   `data_element_generator`): two bytes outside `AA`..`ZZ` (a NUL, a digit)
//!   mean the writer switched to implicit VR for it (a 4-byte length after the
//!   tag), two letters an unknown VR with a 2-byte length. Where pydicom would
//!   then take a 4-byte length past the end of the object (and with it the rest
//!   of the file as one value), the 2-byte length is read instead. It is named among the
//!   invalid attributes and its value is not kept. The first element gets no
//!   such leniency, nor does a guessed encoding: an invalid VR there means the
//!   encoding is not the one tried (pydicom too checks the first element).
//! - `DICM` at offset 128 followed by no file meta element: the data set is
//!   tried right after it (as pydicom reads such a file); when no encoding reads
//!   there, the prefix was a coincidence (a file without preamble whose bytes
//!   happen to spell it) and the object is read from offset 0.
//! - The walk stops at top-level Pixel Data (7FE0,0010 and the float variants).
//!   Its declared length should fit the object (native), or its fragments should
//!   and end in the sequence delimiter (encapsulated), which costs at most one
//!   small read at the end of the object. When they do not, the header is still
//!   indexed (the index is for finding studies, damaged ones included) with the
//!   problem in [`Walked::pixel_data_problem`].
//! - All reads go through a [`Window`] with a byte budget, so no file makes the
//!   walk read, or hold, more than `max_header_bytes`.
//!
//! A [`Failure`] names a stage, tags, offsets and lengths: never a value (values may
//! be PHI).

use std::ops::Range;

use super::attributes::{self, Attribute};

/// The value of an undefined length.
const UNDEFINED: u32 = 0xFFFF_FFFF;
/// Sequences nested deeper than this are refused (no real header comes close).
pub const MAX_DEPTH: usize = 32;
/// A kept value longer than this is not kept, and the attribute is reported
/// invalid: no attribute naslake extracts may be this long (ST, the longest, holds
/// 1024 characters), and it bounds what a walked header holds (the kept
/// attributes times this) while it waits for a parser.
pub const MAX_KEPT_VALUE: u32 = 8 * 1024;

/// Elements with bytes that are no VR a walk names, at most.
pub const MAX_INVALID_VRS: usize = 64;

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: [Tag; 3] = [
    Tag(0x7FE0, 0x0010),
    Tag(0x7FE0, 0x0008),
    Tag(0x7FE0, 0x0009),
];
const TRANSFER_SYNTAX_UID: Tag = Tag(0x0002, 0x0010);
const MEDIA_SOP_CLASS: Tag = Tag(0x0002, 0x0002);
const MEDIA_SOP_INSTANCE: Tag = Tag(0x0002, 0x0003);

/// A data element tag (group, element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(pub u16, pub u16);

/// A tag as a reason shows it: only a tag of the standard dictionary (or an item
/// or delimiter) is printed. The "tag" a walk out of step reads is four bytes of
/// some value, which could be PHI.
impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use dicom_core::dictionary::DataDictionary;
        let known = self.0 == 0xFFFE
            || dicom_dictionary_std::StandardDataDictionary
                .by_tag(dicom_core::Tag(self.0, self.1))
                .is_some();
        if known {
            write!(f, "({:04X},{:04X})", self.0, self.1)
        } else {
            f.write_str("(a private or unknown tag)")
        }
    }
}

/// How a data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    ExplicitLittle,
    ImplicitLittle,
    ExplicitBig,
}

impl Encoding {
    fn explicit(self) -> bool {
        self != Encoding::ImplicitLittle
    }
    fn u16(self, b: &[u8]) -> u16 {
        match self {
            Encoding::ExplicitBig => u16::from_be_bytes([b[0], b[1]]),
            _ => u16::from_le_bytes([b[0], b[1]]),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        match self {
            Encoding::ExplicitBig => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }
    /// The transfer syntax UID dicom-rs decodes kept elements with.
    pub fn uid(self) -> &'static str {
        match self {
            Encoding::ExplicitLittle => "1.2.840.10008.1.2.1",
            Encoding::ImplicitLittle => "1.2.840.10008.1.2",
            Encoding::ExplicitBig => "1.2.840.10008.1.2.2",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Encoding::ExplicitLittle => "explicit VR little endian",
            Encoding::ImplicitLittle => "implicit VR little endian",
            Encoding::ExplicitBig => "explicit VR big endian",
        }
    }
}

/// The walk's steps, as the rejects table names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Telling whether the object is DICOM at all.
    Recognise,
    /// The file meta group.
    FileMeta,
    /// The data set before the pixel data.
    DataSet,
    /// The header did not end within `max_header_bytes`.
    HeaderLimit,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Recognise => "recognise",
            Stage::FileMeta => "file_meta",
            Stage::DataSet => "data_set",
            Stage::HeaderLimit => "header_limit",
        }
    }
}

/// Why an object's header could not be walked; the reason holds no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub stage: Stage,
    pub reason: String,
}

impl Failure {
    fn new(stage: Stage, reason: impl Into<String>) -> Self {
        Failure {
            stage,
            reason: reason.into(),
        }
    }
}

/// Why a [`Window`] could not give the bytes asked for.
#[derive(Debug)]
pub enum Short {
    /// The data ends at this offset.
    Ends(u64),
    /// Reading on would pass the byte budget (this many bytes).
    OverBudget(u64),
    /// Storage failed: not the file's fault, the run stops.
    Io(crate::sources::ReadError),
}

/// The bytes of an object (or of its inflated data set) as the walk asks for them.
pub trait Window {
    /// Bytes `at..at + len`; [`Short::Ends`] when the data ends before.
    fn get(&mut self, at: u64, len: usize) -> Result<&[u8], Short>;
    /// Whether at least `end` bytes exist, reading as little as possible.
    fn reaches(&mut self, end: u64) -> Result<bool, Short>;
    /// The data's size when known without reading it all.
    fn size(&self) -> Option<u64>;
}

/// What the file meta group said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Transfer Syntax UID (0002,0010), trimmed.
    pub transfer_syntax: Option<String>,
    pub media_sop_class: Option<String>,
    pub media_sop_instance: Option<String>,
}

/// A kept top-level element: where its value lies in [`Walked::kept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub attribute: &'static Attribute,
    /// Its value in `kept`.
    pub value: Range<usize>,
}

/// Top-level pixel data, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelData {
    pub tag: Tag,
    /// Encapsulated (compressed) frames: undefined length.
    pub encapsulated: bool,
    /// Offset of its element header in the data set.
    pub offset: u64,
    /// The declared length of native pixel data.
    pub length: Option<u32>,
}

/// A walked header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    /// `None` when the file has no file meta group.
    pub meta: Option<Meta>,
    /// The data set's encoding, as read (for a deflated file: once inflated).
    pub encoding: Encoding,
    /// The encoding was guessed (no file meta, or a meta with no transfer syntax,
    /// or one the data set does not read in).
    pub guessed: bool,
    /// The data set was deflated.
    pub deflated: bool,
    /// The kept elements, encoded as `encoding`, in ascending order: a data set
    /// dicom-rs can read.
    pub kept: Vec<u8>,
    pub elements: Vec<Kept>,
    /// Kept attributes whose value was too long to keep.
    pub oversized: Vec<&'static Attribute>,
    pub pixel_data: Option<PixelData>,
    /// What is wrong with the pixel data's extent, when something is (the reason
    /// names offsets and lengths, never a value).
    pub pixel_data_problem: Option<String>,
    /// Top-level elements read with bytes that are no VR where the VR belongs,
    /// in order, each once, at most [`MAX_INVALID_VRS`].
    pub invalid_vrs: Vec<Tag>,
    /// More than [`MAX_INVALID_VRS`] were: which values were not read is not
    /// known, so none may be taken as read whole.
    pub invalid_vrs_overflow: bool,
}

impl Walked {
    /// The raw value of a kept attribute.
    pub fn raw(&self, attribute: &Attribute) -> Option<&[u8]> {
        self.elements
            .iter()
            .find(|k| k.attribute.tag == attribute.tag)
            .map(|k| &self.kept[k.value.clone()])
    }
}

/// Walks an object's header; a deflated data set is inflated as far as the walk
/// reads, at most `max_inflated` bytes.
pub fn walk<W: Window>(window: &mut W, max_inflated: u64) -> Result<Walked, Outcome> {
    if window.size() == Some(0) {
        return Err(Failure::new(Stage::Recognise, "empty object (zero bytes)").into());
    }
    let dicm_at_128 = has_magic(window, 128)?;
    // Why the data set right after a DICM prefix did not read, if it did not.
    let mut after_prefix = None;
    if dicm_at_128 && !meta_follows(window, 132)? {
        // A data set right after the prefix, with no meta (pydicom reads it so),
        // or a file without preamble whose bytes spell DICM there by chance.
        match guess(window, 132, None) {
            Ok(walked) => return Ok(walked),
            Err(Outcome::Io(e)) => return Err(Outcome::Io(e)),
            Err(Outcome::Failed(f)) => after_prefix = Some(f),
        }
    }
    let magic_at = if dicm_at_128 && meta_follows(window, 132)? {
        Some(132)
    } else if has_magic(window, 0)? {
        Some(4)
    } else {
        None
    };
    let (meta, start) = match magic_at {
        Some(at) => {
            let (meta, end) = read_meta(window, at)?;
            (Some(meta), end)
        }
        // A meta group with neither preamble nor prefix still starts with group 2.
        None if starts_with_group_2(window)? => {
            let (meta, end) = read_meta(window, 0)?;
            (Some(meta), end)
        }
        None => (None, 0),
    };
    let declared = meta.as_ref().and_then(|m| m.transfer_syntax.clone());
    let mut walked = match declared.as_deref() {
        Some(DEFLATED) => {
            let mut inflated = super::window::Inflate::new(&mut *window, start, max_inflated);
            let mut walked = walk_data_set(&mut inflated, 0, Encoding::ExplicitLittle, false)?;
            walked.deflated = true;
            walked
        }
        Some(uid) => {
            let declared = encoding_of(uid);
            match walk_data_set(window, start, declared, false) {
                Ok(walked) => walked,
                // A meta that names the wrong encoding (it happens): the data set
                // is tried in the others, strictly, when not one element read.
                Err(Stop::Failed(first, 0)) => match guess(window, start, Some(declared)) {
                    Ok(walked) => walked,
                    Err(Outcome::Io(e)) => return Err(Outcome::Io(e)),
                    Err(Outcome::Failed(_)) => return Err(first.into()),
                },
                Err(e) => return Err(e.into()),
            }
        }
        None => match guess(window, start, None) {
            Ok(walked) => walked,
            // The reasons of the tries are left out: the "tags" of an object that is
            // not DICOM are its content.
            // The file said DICM: why it did not read after the prefix.
            Err(Outcome::Failed(_)) if after_prefix.is_some() => {
                return Err(after_prefix.take().expect("checked").into());
            }
            Err(Outcome::Failed(_)) if meta.is_none() => {
                return Err(Failure::new(
                    Stage::Recognise,
                    "not DICOM: no DICM prefix (at offset 128 or 0), and no data set reads in explicit VR little endian, implicit VR little endian or explicit VR big endian",
                )
                .into());
            }
            Err(e) => return Err(e),
        },
    };
    walked.meta = meta;
    Ok(walked)
}

/// The walk did not give a header.
#[derive(Debug)]
pub enum Outcome {
    /// The file is rejected, for this reason.
    Failed(Failure),
    /// Storage failed.
    Io(crate::sources::ReadError),
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Failed(f)
    }
}

/// Deflated Explicit VR Little Endian.
pub const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// The data set encoding a transfer syntax implies.
fn encoding_of(uid: &str) -> Encoding {
    match uid {
        "1.2.840.10008.1.2" => Encoding::ImplicitLittle,
        "1.2.840.10008.1.2.2" => Encoding::ExplicitBig,
        _ => Encoding::ExplicitLittle,
    }
}

fn has_magic(w: &mut impl Window, at: u64) -> Result<bool, Outcome> {
    match w.get(at, 4) {
        Ok(b) => Ok(b == b"DICM"),
        Err(Short::Ends(_)) => Ok(false),
        Err(Short::OverBudget(n)) => Err(over_budget(n).into()),
        Err(Short::Io(e)) => Err(Outcome::Io(e)),
    }
}

/// Whether a file meta element (group 0002) starts at `at`.
fn meta_follows(w: &mut impl Window, at: u64) -> Result<bool, Outcome> {
    match w.get(at, 2) {
        Ok(b) => Ok(b == [2, 0]),
        Err(Short::Ends(_)) => Ok(false),
        Err(Short::OverBudget(n)) => Err(over_budget(n).into()),
        Err(Short::Io(e)) => Err(Outcome::Io(e)),
    }
}

fn starts_with_group_2(w: &mut impl Window) -> Result<bool, Outcome> {
    match w.get(0, 6) {
        // Group 0002, and an explicit VR: the meta's own encoding.
        Ok(b) => Ok(b[0] == 2 && b[1] == 0 && is_vr(&b[4..6])),
        Err(Short::Ends(_)) => Ok(false),
        Err(Short::OverBudget(n)) => Err(over_budget(n).into()),
        Err(Short::Io(e)) => Err(Outcome::Io(e)),
    }
}

fn over_budget(limit: u64) -> Failure {
    Failure::new(
        Stage::HeaderLimit,
        format!("the header does not end within {limit} bytes read (max_header_bytes)"),
    )
}

/// The file meta group from `at`: its values naslake uses, and where it ends.
fn read_meta(w: &mut impl Window, at: u64) -> Result<(Meta, u64), Outcome> {
    let mut meta = Meta::default();
    let mut pos = at;
    let short = |s: Short, pos: u64| -> Outcome {
        match s {
            Short::Ends(n) => Failure::new(
                Stage::FileMeta,
                format!(
                    "truncated: the file meta group ends at offset {n}, inside the element at offset {pos}"
                ),
            )
            .into(),
            Short::OverBudget(n) => over_budget(n).into(),
            Short::Io(e) => Outcome::Io(e),
        }
    };
    loop {
        let head = match w.get(pos, 8) {
            Ok(b) => b,
            // A file that is only a meta group.
            Err(Short::Ends(n)) if n == pos => break,
            Err(s) => return Err(short(s, pos)),
        };
        let tag = Tag(
            u16::from_le_bytes([head[0], head[1]]),
            u16::from_le_bytes([head[2], head[3]]),
        );
        if tag.0 != 0x0002 {
            break;
        }
        let vr = [head[4], head[5]];
        if !is_vr(&vr) {
            return Err(Failure::new(
                Stage::FileMeta,
                format!("element {tag} at offset {pos} has no explicit VR (the file meta group is explicit VR little endian)"),
            )
            .into());
        }
        let (len, header) = if long_vr(vr) {
            let b = w.get(pos + 8, 4).map_err(|s| short(s, pos))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]), 12u64)
        } else {
            (u16::from_le_bytes([head[6], head[7]]) as u32, 8u64)
        };
        if len == UNDEFINED {
            return Err(Failure::new(
                Stage::FileMeta,
                format!("element {tag} at offset {pos} has an undefined length"),
            )
            .into());
        }
        let end = pos + header + len as u64;
        if !w.reaches(end).map_err(|s| short(s, pos))? {
            return Err(Failure::new(
                Stage::FileMeta,
                format!("truncated: element {tag} at offset {pos} declares a length past the end of the object"),
            )
            .into());
        }
        let slot = match tag {
            TRANSFER_SYNTAX_UID => Some(&mut meta.transfer_syntax),
            MEDIA_SOP_CLASS => Some(&mut meta.media_sop_class),
            MEDIA_SOP_INSTANCE => Some(&mut meta.media_sop_instance),
            _ => None,
        };
        if let Some(slot) = slot {
            // A UID is at most 64 characters.
            if len > 64 {
                return Err(Failure::new(
                    Stage::FileMeta,
                    format!("element {tag} declares more than the 64 bytes a UID has at most"),
                )
                .into());
            }
            let value = w
                .get(pos + header, len as usize)
                .map_err(|s| short(s, pos))?;
            *slot = uid_text(value);
        }
        pos = end;
    }
    Ok((meta, pos))
}

/// A UID's text: printable ASCII, padding removed; `None` when empty or not a UID.
fn uid_text(value: &[u8]) -> Option<String> {
    let trimmed = value
        .iter()
        .rposition(|&b| b != 0 && b != b' ')
        .map_or(&value[..0], |end| &value[..=end]);
    let trimmed = match trimmed.iter().position(|&b| b != b' ') {
        Some(start) => &trimmed[start..],
        None => return None,
    };
    trimmed
        .iter()
        .all(|b| b.is_ascii_digit() || *b == b'.')
        .then(|| String::from_utf8_lossy(trimmed).into_owned())
}

/// The data set tried in each encoding, the likeliest first (from the first
/// element's bytes), skipping `tried`; the first that reads whole wins.
fn guess(
    w: &mut (impl Window + ?Sized),
    start: u64,
    tried: Option<Encoding>,
) -> Result<Walked, Outcome> {
    let mut order = vec![
        Encoding::ExplicitLittle,
        Encoding::ImplicitLittle,
        Encoding::ExplicitBig,
    ];
    if let Ok(b) = w.get(start, 6) {
        let explicit = is_vr(&b[4..6]);
        let little = u16::from_le_bytes([b[0], b[1]]) <= u16::from_be_bytes([b[0], b[1]]);
        let first = match (explicit, little) {
            (true, false) => Encoding::ExplicitBig,
            (false, _) => Encoding::ImplicitLittle,
            (true, true) => Encoding::ExplicitLittle,
        };
        order.retain(|e| *e != first);
        order.insert(0, first);
    }
    order.retain(|e| Some(*e) != tried);
    let mut first_failure = None;
    for encoding in order {
        match walk_data_set(w, start, encoding, true) {
            Ok(mut walked) => {
                walked.guessed = true;
                return Ok(walked);
            }
            Err(Stop::Io(e)) => return Err(Outcome::Io(e)),
            Err(Stop::Failed(f, _)) => {
                first_failure.get_or_insert(f);
            }
        }
    }
    Err(first_failure
        .unwrap_or_else(|| Failure::new(Stage::Recognise, "no encoding left to try"))
        .into())
}

/// How a data set walk stopped: a failure (with the number of top-level elements
/// read before it), or storage.
enum Stop {
    Failed(Failure, usize),
    Io(crate::sources::ReadError),
}

impl From<Stop> for Outcome {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Failed(f, _) => Outcome::Failed(f),
            Stop::Io(e) => Outcome::Io(e),
        }
    }
}

/// One element's header.
#[derive(Debug, Clone, Copy)]
struct Header {
    tag: Tag,
    /// `None` for items and delimiters, and in implicit VR.
    vr: Option<[u8; 2]>,
    len: u32,
    size: u64,
    /// Its VR bytes were no VR (read leniently).
    invalid_vr: bool,
}

/// What the walk is inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// An undefined-length sequence: items until its delimiter.
    Sequence(Encoding),
    /// An undefined-length item: elements until its delimiter.
    Item(Encoding),
}

/// The bytes a header's kept elements usually take (their values and headers).
const KEPT_BYTES_HINT: usize = 2048;

/// Walks a data set from `start` in `encoding`. `strict` (a guessed encoding)
/// also wants ascending top-level tags that start in a plausible group.
fn walk_data_set(
    w: &mut (impl Window + ?Sized),
    start: u64,
    encoding: Encoding,
    strict: bool,
) -> Result<Walked, Stop> {
    let mut walked = Walked {
        meta: None,
        encoding,
        guessed: false,
        deflated: false,
        // Sized for a typical header's kept elements, which grown from empty
        // were reallocated about a dozen times per file.
        kept: Vec::with_capacity(KEPT_BYTES_HINT),
        elements: Vec::with_capacity(attributes::ALL.len()),
        oversized: Vec::new(),
        pixel_data: None,
        pixel_data_problem: None,
        invalid_vrs: Vec::new(),
        invalid_vrs_overflow: false,
    };
    let mut top_level = 0usize;
    let mut last_top: Option<Tag> = None;
    let mut stack: Vec<Frame> = Vec::new();
    let mut kept_tags = attributes::Cursor::default();
    let mut pos = start;
    loop {
        let fail =
            |stage: Stage, reason: String, n: usize| Stop::Failed(Failure::new(stage, reason), n);
        let frame = stack.last().copied();
        let enc = match frame {
            None => encoding,
            Some(Frame::Sequence(e) | Frame::Item(e)) => e,
        };
        // As pydicom, the first element decides whether the declared encoding holds
        // (a meta naming the wrong one is common); leniency starts after it.
        let h = match header(w, pos, enc, !strict && top_level > 0) {
            Ok(h) => h,
            Err(HeaderError::Short(Short::Ends(n))) if n == pos && frame.is_none() => {
                // The data set ends with no pixel data.
                if strict && top_level == 0 {
                    return Err(fail(Stage::Recognise, "no data element".into(), 0));
                }
                return Ok(walked);
            }
            Err(HeaderError::Short(Short::Ends(n))) => {
                let inside = match frame {
                    None => "an element header".to_string(),
                    Some(_) => format!(
                        "a sequence opened before offset {pos}, {} deep",
                        stack.len()
                    ),
                };
                return Err(fail(
                    Stage::DataSet,
                    format!("truncated: the data ends at offset {n}, inside {inside}"),
                    top_level,
                ));
            }
            Err(HeaderError::Short(Short::OverBudget(n))) => {
                return Err(Stop::Failed(over_budget(n), top_level));
            }
            Err(HeaderError::Short(Short::Io(e))) => return Err(Stop::Io(e)),
            Err(HeaderError::BadVr(tag)) => {
                return Err(fail(
                    Stage::DataSet,
                    format!(
                        "element {tag} at offset {pos} has no valid VR ({})",
                        enc.name()
                    ),
                    top_level,
                ));
            }
        };
        let tag = h.tag;
        let value_at = pos + h.size;
        // Top-level ones only (the values naslake keeps are there), each once, and
        // at most MAX_INVALID_VRS: a header of nothing else stays small.
        if h.invalid_vr && frame.is_none() && !walked.invalid_vrs.contains(&tag) {
            if walked.invalid_vrs.len() < MAX_INVALID_VRS {
                walked.invalid_vrs.push(tag);
            } else {
                walked.invalid_vrs_overflow = true;
            }
        }
        match frame {
            Some(Frame::Sequence(e)) => {
                match tag {
                    ITEM if h.len == UNDEFINED => {
                        push(&mut stack, Frame::Item(e), pos, top_level)?;
                        pos = value_at;
                    }
                    ITEM => pos = step_over(w, pos, value_at, h, top_level)?,
                    SEQUENCE_END => {
                        stack.pop();
                        pos = value_at;
                    }
                    _ => {
                        return Err(fail(
                            Stage::DataSet,
                            format!("{tag} at offset {pos} where a sequence item was expected"),
                            top_level,
                        ));
                    }
                }
                continue;
            }
            Some(Frame::Item(_)) if tag == ITEM_END => {
                stack.pop();
                pos = value_at;
                continue;
            }
            _ => {}
        }
        if tag.0 == 0xFFFE {
            return Err(fail(
                Stage::DataSet,
                format!("{tag} at offset {pos} outside a sequence"),
                top_level,
            ));
        }
        if frame.is_none() {
            if strict {
                let plausible = match last_top {
                    None => tag.0 <= 0x0010,
                    Some(last) => tag > last,
                };
                if !plausible {
                    return Err(fail(
                        Stage::Recognise,
                        format!("element {tag} at offset {pos} is out of order"),
                        top_level,
                    ));
                }
            }
            last_top = Some(tag);
            if PIXEL_DATA.contains(&tag) {
                // A deflated data set's pixel data would be inflated to be measured.
                if w.size().is_some() {
                    walked.pixel_data_problem = check_pixel_data(w, pos, h, enc, top_level)?;
                }
                walked.pixel_data = Some(PixelData {
                    tag,
                    encapsulated: h.len == UNDEFINED,
                    offset: pos,
                    length: (h.len != UNDEFINED).then_some(h.len),
                });
                return Ok(walked);
            }
            top_level += 1;
        }
        if h.len == UNDEFINED {
            let inner = match h.vr {
                Some(vr) if &vr == b"SQ" => enc,
                // CP-246: the items of an undefined-length UN are implicit VR LE.
                Some(vr) if &vr == b"UN" => Encoding::ImplicitLittle,
                // Encapsulated pixel data of an icon image: items of fragments.
                Some(vr) if &vr == b"OB" || &vr == b"OW" => enc,
                None => enc,
                Some(vr) => {
                    return Err(fail(
                        Stage::DataSet,
                        format!(
                            "element {tag} at offset {pos} has an undefined length, which VR {} cannot have",
                            String::from_utf8_lossy(&vr)
                        ),
                        top_level,
                    ));
                }
            };
            push(&mut stack, Frame::Sequence(inner), pos, top_level)?;
            pos = value_at;
            continue;
        }
        let end = step_over(w, pos, value_at, h, top_level)?;
        // A value read under an invalid VR is not kept: dicom-rs would read its
        // header as the file wrote it.
        let kept = (frame.is_none() && !h.invalid_vr)
            .then(|| kept_tags.find(tag))
            .flatten();
        match kept {
            Some(attribute) if h.len > MAX_KEPT_VALUE => walked.oversized.push(attribute),
            Some(attribute) => {
                let bytes = w
                    .get(pos, (end - pos) as usize)
                    .map_err(|s| short_stop(s, pos, top_level))?;
                let at = walked.kept.len();
                walked.kept.extend_from_slice(bytes);
                walked.elements.push(Kept {
                    attribute,
                    value: at + h.size as usize..walked.kept.len(),
                });
            }
            None => {}
        }
        pos = end;
    }
}

fn push(stack: &mut Vec<Frame>, frame: Frame, pos: u64, top_level: usize) -> Result<(), Stop> {
    if stack.len() >= MAX_DEPTH * 2 {
        return Err(Stop::Failed(
            Failure::new(
                Stage::DataSet,
                format!("sequences nested more than {MAX_DEPTH} deep at offset {pos}"),
            ),
            top_level,
        ));
    }
    stack.push(frame);
    Ok(())
}

/// The end of a defined-length element, checked to exist.
fn step_over(
    w: &mut (impl Window + ?Sized),
    pos: u64,
    value_at: u64,
    h: Header,
    top_level: usize,
) -> Result<u64, Stop> {
    let end = value_at + h.len as u64;
    match w.reaches(end) {
        Ok(true) => Ok(end),
        Ok(false) => Err(Stop::Failed(
            Failure::new(
                Stage::DataSet,
                format!(
                    "truncated: element {} at offset {pos} declares a length past the end of the data{}",
                    h.tag,
                    w.size()
                        .map(|n| format!(" ({} bytes remain)", n.saturating_sub(value_at)))
                        .unwrap_or_default()
                ),
            ),
            top_level,
        )),
        Err(s) => Err(short_stop(s, pos, top_level)),
    }
}

fn short_stop(s: Short, pos: u64, top_level: usize) -> Stop {
    match s {
        Short::Ends(n) => Stop::Failed(
            Failure::new(
                Stage::DataSet,
                format!(
                    "truncated: the data ends at offset {n}, inside the element at offset {pos}"
                ),
            ),
            top_level,
        ),
        Short::OverBudget(n) => Stop::Failed(over_budget(n), top_level),
        Short::Io(e) => Stop::Io(e),
    }
}

/// What is wrong with the pixel data's extent, if anything: native, its declared
/// length must fit the object; encapsulated, its fragments must, and the
/// fragment sequence must end in its delimiter. Only storage stops the walk.
fn check_pixel_data(
    w: &mut (impl Window + ?Sized),
    pos: u64,
    h: Header,
    enc: Encoding,
    top_level: usize,
) -> Result<Option<String>, Stop> {
    let value_at = pos + h.size;
    let remain = w
        .size()
        .map(|n| format!(" ({} bytes remain)", n.saturating_sub(value_at)))
        .unwrap_or_default();
    let io = |s: Short, at: u64| match s {
        Short::Io(e) => Stop::Io(e),
        other => short_stop(other, at, top_level),
    };
    if h.len != UNDEFINED {
        let fits = w.reaches(value_at + h.len as u64).map_err(|s| io(s, pos))?;
        return Ok((!fits).then(|| {
            format!(
                "truncated: pixel data {} declares {} bytes, past the end of the object{}",
                h.tag, h.len, remain
            )
        }));
    }
    // The common case costs one small read: the object ends in the delimiter.
    if let Some(size) = w.size().filter(|size| *size >= value_at + 8) {
        let tail = w.get(size - 8, 8).map_err(|s| io(s, pos))?;
        if item_header(tail, enc) == Some((SEQUENCE_END, 0)) {
            return Ok(None);
        }
    }
    // Otherwise the fragments are walked to their delimiter (within the budget).
    let mut at = value_at;
    loop {
        let b = match w.get(at, 8) {
            Ok(b) => b,
            Err(Short::Ends(_)) => {
                return Ok(Some(format!(
                    "truncated: the encapsulated pixel data at offset {pos} ends before its sequence delimiter"
                )));
            }
            // Verified as far as the budget allows: the fragments are not the header.
            Err(Short::OverBudget(_)) => return Ok(None),
            Err(s) => return Err(io(s, at)),
        };
        match item_header(b, enc) {
            Some((SEQUENCE_END, _)) => return Ok(None),
            Some((ITEM, len)) if len != UNDEFINED => {
                let end = at + 8 + len as u64;
                if !w.reaches(end).map_err(|s| io(s, at))? {
                    return Ok(Some(format!(
                        "truncated: a pixel data fragment at offset {at} declares {len} bytes, past the end of the object"
                    )));
                }
                at = end;
            }
            _ => {
                return Ok(Some(format!(
                    "no fragment item at offset {at} in the encapsulated pixel data"
                )));
            }
        }
    }
}

fn item_header(b: &[u8], enc: Encoding) -> Option<(Tag, u32)> {
    let tag = Tag(enc.u16(&b[0..2]), enc.u16(&b[2..4]));
    (tag.0 == 0xFFFE).then(|| (tag, enc.u32(&b[4..8])))
}

enum HeaderError {
    Short(Short),
    BadVr(Tag),
}

/// Reads the element header at `pos`. `lenient`: bytes that are no VR are read
/// as pydicom reads them (see the module's rules) rather than refused.
fn header(
    w: &mut (impl Window + ?Sized),
    pos: u64,
    enc: Encoding,
    lenient: bool,
) -> Result<Header, HeaderError> {
    let b = w.get(pos, 8).map_err(HeaderError::Short)?;
    let tag = Tag(enc.u16(&b[0..2]), enc.u16(&b[2..4]));
    if tag.0 == 0xFFFE || !enc.explicit() {
        return Ok(Header {
            tag,
            vr: None,
            len: enc.u32(&b[4..8]),
            size: 8,
            invalid_vr: false,
        });
    }
    let vr = [b[4], b[5]];
    if !is_vr(&vr) {
        if !lenient {
            return Err(HeaderError::BadVr(tag));
        }
        let letters = b"AA".as_slice() <= vr.as_slice() && vr.as_slice() <= b"ZZ".as_slice();
        let (short, long) = (enc.u16(&b[6..8]) as u32, enc.u32(&b[4..8]));
        let len = if letters {
            short
        } else if long == UNDEFINED {
            long
        } else {
            // pydicom would take the rest of the file as this value; a 4-byte
            // length that runs past the end is read as the 2-byte one instead.
            match w.reaches(pos + 8 + long as u64) {
                Ok(true) => long,
                Ok(false) | Err(Short::OverBudget(_)) => short,
                Err(e) => return Err(HeaderError::Short(e)),
            }
        };
        return Ok(Header {
            tag,
            vr: None,
            len,
            size: 8,
            invalid_vr: true,
        });
    }
    if long_vr(vr) {
        let short_len = [b[6], b[7]];
        let b = w.get(pos + 8, 4).map_err(HeaderError::Short)?;
        // The two bytes after a long VR are reserved (zero).
        if short_len != [0, 0] {
            return Err(HeaderError::BadVr(tag));
        }
        return Ok(Header {
            tag,
            vr: Some(vr),
            len: enc.u32(b),
            size: 12,
            invalid_vr: false,
        });
    }
    Ok(Header {
        tag,
        vr: Some(vr),
        len: enc.u16(&b[6..8]) as u32,
        size: 8,
        invalid_vr: false,
    })
}

/// The VRs of PS3.5 table 6.2-1.
const VRS: [&[u8; 2]; 34] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
    b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
    b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
];

/// [`VRS`] as a bit table: bit `s - b'A'` of row `f - b'A'` is set when `[f, s]`
/// is a VR (every VR is two capital letters).
const VR_BITS: [u32; 26] = {
    let mut rows = [0u32; 26];
    let mut i = 0;
    while i < VRS.len() {
        let [f, s] = *VRS[i];
        rows[(f - b'A') as usize] |= 1 << (s - b'A');
        i += 1;
    }
    rows
};

fn is_vr(b: &[u8]) -> bool {
    // Asked of every element of a header, so a table lookup: a binary search of
    // the 34 was 6.6% of a DICOM run's samples, each step a dependent load.
    match b {
        &[f, s] => {
            let s = s.wrapping_sub(b'A');
            s < 26
                && VR_BITS
                    .get(usize::from(f.wrapping_sub(b'A')))
                    .is_some_and(|row| (row >> s) & 1 == 1)
        }
        _ => false,
    }
}

/// VRs with a reserved field and a 32-bit length (PS3.5 7.1.2).
fn long_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
