//! `naslake commit`: checks that every shard has exactly one result, moves the
//! chosen attempts' files into their tables, finishes the tables that need
//! every shard (in an incremental run merging the shards' tables with their last
//! versions), and commits once, with the same commit and report as `naslake run`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use tracing::info;

use super::{
    AttemptOf, PlannedBasis, RunPlan, StagedAs, changes_path, list_results, merged_tally,
    read_plan, read_result, result_files, results_of, staged_key,
};
use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::catalog::CatalogSpec;
use crate::commit::TableFiles;
use crate::commit::lease::Lease;
use crate::commit::state::StateDir;
use crate::discover::{Discovered, DiscoveredItem, ItemStats};
use crate::drive::LeaseStep;
use crate::drive::run::succeeded;
use crate::exec::basis::{Basis, Increment, Listed};
use crate::exec::conclude::{Decided, RunOutcome};
use crate::exec::finish::{Collected, CollectedTable, finish};
use crate::exec::{Setup, remove_run_work};
use crate::job::Job;
use crate::sources::Registry;
use crate::storage::Location;
use crate::transform::files_table::TableFile;
use crate::write::layout::is_data_file;

/// `naslake commit`: commits a planned run once every shard has its result, and
/// writes the run's report, as `naslake run` does.
pub async fn commit_run(plan_url: &str, registry: &Registry) -> Result<RunOutcome> {
    let (output, plan, job) = read_plan(plan_url, registry).await?;
    // The run began with its plan: the report's start and duration say so.
    let since_plan = chrono::DateTime::parse_from_rfc3339(&plan.created_at)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok())
        .unwrap_or_default();
    let started = Instant::now()
        .checked_sub(since_plan)
        .unwrap_or_else(Instant::now);
    let catalog_spec: CatalogSpec = plan.catalog.parse()?;
    let mut setup = Setup::new(
        job,
        plan.input.clone(),
        &plan.output,
        &catalog_spec,
        plan.run_id.clone(),
    )
    .await?;
    setup.report.started_at = plan.created_at.clone();
    setup.report.driver = crate::report::Driver::Sharded;
    let state_dir = setup.state_dir();
    if state_dir.current_run().await?.as_deref() == Some(plan.run_id.as_str()) {
        // A commit retried after it committed (and died before it cleaned up):
        // what is left to do is the cleanup: the files its commit replaced, the
        // run's work, the lease.
        let warnings = Warnings::default();
        crate::commit::recover::finish_cleanup(&state_dir, &plan.run_id, &warnings).await?;
        for w in warnings.all() {
            tracing::warn!(warning = %w, "cleaning up after the committed run");
        }
        if let Ok(lease) = LeaseStep::Commit
            .take(&state_dir, &plan.run_id, &setup.job)
            .await
        {
            LeaseStep::Commit.end(lease, true).await;
        }
        remove_run_work(&output, &plan.run_id).await;
        return Err(already_committed(&output, &plan.run_id));
    }
    info!(job = %setup.job.spec.name, run_id = %setup.run_id, output = %setup.report.output, "commit started");
    let lease = LeaseStep::Commit
        .take(&state_dir, &plan.run_id, &setup.job)
        .await?;
    let outcome = commit_leased(&setup, &state_dir, &lease, &plan, started).await;
    // A state that does not match the plan is not mended by committing again:
    // the run is over, as if it had committed (it must be planned again).
    let over = succeeded(&outcome) || matches!(outcome, Err(Error::State(_)));
    LeaseStep::Commit.end(lease, over).await;
    if over {
        remove_run_work(&output, &plan.run_id).await;
    }
    outcome
}

fn already_committed(output: &Location, run_id: &str) -> Error {
    Error::Committed(format!(
        "run {run_id} is committed already (its report: {})",
        output.url_of(&output.child(&format!("_naslake/runs/{run_id}.json")))
    ))
}

async fn commit_leased(
    setup: &Setup,
    state_dir: &StateDir,
    lease: &Lease,
    plan: &RunPlan,
    started: Instant,
) -> Result<RunOutcome> {
    let (job, output) = (&setup.job, &setup.output);
    let warnings = Warnings::default();
    for w in &plan.warnings {
        warnings.push(w.clone());
    }
    let forced_full = matches!(&plan.basis, PlannedBasis::Full { forced: true, .. });
    let recovered = setup
        .recover(state_dir, lease, forced_full, &warnings)
        .await?;
    // The report tells what the run's recovery did: the plan's, unless this
    // step had to do some itself.
    let recovered = if recovered.did_anything() {
        recovered
    } else {
        plan.recovered.clone()
    };
    if state_dir.current_run().await?.as_deref() == Some(plan.run_id.as_str()) {
        // Completed from its commit record by the recovery just above.
        return Err(already_committed(output, &plan.run_id));
    }
    let (basis, listed) = planned_basis(plan, state_dir, output).await?;
    let plans = setup.plan_tables(&basis).await?;
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
    let manifest = Arc::new(Discovered::default());
    // A commit done again after a failure writes files of its own.
    let writing = run.writing(format!("{}-c{}", plan.run_id, crate::drive::new_run_id()));
    let written = async {
        // An incremental commit joins each partition's files into one and removes
        // the parts: the staged originals must outlive a commit done again, so
        // they are copied into the tables instead of moved.
        let keep_staged = run.basis.increment().is_some();
        let collected = collect(
            output,
            job,
            &setup.roles.per_item,
            plan,
            &manifest,
            keep_staged,
        )
        .await?;
        if run.quiet() {
            info!("nothing changed since the last committed run: nothing read, nothing committed");
            return Ok(None);
        }
        let tables = finish(&writing, collected, &manifest).await?;
        remove_strays(output, &plan.run_id, &tables).await?;
        Ok(Some(tables))
    }
    .await;
    let outcome = run
        .conclude(written, &manifest, &writing.staged, started)
        .await;
    // The manifest holds an entry per item, each of a few allocations: freed
    // apart.
    crate::base::drop_apart::drop_apart(manifest);
    Ok(outcome)
}

/// The basis the plan decided, with the state it was decided against (the
/// lease kept it as it was, which is checked) and what its listing found.
async fn planned_basis(
    plan: &RunPlan,
    state_dir: &StateDir,
    output: &Location,
) -> Result<(Basis, Option<Listed>)> {
    match &plan.basis {
        PlannedBasis::Full { reason, .. } => Ok((
            Basis::Full {
                reason: reason.clone(),
            },
            None,
        )),
        PlannedBasis::Incremental { increment, .. } => {
            let previous = state_dir.current().await?;
            let Some(previous) = previous.filter(|p| p.run_id == increment.previous_run) else {
                return Err(Error::State(format!(
                    "run {} was planned against the state of run {}, which is not the job's state any more; nothing was committed, and the run is given up: plan it again",
                    plan.run_id, increment.previous_run
                )));
            };
            let path = output.child(&changes_path(&plan.run_id));
            let bytes = output.store.get(&path).await?.bytes().await?;
            let listed: Listed = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Shards(format!("{} is not readable: {e}", output.url_of(&path)))
            })?;
            let inc = Increment {
                previous,
                using: increment.clone(),
            };
            Ok((Basis::Incremental(Box::new(inc)), Some(listed)))
        }
    }
}

/// Reads every shard's result (exactly one each, for the items the plan gave it)
/// into `manifest` and the tables' files, and moves (with `keep_staged`, copies)
/// the chosen attempts' files from staging into the tables' version directories. Called by the commit,
/// holding the lease, before anything is computed.
async fn collect(
    output: &Location,
    job: &Job,
    per_item: &std::collections::BTreeSet<String>,
    plan: &RunPlan,
    manifest: &Discovered,
    keep_staged: bool,
) -> Result<Collected> {
    let listed = list_results(output, &plan.run_id).await?;
    let mut missing = Vec::new();
    let mut several = Vec::new();
    let mut chosen = Vec::new();
    for shard in 0..plan.shards.len() {
        match results_of(shard, &listed).as_slice() {
            [] => missing.push(shard.to_string()),
            [one] => chosen.push(one.clone()),
            _ => several.push(shard.to_string()),
        }
    }
    if !missing.is_empty() || !several.is_empty() {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("no result for shard {}", missing.join(", ")));
        }
        if !several.is_empty() {
            problems.push(format!(
                "several results for shard {} (an attempt still running?)",
                several.join(", ")
            ));
        }
        return Err(Error::Shards(format!(
            "run {} of {} shards: {}; nothing was committed. Run `naslake work` for those shards, then commit again",
            plan.run_id,
            plan.shards.len(),
            problems.join("; ")
        )));
    }
    let mut results = Vec::with_capacity(chosen.len());
    for (shard, path) in chosen.iter().enumerate() {
        let r = read_result(output, path).await?;
        let bytes: u64 = r.items.iter().map(|f| f.item.fingerprint.size).sum();
        let planned = &plan.shards[shard];
        if r.run_id != plan.run_id
            || r.shard != shard
            || r.items.len() as u64 != planned.items
            || bytes != planned.bytes
        {
            return Err(Error::Shards(format!(
                "{} does not match the plan's shard {shard} ({} items of {bytes} bytes; planned {} of {})",
                output.url_of(path),
                r.items.len(),
                planned.items,
                planned.bytes
            )));
        }
        if let Some(t) = r.tables.iter().find(|t| !per_item.contains(&t.table)) {
            return Err(Error::Shards(format!(
                "shard {shard} wrote table {}, which the commit computes",
                t.table
            )));
        }
        result_files(output, &r)?;
        results.push(r);
    }
    // Every result checked: only now is anything moved.
    let mut collected = Collected::default();
    let mut tallies: std::collections::HashMap<String, Vec<_>> = Default::default();
    let mut moved = 0;
    for r in results {
        let attempt = AttemptOf::of(&r);
        for f in r.items {
            manifest.add(DiscoveredItem {
                stats: Arc::new(ItemStats::restore(&f.counts)),
                item: Arc::new(f.item),
            });
        }
        for t in r.tables {
            let table = job.table(&t.table).ok_or_else(|| {
                Error::Shards(format!(
                    "shard {} wrote table {}, which the job lacks",
                    r.shard, t.table
                ))
            })?;
            let placement = crate::commit::placement(output, table, &plan.run_id);
            let c = collected
                .tables
                .entry(t.table.clone())
                .or_insert_with(CollectedTable::default);
            c.rows += t.rows;
            for mut f in t.files {
                let from = staged_key(output, &attempt, &f.url, StagedAs::Table(&table.name))?;
                let name = from.filename().unwrap_or_default().to_string();
                let to = output.literal_child(&placement.dir(&f.partition_values), &name);
                place_in_table(output, &from, &to, f.bytes, keep_staged).await?;
                moved += 1;
                f.url = output.url_of(&to);
                f.path = to;
                c.files.push(f);
            }
            tallies.entry(t.table).or_default().push(t.tally);
        }
        for s in r.sources {
            let path = staged_key(output, &attempt, &s.url, StagedAs::Source(&s.source))?;
            collected
                .sources
                .entry(s.source)
                .or_default()
                .push(TableFile {
                    path,
                    size: s.bytes,
                    partition_values: Vec::new(),
                });
        }
    }
    for (name, t) in collected.tables.iter_mut() {
        t.files.sort_by(|a, b| a.path.cmp(&b.path));
        t.tally = merged_tally(tallies.remove(name).unwrap_or_default());
    }
    for listing in &plan.listings {
        manifest.source_done(listing.clone());
    }
    info!(
        files = moved,
        copied = keep_staged,
        "placed the shards' files in their tables"
    );
    Ok(collected)
}

/// Moves (or with `keep_staged` copies) a staged file into its table. A commit
/// retried after it moved the file finds it there already, with its size.
async fn place_in_table(
    output: &Location,
    from: &ObjPath,
    to: &ObjPath,
    bytes: u64,
    keep_staged: bool,
) -> Result<()> {
    let placed = if keep_staged {
        output.store.copy(from, to).await
    } else {
        output.store.rename(from, to).await
    };
    match placed {
        Ok(()) => Ok(()),
        Err(object_store::Error::NotFound { .. }) => match output.store.head(to).await {
            Ok(m) if m.size == bytes => Ok(()),
            _ => Err(Error::Shards(format!(
                "{} is gone, and not in its table either: run `naslake work` for its shard again",
                output.url_of(from)
            ))),
        },
        Err(e) => Err(e.into()),
    }
}

/// Removes every data file in this run's version directories that the commit
/// does not register: files an earlier commit of the run moved in or wrote before
/// it failed or was killed, of attempts done again since. The catalog registers
/// directories, so nothing else may be in them.
async fn remove_strays(output: &Location, run_id: &str, tables: &[TableFiles]) -> Result<u64> {
    let version = format!("v-{run_id}");
    let mut removed = 0;
    for t in tables {
        let keep: HashSet<&ObjPath> = t.files.iter().map(|f| &f.path).collect();
        let listed: Vec<_> = output
            .store
            .list(Some(&output.child(&t.table.name)))
            .try_collect()
            .await?;
        for m in listed {
            let ours = m.location.parts().any(|p| p.as_ref() == version);
            let data = m.location.filename().is_some_and(is_data_file);
            if ours && data && !keep.contains(&m.location) {
                match output.store.delete(&m.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    if removed > 0 {
        info!(
            files = removed,
            "removed files an earlier commit of this run left"
        );
    }
    Ok(removed)
}
