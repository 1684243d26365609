//! A Parquet file written to an object as its row groups complete.
//!
//! This is parquet's `AsyncArrowWriter` less two copies that showed in a profile
//! of the CSV benchmark's page faults:
//!
//! - The synchronous writer encodes each row group into a `Vec` that starts
//!   empty, so it grew by doubling, copying what it held at each step. Here the
//!   file's bytes go into blocks of one size ([`super::blocks`]), each filled
//!   once.
//! - The finished bytes went through object_store's `AsyncWrite`, which copies
//!   them into the upload's own buffer; [`Upload::put`] keeps them as they are.
//!
//! It also computes the statistics of string columns itself ([`ParquetUpload`],
//! [`super::string_stats`]).
//!
//! What the upload keeps stays within one part, as with the copy: a part holds
//! slices of the buffer it came from until it is sent, so the bytes of a buffer
//! that only begin a part are copied into a buffer of their own, and the rest of
//! the buffer goes once its whole parts are sent ([`Upload::put`]).

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::file::writer::SerializedFileWriter;
use datafusion::parquet::schema::types::ColumnPath;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayloadMut};

use super::blocks::Blocks;
use super::parts::Parts;
use super::string_stats::{StringStats, Truncation};
use crate::base::error::{Error, Result};

/// Parts of one upload under way at once, each holding its bytes until it is
/// answered (the last, partial one included). object_store's buffered writer,
/// which uploads went through before, allows eight: 40 MiB of a table's 5 MiB
/// parts per file (80 MiB of a staged source's 10 MiB ones) that the table
/// writer's budget does not count, held whenever parts are made faster than the
/// store takes them (a slow link to S3). Two keep one part going while the next
/// is made. It also caps one file's upload at about two parts per request's
/// time (for 5 MiB parts at 100 ms each, about 100 MB/s), which was not
/// measured against S3: on local output the limit changed neither time nor
/// peaks (docs/benchmarks.md).
const PARTS_IN_FLIGHT: usize = 2;

/// An object written by parts from whole buffers. Nothing of it is visible
/// until [`complete`](Upload::complete): an object under one part goes in one
/// request then, a bigger one by a multipart upload ([`Parts`]), which the
/// store makes whole or not at all.
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    /// The bytes put before the first part filled, kept for one request if
    /// the object ends under a part.
    first: PutPayloadMut,
    /// The multipart upload, once the object reached a part.
    parts: Option<Parts>,
    /// The part size: the bytes kept before a part is sent.
    part_bytes: usize,
    /// Bytes put so far.
    bytes_put: usize,
    state: State,
}

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A request failed: it can only be aborted now.
    Failed,
    /// Completed (or its completion failed, which aborted it), or aborted.
    Ended,
}

impl Upload {
    /// An upload of `path` in `store`, in parts of `part_bytes` (one request when
    /// the object is smaller).
    pub fn new(store: Arc<dyn ObjectStore>, path: ObjPath, part_bytes: usize) -> Self {
        // A part of no bytes would never be sent: a bug here.
        assert!(part_bytes > 0, "an upload's part size must be more than 0");
        Upload {
            store,
            path,
            first: PutPayloadMut::new(),
            parts: None,
            part_bytes,
            bytes_put: 0,
            state: State::Open,
        }
    }

    /// Appends `buffer` to the object.
    pub async fn put(&mut self, mut buffer: Vec<u8>) -> Result<()> {
        self.check_open()?;
        if buffer.is_empty() {
            return Ok(());
        }
        // Room beyond what was written goes back (in place, for an allocator
        // that can): the bytes may be kept until their part is sent.
        buffer.shrink_to_fit();
        let bytes = Bytes::from(buffer);
        let len = bytes.len();
        let whole = whole_parts(self.bytes_put, len, self.part_bytes);
        // Until it is done, a put left halfway (an error, or its future dropped)
        // leaves the upload in a state only an abort may follow.
        self.state = State::Failed;
        if whole == 0 {
            // Within one part: kept as it is, no bigger than its copy.
            self.send(bytes).await?;
        } else {
            // The parts it fills go as they are ([`Parts`] waits for room before
            // each); the end that only begins a part is copied.
            self.send(bytes.slice(..whole)).await?;
            if whole < len {
                self.send(Bytes::copy_from_slice(&bytes[whole..])).await?;
            }
        }
        self.state = State::Open;
        self.bytes_put += len;
        Ok(())
    }

    /// Hands `bytes` on: kept while the object is under one part, then to the
    /// multipart upload, begun with what was kept.
    async fn send(&mut self, bytes: Bytes) -> Result<()> {
        let parts = match &mut self.parts {
            Some(parts) => parts,
            None if self.first.content_length() + bytes.len() < self.part_bytes => {
                self.first.push(bytes);
                return Ok(());
            }
            None => {
                let upload = self.store.put_multipart(&self.path).await?;
                let parts = self
                    .parts
                    .insert(Parts::new(upload, self.part_bytes, PARTS_IN_FLIGHT));
                for kept in std::mem::take(&mut self.first).freeze() {
                    parts.put(kept).await?;
                }
                parts
            }
        };
        parts.put(bytes).await
    }

    /// Completes the object. A multipart upload that fails to complete is
    /// aborted.
    pub async fn complete(&mut self) -> Result<()> {
        self.check_open()?;
        self.state = State::Ended;
        match self.parts.take() {
            Some(parts) => {
                parts.complete().await?;
            }
            None => {
                let body = std::mem::take(&mut self.first).freeze();
                self.store.put(&self.path, body).await?;
            }
        }
        Ok(())
    }

    /// Gives up the object: an upload under way is aborted, and nothing of it
    /// becomes an object. (One whose completion failed was aborted then.)
    pub async fn abort(&mut self) -> Result<()> {
        if self.state == State::Ended {
            return Ok(());
        }
        self.state = State::Ended;
        self.first = PutPayloadMut::new();
        match self.parts.take() {
            Some(parts) => parts.abort().await,
            None => Ok(()),
        }
    }

    /// Only an open upload takes more bytes.
    fn check_open(&self) -> Result<()> {
        match self.state {
            State::Open => Ok(()),
            State::Failed => Err(Error::Accounting(
                "an object whose upload failed was written on (it can only be aborted)".into(),
            )),
            State::Ended => Err(Error::Accounting(
                "an object was written on after its upload ended".into(),
            )),
        }
    }
}

/// How many of `len` bytes put after `put` go as they are: those up to the last
/// part boundary among them (parts are cut every `part` bytes of the object).
/// The rest begins a part that later bytes complete, and is copied, so that the
/// buffer they came from is not kept whole for them until then.
fn whole_parts(put: usize, len: usize, part: usize) -> usize {
    let parts_end = (put + len) / part * part;
    parts_end.saturating_sub(put).min(len)
}

/// One Parquet file being uploaded.
///
/// The row groups are encoded here, column by column, rather than by
/// `ArrowWriter`, for two reasons: the encoded bytes go to the upload as each
/// row group ends (above; all but the unfilled end of the last block), and the
/// statistics of string columns are computed by [`StringStats`], which writes
/// what parquet-rs would for less (see there). Such a column is handed to its writer in slices of the mini-batch,
/// so its pages end on a slice (with the default properties, pages of up to
/// 20 480 rows where `ArrowWriter`'s would depend on the batches). Otherwise the file
/// is what `ArrowWriter` writes with the same properties; a row group ends at
/// `max_row_group_row_count` rows. Properties that need `ArrowWriter`'s own
/// loop (a row group's byte limit, content-defined chunking) are refused.
pub struct ParquetUpload {
    file: SerializedFileWriter<Blocks>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    /// Per leaf column: how its statistics are cut, when they are computed
    /// here rather than by parquet-rs.
    own_statistics: Vec<Option<Truncation>>,
    /// Rows handed to a string column's writer at a time: parquet-rs's mini-batch.
    slice_rows: usize,
    max_row_group_rows: usize,
    row_group: Option<RowGroup>,
    upload: Upload,
}

/// The row group being encoded.
struct RowGroup {
    writers: Vec<ArrowColumnWriter>,
    /// Per leaf column, as [`ParquetUpload::own_statistics`].
    stats: Vec<Option<StringStats>>,
    rows: usize,
}

impl ParquetUpload {
    /// A file at `path` in `store`, uploaded in parts of `part_bytes`.
    pub fn try_new(
        store: Arc<dyn ObjectStore>,
        path: ObjPath,
        part_bytes: usize,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self> {
        if props.max_row_group_bytes().is_some() || props.content_defined_chunking().is_some() {
            return Err(Error::config(
                "a Parquet upload ends row groups by rows only: no byte limit or content-defined chunking",
            ));
        }
        // The top-level string columns whose statistics are computed here;
        // parquet-rs is asked for none on them. Its offset indexes stay as
        // they were: columns with page statistics keep them on even when
        // they are disabled, and those columns may be the ones taken.
        let mut taken = Vec::with_capacity(schema.fields().len());
        let mut encoded = props
            .clone()
            .into_builder()
            .set_offset_index_disabled(props.offset_index_disabled());
        for field in schema.fields() {
            let path = ColumnPath::from(field.name().as_str());
            let truncation = matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8)
                .then(|| Truncation::of_column(&props, &path))
                .flatten();
            if truncation.is_some() {
                encoded = encoded.set_column_statistics_enabled(path, EnabledStatistics::None);
            }
            taken.push(truncation);
        }
        let (file, columns) = ArrowWriter::try_new(
            Blocks::for_parts(part_bytes),
            schema.clone(),
            Some(encoded.build()),
        )?
        .into_serialized_writer()?;
        // Leaf columns in order; a string column is one leaf of its field.
        let descr = file.schema_descr();
        let own_statistics = (0..descr.num_columns())
            .map(|leaf| taken[descr.get_column_root_idx(leaf)])
            .collect();
        Ok(ParquetUpload {
            file,
            columns,
            schema,
            own_statistics,
            // parquet-rs's mini-batch is `write_batch_size` rows, or the page's
            // row limit for a column whose levels are all alike (no nulls).
            slice_rows: props
                .write_batch_size()
                .min(props.data_page_row_count_limit())
                .max(1),
            max_row_group_rows: props.max_row_group_row_count().unwrap_or(usize::MAX),
            row_group: None,
            upload: Upload::new(store, path, part_bytes),
        })
    }

    /// Encodes `batch`; a row group it completes goes to the upload.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut done = 0;
        while done < batch.num_rows() {
            let room = self.max_row_group_rows - self.in_progress_rows();
            let rows = room.min(batch.num_rows() - done);
            self.encode(&batch.slice(done, rows))?;
            done += rows;
            if self.in_progress_rows() >= self.max_row_group_rows {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Ends the row group in progress and uploads it (but for the end of its
    /// last block, which the next row group fills).
    pub async fn flush(&mut self) -> Result<()> {
        self.end_row_group()?;
        hand_over(&mut self.file, &mut self.upload).await
    }

    /// Writes the last row group and the footer and completes the upload.
    pub async fn finish(&mut self) -> Result<ParquetMetaData> {
        self.end_row_group()?;
        finish_file(&mut self.file, &mut self.upload).await
    }

    /// Gives up the file: nothing of it becomes an object.
    pub async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }

    /// Bytes of the file encoded so far, footer included once finished.
    pub fn bytes_written(&self) -> usize {
        self.file.bytes_written()
    }

    /// The estimated encoded size of the row group in progress.
    pub fn in_progress_size(&self) -> usize {
        self.writers()
            .map(ArrowColumnWriter::get_estimated_total_bytes)
            .sum()
    }

    /// The encoder's estimate of the memory it holds.
    pub fn memory_size(&self) -> usize {
        let statistics = self.row_group.iter().flat_map(|g| g.stats.iter().flatten());
        self.writers()
            .map(ArrowColumnWriter::memory_size)
            .sum::<usize>()
            + statistics.map(StringStats::memory_size).sum::<usize>()
        // Not the file's unfilled last block: with the upload's unsent bytes
        // it is at most one part (blocks divide the part), which the table
        // writer counts for every open file (`UPLOAD_BUFFER`).
    }

    fn in_progress_rows(&self) -> usize {
        self.row_group.as_ref().map_or(0, |g| g.rows)
    }

    fn writers(&self) -> impl Iterator<Item = &ArrowColumnWriter> {
        self.row_group.iter().flat_map(|g| &g.writers)
    }

    /// Encodes `batch` into the row group in progress (begun if none is).
    fn encode(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Before any column is written, so that a refused batch leaves the
        // row group as it was.
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            let string = matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8);
            if string && !field.is_nullable() && column.null_count() > 0 {
                // parquet-rs would write the nulls' slots as values, and the
                // statistics would count them as nulls.
                return Err(Error::Accounting(format!(
                    "column {} of a Parquet file holds nulls it is declared without",
                    field.name()
                )));
            }
        }
        let group = match &mut self.row_group {
            Some(group) => group,
            none => none.insert(RowGroup {
                writers: self
                    .columns
                    .create_column_writers(self.file.flushed_row_groups().len())?,
                stats: self
                    .own_statistics
                    .iter()
                    .map(|t| t.map(StringStats::new))
                    .collect(),
                rows: 0,
            }),
        };
        let mut leaf = 0;
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            let Some(stats) = group.stats.get_mut(leaf).and_then(Option::as_mut) else {
                for values in compute_leaves(field, column)? {
                    column_writer(&mut group.writers, leaf)?.write(&values)?;
                    leaf += 1;
                }
                continue;
            };
            // A string column: in slices, each one mini-batch, so that pages
            // end between slices (see `StringStats`).
            let writer = column_writer(&mut group.writers, leaf)?;
            for start in (0..column.len()).step_by(self.slice_rows) {
                let slice = column.slice(start, self.slice_rows.min(column.len() - start));
                stats.observe(slice.as_ref())?;
                for values in compute_leaves(field, &slice)? {
                    writer.write(&values)?;
                }
            }
            leaf += 1;
        }
        group.rows += batch.num_rows();
        Ok(())
    }

    /// Closes the row group in progress, if any, into the file.
    fn end_row_group(&mut self) -> Result<()> {
        let Some(group) = self.row_group.take() else {
            return Ok(());
        };
        let mut row_group = self.file.next_row_group()?;
        for (writer, stats) in group.writers.into_iter().zip(group.stats) {
            let mut chunk = writer.close()?;
            if let Some(stats) = stats {
                stats.apply(chunk.close_mut())?;
            }
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        Ok(())
    }
}

/// Moves the blocks `file` has filled to `upload`, with what parquet still
/// holds in its own small buffer; the block being filled stays.
pub async fn hand_over(file: &mut SerializedFileWriter<Blocks>, upload: &mut Upload) -> Result<()> {
    file.flush()?;
    for block in file.inner_mut().take_full() {
        upload.put(block).await?;
    }
    Ok(())
}

/// Writes `file`'s footer, hands all that is left of it to `upload` and
/// completes the upload: the object appears, whole.
pub async fn finish_file(
    file: &mut SerializedFileWriter<Blocks>,
    upload: &mut Upload,
) -> Result<ParquetMetaData> {
    let metadata = file.finish()?;
    // parquet's `finish` empties its own buffer already; flushed here all the
    // same, since the last block is sealed only once every byte is in it.
    file.flush()?;
    file.inner_mut().seal();
    hand_over(file, upload).await?;
    upload.complete().await?;
    Ok(metadata)
}

/// The writer of leaf column `leaf`.
fn column_writer(writers: &mut [ArrowColumnWriter], leaf: usize) -> Result<&mut ArrowColumnWriter> {
    let leaves = writers.len();
    writers.get_mut(leaf).ok_or_else(|| {
        Error::Accounting(format!(
            "a batch's columns make more leaf columns than the file's {leaves}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, LargeStringArray, StringArray};
    use datafusion::arrow::buffer::NullBuffer;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::basic::BoundaryOrder;
    use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
    use datafusion::parquet::file::properties::CdcOptions;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    use super::*;
    use crate::write::blocks::block_size;

    proptest::proptest! {
        /// The bytes put as they are end on a part boundary (or there are none),
        /// and the copied rest holds no boundary: it is less than a part.
        #[test]
        fn whole_parts_end_on_the_last_boundary(
            put in 0usize..100_000, len in 0usize..100_000, part in 1usize..10_000,
        ) {
            let whole = whole_parts(put, len, part);
            proptest::prop_assert!(whole <= len);
            proptest::prop_assert!(whole == 0 || (put + whole).is_multiple_of(part));
            proptest::prop_assert!((put + whole) / part == (put + len) / part);
        }
    }

    #[test]
    fn whole_parts_at_the_edges() {
        assert_eq!(whole_parts(0, 4096, 4096), 4096); // ends on a boundary: no copy
        assert_eq!(whole_parts(10, 4086, 4096), 4086);
        assert_eq!(whole_parts(10, 4085, 4096), 0); // within the first part
        assert_eq!(whole_parts(4000, 10_000, 4096), 8288); // to 12 288, 1 712 copied
    }

    fn local_store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        (dir, store)
    }

    /// Buffers that end inside a part, on a part boundary and across several
    /// parts reach the object whole and in order; after it is complete, more
    /// bytes are refused and aborting does nothing.
    #[tokio::test]
    async fn buffers_reach_the_object_in_order_across_parts() {
        let (_dir, store) = local_store();
        let path = ObjPath::from("o/x.bin");
        let mut upload = Upload::new(store.clone(), path.clone(), 4096);
        let mut want = Vec::new();
        // Running totals 10, 5010, 8010, 17010, 17011, 17011, then 20480 (5 parts
        // exactly: nothing copied), 24566 and 44566.
        for (i, len) in [10usize, 5000, 3000, 9000, 1, 0, 3469, 4086, 20000]
            .into_iter()
            .enumerate()
        {
            let buffer: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
            want.extend_from_slice(&buffer);
            upload.put(buffer).await.unwrap();
        }
        assert!(
            store.head(&path).await.is_err(),
            "visible before it was complete"
        );
        upload.complete().await.unwrap();
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the object differs from the buffers put");
        assert!(upload.put(vec![1]).await.is_err());
        upload.abort().await.unwrap();
    }

    /// A file of (id, name) rows with row groups of 1 000 rows, uploaded in
    /// parts of 4 KiB (so that even a small file takes several).
    fn small_file(store: &Arc<dyn ObjectStore>, path: &ObjPath) -> (SchemaRef, ParquetUpload) {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .build();
        let file = ParquetUpload::try_new(
            store.clone(),
            path.clone(),
            SMALL_PART,
            schema.clone(),
            props,
        )
        .unwrap();
        (schema, file)
    }

    /// The part size of [`small_file`]'s upload, under one of its row groups
    /// (about 10 kB for 1000 rows), so that a row group fills blocks.
    const SMALL_PART: usize = 4096;

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        let ids: Vec<i64> = (from..from + n).collect();
        let names: Vec<String> = ids.iter().map(|i| format!("sensor-{}", i % 7)).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    /// Row groups ended by the row limit inside `write`, by `flush` and by
    /// `finish` each go to the upload when they end, but for the unfilled end
    /// of the last block, and all reach the object in order; the object appears
    /// only when finished, and is as long as the writer says.
    #[tokio::test]
    async fn every_row_group_goes_to_the_upload_when_it_ends() {
        let (_dir, store) = local_store();
        let path = ObjPath::from("t/part-0.parquet");
        let (schema, mut file) = small_file(&store, &path);
        let block = block_size(SMALL_PART);
        let handed = |f: &ParquetUpload| f.upload.bytes_put;
        let waiting = |f: &ParquetUpload| f.bytes_written() - f.upload.bytes_put;
        file.write(&batch(&schema, 0, 700)).await.unwrap();
        assert_eq!(handed(&file), 0, "nothing ended yet");
        file.write(&batch(&schema, 700, 700)).await.unwrap(); // ends a row group at 1000
        let first = handed(&file);
        assert!(first > 0, "the row group that ended was kept");
        assert!(waiting(&file) < block, "more than a block kept back");
        assert_eq!(first % block, 0, "a block handed over unfilled");
        file.flush().await.unwrap(); // ends one at 1400
        assert!(handed(&file) > first, "the flushed row group was kept");
        assert!(waiting(&file) < block, "more than a block kept back");
        file.write(&batch(&schema, 1400, 250)).await.unwrap();
        assert!(
            store.head(&path).await.is_err(),
            "visible before it was finished"
        );
        let metadata = file.finish().await.unwrap();
        assert_eq!(handed(&file), file.bytes_written());

        let rows: Vec<i64> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(rows, vec![1000, 400, 250]);
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.len(), file.bytes_written());
        let read = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let mut ids = Vec::new();
        for b in read {
            let b = b.unwrap();
            let id = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let name = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                assert_eq!(name.value(i), format!("sensor-{}", id.value(i) % 7));
                ids.push(id.value(i));
            }
        }
        assert_eq!(ids, (0..1650).collect::<Vec<i64>>());
    }

    /// A seeded stream of values (splitmix64), so that a proptest case of
    /// thousands of rows is a few numbers.
    struct Values(u64);

    impl Values {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// A value of column `shape` for row `row`: a few names, counters that
        /// rise or fall (pages in order), one value, or long ones (cut by the
        /// truncation, of characters of every width, some that cannot be
        /// incremented in place).
        fn string(&mut self, shape: u64, row: usize) -> String {
            let pick = self.next();
            match shape % 5 {
                0 => ["pressure", "temperature", "humidity", ""][(pick % 4) as usize].to_string(),
                1 => format!("line-{:012}", row),
                2 => format!("line-{:012}", 1_000_000 - row),
                3 => "long/sensors.csv".to_string(),
                _ => {
                    let piece = ["é", "\u{7f}", "\u{10FFFF}", "sensor-", "\u{FFFF}"];
                    let len = (pick % 40) as usize;
                    (0..len)
                        .map(|i| piece[(pick >> (i % 60)) as usize % 5])
                        .collect()
                }
            }
        }
    }

    /// The file `ParquetUpload` writes from `batches` with `props`, each batch
    /// followed by a flush when its flag says.
    async fn uploaded(
        schema: &SchemaRef,
        props: WriterProperties,
        batches: &[(RecordBatch, bool)],
    ) -> Bytes {
        let (_dir, store) = local_store();
        let path = ObjPath::from("t/file.parquet");
        let mut file =
            ParquetUpload::try_new(store.clone(), path.clone(), 1 << 20, schema.clone(), props)
                .unwrap();
        for (batch, flush) in batches {
            file.write(batch).await.unwrap();
            if *flush {
                file.flush().await.unwrap();
            }
        }
        file.finish().await.unwrap();
        store.get(&path).await.unwrap().bytes().await.unwrap()
    }

    /// A file's metadata with its page index, when it has one.
    fn metadata(file: &Bytes) -> ParquetMetaData {
        ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Optional)
            .parse_and_finish(file)
            .unwrap()
    }

    /// A file of one nullable string column, `name`.
    fn name_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8, true)]))
    }

    fn strings_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("tag", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
            Field::new("note", DataType::LargeUtf8, true),
        ]))
    }

    /// A batch of `rows` rows. Nulls come in runs of 150 rows, so that some
    /// pages hold nothing else, and now and then outside them; their slots
    /// hold bytes (which no statistic may count).
    fn strings_batch(
        schema: &SchemaRef,
        values: &mut Values,
        shapes: [u64; 3],
        from: usize,
        rows: usize,
    ) -> RecordBatch {
        let mut column = |shape: u64| -> (Vec<String>, NullBuffer) {
            let valid = (from..from + rows)
                .map(|row| {
                    (row / 150) % 3 != (shape % 3) as usize && !values.next().is_multiple_of(16)
                })
                .collect::<Vec<bool>>();
            let strings = (from..from + rows)
                .map(|row| values.string(shape, row))
                .collect();
            (strings, NullBuffer::from(valid))
        };
        let (name, name_valid) = column(shapes[0]);
        let (tag, _) = column(shapes[1]);
        let (note, note_valid) = column(shapes[2]);
        let (offsets, bytes, _) = StringArray::from(name).into_parts();
        let name = StringArray::new(offsets, bytes, Some(name_valid));
        let (offsets, bytes, _) = LargeStringArray::from(note).into_parts();
        let note = LargeStringArray::new(offsets, bytes, Some(note_valid));
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(name),
                Arc::new(StringArray::from(tag)),
                Arc::new(Int64Array::from_iter_values(
                    (from..from + rows).map(|r| r as i64),
                )),
                Arc::new(note),
            ],
        )
        .unwrap()
    }

    /// The file parquet-rs writes with its own statistics, given the same
    /// calls `ParquetUpload` makes: its column writers, each string column it
    /// takes in slices of the mini-batch, the other columns whole, a row group
    /// ended where `batches` say.
    fn parquet_writes(
        schema: &SchemaRef,
        props: &WriterProperties,
        batches: &[(RecordBatch, bool)],
    ) -> Vec<u8> {
        let slice = props
            .write_batch_size()
            .min(props.data_page_row_count_limit());
        let (mut file, columns) =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))
                .unwrap()
                .into_serialized_writer()
                .unwrap();
        let mut writers = None;
        for (i, (batch, end)) in batches.iter().enumerate() {
            let group = writers.get_or_insert_with(|| columns.create_column_writers(0).unwrap());
            let mut leaves = group.iter_mut();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let writer = leaves.next().unwrap(); // one leaf per field here
                let taken = matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8)
                    && Truncation::of_column(props, &ColumnPath::from(field.name().as_str()))
                        .is_some();
                let step = if taken { slice } else { column.len().max(1) };
                for start in (0..column.len()).step_by(step) {
                    let part = column.slice(start, step.min(column.len() - start));
                    for leaf in compute_leaves(field, &part).unwrap() {
                        writer.write(&leaf).unwrap();
                    }
                }
            }
            if *end || i + 1 == batches.len() {
                let mut row_group = file.next_row_group().unwrap();
                for writer in writers.take().unwrap() {
                    writer
                        .close()
                        .unwrap()
                        .append_to_row_group(&mut row_group)
                        .unwrap();
                }
                row_group.close().unwrap();
            }
        }
        file.finish().unwrap();
        file.inner().clone()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// With the statistics of its string columns computed here, the file
        /// is byte for byte the one parquet's `ArrowWriter` writes with page
        /// statistics from the same properties and the same mini-batches:
        /// the same chunk statistics, column indexes (bounds, null pages,
        /// null counts, histograms, boundary order) and offset indexes.
        #[test]
        fn the_file_is_the_one_parquet_writes(
            seed in proptest::prelude::any::<u64>(),
            shapes in proptest::prelude::any::<[u64; 3]>(),
            batches in proptest::collection::vec((0usize..2600, proptest::prelude::any::<bool>()), 1..6),
            batch_size in proptest::sample::select(vec![7usize, 100, 1024]),
            page_rows in proptest::sample::select(vec![50usize, 20_000]),
            truncate in proptest::sample::select(vec![Some(3usize), Some(64), Some(64), None]),
            max_rows in proptest::sample::select(vec![1usize << 20, 1000]),
        ) {
            let schema = strings_schema();
            let props = WriterProperties::builder()
                .set_max_row_group_row_count(Some(max_rows))
                .set_write_batch_size(batch_size)
                .set_data_page_row_count_limit(page_rows)
                .set_statistics_truncate_length(truncate)
                .set_column_index_truncate_length(truncate.map(|t| t + 5))
                .build();
            let mut values = Values(seed);
            let batches: Vec<(RecordBatch, bool)> = batches
                .iter()
                .scan(0, |from, &(rows, flush)| {
                    let batch = strings_batch(&schema, &mut values, shapes, *from, rows);
                    *from += rows;
                    Some((batch, flush))
                })
                .collect();

            // The row groups `ParquetUpload` makes: ended by a flush, or
            // where they reach `max_rows` (inside a batch too).
            let mut groups = Vec::new();
            let mut rows = 0;
            for (batch, flush) in &batches {
                let mut done = 0;
                while done < batch.num_rows() {
                    let take = (max_rows - rows).min(batch.num_rows() - done);
                    rows = (rows + take) % max_rows;
                    groups.push((batch.slice(done, take), rows == 0));
                    done += take;
                }
                if *flush && rows > 0 {
                    rows = 0;
                    groups.last_mut().unwrap().1 = true;
                }
            }
            // Cut bounds are computed here: the test compares something.
            let taken = Truncation::of_column(&props, &ColumnPath::from("name")).is_some();
            proptest::prop_assert_eq!(taken, truncate.is_some());
            let want = parquet_writes(&schema, &props, &groups);

            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = runtime.block_on(uploaded(&schema, props, &batches));
            if got[..] != want[..] {
                let (got, want) = (metadata(&got), metadata(&Bytes::from(want)));
                // The first chunk that differs, alone (whole metadata is long).
                for (g, (a, b)) in got.row_groups().iter().zip(want.row_groups()).enumerate() {
                    for (c, (x, y)) in a.columns().iter().zip(b.columns()).enumerate() {
                        proptest::prop_assert_eq!(x.statistics(), y.statistics(), "row group {} column {}", g, c);
                        let index = |m: &ParquetMetaData| m.column_index().map(|i| i[g][c].clone());
                        proptest::prop_assert_eq!(index(&got), index(&want), "row group {} column {}", g, c);
                    }
                }
                proptest::prop_assert_eq!(got.row_groups(), want.row_groups());
                proptest::prop_assert_eq!(got.offset_index(), want.offset_index());
                proptest::prop_assert!(false, "the files differ outside their metadata");
            }
        }
    }

    /// Where a page ends inside a slice (parquet splits a mini-batch that
    /// would overflow the dictionary page), the page's bounds take in the
    /// slice's: they still hold each of the page's values, and its null
    /// count, the chunk's statistics and the data are parquet's own.
    #[tokio::test]
    async fn a_page_that_ends_inside_a_slice_gets_bounds_that_hold_it() {
        let schema = name_schema();
        let props = WriterProperties::builder()
            .set_dictionary_page_size_limit(600)
            .set_data_page_size_limit(700)
            .build();
        let mut values = Values(7);
        let column: Vec<Option<String>> = (0..5000)
            .map(|row| {
                (row % 7 != 0)
                    .then(|| format!("{:08}-{}", values.next() % 100_000, "x".repeat(row % 30)))
            })
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from(column.clone()))],
        )
        .unwrap();

        let mut reference =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
        for start in (0..5000).step_by(1024) {
            reference
                .write(&batch.slice(start, 1024.min(5000 - start)))
                .unwrap();
        }
        let want = Bytes::from(reference.into_inner().unwrap());
        let got = uploaded(&schema, props, &[(batch, false)]).await;
        let (got_meta, want_meta) = (metadata(&got), metadata(&want));
        let chunk = |m: &ParquetMetaData| m.row_group(0).column(0).statistics().cloned();
        assert_eq!(chunk(&got_meta), chunk(&want_meta));
        let pages = |m: &ParquetMetaData| {
            m.offset_index().unwrap()[0][0]
                .page_locations()
                .iter()
                .map(|p| p.first_row_index as usize)
                .collect::<Vec<_>>()
        };
        let starts = pages(&got_meta);
        assert_eq!(starts, pages(&want_meta), "the pages are parquet's");
        let inside = starts.iter().filter(|&&s| s % 1024 != 0).count();
        assert!(
            inside > 0,
            "no page ended inside a slice: the test tests nothing"
        );
        let (ColumnIndexMetaData::BYTE_ARRAY(index), ColumnIndexMetaData::BYTE_ARRAY(reference)) = (
            &got_meta.column_index().unwrap()[0][0],
            &want_meta.column_index().unwrap()[0][0],
        ) else {
            panic!("no string column index");
        };
        let mut wider = 0;
        for (page, range) in starts
            .iter()
            .copied()
            .chain([5000])
            .collect::<Vec<_>>()
            .windows(2)
            .enumerate()
        {
            assert_eq!(index.null_count(page), reference.null_count(page));
            assert_eq!(index.is_null_page(page), reference.is_null_page(page));
            let (Some(min), Some(max)) = (index.min_value(page), index.max_value(page)) else {
                continue;
            };
            for value in column[range[0]..range[1]].iter().flatten() {
                assert!(
                    min <= value.as_bytes() && value.as_bytes() <= max,
                    "page {page}"
                );
            }
            wider += usize::from(
                Some(min) != reference.min_value(page) || Some(max) != reference.max_value(page),
            );
        }
        assert!(
            wider > 0,
            "every page's bounds were exact: the test tests nothing"
        );
        let rows = ParquetRecordBatchReaderBuilder::try_new(got)
            .unwrap()
            .build()
            .unwrap();
        let read: Vec<Option<String>> = rows
            .flat_map(|b| {
                let b = b.unwrap();
                let names = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                names
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(read, column);
    }

    /// Writes `column` as the one column `name` of a file with `props`, in
    /// one batch, and reads back its metadata with the page index.
    async fn one_column_file(props: WriterProperties, column: StringArray) -> ParquetMetaData {
        let schema = name_schema();
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(column)]).unwrap();
        metadata(&uploaded(&schema, props, &[(batch, false)]).await)
    }

    /// Bounds longer than what a slice keeps of them: pages whose order the
    /// kept bytes cannot tell are said to be in no order (parquet finds them
    /// ascending), their cut bounds are parquet's; and a maximum no shorter
    /// bound exists for, longer than what is kept, leaves the chunk without
    /// a minimum and maximum and without a column index, not with wrong ones.
    #[tokio::test]
    async fn bounds_longer_than_what_is_kept() {
        let props = || {
            WriterProperties::builder()
                .set_data_page_row_count_limit(10)
                .set_write_batch_size(10)
                .build()
        };
        // Rising values that agree on their first 1 030 bytes: ten pages.
        let prefix = "p".repeat(1030);
        let rising = StringArray::from_iter_values((0..100).map(|i| format!("{prefix}{i:03}")));
        let got = one_column_file(props(), rising.clone()).await;
        let schema = name_schema();
        let mut reference =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props())).unwrap();
        for start in (0..100).step_by(10) {
            let slice =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(rising.slice(start, 10))])
                    .unwrap();
            reference.write(&slice).unwrap();
        }
        let want = metadata(&Bytes::from(reference.into_inner().unwrap()));
        let index = |m: &ParquetMetaData| m.column_index().unwrap()[0][0].clone();
        let (ours, theirs) = (index(&got), index(&want));
        assert_eq!(theirs.get_boundary_order(), Some(BoundaryOrder::ASCENDING));
        assert_eq!(ours.get_boundary_order(), Some(BoundaryOrder::UNORDERED));
        let (ColumnIndexMetaData::BYTE_ARRAY(ours), ColumnIndexMetaData::BYTE_ARRAY(theirs)) =
            (ours, theirs)
        else {
            panic!("no string column index");
        };
        assert_eq!(ours.num_pages(), 10);
        assert_eq!(
            ours.min_values_iter().collect::<Vec<_>>(),
            theirs.min_values_iter().collect::<Vec<_>>()
        );
        assert_eq!(
            ours.max_values_iter().collect::<Vec<_>>(),
            theirs.max_values_iter().collect::<Vec<_>>()
        );
        let stats = |m: &ParquetMetaData| m.row_group(0).column(0).statistics().cloned();
        assert_eq!(stats(&got), stats(&want));

        // The greatest value: 1 100 DEL characters, which cannot be incremented
        // in place; parquet writes it whole.
        let dels = "\u{7f}".repeat(1100);
        let got = one_column_file(
            props(),
            StringArray::from(vec![Some("a"), None, Some(dels.as_str())]),
        )
        .await;
        let chunk = got.row_group(0).column(0);
        let stats = chunk.statistics().unwrap();
        assert_eq!((stats.min_bytes_opt(), stats.max_bytes_opt()), (None, None));
        assert_eq!(stats.null_count_opt(), Some(1));
        assert!(
            got.column_index()
                .is_none_or(|i| matches!(i[0][0], ColumnIndexMetaData::NONE))
        );
    }

    /// Properties under which parquet must compute a string column's
    /// statistics itself leave the column to it, and the file is parquet's:
    /// statistics in the page headers; offset indexes disabled but kept by a
    /// column's page statistics. Properties `ParquetUpload` cannot honour
    /// are refused.
    #[tokio::test]
    async fn properties_that_need_parquet_s_own_statistics() {
        let column = StringArray::from(vec![Some("pressure"), None, Some("humidity"), Some("")]);
        let schema = name_schema();
        for props in [
            WriterProperties::builder()
                .set_write_page_header_statistics(true)
                .build(),
            WriterProperties::builder()
                .set_offset_index_disabled(true)
                .set_column_statistics_enabled("name".into(), EnabledStatistics::Page)
                .build(),
        ] {
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(column.clone())]).unwrap();
            let mut reference =
                ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
            reference.write(&batch).unwrap();
            let want = reference.into_inner().unwrap();
            let got = uploaded(&schema, props, &[(batch, false)]).await;
            assert!(got[..] == want[..], "the file is not parquet's");
        }
        for props in [
            WriterProperties::builder()
                .set_max_row_group_bytes(Some(1 << 20))
                .build(),
            WriterProperties::builder()
                .set_content_defined_chunking(Some(CdcOptions::default()))
                .build(),
        ] {
            let (_dir, store) = local_store();
            let refused = ParquetUpload::try_new(
                store,
                ObjPath::from("t/x.parquet"),
                1 << 20,
                schema.clone(),
                props,
            );
            assert!(refused.is_err());
        }
    }

    /// A string column with no value in a row group (the sensor table's
    /// `quality`), and one whose values begin in a later page: null pages, a
    /// chunk with a null count and no bounds, and the pages' order, as
    /// parquet-rs writes them.
    #[tokio::test]
    async fn null_chunks_and_null_pages_are_parquet_s() {
        let schema = name_schema();
        let props = WriterProperties::builder()
            .set_write_batch_size(100)
            .set_data_page_row_count_limit(100)
            .build();
        let column = |values: Vec<Option<&str>>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(values))]).unwrap()
        };
        let batches = [
            (column(vec![None; 1000]), true),
            (
                column((0..1000).map(|i| (i >= 550).then_some("b")).collect()),
                false,
            ),
        ];
        let got = uploaded(&schema, props.clone(), &batches).await;
        assert!(
            got[..] == parquet_writes(&schema, &props, &batches)[..],
            "the file is not parquet's"
        );
        let stats = metadata(&got)
            .row_group(0)
            .column(0)
            .statistics()
            .cloned()
            .unwrap();
        assert_eq!(
            (stats.min_bytes_opt(), stats.null_count_opt()),
            (None, Some(1000))
        );
    }

    /// Nulls in a string column the file declares without them are refused
    /// before anything of the batch is written: parquet-rs would write their
    /// slots as values.
    #[tokio::test]
    async fn nulls_in_a_string_column_declared_without_them_are_refused() {
        let file_schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let batch_schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            batch_schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
        )
        .unwrap();
        let (_dir, store) = local_store();
        let path = ObjPath::from("t/nulls.parquet");
        let props = WriterProperties::builder().build();
        let mut file = ParquetUpload::try_new(store, path, 1 << 20, file_schema, props).unwrap();
        let refused = file.write(&batch).await.unwrap_err();
        assert!(refused.to_string().contains("name"), "{refused}");
        assert_eq!(file.in_progress_rows(), 0, "part of the batch was written");
    }

    proptest::proptest! {
        /// Blocks of `block_size` put one after another are sent as they are
        /// (`whole_parts` gives none or all of each) whenever the part splits
        /// evenly among them, so the table's uploads copy nothing.
        #[test]
        fn blocks_that_divide_the_part_are_never_cut(part in 1usize..(64 << 20), k in 0usize..1000) {
            let block = block_size(part);
            if part % block == 0 {
                let whole = whole_parts(k * block, block, part);
                proptest::prop_assert!(whole == 0 || whole == block, "{whole} of {block}");
            }
        }
    }

    /// A file finished before any row: the magic and a footer, readable.
    #[tokio::test]
    async fn a_file_with_no_rows_is_whole() {
        let (_dir, store) = local_store();
        let path = ObjPath::from("t/empty.parquet");
        let (schema, mut file) = small_file(&store, &path);
        let metadata = file.finish().await.unwrap();
        assert_eq!(metadata.num_row_groups(), 0);
        let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.len(), file.bytes_written());
        let read = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        assert_eq!(read.schema().fields(), schema.fields());
        assert_eq!(read.build().unwrap().count(), 0);
    }

    /// A file given up leaves no object, even when parts were sent.
    #[tokio::test]
    async fn an_aborted_file_leaves_no_object() {
        let (dir, store) = local_store();
        let path = ObjPath::from("t/aborted.parquet");
        let (schema, mut file) = small_file(&store, &path);
        file.write(&batch(&schema, 0, 3000)).await.unwrap();
        assert!(file.upload.bytes_put > 4096, "parts were sent");
        // The local store writes the parts of an upload under way to a file of
        // its own beside the object (`NAME#N`), renamed to NAME when it completes.
        let pending = || {
            std::fs::read_dir(dir.path().join("t"))
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().starts_with("aborted.parquet#")
                })
                .count()
        };
        assert_eq!(pending(), 1, "an upload is under way");
        file.abort().await.unwrap();
        assert_eq!(pending(), 0, "the upload was aborted");
        assert!(store.head(&path).await.is_err());
        assert!(
            file.finish().await.is_err(),
            "an aborted file cannot be finished"
        );
    }

    /// A store whose upload parts each take a while, counting how many are
    /// under way at once, failing the `fail_part`-th part (from 1) if set and
    /// noting aborts (everything else goes to an in-memory store).
    #[derive(Debug, Default)]
    struct SlowParts {
        inner: object_store::memory::InMemory,
        now: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
        fail_part: Option<usize>,
        parts: Arc<std::sync::atomic::AtomicUsize>,
        aborted: Arc<std::sync::atomic::AtomicBool>,
        /// Single-request puts and multipart uploads begun.
        puts: std::sync::atomic::AtomicUsize,
        multiparts: std::sync::atomic::AtomicUsize,
    }

    impl std::fmt::Display for SlowParts {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SlowParts({})", self.inner)
        }
    }

    #[derive(Debug)]
    struct SlowUpload {
        inner: Box<dyn object_store::MultipartUpload>,
        now: Arc<std::sync::atomic::AtomicUsize>,
        most: Arc<std::sync::atomic::AtomicUsize>,
        fail_part: Option<usize>,
        parts: Arc<std::sync::atomic::AtomicUsize>,
        aborted: Arc<std::sync::atomic::AtomicBool>,
    }

    #[async_trait::async_trait]
    impl object_store::MultipartUpload for SlowUpload {
        fn put_part(&mut self, data: object_store::PutPayload) -> object_store::UploadPart {
            use std::sync::atomic::Ordering::SeqCst;
            let part = self.inner.put_part(data);
            let (now, most) = (self.now.clone(), self.most.clone());
            most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
            let fails = Some(self.parts.fetch_add(1, SeqCst) + 1) == self.fail_part;
            Box::pin(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let done = if fails {
                    Err(object_store::Error::Generic {
                        store: "SlowParts",
                        source: "the part failed".into(),
                    })
                } else {
                    part.await
                };
                now.fetch_sub(1, SeqCst);
                done
            })
        }

        async fn complete(&mut self) -> object_store::Result<object_store::PutResult> {
            self.inner.complete().await
        }

        async fn abort(&mut self) -> object_store::Result<()> {
            self.aborted
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.inner.abort().await
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for SlowParts {
        async fn put_opts(
            &self,
            location: &ObjPath,
            payload: object_store::PutPayload,
            opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &ObjPath,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.multiparts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Box::new(SlowUpload {
                inner: self.inner.put_multipart_opts(location, opts).await?,
                now: self.now.clone(),
                most: self.most.clone(),
                fail_part: self.fail_part,
                parts: self.parts.clone(),
                aborted: self.aborted.clone(),
            }))
        }

        async fn get_opts(
            &self,
            location: &ObjPath,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.inner.get_opts(location, options).await
        }

        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<ObjPath>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjPath>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&ObjPath>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>>
        {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&ObjPath>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &ObjPath,
            to: &ObjPath,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    /// However fast parts are made, and whatever the size of the buffers put,
    /// no more than `PARTS_IN_FLIGHT` parts of one upload hold their bytes at
    /// once (the last, partial one included), and the object is whole. Counted
    /// from each part's request to its end, so the count does not depend on how
    /// the runtime schedules them: the first two puts each start a part without
    /// waiting, which the lower bound checks.
    #[tokio::test(flavor = "current_thread")]
    async fn parts_under_way_are_bounded() {
        let store = Arc::new(SlowParts::default());
        let path = ObjPath::from("o/slow.bin");
        let mut upload = Upload::new(store.clone(), path.clone(), 4096);
        let mut want = Vec::new();
        // Blocks of a part, then buffers of several parts, then a partial end.
        let sizes = [vec![4096usize; 20], vec![5 * 4096 + 100; 4], vec![1000]].concat();
        for (i, len) in sizes.into_iter().enumerate() {
            let buffer: Vec<u8> = (0..len).map(|j| (i * 7 + j) as u8).collect();
            want.extend_from_slice(&buffer);
            upload.put(buffer).await.unwrap();
            let most = store.most.load(std::sync::atomic::Ordering::SeqCst);
            assert!(most <= PARTS_IN_FLIGHT, "{most} parts under way at once");
        }
        upload.complete().await.unwrap();
        let most = store.most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (2..=PARTS_IN_FLIGHT).contains(&most),
            "{most} parts under way at once"
        );
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert!(got == want, "the object differs from the blocks put");
    }

    /// An upload of 4 KiB parts to a store whose `fail_part`-th part fails.
    fn failing_upload(fail_part: usize) -> (Arc<SlowParts>, ObjPath, Upload) {
        let store = Arc::new(SlowParts {
            fail_part: Some(fail_part),
            ..Default::default()
        });
        let path = ObjPath::from("o/failed.bin");
        let upload = Upload::new(store.clone(), path.clone(), 4096);
        (store, path, upload)
    }

    /// A part that fails while the upload's completion waits for its parts
    /// (the last one here) aborts the upload: object_store's own writer
    /// returned the error and left it unfinished.
    #[tokio::test(flavor = "current_thread")]
    async fn an_upload_whose_last_part_fails_is_aborted() {
        let (store, path, mut upload) = failing_upload(3);
        upload.put(vec![7u8; 2 * 4096 + 100]).await.unwrap();
        assert!(upload.complete().await.is_err(), "the last part failed");
        assert!(
            store.aborted.load(std::sync::atomic::Ordering::SeqCst),
            "not aborted"
        );
        assert!(store.head(&path).await.is_err(), "no object");
        assert!(
            upload.abort().await.is_ok(),
            "an ended upload's abort is a no-op"
        );
    }

    /// Waits (at most `ms` milliseconds) for the store to see an abort.
    async fn aborted_within(store: &SlowParts, ms: u64) -> bool {
        for _ in 0..ms / 10 {
            if store.aborted.load(std::sync::atomic::Ordering::SeqCst) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    /// An upload dropped halfway (a panic in its writer, a future dropped) is
    /// aborted by itself; one completed is not.
    #[tokio::test(flavor = "current_thread")]
    async fn an_upload_dropped_unfinished_is_aborted_by_itself() {
        let store = Arc::new(SlowParts::default());
        let mut upload = Upload::new(store.clone(), ObjPath::from("o/dropped.bin"), 4096);
        upload.put(vec![1u8; 3 * 4096]).await.unwrap();
        assert_eq!(
            store.multiparts.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        drop(upload);
        assert!(aborted_within(&store, 2000).await, "not aborted");

        let store = Arc::new(SlowParts::default());
        let mut upload = Upload::new(store.clone(), ObjPath::from("o/done.bin"), 4096);
        upload.put(vec![1u8; 3 * 4096]).await.unwrap();
        upload.complete().await.unwrap();
        drop(upload);
        assert!(
            !aborted_within(&store, 200).await,
            "a completed upload was aborted"
        );
    }

    /// A panic while the last parts are sent (inside `Parts::complete`) drops
    /// the parts unfinished: the upload is aborted all the same.
    #[tokio::test(flavor = "current_thread")]
    async fn an_upload_whose_completion_panics_is_aborted() {
        let store = Arc::new(SlowParts::default());
        let mut upload = Upload::new(store.clone(), ObjPath::from("o/panic.bin"), 4096);
        upload.put(vec![1u8; 3 * 4096 + 10]).await.unwrap();
        let completing = std::panic::AssertUnwindSafe(async {
            let done = upload.complete();
            // Polled once, far enough to have taken the parts; then a panic
            // unwinds through the future that holds them.
            let mut done = Box::pin(done);
            let _pending = futures::poll!(done.as_mut());
            panic!("a bug while completing");
        });
        assert!(futures::FutureExt::catch_unwind(completing).await.is_err());
        assert!(aborted_within(&store, 2000).await, "not aborted");
    }

    /// A part that fails while bytes are still put fails a later put; the
    /// upload then takes no more bytes and its abort reaches the store.
    #[tokio::test(flavor = "current_thread")]
    async fn an_upload_whose_part_fails_on_the_way_can_only_be_aborted() {
        let (store, path, mut upload) = failing_upload(1);
        let mut failed = None;
        for _ in 0..8 {
            if let Err(e) = upload.put(vec![1u8; 4096]).await {
                failed = Some(e);
                break;
            }
        }
        assert!(failed.is_some(), "the failed part was never reported");
        assert!(upload.put(vec![1u8; 10]).await.is_err());
        assert!(upload.complete().await.is_err());
        assert!(!store.aborted.load(std::sync::atomic::Ordering::SeqCst));
        upload.abort().await.unwrap();
        assert!(
            store.aborted.load(std::sync::atomic::Ordering::SeqCst),
            "not aborted"
        );
        assert!(store.head(&path).await.is_err(), "no object");
    }

    /// An object under one part goes in one request when completed, and
    /// nothing of it exists before.
    #[tokio::test(flavor = "current_thread")]
    async fn a_small_object_is_one_request() {
        let store = Arc::new(SlowParts::default());
        let path = ObjPath::from("o/small.bin");
        let mut upload = Upload::new(store.clone(), path.clone(), 4096);
        upload.put(vec![3u8; 1000]).await.unwrap();
        upload.put(vec![4u8; 3000]).await.unwrap();
        assert!(
            store.head(&path).await.is_err(),
            "visible before completion"
        );
        upload.complete().await.unwrap();
        let count =
            |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            (
                count(&store.puts),
                count(&store.multiparts),
                count(&store.parts)
            ),
            (1, 0, 0),
            "requests (puts, multipart uploads, parts)"
        );
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.len(), 4000);
        assert!(got[..1000].iter().all(|b| *b == 3) && got[1000..].iter().all(|b| *b == 4));
        // An upload given nothing is an empty object, in one request too.
        let empty = ObjPath::from("o/empty.bin");
        Upload::new(store.clone(), empty.clone(), 4096)
            .complete()
            .await
            .unwrap();
        assert_eq!(store.head(&empty).await.unwrap().size, 0);
        assert_eq!((count(&store.puts), count(&store.multiparts)), (2, 0));
    }
}
