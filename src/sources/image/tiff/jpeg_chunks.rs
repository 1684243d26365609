//! The JPEG streams of a JPEG-compressed TIFF (compression 7), checked before
//! the decoder sees them: each strip or tile is a JPEG of its own, read after
//! the JPEGTables, and the decoder allocates what that JPEG's frame header
//! declares, not what the TIFF does. The headers are read here by the decoder
//! the `tiff` crate uses, on the stream it builds, so both see one frame. A 1 × 1 TIFF could carry a 16 384 × 16 384
//! JPEG; here a frame larger than its strip or tile (rounded up to a 16-pixel
//! MCU), in the tables or in a chunk, is refused, so the decode stays within
//! the image the TIFF declares and the bounds checked it by. A chunk is read as
//! the decoder reads it: up to its byte count or the end of the file.

use super::plan::Tags;

/// The frame's (width, height, components) of the JPEG stream `jpeg`, as the
/// decoder reads its headers (the same decoder, zune-jpeg, with its default
/// options: a frame it would not find is none here either).
fn frame(jpeg: &[u8]) -> Option<(u32, u32, u8)> {
    use zune_core::bytestream::ZCursor;
    let mut d = zune_jpeg::JpegDecoder::new(ZCursor::new(jpeg));
    d.decode_headers().ok()?;
    let info = d.info()?;
    Some((
        u32::from(info.width),
        u32::from(info.height),
        info.components,
    ))
}

/// Refuses a strip or tile whose JPEG frame is larger than the chunk.
pub fn check(bytes: &[u8], tags: &Tags) -> Result<(), String> {
    let (chunk_w, chunk_h, what) = match tags.tile {
        Some((w, h)) => (w, h, "tile"),
        None => (tags.width, tags.rows_per_strip.min(tags.height), "strip"),
    };
    let round = |v: u32| v.saturating_add(15) / 16 * 16;
    let fits = |(w, h, components): (u32, u32, u8)| {
        if w > round(chunk_w) || h > round(chunk_h) || components > 4 {
            Err(format!(
                "a JPEG {what} of {w} × {h} × {components} where the TIFF declares \
                 {what}s of {chunk_w} × {chunk_h}"
            ))
        } else {
            Ok(())
        }
    };
    // Each distinct chunk once: strips may share their bytes.
    let chunks: std::collections::BTreeSet<(u64, u64)> = tags
        .chunk_offsets
        .iter()
        .copied()
        .zip(tags.chunk_counts.iter().copied())
        .collect();
    for (offset, count) in chunks {
        let Ok(start) = usize::try_from(offset) else {
            continue;
        };
        let end = start
            .saturating_add(usize::try_from(count).unwrap_or(usize::MAX))
            .min(bytes.len());
        let Some(chunk) = bytes.get(start..end) else {
            continue; // past the end: the decoder says the file is short
        };
        // The stream the decoder reads: the tables but their end-of-image,
        // then the chunk but its start-of-image.
        let found = match tags.jpeg_tables.as_deref() {
            Some(tables) if tables.len() >= 2 && chunk.len() >= 2 => {
                let mut stream = tables[..tables.len() - 2].to_vec();
                stream.extend_from_slice(&chunk[2..]);
                frame(&stream)
            }
            _ => frame(chunk),
        };
        if let Some(found) = found {
            fits(found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = include_bytes!("../../../../samples/images/line-1/part-0001-small.jpg");

    /// The sample JPEG with its frame saying `w × h`.
    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut j = SAMPLE.to_vec();
        let sof = (2..j.len() - 9)
            .find(|&i| j[i] == 0xFF && matches!(j[i + 1], 0xC0..=0xC2))
            .unwrap();
        j[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        j[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        j
    }

    fn tags_with(chunks: &[&[u8]], tile: Option<(u32, u32)>) -> (Vec<u8>, Tags) {
        let mut file = vec![0u8; 8];
        let mut offsets = Vec::new();
        let mut counts = Vec::new();
        for c in chunks {
            offsets.push(file.len() as u64);
            counts.push(c.len() as u64);
            file.extend(*c);
        }
        let tags = Tags {
            width: 40,
            height: 30,
            photometric: Some(6),
            samples: 3,
            compression: 7,
            tile,
            rows_per_strip: 16,
            chunk_offsets: offsets,
            chunk_counts: counts,
            ..Tags::example()
        };
        (file, tags)
    }

    #[test]
    fn frames_within_their_strip_or_tile_pass() {
        let (f, t) = tags_with(&[&jpeg(40, 16), &jpeg(40, 14)], None);
        assert_eq!(check(&f, &t), Ok(()));
        let (f, t) = tags_with(&[&jpeg(48, 32)], Some((48, 32)));
        assert_eq!(check(&f, &t), Ok(()));
        assert_eq!(frame(&jpeg(7, 9)).map(|(w, h, _)| (w, h)), Some((7, 9)));
    }

    #[test]
    fn a_frame_larger_than_its_chunk_is_refused() {
        let (f, t) = tags_with(&[&jpeg(40, 16), &jpeg(8000, 8000)], None);
        let e = check(&f, &t).unwrap_err();
        assert!(e.contains("JPEG strip of 8000 × 8000"), "{e}");
        assert!(e.contains("strips of 40 × 16"), "{e}");
    }

    #[test]
    fn a_frame_in_the_tables_past_junk_or_past_the_byte_count_is_checked_too() {
        // The strip holds no frame; the tables (the whole JPEG) do.
        let (f, mut t) = tags_with(&[&[0xFF, 0xD8, 0xFF, 0xD9]], None);
        t.jpeg_tables = Some(jpeg(8000, 8000));
        assert!(check(&f, &t).unwrap_err().contains("8000 × 8000"));
        // Stray bytes before the frame, which the decoder skips.
        let big = jpeg(8000, 64);
        let mut junk = big[..2].to_vec();
        junk.extend([0, 0, 0]);
        junk.extend(&big[2..]);
        let (f, t) = tags_with(&[&junk], None);
        assert!(check(&f, &t).is_err());
        // A byte count past the end of the file: read to the end, as the decoder.
        let (f, mut t) = tags_with(&[&big], None);
        t.chunk_counts = vec![u64::MAX];
        assert!(check(&f, &t).is_err());
    }

    #[test]
    fn streams_that_do_not_read_are_left_to_the_decoder() {
        assert_eq!(frame(b"not a jpeg"), None);
        let (f, mut t) = tags_with(&[&jpeg(40, 16)], None);
        t.chunk_offsets = vec![u64::MAX];
        assert_eq!(check(&f, &t), Ok(()));
    }
}
