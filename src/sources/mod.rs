//! Source readers: turn input objects into Arrow record batches, and everything
//! they cannot read into [`Reject`]s. Every row or file that comes in either goes
//! out or is rejected with a reason; [`FileStats`] counts both so the run report
//! can prove it.

pub mod csv;
pub mod timestamp;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;

use crate::schema::TableSchema;

/// Longest raw line kept in a rejects row; the full length is recorded beside it.
pub const MAX_RAW_BYTES: usize = 4096;

/// A row or file a source could not read.
#[derive(Debug, Clone)]
pub struct Reject {
    pub source: Arc<str>,
    pub source_key: Arc<str>,
    /// First line of the rejected record; `None` when the whole file is rejected.
    pub line_number: Option<i64>,
    /// The raw bytes, cut at [`MAX_RAW_BYTES`].
    pub raw: Vec<u8>,
    /// Length of the whole raw record (or of what could not be read).
    pub raw_bytes: u64,
    pub reason: String,
}

impl Reject {
    pub fn new(
        source: &Arc<str>,
        source_key: &Arc<str>,
        line_number: Option<u64>,
        raw: &[u8],
        reason: String,
    ) -> Self {
        Reject {
            source: source.clone(),
            source_key: source_key.clone(),
            line_number: line_number.map(|n| n as i64),
            raw: raw[..raw.len().min(MAX_RAW_BYTES)].to_vec(),
            raw_bytes: raw.len() as u64,
            reason,
        }
    }
}

/// Columns of every rejects table, in order; its schema file must declare exactly
/// these (checked when the job is loaded).
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_key", DataType::Utf8, false),
        Field::new("line_number", DataType::Int64, true),
        Field::new("raw_line", DataType::Utf8, false),
        Field::new("raw_line_bytes", DataType::Int64, false),
        Field::new("reason", DataType::Utf8, false),
    ]))
}

/// Checks that a rejects table's schema file declares the rejects columns.
pub fn check_rejects_schema(schema: &TableSchema) -> Result<(), String> {
    let want = rejects_schema();
    let have = schema.file_schema();
    let same = want.fields().len() == have.fields().len()
        && want
            .fields()
            .iter()
            .zip(have.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same && schema.partition_keys.is_empty() {
        Ok(())
    } else {
        let cols: Vec<String> = want
            .fields()
            .iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.name(),
                    crate::schema::arrow_to_glue(f.data_type()).unwrap_or_default()
                )
            })
            .collect();
        Err(format!(
            "a rejects table must have exactly these columns and no partition keys: {}",
            cols.join(", ")
        ))
    }
}

/// Builds a rejects batch. Raw bytes that are not UTF-8 are kept readable with
/// U+FFFD replacement characters (the reason says the line was not UTF-8).
pub fn rejects_batch(rejects: &[Reject]) -> RecordBatch {
    let mut source = StringBuilder::new();
    let mut key = StringBuilder::new();
    let mut line = Int64Builder::new();
    let mut raw = StringBuilder::new();
    let mut raw_bytes = Int64Builder::new();
    let mut reason = StringBuilder::new();
    for r in rejects {
        source.append_value(&r.source);
        key.append_value(&r.source_key);
        line.append_option(r.line_number);
        raw.append_value(String::from_utf8_lossy(&r.raw));
        raw_bytes.append_value(r.raw_bytes as i64);
        reason.append_value(&r.reason);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(key.finish()),
        Arc::new(line.finish()),
        Arc::new(raw.finish()),
        Arc::new(raw_bytes.finish()),
        Arc::new(reason.finish()),
    ];
    RecordBatch::try_new(rejects_schema(), columns).expect("rejects columns match their schema")
}

/// What happened to one input file; updated by the reader and the parsers.
#[derive(Debug, Default)]
pub struct FileStats {
    /// Bytes read from storage (compressed size for `.gz`).
    pub bytes_read: AtomicU64,
    /// Records (rows) found in the file, header excluded.
    pub records: AtomicU64,
    pub loaded: AtomicU64,
    pub rejected: AtomicU64,
    /// Empty lines between records (not rows).
    pub blank_lines: AtomicU64,
    /// Set when the file (or its unreadable rest) was rejected as a whole.
    pub file_error: Mutex<Option<String>>,
    /// The reader got to the end of the file (or rejected it).
    pub finished: AtomicBool,
}

/// A snapshot of [`FileStats`] for the run report.
#[derive(Debug, Clone, Serialize)]
pub struct FileCounts {
    pub bytes_read: u64,
    pub records: u64,
    pub loaded: u64,
    pub rejected: u64,
    pub blank_lines: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_error: Option<String>,
}

impl FileStats {
    pub fn counts(&self) -> FileCounts {
        FileCounts {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            loaded: self.loaded.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            blank_lines: self.blank_lines.load(Ordering::Relaxed),
            file_error: self.file_error.lock().map(|e| e.clone()).unwrap_or(None),
        }
    }

    pub fn set_file_error(&self, reason: &str) {
        if let Ok(mut e) = self.file_error.lock() {
            e.get_or_insert_with(|| reason.to_string());
        }
    }
}
