//! naslake: a batch processor that turns files on NAS volumes (FSx for NetApp ONTAP,
//! read through S3 access points) and in S3 buckets into typed, partitioned Parquet
//! tables registered for Athena.
//!
//! A job is five steps, each one module: [`discover`] finds the work items,
//! [`sources`] extract them to Arrow, [`transform`] runs the job's SQL, [`write`]
//! writes Parquet, and [`commit`] registers the result in the [`catalog`]. [`job`]
//! says what to do; [`exec`] is the run protocol over those steps (plan, work,
//! finish, commit), and [`drive`] runs it in one process (`naslake run`) or in
//! sharded steps (`plan`, `work`, `commit`), writing the [`report`]; [`storage`]
//! turns addresses into object stores. Modules use only the ones below them
//! (`tests/layers.rs` keeps the graph free of circles).

pub mod catalog;
pub mod cli;
pub mod commit;
pub mod discover;
pub mod drive;
pub mod error;
pub mod exec;
pub mod faults;
pub mod files_table;
pub mod job;
pub mod logging;
pub mod panics;
pub mod query;
pub mod report;
pub mod schema;
pub mod sources;
pub mod storage;
pub mod sync;
pub mod transform;
pub mod write;
