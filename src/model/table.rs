//! What a table is, as the steps pass it on: how it is written ([`WriteMode`],
//! [`Compression`]), how an incremental run keeps it ([`TableKind`]), and the
//! lineage column that ties its rows to their objects ([`KEY_COLUMN`]).

use serde::{Deserialize, Serialize};

/// The run history's table: `naslake query` reads it from the run reports, and a
/// job that declares a table of this name writes it at each commit.
pub const RUNS_TABLE: &str = "naslake_runs";

/// The run history's schema file, built in: a job declares the table by name alone.
const RUNS_SCHEMA: &str = include_str!("../../schemas/naslake_runs.toml");

/// The run history's columns (`schemas/naslake_runs.toml`).
pub fn runs_schema() -> super::schema::TableSchema {
    super::schema::TableSchema::parse(RUNS_SCHEMA, "schemas/naslake_runs.toml")
        .expect("the built-in schema file parses (tests parse it)")
}

/// The key column every row of a table kept per object carries: the object key
/// (relative to the job's input) the row came from.
pub const KEY_COLUMN: &str = "source_key";

/// How an incremental run keeps a table up to date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// Each row comes from one object (its `source_key`): the rows of changed and
    /// deleted objects are replaced in the partitions that hold them.
    #[default]
    Objects,
    /// Computed over whole tables (aggregates, windows, joins): recomputed in full
    /// when anything it reads changed.
    Derived,
}

/// What a run's output does to the table's earlier files (`tables.NAME.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// The run's output replaces the whole table.
    #[default]
    Overwrite,
    /// The run's output replaces the partitions it writes; others are kept.
    OverwritePartitions,
    /// The run's output is added to the table.
    Append,
}

impl WriteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Overwrite => "overwrite",
            WriteMode::OverwritePartitions => "overwrite-partitions",
            WriteMode::Append => "append",
        }
    }
}

/// The Parquet files' compression (`tables.NAME.compression`); the catalog
/// entry names it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
        }
    }
}
