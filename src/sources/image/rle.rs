//! An RLE8 or RLE4 bitmap expanded to the uncompressed 8-bit bitmap of its
//! palette indices, the way Pillow expands it, so that the `image` crate decodes
//! the same pixels Pillow reads. The two differ where the format is silent:
//!
//! - pixels a delta skips or an end-of-line leaves are palette index 0 (Pillow),
//!   not black (`image`);
//! - a run longer than what is left of its row stops at the row's end; an
//!   absolute run may go on into the next row (as Pillow's flat buffer does);
//! - a top-down bitmap (negative height, which the format does not define for
//!   RLE but writers make) has its first row at the top;
//! - the compression says RLE8 or RLE4 whatever the bit count says (Pillow
//!   decides by the compression alone).
//!
//! Where naslake reads more than Pillow: an end-of-bitmap before the last row
//! leaves the rest index 0, as the format says the rest is background (Pillow
//! refuses such a file). Data that ends before its end-of-bitmap, short of the
//! last pixel, is truncated: a reject, as Pillow's "not enough image data".
//!
//! The expansion is bounded before it starts: the pixels by `max_pixels` (over
//! it, the bitmap is left to the decoder, which refuses it), the indices and
//! the bitmap made of them together by `max_decode_bytes`.

use super::decode::{Bounds, Refused, Stage, refused};

const FILE_HEADER: usize = 14;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `bytes` as an uncompressed 8-bit bitmap when they are an RLE8 or RLE4 one
/// (Windows header, 40 bytes or more) of at most `max_pixels`; `Ok(None)` when
/// they are not, or the header does not read (the decoder then says what is
/// wrong, or the pixel bound refuses it); a reject when the data is truncated
/// or the expansion would take more than `max_decode_bytes`.
pub fn uncompress(bytes: &[u8], bounds: &Bounds) -> Result<Option<Vec<u8>>, Refused> {
    let Some(header) = u32_at(bytes, FILE_HEADER).filter(|&h| h >= 40) else {
        return Ok(None);
    };
    let (Some(width), Some(height), Some(bpp), Some(compression)) = (
        u32_at(bytes, 18).map(|w| w as i32),
        u32_at(bytes, 22).map(|h| h as i32),
        u16_at(bytes, 28),
        u32_at(bytes, 30),
    ) else {
        return Ok(None);
    };
    let rle4 = match compression {
        1 => false,
        2 => true,
        _ => return Ok(None),
    };
    let (w, h) = (
        u64::from(width.unsigned_abs()),
        u64::from(height.unsigned_abs()),
    );
    if width <= 0 || h == 0 || w * h > bounds.max_pixels {
        return Ok(None);
    }
    let Some(data_at) = u32_at(bytes, 10).map(|o| o as usize) else {
        return Ok(None);
    };
    let colours = match u32_at(bytes, 46) {
        Some(n @ 1..=256) => n as usize,
        _ if bpp <= 8 => 1usize << bpp,
        _ => 256,
    };
    let palette_at = FILE_HEADER + header as usize;
    let Some(palette) = bytes.get(palette_at..palette_at + 4 * colours) else {
        return Ok(None);
    };
    // The indices, then the bitmap: rows padded to 4 bytes after the headers.
    let size = (FILE_HEADER + 40 + palette.len()) as u64 + w.div_ceil(4) * 4 * h;
    bounds.check_memory("this RLE bitmap's expansion", w * h + size)?;
    if u32::try_from(size).is_err() {
        return Err(refused(
            Stage::Limits,
            format!("this RLE bitmap expands to {size} bytes, more than a bitmap holds"),
        ));
    }
    let (w, h) = (w as usize, h as usize);
    let indices = expand(bytes, data_at, w, h, rle4).map_err(|e| refused(Stage::Decode, e))?;
    Ok(Some(uncompressed(
        &indices,
        w,
        h,
        height < 0,
        palette,
        colours,
    )))
}

/// The indices of `w × h` pixels, rows in file order, from the RLE data at
/// `at` (offsets into `file`: absolute runs end on an even file offset).
fn expand(file: &[u8], at: usize, w: usize, h: usize, rle4: bool) -> Result<Vec<u8>, String> {
    let total = w * h;
    let mut out: Vec<u8> = Vec::with_capacity(total);
    let mut pos = at;
    let mut x = 0usize;
    let truncated = |got: usize| format!("RLE data ends after {got} of {total} pixels");
    while out.len() < total {
        let (Some(&count), Some(&value)) = (file.get(pos), file.get(pos + 1)) else {
            return Err(truncated(out.len()));
        };
        pos += 2;
        if count > 0 {
            // Encoded: `count` pixels of one index (RLE4: two alternating).
            let n = usize::from(count).min(w.saturating_sub(x));
            out.extend((0..n).map(|i| match (rle4, i % 2) {
                (false, _) => value,
                (true, 0) => value >> 4,
                (true, _) => value & 0x0F,
            }));
            x += n;
            continue;
        }
        match value {
            0 => {
                // End of line: the rest of the row is index 0.
                let rest = (w - out.len() % w) % w;
                out.resize(out.len() + rest, 0);
                x = 0;
            }
            1 => {
                // End of bitmap: the rest is index 0.
                out.resize(total, 0);
            }
            2 => {
                let (Some(&right), Some(&up)) = (file.get(pos), file.get(pos + 1)) else {
                    return Err(truncated(out.len()));
                };
                pos += 2;
                let skip = (usize::from(right) + usize::from(up) * w).min(total - out.len());
                out.resize(out.len() + skip, 0);
                x = out.len() % w;
            }
            n => {
                // Absolute: `n` indices as they are, padded to a 16-bit word.
                let n = usize::from(n).min(total - out.len());
                let byte_count = if rle4 { n.div_ceil(2) } else { n };
                let Some(run) = file.get(pos..pos + byte_count) else {
                    return Err(truncated(out.len()));
                };
                if rle4 {
                    out.extend(run.iter().flat_map(|b| [b >> 4, b & 0x0F]).take(n));
                } else {
                    out.extend_from_slice(run);
                }
                pos += byte_count;
                pos += pos % 2;
                x += n;
            }
        }
    }
    Ok(out)
}

/// An uncompressed 8-bit bitmap of these indices (rows bottom-up, or top-down
/// with a negative height), with the palette as stored.
fn uncompressed(
    indices: &[u8],
    w: usize,
    h: usize,
    top_down: bool,
    palette: &[u8],
    colours: usize,
) -> Vec<u8> {
    let stride = w.div_ceil(4) * 4;
    let data_at = FILE_HEADER + 40 + palette.len();
    let size = data_at + stride * h;
    let mut out = Vec::with_capacity(size);
    out.extend(b"BM");
    out.extend((size as u32).to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((data_at as u32).to_le_bytes());
    out.extend(40u32.to_le_bytes());
    out.extend((w as u32).to_le_bytes());
    let height = if top_down { -(h as i32) } else { h as i32 };
    out.extend(height.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(8u16.to_le_bytes());
    out.extend(0u32.to_le_bytes()); // no compression
    out.extend(((stride * h) as u32).to_le_bytes());
    out.extend([0u8; 8]); // resolution
    out.extend((colours as u32).to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(palette);
    for row in indices.chunks(w) {
        out.extend(row);
        out.resize(out.len() + stride - w, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: Bounds = Bounds {
        max_pixels: 1000,
        max_decode_bytes: 1 << 20,
    };

    /// An RLE bitmap, 40-byte header, `colours` palette entries, this data.
    fn rle_bmp(w: i32, h: i32, rle4: bool, colours: u32, data: &[u8]) -> Vec<u8> {
        let palette: Vec<u8> = (0..colours).flat_map(|i| [i as u8, 0, 0, 0]).collect();
        let data_at = 14 + 40 + palette.len() as u32;
        let mut out = b"BM".to_vec();
        out.extend((data_at + data.len() as u32).to_le_bytes());
        out.extend([0u8; 4]);
        out.extend(data_at.to_le_bytes());
        out.extend(40u32.to_le_bytes());
        out.extend(w.to_le_bytes());
        out.extend(h.to_le_bytes());
        out.extend(1u16.to_le_bytes());
        out.extend(if rle4 { 4u16 } else { 8 }.to_le_bytes());
        out.extend(if rle4 { 2u32 } else { 1 }.to_le_bytes());
        out.extend([0u8; 12]);
        out.extend(colours.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend(palette);
        out.extend(data);
        out
    }

    fn rows_of(bmp: &[u8]) -> Vec<Vec<u8>> {
        let w = u32_at(bmp, 18).unwrap() as usize;
        let h = (u32_at(bmp, 22).unwrap() as i32).unsigned_abs() as usize;
        let at = u32_at(bmp, 10).unwrap() as usize;
        let stride = w.div_ceil(4) * 4;
        (0..h)
            .map(|r| bmp[at + r * stride..at + r * stride + w].to_vec())
            .collect()
    }

    #[test]
    fn deltas_and_short_rows_leave_index_zero_and_runs_stop_at_the_row_end() {
        // 5 × 3: a run of 9 (cut to 5), end of line; a run of 2, end of line;
        // a delta right 1, 3 absolute indices (and a pad byte); end of bitmap.
        let data = [9, 7, 0, 0, 2, 3, 0, 0, 0, 2, 1, 0, 0, 3, 4, 5, 6, 0, 0, 1];
        let out = uncompress(&rle_bmp(5, 3, false, 8, &data), &ROOMY)
            .unwrap()
            .unwrap();
        assert_eq!(
            rows_of(&out),
            vec![vec![7; 5], vec![3, 3, 0, 0, 0], vec![0, 4, 5, 6, 0]]
        );
        assert_eq!(u32_at(&out, 22), Some(3), "bottom-up, as stored");
        assert_eq!(u16_at(&out, 28), Some(8));
        assert_eq!(u32_at(&out, 30), Some(0));
        assert_eq!(&out[54..58], &[0, 0, 0, 0], "the palette as stored");
        assert_eq!(&out[58..62], &[1, 0, 0, 0]);
    }

    #[test]
    fn rle4_alternates_two_indices_and_top_down_stays_top_down() {
        // 4 × 2 top-down: a run of 3 of (1, 2), a run of 1 of 3, end of line;
        // 3 absolute indices in 2 bytes, end of line; end of bitmap.
        let data = [3, 0x12, 1, 0x30, 0, 0, 0, 3, 0x45, 0x60, 0, 0, 0, 1];
        let out = uncompress(&rle_bmp(4, -2, true, 16, &data), &ROOMY)
            .unwrap()
            .unwrap();
        assert_eq!(rows_of(&out), vec![vec![1, 2, 1, 3], vec![4, 5, 6, 0]]);
        assert_eq!(u32_at(&out, 22), Some((-2i32) as u32));
    }

    #[test]
    fn a_full_row_takes_no_more_runs_until_its_end_of_line() {
        // Pillow's rule: x comes back to 0 only at an end of line.
        let data = [4, 1, 4, 2, 0, 0, 4, 3, 0, 1];
        let out = uncompress(&rle_bmp(4, 2, false, 4, &data), &ROOMY)
            .unwrap()
            .unwrap();
        assert_eq!(rows_of(&out), vec![vec![1; 4], vec![3; 4]]);
    }

    #[test]
    fn truncated_data_is_an_error_and_other_bitmaps_are_not_touched() {
        let e = uncompress(&rle_bmp(5, 3, false, 8, &[5, 1, 0]), &ROOMY).unwrap_err();
        assert_eq!(e.stage, Stage::Decode);
        assert!(e.reason.contains("after 5 of 15 pixels"), "{e:?}");
        let tight = Bounds {
            max_pixels: 1000,
            max_decode_bytes: 100,
        };
        let e = uncompress(&rle_bmp(5, 3, false, 8, &[0, 1]), &tight).unwrap_err();
        assert_eq!(e.stage, Stage::Limits);
        let mut plain = rle_bmp(5, 3, false, 8, &[]);
        plain[30] = 0; // no compression
        assert_eq!(uncompress(&plain, &ROOMY), Ok(None));
        let few = Bounds {
            max_pixels: 14,
            ..ROOMY
        };
        assert_eq!(uncompress(&rle_bmp(5, 3, false, 8, &[]), &few), Ok(None));
        assert_eq!(uncompress(b"BM", &ROOMY), Ok(None));
    }
}
