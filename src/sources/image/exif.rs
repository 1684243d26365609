//! The EXIF fields a reviewer filters on: capture time, camera, orientation. Read
//! by kamadak-exif from the file's own container (JPEG APP1, PNG eXIf, WebP EXIF,
//! TIFF IFDs). An EXIF block that does not read is a note on the row
//! (`exif_error`), never a reject: the pixels are still worth indexing.

use chrono::{NaiveDate, NaiveDateTime};
use exif::{In, Reader, Tag, Value};

use super::format::Format;

/// What the EXIF block says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exif {
    pub captured: Option<Captured>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub orientation: Option<i32>,
    pub error: Option<String>,
}

/// A capture time: the camera's wall clock and, when EXIF gives it, its offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Captured {
    pub local: NaiveDateTime,
    pub offset_minutes: Option<i32>,
}

impl Captured {
    /// Microseconds since the epoch: UTC when the offset is known, else the wall
    /// clock as written.
    pub fn micros(&self) -> i64 {
        let utc = self.local.and_utc().timestamp_micros();
        utc - i64::from(self.offset_minutes.unwrap_or(0)) * 60_000_000
    }
}

/// Longest text kept of Make and Model.
const MAX_TEXT: usize = 128;

/// The EXIF fields of a file in `format` (BMP has no EXIF block).
pub fn read(format: Format, bytes: &[u8]) -> Exif {
    if format == Format::Bmp {
        return Exif::default();
    }
    let parsed = match jpeg_exif_segment(bytes) {
        Some(segment) => segment.and_then(|s| Reader::new().read_raw(s.to_vec())),
        None => Reader::new().read_from_container(&mut std::io::Cursor::new(bytes)),
    };
    fields(parsed)
}

/// The fields of what kamadak-exif parsed (or why it did not).
fn fields(parsed: Result<exif::Exif, exif::Error>) -> Exif {
    let exif = match parsed {
        Ok(e) => e,
        Err(exif::Error::NotFound(_)) | Err(exif::Error::BlankValue(_)) => return Exif::default(),
        Err(e) => {
            return Exif {
                error: Some(format!("EXIF: {e}")),
                ..Exif::default()
            };
        }
    };
    let field = |tag| exif.get_field(tag, In::PRIMARY);
    let ascii = |tag| match field(tag).map(|f| &f.value) {
        Some(Value::Ascii(parts)) => parts.first().map(|v| v.as_slice()),
        _ => None,
    };
    let text = |tag| {
        ascii(tag).and_then(|v| {
            let s: String = String::from_utf8_lossy(v)
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_TEXT)
                .collect();
            let s = s.trim().to_string();
            (!s.is_empty()).then_some(s)
        })
    };
    let captured = [
        (
            Tag::DateTimeOriginal,
            Tag::OffsetTimeOriginal,
            Tag::SubSecTimeOriginal,
        ),
        (Tag::DateTime, Tag::OffsetTime, Tag::SubSecTime),
    ]
    .into_iter()
    .find_map(|(time, offset, subsec)| {
        let mut dt = exif::DateTime::from_ascii(ascii(time)?).ok()?;
        // A malformed subsecond or offset field leaves the whole seconds, or
        // the wall-clock time.
        if let Some(s) = ascii(subsec)
            && dt.parse_subsec(s).is_err()
        {
            dt.nanosecond = None;
        }
        if let Some(o) = ascii(offset)
            && dt.parse_offset(o).is_err()
        {
            dt.offset = None;
        }
        let local =
            NaiveDate::from_ymd_opt(i32::from(dt.year), u32::from(dt.month), u32::from(dt.day))?
                .and_hms_nano_opt(
                    u32::from(dt.hour),
                    u32::from(dt.minute),
                    u32::from(dt.second),
                    dt.nanosecond.unwrap_or(0),
                )?;
        let offset_minutes = dt.offset.map(i32::from).filter(|m| m.abs() <= 18 * 60);
        Some(Captured {
            local,
            offset_minutes,
        })
    });
    let orientation = field(Tag::Orientation)
        .and_then(|f| f.value.get_uint(0))
        .and_then(|v| i32::try_from(v).ok())
        .filter(|v| (1..=8).contains(v));
    Exif {
        captured,
        make: text(Tag::Make),
        model: text(Tag::Model),
        orientation,
        error: None,
    }
}

/// The first byte of a JPEG marker; the codes this walk treats apart.
const MARKER: u8 = 0xFF;
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const APP1: u8 = 0xE1;
/// What an EXIF APP1 segment starts with.
const EXIF_ID: &[u8] = b"Exif\0\0";

/// For a JPEG (the bytes start with SOI): the payload of its EXIF APP1 segment,
/// found by kamadak-exif's own rules over the bytes in place, where its
/// container reader copies every byte it passes (a JPEG without EXIF, most
/// inspection photos, is read to its end: 2% of the image job's time).
/// `None` for any other container. The rules, and the errors they end in, are
/// kamadak-exif 0.6's `jpeg::get_exif_attr`:
///
/// - after SOI, skip to the byte after the next `FF` (scan data is skipped
///   this way, one `FF` at a time), then past any fill `FF`s to the code;
/// - stuffing (`00`), TEM and RST0–7 are not segments: skip on;
/// - SOI again is an error, EOI ends the search with nothing found;
/// - any other code opens a segment of the big-endian length that follows
///   (counting its own two bytes), which is skipped whole unless it is APP1
///   starting with `Exif\0\0`;
/// - bytes that end inside any of this make a broken file.
fn jpeg_exif_segment(bytes: &[u8]) -> Option<Result<&[u8], exif::Error>> {
    if !bytes.starts_with(&[MARKER, SOI]) {
        return None;
    }
    let broken = || exif::Error::InvalidFormat("Broken JPEG file");
    let mut at = 2;
    Some(loop {
        at = match memchr::memchr(MARKER, &bytes[at..]) {
            Some(i) => at + i + 1,
            None => break Err(broken()),
        };
        let Some(code_at) = bytes[at..].iter().position(|b| *b != MARKER) else {
            break Err(broken());
        };
        let code = bytes[at + code_at];
        at += code_at + 1;
        match code {
            0x00 | 0x01 | 0xD0..=0xD7 => continue,
            SOI => break Err(exif::Error::InvalidFormat("Unexpected SOI")),
            EOI => break Err(exif::Error::NotFound("JPEG")),
            _ => {}
        }
        let Some(length) = bytes.get(at..at + 2) else {
            break Err(broken());
        };
        let Some(length) = u16::from_be_bytes([length[0], length[1]]).checked_sub(2) else {
            break Err(exif::Error::InvalidFormat("Invalid segment length"));
        };
        at += 2;
        let Some(segment) = bytes.get(at..at + usize::from(length)) else {
            break Err(broken());
        };
        at += usize::from(length);
        if code == APP1 && segment.starts_with(EXIF_ID) {
            break Ok(&segment[EXIF_ID.len()..]);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_exif_has_no_fields_and_no_error() {
        assert_eq!(read(Format::Bmp, b"BM"), Exif::default());
    }

    /// A little-endian TIFF block with one IFD entry: Make.
    fn tiff_with_make(make: &str) -> Vec<u8> {
        let text = [make.as_bytes(), b"\0"].concat();
        let count = u32::try_from(text.len()).unwrap();
        let mut t = b"II\x2A\0\x08\0\0\0".to_vec();
        t.extend_from_slice(&1u16.to_le_bytes());
        t.extend_from_slice(&0x010Fu16.to_le_bytes()); // Make
        t.extend_from_slice(&2u16.to_le_bytes()); // ASCII
        t.extend_from_slice(&count.to_le_bytes());
        if text.len() <= 4 {
            t.extend_from_slice(&text);
            t.resize(t.len() + 4 - text.len(), 0);
            t.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
        } else {
            t.extend_from_slice(&26u32.to_le_bytes()); // the text, after the IFD
            t.extend_from_slice(&0u32.to_le_bytes());
            t.extend_from_slice(&text);
        }
        t
    }

    fn segment(code: u8, payload: &[u8]) -> Vec<u8> {
        let length = u16::try_from(payload.len() + 2).unwrap().to_be_bytes();
        [&[MARKER, code][..], &length, payload].concat()
    }

    #[test]
    fn a_jpeg_s_exif_segment_is_read_where_it_is() {
        let app1 = segment(APP1, &[EXIF_ID, &tiff_with_make("Inspect Co")].concat());
        let app0 = segment(0xE0, b"JFIF\0\x01\x02");
        let scan = [
            &segment(0xDA, &[1, 2, 3])[..],
            &[7, 0xFF, 0, 9, 0xFF, 0xD3, 4],
        ]
        .concat();
        let eoi = [MARKER, EOI];
        let jpeg = |parts: &[&[u8]]| [&[MARKER, SOI][..], &parts.concat()].concat();
        let make = |bytes: &[u8]| read(Format::Jpeg, bytes).make;
        assert_eq!(
            make(&jpeg(&[&app0, &app1, &scan, &eoi])).as_deref(),
            Some("Inspect Co")
        );
        assert_eq!(
            make(&jpeg(&[&app0, &scan, &app1, &eoi])).as_deref(),
            Some("Inspect Co"),
            "after the scan data, as kamadak-exif finds it"
        );
        assert_eq!(
            read(Format::Jpeg, &jpeg(&[&app0, &scan, &eoi])),
            Exif::default()
        );
        let cut = jpeg(&[&app0, &scan]);
        assert_eq!(
            read(Format::Jpeg, &cut).error.as_deref(),
            Some("EXIF: Broken JPEG file")
        );
    }

    #[test]
    fn each_way_the_walk_ends() {
        let error = |bytes: &[u8]| read(Format::Jpeg, bytes).error;
        let broken = Some("EXIF: Broken JPEG file".to_string());
        assert_eq!(
            error(&[MARKER, SOI, 1, 2, MARKER]),
            broken,
            "the file ends after FF"
        );
        assert_eq!(
            error(&[MARKER, SOI, MARKER, 0xE0, 0]),
            broken,
            "inside a length"
        );
        assert_eq!(
            error(&[MARKER, SOI, MARKER, 0xE0, 0, 9, 1]),
            broken,
            "inside a segment"
        );
        for short in [0, 1] {
            assert_eq!(
                error(&[MARKER, SOI, MARKER, 0xE0, 0, short]).as_deref(),
                Some("EXIF: Invalid segment length")
            );
        }
        assert_eq!(
            error(&[MARKER, SOI, MARKER, MARKER, SOI]).as_deref(),
            Some("EXIF: Unexpected SOI")
        );
        assert_eq!(
            read(
                Format::Jpeg,
                &[MARKER, SOI, MARKER, 0xE0, 0, 2, MARKER, EOI]
            ),
            Exif::default()
        );
        assert!(
            jpeg_exif_segment(b"II*\0").is_none(),
            "not a JPEG: left to the container reader"
        );
    }

    /// One piece of a JPEG-like byte string.
    fn piece() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..24),
            proptest::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 0..12),
            // Scan-sized data, across the container reader's first 4096 bytes.
            proptest::collection::vec(prop_oneof![Just(0xFFu8), any::<u8>()], 4000..5000),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..16))
                .prop_map(|(code, payload)| segment(code, &payload)),
            "[ -~]{0,12}"
                .prop_map(|make| segment(APP1, &[EXIF_ID, &tiff_with_make(&make)].concat())),
            proptest::collection::vec(any::<u8>(), 0..8)
                .prop_map(|junk| segment(APP1, &[EXIF_ID, &junk].concat())),
            // A length too short to count itself, or just its own two bytes.
            (any::<u8>(), 0u8..=3).prop_map(|(code, length)| vec![MARKER, code, 0, length]),
            (any::<u8>(), any::<u8>(), any::<u8>())
                .prop_map(|(code, a, b)| vec![MARKER, code, a, b]),
            prop_oneof![Just(0x00u8), Just(0x01), 0xD0u8..=0xD7, Just(MARKER)]
                .prop_map(|code| vec![MARKER, code]),
            Just(vec![MARKER, EOI]),
            Just(vec![MARKER, SOI]),
        ]
    }

    proptest::proptest! {
        /// The walk over the bytes in place finds what kamadak-exif's container
        /// reader finds, and fails where and how it fails, wherever the file
        /// is cut.
        #[test]
        fn the_jpeg_walk_agrees_with_kamadak_exif(
            pieces in proptest::collection::vec(piece(), 0..10),
            cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
        ) {
            let mut bytes = [&[MARKER, SOI][..], &pieces.concat()].concat();
            if let Some(cut) = cut {
                bytes.truncate(2 + cut.index(bytes.len() - 1));
            }
            proptest::prop_assert!(jpeg_exif_segment(&bytes).is_some());
            let reference = fields(Reader::new().read_from_container(&mut std::io::Cursor::new(&bytes)));
            proptest::prop_assert_eq!(read(Format::Jpeg, &bytes), reference);
        }
    }

    #[test]
    fn utc_subtracts_the_offset() {
        let local = NaiveDate::from_ymd_opt(2024, 3, 1)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap();
        let c = Captured {
            local,
            offset_minutes: Some(9 * 60),
        };
        assert_eq!(
            c.micros(),
            local.and_utc().timestamp_micros() - 9 * 3_600_000_000
        );
    }
}
