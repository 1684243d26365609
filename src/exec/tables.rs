//! Writing a run's tables, wherever in the protocol that happens (the work over
//! a feed, or the finish over every shard's output): a table's writers, its rows
//! tallied per object, and in an incremental run its merge with the table's last
//! version. What one table got is a [`TableFiles`], ready for the commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use datafusion::catalog::TableProvider;
use datafusion::functions::core::expr_fn::nullif;
use datafusion::prelude::{SessionContext, cast, ident, lit};
use tracing::info;

use super::basis::{Increment, Listed};
use super::roles::TableRoles;
use crate::base::error::{Error, Result};
use crate::commit::{TableFiles, TablePlan, next_state};
use crate::job::{Job, JobTable};
use crate::model::KEY_COLUMN;
use crate::model::TableKind;
use crate::sources::AnySource;
use crate::storage::Location;
use crate::transform::files_table::{FilesTable, TableFile};
use crate::transform::{self, lineage::Lineage};
use crate::write::carry::{self, OldTable};
use crate::write::keys::KeyTally;
use crate::write::layout::{HIVE_NULL_PARTITION, Placement};
use crate::write::{self, Staged, TableWriter, WrittenFile};

/// Everything a table's writers need, shared by the tables of one process's part
/// of a run.
pub struct Writing<'a> {
    pub job: &'a Job,
    pub output: &'a Location,
    /// Where each table's files go (the commit's plan of the catalog).
    pub plans: &'a std::collections::HashMap<String, TablePlan>,
    pub roles: &'a TableRoles,
    pub lineage: &'a std::collections::HashMap<String, Lineage>,
    /// The last committed state, in an incremental run, and what its listing
    /// found against it.
    pub increment: Option<(&'a Increment, &'a Listed)>,
    /// Starts the names of the data files this process writes (the run id; in a
    /// shard the shard and attempt too; in a commit a tag of its own), so no two
    /// processes share a name.
    pub file_tag: String,
    /// Every file written, for the one cleanup of a failed run.
    pub staged: Staged,
}

impl Writing<'_> {
    /// Plans `table`'s SQL in `ctx` and writes it, with as many writers as
    /// `input_bytes` calls for.
    pub async fn write_sql_table(
        &self,
        ctx: &SessionContext,
        table: &JobTable,
        input_bytes: u64,
    ) -> Result<TableFiles> {
        let plan = transform::plan_table(ctx, table).await?;
        let writers = transform::writers_for(input_bytes, &plan);
        let streams = transform::output_streams(plan, ctx, writers)?;
        let counter: Arc<AtomicU32> = Arc::default();
        let tally = self.tally_for(table);
        let (files, rows) = write::write_streams(streams, || {
            self.tallying_writer(table, Arc::clone(&counter), &tally)
        })
        .await?;
        info!(table = %table.name, rows, files = files.len(), "table written");
        self.table_files(table, files, rows, tally.map(|t| t.take()), counter)
            .await
    }

    /// Registers `source`'s relations in `ctx`, with the job's table that holds
    /// its rows as they are (the first by name, when several do).
    pub fn register_relations(&self, ctx: &SessionContext, source: &dyn AnySource) -> Result<()> {
        let rows = self
            .lineage
            .iter()
            .filter(|(_, l)| l.preserves.as_deref() == Some(source.name()))
            .map(|(t, _)| t.as_str())
            .min();
        transform::register_relations(ctx, source.name(), source.relations(rows))
    }

    /// A table kept per object tallies its rows by key (for the state).
    pub fn tally_for(&self, table: &JobTable) -> Option<Arc<KeyTally>> {
        (self.roles.kind(&table.name) == TableKind::Objects).then(Arc::default)
    }

    pub fn tallying_writer(
        &self,
        table: &JobTable,
        counter: Arc<AtomicU32>,
        tally: &Option<Arc<KeyTally>>,
    ) -> Result<TableWriter> {
        let writer = self.table_writer(table, counter)?;
        match tally {
            Some(t) => writer.tally_keys(t.clone()),
            None => Ok(writer),
        }
    }

    /// Where `table`'s files go.
    fn placement(&self, table: &JobTable) -> Result<Arc<Placement>> {
        self.plans
            .get(&table.name)
            .map(|p| p.placement.clone())
            .ok_or_else(|| Error::Accounting(format!("table {} was not planned", table.name)))
    }

    /// A writer for one table; writers sharing `counter` name files apart.
    pub fn table_writer(&self, table: &JobTable, counter: Arc<AtomicU32>) -> Result<TableWriter> {
        TableWriter::new(
            self.output,
            self.placement(table)?,
            table,
            &self.file_tag,
            counter,
            self.staged.clone(),
        )
    }

    /// A table's fresh files as the commit takes them: in an incremental run,
    /// merged partition by partition with the table's last version when the table
    /// is kept per object (`tally` is its rows by object).
    pub async fn table_files(
        &self,
        table: &JobTable,
        mut files: Vec<WrittenFile>,
        rows: u64,
        tally: Option<crate::commit::KeyRows>,
        counter: Arc<AtomicU32>,
    ) -> Result<TableFiles> {
        let mut merged = None;
        if let (Some((inc, listed)), Some(_)) = (self.increment, &tally) {
            let removed = listed.removed.iter().cloned().collect();
            let old = OldTable {
                partitions: inc
                    .previous
                    .tables
                    .get(&table.name)
                    .map(|t| t.locations())
                    .unwrap_or_default(),
                rows: next_state::rows_by_partition(&inc.previous, &table.name, None),
                removed_rows: next_state::rows_by_partition(
                    &inc.previous,
                    &table.name,
                    Some(&removed),
                ),
            };
            let placement = self.placement(table)?;
            let writer = self.table_writer(table, Arc::clone(&counter))?;
            let (merge, carried) = carry::merge(
                self.output,
                &table.name,
                &old,
                &removed,
                &files,
                writer,
                &placement,
                &self.staged,
            )
            .await?;
            info!(table = %table.name, counts = ?merge.counts, "merged with the last version");
            files.extend(carried);
            // A partition that got new rows now holds them next to its old rows,
            // copied or rewritten: one file of each, joined as the writers' are.
            files = self
                .table_writer(table, counter)?
                .join_partitions(files)
                .await?;
            merged = Some(merge);
        }
        Ok(TableFiles {
            table: table.clone(),
            prefix: self.output.child(&table.name),
            files,
            rows,
            tally,
            merge: merged,
        })
    }

    /// Makes a table just written readable by later SQL of the run: exactly its
    /// new version (the files written, and in an incremental run the partitions
    /// kept as they were, when later SQL reads the table).
    pub async fn register_for_later(&self, ctx: &SessionContext, t: &TableFiles) -> Result<()> {
        let read_later = self
            .lineage
            .values()
            .any(|l| l.tables.contains(&t.table.name));
        let mut files = t.files.clone();
        if read_later && let Some(m) = &t.merge {
            files.extend(kept_files(self.output, &m.kept).await?);
        }
        register_files(ctx, self.output, &t.table, &files)
    }

    /// A source as a full run would see it, when a table (`provider`) keeps its
    /// rows one for one: the rows of the objects read now, and of every unchanged
    /// object the rows the table's last version holds of it.
    pub async fn with_old_rows(
        &self,
        ctx: &SessionContext,
        source: &Arc<dyn AnySource>,
        fresh: Arc<dyn TableProvider>,
        provider: &str,
    ) -> Result<Arc<dyn TableProvider>> {
        let (Some((inc, listed)), Some(table)) = (self.increment, self.job.table(provider)) else {
            return Err(Error::Accounting(format!(
                "source {} has no rows to come back from",
                source.name()
            )));
        };
        let locations = inc
            .previous
            .tables
            .get(provider)
            .map(|t| t.locations())
            .unwrap_or_default();
        let files = kept_files(self.output, &locations)
            .await?
            .into_iter()
            .map(|f| TableFile {
                path: f.path,
                size: f.bytes,
                partition_values: f.partition_values,
            })
            .collect();
        let keys = table.schema.partition_key_names();
        let old = FilesTable::new(
            table.schema.file_schema(),
            &keys,
            self.output.store_url.clone(),
            files,
        );
        let mut old = ctx.read_table(Arc::new(old))?;
        if !listed.removed.is_empty() {
            let removed = listed.removed.iter().map(|k| lit(k.as_str())).collect();
            old = old.filter(ident(KEY_COLUMN).in_list(removed, true))?;
        }
        let columns = source
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let mut c = ident(f.name());
                if keys.contains(f.name()) {
                    // A partition value comes back as its directory name.
                    c = nullif(c, lit(HIVE_NULL_PARTITION));
                }
                cast(c, f.data_type().clone()).alias(f.name())
            })
            .collect::<Vec<_>>();
        let old = old.select(columns)?;
        let fresh = ctx.read_table(fresh)?;
        info!(source = %source.name(), table = provider, "unchanged objects' rows come from the table's last version");
        Ok(fresh.union(old)?.into_view())
    }
}

/// The data files of partitions kept as they were (values → location).
async fn kept_files(
    output: &Location,
    kept: &BTreeMap<Vec<String>, String>,
) -> Result<Vec<WrittenFile>> {
    let mut out = Vec::new();
    for (values, location) in kept {
        let Some(dir) = output.key_of_url(location) else {
            return Err(Error::State(format!(
                "partition location {location} is outside the output {}",
                output.display
            )));
        };
        for (path, size) in carry::data_files(output, &dir).await? {
            out.push(WrittenFile {
                url: output.url_of(&path),
                path,
                partition_values: values.clone(),
                rows: 0,
                bytes: size,
            });
        }
    }
    Ok(out)
}

/// Registers exactly `files` as `table` in `ctx`.
pub fn register_files(
    ctx: &SessionContext,
    output: &Location,
    table: &JobTable,
    files: &[WrittenFile],
) -> Result<()> {
    let files = files
        .iter()
        .map(|f| TableFile {
            path: f.path.clone(),
            size: f.bytes,
            partition_values: f.partition_values.clone(),
        })
        .collect();
    let provider = FilesTable::new(
        table.schema.file_schema(),
        &table.schema.partition_key_names(),
        output.store_url.clone(),
        files,
    );
    ctx.register_table(table.name.as_str(), Arc::new(provider))?;
    Ok(())
}
