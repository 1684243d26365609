//! Strips of CCITT modified Huffman (compression 2) and Group 3 one-dimensional
//! (compression 3) data, which the `tiff` crate does not decode (it decodes
//! Group 4), decoded with the `fax` crate's code tables and Group 3 reader (the
//! crate the `tiff` crate decodes Group 4 with). A row is a white run, a black
//! run, and so on, each run its make-up codes then a terminating code; a
//! modified Huffman row starts on a byte, a Group 3 row after an EOL.
//!
//! As the `tiff` crate reads Group 4: a white run is sample 0, a black run
//! sample 1, and the photometric interpretation then says which is white.
//! A row whose runs do not come to the width ends the strip: the rows before it
//! are kept, and the image is a reject for the rows it lacks. A run past the
//! width is cut at it. FillOrder 2 strips are read with each byte's bits
//! reversed.

use fax::{BitReader, Color};

use super::plan::Tags;

/// A decoded strip's levels: 0 for a sample of 0, 255 for a sample of 1.
const ZERO: u8 = 0;
const ONE: u8 = 255;

/// The level of every pixel, row by row, strip after strip; an error naming
/// where the data ends or does not decode.
pub fn levels(bytes: &[u8], tags: &Tags, group3: bool) -> Result<Vec<u8>, String> {
    let width = usize::try_from(tags.width).map_err(|_| "a row too wide")?;
    let reversed = tags.fill_order == 2;
    let height = tags.height as usize;
    let per_strip = (tags.rows_per_strip as usize).clamp(1, height.max(1));
    let mut out = Vec::with_capacity(width * height);
    for (strip, (&offset, &count)) in tags
        .chunk_offsets
        .iter()
        .zip(&tags.chunk_counts)
        .enumerate()
    {
        let rows = per_strip.min(height.saturating_sub(strip * per_strip));
        if rows == 0 {
            break;
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(bytes.len());
        let end = start
            .saturating_add(usize::try_from(count).unwrap_or(usize::MAX))
            .min(bytes.len());
        // Two zero bytes after the data: the code tables look ahead up to 13
        // bits, and a last code in the strip's final bits is whole without them.
        let data = bytes[start..end]
            .iter()
            .map(move |&b| if reversed { b.reverse_bits() } else { b })
            .chain([0, 0])
            .map(Ok::<u8, std::convert::Infallible>);
        let before = out.len();
        if group3 {
            // plan.rs refuses Group 3 rows wider than the fax crate counts.
            let fax_width = u16::try_from(tags.width).map_err(|_| "a row too wide")?;
            group3_rows(data, fax_width, rows, &mut out);
        } else {
            huffman_rows(data, width, rows, &mut out);
        }
        let got = (out.len() - before) / width.max(1);
        if got < rows {
            return Err(format!(
                "fax data of strip {strip} ends after {got} of its {rows} rows"
            ));
        }
    }
    if out.len() < width * height {
        return Err(format!(
            "fax data for {} of {height} rows",
            out.len() / width.max(1)
        ));
    }
    Ok(out)
}

/// Modified Huffman: up to `rows` rows, each from a byte boundary, until the
/// data ends or a code does not decode.
fn huffman_rows(
    data: impl Iterator<Item = Result<u8, std::convert::Infallible>>,
    width: usize,
    rows: usize,
    out: &mut Vec<u8>,
) {
    let Ok(mut reader) = fax::ByteReader::new(data);
    for _ in 0..rows {
        let mut row = Vec::with_capacity(width);
        let mut color = Color::White;
        while row.len() < width {
            let Some(run) = run(&mut reader, color) else {
                return;
            };
            let level = if color == Color::White { ZERO } else { ONE };
            let n = usize::from(run).min(width - row.len());
            row.resize(row.len() + n, level);
            color = !color;
        }
        out.extend(row);
        let pad = reader.bits_to_byte_boundary();
        if pad > 0 && reader.consume(pad).is_err() {
            return;
        }
    }
}

/// One run: make-up codes (64 and more) until a terminating code (under 64).
fn run(reader: &mut impl BitReader, color: Color) -> Option<u16> {
    let mut sum: u16 = 0;
    loop {
        let n = match color {
            Color::White => fax::maps::white::decode(reader)?,
            Color::Black => fax::maps::black::decode(reader)?,
        };
        sum = sum.checked_add(n)?;
        if n < 64 {
            return Some(sum);
        }
    }
}

/// Group 3 one-dimensional: the rows the `fax` crate's reader gives, up to
/// `rows`, while each comes to the width. The reader ends a row at a code that
/// does not decode and still calls it read, so the width is what tells a whole
/// row. TIFF writers end a strip without the fax return-to-control, so the
/// last row has no EOL after it, which the reader reports as an error after it
/// has read the row.
fn group3_rows(
    data: impl Iterator<Item = Result<u8, std::convert::Infallible>>,
    width: u16,
    rows: usize,
    out: &mut Vec<u8>,
) {
    let Ok(mut decoder) = fax::decoder::Group3Decoder::new(data) else {
        return;
    };
    for _ in 0..rows {
        let status = decoder.advance();
        let row = decoder.transitions();
        if row.last() != Some(&width) {
            return;
        }
        out.extend(fax::decoder::pels(row, width).map(|c| match c {
            Color::White => ZERO,
            Color::Black => ONE,
        }));
        if !matches!(status, Ok(fax::decoder::DecodeStatus::Incomplete)) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fax::{BitWriter, VecWriter};

    fn tags(width: u32, height: u32, offsets: Vec<u64>, counts: Vec<u64>) -> Tags {
        Tags {
            width,
            height,
            photometric: Some(0),
            bits: 1,
            compression: 2,
            rows_per_strip: height,
            chunk_offsets: offsets,
            chunk_counts: counts,
            ..Tags::example()
        }
    }

    /// Runs written with the `fax` crate's own code tables, each row padded to
    /// a byte: modified Huffman as a writer makes it.
    fn huffman(rows: &[&[(Color, u16)]]) -> Vec<u8> {
        let mut w = VecWriter::new();
        for row in rows {
            for &(color, n) in *row {
                let mut left = n;
                while left >= 64 {
                    let makeup = (left / 64 * 64).min(2560);
                    let code = match color {
                        Color::White => fax::maps::white::encode(makeup),
                        Color::Black => fax::maps::black::encode(makeup),
                    };
                    w.write(code.unwrap()).unwrap();
                    left -= makeup;
                }
                let code = match color {
                    Color::White => fax::maps::white::encode(left),
                    Color::Black => fax::maps::black::encode(left),
                };
                w.write(code.unwrap()).unwrap();
            }
            w.pad();
        }
        w.finish()
    }

    #[test]
    fn modified_huffman_rows_start_on_a_byte_and_long_runs_take_make_up_codes() {
        use Color::{Black, White};
        let data = huffman(&[
            &[(White, 3), (Black, 2), (White, 95)],
            &[(White, 0), (Black, 100)],
        ]);
        let t = tags(100, 2, vec![0], vec![data.len() as u64]);
        let got = levels(&data, &t, false).unwrap();
        let mut want = vec![ZERO; 3];
        want.extend([ONE; 2]);
        want.extend([ZERO; 95]);
        want.extend([ONE; 100]);
        assert_eq!(got, want);
        // Cut short: an error naming the rows.
        let e = levels(&data[..data.len() / 2], &t, false).unwrap_err();
        assert!(e.contains("ends after"), "{e}");
        // FillOrder 2: the same rows from bytes stored least significant bit first.
        let reversed: Vec<u8> = data.iter().map(|b| b.reverse_bits()).collect();
        let t2 = Tags { fill_order: 2, ..t };
        assert_eq!(levels(&reversed, &t2, false).unwrap(), want);
    }

    #[test]
    fn group3_rows_follow_their_eols() {
        // Group 4 is what the `fax` encoder writes; Group 3 here is an EOL and
        // the row's modified Huffman codes, unpadded.
        let mut w = VecWriter::new();
        for row in [
            [(Color::White, 5), (Color::Black, 3)],
            [(Color::White, 1), (Color::Black, 7)],
        ] {
            w.write(fax::maps::EOL).unwrap();
            for (color, n) in row {
                let code = match color {
                    Color::White => fax::maps::white::encode(n),
                    Color::Black => fax::maps::black::encode(n),
                };
                w.write(code.unwrap()).unwrap();
            }
        }
        let data = w.finish(); // no return-to-control, as TIFF writers leave it
        let t = tags(8, 2, vec![0], vec![data.len() as u64]);
        let got = levels(&data, &t, true).unwrap();
        assert_eq!(got[..8], [ZERO, ZERO, ZERO, ZERO, ZERO, ONE, ONE, ONE]);
        assert_eq!(got[8..], [ZERO, ONE, ONE, ONE, ONE, ONE, ONE, ONE]);
        // A row short of the width ends the strip: a reject, not made-up pixels.
        let short = tags(9, 2, vec![0], vec![data.len() as u64]);
        let e = levels(&data, &short, true).unwrap_err();
        assert!(e.contains("ends after 0 of its 2 rows"), "{e}");
    }
}
