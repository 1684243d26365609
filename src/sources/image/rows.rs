//! `image_inspections` (the measured columns) and `image_rejects` rows as Arrow
//! batches, column by column in the order their schema files (`schemas/`) declare.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};

use super::decode::{Header, Stage};
use super::exif::Exif;
use super::metrics::Metrics;
use crate::model::WorkItem;
use crate::sources::columns::batch;

/// The object a row or reject is of, as listed.
#[derive(Debug, Clone)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    /// Microseconds since the epoch, UTC.
    pub last_modified: Option<i64>,
}

impl Object {
    pub fn of(item: &WorkItem) -> Self {
        let last_modified = item
            .fingerprint
            .last_modified
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_micros());
        Object {
            key: item.key.clone(),
            size: item.fingerprint.size,
            etag: item.fingerprint.etag.clone(),
            last_modified,
        }
    }
}

/// Where a row's capture date comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureSource {
    ExifUtc,
    ExifLocal,
    LastModified,
}

impl CaptureSource {
    fn name(self) -> &'static str {
        match self {
            CaptureSource::ExifUtc => "exif_utc",
            CaptureSource::ExifLocal => "exif_local",
            CaptureSource::LastModified => "last_modified",
        }
    }
}

/// One indexed image.
#[derive(Debug, Clone)]
pub struct Row {
    pub object: Object,
    pub sha256: String,
    /// `None`: the key has no image suffix to compare.
    pub suffix_matches: Option<bool>,
    pub header: Header,
    pub exif: Exif,
    pub station: Option<String>,
    pub thumbnail: (usize, usize),
    pub metrics: Metrics,
}

impl Row {
    fn capture(&self) -> Capture {
        match self.exif.captured {
            Some(c) => (
                Some(c.micros()),
                if c.offset_minutes.is_some() {
                    CaptureSource::ExifUtc
                } else {
                    CaptureSource::ExifLocal
                },
                Some(c.local.date().format("%Y-%m-%d").to_string()),
            ),
            None => (
                None,
                CaptureSource::LastModified,
                self.object
                    .last_modified
                    .and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|t| t.date_naive().format("%Y-%m-%d").to_string()),
            ),
        }
    }
}

/// A file an image source could not index.
#[derive(Debug, Clone)]
pub struct Reject {
    pub source: String,
    pub object: Object,
    pub stage: Stage,
    pub reason: String,
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn ints(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    Arc::new(values.collect::<Int32Array>())
}

fn floats(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(values))
}

fn timestamps(f: &Field, values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(
        values
            .collect::<TimestampMicrosecondArray>()
            .with_timezone_opt(match f.data_type() {
                DataType::Timestamp(_, tz) => tz.clone(),
                _ => None,
            }),
    )
}

/// A row's capture: its time, where it came from, and its date (the partition).
type Capture = (Option<i64>, CaptureSource, Option<String>);

fn inspection_column(f: &Field, rows: &[Row], captures: &[Capture]) -> Option<ArrayRef> {
    let r = || rows.iter();
    let m = || rows.iter().map(|r| &r.metrics);
    Some(match f.name().as_str() {
        "source_key" => strings(r().map(|r| Some(r.object.key.as_str()))),
        "object_size" => Arc::new(r().map(|r| r.object.size as i64).collect::<Int64Array>()),
        "object_etag" => strings(r().map(|r| r.object.etag.as_deref())),
        "object_last_modified" => timestamps(f, r().map(|r| r.object.last_modified)),
        "content_sha256" => strings(r().map(|r| Some(r.sha256.as_str()))),
        "format" => strings(r().map(|r| Some(r.header.format.name()))),
        "suffix_matches" => Arc::new(r().map(|r| r.suffix_matches).collect::<BooleanArray>()),
        "width" => ints(r().map(|r| Some(r.header.width as i32))),
        "height" => ints(r().map(|r| Some(r.header.height as i32))),
        "color_type" => strings(r().map(|r| Some(r.header.color_type))),
        "bit_depth" => ints(r().map(|r| Some(i32::from(r.header.bit_depth)))),
        "jpeg_progressive" => Arc::new(r().map(|r| r.header.progressive).collect::<BooleanArray>()),
        "captured_at" => timestamps(f, captures.iter().map(|c| c.0)),
        "capture_time_source" => strings(captures.iter().map(|c| Some(c.1.name()))),
        "camera_make" => strings(r().map(|r| r.exif.make.as_deref())),
        "camera_model" => strings(r().map(|r| r.exif.model.as_deref())),
        "orientation" => ints(r().map(|r| r.exif.orientation)),
        "exif_error" => strings(r().map(|r| r.exif.error.as_deref())),
        "station" => strings(r().map(|r| r.station.as_deref())),
        "thumbnail_width" => ints(r().map(|r| Some(r.thumbnail.0 as i32))),
        "thumbnail_height" => ints(r().map(|r| Some(r.thumbnail.1 as i32))),
        "brightness_p1" => floats(m().map(|m| m.p1)),
        "brightness_p50" => floats(m().map(|m| m.p50)),
        "brightness_p99" => floats(m().map(|m| m.p99)),
        "dark_fraction" => floats(m().map(|m| m.dark_fraction)),
        "bright_fraction" => floats(m().map(|m| m.bright_fraction)),
        "rms_contrast" => floats(m().map(|m| m.rms_contrast)),
        "sharpness" => floats(m().map(|m| m.sharpness)),
        "entropy" => floats(m().map(|m| m.entropy)),
        "phash" => Arc::new(m().map(|m| m.dhash).collect::<Int64Array>()),
        // The partition key; an image with neither EXIF time nor a listed
        // modification time goes to Hive's default partition.
        "capture_date" => strings(captures.iter().map(|c| c.2.as_deref())),
        _ => return None,
    })
}

/// The rows as a batch of `schema` (the measured columns of the table's schema).
pub fn inspections_batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
    let captures: Vec<Capture> = rows.iter().map(Row::capture).collect();
    batch(schema, "schemas/image_inspections.toml", |f| {
        inspection_column(f, rows, &captures)
    })
}

pub fn rejects_batch(schema: &SchemaRef, rejects: &[Reject]) -> RecordBatch {
    let r = || rejects.iter();
    batch(
        schema,
        "schemas/image_rejects.toml",
        |f| -> Option<ArrayRef> {
            Some(match f.name().as_str() {
                "source" => strings(r().map(|r| Some(r.source.as_str()))),
                "source_key" => strings(r().map(|r| Some(r.object.key.as_str()))),
                "object_size" => {
                    Arc::new(r().map(|r| r.object.size as i64).collect::<Int64Array>())
                }
                "object_etag" => strings(r().map(|r| r.object.etag.as_deref())),
                "stage" => strings(r().map(|r| Some(r.stage.name()))),
                "reason" => strings(r().map(|r| Some(r.reason.as_str()))),
                _ => return None,
            })
        },
    )
}
