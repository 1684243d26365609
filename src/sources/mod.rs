//! Sources: the extract step. A source kind turns work items (objects, or paths
//! its own discovery finds) into Arrow record batches, and everything it cannot
//! read into rejects rows of its own rejects table, with a reason.
//!
//! A kind is one folder here implementing [`Source`]; registering it is one line in
//! [`Registry::builtin`]. The host around it ([`host`]) owns the reader threads, the
//! bounded channels, the DataFusion partitions and the accounting, so the runner,
//! the report, the rejects writer and the commit know no kind by name.
//!
//! ```text
//!  discovery ──► items ──► reader threads (Source::read) ──► units ──► parsers (one per partition) ──► batches
//!                               │ item rejects                          │ row rejects
//!                               └───────────────────────────────────────┴──► rejects channel (RecordBatch)
//! ```
//!
//! The accounting rule: for every item, `records = loaded + rejected` ([`crate::discover::ItemStats`]),
//! and every rejected record, plus every item with an `item_error`, is one rejects
//! row. The host adds that every unit of every item was parsed and that no partition
//! stopped before the end ([`Drain`]). The runner checks all of it before anything
//! is committed.

pub mod acl;
pub mod columns;
pub mod csv;
pub mod dicom;
pub mod host;
pub mod image;
pub mod object;
pub mod sniff;

use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;

use crate::discover::{ItemSink, ObjectFilter};

use crate::base::error::{Error, Result};
pub use crate::discover::names::KeyNames;
use crate::model::WorkItem;
use crate::model::schema::TableSchema;
pub use host::{Drain, Feed};
pub use object::{ItemInput, PinnedRead, ReadError};
use serde::{Deserialize, Serialize};

/// What every source has; the rest of `sources.NAME` is its kind's options.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SourceSpec {
    /// The source kind (`csv`, …).
    pub format: String,
    /// Key prefix under the job's input location (sources that list objects).
    #[serde(default)]
    pub prefix: String,
    /// Accepted key endings, compared case-insensitively; the kind's by default.
    #[serde(default)]
    pub suffixes: Option<Vec<String>>,
    /// A run that finds nothing to read for this source goes on (and, with
    /// `overwrite`, empties the table). Off by default: a typo, an unmounted share
    /// or an access point that lists nothing must not empty a production table.
    #[serde(default)]
    pub allow_empty: bool,
    /// The kind's own options.
    #[serde(flatten)]
    pub options: toml::Table,
}

/// The keys every source takes, for messages.
pub const COMMON_SOURCE_KEYS: &str = "format, prefix, suffixes, allow_empty";

/// One source kind.
pub trait Source: Debug + Send + Sync + Sized + 'static {
    /// `format = "…"` in a job spec.
    const FORMAT: &'static str;
    /// Key endings read when the spec names no `suffixes`. `None` for a kind that
    /// finds its items itself ([`Source::discover`]), not in a listing of the input.
    const SUFFIXES: Option<&'static [&'static str]>;
    /// Units waiting in the channel to the parsers. With the unit size this
    /// bounds buffered input: at most this many wait, plus up to a send's units
    /// ([`Source::UNITS_PER_SEND`], clamped to this) gathered by each reader and
    /// as many taken by each partition.
    const UNITS_IN_FLIGHT: usize = 4;
    /// Units a reader gathers before it hands them to the parsers in one send
    /// (sooner when it has no item left to read right now; never more than
    /// `UNITS_IN_FLIGHT`). Each send wakes a parser, and a full channel wakes a
    /// reader when it drains: for kinds whose units take microseconds to parse
    /// (one DICOM header), one send per unit spends more on those wake-ups than
    /// on the units.
    const UNITS_PER_SEND: usize = 1;
    /// Parse each unit on rayon's pool (one thread per core) rather than in the
    /// partition's stream. For kinds whose units take long to parse (a whole
    /// image): an operator that polls every partition from one task (the
    /// sort-preserving merge under a window function) would otherwise parse them
    /// one after the other, and the pool keeps to one parse per core whatever the
    /// number of partitions. Off for kinds of many quick units (CSV chunks), which
    /// keep the batch on the thread that writes it.
    const PARSE_ON_RAYON: bool = false;

    /// The kind's own options: the keys of `sources.NAME` other than the ones every
    /// source has (`format`, `prefix`, `suffixes`, `allow_empty`). Unknown keys are
    /// errors (`#[serde(deny_unknown_fields)]`).
    type Options: serde::de::DeserializeOwned;
    /// A piece of parallel work the reader hands to the parsers (a chunk of whole
    /// CSV records; one file's header bytes).
    type Unit: Send + 'static;
    /// A record or item the source could not read.
    type Reject: Send + 'static;
    type Parser: Parser<Unit = Self::Unit, Reject = Self::Reject>;

    /// A source named `name` in the spec, from its options; the error names the key.
    fn new(name: &str, options: Self::Options) -> std::result::Result<Self, String>;

    /// The rows' columns, lineage (`source_key`, …) included.
    fn schema(&self) -> SchemaRef;

    /// The kind's rejects table: its columns and comments, from `schemas/`.
    fn rejects_table() -> TableSchema;
    /// Rejects as rows of [`Source::rejects_table`]'s columns.
    fn rejects_batch(&self, rejects: Vec<Self::Reject>) -> RecordBatch;
    /// The reject of an item the host could not read at all (it changed or vanished
    /// after it was listed).
    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Self::Reject;

    /// Items read at once (each reader is a thread; I/O-bound kinds want several).
    fn readers(&self) -> usize {
        1
    }
    /// Reads one item: its I/O and the sequential part of extracting it, sending
    /// units and item-level rejects to `out`. It counts what it finds in
    /// `input.stats`; the parsers count the rest.
    fn read(&self, input: &ItemInput<'_>, out: &mut Emitter<'_, Self>) -> Result<(), ReadError>;
    /// A parser, one per partition of the source's table.
    fn parser(&self) -> Self::Parser;

    /// A kind that recognises its objects by their content reads every key under
    /// the prefix when the spec names no `suffixes`.
    fn reads_every_key(&self) -> bool {
        false
    }

    /// A check of the input before discovery lists anything (so that a run that
    /// must not go on stops before it has named a single object); `Err` says why.
    fn before_listing<'a>(
        &'a self,
        input: &'a crate::storage::Location,
        filter: &'a ObjectFilter,
    ) -> BoxFuture<'a, Result<()>> {
        let _ = (input, filter);
        Box::pin(async { Ok(()) })
    }

    /// The table mapping a kind's disguised keys back to the real ones
    /// (`FORMAT_key_links`, written when a job declares it); `None` for a kind
    /// that disguises no keys.
    fn key_links_table() -> Option<TableSchema> {
        None
    }

    /// The disguise of a kind whose object keys may identify people (see
    /// [`crate::discover::names`]); `None` (the default) calls objects by their keys. `prefix` is
    /// the source's configured key prefix, which the job spec shows already.
    fn key_names<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, std::result::Result<Option<Arc<dyn KeyNames>>, String>> {
        let _ = prefix;
        Box::pin(async { Ok(None) })
    }

    /// The `[sources.NAME]` block that reads a file this kind recognises, for
    /// `naslake sniff`; `None` (the default) when the kind describes no files.
    fn sniff(sample: &sniff::Sample<'_>) -> Option<std::result::Result<sniff::Sniffed, String>> {
        let _ = sample;
        None
    }

    /// Tables the kind offers the job's SQL besides its rows, read as
    /// `SOURCE.NAME` (the ACL kind's principals, shares, effective access).
    /// `rows` names the job's table that holds this source's rows as they are,
    /// when the job has one: a relation may read them back. None by default.
    fn relations(&self, rows: Option<&str>) -> Vec<Relation> {
        let _ = rows;
        Vec::new()
    }

    /// Discovery of a kind whose `SUFFIXES` is `None`; returns where it looked.
    /// `input` is the job's input location, when it has one (a kind may read
    /// there: a local root to walk, a listing to map).
    fn discover<'a>(
        &'a self,
        input: Option<&'a crate::storage::Location>,
        sink: &'a mut ItemSink,
    ) -> BoxFuture<'a, Result<String>> {
        let _ = (input, sink);
        Box::pin(async {
            Err(Error::config(format!(
                "source kind `{}` lists objects and has no discovery of its own",
                Self::FORMAT
            )))
        })
    }
}

/// A table a source offers besides its rows ([`Source::relations`]).
pub struct Relation {
    pub name: &'static str,
    pub table: Arc<dyn datafusion::catalog::TableProvider>,
}

/// Turns a source's units into batches, on one partition of its table.
pub trait Parser: Send + 'static {
    type Unit;
    type Reject;
    fn parse(&mut self, unit: Self::Unit) -> Parsed<Self::Reject>;
    /// Rows held back when the input ends (a parser that batches small units).
    fn finish(&mut self) -> Option<RecordBatch> {
        None
    }
}

/// What one unit gave.
pub struct Parsed<R> {
    pub batch: Option<RecordBatch>,
    pub rejects: Vec<R>,
}

/// Where a source's reader sends its work: units to the parsers, rejects to the
/// rejects writer. Both block while the consumer is behind (bounded channels).
/// Units go [`Source::UNITS_PER_SEND`] at a time; the host sends what is
/// gathered before its reader waits for an item, and after its last.
pub struct Emitter<'a, S: Source> {
    source: &'a S,
    units: &'a async_channel::Sender<host::Sent<S::Unit>>,
    rejects: &'a async_channel::Sender<RecordBatch>,
    abort: &'a std::sync::atomic::AtomicBool,
    /// The stats of the item being read, which count its units in flight.
    pub(crate) item: Option<Arc<crate::discover::ItemStats>>,
    /// Units not sent yet, each counted in its item's pending units.
    gathered: host::Sent<S::Unit>,
}

impl<'a, S: Source> Emitter<'a, S> {
    pub(crate) fn new(
        source: &'a S,
        units: &'a async_channel::Sender<host::Sent<S::Unit>>,
        rejects: &'a async_channel::Sender<RecordBatch>,
        abort: &'a std::sync::atomic::AtomicBool,
    ) -> Self {
        Emitter {
            source,
            units,
            rejects,
            abort,
            item: None,
            gathered: Vec::new(),
        }
    }

    /// Hands a unit to the parsers (with the next send); `Cancelled` when nobody
    /// reads any more (the job's SQL stopped early, or the run is failing).
    pub fn unit(&mut self, unit: S::Unit) -> Result<(), ReadError> {
        use std::sync::atomic::Ordering;
        if self.abort.load(Ordering::Acquire) {
            return Err(ReadError::Cancelled);
        }
        let stats = self
            .item
            .clone()
            .ok_or_else(|| ReadError::Storage("a unit sent outside an item".into()))?;
        stats.pending_units.fetch_add(1, Ordering::AcqRel);
        self.gathered.push((unit, stats));
        if self.gathered.len() >= per_send::<S>() {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Sends the units gathered so far; `Cancelled` when nobody reads any more.
    /// Units that could not be sent are dropped still counted as pending, so
    /// their items never count as done (the run fails).
    pub(crate) fn flush(&mut self) -> Result<(), ReadError> {
        use std::sync::atomic::Ordering;
        if self.gathered.is_empty() {
            return Ok(());
        }
        let sent = std::mem::replace(&mut self.gathered, Vec::with_capacity(per_send::<S>()));
        if self.abort.load(Ordering::Acquire) {
            return Err(ReadError::Cancelled);
        }
        self.units
            .send_blocking(sent)
            .map_err(|_closed| ReadError::Cancelled)
    }

    /// Sends rejects to the rejects table; an error when the rejects writer stopped
    /// (the reject could not be kept, so the run must fail).
    pub fn reject(&mut self, reject: S::Reject) -> Result<(), ReadError> {
        self.rejects
            .send_blocking(self.source.rejects_batch(vec![reject]))
            .map_err(|_| ReadError::RejectsClosed)
    }
}

/// Units per send: [`Source::UNITS_PER_SEND`], at least 1 and at most
/// [`Source::UNITS_IN_FLIGHT`].
pub(crate) fn per_send<S: Source>() -> usize {
    per_send_of(S::UNITS_PER_SEND, S::UNITS_IN_FLIGHT)
}

fn per_send_of(per_send: usize, in_flight: usize) -> usize {
    per_send.clamp(1, in_flight.max(1))
}

#[cfg(test)]
mod per_send_tests {
    #[test]
    fn a_send_is_at_least_one_unit_and_never_more_than_may_wait() {
        assert_eq!(super::per_send_of(16, 64), 16);
        assert_eq!(super::per_send_of(0, 64), 1);
        assert_eq!(super::per_send_of(100, 4), 4);
        assert_eq!(super::per_send_of(3, 0), 1);
    }
}

/// A source of a job, configured: the kind behind a type-erased face, so the runner
/// needs no kind's name.
pub trait AnySource: Debug + Send + Sync {
    /// Its name in the job spec (the table name the job's SQL reads).
    fn name(&self) -> &str;
    fn format(&self) -> &'static str;
    fn schema(&self) -> SchemaRef;
    fn rejects_table(&self) -> TableSchema;
    /// Its key links table ([`Source::key_links_table`]).
    fn key_links_table(&self) -> Option<TableSchema>;
    /// The objects it reads under the input; `None` for a kind with its own discovery.
    fn objects(&self) -> Option<&ObjectFilter>;
    /// Finds its items; returns where it looked.
    fn discover<'a>(
        &'a self,
        input: Option<&'a crate::storage::Location>,
        sink: &'a mut ItemSink,
    ) -> BoxFuture<'a, Result<String>>;
    /// How it names its objects where others read ([`Source::key_names`]).
    fn key_names(&self) -> BoxFuture<'_, Result<Option<Arc<dyn KeyNames>>>>;
    /// The tables it offers besides its rows ([`Source::relations`]).
    fn relations(&self, rows: Option<&str>) -> Vec<Relation>;
    /// Its rows as a streaming DataFusion table (read once per run).
    fn table(
        self: Arc<Self>,
        feed: Feed,
    ) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>>;
}

/// A source kind's value with what every source has.
#[derive(Debug)]
pub struct Configured<S> {
    pub(crate) name: String,
    pub(crate) objects: Option<ObjectFilter>,
    pub(crate) kind: S,
}

impl<S: Source> AnySource for Configured<S> {
    fn name(&self) -> &str {
        &self.name
    }
    fn format(&self) -> &'static str {
        S::FORMAT
    }
    fn schema(&self) -> SchemaRef {
        self.kind.schema()
    }
    fn rejects_table(&self) -> TableSchema {
        S::rejects_table()
    }
    fn key_links_table(&self) -> Option<TableSchema> {
        S::key_links_table()
    }
    fn objects(&self) -> Option<&ObjectFilter> {
        self.objects.as_ref()
    }
    fn discover<'a>(
        &'a self,
        input: Option<&'a crate::storage::Location>,
        sink: &'a mut ItemSink,
    ) -> BoxFuture<'a, Result<String>> {
        match (&self.objects, input) {
            (Some(filter), Some(input)) => Box::pin(async move {
                self.kind.before_listing(input, filter).await?;
                sink.names = self.key_names().await?;
                crate::discover::list_objects(input, filter, sink).await?;
                Ok(filter.prefix.clone())
            }),
            (Some(_), None) => Box::pin(async move {
                Err(Error::config(format!(
                    "source `{}` reads objects, but the job has no `input`",
                    self.name
                )))
            }),
            (None, input) => self.kind.discover(input, sink),
        }
    }
    fn key_names(&self) -> BoxFuture<'_, Result<Option<Arc<dyn KeyNames>>>> {
        let prefix = self.objects.as_ref().map_or("", |o| o.prefix.as_str());
        Box::pin(async move {
            self.kind
                .key_names(prefix)
                .await
                .map_err(|e| Error::Collect(format!("source `{}`: {e}", self.name)))
        })
    }
    fn relations(&self, rows: Option<&str>) -> Vec<Relation> {
        self.kind.relations(rows)
    }
    fn table(
        self: Arc<Self>,
        feed: Feed,
    ) -> datafusion::error::Result<Arc<dyn datafusion::catalog::TableProvider>> {
        Ok(Arc::new(host::table(self, feed)?))
    }
}

type Configure = fn(&str, &SourceSpec) -> std::result::Result<Arc<dyn AnySource>, String>;
type Sniff = fn(&sniff::Sample<'_>) -> Option<std::result::Result<sniff::Sniffed, String>>;

/// The source kinds a run can use, by `format`.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<Kind>,
}

#[derive(Clone)]
struct Kind {
    format: &'static str,
    configure: Configure,
    sniff: Sniff,
}

impl Registry {
    /// Every kind naslake ships. A new kind is one line here.
    pub fn builtin() -> Self {
        Registry::default()
            .with::<csv::CsvSource>()
            .with::<dicom::DicomSource>()
            .with::<acl::AclSource>()
            .with::<image::ImageSource>()
    }

    /// Adds a kind (a later kind of the same format replaces an earlier one).
    pub fn with<S: Source>(mut self) -> Self {
        self.kinds.retain(|k| k.format != S::FORMAT);
        self.kinds.push(Kind {
            format: S::FORMAT,
            configure: configure::<S>,
            sniff: S::sniff,
        });
        self
    }

    pub fn formats(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.format).collect()
    }

    /// The block of the first kind that describes the sampled file; `None` when no
    /// kind does.
    pub fn sniff(
        &self,
        sample: &sniff::Sample<'_>,
    ) -> Option<std::result::Result<sniff::Sniffed, String>> {
        self.kinds.iter().find_map(|k| (k.sniff)(sample))
    }

    /// Configures source `name` of a spec; errors name the key at fault (relative
    /// to `sources.NAME`).
    pub fn configure(
        &self,
        name: &str,
        spec: &SourceSpec,
    ) -> std::result::Result<Arc<dyn AnySource>, String> {
        match self.kinds.iter().find(|k| k.format == spec.format) {
            Some(kind) => (kind.configure)(name, spec),
            None => Err(format!(
                "`format` is `{}`; known source kinds: {}",
                spec.format,
                self.formats().join(", ")
            )),
        }
    }
}

fn configure<S: Source>(
    name: &str,
    spec: &SourceSpec,
) -> std::result::Result<Arc<dyn AnySource>, String> {
    let options: S::Options = toml::Value::Table(spec.options.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())?;
    let kind = S::new(name, options)?;
    let objects = match S::SUFFIXES {
        Some(defaults) => {
            let suffixes = spec.suffixes.clone().unwrap_or_else(|| {
                if kind.reads_every_key() {
                    Vec::new()
                } else {
                    defaults.iter().map(|s| s.to_string()).collect()
                }
            });
            if suffixes.iter().any(|x| x.is_empty()) {
                return Err("`suffixes`: an empty suffix would match every key".into());
            }
            Some(ObjectFilter {
                prefix: spec.prefix.clone(),
                suffixes,
            })
        }
        None => {
            if !spec.prefix.is_empty() || spec.suffixes.is_some() {
                return Err(format!(
                    "`prefix` and `suffixes` select listed objects; a `{}` source finds its items itself",
                    S::FORMAT
                ));
            }
            None
        }
    };
    Ok(Arc::new(Configured {
        name: name.to_string(),
        objects,
        kind,
    }))
}
