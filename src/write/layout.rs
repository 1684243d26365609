//! Where a run's files go: hive partition directories, the run's version
//! directories inside them, and the names of data files. The commit protocol
//! (`commit`) decides the placement of each table; the writer follows it.
//!
//! `OUTPUT/TABLE/KEY=VALUE/…/v-RUNID/part-RUNID-NNNNN.parquet`: every partition a
//! run writes gets a version directory of its own, which no reader sees until the
//! commit points the catalog at it (tables with Athena partition projection, which
//! Athena reads without the catalog, write plain `TABLE/KEY=VALUE/` directories).

use object_store::path::Path as ObjPath;

use crate::storage::Location;

/// Hive's name for a NULL partition value.
pub const HIVE_NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Where a run writes one table's files.
#[derive(Debug, Clone)]
pub struct Placement {
    output: Location,
    table_prefix: ObjPath,
    keys: Vec<String>,
    /// `v-RUNID`, the version directory partitions are written into; `None` for
    /// projected tables, which use plain partition directories.
    version: Option<String>,
}

impl Placement {
    pub fn new(
        output: &Location,
        table_prefix: ObjPath,
        keys: Vec<String>,
        version: Option<String>,
    ) -> Self {
        Placement {
            output: output.clone(),
            table_prefix,
            keys,
            version,
        }
    }

    /// Whether the run writes into version directories of its own, which no reader
    /// sees before the commit (`false` for projected tables: readers see their
    /// files as soon as they exist).
    pub fn versioned(&self) -> bool {
        self.version.is_some()
    }

    /// The directory the files of the partition with these values go to.
    pub fn dir(&self, values: &[String]) -> ObjPath {
        let dir = partition_dir(&self.output, &self.table_prefix, &self.keys, values);
        match &self.version {
            Some(v) => dir.join(v.as_str()),
            None => dir,
        }
    }
}

/// `TABLE/KEY=VALUE/…`: hive directory names, the value escaped the way Hive and
/// Athena expect in a key or file name (`10:00` → `10%3A00`).
pub fn partition_dir(
    output: &Location,
    table_prefix: &ObjPath,
    keys: &[String],
    values: &[String],
) -> ObjPath {
    keys.iter()
        .zip(values)
        .fold(table_prefix.clone(), |dir, (k, v)| {
            output.literal_child(&dir, &format!("{k}={}", hive_escape(v)))
        })
}

/// The name of data file `n` of a run.
pub fn data_file_name(run_id: &str, n: u32) -> String {
    format!("part-{run_id}-{n:05}.parquet")
}

/// A file a reader of the table sees in a location: Parquet, not hidden (Athena
/// and Hive skip names starting with `_` or `.`).
pub fn is_data_file(name: &str) -> bool {
    !name.starts_with('_')
        && !name.starts_with('.')
        && name.to_ascii_lowercase().ends_with(".parquet")
}

/// Escapes a partition value the way Hive does for directory names.
pub fn hive_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_control()
            || matches!(
                c,
                '"' | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\x7F'
                    | '{'
                    | '['
                    | ']'
                    | '^'
            )
        {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hive_escaping_keeps_dates_and_escapes_separators() {
        assert_eq!(hive_escape("2024-03-01"), "2024-03-01");
        assert_eq!(hive_escape("a/b=c"), "a%2Fb%3Dc");
    }

    #[test]
    fn data_files_are_visible_parquet_files() {
        assert!(is_data_file(&data_file_name("01abc", 3)));
        assert!(!is_data_file("_part-1.parquet") && !is_data_file(".x.parquet"));
        assert!(!is_data_file("notes.txt"));
    }
}
