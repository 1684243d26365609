//! The features of a TIFF that the decoder refuses, in words, so that its reject
//! says what it holds ("YCbCr", "signed 16-bit samples", "CCITT Huffman") rather
//! than the decoder's internal colour type. Read from its first directory's
//! tags with the `tiff` crate the decoder uses, nothing decoded.

use std::io::Cursor;

use tiff::decoder::Decoder;
use tiff::tags::Tag;

/// What makes this TIFF one the decoder does not read, as far as its tags tell;
/// `None` when they tell nothing unusual (the decoder's own words then stand).
pub fn unsupported_features(bytes: &[u8]) -> Option<String> {
    let mut d = Decoder::new(Cursor::new(bytes)).ok()?;
    let mut tag = |t: Tag| d.find_tag_unsigned_vec::<u32>(t).ok().flatten();
    let photometric = tag(Tag::PhotometricInterpretation).and_then(|v| v.first().copied());
    let bits = tag(Tag::BitsPerSample).unwrap_or_default();
    let format = tag(Tag::SampleFormat)
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let compression = tag(Tag::Compression)
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let samples = tag(Tag::SamplesPerPixel)
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let mut found = Vec::new();
    match photometric {
        Some(3) => found.push("a palette (photometric interpretation 3)".to_string()),
        Some(6) => found.push("YCbCr (photometric interpretation 6)".to_string()),
        Some(p @ (4 | 8 | 9 | 10 | 32844 | 32845)) => {
            found.push(format!("photometric interpretation {p}"))
        }
        Some(0 | 1) if samples == 2 => found.push("gray with alpha (2 samples)".to_string()),
        _ => {}
    }
    let width = bits.first().copied().unwrap_or(1);
    let kind = match format {
        2 => Some("signed integer"),
        3 => Some("floating-point"),
        5 | 6 => Some("complex"),
        _ => None,
    };
    match (kind, width) {
        (Some(kind), w) => found.push(format!("{w}-bit {kind} samples")),
        (None, 1 | 8 | 16) => {}
        (None, w) => found.push(format!("{w}-bit samples")),
    }
    match compression {
        2 => found.push("CCITT modified Huffman compression (2)".to_string()),
        3 => found.push("CCITT Group 3 fax compression (3)".to_string()),
        _ => {}
    }
    (!found.is_empty()).then(|| format!("TIFF with {}", found.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-directory little-endian TIFF with these SHORT tags (value in place).
    fn tiff(tags: &[(u16, u16)]) -> Vec<u8> {
        let mut out = b"II*\0".to_vec();
        out.extend(8u32.to_le_bytes());
        out.extend((tags.len() as u16).to_le_bytes());
        let mut sorted = tags.to_vec();
        sorted.sort();
        for (t, v) in sorted {
            out.extend(t.to_le_bytes());
            out.extend(3u16.to_le_bytes());
            out.extend(1u32.to_le_bytes());
            out.extend(u32::from(v).to_le_bytes());
        }
        out.extend(0u32.to_le_bytes());
        out
    }

    #[test]
    fn the_reason_names_what_the_tags_say() {
        let base = [(256, 4), (257, 4), (273, 8), (279, 16)];
        let with = |extra: &[(u16, u16)]| {
            let mut t = base.to_vec();
            t.extend_from_slice(extra);
            unsupported_features(&tiff(&t))
        };
        let ycbcr = with(&[(262, 6), (258, 8), (277, 3)]).unwrap();
        assert!(ycbcr.contains("YCbCr"), "{ycbcr}");
        let signed = with(&[(262, 1), (258, 16), (339, 2)]).unwrap();
        assert!(signed.contains("16-bit signed integer samples"), "{signed}");
        let twelve = with(&[(262, 1), (258, 12)]).unwrap();
        assert!(twelve.contains("12-bit samples"), "{twelve}");
        let huffman = with(&[(262, 0), (258, 1), (259, 2)]).unwrap();
        assert!(huffman.contains("Huffman"), "{huffman}");
        assert_eq!(with(&[(262, 2), (258, 8), (277, 3)]), None);
        assert_eq!(unsupported_features(b"not a tiff"), None);
    }
}
