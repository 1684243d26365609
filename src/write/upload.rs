//! A Parquet file written to an object as its row groups complete.
//!
//! This is parquet's `AsyncArrowWriter` less two copies that showed in a profile
//! of the CSV benchmark's page faults:
//!
//! - The synchronous writer encodes each row group into a `Vec` that starts
//!   empty, so it grew by doubling, copying what it held at each step. Here it is
//!   first given room for the row group's estimated size.
//! - The finished bytes went through object_store's `AsyncWrite`, which copies
//!   them into the upload's own buffer; `BufWriter::put` keeps them as they are.
//!
//! What the upload keeps stays within one part, as with the copy: a part holds
//! slices of the buffer it came from until it is sent, so the bytes of a buffer
//! that only begin a part are copied into a buffer of their own, and the rest of
//! the buffer goes once its whole parts are sent ([`Upload::put`]).

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjPath;
use tokio::io::AsyncWriteExt;

use crate::base::error::{Error, Result};

/// An object written by parts from whole buffers. Nothing of it is visible
/// until [`complete`](Upload::complete) (object_store's upload makes the object
/// whole or not at all).
pub struct Upload {
    writer: BufWriter,
    /// The part size: the bytes the writer buffers before it sends a part.
    part_bytes: usize,
    /// Bytes put so far.
    bytes_put: usize,
    state: State,
}

/// Where an upload is. object_store's writer panics when written on or aborted
/// after its end, and may have given up its path after a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A request failed: it can only be aborted now.
    Failed,
    /// Completed (or its completion failed), or aborted.
    Ended,
}

impl Upload {
    /// An upload of `path` in `store`, in parts of `part_bytes` (one request when
    /// the object is smaller).
    pub fn new(store: Arc<dyn ObjectStore>, path: ObjPath, part_bytes: usize) -> Self {
        // object_store's writer would never send a part of no bytes: a bug here.
        assert!(part_bytes > 0, "an upload's part size must be more than 0");
        Upload {
            writer: BufWriter::with_capacity(store, path, part_bytes),
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
        // leaves the writer in a state only an abort may follow.
        self.state = State::Failed;
        if whole == 0 {
            // Within one part: kept as it is, no bigger than its copy.
            self.writer.put(bytes).await?;
        } else {
            self.writer.put(bytes.slice(..whole)).await?;
            if whole < len {
                self.writer
                    .put(Bytes::copy_from_slice(&bytes[whole..]))
                    .await?;
            }
        }
        self.state = State::Open;
        self.bytes_put += len;
        Ok(())
    }

    /// Completes the object.
    pub async fn complete(&mut self) -> Result<()> {
        self.check_open()?;
        self.state = State::Ended;
        Ok(self.writer.shutdown().await?)
    }

    /// Gives up the object: an upload under way is aborted, and nothing of it
    /// becomes an object. (Not one whose completion was attempted: object_store
    /// aborts that itself when the last request fails, and cannot be asked to.)
    pub async fn abort(&mut self) -> Result<()> {
        if self.state == State::Ended {
            return Ok(());
        }
        self.state = State::Ended;
        Ok(self.writer.abort().await?)
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
pub struct ParquetUpload {
    encoder: ArrowWriter<Vec<u8>>,
    upload: Upload,
    /// Rows after which the encoder ends a row group by itself, inside `write`.
    max_row_group_rows: Option<usize>,
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
        let max_row_group_rows = props.max_row_group_row_count();
        Ok(ParquetUpload {
            encoder: ArrowWriter::try_new(Vec::new(), schema, Some(props))?,
            upload: Upload::new(store, path, part_bytes),
            max_row_group_rows,
        })
    }

    /// Encodes `batch`; a row group it completes goes to the upload.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self
            .max_row_group_rows
            .is_some_and(|max| self.encoder.in_progress_rows() + batch.num_rows() >= max)
        {
            self.make_room();
        }
        let before = self.encoder.flushed_row_groups().len();
        self.encoder.write(batch)?;
        if self.encoder.flushed_row_groups().len() != before {
            self.hand_over().await?;
        }
        Ok(())
    }

    /// Ends the row group in progress and uploads it.
    pub async fn flush(&mut self) -> Result<()> {
        self.make_room();
        self.encoder.flush()?;
        self.hand_over().await
    }

    /// Writes the last row group and the footer and completes the upload.
    pub async fn finish(&mut self) -> Result<ParquetMetaData> {
        self.make_room();
        let metadata = self.encoder.finish()?;
        self.hand_over().await?;
        self.upload.complete().await?;
        Ok(metadata)
    }

    /// Gives up the file: nothing of it becomes an object.
    pub async fn abort(&mut self) -> Result<()> {
        self.upload.abort().await
    }

    /// Bytes of the file encoded so far, footer included once finished.
    pub fn bytes_written(&self) -> usize {
        self.encoder.bytes_written()
    }

    /// The estimated encoded size of the row group in progress.
    pub fn in_progress_size(&self) -> usize {
        self.encoder.in_progress_size()
    }

    /// The encoder's estimate of the memory it holds.
    pub fn memory_size(&self) -> usize {
        self.encoder.memory_size()
    }

    /// Gives the encoder's buffer room for the row group in progress, so writing
    /// it out does not grow the buffer step by step.
    fn make_room(&mut self) {
        let wanted = self.encoder.in_progress_size();
        if wanted == 0 {
            return;
        }
        // The estimate leaves out page headers, and the footer when finishing:
        // a little more, so that they too fit. (It counts the page in progress
        // uncompressed, so it is more often too much; `Upload::put` gives back
        // what was not used.)
        let room = wanted + wanted / 16 + (64 << 10);
        self.encoder.inner_mut().reserve_exact(room);
    }

    /// Moves what the encoder has written to the upload.
    async fn hand_over(&mut self) -> Result<()> {
        // Each hand-over holds everything written so far: what parquet still
        // has in its own small buffer comes out too.
        self.encoder.sync()?;
        let buffer = std::mem::take(self.encoder.inner_mut());
        self.upload.put(buffer).await
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    use super::*;

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
    /// bytes are refused (object_store's writer would panic) and aborting does
    /// nothing.
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
        let file = ParquetUpload::try_new(store.clone(), path.clone(), 4096, schema.clone(), props)
            .unwrap();
        (schema, file)
    }

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
    /// `finish` each go to the upload when they end, and all reach the object in
    /// order; the object appears only when finished, and is as long as the
    /// writer says.
    #[tokio::test]
    async fn every_row_group_goes_to_the_upload_when_it_ends() {
        let (_dir, store) = local_store();
        let path = ObjPath::from("t/part-0.parquet");
        let (schema, mut file) = small_file(&store, &path);
        let handed = |f: &ParquetUpload| f.upload.bytes_put;
        file.write(&batch(&schema, 0, 700)).await.unwrap();
        assert_eq!(handed(&file), 0, "nothing ended yet");
        file.write(&batch(&schema, 700, 700)).await.unwrap(); // ends a row group at 1000
        let first = handed(&file);
        assert!(first > 0, "the row group that ended was kept");
        file.flush().await.unwrap(); // ends one at 1400
        assert!(handed(&file) > first, "the flushed row group was kept");
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
}
