//! The JPEG streams of a JPEG-compressed TIFF (compression 7), checked before
//! the decoder sees them: each strip or tile is a JPEG of its own, read after
//! the JPEGTables, and the decoder allocates what that JPEG's frame header
//! declares, not what the TIFF does. A 1 × 1 TIFF could carry a 16 384 × 16 384
//! JPEG; here a frame larger than its strip or tile (rounded up to a 16-pixel
//! MCU), in the tables or in a chunk, is refused, so the decode stays within
//! the image the TIFF declares and the bounds checked it by. A chunk is read as
//! the decoder reads it: up to its byte count or the end of the file.

use super::plan::Tags;

/// SOF markers: C0–CF but DHT (C4), JPG (C8) and DAC (CC).
fn is_frame(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// The frame's (width, height, components) of the JPEG stream `jpeg` (with or
/// without its start-of-image marker), when it declares one before its scan.
fn frame(jpeg: &[u8]) -> Option<(u32, u32, u8)> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from(u16::from_be_bytes(
            jpeg.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let mut at = if jpeg.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        0
    };
    loop {
        // Fill bytes (0xFF) may precede a marker.
        while *jpeg.get(at)? == 0xFF && *jpeg.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *jpeg.get(at)? != 0xFF {
            return None;
        }
        let marker = *jpeg.get(at + 1)?;
        match marker {
            m if is_frame(m) => {
                let height = be(at + 5)?;
                let width = be(at + 7)?;
                let components = *jpeg.get(at + 9)?;
                return Some((width, height, components));
            }
            0xDA | 0xD9 => return None,
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => at += 2 + usize::try_from(be(at + 2)?).ok()?,
        }
    }
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
    if let Some(found) = tags.jpeg_tables.as_deref().and_then(frame) {
        fits(found)?;
    }
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
        let Some(jpeg) = bytes.get(start..end) else {
            continue; // past the end: the decoder says the file is short
        };
        if let Some(found) = frame(jpeg) {
            fits(found)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 of 4 bytes, then a baseline SOF of `w × h × c`.
    fn jpeg(w: u16, h: u16, c: u8) -> Vec<u8> {
        let mut j = vec![
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xFF, 0xC0, 0, 11, 8,
        ];
        j.extend(h.to_be_bytes());
        j.extend(w.to_be_bytes());
        j.push(c);
        j.extend([1, 0x11, 0]);
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
            bits: 8,
            sample_format: 1,
            samples: 3,
            compression: 7,
            predictor: 1,
            planar: 1,
            fill_order: 1,
            tile,
            rows_per_strip: 16,
            chunk_offsets: offsets,
            chunk_counts: counts,
            subsampling: (2, 2),
            colormap: None,
            extra_sample: None,
            has_sample_format: false,
            jpeg_tables: None,
        };
        (file, tags)
    }

    #[test]
    fn frames_within_their_strip_or_tile_pass() {
        let (f, t) = tags_with(&[&jpeg(40, 16, 3), &jpeg(40, 14, 3)], None);
        assert_eq!(check(&f, &t), Ok(()));
        let (f, t) = tags_with(&[&jpeg(48, 32, 3)], Some((48, 32)));
        assert_eq!(check(&f, &t), Ok(()));
        assert_eq!(frame(&jpeg(7, 9, 1)), Some((7, 9, 1)));
    }

    #[test]
    fn a_frame_larger_than_its_chunk_is_refused() {
        let (f, t) = tags_with(&[&jpeg(40, 16, 3), &jpeg(16384, 16384, 3)], None);
        let e = check(&f, &t).unwrap_err();
        assert!(e.contains("JPEG strip of 16384 × 16384"), "{e}");
        assert!(e.contains("strips of 40 × 16"), "{e}");
        let (f, t) = tags_with(&[&jpeg(48, 32, 5)], Some((48, 32)));
        assert!(check(&f, &t).is_err());
    }

    #[test]
    fn a_frame_in_the_tables_or_past_the_byte_count_is_checked_too() {
        // The strip holds no frame; the tables do.
        let (f, mut t) = tags_with(&[&[0xFF, 0xD8, 0xFF, 0xDA]], None);
        t.jpeg_tables = Some(jpeg(16384, 16384, 3));
        assert!(check(&f, &t).unwrap_err().contains("16384 × 16384"));
        // A byte count past the end of the file: read to the end, as the decoder.
        let (f, mut t) = tags_with(&[&jpeg(16384, 64, 1)], None);
        t.chunk_counts = vec![u64::MAX];
        assert!(check(&f, &t).is_err());
    }

    #[test]
    fn streams_that_do_not_read_are_left_to_the_decoder() {
        assert_eq!(frame(b"not a jpeg"), None);
        assert_eq!(frame(&[0xFF, 0xD8, 0xFF, 0xDA]), None);
        assert_eq!(frame(&[0xFF, 0xDA]), None, "a scan without a frame");
        assert_eq!(frame(&jpeg(40, 16, 3)[..12]), None);
        let (f, mut t) = tags_with(&[&jpeg(40, 16, 3)], None);
        t.chunk_offsets = vec![u64::MAX];
        assert_eq!(check(&f, &t), Ok(()));
    }
}
