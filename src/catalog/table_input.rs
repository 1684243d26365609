//! The Glue `TableInput` / `PartitionInput` structures, built from a schema file and
//! the files a run wrote. Both catalog backends store exactly these: the local one
//! as JSON, the Glue one through the API, so the two cannot drift.
//!
//! Field names are Glue's own (PascalCase), so the JSON a local catalog holds is what
//! `aws glue get-table` would show.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::model::Compression;
use crate::model::schema::{TableSchema, arrow_to_glue};

pub const INPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
pub const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
pub const SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Column {
    pub name: String,
    #[serde(rename = "Type")]
    pub type_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SerDeInfo {
    pub serialization_library: String,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StorageDescriptor {
    pub columns: Vec<Column>,
    pub location: String,
    pub input_format: String,
    pub output_format: String,
    pub compressed: bool,
    pub serde_info: SerDeInfo,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableInput {
    pub name: String,
    pub description: String,
    pub table_type: String,
    pub parameters: BTreeMap<String, String>,
    pub storage_descriptor: StorageDescriptor,
    pub partition_keys: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PartitionInput {
    pub values: Vec<String>,
    pub storage_descriptor: StorageDescriptor,
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

fn storage_descriptor(
    columns: Vec<Column>,
    location: String,
    compression: Compression,
) -> StorageDescriptor {
    StorageDescriptor {
        columns,
        location,
        input_format: INPUT_FORMAT.into(),
        output_format: OUTPUT_FORMAT.into(),
        compressed: true,
        serde_info: SerDeInfo {
            serialization_library: SERDE.into(),
            parameters: BTreeMap::from([("serialization.format".into(), "1".into())]),
        },
        parameters: BTreeMap::from([("compressionType".into(), compression.as_str().into())]),
    }
}

/// The table definition for a schema file, located at `location` (a directory URL
/// ending in `/`).
pub fn table_input(
    schema: &TableSchema,
    location: &str,
    compression: Compression,
) -> Result<TableInput> {
    let file_schema = schema.file_schema();
    let columns = schema
        .columns
        .iter()
        .zip(file_schema.fields())
        .map(|(c, f)| {
            let type_name = arrow_to_glue(f.data_type()).map_err(|e| {
                Error::Catalog(format!("table {} column {}: {e}", schema.name, c.name))
            })?;
            Ok(Column {
                name: c.name.clone(),
                type_name,
                comment: Some(c.comment.clone()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let partition_keys = schema
        .partition_keys
        .iter()
        .map(|k| Column {
            name: k.name.clone(),
            type_name: "string".into(),
            comment: Some(k.comment.clone()),
        })
        .collect();
    Ok(TableInput {
        name: schema.name.clone(),
        description: schema.description.clone(),
        table_type: "EXTERNAL_TABLE".into(),
        parameters: BTreeMap::from([
            ("classification".into(), "parquet".into()),
            ("compressionType".into(), compression.as_str().into()),
            ("typeOfData".into(), "file".into()),
            ("EXTERNAL".into(), "TRUE".into()),
        ]),
        storage_descriptor: storage_descriptor(columns, location.to_string(), compression),
        partition_keys,
    })
}

/// A partition of `table` with its own location.
pub fn partition_input(
    table: &TableInput,
    values: Vec<String>,
    location: String,
) -> PartitionInput {
    let mut sd = table.storage_descriptor.clone();
    sd.location = location;
    PartitionInput {
        values,
        storage_descriptor: sd,
        parameters: BTreeMap::new(),
    }
}

/// The Athena DDL statement that defines the same table as `table` (for docs and
/// for users who manage tables with DDL). Partitions are registered separately
/// (`MSCK REPAIR TABLE` does not find naslake's version directories; naslake
/// registers each partition's location itself).
pub fn athena_ddl(database: &str, table: &TableInput) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let column = |c: &Column| {
        let mut line = format!("  `{}` {}", c.name, c.type_name);
        if let Some(comment) = &c.comment {
            line.push_str(&format!(" COMMENT {}", quote(comment)));
        }
        line
    };
    let sd = &table.storage_descriptor;
    let mut out = format!("CREATE EXTERNAL TABLE `{database}`.`{}` (\n", table.name);
    out.push_str(
        &sd.columns
            .iter()
            .map(column)
            .collect::<Vec<_>>()
            .join(",\n"),
    );
    out.push_str("\n)\n");
    if !table.description.is_empty() {
        out.push_str(&format!("COMMENT {}\n", quote(&table.description)));
    }
    if !table.partition_keys.is_empty() {
        let keys: Vec<String> = table.partition_keys.iter().map(column).collect();
        out.push_str(&format!("PARTITIONED BY (\n{}\n)\n", keys.join(",\n")));
    }
    out.push_str(&format!(
        "ROW FORMAT SERDE {}\nSTORED AS INPUTFORMAT {}\nOUTPUTFORMAT {}\nLOCATION {}\n",
        quote(&sd.serde_info.serialization_library),
        quote(&sd.input_format),
        quote(&sd.output_format),
        quote(&sd.location)
    ));
    // The properties Athena uses; naslake's own (run id, job) and Glue's
    // bookkeeping (EXTERNAL, typeOfData) are left out.
    let props: Vec<String> = table
        .parameters
        .iter()
        .filter(|(k, _)| {
            k.as_str() == "classification"
                || k.as_str() == "compressionType"
                || k.starts_with("projection.")
                || k.as_str() == "storage.location.template"
        })
        .map(|(k, v)| format!("  {}={}", quote(k), quote(v)))
        .collect();
    out.push_str(&format!("TBLPROPERTIES (\n{}\n);\n", props.join(",\n")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_input_has_what_athena_needs() {
        let schema: TableSchema = toml::from_str(
            r#"
            name = "t"
            description = "d"
            columns = [
              { name = "ts", type = "timestamp", nullable = false, comment = "when" },
              { name = "v", type = "double", comment = "value" },
            ]
            partition_keys = [{ name = "dt", type = "string", comment = "day" }]
            "#,
        )
        .unwrap();
        let t = table_input(&schema, "s3://b/t/", Compression::Zstd).unwrap();
        assert_eq!(t.table_type, "EXTERNAL_TABLE");
        assert_eq!(t.parameters["classification"], "parquet");
        assert_eq!(t.storage_descriptor.serde_info.serialization_library, SERDE);
        assert_eq!(t.storage_descriptor.columns[0].type_name, "timestamp");
        assert_eq!(
            t.storage_descriptor.columns[1].comment.as_deref(),
            Some("value")
        );
        assert_eq!(t.partition_keys[0].name, "dt");
        let p = partition_input(
            &t,
            vec!["2024-01-01".into()],
            "s3://b/t/dt=2024-01-01/".into(),
        );
        assert_eq!(p.storage_descriptor.input_format, INPUT_FORMAT);
        assert_eq!(p.storage_descriptor.location, "s3://b/t/dt=2024-01-01/");

        let ddl = athena_ddl("db", &t);
        assert!(
            ddl.starts_with("CREATE EXTERNAL TABLE `db`.`t` (\n  `ts` timestamp COMMENT 'when',")
        );
        assert!(ddl.contains("PARTITIONED BY (\n  `dt` string COMMENT 'day'\n)"));
        assert!(ddl.contains("LOCATION 's3://b/t/'"));
        assert!(ddl.contains("'classification'='parquet'"));
        assert!(!ddl.contains("EXTERNAL'"));
    }
}
