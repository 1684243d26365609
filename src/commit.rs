//! The commit protocol: where a run writes each table's files, the gate a run
//! passes before anything becomes visible (its counts add up), the catalog switch,
//! and the removal of the files the switch replaced.
//!
//! Readers (Athena, `naslake query`) find data through the catalog: a partitioned
//! table through each partition's location, an unpartitioned one through the
//! table's location. So the run writes into directories the catalog does not point
//! at yet, and one catalog update makes them visible:
//!
//! - `overwrite` and `overwrite-partitions` write every partition into a new
//!   version directory, `TABLE/KEY=VALUE/…/v-RUNID/` (`TABLE/v-RUNID/` without
//!   partition keys). Until the commit no reader sees those files; the commit
//!   re-points each partition (or the table) at its new directory; only then are
//!   the files of the replaced versions deleted. A reader therefore sees either the
//!   old partition or the new one, never half of one or both.
//! - `append` adds files to the directories the catalog already points at (new
//!   partitions get a new version directory, invisible until registered). Each
//!   file appears whole (multipart upload), but a reader listing an existing
//!   partition during the run may see some of the run's files before the commit.
//! - Tables with Athena partition projection are append-only and write plain
//!   `TABLE/KEY=VALUE/` directories: Athena reads those directly, not the catalog.
//!
//! A run that fails before the commit deletes its own files; a commit that fails
//! leaves the catalog as it was (see the backends), and the run's files are deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use tracing::{info, warn};

use crate::catalog::glue::RUN_PARAMETER;
use crate::catalog::table_input::{partition_input, table_input};
use crate::catalog::{Catalog, TableChange, TableEntry, evolution};
use crate::discover::ManifestEntry;
use crate::error::{Error, Result};
use crate::report::TableReport;
use crate::sink::{WrittenFile, hive_escape};
use crate::sources::FileStats;
use crate::spec::{Job, JobTable, WriteMode};
use crate::storage::Location;

/// What one table got: its files (complete, not yet in the catalog).
pub struct TableFiles {
    pub table: JobTable,
    pub prefix: ObjPath,
    pub files: Vec<WrittenFile>,
    pub rows: u64,
}

/// Where a run writes one table's files.
#[derive(Debug, Clone)]
pub struct Placement {
    output: Location,
    table_prefix: ObjPath,
    keys: Vec<String>,
    /// `v-RUNID`, the version directory new partitions are written into; `None`
    /// for projected tables, which use plain partition directories.
    version: Option<String>,
    /// `append`: the directories the catalog already points at, by partition values.
    current: HashMap<Vec<String>, ObjPath>,
}

impl Placement {
    /// The directory the files of the partition with these values go to.
    pub fn dir(&self, values: &[String]) -> ObjPath {
        if let Some(dir) = self.current.get(values) {
            return dir.clone();
        }
        let dir = partition_dir(&self.output, &self.table_prefix, &self.keys, values);
        match &self.version {
            Some(v) => dir.join(v.as_str()),
            None => dir,
        }
    }
}

/// `TABLE/KEY=VALUE/…`: hive directory names, the value escaped the way Hive and
/// Athena expect in a key or file name (`10:00` → `10%3A00`).
pub fn partition_dir(
    output: &Location,
    table_prefix: &ObjPath,
    keys: &[String],
    values: &[String],
) -> ObjPath {
    keys.iter()
        .zip(values)
        .fold(table_prefix.clone(), |dir, (k, v)| {
            output.literal_child(&dir, &format!("{k}={}", hive_escape(v)))
        })
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
        let mode = t.spec.mode;
        let prefix = output.child(&t.name);
        if let Some(b) = &before
            && mode != WriteMode::Overwrite
        {
            let after = table_input(&t.schema, "", t.spec.compression)?;
            evolution::check(&b.table_input, &after, &required_columns(t))?;
        }
        let mut current = HashMap::new();
        if mode == WriteMode::Append
            && let Some(b) = &before
        {
            let registered: Vec<(Vec<String>, &str)> = if t.schema.partition_keys.is_empty() {
                vec![(
                    Vec::new(),
                    b.table_input.storage_descriptor.location.as_str(),
                )]
            } else {
                b.partitions
                    .iter()
                    .map(|p| (p.values.clone(), p.storage_descriptor.location.as_str()))
                    .collect()
            };
            for (values, location) in registered {
                let dir = output
                    .key_of_url(location)
                    .filter(|k| k.prefix_matches(&prefix))
                    .ok_or_else(|| {
                        Error::config(format!(
                            "table {database}.{} is registered at {location}, outside this run's output {}; \
                             appending would split it. Run with the output it was written to, or with \
                             `--set tables.{}.mode=overwrite`",
                            t.name,
                            output.url_of(&prefix),
                            t.name
                        ))
                    })?;
                current.insert(values, dir);
            }
        }
        let placement = Placement {
            output: output.clone(),
            table_prefix: prefix,
            keys: t.schema.partition_key_names(),
            version: t.spec.projection.is_empty().then(|| format!("v-{run_id}")),
            current,
        };
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

fn required_columns(t: &JobTable) -> Vec<String> {
    t.schema
        .columns
        .iter()
        .filter(|c| !c.nullable)
        .map(|c| c.name.clone())
        .collect()
}

/// Every file's records are loaded or rejected, and every rejection is a row of
/// the rejects table.
pub fn check_accounting(
    stats: &[(ManifestEntry, Arc<FileStats>)],
    tables: &[TableFiles],
) -> Result<()> {
    let mut expected_rejects = 0;
    for (entry, s) in stats {
        let c = s.counts();
        if c.records != c.loaded + c.rejected {
            return Err(Error::Accounting(format!(
                "{}: {} records read but {} loaded + {} rejected",
                entry.key, c.records, c.loaded, c.rejected
            )));
        }
        expected_rejects += c.rejected + u64::from(c.file_error.is_some());
    }
    let rejects_rows = tables
        .iter()
        .find(|t| t.table.spec.from.is_some())
        .map_or(0, |t| t.rows);
    if rejects_rows != expected_rejects {
        return Err(Error::Accounting(format!(
            "{expected_rejects} rejections counted but {rejects_rows} rejects rows written"
        )));
    }
    Ok(())
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

/// Registers the run's tables in the catalog, then removes the files they replace.
pub async fn commit(
    job: &Job,
    catalog: &Catalog,
    database: &str,
    output: &Location,
    run_id: &str,
    plans: &HashMap<String, TablePlan>,
    tables: Vec<TableFiles>,
) -> Result<Vec<TableReport>> {
    let mut changes = Vec::new();
    for t in &tables {
        let plan = plans
            .get(&t.table.name)
            .ok_or_else(|| Error::Accounting(format!("table {} was not planned", t.table.name)))?;
        changes.push(TableChange {
            before: plan.before.clone(),
            after: entry_after(job, database, output, run_id, t, plan)?,
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
    match catalog.apply(&changes, &description).await {
        Ok(()) => {}
        Err(e @ Error::CatalogInconsistent(_)) => {
            // The catalog may point at these files: keeping them is the only safe
            // choice; the error tells the user to check the tables.
            tracing::error!(error = %e, "catalog left inconsistent; this run's files are kept");
            return Err(e);
        }
        Err(e) => {
            delete_written(output, &tables).await;
            return Err(e);
        }
    }
    info!(tables = changes.len(), catalog = %catalog.describe(), "catalog updated");

    let mut reports = Vec::new();
    for (t, change) in tables.into_iter().zip(&changes) {
        let removed = remove_replaced(output, &t, run_id).await;
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

/// Deletes the data files that this run's commit replaced: every older file of
/// the table (`overwrite`), or of the partitions written (`overwrite-partitions`).
async fn remove_replaced(output: &Location, t: &TableFiles, run_id: &str) -> u64 {
    let mode = t.table.spec.mode;
    if mode == WriteMode::Append {
        return 0;
    }
    let own = format!("part-{run_id}-");
    // The partition directories (not version directories) whose files are replaced.
    let keys = t.table.schema.partition_key_names();
    let replaced_dirs: BTreeSet<String> = t
        .files
        .iter()
        .map(|f| {
            let dir = partition_dir(output, &t.prefix, &keys, &f.partition_values);
            format!("{}/", dir.as_ref())
        })
        .collect();
    let whole_table = mode == WriteMode::Overwrite || keys.is_empty();
    let mut doomed = Vec::new();
    let mut listing = output.store.list(Some(&t.prefix));
    while let Some(item) = listing.next().await {
        let Ok(meta) = item else { continue };
        let Some(name) = meta.location.filename() else {
            continue;
        };
        if !name.starts_with("part-") || !name.ends_with(".parquet") || name.starts_with(&own) {
            continue;
        }
        let key = meta.location.as_ref();
        if whole_table || replaced_dirs.iter().any(|d| key.starts_with(d.as_str())) {
            doomed.push(meta.location);
        }
    }
    let mut removed = 0;
    let mut emptied = BTreeSet::new();
    for path in doomed {
        match output.store.delete(&path).await {
            Ok(()) => {
                removed += 1;
                if let Some((dir, _)) = path.as_ref().rsplit_once('/') {
                    emptied.insert(dir.to_string());
                }
            }
            Err(e) => warn!(path = %path, error = %e, "could not remove a replaced file"),
        }
    }
    remove_empty_local_dirs(output, &t.prefix, emptied);
    removed
}

/// Object stores have no directories, but a local output keeps emptied version
/// and partition directories; remove them, up to (not including) the table's own.
fn remove_empty_local_dirs(output: &Location, table_prefix: &ObjPath, dirs: BTreeSet<String>) {
    if !output.base_url.starts_with("file:") {
        return;
    }
    let stop = std::path::PathBuf::from(format!("/{}", table_prefix.as_ref()));
    for dir in dirs.into_iter().rev() {
        let mut path = std::path::PathBuf::from(format!("/{dir}"));
        // remove_dir fails on a directory that is not empty, which ends the walk.
        while path.starts_with(&stop) && path != stop && std::fs::remove_dir(&path).is_ok() {
            path.pop();
        }
    }
}

pub async fn delete_written(output: &Location, tables: &[TableFiles]) {
    for t in tables {
        let mut emptied = BTreeSet::new();
        for f in &t.files {
            match output.store.delete(&f.path).await {
                Ok(()) => {
                    if let Some((dir, _)) = f.path.as_ref().rsplit_once('/') {
                        emptied.insert(dir.to_string());
                    }
                }
                Err(e) => {
                    warn!(path = %f.path, error = %e, "could not remove a file of the failed run")
                }
            }
        }
        remove_empty_local_dirs(output, &t.prefix, emptied);
    }
}
