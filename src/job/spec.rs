//! Job specs (`jobs/*.toml`): what a job reads, the SQL it runs and the tables it
//! writes. Unknown keys are errors, and every error names the file and the key.
//! A source's own options are its kind's ([`crate::sources::Source::Options`]).

use std::path::{Path, PathBuf};

use bytesize::ByteSize;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::model::{Compression, RUNS_TABLE, WriteMode};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name, used in logs and the run report.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Input location (any address form); a relative path is relative to the spec
    /// file. Sources that list objects read under it; a source with its own
    /// discovery needs none.
    #[serde(default)]
    pub input: Option<String>,
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
    /// Incremental runs: read only what changed since the last committed run.
    #[serde(default)]
    pub incremental: IncrementalSpec,

    /// The spec file; relative paths in it are resolved against its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_database() -> String {
    "naslake".into()
}

pub use crate::sources::{COMMON_SOURCE_KEYS, SourceSpec};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The table's schema file (relative to the spec file). A rejects table may
    /// leave it out: it then has its sources' built-in rejects columns.
    #[serde(default)]
    pub schema: Option<String>,
    /// The SQL file that produces the table (relative to the spec file).
    #[serde(default)]
    pub sql: Option<String>,
    /// The table is the rows of this source as they are (its schema's columns are
    /// the source's); the default when the job has one source and no `sql`.
    #[serde(default)]
    pub source: Option<String>,
    /// `rejects`: the table receives every row and item the sources rejected.
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
    /// A key links table's own location (required for one, outside the job's
    /// output, so it can have permissions of its own); no other table takes it.
    #[serde(default)]
    pub location: Option<String>,
    /// A key links table's own database (the job's by default).
    #[serde(default)]
    pub database: Option<String>,
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

    pub(crate) fn check(&self) -> std::result::Result<(), String> {
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

pub(crate) fn default_target_file_size() -> ByteSize {
    ByteSize::mib(128)
}

/// `[incremental]`: how a run relates to the last committed one.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSpec {
    /// Runs compare the listing with the state and read only new and changed
    /// objects (`--incremental` / `--full` decide for one run).
    #[serde(default)]
    pub enabled: bool,
    /// What happens to the rows of an object that is gone from the share.
    #[serde(default)]
    pub deletes: Deletes,
    /// The lease's time to live; a run renews it every third of it.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

impl Default for IncrementalSpec {
    fn default() -> Self {
        IncrementalSpec {
            enabled: false,
            deletes: Deletes::default(),
            lease_seconds: default_lease_seconds(),
        }
    }
}

fn default_lease_seconds() -> u64 {
    600
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Deletes {
    /// Its rows are removed, as a full run over the share would have it.
    #[default]
    Propagate,
    /// Its rows stay (history); they are replaced if it comes back changed.
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableFrom {
    Rejects,
}

/// The run history's table is declared by its name alone: naslake fills it from
/// the run reports, with its built-in schema, written whole at each commit.
fn check_runs_table(t: &TableSpec) -> std::result::Result<(), String> {
    if t.schema.is_some() || t.sql.is_some() || t.source.is_some() || t.from.is_some() {
        return Err(format!(
            "{RUNS_TABLE} is the run history, filled from the run reports with its built-in schema; declare it without `schema`, `sql`, `source` or `from`"
        ));
    }
    if t.mode != WriteMode::Overwrite || !t.projection.is_empty() {
        return Err(format!(
            "{RUNS_TABLE} is written whole at each commit; it takes no `mode` but `overwrite` and no `projection`"
        ));
    }
    Ok(())
}

/// The suffix of a key links table's name: `FORMAT_key_links` maps the disguised
/// keys of the job's sources of that format back to their real keys.
pub const KEY_LINKS_SUFFIX: &str = "_key_links";

/// A key links table is declared by its name and its `location` (and optionally
/// its `database`): naslake fills it, with its built-in schema, whole at each
/// commit.
fn check_key_links_table(t: &TableSpec) -> std::result::Result<(), String> {
    if t.schema.is_some() || t.sql.is_some() || t.source.is_some() || t.from.is_some() {
        return Err("a key links table has a built-in schema and is filled by naslake; declare it with `location` (and `database`) only".into());
    }
    if t.mode != WriteMode::Overwrite || !t.projection.is_empty() {
        return Err("a key links table is written whole at each commit; it takes no `mode` but `overwrite` and no `projection`".into());
    }
    match t.location.as_deref() {
        None | Some("") => Err("`location` is required: the URL the links are written to, outside the job's output, so that it can be given permissions of its own".into()),
        Some(_) => Ok(()),
    }
}

impl JobSpec {
    /// The source format whose key links table `name` is, when it is one
    /// (`FORMAT_key_links`, FORMAT the format of one of the job's sources).
    pub fn key_links_format(&self, name: &str) -> Option<&str> {
        let format = name.strip_suffix(KEY_LINKS_SUFFIX)?;
        self.sources
            .values()
            .find(|s| s.format == format)
            .map(|s| s.format.as_str())
    }

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
    pub fn input_url(&self) -> Option<String> {
        Some(self.url_of(self.input.as_deref()?))
    }

    /// A location written in the spec: a relative local path is relative to the
    /// spec file's directory, as the input is.
    pub fn url_of(&self, written: &str) -> String {
        if crate::storage::is_remote(written) || written.starts_with("file://") {
            written.to_string()
        } else {
            self.resolve(written).display().to_string()
        }
    }

    /// The checks that need no source kind and no schema file.
    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.sources.is_empty() {
            return Err("`sources` must define at least one source".into());
        }
        for name in self.sources.keys() {
            if !is_sql_identifier(name) {
                return Err(format!(
                    "`sources.{name}`: source names are SQL table names: a-z, 0-9, _"
                ));
            }
        }
        if self.tables.is_empty() {
            return Err("`tables` must define at least one output table".into());
        }
        let mut rejects = 0;
        for (name, t) in &self.tables {
            let at = format!("tables.{name}");
            if self.key_links_format(name).is_some() {
                check_key_links_table(t).map_err(|e| format!("`{at}`: {e}"))?;
                continue;
            }
            if t.location.is_some() || t.database.is_some() {
                return Err(format!(
                    "`{at}`: only a key links table (FORMAT{KEY_LINKS_SUFFIX}) takes `location` and `database`; the job's tables live under its output, in its database"
                ));
            }
            if name == RUNS_TABLE {
                check_runs_table(t).map_err(|e| format!("`{at}`: {e}"))?;
                continue;
            }
            match (&t.sql, &t.source, &t.from) {
                (Some(_), None, None) => {}
                (None, Some(src), None) if !self.sources.contains_key(src) => {
                    return Err(format!(
                        "`{at}.source`: no source `{src}` (sources: {})",
                        self.source_names()
                    ));
                }
                (None, Some(_), None) => {}
                (None, None, None) if self.sources.len() == 1 => {}
                (None, None, None) => {
                    return Err(format!(
                        "`{at}` needs `sql = \"FILE.sql\"`, or `source = \"NAME\"` to take the rows of one source as they are (sources: {})",
                        self.source_names()
                    ));
                }
                (None, None, Some(TableFrom::Rejects)) => {
                    rejects += 1;
                    if t.mode == WriteMode::OverwritePartitions {
                        return Err(format!(
                            "`{at}.mode`: a rejects table is written whole; use `overwrite` or `append`"
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "`{at}` takes one of `sql = \"FILE.sql\"`, `source = \"NAME\"` or `from = \"rejects\"`"
                    ));
                }
            }
            if t.schema.is_none() && t.from.is_none() {
                return Err(format!(
                    "`{at}.schema` is missing: name the table's schema file (schemas/{name}.toml)"
                ));
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
        if rejects > 1 {
            return Err(format!(
                "only one table may have `from = \"rejects\"` (found {rejects})"
            ));
        }
        Ok(())
    }

    fn source_names(&self) -> String {
        self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn is_sql_identifier(s: &str) -> bool {
    crate::model::schema::check_identifier("name", s).is_ok()
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
}
