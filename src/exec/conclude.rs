//! The end of every run that commits (`naslake run`, `naslake commit`): the one
//! commit (the state it writes is built here, then `commit::apply` switches the
//! catalog), the one cleanup of a failed run's files, and the run report.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use object_store::ObjectStoreExt;
use rayon::prelude::*;
use tracing::{info, warn};

use super::Setup;
use super::basis::{Basis, Listed};
use super::tables::Writing;
use super::{history_table, key_links};
use crate::base::error::{EXIT_OK, EXIT_REJECTS, Error, Result};
use crate::base::warnings::Warnings;
use crate::commit::TableReport;
use crate::commit::lease::Lease;
use crate::commit::next_state::{self, NextState, TableAfter};
use crate::commit::recover::Recovered;
use crate::commit::state::{self, CommitRecord, StateDir};
use crate::commit::{self, TableFiles, TablePlan, cleanup};
use crate::discover::{Discovered, DiscoveredItem};
use crate::history::RunRow;
use crate::model::RUNS_TABLE;
use crate::model::{ItemCounts, SourceListing, WorkItem};
use crate::report::{
    FileList, FileReport, IncrementalReport, RunReport, RunStatus, SourceReport, Totals,
};
use crate::storage::Location;
use crate::write::Staged;

/// The result of a run that got as far as doing work; a run that fails after that
/// point still has a report (status `failed`) and exit code 1.
pub struct RunOutcome {
    pub report: RunReport,
    /// The report's `files`, serialised ([`RunOutcome::json`] writes both).
    pub files: FileList,
    pub exit_code: i32,
}

impl RunOutcome {
    /// The report as it is written, files and all.
    pub fn json(&self) -> serde_json::Result<Vec<u8>> {
        self.report.to_json(&self.files)
    }
}

/// A run that holds the job's lease, its recovery done and its decisions
/// taken: what a driver that commits carries from its start to the report.
pub struct Decided<'a> {
    pub setup: &'a Setup,
    pub state_dir: &'a StateDir,
    pub lease: &'a Lease,
    pub basis: Basis,
    /// What an incremental run's listing found.
    pub listed: Option<Listed>,
    pub recovered: Recovered,
    /// Where each table's files go ([`Setup::plan_tables`]).
    pub plans: HashMap<String, TablePlan>,
    pub warnings: Warnings,
}

impl Decided<'_> {
    /// The writers' context of the tables this process writes; `file_tag`
    /// starts the names of its files.
    pub fn writing(&self, file_tag: String) -> Writing<'_> {
        Writing {
            job: &self.setup.job,
            output: &self.setup.output,
            plans: &self.plans,
            roles: &self.setup.roles,
            lineage: &self.setup.lineage,
            increment: self.basis.increment().zip(self.listed.as_ref()),
            file_tag,
            staged: Staged::default(),
        }
    }

    /// Nothing changed since the state: nothing is read, nothing committed.
    pub fn quiet(&self) -> bool {
        self.listed.as_ref().is_some_and(|l| l.quiet)
    }

    /// Commits what the run wrote (`None`: an incremental run found nothing
    /// changed, so nothing is committed), deletes every file the run wrote
    /// (`staged`) if it failed, and writes the report of the items in `manifest`.
    pub async fn conclude(
        &self,
        written: Result<Option<Vec<TableFiles>>>,
        manifest: &Discovered,
        staged: &Staged,
        started: Instant,
    ) -> RunOutcome {
        let mut report = self.setup.report.clone();
        // Sorted once: the state, the history row and the report all walk them.
        let items = manifest.items();
        let ready = match written {
            Ok(Some(tables)) => self
                .prepare(tables, &items, staged, started)
                .await
                .map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        // What the report says of the inputs (an entry per file: most of its
        // megabytes) does not depend on the commit, so it is made while the
        // record is written and the catalog switched, which leave cores idle.
        // (Made alongside the state's build, which takes every core, it only
        // slowed that down.)
        let inputs = {
            let listings = manifest.listings();
            tokio::task::spawn_blocking(move || Inputs::of(&listings, &items))
        };
        let result = match ready {
            Ok(Some(ready)) => self.apply(ready).await.map(Some),
            Ok(None) => self.catch_up_links().await.map(|()| None),
            Err(e) => Err(e),
        };
        let output = &self.setup.output;
        // The one place a failed run's files go: unless the catalog may point at
        // them (an undo that failed), they are deleted.
        if let Err(e) = &result {
            if matches!(e, Error::CatalogInconsistent(_)) {
                tracing::error!(error = %e, "catalog left inconsistent; this run's files are kept");
            } else {
                cleanup::discard(output, staged, &self.warnings).await;
            }
        }
        let inputs = match inputs.await {
            Ok(inputs) => inputs,
            Err(e) => match e.try_into_panic() {
                // A panic there is a bug, and goes on as the panic it was.
                Ok(panic) => std::panic::resume_unwind(panic),
                // Cancelled (the runtime is shutting down): made here instead.
                Err(_) => Inputs::of(&manifest.listings(), &manifest.items()),
            },
        };
        let files = inputs.fill(&mut report);
        report.incremental = Some(incremental_report(
            &self.basis,
            self.listed.as_ref(),
            &self.recovered,
            result.as_ref().ok().and_then(|r| r.as_ref()),
        ));
        let run_id = &self.setup.run_id;
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
                // Scrubbed here, before a log format escapes it past the
                // log writer's scrub (JSON quotes a quoted panic message again).
                let told = crate::base::redact::scrub(&e.to_string()).into_owned();
                if matches!(e, Error::CatalogInconsistent(_)) {
                    warn!(run_id = %run_id, error = %told, "run failed; check the catalog tables it names");
                } else {
                    warn!(run_id = %run_id, error = %told, "run failed; the catalog was not changed");
                }
                report.error = Some(told);
                e.exit_code()
            }
        };
        report.warnings = self.warnings.all();
        finish_report(&mut report, &files, started, output).await;
        info!(run_id = %run_id, status = %report.status, rows_out = report.totals.rows_out, "run finished");
        RunOutcome {
            report,
            files,
            exit_code,
        }
    }

    /// A run that commits nothing: the key links catch up with the last commit.
    async fn catch_up_links(&self) -> Result<()> {
        let s = self.setup;
        if s.job.key_links.is_empty() {
            return Ok(());
        }
        let base_run = self.state_dir.current_run().await?;
        key_links::catch_up(
            &s.job,
            &s.catalog,
            &s.database,
            base_run.as_deref(),
            &self.warnings,
        )
        .await
    }

    /// Writes the run history's table (the last of the run's tables), prepares
    /// the switch and builds the state it commits: nothing the catalog or the
    /// state shows has changed yet.
    async fn prepare(
        &self,
        mut tables: Vec<TableFiles>,
        discovered: &[DiscoveredItem],
        staged: &Staged,
        started: Instant,
    ) -> Result<Ready<'_>> {
        let s = self.setup;
        if let Some(table) = s.job.runs_table() {
            let own = self.history_row(&tables, discovered, started)?;
            let mut writing = self.writing(format!("{}-history", s.run_id));
            writing.staged = staged.clone();
            tables.push(history_table::write(&writing, table, own).await?);
        }
        let prepared = commit::prepare(&self.target(), &self.plans, tables, staged).await?;
        let empty = Listed::default();
        let listed = self.listed.as_ref().unwrap_or(&empty);
        let items: Vec<&WorkItem> = discovered.iter().map(|d| &*d.item).collect();
        let removed: HashSet<String> = listed.removed.iter().cloned().collect();
        let state = next_state::build(
            &NextState {
                job: &s.job.spec.name,
                run_id: &s.run_id,
                spec_digest: s.digest.clone(),
                previous: self.basis.increment().map(|i| &i.previous),
                removed: &removed,
                kept_deleted: &listed.kept_deleted,
                items: &items,
            },
            // The run history is rebuilt at every commit, by any job that declares
            // it: the state, which an incremental run compares, leaves it out.
            prepared
                .tables()
                .filter(|(t, _)| t.table.name != RUNS_TABLE)
                .map(|(t, entry)| TableAfter::of(t, entry, &s.roles.kinds)),
        )?;
        let base_run = self.state_dir.current_run().await?;
        let links = key_links::prepare(
            &s.job,
            &s.catalog,
            &s.database,
            &s.run_id,
            base_run.as_deref(),
            &state,
            &items,
            &self.warnings,
        )
        .await?;
        let record = CommitRecord {
            format: state::STATE_FORMAT,
            base_run,
            entries: prepared.entries(),
            replaced: prepared.replaced(),
            state,
        };
        Ok(Ready {
            prepared,
            record,
            links,
        })
    }

    /// Applies a prepared commit: its record first, then the catalog switch,
    /// the state and the cleanup ([`commit::apply`]), then the key links.
    async fn apply(&self, ready: Ready<'_>) -> Result<Vec<TableReport>> {
        let committing = commit::Committing {
            dir: self.state_dir,
            lease: self.lease,
            record: ready.record,
        };
        let reports =
            commit::apply(&self.target(), ready.prepared, committing, &self.warnings).await?;
        let s = self.setup;
        key_links::register(ready.links, &s.catalog, &s.run_id, &self.warnings).await;
        Ok(reports)
    }

    /// Where the commit goes.
    fn target(&self) -> commit::Target<'_> {
        let s = self.setup;
        commit::Target {
            job: &s.job,
            catalog: &s.catalog,
            database: &s.database,
            output: &s.output,
            run_id: &s.run_id,
        }
    }

    /// The committing run's row of the run history, as its report will give it
    /// (its duration up to now; the history table itself among the tables it
    /// changes).
    fn history_row(
        &self,
        tables: &[TableFiles],
        items: &[DiscoveredItem],
        started: Instant,
    ) -> Result<RunRow> {
        // The row comes from a report as `naslake runs` reads one, so the two
        // agree: its totals, without the per-item list the row does not need.
        let mut report = self.setup.report.clone();
        fill_totals(
            &mut report.totals,
            items.iter().map(|d| d.stats.counts()),
            &[],
        );
        let t = &report.totals;
        report.status = if t.records_rejected > 0 || t.files_rejected > 0 {
            RunStatus::SucceededWithRejects
        } else {
            RunStatus::Succeeded
        };
        report.duration_seconds = started.elapsed().as_secs_f64();
        report.incremental = Some(incremental_report(
            &self.basis,
            self.listed.as_ref(),
            &self.recovered,
            None,
        ));
        let mut row = RunRow::of(&serde_json::to_vec(&report)?)?;
        row.rows_out = tables.iter().map(|t| t.rows).sum();
        let changed = tables.iter().filter(|t| {
            let before = self
                .plans
                .get(&t.table.name)
                .and_then(|p| p.before.as_ref());
            !t.unchanged(before)
        });
        row.tables_changed = changed.count() as u64 + 1;
        Ok(row)
    }
}

/// A commit prepared ([`Decided::prepare`]) and not yet applied.
struct Ready<'a> {
    prepared: commit::Prepared,
    record: CommitRecord,
    links: Vec<key_links::Prepared<'a>>,
}

/// The report's sources and totals (which it sets, not adds to), and its
/// files, from what discovery found.
pub fn describe_inputs(report: &mut RunReport, manifest: &Discovered) -> FileList {
    Inputs::of(&manifest.listings(), &manifest.items()).fill(report)
}

/// What a report says of a run's inputs: its sources, its files, and their
/// totals, all from one look at each item's counts.
struct Inputs {
    sources: Vec<SourceReport>,
    files: FileList,
    totals: Totals,
}

impl Inputs {
    /// `items` sorted by source and key.
    fn of(listings: &[SourceListing], items: &[DiscoveredItem]) -> Inputs {
        let sources: Vec<SourceReport> = listings.iter().map(SourceReport::from).collect();
        // Read once: the totals and the entries say the same.
        let counts: Vec<ItemCounts> = items.par_iter().map(|d| d.stats.counts()).collect();
        let mut totals = Totals::default();
        fill_totals(&mut totals, &counts, &sources);
        // The report names each item as the rest of the run does.
        let files: Vec<FileReport> = items
            .iter()
            .zip(&counts)
            .map(|(d, counts)| FileReport {
                source: &d.item.source,
                key: &d.item.key,
                fingerprint: &d.item.fingerprint,
                counts,
            })
            .collect();
        Inputs {
            sources,
            files: FileList::of(&files),
            totals,
        }
    }

    /// Sets the report's sources and totals (what the run wrote is added to
    /// those later); returns its files.
    fn fill(self, report: &mut RunReport) -> FileList {
        report.sources = self.sources;
        report.totals = self.totals;
        self.files
    }
}

/// The report's account of how the run related to the last committed one.
pub fn incremental_report(
    basis: &Basis,
    listed: Option<&Listed>,
    recovered: &Recovered,
    tables: Option<&Vec<TableReport>>,
) -> IncrementalReport {
    let increment = basis.increment();
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
        previous_run: increment.map(|inc| inc.previous.run_id.clone()),
        nothing_changed: listed.is_some_and(|l| l.quiet),
        recovered: recovered.clone(),
        ..Default::default()
    };
    if let Some(l) = listed {
        for (source, counts) in &l.counts {
            out.objects.new += counts.new;
            out.objects.changed += counts.changed;
            out.objects.unchanged += counts.unchanged;
            out.objects.deleted += counts.deleted;
            if let Some(inc) = increment
                && inc.using.reread.contains(source)
                && !l.quiet
            {
                out.reread += counts.unchanged;
                out.reread_sources.push(source.clone());
            }
            out.by_source.insert(source.clone(), *counts);
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

/// Adds up the items' counts (and the sources' listings) into the totals.
fn fill_totals<C: Borrow<ItemCounts>>(
    t: &mut Totals,
    items: impl IntoIterator<Item = C>,
    sources: &[SourceReport],
) {
    for s in sources {
        t.objects_listed += s.objects_listed;
        t.objects_skipped += s.objects_skipped;
    }
    for counts in items {
        let c = counts.borrow();
        t.files_seen += 1;
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

/// Stamps the report's end and writes it next to the output, on one line (`naslake
/// runs show` indents it); its file list is serialised already ([`FileList`]).
pub async fn finish_report(
    report: &mut RunReport,
    files: &FileList,
    started: Instant,
    output: &Location,
) {
    report.finished_at = chrono::Utc::now().to_rfc3339();
    report.duration_seconds = started.elapsed().as_secs_f64();
    let path = output.child(&format!("_naslake/runs/{}.json", report.run_id));
    let body = match report.to_payload(files) {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "could not serialise the run report");
            return;
        }
    };
    if let Err(e) = output.store.put(&path, body).await {
        warn!(error = %e, "could not write the run report");
    }
}
