//! The run report: what a run saw, read, rejected and wrote, written as JSON to
//! `OUTPUT/_naslake/runs/RUNID.json` and summarised on one screen. Its counts add
//! up: per file, `records = loaded + rejected`.

use serde::Serialize;

use crate::sink::WrittenFile;
use crate::sources::FileCounts;
use crate::spec::WriteMode;

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub job: String,
    /// `succeeded`, `succeeded_with_rejects` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_seconds: f64,
    pub input: String,
    pub output: String,
    pub catalog: String,
    pub totals: Totals,
    pub sources: Vec<SourceReport>,
    pub files: Vec<FileReport>,
    pub tables: Vec<TableReport>,
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

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub source: String,
    pub key: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(flatten)]
    pub counts: FileCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    pub mode: WriteMode,
    pub location: String,
    pub rows_written: u64,
    pub bytes_written: u64,
    pub partitions_written: u64,
    /// Files of earlier runs this run's commit replaced and removed.
    pub files_removed: u64,
    pub files: Vec<WrittenFile>,
}

impl RunReport {
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
