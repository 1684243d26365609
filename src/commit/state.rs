//! The incremental state: what the last committed run of a job read and where its
//! rows went, kept next to the output as readable JSON
//! (`OUTPUT/_naslake/state/JOB/`):
//!
//! ```text
//! commits/RUNID.json   one per committed run (the last few are kept): the state
//!                      after that run, and the catalog entries it switched to
//! current.json         which commit is the state now
//! lease.json           who is running the job now (see `lease`)
//! ```
//!
//! A run writes its commit record before it touches the catalog and moves
//! `current.json` after, so a run killed in between leaves a record newer than
//! the current one; the next run finds it and completes it (`recover`).
//!
//! Objects are compared by fingerprint (size, ETag, last-modified), never by a
//! time watermark: a file copied onto the share with its old modification time
//! kept still differs in size or ETag.

use std::collections::BTreeMap;

use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::base::error::{Error, Result};
use crate::catalog::TableEntry;
use crate::model::ObjectState;
use crate::model::TableKind;
use crate::storage::Location;

/// The state files' format. A state of an older format is not read: a run that
/// would be incremental reads everything and starts a new one (format 1 kept an
/// object's rows as `[partition, rows]` pairs). A newer format is an error: this
/// naslake must not overwrite what a newer one wrote.
pub const STATE_FORMAT: u32 = 2;
/// Why a run reads everything when the state is of an older format.
pub const OLDER_STATE_REASON: &str =
    "the state was written by an older naslake: this run reads everything";
/// Commit records kept, the current one included.
const RECORDS_KEPT: usize = 3;

/// The state after one committed run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub format: u32,
    pub job: String,
    /// The run that committed it.
    pub run_id: String,
    pub committed_at: String,
    /// What the rows of unchanged objects were computed with (see
    /// [`crate::job::spec_digest`]):
    /// a run of a job that changed since is a full run.
    pub spec_digest: String,
    /// Source name → object key → what was read and where its rows are.
    pub sources: BTreeMap<String, BTreeMap<String, ObjectState>>,
    /// Table name → where it is.
    pub tables: BTreeMap<String, TableState>,
}

/// One table after a committed run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    /// Rows kept per object (`objects`) or recomputed from other tables (`derived`).
    pub kind: TableKind,
    /// The run whose catalog entry the table has.
    pub updated_by_run: String,
    /// Partition values and locations, sorted by values; one entry with no values
    /// for a table without partition keys.
    pub partitions: Vec<PartitionState>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionState {
    pub values: Vec<String>,
    pub location: String,
}

impl TableState {
    /// The partitions' locations by values.
    pub fn locations(&self) -> BTreeMap<Vec<String>, String> {
        self.partitions
            .iter()
            .map(|p| (p.values.clone(), p.location.clone()))
            .collect()
    }
}

/// A commit record: the state a run commits and the catalog entries it switches
/// to, written before the switch so a run killed during it can be completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommitRecord {
    pub format: u32,
    /// The state this run started from (`None`: the job had none).
    pub base_run: Option<String>,
    pub state: JobState,
    /// The catalog entries of the tables the run changes, as they are after it.
    pub entries: Vec<TableEntry>,
    /// Locations the switch replaces, whose files are removed after it.
    pub replaced: Vec<Replaced>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replaced {
    pub table: String,
    pub location: String,
}

/// What a job's `current.json` leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    /// The job has no committed state yet.
    Nothing,
    /// A state in an older format than this naslake reads ([`STATE_FORMAT`]):
    /// a run reads everything and its commit starts a state of this format.
    Older { format: u32, run_id: String },
    /// The committed state.
    State(Box<JobState>),
}

impl Committed {
    /// Why a run that asked to be incremental must read everything, if it must
    /// for want of a state it can use.
    pub fn full_reason(&self) -> Option<&'static str> {
        match self {
            Committed::Nothing => {
                Some("the job has no committed state yet: this run reads everything and starts one")
            }
            Committed::Older { .. } => Some(OLDER_STATE_REASON),
            Committed::State(_) => None,
        }
    }
}

/// The format field alone, read before the rest: a file of another format
/// would not parse as this one's types, and its format decides what to say.
#[derive(Deserialize)]
struct FormatOnly {
    format: u32,
}

/// `current.json`: which commit record is the job's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Current {
    format: u32,
    run_id: String,
}

/// Where a job's state lives in an output.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub output: Location,
    pub dir: ObjPath,
}

impl StateDir {
    pub fn new(output: &Location, job: &str) -> Self {
        StateDir {
            output: output.clone(),
            dir: output.child(&format!("_naslake/state/{job}")),
        }
    }

    pub fn path(&self, name: &str) -> ObjPath {
        self.output.literal_child(&self.dir, name)
    }

    fn record_path(&self, run_id: &str) -> ObjPath {
        self.output
            .literal_child(&self.path("commits"), &format!("{run_id}.json"))
    }

    pub fn url(&self) -> String {
        self.output.url_of(&self.dir)
    }

    /// The committed state, if the job has one this naslake reads: a state of
    /// an older format is none (a run reads everything; see [`Self::committed`],
    /// which tells the two apart).
    pub async fn current(&self) -> Result<Option<JobState>> {
        match self.committed().await? {
            Committed::State(state) => Ok(Some(*state)),
            Committed::Older { format, run_id } => {
                warn!(
                    format,
                    run_id = %run_id,
                    "{OLDER_STATE_REASON} (state format {format}, this naslake's {STATE_FORMAT})"
                );
                Ok(None)
            }
            Committed::Nothing => Ok(None),
        }
    }

    /// What the job's committed state is: none, one of an older format, or the
    /// state. A newer format, or a record `current.json` names that is missing or
    /// unreadable, is an error (`--full` starts the state anew).
    pub async fn committed(&self) -> Result<Committed> {
        let path = self.path("current.json");
        let Some(bytes) = self.read_bytes(&path).await? else {
            return Ok(Committed::Nothing);
        };
        let format = self.parse::<FormatOnly>(&bytes, &path)?.format;
        if format < STATE_FORMAT {
            let run_id = self
                .parse::<Current>(&bytes, &path)
                .map(|c| c.run_id)
                .unwrap_or_default();
            return Ok(Committed::Older { format, run_id });
        }
        check_format(format, &path, &self.output)?;
        let current = self.parse::<Current>(&bytes, &path)?;
        match self.record(&current.run_id).await? {
            Some(r) => Ok(Committed::State(Box::new(r.state))),
            None => Err(Error::State(format!(
                "{} names commit {}, which is missing from {}/commits: the state was edited or partly deleted. Run with --full to start it anew",
                self.output.url_of(&self.path("current.json")),
                current.run_id,
                self.url()
            ))),
        }
    }

    /// The run id `current.json` names.
    pub async fn current_run(&self) -> Result<Option<String>> {
        Ok(self
            .read_json::<Current>(&self.path("current.json"))
            .await?
            .map(|c| c.run_id))
    }

    /// The format a commit record was written in (`None`: there is none).
    pub async fn record_format(&self, run_id: &str) -> Result<Option<u32>> {
        let path = self.record_path(run_id);
        let Some(bytes) = self.read_bytes(&path).await? else {
            return Ok(None);
        };
        Ok(Some(self.parse::<FormatOnly>(&bytes, &path)?.format))
    }

    /// A commit record, of this naslake's format (another format is an error
    /// that says so, not one about its shape).
    pub async fn record(&self, run_id: &str) -> Result<Option<CommitRecord>> {
        let path = self.record_path(run_id);
        let Some(bytes) = self.read_bytes(&path).await? else {
            return Ok(None);
        };
        let format = self.parse::<FormatOnly>(&bytes, &path)?.format;
        check_format(format, &path, &self.output)?;
        self.parse(&bytes, &path).map(Some)
    }

    /// The run ids of the commit records present, oldest first (run ids are
    /// ULIDs, which sort by time).
    pub async fn record_runs(&self) -> Result<Vec<String>> {
        self.output.json_names(&self.path("commits")).await
    }

    pub async fn write_record(&self, record: &CommitRecord) -> Result<()> {
        // One line: a state of 100 000 objects stays a few megabytes (`jq` reads it).
        let body = serde_json::to_vec(record)?;
        self.output
            .store
            .put(
                &self.record_path(&record.state.run_id),
                PutPayload::from(body),
            )
            .await?;
        Ok(())
    }

    /// Makes `run_id`'s record the job's state: one PUT, atomic for readers.
    pub async fn set_current(&self, run_id: &str) -> Result<()> {
        let body = serde_json::to_vec_pretty(&Current {
            format: STATE_FORMAT,
            run_id: run_id.to_string(),
        })?;
        self.output
            .store
            .put(&self.path("current.json"), PutPayload::from(body))
            .await?;
        Ok(())
    }

    /// Deletes a record (of a run that is rolled back, or one too old to keep).
    pub async fn delete_record(&self, run_id: &str) -> Result<()> {
        match self.output.store.delete(&self.record_path(run_id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the records older than the last few; returns what could not be.
    pub async fn prune(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let runs = match self.record_runs().await {
            Ok(r) => r,
            Err(e) => return vec![format!("could not list the state's commits: {e}")],
        };
        let current = match self.current_run().await {
            Ok(c) => c,
            Err(e) => return vec![format!("did not prune the state's old commits: {e}")],
        };
        let keep_from = runs.len().saturating_sub(RECORDS_KEPT);
        for run in &runs[..keep_from] {
            if Some(run) == current.as_ref() {
                continue;
            }
            if let Err(e) = self.delete_record(run).await {
                problems.push(format!("could not remove the old state commit {run}: {e}"));
            }
        }
        problems
    }

    async fn read_json<T: serde::de::DeserializeOwned>(&self, path: &ObjPath) -> Result<Option<T>> {
        match self.read_bytes(path).await? {
            Some(bytes) => self.parse(&bytes, path).map(Some),
            None => Ok(None),
        }
    }

    async fn read_bytes(&self, path: &ObjPath) -> Result<Option<bytes::Bytes>> {
        match self.output.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, bytes: &[u8], path: &ObjPath) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::State(format!(
                "{} is not a naslake state file ({e}). Run with --full to start the state anew",
                self.output.url_of(path)
            ))
        })
    }
}

fn check_format(format: u32, path: &ObjPath, output: &Location) -> Result<()> {
    if format == STATE_FORMAT {
        return Ok(());
    }
    Err(Error::State(format!(
        "{} has state format {format}; this naslake reads format {STATE_FORMAT}. Run with --full to start the state anew",
        output.url_of(path)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fingerprint, PartitionRows};

    fn state(run_id: &str) -> JobState {
        let object = ObjectState {
            fingerprint: Fingerprint {
                size: 12,
                etag: Some("\"e\"".into()),
                last_modified: Some("2024-05-01T00:00:00+00:00".into()),
            },
            deleted: false,
            rows: crate::model::TableRows::from_iter([(
                "t".to_string(),
                vec![
                    PartitionRows {
                        partition: 0,
                        rows: 3,
                    },
                    PartitionRows {
                        partition: 1,
                        rows: 4,
                    },
                ],
            )]),
        };
        JobState {
            format: STATE_FORMAT,
            job: "j".into(),
            run_id: run_id.into(),
            committed_at: "2024-05-02T00:00:00+00:00".into(),
            spec_digest: "d".into(),
            sources: BTreeMap::from([(
                "s".to_string(),
                BTreeMap::from([("a.csv".to_string(), object)]),
            )]),
            tables: BTreeMap::from([(
                "t".to_string(),
                TableState {
                    kind: TableKind::Objects,
                    updated_by_run: run_id.into(),
                    partitions: vec![
                        PartitionState {
                            values: vec!["1".into()],
                            location: "file:///lake/t/k=1".into(),
                        },
                        PartitionState {
                            values: vec!["2".into()],
                            location: "file:///lake/t/k=2".into(),
                        },
                    ],
                },
            )]),
        }
    }

    fn dir() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let output = Location::open(tmp.path().to_str().unwrap()).unwrap();
        let dir = StateDir::new(&output, "j");
        (tmp, dir)
    }

    async fn put(dir: &StateDir, path: ObjPath, text: &str) {
        dir.output
            .store
            .put(&path, PutPayload::from(text.as_bytes().to_vec()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_committed_state_round_trips() {
        let (_tmp, dir) = dir();
        assert_eq!(dir.committed().await.unwrap(), Committed::Nothing);
        assert_eq!(dir.current().await.unwrap(), None);
        let want = state("01run");
        let record = CommitRecord {
            format: STATE_FORMAT,
            base_run: None,
            state: want.clone(),
            entries: Vec::new(),
            replaced: Vec::new(),
        };
        dir.write_record(&record).await.unwrap();
        dir.set_current("01run").await.unwrap();
        assert_eq!(dir.current().await.unwrap(), Some(want.clone()));
        let committed = dir.committed().await.unwrap();
        assert_eq!(committed, Committed::State(Box::new(want)));
        assert_eq!(committed.full_reason(), None);
        // The rows are named pairs in the file, as `jq` shows them.
        let bytes = dir.read_bytes(&dir.record_path("01run")).await.unwrap();
        let text = String::from_utf8(bytes.unwrap().to_vec()).unwrap();
        assert!(
            text.contains(r#""rows":{"t":[{"partition":0,"rows":3},{"partition":1,"rows":4}]}"#),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_state_of_an_older_format_means_a_full_run_not_an_error() {
        let (_tmp, dir) = dir();
        // What naslake wrote with format 1: rows as `[partition, rows]` pairs.
        let old_record = r#"{"format":1,"base_run":null,"state":{"format":1,"job":"j","run_id":"01old","committed_at":"x","spec_digest":"d","sources":{"s":{"a.csv":{"size":1,"rows":{"t":[[0,5]]}}}},"tables":{}},"entries":[],"replaced":[]}"#;
        put(&dir, dir.record_path("01old"), old_record).await;
        put(
            &dir,
            dir.path("current.json"),
            r#"{"format":1,"run_id":"01old"}"#,
        )
        .await;
        let committed = dir.committed().await.unwrap();
        assert_eq!(
            committed,
            Committed::Older {
                format: 1,
                run_id: "01old".into()
            }
        );
        assert_eq!(committed.full_reason(), Some(OLDER_STATE_REASON));
        assert_eq!(dir.current().await.unwrap(), None);
        // Read as a record (recovery does), the old format is named, with the way out.
        let e = dir.record("01old").await.unwrap_err().to_string();
        assert!(e.contains("state format 1") && e.contains("--full"), "{e}");
        // A full run's commit replaces it with a state of this format.
        let record = CommitRecord {
            format: STATE_FORMAT,
            base_run: dir.current_run().await.unwrap(),
            state: state("01new"),
            entries: Vec::new(),
            replaced: Vec::new(),
        };
        assert_eq!(record.base_run.as_deref(), Some("01old"));
        dir.write_record(&record).await.unwrap();
        dir.set_current("01new").await.unwrap();
        assert_eq!(dir.current().await.unwrap(), Some(state("01new")));
    }

    #[tokio::test]
    async fn a_state_of_a_newer_format_is_an_error() {
        let (_tmp, dir) = dir();
        put(
            &dir,
            dir.path("current.json"),
            r#"{"format":99,"run_id":"01new"}"#,
        )
        .await;
        let e = dir.committed().await.unwrap_err().to_string();
        assert!(e.contains("state format 99") && e.contains("--full"), "{e}");
    }
}
