//! The DICOM source kind: one `dicom_instances` row per instance, from its header
//! only, de-identified; every object it cannot index is a `dicom_rejects` row.
//!
//! ```text
//!  reader threads: ranged reads ──► walk (window.rs, walk.rs) ──► kept elements ─┐
//!                                      │ stage + reason                           │
//!                                      └──► dicom_rejects                         ▼
//!  parsers (one per partition): dicom-rs decode + profile (decode.rs, deidentify.rs) ──► rows.rs
//! ```
//!
//! The walk is the only code that sees raw bytes and it trusts no declared length;
//! dicom-rs reads a data set naslake rewrote from what the walk kept (see
//! `walk.rs`). No value reaches a reason, a log line or a column unless the
//! profile (`options.rs`) lets it.

pub mod attributes;
pub mod decode;
pub mod deidentify;
pub mod keys;
pub mod locate;
pub mod options;
pub mod rows;
pub mod walk;
pub mod window;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::discover::{ItemStats, KeyNames, ObjectFilter};
use crate::storage::Location;
use futures::TryStreamExt;

use crate::model::WorkItem;
use crate::model::schema::TableSchema;
use crate::sources::{Emitter, ItemInput, Parsed, Parser, ReadError, Source};
use deidentify::{Key, KeySource};
use options::{DicomOptions, Keys, Recognise};
use rows::{Object, Reject, Row};
use walk::{Outcome, Walked};

const INSTANCES_SCHEMA: &str = include_str!("../../../schemas/dicom_instances.toml");
const REJECTS_SCHEMA: &str = include_str!("../../../schemas/dicom_rejects.toml");
const KEY_LINKS_SCHEMA: &str = include_str!("../../../schemas/dicom_key_links.toml");

/// The report's count (per file) of headers indexed with a pixel data problem.
pub const PIXEL_DATA_PROBLEMS: &str = "pixel_data_problems";

/// Rows a parser gathers before it hands on a batch.
const BATCH_ROWS: usize = 1024;

/// A DICOM source of a job.
#[derive(Debug)]
pub struct DicomSource {
    name: String,
    options: DicomOptions,
    schema: SchemaRef,
    rejects_schema: SchemaRef,
    /// The key from the environment, or (no key set) the sample key.
    key: Option<Key>,
    /// The Secrets Manager secret holding the key, fetched when first needed (once
    /// per run).
    secret: Option<(String, OnceCell<Result<Key, String>>)>,
}

/// One object's walked header, for a parser.
pub struct Header {
    object: Object,
    walked: Walked,
    pseudonyms: Key,
    stats: Arc<ItemStats>,
}

impl DicomSource {
    fn instances_table() -> TableSchema {
        TableSchema::parse(INSTANCES_SCHEMA, "schemas/dicom_instances.toml")
            .expect("the built-in dicom_instances schema is valid (a unit test reads it)")
    }

    /// The pseudonym key: the environment's, the secret's (fetched once), or (with
    /// neither) the sample key, which only the bundled samples may use.
    async fn key(&self) -> Result<Key, String> {
        if let Some(key) = &self.key {
            return Ok(key.clone());
        }
        let (id, fetched) = self
            .secret
            .as_ref()
            .expect("a DICOM source has a key or a secret naming one");
        fetched
            .get_or_init(|| async {
                deidentify::fetch_secret(id)
                    .await
                    .and_then(|v| Key::new(&v))
            })
            .await
            .clone()
    }

    fn reject(&self, object: Object, stage: &'static str, reason: String) -> Reject {
        Reject {
            source: self.name.clone(),
            object,
            stage,
            reason,
        }
    }
}

impl Source for DicomSource {
    const FORMAT: &'static str = "dicom";
    const SUFFIXES: Option<&'static [&'static str]> = Some(&[".dcm", ".dicom"]);
    const UNITS_IN_FLIGHT: usize = 64;
    // A header decodes in tens of microseconds; a send per header cost about as
    // much again in wake-ups (docs/benchmarks.md, DICOM headers).
    const UNITS_PER_SEND: usize = 16;

    type Options = DicomOptions;
    type Unit = Header;
    type Reject = Reject;
    type Parser = DicomParser;

    fn new(name: &str, options: DicomOptions) -> Result<Self, String> {
        options.check()?;
        let (key, secret) = match deidentify::key_source()? {
            None => (Some(Key::sample()), None),
            Some(KeySource::Value(v)) => {
                let key = Key::new(&v).map_err(|e| format!("{}: {e}", deidentify::KEY_VAR))?;
                (Some(key), None)
            }
            Some(KeySource::Secret(id)) => (None, Some((id, OnceCell::new()))),
        };
        Ok(DicomSource {
            name: name.to_string(),
            options,
            schema: Self::instances_table().file_schema(),
            rejects_schema: Self::rejects_table().file_schema(),
            key,
            secret,
        })
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn rejects_table() -> TableSchema {
        TableSchema::parse(REJECTS_SCHEMA, "schemas/dicom_rejects.toml")
            .expect("the built-in dicom_rejects schema is valid (a unit test reads it)")
    }

    fn key_links_table() -> Option<TableSchema> {
        Some(
            TableSchema::parse(KEY_LINKS_SCHEMA, "schemas/dicom_key_links.toml")
                .expect("the built-in dicom_key_links schema is valid (a unit test reads it)"),
        )
    }

    fn rejects_batch(&self, rejects: Vec<Reject>) -> RecordBatch {
        rows::rejects_batch(&self.rejects_schema, &rejects)
    }

    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Reject {
        self.reject(Object::of(item, 0), "read", reason.to_string())
    }

    fn readers(&self) -> usize {
        self.options.readers
    }

    fn reads_every_key(&self) -> bool {
        self.options.recognise == Recognise::Content
    }

    /// Without a key, every object the source would read must be one of the
    /// bundled samples (those whose header reads carry the sample mark), and
    /// there may be at most [`SAMPLES_AT_MOST`] of them: a share of real files
    /// stops here (exit 2), before any of its keys, which would be in clear as
    /// the samples' are, reaches a report, a plan or a log. Each object read is
    /// checked again (`read`).
    fn before_listing<'a>(
        &'a self,
        input: &'a Location,
        filter: &'a ObjectFilter,
    ) -> BoxFuture<'a, crate::base::error::Result<()>> {
        use crate::base::error::Error;
        Box::pin(async move {
            if self.options.deidentification.keys == Keys::Keep {
                return Ok(());
            }
            if !self.key().await.map_err(Error::Collect)?.sample {
                return Ok(());
            }
            let max = self
                .options
                .max_header_bytes
                .as_u64()
                .min(SAMPLE_HEADER_AT_MOST);
            let mut listing = input.list(&input.child(&filter.prefix));
            let mut selected = 0;
            while let Some(meta) = listing
                .try_next()
                .await
                .map_err(|e| crate::discover::withheld(&filter.prefix, &e))?
            {
                if !input
                    .relative(&meta.location)
                    .is_some_and(|k| filter.selects(&k))
                {
                    continue;
                }
                selected += 1;
                if selected > SAMPLES_AT_MOST {
                    return Err(Error::config(no_key()));
                }
                let head = input
                    .read_head(&meta.location, meta.size, max)
                    .await
                    .map_err(|e| match e {
                        Error::Storage(e) => Error::Collect(format!(
                            "reading an object to check that it is one of the samples failed ({}); its key is not shown, as no pseudonym key is set",
                            crate::discover::storage_kind(&e)
                        )),
                        other => other,
                    })?;
                let mut window = window::Ranged::new(
                    |r: std::ops::Range<u64>| Ok(head.slice(r.start as usize..r.end as usize)),
                    head.len() as u64,
                    self.options.first_read.as_u64(),
                    max,
                );
                if let Ok(walked) = walk::walk(&mut window, max)
                    && !is_sample(&walked)
                {
                    return Err(Error::config(no_key()));
                }
            }
            Ok(())
        })
    }

    /// Keys are pseudonymized with a key of the site's own; the samples, which
    /// run with the published sample key, keep theirs (they name no one).
    fn key_names<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<dyn KeyNames>>, String>> {
        Box::pin(async move {
            if self.options.deidentification.keys == Keys::Keep {
                return Ok(None);
            }
            let key = self.key().await?;
            if key.sample {
                return Ok(None);
            }
            Ok(Some(
                Arc::new(keys::KeyPseudonyms::new(key, prefix)) as Arc<dyn KeyNames>
            ))
        })
    }

    fn read(&self, input: &ItemInput<'_>, out: &mut Emitter<'_, Self>) -> Result<(), ReadError> {
        let pseudonyms = input
            .runtime()
            .block_on(self.key())
            .map_err(ReadError::Storage)?;
        let size = input.item.fingerprint.size;
        let max = self.options.max_header_bytes.as_u64();
        let mut window = window::Ranged::new(
            |range| input.read_range(range),
            size,
            self.options.first_read.as_u64(),
            max,
        );
        let walked = walk::walk(&mut window, max);
        let bytes_read = window.fetched();
        let (stage, reason) = match walked {
            Ok(walked) => {
                if pseudonyms.sample && !is_sample(&walked) {
                    return Err(ReadError::Storage(no_key()));
                }
                return out.unit(Header {
                    object: Object::of(input.item, bytes_read),
                    walked,
                    pseudonyms,
                    stats: input.stats.clone(),
                });
            }
            Err(Outcome::Failed(f)) => (f.stage.as_str(), f.reason),
            Err(Outcome::Io(ReadError::Changed(why))) => {
                ("read", format!("changed while reading: {why}"))
            }
            Err(Outcome::Io(e)) => return Err(e),
        };
        let reason = match self.options.recognise {
            Recognise::Suffix if stage == "recognise" => {
                format!("{reason} (selected by its suffix)")
            }
            _ => reason,
        };
        input.stats.set_item_error(&reason);
        out.reject(self.reject(Object::of(input.item, bytes_read), stage, reason))
    }

    fn parser(&self) -> DicomParser {
        DicomParser {
            source: self.name.clone(),
            schema: self.schema.clone(),
            profile: self.options.deidentification.clone(),
            applied: Arc::new(decode::Applied::of(&self.options.deidentification)),
            rows: Vec::new(),
        }
    }
}

/// Why a run without a key stops at an object that is not a sample.
fn no_key() -> String {
    format!(
        "no pseudonym key: set {} (at least {} bytes) or {} (an AWS Secrets Manager secret holding one); without a key only the bundled samples (samples/dicom) run",
        deidentify::KEY_VAR,
        deidentify::MIN_KEY_BYTES,
        deidentify::SECRET_VAR
    )
}

/// Objects a source without a key may read (the bundled samples are six).
const SAMPLES_AT_MOST: usize = 64;
/// Bytes of each read to check that it is a sample (theirs are small).
const SAMPLE_HEADER_AT_MOST: u64 = 1 << 20;

/// Whether a file says it is one of naslake's synthetic samples.
fn is_sample(walked: &Walked) -> bool {
    walked
        .raw(&attributes::DEIDENTIFICATION_METHOD)
        .map(|v| {
            String::from_utf8_lossy(v)
                .trim_end_matches([' ', '\0'])
                .to_string()
        })
        .is_some_and(|v| v == deidentify::SAMPLE_MARK)
}

/// Decodes headers into rows, a batch at a time.
pub struct DicomParser {
    source: String,
    schema: SchemaRef,
    profile: options::Profile,
    applied: Arc<decode::Applied>,
    rows: Vec<Row>,
}

impl DicomParser {
    fn flush(&mut self) -> Option<RecordBatch> {
        if self.rows.is_empty() {
            return None;
        }
        let batch = rows::instances_batch(&self.schema, &self.rows);
        self.rows.clear();
        Some(batch)
    }
}

impl Parser for DicomParser {
    type Unit = Header;
    type Reject = Reject;

    fn parse(&mut self, unit: Header) -> Parsed<Reject> {
        let cx = decode::Context {
            key: &unit.pseudonyms,
            profile: &self.profile,
            applied: &self.applied,
        };
        match decode::decode(&unit.walked, &cx) {
            Ok(instance) => {
                unit.stats.count(1, 0);
                if instance.pixel_data_problem.is_some() {
                    unit.stats.note(PIXEL_DATA_PROBLEMS, 1);
                }
                self.rows.push(Row {
                    object: unit.object,
                    instance,
                });
                let batch = (self.rows.len() >= BATCH_ROWS)
                    .then(|| self.flush())
                    .flatten();
                Parsed {
                    batch,
                    rejects: vec![],
                }
            }
            Err(decode::DecodeFailed) => {
                unit.stats.count(0, 1);
                Parsed {
                    batch: None,
                    rejects: vec![Reject {
                        source: self.source.clone(),
                        object: unit.object,
                        stage: "decode",
                        reason: "dicom-rs could not read the attributes kept from the header"
                            .into(),
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
        let schema = DicomSource::instances_table().file_schema();
        let batch = rows::instances_batch(
            &schema,
            &[Row {
                object: Object {
                    key: "a.dcm".into(),
                    size: 1,
                    etag: None,
                    bytes_read: 1,
                },
                instance: decode::Instance::default(),
            }],
        );
        assert_eq!(batch.num_rows(), 1);
        assert!(DicomSource::key_links_table().is_some());
        let rejects = DicomSource::rejects_table().file_schema();
        assert_eq!(
            rows::rejects_batch(&rejects, &[]).num_columns(),
            rejects.fields().len()
        );
    }
}
