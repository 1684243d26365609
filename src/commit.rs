//! The commit step: the gate a run passes before anything becomes visible (its
//! counts add up), the catalog update, and the removal of files the new ones
//! replace. A failure before the catalog update deletes the run's own files, so the
//! catalog and the lake are left as they were.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use tracing::{info, warn};

use crate::catalog::table_input::{partition_input, table_input};
use crate::catalog::{Catalog, TableEntry};
use crate::discover::ManifestEntry;
use crate::error::{Error, Result};
use crate::report::TableReport;
use crate::sink::WrittenFile;
use crate::sources::FileStats;
use crate::spec::{Job, JobTable, WriteMode};
use crate::storage::Location;

/// What one table got: its files (complete, not yet in the catalog).
pub struct TableFiles {
    pub table: JobTable,
    pub prefix: object_store::path::Path,
    pub files: Vec<WrittenFile>,
    pub rows: u64,
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

/// Registers the run's tables in the catalog, then removes the files they replace.
pub async fn commit(
    job: &Job,
    catalog: &Catalog,
    output: &Location,
    run_id: &str,
    tables: Vec<TableFiles>,
) -> Result<Vec<TableReport>> {
    let db = &job.spec.database;
    let mut entries = Vec::new();
    for t in &tables {
        let location = format!("{}/", output.url_of(&t.prefix));
        let input = table_input(&t.table.schema, &location, t.table.spec.compression)?;
        let written: BTreeSet<Vec<String>> =
            t.files.iter().map(|f| f.partition_values.clone()).collect();
        let mut partitions: HashMap<Vec<String>, _> = HashMap::new();
        if t.table.spec.mode != WriteMode::Overwrite
            && let Some(old) = catalog.get(db, &t.table.name)?
        {
            for p in old.partitions {
                partitions.insert(p.values.clone(), p);
            }
        }
        if !t.table.schema.partition_keys.is_empty() {
            for values in &written {
                let dir = partition_dir(&t.table.schema.partition_key_names(), values);
                let loc = format!("{location}{dir}/");
                partitions.insert(values.clone(), partition_input(&input, values.clone(), loc));
            }
        }
        let mut partitions: Vec<_> = partitions.into_values().collect();
        partitions.sort_by(|a, b| a.values.cmp(&b.values));
        entries.push(TableEntry {
            database: db.clone(),
            table_input: input,
            partitions,
            updated_by_run: run_id.to_string(),
        });
    }
    if let Err(e) = catalog.put(&entries) {
        delete_written(output, &tables).await;
        return Err(e);
    }
    info!(tables = entries.len(), "catalog updated");

    let mut reports = Vec::new();
    for t in tables {
        let removed = remove_replaced(output, &t, run_id).await;
        let partitions: BTreeSet<&Vec<String>> =
            t.files.iter().map(|f| &f.partition_values).collect();
        reports.push(TableReport {
            table: t.table.name.clone(),
            mode: t.table.spec.mode,
            location: format!("{}/", output.url_of(&t.prefix)),
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

fn partition_dir(keys: &[String], values: &[String]) -> String {
    keys.iter()
        .zip(values)
        .map(|(k, v)| format!("{k}={}", crate::sink::hive_escape(v)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Deletes the data files of earlier runs that this run's commit replaced.
async fn remove_replaced(output: &Location, t: &TableFiles, run_id: &str) -> u64 {
    let own = format!("part-{run_id}-");
    let written_dirs: BTreeSet<String> = t
        .files
        .iter()
        .filter_map(|f| f.path.as_ref().rsplit_once('/').map(|(d, _)| d.to_string()))
        .collect();
    let mut removed = 0;
    let mut listing = output.store.list(Some(&t.prefix));
    let mut doomed = Vec::new();
    while let Some(item) = listing.next().await {
        let Ok(meta) = item else { continue };
        let Some(name) = meta.location.filename() else {
            continue;
        };
        if !name.starts_with("part-") || !name.ends_with(".parquet") || name.starts_with(&own) {
            continue;
        }
        let dir = meta
            .location
            .as_ref()
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let replaced = match t.table.spec.mode {
            WriteMode::Overwrite => true,
            WriteMode::OverwritePartitions => written_dirs.contains(&dir),
            WriteMode::Append => false,
        };
        if replaced {
            doomed.push(meta.location);
        }
    }
    for path in doomed {
        match output.store.delete(&path).await {
            Ok(()) => removed += 1,
            Err(e) => warn!(path = %path, error = %e, "could not remove a replaced file"),
        }
    }
    removed
}

pub async fn delete_written(output: &Location, tables: &[TableFiles]) {
    for t in tables {
        for f in &t.files {
            if let Err(e) = output.store.delete(&f.path).await {
                warn!(path = %f.path, error = %e, "could not remove a file of the failed run");
            }
        }
    }
}
