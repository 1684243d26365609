//! TIFF through the `tiff` crate directly, not through `image`, which reads only
//! the sample kinds it has a colour type for: here every sample kind the crate
//! decodes (signed, 32- and 64-bit, floating point), YCbCr, gray with alpha,
//! and, through a rewritten header, palettes and 12-bit rows (`plan.rs`).
//!
//! ```text
//! tags (plan.rs) ─► pixels and memory checked against the bounds
//!   ─► the file, or a copy with some entries rewritten (rewrite.rs)
//!   ─► the decoder: all planes ─► gray levels (levels.rs)
//! ```
//!
//! The first directory is the image, as Pillow opens it. Width and height are
//! the stored ones whatever the orientation tag says.

mod levels;
mod plan;
mod rewrite;

use std::borrow::Cow;
use std::io::Cursor;

use tiff::TiffError;
use tiff::decoder::{Decoder, DecodingResult, Limits};

use super::decode::{Bounds, Decoded, Header, Refused, Stage, refused};
use super::format::Format;
use plan::{Read, Tags};

pub fn decode(bytes: &[u8], bounds: &Bounds) -> Result<Decoded, Refused> {
    let tags = Tags::read(bytes).map_err(|e| tiff_error(Stage::Header, None, e))?;
    let (w, h) = (u64::from(tags.width), u64::from(tags.height));
    bounds.check_pixels(w, h)?;
    let plan = plan::plan(&tags).map_err(|what| {
        refused(
            Stage::Header,
            format!("TIFF with {what}: not read by naslake's TIFF decoding"),
        )
    })?;
    let stored: Cow<[u8]> = match &plan.read {
        Read::AsStored => Cow::Borrowed(bytes),
        Read::Rewritten(patches) => {
            Cow::Owned(rewrite::rewrite(bytes, patches).ok_or_else(|| {
                refused(
                    Stage::Header,
                    "TIFF: its first directory could not be rewritten",
                )
            })?)
        }
    };
    let copied = match &stored {
        Cow::Owned(b) => b.len() as u64,
        Cow::Borrowed(_) => 0,
    };
    let mut limits = Limits::default();
    let max = usize::try_from(bounds.max_decode_bytes).unwrap_or(usize::MAX);
    limits.decoding_buffer_size = max;
    limits.intermediate_buffer_size = max;
    let mut decoder = Decoder::new(Cursor::new(&*stored))
        .map_err(|e| tiff_error(Stage::Header, Some(&tags), e))?
        .with_limits(limits);
    let layout = decoder
        .image_buffer_layout()
        .map_err(|e| tiff_error(Stage::Header, Some(&tags), e))?;
    // The decoded samples, their levels (one byte each, made before the wider
    // samples are dropped; 8-bit unsigned samples are their own levels) and
    // the gray image are alive at once, with any copy of the file.
    let levels = match (tags.bits, plan.kind) {
        (8, plan::SampleKind::Unsigned) => 0,
        _ => (w * h).saturating_mul(u64::from(tags.samples)),
    };
    bounds.check_memory(
        "this tiff",
        (layout.complete_len as u64)
            .saturating_add(levels)
            .saturating_add(w * h)
            .saturating_add(copied),
    )?;
    let mut decoded = DecodingResult::U8(Vec::new());
    let read = decoder
        .read_image_to_buffer(&mut decoded)
        .map_err(|e| tiff_error(Stage::Decode, Some(&tags), e))?;
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
        samples: usize::from(tags.samples),
        planar: read.planes > 1,
        packed_bits: packed.then_some(tags.bits),
    };
    let gray = levels::to_gray(decoded, &layout, &plan.model, plan.kind)
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

/// The decoder's error as a reject: a refusal names what the tags hold.
fn tiff_error(stage: Stage, tags: Option<&Tags>, e: TiffError) -> Refused {
    match e {
        TiffError::LimitsExceeded => refused(
            Stage::Limits,
            "decoding this tiff would take more than max_decode_bytes",
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
