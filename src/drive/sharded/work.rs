//! `naslake work`: one attempt of one shard. It reads exactly the items its
//! plan gave it, writes the tables written per item into the run's staging area
//! and stages the sources the commit reads whole (the protocol's work step, as
//! `naslake run` does it), then writes its result, the value the commit takes.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tracing::{info, warn};

use super::{
    PLAN_FORMAT, RunPlan, ShardItem, ShardResult, ShardTable, list_results, read_plan, read_result,
    result_files, results_of, staging_sources, staging_tables, tally_to_list,
};
use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::commit::lease::Lease;
use crate::commit::{TablePlan, cleanup};
use crate::discover::Discovered;
use crate::drive::LeaseStep;
use crate::exec::roles::TableRoles;
use crate::exec::run_dir;
use crate::exec::tables::Writing;
use crate::exec::work::{Staging, Work};
use crate::job::Job;
use crate::model::WorkItem;
use crate::sources::Registry;
use crate::storage::Location;
use crate::transform;
use crate::write::Staged;
use crate::write::layout::Placement;

/// What a finished attempt of a shard says.
pub struct WorkOutcome {
    pub result_url: String,
    pub items: u64,
    pub rows_rejected: u64,
}

/// `naslake work`: extracts, transforms and writes one shard, then writes its
/// result. `attempt` numbers the attempt for logs and fault scopes; the attempt's
/// id, which names its files, is new each time.
pub async fn work_shard(
    plan_url: &str,
    shard: usize,
    attempt: u32,
    registry: &Registry,
) -> Result<WorkOutcome> {
    crate::base::faults::set_scope(&format!("shard{shard}.attempt{attempt}"));
    let (output, plan, job) = read_plan(plan_url, registry).await?;
    let state_dir = crate::commit::state::StateDir::new(&output, &job.spec.name);
    let lease = LeaseStep::Work.take(&state_dir, &plan.run_id, &job).await?;
    let outcome = work_leased(&output, &plan, &job, shard, attempt, &lease).await;
    LeaseStep::Work.end(lease, outcome.is_ok()).await;
    outcome
}

async fn work_leased(
    output: &Location,
    plan: &RunPlan,
    job: &Job,
    shard: usize,
    attempt: u32,
    lease: &Lease,
) -> Result<WorkOutcome> {
    let lineage = transform::check_job_sql(job).await?;
    let roles = TableRoles::of(job, &lineage);
    roles.check_shardable(&job.spec.name)?;
    let planned = plan.shards.get(shard).ok_or_else(|| {
        Error::config(format!(
            "shard {shard}: the plan has shards 0 to {}",
            plan.shards.len().saturating_sub(1)
        ))
    })?;
    let input = plan.input.as_deref().map(Location::open).transpose()?;
    let items = read_shard_items(output, &plan.run_id, shard).await?;
    let listed_bytes: u64 = items.iter().map(|i| i.fingerprint.size).sum();
    if items.len() as u64 != planned.items || listed_bytes != planned.bytes {
        return Err(Error::Shards(format!(
            "shard {shard}'s item list has {} items of {listed_bytes} bytes; the plan says {} of {}",
            items.len(),
            planned.items,
            planned.bytes
        )));
    }
    let attempt_id = crate::drive::new_run_id();
    replace_earlier_attempts(output, &plan.run_id, shard).await?;
    info!(run_id = %plan.run_id, shard, attempt, attempt_id = %attempt_id, items = items.len(), "shard started");

    // The shard's tables go to staging, out of every reader's sight; the commit
    // moves them into place.
    let staging = staging_tables(&plan.run_id);
    let plans: HashMap<String, TablePlan> = job
        .tables
        .iter()
        .map(|t| {
            let placement = Placement::new(
                output,
                output.child(&format!("{staging}/{}", t.name)),
                t.schema.partition_key_names(),
                None,
            );
            let p = TablePlan {
                before: None,
                placement: Arc::new(placement),
            };
            (t.name.clone(), p)
        })
        .collect();
    let warnings = Warnings::default();
    let writing = Writing {
        job,
        output,
        plans: &plans,
        roles: &roles,
        lineage: &lineage,
        // A shard writes the rows of what it reads; the commit merges them with
        // the tables' last versions.
        increment: None,
        file_tag: format!("{}-s{shard:05}-{attempt_id}", plan.run_id),
        staged: Staged::default(),
    };
    let manifest = Arc::new(Discovered::default());
    let progress = indicatif::ProgressBar::hidden();
    let work = Work {
        writing: &writing,
        input: input.as_ref(),
        tables: roles.per_item.clone(),
        staging: Some(Staging {
            sources: roles.whole_sources.clone(),
            dir: staging_sources(&plan.run_id),
        }),
        manifest: manifest.clone(),
        progress: progress.clone(),
    };
    let result = async {
        let mut replay =
            crate::exec::discovery::Discovery::replay(job, &items, &manifest, &progress);
        let written = work.run(replay.take_feeds()).await;
        replay.finish().await?;
        let written = written?;
        let items: Vec<ShardItem> = manifest
            .items()
            .iter()
            .map(|d| ShardItem {
                item: (*d.item).clone(),
                counts: d.stats.counts(),
            })
            .collect();
        let result = ShardResult {
            format: PLAN_FORMAT,
            run_id: plan.run_id.clone(),
            shard,
            attempt: attempt_id.clone(),
            items,
            tables: written
                .tables
                .into_iter()
                .map(|t| ShardTable {
                    table: t.table.name.clone(),
                    rows: t.rows,
                    files: t.files,
                    tally: t.tally.map(tally_to_list),
                })
                .collect(),
            sources: written.staged_sources,
        };
        let path = output.child(&format!(
            "{}/results/{shard:05}-{attempt_id}.json",
            run_dir(&plan.run_id)
        ));
        let body = PutPayload::from(serde_json::to_vec(&result)?);
        // A shard of a run that lost its lease (it expired, another run took over
        // and cleans up after it) leaves no result.
        lease.check().await?;
        output
            .store
            .put_opts(&path, body, PutOptions::from(PutMode::Create))
            .await?;
        Ok::<_, Error>((path, result))
    }
    .await;
    // The one cleanup of a failed attempt: the files it wrote.
    let (path, result) = match result {
        Ok(r) => r,
        Err(e) => {
            cleanup::discard(output, &writing.staged, &warnings).await;
            return Err(e);
        }
    };
    for w in warnings.all() {
        warn!(shard, warning = %w, "shard warning");
    }
    info!(run_id = %plan.run_id, shard, attempt_id = %attempt_id, "shard done");
    Ok(WorkOutcome {
        result_url: output.url_of(&path),
        items: result.items.len() as u64,
        rows_rejected: result.items.iter().map(|f| f.counts.rejected).sum(),
    })
}

/// The items of shard `shard`, as `naslake plan` listed them.
pub(super) async fn read_shard_items(
    output: &Location,
    run_id: &str,
    shard: usize,
) -> Result<Vec<WorkItem>> {
    let path = output.child(&format!("{}/shards/{shard:05}.jsonl", run_dir(run_id)));
    let bytes = output.store.get(&path).await?.bytes().await?;
    let mut items = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        items.push(serde_json::from_slice(line).map_err(|e| {
            Error::Shards(format!(
                "{} is not a readable item list: {e}",
                output.url_of(&path)
            ))
        })?);
    }
    Ok(items)
}

/// A retried shard replaces the attempts before it: their results and the files
/// they name go. (An attempt killed before its result leaves files no result
/// names; they go with the staging area after the commit.)
async fn replace_earlier_attempts(output: &Location, run_id: &str, shard: usize) -> Result<()> {
    let listed = list_results(output, run_id).await?;
    for path in results_of(shard, &listed) {
        let earlier = read_result(output, &path).await?;
        for f in result_files(output, &earlier)? {
            match output.store.delete(&f).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        output.store.delete(&path).await?;
        info!(shard, attempt = %earlier.attempt, "replaced an earlier attempt of the shard");
    }
    Ok(())
}
