//! `naslake plan`: decides the run (full or incremental, against the job's
//! state, with the same functions `naslake run` uses), lists the input into the
//! sharder, and writes the shards' item lists and then the plan.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tracing::info;

use super::{
    PLAN_FORMAT, PlannedBasis, RunPlan, ShardFile, absolute_if_local, changes_path, check_run_id,
};
use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::catalog::CatalogSpec;
use crate::commit::lease::Lease;
use crate::discover::Discovered;
use crate::discover::shards::{Sharder, Split};
use crate::drive::{LeaseStep, RunOptions, addresses, decide_basis, dry_run, new_run_id};
use crate::exec::basis::Basis;
use crate::exec::conclude::RunOutcome;
use crate::exec::discovery::{Discovery, Pace};
use crate::exec::{Setup, run_dir};
use crate::job::JobSnapshot;
use crate::sources::Registry;

/// What `naslake plan` was asked for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub job: PathBuf,
    /// The run's input, output, catalog and overrides, `--incremental`/`--full`
    /// and `--dry-run`, as `naslake run` takes them.
    pub run: RunOptions,
    /// `--catalog` as given (`local[:DIR]`, `glue[:DATABASE]`): the plan carries it.
    pub catalog: Option<String>,
    pub split: Split,
    /// The run's id; a new one when `None` (AWS Batch names it up front, so the
    /// array job and the commit know where the plan is before it exists).
    pub run_id: Option<String>,
}

/// The parts of a plan fixed before anything is listed.
struct Planning {
    setup: Setup,
    snapshot: JobSnapshot,
    input_url: Option<String>,
    output_url: String,
    catalog: String,
}

async fn prepare(opts: &PlanOptions, registry: &Registry) -> Result<Planning> {
    let (job, snapshot) = JobSnapshot::capture(&opts.job, &opts.run.overrides, registry)?;
    let (input_url, output_url) =
        addresses(&job, opts.run.input.as_deref(), opts.run.output.as_deref());
    let output_url = absolute_if_local(&output_url)?;
    let input_url = input_url.map(|u| absolute_if_local(&u)).transpose()?;
    let catalog = opts.catalog.clone().unwrap_or_else(|| "local".into());
    let catalog_spec: CatalogSpec = catalog.parse()?;
    let catalog = match &catalog_spec {
        // A relative catalog directory is made absolute: the commit may run elsewhere.
        CatalogSpec::Local(Some(dir)) => format!("local:{}", std::path::absolute(dir)?.display()),
        _ => catalog,
    };
    let run_id = match &opts.run_id {
        Some(id) => {
            check_run_id(id)?;
            id.clone()
        }
        None => new_run_id(),
    };
    let setup = Setup::new(job, input_url.clone(), &output_url, &catalog_spec, run_id).await?;
    setup.roles.check_shardable(&setup.job.spec.name)?;
    Ok(Planning {
        setup,
        snapshot,
        input_url,
        output_url,
        catalog,
    })
}

/// `naslake plan --dry-run`: what the run would read, as `naslake run --dry-run`
/// reports it; nothing is written and no lease is taken.
pub async fn dry_run_plan(opts: &PlanOptions, registry: &Registry) -> Result<RunOutcome> {
    let p = prepare(opts, registry).await?;
    dry_run(&p.setup, opts.run.requested(&p.setup.job)).await
}

/// `naslake plan`: lists the input, splits it into shards and writes the plan.
/// Returns the plan's address.
pub async fn plan_run(opts: &PlanOptions, registry: &Registry) -> Result<String> {
    let p = prepare(opts, registry).await?;
    let output = &p.setup.output;
    let plan_path = output.child(&format!("{}/plan.json", run_dir(&p.setup.run_id)));
    match output.store.get(&plan_path).await {
        Ok(found) => {
            // A plan step retried after it finished: the same plan, not a second.
            let earlier: RunPlan = serde_json::from_slice(&found.bytes().await?)?;
            let same = earlier.job == p.snapshot
                && earlier.input == p.input_url
                && earlier.output == p.output_url
                && earlier.catalog == p.catalog
                && earlier.requested == opts.run.incremental;
            if !same {
                return Err(Error::config(format!(
                    "run {} already has another plan ({}): a run id is used once",
                    p.setup.run_id,
                    output.url_of(&plan_path)
                )));
            }
            info!(run_id = %p.setup.run_id, "the run is planned already");
            return Ok(output.url_of(&plan_path));
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // The run holds the job's lease from here to its commit.
    let state_dir = p.setup.state_dir();
    let lease = LeaseStep::Plan
        .take(&state_dir, &p.setup.run_id, &p.setup.job)
        .await?;
    let planned = write_plan(&p, opts, &lease).await;
    LeaseStep::Plan.end(lease, planned.is_ok()).await;
    planned
}

/// Decides the basis, lists every source into the sharder, writes the shards'
/// item lists, then the plan (last: a plan that exists is complete).
async fn write_plan(p: &Planning, opts: &PlanOptions, lease: &Lease) -> Result<String> {
    let setup = &p.setup;
    let (job, output, input) = (&setup.job, &setup.output, setup.input.as_ref());
    let state_dir = setup.state_dir();
    let warnings = Warnings::default();
    let requested = opts.run.requested(job);
    let recovered = setup
        .recover(&state_dir, lease, requested.forced_full, &warnings)
        .await?;
    let basis = decide_basis(setup, &state_dir, requested, &warnings).await?;
    // A catalog changed behind the state's back fails the plan, not the commit.
    setup.plan_tables(&basis).await?;

    // Discovery streams into the sharder's spill files: nothing is kept per item.
    let manifest = Arc::new(Discovered::count_only());
    let mut discovery = Discovery::list(
        job,
        input,
        &manifest,
        &indicatif::ProgressBar::hidden(),
        basis.increment(),
        Pace::Streaming,
    );
    let mut sharder = Sharder::new()?;
    let mut found = futures::stream::select_all(discovery.take_feeds().into_iter().map(Box::pin));
    while let Some(item) = found.next().await {
        sharder.push((*item.item).clone())?;
    }
    let finished = discovery.finish().await?;
    finished.check_not_empty(job, input).await?;
    let planned_basis = match &basis {
        Basis::Incremental(inc) => {
            let listed = finished.listed(inc)?;
            if listed.quiet {
                // Nothing changed: not even a source read again in full is read.
                sharder = Sharder::new()?;
            }
            let path = output.child(&changes_path(&setup.run_id));
            let body = PutPayload::from(serde_json::to_vec(&listed)?);
            output.store.put(&path, body).await?;
            PlannedBasis::Incremental {
                increment: inc.using.clone(),
                quiet: listed.quiet,
            }
        }
        Basis::Full { reason } => PlannedBasis::Full {
            reason: reason.clone(),
            forced: requested.forced_full,
        },
    };

    let count = opts.split.count(sharder.bytes, sharder.items);
    let (items, bytes) = (sharder.items, sharder.bytes);
    let mut shards = Vec::with_capacity(count);
    let mut open: Option<ShardFile> = None;
    let written: Result<()> = async {
        for next in sharder.finish(count)? {
            let (shard, item) = next?;
            while open.as_ref().is_none_or(|f| f.index < shard) {
                if let Some(f) = open.as_mut() {
                    shards.push(f.close().await?);
                }
                // The closed file is replaced (until then, an error would abort
                // it: a no-op for an ended upload).
                open = Some(ShardFile::create(output, &setup.run_id, shards.len()));
            }
            if let Some(f) = open.as_mut() {
                f.push(&item).await?;
            }
        }
        // Shards the items did not reach (an incremental run with little to read)
        // get empty item lists: every shard of the plan exists.
        while shards.len() < count {
            let f =
                open.get_or_insert_with(|| ShardFile::create(output, &setup.run_id, shards.len()));
            shards.push(f.close().await?);
            open = None;
        }
        Ok(())
    }
    .await;
    if let Err(e) = written {
        // The shard file open when it failed, whether its lines or its close
        // failed (a close that failed has aborted its upload already; aborting
        // an ended upload does nothing).
        if let Some(f) = open.take() {
            f.abort().await;
        }
        return Err(e);
    }

    let plan = RunPlan {
        format: PLAN_FORMAT,
        run_id: setup.run_id.clone(),
        naslake_version: env!("CARGO_PKG_VERSION").into(),
        created_at: setup.report.started_at.clone(),
        job: p.snapshot.clone(),
        input: p.input_url.clone(),
        output: p.output_url.clone(),
        catalog: p.catalog.clone(),
        requested: opts.run.incremental,
        basis: planned_basis,
        recovered,
        warnings: warnings.all(),
        listings: finished.listings,
        items,
        bytes,
        shards,
    };
    let plan_path = output.child(&format!("{}/plan.json", run_dir(&setup.run_id)));
    let body = PutPayload::from(serde_json::to_vec_pretty(&plan)?);
    output
        .store
        .put_opts(&plan_path, body, PutOptions::from(PutMode::Create))
        .await?;
    let url = output.url_of(&plan_path);
    info!(run_id = %plan.run_id, shards = count, items, bytes, plan = %url, "planned");
    Ok(url)
}
