//! TIFF through the `tiff` crate directly, not through `image`, which reads only
//! the sample kinds it has a colour type for: here every sample kind the crate
//! decodes (signed, 32- and 64-bit, floating point), YCbCr, gray with alpha,
//! and, through a rewritten header, palettes and 12-bit rows (`plan.rs`).
//!
//! ```text
//! tags (plan.rs) ─► pixels, tiles, JPEG frames (jpeg_chunks.rs) and memory
//!   checked against the bounds ─► the file, or a copy with some entries
//!   rewritten (ifd.rs) ─► the decoder: all planes ─► gray levels (levels.rs)
//! ```
//!
//! The first directory is the image, as Pillow opens it. Width and height are
//! the stored ones whatever the orientation tag says. Everything the decoder
//! allocates is checked first: the decoded samples, their levels and the gray
//! image from the tags, a JPEG strip's frame against its strip, a tile's size;
//! the tag values themselves are within the decoder's 1 MiB per tag.

mod fax;
mod ifd;
mod jpeg_chunks;
mod levels;
mod plan;

use std::borrow::Cow;
use std::io::Cursor;

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::{TiffError, TiffFormatError};

use super::decode::{Bounds, Decoded, Header, Refused, Stage, refused};
use super::format::Format;
use ifd::Patch;
use plan::{Read, SampleKind, Tags};

pub fn decode(file: &[u8], bounds: &Bounds) -> Result<Decoded, Refused> {
    // A chain of directories that loops is read as its first (Pillow does).
    let (whole, tags): (Cow<[u8]>, Tags) = match Tags::read(file) {
        Ok(tags) => (Cow::Borrowed(file), tags),
        Err(TiffError::FormatError(TiffFormatError::CycleInOffsets)) => {
            let first = ifd::first_only(file)
                .ok_or_else(|| refused(Stage::Header, "TIFF: its directories loop"))?;
            let tags = Tags::read(&first).map_err(|e| unreadable(file, e))?;
            (Cow::Owned(first), tags)
        }
        Err(e) => return Err(unreadable(file, e)),
    };
    let bytes: &[u8] = &whole;
    let (w, h) = (u64::from(tags.width), u64::from(tags.height));
    bounds.check_pixels(w, h)?;
    let not_read = |what: String| {
        refused(
            Stage::Header,
            format!("TIFF with {what}: not read by naslake's TIFF decoding"),
        )
    };
    let plan = plan::plan(&tags).map_err(not_read)?;
    // The decoder sizes buffers by a tile's declared size, and by a JPEG
    // strip's or tile's own frame.
    if let Some((tw, tl)) = tags.tile {
        // A tile of separate planes holds one sample.
        let samples = if tags.planar == 2 { 1 } else { tags.samples };
        let tile = u64::from(tw)
            .saturating_mul(u64::from(tl))
            .saturating_mul(u64::from(samples))
            .saturating_mul(u64::from(tags.bits).div_ceil(8));
        bounds.check_memory(&format!("one {tw} × {tl} tile of this tiff"), tile)?;
    }
    // Strips or tiles that overlap are each decoded: a file whose chunks
    // cover it many times over costs that many decodes.
    let covered = chunk_bytes(&tags, bytes.len());
    let budget = (bytes.len() as u64)
        .saturating_mul(64)
        .saturating_add(1 << 20);
    if covered > budget {
        return Err(refused(
            Stage::Limits,
            format!(
                "TIFF whose strips or tiles come to {covered} bytes in a file of {}: \
                 read over and over",
                bytes.len()
            ),
        ));
    }
    if tags.compression == 7 {
        jpeg_chunks::check(bytes, &tags).map_err(|e| {
            refused(
                Stage::Limits,
                format!("TIFF with {e}: its decoding would go past the image's bounds"),
            )
        })?;
    }
    // The decoded samples (packed rows for fewer than 8 bits), their levels
    // (one byte each, made before wider samples are dropped; 8-bit unsigned
    // samples are their own), the gray image, and any copy of the file.
    let samples = (w * h).saturating_mul(u64::from(tags.samples));
    let decoded = match tags.bits {
        b if b < 8 => (w * u64::from(tags.samples) * u64::from(b)).div_ceil(8) * h,
        b => samples.saturating_mul(u64::from(b).div_ceil(8)),
    };
    let levels = match (tags.bits, plan.kind, &plan.read) {
        (8, SampleKind::Unsigned, Read::AsStored | Read::Rewritten(_)) => 0,
        // Fax levels are the pixels' (one sample each).
        _ => samples,
    };
    // A copy with a rewritten directory, besides the one of a looping chain.
    let copies = u64::from(plan.read.copies_the_file()) + u64::from(matches!(whole, Cow::Owned(_)));
    let copy = (bytes.len() as u64).saturating_mul(copies);
    bounds.check_memory(
        "this tiff",
        decoded
            .saturating_add(levels)
            .saturating_add(w * h)
            .saturating_add(copy),
    )?;
    let copy_of = |patches: &[Patch]| -> Result<Vec<u8>, Refused> {
        let mut copy = ifd::rewrite(bytes, patches).ok_or_else(|| {
            refused(
                Stage::Header,
                "TIFF: its first directory could not be rewritten",
            )
        })?;
        if plan.reverse_chunk_bits {
            reverse_chunk_bits(&mut copy, &tags);
        }
        Ok(copy)
    };
    let (levels, layout) = match &plan.read {
        Read::AsStored => read(bytes, &tags, &plan, bounds)?,
        Read::Fax { group3 } => {
            let levels = fax::levels(bytes, &tags, *group3)
                .map_err(|e| refused(Stage::Decode, format!("TIFF: {e}")))?;
            let layout = levels::Layout {
                width: tags.width as usize,
                height: tags.height as usize,
                samples: 1,
                planar: false,
                packed_bits: None,
            };
            (levels, layout)
        }
        Read::Rewritten(patches) => read(&copy_of(patches)?, &tags, &plan, bounds)?,
        Read::PlaneByPlane(patches) => {
            // One copy, narrowed to each plane the model uses in turn.
            let mut copy = copy_of(patches)?;
            let used = plan.model.samples_used();
            let mut all = Vec::with_capacity((w * h) as usize * used);
            let mut layout = None;
            for k in 0..used {
                ifd::narrow_to_plane(&mut copy, bytes, k, usize::from(tags.samples))
                    .ok_or_else(|| refused(Stage::Header, "TIFF: its tile arrays do not read"))?;
                let (plane, one) = read(&copy, &tags, &plan, bounds)?;
                all.extend(plane);
                layout = Some(levels::Layout {
                    samples: used,
                    planar: true,
                    ..one
                });
            }
            (
                all,
                layout.ok_or_else(|| refused(Stage::Header, "TIFF: no planes"))?,
            )
        }
    };
    let gray = levels::gray_of_levels(&levels, &layout, &plan.model)
        .map_err(|e| refused(Stage::Decode, format!("TIFF data: {e}")))?;
    let header = Header {
        format: Format::Tiff,
        width: tags.width,
        height: tags.height,
        color_type: plan.color_type,
        bit_depth: u8::try_from(plan.bits).unwrap_or(u8::MAX),
        progressive: None,
    };
    Ok(Decoded { header, gray })
}

/// The bytes of every strip or tile, as the decoder reads them (to its byte
/// count or the end of the file), summed.
fn chunk_bytes(tags: &Tags, len: usize) -> u64 {
    let len = len as u64;
    tags.chunk_offsets
        .iter()
        .zip(&tags.chunk_counts)
        .map(|(&offset, &count)| count.min(len.saturating_sub(offset)))
        .fold(0u64, u64::saturating_add)
}

/// The levels of every sample of the image (or plane) in `stored`, as the
/// decoder lays them out.
fn read(
    stored: &[u8],
    tags: &Tags,
    plan: &plan::Plan,
    bounds: &Bounds,
) -> Result<(Vec<u8>, levels::Layout), Refused> {
    let mut limits = Limits::default();
    let max = usize::try_from(bounds.max_decode_bytes).unwrap_or(usize::MAX);
    limits.decoding_buffer_size = max;
    limits.intermediate_buffer_size = max;
    let mut decoder = Decoder::new(Cursor::new(stored))
        .map_err(|e| tiff_error(Stage::Header, Some(tags), e))?
        .with_limits(limits);
    // The samples the decoder gives per pixel: the colour ones, without an
    // unspecified extra sample (RGBX, CMYKX), or all of gray's.
    let given = decoder
        .colortype()
        .map_err(|e| tiff_error(Stage::Header, Some(tags), e))?
        .num_samples();
    let mut decoded = DecodingResult::U8(Vec::new());
    let read = decoder
        .read_image_to_buffer(&mut decoded)
        .map_err(|e| tiff_error(Stage::Decode, Some(tags), e))?;
    if decoded.as_buffer(0).as_bytes().len() < read.complete_len {
        return Err(refused(
            Stage::Limits,
            format!(
                "decoding this tiff's {} planes would take more than max_decode_bytes ({})",
                read.planes, bounds.max_decode_bytes
            ),
        ));
    }
    let packed = !matches!(tags.bits, 8 | 16 | 32 | 64);
    let layout = levels::Layout {
        width: tags.width as usize,
        height: tags.height as usize,
        samples: usize::from(given),
        planar: read.planes > 1,
        packed_bits: packed.then_some(tags.bits),
    };
    let levels = levels::levels_of(decoded, &layout, &plan.model, plan.kind)
        .map_err(|e| refused(Stage::Decode, format!("TIFF data: {e}")))?;
    Ok((levels, layout))
}

/// Every byte of every strip or tile with its bits in the other order, once
/// (strips may share bytes; the ranges are merged first).
fn reverse_chunk_bits(file: &mut [u8], tags: &Tags) {
    let len = file.len();
    let mut ranges: Vec<(usize, usize)> = tags
        .chunk_offsets
        .iter()
        .zip(&tags.chunk_counts)
        .filter_map(|(&offset, &count)| {
            let start = usize::try_from(offset).ok()?;
            let end = start.saturating_add(usize::try_from(count).unwrap_or(usize::MAX));
            // A range past the end is the decoder's to report.
            (start < len).then_some((start, end.min(len)))
        })
        .collect();
    ranges.sort_unstable();
    let mut done = 0;
    for (start, end) in ranges {
        let from = start.max(done);
        if from < end {
            file[from..end]
                .iter_mut()
                .for_each(|b| *b = b.reverse_bits());
            done = end;
        }
    }
}

/// A first directory the decoder cannot open: named from its raw entries
/// where they tell (a photometric interpretation it has no name for).
fn unreadable(bytes: &[u8], e: TiffError) -> Refused {
    // 0 to 10 but 7 are the decoder's own.
    let photometric = ifd::short(bytes, 262).filter(|&p| p > 10 || p == 7);
    match (photometric, &e) {
        (Some(p), TiffError::UnsupportedError(_)) => {
            let name = match p {
                32803 => " (CFA: raw sensor data)",
                34892 => " (LinearRaw)",
                32844 | 32845 => " (LogLuv)",
                _ => "",
            };
            refused(
                Stage::Header,
                format!("TIFF with photometric interpretation {p}{name}: not read ({e})"),
            )
        }
        _ => tiff_error(Stage::Header, None, e),
    }
}

/// The decoder's error as a reject: a refusal names what the tags hold.
fn tiff_error(stage: Stage, tags: Option<&Tags>, e: TiffError) -> Refused {
    match e {
        TiffError::LimitsExceeded => refused(
            Stage::Limits,
            "decoding this tiff would go over the decoder's limits \
             (max_decode_bytes, or 1 MiB for one tag's values)",
        ),
        TiffError::UnsupportedError(_) => {
            let named = tags.map(plan::unusual).unwrap_or_default();
            let what = if named.is_empty() {
                String::new()
            } else {
                format!(" with {}", named.join(", "))
            };
            refused(
                stage,
                format!("TIFF{what}: not supported by the TIFF decoder ({e})"),
            )
        }
        other => refused(stage, format!("TIFF: {other}")),
    }
}
