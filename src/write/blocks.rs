//! The bytes a Parquet writer makes, cut into blocks of one size as they come.
//!
//! Both writers of Parquet files (`upload.rs`'s for tables, `stitch.rs`'s for
//! joins) write into blocks. Each used to copy a row group into one buffer
//! reserved at its size (estimated, in the table writer, and larger than what
//! was written: the estimate counts the page in progress uncompressed), a size
//! of its own every time. Blocks all have the same size, so the blocks of one
//! file's upload, once freed, are what the next file's are made of. Measured
//! against the reservation, the peaks and the CPU were the same within the
//! runs' spread (docs/benchmarks.md, "Blocks of one size"): what blocks take
//! away is the estimate's slack and, below, a copy. A block's size divides the
//! upload's part size whenever the part splits evenly into blocks of at most
//! 1 MiB, as 5 and 10 MiB parts do ([`block_size`]), and then no block
//! straddles two parts (`Upload::put` copies a straddling end).

use std::io::Write;

/// Blocks are at most this big: a file keeps its last, unfilled block between
/// row groups, and 1 MiB is one of jemalloc's size classes.
const MAX_BLOCK: usize = 1 << 20;

/// The block size for uploads in parts of `part_bytes`: the part shared evenly
/// among the fewest blocks of at most [`MAX_BLOCK`] (5 MiB: five of 1 MiB).
/// When the part does not divide evenly among them, the blocks are rounded up
/// and `Upload::put` cuts those that straddle.
pub fn block_size(part_bytes: usize) -> usize {
    let blocks = part_bytes.div_ceil(MAX_BLOCK).max(1);
    part_bytes.div_ceil(blocks).max(1)
}

/// A [`Write`] that keeps what it is given in blocks of `size` bytes.
#[derive(Debug)]
pub struct Blocks {
    size: usize,
    /// Filled blocks not yet taken, in order.
    full: Vec<Vec<u8>>,
    /// The block being filled (no capacity until a byte comes).
    last: Vec<u8>,
}

impl Blocks {
    /// Blocks for an upload in parts of `part_bytes` ([`block_size`]).
    pub fn for_parts(part_bytes: usize) -> Self {
        Self::new(block_size(part_bytes))
    }

    pub fn new(size: usize) -> Self {
        assert!(size > 0, "a block holds at least one byte");
        Blocks {
            size,
            full: Vec::new(),
            last: Vec::new(),
        }
    }

    /// The filled blocks, in order; the one being filled stays.
    pub fn take_full(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.full)
    }

    /// Ends the block being filled where it is, as a full one (the file is
    /// complete: no more bytes come).
    pub fn seal(&mut self) {
        if !self.last.is_empty() {
            self.full.push(std::mem::take(&mut self.last));
        }
    }
}

impl Write for Blocks {
    fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<usize> {
        let written = bytes.len();
        while !bytes.is_empty() {
            if self.last.capacity() == 0 {
                self.last = Vec::with_capacity(self.size);
            }
            let n = (self.size - self.last.len()).min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            self.last.extend_from_slice(now);
            bytes = rest;
            if self.last.len() == self.size {
                self.full.push(std::mem::take(&mut self.last));
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn blocks_divide_the_part() {
        assert_eq!(block_size(5 << 20), 1 << 20);
        assert_eq!(block_size(10 << 20), 1 << 20);
        assert_eq!(block_size(4096), 4096);
        assert_eq!(block_size(1 << 20), 1 << 20);
        assert_eq!(block_size((1 << 20) + 2), (1 << 19) + 1);
        assert_eq!(block_size(1), 1);
        assert_eq!(block_size(0), 1);
    }

    proptest! {
        /// Whatever the writes, the blocks hold the bytes in order, every taken
        /// block but a sealed last one is full, and a block never moves to the
        /// taken ones before it is.
        #[test]
        fn blocks_keep_the_bytes_in_order(
            size in 1usize..64,
            writes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
            takes in prop::collection::vec(any::<bool>(), 20),
        ) {
            let mut blocks = Blocks::new(size);
            let mut taken: Vec<Vec<u8>> = Vec::new();
            for (bytes, take) in writes.iter().zip(&takes) {
                blocks.write_all(bytes).unwrap();
                if *take {
                    taken.extend(blocks.take_full());
                }
            }
            prop_assert!(blocks.last.len() < size, "a full block left unfilled");
            prop_assert!(taken.iter().all(|b| b.len() == size));
            blocks.seal();
            taken.extend(blocks.take_full());
            prop_assert!(blocks.full.is_empty() && blocks.last.capacity() == 0);
            prop_assert!(taken.iter().all(|b| !b.is_empty() && b.len() <= size));
            prop_assert_eq!(taken.concat(), writes.concat());
        }

        /// Blocks of [`block_size`] are at most 1 MiB, no bigger than a part,
        /// and end on the part boundaries whenever the part divides evenly
        /// among that many blocks.
        #[test]
        fn blocks_end_on_part_boundaries(part in 1usize..(64 << 20)) {
            let block = block_size(part);
            prop_assert!(block <= MAX_BLOCK && block <= part);
            let blocks = part.div_ceil(MAX_BLOCK);
            prop_assert_eq!(part.div_ceil(block), blocks, "more blocks than needed");
            if part % blocks == 0 {
                prop_assert_eq!(part % block, 0);
            }
        }
    }
}
