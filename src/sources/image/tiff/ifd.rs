//! The first directory of a TIFF read raw, entry by entry: to name what the
//! `tiff` decoder cannot even open (an unknown photometric interpretation), and
//! to make a copy with some entries set to other values, so that the decoder
//! reads pixels it would otherwise refuse: a palette image as the gray image of
//! its indices, a 12-bit image as the bytes of its rows (`plan.rs` says when).
//! Only entries already there are changed, in place; nothing moves, so every
//! offset in the file stays true.
//!
//! An entry is 12 bytes in a classic TIFF (tag, type, count u32, value or
//! offset in 4 bytes) and 20 in a BigTIFF (count u64, 8 bytes of value), in the
//! file's byte order. A value of one SHORT or LONG fits in place, left-justified.

/// An entry to set: `tag` becomes one value of type SHORT (≤ u16::MAX) or LONG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub tag: u16,
    pub value: u32,
}

const SHORT: u16 = 3;
const LONG: u16 = 4;

/// Where the first directory's entries are.
struct Entries<'a> {
    bytes: &'a [u8],
    big_endian: bool,
    first: usize,
    count: usize,
    entry_len: usize,
    count_len: usize,
}

impl<'a> Entries<'a> {
    fn read(bytes: &'a [u8]) -> Option<Entries<'a>> {
        let big_endian = match bytes.get(..2)? {
            b"II" => false,
            b"MM" => true,
            _ => return None,
        };
        let e = Entries {
            bytes,
            big_endian,
            first: 0,
            count: 0,
            entry_len: 12,
            count_len: 4,
        };
        Some(match e.u16_at(2)? {
            42 => {
                let ifd = usize::try_from(e.u32_at(4)?).ok()?;
                let count = usize::from(e.u16_at(ifd)?);
                Entries {
                    first: ifd + 2,
                    count,
                    ..e
                }
            }
            43 => {
                let ifd = usize::try_from(e.u64_at(8)?).ok()?;
                let count = usize::try_from(e.u64_at(ifd)?).ok()?;
                Entries {
                    first: ifd + 8,
                    count,
                    entry_len: 20,
                    count_len: 8,
                    ..e
                }
            }
            _ => return None,
        })
    }

    fn array<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        let mut b: [u8; N] = self.bytes.get(at..at.checked_add(N)?)?.try_into().ok()?;
        if !self.big_endian {
            b.reverse();
        }
        Some(b)
    }

    fn u16_at(&self, at: usize) -> Option<u16> {
        self.array(at).map(u16::from_be_bytes)
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        self.array(at).map(u32::from_be_bytes)
    }

    fn u64_at(&self, at: usize) -> Option<u64> {
        self.array(at).map(u64::from_be_bytes)
    }

    /// The offsets of the entries for `tag` (a tag written twice is there twice).
    fn of(&self, tag: u16) -> impl Iterator<Item = usize> + '_ {
        (0..self.count)
            .map_while(move |i| i.checked_mul(self.entry_len)?.checked_add(self.first))
            .take_while(|&at| at < self.bytes.len())
            .filter(move |&at| self.u16_at(at) == Some(tag))
    }
}

/// The value of a SHORT entry `tag` of the first directory (the last one, when
/// written twice, as the decoder reads it).
pub fn short(bytes: &[u8], tag: u16) -> Option<u16> {
    let e = Entries::read(bytes)?;
    let at = e.of(tag).last()?;
    (e.u16_at(at + 2)? == SHORT).then_some(())?;
    e.u16_at(at + 4 + e.count_len)
}

/// The file's bytes with the first directory the last one (its link to the
/// next zeroed), for a chain the decoder refuses as a cycle: only the first
/// image is read anyway.
pub fn first_only(bytes: &[u8]) -> Option<Vec<u8>> {
    let e = Entries::read(bytes)?;
    let next = e.first.checked_add(e.count.checked_mul(e.entry_len)?)?;
    let mut out = bytes.to_vec();
    out.get_mut(next..next + e.count_len)?.fill(0);
    Some(out)
}

/// The file's bytes with every patch applied (to every entry of its tag), or
/// `None` when the header or the first directory does not read, or a patched
/// tag is not in it.
pub fn rewrite(bytes: &[u8], patches: &[Patch]) -> Option<Vec<u8>> {
    let e = Entries::read(bytes)?;
    let mut out = bytes.to_vec();
    let ordered = |v: &[u8]| -> Vec<u8> {
        let mut v = v.to_vec();
        if !e.big_endian {
            v.reverse();
        }
        v
    };
    for patch in patches {
        let at: Vec<usize> = e.of(patch.tag).collect();
        if at.is_empty() {
            return None;
        }
        let (kind, value) = match u16::try_from(patch.value) {
            Ok(short) => (SHORT, ordered(&short.to_be_bytes())),
            Err(_) => (LONG, ordered(&patch.value.to_be_bytes())),
        };
        // Type, a count of one in the count's width, the value left-justified.
        let mut fields = ordered(&kind.to_be_bytes());
        fields.extend(ordered(&1u64.to_be_bytes()[8 - e.count_len..]));
        fields.extend(value);
        fields.resize(e.entry_len - 2, 0);
        for at in at {
            out.get_mut(at + 2..at + e.entry_len)?
                .copy_from_slice(&fields);
        }
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

    /// A big-endian classic directory: ImageWidth 4 (SHORT), then
    /// PhotometricInterpretation twice (1, then 0: the last one holds).
    fn motorola() -> Vec<u8> {
        let mut b = b"MM\0*".to_vec();
        b.extend(8u32.to_be_bytes());
        b.extend(3u16.to_be_bytes());
        for (tag, value) in [(256u16, 4u16), (262, 1), (262, 0)] {
            b.extend(tag.to_be_bytes());
            b.extend(SHORT.to_be_bytes());
            b.extend(1u32.to_be_bytes());
            b.extend(value.to_be_bytes());
            b.extend([0, 0]);
        }
        b.extend(0u32.to_be_bytes());
        b
    }

    #[test]
    fn big_endian_entries_read_and_patch_and_a_repeated_tag_is_patched_everywhere() {
        let b = motorola();
        assert_eq!(short(&b, 256), Some(4));
        assert_eq!(short(&b, 262), Some(0), "the last of a repeated tag");
        let patched = rewrite(
            &b,
            &[
                Patch { tag: 262, value: 1 },
                Patch {
                    tag: 256,
                    value: 0x0001_0002,
                },
            ],
        )
        .unwrap();
        assert_eq!(short(&patched, 262), Some(1));
        // Both entries of 262: SHORT, count 1, value 1 left-justified.
        for at in [10 + 12, 10 + 24] {
            assert_eq!(&patched[at..at + 12], &[1, 6, 0, 3, 0, 0, 0, 1, 0, 1, 0, 0]);
        }
        // ImageWidth became a LONG.
        assert_eq!(&patched[10..22], &[1, 0, 0, 4, 0, 0, 0, 1, 0, 1, 0, 2]);
        assert_eq!(short(&patched, 256), None, "no longer a SHORT");
    }

    #[test]
    fn the_first_directory_can_be_made_the_last() {
        let mut b = motorola();
        let next = b.len() - 4;
        b[next..].copy_from_slice(&8u32.to_be_bytes()); // links to itself
        let cut = first_only(&b).unwrap();
        assert_eq!(&cut[next..], &[0, 0, 0, 0]);
        assert_eq!(&cut[..next], &b[..next]);
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
