//! The job's digest: what decides what a job makes of an object, in one hash.
//! The state keeps it, and a run whose job's digest differs from the state's
//! reads everything again (the rows kept for unchanged objects were made by
//! another job).

use sha2::{Digest, Sha256};

use super::Job;

/// A digest of everything that decides what a job makes of an object: naslake's
/// version, the sources' specs, the tables' SQL, schemas and modes, the params.
/// Rows of unchanged objects are kept only when it is the same.
pub fn spec_digest(job: &Job) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    for (name, s) in &job.spec.sources {
        h.update(format!("source {name} {s:?}\n"));
    }
    for t in &job.tables {
        h.update(format!(
            "table {} {:?} {:?} {:?} {:?}\n",
            t.name,
            t.spec.mode,
            t.sql,
            t.schema.table_schema(),
            t.schema.partition_key_names()
        ));
    }
    // What happens to deleted objects' rows decides the tables too.
    h.update(format!("deletes {:?}\n", job.spec.incremental.deletes));
    // The params are in the SQL, substituted.
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
