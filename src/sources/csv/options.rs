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
    /// The first line (after `skip_lines`) names the columns (matched to the
    /// declared columns' headers, in any order, case-insensitively).
    #[serde(default = "default_true")]
    pub header: bool,
    /// A record longer than this is rejected (and memory stays bounded).
    #[serde(default = "default_max_record")]
    pub max_record_bytes: ByteSize,
    /// A label of the WHATWG Encoding Standard; a byte order mark overrides it.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// Physical lines before the header (a logger's device preamble).
    #[serde(default)]
    pub skip_lines: u64,
    /// Lines right after the header that are not data (a units row).
    #[serde(default)]
    pub skip_after_header: u64,
    /// Lines starting with this text are skipped wherever they are.
    #[serde(default)]
    pub comment: Option<String>,
    /// The decimal separator of `double` cells: `.` or `,`.
    #[serde(default = "default_decimal")]
    pub decimal: String,
    /// Cell texts (after trimming) that mean NULL in any column.
    #[serde(default = "default_null_values")]
    pub null_values: Vec<String>,
}

impl Default for CsvFormat {
    fn default() -> Self {
        Self {
            delimiter: default_delimiter(),
            quote: default_quote(),
            header: true,
            max_record_bytes: default_max_record(),
            encoding: default_encoding(),
            skip_lines: 0,
            skip_after_header: 0,
            comment: None,
            decimal: default_decimal(),
            null_values: default_null_values(),
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
fn default_encoding() -> String {
    "utf-8".into()
}
fn default_decimal() -> String {
    ".".into()
}
fn default_null_values() -> Vec<String> {
    vec![String::new()]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: InputType,
    #[serde(default = "default_true")]
    pub nullable: bool,
    /// The header text that names this column in the file (default: `name`).
    #[serde(default)]
    pub header: Option<String>,
    /// How a `timestamp` column is written in the file.
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// The IANA zone of timestamps written without an offset (default UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Which instant a local time that occurs twice (when DST ends) means.
    #[serde(default)]
    pub ambiguous: Ambiguous,
    /// Header columns whose cells, joined by one space, are this timestamp.
    #[serde(default)]
    pub from: Option<Vec<String>>,
    /// How a `date` column is written (a chrono pattern; default `%Y-%m-%d`).
    #[serde(default)]
    pub date_format: Option<String>,
}

impl InputColumn {
    /// The header text that names this column in a file.
    pub fn header_text(&self) -> &str {
        self.header.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    String,
    Bigint,
    Double,
    Boolean,
    Timestamp,
    Date,
}

/// How a timestamp is written: one of the built-in forms, or a chrono strftime
/// pattern (any value with a `%` in it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// ISO-8601 (offset optional) or an integer of epoch milliseconds.
    #[default]
    Auto,
    Iso8601,
    EpochMillis,
    EpochSeconds,
    Pattern(String),
}

impl<'de> Deserialize<'de> for TimestampFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match text.as_str() {
            "auto" => TimestampFormat::Auto,
            "iso8601" => TimestampFormat::Iso8601,
            "epoch_millis" => TimestampFormat::EpochMillis,
            "epoch_seconds" => TimestampFormat::EpochSeconds,
            p if p.contains('%') => TimestampFormat::Pattern(text),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "timestamp_format {other:?} is none of auto, iso8601, epoch_millis, epoch_seconds, and not a pattern (a pattern has `%` fields, e.g. \"%Y/%m/%d %H:%M:%S\")"
                )));
            }
        })
    }
}

/// Which instant a local time that occurs twice means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ambiguous {
    /// The first occurrence (still on daylight saving time).
    #[default]
    Earliest,
    /// The second occurrence (back on standard time).
    Latest,
    /// Neither: the record is rejected.
    Reject,
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
        match csv.decimal.as_str() {
            "." => {}
            "," if csv.delimiter != "," => {}
            "," => {
                return Err(
                    "`csv.decimal` is \",\" while the delimiter is \",\" too; set `csv.delimiter` to \";\" or \"\\t\""
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "`csv.decimal` is {other:?}; it must be \".\" or \",\""
                ));
            }
        }
        if !csv.header && csv.skip_after_header > 0 {
            return Err(
                "`csv.skip_after_header` skips lines after the header, but `csv.header` is false; use `csv.skip_lines`"
                    .into(),
            );
        }
        if let Some(c) = &csv.comment
            && (c.is_empty() || c.contains(['\n', '\r']) || c.contains(csv.quote.as_str()))
        {
            return Err(format!(
                "`csv.comment` is {c:?}; it must be text on one line without the quote character"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut headers = std::collections::HashSet::new();
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
            let only = |key: &str, kind: &str| {
                format!(
                    "`columns`: `{key}` is only allowed on {kind} columns (`{}`)",
                    c.name
                )
            };
            if c.kind != InputType::Timestamp {
                if c.timestamp_format != TimestampFormat::Auto {
                    return Err(only("timestamp_format", "timestamp"));
                }
                if c.time_zone.is_some() {
                    return Err(only("time_zone", "timestamp"));
                }
                if c.ambiguous != Ambiguous::Earliest {
                    return Err(only("ambiguous", "timestamp"));
                }
                if c.from.is_some() {
                    return Err(only("from", "timestamp"));
                }
            }
            if c.kind != InputType::Date && c.date_format.is_some() {
                return Err(only("date_format", "date"));
            }
            if let Some(from) = &c.from {
                if !csv.header {
                    return Err(format!(
                        "`columns`: `{}` is built `from` header columns, but `csv.header` is false",
                        c.name
                    ));
                }
                if from.is_empty() || from.iter().any(|h| h.trim().is_empty()) {
                    return Err(format!(
                        "`columns`: `{}`: `from` must name one or more header columns",
                        c.name
                    ));
                }
                if c.header.is_some() {
                    return Err(format!(
                        "`columns`: `{}` has both `header` and `from`; a column built from several has no header of its own",
                        c.name
                    ));
                }
            } else if !headers.insert(c.header_text().trim().to_lowercase()) {
                return Err(format!(
                    "`columns`: header {:?} names two columns",
                    c.header_text().trim()
                ));
            }
        }
        Ok(())
    }
}
