//! The horizontal pass of `gray.rs`'s box resize, sixteen rows at a time, on
//! x86-64 processors with AVX2. Same pixels as the row-by-row pass it stands in
//! for (a property test holds them equal), because it does the same arithmetic:
//! each output is the sum of its run's pixels times the run's weight, plus the
//! rounding half, shifted and clamped to 8 bits. Only the order of the work
//! changes.
//!
//! Why: row by row, a run's sum is one load at a position that differs from run
//! to run, so the outputs are made one at a time (a tenth of an image run's CPU,
//! on 2448-pixel rows to 512). Here the sixteen rows of a block are transposed
//! first, so each input column is one 16-byte vector; a run's sum is then `c`
//! vector adds that make the output for all sixteen rows at once, and the
//! sixteen outputs are transposed back into rows.
//!
//! Every load and store is of a 16-byte subslice taken with bounds checks, so
//! an index past the end panics instead of reading out of bounds; the only
//! other requirement of the `unsafe` code is AVX2, which [`available`] checks.

use std::arch::x86_64::{
    __m128i, _mm_and_si128, _mm_loadu_si128, _mm_packus_epi16, _mm_set1_epi8, _mm_setzero_si128,
    _mm_storeu_si128, _mm_unpackhi_epi8, _mm_unpacklo_epi8, _mm256_add_epi16, _mm256_add_epi32,
    _mm256_castsi256_si128, _mm256_cvtepu8_epi16, _mm256_cvtepu16_epi32, _mm256_extracti128_si256,
    _mm256_mullo_epi32, _mm256_packus_epi32, _mm256_permute4x64_epi64, _mm256_set1_epi32,
    _mm256_setzero_si256, _mm256_srli_epi32,
};

use super::gray::{MAX_WINDOW, PRECISION_BITS, Run};

/// Rows per block: one byte of each in a 16-byte vector, one 16-bit sum of
/// each in a 32-byte one. Also the side of the square tiles transposed.
const ROWS: usize = 16;

/// Whether this processor runs [`resize_blocks`].
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// Resizes every whole block of [`ROWS`] rows of `src` (rows of `src_width`
/// pixels) into `out` (rows of `runs.len()` pixels) and returns how many rows it
/// made; the caller makes the rest. Each run sums a window of `c` pixels, plus
/// the pixel after it when its `extra` is 1; `c` is 1 to [`MAX_WINDOW`], every
/// window and kept pixel lies within the row, and each weight is a box run's
/// (at most 2²², over the run's length), so each sum fits 16 bits (at most
/// 9 · 255) and each product with its weight, plus the rounding half, 31 bits
/// (at most 255 · 2²² plus a little). Runs that break these rules give wrong
/// pixels; debug builds check them.
///
/// # Panics
/// If [`available`] is false, `c` is out of range, or a run's window of `c`
/// reaches past the row.
pub(super) fn resize_blocks(
    src: &[u8],
    src_width: usize,
    c: usize,
    runs: &[Run],
    out: &mut [u8],
) -> usize {
    assert!(available(), "AVX2 is checked by the caller");
    assert!((1..=MAX_WINDOW).contains(&c));
    debug_assert!(runs.iter().all(|r| {
        let count = c + r.extra as usize;
        r.extra <= 1
            && r.first + count <= src_width
            && u64::from(r.weight) * count as u64 <= (1 << PRECISION_BITS) + count as u64
    }));
    let width = runs.len();
    let blocks = (src.len() / src_width).min(out.len() / width) / ROWS;
    let mut columns = vec![[0u8; ROWS]; src_width];
    let mut outputs = vec![[0u8; ROWS]; width];
    for b in 0..blocks {
        let rows = &src[b * ROWS * src_width..(b + 1) * ROWS * src_width];
        let dst = &mut out[b * ROWS * width..(b + 1) * ROWS * width];
        // SAFETY: AVX2 is available (asserted above); the rest is bounds-checked.
        unsafe {
            transpose_in(rows, src_width, &mut columns);
            match c {
                1 => weigh_runs::<1>(&columns, runs, &mut outputs),
                2 => weigh_runs::<2>(&columns, runs, &mut outputs),
                3 => weigh_runs::<3>(&columns, runs, &mut outputs),
                4 => weigh_runs::<4>(&columns, runs, &mut outputs),
                5 => weigh_runs::<5>(&columns, runs, &mut outputs),
                6 => weigh_runs::<6>(&columns, runs, &mut outputs),
                7 => weigh_runs::<7>(&columns, runs, &mut outputs),
                _ => weigh_runs::<MAX_WINDOW>(&columns, runs, &mut outputs),
            }
            transpose_out(&outputs, dst, width);
        }
    }
    blocks * ROWS
}

/// `columns[x][r] = rows[r · width + x]`: whole 16 × 16 tiles by vector
/// transposes, the columns after the last whole tile byte by byte.
#[target_feature(enable = "avx2")]
fn transpose_in(rows: &[u8], width: usize, columns: &mut [[u8; ROWS]]) {
    let tiles = width / ROWS;
    for t in 0..tiles {
        let x = t * ROWS;
        let tile = std::array::from_fn(|r| load(&rows[r * width + x..][..ROWS]));
        for (column, v) in columns[x..x + ROWS].iter_mut().zip(transpose(tile)) {
            store(column, v);
        }
    }
    for (x, column) in columns.iter_mut().enumerate().skip(tiles * ROWS) {
        for (r, p) in column.iter_mut().enumerate() {
            *p = rows[r * width + x];
        }
    }
}

/// `dst[r · width + x] = outputs[x][r]`, the inverse of [`transpose_in`].
#[target_feature(enable = "avx2")]
fn transpose_out(outputs: &[[u8; ROWS]], dst: &mut [u8], width: usize) {
    let tiles = width / ROWS;
    for t in 0..tiles {
        let x = t * ROWS;
        let tile = std::array::from_fn(|i| load(&outputs[x + i]));
        for (r, v) in transpose(tile).into_iter().enumerate() {
            store(&mut dst[r * width + x..][..ROWS], v);
        }
    }
    for (x, output) in outputs.iter().enumerate().skip(tiles * ROWS) {
        for (r, p) in output.iter().enumerate() {
            dst[r * width + x] = *p;
        }
    }
}

/// Each run's sum for the sixteen rows at once, weighed and clamped as
/// `gray.rs`'s `clip8`: `(sum · weight + 2²¹) >> 22`, at most 255.
#[target_feature(enable = "avx2")]
fn weigh_runs<const C: usize>(columns: &[[u8; ROWS]], runs: &[Run], outputs: &mut [[u8; ROWS]]) {
    let last = columns.len() - 1;
    let rounding = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
    for (
        output,
        &Run {
            first,
            extra,
            weight,
        },
    ) in outputs.iter_mut().zip(runs)
    {
        let mut sum = _mm256_setzero_si256();
        for column in &columns[first..first + C] {
            sum = _mm256_add_epi16(sum, _mm256_cvtepu8_epi16(load(column)));
        }
        // The pixel after the window, kept by an all-ones mask when `extra`
        // is 1: no branch on a run's length.
        let keep = _mm_set1_epi8((extra as u8).wrapping_neg() as i8);
        let next = _mm_and_si128(load(&columns[(first + C).min(last)]), keep);
        sum = _mm256_add_epi16(sum, _mm256_cvtepu8_epi16(next));
        let weight = _mm256_set1_epi32(weight as i32);
        let weigh = |eight_rows: __m128i| {
            let product = _mm256_mullo_epi32(_mm256_cvtepu16_epi32(eight_rows), weight);
            _mm256_srli_epi32::<{ PRECISION_BITS as i32 }>(_mm256_add_epi32(product, rounding))
        };
        let low = weigh(_mm256_castsi256_si128(sum));
        let high = weigh(_mm256_extracti128_si256::<1>(sum));
        // Packing works within 128-bit lanes: rows 0-3, 8-11 | 4-7, 12-15;
        // the permutation puts them in order, and the 8-bit pack saturates
        // at 255, the clamp.
        let packed = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(low, high));
        let bytes = _mm_packus_epi16(
            _mm256_castsi256_si128(packed),
            _mm256_extracti128_si256::<1>(packed),
        );
        store(output, bytes);
    }
}

/// A 16 × 16 byte matrix (one row a vector) transposed. Interleaving the bytes
/// of rows `i` and `i + 8` into rows `2i` and `2i + 1` moves the element at
/// row `r`, column `c` to the position whose 8-bit index (row then column,
/// four bits each) is the old one rotated left by one bit; four rounds rotate
/// it by four, which swaps row and column.
#[target_feature(enable = "avx2")]
fn transpose(mut m: [__m128i; ROWS]) -> [__m128i; ROWS] {
    for _ in 0..4 {
        let mut n = [_mm_setzero_si128(); ROWS];
        for i in 0..ROWS / 2 {
            n[2 * i] = _mm_unpacklo_epi8(m[i], m[i + ROWS / 2]);
            n[2 * i + 1] = _mm_unpackhi_epi8(m[i], m[i + ROWS / 2]);
        }
        m = n;
    }
    m
}

#[target_feature(enable = "avx2")]
fn load(bytes: &[u8]) -> __m128i {
    let bytes: &[u8; ROWS] = bytes.try_into().expect("16 bytes");
    // SAFETY: reads the 16 bytes of `bytes`; no alignment is required.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

#[target_feature(enable = "avx2")]
fn store(bytes: &mut [u8], v: __m128i) {
    let bytes: &mut [u8; ROWS] = bytes.try_into().expect("16 bytes");
    // SAFETY: writes the 16 bytes of `bytes`; no alignment is required.
    unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), v) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_by_sixteen_tiles_transpose() {
        if !available() {
            return;
        }
        let rows: Vec<u8> = (0..=255).collect();
        let mut columns = vec![[0u8; ROWS]; ROWS];
        // SAFETY: AVX2 is available.
        unsafe { transpose_in(&rows, ROWS, &mut columns) };
        for (x, column) in columns.iter().enumerate() {
            for (r, p) in column.iter().enumerate() {
                assert_eq!(usize::from(*p), r * ROWS + x);
            }
        }
        let mut back = vec![0u8; ROWS * ROWS];
        // SAFETY: AVX2 is available.
        unsafe { transpose_out(&columns, &mut back, ROWS) };
        assert_eq!(back, rows);
    }
}
