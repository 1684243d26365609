//! naslake: a batch processor that turns files on NAS volumes (FSx for NetApp ONTAP,
//! read through S3 access points) and in S3 buckets into typed, partitioned Parquet
//! tables registered for Athena.
//!
//! A job is five steps (DESIGN.md): [`discover`] lists the inputs, [`sources`]
//! extract them to Arrow, [`engine`] runs the job's SQL, [`sink`] writes Parquet, and
//! [`commit`] registers the result in the [`catalog`]; [`runner`] drives the steps
//! and writes the [`report`].

pub mod catalog;
pub mod cli;
pub mod commit;
pub mod discover;
pub mod engine;
pub mod error;
pub mod files_table;
pub mod logging;
pub mod query;
pub mod report;
pub mod runner;
pub mod schema;
pub mod sink;
pub mod sources;
pub mod spec;
pub mod storage;
