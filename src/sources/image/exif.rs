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
    let parsed = Reader::new().read_from_container(&mut std::io::Cursor::new(bytes));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_exif_has_no_fields_and_no_error() {
        assert_eq!(read(Format::Bmp, b"BM"), Exif::default());
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
