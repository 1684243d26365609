//! Schema evolution: which changes of a table's schema file can be applied to a
//! table whose old Parquet files stay in place (write modes `append` and
//! `overwrite-partitions`).
//!
//! Athena matches Parquet columns by name and checks each file's types strictly
//! against the catalog. So a new nullable column is safe (old files read as NULL);
//! a changed type, a dropped column, a new required column or changed partition
//! keys are not, and are refused with what to do instead. `overwrite` rewrites
//! every file, so it may change anything.

use std::collections::HashMap;

use super::TableInput;
use crate::base::error::{Error, Result};

/// Checks that `after` can replace `before` while `before`'s files stay readable.
/// `required` names the columns the schema file declares `nullable = false`.
pub fn check(before: &TableInput, after: &TableInput, required: &[String]) -> Result<()> {
    let table = &after.name;
    let refuse = |what: String| {
        Err(Error::Catalog(format!(
            "table {table}: {what}. Files already written keep the old layout, and Athena \
             checks every file against the catalog. Keep the old definition in the schema \
             file, add a new column instead, or rewrite the whole table once with \
             `--set tables.{table}.mode=overwrite`"
        )))
    };
    let before_keys: Vec<(&str, &str)> = before
        .partition_keys
        .iter()
        .map(|k| (k.name.as_str(), k.type_name.as_str()))
        .collect();
    let after_keys: Vec<(&str, &str)> = after
        .partition_keys
        .iter()
        .map(|k| (k.name.as_str(), k.type_name.as_str()))
        .collect();
    if before_keys != after_keys {
        return refuse(format!(
            "partition keys changed from {before_keys:?} to {after_keys:?}"
        ));
    }
    let new_types: HashMap<String, &str> = after
        .storage_descriptor
        .columns
        .iter()
        .map(|c| (c.name.to_ascii_lowercase(), c.type_name.as_str()))
        .collect();
    let mut old_names = std::collections::HashSet::new();
    for old in &before.storage_descriptor.columns {
        let name = old.name.to_ascii_lowercase();
        old_names.insert(name.clone());
        match new_types.get(&name) {
            None => {
                return refuse(format!(
                    "column `{}` ({}) was dropped from the schema file",
                    old.name, old.type_name
                ));
            }
            Some(t) if !same_type(t, &old.type_name) => {
                return refuse(format!(
                    "column `{}` changed type from {} to {t}",
                    old.name, old.type_name
                ));
            }
            Some(_) => {}
        }
    }
    for new in &after.storage_descriptor.columns {
        if !old_names.contains(&new.name.to_ascii_lowercase()) && required.contains(&new.name) {
            return refuse(format!(
                "new column `{}` is declared `nullable = false`, but old files have no values for it; declare it nullable",
                new.name
            ));
        }
    }
    Ok(())
}

/// Glue type names compare without case or spaces (`decimal(10, 2)` = `DECIMAL(10,2)`).
fn same_type(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    norm(a) == norm(b)
}

/// The names of the columns that were added by `after`.
pub fn added_columns(before: &TableInput, after: &TableInput) -> Vec<String> {
    let old: std::collections::HashSet<String> = before
        .storage_descriptor
        .columns
        .iter()
        .map(|c| c.name.to_ascii_lowercase())
        .collect();
    after
        .storage_descriptor
        .columns
        .iter()
        .filter(|c| !old.contains(&c.name.to_ascii_lowercase()))
        .map(|c| c.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::table_input::Column;

    fn table(cols: &[(&str, &str)], keys: &[&str]) -> TableInput {
        let schema = crate::model::schema::TableSchema {
            name: "t".into(),
            description: "d".into(),
            columns: cols
                .iter()
                .map(|(n, t)| crate::model::schema::ColumnDef {
                    name: n.to_string(),
                    type_name: t.to_string(),
                    nullable: true,
                    comment: "c".into(),
                    derived: false,
                })
                .collect(),
            partition_keys: keys
                .iter()
                .map(|k| crate::model::schema::ColumnDef {
                    name: k.to_string(),
                    type_name: "string".into(),
                    nullable: true,
                    comment: "k".into(),
                    derived: false,
                })
                .collect(),
            docs: None,
        };
        crate::catalog::table_input::table_input(
            &schema,
            "s3://b/t/",
            crate::model::Compression::Zstd,
        )
        .unwrap()
    }

    #[test]
    fn a_new_nullable_column_is_accepted() {
        let before = table(&[("a", "bigint")], &["dt"]);
        let after = table(&[("a", "bigint"), ("b", "string")], &["dt"]);
        check(&before, &after, &[]).unwrap();
        assert_eq!(added_columns(&before, &after), ["b"]);
    }

    #[test]
    fn unsafe_changes_are_refused_with_advice() {
        let before = table(&[("a", "bigint"), ("b", "string")], &["dt"]);
        let cases = [
            (
                table(&[("a", "bigint")], &["dt"]),
                "`b` (string) was dropped",
            ),
            (
                table(&[("a", "double"), ("b", "string")], &["dt"]),
                "changed type from bigint to double",
            ),
            (
                table(&[("a", "bigint"), ("b", "string")], &["day"]),
                "partition keys changed",
            ),
        ];
        for (after, want) in cases {
            let e = check(&before, &after, &[]).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
            assert!(e.contains("mode=overwrite"), "{e}");
        }
        let after = table(&[("a", "bigint"), ("b", "string"), ("c", "int")], &["dt"]);
        let e = check(&before, &after, &["c".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("nullable = false"), "{e}");
    }

    #[test]
    fn type_names_compare_loosely() {
        let mut before = table(&[("a", "decimal(10,2)")], &[]);
        before.storage_descriptor.columns[0] = Column {
            name: "A".into(),
            type_name: "DECIMAL(10, 2)".into(),
            comment: None,
        };
        check(&before, &table(&[("a", "decimal(10,2)")], &[]), &[]).unwrap();
    }
}
