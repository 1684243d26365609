//! Files of one partition that different writers of a table wrote, joined into
//! one by copying their row groups as they are: no page is decoded or encoded
//! again, only moved, and the footer is written anew.
//!
//! Big inputs are written by one writer per core, each taking its share of the
//! rows, so each writer may hold a file of the same partition. Routing rows to
//! writers by partition instead would leave time-ordered logs, which fill one
//! partition at a time, with one writer encoding and the others idle. Athena
//! pays per file it opens, so at the table's end the files of a partition are
//! joined, up to `target_file_size` per file ([`plan`]). Joining costs one copy
//! of the bytes (a ranged read per column chunk, streamed to the new file), not
//! a second encoding.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Buf, Bytes};
// Deprecated in favour of hand-written readers (arrow-rs#10308); carry.rs uses it too.
#[allow(deprecated)]
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};
use datafusion::parquet::column::writer::ColumnCloseResult;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::reader::{ChunkReader, Length};
use datafusion::parquet::file::writer::SerializedFileWriter;
use object_store::ObjectStore;
use object_store::path::Path as ObjPath;

use super::WrittenFile;
use super::blocks::Blocks;
use super::upload::{Upload, finish_file, hand_over};
use crate::base::error::{Error, Result};

/// Which files to join: for each partition, its files smallest first, packed
/// into groups whose bytes stay within `target` (a file at or over it stays
/// alone). Only groups of two or more are returned, as indices into `files`.
pub fn plan(files: &[WrittenFile], target: u64) -> Vec<Vec<usize>> {
    let mut by_partition: BTreeMap<&[String], Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        by_partition.entry(&f.partition_values).or_default().push(i);
    }
    let mut groups = Vec::new();
    for (_, mut members) in by_partition {
        members.sort_by_key(|&i| (files[i].bytes, i));
        let mut group: Vec<usize> = Vec::new();
        let mut bytes = 0u64;
        for i in members {
            let size = files[i].bytes;
            if !group.is_empty() && bytes + size > target {
                groups.push(std::mem::take(&mut group));
                bytes = 0;
            }
            group.push(i);
            bytes += size;
        }
        groups.push(group);
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// Writes `inputs` (files of one partition) as one file at `out`, row group after
/// row group; returns its rows and bytes, or `None`, writing nothing, when their
/// schemas differ (an incremental run's copy of a file written before the table
/// gained a column). The inputs are left in place: the caller removes them once
/// this has succeeded.
pub async fn join(
    store: &Arc<dyn ObjectStore>,
    inputs: &[WrittenFile],
    out: &ObjPath,
    props: WriterProperties,
    upload_buffer: usize,
) -> Result<Option<(u64, u64)>> {
    let mut metas = Vec::with_capacity(inputs.len());
    for f in inputs {
        metas.push(metadata(store, f).await?);
    }
    let Some(first) = metas.first() else {
        return Err(Error::Accounting("no files to join".into()));
    };
    for (f, m) in inputs.iter().zip(&metas) {
        if f.rows != 0 && f.rows != m.file_metadata().num_rows() as u64 {
            return Err(Error::Accounting(format!(
                "{} holds {} rows, not the {} its writer counted",
                f.url,
                m.file_metadata().num_rows(),
                f.rows
            )));
        }
    }
    let schema = first.file_metadata().schema_descr();
    if metas
        .iter()
        .any(|m| m.file_metadata().schema_descr().root_schema() != schema.root_schema())
    {
        return Ok(None);
    }
    let mut writer = SerializedFileWriter::new(
        Blocks::for_parts(upload_buffer),
        schema.root_schema_ptr(),
        Arc::new(props),
    )?;
    // The Arrow schema the writers stored (timestamp zones, for readers that use it).
    for kv in first
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
    {
        writer.append_key_value_metadata(kv.clone());
    }
    let mut upload = Upload::new(store.clone(), out.clone(), upload_buffer);
    let mut rows = 0u64;
    let copied: Result<()> = async {
        for (f, meta) in inputs.iter().zip(&metas) {
            for (g, group) in meta.row_groups().iter().enumerate() {
                // One request for the row group's column chunks (they lie side by
                // side, and the store merges adjacent ranges). A row group is at
                // most what a writer held in memory before it flushed one
                // (`MEMORY_BUDGET`), so this and the output buffer stay that small.
                let ranges: Vec<std::ops::Range<u64>> = group
                    .columns()
                    .iter()
                    .map(|c| {
                        let (start, len) = c.byte_range();
                        start..start + len
                    })
                    .collect();
                let chunks = store.get_ranges(&f.path, &ranges).await?;
                let mut row_group = writer.next_row_group()?;
                for (c, (column, bytes)) in group.columns().iter().zip(chunks).enumerate() {
                    let chunk = At {
                        start: column.byte_range().0,
                        bytes,
                    };
                    let close = ColumnCloseResult {
                        bytes_written: column.compressed_size() as u64,
                        rows_written: group.num_rows() as u64,
                        metadata: column.clone(),
                        bloom_filter: None,
                        column_index: meta
                            .column_index()
                            .and_then(|ci| ci.get(g))
                            .and_then(|row| row.get(c))
                            .cloned(),
                        offset_index: meta
                            .offset_index()
                            .and_then(|oi| oi.get(g))
                            .and_then(|row| row.get(c))
                            .cloned(),
                    };
                    row_group.append_column(&chunk, close)?;
                }
                row_group.close()?;
                rows += group.num_rows() as u64;
                hand_over(&mut writer, &mut upload).await?;
            }
        }
        finish_file(&mut writer, &mut upload).await?;
        Ok(())
    }
    .await;
    if let Err(e) = copied {
        // Nothing of an aborted multipart upload becomes an object. (One whose
        // completion failed was aborted then; aborting it again does nothing.)
        if let Err(abort) = upload.abort().await {
            tracing::warn!(file = %out, error = %abort, "an unfinished joined file's upload could not be aborted");
        }
        return Err(e);
    }
    // Every row of the inputs' footers is in the joined file. (A file an
    // incremental run copied records no row count of its own: 0.)
    let want: u64 = metas
        .iter()
        .map(|m| m.file_metadata().num_rows() as u64)
        .sum();
    if rows != want {
        return Err(Error::Accounting(format!(
            "joining {} files of {} rows gave {rows} rows",
            inputs.len(),
            want
        )));
    }
    Ok(Some((rows, writer.bytes_written() as u64)))
}

/// The footer of a file this run wrote, with its page index (kept in the join).
async fn metadata(store: &Arc<dyn ObjectStore>, f: &WrittenFile) -> Result<Arc<ParquetMetaData>> {
    #[allow(deprecated)]
    let mut reader = ParquetObjectReader::new(store.clone(), f.path.clone())
        .with_file_size(f.bytes)
        .with_preload_column_index(true)
        .with_preload_offset_index(true);
    Ok(reader.get_metadata(None).await?)
}

/// One column chunk's bytes, read at its offset in the file they came from.
struct At {
    start: u64,
    bytes: Bytes,
}

impl At {
    fn slice(&self, start: u64, len: Option<usize>) -> datafusion::parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.start)
            .map(|o| o as usize)
            .filter(|&o| o <= self.bytes.len());
        let to = from.map(|o| len.map_or(self.bytes.len(), |l| o + l));
        match (from, to) {
            (Some(from), Some(to)) if to <= self.bytes.len() => Ok(self.bytes.slice(from..to)),
            _ => Err(ParquetError::General(format!(
                "read at {start} outside the column chunk at {}..{}",
                self.start,
                self.start + self.bytes.len() as u64
            ))),
        }
    }
}

impl Length for At {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for At {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> datafusion::parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> datafusion::parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(partition: &str, bytes: u64) -> WrittenFile {
        WrittenFile {
            path: ObjPath::from("x"),
            url: String::new(),
            partition_values: vec![partition.to_string()],
            rows: 1,
            bytes,
        }
    }

    /// Three files of several row groups each, joined into one of several
    /// upload parts (4 KiB here, so the row groups cross parts and blocks):
    /// every row in order, row groups as they were, and the length returned is
    /// the object's.
    #[tokio::test]
    async fn a_join_holds_every_row_group_and_says_its_length() {
        use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use object_store::ObjectStoreExt;

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(700))
            .build();
        let mut inputs = Vec::new();
        for (n, rows) in [(0i64, 1500i64), (1, 900), (2, 2200)] {
            let path = ObjPath::from(format!("p/in-{n}.parquet"));
            let mut file = super::super::upload::ParquetUpload::try_new(
                store.clone(),
                path.clone(),
                4096,
                schema.clone(),
                props.clone(),
            )
            .unwrap();
            let ids: Vec<i64> = (0..rows).map(|i| n * 10_000 + i).collect();
            let names: Vec<String> = ids.iter().map(|i| format!("sensor-{}", i % 13)).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(names)),
                ],
            )
            .unwrap();
            file.write(&batch).await.unwrap();
            file.finish().await.unwrap();
            inputs.push(WrittenFile {
                path,
                url: String::new(),
                partition_values: vec!["a".into()],
                rows: rows as u64,
                bytes: file.bytes_written() as u64,
            });
        }
        let out = ObjPath::from("p/joined.parquet");
        let (rows, bytes) = join(&store, &inputs, &out, props, 4096)
            .await
            .unwrap()
            .expect("one schema");
        assert_eq!(rows, 4600);
        let file = store.get(&out).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes, file.len() as u64);
        assert!(file.len() > 3 * 4096, "not several parts: {}", file.len());
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect();
        assert_eq!(groups, vec![700, 700, 100, 700, 200, 700, 700, 700, 100]);
        let mut got = Vec::new();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let names = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            for i in 0..batch.num_rows() {
                assert_eq!(names.value(i), format!("sensor-{}", ids.value(i) % 13));
                got.push(ids.value(i));
            }
        }
        let want: Vec<i64> = [(0i64, 1500i64), (1, 900), (2, 2200)]
            .iter()
            .flat_map(|&(n, rows)| (0..rows).map(move |i| n * 10_000 + i))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn files_of_one_partition_are_joined_and_big_ones_stay_alone() {
        let files = vec![
            file("a", 10),
            file("b", 5),
            file("a", 30),
            file("a", 100),
            file("b", 7),
        ];
        let mut groups = plan(&files, 100);
        groups.iter_mut().for_each(|g| g.sort());
        groups.sort();
        assert_eq!(groups, vec![vec![0, 2], vec![1, 4]]);
    }

    proptest! {
        /// Every file is in at most one group; a group is one partition's and
        /// within the target; and of what a partition ends up with (its groups and
        /// the files left alone), at most one is half the target or less: two
        /// such would have been packed together.
        #[test]
        fn groups_are_within_target_and_of_one_partition(
            sizes in proptest::collection::vec((0usize..4, 1u64..200), 0..40),
            target in 1u64..400,
        ) {
            let files: Vec<WrittenFile> =
                sizes.iter().map(|(p, b)| file(&p.to_string(), *b)).collect();
            let groups = plan(&files, target);
            let mut seen = std::collections::HashSet::new();
            for g in &groups {
                prop_assert!(g.len() > 1);
                let total: u64 = g.iter().map(|&i| files[i].bytes).sum();
                prop_assert!(total <= target);
                prop_assert!(g.iter().all(|&i| files[i].partition_values == files[g[0]].partition_values));
                for &i in g {
                    prop_assert!(seen.insert(i));
                }
            }
            // Files left as they are, plus one per group: per partition, no two
            // of those outputs under half the target each (they would have fit).
            let mut outputs: BTreeMap<Vec<String>, Vec<u64>> = BTreeMap::new();
            for (i, f) in files.iter().enumerate() {
                if !seen.contains(&i) {
                    outputs.entry(f.partition_values.clone()).or_default().push(f.bytes);
                }
            }
            for g in &groups {
                let total = g.iter().map(|&i| files[i].bytes).sum();
                outputs.entry(files[g[0]].partition_values.clone()).or_default().push(total);
            }
            for sizes in outputs.values() {
                let small = sizes.iter().filter(|&&b| 2 * b <= target).count();
                prop_assert!(small <= 1, "{sizes:?} under target {target}");
            }
        }
    }
}
