//! The run history as a table of the job (`[tables.naslake_runs]`): at the
//! commit, a new version of the table with the committing run's own row, the
//! rows of the reports written since the last version (failed runs', other
//! jobs'), and the last version's rows carried forward (a run whose commit a
//! later run completed has no report, only its row). Committed with the run's
//! other tables, so a run that fails or is killed leaves it as it was.

use std::collections::HashSet;
use std::sync::Arc;

use futures::TryStreamExt;
use tracing::warn;

use super::tables::Writing;
use crate::base::error::{Error, Result};
use crate::commit::TableFiles;
use crate::history::{self, RunRow};
use crate::job::JobTable;
use crate::write::carry;

/// Writes the history table's new version, newest run first.
pub async fn write(writing: &Writing<'_>, table: &JobTable, own: RunRow) -> Result<TableFiles> {
    let output = writing.output;
    let before = writing
        .plans
        .get(&table.name)
        .and_then(|p| p.before.as_ref())
        .map(|e| e.table_input.storage_descriptor.location.clone());
    let kept = match before {
        Some(location) => match last_version(writing, &location).await {
            Ok(rows) => rows,
            Err(e) => {
                // The reports are still there: every one of them is read again.
                warn!(error = %e, "the run history's last version cannot be read; it is rebuilt from the reports");
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let mut known: HashSet<String> = kept.iter().map(|r| r.run_id.clone()).collect();
    known.insert(own.run_id.clone());
    let new_ids: Vec<String> = history::run_ids(output)
        .await?
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    let mut rows = history::rows_of(output, new_ids).await;
    rows.extend(kept.into_iter().filter(|r| r.run_id != own.run_id));
    let total = rows.len() as u64 + 1;
    // The committing run's row counts the history table among what it wrote.
    rows.push(RunRow {
        rows_out: own.rows_out + total,
        ..own
    });
    rows.sort_by(|a, b| b.run_id.cmp(&a.run_id));
    let batch = history::to_batch(&rows)?;
    let counter = Arc::default();
    let mut writer = writing.table_writer(table, Arc::clone(&counter))?;
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    writing
        .table_files(table, files, total, None, counter)
        .await
}

/// The rows of the table's last version, at its catalog location.
async fn last_version(writing: &Writing<'_>, location: &str) -> Result<Vec<RunRow>> {
    let output = writing.output;
    let dir = output.key_of_url(location).ok_or_else(|| {
        Error::State(format!(
            "the run history's location {location} is outside the output {}",
            output.display
        ))
    })?;
    let mut rows = Vec::new();
    for (path, size) in carry::data_files(output, &dir).await? {
        let mut batches = carry::file_batches(output, path, size).await?;
        while let Some(batch) = batches.try_next().await? {
            rows.extend(history::from_batch(&batch)?);
        }
    }
    Ok(rows)
}
