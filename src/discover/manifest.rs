//! The manifest: the work items of a run, each with its identity and fingerprint,
//! and what each source's discovery saw. It is a plain serialisable value, so a run
//! can hand shards of it to other processes and compare it with the previous run's.
//!
//! While a run works, items are registered the moment discovery finds them
//! ([`Discovered`]), so reading starts with the first page of a listing; each item
//! carries the counters extraction fills in ([`ItemStats`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

use serde::{Deserialize, Serialize};

/// One unit of input: an object under the job's input, or whatever a source's own
/// discovery yields (a path on a filer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Source (in the job spec) the item belongs to.
    pub source: String,
    /// The item's identity: its key relative to the job's input location, which
    /// rows carry as their `source_key` lineage.
    pub key: String,
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
}

/// What identifies one version of an item, as far as the store says. Reads are
/// pinned to it: an item is read up to its listed size, and its ETag is compared
/// where the store returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// RFC 3339, where the store gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// What discovering one source found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceListing {
    pub source: String,
    /// Where it looked (a key prefix under the input, or the source's own words).
    pub prefix: String,
    /// Everything discovery saw, read or not.
    pub listed: u64,
    /// Items the source reads.
    pub items: u64,
    /// Items left unread because they did not change since the last committed run.
    #[serde(default)]
    pub unchanged: u64,
}

impl SourceListing {
    /// Seen but not read (other suffixes, hidden names).
    pub fn skipped(&self) -> u64 {
        self.listed - self.items - self.unchanged
    }
}

/// A run's work, as a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Sorted by source, then key.
    pub items: Vec<WorkItem>,
    /// Sorted by source.
    pub sources: Vec<SourceListing>,
}

/// What happened to one item; filled in by the source while it extracts.
///
/// The accounting rule every source keeps, and the runner checks: each record
/// found is either loaded or rejected (`records = loaded + rejected`), and an item
/// that could not be read (or whose rest could not be read) has an `item_error`,
/// which is one more rejects row.
#[derive(Debug, Default)]
pub struct ItemStats {
    /// Bytes read from storage (compressed size for `.gz`).
    pub bytes_read: AtomicU64,
    pub records: AtomicU64,
    pub loaded: AtomicU64,
    pub rejected: AtomicU64,
    item_error: Mutex<Option<String>>,
    /// Counters of the source kind's own (`blank_lines` for CSV), reported as is.
    notes: Mutex<BTreeMap<Cow<'static, str>, u64>>,
    /// The source's reader read the item to its end (or rejected it).
    pub finished: AtomicBool,
    /// Units of the item sent to the parsers and not parsed yet (kept by the host):
    /// an item is done when it is finished and none is pending.
    pub(crate) pending_units: AtomicU64,
}

/// A snapshot of [`ItemStats`] for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    pub bytes_read: u64,
    pub records: u64,
    pub loaded: u64,
    pub rejected: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_error: Option<String>,
    #[serde(flatten)]
    pub notes: BTreeMap<String, u64>,
}

impl ItemStats {
    pub fn counts(&self) -> ItemCounts {
        ItemCounts {
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            loaded: self.loaded.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            item_error: lock(&self.item_error).clone(),
            notes: lock(&self.notes)
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }

    /// Marks the item (or its unread rest) as rejected; the first reason wins.
    pub fn set_item_error(&self, reason: &str) {
        lock(&self.item_error).get_or_insert_with(|| reason.to_string());
    }

    /// Adds to one of the source kind's own counters.
    pub fn note(&self, name: &'static str, n: u64) {
        *lock(&self.notes).entry(Cow::Borrowed(name)).or_default() += n;
    }

    /// Read to the end by its source, and every unit of it parsed.
    pub fn done(&self) -> bool {
        self.finished.load(Ordering::Acquire) && self.pending_units.load(Ordering::Acquire) == 0
    }

    /// The counters of an item extracted elsewhere (a shard of a sharded run),
    /// from its report: read to its end.
    pub fn restore(c: &ItemCounts) -> Self {
        ItemStats {
            bytes_read: AtomicU64::new(c.bytes_read),
            records: AtomicU64::new(c.records),
            loaded: AtomicU64::new(c.loaded),
            rejected: AtomicU64::new(c.rejected),
            item_error: Mutex::new(c.item_error.clone()),
            notes: Mutex::new(
                c.notes
                    .iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), *v))
                    .collect(),
            ),
            finished: AtomicBool::new(true),
            pending_units: AtomicU64::new(0),
        }
    }

    /// Counts records found, loaded and rejected at once.
    pub fn count(&self, loaded: u64, rejected: u64) {
        self.records.fetch_add(loaded + rejected, Ordering::Relaxed);
        self.loaded.fetch_add(loaded, Ordering::Relaxed);
        self.rejected.fetch_add(rejected, Ordering::Relaxed);
    }
}

/// An item handed to its source, with the counters the source fills in.
#[derive(Debug, Clone)]
pub struct DiscoveredItem {
    pub item: Arc<WorkItem>,
    pub stats: Arc<ItemStats>,
}

/// The manifest as it grows during a run: every item is registered the moment
/// discovery finds it, so the report still sees every item when a run fails.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Items are counted, not kept (planning a sharded run streams them to disk).
    count_only: bool,
    items: Mutex<Vec<DiscoveredItem>>,
    sources: Mutex<Vec<SourceListing>>,
    bytes: AtomicU64,
    found: AtomicU64,
    sources_done: AtomicU64,
}

impl Discovered {
    /// A manifest that counts the items found without keeping them.
    pub fn count_only() -> Self {
        Discovered {
            count_only: true,
            ..Default::default()
        }
    }

    pub(crate) fn add(&self, item: DiscoveredItem) {
        self.bytes
            .fetch_add(item.item.fingerprint.size, Ordering::Relaxed);
        self.found.fetch_add(1, Ordering::Relaxed);
        if !self.count_only {
            lock(&self.items).push(item);
        }
    }

    pub(crate) fn source_done(&self, listing: SourceListing) {
        lock(&self.sources).push(listing);
        self.sources_done.fetch_add(1, Ordering::Release);
    }

    /// The items found so far, sorted by source and key.
    pub fn items(&self) -> Vec<DiscoveredItem> {
        let mut v = lock(&self.items).clone();
        v.sort_by(|a, b| (&a.item.source, &a.item.key).cmp(&(&b.item.source, &b.item.key)));
        v
    }

    pub fn items_found(&self) -> u64 {
        self.found.load(Ordering::Relaxed)
    }

    /// Bytes of the items found so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// How many sources are discovered completely (or failed to be).
    pub fn sources_done(&self) -> u64 {
        self.sources_done.load(Ordering::Acquire)
    }

    /// Per source, what discovery saw, sorted by source.
    pub fn listings(&self) -> Vec<SourceListing> {
        let mut v = lock(&self.sources).clone();
        v.sort_by(|a, b| a.source.cmp(&b.source));
        v
    }

    /// The manifest as a value.
    pub fn manifest(&self) -> Manifest {
        Manifest {
            items: self
                .items()
                .into_iter()
                .map(|d| WorkItem::clone(&d.item))
                .collect(),
            sources: self.listings(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_through_json() {
        let m = Manifest {
            items: vec![
                WorkItem {
                    source: "long".into(),
                    key: "long/a.csv".into(),
                    fingerprint: Fingerprint {
                        size: 10,
                        etag: Some("\"e1\"".into()),
                        last_modified: Some("2024-05-01T00:00:00+00:00".into()),
                    },
                },
                WorkItem {
                    source: "acl".into(),
                    key: "vol/dir".into(),
                    fingerprint: Fingerprint {
                        size: 0,
                        etag: None,
                        last_modified: None,
                    },
                },
            ],
            sources: vec![SourceListing {
                source: "long".into(),
                prefix: "long/".into(),
                listed: 3,
                items: 1,
                unchanged: 0,
            }],
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"size\":10") && !text.contains("\"etag\":null"));
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
        assert_eq!(m.sources[0].skipped(), 2);
    }

    #[test]
    fn a_poisoned_lock_keeps_what_it_holds() {
        let stats = Arc::new(ItemStats::default());
        let s = stats.clone();
        let _ = std::thread::spawn(move || {
            let _held = s.notes.lock().unwrap();
            panic!("a parser panicked while counting");
        })
        .join();
        stats.note("blank_lines", 2);
        stats.set_item_error("x");
        assert_eq!(stats.counts().notes["blank_lines"], 2);
        assert_eq!(stats.counts().item_error.as_deref(), Some("x"));
    }
}
