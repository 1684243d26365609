//! The ACL source kind: who can read and change what on a share, one
//! `acl_entries` row per access control entry, from the ONTAP REST API or from a
//! POSIX file system; every path it cannot collect is an `acl_rejects` row.
//!
//! ```text
//!  discover: ONTAP walk (ontap/walk.rs) | input listing | local walk (posix/) ──► paths (+ found.rs notes)
//!  readers:  ONTAP permissions call (ontap/) | lstat + xattrs (posix/) ──► ObjectAcl (entry.rs)
//!  parsers:  rows.rs ──► acl_entries
//! ```
//!
//! Besides its rows it offers the job's SQL who is who and who can reach what
//! (`relations/`: `acl.principals`, `acl.memberships`, `acl.shares`,
//! `acl.effective_access`), from the directory (`directory/`), the SVM's shares
//! and groups (`ontap/shares.rs`) and the access check (`access.rs`).
//!
//! Principals (`principals.rs`) and rights (`rights.rs`) are normalised here so
//! that the rules in `jobs/acl_findings.sql` match NTFS, NFSv4 and POSIX entries
//! alike. This source does not read the job's input objects: it discovers its
//! own paths (the input is the POSIX root, the listing of `enumerate =
//! "listing"`, or where the ONTAP recording of the samples lies).

pub mod access;
pub mod directory;
pub mod entry;
pub mod found;
pub mod ontap;
pub mod options;
pub mod posix;
pub mod principals;
pub mod relations;
pub mod rights;
pub mod rows;
pub mod tls;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use futures::future::BoxFuture;

use crate::discover::{ItemSink, ItemStats, ObjectFilter};

use crate::base::error::{Error, Result};
use crate::model::WorkItem;
use crate::model::schema::TableSchema;
use crate::sources::{Emitter, ItemInput, Parsed, Parser, ReadError, Source};
use crate::storage::Location;
use entry::Origin;
use found::{Failure, Note, Notes, Stage};
use options::{AclOptions, Collect, Enumerate, Ontap};
use principals::NtfsNames;
use rows::{Collected, Reject, Snapshot};

const ENTRIES_SCHEMA: &str = include_str!("../../../schemas/acl_entries.toml");
const REJECTS_SCHEMA: &str = include_str!("../../../schemas/acl_rejects.toml");

/// Objects a parser gathers before it hands on a batch.
const BATCH_OBJECTS: usize = 512;

/// An ACL source of a job.
#[derive(Debug)]
pub struct AclSource {
    name: String,
    options: AclOptions,
    /// The ONTAP settings (environment over spec), resolved when the job loads.
    ontap: Option<Ontap>,
    schema: SchemaRef,
    rejects_schema: SchemaRef,
    snapshot: Snapshot,
    notes: Notes,
    /// Set by discovery before it sends the first path.
    collector: Arc<OnceLock<ontap::Collector>>,
    root: OnceLock<PathBuf>,
    names: posix::Names,
    /// What the relations read, gathered when one is first read.
    loader: Arc<relations::Loader>,
}

/// One object's permissions, or the rejects of a path, for a parser.
pub struct Unit {
    collected: Collected,
    stats: Arc<ItemStats>,
}

impl AclSource {
    fn entries_table() -> TableSchema {
        TableSchema::parse(ENTRIES_SCHEMA, "schemas/acl_entries.toml")
            .expect("the built-in acl_entries schema is valid (a unit test reads it)")
    }

    fn reject(&self, path: &str, failure: Failure) -> Reject {
        Reject {
            source: self.name.clone(),
            path: path.to_string(),
            failure,
        }
    }

    /// Checks the directory before the walk: that the export is there, or that
    /// the server takes the bind, so that a mistyped path or a refused bind
    /// stops the run at once rather than after hours of walking. The directory
    /// itself is read when a table first reads it (a job that declares none
    /// asks nothing more).
    async fn check_directory_first(&self, input: Option<&Location>) -> Result<()> {
        if let Some(spec) = &self.options.identities {
            relations::check_identities(spec, input)
                .await
                .map_err(Error::Collect)?;
        }
        if let Some(spec) = &self.options.ldap {
            relations::check_bind(spec).await.map_err(Error::Collect)?;
        }
        Ok(())
    }

    /// Keeps the job's input for the relations (an identity export under it).
    fn remember_input(&self, input: Option<&Location>) -> Result<()> {
        self.loader
            .input
            .set(input.cloned())
            .map_err(|_| Error::config("the ACL source was discovered twice in one run"))
    }

    fn collector(&self) -> std::result::Result<&ontap::Collector, ReadError> {
        self.collector.get().ok_or_else(|| {
            ReadError::Storage("the ONTAP client was not connected before reading".into())
        })
    }

    async fn discover_ontap(
        &self,
        input: Option<&Location>,
        sink: &mut ItemSink,
    ) -> Result<String> {
        let settings = self
            .ontap
            .clone()
            .expect("an ontap source resolves its settings in new()");
        let replay = match (&self.options.ontap.replay, input) {
            (Some(file), Some(input)) => Some((input, file.as_str())),
            (Some(_), None) => {
                return Err(Error::config(format!(
                    "source `{}`: `ontap.replay` names a file under the job's input, and the job has none",
                    self.name
                )));
            }
            (None, _) => None,
        };
        let names = NtfsNames::new(&self.options.group_names, settings.lookup_names)
            .map_err(Error::config)?;
        self.remember_input(input)?;
        let collector = ontap::Collector::connect(settings, names, replay).await?;
        let volume = collector.settings.volume_uuid.clone();
        let collector = match self.collector.set(collector) {
            Ok(()) => self.collector.get().expect("just set"),
            Err(_) => {
                return Err(Error::config(
                    "the ACL source was discovered twice in one run",
                ));
            }
        };
        self.check_directory_first(input).await?;
        match self.options.enumerate {
            Enumerate::Walk => {
                collector
                    .walk(self.options.limits(), sink, &self.notes)
                    .await?;
            }
            Enumerate::Listing => {
                let input = input.ok_or_else(|| {
                    Error::config(format!(
                        "source `{}`: `enumerate = \"listing\"` lists the job's input, and the job has none",
                        self.name
                    ))
                })?;
                let every_key = ObjectFilter {
                    prefix: String::new(),
                    suffixes: vec![],
                };
                crate::discover::list_objects(input, &every_key, sink).await?;
            }
        }
        tracing::info!(source = %self.name, requests = collector.requests_sent(), "ONTAP paths found");
        Ok(format!("ONTAP volume {volume}"))
    }

    async fn discover_posix(
        &self,
        input: Option<&Location>,
        sink: &mut ItemSink,
    ) -> Result<String> {
        self.remember_input(input)?;
        let input = input.filter(|i| i.is_local()).ok_or_else(|| {
            Error::config(format!(
                "source `{}` collects POSIX permissions: the job's `input` must be a local directory (an NFS mount of the volume)",
                self.name
            ))
        })?;
        let decoded =
            percent_encoding::percent_decode_str(input.prefix.as_ref()).decode_utf8_lossy();
        let root = PathBuf::from(format!("/{decoded}"));
        if self.root.set(root.clone()).is_err()
            || self
                .snapshot
                .volume
                .set(root.display().to_string())
                .is_err()
        {
            return Err(Error::config(
                "the ACL source was discovered twice in one run",
            ));
        }
        self.check_directory_first(Some(input)).await?;
        posix::walk(&root, self.options.limits(), sink, &self.notes).await?;
        Ok(root.display().to_string())
    }
}

impl Source for AclSource {
    const FORMAT: &'static str = "acl";
    const SUFFIXES: Option<&'static [&'static str]> = None;
    const UNITS_IN_FLIGHT: usize = 256;

    type Options = AclOptions;
    type Unit = Unit;
    type Reject = Reject;
    type Parser = AclParser;

    fn new(name: &str, options: AclOptions) -> std::result::Result<Self, String> {
        options.check()?;
        NtfsNames::new(&options.group_names, true)?;
        let ontap = match options.collect {
            Collect::Ontap => Some(options.ontap.resolve(options.ontap.replay.is_some())?),
            Collect::Posix => None,
        };
        let snapshot = Snapshot {
            origin: match options.collect {
                Collect::Ontap => Origin::Ontap,
                Collect::Posix => Origin::Posix,
            },
            svm: ontap.as_ref().map(|o| o.svm_uuid.clone()),
            volume: Arc::new(match &ontap {
                Some(o) => OnceLock::from(o.volume_uuid.clone()),
                None => OnceLock::new(),
            }),
            date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        };
        let loader = Arc::new(relations::Loader::new(name, &options, snapshot.clone()));
        Ok(AclSource {
            name: name.to_string(),
            options,
            ontap,
            schema: Self::entries_table().table_schema(),
            rejects_schema: Self::rejects_table().file_schema(),
            snapshot,
            notes: Notes::default(),
            collector: loader.collector.clone(),
            root: OnceLock::new(),
            names: posix::Names::default(),
            loader,
        })
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn rejects_table() -> TableSchema {
        TableSchema::parse(REJECTS_SCHEMA, "schemas/acl_rejects.toml")
            .expect("the built-in acl_rejects schema is valid (a unit test reads it)")
    }

    fn rejects_batch(&self, rejects: Vec<Reject>) -> RecordBatch {
        rows::rejects_batch(&self.rejects_schema, &rejects)
    }

    fn item_rejected(&self, item: &WorkItem, reason: &str) -> Reject {
        let stage = match self.options.collect {
            Collect::Ontap => Stage::Permissions,
            Collect::Posix => Stage::Attributes,
        };
        self.reject(&item.key, Failure::new(stage, reason))
    }

    fn readers(&self) -> usize {
        match &self.ontap {
            Some(o) => o.max_in_flight,
            None => self.options.posix_readers,
        }
    }

    fn discover<'a>(
        &'a self,
        input: Option<&'a Location>,
        sink: &'a mut ItemSink,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            match self.options.collect {
                Collect::Ontap => self.discover_ontap(input, sink).await,
                Collect::Posix => self.discover_posix(input, sink).await,
            }
        })
    }

    fn read(
        &self,
        input: &ItemInput<'_>,
        out: &mut Emitter<'_, Self>,
    ) -> std::result::Result<(), ReadError> {
        let key = &input.item.key;
        let found = match (self.notes.take(key), self.options.enumerate) {
            (Some(Note::Collect(found)), _) => found,
            (Some(Note::Refused(f)), _) => {
                input.stats.set_item_error(&f.reason);
                return out.reject(self.reject(key, f));
            }
            (None, Enumerate::Listing) => found::Found::of("file", None),
            (None, Enumerate::Walk) => {
                return Err(ReadError::Storage(format!(
                    "the walk sent {key} without its note (sent twice?)"
                )));
            }
        };
        let (path, collected) = match self.options.collect {
            Collect::Ontap => {
                let collector = self.collector()?;
                let path = match self.options.enumerate {
                    Enumerate::Walk => key.clone(),
                    Enumerate::Listing => collector.listed_path(key),
                };
                let collected = input
                    .runtime()
                    .block_on(collector.collect(&path, &found))
                    .map_err(|e| ReadError::Storage(e.to_string()))?;
                (path, collected)
            }
            Collect::Posix => {
                let root = self.root.get().ok_or_else(|| {
                    ReadError::Storage("the POSIX root was not set before reading".into())
                })?;
                (key.clone(), posix::collect(root, key, &self.names))
            }
        };
        if let Some(f) = found.walk_failure {
            input.stats.count(0, 1);
            out.reject(self.reject(&path, f))?;
        }
        match collected {
            Ok(acl) => out.unit(Unit {
                collected: Collected {
                    sensitive: self.options.is_sensitive(&acl.path),
                    acl,
                    collected_at_micros: chrono::Utc::now().timestamp_micros(),
                },
                stats: input.stats.clone(),
            }),
            Err(f) => {
                input.stats.set_item_error(&f.reason);
                out.reject(self.reject(&path, f))
            }
        }
    }

    fn relations(&self, rows: Option<&str>) -> Vec<crate::sources::Relation> {
        relations::relations(&self.loader, rows, &self.options)
    }

    fn parser(&self) -> AclParser {
        AclParser {
            schema: self.schema.clone(),
            snapshot: self.snapshot.clone(),
            objects: Vec::new(),
        }
    }
}

/// Builds rows from collected objects, a batch at a time.
pub struct AclParser {
    schema: SchemaRef,
    snapshot: Snapshot,
    objects: Vec<Collected>,
}

impl AclParser {
    fn flush(&mut self) -> Option<RecordBatch> {
        if self.objects.is_empty() {
            return None;
        }
        let batch = rows::entries_batch(&self.schema, &self.snapshot, &self.objects);
        self.objects.clear();
        Some(batch)
    }
}

impl Parser for AclParser {
    type Unit = Unit;
    type Reject = Reject;

    fn parse(&mut self, unit: Unit) -> Parsed<Reject> {
        let rows = rows::row_count(std::slice::from_ref(&unit.collected)) as u64;
        unit.stats.count(rows, 0);
        self.objects.push(unit.collected);
        let batch = (self.objects.len() >= BATCH_OBJECTS)
            .then(|| self.flush())
            .flatten();
        Parsed {
            batch,
            rejects: vec![],
        }
    }

    fn finish(&mut self) -> Option<RecordBatch> {
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entry::{Ace, ApplyTo, EntryType, ObjectAcl};
    use principals::{Kind, Principal};
    use rights::Rights;

    #[test]
    fn every_schema_column_has_a_builder_of_its_type() {
        let schema = AclSource::entries_table().table_schema();
        let p = Principal {
            given: "CORP\\alice".into(),
            sid: None,
            id: Some(7),
            kind: Kind::User,
            resolved: Some(true),
        };
        let acl = |entries: Vec<Ace>| Collected {
            acl: ObjectAcl {
                path: "/a".into(),
                object_type: "file".into(),
                owner: Some(p.clone()),
                group: None,
                security_style: Some("ntfs".into()),
                effective_style: Some("ntfs".into()),
                control_flags: Some(0x8004),
                mode: Some(0o755),
                entries,
            },
            collected_at_micros: 1,
            sensitive: true,
        };
        let ace = Ace {
            principal: p.clone(),
            entry_type: EntryType::Allow,
            rights: Rights::from_mask(rights::READ),
            apply_to: ApplyTo::THIS,
            inherited: false,
        };
        let snap = Snapshot {
            origin: Origin::Ontap,
            svm: Some("s".into()),
            volume: Arc::new(OnceLock::from("v".to_string())),
            date: "2026-12-01".into(),
        };
        let batch =
            rows::entries_batch(&schema, &snap, &[acl(vec![]), acl(vec![ace.clone(), ace])]);
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.num_columns(), schema.fields().len());
        let rejects = AclSource::rejects_table().file_schema();
        let r = rows::rejects_batch(
            &rejects,
            &[Reject {
                source: "acl".into(),
                path: "/x".into(),
                failure: Failure::new(Stage::Walk, "why"),
            }],
        );
        assert_eq!(r.num_rows(), 1);
    }
}
