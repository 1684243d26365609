//! The run's metrics as CloudWatch Embedded Metric Format records: JSON log lines
//! that CloudWatch Logs turns into metrics with no agent and no API call, so an
//! alarm can fire on "rejects jumped" (deploy/ecs/naslake-ecs.yaml has one).
//!
//! A record is one JSON object: `_aws` (`Timestamp` in epoch milliseconds and
//! `CloudWatchMetrics`: namespace, dimension sets, metric names and units), and
//! every dimension and metric as a top-level member. One record per table
//! written (dimensions `job` and `table`), then the run's (dimension `job`).
//! They carry counts, sizes and names only: no key, no secret.

use serde_json::{Map, Value, json};

use crate::report::{RunReport, RunStatus, Totals};

/// The namespace naslake's metrics are published under.
pub const NAMESPACE: &str = "naslake";

/// The records of one run: one per table written, the run's last.
pub fn records(report: &RunReport, exit_code: i32, timestamp_ms: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for t in &report.tables {
        let metrics = [
            ("RowsWritten", t.rows_written as f64, "Count"),
            ("BytesWritten", t.bytes_written as f64, "Bytes"),
            ("FilesWritten", t.files.len() as f64, "Count"),
        ];
        let dimensions = [("job", report.job.as_str()), ("table", t.table.as_str())];
        out.push(record(&dimensions, &metrics, timestamp_ms));
    }
    out.push(run_record(
        &report.job,
        &report.totals,
        report.duration_seconds,
        exit_code,
        timestamp_ms,
    ));
    if let Some(Value::Object(m)) = out.last_mut() {
        // Not dimensions: properties that CloudWatch Logs Insights can search.
        m.insert("run_id".into(), Value::from(report.run_id.clone()));
        m.insert("status".into(), Value::from(report.status.to_string()));
    }
    out
}

/// The run record of a run that failed before it had a report (a job spec that
/// does not load, a catalog that cannot be reached, a lease another run holds):
/// its exit code, every count zero, so alarms on the run's metrics see it too.
pub fn failed_before_start(job: &str, exit_code: i32, timestamp_ms: i64) -> Value {
    let mut run = run_record(job, &Totals::default(), 0.0, exit_code, timestamp_ms);
    if let Value::Object(m) = &mut run {
        m.insert("status".into(), Value::from(RunStatus::Failed.to_string()));
    }
    run
}

/// The run's record (dimension `job`).
fn run_record(
    job: &str,
    totals: &Totals,
    duration_seconds: f64,
    exit_code: i32,
    timestamp_ms: i64,
) -> Value {
    let metrics = [
        ("RowsIn", totals.records_in as f64, "Count"),
        ("RowsOut", totals.rows_out as f64, "Count"),
        ("RowsRejected", totals.records_rejected as f64, "Count"),
        ("ItemsRejected", totals.files_rejected as f64, "Count"),
        // Rows of the rejects table: rejected records and items rejected whole.
        ("RejectsRows", totals.rejects_rows as f64, "Count"),
        ("BytesRead", totals.bytes_in as f64, "Bytes"),
        ("DurationSeconds", duration_seconds, "Seconds"),
        ("ExitCode", f64::from(exit_code), "None"),
    ];
    record(&[("job", job)], &metrics, timestamp_ms)
}

/// One record: the dimensions (one dimension set of all of them) and metrics.
fn record(dimensions: &[(&str, &str)], metrics: &[(&str, f64, &str)], timestamp_ms: i64) -> Value {
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut m = Map::new();
    m.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": definitions,
            }],
        }),
    );
    for (k, v) in dimensions {
        m.insert((*k).into(), Value::from(*v));
    }
    for (name, value, _) in metrics {
        m.insert((*name).into(), Value::from(*value));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> RunReport {
        RunReport {
            run_id: "r1".into(),
            job: "sensor_readings".into(),
            driver: crate::report::Driver::Run,
            status: RunStatus::SucceededWithRejects,
            error: None,
            warnings: Vec::new(),
            started_at: String::new(),
            finished_at: String::new(),
            duration_seconds: 2.5,
            input: String::new(),
            output: String::new(),
            catalog: String::new(),
            totals: Totals {
                records_in: 10,
                records_rejected: 3,
                rows_out: 7,
                files_rejected: 1,
                bytes_in: 1000,
                ..Default::default()
            },
            sources: Vec::new(),
            tables: Vec::new(),
            incremental: None,
        }
    }

    #[test]
    fn the_run_record_names_every_metric_and_dimension_at_the_top() {
        let r = records(&report(), 3, 1_700_000_000_000);
        assert_eq!(r.len(), 1);
        let rec = &r[0];
        let aws = &rec["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_000i64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "naslake");
        assert_eq!(directive["Dimensions"], json!([["job"]]));
        assert_eq!(rec["job"], "sensor_readings");
        for m in directive["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(rec[name].is_number(), "{name} is not a top-level number");
        }
        assert_eq!(rec["RowsRejected"], 3.0);
        assert_eq!(rec["ItemsRejected"], 1.0);
        assert_eq!(rec["ExitCode"], 3.0);
        assert_eq!(rec["status"], "succeeded_with_rejects");
    }
}
