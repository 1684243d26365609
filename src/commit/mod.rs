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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use tracing::info;

use crate::catalog::glue::RUN_PARAMETER;
use crate::catalog::table_input::{partition_input, table_input};
use crate::catalog::{Catalog, TableChange, TableEntry, evolution};
use crate::error::{Error, Result};
use crate::job::{Job, JobTable, WriteMode};
use crate::report::{TableReport, Warnings};
use crate::storage::Location;
use crate::write::layout::Placement;
use crate::write::{Staged, WrittenFile};

/// What one table got: its files (complete, not yet in the catalog).
pub struct TableFiles {
    pub table: JobTable,
    pub prefix: ObjPath,
    pub files: Vec<WrittenFile>,
    pub rows: u64,
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
        let placement = Placement::new(
            output,
            prefix,
            t.schema.partition_key_names(),
            t.spec.projection.is_empty().then(|| format!("v-{run_id}")),
        );
        plans.insert(
            t.name.clone(),
            TablePlan {
                before,
                placement: Arc::new(placement),
            },
        );
    }
    Ok(plans)
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
    let location = if keys.is_empty() {
        dir_url(&[])
    } else {
        format!("{}/", output.url_of(&t.prefix))
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
        if spec.mode != WriteMode::Overwrite
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
        for file in cleanup::data_files(output, &from).await? {
            let name = file.filename().ok_or_else(|| {
                Error::Accounting(format!("{} has no file name", output.url_of(&file)))
            })?;
            let target = output.literal_child(&to, name);
            // Staged before the copy: a copy that was made but whose answer was
            // lost is still removed if the run fails.
            staged.add(target.clone());
            output.store.copy(&file, &target).await?;
            copied += 1;
        }
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

/// Registers the run's tables in the catalog, then removes the files they replace.
pub async fn commit(
    target: &Target<'_>,
    plans: &HashMap<String, TablePlan>,
    tables: Vec<TableFiles>,
    staged: &Staged,
    warnings: &Warnings,
) -> Result<Vec<TableReport>> {
    let Target {
        job,
        catalog,
        database,
        output,
        run_id,
    } = *target;
    let mut changes = Vec::new();
    let mut replaced = Vec::new();
    for t in &tables {
        let plan = plans
            .get(&t.table.name)
            .ok_or_else(|| Error::Accounting(format!("table {} was not planned", t.table.name)))?;
        let after = entry_after(job, database, output, run_id, t, plan)?;
        let gone = match &plan.before {
            Some(before) => replaced_locations(before, &after),
            None => BTreeMap::new(),
        };
        if t.table.spec.mode == WriteMode::Append && !t.table.spec.projection.is_empty() {
            // Projected tables are written in place; nothing is replaced.
        } else if t.table.spec.mode == WriteMode::Append {
            let n = copy_forward(output, plan, &gone, staged).await?;
            if n > 0 {
                info!(table = %t.table.name, files = n, "copied the appended partitions' files forward");
            }
        }
        replaced.push(gone);
        changes.push(TableChange {
            before: plan.before.clone(),
            after,
            replaces_all_files: t.table.spec.mode == WriteMode::Overwrite,
            required_columns: required_columns(&t.table),
            archive_versions: t.table.spec.archive_versions,
        });
    }
    let description = format!(
        "Data lake tables written by naslake (job {}{})",
        job.spec.name,
        if job.spec.description.is_empty() {
            String::new()
        } else {
            format!(": {}", job.spec.description)
        }
    );
    catalog.apply(&changes, &description).await?;
    info!(tables = changes.len(), catalog = %catalog.describe(), "catalog updated");

    let mut reports = Vec::new();
    for ((t, change), gone) in tables.into_iter().zip(&changes).zip(replaced) {
        let locations: BTreeSet<String> = gone.into_values().collect();
        let removed = cleanup::remove_replaced(output, &t.prefix, &locations, warnings).await;
        let partitions: BTreeSet<&Vec<String>> =
            t.files.iter().map(|f| &f.partition_values).collect();
        reports.push(TableReport {
            table: t.table.name.clone(),
            mode: t.table.spec.mode,
            location: change.after.table_input.storage_descriptor.location.clone(),
            rows_written: t.rows,
            bytes_written: t.files.iter().map(|f| f.bytes).sum(),
            partitions_written: if t.table.schema.partition_keys.is_empty() {
                0
            } else {
                partitions.len() as u64
            },
            files_removed: removed,
            files: t.files,
        });
    }
    Ok(reports)
}
