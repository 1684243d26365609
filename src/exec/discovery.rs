//! The one discovery loop of every run: each source lists its items into a feed
//! of its own (a channel its readers take from) and into the run's manifest, all
//! sources at once. A run that streams reads while listing goes on (bounded
//! feeds); an incremental run lists everything before it reads (it must know
//! what was deleted before it rewrites a partition); a shard replays the items
//! its plan gave it as if they had just been found.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::basis::{self, Increment, Listed};
use crate::base::error::{Error, Result};
use crate::discover::changes::{Baseline, SourceChanges};
use crate::discover::{Discovered, DiscoveredItem, ItemSink};
use crate::job::Job;
use crate::model::{SourceListing, WorkItem};
use crate::storage::Location;

/// Items discovered but not yet picked up by their source's readers, per source,
/// when reading goes on during the listing.
pub const IN_FLIGHT: usize = 1024;

/// How far listing may run ahead of reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// At most [`IN_FLIGHT`] items ahead: reading starts with the first item.
    Streaming,
    /// Without bound: the whole listing is known before anything is read.
    Complete,
}

/// Every source's listing under way, and the feeds it fills.
pub struct Discovery {
    /// One feed per source, in the job's order of sources.
    pub feeds: Vec<async_channel::Receiver<DiscoveredItem>>,
    tasks: Vec<JoinHandle<Result<SourceListing>>>,
    /// An incremental run's view of the state, to sum up what changed.
    baseline: Option<Arc<Baseline>>,
    sources: Vec<String>,
}

impl Discovery {
    /// Starts listing every source of `job` under `input`. With `increment`,
    /// objects unchanged since its state are counted, not fed (unless their
    /// source is read again in full).
    pub fn list(
        job: &Job,
        input: Option<&Location>,
        manifest: &Arc<Discovered>,
        progress: &indicatif::ProgressBar,
        increment: Option<&Increment>,
        pace: Pace,
    ) -> Discovery {
        let baseline = increment.map(|inc| Arc::new(Baseline::new(&inc.previous.sources)));
        let mut feeds = Vec::new();
        let mut tasks = Vec::new();
        for source in &job.sources {
            let (tx, rx) = match pace {
                Pace::Streaming => async_channel::bounded(IN_FLIGHT),
                Pace::Complete => async_channel::unbounded(),
            };
            feeds.push(rx);
            let mut sink = ItemSink::new(source.name(), manifest.clone(), tx, progress.clone());
            if let (Some(b), Some(inc)) = (&baseline, increment) {
                sink = sink.with_baseline(b.clone(), inc.using.reread.contains(source.name()));
            }
            let (source, input) = (source.clone(), input.cloned());
            tasks.push(tokio::spawn(async move {
                let prefix = source.discover(input.as_ref(), &mut sink).await;
                // Finished on failure too: the manifest counts the source as done.
                let listing = sink.finish(prefix.as_deref().unwrap_or(""));
                prefix.map(|_| listing)
            }));
        }
        Discovery {
            feeds,
            tasks,
            baseline,
            sources: job.sources.iter().map(|s| s.name().to_string()).collect(),
        }
    }

    /// Feeds a shard's items to their sources' readers, as discovery would.
    pub fn replay(
        job: &Job,
        items: &[WorkItem],
        manifest: &Arc<Discovered>,
        progress: &indicatif::ProgressBar,
    ) -> Discovery {
        let mut feeds = Vec::new();
        let mut tasks = Vec::new();
        for source in &job.sources {
            let (tx, rx) = async_channel::bounded(IN_FLIGHT);
            feeds.push(rx);
            let mut sink = ItemSink::new(source.name(), manifest.clone(), tx, progress.clone());
            let mine: Vec<WorkItem> = items
                .iter()
                .filter(|i| i.source == source.name())
                .cloned()
                .collect();
            tasks.push(tokio::spawn(async move {
                for item in mine {
                    if !sink.add(item).await {
                        break;
                    }
                }
                Ok(sink.finish("the shard's items"))
            }));
        }
        Discovery {
            feeds,
            tasks,
            baseline: None,
            sources: job.sources.iter().map(|s| s.name().to_string()).collect(),
        }
    }

    /// Takes the feeds, for the readers (or the plan's sharder).
    pub fn take_feeds(&mut self) -> Vec<async_channel::Receiver<DiscoveredItem>> {
        std::mem::take(&mut self.feeds)
    }

    /// Waits for every source's listing to end; the first failure fails it.
    pub async fn finish(self) -> Result<Finished> {
        let mut listings = Vec::new();
        let mut first_error = None;
        for task in self.tasks {
            match task.await {
                Ok(Ok(l)) => listings.push(l),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(Error::Accounting(format!(
                        "a source's discovery {}",
                        crate::base::panics::task_failure(e)
                    )));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        listings.sort_by(|a, b| a.source.cmp(&b.source));
        let changes = self.baseline.map(|b| {
            self.sources
                .iter()
                .map(|s| (s.clone(), b.outcome(s)))
                .collect()
        });
        Ok(Finished { listings, changes })
    }
}

/// What a finished discovery found.
pub struct Finished {
    /// Per source, sorted by source.
    pub listings: Vec<SourceListing>,
    /// In an incremental run: every source's objects by change.
    pub changes: Option<BTreeMap<String, SourceChanges>>,
}

impl Finished {
    /// What an incremental run's listing changed against the state of `inc`.
    pub fn listed(&self, inc: &Increment) -> Result<Listed> {
        match &self.changes {
            Some(changes) => Ok(basis::listed(inc, changes)),
            None => Err(Error::Accounting(
                "an incremental run's listing was made without the state to compare with".into(),
            )),
        }
    }

    /// A source that found nothing to read fails the run (it would empty its
    /// tables), unless its spec allows that. An incremental run's unchanged
    /// objects count as found.
    pub async fn check_not_empty(&self, job: &Job, input: Option<&Location>) -> Result<()> {
        for source in &job.sources {
            let allowed = job
                .spec
                .sources
                .get(source.name())
                .is_some_and(|s| s.allow_empty);
            let Some(listing) = self.listings.iter().find(|l| l.source == source.name()) else {
                continue;
            };
            if listing.items + listing.unchanged > 0 || allowed {
                continue;
            }
            return Err(match (source.objects(), input) {
                (Some(filter), Some(input)) => {
                    let names = source.key_names().await?;
                    // A kind that disguises keys, running without its key (the
                    // samples'): its keys are in clear, so none is shown.
                    let examples = names.is_some() || source.key_links_table().is_none();
                    crate::discover::explain_empty(
                        source.name(),
                        input,
                        filter,
                        listing,
                        names.as_deref(),
                        examples,
                    )
                    .await
                }
                _ => Error::NothingToRead(format!(
                    "source `{}` found nothing to read ({}). Nothing was changed. If an empty source is normal for this job, set `sources.{}.allow_empty = true`",
                    source.name(),
                    listing.prefix,
                    source.name()
                )),
            });
        }
        Ok(())
    }
}
