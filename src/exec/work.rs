//! The work step: the sources' readers take items from their feeds, and the
//! job's SQL tables that this part of the run writes are written over them, with
//! the rejects table alongside. `naslake run` does every SQL table here, in one
//! DataFusion session that reads while discovery lists; a shard does the tables
//! written per item and stages the rows of the sources the finish reads whole.
//! Returns the tables' files and the staged sources; nothing is committed here.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use datafusion::arrow::array::RecordBatch;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::tables::Writing;
use crate::base::error::{Error, Result};
use crate::commit::{TableFiles, accounting};
use crate::discover::{Discovered, DiscoveredItem};
use crate::sources::{AnySource, Drain, Feed};
use crate::storage::Location;
use crate::transform;
use crate::write::TableWriter;
use crate::write::upload::ParquetUpload;

/// Rejects are buffered into batches of about this many rows before writing.
const REJECTS_BATCH: usize = 4096;

/// Part size of a staged source's upload: object_store's default (10 MiB), so
/// that a staged copy of a large source may reach S3's 10 000 parts × 10 MiB.
const STAGED_PART_BYTES: usize = 10 << 20;

/// A copy of a source's rows as one part of the run read them, for the tables
/// computed over every part (a sharded run's finish).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedSource {
    pub source: String,
    pub url: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Where a part of the run stages the sources the finish reads whole.
pub struct Staging {
    pub sources: BTreeSet<String>,
    /// The directory staged sources go under (relative to the output).
    pub dir: String,
}

/// One part of a run's work: its items come from `feeds`.
pub struct Work<'a> {
    pub writing: &'a Writing<'a>,
    pub input: Option<&'a Location>,
    /// The SQL tables written here, besides the rejects table (always).
    pub tables: BTreeSet<String>,
    pub staging: Option<Staging>,
    /// The items discovered so far (all of them once discovery is over).
    pub manifest: Arc<Discovered>,
    pub progress: indicatif::ProgressBar,
}

/// What a part of the run wrote.
pub struct Written {
    pub tables: Vec<TableFiles>,
    pub staged_sources: Vec<StagedSource>,
}

impl Work<'_> {
    /// Reads every feed to its end into the tables, and checks that every
    /// source was read to its end and the counts add up.
    pub async fn run(
        &self,
        feeds: Vec<async_channel::Receiver<DiscoveredItem>>,
    ) -> Result<Written> {
        let drains: Vec<Arc<Drain>> = feeds.iter().map(|_| Arc::default()).collect();
        let written = self.write(feeds, &drains).await?;
        for (source, drain) in self.writing.job.sources.iter().zip(&drains) {
            if !drain.complete() {
                return Err(Error::Accounting(format!(
                    "source `{}` was not read to the end: the job's SQL stopped reading it early (a LIMIT?), so the rest would be neither loaded nor rejected",
                    source.name()
                )));
            }
        }
        check_counts(self.writing, &self.manifest, &written.tables)?;
        Ok(written)
    }

    /// Extracts, transforms and writes; the rejects table is written alongside,
    /// from what every source rejects, and comes last.
    async fn write(
        &self,
        feeds: Vec<async_channel::Receiver<DiscoveredItem>>,
        drains: &[Arc<Drain>],
    ) -> Result<Written> {
        let w = self.writing;
        let ctx = transform::session()?;
        let (rejects_tx, rejects_rx) = async_channel::bounded::<RecordBatch>(64);
        let rejects_table = w.job.rejects_table().clone();
        let rejects_counter: Arc<AtomicU32> = Arc::default();
        let rejects_tally = w.tally_for(&rejects_table);
        let rejects_writer =
            w.tallying_writer(&rejects_table, rejects_counter.clone(), &rejects_tally)?;
        let rejects_task = tokio::spawn(write_rejects(rejects_writer, rejects_rx));
        let written = self.write_sql_tables(&ctx, feeds, drains, rejects_tx).await;
        // Dropping the session drops the sources' tables, and with them the unit
        // channels: readers still blocked on them stop, and drop the last senders of
        // the rejects channel, so the rejects writer finishes. It is awaited on every
        // path, so none of its files appears after the run's cleanup.
        drop(ctx);
        let rejects = rejects_task
            .await
            .map_err(|e| {
                Error::Accounting(format!(
                    "the rejects writer {}",
                    crate::base::panics::task_failure(e)
                ))
            })
            .and_then(|r| r);
        let mut done = written?;
        let (files, rows) = rejects?;
        let rejects = w
            .table_files(
                &rejects_table,
                files,
                rows,
                rejects_tally.map(|t| t.take()),
                rejects_counter,
            )
            .await?;
        done.tables.push(rejects);
        Ok(done)
    }

    /// Registers the sources in the session and writes this part's SQL tables
    /// in the job's order; then stages the sources the finish reads.
    async fn write_sql_tables(
        &self,
        ctx: &SessionContext,
        feeds: Vec<async_channel::Receiver<DiscoveredItem>>,
        drains: &[Arc<Drain>],
        rejects: async_channel::Sender<RecordBatch>,
    ) -> Result<Written> {
        let w = self.writing;
        for ((source, items), drain) in w.job.sources.iter().zip(feeds).zip(drains) {
            let feed = Feed {
                items,
                // Only a source that reads listed objects reads from the input.
                input: source.objects().and(self.input.cloned()),
                rejects: rejects.clone(),
                partitions: transform::cores(),
                progress: self.progress.clone(),
                drain: drain.clone(),
            };
            let fresh = Arc::<dyn AnySource>::clone(source).table(feed)?;
            let provider = w
                .increment
                .and_then(|(inc, _)| inc.using.providers.get(source.name()));
            let table = match provider {
                Some(provider) => w.with_old_rows(ctx, source, fresh, provider).await?,
                None => fresh,
            };
            ctx.register_table(source.name(), table)?;
            w.register_relations(ctx, source.as_ref())?;
        }
        drop(rejects);
        ctx.register_object_store(w.output.store_url.as_ref(), w.output.store.clone());
        let mut tables = Vec::new();
        for table in w.job.tables.iter().filter(|t| t.sql.is_some()) {
            if !self.tables.contains(&table.name) {
                continue;
            }
            let t = w
                .write_sql_table(ctx, table, self.input_size_hint().await)
                .await?;
            w.register_for_later(ctx, &t).await?;
            tables.push(t);
        }
        let mut staged_sources = Vec::new();
        if let Some(staging) = &self.staging {
            for source in &staging.sources {
                staged_sources.push(self.stage_source(ctx, staging, source).await?);
            }
        }
        Ok(Written {
            tables,
            staged_sources,
        })
    }

    /// Writes a source's rows, as this part read them, to the staging area.
    async fn stage_source(
        &self,
        ctx: &SessionContext,
        staging: &Staging,
        source: &str,
    ) -> Result<StagedSource> {
        let output = self.writing.output;
        let path = output.child(&format!(
            "{}/{source}/{}.parquet",
            staging.dir, self.writing.file_tag
        ));
        let df = ctx.table(source).await?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let mut stream = df.execute_stream().await?;
        self.writing.staged.add(path.clone());
        let mut writer = ParquetUpload::try_new(
            output.store.clone(),
            path.clone(),
            STAGED_PART_BYTES,
            schema,
            WriterProperties::default(),
        )?;
        let mut rows = 0;
        let written: Result<()> = async {
            while let Some(batch) = stream.try_next().await? {
                rows += batch.num_rows() as u64;
                writer.write(&batch).await?;
            }
            writer.finish().await?;
            Ok(())
        }
        .await;
        if let Err(e) = written {
            // Parts already sent must not linger as an unfinished upload.
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "the upload of a staged source that failed could not be aborted");
            }
            return Err(e);
        }
        let bytes = writer.bytes_written() as u64;
        Ok(StagedSource {
            source: source.to_string(),
            url: output.url_of(&path),
            rows,
            bytes,
        })
    }

    /// The input size that sizes write parallelism: discovery runs alongside, so
    /// this waits (briefly) until every source is listed or waits for readers
    /// (its feed full), or enough bytes are found.
    async fn input_size_hint(&self) -> u64 {
        let sources = self.writing.job.sources.len() as u64;
        let enough = transform::bytes_per_writer() * transform::cores() as u64;
        for _ in 0..400 {
            if listing_settled(sources, &self.manifest, enough) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.manifest.bytes()
    }
}

/// Whether the listing has told all it will before readers start: every source
/// is listed or waits on a full feed, or `enough` bytes are found. (Counting
/// items against every source's feed, as before, waited out the whole timeout
/// when one source was empty and the other's feed full: 2.7 s of a 4 s run over
/// 20 000 small files.)
fn listing_settled(sources: u64, manifest: &Discovered, enough: u64) -> bool {
    manifest.sources_settled() >= sources || manifest.bytes() >= enough
}

/// Every item's records are loaded or rejected, and the rejects table holds a
/// row for each rejected one (the gate before anything is committed).
pub fn check_counts(
    writing: &Writing<'_>,
    manifest: &Discovered,
    tables: &[TableFiles],
) -> Result<()> {
    let rejects_name = &writing.job.rejects_table().name;
    let rejects_rows = tables
        .iter()
        .find(|t| &t.table.name == rejects_name)
        .map_or(0, |t| t.rows);
    // In the order found: the run's end sorts them once, in `conclude`.
    accounting::check(&manifest.items_as_found(), rejects_rows)
}

/// Writes what the sources reject, in batches of about [`REJECTS_BATCH`] rows.
async fn write_rejects(
    mut writer: TableWriter,
    rx: async_channel::Receiver<RecordBatch>,
) -> Result<(Vec<crate::write::WrittenFile>, u64)> {
    // A panic (a bug) is an error here, so that the uploads are aborted.
    let outcome = crate::base::panics::caught("the rejects writer", async {
        let mut buf: Vec<RecordBatch> = Vec::new();
        let mut buffered = 0;
        while let Ok(batch) = rx.recv().await {
            buffered += batch.num_rows();
            buf.push(batch);
            if buffered >= REJECTS_BATCH {
                write_buffered(&mut writer, &mut buf).await?;
                buffered = 0;
            }
        }
        write_buffered(&mut writer, &mut buf).await
    })
    .await;
    match outcome {
        Ok(()) => {
            let rows = writer.rows_written;
            Ok((writer.finish().await?, rows))
        }
        Err(e) => {
            // Closing the channel makes the sources fail too, so the run stops.
            rx.close();
            writer.abort().await;
            Err(e)
        }
    }
}

async fn write_buffered(writer: &mut TableWriter, buf: &mut Vec<RecordBatch>) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let batch = datafusion::arrow::compute::concat_batches(&buf[0].schema(), buf.iter())?;
    buf.clear();
    writer.write(&batch).await
}
