//! A run in three steps, for when a share outgrows one machine: `naslake plan`
//! lists the input and splits it into shards, `naslake work` does one shard
//! anywhere (a Spark task, an AWS Batch array child), and `naslake commit`
//! computes what needs every shard and commits the catalog once.
//!
//! Everything the steps hand each other lives under the run's directory,
//! `OUTPUT/_naslake/runs/RUNID/`:
//!
//! - `plan.json`: the job (spec, schemas and SQL as text), the addresses, the
//!   listing's counts and the shards ([`RunPlan`]); written last, so a plan
//!   that exists is complete;
//! - `shards/NNNNN.jsonl`: each shard's items, one JSON object a line;
//! - `results/NNNNN-ATTEMPT.json`: what an attempt of a shard wrote ([`ShardResult`]);
//! - `staging/SOURCE/…parquet`: the rows of the sources that the commit's tables
//!   read whole (`image_inspections`' station windows).
//!
//! - `staging/tables/TABLE/…`: the files of the tables each shard writes, named
//!   `part-RUNID-sNNNNN-ATTEMPT-…`, so no two attempts share a name.
//!
//! No reader looks under `_naslake/`. The commit takes the one result each shard
//! must have and moves the files it names into the table's version directories
//! (`TABLE/KEY=VALUE/v-RUNID/`); every other attempt's files stay in staging and go
//! with it after the commit, so two attempts of a shard never both reach a table,
//! even when one of them is still running somewhere.
//!
//! The run holds the job's lease from its plan to its commit
//! ([`crate::commit::lease`]): each step resumes and renews it, so no other run of
//! the job commits in between, and a run that dies is cleaned up after by the next.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};

use super::{RunOptions, RunOutcome, Setup, Stage, check_not_empty, table_kinds};
use crate::catalog::CatalogSpec;
use crate::commit::lease::Lease;
use crate::commit::recover;
use crate::commit::state::StateDir;
use crate::commit::state::TableKind;
use crate::commit::{KeyRows, TableFiles, TablePlan, cleanup};
use crate::discover::shards::{Sharder, Split};
use crate::discover::{Discovered, DiscoveredItem, ItemCounts, ItemSink, ItemStats, WorkItem};
use crate::error::{Error, Result};
use crate::files_table::TableFile;
use crate::job::{Job, JobSnapshot};
use crate::report::Warnings;
use crate::sources::Registry;
use crate::storage::Location;
use crate::transform::{self, lineage::Lineage};
use crate::write::layout::{Placement, is_data_file};
use crate::write::{Staged, WrittenFile};

/// The format of `plan.json` and of the shard results.
const PLAN_FORMAT: u32 = 1;
/// Items discovered but not yet written to the plan's spill files.
const PLAN_IN_FLIGHT: usize = 1024;

/// What `naslake plan` was asked for.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub job: PathBuf,
    pub overrides: Vec<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    /// As given on the command line (`local[:DIR]`, `glue[:DATABASE]`).
    pub catalog: Option<String>,
    pub split: Split,
    /// The run's id; a new one when `None` (AWS Batch names it up front, so the
    /// array job and the commit know where the plan is before it exists).
    pub run_id: Option<String>,
}

/// `plan.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunPlan {
    pub format: u32,
    pub run_id: String,
    pub naslake_version: String,
    pub created_at: String,
    pub job: JobSnapshot,
    pub input: Option<String>,
    pub output: String,
    pub catalog: String,
    pub listings: Vec<crate::discover::SourceListing>,
    pub items: u64,
    pub bytes: u64,
    pub shards: Vec<PlannedShard>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedShard {
    pub items: u64,
    pub bytes: u64,
}

/// What `naslake work` wrote for one attempt of one shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardResult {
    pub format: u32,
    pub run_id: String,
    pub shard: usize,
    pub attempt: String,
    /// Every item of the shard with what happened to it.
    pub items: Vec<ShardItem>,
    pub tables: Vec<ShardTable>,
    pub sources: Vec<StagedSource>,
}

/// One item of a shard, and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardItem {
    pub item: WorkItem,
    pub counts: ItemCounts,
}

/// One table's files from one shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardTable {
    pub table: String,
    pub rows: u64,
    pub files: Vec<WrittenFile>,
    /// Rows by object key and partition (a table kept per object), for the
    /// incremental state the commit writes.
    #[serde(default)]
    pub tally: Option<Vec<KeyRowsEntry>>,
}

/// One object's rows in one table, by partition (JSON has no list-valued keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRowsEntry {
    pub key: String,
    pub partitions: Vec<(Vec<String>, u64)>,
}

/// A shard's copy of a source's rows, for the commit's tables that read it whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedSource {
    pub source: String,
    pub url: String,
    pub rows: u64,
    pub bytes: u64,
}

/// One shard's work, as `naslake work` hands it to the runner.
pub struct ShardWork {
    pub items: Vec<WorkItem>,
    /// The tables the shard writes: the ones kept per object (row by row over
    /// sources), and the rejects.
    pub per_shard: BTreeSet<String>,
    /// The sources the other tables read, which the shard stages.
    pub stage_sources: BTreeSet<String>,
    run_dir: String,
    file_tag: String,
}

/// Every shard's result, as the commit sees them.
pub struct Collected {
    pub tables: HashMap<String, CollectedTable>,
    pub sources: HashMap<String, Vec<TableFile>>,
}

pub struct CollectedTable {
    pub files: Vec<WrittenFile>,
    pub rows: u64,
    pub tally: Option<KeyRows>,
}

/// `_naslake/runs/RUNID`, relative to the output.
fn run_dir(run_id: &str) -> String {
    format!("_naslake/runs/{run_id}")
}

/// A run id is a ULID in lowercase, like every run's: recovery orders runs by
/// their ids, which ULIDs keep in time order.
fn check_run_id(id: &str) -> Result<()> {
    let ok = id.len() == 26
        && !id.chars().any(|c| c.is_ascii_uppercase())
        && ulid::Ulid::from_string(id).is_ok();
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "run id `{id}`: a run id is a ULID in lowercase (26 letters and digits, e.g. {}); deploy/batch/submit-run.sh makes one",
            ulid::Ulid::new().to_string().to_lowercase()
        )))
    }
}

/// Which tables a shard writes, and which sources it stages for the commit.
/// Only jobs whose sources list objects can be sharded: a source that finds its
/// items itself (the ACL walk) keeps what it found in the process that walked.
fn split_tables(
    job: &Job,
    lineage: &HashMap<String, Lineage>,
) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
    if let Some(s) = job.sources.iter().find(|s| s.objects().is_none()) {
        return Err(Error::config(format!(
            "job {}: source `{}` finds its items itself (a snapshot of a filer, not listed objects), so the job cannot be split into shards; use `naslake run`",
            job.spec.name,
            s.name()
        )));
    }
    let kinds = table_kinds(job, lineage);
    let mut per_shard = BTreeSet::from([job.rejects_table().name.clone()]);
    let mut stage = BTreeSet::new();
    for t in &job.tables {
        let Some(l) = lineage.get(&t.name) else {
            continue;
        };
        if kinds.get(&t.name) == Some(&TableKind::Objects) && l.tables.is_empty() {
            per_shard.insert(t.name.clone());
        } else {
            stage.extend(l.sources.iter().cloned());
        }
    }
    if let Some(t) = job
        .tables
        .iter()
        .find(|t| per_shard.contains(&t.name) && !t.spec.projection.is_empty())
    {
        return Err(Error::config(format!(
            "job {}: table {} uses partition projection, so Athena reads its directories without the catalog and would see each shard's files before the commit; use `naslake run`",
            job.spec.name, t.name
        )));
    }
    for t in &per_shard {
        if let Some(s) = lineage
            .get(t)
            .and_then(|l| l.sources.iter().find(|s| stage.contains(*s)))
        {
            return Err(Error::config(format!(
                "job {}: source `{s}` is read by table {t}, which each shard writes, and by a table computed over all shards; a shard reads a source once, so give the second table the first one's rows (`FROM {t}`), or use `naslake run`",
                job.spec.name
            )));
        }
    }
    Ok((per_shard, stage))
}

/// `naslake plan`: lists the input, splits it into shards and writes the plan.
/// Returns the plan's address.
pub async fn plan_run(opts: &PlanOptions, registry: &Registry) -> Result<String> {
    let (job, snapshot) = JobSnapshot::capture(&opts.job, &opts.overrides, registry)?;
    let (input_url, output_url) =
        super::addresses(&job, opts.input.as_deref(), opts.output.as_deref());
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
        None => ulid::Ulid::new().to_string().to_lowercase(),
    };
    let setup = Setup::new(job, input_url.clone(), &output_url, &catalog_spec, run_id).await?;
    split_tables(&setup.job, &setup.lineage)?;
    let output = &setup.output;
    let plan_path = output.child(&format!("{}/plan.json", run_dir(&setup.run_id)));
    match output.store.get(&plan_path).await {
        Ok(found) => {
            // A plan step retried after it finished: the same plan, not a second.
            let earlier: RunPlan = serde_json::from_slice(&found.bytes().await?)?;
            let same = earlier.job == snapshot
                && earlier.input == input_url
                && earlier.output == output_url
                && earlier.catalog == catalog;
            if !same {
                return Err(Error::config(format!(
                    "run {} already has another plan ({}): a run id is used once",
                    setup.run_id,
                    output.url_of(&plan_path)
                )));
            }
            info!(run_id = %setup.run_id, "the run is planned already");
            return Ok(output.url_of(&plan_path));
        }
        Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // The run holds the job's lease from here to its commit.
    let state_dir = StateDir::new(output, &setup.job.spec.name);
    let lease =
        Lease::acquire_for_shards(&state_dir, &setup.run_id, super::lease_ttl(&setup.job)).await?;
    let planned = write_plan(
        &setup, snapshot, input_url, output_url, catalog, opts.split, &lease,
    )
    .await;
    match planned {
        Ok(url) => {
            lease.keep();
            Ok(url)
        }
        Err(e) => {
            if let Err(le) = lease.release().await {
                warn!(error = %le, "could not release the job's lease; it expires by itself");
            }
            Err(e)
        }
    }
}

/// Lists every source into the sharder and writes the shards' item lists, then
/// the plan (last: a plan that exists is complete).
async fn write_plan(
    setup: &Setup,
    snapshot: JobSnapshot,
    input_url: Option<String>,
    output_url: String,
    catalog: String,
    split: Split,
    lease: &Lease,
) -> Result<String> {
    let (job, output, input) = (&setup.job, &setup.output, setup.input.as_ref());
    if let Some(dead) = lease.took_over_from.as_deref() {
        let state_dir = StateDir::new(output, &job.spec.name);
        let warnings = Warnings::default();
        recover::recover(
            &state_dir,
            job,
            &setup.catalog,
            &setup.database,
            Some(dead),
            &warnings,
        )
        .await?;
        remove_run_work(output, dead).await;
        for w in warnings.all() {
            warn!(warning = %w, "recovering after a run that died");
        }
    }
    let plan_path = output.child(&format!("{}/plan.json", run_dir(&setup.run_id)));

    // Discovery streams into the sharder's spill files: nothing is kept per item.
    let manifest = Arc::new(Discovered::count_only());
    let mut sharder = Sharder::new()?;
    for source in &job.sources {
        let (tx, rx) = async_channel::bounded(PLAN_IN_FLIGHT);
        let mut sink = ItemSink::new(
            source.name(),
            manifest.clone(),
            tx,
            indicatif::ProgressBar::hidden(),
        );
        let (source, input) = (source.clone(), input.cloned());
        let listing = tokio::spawn(async move {
            let prefix = source.discover(input.as_ref(), &mut sink).await;
            prefix.map(|p| sink.finish(&p))
        });
        while let Ok(found) = rx.recv().await {
            sharder.push((*found.item).clone())?;
        }
        listing
            .await
            .map_err(|e| Error::Accounting(format!("discovery failed: {e}")))??;
    }
    let listings = manifest.listings();
    check_not_empty(job, input, &listings).await?;

    let count = split.count(sharder.bytes, sharder.items);
    let (items, bytes) = (sharder.items, sharder.bytes);
    let mut shards = Vec::with_capacity(count);
    let mut open: Option<ShardFile> = None;
    for next in sharder.finish(count)? {
        let (shard, item) = next?;
        while open.as_ref().is_none_or(|f| f.index < shard) {
            if let Some(f) = open.take() {
                shards.push(f.close().await?);
            }
            open = Some(ShardFile::create(output, &setup.run_id, shards.len()));
        }
        if let Some(f) = open.as_mut() {
            f.push(&item).await?;
        }
    }
    while shards.len() < count {
        let f = open
            .take()
            .unwrap_or_else(|| ShardFile::create(output, &setup.run_id, shards.len()));
        shards.push(f.close().await?);
    }

    let plan = RunPlan {
        format: PLAN_FORMAT,
        run_id: setup.run_id.clone(),
        naslake_version: env!("CARGO_PKG_VERSION").into(),
        created_at: setup.report.started_at.clone(),
        job: snapshot,
        input: input_url,
        output: output_url,
        catalog,
        listings,
        items,
        bytes,
        shards,
    };
    let body = PutPayload::from(serde_json::to_vec_pretty(&plan)?);
    output
        .store
        .put_opts(&plan_path, body, PutOptions::from(PutMode::Create))
        .await?;
    let url = output.url_of(&plan_path);
    info!(run_id = %plan.run_id, shards = count, items, bytes, plan = %url, "planned");
    Ok(url)
}

/// A local path made absolute (the other steps may run in another directory);
/// other addresses as they are.
fn absolute_if_local(url: &str) -> Result<String> {
    if crate::storage::is_remote(url) || url.starts_with("file://") {
        return Ok(url.to_string());
    }
    Ok(std::path::absolute(url)?.display().to_string())
}

/// One shard's item list, uploaded as it is written.
struct ShardFile {
    index: usize,
    writer: BufWriter,
    items: u64,
    bytes: u64,
}

impl ShardFile {
    fn create(output: &Location, run_id: &str, index: usize) -> Self {
        let path = output.child(&format!("{}/shards/{index:05}.jsonl", run_dir(run_id)));
        ShardFile {
            index,
            writer: BufWriter::new(output.store.clone(), path),
            items: 0,
            bytes: 0,
        }
    }

    async fn push(&mut self, item: &WorkItem) -> Result<()> {
        let mut line = serde_json::to_vec(item)?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        self.items += 1;
        self.bytes += item.fingerprint.size;
        Ok(())
    }

    async fn close(mut self) -> Result<PlannedShard> {
        self.writer.shutdown().await?;
        Ok(PlannedShard {
            items: self.items,
            bytes: self.bytes,
        })
    }
}

/// The output and run a plan's address names: `OUTPUT/_naslake/runs/RUNID/plan.json`.
fn parse_plan_url(plan_url: &str) -> Result<(String, String)> {
    let bad = || {
        Error::config(format!(
            "{plan_url} is not a plan's address (OUTPUT/_naslake/runs/RUNID/plan.json, as `naslake plan` prints it)"
        ))
    };
    let rest = plan_url.strip_suffix("/plan.json").ok_or_else(bad)?;
    let (output, run_id) = rest.rsplit_once("/_naslake/runs/").ok_or_else(bad)?;
    check_run_id(run_id).map_err(|_| bad())?;
    Ok((output.to_string(), run_id.to_string()))
}

/// Reads a plan, and the job it carries.
async fn read_plan(plan_url: &str, registry: &Registry) -> Result<(Location, RunPlan, Job)> {
    let (output_url, run_id) = parse_plan_url(plan_url)?;
    let output = Location::open(&output_url)?;
    let path = output.child(&format!("{}/plan.json", run_dir(&run_id)));
    let bytes = output.store.get(&path).await?.bytes().await?;
    let plan: RunPlan = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Shards(format!("{plan_url} is not a readable plan: {e}")))?;
    if plan.format != PLAN_FORMAT {
        return Err(Error::Shards(format!(
            "{plan_url} has format {}; this naslake reads format {PLAN_FORMAT}",
            plan.format
        )));
    }
    if plan.run_id != run_id {
        return Err(Error::Shards(format!(
            "{plan_url} is the plan of run {}, not of run {run_id} its address names",
            plan.run_id
        )));
    }
    if plan.naslake_version != env!("CARGO_PKG_VERSION") {
        // Every step of a run must make the same tables of the same rows.
        return Err(Error::Shards(format!(
            "{plan_url} was planned by naslake {}; this is naslake {}: run every step of a run with one version",
            plan.naslake_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    let job = plan.job.load(registry)?;
    Ok((output, plan, job))
}

/// The shard's result paths, from a listing of the run's results.
fn results_of(shard: usize, listed: &[ObjPath]) -> Vec<ObjPath> {
    let prefix = format!("{shard:05}-");
    listed
        .iter()
        .filter(|p| {
            p.filename()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json"))
        })
        .cloned()
        .collect()
}

async fn list_results(output: &Location, run_id: &str) -> Result<Vec<ObjPath>> {
    let prefix = output.child(&format!("{}/results", run_dir(run_id)));
    let metas: Vec<_> = output.store.list(Some(&prefix)).try_collect().await?;
    Ok(metas.into_iter().map(|m| m.location).collect())
}

async fn read_result(output: &Location, path: &ObjPath) -> Result<ShardResult> {
    let bytes = output.store.get(path).await?.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Shards(format!(
            "{} is not a readable shard result: {e}",
            output.url_of(path)
        ))
    })
}

/// The files a result names, as keys of the output: each one the attempt's own,
/// in the run's staging area.
fn result_files(output: &Location, result: &ShardResult) -> Result<Vec<ObjPath>> {
    let r = &AttemptOf::of(result);
    let tables = result.tables.iter().flat_map(|t| {
        t.files
            .iter()
            .map(|f| staged_key(output, r, &f.url, StagedAs::Table(&t.table)))
    });
    let sources = result
        .sources
        .iter()
        .map(|s| staged_key(output, r, &s.url, StagedAs::Source(&s.source)));
    tables.chain(sources).collect()
}

/// What a finished attempt of a shard says.
pub struct WorkOutcome {
    pub result_url: String,
    pub items: u64,
    pub rows_rejected: u64,
}

/// Where the shards write the files of table `table`: staging, which no reader
/// sees; the commit moves the chosen attempts' files into the table.
fn staging_tables(run_id: &str) -> String {
    format!("{}/staging/tables", run_dir(run_id))
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
    crate::faults::set_scope(&format!("shard{shard}.attempt{attempt}"));
    let (output, plan, job) = read_plan(plan_url, registry).await?;
    let state_dir = StateDir::new(&output, &job.spec.name);
    let lease = Lease::resume(&state_dir, &plan.run_id, super::lease_ttl(&job)).await?;
    let outcome = work_leased(&output, &plan, &job, shard, attempt, &lease).await;
    // The run goes on after this shard, done or not: its next step renews the lease.
    lease.keep();
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
    let (per_shard, stage_sources) = split_tables(job, &lineage)?;
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
    let attempt_id = ulid::Ulid::new().to_string().to_lowercase();
    replace_earlier_attempts(output, &plan.run_id, shard).await?;
    info!(run_id = %plan.run_id, shard, attempt, attempt_id = %attempt_id, items = items.len(), "shard started");

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
    let work = ShardWork {
        items,
        per_shard,
        stage_sources,
        run_dir: run_dir(&plan.run_id),
        file_tag: format!("{}-s{shard:05}-{attempt_id}", plan.run_id),
    };
    let kinds = table_kinds(job, &lineage);
    let warnings = Warnings::default();
    let run = super::Run {
        job,
        input: input.as_ref(),
        output,
        stage: Stage::Shard(&work),
        file_tag: work.file_tag.clone(),
        plans: &plans,
        lineage: &lineage,
        kinds: &kinds,
        increment: None,
        listed: std::sync::OnceLock::new(),
        manifest: Arc::new(Discovered::default()),
        staged: Staged::default(),
        staged_sources: Default::default(),
        warnings: warnings.clone(),
        progress: indicatif::ProgressBar::hidden(),
    };
    let written = match run.extract_and_write().await {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => {
            cleanup::discard(output, &run.staged, &warnings).await;
            return Err(e);
        }
    };
    let items: Vec<ShardItem> = run
        .manifest
        .items()
        .iter()
        .map(|d| ShardItem {
            item: (*d.item).clone(),
            counts: d.stats.counts(),
        })
        .collect();
    let rows_rejected = items.iter().map(|f| f.counts.rejected).sum();
    let result = ShardResult {
        format: PLAN_FORMAT,
        run_id: plan.run_id.clone(),
        shard,
        attempt: attempt_id.clone(),
        items,
        tables: written
            .into_iter()
            .map(|t| ShardTable {
                table: t.table.name.clone(),
                rows: t.rows,
                files: t.files,
                tally: t.tally.map(tally_to_list),
            })
            .collect(),
        sources: std::mem::take(&mut *crate::sync::lock(&run.staged_sources)),
    };
    let path = output.child(&format!(
        "{}/results/{shard:05}-{attempt_id}.json",
        run_dir(&plan.run_id)
    ));
    let body = PutPayload::from(serde_json::to_vec(&result)?);
    // A shard of a run that lost its lease (it expired, another run took over and
    // cleans up after it) leaves no result.
    let stored = match lease.check().await {
        Ok(()) => output
            .store
            .put_opts(&path, body, PutOptions::from(PutMode::Create))
            .await
            .map_err(Error::from),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        cleanup::discard(output, &run.staged, &warnings).await;
        return Err(e);
    }
    for w in warnings.all() {
        warn!(shard, warning = %w, "shard warning");
    }
    info!(run_id = %plan.run_id, shard, attempt_id = %attempt_id, "shard done");
    Ok(WorkOutcome {
        result_url: output.url_of(&path),
        items: result.items.len() as u64,
        rows_rejected,
    })
}

async fn read_shard_items(output: &Location, run_id: &str, shard: usize) -> Result<Vec<WorkItem>> {
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

fn tally_to_list(rows: KeyRows) -> Vec<KeyRowsEntry> {
    let mut out: Vec<KeyRowsEntry> = rows
        .into_iter()
        .map(|(key, parts)| KeyRowsEntry {
            key,
            partitions: parts.into_iter().collect(),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Writes a source's rows, as the shard read them, to the run's staging area.
pub(super) async fn stage_source(
    ctx: &SessionContext,
    output: &Location,
    work: &ShardWork,
    source: &str,
    staged: &Staged,
) -> Result<StagedSource> {
    let path = output.child(&format!(
        "{}/staging/sources/{source}/{}.parquet",
        work.run_dir, work.file_tag
    ));
    let df = ctx.table(source).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await?;
    staged.add(path.clone());
    let mut writer = AsyncArrowWriter::try_new(
        BufWriter::new(output.store.clone(), path.clone()),
        schema,
        None,
    )?;
    let mut rows = 0;
    while let Some(batch) = stream.try_next().await? {
        rows += batch.num_rows() as u64;
        writer.write(&batch).await?;
    }
    writer.close().await?;
    let bytes = output.store.head(&path).await?.size;
    Ok(StagedSource {
        source: source.to_string(),
        url: output.url_of(&path),
        rows,
        bytes,
    })
}

/// `naslake commit`: checks that every shard has exactly one result, computes
/// the tables that need every shard, commits the catalog once and writes the
/// run's report, as `naslake run` does.
pub async fn commit_run(plan_url: &str, progress: bool, registry: &Registry) -> Result<RunOutcome> {
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
    let state = StateDir::new(&output, &setup.job.spec.name);
    if state.current_run().await?.as_deref() == Some(plan.run_id.as_str()) {
        // A commit retried after it committed (and died before it cleaned up):
        // what is left to do is the cleanup.
        if let Ok(lease) = Lease::resume(&state, &plan.run_id, super::lease_ttl(&setup.job)).await
            && let Err(e) = lease.release().await
        {
            warn!(error = %e, "could not release the job's lease; it expires by itself");
        }
        remove_run_work(&output, &plan.run_id).await;
        return Err(Error::Committed(format!(
            "run {} is committed already (its report: {})",
            plan.run_id,
            output.url_of(&output.child(&format!("_naslake/runs/{}.json", plan.run_id)))
        )));
    }
    let opts = RunOptions {
        progress,
        ..Default::default()
    };
    let outcome = setup.run_leased(&opts, Stage::Commit(&plan), started).await;
    match &outcome {
        Ok(o) if o.report.error.is_none() => remove_run_work(&output, &plan.run_id).await,
        Err(Error::Committed(_)) => remove_run_work(&output, &plan.run_id).await,
        _ => {}
    }
    outcome
}

/// Reads every shard's result (exactly one each, for the items the plan gave it)
/// into `manifest` and the tables' files, and moves the chosen attempts' files
/// from staging into the tables' version directories. Called by the commit,
/// holding the lease, before anything is computed.
pub(super) async fn collect(
    output: &Location,
    job: &Job,
    lineage: &HashMap<String, Lineage>,
    plan: &RunPlan,
    manifest: &Discovered,
) -> Result<Collected> {
    let (per_shard, _) = split_tables(job, lineage)?;
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
        if let Some(t) = r.tables.iter().find(|t| !per_shard.contains(&t.table)) {
            return Err(Error::Shards(format!(
                "shard {shard} wrote table {}, which the commit computes",
                t.table
            )));
        }
        result_files(output, &r)?;
        results.push(r);
    }
    // Every result checked: only now is anything moved.
    let mut tables: HashMap<String, CollectedTable> = HashMap::new();
    let mut sources: HashMap<String, Vec<TableFile>> = HashMap::new();
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
            let c = tables.entry(t.table).or_insert_with(|| CollectedTable {
                files: Vec::new(),
                rows: 0,
                tally: None,
            });
            c.rows += t.rows;
            for mut f in t.files {
                let from = staged_key(output, &attempt, &f.url, StagedAs::Table(&table.name))?;
                let name = from.filename().unwrap_or_default().to_string();
                let to = output.literal_child(&placement.dir(&f.partition_values), &name);
                move_into_table(output, &from, &to, f.bytes).await?;
                moved += 1;
                f.url = output.url_of(&to);
                f.path = to;
                c.files.push(f);
            }
            if let Some(list) = t.tally {
                let rows = c.tally.get_or_insert_with(KeyRows::new);
                for k in list {
                    let parts = rows.entry(k.key).or_default();
                    for (values, n) in k.partitions {
                        *parts.entry(values).or_default() += n;
                    }
                }
            }
        }
        for s in r.sources {
            let path = staged_key(output, &attempt, &s.url, StagedAs::Source(&s.source))?;
            sources.entry(s.source).or_default().push(TableFile {
                path,
                size: s.bytes,
                partition_values: Vec::new(),
            });
        }
    }
    for t in tables.values_mut() {
        t.files.sort_by(|a, b| a.path.cmp(&b.path));
    }
    for listing in &plan.listings {
        manifest.source_done(listing.clone());
    }
    info!(files = moved, "moved the shards' files into their tables");
    Ok(Collected { tables, sources })
}

/// What a staged file holds.
#[derive(Clone, Copy)]
enum StagedAs<'a> {
    Table(&'a str),
    Source(&'a str),
}

/// The key of a file a shard's result names. It must be one the attempt itself
/// wrote: in the run's staging area, under the table or source it is named for,
/// with the attempt's own file tag. A result names nothing else (not another
/// attempt's files, another run's, or the state).
fn staged_key(output: &Location, r: &AttemptOf, url: &str, what: StagedAs<'_>) -> Result<ObjPath> {
    let staging = run_dir(&r.run_id) + "/staging";
    let (dir, tag) = match what {
        StagedAs::Table(t) => (
            format!("{staging}/tables/{t}"),
            format!("part-{}-", r.file_tag()),
        ),
        StagedAs::Source(s) => (
            format!("{staging}/sources/{s}"),
            format!("{}.", r.file_tag()),
        ),
    };
    output
        .key_of_url(url)
        .filter(|k| k.prefix_matches(&output.child(&dir)))
        .filter(|k| k.filename().is_some_and(|n| n.starts_with(&tag)))
        .ok_or_else(|| {
            Error::Shards(format!(
                "shard {}'s result names {url}, which is not a file of its attempt {} in the run's staging area",
                r.shard, r.attempt
            ))
        })
}

/// Whose result it is: a run, a shard, an attempt.
struct AttemptOf {
    run_id: String,
    shard: usize,
    attempt: String,
}

impl AttemptOf {
    fn of(r: &ShardResult) -> Self {
        AttemptOf {
            run_id: r.run_id.clone(),
            shard: r.shard,
            attempt: r.attempt.clone(),
        }
    }

    /// `RUNID-sNNNNN-ATTEMPT`: what starts the names of the attempt's files.
    fn file_tag(&self) -> String {
        format!("{}-s{:05}-{}", self.run_id, self.shard, self.attempt)
    }
}

/// Moves a staged file into its table. A commit retried after it moved the file
/// finds it there already, with its size.
async fn move_into_table(
    output: &Location,
    from: &ObjPath,
    to: &ObjPath,
    bytes: u64,
) -> Result<()> {
    match output.store.rename(from, to).await {
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
pub(super) async fn remove_strays(
    output: &Location,
    run_id: &str,
    tables: &[TableFiles],
) -> Result<u64> {
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

/// The run's item lists, results and staging area, once it is committed, or
/// after it died; the plan stays, next to the run's report.
pub(super) async fn remove_run_work(output: &Location, run_id: &str) {
    for part in ["shards", "results", "staging"] {
        let prefix = output.child(&format!("{}/{part}", run_dir(run_id)));
        let listed: Result<Vec<_>, _> = output.store.list(Some(&prefix)).try_collect().await;
        let metas = match listed {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "could not list the run's {part} to remove them");
                continue;
            }
        };
        for m in metas {
            if let Err(e) = output.store.delete(&m.location).await {
                warn!(error = %e, path = %m.location, "could not remove a file of the run's {part}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_address_names_its_output_and_run() {
        let id = "01kbsxxfpajavw6wvez8fa2efw";
        let url = format!("s3://bucket/lake/_naslake/runs/{id}/plan.json");
        let (out, run) = parse_plan_url(&url).unwrap();
        assert_eq!((out.as_str(), run.as_str()), ("s3://bucket/lake", id));
        let (out, _) = parse_plan_url(&format!("/tmp/x/_naslake/runs/{id}/plan.json")).unwrap();
        assert_eq!(out, "/tmp/x");
        for bad in [
            "s3://bucket/lake/plan.json",
            "s3://bucket/lake/_naslake/runs/../plan.json",
            "s3://bucket/lake/_naslake/runs/01KBSXXFPAJAVW6WVEZ8FA2EFW/plan.json",
            "s3://bucket/lake/_naslake/runs/r-1/plan.json",
        ] {
            assert!(parse_plan_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn results_are_found_per_shard() {
        let listed: Vec<ObjPath> = ["r/00001-a.json", "r/00001-b.json", "r/00010-c.json"]
            .iter()
            .map(|p| ObjPath::from(*p))
            .collect();
        assert_eq!(results_of(1, &listed).len(), 2);
        assert_eq!(results_of(10, &listed).len(), 1);
        assert!(results_of(0, &listed).is_empty());
    }
}
