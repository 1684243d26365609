//! The run protocol, the one path every run takes (Spark's commit protocol is
//! the model): a **plan** (pure decisions: each table's role, full or
//! incremental and against which state, where each table's files go), **work**
//! over a feed of items that returns what it wrote as a value (files, per-item
//! counts and fingerprints, rows per object), a **finish** that computes the
//! tables over other tables, and one **commit**.
//!
//! - [`roles`] and [`basis`]: the pure decisions of the plan;
//! - [`discovery`]: the one listing loop, feeding the work;
//! - [`work`], [`finish`] and [`tables`]: writing the tables;
//! - [`conclude`]: the commit, the cleanup of a failed run, the report.
//!
//! The drivers (`crate::drive`) put these together: `naslake run` in one
//! process, `plan`/`work`/`commit` with shard feeds and result files.

pub mod basis;
pub mod conclude;
pub mod discovery;
pub mod finish;
pub mod history_table;
pub mod key_links;
pub mod roles;
pub mod tables;
pub mod work;

use std::collections::HashMap;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use tracing::warn;

use crate::base::error::{Error, Result};
use crate::base::redact::redact_url;
use crate::base::warnings::Warnings;
use crate::catalog::{Catalog, CatalogSpec};
use crate::commit::TablePlan;
use crate::commit::lease::Lease;
use crate::commit::recover::{self, Recovered};
use crate::commit::state::StateDir;
use crate::job::Job;
use crate::report::{Driver, RunReport, RunStatus, Totals};
use crate::storage::Location;
use crate::transform::{self, lineage::Lineage};
use basis::Basis;
use roles::TableRoles;

/// What every step of a run checks and opens before it works: the job's SQL and
/// the roles of its tables, its locations and catalog, and the report it fills in.
pub struct Setup {
    pub job: Job,
    pub input: Option<Location>,
    pub output: Location,
    pub catalog: Catalog,
    pub database: String,
    pub run_id: String,
    pub lineage: HashMap<String, Lineage>,
    pub roles: TableRoles,
    /// What the job's rows are computed with (see [`crate::job::spec_digest`]).
    pub digest: String,
    pub report: RunReport,
}

impl Setup {
    pub async fn new(
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
        key_links::check_locations(&job, input.as_ref(), &output)?;
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
        let report = RunReport {
            run_id: run_id.clone(),
            job: job.spec.name.clone(),
            driver: Driver::Run,
            status: RunStatus::Running,
            error: None,
            warnings: Vec::new(),
            started_at: started_at.to_rfc3339(),
            finished_at: String::new(),
            duration_seconds: 0.0,
            input: shown_input,
            output: redact_url(output_url).to_string(),
            catalog: format!("{} database {database}", catalog.describe()),
            totals: Totals::default(),
            sources: Vec::new(),
            tables: Vec::new(),
            incremental: None,
        };
        let roles = TableRoles::of(&job, &lineage);
        let digest = crate::job::spec_digest(&job);
        Ok(Setup {
            job,
            input,
            output,
            catalog,
            database,
            run_id,
            lineage,
            roles,
            digest,
            report,
        })
    }

    /// Where each table's files go, and whether its schema change is allowed,
    /// decided against the catalog before anything is written; an incremental
    /// run also checks that the catalog holds what its state says.
    pub async fn plan_tables(&self, basis: &Basis) -> Result<HashMap<String, TablePlan>> {
        let plans = crate::commit::plan(
            &self.job,
            &self.catalog,
            &self.database,
            &self.output,
            &self.run_id,
        )
        .await?;
        if let Some(inc) = basis.increment() {
            basis::check_catalog_matches(&inc.previous, &plans, &self.database)?;
        }
        Ok(plans)
    }

    /// Where the job's state lives in the output.
    pub fn state_dir(&self) -> StateDir {
        StateDir::new(&self.output, &self.job.spec.name)
    }

    /// How long the job's lease lasts unless renewed.
    pub fn lease_ttl(&self) -> std::time::Duration {
        lease_ttl(&self.job)
    }

    /// Completes or rolls back what a dead run left (its commit record, its
    /// files, a sharded run's work), before a run that took the job's lease
    /// decides anything. With `--full`, a recovery that fails is a warning: a full
    /// run needs nothing of the old state.
    pub async fn recover(
        &self,
        state_dir: &StateDir,
        lease: &Lease,
        forced_full: bool,
        warnings: &Warnings,
    ) -> Result<Recovered> {
        let dead = lease.took_over_from.as_deref();
        let recovered = match recover::recover(
            state_dir,
            &self.job,
            &self.catalog,
            &self.database,
            dead,
            warnings,
        )
        .await
        {
            Ok(r) => r,
            Err(e) if forced_full => {
                warnings.push(format!(
                    "could not complete what a dead run left ({e}); --full goes on without it"
                ));
                Recovered::default()
            }
            Err(e) => return Err(e),
        };
        if let Some(dead) = dead {
            // A sharded run that died leaves its item lists, results and staged files.
            remove_run_work(&self.output, dead).await;
        }
        Ok(recovered)
    }
}

/// How long a job's lease lasts unless renewed.
pub fn lease_ttl(job: &Job) -> std::time::Duration {
    std::time::Duration::from_secs(job.spec.incremental.lease_seconds.max(3))
}

/// `_naslake/runs/RUNID`, relative to the output: a run's report sits next to
/// it, and a sharded run's plan, item lists, results and staged files in it.
pub fn run_dir(run_id: &str) -> String {
    format!("_naslake/runs/{run_id}")
}

/// A sharded run's item lists, changes, results and staging area, once it is
/// committed or after it died; the plan stays, next to the run's report.
pub async fn remove_run_work(output: &Location, run_id: &str) {
    let changes = output.child(&format!("{}/changes.json", run_dir(run_id)));
    match output.store.delete(&changes).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => warn!(error = %e, "could not remove the run's changes.json"),
    }
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
        if output.is_local() {
            // A writer killed on a local disk leaves its upload's temporary file
            // (`NAME#N`), which listings do not show; the directory goes whole.
            let dir = std::path::PathBuf::from(format!("/{}", prefix.as_ref()));
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warn!(error = %e, "could not remove the run's {part} directory"),
            }
        }
    }
}
