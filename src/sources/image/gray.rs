//! The grayscale thumbnail every metric is computed on, defined so that anyone can
//! compute the same pixels with Pillow:
//!
//! - **Gray levels** are ITU-R 601-2 luma in Pillow's fixed point,
//!   `L = (R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16` ([`luma`]); alpha is ignored;
//!   16-bit samples are first cut to their high byte, as Pillow reads them (a
//!   TIFF's other sample kinds as `tiff/levels.rs` says); CMYK
//!   goes to RGB as Pillow does (`R = (255 − K) − (C·(255 − K))/255`).
//! - **Size**: the long side is the source's `thumbnail_long_side` (or the
//!   image's own, never enlarged), the short side in proportion, rounded
//!   ([`thumbnail_size`]).
//! - **Filter**: Pillow's `Image.BOX` resampling, horizontal pass then vertical,
//!   each rounded to 8 bits, with Pillow's 22-bit fixed-point weights ([`resize`]),
//!   so `im.resize(size, Image.BOX)` gives the same pixels.
//!
//! A YCbCr JPEG is decoded to its Y plane, which is that same luma (Pillow
//! computes L from the RGB it converts Y, Cb, Cr to; the two differ by rounding).

/// An 8-bit grayscale image, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Pillow's `L` of an RGB pixel.
#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// Pillow's CMYK → RGB, one channel: `(255 − K) − (X·(255 − K))/255`, rounded as
/// Pillow's `MULDIV255`.
#[inline]
fn cmyk_channel(x: u8, k: u8) -> u8 {
    let nk = 255 - u32::from(k);
    let t = u32::from(x) * nk + 128;
    let muldiv = ((t >> 8) + t) >> 8;
    nk.saturating_sub(muldiv) as u8
}

/// Pillow's `L` of a CMYK pixel (through RGB).
#[inline]
pub fn cmyk_luma(c: u8, m: u8, y: u8, k: u8) -> u8 {
    luma(cmyk_channel(c, k), cmyk_channel(m, k), cmyk_channel(y, k))
}

/// The thumbnail's size for an image of `width × height`: the long side `long`
/// (or the image's own when smaller), the other in proportion, rounded, at least 1.
pub fn thumbnail_size(width: usize, height: usize, long: usize) -> (usize, usize) {
    let own = width.max(height);
    if own <= long {
        return (width, height);
    }
    let scaled = |side: usize| ((side * long + own / 2) / own).max(1);
    if width >= height {
        (long, scaled(height))
    } else {
        (scaled(width), long)
    }
}

/// Pillow's fixed-point precision for 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel of one axis: the input pixels it averages (a run) and
/// their weight in fixed point. Box weights within a run are equal, so this is
/// all of Pillow's coefficient table, in memory proportional to the output.
struct Spans {
    spans: Vec<(usize, usize, i64)>,
}

/// Pillow's `precompute_coeffs` for the box filter, with its fixed-point rounding.
fn box_spans(input: usize, output: usize) -> Spans {
    let scale = input as f64 / output as f64;
    let filterscale = scale.max(1.0);
    let support = 0.5 * filterscale;
    let ss = 1.0 / filterscale;
    let one = f64::from(1u32 << PRECISION_BITS);
    let spans = (0..output)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            // C's (int) truncates toward zero; Pillow clamps to the image.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64).max(0) as usize;
            // The box is 1 on (-0.5, 0.5], so the pixels it covers are one run.
            let covered = |x: usize| {
                let t = (x as f64 - center + 0.5) * ss;
                t > -0.5 && t <= 0.5
            };
            let first = (xmin..xmax).find(|x| covered(*x)).unwrap_or(xmin);
            let count = (first..xmax).take_while(|x| covered(*x)).count();
            let k = if count == 0 {
                0
            } else {
                (0.5 + one / count as f64) as i64
            };
            (first, count, k)
        })
        .collect();
    Spans { spans }
}

/// Pillow's `clip8` of a run's sum times its weight, plus the rounding half.
/// The product is at most 255 · 2²² (a run's weight is 2²² over its length), so
/// wrapping arithmetic never wraps; it spares a debug build's overflow checks in
/// the innermost loop.
#[inline]
fn clip8(sum: u64, k: i64) -> u8 {
    let acc = (sum as i64)
        .wrapping_mul(k)
        .wrapping_add(1 << (PRECISION_BITS - 1));
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `src` resized to `width × height` by Pillow's box filter.
pub fn resize(src: &Gray, width: usize, height: usize) -> Gray {
    let horizontal = if width == src.width {
        src.clone()
    } else {
        let w = box_spans(src.width, width);
        let mut out = vec![0u8; width * src.height];
        for (row, dst) in src
            .pixels
            .chunks_exact(src.width)
            .zip(out.chunks_exact_mut(width))
        {
            for (d, &(first, count, k)) in dst.iter_mut().zip(&w.spans) {
                // A run is at most one row long: its sum fits.
                let sum = row[first..first + count]
                    .iter()
                    .fold(0u64, |a, p| a.wrapping_add(u64::from(*p)));
                *d = clip8(sum, k);
            }
        }
        Gray {
            width,
            height: src.height,
            pixels: out,
        }
    };
    if height == horizontal.height {
        return horizontal;
    }
    let w = box_spans(horizontal.height, height);
    let mut out = vec![0u8; width * height];
    let mut sums = vec![0u64; width];
    for (dst, &(first, count, k)) in out.chunks_exact_mut(width).zip(&w.spans) {
        sums.fill(0);
        for row in horizontal.pixels[first * width..(first + count) * width].chunks_exact(width) {
            for (s, p) in sums.iter_mut().zip(row) {
                *s = s.wrapping_add(u64::from(*p));
            }
        }
        for (d, s) in dst.iter_mut().zip(&sums) {
            *d = clip8(*s, k);
        }
    }
    Gray {
        width,
        height,
        pixels: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_is_pillows_fixed_point() {
        assert_eq!(luma(0, 0, 0), 0);
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(0, 0, 255), 29);
        assert_eq!(cmyk_luma(0, 0, 0, 0), 255);
        assert_eq!(cmyk_luma(0, 0, 0, 255), 0);
    }

    #[test]
    fn thumbnail_keeps_the_aspect_and_never_enlarges() {
        assert_eq!(thumbnail_size(4000, 3000, 512), (512, 384));
        assert_eq!(thumbnail_size(3000, 4000, 512), (384, 512));
        assert_eq!(thumbnail_size(300, 200, 512), (300, 200));
        assert_eq!(thumbnail_size(100_000, 10, 512), (512, 1));
    }

    #[test]
    fn box_resize_averages_whole_blocks() {
        // A 4×2 image to 2×1: each output is the mean of a 2×2 block, rounded.
        let src = Gray {
            width: 4,
            height: 2,
            pixels: vec![0, 10, 100, 101, 20, 30, 200, 201],
        };
        let out = resize(&src, 2, 1);
        assert_eq!(out.pixels, vec![15, 151]);
        // Same size: unchanged.
        assert_eq!(resize(&src, 4, 2), src);
    }
}
