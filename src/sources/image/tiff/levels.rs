//! A TIFF's decoded samples to gray levels, by the rules of `gray.rs` for every
//! kind of sample a TIFF stores:
//!
//! - **unsigned**, n bits: under 8, spread over 0..=255 (`v · 255 / (2ⁿ − 1)`,
//!   rounded: 4-bit 15 is 255, as Pillow's `L;4` reads it); 8, as stored; over
//!   8, the top 8 bits (`v >> (n − 8)`: a 16-bit sample's high byte, a 12-bit
//!   camera's 4095 is 255);
//! - **signed**, n bits: offset to unsigned first (`v + 2ⁿ⁻¹`: the most negative
//!   value is black, zero mid-gray), then as unsigned;
//! - **floating point**: 0.0 is black and 1.0 white, clamped, rounded
//!   (`round(clamp(v, 0, 1) · 255)`), as `image` reads float RGB.
//!
//! Then per pixel by the plan's model: the first sample (gray, and L* of
//! L*a*b*; alpha and other extra samples ignored, but premultiplied alpha
//! divided out as Pillow's `La` → `LA` does: `l · 255 / a` clipped, `l` where
//! alpha is 0 or 255), Pillow's luma of R, G, B
//! (premultiplied alpha divided out first, as Pillow does: `c · 255 / a` of the
//! levels, clipped; 0 where alpha is 0), Pillow's CMYK through RGB, Y of YCbCr,
//! or the palette colour's luma.

use tiff::decoder::DecodingResult;

use super::plan::{Model, SampleKind};
use crate::sources::image::gray::{Gray, cmyk_luma, luma};

/// Where the decoder put the samples.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub width: usize,
    pub height: usize,
    /// Samples per pixel the decoder gives (an unspecified extra sample of
    /// RGB or CMYK it leaves out).
    pub samples: usize,
    /// One plane per sample (PlanarConfiguration 2), else interleaved.
    pub planar: bool,
    /// Bits per sample when the rows are packed bytes (under 8 bits, or the
    /// bytes of a rewritten header): each row then starts on a byte.
    pub packed_bits: Option<u16>,
}

/// The 8-bit level of one sample value of `bits` bits.
fn unsigned_level(v: u64, bits: u16) -> u8 {
    match bits {
        8 => v as u8,
        b if b > 8 => (v >> (b - 8)) as u8,
        b => {
            let max = (1u64 << b) - 1;
            ((v.min(max) * 255 + max / 2) / max) as u8
        }
    }
}

fn signed_level(v: i64, bits: u16) -> u8 {
    // Offset binary: the n-bit two's complement value plus 2ⁿ⁻¹.
    let offset = (v as u64).wrapping_add(1u64 << (bits - 1)) & mask(bits);
    unsigned_level(offset, bits)
}

fn float_level(v: f64) -> u8 {
    if v.is_nan() {
        return 0;
    }
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn mask(bits: u16) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// One stored sample's level, or (for a palette) its raw index.
fn level(raw: u64, bits: u16, kind: SampleKind, index: bool) -> u8 {
    match (index, kind) {
        (true, _) => raw.min(255) as u8,
        (false, SampleKind::Unsigned) => unsigned_level(raw, bits),
        (false, SampleKind::Signed) => {
            // Sign-extend the n-bit field.
            let shift = 64 - u32::from(bits);
            signed_level(((raw << shift) as i64) >> shift, bits)
        }
        // Packed floats do not occur (plan.rs refuses them).
        (false, SampleKind::Float) => 0,
    }
}

/// The levels of every sample, interleaved or plane after plane as decoded.
fn sample_levels(
    decoded: DecodingResult,
    layout: &Layout,
    kind: SampleKind,
    index: bool,
) -> Option<Vec<u8>> {
    let whole = |v: u64, bits: u16| level(v, bits, kind, index);
    if let Some(bits) = layout.packed_bits {
        // Packed rows come as bytes: unsigned or signed by the sample format.
        return match decoded {
            DecodingResult::U8(v) => Some(unpack(&v, layout, bits, kind, index)),
            DecodingResult::I8(v) => {
                let bytes: Vec<u8> = v.into_iter().map(|b| b as u8).collect();
                Some(unpack(&bytes, layout, bits, kind, index))
            }
            _ => None,
        };
    }
    Some(match decoded {
        DecodingResult::U8(v) if index || kind == SampleKind::Unsigned => v,
        DecodingResult::U8(v) => v.into_iter().map(|s| whole(u64::from(s), 8)).collect(),
        DecodingResult::U16(v) => v.into_iter().map(|s| whole(u64::from(s), 16)).collect(),
        DecodingResult::U32(v) => v.into_iter().map(|s| whole(u64::from(s), 32)).collect(),
        DecodingResult::U64(v) => v.into_iter().map(|s| whole(s, 64)).collect(),
        DecodingResult::I8(v) => v.into_iter().map(|s| signed_level(s.into(), 8)).collect(),
        DecodingResult::I16(v) => v.into_iter().map(|s| signed_level(s.into(), 16)).collect(),
        DecodingResult::I32(v) => v.into_iter().map(|s| signed_level(s.into(), 32)).collect(),
        DecodingResult::I64(v) => v.into_iter().map(|s| signed_level(s, 64)).collect(),
        DecodingResult::F16(v) => v
            .into_iter()
            .map(|s| float_level(f64::from(s.to_f32())))
            .collect(),
        DecodingResult::F32(v) => v.into_iter().map(|s| float_level(s.into())).collect(),
        DecodingResult::F64(v) => v.into_iter().map(float_level).collect(),
    })
}

/// Samples of `bits` bits packed most significant bit first, each row starting
/// on a byte, to one level each, interleaved. Bytes are taken into an
/// accumulator one at a time and each sample cut from its top.
fn unpack(bytes: &[u8], layout: &Layout, bits: u16, kind: SampleKind, index: bool) -> Vec<u8> {
    let per_row = layout.width * layout.samples;
    let row_bytes = (per_row as u64 * u64::from(bits)).div_ceil(8) as usize;
    let width = u32::from(bits);
    let mut out = Vec::with_capacity(per_row * layout.height);
    for row in bytes.chunks(row_bytes.max(1)).take(layout.height) {
        let mut next = row.iter();
        let (mut acc, mut held) = (0u128, 0u32);
        for _ in 0..per_row {
            while held < width {
                acc = (acc << 8) | u128::from(next.next().copied().unwrap_or(0));
                held += 8;
            }
            held -= width;
            let raw = ((acc >> held) as u64) & mask(bits);
            acc &= (1u128 << held) - 1;
            out.push(level(raw, bits, kind, index));
        }
    }
    out
}

/// The level of every decoded sample (a palette's: its index), in the order
/// decoded: one plane's, or all interleaved.
pub fn levels_of(
    decoded: DecodingResult,
    layout: &Layout,
    model: &Model,
    kind: SampleKind,
) -> Result<Vec<u8>, String> {
    let palette = matches!(model, Model::Palette(_));
    sample_levels(decoded, layout, kind, palette)
        .ok_or_else(|| "the decoder gave wide samples where packed rows were expected".into())
}

/// The gray image of the levels of every sample (`layout` says how they lie).
pub fn gray_of_levels(levels: &[u8], layout: &Layout, model: &Model) -> Result<Gray, String> {
    let pixels = layout.width * layout.height;
    let n = layout.samples.max(1);
    if levels.len() < pixels * n {
        return Err(format!(
            "the decoder gave {} samples of the {} the image holds",
            levels.len(),
            pixels * n
        ));
    }
    // Packed rows are unpacked interleaved (plan.rs refuses separate planes of
    // packed samples).
    let planar = layout.planar && layout.packed_bits.is_none() && n > 1;
    let at = |p: usize, s: usize| -> u8 {
        let i = if planar { s * pixels + p } else { p * n + s };
        levels.get(i).copied().unwrap_or(0)
    };
    let gray: Vec<u8> = (0..pixels)
        .map(|p| match model {
            Model::Gray { invert: false } | Model::YCbCr => at(p, 0),
            Model::Gray { invert: true } => 255 - at(p, 0),
            Model::GrayPremultiplied { invert } => {
                let (l, a) = (u32::from(at(p, 0)), u32::from(at(p, 1)));
                let straight = match a {
                    0 | 255 => l as u8,
                    a => (l * 255 / a).min(255) as u8,
                };
                if *invert { 255 - straight } else { straight }
            }
            Model::Rgb {
                premultiplied: false,
            } => luma(at(p, 0), at(p, 1), at(p, 2)),
            Model::Rgb {
                premultiplied: true,
            } => {
                let a = u32::from(at(p, 3));
                let straight = |c: u8| match a {
                    0 => 0,
                    255 => c,
                    a => (u32::from(c) * 255 / a).min(255) as u8,
                };
                luma(straight(at(p, 0)), straight(at(p, 1)), straight(at(p, 2)))
            }
            Model::Cmyk => cmyk_luma(at(p, 0), at(p, 1), at(p, 2), at(p, 3)),
            Model::Palette(colours) => {
                let [r, g, b] = colours
                    .get(usize::from(at(p, 0)))
                    .copied()
                    .unwrap_or([0; 3]);
                luma(r, g, b)
            }
        })
        .collect();
    Ok(Gray {
        width: layout.width,
        height: layout.height,
        pixels: gray,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gray image of the decoded samples; an error when the decoder gave fewer
    /// samples than the layout holds, or wide ones where packed bytes were asked for.
    pub fn to_gray(
        decoded: DecodingResult,
        layout: &Layout,
        model: &Model,
        kind: SampleKind,
    ) -> Result<Gray, String> {
        let levels = levels_of(decoded, layout, model, kind)?;
        gray_of_levels(&levels, layout, model)
    }

    #[test]
    fn each_kind_of_sample_has_its_level() {
        assert_eq!(unsigned_level(15, 4), 255);
        assert_eq!(unsigned_level(1, 4), 17);
        assert_eq!(unsigned_level(1, 1), 255);
        assert_eq!(unsigned_level(2, 2), 170);
        assert_eq!(unsigned_level(4095, 12), 255);
        assert_eq!(unsigned_level(0x0ABC, 12), 0xAB);
        assert_eq!(unsigned_level(0xABCD, 16), 0xAB);
        assert_eq!(unsigned_level(0xAB00_0000, 32), 0xAB);
        assert_eq!(signed_level(-128, 8), 0);
        assert_eq!(signed_level(0, 8), 128);
        assert_eq!(signed_level(127, 8), 255);
        assert_eq!(signed_level(-32768, 16), 0);
        assert_eq!(signed_level(0x1200, 16), 0x92);
        assert_eq!(signed_level(i64::from(i32::MIN), 32), 0);
        assert_eq!(signed_level(i64::MIN, 64), 0);
        assert_eq!(signed_level(i64::MAX, 64), 255);
        assert_eq!(float_level(0.5), 128);
        assert_eq!(float_level(-3.0), 0);
        assert_eq!(float_level(7.0), 255);
        assert_eq!(float_level(f64::NAN), 0);
    }

    #[test]
    fn packed_rows_start_on_a_byte_and_read_most_significant_bit_first() {
        // Three 12-bit samples per row (4.5 bytes, so 5), two rows.
        let rows = [
            0xFF, 0xF0, 0x01, 0x80, 0x00, // 0xFFF, 0x001, 0x800, padding
            0x00, 0x0A, 0xBC, 0x12, 0x30, // 0x000, 0xABC, 0x123
        ];
        let layout = Layout {
            width: 3,
            height: 2,
            samples: 1,
            planar: false,
            packed_bits: Some(12),
        };
        let g = to_gray(
            DecodingResult::U8(rows.to_vec()),
            &layout,
            &Model::Gray { invert: false },
            SampleKind::Unsigned,
        )
        .unwrap();
        assert_eq!(g.pixels, vec![0xFF, 0x00, 0x80, 0x00, 0xAB, 0x12]);
        let signed = to_gray(
            DecodingResult::U8(rows.to_vec()),
            &layout,
            &Model::Gray { invert: true },
            SampleKind::Signed,
        )
        .unwrap();
        // 0xFFF is −1: offset to 0x7FF, top byte 0x7F, inverted 0x80.
        assert_eq!(signed.pixels[0], 255 - 0x7F);
    }

    #[test]
    fn planes_and_palettes_give_the_pixel_they_hold() {
        let layout = Layout {
            width: 2,
            height: 1,
            samples: 3,
            planar: true,
            packed_bits: None,
        };
        // R plane, G plane, B plane.
        let planes = DecodingResult::U16(vec![0xFF00, 0, 0, 0xFF00, 0, 0]);
        let g = to_gray(
            planes,
            &layout,
            &Model::Rgb {
                premultiplied: false,
            },
            SampleKind::Unsigned,
        )
        .unwrap();
        assert_eq!(g.pixels, vec![luma(255, 0, 0), luma(0, 255, 0)]);
        let palette = Model::Palette(vec![[0, 0, 0], [255, 255, 255], [10, 20, 30], [0; 3]]);
        let packed = Layout {
            width: 4,
            height: 1,
            samples: 1,
            planar: false,
            packed_bits: Some(2),
        };
        // Indices 1, 2, 0, 1 in one byte.
        let one_byte = DecodingResult::U8(vec![0b01_10_00_01]);
        let g = to_gray(one_byte, &packed, &palette, SampleKind::Unsigned).unwrap();
        assert_eq!(g.pixels, vec![255, luma(10, 20, 30), 0, 255]);
        let short = DecodingResult::U16(vec![0; 5]);
        assert!(
            to_gray(
                short,
                &layout,
                &Model::Rgb {
                    premultiplied: false
                },
                SampleKind::Unsigned
            )
            .is_err()
        );
    }
}
