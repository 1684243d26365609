//! Runs one job: discover → extract → transform → write → commit (DESIGN.md).
//!
//! Nothing is visible until the commit: the catalog is changed only after every
//! table's files are complete and the run's counts add up; a failure before that
//! deletes the files the run wrote and leaves the catalog as it was. Files that a
//! commit replaces (write mode `overwrite` / `overwrite-partitions`) are deleted
//! after the catalog points at the new ones.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ExecutionPlanProperties, execute_stream, execute_stream_partitioned,
};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogSpec};
use crate::commit::{TableFiles, TablePlan, check_accounting, commit, delete_written, plan};
use crate::discover::{self, DiscoveredFile, Manifest, ManifestEntry};
use crate::engine;
use crate::error::{EXIT_OK, EXIT_REJECTS, Error, Result};
use crate::files_table::{FilesTable, TableFile};
use crate::report::{FileReport, RunReport, SourceReport, Totals};
use crate::sink::{TableWriter, WrittenFile};
use crate::sources::csv::CsvLayout;
use crate::sources::csv::feed::csv_table;
use crate::sources::{self, FileStats, Reject};
use crate::spec::{Job, JobTable};
use crate::storage::Location;

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

/// Rejects are buffered into batches of this many rows.
const REJECTS_BATCH: usize = 4096;
/// Files discovered but not yet picked up by their source's reader.
const DISCOVERED_IN_FLIGHT: usize = 1024;

/// `--dry-run`: list every source completely and report what a run would read.
async fn dry_run(job: &Job, input: &Location, mut report: RunReport) -> Result<RunOutcome> {
    let mut files = Vec::new();
    for (name, source) in &job.spec.sources {
        let listing = discover::list_source(input, name, source).await?;
        let n = listing.entries.len() as u64;
        report.sources.push(SourceReport {
            source: name.clone(),
            prefix: source.prefix.clone(),
            objects_listed: listing.listed,
            objects_skipped: listing.listed - n,
            files: n,
        });
        report.totals.objects_listed += listing.listed;
        report.totals.objects_skipped += listing.listed - n;
        files.extend(
            listing
                .entries
                .into_iter()
                .map(|e| (e, Arc::new(FileStats::default()))),
        );
    }
    report.status = "dry_run".into();
    report.totals.files_seen = files.len() as u64;
    report.files = file_reports(&files);
    Ok(RunOutcome {
        report,
        exit_code: EXIT_OK,
    })
}

pub async fn run_job(job_path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let job = Job::load(job_path, &opts.overrides)?;
    if let Some(t) = job.rejects_table() {
        sources::check_rejects_schema(&t.schema)
            .map_err(|e| Error::config(format!("table {}: {e}", t.name)))?;
    }
    let input_url = opts.input.clone().unwrap_or_else(|| job.spec.input_url());
    let output_url = opts
        .output
        .clone()
        .or_else(|| job.spec.output.clone())
        .unwrap_or_else(|| "./lake".into());
    // Settings are checked before any work, like the spec.
    engine::memory_limit()?;
    let input = Location::open(&input_url)?;
    let output = Location::open(&output_url)?;
    if input.contains(&output) {
        return Err(Error::config(format!(
            "output {output_url} lies inside input {input_url}: source data is read-only, write somewhere else"
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
    info!(job = %job.spec.name, run_id = %run_id, input = %input_url, output = %output_url, "run started");

    let mut report = RunReport {
        run_id: run_id.clone(),
        job: job.spec.name.clone(),
        status: "running".into(),
        error: None,
        started_at: started_at.to_rfc3339(),
        finished_at: String::new(),
        duration_seconds: 0.0,
        input: input_url.clone(),
        output: output_url.clone(),
        catalog: format!("{} database {database}", catalog.describe()),
        totals: Totals::default(),
        sources: Vec::new(),
        files: Vec::new(),
        tables: Vec::new(),
    };
    if opts.dry_run {
        return dry_run(&job, &input, report).await;
    }
    // Where each table's files go, and whether its schema change is allowed, is
    // decided against the catalog before anything is written.
    let plans = plan(&job, &catalog, &database, &output, &run_id).await?;

    // Discover while working: each source is listed page by page, and its reader
    // starts on the first file found.
    let progress = progress_bar(opts.progress);
    let manifest = Arc::new(Manifest::default());
    let mut receivers = HashMap::new();
    let mut listings = Vec::new();
    for (name, source) in &job.spec.sources {
        let (tx, rx) = async_channel::bounded(DISCOVERED_IN_FLIGHT);
        receivers.insert(name.clone(), rx);
        listings.push(tokio::spawn(discover::discover_into(
            input.clone(),
            name.clone(),
            source.clone(),
            manifest.clone(),
            tx,
            progress.clone(),
        )));
    }
    let run_input = RunInput {
        job: &job,
        input: &input,
        output: &output,
        run_id: &run_id,
        plans: &plans,
        manifest: &manifest,
        receivers: std::sync::Mutex::new(receivers),
        progress: progress.clone(),
    };
    let written = execute(&run_input).await;
    progress.finish_and_clear();
    // The readers drained (or dropped) the discovery channels, so listing is over.
    let mut listing_error = None;
    for t in listings {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                listing_error.get_or_insert(e);
            }
            Err(e) => {
                listing_error
                    .get_or_insert(Error::Accounting(format!("discovery task failed: {e}")));
            }
        }
    }
    let file_stats: Vec<(ManifestEntry, Arc<FileStats>)> = manifest
        .files()
        .into_iter()
        .map(|f| (f.entry, f.stats))
        .collect();
    for (name, prefix, listed, files) in manifest.source_counts() {
        report.totals.objects_listed += listed;
        report.totals.objects_skipped += listed - files;
        report.sources.push(SourceReport {
            source: name,
            prefix,
            objects_listed: listed,
            objects_skipped: listed - files,
            files,
        });
    }
    report.sources.sort_by(|a, b| a.source.cmp(&b.source));
    let written = match (written, listing_error) {
        (Ok(tables), Some(e)) => {
            delete_written(&output, &tables).await;
            Err(e)
        }
        (written, _) => written,
    };

    let result = match written {
        Ok(tables) => match check_accounting(&file_stats, &tables) {
            Ok(()) => commit(&job, &catalog, &database, &output, &run_id, &plans, tables).await,
            Err(e) => {
                delete_written(&output, &tables).await;
                Err(e)
            }
        },
        Err(e) => Err(e),
    };

    report.files = file_reports(&file_stats);
    fill_totals(&mut report.totals, &report.files);
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
                "succeeded_with_rejects"
            } else {
                "succeeded"
            }
            .into();
            if rejected { EXIT_REJECTS } else { EXIT_OK }
        }
        Err(e) => {
            report.status = "failed".into();
            report.error = Some(e.to_string());
            if matches!(e, Error::CatalogInconsistent(_)) {
                warn!(run_id = %run_id, error = %e, "run failed; check the catalog tables it names");
            } else {
                warn!(run_id = %run_id, error = %e, "run failed; the catalog was not changed");
            }
            e.exit_code()
        }
    };
    finish_report(&mut report, started, &output).await;
    info!(run_id = %run_id, status = %report.status, rows_out = report.totals.rows_out, "run finished");
    Ok(RunOutcome { report, exit_code })
}

struct RunInput<'a> {
    job: &'a Job,
    input: &'a Location,
    output: &'a Location,
    run_id: &'a str,
    plans: &'a HashMap<String, TablePlan>,
    /// The files discovered so far (all of them once discovery is over).
    manifest: &'a Manifest,
    /// Per source, the channel discovery sends its files on; taken by the reader.
    receivers: std::sync::Mutex<HashMap<String, async_channel::Receiver<DiscoveredFile>>>,
    progress: indicatif::ProgressBar,
}

/// Extract, transform and write every table. On error, every file written so far
/// is deleted before the error is returned.
async fn execute(run: &RunInput<'_>) -> Result<Vec<TableFiles>> {
    let job = run.job;
    let ctx = engine::session()?;
    let (rejects_tx, rejects_rx) = async_channel::bounded::<Reject>(REJECTS_BATCH);

    // The rejects table is written concurrently with the tables that read sources.
    let rejects_table = job
        .rejects_table()
        .expect("validated: one rejects table")
        .clone();
    let rejects_writer = table_writer(run, &rejects_table, Arc::new(AtomicU32::new(0)))?;
    let rejects_task = tokio::spawn(write_rejects(rejects_writer, rejects_rx));

    for (name, source) in &job.spec.sources {
        let layout = Arc::new(CsvLayout::new(name, source));
        let files = run
            .receivers
            .lock()
            .ok()
            .and_then(|mut r| r.remove(name))
            .expect("one discovery channel per source");
        let table = csv_table(
            layout,
            files,
            run.input.store.clone(),
            rejects_tx.clone(),
            engine::cores(),
            run.progress.clone(),
        )?;
        ctx.register_table(name.as_str(), Arc::new(table))?;
    }
    drop(rejects_tx);
    ctx.register_object_store(run.output.store_url.as_ref(), run.output.store.clone());

    let mut done: Vec<TableFiles> = Vec::new();
    let mut failure: Option<Error> = None;
    for table in job.tables.iter().filter(|t| t.sql.is_some()) {
        match write_sql_table(&ctx, run, table).await {
            Ok(t) => {
                // Later SQL reads exactly the files this run wrote for the table.
                let files = t
                    .files
                    .iter()
                    .map(|f| TableFile {
                        path: f.path.clone(),
                        size: f.bytes,
                        partition_values: f.partition_values.clone(),
                    })
                    .collect();
                let provider = FilesTable::new(
                    t.table.schema.file_schema(),
                    &t.table.schema.partition_key_names(),
                    run.output.store_url.clone(),
                    files,
                );
                ctx.register_table(t.table.name.as_str(), Arc::new(provider))?;
                done.push(t);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Dropping the session drops the sources, and with them the last senders of
    // the rejects channel: the rejects writer then finishes.
    drop(ctx);
    let rejects = rejects_task
        .await
        .map_err(|e| Error::Accounting(format!("rejects writer panicked: {e}")));
    let rejects = match (rejects, failure) {
        (Ok(Ok(files)), None) => files,
        (Ok(Ok((files, _))), Some(e)) => {
            done.push(TableFiles {
                prefix: run.output.child(&rejects_table.name),
                table: rejects_table,
                rows: 0,
                files,
            });
            delete_written(run.output, &done).await;
            return Err(e);
        }
        (Ok(Err(e)), _) | (Err(e), _) => {
            delete_written(run.output, &done).await;
            return Err(e);
        }
    };
    let unread: Vec<String> = run
        .manifest
        .files()
        .into_iter()
        .filter(|f| !f.stats.finished.load(Ordering::Acquire))
        .map(|f| f.entry.key)
        .collect();
    let rows = rejects.1;
    done.push(TableFiles {
        prefix: run.output.child(&rejects_table.name),
        table: rejects_table,
        files: rejects.0,
        rows,
    });
    if !unread.is_empty() {
        delete_written(run.output, &done).await;
        return Err(Error::Accounting(format!(
            "{} input files were not read to the end (is every source used by the job's SQL?): {}",
            unread.len(),
            unread
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(done)
}

async fn write_sql_table(
    ctx: &datafusion::prelude::SessionContext,
    run: &RunInput<'_>,
    table: &JobTable,
) -> Result<TableFiles> {
    let sql = table.sql.as_deref().expect("filtered to SQL tables");
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| Error::config(format!("table {}: SQL: {e}", table.name)))?;
    let plan = df.create_physical_plan().await?;
    let task = ctx.task_ctx();
    // Encoding Parquet costs as much as parsing, so big runs write with one writer
    // per core (each partition of the plan feeds one); small runs use one writer,
    // which keeps one file per partition directory.
    let input_bytes = input_size_hint(run).await;
    let writers = sink_writers(input_bytes, plan.output_partitioning().partition_count());
    let streams: Vec<SendableRecordBatchStream> = if writers == 1 {
        vec![execute_stream(plan, task)?]
    } else {
        let mut buckets: Vec<Vec<SendableRecordBatchStream>> =
            (0..writers).map(|_| Vec::new()).collect();
        for (i, s) in execute_stream_partitioned(plan, task)?
            .into_iter()
            .enumerate()
        {
            buckets[i % writers].push(s);
        }
        buckets
            .into_iter()
            .map(|b| -> SendableRecordBatchStream {
                let schema = b[0].schema();
                Box::pin(RecordBatchStreamAdapter::new(
                    schema,
                    futures::stream::select_all(b),
                ))
            })
            .collect()
    };
    let counter = Arc::new(AtomicU32::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for stream in streams {
        let writer = table_writer(run, table, counter.clone())?;
        tasks.push(tokio::spawn(write_stream(writer, stream, cancel.clone())));
    }
    let mut files = Vec::new();
    let mut rows = 0;
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(Ok((f, r))) => {
                files.extend(f);
                rows += r;
            }
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(Error::Accounting(format!("writer task failed: {e}")));
            }
        }
    }
    let prefix = run.output.child(&table.name);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let done = TableFiles {
        table: table.clone(),
        prefix,
        files,
        rows,
    };
    if let Some(e) = failure {
        delete_written(run.output, std::slice::from_ref(&done)).await;
        return Err(e);
    }
    info!(table = %table.name, rows, files = done.files.len(), "table written");
    Ok(done)
}

/// The input size that sizes write parallelism: discovery runs alongside, so this
/// waits (briefly) until every source is listed or enough bytes were found.
async fn input_size_hint(run: &RunInput<'_>) -> u64 {
    let sources = run.job.spec.sources.len() as u64;
    let enough = BYTES_PER_WRITER * engine::cores() as u64;
    for _ in 0..400 {
        let files = run.manifest.files_found();
        if run.manifest.sources_done() >= sources
            || run.manifest.bytes() >= enough
            || files >= DISCOVERED_IN_FLIGHT as u64 * sources
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    run.manifest.bytes()
}

const BYTES_PER_WRITER: u64 = 256 << 20;

/// A writer for one table of this run; writers sharing `counter` name files apart.
fn table_writer(
    run: &RunInput<'_>,
    table: &JobTable,
    counter: Arc<AtomicU32>,
) -> Result<TableWriter> {
    let placement = run
        .plans
        .get(&table.name)
        .map(|p| p.placement.clone())
        .ok_or_else(|| Error::Accounting(format!("table {} was not planned", table.name)))?;
    TableWriter::new(
        run.output,
        placement,
        &table.schema,
        run.run_id,
        table.spec.compression,
        table.spec.target_file_size.as_u64(),
        counter,
    )
}

/// How many writers a table gets: one per core for big inputs, else one.
fn sink_writers(input_bytes: u64, partitions: usize) -> usize {
    let wanted = (input_bytes / BYTES_PER_WRITER).max(1) as usize;
    wanted.min(engine::cores()).min(partitions.max(1))
}

/// Drains one stream into one writer. On error (or when another writer of the
/// table failed) the writer's files are deleted.
async fn write_stream(
    mut writer: TableWriter,
    mut stream: SendableRecordBatchStream,
    cancel: Arc<AtomicBool>,
) -> Result<(Vec<WrittenFile>, u64)> {
    let result: Result<()> = async {
        while let Some(batch) = stream.try_next().await? {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Accounting("cancelled: another writer failed".into()));
            }
            writer.write(&batch).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let rows = writer.rows_written;
            Ok((writer.finish().await?, rows))
        }
        Err(e) => {
            cancel.store(true, Ordering::Relaxed);
            writer.abort().await;
            Err(e)
        }
    }
}

async fn write_rejects(
    mut writer: TableWriter,
    rx: async_channel::Receiver<Reject>,
) -> Result<(Vec<WrittenFile>, u64)> {
    let mut buf = Vec::with_capacity(REJECTS_BATCH);
    let mut outcome = Ok(());
    while let Ok(r) = rx.recv().await {
        buf.push(r);
        if buf.len() >= REJECTS_BATCH {
            if let Err(e) = writer.write(&sources::rejects_batch(&buf)).await {
                outcome = Err(e);
                break;
            }
            buf.clear();
        }
    }
    if outcome.is_ok() && !buf.is_empty() {
        outcome = writer.write(&sources::rejects_batch(&buf)).await;
    }
    match outcome {
        Ok(()) => {
            let rows = writer.rows_written;
            Ok((writer.finish().await?, rows))
        }
        Err(e) => {
            // Closing the channel makes the parsers fail too, so the run stops.
            rx.close();
            writer.abort().await;
            Err(e)
        }
    }
}

fn file_reports(stats: &[(ManifestEntry, Arc<FileStats>)]) -> Vec<FileReport> {
    stats
        .iter()
        .map(|(e, s)| FileReport {
            source: e.source.clone(),
            key: e.key.clone(),
            size: e.size,
            etag: e.etag.clone(),
            counts: s.counts(),
        })
        .collect()
}

fn fill_totals(t: &mut Totals, files: &[FileReport]) {
    t.files_seen = files.len() as u64;
    for f in files {
        let c = &f.counts;
        t.bytes_in += c.bytes_read;
        t.records_in += c.records;
        t.records_loaded += c.loaded;
        t.records_rejected += c.rejected;
        t.rejects_rows += c.rejected + u64::from(c.file_error.is_some());
        if c.file_error.is_some() {
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

/// A progress bar whose length grows as discovery finds files.
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
