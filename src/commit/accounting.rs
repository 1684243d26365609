//! The gate a run passes before anything becomes visible: its counts add up.

use crate::base::error::{Error, Result};
use crate::discover::DiscoveredItem;

/// Every item's records are loaded or rejected, every item was read to its end,
/// and every rejection is a row of the rejects table (`rejects_rows`).
pub fn check(items: &[DiscoveredItem], rejects_rows: u64) -> Result<()> {
    let mut expected_rejects = 0;
    let mut unread = Vec::new();
    for d in items {
        let c = d.stats.counts();
        if c.records != c.loaded + c.rejected {
            return Err(Error::Accounting(format!(
                "{}: {} records read but {} loaded + {} rejected",
                d.item.key, c.records, c.loaded, c.rejected
            )));
        }
        if !d.stats.done() {
            unread.push(d.item.key.clone());
        }
        expected_rejects += c.rejected + u64::from(c.item_error.is_some());
    }
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
