//! A job as text: its spec and every file the spec names (schemas, SQL), so a
//! process that has none of them (a Spark executor, a Batch array task) loads the
//! same job as the one that planned the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Job;
use crate::base::error::{Error, Result};
use crate::base::sync::lock;
use crate::sources::Registry;

/// Where [`Job::load_from`] reads the spec and the files it names.
pub enum SpecFiles {
    /// From disk, remembering what was read (for [`JobSnapshot::capture`]).
    Disk(Mutex<BTreeMap<PathBuf, String>>),
    /// From a snapshot; a path it lacks is an error.
    Snapshot(BTreeMap<PathBuf, String>),
}

impl SpecFiles {
    pub fn disk() -> Self {
        SpecFiles::Disk(Mutex::default())
    }

    pub fn read(&self, path: &Path) -> Result<String> {
        match self {
            SpecFiles::Disk(seen) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
                    path: path.to_path_buf(),
                    source,
                })?;
                lock(seen).insert(path.to_path_buf(), text.clone());
                Ok(text)
            }
            SpecFiles::Snapshot(files) => files.get(path).cloned().ok_or_else(|| {
                Error::config(format!(
                    "the plan's copy of the job has no file {}",
                    path.display()
                ))
            }),
        }
    }
}

/// The job spec as loaded: its path, the `--set` overrides and every file read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSnapshot {
    pub path: PathBuf,
    pub overrides: Vec<String>,
    /// Keyed by the path as the spec resolves it.
    pub files: BTreeMap<PathBuf, String>,
}

impl JobSnapshot {
    /// Loads a job from disk and keeps the text of everything it read.
    pub fn capture(
        path: &Path,
        overrides: &[String],
        registry: &Registry,
    ) -> Result<(Job, JobSnapshot)> {
        let files = SpecFiles::disk();
        let job = Job::load_from(path, overrides, registry, &files)?;
        let SpecFiles::Disk(seen) = files else {
            unreachable!("made as Disk above")
        };
        let snapshot = JobSnapshot {
            path: path.to_path_buf(),
            overrides: overrides.to_vec(),
            files: seen.into_inner().unwrap_or_else(|p| p.into_inner()),
        };
        Ok((job, snapshot))
    }

    /// The job, as [`JobSnapshot::capture`] loaded it.
    pub fn load(&self, registry: &Registry) -> Result<Job> {
        let files = SpecFiles::Snapshot(self.files.clone());
        Job::load_from(&self.path, &self.overrides, registry, &files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::spec_digest;

    #[test]
    fn a_snapshot_loads_the_same_job_without_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let registry = Registry::builtin();
        let overrides = vec!["params.zscore_threshold=2.5".to_string()];
        let (job, snap) = JobSnapshot::capture(
            &root.join("jobs/sensor_readings.toml"),
            &overrides,
            &registry,
        )
        .unwrap();
        // Through JSON, as a plan carries it, and with the job folder out of reach.
        let text = serde_json::to_string(&snap).unwrap();
        let back: JobSnapshot = serde_json::from_str(&text).unwrap();
        let mut moved = back.clone();
        moved.path = dir.path().join("gone/sensor_readings.toml");
        assert!(moved.load(&registry).is_err(), "reads nothing from disk");
        let again = back.load(&registry).unwrap();
        assert_eq!(spec_digest(&again), spec_digest(&job));
        assert_eq!(
            snap.files.len(),
            6,
            "spec, 3 schemas, 2 SQL: {:?}",
            snap.files.keys()
        );
    }
}
