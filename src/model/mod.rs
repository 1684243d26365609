//! What the steps hand each other: plain values (serde types) that a
//! lower step makes and a higher one reads, so that neither needs the other's
//! module. Work items, their fingerprints and per-item counts ([`item`]), what
//! the state keeps of each object, table schema files ([`schema`]), and how a
//! table is written and kept ([`table`]).

pub mod item;
pub mod schema;
pub mod table;

pub use item::{
    Fingerprint, ItemCounts, ObjectState, PartitionRows, SourceListing, TableRows, WorkItem,
};
pub use table::{Compression, KEY_COLUMN, RUNS_TABLE, TableKind, WriteMode, runs_schema};
