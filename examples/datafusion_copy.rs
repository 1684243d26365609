//! DataFusion's own CSV → Parquet `COPY`, the second reference of scripts/bench-csv:
//! the same DataFusion (and arrow, parquet) naslake is built on, the benchmark's
//! column types, snappy, and none of naslake's work around it (no validation of
//! each row against its declared type with a reason, no rejects, no lineage
//! columns, no partitions).
//!
//!   cargo run --example datafusion_copy -- SRC.csv DST.parquet
//!
//! With `partitioned` after them, DST is a directory and the rows go to it as
//! naslake's do, partitioned by their UTC day (`dt=YYYY-MM-DD/`): DataFusion's
//! own hive-partitioned write, for input whose order scatters the days.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::prelude::{CsvReadOptions, SessionContext};

#[tokio::main]
async fn main() -> datafusion::error::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (src, dst, partitioned) = match args.as_slice() {
        [_, src, dst] => (src, dst, false),
        [_, src, dst, p] if p == "partitioned" => (src, dst, true),
        _ => {
            eprintln!("usage: datafusion_copy SRC.csv DST.parquet | SRC.csv DST_DIR partitioned");
            std::process::exit(2);
        }
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
    let statement = if partitioned {
        let dst = dst.trim_end_matches('/');
        format!(
            "COPY (SELECT *, CAST(\"timestamp\" AS DATE) AS dt FROM sensors) TO '{dst}/' \
             STORED AS PARQUET PARTITIONED BY (dt) OPTIONS ('format.compression' 'snappy')"
        )
    } else {
        format!("COPY sensors TO '{dst}' STORED AS PARQUET OPTIONS ('format.compression' 'snappy')")
    };
    ctx.sql(&statement).await?.collect().await?;
    Ok(())
}
