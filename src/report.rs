//! The run report: what a run saw, read, rejected and wrote, written as JSON to
//! `OUTPUT/_naslake/runs/RUNID.json` and summarised on one screen. Its counts add
//! up: per item, `records = loaded + rejected`.

use bytes::Bytes;
use object_store::PutPayload;
use serde::Serialize;

use crate::commit::TableReport;
use crate::discover::changes::ChangeCounts;
use crate::model::{Fingerprint, ItemCounts, SourceListing};

/// Which driver ran a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// `naslake run`, in one process.
    Run,
    /// `naslake plan`, `work` and `commit`.
    Sharded,
}

/// How a run ended (or that it is still going).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    DryRun,
    Succeeded,
    SucceededWithRejects,
    Failed,
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            RunStatus::Running => "running",
            RunStatus::DryRun => "dry_run",
            RunStatus::Succeeded => "succeeded",
            RunStatus::SucceededWithRejects => "succeeded_with_rejects",
            RunStatus::Failed => "failed",
        };
        f.write_str(s)
    }
}

/// A run's report, but for its entry per file: that list, the report's bulk,
/// is a [`FileList`] kept beside it, and [`RunReport::to_json`] writes the two
/// as one JSON object.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub job: String,
    /// Which driver ran it: one process (`run`) or sharded (`sharded`).
    pub driver: Driver,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went wrong without failing the run; empty when nothing did.
    pub warnings: Vec<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    pub input: String,
    pub output: String,
    pub catalog: String,
    pub totals: Totals,
    pub sources: Vec<SourceReport>,
    pub tables: Vec<TableReport>,
    /// How the run related to the job's last committed one (absent for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalReport>,
}

/// What an incremental run compared, found and changed; a full run says why it
/// was full.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IncrementalReport {
    /// `incremental` or `full`.
    pub basis: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_run: Option<String>,
    /// An incremental run that found nothing new, changed or deleted: it opened
    /// nothing and changed no catalog entry.
    pub nothing_changed: bool,
    /// Listed objects against the state, all sources.
    pub objects: ChangeCounts,
    /// Unchanged objects read all the same: a derived table's SQL reads their
    /// source whole (windows over an image source, say).
    pub reread: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reread_sources: Vec<String>,
    pub by_source: std::collections::BTreeMap<String, ChangeCounts>,
    /// Rows written for new and changed objects, and old rows of changed and
    /// deleted objects removed, over the tables kept per object.
    pub rows_added: u64,
    pub rows_removed: u64,
    /// What this run completed or cleaned up of a run that died.
    pub recovered: crate::commit::recover::Recovered,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Objects listed under the sources' prefixes.
    pub objects_listed: u64,
    /// Listed objects no source reads (other suffixes, hidden names).
    pub objects_skipped: u64,
    /// Objects the sources read.
    pub files_seen: u64,
    /// Files read to the end without a file-level problem.
    pub files_processed: u64,
    /// Files rejected whole, or whose rest could not be read.
    pub files_rejected: u64,
    pub bytes_in: u64,
    pub records_in: u64,
    pub records_loaded: u64,
    pub records_rejected: u64,
    /// Rows written to the rejects table (rejected records + rejected files).
    pub rejects_rows: u64,
    pub rows_out: u64,
    pub bytes_out: u64,
    pub files_written: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub prefix: String,
    pub objects_listed: u64,
    pub objects_skipped: u64,
    pub files: u64,
}

impl From<&SourceListing> for SourceReport {
    fn from(l: &SourceListing) -> Self {
        SourceReport {
            source: l.source.clone(),
            prefix: l.prefix.clone(),
            objects_listed: l.listed,
            objects_skipped: l.skipped(),
            files: l.items,
        }
    }
}

/// A report's entries for its files, serialised (a JSON array). At tens of
/// thousands of files they are most of the report's megabytes. They do not
/// depend on the commit, so a run serialises them while it commits rather than
/// at its serial end.
pub struct FileList(Bytes);

impl Default for FileList {
    fn default() -> Self {
        FileList(Bytes::from_static(b"[]"))
    }
}

impl FileList {
    /// The entries, as `files` of the report's JSON.
    pub fn of(files: &[FileReport<'_>]) -> FileList {
        // serde_json fails on a writer's I/O error (a Vec has none) or a map key
        // that is not a string (a file report's one map, its notes, has string
        // keys): never here.
        let json = serde_json::to_vec(files).expect("file reports serialise to a Vec");
        FileList(json.into())
    }
}

/// One item: its identity and fingerprint, and what happened to it. Not the
/// seal of a disguised key, which stays with the plan that needs it. Borrowed:
/// a run's report has one per item, made at its end.
#[derive(Debug, Serialize)]
pub struct FileReport<'a> {
    pub source: &'a str,
    pub key: &'a str,
    #[serde(flatten)]
    pub fingerprint: &'a Fingerprint,
    #[serde(flatten)]
    pub counts: &'a ItemCounts,
}

impl RunReport {
    /// The report as it is written, `files` its last member: in three parts
    /// (the other members, the list, `}`), so the list is not copied.
    pub fn to_payload(&self, files: &FileList) -> serde_json::Result<PutPayload> {
        use serde::ser::Error as _;
        let mut head = serde_json::to_vec(self)?;
        // The report without its file list is a JSON object: the list goes in
        // before its closing brace.
        if head.pop() != Some(b'}') {
            return Err(serde_json::Error::custom(
                "a run report is not a JSON object",
            ));
        }
        if head.last() != Some(&b'{') {
            head.push(b',');
        }
        head.extend_from_slice(b"\"files\":");
        Ok(PutPayload::from_iter([
            Bytes::from(head),
            files.0.clone(),
            Bytes::from_static(b"}"),
        ]))
    }

    /// [`RunReport::to_payload`] in one piece.
    pub fn to_json(&self, files: &FileList) -> serde_json::Result<Vec<u8>> {
        let payload = self.to_payload(files)?;
        let mut out = Vec::with_capacity(payload.content_length());
        for part in &payload {
            out.extend_from_slice(part);
        }
        Ok(out)
    }

    /// The short summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let mut s = format!(
            "naslake {} {}: {} in {:.2}s\n",
            self.job, self.run_id, self.status, self.duration_seconds
        );
        if let Some(e) = &self.error {
            s.push_str(&format!("  error: {e}\n"));
        }
        for w in &self.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
        if let Some(inc) = &self.incremental {
            let o = &inc.objects;
            if inc.basis == "incremental" {
                s.push_str(&format!(
                    "  objects {} new, {} changed, {} unchanged, {} deleted since run {}; rows {} added, {} removed{}\n",
                    o.new,
                    o.changed,
                    o.unchanged,
                    o.deleted,
                    inc.previous_run.as_deref().unwrap_or("?"),
                    inc.rows_added,
                    inc.rows_removed,
                    if inc.nothing_changed { ": nothing changed, nothing read, catalog untouched" } else { "" }
                ));
                if inc.reread > 0 {
                    s.push_str(&format!(
                        "  read {} unchanged objects again: SQL over whole sources ({}) needs every row\n",
                        inc.reread,
                        inc.reread_sources.join(", ")
                    ));
                }
            } else {
                s.push_str(&format!("  full run: {}\n", inc.reason));
            }
            if let Some(run) = &inc.recovered.completed {
                s.push_str(&format!(
                    "  completed the commit of run {run}, which had died during it\n"
                ));
            }
            if inc.recovered.orphans_removed > 0 {
                s.push_str(&format!(
                    "  removed {} files left by runs that died\n",
                    inc.recovered.orphans_removed
                ));
            }
        }
        s.push_str(&format!(
            "  input   {} files ({} rejected whole), {} bytes, {} records: {} loaded, {} rejected\n",
            t.files_seen, t.files_rejected, t.bytes_in, t.records_in, t.records_loaded, t.records_rejected
        ));
        for table in &self.tables {
            s.push_str(&format!(
                "  {:<20} {:>10} rows  {:>4} files  {:>12} bytes  {} partitions{}\n",
                table.table,
                table.rows_written,
                table.files.len(),
                table.bytes_written,
                table.partitions_written,
                if table.files_removed > 0 {
                    format!(", replaced {} old files", table.files_removed)
                } else {
                    String::new()
                }
            ));
        }
        s.push_str(&format!("  catalog {}\n", self.catalog));
        s.push_str(&format!(
            "  report  {}/_naslake/runs/{}.json\n",
            self.output.trim_end_matches('/'),
            self.run_id
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WorkItem;

    fn report() -> RunReport {
        RunReport {
            run_id: "r1".into(),
            job: "j".into(),
            driver: Driver::Run,
            status: RunStatus::Succeeded,
            error: Some("a \"quoted\" }".into()),
            warnings: vec!["w".into()],
            started_at: String::new(),
            finished_at: String::new(),
            duration_seconds: 0.5,
            input: String::new(),
            output: String::new(),
            catalog: String::new(),
            totals: Totals::default(),
            sources: Vec::new(),
            tables: Vec::new(),
            incremental: None,
        }
    }

    fn counts(error: Option<&str>) -> ItemCounts {
        ItemCounts {
            records: 1,
            item_error: error.map(str::to_string),
            notes: [("skipped".to_string(), 2)].into(),
            ..Default::default()
        }
    }

    fn file<'a>(
        key: &'a str,
        fingerprint: &'a Fingerprint,
        counts: &'a ItemCounts,
    ) -> FileReport<'a> {
        FileReport {
            source: "s",
            key,
            fingerprint,
            counts,
        }
    }

    #[test]
    fn the_json_is_every_member_with_the_files_as_serde_gives_them() {
        let fingerprint = Fingerprint {
            size: 3,
            etag: Some("e".into()),
            last_modified: None,
        };
        let (fine, bad) = (counts(None), counts(Some("bad {")));
        let files = [
            file("a/b.csv", &fingerprint, &fine),
            file("c \"}\".csv", &fingerprint, &bad),
        ];
        let r = report();
        let json = r.to_json(&FileList::of(&files)).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let mut want = serde_json::to_value(&r).unwrap();
        want["files"] = serde_json::to_value(files).unwrap();
        assert_eq!(got, want);
        assert_eq!(got["error"], "a \"quoted\" }");
        assert_eq!(got["files"][1]["item_error"], "bad {");
        assert_eq!(got["files"][1]["skipped"], 2);
        assert_eq!(got["files"][0]["size"], 3);

        // An entry has the members of the item (without its seal) and of its
        // counts, as the owned item and counts write them.
        let item = WorkItem {
            source: "s".into(),
            key: "a/b.csv".into(),
            sealed: None,
            fingerprint: fingerprint.clone(),
        };
        let mut owned = serde_json::to_value(&item).unwrap();
        let serde_json::Value::Object(c) = serde_json::to_value(&fine).unwrap() else {
            panic!("counts are an object");
        };
        owned.as_object_mut().unwrap().extend(c);
        assert_eq!(got["files"][0], owned);

        // No files: an empty list, not a missing member.
        let empty: serde_json::Value =
            serde_json::from_slice(&r.to_json(&FileList::default()).unwrap()).unwrap();
        assert_eq!(empty["files"], serde_json::json!([]));
    }
}
