//! Job specs (`jobs/*.toml`): what a job reads, how it types its input, the SQL it
//! runs and the tables it writes. Unknown keys are errors, and every error names
//! the file and the key.
//!
//! `--set KEY=VALUE` overrides are applied to the parsed TOML document before it is
//! checked, so an override is validated exactly like a value written in the file.

use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::TableSchema;

/// Columns every source adds to its rows: where the row came from.
pub const LINEAGE_COLUMNS: [&str; 2] = ["source_key", "line_number"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name, used in logs and the run report.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Input location (any address form); a relative path is relative to the spec file.
    pub input: String,
    /// Output location; defaults to `./lake`.
    #[serde(default)]
    pub output: Option<String>,
    /// Catalog database the tables are registered in.
    #[serde(default = "default_database")]
    pub database: String,
    /// Values substituted for `${name}` in the job's SQL.
    #[serde(default)]
    pub params: IndexMap<String, toml::Value>,
    pub sources: IndexMap<String, SourceSpec>,
    /// Output tables, written in the order given (a table's SQL may read the tables
    /// written before it in the same run).
    pub tables: IndexMap<String, TableSpec>,

    /// The spec file; relative paths in it are resolved against its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_database() -> String {
    "naslake".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    pub format: SourceFormat,
    /// Key prefix under the job's input location.
    #[serde(default)]
    pub prefix: String,
    /// Accepted key endings, compared case-insensitively.
    #[serde(default = "default_csv_suffixes")]
    pub suffixes: Vec<String>,
    #[serde(default)]
    pub csv: CsvOptions,
    /// The declared input columns, which type every row.
    pub columns: Vec<InputColumn>,
}

fn default_csv_suffixes() -> Vec<String> {
    vec![".csv".into(), ".csv.gz".into()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    Csv,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
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

impl Default for CsvOptions {
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

impl CsvOptions {
    pub fn delimiter_byte(&self) -> u8 {
        self.delimiter.as_bytes()[0]
    }
    pub fn quote_byte(&self) -> u8 {
        self.quote.as_bytes()[0]
    }
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The table's schema file (relative to the spec file).
    pub schema: String,
    /// The SQL file that produces the table (relative to the spec file).
    #[serde(default)]
    pub sql: Option<String>,
    /// `rejects`: the table receives every row and file the sources rejected.
    #[serde(default)]
    pub from: Option<TableFrom>,
    #[serde(default)]
    pub mode: WriteMode,
    #[serde(default)]
    pub compression: Compression,
    /// Files are rolled over once they reach about this size.
    #[serde(default = "default_target_file_size")]
    pub target_file_size: ByteSize,
    /// Athena partition projection, one entry per partition key (all of them):
    /// Athena then computes partitions instead of reading them from Glue.
    #[serde(default)]
    pub projection: IndexMap<String, Projection>,
    /// Keep Glue's archived table versions on each update. Off by default: a table
    /// updated by every run would reach Glue's limit on versions.
    #[serde(default)]
    pub archive_versions: bool,
}

/// How Athena projects one partition key (Athena's `projection.KEY.*` properties).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Projection {
    /// Dates: `range = "2020-01-01,NOW"`, `format = "yyyy-MM-dd"`, optional
    /// `interval` and `interval_unit` (`DAYS`, `HOURS`, …).
    Date {
        range: String,
        format: String,
        #[serde(default)]
        interval: Option<u32>,
        #[serde(default)]
        interval_unit: Option<String>,
    },
    /// A fixed list of values.
    Enum { values: Vec<String> },
    /// Integers: `range = "0,100"`, optional `interval` and zero-padding `digits`.
    Integer {
        range: String,
        #[serde(default)]
        interval: Option<u32>,
        #[serde(default)]
        digits: Option<u32>,
    },
    /// The value must appear in the query's WHERE clause.
    Injected,
}

impl Projection {
    /// The table parameters for partition key `key`.
    pub fn parameters(&self, key: &str) -> Vec<(String, String)> {
        let p = |name: &str| format!("projection.{key}.{name}");
        let mut out = Vec::new();
        match self {
            Projection::Date {
                range,
                format,
                interval,
                interval_unit,
            } => {
                out.push((p("type"), "date".into()));
                out.push((p("range"), range.clone()));
                out.push((p("format"), format.clone()));
                if let Some(i) = interval {
                    out.push((p("interval"), i.to_string()));
                }
                if let Some(u) = interval_unit {
                    out.push((p("interval.unit"), u.clone()));
                }
            }
            Projection::Enum { values } => {
                out.push((p("type"), "enum".into()));
                out.push((p("values"), values.join(",")));
            }
            Projection::Integer {
                range,
                interval,
                digits,
            } => {
                out.push((p("type"), "integer".into()));
                out.push((p("range"), range.clone()));
                if let Some(i) = interval {
                    out.push((p("interval"), i.to_string()));
                }
                if let Some(d) = digits {
                    out.push((p("digits"), d.to_string()));
                }
            }
            Projection::Injected => out.push((p("type"), "injected".into())),
        }
        out
    }

    fn check(&self) -> std::result::Result<(), String> {
        let two_bounds =
            |range: &str| range.split(',').filter(|b| !b.trim().is_empty()).count() == 2;
        match self {
            Projection::Date { range, format, .. } => {
                if !two_bounds(range) {
                    return Err(format!(
                        "range `{range}` must be `START,END` (END may be NOW)"
                    ));
                }
                if format.trim().is_empty() {
                    return Err("format must be a date pattern such as yyyy-MM-dd".into());
                }
            }
            Projection::Enum { values } => {
                if values.is_empty() || values.iter().any(|v| v.is_empty() || v.contains(',')) {
                    return Err("values must be non-empty and contain no commas".into());
                }
            }
            Projection::Integer { range, .. } => {
                let bounds: Vec<_> = range.split(',').map(|b| b.trim().parse::<i64>()).collect();
                if bounds.len() != 2 || bounds.iter().any(|b| b.is_err()) {
                    return Err(format!("range `{range}` must be two integers `MIN,MAX`"));
                }
            }
            Projection::Injected => {}
        }
        Ok(())
    }
}

fn default_target_file_size() -> ByteSize {
    ByteSize::mib(128)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableFrom {
    Rejects,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    /// The run's output replaces the whole table.
    #[default]
    Overwrite,
    /// The run's output replaces the partitions it writes; others are kept.
    OverwritePartitions,
    /// The run's output is added to the table.
    Append,
}

impl WriteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::Overwrite => "overwrite",
            WriteMode::OverwritePartitions => "overwrite-partitions",
            WriteMode::Append => "append",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    Zstd,
    Snappy,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Snappy => "snappy",
        }
    }
}

/// A job spec with its schemas loaded and SQL read, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub spec: JobSpec,
    pub tables: Vec<JobTable>,
}

#[derive(Debug, Clone)]
pub struct JobTable {
    pub name: String,
    pub spec: TableSpec,
    pub schema: TableSchema,
    /// The SQL with `${param}` substituted; `None` for the rejects table.
    pub sql: Option<String>,
}

impl Job {
    /// Reads a job spec, applies `--set` overrides, and checks it completely.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Job> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let shown = path.display();
        let mut spec: JobSpec = if overrides.is_empty() {
            toml::from_str(&text).map_err(|e| Error::config(format!("job spec {shown}: {e}")))?
        } else {
            let mut doc: toml::Table = toml::from_str(&text)
                .map_err(|e| Error::config(format!("job spec {shown}: {e}")))?;
            for o in overrides {
                apply_override(&mut doc, o)
                    .map_err(|e| Error::config(format!("--set {o}: {e}")))?;
            }
            let merged = toml::to_string(&doc)
                .map_err(|e| Error::config(format!("job spec {shown}: {e}")))?;
            toml::from_str(&merged).map_err(|e| {
                Error::config(format!("job spec {shown} (with --set overrides): {e}"))
            })?
        };
        spec.path = path.to_path_buf();
        spec.validate()
            .map_err(|e| Error::config(format!("job spec {shown}: {e}")))?;

        let mut tables = Vec::new();
        for (name, t) in &spec.tables {
            let schema = TableSchema::load(&spec.resolve(&t.schema))?;
            if &schema.name != name {
                return Err(Error::config(format!(
                    "job spec {shown}: key `tables.{name}.schema` points at {} which defines table `{}`",
                    t.schema, schema.name
                )));
            }
            let sql = match &t.sql {
                Some(file) => {
                    let p = spec.resolve(file);
                    let raw = std::fs::read_to_string(&p).map_err(|source| Error::ReadFile {
                        path: p.clone(),
                        source,
                    })?;
                    Some(substitute_params(&raw, &spec.params).map_err(|e| {
                        Error::config(format!(
                            "{}: {e} (define it under [params] in {shown})",
                            p.display()
                        ))
                    })?)
                }
                None => None,
            };
            check_projection(name, t, &schema).map_err(|e| {
                Error::config(format!("job spec {shown}: `tables.{name}.projection`: {e}"))
            })?;
            tables.push(JobTable {
                name: name.clone(),
                spec: t.clone(),
                schema,
                sql,
            });
        }
        Ok(Job { spec, tables })
    }

    /// The table of this name.
    pub fn table(&self, name: &str) -> Option<&JobTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn rejects_table(&self) -> Option<&JobTable> {
        self.tables
            .iter()
            .find(|t| t.spec.from == Some(TableFrom::Rejects))
    }
}

/// Partition projection covers every partition key, and only append mode: Athena
/// then reads the partition directories directly, so the catalog switch that makes
/// an overwrite atomic (commit.rs) would not apply.
fn check_projection(
    name: &str,
    t: &TableSpec,
    schema: &TableSchema,
) -> std::result::Result<(), String> {
    if t.projection.is_empty() {
        return Ok(());
    }
    let keys = schema.partition_key_names();
    if keys.is_empty() {
        return Err(format!("table {name} has no partition keys to project"));
    }
    for key in &keys {
        if !t.projection.contains_key(key) {
            return Err(format!(
                "partition key `{key}` has no projection; Athena needs one for every partition key"
            ));
        }
    }
    for (key, p) in &t.projection {
        if !keys.contains(key) {
            return Err(format!(
                "`{key}` is not a partition key of {name} ({})",
                keys.join(", ")
            ));
        }
        p.check().map_err(|e| format!("`{key}`: {e}"))?;
    }
    if t.mode != WriteMode::Append {
        return Err(format!(
            "mode `{}` cannot be used with projection: Athena reads projected partitions straight from their directories, so an overwrite could not be switched atomically; use mode = \"append\" or drop the projection",
            t.mode.as_str()
        ));
    }
    Ok(())
}

impl JobSpec {
    /// Resolves a path written in the spec against the spec file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    /// The input location as written in the spec, made absolute when it is a
    /// relative local path.
    pub fn input_url(&self) -> String {
        if crate::storage::is_remote(&self.input) || self.input.starts_with("file://") {
            self.input.clone()
        } else {
            self.resolve(&self.input).display().to_string()
        }
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.sources.is_empty() {
            return Err("`sources` must define at least one source".into());
        }
        for (name, s) in &self.sources {
            let at = format!("sources.{name}");
            if !is_sql_identifier(name) {
                return Err(format!(
                    "`{at}`: source names are SQL table names: a-z, 0-9, _"
                ));
            }
            if s.columns.is_empty() {
                return Err(format!("`{at}.columns` must declare at least one column"));
            }
            if s.suffixes.iter().any(|x| x.is_empty()) {
                return Err(format!(
                    "`{at}.suffixes`: an empty suffix would match every key"
                ));
            }
            for (key, v) in [("delimiter", &s.csv.delimiter), ("quote", &s.csv.quote)] {
                if v.len() != 1 || !v.is_ascii() || v == "\n" || v == "\r" {
                    return Err(format!(
                        "`{at}.csv.{key}` is {v:?}; it must be one ASCII character other than a line break"
                    ));
                }
            }
            if s.csv.delimiter == s.csv.quote {
                return Err(format!("`{at}.csv`: delimiter and quote must differ"));
            }
            if s.csv.max_record_bytes.as_u64() < 64 || s.csv.max_record_bytes.as_u64() > 256 << 20 {
                return Err(format!(
                    "`{at}.csv.max_record_bytes` must be between 64 B and 256 MiB"
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for c in &s.columns {
                if !is_sql_identifier(&c.name) {
                    return Err(format!(
                        "`{at}.columns`: `{}` must be lowercase snake_case (a-z, 0-9, _)",
                        c.name
                    ));
                }
                if LINEAGE_COLUMNS.contains(&c.name.as_str()) {
                    return Err(format!(
                        "`{at}.columns`: `{}` is a lineage column every source adds; rename it",
                        c.name
                    ));
                }
                if !seen.insert(c.name.to_ascii_lowercase()) {
                    return Err(format!("`{at}.columns`: `{}` is declared twice", c.name));
                }
                if c.kind != InputType::Timestamp && c.timestamp_format != TimestampFormat::Auto {
                    return Err(format!(
                        "`{at}.columns`: `timestamp_format` is only allowed on timestamp columns (`{}`)",
                        c.name
                    ));
                }
            }
        }
        if self.tables.is_empty() {
            return Err("`tables` must define at least one output table".into());
        }
        let mut rejects = 0;
        for (name, t) in &self.tables {
            let at = format!("tables.{name}");
            match (&t.sql, &t.from) {
                (Some(_), None) => {}
                (None, Some(TableFrom::Rejects)) => {
                    rejects += 1;
                    if t.mode == WriteMode::OverwritePartitions {
                        return Err(format!(
                            "`{at}.mode`: a rejects table is written whole; use `overwrite` or `append`"
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "`{at}` needs exactly one of `sql = \"FILE.sql\"` or `from = \"rejects\"`"
                    ));
                }
            }
            if self.sources.contains_key(name) {
                return Err(format!(
                    "`{at}`: a source of the same name exists; names must differ"
                ));
            }
            if t.target_file_size.as_u64() < 1 << 20 || t.target_file_size.as_u64() > 4 << 30 {
                // FSx for ONTAP takes at most 5 GiB per upload; stay well under it.
                return Err(format!(
                    "`{at}.target_file_size` must be between 1 MiB and 4 GiB"
                ));
            }
        }
        if rejects != 1 {
            return Err(format!(
                "exactly one table must have `from = \"rejects\"` (found {rejects}): rejected rows are never dropped"
            ));
        }
        Ok(())
    }
}

fn is_sql_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Applies `a.b.c=VALUE` to a TOML document. VALUE is read as a TOML value when it
/// is one (`3.5`, `true`, `["a"]`, `"quoted"`), else as a plain string.
pub fn apply_override(doc: &mut toml::Table, assignment: &str) -> std::result::Result<(), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or("expected KEY=VALUE, e.g. --set params.zscore_threshold=2.5")?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a dotted key path"));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, parents) = path.split_last().expect("path is not empty");
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` in `{key}` is not a table"))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Replaces `${name}` in SQL with the param's SQL literal.
pub fn substitute_params(
    sql: &str,
    params: &IndexMap<String, toml::Value>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${` in SQL".to_string())?;
        let name = &after[..end];
        let value = params
            .get(name)
            .ok_or_else(|| format!("SQL uses `${{{name}}}` but no param `{name}` is set"))?;
        out.push_str(&sql_literal(value).map_err(|e| format!("param `{name}`: {e}"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn sql_literal(v: &toml::Value) -> std::result::Result<String, String> {
    Ok(match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_finite() => {
            let s = f.to_string();
            // Keep floats typed as floating point in SQL (`3` would be an integer).
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => return Err(format!("{other} cannot be used in SQL")),
    })
}

#[cfg(test)]
mod tests {
    use super::Projection;

    #[test]
    fn projections_become_athena_table_properties() {
        let date = Projection::Date {
            range: "2020-01-01,NOW".into(),
            format: "yyyy-MM-dd".into(),
            interval: Some(1),
            interval_unit: Some("DAYS".into()),
        };
        assert_eq!(
            date.parameters("dt"),
            [
                ("projection.dt.type", "date"),
                ("projection.dt.range", "2020-01-01,NOW"),
                ("projection.dt.format", "yyyy-MM-dd"),
                ("projection.dt.interval", "1"),
                ("projection.dt.interval.unit", "DAYS"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let int = Projection::Integer {
            range: "0,99".into(),
            interval: None,
            digits: Some(2),
        };
        assert_eq!(
            int.parameters("line")[2],
            ("projection.line.digits".into(), "2".into())
        );
        assert_eq!(
            Projection::Injected.parameters("site"),
            [("projection.site.type".to_string(), "injected".to_string())]
        );
        assert!(int.check().is_ok());
        assert!(
            Projection::Integer {
                range: "a,b".into(),
                interval: None,
                digits: None
            }
            .check()
            .is_err()
        );
        assert!(Projection::Enum { values: vec![] }.check().is_err());
        assert!(
            Projection::Date {
                range: "2020-01-01".into(),
                format: "yyyy".into(),
                interval: None,
                interval_unit: None
            }
            .check()
            .is_err()
        );
    }

    use super::*;

    #[test]
    fn overrides_parse_values_and_create_tables() {
        let mut doc: toml::Table = toml::from_str("[params]\nz = 3.0").unwrap();
        apply_override(&mut doc, "params.z=2.5").unwrap();
        apply_override(&mut doc, "sources.long.prefix=logs/2024").unwrap();
        assert_eq!(doc["params"]["z"].as_float(), Some(2.5));
        assert_eq!(doc["sources"]["long"]["prefix"].as_str(), Some("logs/2024"));
        assert!(apply_override(&mut doc, "params.z.x=1").is_err());
        assert!(apply_override(&mut doc, "novalue").is_err());
    }

    #[test]
    fn params_become_sql_literals() {
        let mut p = IndexMap::new();
        p.insert("t".to_string(), toml::Value::Float(3.0));
        p.insert("s".to_string(), toml::Value::String("it's".into()));
        assert_eq!(
            substitute_params("a > ${t} AND b = ${s}", &p).unwrap(),
            "a > 3.0 AND b = 'it''s'"
        );
        assert!(
            substitute_params("${missing}", &p)
                .unwrap_err()
                .contains("missing")
        );
    }
}
