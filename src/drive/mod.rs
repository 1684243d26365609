//! The drivers of the run protocol (`crate::exec`): [`run`] does a whole run in
//! one process (`naslake run`); [`sharded`] does it in three steps that may run
//! on other machines (`naslake plan`, `work`, `commit`). Both take the same
//! decisions with the same functions and commit the same way; what differs is
//! only where the items come from and where the work's output goes on the way
//! to the commit.
//!
//! The job's lease (one run of a job per output at a time) is taken and handed
//! on here, by one policy ([`LeaseStep`]).

pub mod run;
pub mod sharded;

use std::sync::Arc;

use tracing::warn;

use crate::base::error::{EXIT_OK, Result};
use crate::base::warnings::Warnings;
use crate::catalog::CatalogSpec;
use crate::commit::lease::Lease;
use crate::commit::state::{Committed, StateDir};
use crate::discover::Discovered;
use crate::exec::Setup;
use crate::exec::basis::{self, Basis, Requested};
use crate::exec::conclude::{self, RunOutcome};
use crate::exec::discovery::{Discovery, Pace};
use crate::job::Job;
use crate::report::RunStatus;

/// How a run was asked for on the command line (`run` and `plan`).
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

impl RunOptions {
    pub fn requested(&self, job: &Job) -> Requested {
        Requested::new(self.incremental, job.spec.incremental.enabled)
    }
}

/// The input and output a run uses: the command line's, else the job spec's
/// (the output defaults to `./lake`).
pub fn addresses(job: &Job, input: Option<&str>, output: Option<&str>) -> (Option<String>, String) {
    let input = input.map(str::to_string).or_else(|| job.spec.input_url());
    let output = output
        .map(str::to_string)
        .or_else(|| job.spec.output.clone())
        .unwrap_or_else(|| "./lake".into());
    (input, output)
}

/// A new run id: a ULID in lowercase (recovery orders runs by their ids).
pub fn new_run_id() -> String {
    ulid::Ulid::new().to_string().to_lowercase()
}

/// The steps that hold the job's lease, and what each does with it: the one
/// place the lease policy lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStep {
    /// `naslake run`: takes the lease and gives it back at its end.
    Run,
    /// `naslake plan`: takes the lease for the whole sharded run and leaves it
    /// held for the shards and the commit (given back if planning failed).
    Plan,
    /// `naslake work`: renews the run's lease and leaves it held, done or not.
    Work,
    /// `naslake commit`: renews the run's lease and gives it back once committed;
    /// a commit that failed can be done again, so it leaves the lease held.
    Commit,
}

impl LeaseStep {
    /// Takes or resumes the lease of `run_id`.
    pub async fn take(self, dir: &StateDir, run_id: &str, job: &Job) -> Result<Lease> {
        let ttl = crate::exec::lease_ttl(job);
        match self {
            LeaseStep::Run => Lease::acquire(dir, run_id, ttl).await,
            LeaseStep::Plan => Lease::acquire_for_shards(dir, run_id, ttl).await,
            LeaseStep::Work | LeaseStep::Commit => Lease::resume(dir, run_id, ttl).await,
        }
    }

    /// Whether the lease outlives this step.
    pub fn keeps(self, succeeded: bool) -> bool {
        match self {
            LeaseStep::Run => false,
            LeaseStep::Plan => succeeded,
            LeaseStep::Work => true,
            LeaseStep::Commit => !succeeded,
        }
    }

    /// Ends this step's hold of the lease.
    pub async fn end(self, lease: Lease, succeeded: bool) {
        if self.keeps(succeeded) {
            lease.keep();
        } else if let Err(e) = lease.release().await {
            warn!(error = %e, "could not release the job's lease; it expires by itself");
        }
    }
}

/// Decides the basis of a run about to start: reads the job's state and decides
/// with [`basis::decide`].
pub async fn decide_basis(
    setup: &Setup,
    state_dir: &StateDir,
    requested: Requested,
    warnings: &Warnings,
) -> Result<Basis> {
    let committed = if requested.incremental {
        state_dir.committed().await?
    } else {
        Committed::Nothing
    };
    basis::decide(
        &setup.job,
        &setup.roles,
        &setup.lineage,
        requested,
        committed,
        &setup.digest,
        warnings,
    )
}

/// `--dry-run` (`naslake run` and `naslake plan`): discovers every source
/// completely, and reports what a run would read (an incremental one: what
/// changed since the state). The job's SQL was planned by [`Setup::new`].
pub async fn dry_run(setup: &Setup, requested: Requested) -> Result<RunOutcome> {
    let warnings = Warnings::default();
    let basis = decide_basis(setup, &setup.state_dir(), requested, &warnings).await?;
    let manifest = Arc::new(Discovered::default());
    let mut discovery = Discovery::list(
        &setup.job,
        setup.input.as_ref(),
        &manifest,
        &indicatif::ProgressBar::hidden(),
        basis.increment(),
        Pace::Complete,
    );
    // Nothing reads the items (the feeds are unbounded, and are kept open until
    // the listing is over: a closed feed stops its source's listing).
    let feeds = discovery.take_feeds();
    let found = discovery.finish().await?;
    drop(feeds);
    found
        .check_not_empty(&setup.job, setup.input.as_ref())
        .await?;
    let listed = basis.increment().map(|inc| found.listed(inc)).transpose()?;
    let mut report = setup.report.clone();
    report.status = RunStatus::DryRun;
    report.incremental = Some(conclude::incremental_report(
        &basis,
        listed.as_ref(),
        &Default::default(),
        None,
    ));
    let files = conclude::describe_inputs(&mut report, &manifest);
    report.warnings = warnings.all();
    Ok(RunOutcome {
        report,
        files,
        exit_code: EXIT_OK,
    })
}

/// A progress bar whose length grows as discovery finds items.
pub fn progress_bar(enabled: bool) -> indicatif::ProgressBar {
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

#[cfg(test)]
mod tests {
    use super::LeaseStep;

    #[test]
    fn the_lease_outlives_only_the_steps_a_sharded_run_goes_on_after() {
        assert!(!LeaseStep::Run.keeps(true) && !LeaseStep::Run.keeps(false));
        assert!(LeaseStep::Plan.keeps(true) && !LeaseStep::Plan.keeps(false));
        assert!(LeaseStep::Work.keeps(true) && LeaseStep::Work.keeps(false));
        assert!(!LeaseStep::Commit.keeps(true) && LeaseStep::Commit.keeps(false));
    }
}
