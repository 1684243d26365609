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
pub(super) const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output pixel of one axis: the input pixels it averages (a run) and
/// their weight in fixed point. Box weights within a run are equal, so this is
/// all of Pillow's coefficient table, in memory proportional to the output.
struct Spans {
    spans: Vec<(usize, usize, u32)>,
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
                // At most 2²² + 1.
                (0.5 + one / count as f64) as u32
            };
            (first, count, k)
        })
        .collect();
    Spans { spans }
}

/// Pillow's `clip8` of a run's sum times its weight, plus the rounding half. The
/// product is at most 255 · 2²² plus 255 · (run length)/2 (a run's weight is 2²²
/// over its length, rounded), far from 2⁶⁴, and neither is negative, so only the
/// top needs clamping.
#[inline]
fn clip8(sum: u64, k: u32) -> u8 {
    (sum.wrapping_mul(u64::from(k))
        .wrapping_add(1 << (PRECISION_BITS - 1))
        >> PRECISION_BITS)
        .min(255) as u8
}

/// `src` resized to `width × height` by Pillow's box filter: rows first, each
/// result rounded to 8 bits, then columns, as Pillow does.
pub fn resize(src: &Gray, width: usize, height: usize) -> Gray {
    let horizontal = if width == src.width {
        std::borrow::Cow::Borrowed(src)
    } else {
        std::borrow::Cow::Owned(resize_rows(src, width))
    };
    if height == horizontal.height {
        return horizontal.into_owned();
    }
    resize_columns(&horizontal, height)
}

/// `len` zero bytes, written here rather than asked of the allocator zeroed.
/// jemalloc meets a zeroed request for a block it has had back by giving the
/// block's pages to the system and faulting fresh ones in as they are written:
/// for an output plane per image, that was 70% of an image run's page faults.
/// LLVM folds an allocation followed by zero writes into a zeroed allocation
/// (`alloc-variant-zeroed`); `black_box` hides where the buffer came from, which
/// should keep it from doing so here (it is best-effort: the page-fault count
/// in docs/benchmarks.md is the check).
pub(super) fn zeros(len: usize) -> Vec<u8> {
    let mut plane = std::hint::black_box(Vec::with_capacity(len));
    plane.resize(len, 0);
    plane
}

/// Windows of pixels wider than this are summed run by run instead.
pub(super) const MAX_WINDOW: usize = 8;
// The windows' dispatch here and in `box_rows_avx2.rs` has an arm per width up
// to 8, the last one `MAX_WINDOW`'s.
const _: () = assert!(MAX_WINDOW == 8);

/// The horizontal pass. When every run is `c` or `c + 1` pixels long (box
/// runs are the scale rounded down or up), each row's sums of `c` consecutive
/// pixels are made for every position at once (a loop the compiler vectorises),
/// and a run of `c + 1` adds the pixel after its window: no branch depends on a
/// run's length. Summing each run in its own loop mispredicted the loop's end at
/// every other run and was a sixth of an image run's CPU. Where the processor
/// has AVX2, whole blocks of sixteen rows go to `box_rows_avx2.rs` instead,
/// which makes each run's output for sixteen rows at once; the rows after the
/// last block are made here.
fn resize_rows(src: &Gray, width: usize) -> Gray {
    let spans = box_spans(src.width, width).spans;
    let mut out = zeros(width * src.height);
    let shortest = spans.iter().map(|s| s.1).min().unwrap_or(0);
    let longest = spans.iter().map(|s| s.1).max().unwrap_or(0);
    if (1..=MAX_WINDOW).contains(&shortest) && longest - shortest <= 1 {
        let c = shortest;
        let runs: Vec<Run> = spans
            .iter()
            .map(|&(first, count, weight)| Run {
                first,
                extra: (count - c) as u32,
                weight,
            })
            .collect();
        let done = whole_blocks(src, c, &runs, &mut out);
        let rows = rows_from(src, &mut out, width, done);
        let positions = src.width + 1 - c;
        let mut windows = vec![0u16; positions];
        for (row, dst) in rows {
            sum_windows(c, row, &mut windows);
            let last = row.len() - 1;
            for (
                d,
                &Run {
                    first,
                    extra,
                    weight,
                },
            ) in dst.iter_mut().zip(&runs)
            {
                // A run's window fits (first + c ≤ first + count ≤ the row);
                // the pixel after it is weighed by `extra`, 0 or 1.
                let next = u32::from(row[(first + c).min(last)]);
                let sum = u32::from(windows[first]).wrapping_add(extra.wrapping_mul(next));
                *d = clip8(u64::from(sum), weight);
            }
        }
    } else {
        for (row, dst) in rows_from(src, &mut out, width, 0) {
            for (d, &(first, count, k)) in dst.iter_mut().zip(&spans) {
                let sum = row[first..first + count]
                    .iter()
                    .fold(0u64, |a, p| a.wrapping_add(u64::from(*p)));
                *d = clip8(sum, k);
            }
        }
    }
    Gray {
        width,
        height: src.height,
        pixels: out,
    }
}

/// One output of a horizontal pass whose runs are `c` or `c + 1` pixels long:
/// where its window of `c` starts, whether the pixel after the window is in the
/// run too (0 or 1), and the run's weight (`clip8`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub first: usize,
    pub extra: u32,
    pub weight: u32,
}

/// The rows of `src` from `first` on, each with its row of `out` (`width` wide).
fn rows_from<'a>(
    src: &'a Gray,
    out: &'a mut [u8],
    width: usize,
    first: usize,
) -> impl Iterator<Item = (&'a [u8], &'a mut [u8])> {
    src.pixels
        .chunks_exact(src.width)
        .zip(out.chunks_exact_mut(width))
        .skip(first)
}

/// The rows [`resize_rows`]'s windows make sixteen at a time where the
/// processor can (`box_rows_avx2.rs`): how many, from the first.
#[cfg(target_arch = "x86_64")]
fn whole_blocks(src: &Gray, c: usize, runs: &[Run], out: &mut [u8]) -> usize {
    if super::box_rows_avx2::available() {
        super::box_rows_avx2::resize_blocks(&src.pixels, src.width, c, runs, out)
    } else {
        0
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn whole_blocks(_: &Gray, _: usize, _: &[Run], _: &mut [u8]) -> usize {
    0
}

/// `windows[x] = row[x] + … + row[x + c − 1]` for every `x` where the window
/// fits, `c` at most [`MAX_WINDOW`].
fn sum_windows(c: usize, row: &[u8], windows: &mut [u16]) {
    match c {
        1 => windows_of::<1>(row, windows),
        2 => windows_of::<2>(row, windows),
        3 => windows_of::<3>(row, windows),
        4 => windows_of::<4>(row, windows),
        5 => windows_of::<5>(row, windows),
        6 => windows_of::<6>(row, windows),
        7 => windows_of::<7>(row, windows),
        _ => windows_of::<MAX_WINDOW>(row, windows),
    }
}

/// [`sum_windows`] for one width, known when compiled: one pass whose `C`
/// loads the compiler unrolls and vectorises. At most 8 · 255, so the wrapping
/// add never wraps (and spares the dev build's overflow checks, which would
/// keep the loop from being vectorised).
fn windows_of<const C: usize>(row: &[u8], windows: &mut [u16]) {
    for (x, w) in windows.iter_mut().enumerate().take(row.len() + 1 - C) {
        let mut sum = 0u16;
        for p in &row[x..x + C] {
            sum = sum.wrapping_add(u16::from(*p));
        }
        *w = sum;
    }
}

/// The vertical pass: whole rows added into one sum per column (vectorised),
/// then weighed. The sums are `u16` for runs of at most 257 rows (2¹⁶ / 255:
/// twice the additions per vector of `u32`), `u32` unless a run of rows could
/// reach 2³² / 255 rows (an image that tall and that squeezed is allowed by
/// `max_pixels`).
fn resize_columns(src: &Gray, height: usize) -> Gray {
    let spans = box_spans(src.height, height).spans;
    let longest = spans.iter().map(|s| s.1).max().unwrap_or(0);
    let pixels = if longest <= (u16::MAX / 255) as usize {
        weigh_columns::<u16>(src, &spans)
    } else if longest <= (u32::MAX / 255) as usize {
        weigh_columns::<u32>(src, &spans)
    } else {
        weigh_columns::<u64>(src, &spans)
    };
    Gray {
        width: src.width,
        height,
        pixels,
    }
}

/// A column sum of [`resize_columns`].
trait ColumnSum: Copy + Default {
    fn plus(self, p: u8) -> Self;
    fn wide(self) -> u64;
}

/// The sums [`resize_columns`] picks from. Adding never wraps (its bound on a
/// run's rows), and `wrapping_add` spares the dev build's overflow checks,
/// which would keep the loop from being vectorised.
macro_rules! column_sums {
    ($($sum:ty),*) => {$(
        impl ColumnSum for $sum {
            #[inline]
            fn plus(self, p: u8) -> Self {
                self.wrapping_add(<$sum>::from(p))
            }
            #[inline]
            fn wide(self) -> u64 {
                u64::from(self)
            }
        }
    )*};
}

column_sums!(u16, u32, u64);

fn weigh_columns<T: ColumnSum>(src: &Gray, spans: &[(usize, usize, u32)]) -> Vec<u8> {
    let width = src.width;
    let mut out = zeros(width * spans.len());
    let mut sums = vec![T::default(); width];
    for (dst, &(first, count, k)) in out.chunks_exact_mut(width).zip(spans) {
        sums.fill(T::default());
        for row in src.pixels[first * width..(first + count) * width].chunks_exact(width) {
            for (s, p) in sums.iter_mut().zip(row) {
                *s = s.plus(*p);
            }
        }
        for (d, s) in dst.iter_mut().zip(&sums) {
            *d = clip8(s.wide(), k);
        }
    }
    out
}

/// Pseudo-random gray levels for tests: xorshift64 from `seed`.
#[cfg(test)]
pub(super) fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
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

    /// Pillow's box resize as written before the fast passes: each run summed on
    /// its own, in 64-bit, weighed in 64-bit, rows then columns.
    fn resize_run_by_run(src: &Gray, width: usize, height: usize) -> Gray {
        let clip = |sum: u64, k: u32| -> u8 {
            let acc = (sum as i64) * i64::from(k) + (1 << (PRECISION_BITS - 1));
            (acc >> PRECISION_BITS).clamp(0, 255) as u8
        };
        let w = box_spans(src.width, width);
        let mut rows = vec![0u8; width * src.height];
        for (row, dst) in src
            .pixels
            .chunks_exact(src.width)
            .zip(rows.chunks_exact_mut(width))
        {
            for (d, &(first, count, k)) in dst.iter_mut().zip(&w.spans) {
                let sum: u64 = row[first..first + count]
                    .iter()
                    .map(|p| u64::from(*p))
                    .sum();
                *d = clip(sum, k);
            }
        }
        let h = box_spans(src.height, height);
        let mut out = vec![0u8; width * height];
        for (y, &(first, count, k)) in h.spans.iter().enumerate() {
            for x in 0..width {
                let sum: u64 = (first..first + count)
                    .map(|r| u64::from(rows[r * width + x]))
                    .sum();
                out[y * width + x] = clip(sum, k);
            }
        }
        Gray {
            width,
            height,
            pixels: out,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// The windowed and vectorised passes give the run-by-run pixels, for
        /// every pair of sizes (down by any factor, up, the same), noise or flat.
        #[test]
        fn fast_passes_give_the_run_by_run_pixels(
            w in 1usize..200,
            h in 1usize..60,
            tw in 1usize..220,
            th in 1usize..70,
            seed in proptest::prelude::any::<u64>(),
            flat in proptest::prelude::any::<bool>(),
        ) {
            let pixels = if flat { vec![255; w * h] } else { noise(seed, w * h) };
            let src = Gray { width: w, height: h, pixels };
            proptest::prop_assert_eq!(resize(&src, tw, th), resize_run_by_run(&src, tw, th));
        }
    }

    #[test]
    fn camera_sizes_match_the_run_by_run_pixels() {
        // 2448 → 512 is 4.78 pixels a run: windows of 4, some runs of 5; 2448 →
        // 9 takes runs of 272, summed one by one.
        let (w, h) = (2448, 64);
        let src = Gray {
            width: w,
            height: h,
            pixels: (0..w * h).map(|i| ((i * 7919) % 251) as u8).collect(),
        };
        for (tw, th) in [(512, 13), (1000, 64), (306, 8), (9, 8)] {
            assert_eq!(
                resize(&src, tw, th),
                resize_run_by_run(&src, tw, th),
                "{tw}×{th}"
            );
        }
    }

    #[test]
    fn u16_u32_and_u64_column_sums_agree() {
        // The u64 sums (for runs of rows too long for u32) and the u16 ones
        // (taken for short runs) on a small image.
        let src = Gray {
            width: 7,
            height: 40,
            pixels: (0..280).map(|i| ((i * 37) % 256) as u8).collect(),
        };
        let spans = box_spans(40, 6).spans;
        assert_eq!(
            weigh_columns::<u64>(&src, &spans),
            weigh_columns::<u32>(&src, &spans)
        );
        assert_eq!(
            weigh_columns::<u64>(&src, &spans),
            weigh_columns::<u16>(&src, &spans)
        );
        assert_eq!(
            weigh_columns::<u64>(&src, &spans),
            resize_run_by_run(&src, 7, 6).pixels
        );
    }

    #[test]
    fn runs_of_rows_at_the_edge_of_u16_sums_give_the_same_pixels() {
        // 257 rows of 255 sum to 65535, the most a u16 holds; 258 take u32.
        for height in [256, 257, 258, 514] {
            let src = Gray {
                width: 5,
                height,
                pixels: vec![255; 5 * height],
            };
            for th in [1, 2] {
                let fast = resize(&src, 5, th);
                assert_eq!(
                    fast,
                    resize_run_by_run(&src, 5, th),
                    "{height} rows to {th}"
                );
                assert!(
                    fast.pixels.iter().all(|p| *p == 255),
                    "{height} rows to {th}"
                );
            }
        }
    }

    #[test]
    fn every_window_width_meets_whole_blocks_of_rows() {
        // 35 rows: two blocks of sixteen and three rows after them; 200 columns
        // to every width from 1 (runs too long for windows) to 200 (the same),
        // so every window of 1 to 8 pixels, with and without longer runs.
        let (w, h) = (200, 35);
        let src = Gray {
            width: w,
            height: h,
            pixels: noise(35, w * h),
        };
        for tw in 1..=w {
            assert_eq!(
                resize(&src, tw, h),
                resize_run_by_run(&src, tw, h),
                "200 → {tw}"
            );
        }
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
