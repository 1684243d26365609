//! Table schema files (`schemas/*.toml`): the single source of truth for a table's
//! columns. The Arrow schema the sink writes, the Glue `TableInput` the catalog
//! stores and the README table reference are all derived from a [`TableSchema`].
//!
//! Column types are written as Glue / Hive type names (`bigint`, `double`,
//! `timestamp`, `decimal(10,2)` …) because that is what analysts see in Athena.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Timestamps are written as INT64 microseconds adjusted to UTC: Athena reads them
/// as `timestamp` (millisecond precision), and nothing sub-microsecond is invented.
fn utc_timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    pub name: String,
    pub description: String,
    pub columns: Vec<ColumnDef>,
    #[serde(default)]
    pub partition_keys: Vec<ColumnDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default = "default_true")]
    pub nullable: bool,
    pub comment: String,
}

fn default_true() -> bool {
    true
}

impl TableSchema {
    /// Reads and validates a schema file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let schema: TableSchema = toml::from_str(&text)
            .map_err(|e| Error::config(format!("schema file {}: {e}", path.display())))?;
        schema
            .validate()
            .map_err(|e| Error::config(format!("schema file {}: {e}", path.display())))?;
        Ok(schema)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        check_identifier("table name", &self.name)?;
        if self.columns.is_empty() {
            return Err("`columns` must list at least one column".into());
        }
        let mut seen = std::collections::HashSet::new();
        for col in self.columns.iter().chain(&self.partition_keys) {
            check_identifier("column name", &col.name)?;
            if !seen.insert(col.name.as_str()) {
                return Err(format!("column `{}` is declared twice", col.name));
            }
            glue_to_arrow(&col.type_name).map_err(|e| format!("column `{}`: {e}", col.name))?;
        }
        for key in &self.partition_keys {
            // Athena prunes string partition keys best, and a hive directory name is
            // a string anyway; DESIGN.md fixes partition keys as strings.
            if key.type_name != "string" {
                return Err(format!(
                    "partition key `{}` has type `{}`; partition keys must be `string`",
                    key.name, key.type_name
                ));
            }
            if !key.nullable {
                return Err(format!(
                    "partition key `{}` cannot be declared `nullable = false`; an empty value is written as __HIVE_DEFAULT_PARTITION__",
                    key.name
                ));
            }
        }
        Ok(())
    }

    /// The Arrow schema of the data files (partition keys are not stored in files).
    pub fn file_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|c| Field::new(&c.name, arrow_type(&c.type_name), c.nullable))
                .collect::<Vec<_>>(),
        ))
    }

    /// The Arrow schema a job's SQL must produce: the file columns followed by the
    /// partition keys, in schema-file order.
    pub fn table_schema(&self) -> SchemaRef {
        let mut fields: Vec<Field> = self
            .file_schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.extend(
            self.partition_keys
                .iter()
                .map(|k| Field::new(&k.name, DataType::Utf8, true)),
        );
        Arc::new(Schema::new(fields))
    }

    pub fn partition_key_names(&self) -> Vec<String> {
        self.partition_keys.iter().map(|k| k.name.clone()).collect()
    }
}

fn check_identifier(what: &str, name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}` must be lowercase snake_case (a-z, 0-9, _), as Athena requires"
        ))
    }
}

/// Arrow type of a Glue type that has already been validated.
fn arrow_type(glue: &str) -> DataType {
    glue_to_arrow(glue).expect("schema types are validated when the file is loaded")
}

/// Maps a Glue / Hive column type to the Arrow type naslake writes for it.
///
/// Only the types whose Parquet encoding Athena reads without surprises are
/// accepted: no unsigned integers, timestamps as INT64 micros in UTC.
pub fn glue_to_arrow(glue: &str) -> std::result::Result<DataType, String> {
    let t = glue.trim();
    Ok(match t {
        "tinyint" => DataType::Int8,
        "smallint" => DataType::Int16,
        "int" | "integer" => DataType::Int32,
        "bigint" => DataType::Int64,
        "float" => DataType::Float32,
        "double" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "string" => DataType::Utf8,
        "binary" => DataType::Binary,
        "date" => DataType::Date32,
        "timestamp" => utc_timestamp(),
        _ if t.starts_with("decimal(") && t.ends_with(')') => {
            let inner = &t["decimal(".len()..t.len() - 1];
            let (p, s) = inner
                .split_once(',')
                .ok_or_else(|| format!("`{t}`: expected decimal(precision,scale)"))?;
            let p: u8 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{t}`: bad precision"))?;
            let s: i8 = s.trim().parse().map_err(|_| format!("`{t}`: bad scale"))?;
            if p == 0 || p > 38 || s < 0 || s as u8 > p {
                return Err(format!(
                    "`{t}`: precision must be 1..=38 and 0 <= scale <= precision"
                ));
            }
            DataType::Decimal128(p, s)
        }
        other => {
            return Err(format!(
                "unsupported type `{other}`; use one of tinyint, smallint, int, bigint, float, double, boolean, string, binary, date, timestamp, decimal(p,s)"
            ));
        }
    })
}

/// Maps an Arrow type naslake writes back to its Glue type name. Types with no safe
/// Athena mapping are refused before anything is written.
pub fn arrow_to_glue(dt: &DataType) -> std::result::Result<String, String> {
    Ok(match dt {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 => "string".into(),
        DataType::Binary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, Some(tz))
            if tz.as_ref() == "UTC" || tz.as_ref() == "+00:00" =>
        {
            "timestamp".into()
        }
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 => format!("decimal({p},{s})"),
        other => return Err(format!("Arrow type {other} has no safe Athena mapping")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_glue_type_round_trips_through_arrow() {
        for t in [
            "tinyint",
            "smallint",
            "int",
            "bigint",
            "float",
            "double",
            "boolean",
            "string",
            "binary",
            "date",
            "timestamp",
            "decimal(38,10)",
        ] {
            let arrow = glue_to_arrow(t).unwrap();
            assert_eq!(arrow_to_glue(&arrow).unwrap(), t, "{t}");
        }
    }

    #[test]
    fn unsafe_types_are_refused() {
        assert!(glue_to_arrow("decimal(39,2)").is_err());
        assert!(glue_to_arrow("uint").is_err());
        assert!(arrow_to_glue(&DataType::UInt64).is_err());
        assert!(arrow_to_glue(&DataType::Utf8View).is_err());
        assert!(
            arrow_to_glue(&DataType::Timestamp(
                TimeUnit::Nanosecond,
                Some("UTC".into())
            ))
            .is_err()
        );
        assert!(arrow_to_glue(&DataType::Timestamp(TimeUnit::Microsecond, None)).is_err());
    }

    #[test]
    fn bad_names_and_partition_types_are_explained() {
        let bad: TableSchema = toml::from_str(
            r#"
            name = "t"
            description = "d"
            columns = [{ name = "Value", type = "double", comment = "c" }]
            "#,
        )
        .unwrap();
        assert!(bad.validate().unwrap_err().contains("snake_case"));
        let bad: TableSchema = toml::from_str(
            r#"
            name = "t"
            description = "d"
            columns = [{ name = "v", type = "double", comment = "c" }]
            partition_keys = [{ name = "dt", type = "date", comment = "c" }]
            "#,
        )
        .unwrap();
        assert!(bad.validate().unwrap_err().contains("must be `string`"));
    }
}
