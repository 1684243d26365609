//! Run history: the run reports under `OUTPUT/_naslake/runs/`, newest first, one
//! row each (`naslake runs`, the `naslake_runs` table of `naslake query`, and the
//! Parquet table a job that declares `[tables.naslake_runs]` writes), with the
//! columns of `schemas/naslake_runs.toml`.
//! Only the fields a row needs are parsed, each optional, so reports of older
//! naslake versions (without a field a newer one added) still give a row.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Deserialize;

use crate::base::error::{Error, Result};
use crate::storage::Location;

/// The name `naslake query` gives the history.
pub const TABLE: &str = crate::model::RUNS_TABLE;

/// Reports read at once when the whole history is listed (a report lists every
/// item of its run, so this bounds what is held at once).
const READ_AHEAD: usize = 4;

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
    /// The row of a report (its JSON text). Only the fields a row needs are
    /// parsed into values: a report's per-item list is skipped over.
    pub fn of(report: &[u8]) -> serde_json::Result<RunRow> {
        let r: Summary = serde_json::from_slice(report)?;
        Ok(RunRow {
            run_id: r.run_id,
            job: r.job,
            driver: r.driver.unwrap_or_else(|| "run".into()),
            basis: r.incremental.map_or_else(|| "full".into(), |i| i.basis),
            status: r.status,
            started_at: r.started_at,
            duration_seconds: r.duration_seconds,
            items_in: r.totals.files_seen,
            items_rejected: r.totals.files_rejected,
            rows_in: r.totals.records_in,
            rows_out: r.totals.rows_out,
            rows_rejected: r.totals.records_rejected,
            tables_changed: r.tables.iter().filter(|t| !t.location.is_empty()).count() as u64,
        })
    }
}

/// What a row takes of a report; every field may be missing (older reports).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Summary {
    run_id: String,
    job: String,
    driver: Option<String>,
    status: String,
    started_at: String,
    duration_seconds: f64,
    totals: SummaryTotals,
    tables: Vec<SummaryTable>,
    incremental: Option<SummaryBasis>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SummaryTotals {
    files_seen: u64,
    files_rejected: u64,
    records_in: u64,
    rows_out: u64,
    records_rejected: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SummaryTable {
    location: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SummaryBasis {
    basis: String,
}

/// The run ids that have a report, newest first (run ids are ULIDs, which sort
/// by time).
pub async fn run_ids(output: &Location) -> Result<Vec<String>> {
    let mut ids = output.json_names(&output.child("_naslake/runs")).await?;
    ids.reverse();
    Ok(ids)
}

/// A run's report as stored (`None`: there is none). A run id is a lowercase
/// ULID; anything else names no report.
async fn read_report(output: &Location, run_id: &str) -> Result<Option<bytes::Bytes>> {
    if ulid::Ulid::from_string(run_id).is_err() {
        return Ok(None);
    }
    let path = output.child(&format!("_naslake/runs/{}.json", run_id.to_lowercase()));
    match output.store.get(&path).await {
        Ok(found) => Ok(Some(found.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A run's report as stored, with anything that looks like a secret scrubbed.
pub async fn report(output: &Location, run_id: &str) -> Result<String> {
    match read_report(output, run_id).await? {
        Some(bytes) => Ok(crate::base::redact::scrub(&indented(&bytes)).into_owned()),
        None => Err(Error::config(format!(
            "no report of run {run_id} in {}",
            output.display
        ))),
    }
}

/// A report (a stored one, or a dry run's) indented for reading, as
/// serde_json's pretty printer lays it out (a test holds the two equal), every
/// token as given: its numbers are not parsed again, which without serde_json's
/// `float_roundtrip` could print a duration one digit off. One that is not JSON
/// is shown as it is.
pub fn indented(bytes: &[u8]) -> String {
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let compact = without_whitespace(bytes);
    let mut out = Vec::with_capacity(compact.len() * 2);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.resize(out.len() + 2 * depth, b' ');
    };
    let mut depth = 0usize;
    let mut json = JsonBytes::new(&compact);
    while let Some((b, in_string)) = json.next() {
        if in_string {
            out.push(b);
            continue;
        }
        match b {
            b'{' | b'[' => {
                out.push(b);
                let close = if b == b'{' { b'}' } else { b']' };
                if compact.get(json.at) == Some(&close) {
                    // Empty: `{}` and `[]` on one line.
                    json.at += 1;
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// JSON without the whitespace between its tokens (an older report was stored
/// indented).
fn without_whitespace(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (b, in_string) in JsonBytes::new(bytes) {
        if in_string || !b.is_ascii_whitespace() {
            out.push(b);
        }
    }
    out
}

/// The bytes of JSON text, each told as inside a string (its quotes included)
/// or not.
struct JsonBytes<'a> {
    bytes: &'a [u8],
    at: usize,
    in_string: bool,
    escaped: bool,
}

impl<'a> JsonBytes<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        JsonBytes {
            bytes,
            at: 0,
            in_string: false,
            escaped: false,
        }
    }
}

impl Iterator for JsonBytes<'_> {
    type Item = (u8, bool);

    fn next(&mut self) -> Option<(u8, bool)> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return Some((b, true));
        }
        if b == b'"' {
            self.in_string = true;
            return Some((b, true));
        }
        Some((b, false))
    }
}

/// The runs of `output`, newest first: of job `job` only, if given, and at most
/// `last` of them. Only the reports listed are read, newest first, a few at a
/// time, until `last` match.
pub async fn list(
    output: &Location,
    job: Option<&str>,
    last: Option<usize>,
) -> Result<Vec<RunRow>> {
    let ids = run_ids(output).await?;
    let ahead = last.map_or(READ_AHEAD, |n| n.clamp(1, READ_AHEAD));
    Ok(rows_of_reports(output, ids, job, last, ahead).await)
}

/// The rows of the reports of `ids`, in that order, read one at a time (the
/// commit's path: it holds one report at a time).
pub async fn rows_of(output: &Location, ids: Vec<String>) -> Vec<RunRow> {
    rows_of_reports(output, ids, None, None, 1).await
}

/// The rows of the reports of `ids`, in that order, `ahead` read at once: of
/// job `job` only, if given, and at most `last` of them.
async fn rows_of_reports(
    output: &Location,
    ids: Vec<String>,
    job: Option<&str>,
    last: Option<usize>,
    ahead: usize,
) -> Vec<RunRow> {
    let mut rows_read = futures::stream::iter(ids)
        .map(|id| async move { row_of(output, &id).await })
        .buffered(ahead);
    let mut rows = Vec::new();
    while let Some(row) = rows_read.next().await {
        if last.is_some_and(|n| rows.len() >= n) {
            break;
        }
        if let Some(row) = row
            && job.is_none_or(|j| row.job == j)
        {
            rows.push(row);
        }
    }
    rows
}

/// The row of run `id`'s report: `None` when it has none (removed since the
/// listing), or when it cannot be read or parsed, which is said in a warning and
/// leaves the rest of the history listed (no run's data is at stake).
async fn row_of(output: &Location, id: &str) -> Option<RunRow> {
    let row = match read_report(output, id).await {
        Ok(Some(bytes)) => RunRow::of(&bytes).map_err(|e| e.to_string()),
        Ok(None) => return None,
        Err(e) => Err(e.to_string()),
    };
    row.map_err(|e| {
        tracing::warn!(run_id = %id, error = %e, "a run report that cannot be read is left out");
    })
    .ok()
}

/// The rows of a batch of the history's schema (the history table as written).
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<RunRow>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::State(format!("the {TABLE} table has no column {name}")))
    };
    let text = |name: &str| -> Result<Vec<String>> {
        let a = column(name)?;
        let a = a.as_string_opt::<i32>().ok_or_else(|| {
            Error::State(format!("the {TABLE} table's column {name} is not a string"))
        })?;
        Ok((0..a.len()).map(|i| a.value(i).to_string()).collect())
    };
    let count = |name: &str| -> Result<Vec<u64>> {
        let a = column(name)?;
        let a = a.as_primitive_opt::<Int64Type>().ok_or_else(|| {
            Error::State(format!("the {TABLE} table's column {name} is not a bigint"))
        })?;
        Ok(a.values()
            .iter()
            .map(|v| u64::try_from(*v).unwrap_or(0))
            .collect())
    };
    let started = column("started_at")?;
    let started = started
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| {
            Error::State(format!("the {TABLE} table's started_at is not a timestamp"))
        })?;
    let duration = column("duration_seconds")?;
    let duration = duration.as_primitive_opt::<Float64Type>().ok_or_else(|| {
        Error::State(format!(
            "the {TABLE} table's duration_seconds is not a double"
        ))
    })?;
    let (run_id, job, driver, basis, status) = (
        text("run_id")?,
        text("job")?,
        text("driver")?,
        text("basis")?,
        text("status")?,
    );
    let (items_in, items_rejected, rows_in, rows_out, rows_rejected, tables_changed) = (
        count("items_in")?,
        count("items_rejected")?,
        count("rows_in")?,
        count("rows_out")?,
        count("rows_rejected")?,
        count("tables_changed")?,
    );
    Ok((0..batch.num_rows())
        .map(|i| RunRow {
            run_id: run_id[i].clone(),
            job: job[i].clone(),
            driver: driver[i].clone(),
            basis: basis[i].clone(),
            status: status[i].clone(),
            started_at: if started.is_null(i) {
                String::new()
            } else {
                chrono::DateTime::from_timestamp_micros(started.value(i))
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            },
            duration_seconds: duration.value(i),
            items_in: items_in[i],
            items_rejected: items_rejected[i],
            rows_in: rows_in[i],
            rows_out: rows_out[i],
            rows_rejected: rows_rejected[i],
            tables_changed: tables_changed[i],
        })
        .collect())
}

/// The rows as one Arrow batch of the history's schema.
pub fn to_batch(rows: &[RunRow]) -> Result<RecordBatch> {
    let schema = crate::model::runs_schema();
    let text = |f: fn(&RunRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let count = |f: fn(&RunRow) -> u64| -> ArrayRef {
        // Athena has no unsigned integers; a count beyond i64 saturates.
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| i64::try_from(f(r)).unwrap_or(i64::MAX)),
        ))
    };
    let started: ArrayRef = Arc::new(
        rows.iter()
            .map(|r| {
                chrono::DateTime::parse_from_rfc3339(&r.started_at)
                    .ok()
                    .map(|t| t.timestamp_micros())
            })
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    );
    let mut arrays = Vec::new();
    for column in &schema.columns {
        arrays.push(match column.name.as_str() {
            "run_id" => text(|r| &r.run_id),
            "job" => text(|r| &r.job),
            "driver" => text(|r| &r.driver),
            "basis" => text(|r| &r.basis),
            "status" => text(|r| &r.status),
            "started_at" => started.clone(),
            "duration_seconds" => Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.duration_seconds),
            )),
            "items_in" => count(|r| r.items_in),
            "items_rejected" => count(|r| r.items_rejected),
            "rows_in" => count(|r| r.rows_in),
            "rows_out" => count(|r| r.rows_out),
            "rows_rejected" => count(|r| r.rows_rejected),
            "tables_changed" => count(|r| r.tables_changed),
            other => {
                return Err(Error::config(format!(
                    "schemas/naslake_runs.toml names a column the history does not fill: {other}"
                )));
            }
        });
    }
    Ok(RecordBatch::try_new(schema.file_schema(), arrays)?)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            // Quotes, backslashes, braces, colons, commas, controls, any text.
            "[\"\\\\{}\\[\\]:, \\n\\t\\x00-\\x1fa-zé€😀]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"\\\\:,{]{0,6}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Stored on one line or indented (an older report), a report is shown
        /// as serde_json's pretty printer writes it.
        #[test]
        fn reports_are_indented_as_serde_json_indents_them(value in json()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            prop_assert_eq!(super::indented(&serde_json::to_vec(&value).unwrap()), pretty.clone());
            prop_assert_eq!(super::indented(pretty.as_bytes()), pretty);
        }
    }

    #[test]
    fn numbers_are_shown_as_stored_and_what_is_not_json_as_it_is() {
        let stored = br#"{"duration_seconds":2.3876825090000002,"n":[1e-7,-0.0]}"#;
        assert_eq!(
            super::indented(stored),
            "{\n  \"duration_seconds\": 2.3876825090000002,\n  \"n\": [\n    1e-7,\n    -0.0\n  ]\n}"
        );
        assert_eq!(super::indented(b"{not json"), "{not json");
        assert_eq!(super::indented(b"{\"a\":1} trailing"), "{\"a\":1} trailing");
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_comes_from_any_report_old_or_new() {
        let new = json!({
            "run_id": "r2", "job": "j", "driver": "sharded", "status": "succeeded",
            "started_at": "2026-12-05T03:01:28.5+00:00", "duration_seconds": 1.5,
            "totals": {"files_seen": 3, "files_rejected": 1, "records_in": 10, "rows_out": 9, "records_rejected": 1},
            "tables": [{"location": "s3://b/t/"}, {"location": ""}],
            "incremental": {"basis": "incremental"}
        });
        let r = RunRow::of(new.to_string().as_bytes()).unwrap();
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
        let r = RunRow::of(old.to_string().as_bytes()).unwrap();
        assert_eq!(
            (r.driver.as_str(), r.basis.as_str(), r.rows_in),
            ("run", "full", 0)
        );
        let batch = to_batch(&[RunRow::of(new.to_string().as_bytes()).unwrap(), r]).unwrap();
        assert!(RunRow::of(b"{not json").is_err());
        assert_eq!((batch.num_rows(), batch.num_columns()), (2, 13));
        assert_eq!(batch.schema(), crate::model::runs_schema().file_schema());
        // Read back, the rows are the same (the time as the table holds it).
        let back = from_batch(&batch).unwrap();
        assert_eq!(back[0].started_at, "2026-12-05T03:01:28.500+00:00");
        assert_eq!(
            (
                back[1].run_id.as_str(),
                back[1].rows_in,
                back[1].started_at.as_str()
            ),
            ("r1", 0, "")
        );
    }
}
