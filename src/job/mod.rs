//! What to do: a job spec ([`spec`]) with its sources configured, its table
//! schemas ([`crate::model::schema`]) loaded and its SQL read, checked completely
//! before any work; and the job's [`digest`], which the state keeps.

pub mod digest;
pub mod params;
pub mod snapshot;
pub mod spec;

use std::path::Path;
use std::sync::Arc;

use crate::base::error::{Error, Result};
use crate::model::WriteMode;
use crate::model::schema::{self, TableSchema};
use crate::model::{Compression, RUNS_TABLE, runs_schema};
use crate::sources::{AnySource, Registry};
pub use digest::spec_digest;
use params::{apply_override, substitute_params};
pub use snapshot::{JobSnapshot, SpecFiles};
pub use spec::{
    COMMON_SOURCE_KEYS, Deletes, IncrementalSpec, JobSpec, Projection, SourceSpec, TableFrom,
    TableSpec,
};

/// A job spec with its sources configured, schemas loaded and SQL read, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub spec: JobSpec,
    /// In spec order.
    pub sources: Vec<Arc<dyn AnySource>>,
    /// In spec order, the rejects table among them (added when the spec has none).
    pub tables: Vec<JobTable>,
    /// The key links tables it declares (`FORMAT_key_links`): written beside the
    /// job's tables, outside its output, at each commit.
    pub key_links: Vec<KeyLinksTable>,
}

/// A key links table of a job: which of its sources it maps, and where it goes.
#[derive(Debug, Clone)]
pub struct KeyLinksTable {
    pub name: String,
    pub schema: TableSchema,
    /// Its own location (a URL outside the job's output).
    pub location: String,
    /// Its own database, when not the job's.
    pub database: Option<String>,
    /// The job's sources of its format.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct JobTable {
    pub name: String,
    pub spec: TableSpec,
    pub schema: TableSchema,
    /// The SQL that produces the table, `${param}`s substituted (for a table of a
    /// source's rows, the `SELECT` of its columns); `None` for the rejects table.
    pub sql: Option<String>,
}

impl Job {
    /// Reads a job spec, applies `--set` overrides, and checks it completely.
    pub fn load(path: &Path, overrides: &[String], registry: &Registry) -> Result<Job> {
        Job::load_from(path, overrides, registry, &SpecFiles::disk())
    }

    /// [`Job::load`], reading the spec and the files it names through `files`
    /// (the disk, or a plan's snapshot of them).
    pub fn load_from(
        path: &Path,
        overrides: &[String],
        registry: &Registry,
        files: &SpecFiles,
    ) -> Result<Job> {
        let text = files.read(path)?;
        let shown = path.display();
        let mut spec = parse_spec(&text, overrides)
            .map_err(|e| Error::config(format!("job spec {shown}: {e}")))?;
        spec.path = path.to_path_buf();
        spec.validate()
            .map_err(|e| Error::config(format!("job spec {shown}: {e}")))?;
        let mut sources = Vec::new();
        for (name, s) in &spec.sources {
            let source = registry.configure(name, s).map_err(|e| {
                let hint = if e.contains("unknown field") {
                    format!(" (every source also takes: {COMMON_SOURCE_KEYS})")
                } else {
                    String::new()
                };
                Error::config(format!("job spec {shown}: `sources.{name}`: {e}{hint}"))
            })?;
            sources.push(source);
        }

        let mut tables = Vec::new();
        let mut key_links = Vec::new();
        for (name, t) in &spec.tables {
            let at = |e: String| Error::config(format!("job spec {shown}: `tables.{name}`: {e}"));
            if let Some(format) = spec.key_links_format(name) {
                key_links.push(key_links_table(&spec, name, t, format, &sources).map_err(at)?);
                continue;
            }
            if name == RUNS_TABLE {
                tables.push(JobTable {
                    name: name.clone(),
                    spec: t.clone(),
                    schema: runs_schema(),
                    sql: None,
                });
                continue;
            }
            let schema = match (&t.schema, t.from) {
                (Some(file), _) => {
                    let p = spec.resolve(file);
                    let schema = TableSchema::parse(&files.read(&p)?, &p.display().to_string())?;
                    if &schema.name != name {
                        return Err(at(format!(
                            "`schema` points at {file}, which defines table `{}`",
                            schema.name
                        )));
                    }
                    schema
                }
                (None, Some(TableFrom::Rejects)) => builtin_rejects(name, &sources).map_err(at)?,
                (None, None) => unreachable!("validated: only a rejects table may omit its schema"),
            };
            if t.from == Some(TableFrom::Rejects) {
                check_rejects_schema(&schema, &sources).map_err(at)?;
            }
            let sql = match (&t.sql, t.from) {
                (Some(file), _) => {
                    let p = spec.resolve(file);
                    let raw = files.read(&p)?;
                    Some(substitute_params(&raw, &spec.params).map_err(|e| {
                        Error::config(format!(
                            "{}: {e} (define it under [params] in {shown})",
                            p.display()
                        ))
                    })?)
                }
                (None, Some(TableFrom::Rejects)) => None,
                (None, None) => {
                    let source = match &t.source {
                        Some(s) => sources.iter().find(|x| x.name() == s),
                        None => sources.first(),
                    }
                    .expect("validated: the source exists");
                    Some(select_source_columns(&schema, source.as_ref()).map_err(at)?)
                }
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
        if !tables
            .iter()
            .any(|t| t.spec.from == Some(TableFrom::Rejects))
        {
            tables.push(
                default_rejects_table(&spec, &sources)
                    .map_err(|e| Error::config(format!("job spec {shown}: {e}")))?,
            );
        }
        Ok(Job {
            spec,
            sources,
            tables,
            key_links,
        })
    }

    /// The run history's table, when the job declares it (`[tables.naslake_runs]`):
    /// no step writes it but the commit, from the run reports.
    pub fn runs_table(&self) -> Option<&JobTable> {
        self.table(RUNS_TABLE)
    }

    /// The table of this name.
    pub fn table(&self, name: &str) -> Option<&JobTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn rejects_table(&self) -> &JobTable {
        self.tables
            .iter()
            .find(|t| t.spec.from == Some(TableFrom::Rejects))
            .expect("loading adds a rejects table when the spec has none")
    }
}

/// Parses a spec and applies the overrides. An override that makes the spec
/// invalid is named, with what the key allows.
fn parse_spec(text: &str, overrides: &[String]) -> std::result::Result<JobSpec, String> {
    if overrides.is_empty() {
        return toml::from_str(text).map_err(|e| e.to_string());
    }
    let parse = |doc: &toml::Table| toml::Value::Table(doc.clone()).try_into::<JobSpec>();
    let base: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut doc = base.clone();
    for o in overrides {
        apply_override(&mut doc, o).map_err(|e| format!("--set {o}: {e}"))?;
    }
    let merged_error = match parse(&doc) {
        Ok(spec) => return Ok(spec),
        Err(e) => e,
    };
    // An override may supply what the file lacks; when the file alone is valid,
    // the first override that breaks it is named, with what its key allows.
    if parse(&base).is_err() {
        return Err(format!("(with --set overrides) {merged_error}"));
    }
    let mut doc = base;
    for o in overrides {
        apply_override(&mut doc, o).map_err(|e| format!("--set {o}: {e}"))?;
        if let Err(e) = parse(&doc) {
            let key = o.split_once('=').map_or(o.as_str(), |(k, _)| k.trim());
            return Err(format!("--set {o}: `{key}`: {}", e.message()));
        }
    }
    Err(merged_error.to_string())
}

/// A rejects table must have the rejects columns of every source of the job (and
/// so all sources must share one rejects layout).
fn check_rejects_schema(
    schema: &TableSchema,
    sources: &[Arc<dyn AnySource>],
) -> std::result::Result<(), String> {
    let have = schema.file_schema();
    for s in sources {
        let want = s.rejects_table();
        let want_schema = want.file_schema();
        let same = want_schema.fields().len() == have.fields().len()
            && want_schema
                .fields()
                .iter()
                .zip(have.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
        if !same || !schema.partition_keys.is_empty() {
            let cols: Vec<String> = want
                .columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.type_name))
                .collect();
            return Err(format!(
                "a rejects table of a `{}` source has exactly these columns and no partition keys: {}{}",
                s.format(),
                cols.join(", "),
                if sources.len() > 1 {
                    " (a job whose sources reject into different columns needs one job per kind)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(())
}

/// The rejects table of the job's sources' kind, named `name`.
fn builtin_rejects(
    name: &str,
    sources: &[Arc<dyn AnySource>],
) -> std::result::Result<TableSchema, String> {
    let mut schema = sources
        .first()
        .expect("validated: a job has sources")
        .rejects_table();
    schema.name = name.to_string();
    Ok(schema)
}

/// A job that declares no rejects table gets `JOB_rejects`: rejected rows are
/// never dropped.
fn default_rejects_table(
    spec: &JobSpec,
    sources: &[Arc<dyn AnySource>],
) -> std::result::Result<JobTable, String> {
    let name = format!("{}_rejects", spec.name);
    schema::check_identifier("table name", &name).map_err(|e| {
        format!("the job declares no rejects table and `{name}` cannot be one ({e}): add a table with `from = \"rejects\"`")
    })?;
    if spec.tables.contains_key(&name) {
        return Err(format!(
            "table `{name}` is not the rejects table; add `from = \"rejects\"` to one table"
        ));
    }
    let schema = builtin_rejects(&name, sources)?;
    check_rejects_schema(&schema, sources)?;
    Ok(JobTable {
        name,
        spec: TableSpec {
            schema: None,
            sql: None,
            source: None,
            from: Some(TableFrom::Rejects),
            mode: WriteMode::Overwrite,
            compression: Compression::default(),
            target_file_size: spec::default_target_file_size(),
            projection: Default::default(),
            archive_versions: false,
            location: None,
            database: None,
        },
        schema,
        sql: None,
    })
}

/// The key links table `name` of the job's sources of `format`.
fn key_links_table(
    spec: &JobSpec,
    name: &str,
    t: &TableSpec,
    format: &str,
    sources: &[Arc<dyn AnySource>],
) -> std::result::Result<KeyLinksTable, String> {
    let of_format: Vec<&Arc<dyn AnySource>> =
        sources.iter().filter(|s| s.format() == format).collect();
    let schema = of_format
        .first()
        .and_then(|s| s.key_links_table())
        .ok_or_else(|| {
            format!("`{format}` sources keep their object keys in clear: there are no key links to write")
        })?;
    if schema.name != name {
        return Err(format!(
            "the key links table of `{format}` sources is `{}`",
            schema.name
        ));
    }
    Ok(KeyLinksTable {
        name: name.to_string(),
        schema,
        location: spec.url_of(
            t.location
                .as_deref()
                .expect("validated: a key links table has a location"),
        ),
        database: t.database.clone(),
        sources: of_format.iter().map(|s| s.name().to_string()).collect(),
    })
}

/// The SQL of a table that is one source's rows as they are: its schema's columns
/// (partition keys last), each of which the source must have.
fn select_source_columns(
    schema: &TableSchema,
    source: &dyn AnySource,
) -> std::result::Result<String, String> {
    let have = source.schema();
    let mut cols = Vec::new();
    for c in schema.columns.iter().chain(&schema.partition_keys) {
        if have.field_with_name(&c.name).is_err() {
            let names: Vec<&str> = have.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(format!(
                "takes the rows of source `{}`, which has no column `{}` (its columns: {}); give the table a `sql` file",
                source.name(),
                c.name,
                names.join(", ")
            ));
        }
        cols.push(format!("\"{}\"", c.name));
    }
    Ok(format!(
        "SELECT {} FROM \"{}\"",
        cols.join(", "),
        source.name()
    ))
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

#[cfg(test)]
mod tests {
    use super::parse_spec;

    const SPEC: &str =
        "name = \"j\"\n[sources.s]\nformat = \"csv\"\n[tables.t]\nschema = \"t.toml\"\n";

    #[test]
    fn an_override_may_supply_what_the_file_lacks() {
        let without_name = SPEC.replace("name = \"j\"\n", "");
        assert!(parse_spec(&without_name, &[]).is_err());
        let spec = parse_spec(&without_name, &["name=from-cli".into()]).unwrap();
        assert_eq!(spec.name, "from-cli");
    }

    #[test]
    fn the_override_that_breaks_a_valid_file_is_named_with_what_it_allows() {
        let e = parse_spec(
            SPEC,
            &["params.x=1".into(), "tables.t.mode=sideways".into()],
        )
        .unwrap_err();
        assert!(
            e.starts_with("--set tables.t.mode=sideways: `tables.t.mode`:")
                && e.contains("overwrite-partitions"),
            "{e}"
        );
    }
}
