//! Discover: lists the objects a source reads and produces the manifest the run
//! works from and reports on. Discovery is polling (listing), never events: FSx for
//! ONTAP access points send no notifications.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use object_store::ObjectMeta;
use object_store::path::Path as ObjPath;
use serde::Serialize;

use crate::error::Result;
use crate::sources::FileStats;
use crate::spec::SourceSpec;
use crate::storage::Location;

/// One input object.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    /// Source (in the job spec) the object belongs to.
    pub source: String,
    /// Key relative to the job's input location: the row lineage `source_key`.
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: String,
    #[serde(skip)]
    pub path: ObjPath,
}

/// True when a key should be read by a source with these suffixes: the name matches
/// one suffix (case-insensitively) and no path segment is hidden (`_…`, `.…`), the
/// convention Athena and Hive use for in-progress and metadata files.
pub fn is_selected(relative_key: &str, suffixes: &[String]) -> bool {
    if relative_key
        .split('/')
        .any(|seg| seg.starts_with('_') || seg.starts_with('.'))
    {
        return false;
    }
    let lower = relative_key.to_ascii_lowercase();
    suffixes
        .iter()
        .any(|s| lower.ends_with(&s.to_ascii_lowercase()))
}

/// An input file handed to a source's reader, with the counters the reader and
/// parsers fill in.
#[derive(Debug, Clone)]
pub struct DiscoveredFile {
    pub entry: ManifestEntry,
    pub stats: Arc<FileStats>,
}

/// Every file of a run, registered the moment discovery finds it, so reading starts
/// with the first page of a listing and the report still sees every file.
#[derive(Debug, Default)]
pub struct Manifest {
    files: Mutex<Vec<DiscoveredFile>>,
    sources: Mutex<Vec<(String, String, u64, u64)>>,
    bytes: AtomicU64,
    sources_done: AtomicU64,
}

impl Manifest {
    /// The files found so far, sorted by key.
    pub fn files(&self) -> Vec<DiscoveredFile> {
        let mut v = self.files.lock().map(|f| f.clone()).unwrap_or_default();
        v.sort_by(|a, b| a.entry.key.cmp(&b.entry.key));
        v
    }

    /// How many files were found so far.
    pub fn files_found(&self) -> u64 {
        self.files.lock().map(|f| f.len() as u64).unwrap_or(0)
    }

    /// Bytes of the files found so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// How many sources have been listed completely (or failed to list).
    pub fn sources_done(&self) -> u64 {
        self.sources_done.load(Ordering::Acquire)
    }

    /// Per source: (name, prefix, objects listed, files selected).
    pub fn source_counts(&self) -> Vec<(String, String, u64, u64)> {
        self.sources.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Lists a source page by page (a ListObjectsV2 page at a time on S3), registering
/// each selected file in `manifest` and sending it to the reader at once. Closing
/// `tx` (by returning) tells the reader that discovery is over.
pub async fn discover_into(
    input: Location,
    source_name: String,
    source: SourceSpec,
    manifest: Arc<Manifest>,
    tx: async_channel::Sender<DiscoveredFile>,
    progress: indicatif::ProgressBar,
) -> Result<()> {
    let list_prefix = input.child(&source.prefix);
    let mut stream = input.store.list(Some(&list_prefix));
    let (mut listed, mut files) = (0, 0);
    let result = async {
        while let Some(meta) = stream.try_next().await? {
            listed += 1;
            let Some(entry) = select(&input, &source_name, &source, meta) else {
                continue;
            };
            files += 1;
            let file = DiscoveredFile {
                entry,
                stats: Arc::new(FileStats::default()),
            };
            manifest.bytes.fetch_add(file.entry.size, Ordering::Relaxed);
            progress.inc_length(file.entry.size);
            if let Ok(mut all) = manifest.files.lock() {
                all.push(file.clone());
            }
            if tx.send(file).await.is_err() {
                break; // the reader stopped: the run is failing
            }
        }
        Ok(())
    }
    .await;
    if let Ok(mut s) = manifest.sources.lock() {
        s.push((source_name.clone(), source.prefix.clone(), listed, files));
    }
    manifest.sources_done.fetch_add(1, Ordering::Release);
    tracing::info!(source = %source_name, files, listed, "discovered");
    result
}

/// The manifest entry for a listed object, if the source reads it.
fn select(
    input: &Location,
    source_name: &str,
    source: &SourceSpec,
    meta: ObjectMeta,
) -> Option<ManifestEntry> {
    let key = input.relative(&meta.location)?;
    if !is_selected(&key, &source.suffixes) {
        return None;
    }
    Some(ManifestEntry {
        source: source_name.to_string(),
        key,
        size: meta.size,
        etag: meta.e_tag.clone(),
        last_modified: meta.last_modified.to_rfc3339(),
        path: meta.location,
    })
}

/// What listing one source found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects the source reads, sorted by key.
    pub entries: Vec<ManifestEntry>,
    /// Every object under the source's prefix, read or not.
    pub listed: u64,
}

/// Lists one source's objects under `input` completely (for `--dry-run`).
pub async fn list_source(
    input: &Location,
    source_name: &str,
    source: &SourceSpec,
) -> Result<Listing> {
    let list_prefix = input.child(&source.prefix);
    let mut stream = input.store.list(Some(&list_prefix));
    let mut entries = Vec::new();
    let mut listed = 0;
    while let Some(meta) = stream.try_next().await? {
        listed += 1;
        entries.extend(select(input, source_name, source, meta));
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Listing { entries, listed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_case_insensitive_and_hidden_names_skipped() {
        let s = vec![".csv".to_string(), ".csv.gz".to_string()];
        assert!(is_selected("a/b.CSV", &s));
        assert!(is_selected("b.csv.GZ", &s));
        assert!(!is_selected("b.csv.bak", &s));
        assert!(!is_selected("_tmp/b.csv", &s));
        assert!(!is_selected("a/.b.csv", &s));
        assert!(!is_selected("dir/", &s));
    }
}
