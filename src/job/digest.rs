//! The job's digest: what decides what a job makes of an object, in one hash.
//! The state keeps it, and a run whose job's digest differs from the state's
//! reads everything again (the rows kept for unchanged objects were made by
//! another job).
//!
//! It hashes a canonical form, not the spec's text or `Debug`: the parts that
//! decide rows, serialised with serde to JSON whose object keys are sorted, so
//! that reordering what does not matter (sources in the spec, keys in a source's
//! options) keeps it, and naslake's own type layouts do not enter it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Deletes, Job, SourceSpec};
use crate::model::{RUNS_TABLE, WriteMode};

/// What the digest covers.
#[derive(Serialize)]
struct Canonical<'a> {
    /// naslake's version: another version may make other rows of the same input.
    naslake: &'static str,
    /// By name: the order of sources in the spec decides nothing.
    sources: BTreeMap<&'a str, &'a SourceSpec>,
    /// In spec order: a table's SQL may read the tables written before it.
    tables: Vec<TablePart<'a>>,
    /// What happens to deleted objects' rows decides the tables too.
    deletes: Deletes,
}

#[derive(Serialize)]
struct TablePart<'a> {
    name: &'a str,
    mode: WriteMode,
    /// With the params substituted (they are in the SQL).
    sql: Option<&'a str>,
    columns: Vec<ColumnPart<'a>>,
    partition_keys: Vec<&'a str>,
}

/// A column as far as rows go: its comment (and the table's description) are
/// for readers of the catalog, and editing them keeps the digest.
#[derive(Serialize)]
struct ColumnPart<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    nullable: bool,
    derived: bool,
}

/// A digest of everything that decides what a job makes of an object: naslake's
/// version, the sources' specs, the tables' SQL, schemas and modes, the params
/// (substituted in the SQL) and what happens to deleted objects' rows. Rows of
/// unchanged objects are kept only when it is the same. Hex SHA-256.
pub fn spec_digest(job: &Job) -> String {
    let canonical = Canonical {
        naslake: env!("CARGO_PKG_VERSION"),
        sources: job
            .spec
            .sources
            .iter()
            .map(|(name, s)| (name.as_str(), s))
            .collect(),
        // The run history decides no row of the job's own tables: declaring it
        // keeps the digest, so an incremental run goes on without a full read.
        tables: job
            .tables
            .iter()
            .filter(|t| t.name != RUNS_TABLE)
            .map(|t| TablePart {
                name: &t.name,
                mode: t.spec.mode,
                sql: t.sql.as_deref(),
                columns: t
                    .schema
                    .columns
                    .iter()
                    .map(|c| ColumnPart {
                        name: &c.name,
                        type_name: &c.type_name,
                        nullable: c.nullable,
                        derived: c.derived,
                    })
                    .collect(),
                partition_keys: t
                    .schema
                    .partition_keys
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect(),
            })
            .collect(),
        deletes: job.spec.incremental.deletes,
    };
    // Serialising these types cannot fail (string keys only, no custom
    // `Serialize` that errors); if it ever did, the error's text is hashed, which
    // still differs from any real digest and so means a full run, never wrong rows.
    let text = match serde_json::to_value(&canonical) {
        Ok(v) => sorted(v).to_string(),
        Err(e) => format!("unserialisable job: {e}"),
    };
    let mut h = Sha256::new();
    h.update(text.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// `v` with every object's keys in sorted order, whatever map serde_json was
/// built with (its `preserve_order` feature keeps insertion order, and a
/// source's options are a TOML table in file order).
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let by_key: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(by_key.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sources::Registry;

    fn sensor_job() -> Job {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        Job::load(
            &root.join("jobs/sensor_readings.toml"),
            &[],
            &Registry::builtin(),
        )
        .unwrap()
    }

    #[test]
    fn the_digest_is_stable_under_reordering_that_does_not_matter() {
        let job = sensor_job();
        let digest = spec_digest(&job);
        assert_eq!(digest.len(), 64);
        assert_eq!(spec_digest(&job), digest, "deterministic");
        assert!(job.spec.sources.len() > 1, "the test needs two sources");

        // The sources in the other order.
        let mut reordered = job.clone();
        reordered.spec.sources.reverse();
        assert_ne!(
            format!("{:?}", reordered.spec.sources),
            format!("{:?}", job.spec.sources),
            "the reordering is one Debug would see"
        );
        assert_eq!(spec_digest(&reordered), digest);

        // The same options written in another order (a TOML table keeps the
        // file's order).
        let with_options = |keys: &[&str]| {
            let mut j = job.clone();
            let s = j.spec.sources.values_mut().next().unwrap();
            for k in keys {
                s.options
                    .insert(k.to_string(), toml::Value::String(k.to_string()));
            }
            j
        };
        let (ab, ba) = (with_options(&["a", "b"]), with_options(&["b", "a"]));
        let keys = |j: &Job| {
            j.spec.sources[0]
                .options
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_ne!(keys(&ab), keys(&ba), "inserted in two orders");
        assert_eq!(spec_digest(&ab), spec_digest(&ba));
        assert_ne!(spec_digest(&ab), digest);

        // A column's comment is for readers, not rows.
        let mut commented = job.clone();
        commented.tables[0].schema.columns[0].comment = "another comment".into();
        commented.tables[0].schema.description = "another description".into();
        assert_eq!(spec_digest(&commented), digest);
    }

    #[test]
    fn the_digest_changes_with_what_decides_rows() {
        let job = sensor_job();
        let digest = spec_digest(&job);

        let mut sql = job.clone();
        let t = sql
            .tables
            .iter_mut()
            .find(|t| t.sql.is_some())
            .expect("a table with SQL");
        t.sql = t
            .sql
            .as_ref()
            .map(|s| s.replace("SELECT", "SELECT DISTINCT"));
        assert_ne!(
            t.sql,
            job.tables.iter().find(|t| t.sql.is_some()).unwrap().sql
        );
        assert_ne!(spec_digest(&sql), digest);

        let mut option = job.clone();
        let s = option.spec.sources.values_mut().next().unwrap();
        s.options
            .insert("digest_test".into(), toml::Value::Boolean(true));
        assert_ne!(spec_digest(&option), digest);

        let mut mode = job.clone();
        mode.tables[0].spec.mode = match mode.tables[0].spec.mode {
            WriteMode::Append => WriteMode::Overwrite,
            _ => WriteMode::Append,
        };
        assert_ne!(spec_digest(&mode), digest);

        let mut renamed = job.clone();
        renamed.tables[0].schema.columns[0].name = "renamed".into();
        assert_ne!(spec_digest(&renamed), digest);

        let mut retyped = job.clone();
        let c = &mut retyped.tables[0].schema.columns[0];
        c.type_name = if c.type_name == "bigint" {
            "double"
        } else {
            "bigint"
        }
        .into();
        assert_ne!(spec_digest(&retyped), digest);

        let mut nullable = job.clone();
        let c = &mut nullable.tables[0].schema.columns[0];
        c.nullable = !c.nullable;
        assert_ne!(spec_digest(&nullable), digest);

        let mut deletes = job.clone();
        deletes.spec.incremental.deletes = match job.spec.incremental.deletes {
            Deletes::Keep => Deletes::Propagate,
            Deletes::Propagate => Deletes::Keep,
        };
        assert_ne!(spec_digest(&deletes), digest);
    }
}
