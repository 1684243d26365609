//! `naslake run`: the whole protocol in one process. Reading starts while the
//! listing goes on (an incremental run lists first: it must know what was
//! deleted before it rewrites a partition), sources are read in place, every
//! table is written in one DataFusion session where it stays, and the run
//! commits once.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tracing::info;

use super::{LeaseStep, RunOptions, addresses, decide_basis, dry_run, new_run_id, progress_bar};
use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::catalog::CatalogSpec;
use crate::commit::TableFiles;
use crate::commit::lease::Lease;
use crate::commit::state::StateDir;
use crate::discover::Discovered;
use crate::exec::Setup;
use crate::exec::basis::Listed;
use crate::exec::conclude::{Decided, RunOutcome};
use crate::exec::discovery::{Discovery, Pace};
use crate::exec::work::Work;
use crate::job::Job;
use crate::sources::Registry;

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
    let job = Job::load(job_path, &opts.overrides, registry)?;
    let (input_url, output_url) = addresses(&job, opts.input.as_deref(), opts.output.as_deref());
    let catalog_spec = opts.catalog.clone().unwrap_or(CatalogSpec::Local(None));
    let setup = Setup::new(job, input_url, &output_url, &catalog_spec, new_run_id()).await?;
    if opts.dry_run {
        return dry_run(&setup, opts.requested(&setup.job)).await;
    }
    info!(job = %setup.job.spec.name, run_id = %setup.run_id, input = %setup.report.input, output = %setup.report.output, "run started");
    let state_dir = setup.state_dir();
    let lease = LeaseStep::Run
        .take(&state_dir, &setup.run_id, &setup.job)
        .await?;
    let outcome = run_leased(&setup, &state_dir, &lease, opts, started).await;
    LeaseStep::Run.end(lease, succeeded(&outcome)).await;
    outcome
}

/// A run that did what it was asked (a run that failed after it started work
/// still has an outcome, with its error).
pub(super) fn succeeded(outcome: &Result<RunOutcome>) -> bool {
    match outcome {
        Ok(o) => o.report.error.is_none(),
        Err(Error::Committed(_)) => true,
        Err(_) => false,
    }
}

async fn run_leased(
    setup: &Setup,
    state_dir: &StateDir,
    lease: &Lease,
    opts: &RunOptions,
    started: Instant,
) -> Result<RunOutcome> {
    let job = &setup.job;
    let warnings = Warnings::default();
    let requested = opts.requested(job);
    let recovered = setup
        .recover(state_dir, lease, requested.forced_full, &warnings)
        .await?;
    let basis = decide_basis(setup, state_dir, requested, &warnings).await?;
    let plans = setup.plan_tables(&basis).await?;
    let manifest = Arc::new(Discovered::default());
    let progress = progress_bar(opts.progress);
    let pace = match basis.increment() {
        Some(_) => Pace::Complete,
        None => Pace::Streaming,
    };
    let mut discovery = Discovery::list(
        job,
        setup.input.as_ref(),
        &manifest,
        &progress,
        basis.increment(),
        pace,
    );
    let feeds = discovery.take_feeds();
    // An incremental run knows what changed before it reads anything.
    let (listed, streaming, listing_error) = match basis.increment() {
        Some(inc) => match list_changes(setup, inc, discovery).await {
            Ok(l) => (Some(l), None, None),
            Err(e) => (None, None, Some(e)),
        },
        None => (None, Some(discovery), None),
    };
    let run = Decided {
        setup,
        state_dir,
        lease,
        basis,
        listed,
        recovered,
        plans,
        warnings,
    };
    let writing = run.writing(setup.run_id.clone());
    let work = Work {
        writing: &writing,
        input: setup.input.as_ref(),
        tables: job.tables.iter().map(|t| t.name.clone()).collect(),
        staging: None,
        manifest: manifest.clone(),
        progress: progress.clone(),
    };
    let written = match listing_error {
        Some(e) => Err(e),
        None if run.quiet() => {
            info!("nothing changed since the last committed run: nothing read, nothing committed");
            Ok(None)
        }
        None => write_all(setup, &work, feeds, streaming).await.map(Some),
    };
    progress.finish_and_clear();
    let outcome = run
        .conclude(written, &manifest, &writing.staged, started)
        .await;
    // The manifest holds an entry per item, each of a few allocations: freed
    // apart. `work` holds the other reference, so it goes first, or the
    // manifest would be freed here when `work` is.
    drop(work);
    crate::base::drop_apart::drop_apart(manifest);
    Ok(outcome)
}

/// Waits for an incremental run's listing, and sums up what changed.
async fn list_changes(
    setup: &Setup,
    inc: &crate::exec::basis::Increment,
    discovery: Discovery,
) -> Result<Listed> {
    let found = discovery.finish().await?;
    found
        .check_not_empty(&setup.job, setup.input.as_ref())
        .await?;
    found.listed(inc)
}

/// Writes every table over the feeds; a listing still going on (`streaming`)
/// is awaited after the work, which drained its feeds.
async fn write_all(
    setup: &Setup,
    work: &Work<'_>,
    feeds: Vec<async_channel::Receiver<crate::discover::DiscoveredItem>>,
    streaming: Option<Discovery>,
) -> Result<Vec<TableFiles>> {
    let written = work.run(feeds).await;
    if let Some(discovery) = streaming {
        // A listing that failed explains a work that failed with it (its feed
        // ended early, what the job's later SQL reads is missing): its error first.
        let found = discovery.finish().await?;
        let written = written?;
        found
            .check_not_empty(&setup.job, setup.input.as_ref())
            .await?;
        return Ok(written.tables);
    }
    Ok(written?.tables)
}
