//! `dicom_instances` and `dicom_rejects` rows as Arrow batches, column by column in
//! the order their schema files (`schemas/`) declare.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Float64Builder, Int32Array, Int64Array,
    ListBuilder, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};

use super::decode::Instance;
use crate::model::WorkItem;
use crate::sources::columns::{batch, item_field, string_lists};

/// The object a row or reject is of: its key, its listing, and what was read of it.
#[derive(Debug, Clone)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub bytes_read: u64,
}

impl Object {
    pub fn of(item: &WorkItem, bytes_read: u64) -> Self {
        Object {
            key: item.key.clone(),
            size: item.fingerprint.size,
            etag: item.fingerprint.etag.clone(),
            bytes_read,
        }
    }
}

/// An instance with where it came from.
#[derive(Debug, Clone)]
pub struct Row {
    pub object: Object,
    pub instance: Instance,
}

/// A file a DICOM source could not index.
#[derive(Debug, Clone)]
pub struct Reject {
    pub source: String,
    pub object: Object,
    pub stage: &'static str,
    pub reason: String,
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn float_lists<'a>(dt: &DataType, values: impl Iterator<Item = Option<&'a [f64]>>) -> ArrayRef {
    let mut b = ListBuilder::new(Float64Builder::new()).with_field(item_field(dt));
    for v in values {
        match v {
            Some(items) => {
                b.values().append_slice(items);
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

fn days(d: &NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
    (*d - epoch).num_days() as i32
}

fn dates(values: impl Iterator<Item = Option<NaiveDate>>) -> ArrayRef {
    Arc::new(
        values
            .map(|d| d.as_ref().map(days))
            .collect::<Date32Array>(),
    )
}

fn ints(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    Arc::new(values.collect::<Int32Array>())
}

fn floats(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(values.collect::<Float64Array>())
}

/// The column named `name` of `rows`; `None` for a name no column is built for.
fn instance_column(field: &Field, rows: &[Row]) -> Option<ArrayRef> {
    let dt = field.data_type();
    let i = || rows.iter().map(|r| &r.instance);
    macro_rules! text {
        ($f:ident) => {
            strings(i().map(|x| x.$f.as_deref()))
        };
    }
    macro_rules! list {
        ($f:ident) => {
            string_lists(dt, i().map(|x| x.$f.as_deref()))
        };
    }
    macro_rules! always_list {
        ($f:ident) => {
            string_lists(dt, i().map(|x| Some(x.$f.as_slice())))
        };
    }
    Some(match field.name().as_str() {
        "source_key" => strings(rows.iter().map(|r| Some(r.object.key.as_str()))),
        "object_size" => Arc::new(
            rows.iter()
                .map(|r| r.object.size as i64)
                .collect::<Int64Array>(),
        ),
        "object_etag" => strings(rows.iter().map(|r| r.object.etag.as_deref())),
        "header_bytes_read" => Arc::new(
            rows.iter()
                .map(|r| r.object.bytes_read as i64)
                .collect::<Int64Array>(),
        ),
        "sop_class_uid" => text!(sop_class_uid),
        "sop_class_name" => text!(sop_class_name),
        "sop_instance_uid" => text!(sop_instance_uid),
        "study_instance_uid" => text!(study_instance_uid),
        "series_instance_uid" => text!(series_instance_uid),
        "transfer_syntax_uid" => strings(i().map(|x| Some(x.transfer_syntax_uid.as_str()))),
        "transfer_syntax_name" => text!(transfer_syntax_name),
        "transfer_syntax_guessed" => Arc::new(
            i().map(|x| Some(x.transfer_syntax_guessed))
                .collect::<BooleanArray>(),
        ),
        "patient_id" => text!(patient_id),
        "accession_number" => text!(accession_number),
        "study_id" => text!(study_id),
        "patient_sex" => text!(patient_sex),
        "patient_age" => text!(patient_age),
        "patient_size" => floats(i().map(|x| x.patient_size)),
        "patient_weight" => floats(i().map(|x| x.patient_weight)),
        "study_date" => dates(i().map(|x| x.study_date)),
        "study_time" => text!(study_time),
        "series_date" => dates(i().map(|x| x.series_date)),
        "series_time" => text!(series_time),
        "acquisition_date" => dates(i().map(|x| x.acquisition_date)),
        "acquisition_time" => text!(acquisition_time),
        "performed_procedure_step_start_date" => {
            dates(i().map(|x| x.performed_procedure_step_start_date))
        }
        "performed_procedure_step_start_time" => text!(performed_procedure_step_start_time),
        "modality" => text!(modality),
        "modality_category" => strings(i().map(|x| x.modality_category)),
        "modalities_in_study" => list!(modalities_in_study),
        "body_part_examined" => text!(body_part_examined),
        "manufacturer" => text!(manufacturer),
        "manufacturer_model_name" => text!(manufacturer_model_name),
        "station_name" => text!(station_name),
        "study_description" => text!(study_description),
        "series_description" => text!(series_description),
        "series_number" => ints(i().map(|x| x.series_number)),
        "instance_number" => ints(i().map(|x| x.instance_number)),
        "rows" => ints(i().map(|x| x.rows)),
        "columns" => ints(i().map(|x| x.columns)),
        "bits_allocated" => ints(i().map(|x| x.bits_allocated)),
        "bits_stored" => ints(i().map(|x| x.bits_stored)),
        "samples_per_pixel" => ints(i().map(|x| x.samples_per_pixel)),
        "photometric_interpretation" => text!(photometric_interpretation),
        "number_of_frames" => ints(i().map(|x| x.number_of_frames)),
        "pixel_spacing" => float_lists(dt, i().map(|x| x.pixel_spacing.as_deref())),
        "slice_thickness" => floats(i().map(|x| x.slice_thickness)),
        "image_type" => list!(image_type),
        "burned_in_annotation" => Arc::new(
            i().map(|x| x.burned_in_annotation)
                .collect::<BooleanArray>(),
        ),
        "pixel_data_problem" => text!(pixel_data_problem),
        "has_pixel_data" => Arc::new(
            i().map(|x| Some(x.has_pixel_data))
                .collect::<BooleanArray>(),
        ),
        "specific_character_set" => list!(specific_character_set),
        "character_set_supported" => Arc::new(
            i().map(|x| Some(x.character_set_supported))
                .collect::<BooleanArray>(),
        ),
        "undecoded_attributes" => always_list!(undecoded_attributes),
        "invalid_attributes" => always_list!(invalid_attributes),
        "cleaned_attributes" => always_list!(cleaned_attributes),
        "deidentification_method_codes" => {
            string_lists(dt, i().map(|x| Some(x.deidentification.codes.as_slice())))
        }
        "deidentification_method" => strings(i().map(|x| Some(x.deidentification.method.as_str()))),
        _ => return None,
    })
}

/// The rows as a batch of `schema` (the table's schema file).
pub fn instances_batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
    batch(schema, "schemas/dicom_instances.toml", |f| {
        instance_column(f, rows)
    })
}

pub fn rejects_batch(schema: &SchemaRef, rejects: &[Reject]) -> RecordBatch {
    let r = || rejects.iter();
    batch(
        schema,
        "schemas/dicom_rejects.toml",
        |f| -> Option<ArrayRef> {
            Some(match f.name().as_str() {
                "source" => strings(r().map(|r| Some(r.source.as_str()))),
                "source_key" => strings(r().map(|r| Some(r.object.key.as_str()))),
                "object_size" => {
                    Arc::new(r().map(|r| r.object.size as i64).collect::<Int64Array>())
                }
                "object_etag" => strings(r().map(|r| r.object.etag.as_deref())),
                "bytes_read" => Arc::new(
                    r().map(|r| r.object.bytes_read as i64)
                        .collect::<Int64Array>(),
                ),
                "stage" => strings(r().map(|r| Some(r.stage))),
                "reason" => strings(r().map(|r| Some(r.reason.as_str()))),
                _ => return None,
            })
        },
    )
}
