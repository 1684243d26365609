//! The two [`Window`]s the header walk reads through: an object read by ranged
//! GETs extended only as far as the walk asks ([`Ranged`]), and a deflated data set
//! inflated only as far as the walk asks ([`Inflate`]). Both stop at a byte budget.

use std::ops::Range;

use flate2::{Decompress, FlushDecompress, Status};

use super::walk::{Short, Window};
use crate::sources::ReadError;

/// The largest single read after the first.
const MAX_CHUNK: u64 = 1 << 20;

/// An object of known size read in ranges: the first `initial` bytes, then each
/// extension twice the last, a jump over a large element starting afresh at its
/// end. It keeps the first range (the guesses re-read the start) and the latest.
pub struct Ranged<F> {
    fetch: F,
    size: u64,
    budget: u64,
    fetched: u64,
    initial: u64,
    chunk: u64,
    head: Vec<u8>,
    /// The latest range: `at` and its bytes.
    at: u64,
    latest: Vec<u8>,
}

impl<F: FnMut(Range<u64>) -> Result<bytes::Bytes, ReadError>> Ranged<F> {
    /// `fetch` reads a range of an object of `size` bytes; at most `budget` bytes
    /// are read in all.
    pub fn new(fetch: F, size: u64, initial: u64, budget: u64) -> Self {
        Ranged {
            fetch,
            size,
            budget,
            fetched: 0,
            initial: initial.max(64),
            chunk: initial.max(64),
            head: Vec::new(),
            at: 0,
            latest: Vec::new(),
        }
    }

    /// Bytes read so far.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    fn read(&mut self, range: Range<u64>) -> Result<bytes::Bytes, Short> {
        let want = range.end - range.start;
        if self.fetched + want > self.budget {
            return Err(Short::OverBudget(self.budget));
        }
        let got = (self.fetch)(range.clone()).map_err(Short::Io)?;
        self.fetched += got.len() as u64;
        if (got.len() as u64) < want {
            // The listing promised these bytes.
            return Err(Short::Io(ReadError::Changed(format!(
                "a read of bytes {}..{} returned {} bytes",
                range.start,
                range.end,
                got.len()
            ))));
        }
        Ok(got)
    }

    /// How far to read from `from` to hold `end`: a chunk at least, within the
    /// object and the budget.
    fn span(&self, from: u64, end: u64) -> u64 {
        let remaining = self.budget.saturating_sub(self.fetched);
        end.max(from + self.chunk.min(remaining)).min(self.size)
    }
}

impl<F: FnMut(Range<u64>) -> Result<bytes::Bytes, ReadError>> Window for Ranged<F> {
    fn get(&mut self, at: u64, len: usize) -> Result<&[u8], Short> {
        let end = at + len as u64;
        if end > self.size {
            return Err(Short::Ends(self.size));
        }
        let head_end = self.head.len() as u64;
        let latest_end = self.at + self.latest.len() as u64;
        let in_latest = !self.latest.is_empty() && at >= self.at && end <= latest_end;
        if end > head_end && !in_latest {
            // The range to extend: the latest one, or the head while there is none.
            let (base, extends_head) = if self.latest.is_empty() {
                (head_end, true)
            } else {
                (latest_end, false)
            };
            let near = at <= base + self.chunk / 4 && (extends_head || at >= self.at);
            if near {
                // Just past what was read: extended (a small gap costs less than a request).
                let span = self.span(base, end);
                let more = self.read(base..span)?;
                if extends_head && self.head.is_empty() {
                    self.head = Vec::from(more);
                } else if extends_head {
                    self.head.extend_from_slice(&more);
                } else {
                    self.latest.extend_from_slice(&more);
                }
                self.chunk = self.chunk.saturating_mul(2).min(MAX_CHUNK);
            } else {
                // A jump over elements that are not read: a fresh first-size read.
                self.chunk = self.initial;
                let span = self.span(at, end);
                self.latest = Vec::from(self.read(at..span)?);
                self.at = at;
            }
        }
        if end <= self.head.len() as u64 {
            return Ok(&self.head[at as usize..end as usize]);
        }
        let from = (at - self.at) as usize;
        Ok(&self.latest[from..from + len])
    }

    fn reaches(&mut self, end: u64) -> Result<bool, Short> {
        Ok(end <= self.size)
    }

    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
}

/// A deflated data set (raw deflate, PS3.5 A.5) from offset `from` of an inner
/// window, inflated as the walk reads on, at most `budget` bytes of it.
pub struct Inflate<'w, W: Window> {
    inner: &'w mut W,
    from: u64,
    read: u64,
    out: Vec<u8>,
    z: Decompress,
    ended: bool,
    budget: u64,
}

/// Compressed bytes taken at once.
const INFLATE_STEP: usize = 16 * 1024;

impl<'w, W: Window> Inflate<'w, W> {
    pub fn new(inner: &'w mut W, from: u64, budget: u64) -> Self {
        Inflate {
            inner,
            from,
            read: 0,
            out: Vec::new(),
            z: Decompress::new(false),
            ended: false,
            budget,
        }
    }

    /// Inflates until `end` bytes exist or the stream ends.
    fn fill(&mut self, end: u64) -> Result<(), Short> {
        while (self.out.len() as u64) < end && !self.ended {
            if self.out.len() as u64 >= self.budget {
                return Err(Short::OverBudget(self.budget));
            }
            let at = self.from + self.read;
            let size = self.inner.size().unwrap_or(u64::MAX);
            let step = (size.saturating_sub(at)).min(INFLATE_STEP as u64) as usize;
            let input = if step == 0 {
                &[][..]
            } else {
                self.inner.get(at, step)?
            };
            let room = (self.budget as usize - self.out.len()).min(4 * INFLATE_STEP);
            self.out.reserve_exact(room);
            let before_in = self.z.total_in();
            let before_out = self.out.len();
            let flush = if step == 0 {
                FlushDecompress::Finish
            } else {
                FlushDecompress::None
            };
            let status = self
                .z
                .decompress_vec(input, &mut self.out, flush)
                .map_err(|_| Short::Ends(self.out.len() as u64))?;
            let used = self.z.total_in() - before_in;
            self.read += used;
            match status {
                Status::StreamEnd => self.ended = true,
                // No input left, or no progress at all: the stream is cut short.
                _ if step == 0 || (used == 0 && self.out.len() == before_out) => self.ended = true,
                _ => {}
            }
        }
        Ok(())
    }
}

impl<W: Window> Window for Inflate<'_, W> {
    fn get(&mut self, at: u64, len: usize) -> Result<&[u8], Short> {
        let end = at + len as u64;
        self.fill(end)?;
        if (self.out.len() as u64) < end {
            return Err(Short::Ends(self.out.len() as u64));
        }
        Ok(&self.out[at as usize..end as usize])
    }

    fn reaches(&mut self, end: u64) -> Result<bool, Short> {
        self.fill(end)?;
        Ok(self.out.len() as u64 >= end)
    }

    fn size(&self) -> Option<u64> {
        self.ended.then_some(self.out.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranged(
        data: &[u8],
        initial: u64,
        budget: u64,
    ) -> Ranged<impl FnMut(Range<u64>) -> Result<bytes::Bytes, ReadError> + '_> {
        let fetch = move |r: Range<u64>| {
            Ok(bytes::Bytes::copy_from_slice(
                &data[r.start as usize..r.end as usize],
            ))
        };
        Ranged::new(fetch, data.len() as u64, initial, budget)
    }

    #[test]
    fn ranged_reads_give_the_bytes_asked_for_wherever_they_lie() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = ranged(&data, 256, u64::MAX);
        for (at, len) in [
            (0u64, 4usize),
            (128, 4),
            (200, 300),
            (5000, 8),
            (5004, 12),
            (90_000, 9000),
            (10, 20),
            (99_990, 10),
        ] {
            assert_eq!(
                w.get(at, len).unwrap(),
                &data[at as usize..at as usize + len],
                "{at}+{len}"
            );
        }
        assert!(matches!(w.get(99_995, 10), Err(Short::Ends(100_000))));
        assert!(
            w.fetched() < 30_000,
            "jumps do not read what they skip: {}",
            w.fetched()
        );
    }

    #[test]
    fn ranged_reads_stop_at_the_budget() {
        let data = vec![0u8; 10_000];
        let mut w = ranged(&data, 1024, 2048);
        assert!(w.get(0, 100).is_ok());
        assert!(matches!(w.get(4000, 2000), Err(Short::OverBudget(2048))));
        assert!(w.fetched() <= 2048);
    }

    #[test]
    fn inflate_gives_the_stream_as_far_as_asked_and_no_further_than_the_budget() {
        use std::io::Write;
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 13) as u8).collect();
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let mut file = b"PREFIX".to_vec();
        file.extend(z.finish().unwrap());
        let mut outer = ranged(&file, 1024, u64::MAX);
        let mut inflated = Inflate::new(&mut outer, 6, 1 << 30);
        assert_eq!(inflated.get(1000, 10).unwrap(), &plain[1000..1010]);
        assert!(inflated.reaches(200_000).unwrap());
        assert!(!inflated.reaches(200_001).unwrap());
        assert_eq!(inflated.size(), Some(200_000));
        let mut outer = ranged(&file, 1024, u64::MAX);
        let mut bounded = Inflate::new(&mut outer, 6, 50_000);
        assert!(matches!(
            bounded.get(60_000, 10),
            Err(Short::OverBudget(50_000))
        ));
    }
}
