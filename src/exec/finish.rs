//! The finish step of a run split into parts: the tables each part wrote are
//! taken as they are (in an incremental run, merged with their last version
//! partition by partition, as `naslake run` merges them), and every other table
//! is computed over them and over the sources' rows the parts staged, in the
//! job's order. (`naslake run` computes those tables in its work step's session,
//! so it has no finish of its own.)

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;

use super::tables::Writing;
use crate::base::error::{Error, Result};
use crate::commit::{KeyRows, TableFiles};
use crate::discover::Discovered;
use crate::transform;
use crate::transform::files_table::{FilesTable, TableFile};
use crate::write::WrittenFile;

/// Every part's output, as the finish takes it.
#[derive(Default)]
pub struct Collected {
    pub tables: HashMap<String, CollectedTable>,
    /// Each staged source's files.
    pub sources: HashMap<String, Vec<TableFile>>,
}

/// One table's files from every part, in the table's directories already.
#[derive(Default)]
pub struct CollectedTable {
    pub files: Vec<WrittenFile>,
    pub rows: u64,
    pub tally: Option<KeyRows>,
}

/// Computes the tables the parts did not write, and returns every table's
/// files, the rejects table last.
pub async fn finish(
    writing: &Writing<'_>,
    mut collected: Collected,
    manifest: &Discovered,
) -> Result<Vec<TableFiles>> {
    let (job, output) = (writing.job, writing.output);
    let ctx = transform::session()?;
    ctx.register_object_store(output.store_url.as_ref(), output.store.clone());
    for source in &job.sources {
        writing.register_relations(&ctx, source.as_ref())?;
        let Some(files) = collected.sources.remove(source.name()) else {
            continue;
        };
        let fresh: Arc<dyn TableProvider> = Arc::new(FilesTable::new(
            source.schema(),
            &[],
            output.store_url.clone(),
            files,
        ));
        let provider = writing
            .increment
            .and_then(|(inc, _)| inc.using.providers.get(source.name()));
        let table = match provider {
            Some(provider) => writing.with_old_rows(&ctx, source, fresh, provider).await?,
            None => fresh,
        };
        ctx.register_table(source.name(), table)?;
    }
    let rejects_name = &job.rejects_table().name;
    let mut done = Vec::new();
    let mut rejects = None;
    for table in &job.tables {
        let t = match collected.tables.remove(&table.name) {
            Some(parts) => {
                writing
                    .table_files(table, parts.files, parts.rows, parts.tally, Arc::default())
                    .await?
            }
            // The run history is written by the commit, after every other table.
            None if job.runs_table().is_some_and(|r| r.name == table.name) => continue,
            None if table.sql.is_some() => {
                writing
                    .write_sql_table(&ctx, table, manifest.bytes())
                    .await?
            }
            None => {
                return Err(Error::Shards(format!(
                    "no shard wrote table {}",
                    table.name
                )));
            }
        };
        writing.register_for_later(&ctx, &t).await?;
        if &table.name == rejects_name {
            rejects = Some(t);
        } else {
            done.push(t);
        }
    }
    done.extend(rejects);
    super::work::check_counts(writing, manifest, &done)?;
    Ok(done)
}
