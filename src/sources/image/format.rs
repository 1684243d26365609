//! Which format a file is in, by its magic bytes, and which one its key's suffix
//! claims. The bytes decide; the suffix is only compared with them.

/// The formats the image source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Tiff,
    Bmp,
    WebP,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::WebP => "webp",
        }
    }

    /// The format whose magic bytes `head` starts with (JPEG SOI and a marker;
    /// the PNG signature; TIFF and BigTIFF byte-order marks; `BM`; RIFF…WEBP).
    pub fn sniff(head: &[u8]) -> Option<Format> {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(Format::Png),
            [b'I', b'I', 42 | 43, 0, ..] | [b'M', b'M', 0, 42 | 43, ..] => Some(Format::Tiff),
            [b'B', b'M', ..] if head.len() >= 26 => Some(Format::Bmp),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(Format::WebP),
            _ => None,
        }
    }

    /// The format a key's suffix names, compared case-insensitively.
    pub fn of_suffix(key: &str) -> Option<Format> {
        let ext = key.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            // MPO (multi-picture, as stereo and some inspection cameras write):
            // its first picture is a JPEG, which is what is indexed.
            "jpg" | "jpeg" | "jpe" | "jfif" | "mpo" => Format::Jpeg,
            "png" => Format::Png,
            "tif" | "tiff" => Format::Tiff,
            "bmp" | "dib" => Format::Bmp,
            "webp" => Format::WebP,
            _ => return None,
        })
    }
}

/// The suffixes read when a spec names none.
pub const SUFFIXES: &[&str] = &[
    ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo", ".png", ".tif", ".tiff", ".bmp", ".dib", ".webp",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide() {
        assert_eq!(Format::sniff(b"\xFF\xD8\xFF\xE0rest"), Some(Format::Jpeg));
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(Format::sniff(b"II*\0...."), Some(Format::Tiff));
        assert_eq!(Format::sniff(b"MM\0*...."), Some(Format::Tiff));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(Format::sniff(b"BM"), None, "too short for a BMP header");
        assert_eq!(Format::sniff(b"hello, this is text"), None);
        assert_eq!(Format::sniff(b""), None);
    }

    #[test]
    fn every_default_suffix_names_a_format() {
        for s in SUFFIXES {
            assert!(
                Format::of_suffix(&format!("a/b{}", s.to_uppercase())).is_some(),
                "{s}"
            );
        }
        assert_eq!(Format::of_suffix("a.d/file"), None);
        assert_eq!(Format::of_suffix("noext"), None);
    }
}
