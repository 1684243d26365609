//! naslake: a batch processor that turns files on NAS volumes (FSx for NetApp ONTAP,
//! read through S3 access points) and in S3 buckets into typed, partitioned Parquet
//! tables registered for Athena.
//!
//! A job is five steps, each one module: [`discover`] finds the work items,
//! [`sources`] extract them to Arrow, [`transform`] runs the job's SQL, [`write`]
//! writes Parquet, and [`commit`] registers the result in the [`catalog`]. [`job`]
//! says what to do. [`exec`] is the run protocol over those steps (plan, work,
//! finish, commit), and [`drive`] runs it in one process (`naslake run`) or in
//! sharded steps (`plan`, `work`, `commit`), writing the [`report`]; [`storage`]
//! turns addresses into object stores. What the steps hand each other is in the
//! [`model`]; what they all use is in the [`base`].
//!
//! The modules are layers without circles; bottom up: base, storage, model,
//! discover, sources, job (which holds its configured sources), transform,
//! write, catalog, commit, report (the run report's types) and metrics (its
//! CloudWatch records), exec, drive, then history (past runs' reports), query
//! and cli. `tests/layers.rs` fails on any circle.

pub mod base;
pub mod catalog;
pub mod cli;
pub mod commit;
pub mod discover;
pub mod drive;
pub mod exec;
pub mod history;
pub mod job;
pub mod metrics;
pub mod model;
pub mod query;
pub mod report;
pub mod sources;
pub mod storage;
pub mod transform;
pub mod write;
