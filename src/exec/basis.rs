//! How a run relates to the job's last committed one: full or incremental, and
//! for an incremental run what its listing found against the state. Every
//! decision here is a plain function of plain values; reading the state and
//! listing the sources happen elsewhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use datafusion::arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use super::roles::TableRoles;
use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::commit::TablePlan;
use crate::commit::next_state;
use crate::commit::state::{Committed, JobState};
use crate::discover::ObjectFilter;
use crate::discover::changes::{ChangeCounts, SourceChanges};
use crate::job::{Deletes, Job};
use crate::model::TableKind;
use crate::model::WriteMode;
use crate::transform::lineage::Lineage;

/// How this run relates to the job's last committed one.
pub enum Basis {
    /// Everything is read; the tables are replaced whole.
    Full { reason: String },
    /// Only what changed since `previous` is read.
    Incremental(Box<Increment>),
}

/// An incremental run's view of the last committed state.
pub struct Increment {
    pub previous: JobState,
    /// How the rest of the state is used; a sharded run's plan carries it.
    pub using: IncrementPlan,
}

/// What an incremental run decided about the state it starts from, besides the
/// state itself (which the commit reads again: the lease kept it as it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementPlan {
    /// The run whose state this run builds on.
    pub previous_run: String,
    /// Sources read in full all the same: a derived table's SQL reads them.
    pub reread: BTreeSet<String>,
    /// Sources a derived table reads whole, whose unchanged rows come from that
    /// table's last version instead (source → table; see [`Lineage::preserves`]).
    pub providers: BTreeMap<String, String>,
    pub deletes: Deletes,
}

/// What the listing of an incremental run found, against the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed {
    /// Objects by change, per source.
    pub counts: BTreeMap<String, ChangeCounts>,
    /// Keys whose old rows go: changed, deleted (propagated) or read again.
    pub removed: BTreeSet<String>,
    /// Objects gone whose rows stay (`deletes = "keep"`), by source.
    pub kept_deleted: BTreeMap<String, BTreeSet<String>>,
    /// Nothing to read and nothing to remove.
    pub quiet: bool,
}

/// What was asked for: `--incremental`, `--full`, or the spec.
#[derive(Debug, Clone, Copy)]
pub struct Requested {
    pub incremental: bool,
    /// `--full` was given.
    pub forced_full: bool,
}

impl Requested {
    /// From the command line's choice (`Some(true)`: `--incremental`,
    /// `Some(false)`: `--full`) and the job spec's `incremental.enabled`.
    pub fn new(flag: Option<bool>, spec_enabled: bool) -> Requested {
        Requested {
            incremental: flag.unwrap_or(spec_enabled),
            forced_full: flag == Some(false),
        }
    }
}

impl Basis {
    pub fn increment(&self) -> Option<&Increment> {
        match self {
            Basis::Incremental(inc) => Some(inc),
            Basis::Full { .. } => None,
        }
    }
}

/// Decides between an incremental and a full run, given the state the job has
/// committed and the digest of the job as it is now. No state, a state of an
/// older naslake, or a changed job is a full run (the last with a warning).
pub fn decide(
    job: &Job,
    roles: &TableRoles,
    lineage: &HashMap<String, Lineage>,
    requested: Requested,
    committed: Committed,
    digest: &str,
    warnings: &Warnings,
) -> Result<Basis> {
    if !requested.incremental {
        let reason = if requested.forced_full {
            "--full".to_string()
        } else {
            "incremental runs are off for this job (`incremental.enabled`, --incremental)"
                .to_string()
        };
        return Ok(Basis::Full { reason });
    }
    check_incremental(job)?;
    let previous = match committed {
        Committed::State(state) => *state,
        other => {
            let reason = other
                .full_reason()
                .unwrap_or("the job has no state to build on");
            return Ok(Basis::Full {
                reason: reason.into(),
            });
        }
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
    for (table, l) in lineage {
        if roles.kind(table) == TableKind::Derived {
            whole.extend(l.sources.iter().cloned());
        }
    }
    let (mut reread, mut providers) = (BTreeSet::new(), BTreeMap::new());
    for source in whole {
        match provider(job, roles, lineage, &source, &previous) {
            Some(table) => {
                providers.insert(source, table);
            }
            None => {
                reread.insert(source);
            }
        }
    }
    Ok(Basis::Incremental(Box::new(Increment {
        using: IncrementPlan {
            previous_run: previous.run_id.clone(),
            reread,
            providers,
            deletes: job.spec.incremental.deletes,
        },
        previous,
    })))
}

/// A derived table whose last version holds every row of `source` as it was
/// read (its SQL keeps the rows one for one, and it has the source's columns
/// with their types), when no table kept per object reads the source too.
fn provider(
    job: &Job,
    roles: &TableRoles,
    lineage: &HashMap<String, Lineage>,
    source: &str,
    previous: &JobState,
) -> Option<String> {
    let schema = job.sources.iter().find(|s| s.name() == source)?.schema();
    let per_object_reader = lineage
        .iter()
        .any(|(t, l)| roles.kind(t) == TableKind::Objects && l.sources.contains(source));
    if per_object_reader {
        return None;
    }
    let (name, lineage) = lineage
        .iter()
        .find(|(_, l)| l.preserves.as_deref() == Some(source))?;
    let table = job.table(name)?;
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

/// An incremental run keeps every table equal to a full run over the objects
/// listed: it needs sources that list objects and tables that a run replaces.
pub fn check_incremental(job: &Job) -> Result<()> {
    if let Some(s) = job.sources.iter().find(|s| s.objects().is_none()) {
        return Err(Error::config(format!(
            "job {}: source `{}` finds its items itself (a snapshot, not listed objects), so runs of this job cannot be incremental; run it with --full or without `incremental.enabled`",
            job.spec.name,
            s.name()
        )));
    }
    let filters: Vec<(&str, &ObjectFilter)> = job
        .sources
        .iter()
        .filter_map(|s| s.objects().map(|f| (s.name(), f)))
        .collect();
    if let Some((a, b)) = overlapping(&filters) {
        return Err(Error::config(format!(
            "job {}: sources `{a}` and `{b}` can list the same objects (their prefixes and suffixes overlap); an incremental run keeps rows per object key, so give them prefixes or suffixes apart",
            job.spec.name
        )));
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

/// Two sources that could list the same key (rows are kept per object key, so
/// they would share rows they should not).
fn overlapping<'a>(filters: &[(&'a str, &ObjectFilter)]) -> Option<(&'a str, &'a str)> {
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
                return Some((a, b));
            }
        }
    }
    None
}

/// The catalog must hold what the state says the last committed run left: a
/// table changed by hand (or by another tool) would be merged wrongly.
pub fn check_catalog_matches(
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

/// Sums up an incremental run's listing against the state: `changes` is what
/// the listing found per source (every source of the job, listed).
pub fn listed(inc: &Increment, changes: &BTreeMap<String, SourceChanges>) -> Listed {
    let mut out = Listed {
        quiet: true,
        ..Default::default()
    };
    for (name, c) in changes {
        let before = inc.previous.sources.get(name);
        out.removed.extend(c.changed.iter().cloned());
        if inc.using.reread.contains(name) {
            out.removed.extend(c.unchanged.iter().cloned());
        }
        let newly_deleted = c
            .deleted
            .iter()
            .filter(|k| !before.and_then(|b| b.get(*k)).is_some_and(|o| o.deleted))
            .count();
        match inc.using.deletes {
            Deletes::Propagate => out.removed.extend(c.deleted.iter().cloned()),
            Deletes::Keep => {
                out.kept_deleted.insert(name.clone(), c.deleted.clone());
            }
        }
        if !c.new.is_empty() || !c.changed.is_empty() || newly_deleted > 0 {
            out.quiet = false;
        }
        out.counts.insert(name.clone(), c.counts());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fingerprint, ObjectState};

    fn object(deleted: bool) -> ObjectState {
        ObjectState {
            fingerprint: Fingerprint {
                size: 1,
                etag: None,
                last_modified: None,
            },
            deleted,
            rows: Default::default(),
        }
    }

    fn increment(deletes: Deletes, reread: &[&str]) -> Increment {
        let mut previous = JobState::default();
        let objects = BTreeMap::from([
            ("a".to_string(), object(false)),
            ("gone-before".to_string(), object(true)),
        ]);
        previous.sources.insert("csv".into(), objects);
        Increment {
            previous,
            using: IncrementPlan {
                previous_run: "r1".into(),
                reread: reread.iter().map(|s| s.to_string()).collect(),
                providers: BTreeMap::new(),
                deletes,
            },
        }
    }

    fn changes(
        new: &[&str],
        changed: &[&str],
        unchanged: &[&str],
        deleted: &[&str],
    ) -> SourceChanges {
        let set = |k: &[&str]| k.iter().map(|s| s.to_string()).collect();
        SourceChanges {
            new: set(new),
            changed: set(changed),
            unchanged: set(unchanged),
            deleted: set(deleted),
        }
    }

    #[test]
    fn nothing_new_changed_or_newly_deleted_is_quiet() {
        let inc = increment(Deletes::Keep, &[]);
        // Deleted in an earlier run already, its rows kept: nothing to do again.
        let c = changes(&[], &[], &["a"], &["gone-before"]);
        let l = listed(&inc, &BTreeMap::from([("csv".into(), c)]));
        assert!(l.quiet);
        assert!(l.removed.is_empty());
        assert_eq!(l.kept_deleted["csv"].len(), 1);
        assert_eq!(l.counts["csv"].unchanged, 1);
    }

    #[test]
    fn changed_and_propagated_deletes_remove_their_rows() {
        let inc = increment(Deletes::Propagate, &[]);
        let c = changes(&["n"], &["a"], &[], &["d"]);
        let l = listed(&inc, &BTreeMap::from([("csv".into(), c)]));
        assert!(!l.quiet);
        assert_eq!(
            l.removed,
            BTreeSet::from(["a".to_string(), "d".to_string()])
        );
        assert!(l.kept_deleted.is_empty());
    }

    #[test]
    fn a_reread_source_removes_its_unchanged_rows_too() {
        let inc = increment(Deletes::Propagate, &["csv"]);
        let c = changes(&[], &[], &["a"], &["x"]);
        let l = listed(&inc, &BTreeMap::from([("csv".into(), c)]));
        assert!(!l.quiet, "x was deleted just now");
        assert_eq!(
            l.removed,
            BTreeSet::from(["a".to_string(), "x".to_string()])
        );
    }

    #[test]
    fn a_listing_round_trips_through_json() {
        let inc = increment(Deletes::Keep, &[]);
        let l = listed(
            &inc,
            &BTreeMap::from([("csv".into(), changes(&["n"], &[], &[], &["d"]))]),
        );
        let back: Listed = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back, l);
        let back: IncrementPlan =
            serde_json::from_str(&serde_json::to_string(&inc.using).unwrap()).unwrap();
        assert_eq!(back, inc.using);
    }

    fn sensor_job(overrides: &[String]) -> Job {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let registry = crate::sources::Registry::builtin();
        Job::load(
            &root.join("jobs/sensor_readings.toml"),
            overrides,
            &registry,
        )
        .unwrap()
    }

    fn committed(digest: &str) -> Committed {
        let mut state = JobState {
            run_id: "r1".into(),
            spec_digest: digest.into(),
            ..Default::default()
        };
        state.sources.insert("long".into(), BTreeMap::new());
        Committed::State(Box::new(state))
    }

    #[test]
    fn the_decision_between_full_and_incremental() {
        let job = sensor_job(&[]);
        let roles = TableRoles::default();
        let lineage = HashMap::new();
        let digest = crate::job::spec_digest(&job);
        let decide_with = |requested, c, warnings: &Warnings| {
            decide(&job, &roles, &lineage, requested, c, &digest, warnings).unwrap()
        };
        let reason = |b: Basis| match b {
            Basis::Full { reason } => reason,
            Basis::Incremental(_) => "incremental".to_string(),
        };
        let w = Warnings::default();
        let off = Requested::new(None, false);
        assert!(
            reason(decide_with(off, committed(&digest), &w)).contains("incremental runs are off")
        );
        let full = Requested::new(Some(false), true);
        assert_eq!(reason(decide_with(full, committed(&digest), &w)), "--full");
        let on = Requested::new(Some(true), false);
        assert!(reason(decide_with(on, Committed::Nothing, &w)).contains("no committed state"));
        let older = Committed::Older {
            format: 1,
            run_id: "r0".into(),
        };
        assert!(reason(decide_with(on, older, &w)).contains("older naslake"));
        assert!(w.all().is_empty());
        assert!(reason(decide_with(on, committed("other"), &w)).contains("changed since run r1"));
        assert_eq!(w.all().len(), 1, "a changed job is a warning too");
        match decide_with(on, committed(&digest), &w) {
            Basis::Incremental(inc) => {
                assert_eq!(inc.previous.run_id, "r1");
                assert_eq!(inc.using.previous_run, "r1");
                assert_eq!(inc.using.deletes, job.spec.incremental.deletes);
            }
            Basis::Full { reason } => panic!("full: {reason}"),
        }
    }

    #[test]
    fn a_job_that_cannot_be_incremental_says_why() {
        let job = sensor_job(&["tables.sensor_readings.mode=append".to_string()]);
        let e = decide(
            &job,
            &TableRoles::default(),
            &HashMap::new(),
            Requested::new(Some(true), false),
            Committed::Nothing,
            "d",
            &Warnings::default(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("mode `append`"), "{e}");
    }

    #[test]
    fn overlapping_sources_are_found() {
        let f = |prefix: &str, suffixes: &[&str]| ObjectFilter {
            prefix: prefix.into(),
            suffixes: suffixes.iter().map(|s| s.to_string()).collect(),
        };
        let (a, b, c) = (
            f("logs/", &[".csv"]),
            f("logs/x/", &[".CSV"]),
            f("logs/", &[".dcm"]),
        );
        assert_eq!(overlapping(&[("a", &a), ("b", &b)]), Some(("a", "b")));
        assert_eq!(overlapping(&[("a", &a), ("c", &c)]), None);
        assert_eq!(overlapping(&[("b", &b), ("c", &c)]), None);
    }
}
