//! Splitting a run's listing into shards (`naslake plan`): contiguous runs of
//! the listing sorted by source and key, balanced by bytes. The same listing gives
//! the same shards, whatever order the store listed it in.
//!
//! Memory stays bounded however long the listing is: items are sorted in chunks
//! of [`CHUNK_ITEMS`], each chunk spilled to a local file, and the chunks merged
//! back in order (an external merge sort). Totals are known once every item is in,
//! so the merge can cut the shards on the way out.
//!
//! The cut: an item goes to the shard its middle byte falls in, with shard `i`
//! holding bytes `[i·total/n, (i+1)·total/n)`. Every shard is then within one
//! item's size of `total/n`. A listing of empty objects is cut by count instead.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};

use crate::base::error::{Error, Result};
use crate::model::WorkItem;

/// Items sorted in memory before a chunk is spilled (about 200 bytes each).
pub const CHUNK_ITEMS: usize = 64 * 1024;
/// Items a shard of `--shard-size` holds at most: a shard's step keeps its item
/// list in memory, so a share of many tiny objects is cut into more shards.
pub const MAX_SHARD_ITEMS: u64 = 250_000;

/// How many shards a plan asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Exactly this many (at least 1).
    Shards(usize),
    /// As many as it takes to keep each at about this many bytes.
    ShardSize(u64),
}

impl Split {
    /// The number of shards for a listing of `items` objects of `bytes` bytes.
    pub fn count(self, bytes: u64, items: u64) -> usize {
        match self {
            Split::Shards(n) => n.max(1),
            Split::ShardSize(size) => bytes
                .div_ceil(size.max(1))
                .max(items.div_ceil(MAX_SHARD_ITEMS))
                .max(1) as usize,
        }
    }
}

/// Collects a listing, then hands it back sorted, each item with its shard.
pub struct Sharder {
    chunk: Vec<WorkItem>,
    chunk_items: usize,
    spills: Vec<File>,
    dir: tempfile::TempDir,
    pub items: u64,
    pub bytes: u64,
}

impl Sharder {
    pub fn new() -> Result<Self> {
        Sharder::with_chunk(CHUNK_ITEMS)
    }

    /// A sharder that spills every `chunk_items` items (tests use small chunks).
    pub fn with_chunk(chunk_items: usize) -> Result<Self> {
        Ok(Sharder {
            chunk: Vec::new(),
            chunk_items: chunk_items.max(1),
            spills: Vec::new(),
            dir: tempfile::Builder::new().prefix("naslake-plan-").tempdir()?,
            items: 0,
            bytes: 0,
        })
    }

    pub fn push(&mut self, item: WorkItem) -> Result<()> {
        self.items += 1;
        self.bytes += item.fingerprint.size;
        self.chunk.push(item);
        if self.chunk.len() >= self.chunk_items {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.chunk.sort_by(by_source_and_key);
        let path = self
            .dir
            .path()
            .join(format!("{:06}.jsonl", self.spills.len()));
        let mut out = BufWriter::new(File::create(&path)?);
        for item in self.chunk.drain(..) {
            serde_json::to_writer(&mut out, &item)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        self.spills.push(File::open(&path)?);
        Ok(())
    }

    /// The listing in order, each item with its shard, for a plan of `shards`
    /// shards. Shard numbers never decrease along the way.
    pub fn finish(mut self, shards: usize) -> Result<Sorted> {
        if !self.spills.is_empty() && !self.chunk.is_empty() {
            self.spill()?;
        }
        self.chunk.sort_by(by_source_and_key);
        let mut runs: Vec<Run> = Vec::new();
        if self.spills.is_empty() {
            runs.push(Run::Memory(std::mem::take(&mut self.chunk).into_iter()));
        } else {
            for f in self.spills.drain(..) {
                runs.push(Run::Spilled(BufReader::new(f).lines()));
            }
        }
        let mut heap = BinaryHeap::new();
        for (i, run) in runs.iter_mut().enumerate() {
            if let Some(item) = run.next_item()? {
                heap.push(Head { item, run: i });
            }
        }
        Ok(Sorted {
            cut: Cut::new(shards, self.bytes, self.items),
            runs,
            heap,
            _dir: self.dir,
        })
    }
}

fn by_source_and_key(a: &WorkItem, b: &WorkItem) -> Ordering {
    (&a.source, &a.key).cmp(&(&b.source, &b.key))
}

/// A sorted run of the listing: in memory, or a spilled chunk.
enum Run {
    Memory(std::vec::IntoIter<WorkItem>),
    Spilled(std::io::Lines<BufReader<File>>),
}

impl Run {
    fn next_item(&mut self) -> Result<Option<WorkItem>> {
        match self {
            Run::Memory(it) => Ok(it.next()),
            Run::Spilled(lines) => match lines.next() {
                Some(line) => Ok(Some(serde_json::from_str(&line?)?)),
                None => Ok(None),
            },
        }
    }
}

/// The smallest head of the runs is on top of the (max-)heap.
struct Head {
    item: WorkItem,
    run: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        by_source_and_key(&other.item, &self.item).then(other.run.cmp(&self.run))
    }
}

/// The listing, merged back in order.
pub struct Sorted {
    cut: Cut,
    runs: Vec<Run>,
    heap: BinaryHeap<Head>,
    _dir: tempfile::TempDir,
}

impl Iterator for Sorted {
    type Item = Result<(usize, WorkItem)>;

    fn next(&mut self) -> Option<Self::Item> {
        let Head { item, run } = self.heap.pop()?;
        match self.runs[run].next_item() {
            Ok(Some(next)) => self.heap.push(Head { item: next, run }),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        if let Some(top) = self.heap.peek()
            && by_source_and_key(&top.item, &item) == Ordering::Equal
        {
            return Some(Err(Error::Shards(format!(
                "source {} listed {} twice",
                item.source, item.key
            ))));
        }
        let shard = self.cut.next(item.fingerprint.size);
        Some(Ok((shard, item)))
    }
}

/// Assigns items, in order, to `n` contiguous shards of about equal weight.
#[derive(Debug, Clone)]
pub struct Cut {
    n: u128,
    /// Twice the total weight, so an item's middle is a whole number.
    total2: u128,
    before: u128,
    by_bytes: bool,
}

impl Cut {
    pub fn new(n: usize, bytes: u64, items: u64) -> Self {
        let by_bytes = bytes > 0;
        let total = if by_bytes { bytes } else { items };
        Cut {
            n: n.max(1) as u128,
            total2: 2 * u128::from(total.max(1)),
            before: 0,
            by_bytes,
        }
    }

    /// The shard of the next item, of `size` bytes.
    pub fn next(&mut self, size: u64) -> usize {
        let weight = if self.by_bytes { u128::from(size) } else { 1 };
        let middle2 = 2 * self.before + weight;
        self.before += weight;
        ((middle2 * self.n / self.total2).min(self.n - 1)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Fingerprint;
    use proptest::prelude::*;

    fn item(source: &str, key: &str, size: u64) -> WorkItem {
        WorkItem {
            source: source.into(),
            key: key.into(),
            sealed: None,
            fingerprint: Fingerprint {
                size,
                etag: None,
                last_modified: None,
            },
        }
    }

    fn plan(items: &[WorkItem], chunk: usize, shards: usize) -> Vec<(usize, WorkItem)> {
        let mut s = Sharder::with_chunk(chunk).unwrap();
        for i in items {
            s.push(i.clone()).unwrap();
        }
        s.finish(shards).unwrap().map(|r| r.unwrap()).collect()
    }

    proptest! {
        /// Sorted, complete, the same for any listing order and chunk size, and
        /// every shard within one item of its share.
        #[test]
        fn shards_are_balanced_sorted_runs_of_the_listing(
            sizes in prop::collection::vec(0u64..5000, 0..300),
            shards in 1usize..9,
            chunk in 1usize..50,
            seed in any::<u64>(),
        ) {
            let items: Vec<WorkItem> = sizes
                .iter()
                .enumerate()
                .map(|(i, s)| item(if i % 3 == 0 { "a" } else { "b" }, &format!("k{i:04}"), *s))
                .collect();
            let mut shuffled = items.clone();
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let a = plan(&items, 1000, shards);
            let b = plan(&shuffled, chunk, shards);
            prop_assert_eq!(&a, &b);
            let mut sorted = items.clone();
            sorted.sort_by(by_source_and_key);
            prop_assert_eq!(a.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>(), sorted);
            prop_assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
            let total: u64 = sizes.iter().sum();
            let largest = sizes.iter().copied().max().unwrap_or(0);
            if total > 0 {
                for s in 0..shards {
                    let got: u64 = a.iter().filter(|(i, _)| *i == s).map(|(_, i)| i.fingerprint.size).sum();
                    let share = total as f64 / shards as f64;
                    prop_assert!((got as f64 - share).abs() <= largest as f64, "shard {} has {} of {}", s, got, total);
                }
            }
        }
    }

    #[test]
    fn empty_objects_are_cut_by_count_and_a_key_listed_twice_is_an_error() {
        let items: Vec<WorkItem> = (0..10).map(|i| item("a", &format!("k{i}"), 0)).collect();
        let got = plan(&items, 3, 5);
        let per: Vec<usize> = (0..5)
            .map(|s| got.iter().filter(|(i, _)| *i == s).count())
            .collect();
        assert_eq!(per, vec![2; 5]);
        let mut s = Sharder::with_chunk(2).unwrap();
        for i in [item("a", "x", 1), item("a", "y", 1), item("a", "x", 1)] {
            s.push(i).unwrap();
        }
        assert!(s.finish(2).unwrap().any(|r| r.is_err()));
    }

    #[test]
    fn shard_size_decides_the_count() {
        assert_eq!(Split::ShardSize(100).count(0, 0), 1);
        assert_eq!(Split::ShardSize(100).count(250, 3), 3);
        assert_eq!(Split::Shards(0).count(250, 3), 1);
        // Many tiny objects: the item cap decides.
        let items = 3 * MAX_SHARD_ITEMS + 1;
        assert_eq!(Split::ShardSize(1 << 30).count(items * 10, items), 4);
    }
}
