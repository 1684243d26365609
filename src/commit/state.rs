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

use crate::base::error::{Error, Result};
use crate::catalog::TableEntry;
use crate::model::ObjectState;
use crate::storage::Location;

// The model's; src/runner/ imports it from here.
pub use crate::model::TableKind;
// The job's; src/runner/ imports it from here.
pub use crate::job::spec_digest;

/// The state files' format; a state of another format is not read (the run says
/// so and `--full` starts a new one).
pub const STATE_FORMAT: u32 = 1;
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
    /// What the rows of unchanged objects were computed with (see [`spec_digest`]):
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

    /// The committed state, if the job has one.
    pub async fn current(&self) -> Result<Option<JobState>> {
        let Some(current) = self
            .read_json::<Current>(&self.path("current.json"))
            .await?
        else {
            return Ok(None);
        };
        check_format(current.format, &self.path("current.json"), &self.output)?;
        match self.record(&current.run_id).await? {
            Some(r) => Ok(Some(r.state)),
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

    pub async fn record(&self, run_id: &str) -> Result<Option<CommitRecord>> {
        let path = self.record_path(run_id);
        let Some(r) = self.read_json::<CommitRecord>(&path).await? else {
            return Ok(None);
        };
        check_format(r.format, &path, &self.output)?;
        Ok(Some(r))
    }

    /// The run ids of the commit records present, oldest first (run ids are
    /// ULIDs, which sort by time).
    pub async fn record_runs(&self) -> Result<Vec<String>> {
        let listing = self
            .output
            .store
            .list_with_delimiter(Some(&self.path("commits")))
            .await?;
        let mut runs: Vec<String> = listing
            .objects
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")
                    .map(String::from)
            })
            .collect();
        runs.sort();
        Ok(runs)
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
        let bytes = match self.output.store.get(path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
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
