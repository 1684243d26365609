//! Glue's batch partition calls: items sent in chunks, each call's per-item errors
//! sorted into done, retry (throttled, timed out) and failed, retries with backoff.

use std::time::Duration;

use aws_sdk_glue::types as g;
use backon::{BackoffBuilder, ExponentialBuilder};
use tracing::warn;

use crate::base::error::{Error, Result};
use crate::catalog::table_input::PartitionInput;

/// Attempts for partitions a batch call reported as throttled or timed out, and
/// for `UpdateTable` after a concurrent modification.
pub(super) const ITEM_ATTEMPTS: usize = 8;
/// Per-partition error codes worth another attempt.
const RETRYABLE_CODES: [&str; 4] = [
    "ThrottlingException",
    "OperationTimeoutException",
    "InternalServiceException",
    "ConcurrentModificationException",
];

/// Backoff between attempts: 200 ms doubling to 10 s, with jitter.
pub(super) fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(ITEM_ATTEMPTS)
        .with_jitter()
        .build()
}

/// A per-partition error of a batch call.
#[derive(Debug, Clone)]
pub(super) struct ItemError {
    values: Vec<String>,
    code: String,
    message: String,
}

impl ItemError {
    pub(super) fn new(values: &[String], detail: Option<&g::ErrorDetail>) -> Self {
        ItemError {
            values: values.to_vec(),
            code: detail
                .and_then(|d| d.error_code())
                .unwrap_or("UnknownError")
                .to_string(),
            message: detail
                .and_then(|d| d.error_message())
                .unwrap_or("")
                .to_string(),
        }
    }
}

/// The items of one batch call, sorted by their per-item errors.
pub(super) struct BatchOutcome<T> {
    done: Vec<T>,
    retry: Vec<T>,
    failed: Vec<(T, ItemError)>,
}

/// An item's partition values, for matching it with a per-item error.
pub(super) trait PartitionValues {
    fn values(&self) -> &[String];
}

impl PartitionValues for &PartitionInput {
    fn values(&self) -> &[String] {
        &self.values
    }
}

impl PartitionValues for &Vec<String> {
    fn values(&self) -> &[String] {
        self
    }
}

/// Sorts the items sent in a batch call by the errors Glue returned for them:
/// done (no error), to retry (throttled, timed out, …) or failed with a code. An
/// error for a partition that was not sent fails the call: nothing is assumed done.
pub(super) fn sort_outcome<T: PartitionValues + Copy>(
    op: &str,
    table: &str,
    sent: &[T],
    errors: &[ItemError],
) -> Result<BatchOutcome<T>> {
    if let Some(e) = errors
        .iter()
        .find(|e| !sent.iter().any(|p| p.values() == e.values.as_slice()))
    {
        return Err(Error::Catalog(format!(
            "Glue {op} {table}: an error ({}) for partition {:?}, which was not sent",
            e.code, e.values
        )));
    }
    let mut outcome = BatchOutcome {
        done: Vec::new(),
        retry: Vec::new(),
        failed: Vec::new(),
    };
    for item in sent {
        match errors.iter().find(|e| e.values.as_slice() == item.values()) {
            None => outcome.done.push(*item),
            Some(e) if RETRYABLE_CODES.contains(&e.code.as_str()) => outcome.retry.push(*item),
            Some(e) => outcome.failed.push((*item, e.clone())),
        }
    }
    Ok(outcome)
}

/// Sends `items` in batches of `size` through `call` (which returns the batch's
/// per-item errors), retrying with backoff the items Glue reports as throttled
/// or timed out. `before_call` sees each batch before it is sent: a call may be
/// applied even when it fails. Returns the items that failed otherwise.
pub(super) async fn batched<T, Call, Fut>(
    op: &str,
    table: &str,
    items: &[T],
    size: usize,
    mut before_call: impl FnMut(&[T]),
    mut call: Call,
) -> Result<Vec<(T, ItemError)>>
where
    T: PartitionValues + Copy,
    Call: FnMut(Vec<T>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<ItemError>>>,
{
    let mut failed = Vec::new();
    for chunk in items.chunks(size) {
        let mut pending: Vec<T> = chunk.to_vec();
        let mut delays = backoff();
        while !pending.is_empty() {
            before_call(&pending);
            let errors = call(pending.clone()).await?;
            let outcome = sort_outcome(op, table, &pending, &errors)?;
            failed.extend(outcome.failed);
            pending = outcome.retry;
            if pending.is_empty() {
                break;
            }
            let delay = delays.next().ok_or_else(|| {
                Error::Catalog(format!(
                    "Glue {op} {table}: {} partitions still throttled or timing out after {ITEM_ATTEMPTS} attempts",
                    pending.len()
                ))
            })?;
            warn!(
                table,
                partitions = pending.len(),
                op,
                "Glue throttled partitions; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
    Ok(failed)
}

/// The failed items whose code is `accepted`; any other code fails the call.
pub(super) fn accept_only<T: PartitionValues>(
    op: &str,
    table: &str,
    failed: Vec<(T, ItemError)>,
    accepted: &str,
) -> Result<Vec<T>> {
    failed
        .into_iter()
        .map(|(item, e)| {
            if e.code == accepted {
                Ok(item)
            } else {
                Err(Error::Catalog(format!(
                    "Glue {op} {table} {:?}: {}: {}",
                    e.values, e.code, e.message
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn error(values: &[String], code: &str) -> ItemError {
        ItemError {
            values: values.to_vec(),
            code: code.into(),
            message: String::new(),
        }
    }

    #[test]
    fn batch_errors_sort_items_into_done_retry_and_failed() {
        let a = values(&["a"]);
        let b = values(&["b"]);
        let c = values(&["c"]);
        let d = values(&["d"]);
        let sent: Vec<&Vec<String>> = vec![&a, &b, &c, &d];
        let errors = vec![
            error(&b, "ThrottlingException"),
            error(&c, "AlreadyExistsException"),
            error(&d, "OperationTimeoutException"),
        ];
        let out = sort_outcome("BatchCreatePartition", "t", &sent, &errors).unwrap();
        assert_eq!(out.done, vec![&a]);
        assert_eq!(out.retry, vec![&b, &d]);
        assert_eq!(out.failed.len(), 1);
        assert_eq!(out.failed[0].0, &c);
        assert_eq!(out.failed[0].1.code, "AlreadyExistsException");
        let accepted = accept_only("op", "t", out.failed, "AlreadyExistsException").unwrap();
        assert_eq!(accepted, vec![&c]);
        let refused = accept_only(
            "op",
            "t",
            vec![(&a, error(&a, "AccessDeniedException"))],
            "X",
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("AccessDeniedException")
        );
    }

    #[test]
    fn an_error_for_a_partition_not_sent_fails_the_call() {
        let a = values(&["a"]);
        let z = values(&["z"]);
        let sent: Vec<&Vec<String>> = vec![&a];
        let errors = vec![error(&z, "InternalServiceException")];
        let e = sort_outcome("BatchDeletePartition", "t", &sent, &errors)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("was not sent"), "{e}");
    }
}
