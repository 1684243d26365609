//! Rows of partitions that come back after their file was closed, kept on local
//! disk until the writer's end, so that each partition is written as one file
//! whatever the order of the input.
//!
//! The writer keeps a few files open within its memory budget and closes the
//! least recently used one when a new partition needs room. Time-ordered logs
//! never come back to a closed partition, and cost nothing here. Unordered input
//! does: those rows are appended to one Arrow IPC file, indexed by partition, and
//! at the end each such partition's closed file and its spilled rows are written
//! again as one file ([`super::TableWriter::finish`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;

use crate::base::error::{Error, Result};

/// Spilled rows, by partition values.
pub struct Regroup {
    schema: SchemaRef,
    dir: tempfile::TempDir,
    writer: Option<FileWriter<BufWriter<File>>>,
    batches: usize,
    index: BTreeMap<Vec<String>, Vec<usize>>,
}

impl Regroup {
    pub fn new(schema: SchemaRef) -> Result<Self> {
        Ok(Regroup {
            schema,
            dir: tempfile::Builder::new()
                .prefix("naslake-regroup-")
                .tempdir()?,
            writer: None,
            batches: 0,
            index: BTreeMap::new(),
        })
    }

    /// Keeps `batch` (rows of one partition, in the file columns) for the end.
    pub fn push(&mut self, values: &[String], batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let file = File::create(self.path())?;
            self.writer = Some(FileWriter::try_new(BufWriter::new(file), &self.schema)?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(batch)?;
        }
        self.index
            .entry(values.to_vec())
            .or_default()
            .push(self.batches);
        self.batches += 1;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("rows.arrow")
    }

    /// Ends the spill; its rows are read back partition by partition.
    pub fn finish(mut self) -> Result<Regrouped> {
        if let Some(mut w) = self.writer.take() {
            w.finish()?;
        }
        let reader = FileReader::try_new(BufReader::new(File::open(self.path())?), None)?;
        Ok(Regrouped {
            reader,
            index: std::mem::take(&mut self.index),
            _dir: self.dir,
        })
    }
}

/// The spill, read back.
pub struct Regrouped {
    reader: FileReader<BufReader<File>>,
    pub index: BTreeMap<Vec<String>, Vec<usize>>,
    _dir: tempfile::TempDir,
}

impl Regrouped {
    /// Spilled batch `i`.
    pub fn batch(&mut self, i: usize) -> Result<RecordBatch> {
        self.reader.set_index(i)?;
        match self.reader.next() {
            Some(b) => Ok(b?),
            None => Err(Error::Accounting(format!(
                "spilled batch {i} is missing from the writer's spill file"
            ))),
        }
    }
}
