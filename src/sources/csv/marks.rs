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
        self.len = data.len();
        let words = data.len().div_ceil(64);
        for v in [
            &mut self.newline,
            &mut self.delimiter,
            &mut self.quote,
            &mut self.special,
        ] {
            v.clear();
            v.reserve(words);
        }
        let mut blocks = data.chunks_exact(64);
        for block in blocks.by_ref() {
            let block: &[u8; 64] = block.try_into().expect("chunks_exact gives 64 bytes");
            self.push(block, delimiter, quote, u64::MAX);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let mut block = [0u8; 64];
            block[..rest.len()].copy_from_slice(rest);
            // The padding is not data, whatever byte the delimiter is.
            self.push(&block, delimiter, quote, (1u64 << rest.len()) - 1);
        }
    }

    #[inline]
    fn push(&mut self, block: &[u8; 64], delimiter: u8, quote: u8, valid: u64) {
        self.newline.push(eq_mask(block, b'\n') & valid);
        self.delimiter.push(eq_mask(block, delimiter) & valid);
        let quotes = eq_mask(block, quote) & valid;
        self.quote.push(quotes);
        self.special.push(quotes | (eq_mask(block, b'\r') & valid));
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
}
