//! The catalog: where tables are registered so Athena (and `naslake query`) can find
//! them. Backends store the same Glue structures ([`table_input`]).
//!
//! `--catalog local[:DIR]` keeps them as JSON under `DIR/_naslake/catalog/`;
//! `--catalog glue[:DATABASE]` is the AWS Glue Data Catalog.

pub mod evolution;
pub mod glue;
pub mod local;
pub mod reference;
pub mod table_input;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
pub use table_input::{PartitionInput, TableInput};

/// A table as a catalog holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableEntry {
    pub database: String,
    pub table_input: TableInput,
    pub partitions: Vec<PartitionInput>,
    /// The run that last changed the table.
    pub updated_by_run: String,
    /// Glue's version of the table definition, sent back with `UpdateTable` so a
    /// concurrent change is detected. The local catalog has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// One table's change in a commit: from what the catalog held when the run
/// started to what the run wrote.
#[derive(Debug, Clone)]
pub struct TableChange {
    pub before: Option<TableEntry>,
    pub after: TableEntry,
    /// `overwrite` replaces every file, so any schema change is allowed; otherwise
    /// old files stay and only new nullable columns are (see [`evolution`]).
    pub replaces_all_files: bool,
    /// Columns the schema file declares `nullable = false`.
    pub required_columns: Vec<String>,
    /// Keep Glue's archived table versions (`SkipArchive = false`).
    pub archive_versions: bool,
}

/// A parsed `--catalog` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSpec {
    Local(Option<PathBuf>),
    Glue(Option<String>),
}

impl std::str::FromStr for CatalogSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, arg) = s.split_once(':').map_or((s, None), |(k, a)| (k, Some(a)));
        let arg = arg.filter(|a| !a.is_empty());
        match kind {
            "local" => Ok(CatalogSpec::Local(arg.map(PathBuf::from))),
            "glue" => Ok(CatalogSpec::Glue(arg.map(str::to_string))),
            _ => Err(Error::config(format!(
                "--catalog `{s}`: expected `local[:DIR]` or `glue[:DATABASE]`"
            ))),
        }
    }
}

/// An open catalog backend.
pub enum Catalog {
    Local(local::LocalCatalog),
    Glue(Box<glue::GlueCatalog>),
}

impl Catalog {
    /// Opens the catalog a spec names; `default_dir` is used by `local` without a
    /// DIR. Also returns the database the spec names, if any.
    /// A local catalog's directory (the output it lies under), as an address.
    pub fn local_dir(&self) -> Option<String> {
        match self {
            Catalog::Local(c) => Some(c.root().display().to_string()),
            Catalog::Glue(_) => None,
        }
    }

    pub async fn open(
        spec: &CatalogSpec,
        default_dir: &std::path::Path,
    ) -> Result<(Catalog, Option<String>)> {
        match spec {
            CatalogSpec::Local(dir) => Ok((
                Catalog::Local(local::LocalCatalog::new(
                    dir.clone().unwrap_or_else(|| default_dir.to_path_buf()),
                )),
                None,
            )),
            CatalogSpec::Glue(db) => {
                if let Some(db) = db {
                    glue::check_database_name(db)?;
                }
                Ok((
                    Catalog::Glue(Box::new(glue::GlueCatalog::connect().await?)),
                    db.clone(),
                ))
            }
        }
    }

    pub async fn get(&self, database: &str, table: &str) -> Result<Option<TableEntry>> {
        match self {
            Catalog::Local(c) => c.get(database, table),
            Catalog::Glue(c) => c.get(database, table).await,
        }
    }

    /// Every table of `database` (the local catalog: of every database when `None`).
    pub async fn list(&self, database: Option<&str>) -> Result<Vec<TableEntry>> {
        match self {
            Catalog::Local(c) => c.list(database),
            Catalog::Glue(c) => c.list(database.unwrap_or(DEFAULT_DATABASE)).await,
        }
    }

    /// Applies a run's changes: all of them, or (as far as the backend allows)
    /// none. The local catalog replaces its files by rename; Glue has no
    /// multi-table transaction, so a failure part-way is undone table by table.
    /// The schema change against `before` was checked when the run was planned
    /// (`commit::plan`); Glue checks again against a table that changed since.
    pub async fn apply(&self, changes: &[TableChange], database_description: &str) -> Result<()> {
        match self {
            Catalog::Local(c) => c.apply(changes),
            Catalog::Glue(c) => c.apply(changes, database_description).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Catalog::Local(c) => format!("local:{}", c.root().display()),
            Catalog::Glue(c) => format!("glue ({})", c.describe()),
        }
    }
}

/// The database `query` and `catalog` use when none is named.
pub const DEFAULT_DATABASE: &str = "naslake";
