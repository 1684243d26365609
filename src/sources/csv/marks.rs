//! Where a chunk's line breaks, delimiters, quotes and carriage returns are, found
//! in one pass 64 bytes at a time and kept as bit masks (bit `i` of word `w` is byte
//! `64 * w + i`).
//!
//! The parser's fast path takes a line with no stray carriage return apart at its
//! delimiters; when the line has quotes, the parser checks that they only enclose
//! whole fields, with `quotes` counting them over the line, and per field when
//! the line does not hold two per field. Sensor lines are short
//! (about 65 bytes, five fields), so searching for each newline and each delimiter
//! with a call of its own spends more on starting the searches than on the bytes.
//! Here each byte is compared once, with SIMD compares read back as masks, and a
//! line's fields come out of its words with `trailing_zeros`.
//!
//! The rules, the same as the `memchr` searches they replace (a test checks them
//! against those on random bytes):
//! - a line runs from `pos` to its `\n` (included), or to the chunk's end;
//! - its content ends before the `\n`, and before one `\r` just before that (or
//!   just before the chunk's end);
//! - it is simple when its content holds no `\r`, and plain when it also holds no
//!   quote;
//! - its fields end at each delimiter of the content, then at the content's end.

/// The masks of one chunk; reused from chunk to chunk.
#[derive(Debug, Default)]
pub struct Marks {
    len: usize,
    newline: Vec<u64>,
    delimiter: Vec<u64>,
    quote: Vec<u64>,
    /// Quotes and carriage returns: one look tells a plain line (most of them).
    special: Vec<u64>,
}

/// A simple line of the chunk (see the module's rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleLine {
    /// End of the fields: before `\r\n` / `\n`.
    pub content_end: usize,
    /// Start of the next line.
    pub line_end: usize,
    pub has_newline: bool,
    /// Whether its content holds a quote (it is not plain).
    pub has_quote: bool,
}

impl Marks {
    /// Classifies every byte of `data`.
    pub fn scan(&mut self, data: &[u8], delimiter: u8, quote: u8) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            unsafe { self.scan_avx2(data, delimiter, quote) };
            return;
        }
        self.scan_with(data, |block| masks(block, delimiter, quote));
    }

    /// `scan` with AVX2's 32-byte compares: half the compares and mask reads of
    /// SSE2's 16, and Marks' share of a plain CSV run's samples from 2.7% to
    /// 1.3% (docs/benchmarks.md). Detected at run time, as the release build
    /// targets every x86_64.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(&mut self, data: &[u8], delimiter: u8, quote: u8) {
        // The closure inherits this function's AVX2, so it may call `masks_avx2`.
        self.scan_with(data, |block| masks_avx2(block, delimiter, quote));
    }

    /// Classifies `data` 64 bytes at a time, `block_masks` giving a block's
    /// masks (see [`BlockMasks`]). Always inlined, so that in `scan_avx2`
    /// `block_masks` is compiled for AVX2.
    #[inline(always)]
    fn scan_with(&mut self, data: &[u8], block_masks: impl Fn(&[u8; 64]) -> BlockMasks) {
        self.len = data.len();
        let words = data.len().div_ceil(64);
        for v in [
            &mut self.newline,
            &mut self.delimiter,
            &mut self.quote,
            &mut self.special,
        ] {
            // Sized here and written in place below: with a push per mask, the
            // compiler spilled the AVX2 compares around each capacity check and
            // read them back byte by byte, three times slower than SSE2 (8.2% of
            // the samples, docs/benchmarks.md).
            v.clear();
            v.resize(words, 0);
        }
        let (blocks, rest) = data.as_chunks::<64>();
        let mut padded = [0u8; 64];
        padded[..rest.len()].copy_from_slice(rest);
        // Every word but the last of a chunk whose length is not a multiple of 64
        // is a whole block; that last one is the padded rest, whose padding is
        // not data, whatever byte the delimiter is.
        let last = (!rest.is_empty()).then_some((&padded, (1u64 << rest.len()) - 1));
        let sources = blocks.iter().map(|block| (block, u64::MAX)).chain(last);
        let slots = (self.newline.iter_mut())
            .zip(self.delimiter.iter_mut())
            .zip(self.quote.iter_mut())
            .zip(self.special.iter_mut());
        for ((((newline, delimiter), quote), special), (block, valid)) in slots.zip(sources) {
            let [n, d, q, s] = block_masks(block);
            (*newline, *delimiter, *quote, *special) = (n & valid, d & valid, q & valid, s & valid);
        }
    }

    /// The line at `pos` if it is simple.
    #[inline]
    pub fn simple_line(&self, data: &[u8], pos: usize) -> Option<SimpleLine> {
        let nl = next_set(&self.newline, pos, self.len);
        let (line_end, mut content_end) = match nl {
            Some(i) => (i + 1, i),
            None => (self.len, self.len),
        };
        if content_end > pos && data[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        let has_quote = any_set(&self.special, pos, content_end) && {
            // Special bytes that are not quotes are carriage returns.
            let words = pos / 64..=(content_end - 1) / 64;
            if words
                .into_iter()
                .any(|w| self.special[w] & !self.quote[w] & range_mask(w, pos, content_end) != 0)
            {
                return None;
            }
            true
        };
        Some(SimpleLine {
            content_end,
            line_end,
            has_newline: nl.is_some(),
            has_quote,
        })
    }

    /// How many quotes `from..to` holds.
    #[inline]
    pub fn quotes(&self, from: usize, to: usize) -> u32 {
        if from >= to {
            return 0;
        }
        let (first, last) = (from / 64, (to - 1) / 64);
        let mut n = 0;
        for w in first..=last {
            n += (self.quote[w] & range_mask(w, from, to)).count_ones();
        }
        n
    }

    /// Calls `each` with the offset from `from` of every delimiter in `from..to`,
    /// in order.
    #[inline]
    pub fn delimiters(&self, from: usize, to: usize, mut each: impl FnMut(usize)) {
        if from >= to {
            return;
        }
        let (first, last) = (from / 64, (to - 1) / 64);
        for w in first..=last {
            let mut bits = self.delimiter[w] & range_mask(w, from, to);
            while bits != 0 {
                each(w * 64 + bits.trailing_zeros() as usize - from);
                bits &= bits - 1;
            }
        }
    }
}

/// Bits of word `w` that fall in `from..to`.
#[inline]
fn range_mask(w: usize, from: usize, to: usize) -> u64 {
    let start = w * 64;
    let lo = from.saturating_sub(start).min(64);
    let hi = to.saturating_sub(start).min(64);
    if hi <= lo {
        return 0;
    }
    let upto = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upto & !((1u64 << lo) - 1)
}

/// The first set bit at or after `from` (and before `len`).
#[inline]
fn next_set(masks: &[u64], from: usize, len: usize) -> Option<usize> {
    if from >= len {
        return None;
    }
    let mut w = from / 64;
    let mut bits = masks[w] & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
        w += 1;
        bits = *masks.get(w)?;
    }
}

/// Whether any bit in `from..to` is set.
#[inline]
fn any_set(masks: &[u64], from: usize, to: usize) -> bool {
    if from >= to {
        return false;
    }
    (from / 64..=(to - 1) / 64).any(|w| masks[w] & range_mask(w, from, to) != 0)
}

/// Bit `i` set where `block[i] == byte`.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn eq_mask(block: &[u8; 64], byte: u8) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 target; each load reads 16 bytes at
    // offsets 0, 16, 32 and 48 of a 64-byte array (unaligned loads are allowed).
    unsafe {
        let needle = _mm_set1_epi8(byte as i8);
        let mut mask = 0u64;
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast::<__m128i>());
            let m = _mm_movemask_epi8(_mm_cmpeq_epi8(v, needle)) as u32 as u64;
            mask |= m << (16 * i);
        }
        mask
    }
}

/// Bit `i` set where `block[i] == byte` (portable; compilers vectorize it).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn eq_mask(block: &[u8; 64], byte: u8) -> u64 {
    block
        .iter()
        .enumerate()
        .fold(0u64, |m, (i, &b)| m | (u64::from(b == byte) << i))
}

/// A block's masks of line feeds, delimiters, quotes, and quotes or carriage
/// returns (`special`), in that order.
type BlockMasks = [u64; 4];

/// The masks of a block, by `eq_mask`.
#[inline(always)]
fn masks(block: &[u8; 64], delimiter: u8, quote: u8) -> BlockMasks {
    let quotes = eq_mask(block, quote);
    [
        eq_mask(block, b'\n'),
        eq_mask(block, delimiter),
        quotes,
        quotes | eq_mask(block, b'\r'),
    ]
}

/// `masks` with AVX2: the block read once, 32 bytes at a time, and the special
/// bytes' mask read from the union of two compares. Callable only where AVX2 is
/// enabled (`Marks::scan_avx2`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn masks_avx2(block: &[u8; 64], delimiter: u8, quote: u8) -> BlockMasks {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    // SAFETY: the loads read 32 bytes at offsets 0 and 32 of a 64-byte array
    // (unaligned loads are allowed).
    let halves = unsafe {
        [
            _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()),
            _mm256_loadu_si256(block.as_ptr().add(32).cast::<__m256i>()),
        ]
    };
    let [newline_bytes, delimiter_bytes, quote_bytes, cr_bytes] =
        [b'\n', delimiter, quote, b'\r'].map(|b| _mm256_set1_epi8(b as i8));
    let mut out = [0u64; 4];
    for (half, v) in halves.into_iter().enumerate() {
        let quotes = _mm256_cmpeq_epi8(v, quote_bytes);
        let found = [
            _mm256_cmpeq_epi8(v, newline_bytes),
            _mm256_cmpeq_epi8(v, delimiter_bytes),
            quotes,
            _mm256_or_si256(quotes, _mm256_cmpeq_epi8(v, cr_bytes)),
        ];
        for (o, f) in out.iter_mut().zip(found) {
            *o |= u64::from(_mm256_movemask_epi8(f) as u32) << (32 * half);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The searches the masks replace, as the parser did them.
    fn reference_line(data: &[u8], pos: usize, quote: u8) -> Option<SimpleLine> {
        let nl = memchr::memchr(b'\n', &data[pos..]);
        let (line_end, mut content_end) = match nl {
            Some(i) => (pos + i + 1, pos + i),
            None => (data.len(), data.len()),
        };
        if content_end > pos && data[content_end - 1] == b'\r' {
            content_end -= 1;
        }
        if memchr::memchr(b'\r', &data[pos..content_end]).is_some() {
            return None;
        }
        Some(SimpleLine {
            content_end,
            line_end,
            has_newline: nl.is_some(),
            has_quote: memchr::memchr(quote, &data[pos..content_end]).is_some(),
        })
    }

    proptest! {
        /// AVX2's compares mark the same bytes as SSE2's, which the next test
        /// holds to memchr on CPUs without AVX2 (on those, nothing to compare;
        /// the machines naslake is measured and tested on have AVX2).
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn avx2_masks_are_the_sse2_masks(
            data in proptest::collection::vec(
                prop_oneof![Just(b','), Just(b'"'), Just(b'\r'), Just(b'\n'), any::<u8>()],
                0..300,
            ),
            delimiter in prop_oneof![Just(b','), Just(b';'), Just(0u8), Just(0xffu8)],
        ) {
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut scanned = Marks::default();
                scanned.scan(&data, delimiter, b'"');
                let mut sse2 = Marks::default();
                sse2.scan_with(&data, |block| masks(block, delimiter, b'"'));
                prop_assert_eq!(&scanned.newline, &sse2.newline);
                prop_assert_eq!(&scanned.delimiter, &sse2.delimiter);
                prop_assert_eq!(&scanned.quote, &sse2.quote);
                prop_assert_eq!(&scanned.special, &sse2.special);
            }
        }

        /// At every position of random chunks (dense in the bytes that matter,
        /// any length, so lines straddle words), the masks find the same lines
        /// and delimiters as the memchr searches.
        #[test]
        fn masks_agree_with_memchr(
            data in proptest::collection::vec(
                prop_oneof![Just(b','), Just(b';'), Just(b'"'), Just(b'\r'), Just(b'\n'), Just(b'a'), Just(0u8), any::<u8>()],
                0..300,
            ),
            delimiter in prop_oneof![Just(b','), Just(b';'), Just(0u8)],
        ) {
            let quote = b'"';
            let mut marks = Marks::default();
            marks.scan(&data, delimiter, quote);
            for pos in 0..data.len() {
                let got = marks.simple_line(&data, pos);
                prop_assert_eq!(got, reference_line(&data, pos, quote), "at {}", pos);
                if let Some(line) = got {
                    let mut found = Vec::new();
                    marks.delimiters(pos, line.content_end, |d| found.push(d));
                    let want: Vec<usize> =
                        memchr::memchr_iter(delimiter, &data[pos..line.content_end]).collect();
                    prop_assert_eq!(found, want, "at {}", pos);
                }
                for end in pos..=data.len() {
                    let want = data[pos..end].iter().filter(|&&b| b == quote).count() as u32;
                    prop_assert_eq!(marks.quotes(pos, end), want, "{}..{}", pos, end);
                }
            }
        }
    }

    #[test]
    fn a_rescan_forgets_the_last_chunk() {
        let mut marks = Marks::default();
        marks.scan(&[b','; 200], b',', b'"');
        marks.scan(b"a,b\n", b',', b'"');
        let line = marks.simple_line(b"a,b\n", 0).unwrap();
        assert_eq!((line.content_end, line.line_end), (3, 4));
        let mut found = Vec::new();
        marks.delimiters(0, 3, |d| found.push(d));
        assert_eq!(found, vec![1]);
    }

    /// At every length around a block's, each mask has one word per 64 bytes
    /// and no bit at or past the end, even for a delimiter of 0 (the padding's
    /// byte), whichever compares the CPU takes.
    #[test]
    fn no_mark_falls_past_the_end() {
        let mut marks = Marks::default();
        for len in [0, 1, 63, 64, 65, 127, 128, 129] {
            let data = vec![0u8; len];
            marks.scan(&data, 0, 0);
            for mask in [
                &marks.newline,
                &marks.delimiter,
                &marks.quote,
                &marks.special,
            ] {
                assert_eq!(mask.len(), len.div_ceil(64), "{len}");
            }
            let ones: u32 = marks.delimiter.iter().map(|w| w.count_ones()).sum();
            assert_eq!(ones as usize, len, "{len}");
            let quotes: u32 = marks.special.iter().map(|w| w.count_ones()).sum();
            assert_eq!(quotes as usize, len, "{len}");
        }
    }
}
