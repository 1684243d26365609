//! The DataFusion session every command uses: our functions registered, and
//! settings that keep plain Utf8 strings (Athena-safe) all the way to the files.

use datafusion::prelude::{SessionConfig, SessionContext};

/// Parallelism of the session: one partition per core.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

pub fn session() -> SessionContext {
    let mut config = SessionConfig::new()
        .with_target_partitions(cores())
        .with_information_schema(true);
    let opts = config.options_mut();
    // View types must not reach a file's Arrow schema: some readers reject them.
    opts.sql_parser.map_string_types_to_utf8view = false;
    opts.execution.parquet.schema_force_view_types = false;
    let ctx = SessionContext::new_with_config(config);
    naslake_udfs::register_all(&ctx);
    ctx
}
