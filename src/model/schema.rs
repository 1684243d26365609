//! Table schema files (`schemas/*.toml`): the single source of truth for a table's
//! columns. The Arrow schema the sink writes, the Glue `TableInput` the catalog
//! stores and the table reference (`docs/tables.md`) are all derived from a
//! [`TableSchema`].
//!
//! Column types are written as Glue / Hive type names (`bigint`, `double`,
//! `timestamp`, `decimal(10,2)` …) because that is what analysts see in Athena.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

use crate::base::error::{Error, Result};

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
    /// What the table reference (`docs/tables.md`) says beside the columns. It
    /// decides no row, so it is not in the job's digest.
    #[serde(default)]
    pub docs: Option<TableDocs>,
}

/// A table's entry in the table reference, written beside its columns so the two
/// are edited together ([`crate::catalog::reference`] renders it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDocs {
    /// What one row is, for the heading ("one row per sensor reading").
    pub row: String,
    /// Markdown: where the rows come from and what to know before querying.
    #[serde(default)]
    pub about: String,
    /// An Athena query that shows what the table is for; the tests run it on the
    /// samples' lake.
    pub example: String,
    /// For a table kept apart from the job's (a key links table): the database
    /// and the location its DDL shows, in place of the job's.
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
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
    /// Computed by the job's SQL from the other rows (review flags), not given by
    /// the source that reads the table's schema ([`TableSchema::measured_schema`]).
    #[serde(default)]
    pub derived: bool,
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
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates the text of a schema file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let schema: TableSchema = toml::from_str(text)
            .map_err(|e| Error::config(format!("schema file {origin}: {e}")))?;
        schema
            .validate()
            .map_err(|e| Error::config(format!("schema file {origin}: {e}")))?;
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

    /// The rows a source gives for this table: [`TableSchema::table_schema`]
    /// without the columns its SQL derives.
    pub fn measured_schema(&self) -> SchemaRef {
        let table = self.table_schema();
        let fields: Vec<Field> = table
            .fields()
            .iter()
            .filter(|f| {
                !self
                    .columns
                    .iter()
                    .any(|c| c.derived && c.name == *f.name())
            })
            .map(|f| f.as_ref().clone())
            .collect();
        Arc::new(Schema::new(fields))
    }

    pub fn partition_key_names(&self) -> Vec<String> {
        self.partition_keys.iter().map(|k| k.name.clone()).collect()
    }
}

pub fn check_identifier(what: &str, name: &str) -> std::result::Result<(), String> {
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
/// accepted: no unsigned integers, timestamps as INT64 micros in UTC, decimals of
/// precision ≤ 38; `array<T>`, `map<K,V>` and `struct<a:T,…>` nest any of them.
pub fn glue_to_arrow(glue: &str) -> std::result::Result<DataType, String> {
    let t = glue.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(inner) = generic_args(&lower, "array") {
        let item = glue_to_arrow(inner)?;
        return Ok(DataType::List(Arc::new(Field::new("element", item, true))));
    }
    if let Some(inner) = generic_args(&lower, "map") {
        let parts = split_top_level(inner, ',');
        let [k, v] = parts.as_slice() else {
            return Err(format!("`{t}`: expected map<key_type,value_type>"));
        };
        let key = glue_to_arrow(k)?;
        let value = glue_to_arrow(v)?;
        let entries = Field::new(
            "key_value",
            DataType::Struct(
                vec![
                    Field::new("key", key, false),
                    Field::new("value", value, true),
                ]
                .into(),
            ),
            false,
        );
        return Ok(DataType::Map(Arc::new(entries), false));
    }
    if let Some(inner) = generic_args(&lower, "struct") {
        let mut fields = Vec::new();
        for part in split_top_level(inner, ',') {
            let (name, ty) = part
                .split_once(':')
                .ok_or_else(|| format!("`{t}`: expected struct<name:type,…>"))?;
            let name = name.trim();
            check_identifier("struct field", name)?;
            fields.push(Field::new(name, glue_to_arrow(ty)?, true));
        }
        if fields.is_empty() {
            return Err(format!("`{t}`: a struct needs at least one field"));
        }
        return Ok(DataType::Struct(fields.into()));
    }
    Ok(match lower.as_str() {
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
        _ if lower.starts_with("decimal(") && lower.ends_with(')') => {
            let inner = &lower["decimal(".len()..lower.len() - 1];
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
        _ => {
            return Err(format!(
                "unsupported type `{t}`; use one of tinyint, smallint, int, bigint, float, double, boolean, string, binary, date, timestamp, decimal(p,s), array<T>, map<K,V>, struct<name:T,…>"
            ));
        }
    })
}

/// `name<…>` → the text between the angle brackets.
fn generic_args<'a>(t: &'a str, name: &str) -> Option<&'a str> {
    t.strip_prefix(name)?
        .trim_start()
        .strip_prefix('<')?
        .strip_suffix('>')
}

/// Splits on `sep` outside angle brackets and parentheses (`decimal(10,2)` and
/// nested `map<…,…>` keep their commas).
fn split_top_level(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    let last = s[start..].trim();
    if !last.is_empty() || !parts.is_empty() {
        parts.push(last);
    }
    parts
}

/// Maps an Arrow type naslake writes back to its Glue type name. Types with no safe
/// Athena mapping are refused before anything is written: unsigned integers (their
/// Parquet statistics mislead Athena), nanosecond timestamps (Athena cannot read
/// them), timestamps in a zone other than UTC (Athena's `timestamp` has no zone),
/// view types, the null type, decimals wider than 38 digits.
pub fn arrow_to_glue(dt: &DataType) -> std::result::Result<String, String> {
    Ok(match dt {
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Binary | DataType::LargeBinary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(TimeUnit::Millisecond | TimeUnit::Microsecond, tz)
            if tz
                .as_deref()
                .is_none_or(|tz| tz == "UTC" || tz == "+00:00" || tz == "Z") =>
        {
            "timestamp".into()
        }
        DataType::Decimal128(p, s) if *p <= 38 && *s >= 0 => format!("decimal({p},{s})"),
        DataType::List(item) | DataType::LargeList(item) => {
            format!("array<{}>", arrow_to_glue(item.data_type())?)
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                arrow_to_glue(kv[0].data_type())?,
                arrow_to_glue(kv[1].data_type())?
            ),
            other => return Err(format!("map entries of type {other} are not key/value")),
        },
        DataType::Struct(fields) if !fields.is_empty() => {
            let parts = fields
                .iter()
                .map(|f| Ok(format!("{}:{}", f.name(), arrow_to_glue(f.data_type())?)))
                .collect::<std::result::Result<Vec<_>, String>>()?;
            format!("struct<{}>", parts.join(","))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            return Err(
                "Arrow type Timestamp(ns) has no safe Athena mapping: Athena cannot read nanosecond Parquet timestamps; cast to microseconds".into(),
            );
        }
        DataType::Timestamp(_, Some(tz)) => {
            return Err(format!(
                "Arrow type Timestamp with zone {tz} has no safe Athena mapping: Athena's timestamp has no zone; convert to UTC"
            ));
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            return Err(format!(
                "Arrow type {dt} has no safe Athena mapping: unsigned Parquet integers break Athena's statistics; cast to a signed type"
            ));
        }
        DataType::Utf8View | DataType::BinaryView | DataType::ListView(_) => {
            return Err(format!(
                "Arrow type {dt} has no safe Athena mapping: view types must be cast to their plain form"
            ));
        }
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
            "array<string>",
            "map<string,decimal(10,2)>",
            "struct<a:int,b:array<struct<c:timestamp,d:map<string,bigint>>>>",
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
        assert!(
            arrow_to_glue(&DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("Europe/Berlin".into())
            ))
            .is_err()
        );
        assert!(arrow_to_glue(&DataType::Null).is_err());
        let nested_unsigned =
            DataType::List(Arc::new(Field::new("element", DataType::UInt32, true)));
        assert!(arrow_to_glue(&nested_unsigned).is_err());
        assert!(glue_to_arrow("map<string>").is_err());
        assert!(glue_to_arrow("struct<>").is_err());
        assert!(glue_to_arrow("array<uint>").is_err());
        // A zone-less timestamp is what Athena's `timestamp` is.
        assert_eq!(
            arrow_to_glue(&DataType::Timestamp(TimeUnit::Microsecond, None)).unwrap(),
            "timestamp"
        );
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
