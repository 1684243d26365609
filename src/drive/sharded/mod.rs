//! A run in three steps, for when a share outgrows one machine: `naslake plan`
//! lists the input (against the job's state, when incremental) and splits what
//! to read into shards, `naslake work` does one shard anywhere (a Spark task, an
//! AWS Batch array child), and `naslake commit` finishes the tables that need
//! every shard and commits the catalog once, as `naslake run` does.
//!
//! Everything the steps hand each other lives under the run's directory,
//! `OUTPUT/_naslake/runs/RUNID/`:
//!
//! - `plan.json`: the job (spec, schemas and SQL as text), the addresses, the
//!   basis (full, or incremental against which state), the listing's counts and
//!   the shards ([`RunPlan`]); written last, so a plan that exists is complete;
//! - `changes.json`: what an incremental plan's listing found against the state
//!   (the keys whose old rows go, the deleted objects whose rows stay), which
//!   only the commit reads;
//! - `shards/NNNNN.jsonl`: each shard's items, one JSON object a line;
//! - `results/NNNNN-ATTEMPT.json`: what an attempt of a shard wrote ([`ShardResult`]);
//! - `staging/sources/SOURCE/…parquet`: the rows of the sources that the commit's
//!   tables read whole (`image_inspections`' station windows);
//! - `staging/tables/TABLE/…`: the files of the tables each shard writes, named
//!   `part-RUNID-sNNNNN-ATTEMPT-…`, so no two attempts share a name.
//!
//! No reader looks under `_naslake/`. The commit takes the one result each shard
//! must have and moves (in an incremental run copies) the files it names into the
//! table's version directories
//! (`TABLE/KEY=VALUE/v-RUNID/`); every other attempt's files stay in staging and go
//! with it after the commit, so two attempts of a shard never both reach a table,
//! even when one of them is still running somewhere.
//!
//! The run holds the job's lease from its plan to its commit
//! ([`crate::commit::lease`], [`super::LeaseStep`]): each step resumes and renews
//! it, so no other run of the job commits in between (the state an incremental
//! plan compared with is still the state at its commit), and a run that dies is
//! cleaned up after by the next.

pub mod commit;
pub mod plan;
pub mod work;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::commit::KeyRows;
use crate::commit::recover::Recovered;
use crate::exec::basis::IncrementPlan;
use crate::exec::run_dir;
use crate::exec::work::StagedSource;
use crate::job::{Job, JobSnapshot};
use crate::model::{ItemCounts, SourceListing, WorkItem};
use crate::sources::Registry;
use crate::storage::Location;
use crate::write::WrittenFile;
use crate::write::upload::Upload;

/// The format of `plan.json` and of the shard results. 2: plans carry their
/// basis; tallies are named entries.
const PLAN_FORMAT: u32 = 2;

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
    /// `--incremental` (`true`), `--full` (`false`), or neither: a plan step
    /// done again must have been asked for the same.
    pub requested: Option<bool>,
    pub basis: PlannedBasis,
    /// What the plan step completed or rolled back of a dead run, and what it
    /// warned of: the run's report says so.
    pub recovered: Recovered,
    pub warnings: Vec<String>,
    pub listings: Vec<SourceListing>,
    pub items: u64,
    pub bytes: u64,
    pub shards: Vec<PlannedShard>,
}

/// How the planned run relates to the job's last committed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum PlannedBasis {
    /// Everything is read; the tables are replaced whole. `forced`: `--full`.
    Full { reason: String, forced: bool },
    /// Only what changed since `increment.previous_run` is read (`changes.json`
    /// says what); `quiet`: nothing changed, the shards are empty.
    Incremental {
        increment: IncrementPlan,
        quiet: bool,
    },
}

/// `changes.json`, relative to the output.
fn changes_path(run_id: &str) -> String {
    format!("{}/changes.json", run_dir(run_id))
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

/// One object's rows in one table, by partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRowsEntry {
    pub key: String,
    pub partitions: Vec<PartitionTally>,
}

/// An object's rows in one partition (by its values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionTally {
    pub values: Vec<String>,
    pub rows: u64,
}

/// A tally as a result carries it, sorted by key.
fn tally_to_list(rows: KeyRows) -> Vec<KeyRowsEntry> {
    let mut out: Vec<KeyRowsEntry> = rows
        .into_iter()
        .map(|(key, parts)| KeyRowsEntry {
            key,
            partitions: parts
                .into_iter()
                .map(|(values, rows)| PartitionTally { values, rows })
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// Adds the rows a result's tally lists to `into`.
fn add_tally(into: &mut KeyRows, list: Vec<KeyRowsEntry>) {
    for k in list {
        let parts = into.entry(k.key).or_default();
        for p in k.partitions {
            parts.add(&p.values, p.rows);
        }
    }
}

/// Where the shards write the files of the tables they write: staging, which no
/// reader sees; the commit moves (or copies) the chosen attempts' files into the
/// tables.
fn staging_tables(run_id: &str) -> String {
    format!("{}/staging/tables", run_dir(run_id))
}

/// Where the shards stage the sources the commit's tables read whole.
fn staging_sources(run_id: &str) -> String {
    format!("{}/staging/sources", run_dir(run_id))
}

/// A run id is a ULID in lowercase, like every run's: recovery orders runs by
/// their ids, which ULIDs keep in time order.
pub(crate) fn check_run_id(id: &str) -> Result<()> {
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

/// A local path made absolute (the other steps may run in another directory);
/// other addresses as they are.
fn absolute_if_local(url: &str) -> Result<String> {
    if crate::storage::is_remote(url) || url.starts_with("file://") {
        return Ok(url.to_string());
    }
    Ok(std::path::absolute(url)?.display().to_string())
}

/// One shard's item list, uploaded in buffers of lines as it is written,
/// through the table files' [`Upload`] (its parts under way are bounded, and a
/// failed plan aborts it).
struct ShardFile {
    index: usize,
    upload: Upload,
    /// Lines not yet handed to the upload, put in buffers of about
    /// [`LINES_PUT_BYTES`] rather than one small buffer per line.
    lines: Vec<u8>,
    items: u64,
    bytes: u64,
}

/// The part size of a shard file's upload: S3's minimum part size (a shard's
/// list under it, about 25 000 items, goes in one request).
const SHARD_PART_BYTES: usize = 5 << 20;
/// Bytes of lines gathered before they go to the upload.
const LINES_PUT_BYTES: usize = 64 << 10;

impl ShardFile {
    fn create(output: &Location, run_id: &str, index: usize) -> Self {
        let path = output.child(&format!("{}/shards/{index:05}.jsonl", run_dir(run_id)));
        ShardFile {
            index,
            upload: Upload::new(output.store.clone(), path, SHARD_PART_BYTES),
            lines: Vec::new(),
            items: 0,
            bytes: 0,
        }
    }

    async fn push(&mut self, item: &WorkItem) -> Result<()> {
        serde_json::to_writer(&mut self.lines, item)?;
        self.lines.push(b'\n');
        self.items += 1;
        self.bytes += item.fingerprint.size;
        if self.lines.len() >= LINES_PUT_BYTES {
            // The next buffer is made at its full size, not grown line by line.
            let full = std::mem::replace(&mut self.lines, Vec::with_capacity(LINES_PUT_BYTES));
            self.upload.put(full).await?;
        }
        Ok(())
    }

    /// Completes the shard file. On an error the caller aborts it (still
    /// open, or failed halfway through a put).
    async fn close(&mut self) -> Result<PlannedShard> {
        self.upload.put(std::mem::take(&mut self.lines)).await?;
        self.upload.complete().await?;
        Ok(PlannedShard {
            items: self.items,
            bytes: self.bytes,
        })
    }

    /// Gives up the shard file (the plan failed): an upload under way is
    /// aborted, so no unfinished upload lingers.
    async fn abort(mut self) {
        if let Err(e) = self.upload.abort().await {
            tracing::warn!(shard = self.index, error = %e, "the upload of a failed plan's shard file could not be aborted");
        }
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
pub async fn read_plan(plan_url: &str, registry: &Registry) -> Result<(Location, RunPlan, Job)> {
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

/// The tally of rows by key a table's result entries add up to, if any has one.
fn merged_tally(entries: Vec<Option<Vec<KeyRowsEntry>>>) -> Option<KeyRows> {
    let mut out: Option<KeyRows> = None;
    for list in entries.into_iter().flatten() {
        add_tally(out.get_or_insert_with(KeyRows::new), list);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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

    #[test]
    fn tallies_round_trip_and_add_up_across_shards() {
        let a: KeyRows = HashMap::from([(
            "k1".to_string(),
            [(vec!["2024".to_string()], 3), (vec!["2025".to_string()], 1)]
                .into_iter()
                .collect(),
        )]);
        let b: KeyRows = HashMap::from([(
            "k1".to_string(),
            [(vec!["2024".to_string()], 2)].into_iter().collect(),
        )]);
        let json = serde_json::to_string(&tally_to_list(a)).unwrap();
        assert!(json.contains(r#""values":["2024"],"rows":3"#), "{json}");
        let back: Vec<KeyRowsEntry> = serde_json::from_str(&json).unwrap();
        let merged = merged_tally(vec![Some(back), None, Some(tally_to_list(b))]).unwrap();
        assert_eq!(merged["k1"].get(&["2024".to_string()]), Some(5));
        assert_eq!(merged["k1"].get(&["2025".to_string()]), Some(1));
        assert!(merged_tally(vec![None, None]).is_none());
    }

    /// A shard's list longer than a put of lines and than an upload part (a
    /// multipart upload) reads back whole, in order, as `naslake work` reads it.
    #[tokio::test]
    async fn a_shard_list_of_several_parts_reads_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let output = Location::open(dir.path().to_str().unwrap()).unwrap();
        let run_id = "01kbsxxfpajavw6wvez8fa2efw";
        // About 120 bytes a line: 60 000 lines are over one 5 MiB part.
        let items: Vec<WorkItem> = (0..60_000u64)
            .map(|i| WorkItem {
                source: "long".into(),
                key: format!("plant-{}/line-{i:06}/readings-with-a-long-name.csv", i % 7),
                sealed: None,
                fingerprint: crate::model::Fingerprint {
                    size: i * 13,
                    etag: Some(format!("\"{i:x}\"")),
                    last_modified: None,
                },
            })
            .collect();
        let mut file = ShardFile::create(&output, run_id, 3);
        for item in &items {
            file.push(item).await.unwrap();
        }
        let planned = file.close().await.unwrap();
        assert_eq!(planned.items, items.len() as u64);
        assert_eq!(
            planned.bytes,
            items.iter().map(|i| i.fingerprint.size).sum::<u64>()
        );
        let path = output.child(&format!("{}/shards/00003.jsonl", run_dir(run_id)));
        let size = output.store.head(&path).await.unwrap().size;
        assert!(size > SHARD_PART_BYTES as u64, "{size} bytes: one part");
        let back = work::read_shard_items(&output, run_id, 3).await.unwrap();
        assert!(back == items, "the items read back differ");
        // An empty shard's list exists, and reads as no items.
        ShardFile::create(&output, run_id, 4).close().await.unwrap();
        assert!(
            work::read_shard_items(&output, run_id, 4)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_planned_basis_says_which_it_is() {
        let full = PlannedBasis::Full {
            reason: "--full".into(),
            forced: true,
        };
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(json, r#"{"basis":"full","reason":"--full","forced":true}"#);
        assert_eq!(serde_json::from_str::<PlannedBasis>(&json).unwrap(), full);
    }
}
