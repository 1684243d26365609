//! Runs one job: discover → extract → transform → write → commit (DESIGN.md), one
//! module each; this file only drives them and writes the report.
//!
//! Nothing is visible until the commit: the catalog is changed only after every
//! table's files are complete and the run's counts add up. Every file the run
//! writes is in its staged list, and a run that fails at any point before the
//! catalog changed deletes exactly those, here, in one place.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::TableProvider;
use datafusion::functions::core::expr_fn::nullif;
use datafusion::prelude::{SessionContext, cast, ident, lit};
use object_store::{ObjectStoreExt, PutPayload};
use tracing::{info, warn};

use crate::catalog::{Catalog, CatalogSpec};
use crate::commit::lease::Lease;
use crate::commit::next_state::{self, NextState};
use crate::commit::recover::{self, Recovered};
use crate::commit::state::{self, CommitRecord, JobState, StateDir, TableKind};
use crate::commit::{self, TableFiles, TablePlan, accounting, cleanup};
use crate::discover::changes::{Baseline, SourceChanges};
use crate::discover::{
    self, Discovered, DiscoveredItem, ItemSink, ObjectFilter, SourceListing, WorkItem,
};
use crate::error::{EXIT_OK, EXIT_REJECTS, Error, Result};
use crate::files_table::{FilesTable, TableFile};
use crate::job::{Deletes, Job, JobTable, WriteMode};
use crate::report::{
    FileReport, IncrementalReport, RunReport, RunStatus, SourceReport, TableReport, Totals,
    Warnings,
};
use crate::sources::{AnySource, Drain, Feed, Registry};
use crate::storage::{Location, redact_url};
use crate::transform::{self, lineage::Lineage};
use crate::write::carry::{self, OldTable};
use crate::write::keys::{KEY_COLUMN, KeyTally};
use crate::write::layout::HIVE_NULL_PARTITION;
use crate::write::{self, Staged, TableWriter, WrittenFile};

pub mod sharded;

/// How a run was asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub input: Option<String>,
    pub output: Option<String>,
    pub catalog: Option<CatalogSpec>,
    pub overrides: Vec<String>,
    pub dry_run: bool,
    pub progress: bool,
    /// `--incremental` (`Some(true)`) or `--full` (`Some(false)`); `None`: the
    /// job spec's `incremental.enabled`.
    pub incremental: Option<bool>,
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
    let job = Job::load(job_path, &opts.overrides, registry)?;
    let (input_url, output_url) = addresses(&job, opts.input.as_deref(), opts.output.as_deref());
    let catalog_spec = opts.catalog.clone().unwrap_or(CatalogSpec::Local(None));
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    let setup = Setup::new(job, input_url, &output_url, &catalog_spec, run_id).await?;
    let state_dir = StateDir::new(&setup.output, &setup.job.spec.name);
    if opts.dry_run {
        let job = &setup.job;
        let kinds = table_kinds(job, &setup.lineage);
        let basis = BasisInputs {
            job,
            state_dir: &state_dir,
            lineage: &setup.lineage,
            kinds: &kinds,
            requested: opts.incremental.unwrap_or(job.spec.incremental.enabled),
            forced_full: opts.incremental == Some(false),
            digest: &state::spec_digest(job),
        }
        .decide(&Warnings::default())
        .await?;
        return dry_run(job, setup.input.as_ref(), setup.report.clone(), &basis).await;
    }
    setup.run_leased(opts, Stage::Whole, started).await
}

/// The input and output a run uses: the command line's, else the job spec's
/// (the output defaults to `./lake`).
fn addresses(job: &Job, input: Option<&str>, output: Option<&str>) -> (Option<String>, String) {
    let input = input.map(str::to_string).or_else(|| job.spec.input_url());
    let output = output
        .map(str::to_string)
        .or_else(|| job.spec.output.clone())
        .unwrap_or_else(|| "./lake".into());
    (input, output)
}

/// How long the job's lease lasts unless renewed.
fn lease_ttl(job: &Job) -> std::time::Duration {
    std::time::Duration::from_secs(job.spec.incremental.lease_seconds.max(3))
}

/// What every run checks and opens before it works: the job's SQL, its
/// locations and catalog, and the report it fills in.
struct Setup {
    job: Job,
    input: Option<Location>,
    output: Location,
    catalog: Catalog,
    database: String,
    run_id: String,
    lineage: HashMap<String, Lineage>,
    report: RunReport,
}

impl Setup {
    async fn new(
        job: Job,
        input_url: Option<String>,
        output_url: &str,
        catalog_spec: &CatalogSpec,
        run_id: String,
    ) -> Result<Setup> {
        let started_at = chrono::Utc::now();
        // Settings and the SQL are checked before any work, like the spec.
        transform::memory_limit()?;
        let lineage = transform::check_job_sql(&job).await?;
        let input = input_url.as_deref().map(Location::open).transpose()?;
        if input.is_none()
            && let Some(s) = job.sources.iter().find(|s| s.objects().is_some())
        {
            return Err(Error::config(format!(
                "source `{}` reads objects under the job's input, but the job has no `input` (set it in the spec or pass --input)",
                s.name()
            )));
        }
        let output = Location::open(output_url)?;
        if let Some(input) = &input
            && input.contains(&output)
        {
            return Err(Error::config(format!(
                "output {} lies inside input {}: source data is read-only, write somewhere else",
                redact_url(output_url),
                redact_url(&input.display)
            )));
        }
        let default_catalog_dir = if crate::storage::is_remote(output_url) {
            std::path::PathBuf::from("./lake")
        } else {
            std::path::PathBuf::from(output_url.strip_prefix("file://").unwrap_or(output_url))
        };
        let (catalog, database) = Catalog::open(catalog_spec, &default_catalog_dir).await?;
        // `--catalog glue:DB` names the database; otherwise the job spec does.
        let database = database.unwrap_or_else(|| job.spec.database.clone());
        let shown_input = input_url
            .as_deref()
            .map(redact_url)
            .unwrap_or_default()
            .to_string();
        let shown_output = redact_url(output_url).to_string();
        let report = RunReport {
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
            incremental: None,
        };
        Ok(Setup {
            job,
            input,
            output,
            catalog,
            database,
            run_id,
            lineage,
            report,
        })
    }

    /// Takes the job's lease (one run of a job per output at a time, held to the
    /// end), does `stage` and commits.
    async fn run_leased(
        self,
        opts: &RunOptions,
        stage: Stage<'_>,
        started: Instant,
    ) -> Result<RunOutcome> {
        let (job, run_id) = (&self.job, &self.run_id);
        info!(job = %job.spec.name, run_id = %run_id, input = %self.report.input, output = %self.report.output, "run started");
        let state_dir = StateDir::new(&self.output, &job.spec.name);
        let ttl = lease_ttl(job);
        let lease = match stage {
            Stage::Commit(_) => Lease::resume(&state_dir, run_id, ttl).await?,
            _ => Lease::acquire(&state_dir, run_id, ttl).await?,
        };
        let leased = Leased {
            job,
            opts,
            stage,
            input: self.input.as_ref(),
            output: &self.output,
            catalog: &self.catalog,
            database: &self.database,
            run_id,
            lineage: &self.lineage,
            state_dir: &state_dir,
            lease: &lease,
        };
        let outcome = leased.run(self.report.clone(), started).await;
        let failed = match &outcome {
            Ok(o) => o.report.error.is_some(),
            Err(Error::Committed(_)) => false,
            Err(_) => true,
        };
        if matches!(stage, Stage::Commit(_)) && failed {
            // The sharded run goes on: its shards can be done again and committed.
            lease.keep();
        } else if let Err(e) = lease.release().await {
            warn!(error = %e, "could not release the job's lease; it expires by itself");
        }
        outcome
    }
}

/// How this run relates to the job's last committed one.
enum Basis {
    /// Everything is read; the tables are replaced whole.
    Full { reason: String },
    /// Only what changed since `previous` is read.
    Incremental(Box<Increment>),
}

/// An incremental run's view of the last committed state.
struct Increment {
    previous: JobState,
    baseline: Arc<Baseline>,
    /// Sources read in full all the same: a derived table's SQL reads them.
    reread: BTreeSet<String>,
    /// Sources a derived table reads whole, whose unchanged rows come from that
    /// table's last version instead (source → table; see [`Lineage::preserves`]).
    providers: BTreeMap<String, String>,
    deletes: Deletes,
}

/// What the listing of an incremental run found, against the state.
#[derive(Default)]
struct Listed {
    changes: BTreeMap<String, SourceChanges>,
    /// Keys whose old rows go: changed, deleted (propagated) or read again.
    removed: HashSet<String>,
    /// Objects gone whose rows stay (`deletes = "keep"`), by source.
    kept_deleted: BTreeMap<String, BTreeSet<String>>,
    /// Nothing to read and nothing to remove.
    quiet: bool,
}

/// A run that holds the job's lease.
struct Leased<'a> {
    job: &'a Job,
    opts: &'a RunOptions,
    stage: Stage<'a>,
    input: Option<&'a Location>,
    output: &'a Location,
    catalog: &'a Catalog,
    database: &'a str,
    run_id: &'a str,
    lineage: &'a HashMap<String, Lineage>,
    state_dir: &'a StateDir,
    lease: &'a Lease,
}

impl Leased<'_> {
    async fn run(&self, mut report: RunReport, started: Instant) -> Result<RunOutcome> {
        let (job, output, run_id) = (self.job, self.output, self.run_id);
        let warnings = Warnings::default();
        let forced_full = self.opts.incremental == Some(false);
        let requested = self
            .opts
            .incremental
            .unwrap_or(job.spec.incremental.enabled);
        let recovered = match recover::recover(
            self.state_dir,
            job,
            self.catalog,
            self.database,
            self.lease.took_over_from.as_deref(),
            &warnings,
        )
        .await
        {
            Ok(r) => r,
            Err(e) if forced_full => {
                warnings.push(format!(
                    "could not complete what a dead run left ({e}); --full goes on without it"
                ));
                Default::default()
            }
            Err(e) => return Err(e),
        };
        if let Some(dead) = self.lease.took_over_from.as_deref() {
            // A sharded run that died leaves its item lists, results and staged files.
            sharded::remove_run_work(output, dead).await;
        }
        if matches!(self.stage, Stage::Commit(_))
            && self.state_dir.current_run().await?.as_deref() == Some(run_id)
        {
            // Completed from its commit record by the recovery just above.
            return Err(Error::Committed(format!("run {run_id} is committed")));
        }
        let kinds = table_kinds(job, self.lineage);
        let digest = state::spec_digest(job);
        let basis = match self.stage {
            Stage::Whole => {
                BasisInputs {
                    job,
                    state_dir: self.state_dir,
                    lineage: self.lineage,
                    kinds: &kinds,
                    requested,
                    forced_full,
                    digest: &digest,
                }
                .decide(&warnings)
                .await?
            }
            _ => Basis::Full {
                reason: "a sharded run (plan, work, commit) reads everything".into(),
            },
        };
        // Where each table's files go, and whether its schema change is allowed, is
        // decided against the catalog before anything is written.
        let plans = commit::plan(job, self.catalog, self.database, output, run_id).await?;
        if let Basis::Incremental(inc) = &basis {
            check_catalog_matches(&inc.previous, &plans, self.database)?;
        }
        let increment = match &basis {
            Basis::Incremental(inc) => Some(inc.as_ref()),
            Basis::Full { .. } => None,
        };
        let run = Run {
            job,
            input: self.input,
            output,
            stage: self.stage,
            file_tag: match self.stage {
                // A commit retried after a failure writes files of its own.
                Stage::Commit(_) => {
                    format!("{run_id}-c{}", ulid::Ulid::new().to_string().to_lowercase())
                }
                _ => run_id.to_string(),
            },
            plans: &plans,
            lineage: self.lineage,
            kinds: &kinds,
            increment,
            listed: std::sync::OnceLock::new(),
            manifest: Arc::new(Discovered::default()),
            staged: Staged::default(),
            staged_sources: Default::default(),
            warnings: warnings.clone(),
            progress: progress_bar(self.opts.progress),
        };
        let result = run.extract_and_write().await;
        run.progress.finish_and_clear();
        let result = match result {
            Ok(Some(tables)) => self
                .commit(&run, &plans, tables, &kinds, &digest)
                .await
                .map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        // The one place a failed run's files go: unless the catalog may point at
        // them (an undo that failed), they are deleted.
        if let Err(e) = &result {
            if matches!(e, Error::CatalogInconsistent(_)) {
                tracing::error!(error = %e, "catalog left inconsistent; this run's files are kept");
            } else {
                cleanup::discard(output, &run.staged, &warnings).await;
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
        report.incremental = Some(incremental_report(
            &basis,
            run.listed.get(),
            &recovered,
            result.as_ref().ok().and_then(|r| r.as_ref()),
        ));
        let exit_code = match result {
            Ok(table_reports) => {
                let table_reports = table_reports.unwrap_or_default();
                for t in &table_reports {
                    report.totals.rows_out += t.rows_written;
                    report.totals.bytes_out += t.bytes_written;
                    report.totals.files_written += t.files.len() as u64;
                }
                report.tables = table_reports;
                let rejected =
                    report.totals.records_rejected > 0 || report.totals.files_rejected > 0;
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
        report.warnings = warnings.all();
        finish_report(&mut report, started, output).await;
        info!(run_id = %run_id, status = %report.status, rows_out = report.totals.rows_out, "run finished");
        Ok(RunOutcome { report, exit_code })
    }
}

/// What decides between an incremental and a full run.
struct BasisInputs<'a> {
    job: &'a Job,
    state_dir: &'a StateDir,
    lineage: &'a HashMap<String, Lineage>,
    kinds: &'a HashMap<String, TableKind>,
    /// `--incremental`, `--full` or the spec.
    requested: bool,
    forced_full: bool,
    digest: &'a str,
}

impl BasisInputs<'_> {
    /// Decides between an incremental and a full run.
    async fn decide(&self, warnings: &Warnings) -> Result<Basis> {
        let (job, requested, forced_full, digest) =
            (self.job, self.requested, self.forced_full, self.digest);
        if !requested {
            let reason = if forced_full {
                "--full".to_string()
            } else {
                "incremental runs are off for this job (`incremental.enabled`, --incremental)"
                    .to_string()
            };
            return Ok(Basis::Full { reason });
        }
        check_incremental(job)?;
        let Some(previous) = self.state_dir.current().await? else {
            return Ok(Basis::Full {
                reason:
                    "the job has no committed state yet: this run reads everything and starts one"
                        .into(),
            });
        };
        if previous.spec_digest != digest {
            let reason = format!(
                "the job changed since run {} (its sources, SQL, schemas, params or naslake's version): this run reads everything",
                previous.run_id
            );
            warnings.push(reason.clone());
            return Ok(Basis::Full { reason });
        }
        let mut whole = BTreeSet::new();
        for (table, l) in self.lineage {
            if self.kinds.get(table) == Some(&TableKind::Derived) {
                whole.extend(l.sources.iter().cloned());
            }
        }
        let (mut reread, mut providers) = (BTreeSet::new(), BTreeMap::new());
        for source in whole {
            match self.provider(&source, &previous) {
                Some(table) => {
                    providers.insert(source, table);
                }
                None => {
                    reread.insert(source);
                }
            }
        }
        Ok(Basis::Incremental(Box::new(Increment {
            baseline: Arc::new(Baseline::new(&previous.sources)),
            previous,
            reread,
            providers,
            deletes: job.spec.incremental.deletes,
        })))
    }

    /// A derived table whose last version holds every row of `source` as it was
    /// read (its SQL keeps the rows one for one, and it has the source's columns
    /// with their types), when no table kept per object reads the source too.
    fn provider(&self, source: &str, previous: &JobState) -> Option<String> {
        let schema = self
            .job
            .sources
            .iter()
            .find(|s| s.name() == source)?
            .schema();
        let per_object_reader = self.lineage.iter().any(|(t, l)| {
            self.kinds.get(t) == Some(&TableKind::Objects) && l.sources.contains(source)
        });
        if per_object_reader {
            return None;
        }
        let (name, lineage) = self
            .lineage
            .iter()
            .find(|(_, l)| l.preserves.as_deref() == Some(source))?;
        let table = self.job.table(name)?;
        let file = table.schema.file_schema();
        let keys = table.schema.partition_key_names();
        let has_all = schema.fields().iter().all(|f| {
            if !lineage.passed_through.contains(f.name()) {
                false
            } else if keys.contains(f.name()) {
                // Read back from its directory name: lossless for strings only.
                f.data_type() == &DataType::Utf8
            } else {
                file.field_with_name(f.name())
                    .is_ok_and(|g| g.data_type() == f.data_type())
            }
        });
        (has_all && previous.tables.contains_key(name)).then(|| name.clone())
    }
}

impl Leased<'_> {
    /// Prepares the switch, builds the state it commits, and applies both.
    async fn commit(
        &self,
        run: &Run<'_>,
        plans: &HashMap<String, TablePlan>,
        tables: Vec<TableFiles>,
        kinds: &HashMap<String, TableKind>,
        digest: &str,
    ) -> Result<Vec<TableReport>> {
        let target = commit::Target {
            job: self.job,
            catalog: self.catalog,
            database: self.database,
            output: self.output,
            run_id: self.run_id,
        };
        let prepared = commit::prepare(&target, plans, tables, &run.staged).await?;
        let empty = Listed::default();
        let listed = run.listed.get().unwrap_or(&empty);
        let items: Vec<WorkItem> = run
            .manifest
            .items()
            .iter()
            .map(|d| (*d.item).clone())
            .collect();
        let previous = run.increment.map(|i| &i.previous);
        let state = next_state::build(
            &NextState {
                job: &self.job.spec.name,
                run_id: self.run_id,
                spec_digest: digest.to_string(),
                previous,
                removed: &listed.removed,
                kept_deleted: &listed.kept_deleted,
                items: &items,
                kinds,
            },
            prepared.tables(),
        )?;
        let record = CommitRecord {
            format: state::STATE_FORMAT,
            base_run: self.state_dir.current_run().await?,
            entries: prepared.entries(),
            replaced: prepared.replaced(),
            state,
        };
        let committing = commit::Committing {
            dir: self.state_dir,
            lease: self.lease,
            record,
        };
        commit::apply(&target, prepared, committing, &run.warnings).await
    }
}

/// How an incremental run keeps each table: from its SQL's lineage, the rejects
/// table per object when it has a `source_key`.
fn table_kinds(job: &Job, lineage: &HashMap<String, Lineage>) -> HashMap<String, TableKind> {
    job.tables
        .iter()
        .map(|t| {
            let kind = match lineage.get(&t.name) {
                Some(l) => l.kind,
                None if t.schema.columns.iter().any(|c| c.name == KEY_COLUMN) => TableKind::Objects,
                None => TableKind::Derived,
            };
            (t.name.clone(), kind)
        })
        .collect()
}

/// An incremental run keeps every table equal to a full run over the objects
/// listed: it needs sources that list objects and tables that a run replaces.
fn check_incremental(job: &Job) -> Result<()> {
    if let Some(s) = job.sources.iter().find(|s| s.objects().is_none()) {
        return Err(Error::config(format!(
            "job {}: source `{}` finds its items itself (a snapshot, not listed objects), so runs of this job cannot be incremental; run it with --full or without `incremental.enabled`",
            job.spec.name,
            s.name()
        )));
    }
    // Rows are kept per object key: two sources that could list the same key
    // would share rows they should not.
    let filters: Vec<(&str, &ObjectFilter)> = job
        .sources
        .iter()
        .filter_map(|s| s.objects().map(|f| (s.name(), f)))
        .collect();
    for (i, (a, fa)) in filters.iter().enumerate() {
        for (b, fb) in &filters[i + 1..] {
            let nested = fa.prefix.starts_with(&fb.prefix) || fb.prefix.starts_with(&fa.prefix);
            let suffixes_meet = fa.suffixes.is_empty()
                || fb.suffixes.is_empty()
                || fa.suffixes.iter().any(|s| {
                    fb.suffixes.iter().any(|t| {
                        let (s, t) = (s.to_ascii_lowercase(), t.to_ascii_lowercase());
                        s.ends_with(&t) || t.ends_with(&s)
                    })
                });
            if nested && suffixes_meet {
                return Err(Error::config(format!(
                    "job {}: sources `{a}` and `{b}` can list the same objects (their prefixes and suffixes overlap); an incremental run keeps rows per object key, so give them prefixes or suffixes apart",
                    job.spec.name
                )));
            }
        }
    }
    if let Some(t) = job
        .tables
        .iter()
        .find(|t| t.spec.mode != WriteMode::Overwrite)
    {
        return Err(Error::config(format!(
            "job {}: table {} has mode `{}`; an incremental run keeps each table equal to a full run over the share, so its tables need mode `overwrite` (use `incremental.deletes = \"keep\"` to keep the rows of deleted files)",
            job.spec.name,
            t.name,
            t.spec.mode.as_str()
        )));
    }
    Ok(())
}

/// The catalog must hold what the state says the last committed run left: a
/// table changed by hand (or by another tool) would be merged wrongly.
fn check_catalog_matches(
    previous: &JobState,
    plans: &HashMap<String, TablePlan>,
    database: &str,
) -> Result<()> {
    for (name, t) in &previous.tables {
        let found = plans.get(name).and_then(|p| p.before.as_ref());
        let problem = match found {
            None => Some("it is not in the catalog".to_string()),
            Some(e) if e.updated_by_run != t.updated_by_run => Some(format!(
                "the catalog says run {} last changed it, the state says run {}",
                if e.updated_by_run.is_empty() {
                    "(none)"
                } else {
                    &e.updated_by_run
                },
                t.updated_by_run
            )),
            Some(e) if next_state::partitions_of(e) != t.partitions => {
                Some("its partitions or their locations differ from the state's".to_string())
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            return Err(Error::State(format!(
                "table {database}.{name} does not match the incremental state of run {}: {problem}. \
                 Someone changed it outside naslake, or another job writes it. Run once with --full to rebuild the tables and the state",
                previous.run_id
            )));
        }
    }
    Ok(())
}

fn incremental_report(
    basis: &Basis,
    listed: Option<&Listed>,
    recovered: &Recovered,
    tables: Option<&Vec<TableReport>>,
) -> IncrementalReport {
    let mut out = IncrementalReport {
        basis: match basis {
            Basis::Full { .. } => "full",
            Basis::Incremental(_) => "incremental",
        },
        reason: match basis {
            Basis::Full { reason } => reason.clone(),
            Basis::Incremental(inc) => {
                format!("compared with the state of run {}", inc.previous.run_id)
            }
        },
        previous_run: match basis {
            Basis::Incremental(inc) => Some(inc.previous.run_id.clone()),
            Basis::Full { .. } => None,
        },
        nothing_changed: listed.is_some_and(|l| l.quiet),
        recovered: recovered.clone(),
        ..Default::default()
    };
    if let Some(l) = listed {
        for (source, c) in &l.changes {
            let counts = c.counts();
            out.objects.new += counts.new;
            out.objects.changed += counts.changed;
            out.objects.unchanged += counts.unchanged;
            out.objects.deleted += counts.deleted;
            if let Basis::Incremental(inc) = basis
                && inc.reread.contains(source)
                && !l.quiet
            {
                out.reread += counts.unchanged;
                out.reread_sources.push(source.clone());
            }
            out.by_source.insert(source.clone(), counts);
        }
    }
    for t in tables.into_iter().flatten() {
        if let Some(m) = &t.incremental {
            out.rows_added += m.rows_added;
            out.rows_removed += m.rows_removed;
        }
    }
    out
}

/// `--dry-run`: discover every source completely, plan every table's SQL against
/// the sources' and earlier tables' columns, and report what a run would read (an
/// incremental one: what changed since the state).
async fn dry_run(
    job: &Job,
    input: Option<&Location>,
    mut report: RunReport,
    basis: &Basis,
) -> Result<RunOutcome> {
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
        if let Basis::Incremental(inc) = basis {
            sink = sink.with_baseline(inc.baseline.clone(), inc.reread.contains(source.name()));
        }
        let prefix = source.discover(input, &mut sink).await?;
        sink.finish(&prefix);
        drop(rx);
    }
    let listings = manifest.listings();
    check_not_empty(job, input, &listings).await?;
    report.status = RunStatus::DryRun;
    let changes = match basis {
        Basis::Incremental(inc) => Some(listed(inc, &job.sources)),
        Basis::Full { .. } => None,
    };
    report.incremental = Some(incremental_report(
        basis,
        changes.as_ref(),
        &Recovered::default(),
        None,
    ));
    report.sources = listings.iter().map(SourceReport::from).collect();
    report.files = file_reports(&manifest.items());
    fill_totals(&mut report.totals, &report.files, &report.sources);
    Ok(RunOutcome {
        report,
        exit_code: EXIT_OK,
    })
}

/// What part of a run this process does.
#[derive(Clone, Copy)]
enum Stage<'a> {
    /// All of it: discover, extract, every table (`naslake run`).
    Whole,
    /// One shard's items: the tables kept per object, the rejects, and the rows of
    /// the sources that the other tables read, staged for the commit (`naslake work`).
    Shard(&'a sharded::ShardWork),
    /// The other tables, over what the shards wrote (`naslake commit`).
    Commit(&'a sharded::RunPlan),
}

/// One run's state while it extracts and writes.
struct Run<'a> {
    job: &'a Job,
    input: Option<&'a Location>,
    output: &'a Location,
    stage: Stage<'a>,
    /// Starts the names of the data files this process writes: the run id, and in
    /// a shard the shard and its attempt too, so attempts never share a name.
    file_tag: String,
    plans: &'a HashMap<String, TablePlan>,
    lineage: &'a HashMap<String, Lineage>,
    kinds: &'a HashMap<String, TableKind>,
    /// The last committed state, in an incremental run.
    increment: Option<&'a Increment>,
    /// What an incremental run's listing found (set once listing is over).
    listed: std::sync::OnceLock<Listed>,
    /// The items discovered so far (all of them once discovery is over).
    manifest: Arc<Discovered>,
    /// Every file written, for the one cleanup of a failed run.
    staged: Staged,
    /// A shard's copies of the sources that the commit's tables read.
    staged_sources: std::sync::Mutex<Vec<sharded::StagedSource>>,
    warnings: Warnings,
    progress: indicatif::ProgressBar,
}

impl Run<'_> {
    /// Discovers while working (each source's readers start on the first item
    /// found), runs every table's SQL into its writers, and checks that the run's
    /// counts add up. Returns the tables' files, ready to commit, or `None` when
    /// an incremental run found nothing changed.
    async fn extract_and_write(&self) -> Result<Option<Vec<TableFiles>>> {
        match self.stage {
            Stage::Whole => {}
            Stage::Shard(work) => return self.extract_shard(work).await.map(Some),
            Stage::Commit(plan) => return self.write_over_shards(plan).await.map(Some),
        }
        if let Some(inc) = self.increment {
            return self.extract_changes(inc).await;
        }
        let mut feeds = Vec::new();
        let mut discovery = Vec::new();
        for source in &self.job.sources {
            let (tx, rx) = async_channel::bounded(DISCOVERED_IN_FLIGHT);
            feeds.push(rx);
            let mut sink = self.sink(source, tx);
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
        self.check_complete(&drains, &tables)?;
        Ok(Some(tables))
    }

    /// An incremental run lists every source first (it must know what was
    /// deleted before it rewrites a partition), then reads what changed.
    async fn extract_changes(&self, inc: &Increment) -> Result<Option<Vec<TableFiles>>> {
        let mut feeds = Vec::new();
        let mut listings = Vec::new();
        for source in &self.job.sources {
            let (tx, rx) = async_channel::unbounded();
            let mut sink = ItemSink::new(
                source.name(),
                self.manifest.clone(),
                tx,
                self.progress.clone(),
            )
            .with_baseline(inc.baseline.clone(), inc.reread.contains(source.name()));
            let prefix = source.discover(self.input, &mut sink).await?;
            listings.push(sink.finish(&prefix));
            feeds.push(rx);
        }
        check_not_empty(self.job, self.input, &listings).await?;
        let listed = listed(inc, &self.job.sources);
        let quiet = listed.quiet;
        if quiet {
            info!(previous_run = %inc.previous.run_id, "nothing changed since the last committed run: nothing read, nothing committed");
        }
        if self.listed.set(listed).is_err() {
            return Err(Error::Accounting(
                "a run's sources were listed twice".into(),
            ));
        }
        if quiet {
            return Ok(None);
        }
        let drains: Vec<Arc<Drain>> = feeds.iter().map(|_| Arc::default()).collect();
        let tables = self.write_tables(feeds, &drains).await?;
        self.check_complete(&drains, &tables)?;
        Ok(Some(tables))
    }

    /// Where a source's items go: its readers (`tx`) and the run's manifest.
    fn sink(
        &self,
        source: &Arc<dyn AnySource>,
        tx: async_channel::Sender<DiscoveredItem>,
    ) -> ItemSink {
        ItemSink::new(
            source.name(),
            self.manifest.clone(),
            tx,
            self.progress.clone(),
        )
    }

    /// A shard reads exactly the items its plan gives it, as if discovery had
    /// just found them.
    async fn extract_shard(&self, work: &sharded::ShardWork) -> Result<Vec<TableFiles>> {
        let mut feeds = Vec::new();
        let mut replays = Vec::new();
        for source in &self.job.sources {
            let (tx, rx) = async_channel::bounded(DISCOVERED_IN_FLIGHT);
            feeds.push(rx);
            let mut sink = self.sink(source, tx);
            let items: Vec<WorkItem> = work
                .items
                .iter()
                .filter(|i| i.source == source.name())
                .cloned()
                .collect();
            replays.push(tokio::spawn(async move {
                for item in items {
                    if !sink.found(item.key, item.fingerprint).await {
                        break;
                    }
                }
                sink.finish("the shard's items");
            }));
        }
        let drains: Vec<Arc<Drain>> = feeds.iter().map(|_| Arc::default()).collect();
        let written = self.write_tables(feeds, &drains).await;
        for task in replays {
            task.await.map_err(|e| {
                Error::Accounting(format!("handing out the shard's items failed: {e}"))
            })?;
        }
        let tables = written?;
        self.check_complete(&drains, &tables)?;
        Ok(tables)
    }

    /// The commit of a sharded run: the tables the shards wrote are taken as they
    /// are, and every other table is computed over them and over the sources'
    /// rows the shards staged, in the job's order.
    async fn write_over_shards(&self, plan: &sharded::RunPlan) -> Result<Vec<TableFiles>> {
        let collected =
            sharded::collect(self.output, self.job, self.lineage, plan, &self.manifest).await?;
        let ctx = transform::session()?;
        ctx.register_object_store(self.output.store_url.as_ref(), self.output.store.clone());
        for source in &self.job.sources {
            if let Some(files) = collected.sources.get(source.name()) {
                let provider = FilesTable::new(
                    source.schema(),
                    &[],
                    self.output.store_url.clone(),
                    files.clone(),
                );
                ctx.register_table(source.name(), Arc::new(provider))?;
            }
        }
        let rejects_name = &self.job.rejects_table().name;
        let mut done = Vec::new();
        let mut rejects = None;
        for table in &self.job.tables {
            let t = match collected.tables.get(&table.name) {
                Some(shards) => TableFiles {
                    table: table.clone(),
                    prefix: self.output.child(&table.name),
                    files: shards.files.clone(),
                    rows: shards.rows,
                    tally: shards.tally.clone(),
                    merge: None,
                },
                None if table.sql.is_some() => self.write_sql_table(&ctx, table).await?,
                None => {
                    return Err(Error::Shards(format!(
                        "no shard wrote table {}",
                        table.name
                    )));
                }
            };
            register_written(&ctx, self.output, table, &t.files)?;
            if &table.name == rejects_name {
                rejects = Some(t);
            } else {
                done.push(t);
            }
        }
        // As in a whole run: the rejects table comes last.
        done.extend(rejects);
        self.check_complete(&[], &done)?;
        sharded::remove_strays(self.output, &plan.run_id, &done).await?;
        Ok(done)
    }

    /// Every source was read to its end, and the counts add up.
    fn check_complete(&self, drains: &[Arc<Drain>], tables: &[TableFiles]) -> Result<()> {
        for (source, drain) in self.job.sources.iter().zip(drains) {
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
        accounting::check(&self.manifest.items(), rejects_rows)
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
        let rejects_counter: Arc<std::sync::atomic::AtomicU32> = Arc::default();
        let rejects_tally = self.tally_for(&rejects_table);
        let rejects_writer =
            self.tallying_writer(&rejects_table, rejects_counter.clone(), &rejects_tally)?;
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
        let rejects = self
            .table_files(&rejects_table, files, rows, rejects_tally, rejects_counter)
            .await?;
        done.push(rejects);
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
            let fresh = Arc::<dyn AnySource>::clone(source).table(feed)?;
            let provider = self.increment.and_then(|i| i.providers.get(source.name()));
            let table = match provider {
                Some(provider) => self.with_old_rows(ctx, source, fresh, provider).await?,
                None => fresh,
            };
            ctx.register_table(source.name(), table)?;
        }
        drop(rejects);
        ctx.register_object_store(self.output.store_url.as_ref(), self.output.store.clone());
        let mut done = Vec::new();
        for table in self.job.tables.iter().filter(|t| t.sql.is_some()) {
            if let Stage::Shard(work) = self.stage
                && !work.per_shard.contains(&table.name)
            {
                continue;
            }
            let t = self.write_sql_table(ctx, table).await?;
            // Later SQL reads exactly the table's new version: the files this run
            // wrote, and in an incremental run the partitions it kept.
            let read_later = self
                .lineage
                .values()
                .any(|l| l.tables.contains(&table.name));
            let mut files = t.files.clone();
            if read_later && let Some(m) = &t.merge {
                files.extend(kept_files(self.output, &m.kept).await?);
            }
            register_written(ctx, self.output, &t.table, &files)?;
            done.push(t);
        }
        if let Stage::Shard(work) = self.stage {
            for source in &work.stage_sources {
                let staged =
                    sharded::stage_source(ctx, self.output, work, source, &self.staged).await?;
                crate::sync::lock(&self.staged_sources).push(staged);
            }
        }
        Ok(done)
    }

    async fn write_sql_table(&self, ctx: &SessionContext, table: &JobTable) -> Result<TableFiles> {
        let plan = transform::plan_table(ctx, table).await?;
        let writers = transform::writers_for(self.input_size_hint().await, &plan);
        let streams = transform::output_streams(plan, ctx, writers)?;
        let counter: Arc<std::sync::atomic::AtomicU32> = Arc::default();
        let tally = self.tally_for(table);
        let (files, rows) = write::write_streams(streams, || {
            self.tallying_writer(table, Arc::clone(&counter), &tally)
        })
        .await?;
        info!(table = %table.name, rows, files = files.len(), "table written");
        self.table_files(table, files, rows, tally, counter).await
    }

    /// A source as a full run would see it: the rows of the objects read now, and
    /// of every unchanged object the rows `provider` (a derived table that keeps
    /// the source's rows one for one) holds of it, read back from its last version.
    async fn with_old_rows(
        &self,
        ctx: &SessionContext,
        source: &Arc<dyn AnySource>,
        fresh: Arc<dyn TableProvider>,
        provider: &str,
    ) -> Result<Arc<dyn TableProvider>> {
        let (Some(inc), Some(listed), Some(table)) =
            (self.increment, self.listed.get(), self.job.table(provider))
        else {
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

    /// A table kept per object tallies its rows by key (for the state).
    fn tally_for(&self, table: &JobTable) -> Option<Arc<KeyTally>> {
        (self.kinds.get(&table.name) == Some(&TableKind::Objects)).then(Arc::default)
    }

    fn tallying_writer(
        &self,
        table: &JobTable,
        counter: Arc<std::sync::atomic::AtomicU32>,
        tally: &Option<Arc<KeyTally>>,
    ) -> Result<TableWriter> {
        let writer = self.table_writer(table, counter)?;
        match tally {
            Some(t) => writer.tally_keys(t.clone()),
            None => Ok(writer),
        }
    }

    /// A table's fresh files, merged in an incremental run with its last version.
    async fn table_files(
        &self,
        table: &JobTable,
        mut files: Vec<WrittenFile>,
        rows: u64,
        tally: Option<Arc<KeyTally>>,
        counter: Arc<std::sync::atomic::AtomicU32>,
    ) -> Result<TableFiles> {
        let mut merged = None;
        if let (Some(inc), Some(listed), Some(_)) = (self.increment, self.listed.get(), &tally) {
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
                    Some(&listed.removed),
                ),
            };
            let placement = self
                .plans
                .get(&table.name)
                .map(|p| p.placement.clone())
                .ok_or_else(|| {
                    Error::Accounting(format!("table {} was not planned", table.name))
                })?;
            let writer = self.table_writer(table, Arc::clone(&counter))?;
            let (merge, carried) = carry::merge(
                self.output,
                &table.name,
                &old,
                &listed.removed,
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
            tally: tally.map(|t| t.take()),
            merge: merged,
        })
    }

    /// The input size that sizes write parallelism: discovery runs alongside, so
    /// this waits (briefly) until every source is listed or enough bytes are found.
    async fn input_size_hint(&self) -> u64 {
        let sources = self.job.sources.len() as u64;
        let enough = transform::bytes_per_writer() * transform::cores() as u64;
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
            &self.file_tag,
            counter,
            self.staged.clone(),
        )
    }
}

/// Sums up an incremental run's listing against the state.
fn listed(inc: &Increment, sources: &[Arc<dyn AnySource>]) -> Listed {
    let mut out = Listed {
        quiet: true,
        ..Default::default()
    };
    for source in sources {
        let name = source.name();
        let c = inc.baseline.outcome(name);
        let before = inc.previous.sources.get(name);
        out.removed.extend(c.changed.iter().cloned());
        if inc.reread.contains(name) {
            out.removed.extend(c.unchanged.iter().cloned());
        }
        let newly_deleted = c
            .deleted
            .iter()
            .filter(|k| !before.and_then(|b| b.get(*k)).is_some_and(|o| o.deleted))
            .count();
        match inc.deletes {
            Deletes::Propagate => out.removed.extend(c.deleted.iter().cloned()),
            Deletes::Keep => {
                out.kept_deleted.insert(name.to_string(), c.deleted.clone());
            }
        }
        if !c.new.is_empty() || !c.changed.is_empty() || newly_deleted > 0 {
            out.quiet = false;
        }
        out.changes.insert(name.to_string(), c);
    }
    out
}

/// The data files of the partitions an incremental run kept as they were, for
/// later SQL of the run that reads the whole table.
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
        if listing.items + listing.unchanged > 0 || allowed {
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
