//! naslake: a batch processor that turns files on NAS volumes (FSx for NetApp ONTAP,
//! read through S3 access points) and in S3 buckets into typed, partitioned Parquet
//! tables registered for Athena.
//!
//! A job is five steps (DESIGN.md), each one module: [`discover`] finds the work
//! items, [`sources`] extract them to Arrow, [`transform`] runs the job's SQL,
//! [`write`] writes Parquet, and [`commit`] registers the result in the
//! [`catalog`]. [`job`] says what to do, [`runner`] drives the steps and writes the
//! [`report`]; [`storage`] turns addresses into object stores.

pub mod catalog;
pub mod cli;
pub mod commit;
pub mod discover;
pub mod error;
pub mod faults;
pub mod files_table;
pub mod job;
pub mod logging;
pub mod panics;
pub mod query;
pub mod report;
pub mod runner;
pub mod schema;
pub mod sources;
pub mod storage;
pub mod sync;
pub mod transform;
pub mod write;
