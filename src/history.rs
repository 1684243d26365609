//! Run history: the run reports under `OUTPUT/_naslake/runs/`, newest first, one
//! row each (`naslake runs`, and the `naslake_runs` table of `naslake query`).
//! Reports are read as JSON values, so reports of older naslake versions (without
//! a field a newer one added) still give a row.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{Field, Schema};
use object_store::ObjectStoreExt;
use serde_json::Value;

use crate::base::error::{Error, Result};
use crate::storage::Location;

/// One run, as the history lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub run_id: String,
    pub job: String,
    /// `run` (one process) or `sharded`.
    pub driver: String,
    /// `full` or `incremental` (`dry_run` reports are not kept).
    pub basis: String,
    pub status: String,
    pub started_at: String,
    pub duration_seconds: f64,
    pub items_in: u64,
    pub items_rejected: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_rejected: u64,
    /// Tables whose catalog entry the run changed.
    pub tables_changed: u64,
}

impl RunRow {
    /// The row of a report (a JSON document).
    pub fn of(report: &Value) -> RunRow {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let count = |name: &str| report["totals"][name].as_u64().unwrap_or(0);
        let changed = report["tables"].as_array().map_or(0, |t| {
            t.iter()
                .filter(|t| t["location"].as_str().is_some_and(|l| !l.is_empty()))
                .count()
        });
        RunRow {
            run_id: text(&report["run_id"]),
            job: text(&report["job"]),
            driver: report["driver"].as_str().unwrap_or("run").to_string(),
            basis: report["incremental"]["basis"]
                .as_str()
                .unwrap_or("full")
                .to_string(),
            status: text(&report["status"]),
            started_at: text(&report["started_at"]),
            duration_seconds: report["duration_seconds"].as_f64().unwrap_or(0.0),
            items_in: count("files_seen"),
            items_rejected: count("files_rejected"),
            rows_in: count("records_in"),
            rows_out: count("rows_out"),
            rows_rejected: count("records_rejected"),
            tables_changed: changed as u64,
        }
    }
}

/// The run ids that have a report, newest first (run ids are ULIDs, which sort
/// by time).
async fn run_ids(output: &Location) -> Result<Vec<String>> {
    let mut ids = output.json_names(&output.child("_naslake/runs")).await?;
    ids.reverse();
    Ok(ids)
}

/// A run's report as stored.
pub async fn report(output: &Location, run_id: &str) -> Result<Value> {
    if run_id.contains('/') {
        return Err(Error::config(format!("`{run_id}` is not a run id")));
    }
    let path = output.child(&format!("_naslake/runs/{run_id}.json"));
    let bytes = match output.store.get(&path).await {
        Ok(found) => found.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::config(format!(
                "no report of run {run_id} in {}",
                output.display
            )));
        }
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::State(format!(
            "{} is not a readable report: {e}",
            output.url_of(&path)
        ))
    })
}

/// The runs of `output`, newest first: of job `job` only, if given, and at most
/// `last` of them. Only the reports listed are read, newest first, until `last`
/// match.
pub async fn list(
    output: &Location,
    job: Option<&str>,
    last: Option<usize>,
) -> Result<Vec<RunRow>> {
    let mut rows = Vec::new();
    for id in run_ids(output).await? {
        if last.is_some_and(|n| rows.len() >= n) {
            break;
        }
        let row = RunRow::of(&report(output, &id).await?);
        if job.is_none_or(|j| row.job == j) {
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The rows as one Arrow batch (the `naslake_runs` table's columns).
pub fn to_batch(rows: &[RunRow]) -> Result<RecordBatch> {
    let text = |f: fn(&RunRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let count = |f: fn(&RunRow) -> u64| -> ArrayRef {
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(f)))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("run_id", text(|r| &r.run_id)),
        ("job", text(|r| &r.job)),
        ("driver", text(|r| &r.driver)),
        ("basis", text(|r| &r.basis)),
        ("status", text(|r| &r.status)),
        ("started_at", text(|r| &r.started_at)),
        (
            "duration_seconds",
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.duration_seconds),
            )),
        ),
        ("items_in", count(|r| r.items_in)),
        ("items_rejected", count(|r| r.items_rejected)),
        ("rows_in", count(|r| r.rows_in)),
        ("rows_out", count(|r| r.rows_out)),
        ("rows_rejected", count(|r| r.rows_rejected)),
        ("tables_changed", count(|r| r.tables_changed)),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    );
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    Ok(RecordBatch::try_new(Arc::new(schema), arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_comes_from_any_report_old_or_new() {
        let new = json!({
            "run_id": "r2", "job": "j", "driver": "sharded", "status": "succeeded",
            "started_at": "t", "duration_seconds": 1.5,
            "totals": {"files_seen": 3, "files_rejected": 1, "records_in": 10, "rows_out": 9, "records_rejected": 1},
            "tables": [{"location": "s3://b/t/"}, {"location": ""}],
            "incremental": {"basis": "incremental"}
        });
        let r = RunRow::of(&new);
        assert_eq!(
            (r.driver.as_str(), r.basis.as_str(), r.tables_changed),
            ("sharded", "incremental", 1)
        );
        assert_eq!(
            (
                r.items_in,
                r.items_rejected,
                r.rows_in,
                r.rows_out,
                r.rows_rejected
            ),
            (3, 1, 10, 9, 1)
        );
        // A report of an older naslake: no driver, no incremental section.
        let old = json!({"run_id": "r1", "job": "j", "status": "failed", "totals": {}});
        let r = RunRow::of(&old);
        assert_eq!(
            (r.driver.as_str(), r.basis.as_str(), r.rows_in),
            ("run", "full", 0)
        );
        let batch = to_batch(&[RunRow::of(&new), r]).unwrap();
        assert_eq!((batch.num_rows(), batch.num_columns()), (2, 13));
    }
}
