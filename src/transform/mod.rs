//! The transform step: the job's SQL over its sources, in the DataFusion session
//! every command uses: our functions registered, settings that keep plain Utf8
//! strings (Athena-safe) all the way to the files, and a memory limit for the
//! operators that hold data (hash joins, aggregates, sorts).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::compute::can_cast_types;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, execute_stream, execute_stream_partitioned,
};
use datafusion::prelude::{SessionConfig, SessionContext};

pub mod files_table;
pub mod lineage;

use crate::base::error::{Error, Result};
use crate::job::{Job, JobTable};
use datafusion::execution::object_store::ObjectStoreUrl;
use files_table::FilesTable;

/// Memory the query engine's buffering operators may hold unless
/// `NASLAKE_MEMORY_LIMIT` says otherwise. Streaming work (CSV extraction, writing)
/// stays far below it; a plan that would buffer a whole table fails with a clear
/// "resources exhausted" error (aggregates and sorts spill first) instead of being
/// killed for running out of memory.
const DEFAULT_MEMORY_LIMIT: u64 = 2 << 30;

/// Parallelism of the session: one partition per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The engine memory limit: `NASLAKE_MEMORY_LIMIT` (e.g. `4 GiB`) or the default.
pub fn memory_limit() -> Result<u64> {
    match std::env::var("NASLAKE_MEMORY_LIMIT") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| Error::config(format!("NASLAKE_MEMORY_LIMIT={v}: {e} (e.g. 4 GiB)"))),
        _ => Ok(DEFAULT_MEMORY_LIMIT),
    }
}

pub fn session() -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_target_partitions(cores())
        .with_information_schema(true);
    let opts = config.options_mut();
    // View types must not reach a file's Arrow schema: some readers reject them.
    opts.sql_parser.map_string_types_to_utf8view = false;
    opts.execution.parquet.schema_force_view_types = false;
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(memory_limit()? as usize, 1.0)
        .build_arc()?;
    let ctx = SessionContext::new_with_config_rt(config, runtime);
    naslake_udfs::register_all(&ctx);
    Ok(ctx)
}

/// Plans every table's SQL against its sources' columns and the earlier tables'
/// (all empty), so a SQL file that does not plan, or returns other columns than
/// its schema file, fails before any work. Returns what each SQL table reads
/// and how an incremental run keeps it ([`lineage`]).
pub async fn check_job_sql(job: &Job) -> Result<HashMap<String, lineage::Lineage>> {
    let ctx = session()?;
    let sources: HashSet<String> = job.sources.iter().map(|s| s.name().to_string()).collect();
    for source in &job.sources {
        let empty = datafusion::datasource::MemTable::try_new(source.schema(), vec![vec![]])?;
        ctx.register_table(source.name(), Arc::new(empty))?;
        // Planned over empty tables of their columns: nothing is read or asked.
        let relations = source
            .relations(None)
            .into_iter()
            .map(|r| {
                let empty =
                    datafusion::datasource::MemTable::try_new(r.table.schema(), vec![vec![]])?;
                Ok(crate::sources::Relation {
                    name: r.name,
                    table: Arc::new(empty) as _,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        register_relations(&ctx, source.name(), relations)?;
    }
    let mut lineages = HashMap::new();
    for table in job.tables.iter().filter(|t| t.sql.is_some()) {
        plan_table(&ctx, table).await?;
        let sql = table.sql.as_deref().unwrap_or_default();
        let logical = ctx.sql(sql).await?.logical_plan().clone();
        let has_key = table
            .schema
            .columns
            .iter()
            .any(|c| c.name == crate::model::KEY_COLUMN);
        lineages.insert(
            table.name.clone(),
            lineage::analyse(&logical, &sources, has_key),
        );
        let written = FilesTable::new(
            table.schema.file_schema(),
            &table.schema.partition_key_names(),
            ObjectStoreUrl::local_filesystem(),
            Vec::new(),
        );
        ctx.register_table(table.name.as_str(), Arc::new(written))?;
    }
    Ok(lineages)
}

/// Registers a source's relations as `SOURCE.NAME` (a schema named after the
/// source in the session's catalog).
pub fn register_relations(
    ctx: &SessionContext,
    source: &str,
    relations: Vec<crate::sources::Relation>,
) -> Result<()> {
    if relations.is_empty() {
        return Ok(());
    }
    let schema = Arc::new(datafusion::catalog::MemorySchemaProvider::new());
    for r in relations {
        datafusion::catalog::SchemaProvider::register_table(&*schema, r.name.to_string(), r.table)?;
    }
    let catalog_name = ctx
        .state()
        .config()
        .options()
        .catalog
        .default_catalog
        .clone();
    let catalog = ctx
        .catalog(&catalog_name)
        .ok_or_else(|| Error::Accounting(format!("the session has no catalog {catalog_name}")))?;
    catalog.register_schema(source, schema)?;
    Ok(())
}

/// The physical plan of a table's SQL; errors name the table.
pub async fn plan_table(ctx: &SessionContext, table: &JobTable) -> Result<Arc<dyn ExecutionPlan>> {
    let sql = table
        .sql
        .as_deref()
        .ok_or_else(|| Error::Accounting(format!("table {} has no SQL", table.name)))?;
    let df = ctx
        .sql(sql)
        .await
        .map_err(|e| Error::config(format!("table {}: SQL: {e}", table.name)))?;
    let plan = df
        .create_physical_plan()
        .await
        .map_err(|e| Error::config(format!("table {}: SQL: {e}", table.name)))?;
    check_output(table, &plan.schema())?;
    Ok(plan)
}

/// The SQL's output must have the schema file's columns, in order (file columns,
/// then partition keys), with types that cast to the declared ones.
pub fn check_output(table: &JobTable, got: &SchemaRef) -> Result<()> {
    let want = table.schema.table_schema();
    let nfile = table.schema.columns.len();
    check_column_names(&table.name, got, &want)?;
    for (i, (g, w)) in got.fields().iter().zip(want.fields()).enumerate() {
        let target = if i >= nfile {
            &DataType::Utf8
        } else {
            w.data_type()
        };
        if g.data_type() != target && !can_cast_types(g.data_type(), target) {
            return Err(Error::config(format!(
                "table {}: column {} is {} in the SQL output and cannot become {}",
                table.name,
                g.name(),
                g.data_type(),
                target
            )));
        }
    }
    Ok(())
}

/// The SQL returns the columns its schema file declares, by name and in order.
pub fn check_column_names(table: &str, got: &Schema, want: &Schema) -> Result<()> {
    let names_match = got.fields().len() == want.fields().len()
        && got
            .fields()
            .iter()
            .zip(want.fields())
            .all(|(g, w)| g.name() == w.name());
    if names_match {
        return Ok(());
    }
    let g: Vec<&str> = got.fields().iter().map(|f| f.name().as_str()).collect();
    let w: Vec<&str> = want.fields().iter().map(|f| f.name().as_str()).collect();
    Err(Error::config(format!(
        "table {table}: the SQL returns columns [{}] but the schema file declares [{}] (file columns, then partition keys)",
        g.join(", "),
        w.join(", ")
    )))
}

/// The plan's output as `writers` streams: with one writer, one stream (which
/// keeps one file per partition directory); with more, the plan's partitions
/// dealt round-robin.
pub fn output_streams(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &SessionContext,
    writers: usize,
) -> Result<Vec<SendableRecordBatchStream>> {
    let task = ctx.task_ctx();
    if writers <= 1 {
        return Ok(vec![execute_stream(plan, task)?]);
    }
    let mut buckets: Vec<Vec<SendableRecordBatchStream>> =
        (0..writers).map(|_| Vec::new()).collect();
    for (i, s) in execute_stream_partitioned(plan, task)?
        .into_iter()
        .enumerate()
    {
        buckets[i % writers].push(s);
    }
    Ok(buckets
        .into_iter()
        .filter(|b| !b.is_empty())
        .map(|b| -> SendableRecordBatchStream {
            let schema = b[0].schema();
            Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::select_all(b),
            ))
        })
        .collect())
}

/// How many streams a plan is written with: one per core for big inputs, else one.
pub fn writers_for(input_bytes: u64, plan: &Arc<dyn ExecutionPlan>) -> usize {
    let partitions = plan.output_partitioning().partition_count();
    let wanted = (input_bytes / bytes_per_writer()).max(1) as usize;
    wanted.min(cores()).min(partitions.max(1))
}

/// Input bytes per extra writer: encoding Parquet costs as much as parsing, so
/// big runs write with one writer per core (each partition of the plan feeds one).
pub const BYTES_PER_WRITER: u64 = 256 << 20;

/// [`BYTES_PER_WRITER`], or `NASLAKE_BYTES_PER_WRITER` when set (the tests use
/// it to write small inputs with several writers).
pub fn bytes_per_writer() -> u64 {
    let Ok(set) = std::env::var("NASLAKE_BYTES_PER_WRITER") else {
        return BYTES_PER_WRITER;
    };
    match set.parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            tracing::warn!(value = %set, "NASLAKE_BYTES_PER_WRITER is not a positive number of bytes; using 256 MiB");
            BYTES_PER_WRITER
        }
    }
}
