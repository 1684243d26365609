//! The embedded catalog: one JSON file per table, holding the Glue `TableInput` and
//! `PartitionInput`s naslake would send to Glue, under `DIR/_naslake/catalog/DB/`.
//! Files are replaced atomically (write to a temporary name, then rename).

use std::path::{Path, PathBuf};

use super::{TableChange, TableEntry};
use crate::base::error::{Error, Result};

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

    /// Replaces each table's entry. Every file is written under a temporary name
    /// first, then renamed into place; if a rename fails, the entries already
    /// replaced are put back, so the catalog stays as it was.
    pub fn apply(&self, changes: &[TableChange]) -> Result<()> {
        let mut staged = Vec::new();
        for c in changes {
            let e = &c.after;
            let dir = self.db_dir(&e.database);
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("{}.json", e.table_input.name));
            let tmp = dir.join(format!(".{}.json.tmp", e.table_input.name));
            std::fs::write(&tmp, serde_json::to_vec_pretty(e)?)?;
            staged.push((tmp, path, c));
        }
        for (i, (tmp, path, _)) in staged.iter().enumerate() {
            let Err(e) = std::fs::rename(tmp, path) else {
                crate::base::faults::point("catalog.table");
                continue;
            };
            let mut undo_errors = Vec::new();
            for (_, path, change) in &staged[..i] {
                let restored = match &change.before {
                    Some(before) => serde_json::to_vec_pretty(before)
                        .map_err(std::io::Error::other)
                        .and_then(|bytes| std::fs::write(path, bytes)),
                    None => std::fs::remove_file(path),
                };
                if let Err(re) = restored {
                    undo_errors.push(format!("{}: {re}", path.display()));
                }
            }
            for (tmp, _, _) in &staged[i..] {
                let _ = std::fs::remove_file(tmp);
            }
            if undo_errors.is_empty() {
                return Err(Error::Catalog(format!("{}: {e}", path.display())));
            }
            return Err(Error::CatalogInconsistent(format!(
                "{}: {e}; putting back the other tables failed too ({})",
                path.display(),
                undo_errors.join("; ")
            )));
        }
        Ok(())
    }
}
