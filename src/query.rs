//! `naslake query` and `naslake catalog`: SQL over the tables a catalog holds,
//! reading the files at their registered locations through the storage layer.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::SessionContext;

use crate::base::error::{Error, Result};
use crate::catalog::{Catalog, TableEntry};
use crate::model::schema::glue_to_arrow;
use crate::storage::Location;
use crate::transform;
use crate::transform::files_table::{FilesTable, TableFile};

/// The database whose tables are also reachable without a schema prefix.
pub use crate::catalog::DEFAULT_DATABASE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// A session with every catalog table registered, as `db.table` and, for the
/// default database (or the only one), as `table`.
pub async fn session_over(catalog: &Catalog, database: Option<&str>) -> Result<SessionContext> {
    let ctx = transform::session()?;
    let entries = catalog.list(database).await?;
    let dbs: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| e.database.as_str()).collect();
    let bare_db = database.or(if dbs.len() == 1 {
        dbs.first().copied()
    } else {
        Some(DEFAULT_DATABASE)
    });
    for entry in &entries {
        let provider = Arc::new(table_provider(&ctx, entry).await?);
        schema_named(&ctx, &entry.database)?
            .register_table(entry.table_input.name.clone(), provider.clone())?;
        if Some(entry.database.as_str()) == bare_db {
            ctx.register_table(entry.table_input.name.as_str(), provider)?;
        }
    }
    Ok(ctx)
}

/// Registers `batch` (the run history) as `name` and as `DATABASE.name`, the
/// database queried (`naslake` by default), as Athena names a table of a job,
/// in place of a catalog table of that name.
pub fn register_beside_catalog(
    ctx: &SessionContext,
    database: Option<&str>,
    name: &str,
    batch: RecordBatch,
) -> Result<()> {
    let table = Arc::new(datafusion::datasource::MemTable::try_new(
        batch.schema(),
        vec![vec![batch]],
    )?);
    let schema = schema_named(ctx, database.unwrap_or(DEFAULT_DATABASE))?;
    schema.deregister_table(name)?;
    schema.register_table(name.to_string(), table.clone())?;
    // The bare name may be the same schema's (the default database's) table.
    ctx.deregister_table(name)?;
    ctx.register_table(name, table)?;
    Ok(())
}

/// The session's schema (database) of this name, made when it has none yet.
fn schema_named(ctx: &SessionContext, name: &str) -> Result<Arc<dyn SchemaProvider>> {
    let df_catalog = ctx
        .catalog("datafusion")
        .expect("the default catalog exists");
    if let Some(s) = df_catalog.schema(name) {
        return Ok(s);
    }
    let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
    df_catalog.register_schema(name, s.clone())?;
    Ok(s)
}

/// Builds a table over the files under each registered partition location.
async fn table_provider(ctx: &SessionContext, entry: &TableEntry) -> Result<FilesTable> {
    let t = &entry.table_input;
    let fields = t
        .storage_descriptor
        .columns
        .iter()
        .map(|c| {
            let dt = glue_to_arrow(&c.type_name)
                .map_err(|e| Error::Catalog(format!("table {} column {}: {e}", t.name, c.name)))?;
            Ok(datafusion::arrow::datatypes::Field::new(&c.name, dt, true))
        })
        .collect::<Result<Vec<_>>>()?;
    let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    let keys: Vec<String> = t.partition_keys.iter().map(|k| k.name.clone()).collect();
    let table_location = Location::open(&t.storage_descriptor.location)?;
    ctx.register_object_store(
        table_location.store_url.as_ref(),
        table_location.store.clone(),
    );

    let locations: Vec<(String, Vec<String>)> = if keys.is_empty() {
        vec![(t.storage_descriptor.location.clone(), Vec::new())]
    } else {
        entry
            .partitions
            .iter()
            .map(|p| (p.storage_descriptor.location.clone(), p.values.clone()))
            .collect()
    };
    let mut files = Vec::new();
    for (location, values) in locations {
        // Every partition is read through the table's store (one client, one set
        // of credentials for all of them).
        let prefix = table_location.key_of_url(&location).ok_or_else(|| {
            Error::Catalog(format!(
                "table {}: partition location {location} is in another store than the table's location {}; naslake query reads a table from one store",
                t.name, t.storage_descriptor.location
            ))
        })?;
        let store = table_location.store.clone();
        // Only the location's own files: naslake's version directories nest inside
        // older (pre-versioning) locations, and must not be read twice.
        let listing = store.list_with_delimiter(Some(&prefix)).await?;
        for meta in listing.objects {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if crate::write::layout::is_data_file(name) {
                files.push(TableFile {
                    path: meta.location.clone(),
                    size: meta.size,
                    partition_values: values.clone(),
                });
            }
        }
    }
    Ok(FilesTable::new(
        file_schema,
        &keys,
        table_location.store_url.clone(),
        files,
    ))
}

/// Runs SQL and returns its batches.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(sql).await?;
    Ok(df.collect().await?)
}

/// Formats batches as a table, CSV (with header) or JSON lines.
pub fn format_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<String> {
    use datafusion::arrow::{csv, json, util::pretty};
    Ok(match format {
        OutputFormat::Table => format!("{}\n", pretty::pretty_format_batches(batches)?),
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut w = csv::WriterBuilder::new().with_header(true).build(&mut out);
                for b in batches {
                    w.write(b)?;
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        OutputFormat::Json => {
            let mut out = Vec::new();
            {
                let mut w = json::LineDelimitedWriter::new(&mut out);
                for b in batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
            String::from_utf8_lossy(&out).into_owned()
        }
    })
}
