//! The write step: record batches in a table's schema → hive-partitioned Parquet
//! files that Athena reads without surprises (DESIGN.md "Output layout").
//!
//! `OUTPUT/TABLE/KEY=VALUE/…/v-RUNID/part-RUNID-NNNNN.parquet` (the directory
//! comes from the table's [`Placement`], which the commit protocol decides; see
//! [`layout`]). Every file written is recorded in the run's [`Staged`] list, so a
//! run that fails removes them in one place.
//!
//! Each batch is conformed to the table's schema file (types cast to what the
//! catalog will say, nullability checked), split by partition values, and
//! appended to that partition's open file. Files roll over at the target size;
//! open row groups are flushed early when their buffers exceed a memory budget,
//! so memory does not grow with the number of partitions or rows. A partition
//! whose file was closed to make room and that comes back is spilled to local
//! disk ([`regroup`]) and written again as one file at the end: one file per
//! partition and writer, more only past the target size. Objects become
//! visible only when complete (multipart upload), and never exceed 5 GiB.

mod blocks;
pub mod carry;
pub mod keys;
pub mod layout;
mod parts;
pub mod regroup;
pub mod stitch;
pub mod string_stats;
pub mod upload;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::kernels::partition::partition;
use datafusion::arrow::compute::{
    CastOptions, can_cast_types, cast_with_options, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::basic::{Compression as PqCompression, Encoding, ZstdLevel};
use datafusion::parquet::file::properties::{WriterProperties, WriterVersion};
use datafusion::parquet::schema::types::ColumnPath;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::sync::lock;
use crate::job::JobTable;
use crate::model::Compression;
use crate::storage::Location;
use datafusion::execution::SendableRecordBatchStream;
use futures::{StreamExt, TryStreamExt};
use layout::{HIVE_NULL_PARTITION, Placement};

/// Memory one writer may hold in open files: their encoded-but-unflushed row groups
/// plus upload buffers. Over it, the least recently used file is closed (time-ordered
/// logs touch one or two partitions at a time, so that file is usually complete).
const MEMORY_BUDGET: usize = 64 << 20;
/// Upload buffer per open file; a multipart part is uploaded each time it fills
/// (S3's minimum part size is 5 MiB).
const UPLOAD_BUFFER: usize = 5 << 20;

/// The data files a run has written so far, complete and not yet committed.
#[derive(Debug, Clone, Default)]
pub struct Staged(Arc<Mutex<Vec<ObjPath>>>);

impl Staged {
    pub(crate) fn add(&self, path: ObjPath) {
        lock(&self.0).push(path);
    }

    pub fn paths(&self) -> Vec<ObjPath> {
        lock(&self.0).clone()
    }
}

/// A data file this run wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WrittenFile {
    /// The key in the output's store (not in the report: read back, it is made
    /// again from `url`).
    #[serde(skip)]
    pub path: ObjPath,
    /// The full address (`file:///…`, `s3://bucket/…`), for the report.
    pub url: String,
    pub partition_values: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
}

struct OpenFile {
    writer: upload::ParquetUpload,
    path: ObjPath,
    rows: u64,
    last_used: u64,
}

/// Writes one table's files for one run.
pub struct TableWriter {
    table: String,
    output: Location,
    placement: Arc<Placement>,
    run_id: String,
    table_schema: SchemaRef,
    file_schema: SchemaRef,
    partition_keys: Vec<String>,
    props: WriterProperties,
    target_file_size: u64,
    open: HashMap<Vec<String>, OpenFile>,
    /// Shared by the writers of one table, so file names stay unique.
    next_file: Arc<AtomicU32>,
    staged: Staged,
    tick: u64,
    written: Vec<WrittenFile>,
    pub rows_written: u64,
    /// Where rows are tallied by object key: the key column's index and the tally.
    keys: Option<(usize, Arc<keys::KeyTally>)>,
    /// Partitions whose file was closed to make room, with that file: more rows
    /// of them are spilled, and the file is written again with them at the end.
    evicted: HashMap<Vec<String>, ObjPath>,
    regroup: Option<regroup::Regroup>,
}

impl TableWriter {
    /// A writer of `table` for run `run_id`; writers sharing `next_file` name their
    /// files apart.
    pub fn new(
        output: &Location,
        placement: Arc<Placement>,
        table: &JobTable,
        run_id: &str,
        next_file: Arc<AtomicU32>,
        staged: Staged,
    ) -> Result<Self> {
        let schema = &table.schema;
        let compression = table.spec.compression;
        let target_file_size = table.spec.target_file_size.as_u64();
        // Refuse types with no safe Athena mapping before anything is written.
        for f in schema.file_schema().fields() {
            crate::model::schema::arrow_to_glue(f.data_type()).map_err(|e| {
                Error::config(format!("table {}: column {}: {e}", schema.name, f.name()))
            })?;
        }
        let mut props = WriterProperties::builder();
        // Dictionaries pay for strings that repeat (sensor and metric names, units,
        // the source key); for timestamps, measurements and line numbers, nearly all
        // distinct, the writer would intern every value only to fall back to plain
        // pages once the dictionary outgrew its page.
        for f in schema.file_schema().fields() {
            if !matches!(f.data_type(), DataType::Utf8 | DataType::LargeUtf8) {
                props =
                    props.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
            }
            // Integers and timestamps from logs climb in small steps (line numbers by
            // one, readings by their period): DELTA_BINARY_PACKED stores those steps
            // in a few bits, where PLAIN stores 8 bytes that snappy then has to work
            // through. On the benchmark's 1 GB it cut the output from 251 to 105 MB
            // and the run's CPU by about 15%. Trino (Athena engine 3) reads it
            // (trino-parquet's DeltaBinaryPackedDecoders), as do Spark, DuckDB, pyarrow.
            if matches!(
                f.data_type(),
                DataType::Int32 | DataType::Int64 | DataType::Date32 | DataType::Timestamp(_, _)
            ) {
                props = props.set_column_encoding(
                    ColumnPath::from(f.name().as_str()),
                    Encoding::DELTA_BINARY_PACKED,
                );
            }
        }
        let props = props
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(match compression {
                Compression::Zstd => {
                    PqCompression::ZSTD(ZstdLevel::try_new(3).map_err(Error::Parquet)?)
                }
                Compression::Snappy => PqCompression::SNAPPY,
            })
            .set_max_row_group_row_count(Some(1 << 20))
            .set_created_by(format!("naslake {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(TableWriter {
            table: schema.name.clone(),
            output: output.clone(),
            placement,
            run_id: run_id.to_string(),
            table_schema: schema.table_schema(),
            file_schema: schema.file_schema(),
            partition_keys: schema.partition_key_names(),
            props,
            target_file_size,
            open: HashMap::new(),
            next_file,
            staged,
            tick: 0,
            written: Vec::new(),
            rows_written: 0,
            keys: None,
            evicted: HashMap::new(),
            regroup: None,
        })
    }

    /// Tallies the rows written by object key ([`keys::KeyTally`]); the table
    /// must have the key column.
    pub fn tally_keys(mut self, tally: Arc<keys::KeyTally>) -> Result<Self> {
        let column = self
            .file_schema
            .index_of(crate::model::KEY_COLUMN)
            .map_err(|_| {
                Error::config(format!(
                    "table {} has no {} column: an incremental run cannot keep its rows per object",
                    self.table,
                    crate::model::KEY_COLUMN
                ))
            })?;
        self.keys = Some((column, tally));
        Ok(self)
    }

    /// Writes rows already split to one partition (`batch` in the file columns):
    /// rows an incremental run keeps from a partition it rewrites.
    pub async fn write_partition(
        &mut self,
        values: Vec<String>,
        batch: &RecordBatch,
    ) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.append(values, batch).await?;
        self.rows_written += batch.num_rows() as u64;
        self.enforce_memory_budget().await
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = self.conform(batch)?;
        let nfile = self.file_schema.fields().len();
        for (values, group) in self.split(&batch)? {
            let file_batch =
                RecordBatch::try_new(self.file_schema.clone(), group.columns()[..nfile].to_vec())?;
            if let Some((column, tally)) = &self.keys {
                tally.count(&self.table, &values, &file_batch, *column)?;
            }
            self.append(values, &file_batch).await?;
        }
        self.rows_written += batch.num_rows() as u64;
        self.enforce_memory_budget().await
    }

    /// Casts the SQL's output to the table schema's file column types and checks
    /// nullability.
    fn conform(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let got = batch.schema();
        let want = &self.table_schema;
        crate::transform::check_column_names(&self.table, &got, want)?;
        let opts = CastOptions {
            safe: false,
            ..Default::default()
        };
        let nfile = self.file_schema.fields().len();
        let mut cols = Vec::with_capacity(want.fields().len());
        let mut fields = Vec::with_capacity(want.fields().len());
        for (i, (col, field)) in batch.columns().iter().zip(want.fields()).enumerate() {
            if i >= nfile {
                // Partition keys stay as the SQL typed them (a DATE `dt`, say): they
                // are turned into strings once per partition, not once per row.
                if !can_cast_types(col.data_type(), &DataType::Utf8) {
                    return Err(Error::config(format!(
                        "table {}: partition key {} is {}, which has no string form",
                        self.table,
                        field.name(),
                        col.data_type()
                    )));
                }
                fields.push(Field::new(field.name(), col.data_type().clone(), true));
                cols.push(col.clone());
                continue;
            }
            let col = if col.data_type() == field.data_type() {
                col.clone()
            } else {
                cast_with_options(col, field.data_type(), &opts).map_err(|e| {
                    Error::config(format!(
                        "table {}: column {} is {} in the SQL output and cannot become {}: {e}",
                        self.table,
                        field.name(),
                        col.data_type(),
                        field.data_type()
                    ))
                })?
            };
            if !field.is_nullable() && col.null_count() > 0 {
                return Err(Error::Accounting(format!(
                    "table {}: the SQL produced {} NULL values in non-nullable column {}",
                    self.table,
                    col.null_count(),
                    field.name()
                )));
            }
            fields.push(field.as_ref().clone());
            cols.push(col);
        }
        Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
    }

    /// Splits a conformed batch by its partition values.
    fn split(&self, batch: &RecordBatch) -> Result<Vec<(Vec<String>, RecordBatch)>> {
        if self.partition_keys.is_empty() {
            return Ok(vec![(Vec::new(), batch.clone())]);
        }
        let nfile = self.file_schema.fields().len();
        let keys: Vec<ArrayRef> = batch.columns()[nfile..].to_vec();
        // Logs are usually in time order: a few runs of equal keys per batch.
        let ranges = partition(&keys)?.ranges();
        if ranges.len() <= 16 {
            let mut groups: Vec<(Vec<String>, RecordBatch)> = Vec::new();
            for r in ranges {
                let values = key_values(&keys, r.start)?;
                let slice = batch.slice(r.start, r.end - r.start);
                match groups.iter_mut().find(|(v, _)| *v == values) {
                    Some((_, b)) => {
                        *b = datafusion::arrow::compute::concat_batches(
                            &batch.schema(),
                            [&*b, &slice],
                        )?
                    }
                    None => groups.push((values, slice)),
                }
            }
            return Ok(groups);
        }
        // Unordered input: group the runs' row indices by the row-encoded key,
        // one lookup per run (rows sorted by sensor come in runs of one day).
        let converter = RowConverter::new(
            keys.iter()
                .map(|k| SortField::new(k.data_type().clone()))
                .collect(),
        )?;
        let rows = converter.convert_columns(&keys)?;
        let mut index: HashMap<&[u8], Vec<u32>> = HashMap::new();
        for r in ranges {
            // Batches are far below u32::MAX rows (the take below needs u32).
            index
                .entry(rows.row(r.start).data())
                .or_default()
                .extend(r.start as u32..r.end as u32);
        }
        let mut groups = Vec::with_capacity(index.len());
        for (_, idx) in index {
            let values = key_values(&keys, idx[0] as usize)?;
            let taken = take_record_batch(batch, &UInt32Array::from(idx))?;
            groups.push((values, taken));
        }
        Ok(groups)
    }

    async fn append(&mut self, values: Vec<String>, batch: &RecordBatch) -> Result<()> {
        if self.evicted.contains_key(&values) {
            let spill = match self.regroup.as_mut() {
                Some(s) => s,
                None => self
                    .regroup
                    .insert(regroup::Regroup::new(self.file_schema.clone())?),
            };
            return spill.push(&values, batch);
        }
        self.tick += 1;
        if !self.open.contains_key(&values) {
            let path = self.new_file_path(&values);
            // Staged before the upload starts: an upload that completed but whose
            // answer was lost is still removed if the run fails.
            self.staged.add(path.clone());
            let writer = upload::ParquetUpload::try_new(
                self.output.store.clone(),
                path.clone(),
                UPLOAD_BUFFER,
                self.file_schema.clone(),
                self.props.clone(),
            )?;
            self.open.insert(
                values.clone(),
                OpenFile {
                    writer,
                    path,
                    rows: 0,
                    last_used: 0,
                },
            );
        }
        let file = self.open.get_mut(&values).expect("opened above");
        file.writer.write(batch).await?;
        file.rows += batch.num_rows() as u64;
        file.last_used = self.tick;
        let size = (file.writer.bytes_written() + file.writer.in_progress_size()) as u64;
        if size >= self.target_file_size {
            self.close(&values).await?;
        }
        Ok(())
    }

    fn new_file_path(&mut self, values: &[String]) -> ObjPath {
        let dir = self.placement.dir(values);
        let n = self.next_file.fetch_add(1, Ordering::Relaxed);
        dir.join(layout::data_file_name(&self.run_id, n).as_str())
    }

    async fn close(&mut self, values: &[String]) -> Result<()> {
        // The file stays among the open ones until it is finished: a panic on
        // the way leaves it to `abort_open`.
        let Some(f) = self.open.get_mut(values) else {
            return Ok(());
        };
        let meta = match f.writer.finish().await {
            Ok(meta) => meta,
            Err(e) => {
                // Parts already sent must not linger as an unfinished upload.
                if let Err(abort) = f.writer.abort().await {
                    tracing::warn!(table = %self.table, error = %abort, "the upload of a file that failed could not be aborted");
                }
                self.open.remove(values);
                return Err(e);
            }
        };
        // The writer counted every byte it wrote, footer included: no HEAD
        // request (which could fail after the upload succeeded) is needed.
        let bytes = f.writer.bytes_written() as u64;
        let (path, rows) = (f.path.clone(), f.rows);
        debug_assert_eq!(meta.file_metadata().num_rows() as u64, rows);
        self.open.remove(values);
        crate::base::faults::point("write.file");
        self.written.push(WrittenFile {
            url: self.output.url_of(&path),
            path,
            partition_values: values.to_vec(),
            rows,
            bytes,
        });
        Ok(())
    }

    async fn close_least_recent(&mut self) -> Result<()> {
        if let Some((values, path)) = self
            .open
            .iter()
            .min_by_key(|(_, f)| f.last_used)
            .map(|(v, f)| (v.clone(), f.path.clone()))
        {
            self.close(&values).await?;
            self.evicted.insert(values, path);
        }
        Ok(())
    }

    /// Writes each partition that came back after its file was closed as one
    /// file: the closed file's rows, then the spilled ones. The closed file goes.
    async fn write_regrouped(&mut self) -> Result<()> {
        let Some(spill) = self.regroup.take() else {
            return Ok(());
        };
        let mut spill = spill.finish()?;
        let evicted = std::mem::take(&mut self.evicted);
        let index = std::mem::take(&mut spill.index);
        let mut rewritten = 0;
        for (values, batches) in index {
            let Some(old) = evicted.get(&values) else {
                return Err(Error::Accounting(format!(
                    "table {}: rows of partition {values:?} were spilled, but its file was never closed to make room",
                    self.table
                )));
            };
            let Some(at) = self.written.iter().position(|f| &f.path == old) else {
                return Err(Error::Accounting(format!(
                    "table {}: the closed file of partition {values:?} is not among the written ones",
                    self.table
                )));
            };
            let before = self.written.remove(at);
            #[allow(deprecated)]
            let reader = datafusion::parquet::arrow::async_reader::ParquetObjectReader::new(
                self.output.store.clone(),
                before.path.clone(),
            )
            .with_file_size(before.bytes);
            let mut rows = datafusion::parquet::arrow::ParquetRecordBatchStreamBuilder::new(reader)
                .await?
                .build()?;
            while let Some(batch) = rows.try_next().await? {
                self.append(values.clone(), &batch).await?;
                self.enforce_memory_budget().await?;
            }
            for i in batches {
                let batch = spill.batch(i)?;
                self.append(values.clone(), &batch).await?;
                self.enforce_memory_budget().await?;
            }
            self.close(&values).await?;
            remove_replaced_file(&self.output.store, &before.path).await?;
            rewritten += 1;
        }
        tracing::debug!(table = %self.table, partitions = rewritten, "partitions that came back written as one file each");
        Ok(())
    }

    /// What the open files hold in memory, at most: encoded row groups not yet
    /// flushed (with their string columns' statistics), and a full upload
    /// buffer each.
    fn memory_estimate(&self) -> usize {
        self.open
            .values()
            .map(|f| f.writer.memory_size() + UPLOAD_BUFFER)
            .sum()
    }

    async fn enforce_memory_budget(&mut self) -> Result<()> {
        while self.memory_estimate() > MEMORY_BUDGET && self.open.len() > 1 {
            self.close_least_recent().await?;
        }
        if self.memory_estimate() > MEMORY_BUDGET
            && let Some(f) = self.open.values_mut().next()
            && f.writer.in_progress_size() > 0
        {
            // One file with a huge row group: end the row group early.
            f.writer.flush().await?;
        }
        Ok(())
    }

    /// Closes every open file, writes the partitions that came back after their
    /// file was closed, and returns what the run wrote.
    pub async fn finish(mut self) -> Result<Vec<WrittenFile>> {
        let keys: Vec<Vec<String>> = self.open.keys().cloned().collect();
        for k in keys {
            if let Err(e) = self.close(&k).await {
                self.abort_open().await;
                return Err(e);
            }
        }
        if let Err(e) = self.write_regrouped().await {
            // What the rewrite had open is given up (an upload left unfinished
            // would linger where no delete reaches).
            self.abort_open().await;
            return Err(e);
        }
        if self.regroup.is_some() {
            return Err(Error::Accounting(format!(
                "table {}: rows were spilled after the writer's end rewrote its partitions",
                self.table
            )));
        }
        self.written.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(self.written)
    }

    /// Joins the files of a partition that the table's writers wrote apart, up
    /// to the target size ([`stitch`]); returns the table's files. A joined file
    /// is staged before it is written, and its inputs go once it is complete.
    pub async fn join_partitions(mut self, files: Vec<WrittenFile>) -> Result<Vec<WrittenFile>> {
        if !self.placement.versioned() {
            // Athena reads a projected table's directories without the catalog:
            // while a joined file and its inputs both exist, it would see their
            // rows twice, and a run killed in between would leave them so (no
            // sweep removes files there). Such tables keep a file per writer.
            return Ok(files);
        }
        let groups = stitch::plan(&files, self.target_file_size);
        let mut joined = vec![false; files.len()];
        let mut joins = Vec::with_capacity(groups.len());
        for group in &groups {
            let mut inputs: Vec<WrittenFile> = group.iter().map(|&i| files[i].clone()).collect();
            // In name order, so that rows come in the same order every run.
            inputs.sort_by(|a, b| a.path.cmp(&b.path));
            let path = self.new_file_path(&inputs[0].partition_values);
            self.staged.add(path.clone());
            joins.push((inputs, path));
            group.iter().for_each(|&i| joined[i] = true);
        }
        // A join is mostly copying, the kernel's and the store's: one per core at
        // once (243 partitions of the 10 GB benchmark, 1 GB of Parquet, took seconds
        // one after the other). Every join runs to its end or its own error, so none
        // is dropped halfway through an upload; then the first error, if any, fails.
        let output = &self.output;
        let store = &output.store;
        let props = &self.props;
        let results: Vec<Result<Vec<WrittenFile>>> = futures::stream::iter(joins)
            .map(|(inputs, path)| async move {
                let joined =
                    stitch::join(store, &inputs, &path, props.clone(), UPLOAD_BUFFER).await?;
                // Files of other schemas stay as they are (nothing was written).
                let Some((rows, bytes)) = joined else {
                    return Ok(inputs);
                };
                crate::base::faults::point("write.join");
                for f in &inputs {
                    remove_replaced_file(store, &f.path).await?;
                }
                Ok(vec![WrittenFile {
                    url: output.url_of(&path),
                    path,
                    partition_values: inputs[0].partition_values.clone(),
                    rows,
                    bytes,
                }])
            })
            .buffer_unordered(crate::transform::cores())
            .collect()
            .await;
        let mut out = Vec::new();
        for r in results {
            out.extend(r?);
        }
        if !out.is_empty() {
            tracing::info!(table = %self.table, files = out.len(), "files of one partition from several writers joined");
        }
        out.extend(
            files
                .into_iter()
                .zip(joined)
                .filter(|(_, j)| !j)
                .map(|(f, _)| f),
        );
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Gives up the files still open (the run failed): none of them becomes an
    /// object, and an upload under way is aborted. (Each is in the run's staged
    /// list, which the failed run deletes, in case an aborted upload completed.)
    pub async fn abort(mut self) {
        self.abort_open().await;
    }

    /// Aborts the uploads of the files open, which the writer then forgets.
    async fn abort_open(&mut self) {
        for (_, mut f) in self.open.drain() {
            if let Err(e) = f.writer.abort().await {
                tracing::warn!(table = %self.table, error = %e, "the upload of an open file of a failed run could not be aborted");
            }
        }
    }
}

/// Removes a file of this run that a rewritten or joined file replaced (it is
/// complete by then). Already gone is fine: a retried step may have removed it.
async fn remove_replaced_file(
    store: &Arc<dyn object_store::ObjectStore>,
    path: &ObjPath,
) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The partition values of row `i`, as strings for directory names and the catalog.
fn key_values(keys: &[ArrayRef], i: usize) -> Result<Vec<String>> {
    keys.iter()
        .map(|k| {
            if k.is_null(i) {
                Ok(HIVE_NULL_PARTITION.to_string())
            } else {
                Ok(array_value_to_string(k, i)?)
            }
        })
        .collect()
}

/// Writes streams into one writer each (all of one table), stopping every writer
/// when one fails. Returns the files and rows written.
pub async fn write_streams(
    streams: Vec<SendableRecordBatchStream>,
    mut writer: impl FnMut() -> Result<TableWriter>,
) -> Result<(Vec<WrittenFile>, u64)> {
    let several = streams.len() > 1;
    let cancel = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for stream in streams {
        let (writer, cancel) = (writer()?, cancel.clone());
        tasks.push(tokio::spawn(async move {
            // A panic after the stream (a file's finish) stops the other
            // writers at once too.
            let written = crate::base::panics::caught(
                "a table writer",
                write_stream(writer, stream, cancel.clone()),
            )
            .await;
            if written.is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
            written
        }));
    }
    let mut files = Vec::new();
    let mut rows = 0;
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(Ok((f, r))) => {
                files.extend(f);
                rows += r;
            }
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                cancel.store(true, Ordering::Relaxed);
                failure.get_or_insert(Error::Accounting(format!(
                    "a writer task {}",
                    crate::base::panics::task_failure(e)
                )));
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if several {
        files = writer()?.join_partitions(files).await?;
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, rows))
}

/// Drains one stream into one writer; on error, on a panic (a bug, caught here
/// so that it is cleaned up after as an error is), or when another writer of
/// the table failed, the uploads of the writer's open files are aborted.
async fn write_stream(
    mut writer: TableWriter,
    mut stream: SendableRecordBatchStream,
    cancel: Arc<AtomicBool>,
) -> Result<(Vec<WrittenFile>, u64)> {
    let result: Result<()> = crate::base::panics::caught("a table writer", async {
        while let Some(batch) = stream.try_next().await? {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Accounting("cancelled: another writer failed".into()));
            }
            writer.write(&batch).await?;
        }
        Ok(())
    })
    .await;
    // The stream (and with it the query's sources) is dropped here, whatever
    // happened: a source whose reader is blocked on a full channel then stops.
    drop(stream);
    match result {
        Ok(()) => {
            let rows = writer.rows_written;
            Ok((writer.finish().await?, rows))
        }
        Err(e) => {
            cancel.store(true, Ordering::Relaxed);
            writer.abort().await;
            Err(e)
        }
    }
}
