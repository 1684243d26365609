//! DataFusion's own CSV → Parquet `COPY`, the second reference of scripts/bench-csv:
//! the same DataFusion (and arrow, parquet) naslake is built on, the benchmark's
//! column types, snappy, and none of naslake's work around it (no validation of
//! each row against its declared type with a reason, no rejects, no lineage
//! columns, no partitions).
//!
//!   cargo run --example datafusion_copy -- SRC.csv DST.parquet

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{CsvReadOptions, SessionContext};

#[tokio::main]
async fn main() -> datafusion::error::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, src, dst] = args.as_slice() else {
        eprintln!("usage: datafusion_copy SRC.csv DST.parquet");
        std::process::exit(2);
    };
    let schema = Schema::new(vec![
        Field::new("sensor_id", DataType::Utf8, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
            false,
        ),
        Field::new("value", DataType::Float64, false),
        Field::new("metric_name", DataType::Utf8, false),
        Field::new("unit", DataType::Utf8, true),
    ]);
    let ctx = SessionContext::new();
    ctx.register_csv("sensors", src, CsvReadOptions::new().schema(&schema))
        .await?;
    ctx.sql(&format!(
        "COPY sensors TO '{dst}' STORED AS PARQUET OPTIONS ('format.compression' 'snappy')"
    ))
    .await?
    .collect()
    .await?;
    Ok(())
}
