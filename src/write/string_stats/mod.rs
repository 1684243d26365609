//! The statistics of a string column, computed here rather than by parquet-rs.
//!
//! parquet-rs finds a string column's least and greatest values by comparing
//! every value with the two so far (`compute_min_max`): a `memcmp` call per
//! value whose exit depends on where the strings first differ. On the sensor
//! benchmark's columns, a few names in random order, writing the string
//! columns without statistics took 14% less wall time (docs/benchmarks.md).
//! Here the same bounds come from a key per value, its first
//! 15 bytes and its length as one number: values that differ there are ordered
//! by the key alone, and the two comparisons (one per bound) that decide
//! whether a value may be a new bound are branches almost never taken once the
//! bounds settle. Only those values are compared in full: a new bound, or a
//! value longer than 15 bytes that shares them with a bound (`key.rs`). The
//! bounds kept per slice, and how parquet-rs cuts them, are in `bounds.rs`.
//!
//! The writer ([`super::upload::ParquetUpload`]) asks parquet-rs for no
//! statistics on such a column, hands it the column in slices of parquet-rs's
//! mini-batch (`write_batch_size`, or the page's row limit when that is fewer;
//! 1 024 rows by default), and records each slice's bounds and nulls here.
//! When the column chunk closes, its offset index says which rows each page
//! holds, and [`apply`] writes what parquet-rs writes with page statistics:
//! the chunk's statistics, its column index (each page's bounds, null count
//! and definition-level histogram, and whether the pages' bounds ascend or
//! descend), and the chunk's level histogram and unencoded size; each bound
//! cut as parquet-rs cuts them (`statistics_truncate_length`,
//! `column_index_truncate_length`).
//!
//! Where the two can differ, given the same mini-batches:
//!
//! - parquet-rs ends a page after a mini-batch, and a mini-batch here is a
//!   slice, so pages end between slices and each page's bounds are exact. A
//!   page that ends inside a slice (parquet-rs splits a mini-batch whose
//!   values would overflow a page or the dictionary) is given the bounds of
//!   every slice it touches: wider than its values, still bounds, which is what
//!   the format asks of a column index. Null counts are exact either way.
//! - A slice's bounds are kept to their first `KEPT_BYTES` (1 KiB), so that a
//!   column of huge values holds no more than that per slice. Two bounds
//!   longer than that which agree on those bytes cannot be ordered: the pages
//!   are then said to be in no order (always true), where parquet-rs might
//!   find one. And where parquet-rs would write a whole bound because no
//!   shorter one exists (a value of more than the truncation length made only
//!   of characters such as U+007F that cannot be incremented in place), a
//!   bound longer than `KEPT_BYTES` is not known: the chunk then gets no
//!   minimum and maximum and no column index rather than a wrong one (a
//!   page's bound of that kind drops only the column index).
//!
//! [`apply`]: StringStats::apply

mod bounds;
mod key;

use std::cmp::Ordering;

use datafusion::arrow::array::{Array, AsArray, GenericStringArray, OffsetSizeTrait};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::basic::{BoundaryOrder, Type as PhysicalType};
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::data_type::ByteArray;
use datafusion::parquet::file::metadata::{ColumnIndexBuilder, LevelHistogram};
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::statistics::{Statistics, ValueStatistics};
use datafusion::parquet::schema::types::ColumnPath;

use crate::base::error::{Error, Result};
use bounds::{KEPT_BYTES, Kept, lower_bound, upper_bound};
use key::least_and_greatest;

/// How parquet-rs cuts long bounds: the lengths the writer's properties give.
#[derive(Debug, Clone, Copy)]
pub struct Truncation {
    /// `statistics_truncate_length`: the chunk's minimum and maximum.
    statistics: usize,
    /// `column_index_truncate_length`: each page's bounds.
    column_index: usize,
}

impl Truncation {
    /// How `props` would have parquet-rs write the statistics of the string
    /// column at `path`, when they can be computed here: page statistics, an
    /// offset index (it says where pages end), none in the page headers
    /// (written before the chunk closes), and bounds cut to fewer than
    /// `KEPT_BYTES` (cutting at a length reads the byte after it).
    pub fn of_column(props: &WriterProperties, path: &ColumnPath) -> Option<Truncation> {
        let fits = |limit: Option<usize>| limit.filter(|&l| l < KEPT_BYTES);
        if props.statistics_enabled(path) != EnabledStatistics::Page
            || props.offset_index_disabled()
            || props.write_page_header_statistics(path)
        {
            return None;
        }
        Some(Truncation {
            statistics: fits(props.statistics_truncate_length())?,
            column_index: fits(props.column_index_truncate_length())?,
        })
    }
}

/// The statistics of one string column chunk in the making.
#[derive(Debug)]
pub struct StringStats {
    truncation: Truncation,
    slices: Vec<Slice>,
    /// Bytes of the non-null values, for the chunk's unencoded size.
    value_bytes: i64,
}

/// One slice of rows as written.
#[derive(Debug)]
struct Slice {
    rows: usize,
    null_count: usize,
    /// Which rows are null, kept when some are, to count the nulls of a page
    /// that ends inside the slice.
    nulls: Option<NullBuffer>,
    /// The least and greatest value; none when every row is null.
    bounds: Option<(Kept, Kept)>,
}

impl StringStats {
    /// Statistics for a column chunk whose bounds are cut as `truncation` says.
    pub fn new(truncation: Truncation) -> Self {
        StringStats {
            truncation,
            slices: Vec::new(),
            value_bytes: 0,
        }
    }

    /// Records the next slice of the column, `values` (a string array, the
    /// rows handed to the column writer in one call, in the order written).
    pub fn observe(&mut self, values: &dyn Array) -> Result<()> {
        let slice = match values.data_type() {
            DataType::Utf8 => self.slice_of(values.as_string::<i32>()),
            DataType::LargeUtf8 => self.slice_of(values.as_string::<i64>()),
            other => {
                return Err(Error::Accounting(format!(
                    "string statistics were asked of a column of {other}"
                )));
            }
        };
        self.slices.push(slice);
        Ok(())
    }

    /// The memory these statistics hold: the slices, their bounds, and their
    /// share of the null masks they keep.
    pub fn memory_size(&self) -> usize {
        let held: usize = self
            .slices
            .iter()
            .map(|s| {
                let kept = s
                    .bounds
                    .as_ref()
                    .map_or(0, |(l, g)| l.head.len() + g.head.len());
                kept + s.nulls.as_ref().map_or(0, |n| n.len().div_ceil(8))
            })
            .sum();
        self.slices.capacity() * std::mem::size_of::<Slice>() + held
    }

    fn slice_of<O: OffsetSizeTrait>(&mut self, values: &GenericStringArray<O>) -> Slice {
        let nulls = values
            .logical_nulls()
            .filter(|n| n.null_count() > 0)
            .map(|n| own_copy(&n));
        let (bounds, bytes) = match &nulls {
            None => (least_and_greatest(values, 0..values.len()), {
                let offsets = values.value_offsets();
                offsets[values.len()].as_usize() - offsets[0].as_usize()
            }),
            Some(n) => (
                least_and_greatest(values, n.valid_indices()),
                n.valid_indices()
                    .map(|row| values.value_length(row).as_usize())
                    .sum(),
            ),
        };
        self.value_bytes += bytes as i64;
        Slice {
            rows: values.len(),
            null_count: nulls.as_ref().map_or(0, NullBuffer::null_count),
            nulls,
            bounds: bounds.map(|(least, greatest)| {
                (
                    Kept::new(values.value(least).as_bytes()),
                    Kept::new(values.value(greatest).as_bytes()),
                )
            }),
        }
    }

    /// Writes into `chunk` (the column chunk these slices made, closed by a
    /// writer asked for no statistics) what parquet-rs writes with page
    /// statistics.
    pub fn apply(self, chunk: &mut ColumnCloseResult) -> Result<()> {
        let rows: usize = self.slices.iter().map(|s| s.rows).sum();
        if rows as u64 != chunk.rows_written {
            return Err(Error::Accounting(format!(
                "string statistics saw {rows} rows of a column chunk of {}",
                chunk.rows_written
            )));
        }
        let Some(offset_index) = &chunk.offset_index else {
            return Err(Error::Accounting(
                "a column chunk to be given string statistics has no offset index".into(),
            ));
        };
        let mut page_starts: Vec<usize> = offset_index
            .page_locations()
            .iter()
            .map(|p| p.first_row_index as usize)
            .collect();
        page_starts.push(rows);
        if page_starts.first() != Some(&0) || !page_starts.is_sorted() {
            return Err(Error::Accounting(format!(
                "a column chunk's pages start at rows {page_starts:?}"
            )));
        }
        let max_level = chunk.metadata.column_descr().max_def_level();
        let def_histogram = |nulls: usize, rows: usize| {
            LevelHistogram::try_new(max_level).map(|mut h| {
                // A flat column: level 0 is a null, its maximum a value.
                h.increment_by(0, nulls as i64);
                h.increment_by(max_level, (rows - nulls) as i64);
                h
            })
        };
        chunk.column_index = self.column_index(&self.pages(&page_starts), def_histogram)?;
        let null_count: usize = self.slices.iter().map(|s| s.null_count).sum();
        chunk.metadata = chunk
            .metadata
            .clone()
            .into_builder()
            .set_statistics(Statistics::ByteArray(self.chunk_statistics(null_count)))
            .set_unencoded_byte_array_data_bytes(Some(self.value_bytes))
            .set_definition_level_histogram(def_histogram(null_count, rows))
            .build()?;
        Ok(())
    }

    /// The column index of `pages`, as parquet-rs builds it (none where a
    /// page's bound is not known: see the module's doc).
    fn column_index(
        &self,
        pages: &[Page],
        def_histogram: impl Fn(usize, usize) -> Option<LevelHistogram>,
    ) -> Result<Option<ColumnIndexMetaData>> {
        let limit = self.truncation.column_index;
        let mut index = ColumnIndexBuilder::new(PhysicalType::BYTE_ARRAY);
        let mut order = PageOrder::default();
        for page in pages {
            match page.bounds {
                None => index.append(true, Vec::new(), Vec::new(), page.null_count as i64),
                Some((least, greatest)) => {
                    match (lower_bound(least, limit), upper_bound(greatest, limit)) {
                        (Some((min, _)), Some((max, _))) => {
                            order.add(least, greatest);
                            index.append(false, min, max, page.null_count as i64);
                        }
                        _ => index.to_invalid(),
                    }
                }
            }
            index.append_histograms(&None, &def_histogram(page.null_count, page.rows));
        }
        if !index.valid() {
            return Ok(None);
        }
        index.set_boundary_order(order.boundary_order());
        Ok(Some(index.build()?))
    }

    /// The chunk's minimum, maximum and null count, as parquet-rs writes them
    /// (no minimum and maximum where one is not known: see the module's doc).
    fn chunk_statistics(&self, null_count: usize) -> ValueStatistics<ByteArray> {
        let limit = self.truncation.statistics;
        let bounds = self.slices.iter().filter_map(|s| s.bounds.as_ref());
        let least = bounds.clone().map(|b| &b.0).min();
        let greatest = bounds.map(|b| &b.1).max();
        let cut = least
            .and_then(|v| lower_bound(v, limit))
            .zip(greatest.and_then(|v| upper_bound(v, limit)));
        let nulls = Some(null_count as u64);
        match cut {
            Some(((min, min_exact), (max, max_exact))) => {
                ValueStatistics::new(Some(min.into()), Some(max.into()), None, nulls, false)
                    .with_min_is_exact(min_exact)
                    .with_max_is_exact(max_exact)
            }
            None => ValueStatistics::new(None, None, None, nulls, false),
        }
    }

    /// Each page's rows, nulls and bounds, from the slices it covers.
    fn pages(&self, page_starts: &[usize]) -> Vec<Page<'_>> {
        let mut pages = Vec::with_capacity(page_starts.len().saturating_sub(1));
        let mut slices = self.slices.iter();
        let mut slice = slices.next();
        // The first row of `slice`.
        let mut slice_start = 0;
        for range in page_starts.windows(2) {
            let (start, end) = (range[0], range[1]);
            let mut page = Page {
                rows: end - start,
                null_count: 0,
                bounds: None,
            };
            while let Some(s) = slice {
                let slice_end = slice_start + s.rows;
                if slice_start >= end {
                    break;
                }
                let (from, to) = (start.max(slice_start), end.min(slice_end));
                let nulls = if (from, to) == (slice_start, slice_end) {
                    s.null_count
                } else {
                    s.nulls
                        .as_ref()
                        .map_or(0, |n| n.slice(from - slice_start, to - from).null_count())
                };
                page.null_count += nulls;
                // Rows of this page with values: the slice's bounds hold them
                // (and the slice's other values, when the page ends inside it).
                if let (true, Some((least, greatest))) = (nulls < to - from, &s.bounds) {
                    page.bounds = Some(match page.bounds {
                        None => (least, greatest),
                        Some((l, g)) => (l.min(least), g.max(greatest)),
                    });
                }
                if slice_end > end {
                    break; // the slice goes on in the next page
                }
                slice_start = slice_end;
                slice = slices.next();
            }
            pages.push(page);
        }
        pages
    }
}

/// A slice's null mask in an allocation of its own. The array's mask is a view
/// of the batch's buffer: kept until the chunk ends, it would keep all of that
/// buffer alive, and a batch read back from Arrow IPC (the writer's spill) has
/// one buffer for every column. Over 3 GB of CSV sorted by sensor, the masks of
/// the rewritten partitions held 156 MiB of spilled batches that way.
fn own_copy(nulls: &NullBuffer) -> NullBuffer {
    let bits = nulls.inner();
    let bytes = Buffer::from_slice_ref(bits.sliced().as_slice());
    NullBuffer::new(BooleanBuffer::new(bytes, 0, bits.len()))
}

/// A page of the chunk, as the column index describes it.
struct Page<'a> {
    rows: usize,
    null_count: usize,
    /// The least and greatest of the slices the page's values are in.
    bounds: Option<(&'a Kept, &'a Kept)>,
}

/// Whether the bounds of a chunk's pages with values rise or fall, by
/// parquet-rs's rule (each page's minimum and maximum against the last's);
/// an order the kept bytes cannot tell counts against both.
struct PageOrder<'a> {
    ascending: bool,
    descending: bool,
    last: Option<(&'a Kept, &'a Kept)>,
}

impl Default for PageOrder<'_> {
    fn default() -> Self {
        PageOrder {
            ascending: true,
            descending: true,
            last: None,
        }
    }
}

impl<'a> PageOrder<'a> {
    /// The next page with values, whose bounds are `least` and `greatest`.
    fn add(&mut self, least: &'a Kept, greatest: &'a Kept) {
        if let Some((last_least, last_greatest)) = self.last {
            let rises =
                |a: &Kept, b: &Kept| matches!(a.order(b), Some(Ordering::Less | Ordering::Equal));
            self.ascending &= rises(last_least, least) && rises(last_greatest, greatest);
            self.descending &= rises(least, last_least) && rises(greatest, last_greatest);
        }
        self.last = Some((least, greatest));
    }

    /// parquet-rs's choice: pages of equal bounds (or none) are ascending.
    fn boundary_order(&self) -> BoundaryOrder {
        match (self.ascending, self.descending) {
            (true, _) => BoundaryOrder::ASCENDING,
            (false, true) => BoundaryOrder::DESCENDING,
            (false, false) => BoundaryOrder::UNORDERED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    /// The mask a slice keeps is its own, however large the buffer the
    /// array's mask was a view of, and says the same rows are null.
    #[test]
    fn a_slice_keeps_its_own_null_mask() {
        let rows = 4096;
        let values: StringArray = (0..rows)
            .map(|i| (i % 3 != 0).then(|| format!("v{i}")))
            .collect();
        // A mask that is a view of a far larger buffer, as one read from IPC is.
        let mut backing = vec![0u8; 1 << 20];
        let mask = values.nulls().expect("has nulls").inner();
        backing[..mask.sliced().len()].copy_from_slice(mask.sliced().as_slice());
        let wide = Buffer::from_vec(backing);
        for (start, len) in [(0, 1024), (1, 1024), (8, 1021), (13, 1000), (3000, 1096)] {
            let view = NullBuffer::new(BooleanBuffer::new(wide.clone(), start, len));
            let array = StringArray::new(
                values.offsets().slice(start, len),
                values.values().clone(),
                Some(view.clone()),
            );
            let mut stats = StringStats::new(Truncation {
                statistics: 64,
                column_index: 64,
            });
            stats.observe(&array).expect("a string column");
            let kept = stats.slices[0].nulls.as_ref().expect("some rows are null");
            assert!(
                kept.buffer().capacity() < 4096,
                "start {start}: the kept mask holds {} bytes",
                kept.buffer().capacity()
            );
            assert_eq!(kept.len(), len);
            assert!(kept.iter().eq(view.iter()), "start {start}");
            assert_eq!(stats.slices[0].null_count, view.null_count());
        }
    }
}
