//! Coming back after a run that died. Before anything else, a run (holding the
//! lease) looks for what a dead run left:
//!
//! - A commit record newer than the current state: the run died after its files
//!   were complete, somewhere in the commit. It is completed: the catalog entries
//!   it names are applied where the catalog does not have them yet (all of them,
//!   some of them on Glue, which has no multi-table transaction, or none), the
//!   state moves to it, and the files it replaced are removed. A record whose
//!   base is not the current state (it cannot happen while runs hold the lease) is
//!   rolled back instead: deleted, and its files swept.
//! - Files no catalog entry points at: the versions of a run that died before its
//!   commit, or replaced files a dead run did not get to remove. After a dead run
//!   (its lease taken over, or its commit completed or rolled back here), every
//!   data file under a job's table in a version directory (`v-RUNID`) the catalog
//!   does not point at is removed — of that run or an older one only. Run ids
//!   are ULIDs, which sort by time, and any run alive now started after the dead
//!   one held the lease: a run that raced this one for a dead lease loses no file.

use std::collections::{BTreeSet, HashSet};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::cleanup;
use super::state::{CommitRecord, STATE_FORMAT, StateDir};
use crate::base::error::Result;
use crate::base::warnings::Warnings;
use crate::catalog::{Catalog, TableChange, TableEntry};
use crate::job::Job;
use crate::write::layout::is_data_file;

/// What recovery did, for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Recovered {
    /// The dead run whose commit this run completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<String>,
    /// Dead runs whose commit records were rolled back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rolled_back: Vec<String>,
    /// Files of dead runs removed.
    pub orphans_removed: u64,
}

impl Recovered {
    pub fn did_anything(&self) -> bool {
        self.completed.is_some() || !self.rolled_back.is_empty() || self.orphans_removed > 0
    }
}

/// Completes or rolls back what a dead run left, then sweeps its files.
pub async fn recover(
    dir: &StateDir,
    job: &Job,
    catalog: &Catalog,
    database: &str,
    dead_run: Option<&str>,
    warnings: &Warnings,
) -> Result<Recovered> {
    let mut out = Recovered::default();
    let current = dir.current_run().await?;
    let pending: Vec<String> = dir
        .record_runs()
        .await?
        .into_iter()
        .filter(|r| current.as_ref().is_none_or(|c| r > c))
        .collect();
    for (i, run) in pending.iter().enumerate() {
        let newest = i + 1 == pending.len();
        // A record an older naslake wrote is rolled back, not completed: its
        // state could not be read as the current one (the next run reads
        // everything, as after any upgrade of the state's format).
        let older = dir
            .record_format(run)
            .await?
            .is_some_and(|f| f < STATE_FORMAT);
        if older {
            warnings.push(format!(
                "the commit record of run {run}, which died, was written by an older naslake: it is rolled back"
            ));
        }
        let record = match older {
            true => None,
            false => dir.record(run).await?,
        };
        match record {
            Some(r) if newest && r.base_run == current => {
                info!(run_id = %run, "completing the commit of a run that died during it");
                complete(dir, catalog, &r.entries).await?;
                dir.set_current(run).await?;
                remove_replaced_by(dir, &r, warnings).await;
                out.completed = Some(run.clone());
            }
            _ => {
                warn!(run_id = %run, "rolling back the commit record of a run that died");
                dir.delete_record(run).await?;
                out.rolled_back.push(run.clone());
            }
        }
    }
    // The newest run known dead: versions of it and of older runs are swept.
    let newest_dead = dead_run
        .filter(|r| ulid::Ulid::from_string(r).is_ok())
        .into_iter()
        .chain(out.completed.as_deref())
        .chain(out.rolled_back.iter().map(String::as_str))
        .max()
        .map(str::to_string);
    if let Some(bound) = newest_dead {
        out.orphans_removed = sweep(dir, job, catalog, database, &bound, warnings).await?;
    }
    Ok(out)
}

/// Applies the entries the catalog does not have yet.
async fn complete(dir: &StateDir, catalog: &Catalog, entries: &[TableEntry]) -> Result<()> {
    let mut changes = Vec::new();
    for after in entries {
        let now = catalog
            .get(&after.database, &after.table_input.name)
            .await?;
        if now.as_ref().is_some_and(|n| same_entry(n, after)) {
            continue;
        }
        let mut after = after.clone();
        after.version_id = now.as_ref().and_then(|n| n.version_id.clone());
        changes.push(TableChange {
            before: now,
            after,
            // The run checked its schema change when it planned.
            replaces_all_files: true,
            required_columns: Vec::new(),
            archive_versions: false,
        });
    }
    if !changes.is_empty() {
        catalog
            .apply(
                &changes,
                &format!("Data lake tables written by naslake ({})", dir.url()),
            )
            .await?;
    }
    Ok(())
}

/// The same table as far as readers go: the run that wrote it and where it points.
pub fn same_entry(a: &TableEntry, b: &TableEntry) -> bool {
    a.updated_by_run == b.updated_by_run
        && a.table_input.storage_descriptor.location == b.table_input.storage_descriptor.location
        && locations(a) == locations(b)
}

fn locations(e: &TableEntry) -> BTreeSet<(Vec<String>, String)> {
    e.partitions
        .iter()
        .map(|p| (p.values.clone(), p.storage_descriptor.location.clone()))
        .collect()
}

/// Removes the data files in version directories of runs up to `newest_dead`
/// under the job's tables that the catalog does not point at. Returns how many.
async fn sweep(
    dir: &StateDir,
    job: &Job,
    catalog: &Catalog,
    database: &str,
    newest_dead: &str,
    warnings: &Warnings,
) -> Result<u64> {
    let output = &dir.output;
    let mut removed = 0;
    for table in &job.tables {
        if !table.spec.projection.is_empty() {
            // Written in place (no version directories); nothing is orphaned.
            continue;
        }
        let mut live: HashSet<String> = HashSet::new();
        if let Some(entry) = catalog.get(database, &table.name).await? {
            let mut urls = vec![entry.table_input.storage_descriptor.location.clone()];
            urls.extend(
                entry
                    .partitions
                    .iter()
                    .map(|p| p.storage_descriptor.location.clone()),
            );
            let prefix = output.child(&table.name);
            let keys: Vec<_> = urls.iter().map(|u| output.key_of_url(u)).collect();
            if keys
                .iter()
                .any(|k| k.as_ref().is_none_or(|k| !k.prefix_matches(&prefix)))
            {
                // A location this output cannot name: which files are live is
                // unknown, so none is removed.
                warnings.push(format!(
                    "did not look for files of dead runs under {}: the catalog registers locations outside it",
                    output.url_of(&prefix)
                ));
                continue;
            }
            live.extend(keys.into_iter().flatten().map(|k| k.as_ref().to_string()));
        }
        let prefix = output.child(&table.name);
        let mut files = output.store.list(Some(&prefix));
        let mut orphans = Vec::new();
        while let Some(meta) = files.try_next().await? {
            let Some((parent, name)) = meta.location.as_ref().rsplit_once('/') else {
                continue;
            };
            let dead_version = parent
                .rsplit('/')
                .next()
                .and_then(|d| d.strip_prefix("v-"))
                .is_some_and(|run| run <= newest_dead);
            if dead_version && is_data_file(name) && !live.contains(parent) {
                orphans.push(meta.location);
            }
        }
        let mut emptied = BTreeSet::new();
        for path in orphans {
            match output.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    removed += 1;
                    emptied.extend(path.as_ref().rsplit_once('/').map(|(d, _)| d.to_string()));
                }
                Err(e) => warnings.push(format!(
                    "could not remove {} left by a run that died: {e}",
                    output.url_of(&path)
                )),
            }
        }
        cleanup::remove_empty_local_dirs(output, &prefix, emptied);
    }
    if removed > 0 {
        info!(files = removed, "removed the files of runs that died");
    }
    Ok(removed)
}

/// The cleanup a committed run may not have finished (killed after the switch):
/// removes the files of the locations its commit record says it replaced.
/// Done again, it finds nothing left to remove.
pub async fn finish_cleanup(dir: &StateDir, run_id: &str, warnings: &Warnings) -> Result<u64> {
    match dir.record(run_id).await? {
        Some(record) => Ok(remove_replaced_by(dir, &record, warnings).await),
        None => Ok(0),
    }
}

/// Removes the files of the locations a commit record replaced.
async fn remove_replaced_by(dir: &StateDir, record: &CommitRecord, warnings: &Warnings) -> u64 {
    let mut removed = 0;
    for replaced in &record.replaced {
        let prefix = dir.output.child(&replaced.table);
        let locations = BTreeSet::from([replaced.location.clone()]);
        removed += cleanup::remove_replaced(&dir.output, &prefix, &locations, warnings).await;
    }
    removed
}
