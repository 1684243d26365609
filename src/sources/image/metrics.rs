//! Quality metrics and the perceptual hash of one grayscale thumbnail. Every
//! definition is written in `schemas/image_inspections.toml` (the column
//! comments) and checked against numpy on the same pixels in the tests.

use super::gray::{Gray, resize};

/// Gray levels at or below this are clipped dark.
pub const DARK_LEVEL: u8 = 5;
/// Gray levels at or above this are clipped bright.
pub const BRIGHT_LEVEL: u8 = 250;

#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub p1: f64,
    pub p50: f64,
    pub p99: f64,
    pub dark_fraction: f64,
    pub bright_fraction: f64,
    pub rms_contrast: f64,
    pub sharpness: f64,
    pub entropy: f64,
    pub dhash: i64,
}

/// The metrics of a thumbnail with at least one pixel.
pub fn measure(g: &Gray) -> Metrics {
    let mut hist = [0u64; 256];
    for p in &g.pixels {
        hist[usize::from(*p)] += 1;
    }
    let n = g.pixels.len().max(1) as f64;
    let count = g.pixels.len() as u64;
    let mean = hist
        .iter()
        .enumerate()
        .map(|(v, c)| v as f64 * *c as f64)
        .sum::<f64>()
        / n;
    let variance = hist
        .iter()
        .enumerate()
        .map(|(v, c)| (v as f64 - mean).powi(2) * *c as f64)
        .sum::<f64>()
        / n;
    let entropy = hist
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum::<f64>();
    let below = |level: u8| hist[..=usize::from(level)].iter().sum::<u64>();
    let above = |level: u8| hist[usize::from(level)..].iter().sum::<u64>();
    Metrics {
        p1: percentile(&hist, count, 1),
        p50: percentile(&hist, count, 50),
        p99: percentile(&hist, count, 99),
        dark_fraction: below(DARK_LEVEL) as f64 / n,
        bright_fraction: above(BRIGHT_LEVEL) as f64 / n,
        rms_contrast: variance.sqrt() / 255.0,
        sharpness: laplacian_variance(g),
        entropy: entropy.max(0.0),
        dhash: dhash(g),
    }
}

/// Nearest rank: the smallest level with at least `q`% of the pixels at or below
/// it (numpy's `percentile(…, method="inverted_cdf")`).
fn percentile(hist: &[u64; 256], count: u64, q: u64) -> f64 {
    let rank = (q * count).div_ceil(100).max(1);
    let mut seen = 0;
    for (level, c) in hist.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return level as f64;
        }
    }
    255.0
}

/// A Laplacian is within ±4 · 255, its square under 2²⁰, so 4,096 of them fit
/// a `u32` sum; 1,024 keeps far from it. The 64-bit totals would need 2⁴⁴
/// pixels, far past any thumbnail `max_pixels` lets through.
const LAPLACIAN_PIECE: usize = 1024;
const _: () = assert!(LAPLACIAN_PIECE as u64 * 1020 * 1020 <= u32::MAX as u64);

/// Population variance of the 4-neighbour Laplacian over the interior pixels.
fn laplacian_variance(g: &Gray) -> f64 {
    let (w, h) = (g.width, g.height);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let p = &g.pixels;
    let (mut sum, mut sum_sq) = (0i64, 0u64);
    for y in 1..h - 1 {
        let (up, row, down) = (
            &p[(y - 1) * w..y * w],
            &p[y * w..(y + 1) * w],
            &p[(y + 1) * w..(y + 2) * w],
        );
        // In pieces of LAPLACIAN_PIECE pixels, summed in 32 bits (a loop the
        // compiler vectorises), then added into the 64-bit totals.
        let mut x = 1;
        while x < w - 1 {
            let end = (x + LAPLACIAN_PIECE).min(w - 1);
            let (mut piece, mut piece_sq) = (0i32, 0u32);
            for x in x..end {
                let l = i32::from(up[x])
                    + i32::from(down[x])
                    + i32::from(row[x - 1])
                    + i32::from(row[x + 1])
                    - 4 * i32::from(row[x]);
                // Never wraps (LAPLACIAN_PIECE's bound).
                piece = piece.wrapping_add(l);
                piece_sq = piece_sq.wrapping_add(l.unsigned_abs().wrapping_mul(l.unsigned_abs()));
            }
            sum += i64::from(piece);
            sum_sq += u64::from(piece_sq);
            x = end;
        }
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let mean = sum as f64 / n;
    (sum_sq as f64 / n - mean * mean).max(0.0)
}

/// dHash: the thumbnail box-reduced to 9×8; bit `63 − (8r + c)` is set when
/// pixel `(r, c + 1)` is brighter than `(r, c)`.
fn dhash(g: &Gray) -> i64 {
    let small = resize(g, 9, 8);
    let mut h: u64 = 0;
    for row in small.pixels.chunks_exact(9) {
        for c in 0..8 {
            h = (h << 1) | u64::from(row[c + 1] > row[c]);
        }
    }
    h as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Laplacian's variance as defined, every sum in 128 bits, one pixel
    /// at a time.
    fn laplacian_variance_pixel_by_pixel(g: &Gray) -> f64 {
        let (w, h) = (g.width, g.height);
        if w < 3 || h < 3 {
            return 0.0;
        }
        let at = |x: usize, y: usize| i128::from(g.pixels[y * w + x]);
        let (mut sum, mut sum_sq) = (0i128, 0i128);
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                let l = at(x, y - 1) + at(x, y + 1) + at(x - 1, y) + at(x + 1, y) - 4 * at(x, y);
                sum += l;
                sum_sq += l * l;
            }
        }
        let n = ((w - 2) * (h - 2)) as f64;
        let mean = sum as f64 / n;
        (sum_sq as f64 / n - mean * mean).max(0.0)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Summed in pieces of 32 bits, the same variance as pixel by pixel:
        /// rows across a piece's end, extremes (0 beside 255) and noise.
        #[test]
        fn the_laplacian_in_pieces_is_the_pixel_by_pixel_one(
            w in 1usize..2100,
            h in 1usize..5,
            seed in proptest::prelude::any::<u64>(),
            extreme in proptest::prelude::any::<bool>(),
        ) {
            let noise = crate::sources::image::gray::noise(seed, w * h);
            let g = gray(w, h, |x, y| match extreme {
                true if (x + y) % 2 == 0 => 255,
                true => 0,
                false => noise[y * w + x],
            });
            proptest::prop_assert_eq!(
                laplacian_variance(&g).to_bits(),
                laplacian_variance_pixel_by_pixel(&g).to_bits()
            );
        }
    }

    fn gray(width: usize, height: usize, f: impl Fn(usize, usize) -> u8) -> Gray {
        let pixels = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect();
        Gray {
            width,
            height,
            pixels,
        }
    }

    #[test]
    fn a_flat_frame_has_no_contrast_sharpness_or_information() {
        let m = measure(&gray(64, 48, |_, _| 0));
        assert_eq!((m.p1, m.p50, m.p99), (0.0, 0.0, 0.0));
        assert_eq!(m.dark_fraction, 1.0);
        assert_eq!((m.rms_contrast, m.sharpness, m.entropy), (0.0, 0.0, 0.0));
        assert_eq!(m.dhash, 0);
    }

    #[test]
    fn a_checkerboard_is_sharp_and_one_bit_of_information() {
        let m = measure(&gray(64, 64, |x, y| {
            if (x / 4 + y / 4) % 2 == 0 { 0 } else { 255 }
        }));
        assert!((m.entropy - 1.0).abs() < 1e-12);
        assert!((m.rms_contrast - 0.5).abs() < 1e-12);
        assert!(m.sharpness > 10_000.0);
        assert_eq!((m.p1, m.p99), (0.0, 255.0));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        // 100 pixels 0..=99: p1 is 0, p50 is 49, p99 is 98.
        let m = measure(&gray(10, 10, |x, y| (y * 10 + x) as u8));
        assert_eq!((m.p1, m.p50, m.p99), (0.0, 49.0, 98.0));
    }

    #[test]
    fn a_brighter_right_side_sets_every_bit() {
        let m = measure(&gray(90, 80, |x, _| (x * 2) as u8));
        assert_eq!(m.dhash, -1, "every pixel brighter than its left neighbour");
    }
}
