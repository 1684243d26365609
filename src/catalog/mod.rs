//! The catalog: where tables are registered so Athena (and `naslake query`) can find
//! them. Backends store the same Glue structures ([`table_input`]).
//!
//! `--catalog local[:DIR]` keeps them as JSON under `DIR/_naslake/catalog/`;
//! `--catalog glue[:DATABASE]` is the AWS Glue Data Catalog.

pub mod local;
pub mod table_input;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use table_input::{PartitionInput, TableInput};

/// A table as a catalog holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableEntry {
    pub database: String,
    pub table_input: TableInput,
    pub partitions: Vec<PartitionInput>,
    /// The run that last changed the table.
    pub updated_by_run: String,
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
}

impl Catalog {
    /// Opens the catalog a spec names; `default_dir` is used by `local` without a DIR.
    pub fn open(
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
            CatalogSpec::Glue(_) => Err(Error::config(
                "--catalog glue: the Glue backend is not part of this build yet; use --catalog local[:DIR]",
            )),
        }
    }

    pub fn get(&self, database: &str, table: &str) -> Result<Option<TableEntry>> {
        match self {
            Catalog::Local(c) => c.get(database, table),
        }
    }

    pub fn list(&self, database: Option<&str>) -> Result<Vec<TableEntry>> {
        match self {
            Catalog::Local(c) => c.list(database),
        }
    }

    /// Stores every entry; entries are replaced whole.
    pub fn put(&self, entries: &[TableEntry]) -> Result<()> {
        match self {
            Catalog::Local(c) => c.put(entries),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Catalog::Local(c) => format!("local:{}", c.root().display()),
        }
    }
}
