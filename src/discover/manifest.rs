//! The run's manifest as it grows: the work items discovery found (plain values,
//! [`WorkItem`], in the model) and what each source's discovery saw.
//!
//! While a run works, items are registered the moment discovery finds them
//! ([`Discovered`]), so reading starts with the first page of a listing; each item
//! carries the counters extraction fills in ([`ItemStats`]), whose snapshot is the
//! plain [`ItemCounts`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::base::sync::lock;
use crate::model::{ItemCounts, SourceListing, WorkItem};

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
    /// Sources listed, or whose feed filled while they listed (they wait for
    /// readers): each counted once, whichever came first.
    sources_settled: AtomicU64,
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

    /// The items found so far, sorted by source and key (on every core: a run
    /// calls this at its end, where one core would take a few milliseconds per
    /// 10 000 items).
    pub fn items(&self) -> Vec<DiscoveredItem> {
        use rayon::slice::ParallelSliceMut;
        let mut v = self.items_as_found();
        v.par_sort_by(|a, b| (&a.item.source, &a.item.key).cmp(&(&b.item.source, &b.item.key)));
        v
    }

    /// The items found so far, in the order discovery found them.
    pub fn items_as_found(&self) -> Vec<DiscoveredItem> {
        lock(&self.items).clone()
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

    /// A source has told all it will before readers start: its listing ended,
    /// or its feed is full and the listing goes on only as readers take items.
    /// Each source tells it once.
    pub(crate) fn source_settled(&self) {
        self.sources_settled.fetch_add(1, Ordering::Release);
    }

    /// Sources listed or waiting on a full feed (see [`Self::source_settled`]).
    pub fn sources_settled(&self) -> u64 {
        self.sources_settled.load(Ordering::Acquire)
    }

    /// Per source, what discovery saw, sorted by source.
    pub fn listings(&self) -> Vec<SourceListing> {
        let mut v = lock(&self.sources).clone();
        v.sort_by(|a, b| a.source.cmp(&b.source));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
