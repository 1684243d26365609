//! A Parquet file written to an object as its row groups complete.
//!
//! This is parquet's `AsyncArrowWriter` less two copies that showed in the CSV
//! benchmark's page faults (a third of them, together):
//!
//! - The synchronous writer encodes each row group into a `Vec` that starts
//!   empty, so it grew by doubling, copying what it held at each step. Here it is
//!   first given room for the row group's estimated size.
//! - The finished bytes went through object_store's `AsyncWrite`, which copies
//!   them into the upload's own buffer; `BufWriter::put` keeps them as they are,
//!   as one part of the next request.

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::base::error::Result;

/// One Parquet file being uploaded. Nothing of it is visible until [`finish`]
/// (object_store's upload makes the object whole or not at all).
///
/// [`finish`]: ParquetUpload::finish
pub struct ParquetUpload {
    encoder: ArrowWriter<Vec<u8>>,
    upload: BufWriter,
    /// Rows after which the encoder ends a row group by itself, inside `write`.
    max_row_group_rows: Option<usize>,
}

impl ParquetUpload {
    pub fn try_new(upload: BufWriter, schema: SchemaRef, props: WriterProperties) -> Result<Self> {
        let max_row_group_rows = props.max_row_group_row_count();
        Ok(ParquetUpload {
            encoder: ArrowWriter::try_new(Vec::new(), schema, Some(props))?,
            upload,
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
        self.upload.shutdown().await?;
        Ok(metadata)
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
        // The estimate leaves out page headers, and the footer when finishing:
        // a little more, so that they too fit.
        let wanted = self.encoder.in_progress_size();
        let room = wanted + wanted / 16 + (64 << 10);
        self.encoder.inner_mut().reserve_exact(room);
    }

    /// Moves what the encoder has written to the upload, without copying it.
    async fn hand_over(&mut self) -> Result<()> {
        // parquet empties its own small buffer into ours when a row group or the
        // file ends; made sure of here, since a byte left there would be lost.
        self.encoder.sync()?;
        let bytes = Bytes::from(std::mem::take(self.encoder.inner_mut()));
        if !bytes.is_empty() {
            self.upload.put(bytes).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use object_store::local::LocalFileSystem;
    use object_store::path::Path as ObjPath;
    use object_store::{ObjectStore, ObjectStoreExt};

    use super::*;

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
    /// `finish` all reach the object, in order; the object appears only when
    /// finished, and is as long as the writer says.
    #[tokio::test]
    async fn every_row_group_reaches_the_object_once_it_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let path = ObjPath::from("t/part-0.parquet");
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .build();
        // A small upload buffer, so that the upload goes in several parts too.
        let upload = BufWriter::with_capacity(store.clone(), path.clone(), 4096);
        let mut file = ParquetUpload::try_new(upload, schema.clone(), props).unwrap();
        file.write(&batch(&schema, 0, 700)).await.unwrap();
        file.write(&batch(&schema, 700, 700)).await.unwrap(); // ends a row group at 1000
        file.flush().await.unwrap(); // ends one at 1400
        file.write(&batch(&schema, 1400, 250)).await.unwrap();
        assert!(
            store.head(&path).await.is_err(),
            "visible before it was finished"
        );
        let metadata = file.finish().await.unwrap();

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
}
