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
    out.get_mut(next..next.checked_add(e.count_len)?)?.fill(0);
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

/// Narrows `copy` (the file with its directory already rewritten to one gray
/// sample, entries where they were) to plane `k` of `planes`: its TileOffsets
/// and TileByteCounts entries say the tiles of that plane alone, read from the
/// arrays of `original`, so the same copy serves every plane (the `tiff` crate
/// 0.11 miscomputes the edge tiles of every plane but the first when it reads
/// them together). A part that fits in an entry's value field is written
/// there, as the format wants; `None` when the entries do not read.
pub fn narrow_to_plane(copy: &mut [u8], original: &[u8], k: usize, planes: usize) -> Option<()> {
    let e = Entries::read(original)?;
    for tag in [324u16, 325] {
        let at = e.of(tag).last()?;
        let elem = match e.u16_at(at + 2)? {
            3 => 2,
            4 | 13 => 4,
            16 | 18 => 8,
            _ => return None,
        };
        let count = match e.count_len {
            4 => u64::from(e.u32_at(at + 4)?),
            _ => e.u64_at(at + 4)?,
        };
        let per_plane = usize::try_from(count).ok()?.checked_div(planes)?;
        let value_at = at + 4 + e.count_len;
        let value_len = e.entry_len - 4 - e.count_len;
        let array = if per_plane.checked_mul(planes)?.checked_mul(elem)? <= value_len {
            value_at
        } else {
            match value_len {
                4 => usize::try_from(e.u32_at(value_at)?).ok()?,
                _ => usize::try_from(e.u64_at(value_at)?).ok()?,
            }
        };
        let part_len = per_plane.checked_mul(elem)?;
        let part_at = array.checked_add(k.checked_mul(part_len)?)?;
        let part = original.get(part_at..part_at.checked_add(part_len)?)?;
        let ordered = |v: u64, n: usize| -> Vec<u8> {
            let b = v.to_be_bytes()[8 - n..].to_vec();
            if e.big_endian {
                b
            } else {
                b.into_iter().rev().collect()
            }
        };
        let value = if part_len <= value_len {
            let mut v = part.to_vec();
            v.resize(value_len, 0);
            v
        } else if value_len == 4 {
            ordered(u64::from(u32::try_from(part_at).ok()?), 4)
        } else {
            ordered(part_at as u64, value_len)
        };
        copy.get_mut(at + 4..value_at)?
            .copy_from_slice(&ordered(per_plane as u64, e.count_len));
        copy.get_mut(value_at..value_at + value_len)?
            .copy_from_slice(&value);
    }
    Some(())
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

    /// A little-endian directory with SamplesPerPixel 3 and TileOffsets and
    /// TileByteCounts of `n` LONGs each (out of line), the arrays after it.
    fn tiled_planes(offsets: &[u32], counts: &[u32]) -> Vec<u8> {
        let n = offsets.len() as u32;
        let arrays = 8 + 2 + 3 * 12 + 4;
        let mut b = b"II*\0".to_vec();
        b.extend(8u32.to_le_bytes());
        b.extend(3u16.to_le_bytes());
        b.extend(277u16.to_le_bytes());
        b.extend(SHORT.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend([3, 0, 0, 0]);
        for (tag, at) in [(324u16, arrays), (325, arrays + 4 * n)] {
            b.extend(tag.to_le_bytes());
            b.extend(LONG.to_le_bytes());
            b.extend(n.to_le_bytes());
            b.extend(at.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes());
        for v in offsets.iter().chain(counts) {
            b.extend(v.to_le_bytes());
        }
        b
    }

    fn long_entry(b: &[u8], i: usize) -> (u32, u32) {
        let at = 10 + 12 * i;
        let u = |o: usize| u32::from_le_bytes(b[at + o..at + o + 4].try_into().unwrap());
        (u(4), u(8))
    }

    #[test]
    fn one_plane_of_tiles_is_narrowed_in_place_or_by_its_pointer() {
        let one = Patch { tag: 277, value: 1 };
        let plane = |b: &[u8], k: usize| {
            let mut copy = rewrite(b, &[one])?;
            narrow_to_plane(&mut copy, b, k, 3)?;
            Some(copy)
        };
        // One tile per plane: plane 1's offset and count fit in the entry.
        let b = tiled_planes(&[100, 200, 300], &[10, 20, 30]);
        let p = plane(&b, 1).unwrap();
        assert_eq!(short(&p, 277), Some(1));
        assert_eq!(long_entry(&p, 1), (1, 200));
        assert_eq!(long_entry(&p, 2), (1, 20));
        // The same copy, narrowed again, to another plane.
        let mut again = p.clone();
        narrow_to_plane(&mut again, &b, 2, 3).unwrap();
        assert_eq!(long_entry(&again, 1), (1, 300));
        // Two tiles per plane: 8 bytes, so the pointer moves to plane 2's part.
        let b = tiled_planes(&[1, 2, 3, 4, 5, 6], &[7, 8, 9, 10, 11, 12]);
        let p = plane(&b, 2).unwrap();
        let (count, at) = long_entry(&p, 1);
        assert_eq!(count, 2);
        let at = at as usize;
        assert_eq!(&p[at..at + 8], &[5, 0, 0, 0, 6, 0, 0, 0]);
        let (count, at) = long_entry(&p, 2);
        assert_eq!((count, p[at as usize]), (2, 11));
        // A plane past the arrays does not read.
        assert_eq!(plane(&b, 3), None);
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
