//! Carrying rows forward: an incremental run writes the rows of new and changed
//! objects, and for each partition of a table kept per object it decides what of
//! the partition's old rows the new version keeps ([`decide`], pure). A partition
//! is rewritten (copy-on-write into the run's version directory) only when it held
//! rows of an object that changed or was deleted, or when it gets new rows; every
//! other partition keeps its location and files untouched.
//!
//! The state says how many rows of each object each partition holds, so the
//! decision needs no read of the table, and a rewrite checks that it found
//! exactly those rows: a table edited by hand is found out, not half-merged.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder;
use datafusion::parquet::arrow::async_reader::ParquetRecordBatchStream;
// Deprecated in parquet 59 for a reader of one's own (arrow-rs#10308); it is
// still the one that reads through object_store, which this module needs.
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::ParquetObjectReader;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use serde::Serialize;

use super::layout::{Placement, is_data_file};
use super::{Staged, TableWriter, WrittenFile};
use crate::base::error::{Error, Result};
use crate::model::KEY_COLUMN;
use crate::storage::Location;

/// What the new version of one old partition keeps of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carry {
    /// Nothing in it changed and it gets no rows: same location, same files.
    Keep,
    /// It gets new rows and loses none: its files are copied into the new version.
    Copy,
    /// It loses some rows: the rest are read and written into the new version.
    Rewrite { keep: u64 },
    /// It loses every row: the new version holds only its new rows, if any.
    Empty,
}

/// Decides one old partition's fate from the state's counts: `rows` it holds,
/// `removed` of them from objects that changed or were deleted, and whether the
/// run wrote new rows to it.
pub fn decide(rows: u64, removed: u64, fresh: bool) -> Carry {
    match (removed, fresh) {
        (0, false) => Carry::Keep,
        (0, true) => Carry::Copy,
        (r, _) if r >= rows => Carry::Empty,
        (r, _) => Carry::Rewrite { keep: rows - r },
    }
}

/// One old partition of a table.
pub struct OldPartition<'a> {
    pub values: &'a [String],
    pub location: &'a str,
    pub carry: Carry,
}

/// What carrying one partition forward did.
#[derive(Debug, Default)]
pub struct Carried {
    /// Files copied as they were.
    pub copied: Vec<WrittenFile>,
    /// Rows read back from rewritten partitions and kept.
    pub rows_kept: u64,
    /// Rows read back and left out (they belong to changed or deleted objects).
    pub rows_dropped: u64,
}

/// Carries an old partition's rows into `writer`'s (or, copied, into `to`'s)
/// version of it, leaving out the rows whose key is in `removed`.
pub async fn carry_partition(
    output: &Location,
    table: &str,
    old: &OldPartition<'_>,
    removed: &HashSet<String>,
    writer: &mut TableWriter,
    to: &ObjPath,
    staged: &Staged,
) -> Result<Carried> {
    let mut out = Carried::default();
    let from = output.key_of_url(old.location).ok_or_else(|| {
        Error::State(format!(
            "table {table}: partition location {} is outside the output {}",
            old.location, output.display
        ))
    })?;
    match old.carry {
        Carry::Keep | Carry::Empty => {}
        Carry::Copy => out.copied = copy_files(output, &from, to, old.values, staged).await?,
        Carry::Rewrite { keep } => {
            for (path, size) in data_files(output, &from).await? {
                let mut batches = file_batches(output, path.clone(), size).await?;
                while let Some(batch) = batches.try_next().await? {
                    let kept = without_keys(table, &batch, removed)?;
                    out.rows_dropped += (batch.num_rows() - kept.num_rows()) as u64;
                    out.rows_kept += kept.num_rows() as u64;
                    writer.write_partition(old.values.to_vec(), &kept).await?;
                }
            }
            if out.rows_kept != keep {
                return Err(Error::State(format!(
                    "table {table}: partition {} holds {} rows of unchanged objects, the state says {keep}: the table was changed outside naslake. Run with --full to rebuild it",
                    old.location, out.rows_kept
                )));
            }
        }
    }
    Ok(out)
}

/// A table's last version, as the state has it.
pub struct OldTable {
    /// Partition values → location.
    pub partitions: BTreeMap<Vec<String>, String>,
    /// Rows per partition, of every object.
    pub rows: BTreeMap<Vec<String>, u64>,
    /// Rows per partition of the objects whose rows go (changed, deleted).
    pub removed_rows: BTreeMap<Vec<String>, u64>,
}

/// How an incremental run's version of a table relates to its last one.
#[derive(Debug, Default)]
pub struct Merge {
    /// Old partitions kept as they were: values → location.
    pub kept: BTreeMap<Vec<String>, String>,
    pub counts: MergeCounts,
}

/// For the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MergeCounts {
    /// Rows of the new and changed objects.
    pub rows_added: u64,
    /// Old rows of the changed and deleted objects.
    pub rows_removed: u64,
    /// Rows of unchanged objects written again (rewritten partitions).
    pub rows_rewritten: u64,
    pub partitions_kept: u64,
    pub partitions_copied: u64,
    pub partitions_rewritten: u64,
    /// Old partitions whose rows all went, and that got none.
    pub partitions_dropped: u64,
}

/// Merges a table's fresh rows (already written as `fresh`) with its last
/// version: each old partition is kept, copied or rewritten ([`decide`]).
/// Returns the merge and the files written or copied for it.
#[allow(clippy::too_many_arguments)]
pub async fn merge(
    output: &Location,
    table: &str,
    old: &OldTable,
    removed: &HashSet<String>,
    fresh: &[WrittenFile],
    mut writer: TableWriter,
    placement: &Placement,
    staged: &Staged,
) -> Result<(Merge, Vec<WrittenFile>)> {
    let fresh_partitions = partitions_of(fresh);
    let mut merge = Merge::default();
    merge.counts.rows_added = fresh.iter().map(|f| f.rows).sum();
    let mut copied = Vec::new();
    let result: Result<()> = async {
        for (values, location) in &old.partitions {
            let rows = old.rows.get(values).copied().unwrap_or(0);
            let gone = old.removed_rows.get(values).copied().unwrap_or(0);
            let carry = decide(rows, gone, fresh_partitions.contains(values));
            merge.counts.rows_removed += gone.min(rows);
            let c = &mut merge.counts;
            match carry {
                Carry::Keep => {
                    c.partitions_kept += 1;
                    merge.kept.insert(values.clone(), location.clone());
                    continue;
                }
                Carry::Copy => c.partitions_copied += 1,
                Carry::Rewrite { .. } => c.partitions_rewritten += 1,
                Carry::Empty if fresh_partitions.contains(values) => c.partitions_rewritten += 1,
                Carry::Empty => c.partitions_dropped += 1,
            }
            let part = OldPartition {
                values,
                location,
                carry,
            };
            let to = placement.dir(values);
            let done =
                carry_partition(output, table, &part, removed, &mut writer, &to, staged).await?;
            merge.counts.rows_rewritten += done.rows_kept;
            copied.extend(done.copied);
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        writer.abort().await;
        return Err(e);
    }
    let mut files = writer.finish().await?;
    files.extend(copied);
    Ok((merge, files))
}

/// The rows of `batch` whose key is not in `removed`.
fn without_keys(
    table: &str,
    batch: &RecordBatch,
    removed: &HashSet<String>,
) -> Result<RecordBatch> {
    let keys = batch
        .column_by_name(KEY_COLUMN)
        .and_then(|c| c.as_string_opt::<i32>().cloned())
        .ok_or_else(|| {
            Error::State(format!(
                "table {table}: a data file has no string {KEY_COLUMN} column: the table was changed outside naslake. Run with --full"
            ))
        })?;
    let keep: BooleanArray = (0..keys.len())
        .map(|i| Some(keys.is_null(i) || !removed.contains(keys.value(i))))
        .collect();
    Ok(filter_record_batch(batch, &keep)?)
}

/// The data files directly inside a directory, with their sizes.
/// The record batches of one data file of `size` bytes, streamed (a file is
/// never held whole): the one place that opens a Parquet file through the store.
#[allow(deprecated)]
pub async fn file_batches(
    location: &Location,
    path: ObjPath,
    size: u64,
) -> Result<ParquetRecordBatchStream<ParquetObjectReader>> {
    let reader = ParquetObjectReader::new(location.store.clone(), path).with_file_size(size);
    Ok(ParquetRecordBatchStreamBuilder::new(reader)
        .await?
        .build()?)
}

pub async fn data_files(output: &Location, dir: &ObjPath) -> Result<Vec<(ObjPath, u64)>> {
    let listing = output.store.list_with_delimiter(Some(dir)).await?;
    let mut files: Vec<(ObjPath, u64)> = listing
        .objects
        .into_iter()
        .filter(|m| m.location.filename().is_some_and(is_data_file))
        .map(|m| (m.location, m.size))
        .collect();
    files.sort();
    Ok(files)
}

/// Copies the data files of `from` into `to` (server-side where the store can),
/// staging each target first: a copy made whose answer was lost is still removed
/// if the run fails.
pub async fn copy_files(
    output: &Location,
    from: &ObjPath,
    to: &ObjPath,
    values: &[String],
    staged: &Staged,
) -> Result<Vec<WrittenFile>> {
    let mut copied = Vec::new();
    for (file, size) in data_files(output, from).await? {
        let name = file.filename().ok_or_else(|| {
            Error::Accounting(format!("{} has no file name", output.url_of(&file)))
        })?;
        let target = output.literal_child(to, name);
        staged.add(target.clone());
        output.store.copy(&file, &target).await?;
        copied.push(WrittenFile {
            url: output.url_of(&target),
            path: target,
            partition_values: values.to_vec(),
            rows: 0,
            bytes: size,
        });
    }
    Ok(copied)
}

/// The partitions that received rows.
pub fn partitions_of(files: &[WrittenFile]) -> BTreeSet<Vec<String>> {
    files.iter().map(|f| f.partition_values.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_touched_only_when_its_rows_change() {
        assert_eq!(decide(10, 0, false), Carry::Keep);
        assert_eq!(decide(10, 0, true), Carry::Copy);
        assert_eq!(decide(10, 4, false), Carry::Rewrite { keep: 6 });
        assert_eq!(decide(10, 4, true), Carry::Rewrite { keep: 6 });
        assert_eq!(decide(10, 10, true), Carry::Empty);
        assert_eq!(decide(10, 10, false), Carry::Empty);
        // An empty partition (every object's rows were rejects elsewhere) is kept.
        assert_eq!(decide(0, 0, false), Carry::Keep);
    }
}
