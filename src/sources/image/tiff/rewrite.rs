//! A copy of a TIFF with some of its first directory's entries set to other
//! values, so that the `tiff` decoder reads pixels it would otherwise refuse:
//! a palette image as the gray image of its indices, a 12-bit image as the bytes
//! of its rows (`plan.rs` says when). Only entries already there are changed,
//! in place; nothing moves, so every offset in the file stays true.
//!
//! An entry is 12 bytes in a classic TIFF (tag, type, count u32, value or
//! offset in 4 bytes) and 20 in a BigTIFF (count u64, 8 bytes of value), in the
//! file's byte order. A value of one SHORT or LONG fits in place.

/// An entry to set: `tag` becomes one value of type SHORT (≤ u16::MAX) or LONG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub tag: u16,
    pub value: u32,
}

const SHORT: u16 = 3;
const LONG: u16 = 4;

/// The file's bytes with every patch applied, or `None` when the header or the
/// first directory does not read, or a patched tag is not in it.
pub fn rewrite(bytes: &[u8], patches: &[Patch]) -> Option<Vec<u8>> {
    let big_endian = match bytes.get(..2)? {
        b"II" => false,
        b"MM" => true,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(if big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    };
    // (first entry, number of entries, entry size, count size)
    let (first, entries, entry_len, count_len) = match u16_at(2)? {
        42 => {
            let ifd = usize::try_from(u32_at(4)?).ok()?;
            (ifd + 2, usize::from(u16_at(ifd)?), 12, 4)
        }
        43 => {
            let ifd = usize::try_from(u64_at(8)?).ok()?;
            (ifd + 8, usize::try_from(u64_at(ifd)?).ok()?, 20, 8)
        }
        _ => return None,
    };
    let mut out = bytes.to_vec();
    for patch in patches {
        let at = (0..entries)
            .map(|i| first + i * entry_len)
            .find(|&at| u16_at(at) == Some(patch.tag))?;
        let value_len = entry_len - 4 - count_len;
        let entry = out.get_mut(at..at + entry_len)?;
        let (kind, value) = match u16::try_from(patch.value) {
            Ok(short) if big_endian => (SHORT, short.to_be_bytes().to_vec()),
            Ok(short) => (SHORT, short.to_le_bytes().to_vec()),
            Err(_) if big_endian => (LONG, patch.value.to_be_bytes().to_vec()),
            Err(_) => (LONG, patch.value.to_le_bytes().to_vec()),
        };
        let mut fields = Vec::with_capacity(entry_len - 2);
        fields.extend(if big_endian {
            kind.to_be_bytes()
        } else {
            kind.to_le_bytes()
        });
        let one = 1u64;
        let count = if big_endian {
            one.to_be_bytes()
        } else {
            one.to_le_bytes()
        };
        // The count's low bytes: the last ones big-endian, the first ones little.
        fields.extend(if big_endian {
            &count[8 - count_len..]
        } else {
            &count[..count_len]
        });
        fields.extend(&value);
        fields.resize(entry_len - 2, 0);
        debug_assert_eq!(fields.len(), 2 + count_len + value_len);
        entry[2..].copy_from_slice(&fields);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use tiff::decoder::Decoder;
    use tiff::tags::Tag;

    /// A gray 4 × 2 8-bit TIFF written by the `tiff` crate's encoder.
    fn written(big_tiff: bool) -> Vec<u8> {
        use tiff::encoder::{TiffEncoder, colortype};
        let mut out = Cursor::new(Vec::new());
        let pixels = [0u8, 10, 20, 30, 40, 50, 60, 70];
        if big_tiff {
            TiffEncoder::new_big(&mut out)
                .unwrap()
                .write_image::<colortype::Gray8>(4, 2, &pixels)
                .unwrap();
        } else {
            TiffEncoder::new(&mut out)
                .unwrap()
                .write_image::<colortype::Gray8>(4, 2, &pixels)
                .unwrap();
        }
        out.into_inner()
    }

    #[test]
    fn a_patched_entry_reads_back_through_the_decoder() {
        for big in [false, true] {
            let bytes = written(big);
            let patched = rewrite(
                &bytes,
                &[
                    Patch { tag: 262, value: 0 },
                    Patch {
                        tag: 256,
                        value: 70_000,
                    },
                ],
            )
            .unwrap();
            assert_eq!(patched.len(), bytes.len());
            let mut d = Decoder::new(Cursor::new(&patched)).unwrap();
            let photometric: u16 = d
                .find_tag_unsigned(Tag::PhotometricInterpretation)
                .unwrap()
                .unwrap();
            assert_eq!(photometric, 0, "big: {big}");
            let width: u32 = d.find_tag_unsigned(Tag::ImageWidth).unwrap().unwrap();
            assert_eq!(width, 70_000, "big: {big}");
            let height: u32 = d.find_tag_unsigned(Tag::ImageLength).unwrap().unwrap();
            assert_eq!(height, 2, "the entries around are untouched");
        }
    }

    #[test]
    fn a_tag_not_there_or_a_header_that_does_not_read_gives_none() {
        let bytes = written(false);
        let missing = Patch { tag: 320, value: 1 };
        assert_eq!(rewrite(&bytes, &[missing]), None);
        assert_eq!(rewrite(b"II*\0\xff\xff\xff\xff", &[missing]), None);
        assert_eq!(rewrite(b"XX", &[]), None);
    }
}
