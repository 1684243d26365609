//! The run history as a table of the job (`[tables.naslake_runs]`): at the
//! commit, every report in the output and the committing run's own row, written
//! whole as a new version of the table and committed with the run's other tables,
//! so a run that fails or is killed leaves it as it was.

use std::sync::Arc;

use super::tables::Writing;
use crate::base::error::Result;
use crate::commit::TableFiles;
use crate::history::{self, RunRow};
use crate::job::JobTable;

/// Writes the history table: `own` (the committing run's row) first, then the
/// rows of every other report in the output, newest first.
pub async fn write(writing: &Writing<'_>, table: &JobTable, own: RunRow) -> Result<TableFiles> {
    // The committing run's own report, if it has one yet, says `running`.
    let earlier = history::list(writing.output, None, None).await?;
    let own_id = own.run_id.clone();
    let mut rows = vec![own];
    rows.extend(earlier.into_iter().filter(|r| r.run_id != own_id));
    let total = rows.len() as u64;
    // The row counts the history table among what the run wrote.
    rows[0].rows_out += total;
    let batch = history::to_batch(&rows)?;
    let counter = Arc::default();
    let mut writer = writing.table_writer(table, Arc::clone(&counter))?;
    writer.write(&batch).await?;
    let files = writer.finish().await?;
    writing
        .table_files(table, files, total, None, counter)
        .await
}
