//! The CSV source's options in a job spec (`sources.NAME.csv`, `sources.NAME.columns`)
//! and their checks.

use bytesize::ByteSize;
use serde::Deserialize;

/// Columns the CSV source adds to every row: where the row came from.
pub const LINEAGE_COLUMNS: [&str; 2] = ["source_key", "line_number"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    #[serde(default)]
    pub csv: CsvFormat,
    /// The declared input columns, which type every row.
    pub columns: Vec<InputColumn>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvFormat {
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    #[serde(default = "default_quote")]
    pub quote: String,
    /// The first line names the columns (matched to the declared columns by name,
    /// in any order, case-insensitively).
    #[serde(default = "default_true")]
    pub header: bool,
    /// A record longer than this is rejected (and memory stays bounded).
    #[serde(default = "default_max_record")]
    pub max_record_bytes: ByteSize,
}

impl Default for CsvFormat {
    fn default() -> Self {
        Self {
            delimiter: default_delimiter(),
            quote: default_quote(),
            header: true,
            max_record_bytes: default_max_record(),
        }
    }
}

fn default_delimiter() -> String {
    ",".into()
}
fn default_quote() -> String {
    "\"".into()
}
fn default_true() -> bool {
    true
}
fn default_max_record() -> ByteSize {
    ByteSize::mib(1)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    #[serde(default = "default_true")]
    pub nullable: bool,
    /// How a `timestamp` column is written in the file.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Bigint,
    Double,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// ISO-8601 (offset optional, UTC assumed) or an integer of epoch milliseconds.
    #[default]
    Auto,
    Iso8601,
    EpochMillis,
    EpochSeconds,
}

impl CsvOptions {
    /// Checks what serde cannot; errors name the key under `sources.NAME`.
    pub fn check(&self) -> Result<(), String> {
        let csv = &self.csv;
        if self.columns.is_empty() {
            return Err("`columns` must declare at least one column".into());
        }
        for (key, v) in [("delimiter", &csv.delimiter), ("quote", &csv.quote)] {
            if v.len() != 1 || !v.is_ascii() || v == "\n" || v == "\r" {
                return Err(format!(
                    "`csv.{key}` is {v:?}; it must be one ASCII character other than a line break"
                ));
            }
        }
        if csv.delimiter == csv.quote {
            return Err("`csv`: delimiter and quote must differ".into());
        }
        if csv.max_record_bytes.as_u64() < 64 || csv.max_record_bytes.as_u64() > 256 << 20 {
            return Err("`csv.max_record_bytes` must be between 64 B and 256 MiB".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            crate::model::schema::check_identifier("column name", &c.name)
                .map_err(|e| format!("`columns`: {e}"))?;
            if LINEAGE_COLUMNS.contains(&c.name.as_str()) {
                return Err(format!(
                    "`columns`: `{}` is a lineage column the CSV source adds; rename it",
                    c.name
                ));
            }
            if !seen.insert(c.name.to_ascii_lowercase()) {
                return Err(format!("`columns`: `{}` is declared twice", c.name));
            }
            if c.kind != InputType::Timestamp && c.timestamp_format != TimestampFormat::Auto {
                return Err(format!(
                    "`columns`: `timestamp_format` is only allowed on timestamp columns (`{}`)",
                    c.name
                ));
            }
        }
        Ok(())
    }
}
