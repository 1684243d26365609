//! Discover: what there is to read. By default a source's items are the objects
//! listed under the job's input by prefix and suffixes; a source kind may bring its
//! own discovery instead (a REST walk), which needs no object store at all.
//! Discovery is polling (listing), never events: FSx for ONTAP access points send
//! no notifications.
//!
//! Items go to the source's reader the moment they are found (page by page on
//! S3), and are registered in the run's [`Discovered`] manifest at the same time.

pub mod changes;
pub mod manifest;
pub mod names;
pub mod shards;

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectMeta;

use crate::base::error::{Error, Result};
use crate::model::{Fingerprint, SourceListing, WorkItem};
use crate::storage::Location;
pub use manifest::{Discovered, DiscoveredItem, ItemStats};
pub use names::KeyNames;

/// Which objects under the input a source reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFilter {
    /// Key prefix under the job's input location.
    pub prefix: String,
    /// Accepted key endings, compared case-insensitively; none: every key (a kind
    /// that recognises its objects by their content).
    pub suffixes: Vec<String>,
}

impl ObjectFilter {
    /// True when a key (relative to the input) should be read: the name matches one
    /// suffix and no path segment is hidden (`_…`, `.…`), the convention Athena and
    /// Hive use for in-progress and metadata files.
    pub fn selects(&self, relative_key: &str) -> bool {
        if relative_key
            .split('/')
            .any(|seg| seg.starts_with('_') || seg.starts_with('.'))
        {
            return false;
        }
        let lower = relative_key.to_ascii_lowercase();
        self.suffixes.is_empty()
            || self
                .suffixes
                .iter()
                .any(|s| lower.ends_with(&s.to_ascii_lowercase()))
    }
}

/// Where discovery sends what it finds: the source's reader and the run's manifest.
pub struct ItemSink {
    pub(crate) source: String,
    pub(crate) manifest: Arc<Discovered>,
    pub(crate) tx: async_channel::Sender<DiscoveredItem>,
    pub(crate) progress: indicatif::ProgressBar,
    pub(crate) listed: u64,
    pub(crate) items: u64,
    /// The last committed run's objects, in an incremental run: unchanged ones
    /// are counted, not read.
    pub(crate) baseline: Option<Arc<changes::Baseline>>,
    /// Unchanged objects are read all the same (a derived table reads the source).
    pub(crate) reread: bool,
    pub(crate) unchanged: u64,
    /// The source's disguise for keys, when it has one: items are found by their
    /// key and go on under their name.
    pub(crate) names: Option<Arc<dyn KeyNames>>,
    /// Settled for the manifest (`Discovered::source_settled`): the feed was
    /// found full, or the listing ended.
    pub(crate) settled: bool,
}

impl ItemSink {
    pub fn new(
        source: &str,
        manifest: Arc<Discovered>,
        tx: async_channel::Sender<DiscoveredItem>,
        progress: indicatif::ProgressBar,
    ) -> Self {
        ItemSink {
            source: source.to_string(),
            manifest,
            tx,
            progress,
            listed: 0,
            items: 0,
            baseline: None,
            reread: false,
            unchanged: 0,
            names: None,
            settled: false,
        }
    }

    /// Reads only what changed since the state `baseline` holds.
    /// `reread`: unchanged objects are read all the same, for SQL that needs
    /// every row of the source.
    pub fn with_baseline(mut self, baseline: Arc<changes::Baseline>, reread: bool) -> Self {
        self.baseline = Some(baseline);
        self.reread = reread;
        self
    }

    /// Something was seen that the source does not read.
    pub fn skipped(&mut self) {
        self.listed += 1;
    }

    /// An object found at `key` (relative to the input), named as its source names
    /// it. Returns false when the reader stopped (the run is failing), and
    /// discovery should stop too.
    pub async fn found(&mut self, key: String, fingerprint: Fingerprint) -> bool {
        let item = match &self.names {
            Some(names) => WorkItem {
                source: self.source.clone(),
                key: names.name(&key),
                sealed: Some(names.seal(&key)),
                fingerprint,
            },
            None => WorkItem {
                source: self.source.clone(),
                key,
                sealed: None,
                fingerprint,
            },
        };
        self.add(item).await
    }

    /// An item found before, named already (a shard replaying its plan's items).
    pub async fn add(&mut self, item: WorkItem) -> bool {
        crate::base::faults::point("discover.item");
        self.listed += 1;
        if let Some(b) = &self.baseline
            && b.classify(&self.source, &item.key, &item.fingerprint) == changes::Change::Unchanged
            && !self.reread
        {
            self.unchanged += 1;
            return true;
        }
        self.items += 1;
        let item = DiscoveredItem {
            item: Arc::new(item),
            stats: Arc::new(ItemStats::default()),
        };
        self.progress.inc_length(item.item.fingerprint.size);
        self.manifest.add(item.clone());
        if !self.settled && self.tx.is_full() {
            // Before readers start, nothing more is listed: a run waiting for
            // the listing to size its writers would wait for nothing.
            self.settled = true;
            self.manifest.source_settled();
        }
        self.tx.send(item).await.is_ok()
    }

    /// Discovery of this source is over; `prefix` says where it looked.
    pub fn finish(self, prefix: &str) -> SourceListing {
        let listing = SourceListing {
            source: self.source,
            prefix: prefix.to_string(),
            listed: self.listed,
            items: self.items,
            unchanged: self.unchanged,
        };
        self.manifest.source_done(listing.clone());
        if !self.settled {
            self.manifest.source_settled();
        }
        tracing::info!(source = %listing.source, items = listing.items, listed = listing.listed, "discovered");
        listing
    }
}

/// The fingerprint of a listed object.
pub fn fingerprint(meta: &ObjectMeta) -> Fingerprint {
    Fingerprint {
        size: meta.size,
        etag: meta.e_tag.clone(),
        last_modified: Some(meta.last_modified.to_rfc3339()),
    }
}

/// Lists the objects under `input` that `filter` selects, page by page (a
/// ListObjectsV2 page at a time on S3), into `sink`.
pub async fn list_objects(
    input: &Location,
    filter: &ObjectFilter,
    sink: &mut ItemSink,
) -> Result<()> {
    let mut stream = input.list(&input.child(&filter.prefix));
    while let Some(meta) = stream.try_next().await.map_err(|e| match &sink.names {
        Some(_) => withheld(&filter.prefix, &e),
        None => e.into(),
    })? {
        match input.relative(&meta.location) {
            Some(key) if filter.selects(&key) => {
                if !sink.found(key, fingerprint(&meta)).await {
                    break;
                }
            }
            _ => sink.skipped(),
        }
    }
    Ok(())
}

/// A listing error of a source that disguises keys: the store's text may quote
/// one (an invalid name, a folder it may not read), so only its kind is shown.
pub fn withheld(prefix: &str, e: &object_store::Error) -> Error {
    let kind = storage_kind(e);
    Error::Collect(format!(
        "listing the input under prefix `{prefix}` failed: {kind} (the store's message is withheld, as it may quote an object key; the store's own tools show it)"
    ))
}

/// What kind of storage error `e` is, in words that quote nothing of it.
pub fn storage_kind(e: &object_store::Error) -> &'static str {
    match e {
        object_store::Error::NotFound { .. } => "not found",
        object_store::Error::InvalidPath { .. } => "an object name the store cannot represent",
        object_store::Error::PermissionDenied { .. } => "permission denied",
        object_store::Error::Unauthenticated { .. } => "not authenticated",
        _ => "a storage error",
    }
}

/// Looks at a source that listed nothing to read and says why: the input missing,
/// or what the prefix and the suffixes left out (listing at most a few thousand
/// objects of the input to count them). Examples of keys are named as the
/// source names them (`names`), and left out when `examples` is false (a source
/// that would disguise its keys but has no key to).
pub async fn explain_empty(
    source: &str,
    input: &Location,
    filter: &ObjectFilter,
    listing: &SourceListing,
    names: Option<&dyn KeyNames>,
    examples: bool,
) -> Error {
    const LOOK_AT: usize = 10_000;
    let at = input.url_of(&input.child(&filter.prefix));
    let mut msg = format!(
        "source `{source}` found nothing to read at {at} (prefix `{}`, suffixes {}):",
        filter.prefix,
        if filter.suffixes.is_empty() {
            "any".to_string()
        } else {
            filter.suffixes.join(" ")
        }
    );
    if input.base_url.starts_with("file:") {
        let dir = std::path::PathBuf::from(format!("/{}", input.prefix.as_ref()));
        if !dir.is_dir() {
            msg.push_str(&format!(
                " the input {} does not exist or is not a directory",
                input.display
            ));
            return Error::NothingToRead(msg);
        }
    }
    if listing.listed > 0 {
        msg.push_str(&format!(
            " {} objects there, none with those suffixes or all hidden (`_…`, `.…`)",
            listing.listed
        ));
    } else {
        msg.push_str(" no objects under the prefix");
    }
    if !filter.prefix.is_empty() {
        let mut all = input.list(&input.prefix);
        let under_prefix = input.child(&filter.prefix);
        let anywhere = ObjectFilter {
            prefix: String::new(),
            suffixes: filter.suffixes.clone(),
        };
        let (mut outside, mut matching, mut shown) = (0usize, 0usize, Vec::new());
        let mut seen = 0;
        let mut stopped = None;
        loop {
            let meta = match all.try_next().await {
                Ok(Some(meta)) => meta,
                Ok(None) => break,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            };
            seen += 1;
            if seen > LOOK_AT {
                break;
            }
            let Some(key) = input.relative(&meta.location) else {
                continue;
            };
            if meta.location.prefix_matches(&under_prefix) {
                continue;
            }
            outside += 1;
            if anywhere.selects(&key) {
                matching += 1;
                if shown.len() < 3 && examples {
                    shown.push(names.map_or(key.clone(), |n| n.name(&key)));
                }
            }
        }
        let more = if seen > LOOK_AT || stopped.is_some() {
            "at least "
        } else {
            ""
        };
        if let Some(e) = stopped {
            let shown = match names {
                Some(_) => withheld(&filter.prefix, &e).to_string(),
                None => e.to_string(),
            };
            msg.push_str(&format!(" (listing the input to count stopped: {shown})"));
        }
        msg.push_str(&format!(
            "; the input holds {more}{outside} objects outside the prefix, {matching} of them with those suffixes"
        ));
        if !shown.is_empty() {
            msg.push_str(&format!(
                " (e.g. {}): check `sources.{source}.prefix`",
                shown.join(", ")
            ));
        }
    }
    msg.push_str(&format!(
        ". Nothing was changed. If an empty source is normal for this job, set `sources.{source}.allow_empty = true`"
    ));
    Error::NothingToRead(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str) -> WorkItem {
        WorkItem {
            source: "long".into(),
            key: key.into(),
            sealed: None,
            fingerprint: crate::model::Fingerprint {
                size: 10,
                etag: None,
                last_modified: None,
            },
        }
    }

    /// A sink of source `long` into a feed of `capacity` items.
    fn sink_with_feed_of(
        capacity: usize,
    ) -> (
        Arc<Discovered>,
        ItemSink,
        async_channel::Receiver<DiscoveredItem>,
    ) {
        let manifest = Arc::new(Discovered::default());
        let (tx, rx) = async_channel::bounded(capacity);
        let sink = ItemSink::new(
            "long",
            manifest.clone(),
            tx,
            indicatif::ProgressBar::hidden(),
        );
        (manifest, sink, rx)
    }

    /// Whether `sink.add(item(key))` is still waiting for room after 50 ms.
    async fn add_waits(sink: &mut ItemSink, key: &str) -> bool {
        let adding = sink.add(item(key));
        tokio::time::timeout(std::time::Duration::from_millis(50), adding)
            .await
            .is_err()
    }

    /// A source whose feed fills tells the manifest, before it waits for
    /// readers, that it has told all it will: the run sizing its writers need
    /// not wait for the rest. Once, whether it fills again or ends after.
    #[tokio::test(flavor = "current_thread")]
    async fn a_source_whose_feed_fills_is_settled_once() {
        let (manifest, mut sink, rx) = sink_with_feed_of(2);
        assert!(sink.add(item("a")).await && sink.add(item("b")).await);
        assert_eq!(manifest.sources_settled(), 0, "room for both");
        assert!(
            add_waits(&mut sink, "c").await,
            "the third waits for a reader"
        );
        assert_eq!(manifest.sources_settled(), 1);
        rx.recv().await.unwrap();
        assert!(sink.add(item("d")).await);
        assert!(add_waits(&mut sink, "e").await, "full again");
        assert_eq!(manifest.sources_settled(), 1, "counted once");
        sink.finish("long/");
        assert_eq!(manifest.sources_settled(), 1, "not again when it ends");
        assert_eq!(manifest.sources_done(), 1);
    }

    /// A source that ends without filling its feed is settled when it ends.
    #[tokio::test(flavor = "current_thread")]
    async fn a_source_listed_whole_is_settled_when_it_ends() {
        let (manifest, mut sink, _rx) = sink_with_feed_of(4);
        assert!(sink.add(item("a")).await);
        assert_eq!(manifest.sources_settled(), 0);
        sink.finish("long/");
        assert_eq!(manifest.sources_settled(), 1);
    }

    #[test]
    fn suffixes_are_case_insensitive_and_hidden_names_skipped() {
        let f = ObjectFilter {
            prefix: String::new(),
            suffixes: vec![".csv".to_string(), ".csv.gz".to_string()],
        };
        assert!(f.selects("a/b.CSV"));
        assert!(f.selects("b.csv.GZ"));
        assert!(!f.selects("b.csv.bak"));
        assert!(!f.selects("_tmp/b.csv"));
        assert!(!f.selects("a/.b.csv"));
        assert!(!f.selects("dir/"));
    }
}
