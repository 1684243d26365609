//! Key links tables (`FORMAT_key_links`): for a source kind that disguises its
//! object keys, the way back from each name the lake holds to the real key,
//! written only when the job declares the table, at a location (and in a
//! database) of its own so that it can have permissions of its own.
//!
//! The table lists exactly the objects the committed state lists for those
//! sources: an object read by this run from its item (its sealed key opened), any
//! other from the table's previous version. It is written whole as a new version
//! (`LOCATION/JOB/v-RUN_ID/`, so jobs may share a location) before the job's
//! tables are switched and registered after, so a failed run leaves the catalog
//! as it was. The previous version is the last committed run's (`v-RUN_ID` of
//! the state's run) when it is there, so a run killed between its switch and the
//! registration loses no link; else the registered one. Registration removes the
//! job's other versions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, Int64Array, RecordBatch, StringArray, StringBuilder};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression as PqCompression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;

use crate::base::error::{Error, Result};
use crate::base::warnings::Warnings;
use crate::catalog::table_input::table_input;
use crate::catalog::{Catalog, TableChange, TableEntry};
use crate::commit::state::JobState;
use crate::job::{Job, KeyLinksTable};
use crate::model::{Compression, WorkItem};
use crate::storage::Location;
use crate::write::carry;

/// Rows per record batch written.
const BATCH_ROWS: usize = 65_536;

/// One link: a name and the object behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    object_key: String,
    size: i64,
    etag: Option<String>,
}

/// A key links table's new version, written and waiting for the switch.
pub struct Prepared<'a> {
    table: &'a KeyLinksTable,
    location: Location,
    database: String,
    version: String,
    before: Option<TableEntry>,
    rows: u64,
}

/// Checks, before any work, that each key links table lies outside the job's
/// input and output (it must be restrictable on its own).
pub fn check_locations(job: &Job, input: Option<&Location>, output: &Location) -> Result<()> {
    for t in &job.key_links {
        let at = Location::open(&t.location)?;
        let overlaps = |other: &Location| other.contains(&at) || at.contains(other);
        if overlaps(output) || input.is_some_and(overlaps) {
            return Err(Error::config(format!(
                "`tables.{}.location` {} overlaps the job's input or output: the links name patients, so they go to a location of their own",
                t.name, at.display
            )));
        }
    }
    Ok(())
}

/// Writes each key links table's new version for the state this run commits.
#[allow(clippy::too_many_arguments)]
pub async fn prepare<'a>(
    job: &'a Job,
    catalog: &Catalog,
    database: &str,
    run_id: &str,
    base_run: Option<&str>,
    state: &JobState,
    items: &[&WorkItem],
    warnings: &Warnings,
) -> Result<Vec<Prepared<'a>>> {
    let mut out = Vec::new();
    for table in &job.key_links {
        let (location, database) = placement(job, table, database)?;
        let before = catalog.get(&database, &table.name).await?;
        let previous = previous_version(&location, before.as_ref(), base_run).await?;
        let batch_rows = links_of(job, table, state, items, &previous, warnings).await?;
        let version = format!("v-{run_id}");
        let rows = write_version(&location, table, &version, batch_rows).await?;
        out.push(Prepared {
            table,
            location,
            database,
            version,
            before,
            rows,
        });
    }
    Ok(out)
}

/// Where a job's versions of a key links table go (a folder of its own under the
/// table's location), and the database that registers it (its own, or the job's).
fn placement(job: &Job, table: &KeyLinksTable, job_database: &str) -> Result<(Location, String)> {
    let location = table.location.trim_end_matches('/');
    let location = Location::open(&format!("{location}/{}", job.spec.name))?;
    let database = table
        .database
        .clone()
        .unwrap_or_else(|| job_database.to_string());
    Ok((location, database))
}

/// After the switch: registers each new version and removes the others. A
/// failure is a warning: the run is committed, and the next run that commits
/// takes this version as its base all the same.
pub async fn register(
    prepared: Vec<Prepared<'_>>,
    catalog: &Catalog,
    run_id: &str,
    warnings: &Warnings,
) {
    for p in prepared {
        if let Err(e) = register_one(&p, catalog, run_id).await {
            warnings.push(format!(
                "the key links table {}.{} was written ({} rows) but not registered: {e}; the next run that commits registers it",
                p.database, p.table.name, p.rows
            ));
            continue;
        }
        if let Err(e) = remove_old_versions(&p).await {
            warnings.push(format!(
                "the key links table {}.{}: an earlier version under {} could not be removed: {e}",
                p.database, p.table.name, p.location.display
            ));
        }
    }
}

/// A run that commits nothing (nothing changed) registers the last committed
/// run's version when that run did not live to (killed between its switch and
/// the registration, or its registration failed): the links catch up with the
/// tables without waiting for a change.
pub async fn catch_up(
    job: &Job,
    catalog: &Catalog,
    database: &str,
    base_run: Option<&str>,
    warnings: &Warnings,
) -> Result<()> {
    let Some(base) = base_run else {
        return Ok(());
    };
    let mut pending = Vec::new();
    for table in &job.key_links {
        let (location, database) = placement(job, table, database)?;
        let version = format!("v-{base}");
        let dir = location.child(&version);
        let before = catalog.get(&database, &table.name).await?;
        let registered = before
            .as_ref()
            .and_then(|b| location.key_of_url(&b.table_input.storage_descriptor.location));
        if registered.as_ref() == Some(&dir) || carry::data_files(&location, &dir).await?.is_empty()
        {
            continue;
        }
        pending.push(Prepared {
            table,
            location,
            database,
            version,
            before,
            rows: 0,
        });
    }
    register(pending, catalog, base, warnings).await;
    Ok(())
}

async fn register_one(p: &Prepared<'_>, catalog: &Catalog, run_id: &str) -> Result<()> {
    let dir = p.location.child(&p.version);
    let url = format!("{}/", p.location.url_of(&dir));
    let after = TableEntry {
        database: p.database.clone(),
        table_input: table_input(&p.table.schema, &url, Compression::default())?,
        partitions: Vec::new(),
        updated_by_run: run_id.to_string(),
        version_id: p.before.as_ref().and_then(|b| b.version_id.clone()),
    };
    let change = TableChange {
        before: p.before.clone(),
        after,
        replaces_all_files: true,
        required_columns: p
            .table
            .schema
            .columns
            .iter()
            .filter(|c| !c.nullable)
            .map(|c| c.name.clone())
            .collect(),
        archive_versions: false,
    };
    catalog
        .apply(
            &[change],
            "Restricted: the real object keys behind a naslake job's pseudonymous keys",
        )
        .await?;
    Ok(())
}

/// The job's other versions: the one this replaced, and any a failed run left
/// (on a local disk, their emptied directories too).
async fn remove_old_versions(p: &Prepared<'_>) -> Result<()> {
    let dir = p.location.child(&p.version);
    let listing = p
        .location
        .store
        .list_with_delimiter(Some(&p.location.prefix))
        .await?;
    let mut emptied = std::collections::BTreeSet::new();
    for old in listing.common_prefixes {
        if !old.filename().is_some_and(|n| n.starts_with("v-")) || old == dir {
            continue;
        }
        let files: Vec<ObjPath> = p
            .location
            .store
            .list(Some(&old))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for f in files {
            p.location.store.delete(&f).await?;
        }
        emptied.insert(old.as_ref().to_string());
    }
    crate::commit::cleanup::remove_empty_local_dirs(&p.location, &p.location.prefix, emptied);
    Ok(())
}

/// The previous version's links, by source and name: the version of the last
/// committed run (`base_run`) when it wrote one, else the registered one, else
/// none.
async fn previous_version(
    location: &Location,
    registered: Option<&TableEntry>,
    base_run: Option<&str>,
) -> Result<HashMap<(String, String), Link>> {
    let mut dirs = Vec::new();
    if let Some(base) = base_run {
        dirs.push(location.child(&format!("v-{base}")));
    }
    // The registered version only when it is this job's (jobs that share a
    // database share the table's entry).
    if let Some(entry) = registered
        && let Some(dir) = location.key_of_url(&entry.table_input.storage_descriptor.location)
        && dir.prefix_matches(&location.prefix)
    {
        dirs.push(dir);
    }
    for dir in dirs {
        let files = carry::data_files(location, &dir).await?;
        if files.is_empty() {
            continue;
        }
        let mut links = HashMap::new();
        for (path, size) in files {
            let mut batches = carry::file_batches(location, path, size).await?;
            while let Some(batch) = batches.try_next().await? {
                read_links(&batch, &mut links)?;
            }
        }
        return Ok(links);
    }
    Ok(HashMap::new())
}

fn read_links(batch: &RecordBatch, into: &mut HashMap<(String, String), Link>) -> Result<()> {
    let col = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| Error::State(format!("the key links table has no column {name}")))
    };
    let strings = |name: &str| -> Result<StringArray> {
        col(name)?
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| Error::State(format!("key links column {name} is not a string")))
    };
    let (source, name, key, etag) = (
        strings("source")?,
        strings("source_key")?,
        strings("object_key")?,
        strings("object_etag")?,
    );
    let size = col("object_size")?
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| Error::State("key links column object_size is not a bigint".into()))?;
    for i in 0..batch.num_rows() {
        into.insert(
            (source.value(i).to_string(), name.value(i).to_string()),
            Link {
                object_key: key.value(i).to_string(),
                size: size.value(i),
                etag: (!etag.is_null(i)).then(|| etag.value(i).to_string()),
            },
        );
    }
    Ok(())
}

/// The links of every object the state lists for the table's sources.
async fn links_of(
    job: &Job,
    table: &KeyLinksTable,
    state: &JobState,
    items: &[&WorkItem],
    previous: &HashMap<(String, String), Link>,
    warnings: &Warnings,
) -> Result<Vec<RecordBatch>> {
    let mut rows: BTreeMap<(String, String), Link> = BTreeMap::new();
    let mut missing = 0usize;
    for source_name in &table.sources {
        let source = job
            .sources
            .iter()
            .find(|s| s.name() == source_name)
            .ok_or_else(|| Error::Accounting(format!("no source {source_name}")))?;
        let names = source.key_names().await?;
        let read: HashMap<&str, &WorkItem> = items
            .iter()
            .filter(|i| &i.source == source_name)
            .map(|&i| (i.key.as_str(), i))
            .collect();
        let Some(objects) = state.sources.get(source_name) else {
            continue;
        };
        for name in objects.keys() {
            let id = (source_name.clone(), name.clone());
            let link = match read.get(name.as_str()) {
                Some(item) => Link {
                    object_key: match (&item.sealed, &names) {
                        (Some(sealed), Some(n)) => n.unseal(sealed).map_err(|e| {
                            Error::Accounting(format!("{name} cannot be linked: {e}"))
                        })?,
                        (None, None) => item.key.clone(),
                        (Some(_), None) => {
                            return Err(Error::config(format!(
                                "{name} has a disguised name, but source `{source_name}` disguises no keys in this process: commit with the pseudonym key the plan was made with"
                            )));
                        }
                        (None, Some(_)) => {
                            return Err(Error::config(format!(
                                "{name} was named in clear, but source `{source_name}` disguises keys in this process: plan again with the pseudonym key"
                            )));
                        }
                    },
                    size: item.fingerprint.size as i64,
                    etag: item.fingerprint.etag.clone(),
                },
                None => match previous.get(&id) {
                    Some(link) => link.clone(),
                    None => {
                        missing += 1;
                        continue;
                    }
                },
            };
            rows.insert(id, link);
        }
    }
    if missing > 0 {
        warnings.push(format!(
            "{}: {missing} objects of the lake have no link (kept since before the table was declared); a run with --full links them",
            table.name
        ));
    }
    let schema = table.schema.file_schema();
    let mut batches = Vec::new();
    let all: Vec<_> = rows.into_iter().collect();
    for chunk in all.chunks(BATCH_ROWS) {
        let mut source = StringBuilder::new();
        let mut name = StringBuilder::new();
        let mut key = StringBuilder::new();
        let mut etag = StringBuilder::new();
        let mut size = Vec::with_capacity(chunk.len());
        for ((s, n), link) in chunk {
            source.append_value(s);
            name.append_value(n);
            key.append_value(&link.object_key);
            etag.append_option(link.etag.as_deref());
            size.push(link.size);
        }
        batches.push(RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(source.finish()),
                Arc::new(name.finish()),
                Arc::new(key.finish()),
                Arc::new(Int64Array::from(size)),
                Arc::new(etag.finish()),
            ],
        )?);
    }
    Ok(batches)
}

/// Writes the version's one Parquet file; returns its rows.
async fn write_version(
    location: &Location,
    table: &KeyLinksTable,
    version: &str,
    batches: Vec<RecordBatch>,
) -> Result<u64> {
    let schema = table.schema.file_schema();
    let mut buf = Vec::new();
    let props = WriterProperties::builder()
        .set_compression(PqCompression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props))?;
    let mut rows = 0;
    for b in &batches {
        rows += b.num_rows() as u64;
        writer.write(b)?;
    }
    writer.close()?;
    let path = location.child(&format!("{version}/part-00000.parquet"));
    location.store.put(&path, buf.into()).await?;
    Ok(rows)
}
