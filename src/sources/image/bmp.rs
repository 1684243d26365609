//! BMP headers the `image` crate (0.25) refuses that Pillow reads, rewritten to
//! headers it takes before it decodes them. Only the header changes; the pixels
//! are decoded as they are:
//!
//! - `biPlanes` other than 1 ("More than one plane"): set to 1. The format has
//!   one plane; writers that put another number there mean nothing by it, and
//!   Pillow ignores the field.
//! - An OS/2 2.x header (`BITMAPINFOHEADER2`, 64 bytes) with compression 0, 1 or 2
//!   (none, RLE8, RLE4: the same codes as Windows'; OS/2's 3 and 4 are Huffman
//!   and RLE24, which stay refused): its first 40 bytes are a Windows
//!   `BITMAPINFOHEADER`, so it becomes one, the 24 OS/2-only bytes cut and the
//!   offsets that follow moved back. Its palette entries are 4 bytes, as Windows'.
//! - A pixel-data offset (`bfOffBits`) right after the header of a bitmap of
//!   8 bits or fewer, whose palette is there: moved past the palette, as Pillow
//!   reads it (a writer that forgot the palette in the offset).
//! - Uncompressed pixels that end within the last row's padding (its pixels
//!   all there, the bytes that round it to 4 not): the padding is added, as
//!   Pillow does not need it.
//!
//! RLE data is then expanded as Pillow expands it (`rle.rs`).

use std::borrow::Cow;

const FILE_HEADER: usize = 14;
const OS2_V2: u32 = 64;
const WINDOWS_V3: u32 = 40;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `bytes` with the rewrites above; unchanged (borrowed) when none applies or
/// the header is too short to tell (the decoder then says what is wrong).
pub fn normalize(bytes: &[u8]) -> Cow<'_, [u8]> {
    let unchanged = Cow::Borrowed(bytes);
    let Some(size) = u32_at(bytes, FILE_HEADER) else {
        return unchanged;
    };
    // biPlanes: after width and height, 2 bytes each in OS/2 1.x's 12-byte
    // header, 4 bytes each in every later one.
    let planes_at = if size == 12 { 22 } else { 26 };
    let Some(planes) = bytes.get(planes_at..planes_at + 2) else {
        return unchanged;
    };
    let compression = if size >= WINDOWS_V3 {
        u32_at(bytes, 30)
    } else {
        None
    };
    let os2_v2 = size == OS2_V2 && matches!(compression, Some(0..=2));
    // Pillow's rule: an offset of exactly 14 + the header's size, at 8 bits or
    // fewer, is moved past the palette (colours × 4 bytes, 3 in OS/2 1.x's).
    let bits_at = if size == 12 { 24 } else { 28 };
    let bits = bytes
        .get(bits_at..bits_at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]));
    let colours = match (size >= WINDOWS_V3).then(|| u32_at(bytes, 46)).flatten() {
        Some(n) if n > 0 => Some(n),
        _ => bits.filter(|b| *b <= 8).map(|b| 1u32 << b),
    };
    let entry = if size == 12 { 3 } else { 4 };
    let past_palette = match (u32_at(bytes, 10), bits, colours) {
        (Some(offset), Some(1..=8), Some(n)) if offset == FILE_HEADER as u32 + size => n
            .checked_mul(entry)
            .and_then(|palette| offset.checked_add(palette)),
        _ => None,
    };
    let cut = (OS2_V2 - WINDOWS_V3) as usize;
    let from = FILE_HEADER + WINDOWS_V3 as usize;
    // Offsets into the bytes that would be cut: not a file to rewrite (the
    // decoder says what is wrong with it).
    let into_cut = [2, 10]
        .iter()
        .any(|&at| u32_at(bytes, at).is_some_and(|v| (from..from + cut).contains(&(v as usize))));
    // Rows are padded to 4 bytes; a file may end within the last one's padding.
    let short_padding = match (compression, u32_at(bytes, 18), u32_at(bytes, 22), bits) {
        (Some(0 | 3), Some(w), Some(h), Some(b @ 1..=32)) if size >= WINDOWS_V3 => {
            let data = u64::from(past_palette.or(u32_at(bytes, 10)).unwrap_or(0));
            let row = (u64::from(w) * u64::from(b)).div_ceil(8);
            let stride = row.div_ceil(4) * 4;
            let rows = u64::from((h as i32).unsigned_abs());
            // At most 3 bytes of padding are ever added: a file short of more
            // is truncated (the decoder's to say), and no sum may overflow.
            let end = stride.checked_mul(rows).and_then(|d| d.checked_add(data));
            let len = bytes.len() as u64;
            end.filter(|&end| rows > 0 && len < end && end - len <= stride - row)
                .map(|end| (end - len) as usize)
        }
        _ => None,
    };
    let changes = past_palette.is_some() || short_padding.is_some();
    if (planes == [1, 0] && !os2_v2 && !changes) || (os2_v2 && into_cut) {
        return unchanged;
    }
    let mut out = bytes.to_vec();
    out[planes_at..planes_at + 2].copy_from_slice(&[1, 0]);
    if let Some(offset) = past_palette {
        out[10..14].copy_from_slice(&offset.to_le_bytes());
    }
    if let Some(missing) = short_padding {
        out.resize(out.len() + missing, 0);
    }
    if os2_v2 && out.len() >= FILE_HEADER + OS2_V2 as usize {
        out.drain(from..from + cut);
        out[FILE_HEADER..FILE_HEADER + 4].copy_from_slice(&WINDOWS_V3.to_le_bytes());
        for at in [2, 10] {
            // bfSize and bfOffBits, both past the header.
            if let Some(v) = u32_at(&out, at).filter(|v| *v as usize >= from + cut) {
                out[at..at + 4].copy_from_slice(&(v - cut as u32).to_le_bytes());
            }
        }
    }
    Cow::Owned(out)
}

/// The bits of red, green and blue in a 16-bit BMP (5-5-5 by default, else as
/// its BI_BITFIELDS masks say), when it is one.
pub fn bits_16(bytes: &[u8]) -> Option<[u32; 3]> {
    let size = u32_at(bytes, FILE_HEADER)?;
    if size < WINDOWS_V3 || bytes.get(28..30)? != [16, 0] {
        return None;
    }
    match u32_at(bytes, 30)? {
        0 => Some([5, 5, 5]),
        // BI_BITFIELDS: the masks follow a 40-byte header, or are its fields
        // in a V2 (52) or later one: at 54 either way.
        3 => {
            let mask = |i: usize| u32_at(bytes, 54 + 4 * i).map(u32::count_ones);
            Some([mask(0)?, mask(1)?, mask(2)?])
        }
        _ => None,
    }
}

/// Levels of an `n`-bit channel as Pillow makes them (`v * 255 / (2^n - 1)`,
/// rounded down), from the 8-bit level `image` made of it (the same, rounded to
/// nearest): the same `v`, so the same gray levels as the oracle's.
pub fn pillow_level(level: u8, n: u32) -> u8 {
    if n == 0 || n >= 8 {
        return level;
    }
    let top = (1u32 << n) - 1;
    let v = (u32::from(level) * top + 127) / 255;
    (v * 255 / top) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×2 24-bit BMP with a header of `size` bytes.
    fn bmp(size: u32, planes: u16, height: i32, compression: u32) -> Vec<u8> {
        let mut info = Vec::new();
        info.extend(size.to_le_bytes());
        info.extend(2i32.to_le_bytes());
        info.extend(height.to_le_bytes());
        info.extend(planes.to_le_bytes());
        info.extend(24u16.to_le_bytes());
        info.extend(compression.to_le_bytes());
        info.extend([0u8; 20]);
        info.resize(size as usize, 0);
        let data = [7u8; 16];
        let off = 14 + info.len() as u32;
        let mut out = b"BM".to_vec();
        out.extend((off + data.len() as u32).to_le_bytes());
        out.extend([0u8; 4]);
        out.extend(off.to_le_bytes());
        out.extend(info);
        out.extend(data);
        out
    }

    #[test]
    fn a_channel_of_few_bits_comes_back_to_the_value_it_was_then_as_pillow_scales_it() {
        for n in [4u32, 5, 6] {
            let top = (1u32 << n) - 1;
            for v in 0..=top {
                // image's expansion (rounded), then back.
                let level = ((v * 255 + top / 2) / top) as u8;
                assert_eq!(
                    u32::from(pillow_level(level, n)),
                    v * 255 / top,
                    "{n} bits, {v}"
                );
            }
        }
        assert_eq!(pillow_level(200, 8), 200);
    }

    #[test]
    fn a_plain_bmp_is_left_as_it_is() {
        let f = bmp(40, 1, 2, 0);
        assert!(matches!(normalize(&f), Cow::Borrowed(_)));
    }

    #[test]
    fn an_offset_that_forgets_the_palette_is_moved_past_it() {
        let mut f = bmp(40, 1, 2, 0);
        f[28] = 8; // 8 bits per pixel, biClrUsed 0: 256 colours
        f[10..14].copy_from_slice(&54u32.to_le_bytes());
        let b = normalize(&f);
        assert_eq!(u32_at(&b, 10), Some(54 + 256 * 4));
        f[46..50].copy_from_slice(&3u32.to_le_bytes()); // 3 colours
        assert_eq!(u32_at(&normalize(&f), 10), Some(54 + 3 * 4));
        f[10..14].copy_from_slice(&66u32.to_le_bytes()); // right already
        assert!(matches!(normalize(&f), Cow::Borrowed(_)));
    }

    #[test]
    fn a_last_row_short_of_its_padding_only_is_padded() {
        // 2 × 2 at 24 bits: rows of 6 bytes padded to 8, 16 bytes of pixels.
        let f = bmp(40, 1, 2, 0);
        assert!(matches!(normalize(&f), Cow::Borrowed(_)));
        let short = &f[..f.len() - 2];
        let b = normalize(short);
        assert_eq!(b.len(), f.len());
        assert_eq!(&b[..short.len()], short);
        // Short by a pixel: truncated, the decoder's to say.
        assert!(matches!(normalize(&f[..f.len() - 3]), Cow::Borrowed(_)));
        // Dimensions whose rows would overflow: left alone, not a panic.
        let mut huge = bmp(40, 1, 0x7FFF_FFFF, 0);
        huge[18..22].copy_from_slice(&u32::MAX.to_le_bytes());
        huge[28] = 32;
        assert!(matches!(normalize(&huge), Cow::Borrowed(_)));
    }

    #[test]
    fn planes_become_one_and_an_os2_v2_header_a_windows_one() {
        let f = bmp(64, 2, 2, 0);
        let b = normalize(&f);
        assert_eq!(b.len(), f.len() - 24);
        assert_eq!(u32_at(&b, 14), Some(40));
        assert_eq!(&b[26..28], &[1, 0]);
        assert_eq!(u32_at(&b, 10), Some(14 + 40));
        assert_eq!(u32_at(&b, 2), Some(b.len() as u32));
        assert_eq!(&b[54..], &[7u8; 16]);
        // OS/2's own compression codes (Huffman, RLE24) stay as they are.
        let huffman = bmp(64, 1, 2, 3);
        assert!(matches!(normalize(&huffman), Cow::Borrowed(_)));
    }
}
