//! Discover: lists the objects a source reads and produces the manifest the run
//! works from and reports on. Discovery is polling (listing), never events: FSx for
//! ONTAP access points send no notifications.

use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use serde::Serialize;

use crate::error::Result;
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

/// What listing one source found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects the source reads, sorted by key.
    pub entries: Vec<ManifestEntry>,
    /// Every object under the source's prefix, read or not.
    pub listed: u64,
}

/// Lists one source's objects under `input`.
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
        let Some(key) = input.relative(&meta.location) else {
            continue;
        };
        if !is_selected(&key, &source.suffixes) {
            continue;
        }
        entries.push(ManifestEntry {
            source: source_name.to_string(),
            key,
            size: meta.size,
            etag: meta.e_tag.clone(),
            last_modified: meta.last_modified.to_rfc3339(),
            path: meta.location,
        });
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
