//! The gate a run passes before anything becomes visible: its counts add up.

use crate::base::error::{Error, Result};
use crate::discover::DiscoveredItem;

/// Every item's records are loaded or rejected, every item was read to its end,
/// and every rejection is a row of the rejects table (`rejects_rows`). The items
/// come in any order; an error names them by source and key, first to last.
pub fn check(items: &[DiscoveredItem], rejects_rows: u64) -> Result<()> {
    let by_name = |d: &&DiscoveredItem| (d.item.source.clone(), d.item.key.clone());
    let mut expected_rejects = 0;
    let mut miscounted = None;
    let mut unread = Vec::new();
    for d in items {
        let c = d.stats.counts();
        if c.records != c.loaded + c.rejected
            && miscounted.is_none_or(|m: &DiscoveredItem| by_name(&d) < by_name(&m))
        {
            miscounted = Some(d);
        }
        if !d.stats.done() {
            unread.push(d);
        }
        expected_rejects += c.rejected + u64::from(c.item_error.is_some());
    }
    if let Some(d) = miscounted {
        let c = d.stats.counts();
        return Err(Error::Accounting(format!(
            "{}: {} records read but {} loaded + {} rejected",
            d.item.key, c.records, c.loaded, c.rejected
        )));
    }
    unread.sort_by_cached_key(by_name);
    let unread: Vec<String> = unread.iter().map(|d| d.item.key.clone()).collect();
    if !unread.is_empty() {
        return Err(Error::Accounting(format!(
            "{} inputs were not read to the end, so their rows are neither loaded nor rejected \
             (does the job's SQL stop reading early, with a LIMIT, or leave a source unused?): {}",
            unread.len(),
            unread
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if rejects_rows != expected_rejects {
        return Err(Error::Accounting(format!(
            "{expected_rejects} rejections counted but {rejects_rows} rejects rows written"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::discover::ItemStats;
    use crate::model::{Fingerprint, ItemCounts, WorkItem};

    fn item(source: &str, key: &str, records: u64, loaded: u64, read: bool) -> DiscoveredItem {
        let stats = ItemStats::restore(&ItemCounts {
            records,
            loaded,
            ..Default::default()
        });
        if !read {
            // Restored stats are read to their end: a fresh item is not.
            return DiscoveredItem {
                stats: Arc::new(ItemStats::default()),
                ..item(source, key, records, loaded, true)
            };
        }
        DiscoveredItem {
            item: Arc::new(WorkItem {
                source: source.into(),
                key: key.into(),
                sealed: None,
                fingerprint: Fingerprint {
                    size: 1,
                    etag: None,
                    last_modified: None,
                },
            }),
            stats: Arc::new(stats),
        }
    }

    #[test]
    fn errors_name_items_by_source_and_key_whatever_order_they_come_in() {
        let miscounted = [
            item("s", "k9", 3, 1, true),
            item("s", "k2", 1, 1, true),
            item("s", "k5", 2, 0, true),
            item("r", "k7", 4, 4, true),
        ];
        let e = check(&miscounted, 0).unwrap_err().to_string();
        assert!(e.contains("k5: 2 records read but 0 loaded"), "{e}");

        let unread = [
            item("s", "k3", 0, 0, false),
            item("s", "k1", 0, 0, false),
            item("r", "k8", 0, 0, false),
            item("s", "k2", 0, 0, true),
        ];
        let e = check(&unread, 0).unwrap_err().to_string();
        assert!(e.contains("3 inputs were not read"), "{e}");
        assert!(e.ends_with(": k8, k1, k3"), "{e}");
        assert!(check(&[item("s", "k2", 2, 2, true)], 0).is_ok());
    }
}
