//! The embedded catalog: one JSON file per table, holding the Glue `TableInput` and
//! `PartitionInput`s naslake would send to Glue, under `DIR/_naslake/catalog/DB/`.
//! Files are replaced atomically (write to a temporary name, then rename).

use std::path::{Path, PathBuf};

use super::TableEntry;
use crate::error::{Error, Result};

pub struct LocalCatalog {
    root: PathBuf,
}

impl LocalCatalog {
    pub fn new(dir: PathBuf) -> Self {
        LocalCatalog { root: dir }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn db_dir(&self, database: &str) -> PathBuf {
        self.root.join("_naslake").join("catalog").join(database)
    }

    pub fn get(&self, database: &str, table: &str) -> Result<Option<TableEntry>> {
        let path = self.db_dir(database).join(format!("{table}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                Error::Catalog(format!("{} is not a catalog entry: {e}", path.display()))
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::ReadFile { path, source }),
        }
    }

    pub fn list(&self, database: Option<&str>) -> Result<Vec<TableEntry>> {
        let base = self.root.join("_naslake").join("catalog");
        let dbs: Vec<String> = match database {
            Some(d) => vec![d.to_string()],
            None => match std::fs::read_dir(&base) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(_) => Vec::new(),
            },
        };
        let mut out = Vec::new();
        for db in dbs {
            let Ok(rd) = std::fs::read_dir(self.db_dir(&db)) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
                .collect();
            names.sort();
            for n in names {
                if let Some(e) = self.get(&db, &n)? {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    pub fn put(&self, entries: &[TableEntry]) -> Result<()> {
        // Write every file under a temporary name first, then rename them all, so a
        // failure while writing leaves every table as it was.
        let mut staged = Vec::new();
        for e in entries {
            let dir = self.db_dir(&e.database);
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{}.json", e.table_input.name));
            let tmp = dir.join(format!(".{}.json.tmp", e.table_input.name));
            std::fs::write(&tmp, serde_json::to_vec_pretty(e)?)?;
            staged.push((tmp, path));
        }
        for (tmp, path) in staged {
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }
}
