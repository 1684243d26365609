//! The DataFusion session every command uses: our functions registered, settings
//! that keep plain Utf8 strings (Athena-safe) all the way to the files, and a memory
//! limit for the operators that hold data (hash joins, aggregates, sorts).

use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};

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
