//! The image source kind: one `image_inspections` row per inspection image (its
//! header, EXIF, quality metrics on a grayscale thumbnail, a perceptual and a
//! content hash); every object it cannot index is an `image_rejects` row. The
//! review flags are the job's SQL over these rows (`jobs/image_inspections.sql`),
//! since they compare an image with its station and with the others.
//!
//! ```text
//!  reader threads: whole object (≤ max_file_bytes) ─► parsers, one per core:
//!      magic bytes (format.rs) ─► header, limits ─► bounded decode (decode.rs;
//!      JPEGs in jpeg.rs, zune-jpeg reading through zune_input.rs)
//!      ─► gray thumbnail (gray.rs; box_rows_avx2.rs) ─► metrics, dHash
//!      (metrics.rs); EXIF (exif.rs); SHA-256 of the bytes ─► rows.rs
//! ```
//!
//! The source's memory is bounded whatever the number of files: at most
//! `readers` objects being read, [`Source::UNITS_IN_FLIGHT`] waiting, and one
//! decode per core (each within `max_decode_bytes`, checked from the header
//! before any pixel is allocated; a parser keeps its last gray plane for its
//! next JPEG, which is decoded into it, and frees it before decoding any other
//! format). The rows are another matter: `jobs/image_inspections.sql` compares
//! each image with its station and with every other, so the run holds one row
//! per image until its window functions are done (the peak rose from 98 to
//! 122 MiB between 300 and 2 000 JPEGs, docs/benchmarks.md, Images). No pixel
//! leaves the share: the rows hold numbers and hashes only.

pub mod bmp;
#[cfg(target_arch = "x86_64")]
mod box_rows_avx2;
pub mod decode;
pub mod exif;
pub mod format;
pub mod gray;
pub mod jpeg;
pub mod metrics;
pub mod options;
pub mod raster;
pub mod rle;
pub mod rows;
pub mod tiff;
pub mod zune_input;

use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use sha2::{Digest, Sha256};

use crate::discover::ItemStats;

use crate::model::WorkItem;
use crate::model::schema::TableSchema;
use crate::sources::{Emitter, ItemInput, Parsed, Parser, ReadError, Source};
use decode::{Bounds, Stage};
use format::Format;
use options::{ImageOptions, Recognise};
use rows::{Object, Reject, Row};

const INSPECTIONS_SCHEMA: &str = include_str!("../../../schemas/image_inspections.toml");
const REJECTS_SCHEMA: &str = include_str!("../../../schemas/image_rejects.toml");

/// Rows a parser gathers before it hands on a batch.
const BATCH_ROWS: usize = 256;

/// An image source of a job.
#[derive(Debug)]
pub struct ImageSource {
    name: String,
    options: ImageOptions,
    station: regex::Regex,
    schema: SchemaRef,
    rejects_schema: SchemaRef,
}

/// One object's bytes, for a parser.
pub struct File {
    object: Object,
    bytes: Vec<u8>,
    stats: Arc<ItemStats>,
}

impl ImageSource {
    fn inspections_table() -> TableSchema {
        TableSchema::parse(INSPECTIONS_SCHEMA, "schemas/image_inspections.toml")
            .expect("the built-in image_inspections schema is valid (a unit test reads it)")
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            max_pixels: self.options.max_pixels,
            max_decode_bytes: self.options.max_decode_bytes.as_u64(),
        }
    }

    fn reject(&self, object: Object, stage: Stage, reason: String) -> Reject {
        Reject {
            source: self.name.clone(),
            object,
            stage,
            reason,
        }
    }
}

impl Source for ImageSource {
    const FORMAT: &'static str = "image";
    const SUFFIXES: Option<&'static [&'static str]> = Some(format::SUFFIXES);
    // Units are whole files: few wait, so memory stays a few files per core.
    const UNITS_IN_FLIGHT: usize = 4;
    // A file takes tens of milliseconds to decode, and the job's window functions
    // poll both partitions from one task.
    const PARSE_ON_RAYON: bool = true;

    type Options = ImageOptions;
    type Unit = File;
    type Reject = Reject;
    type Parser = ImageParser;

    fn new(name: &str, options: ImageOptions) -> Result<Self, String> {
        options.check()?;
        Ok(ImageSource {
            name: name.to_string(),
            station: options.station()?,
            options,
            schema: Self::inspections_table().measured_schema(),
            rejects_schema: Self::rejects_table().file_schema(),
        })
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn rejects_table() -> TableSchema {
        TableSchema::parse(REJECTS_SCHEMA, "schemas/image_rejects.toml")
            .expect("the built-in image_rejects schema is valid (a unit test reads it)")
    }

    fn rejects_batch(&self, rejects: Vec<Reject>) -> RecordBatch {
        rows::rejects_batch(&self.rejects_schema, &rejects)
    }

    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Reject {
        self.reject(Object::of(item), Stage::Read, reason.to_string())
    }

    fn readers(&self) -> usize {
        self.options.readers
    }

    fn reads_every_key(&self) -> bool {
        self.options.recognise == Recognise::Content
    }

    fn read(&self, input: &ItemInput<'_>, out: &mut Emitter<'_, Self>) -> Result<(), ReadError> {
        let object = Object::of(input.item);
        let max = self.options.max_file_bytes.as_u64();
        if object.size > max {
            let reason = format!("{} bytes, over max_file_bytes ({max})", object.size);
            input.stats.set_item_error(&reason);
            return out.reject(self.reject(object, Stage::Read, reason));
        }
        let mut pinned = input.open()?;
        let mut bytes = Vec::with_capacity(object.size as usize);
        // A file that ends early was truncated while it was read (the host
        // rejects it as changed); any other error is storage's, and fails the run.
        pinned
            .reader
            .read_to_end(&mut bytes)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => ReadError::Changed(e.to_string()),
                _ => ReadError::Storage(format!("reading {}: {e}", object.key)),
            })?;
        out.unit(File {
            object,
            bytes,
            stats: input.stats.clone(),
        })
    }

    fn parser(&self) -> ImageParser {
        ImageParser {
            source: self.name.clone(),
            schema: self.schema.clone(),
            station: self.station.clone(),
            bounds: self.bounds(),
            thumbnail_long_side: self.options.thumbnail_long_side as usize,
            recognise: self.options.recognise,
            rows: Vec::new(),
            spare: Vec::new(),
        }
    }
}

/// Indexes files into rows, a batch at a time.
pub struct ImageParser {
    source: String,
    schema: SchemaRef,
    station: regex::Regex,
    bounds: Bounds,
    thumbnail_long_side: usize,
    recognise: Recognise,
    rows: Vec<Row>,
    /// The last image's gray plane, for the next decode.
    spare: Vec<u8>,
}

impl ImageParser {
    fn flush(&mut self) -> Option<RecordBatch> {
        if self.rows.is_empty() {
            return None;
        }
        let batch = rows::inspections_batch(&self.schema, &self.rows);
        self.rows.clear();
        Some(batch)
    }

    /// One file's row, or the stage and reason it was refused at.
    fn index(&mut self, file: &File) -> Result<Row, decode::Refused> {
        let format = Format::sniff(&file.bytes).ok_or_else(|| decode::Refused {
            stage: Stage::Recognise,
            reason: match self.recognise {
                Recognise::Suffix => "not an image: its first bytes are no JPEG, PNG, TIFF, BMP or WebP signature (selected by its suffix)".into(),
                Recognise::Content => "not an image: its first bytes are no JPEG, PNG, TIFF, BMP or WebP signature".into(),
            },
        })?;
        let spare = std::mem::take(&mut self.spare);
        let decoded = decode::decode(format, &file.bytes, &self.bounds, spare)?;
        let (tw, th) = gray::thumbnail_size(
            decoded.header.width as usize,
            decoded.header.height as usize,
            self.thumbnail_long_side,
        );
        let thumbnail = gray::resize(&decoded.gray, tw, th);
        // The next JPEG is decoded into this plane (decode.rs, `zeroed`).
        self.spare = decoded.gray.pixels;
        let key = &file.object.key;
        // kamadak-exif parses untrusted bytes too: a panic there is the EXIF
        // block's failure, not the image's.
        let exif = catch_unwind(AssertUnwindSafe(|| exif::read(format, &file.bytes)))
            .unwrap_or_else(|_| exif::Exif {
                error: Some("EXIF: the reader failed on this block (it panicked)".into()),
                ..exif::Exif::default()
            });
        Ok(Row {
            sha256: hex(&Sha256::digest(&file.bytes)),
            suffix_matches: Format::of_suffix(key).map(|named| named == format),
            exif,
            station: self
                .station
                .captures(key)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_string()),
            thumbnail: (tw, th),
            metrics: metrics::measure(&thumbnail),
            header: decoded.header,
            object: file.object.clone(),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Parser for ImageParser {
    type Unit = File;
    type Reject = Reject;

    fn parse(&mut self, file: File) -> Parsed<Reject> {
        match self.index(&file) {
            Ok(row) => {
                file.stats.count(1, 0);
                self.rows.push(row);
                let batch = (self.rows.len() >= BATCH_ROWS)
                    .then(|| self.flush())
                    .flatten();
                Parsed {
                    batch,
                    rejects: vec![],
                }
            }
            Err(refused) => {
                file.stats.count(0, 1);
                Parsed {
                    batch: None,
                    rejects: vec![Reject {
                        source: self.source.clone(),
                        object: file.object,
                        stage: refused.stage,
                        reason: refused.reason,
                    }],
                }
            }
        }
    }

    fn finish(&mut self) -> Option<RecordBatch> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_column_has_a_builder_of_its_type() {
        let table = ImageSource::inspections_table();
        let schema = table.measured_schema();
        assert!(schema.fields().len() < table.table_schema().fields().len());
        assert!(schema.field_with_name("capture_date").is_ok());
        assert!(
            schema.field_with_name("needs_review").is_err(),
            "derived by SQL"
        );
        let rejects = ImageSource::rejects_table().file_schema();
        assert_eq!(
            rows::rejects_batch(&rejects, &[]).num_columns(),
            rejects.fields().len()
        );
        let batch = rows::inspections_batch(&schema, &[]);
        assert_eq!(batch.num_columns(), schema.fields().len());
    }
}
