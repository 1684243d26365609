//! Runs one job: discover → extract → transform → write → commit (DESIGN.md), one
//! module each; this file only drives them and writes the report.
//!
//! Nothing is visible until the commit: the catalog is changed only after every
//! table's files are complete and the run's counts add up. Every file the run
//! writes is in its staged list, and a run that fails at any point before the
//! catalog changed deletes exactly those, here, in one place.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use object_store::{ObjectStoreExt, PutPayload};
use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogSpec};
use crate::commit::{self, TableFiles, TablePlan, accounting, cleanup};
use crate::discover::{self, Discovered, DiscoveredItem, ItemSink, SourceListing};
use crate::error::{EXIT_OK, EXIT_REJECTS, Error, Result};
use crate::files_table::{FilesTable, TableFile};
use crate::job::{Job, JobTable};
use crate::report::{FileReport, RunReport, RunStatus, SourceReport, Totals, Warnings};
use crate::sources::{AnySource, Drain, Feed, Registry};
use crate::storage::{Location, redact_url};
use crate::transform;
use crate::write::{self, Staged, TableWriter, WrittenFile};

/// How a run was asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub input: Option<String>,
    pub output: Option<String>,
    pub catalog: Option<CatalogSpec>,
    pub overrides: Vec<String>,
    pub dry_run: bool,
    pub progress: bool,
}

/// The result of a run that got as far as doing work; a run that fails after that
/// point still has a report (status `failed`) and exit code 1.
pub struct RunOutcome {
    pub report: RunReport,
    pub exit_code: i32,
}

/// Rejects are buffered into batches of about this many rows before writing.
const REJECTS_BATCH: usize = 4096;
/// Items discovered but not yet picked up by their source's readers.
const DISCOVERED_IN_FLIGHT: usize = 1024;

/// Runs a job with the source kinds naslake ships.
pub async fn run_job(job_path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    run_job_with(job_path, opts, &Registry::builtin()).await
}

/// Runs a job with the source kinds of `registry`.
pub async fn run_job_with(
    job_path: &Path,
    opts: &RunOptions,
    registry: &Registry,
) -> Result<RunOutcome> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let job = Job::load(job_path, &opts.overrides, registry)?;
    let input_url = opts.input.clone().or_else(|| job.spec.input_url());
    let output_url = opts
        .output
        .clone()
        .or_else(|| job.spec.output.clone())
        .unwrap_or_else(|| "./lake".into());
    // Settings and the SQL are checked before any work, like the spec.
    transform::memory_limit()?;
    transform::check_job_sql(&job).await?;
    let input = input_url.as_deref().map(Location::open).transpose()?;
    if input.is_none()
        && let Some(s) = job.sources.iter().find(|s| s.objects().is_some())
    {
        return Err(Error::config(format!(
            "source `{}` reads objects under the job's input, but the job has no `input` (set it in the spec or pass --input)",
            s.name()
        )));
    }
    let output = Location::open(&output_url)?;
    if let Some(input) = &input
        && input.contains(&output)
    {
        return Err(Error::config(format!(
            "output {} lies inside input {}: source data is read-only, write somewhere else",
            redact_url(&output_url),
            redact_url(&input.display)
        )));
    }
    let catalog_spec = opts.catalog.clone().unwrap_or(CatalogSpec::Local(None));
    let default_catalog_dir = if crate::storage::is_remote(&output_url) {
        std::path::PathBuf::from("./lake")
    } else {
        std::path::PathBuf::from(output_url.strip_prefix("file://").unwrap_or(&output_url))
    };
    let (catalog, database) = Catalog::open(&catalog_spec, &default_catalog_dir).await?;
    // `--catalog glue:DB` names the database; otherwise the job spec does.
    let database = database.unwrap_or_else(|| job.spec.database.clone());
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let shown_input = input_url
        .as_deref()
        .map(redact_url)
        .unwrap_or_default()
        .to_string();
    let shown_output = redact_url(&output_url).to_string();
    info!(job = %job.spec.name, run_id = %run_id, input = %shown_input, output = %shown_output, "run started");

    let mut report = RunReport {
        run_id: run_id.clone(),
        job: job.spec.name.clone(),
        status: RunStatus::Running,
        error: None,
        warnings: Vec::new(),
        started_at: started_at.to_rfc3339(),
        finished_at: String::new(),
        duration_seconds: 0.0,
        input: shown_input,
        output: shown_output,
        catalog: format!("{} database {database}", catalog.describe()),
        totals: Totals::default(),
        sources: Vec::new(),
        files: Vec::new(),
        tables: Vec::new(),
    };
    if opts.dry_run {
        return dry_run(&job, input.as_ref(), report).await;
    }
    // Where each table's files go, and whether its schema change is allowed, is
    // decided against the catalog before anything is written.
    let plans = commit::plan(&job, &catalog, &database, &output, &run_id).await?;

    let run = Run {
        job: &job,
        input: input.as_ref(),
        output: &output,
        run_id: &run_id,
        plans: &plans,
        manifest: Arc::new(Discovered::default()),
        staged: Staged::default(),
        warnings: Warnings::default(),
        progress: progress_bar(opts.progress),
    };
    let result = run.extract_and_write().await;
    run.progress.finish_and_clear();
    let result = match result {
        Ok(tables) => {
            let target = commit::Target {
                job: &job,
                catalog: &catalog,
                database: &database,
                output: &output,
                run_id: &run_id,
            };
            commit::commit(&target, &plans, tables, &run.staged, &run.warnings).await
        }
        Err(e) => Err(e),
    };
    // The one place a failed run's files go: unless the catalog may point at
    // them (an undo that failed), they are deleted.
    if let Err(e) = &result {
        if matches!(e, Error::CatalogInconsistent(_)) {
            tracing::error!(error = %e, "catalog left inconsistent; this run's files are kept");
        } else {
            cleanup::discard(&output, &run.staged, &run.warnings).await;
        }
    }

    let items = run.manifest.items();
    report.sources = run
        .manifest
        .listings()
        .iter()
        .map(SourceReport::from)
        .collect();
    report.files = file_reports(&items);
    fill_totals(&mut report.totals, &report.files, &report.sources);
    let exit_code = match result {
        Ok(table_reports) => {
            for t in &table_reports {
                report.totals.rows_out += t.rows_written;
                report.totals.bytes_out += t.bytes_written;
                report.totals.files_written += t.files.len() as u64;
            }
            report.tables = table_reports;
            let rejected = report.totals.records_rejected > 0 || report.totals.files_rejected > 0;
            report.status = if rejected {
                RunStatus::SucceededWithRejects
            } else {
                RunStatus::Succeeded
            };
            if rejected { EXIT_REJECTS } else { EXIT_OK }
        }
        Err(e) => {
            report.status = RunStatus::Failed;
            report.error = Some(e.to_string());
            if matches!(e, Error::CatalogInconsistent(_)) {
                warn!(run_id = %run_id, error = %e, "run failed; check the catalog tables it names");
            } else {
                warn!(run_id = %run_id, error = %e, "run failed; the catalog was not changed");
            }
            e.exit_code()
        }
    };
    report.warnings = run.warnings.all();
    finish_report(&mut report, started, &output).await;
    info!(run_id = %run_id, status = %report.status, rows_out = report.totals.rows_out, "run finished");
    Ok(RunOutcome { report, exit_code })
}

/// `--dry-run`: discover every source completely, plan every table's SQL against
/// the sources' and earlier tables' columns, and report what a run would read.
async fn dry_run(job: &Job, input: Option<&Location>, mut report: RunReport) -> Result<RunOutcome> {
    let manifest = Arc::new(Discovered::default());
    for source in &job.sources {
        // Nothing reads the items: the channel is as large as the listing needs.
        let (tx, rx) = async_channel::unbounded();
        let mut sink = ItemSink::new(
            source.name(),
            manifest.clone(),
            tx,
            indicatif::ProgressBar::hidden(),
        );
        let prefix = source.discover(input, &mut sink).await?;
        sink.finish(&prefix);
        drop(rx);
    }
    let listings = manifest.listings();
    check_not_empty(job, input, &listings).await?;
    report.status = RunStatus::DryRun;
    report.sources = listings.iter().map(SourceReport::from).collect();
    report.files = file_reports(&manifest.items());
    fill_totals(&mut report.totals, &report.files, &report.sources);
    Ok(RunOutcome {
        report,
        exit_code: EXIT_OK,
    })
}

/// One run's state while it extracts and writes.
struct Run<'a> {
    job: &'a Job,
    input: Option<&'a Location>,
    output: &'a Location,
    run_id: &'a str,
    plans: &'a HashMap<String, TablePlan>,
    /// The items discovered so far (all of them once discovery is over).
    manifest: Arc<Discovered>,
    /// Every file written, for the one cleanup of a failed run.
    staged: Staged,
    warnings: Warnings,
    progress: indicatif::ProgressBar,
}

impl Run<'_> {
    /// Discovers while working (each source's readers start on the first item
    /// found), runs every table's SQL into its writers, and checks that the run's
    /// counts add up. Returns the tables' files, ready to commit.
    async fn extract_and_write(&self) -> Result<Vec<TableFiles>> {
        let mut feeds = Vec::new();
        let mut discovery = Vec::new();
        for source in &self.job.sources {
            let (tx, rx) = async_channel::bounded(DISCOVERED_IN_FLIGHT);
            feeds.push(rx);
            let mut sink = ItemSink::new(
                source.name(),
                self.manifest.clone(),
                tx,
                self.progress.clone(),
            );
            let (source, input) = (source.clone(), self.input.cloned());
            discovery.push(tokio::spawn(async move {
                let prefix = source.discover(input.as_ref(), &mut sink).await;
                let listing = sink.finish(prefix.as_deref().unwrap_or(""));
                prefix.map(|_| listing)
            }));
        }
        let drains: Vec<Arc<Drain>> = feeds.iter().map(|_| Arc::default()).collect();
        let written = self.write_tables(feeds, &drains).await;
        // The readers drained (or dropped) the discovery channels: listing is over.
        let mut listings = Vec::new();
        let mut listing_error = None;
        for task in discovery {
            match task.await {
                Ok(Ok(l)) => listings.push(l),
                Ok(Err(e)) => {
                    listing_error.get_or_insert(e);
                }
                Err(e) => {
                    listing_error
                        .get_or_insert(Error::Accounting(format!("discovery failed: {e}")));
                }
            }
        }
        let tables = written?;
        if let Some(e) = listing_error {
            return Err(e);
        }
        check_not_empty(self.job, self.input, &listings).await?;
        for (source, drain) in self.job.sources.iter().zip(&drains) {
            if !drain.complete() {
                return Err(Error::Accounting(format!(
                    "source `{}` was not read to the end: the job's SQL stopped reading it early (a LIMIT?), so the rest would be neither loaded nor rejected",
                    source.name()
                )));
            }
        }
        let rejects_name = &self.job.rejects_table().name;
        let rejects_rows = tables
            .iter()
            .find(|t| &t.table.name == rejects_name)
            .map_or(0, |t| t.rows);
        accounting::check(&self.manifest.items(), rejects_rows)?;
        Ok(tables)
    }

    /// Extracts, transforms and writes every table; the rejects table is written
    /// alongside, from what every source rejects.
    async fn write_tables(
        &self,
        feeds: Vec<async_channel::Receiver<DiscoveredItem>>,
        drains: &[Arc<Drain>],
    ) -> Result<Vec<TableFiles>> {
        let ctx = transform::session()?;
        let (rejects_tx, rejects_rx) = async_channel::bounded::<RecordBatch>(64);
        let rejects_table = self.job.rejects_table().clone();
        let rejects_writer = self.table_writer(&rejects_table, Default::default())?;
        let rejects_task = tokio::spawn(write_rejects(rejects_writer, rejects_rx));
        let written = self.write_sql_tables(&ctx, feeds, drains, rejects_tx).await;
        // Dropping the session drops the sources' tables, and with them the unit
        // channels: readers still blocked on them stop, and drop the last senders of
        // the rejects channel, so the rejects writer finishes. It is awaited on every
        // path, so none of its files appears after the run's cleanup.
        drop(ctx);
        let rejects = rejects_task
            .await
            .map_err(|e| Error::Accounting(format!("rejects writer panicked: {e}")))
            .and_then(|r| r);
        let mut done = written?;
        let (files, rows) = rejects?;
        done.push(TableFiles {
            prefix: self.output.child(&rejects_table.name),
            table: rejects_table,
            files,
            rows,
        });
        Ok(done)
    }

    /// Registers the sources in the session and writes every SQL table in order.
    async fn write_sql_tables(
        &self,
        ctx: &SessionContext,
        feeds: Vec<async_channel::Receiver<DiscoveredItem>>,
        drains: &[Arc<Drain>],
        rejects: async_channel::Sender<RecordBatch>,
    ) -> Result<Vec<TableFiles>> {
        for ((source, items), drain) in self.job.sources.iter().zip(feeds).zip(drains) {
            let feed = Feed {
                items,
                // Only a source that reads listed objects reads from the input.
                input: source.objects().and(self.input.cloned()),
                rejects: rejects.clone(),
                partitions: transform::cores(),
                progress: self.progress.clone(),
                drain: drain.clone(),
            };
            ctx.register_table(
                source.name(),
                Arc::<dyn AnySource>::clone(source).table(feed)?,
            )?;
        }
        drop(rejects);
        ctx.register_object_store(self.output.store_url.as_ref(), self.output.store.clone());
        let mut done = Vec::new();
        for table in self.job.tables.iter().filter(|t| t.sql.is_some()) {
            let t = self.write_sql_table(ctx, table).await?;
            // Later SQL reads exactly the files this run wrote for the table.
            register_written(ctx, self.output, &t.table, &t.files)?;
            done.push(t);
        }
        Ok(done)
    }

    async fn write_sql_table(&self, ctx: &SessionContext, table: &JobTable) -> Result<TableFiles> {
        let plan = transform::plan_table(ctx, table).await?;
        let writers = transform::writers_for(self.input_size_hint().await, &plan);
        let streams = transform::output_streams(plan, ctx, writers)?;
        let counter = Arc::default();
        let (files, rows) =
            write::write_streams(streams, || self.table_writer(table, Arc::clone(&counter)))
                .await?;
        info!(table = %table.name, rows, files = files.len(), "table written");
        Ok(TableFiles {
            table: table.clone(),
            prefix: self.output.child(&table.name),
            files,
            rows,
        })
    }

    /// The input size that sizes write parallelism: discovery runs alongside, so
    /// this waits (briefly) until every source is listed or enough bytes are found.
    async fn input_size_hint(&self) -> u64 {
        let sources = self.job.sources.len() as u64;
        let enough = transform::BYTES_PER_WRITER * transform::cores() as u64;
        for _ in 0..400 {
            if self.manifest.sources_done() >= sources
                || self.manifest.bytes() >= enough
                || self.manifest.items_found() >= DISCOVERED_IN_FLIGHT as u64 * sources
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        self.manifest.bytes()
    }

    /// A writer for one table of this run; writers sharing `counter` name files apart.
    fn table_writer(
        &self,
        table: &JobTable,
        counter: Arc<std::sync::atomic::AtomicU32>,
    ) -> Result<TableWriter> {
        let placement = self
            .plans
            .get(&table.name)
            .map(|p| p.placement.clone())
            .ok_or_else(|| Error::Accounting(format!("table {} was not planned", table.name)))?;
        TableWriter::new(
            self.output,
            placement,
            table,
            self.run_id,
            counter,
            self.staged.clone(),
        )
    }
}

/// Makes a table just written readable by later SQL of the run: exactly its files.
fn register_written(
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

/// A source that found nothing to read fails the run (it would empty its tables),
/// unless its spec allows that.
async fn check_not_empty(
    job: &Job,
    input: Option<&Location>,
    listings: &[SourceListing],
) -> Result<()> {
    for source in &job.sources {
        let allowed = job
            .spec
            .sources
            .get(source.name())
            .is_some_and(|s| s.allow_empty);
        let Some(listing) = listings.iter().find(|l| l.source == source.name()) else {
            continue;
        };
        if listing.items > 0 || allowed {
            continue;
        }
        return Err(match (source.objects(), input) {
            (Some(filter), Some(input)) => {
                discover::explain_empty(source.name(), input, filter, listing).await
            }
            _ => Error::NothingToRead(format!(
                "source `{}` found nothing to read ({}). Nothing was changed. If an empty source is normal for this job, set `sources.{}.allow_empty = true`",
                source.name(),
                listing.prefix,
                source.name()
            )),
        });
    }
    Ok(())
}

/// Writes what the sources reject, in batches of about [`REJECTS_BATCH`] rows.
async fn write_rejects(
    mut writer: TableWriter,
    rx: async_channel::Receiver<RecordBatch>,
) -> Result<(Vec<WrittenFile>, u64)> {
    let mut buf: Vec<RecordBatch> = Vec::new();
    let mut buffered = 0;
    let mut outcome = Ok(());
    while let Ok(batch) = rx.recv().await {
        buffered += batch.num_rows();
        buf.push(batch);
        if buffered >= REJECTS_BATCH {
            if let Err(e) = write_buffered(&mut writer, &mut buf).await {
                outcome = Err(e);
                break;
            }
            buffered = 0;
        }
    }
    if outcome.is_ok() {
        outcome = write_buffered(&mut writer, &mut buf).await;
    }
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

fn file_reports(items: &[DiscoveredItem]) -> Vec<FileReport> {
    items
        .iter()
        .map(|d| FileReport {
            item: (*d.item).clone(),
            counts: d.stats.counts(),
        })
        .collect()
}

fn fill_totals(t: &mut Totals, files: &[FileReport], sources: &[SourceReport]) {
    for s in sources {
        t.objects_listed += s.objects_listed;
        t.objects_skipped += s.objects_skipped;
    }
    t.files_seen = files.len() as u64;
    for f in files {
        let c = &f.counts;
        t.bytes_in += c.bytes_read;
        t.records_in += c.records;
        t.records_loaded += c.loaded;
        t.records_rejected += c.rejected;
        t.rejects_rows += c.rejected + u64::from(c.item_error.is_some());
        if c.item_error.is_some() {
            t.files_rejected += 1;
        } else {
            t.files_processed += 1;
        }
    }
}

async fn finish_report(report: &mut RunReport, started: Instant, output: &Location) {
    report.finished_at = chrono::Utc::now().to_rfc3339();
    report.duration_seconds = started.elapsed().as_secs_f64();
    let path = output.child(&format!("_naslake/runs/{}.json", report.run_id));
    let body = match serde_json::to_vec_pretty(report) {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "could not serialise the run report");
            return;
        }
    };
    if let Err(e) = output.store.put(&path, PutPayload::from(body)).await {
        warn!(error = %e, "could not write the run report");
    }
}

/// A progress bar whose length grows as discovery finds items.
fn progress_bar(enabled: bool) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} reading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
