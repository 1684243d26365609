//! The commit step: the gate a run passes before anything becomes visible (its
//! counts add up, [`accounting`]), the catalog switch, and the removal of the
//! files the switch replaced ([`cleanup`]).
//!
//! Readers (Athena, `naslake query`) find data through the catalog: a partitioned
//! table through each partition's location, an unpartitioned one through the
//! table's location. So a run writes every partition it touches into a version
//! directory of its own (`TABLE/KEY=VALUE/…/v-RUNID/`, `TABLE/v-RUNID/` without
//! partition keys; see [`crate::write::layout`]) that no catalog entry points at
//! yet, and one catalog update makes them visible. A reader therefore sees either
//! the old partition or the new one, never half of one or both:
//!
//! - `overwrite` replaces every partition (the table); `overwrite-partitions` the
//!   partitions it writes. After the switch, the files of the replaced entries'
//!   locations, and only those, are deleted.
//! - `append` is copy-on-write: the files of a partition the run adds rows to are
//!   copied (server-side) into the run's version directory first, so the switch
//!   shows the old rows and the new ones at once, and a failed or undone run never
//!   left a file where a reader of the catalog looks. The originals are then
//!   removed like replaced files.
//! - Tables with Athena partition projection are append-only and write plain
//!   `TABLE/KEY=VALUE/` directories: Athena reads those directly, not the catalog.
//!
//! A run that fails before the commit deletes its own files (the runner does, from
//! the run's staged list); a commit that fails leaves the catalog as it was (see
//! the backends), and the run's files are deleted too.

pub mod accounting;
pub mod cleanup;
pub mod lease;
pub mod next_state;
pub mod recover;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use object_store::path::Path as ObjPath;
use serde::Serialize;
use tracing::info;

use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::catalog::glue::RUN_PARAMETER;
use crate::catalog::table_input::{partition_input, table_input};
use crate::catalog::{Catalog, TableChange, TableEntry, evolution};
use crate::job::{Job, JobTable};
use crate::model::WriteMode;
use crate::storage::Location;
use crate::write::carry::{Merge, MergeCounts};
use crate::write::layout::Placement;
use crate::write::{Staged, WrittenFile};
use lease::Lease;
use state::{CommitRecord, StateDir};

/// What one table got: its files (complete, not yet in the catalog).
pub struct TableFiles {
    pub table: JobTable,
    pub prefix: ObjPath,
    pub files: Vec<WrittenFile>,
    pub rows: u64,
    /// Rows by object key and partition (a table kept per object).
    pub tally: Option<KeyRows>,
    /// An incremental run's merge with the table's last version: the partitions
    /// kept as they were. `None`: the files are the whole table.
    pub merge: Option<Merge>,
}

pub use crate::write::keys::KeyRows;

impl TableFiles {
    /// An incremental run left the table as it was.
    pub fn unchanged(&self, before: Option<&TableEntry>) -> bool {
        let Some(m) = &self.merge else {
            return false;
        };
        let old = match before {
            Some(b) if b.table_input.partition_keys.is_empty() => 1,
            Some(b) => b.partitions.len(),
            None => 0,
        };
        self.files.is_empty() && m.kept.len() == old
    }
}

/// A table as the run found it in the catalog, and where the run writes it.
pub struct TablePlan {
    pub before: Option<TableEntry>,
    pub placement: Arc<Placement>,
}

/// Reads each table's catalog entry, checks the schema change against it and
/// decides where files go, all before anything is written.
pub async fn plan(
    job: &Job,
    catalog: &Catalog,
    database: &str,
    output: &Location,
    run_id: &str,
) -> Result<HashMap<String, TablePlan>> {
    let mut plans = HashMap::new();
    for t in &job.tables {
        let before = catalog.get(database, &t.name).await?;
        let prefix = output.child(&t.name);
        if let Some(b) = &before {
            if t.spec.mode != WriteMode::Overwrite {
                let after = table_input(&t.schema, "", t.spec.compression)?;
                evolution::check(&b.table_input, &after, &required_columns(t))?;
            }
            if t.spec.mode == WriteMode::Append {
                // Appending copies the registered files forward, so they must be
                // where this run writes.
                for location in locations(b) {
                    let inside = output
                        .key_of_url(&location)
                        .is_some_and(|k| k.prefix_matches(&prefix));
                    if !inside {
                        return Err(Error::config(format!(
                            "table {database}.{} is registered at {location}, outside this run's output {}; \
                             appending would split it. Run with the output it was written to, or with \
                             `--set tables.{}.mode=overwrite`",
                            t.name,
                            output.url_of(&prefix),
                            t.name
                        )));
                    }
                }
            }
        }
        plans.insert(
            t.name.clone(),
            TablePlan {
                before,
                placement: Arc::new(placement(output, t, run_id)),
            },
        );
    }
    Ok(plans)
}

/// Where run `run_id` writes table `t`: the same wherever it is asked (a shard of
/// a sharded run writes where its commit registers).
pub fn placement(output: &Location, t: &JobTable, run_id: &str) -> Placement {
    Placement::new(
        output,
        output.child(&t.name),
        t.schema.partition_key_names(),
        t.spec.projection.is_empty().then(|| format!("v-{run_id}")),
    )
}

/// The locations a catalog entry points readers at: each partition's, or the
/// table's own when it has no partition keys (the entry's own keys: a run may be
/// changing them).
fn locations(entry: &TableEntry) -> Vec<String> {
    if entry.table_input.partition_keys.is_empty() {
        vec![entry.table_input.storage_descriptor.location.clone()]
    } else {
        entry
            .partitions
            .iter()
            .map(|p| p.storage_descriptor.location.clone())
            .collect()
    }
}

/// The locations of `before` that this run's entry no longer points at, keyed
/// by partition values (`[]` for an unpartitioned table).
fn replaced_locations(before: &TableEntry, after: &TableEntry) -> BTreeMap<Vec<String>, String> {
    let keep: BTreeSet<String> = locations(after).into_iter().collect();
    let mut out = BTreeMap::new();
    if before.table_input.partition_keys.is_empty() {
        let loc = before.table_input.storage_descriptor.location.clone();
        if !keep.contains(&loc) {
            out.insert(Vec::new(), loc);
        }
    } else {
        for p in &before.partitions {
            if !keep.contains(&p.storage_descriptor.location) {
                out.insert(p.values.clone(), p.storage_descriptor.location.clone());
            }
        }
    }
    out
}

fn required_columns(t: &JobTable) -> Vec<String> {
    t.schema
        .columns
        .iter()
        .filter(|c| !c.nullable)
        .map(|c| c.name.clone())
        .collect()
}

/// The catalog entry a table has after this run.
fn entry_after(
    job: &Job,
    database: &str,
    output: &Location,
    run_id: &str,
    t: &TableFiles,
    plan: &TablePlan,
) -> Result<TableEntry> {
    let spec = &t.table.spec;
    let keys = t.table.schema.partition_key_names();
    let dir_url = |values: &[String]| format!("{}/", output.url_of(&plan.placement.dir(values)));
    let location = match &t.merge {
        Some(m) if keys.is_empty() && t.files.is_empty() && m.kept.contains_key(&Vec::new()) => {
            m.kept[&Vec::new()].clone()
        }
        _ if keys.is_empty() => dir_url(&[]),
        _ => format!("{}/", output.url_of(&t.prefix)),
    };
    let mut input = table_input(&t.table.schema, &location, spec.compression)?;
    input
        .parameters
        .insert(RUN_PARAMETER.into(), run_id.to_string());
    input
        .parameters
        .insert("naslake.job".into(), job.spec.name.clone());
    if !spec.projection.is_empty() {
        input
            .parameters
            .insert("projection.enabled".into(), "true".into());
        for (key, p) in &spec.projection {
            input.parameters.extend(p.parameters(key));
        }
        let template: Vec<String> = keys.iter().map(|k| format!("{k}=${{{k}}}")).collect();
        input.parameters.insert(
            "storage.location.template".into(),
            format!("{location}{}/", template.join("/")),
        );
    }
    let mut partitions: BTreeMap<Vec<String>, _> = BTreeMap::new();
    if !keys.is_empty() {
        if let Some(m) = &t.merge {
            for (values, loc) in &m.kept {
                partitions.insert(
                    values.clone(),
                    partition_input(&input, values.clone(), loc.clone()),
                );
            }
        } else if spec.mode != WriteMode::Overwrite
            && let Some(old) = &plan.before
        {
            for p in &old.partitions {
                // Old partitions keep their location, with the new definition
                // (columns) so Athena reads them with the current schema.
                let loc = p.storage_descriptor.location.clone();
                partitions.insert(
                    p.values.clone(),
                    partition_input(&input, p.values.clone(), loc),
                );
            }
        }
        let written: BTreeSet<&Vec<String>> = t.files.iter().map(|f| &f.partition_values).collect();
        for values in written {
            partitions.insert(
                values.clone(),
                partition_input(&input, values.clone(), dir_url(values)),
            );
        }
    }
    Ok(TableEntry {
        database: database.to_string(),
        table_input: input,
        partitions: partitions.into_values().collect(),
        updated_by_run: run_id.to_string(),
        version_id: plan.before.as_ref().and_then(|b| b.version_id.clone()),
    })
}

/// Appends are copy-on-write: the files of each location the run's entry stops
/// pointing at are copied into the version directory that replaces it.
async fn copy_forward(
    output: &Location,
    plan: &TablePlan,
    replaced: &BTreeMap<Vec<String>, String>,
    staged: &Staged,
) -> Result<u64> {
    let mut copied = 0;
    for (values, location) in replaced {
        let from = output.key_of_url(location).ok_or_else(|| {
            Error::Accounting(format!(
                "{location} is outside the output; checked at plan time"
            ))
        })?;
        let to = plan.placement.dir(values);
        copied += crate::write::carry::copy_files(output, &from, &to, values, staged)
            .await?
            .len() as u64;
    }
    Ok(copied)
}

/// What a run commits to: its job's tables in a catalog database, over an output.
pub struct Target<'a> {
    pub job: &'a Job,
    pub catalog: &'a Catalog,
    pub database: &'a str,
    pub output: &'a Location,
    pub run_id: &'a str,
}

/// A run's tables, ready to switch: the catalog entries they get and the
/// locations those replace.
pub struct Prepared {
    /// Tables whose entry changes, with their change and the locations replaced.
    changed: Vec<(TableFiles, TableChange, BTreeMap<Vec<String>, String>)>,
    /// Tables an incremental run left as they were.
    unchanged: Vec<TableFiles>,
}

impl Prepared {
    /// Every table with its entry after the switch (`None`: it stays as it is).
    pub fn tables(&self) -> impl Iterator<Item = (&TableFiles, Option<&TableEntry>)> {
        self.changed
            .iter()
            .map(|(t, c, _)| (t, Some(&c.after)))
            .chain(self.unchanged.iter().map(|t| (t, None)))
    }

    /// The entries the switch applies.
    pub fn entries(&self) -> Vec<TableEntry> {
        self.changed
            .iter()
            .map(|(_, c, _)| c.after.clone())
            .collect()
    }

    /// The locations the switch replaces, by table.
    pub fn replaced(&self) -> Vec<state::Replaced> {
        self.changed
            .iter()
            .flat_map(|(t, _, gone)| {
                gone.values().map(|l| state::Replaced {
                    table: t.table.name.clone(),
                    location: l.clone(),
                })
            })
            .collect()
    }
}

/// Computes each table's entry after the run, and for appends copies the
/// partitions' old files forward; nothing visible changes yet.
pub async fn prepare(
    target: &Target<'_>,
    plans: &HashMap<String, TablePlan>,
    tables: Vec<TableFiles>,
    staged: &Staged,
) -> Result<Prepared> {
    let Target {
        job,
        database,
        output,
        run_id,
        ..
    } = *target;
    let mut prepared = Prepared {
        changed: Vec::new(),
        unchanged: Vec::new(),
    };
    for t in tables {
        let plan = plans
            .get(&t.table.name)
            .ok_or_else(|| Error::Accounting(format!("table {} was not planned", t.table.name)))?;
        if t.unchanged(plan.before.as_ref()) {
            prepared.unchanged.push(t);
            continue;
        }
        let after = entry_after(job, database, output, run_id, &t, plan)?;
        let gone = match &plan.before {
            Some(before) => replaced_locations(before, &after),
            None => BTreeMap::new(),
        };
        if t.merge.is_some() || !t.table.spec.projection.is_empty() {
            // Merged partitions were carried forward when they were written;
            // projected tables are written in place. Nothing to copy.
        } else if t.table.spec.mode == WriteMode::Append {
            let n = copy_forward(output, plan, &gone, staged).await?;
            if n > 0 {
                info!(table = %t.table.name, files = n, "copied the appended partitions' files forward");
            }
        }
        let change = TableChange {
            before: plan.before.clone(),
            after,
            replaces_all_files: t.merge.is_none() && t.table.spec.mode == WriteMode::Overwrite,
            required_columns: required_columns(&t.table),
            archive_versions: t.table.spec.archive_versions,
        };
        prepared.changed.push((t, change, gone));
    }
    Ok(prepared)
}

/// Where the state a run commits goes, and the lease it must still hold.
pub struct Committing<'a> {
    pub dir: &'a StateDir,
    pub lease: &'a Lease,
    pub record: CommitRecord,
}

/// The switch: writes the commit record, registers the run's tables in the
/// catalog, moves the state to the record, then removes the files the tables
/// replaced. A run killed after the record is written is completed by the next
/// ([`recover`]); one killed before it changed nothing a reader sees.
pub async fn apply(
    target: &Target<'_>,
    mut prepared: Prepared,
    committing: Committing<'_>,
    warnings: &Warnings,
) -> Result<Vec<TableReport>> {
    let Target {
        job,
        catalog,
        output,
        ..
    } = *target;
    let Committing { dir, lease, record } = committing;
    let run_id = record.state.run_id.clone();
    lease.check().await?;
    dir.write_record(&record).await?;
    crate::base::faults::point("commit.record");
    let changes: Vec<TableChange> = prepared.changed.iter().map(|(_, c, _)| c.clone()).collect();
    if !changes.is_empty() {
        let description = format!(
            "Data lake tables written by naslake (job {}{})",
            job.spec.name,
            if job.spec.description.is_empty() {
                String::new()
            } else {
                format!(": {}", job.spec.description)
            }
        );
        if let Err(e) = catalog.apply(&changes, &description).await {
            // The catalog is as it was (unless the error says otherwise), so the
            // record must not be completed by the next run.
            if !matches!(e, Error::CatalogInconsistent(_))
                && let Err(de) = dir.delete_record(&run_id).await
            {
                // The next run will complete the record, so its files must stay.
                return Err(Error::CatalogInconsistent(format!(
                    "{e}; the commit record could not be removed either ({de}): the next run completes this run's commit, so its files are kept"
                )));
            }
            return Err(e);
        }
        info!(tables = changes.len(), catalog = %catalog.describe(), "catalog updated");
    }
    crate::base::faults::point("commit.catalog");
    dir.set_current(&run_id).await.map_err(|e| {
        // The catalog points at this run's files now: they must not be removed.
        Error::CatalogInconsistent(format!(
            "the catalog was switched to this run, but the state could not be moved to it ({e}); the next run completes the commit from its record"
        ))
    })?;
    crate::base::faults::point("commit.state");

    // The record is written and the state moved to it, and the tallies are in
    // it: what is left of them is freeing, an allocation per object.
    let tallies: Vec<KeyRows> = (prepared.changed.iter_mut().map(|(t, _, _)| t))
        .chain(prepared.unchanged.iter_mut())
        .filter_map(|t| t.tally.take())
        .collect();
    crate::base::drop_apart::drop_apart((record, tallies));
    let mut reports = Vec::new();
    for (t, change, gone) in prepared.changed {
        let locations: BTreeSet<String> = gone.into_values().collect();
        let removed = cleanup::remove_replaced(output, &t.prefix, &locations, warnings).await;
        crate::base::faults::point("commit.cleanup");
        let location = change.after.table_input.storage_descriptor.location.clone();
        reports.push(table_report(t, location, removed));
    }
    for t in prepared.unchanged {
        reports.push(table_report(t, String::new(), 0));
    }
    for problem in dir.prune().await {
        warnings.push(problem);
    }
    Ok(reports)
}

/// What a commit did to one table, for the run report.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub mode: WriteMode,
    pub location: String,
    pub rows_written: u64,
    pub bytes_written: u64,
    pub partitions_written: u64,
    /// Files of earlier runs this run's commit replaced and removed.
    pub files_removed: u64,
    /// What an incremental run did to the table's last version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<MergeCounts>,
    pub files: Vec<WrittenFile>,
}

fn table_report(t: TableFiles, location: String, removed: u64) -> TableReport {
    let partitions: BTreeSet<&Vec<String>> = t.files.iter().map(|f| &f.partition_values).collect();
    TableReport {
        table: t.table.name.clone(),
        mode: t.table.spec.mode,
        location,
        rows_written: t.rows,
        bytes_written: t.files.iter().map(|f| f.bytes).sum(),
        partitions_written: if t.table.schema.partition_keys.is_empty() {
            0
        } else {
            partitions.len() as u64
        },
        files_removed: removed,
        incremental: t.merge.as_ref().map(|m| m.counts.clone()),
        files: t.files,
    }
}
