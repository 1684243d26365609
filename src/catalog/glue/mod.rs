//! The AWS Glue Data Catalog backend (`--catalog glue[:DATABASE]`).
//!
//! It sends the same [`TableInput`] / [`PartitionInput`] the local catalog stores.
//! A run's change to one table is applied as: database created if missing; table
//! created, or updated with the `VersionId` read before (retried after a
//! `ConcurrentModificationException`); then partitions created in batches of 100,
//! re-pointed where their location changed, and dropped in batches of 25. Every
//! per-partition error of a batch call is inspected: "already exists" becomes an
//! update, throttling and timeouts are retried with backoff, anything else fails
//! the commit. Glue has no transaction across calls, so each table's change is
//! recorded before every call ([`Applied`]) and a failed commit undoes exactly
//! that, table by table.
//!
//! The client uses the standard AWS configuration chain (environment, profiles
//! with roles or SSO, web identity, ECS, IMDS) and honours `AWS_ENDPOINT_URL_GLUE`
//! and `AWS_ENDPOINT_URL`. Throttled or failed calls are retried by the SDK.

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_sdk_glue::Client;
use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_glue::types as g;
use tracing::{info, warn};

mod batch;
mod convert;

use batch::{ItemError, accept_only, backoff, batched};
use convert::{
    from_sdk_column, from_sdk_partition, from_sdk_sd, to_btree, to_sdk_partition, to_sdk_table,
    value_list,
};

use super::table_input::{PartitionInput, TableInput};
use super::{TableChange, TableEntry, evolution};
use crate::base::error::{Error, Result};

/// Glue's limits per batch call.
const CREATE_BATCH: usize = 100;
const UPDATE_BATCH: usize = 100;
const DELETE_BATCH: usize = 25;

/// A Glue client for one region.
pub struct GlueCatalog {
    client: Client,
    region: String,
}

/// Glue database names follow Athena's rule for identifiers, like table names.
pub fn check_database_name(db: &str) -> Result<()> {
    crate::model::schema::check_identifier("database name", db)
        .map_err(|e| Error::config(format!("--catalog glue:{db}: {e}")))
}

fn api_error<E>(op: &str, what: &str, e: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = match e.as_service_error() {
        Some(s) => format!(
            "{}: {}",
            s.code().unwrap_or("error"),
            s.message().unwrap_or("no message")
        ),
        None => aws_sdk_glue::error::DisplayErrorContext(&e).to_string(),
    };
    Error::Catalog(format!("Glue {op} {what}: {detail}"))
}

fn build_error(e: aws_sdk_glue::error::BuildError) -> Error {
    Error::Catalog(format!("Glue request: {e}"))
}

impl GlueCatalog {
    pub async fn connect() -> Result<Self> {
        let config =
            crate::storage::sdk::load_config(&["AWS_ENDPOINT_URL_GLUE", "AWS_ENDPOINT_URL"])
                .await?;
        let Some(region) = config.region().map(|r| r.to_string()) else {
            return Err(Error::config(
                "--catalog glue needs a region: set AWS_REGION or a profile's region",
            ));
        };
        Ok(GlueCatalog {
            client: Client::new(&config),
            region,
        })
    }

    pub fn describe(&self) -> String {
        self.region.clone()
    }

    pub async fn get(&self, db: &str, table: &str) -> Result<Option<TableEntry>> {
        let out = match self
            .client
            .get_table()
            .database_name(db)
            .name(table)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(api_error("GetTable", &format!("{db}.{table}"), e)),
        };
        let Some(t) = out.table() else {
            return Ok(None);
        };
        Ok(Some(self.entry(db, t).await?))
    }

    pub async fn list(&self, db: &str) -> Result<Vec<TableEntry>> {
        let mut pages = self
            .client
            .get_tables()
            .database_name(db)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                Err(e) => return Err(api_error("GetTables", db, e)),
            };
            for t in page.table_list() {
                out.push(self.entry(db, t).await?);
            }
        }
        out.sort_by(|a, b| a.table_input.name.cmp(&b.table_input.name));
        Ok(out)
    }

    /// A Glue table and all its partitions as a catalog entry.
    async fn entry(&self, db: &str, t: &g::Table) -> Result<TableEntry> {
        let mut partitions = Vec::new();
        let mut pages = self
            .client
            .get_partitions()
            .database_name(db)
            .table_name(t.name())
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| api_error("GetPartitions", &format!("{db}.{}", t.name()), e))?;
            partitions.extend(page.partitions().iter().map(from_sdk_partition));
        }
        partitions.sort_by(|a, b| a.values.cmp(&b.values));
        let params = to_btree(t.parameters());
        Ok(TableEntry {
            database: db.to_string(),
            updated_by_run: params.get(RUN_PARAMETER).cloned().unwrap_or_default(),
            table_input: TableInput {
                name: t.name().to_string(),
                description: t.description().unwrap_or_default().to_string(),
                table_type: t.table_type().unwrap_or_default().to_string(),
                parameters: params,
                storage_descriptor: from_sdk_sd(t.storage_descriptor()),
                partition_keys: t.partition_keys().iter().map(from_sdk_column).collect(),
            },
            partitions,
            version_id: t.version_id().map(str::to_string),
        })
    }

    /// Applies every change; when one fails, reverses exactly what this run
    /// applied, newest first. If that reversal fails too, the error says so
    /// ([`Error::CatalogInconsistent`]) and the caller keeps the run's files.
    pub async fn apply(&self, changes: &[TableChange], db_description: &str) -> Result<()> {
        let databases: BTreeSet<&str> = changes.iter().map(|c| c.after.database.as_str()).collect();
        for db in databases {
            self.ensure_database(db, db_description).await?;
        }
        let mut applied: Vec<(&TableChange, Applied)> = Vec::new();
        for change in changes {
            let mut record = Applied::default();
            let outcome = self.apply_one(change, &mut record).await;
            crate::base::faults::point("catalog.table");
            applied.push((change, record));
            let Err(e) = outcome else {
                continue;
            };
            warn!(table = %change.after.table_input.name, error = %e, "Glue update failed; undoing this run's catalog changes");
            let mut undo_errors = Vec::new();
            for (done, record) in applied.iter().rev() {
                if let Err(re) = self.undo(done, record).await {
                    warn!(table = %done.after.table_input.name, error = %re, "could not undo a Glue change; check the table by hand");
                    undo_errors.push(re.to_string());
                }
            }
            if undo_errors.is_empty() {
                return Err(e);
            }
            return Err(Error::CatalogInconsistent(format!(
                "{e}; undoing the run's other changes failed too ({}): the tables may point at this run's files, which are kept",
                undo_errors.join("; ")
            )));
        }
        Ok(())
    }

    /// Creates the database if it is missing (a role that may only change tables
    /// of an existing database never needs `glue:CreateDatabase`).
    async fn ensure_database(&self, db: &str, description: &str) -> Result<()> {
        match self.client.get_database().name(db).send().await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error("GetDatabase", db, e)),
        }
        let input = g::DatabaseInput::builder()
            .name(db)
            .description(description)
            .build()
            .map_err(build_error)?;
        match self
            .client
            .create_database()
            .database_input(input)
            .send()
            .await
        {
            Ok(_) => {
                info!(database = db, "Glue database created");
                Ok(())
            }
            // Created by another run in the meantime.
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("AlreadyExistsException") =>
            {
                Ok(())
            }
            Err(e) => Err(api_error("CreateDatabase", db, e)),
        }
    }

    async fn apply_one(&self, change: &TableChange, applied: &mut Applied) -> Result<()> {
        let db = &change.after.database;
        let name = &change.after.table_input.name;
        let run_id = change.after.table_input.parameters.get(RUN_PARAMETER);
        let mut before = change.before.clone();
        let mut after_parts = change.after.partitions.clone();
        match &before {
            None => {
                // Recorded before the call: Glue may apply it and still answer
                // with an error.
                applied.table = TableAction::MaybeCreated;
                if self.create_table(db, &change.after.table_input).await? {
                    applied.table = TableAction::Created;
                } else {
                    let current = self.get(db, name).await?.ok_or_else(|| {
                        Error::Catalog(format!(
                            "{db}.{name}: Glue says it exists but cannot find it"
                        ))
                    })?;
                    if current.table_input.parameters.get(RUN_PARAMETER) == run_id {
                        // This run's own CreateTable, retried by the SDK after it
                        // had succeeded.
                        applied.table = TableAction::Created;
                    } else {
                        // Created by someone else since the run started: update it
                        // instead, checking the schema against it and keeping its
                        // partitions unless this run replaces the whole table.
                        applied.table = TableAction::Unchanged;
                        if !change.replaces_all_files {
                            evolution::check(
                                &current.table_input,
                                &change.after.table_input,
                                &change.required_columns,
                            )?;
                            let ours: HashSet<&Vec<String>> =
                                after_parts.iter().map(|p| &p.values).collect();
                            let theirs: Vec<PartitionInput> = current
                                .partitions
                                .iter()
                                .filter(|p| !ours.contains(&p.values))
                                .cloned()
                                .collect();
                            after_parts.extend(theirs);
                        }
                        self.update_table(
                            db,
                            change,
                            &current.table_input,
                            current.version_id.clone(),
                            &mut applied.table,
                        )
                        .await?;
                        before = Some(current);
                    }
                }
            }
            Some(b) if b.table_input != change.after.table_input => {
                self.update_table(
                    db,
                    change,
                    &b.table_input,
                    b.version_id.clone(),
                    &mut applied.table,
                )
                .await?;
            }
            Some(_) => {}
        }
        let before_parts = before.map(|b| b.partitions).unwrap_or_default();
        self.sync_partitions(db, name, &before_parts, &after_parts, applied)
            .await
    }

    /// Reverses what [`Self::apply_one`] recorded, but only while the table still
    /// carries this run's id: if someone else changed it since, nothing of it is
    /// touched (their change may rest on this run's), and the error says so. A
    /// table call that was sent but never answered OK was applied exactly when the
    /// table carries the run's id; if it does not, there is nothing to undo.
    async fn undo(&self, change: &TableChange, applied: &Applied) -> Result<()> {
        let db = &change.after.database;
        let name = &change.after.table_input.name;
        if matches!(applied.table, TableAction::Unchanged) {
            // No table call was sent, and partitions are synced only after it.
            return Ok(());
        }
        let run_id = change.after.table_input.parameters.get(RUN_PARAMETER);
        let Some(current) = self.get(db, name).await? else {
            return Ok(());
        };
        if current.table_input.parameters.get(RUN_PARAMETER) != run_id {
            if !applied.table.confirmed() {
                // The unconfirmed call was not applied, and nothing was sent after it.
                return Ok(());
            }
            return Err(Error::Catalog(format!(
                "{db}.{name} was changed by someone else after this run; left as it is"
            )));
        }
        let mut scratch = Applied::default();
        let no_previous = HashMap::new();
        let created: BTreeSet<&Vec<String>> = applied.created.iter().collect();
        let created: Vec<&Vec<String>> = created.into_iter().collect();
        self.delete_partitions(db, name, &created, &no_previous, &mut scratch)
            .await?;
        let restore: Vec<&PartitionInput> = dedup_by_values(&applied.updated);
        let missing = self
            .update_partitions(db, name, &restore, &no_previous, &mut scratch)
            .await?;
        let mut recreate: Vec<&PartitionInput> = dedup_by_values(&applied.deleted);
        recreate.extend(missing);
        let existing = self
            .create_partitions(db, name, &recreate, &mut scratch)
            .await?;
        self.update_partitions(db, name, &existing, &no_previous, &mut scratch)
            .await?;
        match &applied.table {
            TableAction::Unchanged => Ok(()),
            TableAction::MaybeCreated | TableAction::Created => match self
                .client
                .delete_table()
                .database_name(db)
                .name(name)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(api_error("DeleteTable", name, e)),
            },
            TableAction::MaybeUpdated(previous) | TableAction::Updated(previous) => {
                let reverse = TableChange {
                    before: Some(current.clone()),
                    after: TableEntry {
                        table_input: (**previous).clone(),
                        ..current.clone()
                    },
                    replaces_all_files: true,
                    required_columns: Vec::new(),
                    archive_versions: change.archive_versions,
                };
                self.update_table(
                    db,
                    &reverse,
                    &current.table_input,
                    current.version_id.clone(),
                    &mut scratch.table,
                )
                .await
            }
        }
    }

    /// `CreateTable`; `false` when the table already exists.
    async fn create_table(&self, db: &str, input: &TableInput) -> Result<bool> {
        match self
            .client
            .create_table()
            .database_name(db)
            .table_input(to_sdk_table(input)?)
            .send()
            .await
        {
            Ok(_) => {
                info!(table = %input.name, "Glue table created");
                Ok(true)
            }
            Err(e)
                if e.as_service_error().and_then(|s| s.code())
                    == Some("AlreadyExistsException") =>
            {
                Ok(false)
            }
            Err(e) => Err(api_error("CreateTable", &format!("{db}.{}", input.name), e)),
        }
    }

    /// `UpdateTable` with the version read before (`replacing` is the definition
    /// of that version); after a concurrent modification the table is read again,
    /// the schema change re-checked against it, and the update retried. Before each
    /// attempt `record` is set to "maybe updated" from the definition that attempt
    /// replaces (a call may be applied and still fail); once Glue confirms the
    /// update, to "updated" from it.
    async fn update_table(
        &self,
        db: &str,
        change: &TableChange,
        replacing: &TableInput,
        mut version: Option<String>,
        record: &mut TableAction,
    ) -> Result<()> {
        let name = &change.after.table_input.name;
        let run_id = change.after.table_input.parameters.get(RUN_PARAMETER);
        let mut replacing = replacing.clone();
        let mut delays = backoff();
        loop {
            *record = TableAction::MaybeUpdated(Box::new(replacing.clone()));
            let result = self
                .client
                .update_table()
                .database_name(db)
                .table_input(to_sdk_table(&change.after.table_input)?)
                .set_version_id(version.clone())
                .skip_archive(!change.archive_versions)
                .send()
                .await;
            let e = match result {
                Ok(_) => {
                    let added = evolution::added_columns(&replacing, &change.after.table_input);
                    if !added.is_empty() {
                        info!(table = %name, columns = ?added, "Glue table columns added");
                    }
                    *record = TableAction::Updated(Box::new(replacing));
                    return Ok(());
                }
                Err(e) => e,
            };
            let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
            if code != "ConcurrentModificationException" {
                return Err(api_error("UpdateTable", &format!("{db}.{name}"), e));
            }
            let Some(delay) = delays.next() else {
                return Err(api_error("UpdateTable", &format!("{db}.{name}"), e));
            };
            warn!(table = %name, "Glue table was changed concurrently; reading it again");
            tokio::time::sleep(delay).await;
            let current = self.get(db, name).await?.ok_or_else(|| {
                Error::Catalog(format!("{db}.{name} was deleted while this run updated it"))
            })?;
            if run_id.is_some() && current.table_input.parameters.get(RUN_PARAMETER) == run_id {
                // The version changed under this very update: an attempt was
                // applied but its answer lost, and the SDK's retry of it conflicted.
                *record = TableAction::Updated(Box::new(replacing));
                return Ok(());
            }
            if !change.replaces_all_files {
                evolution::check(
                    &current.table_input,
                    &change.after.table_input,
                    &change.required_columns,
                )?;
            }
            version = current.version_id;
            replacing = current.table_input;
        }
    }

    /// Moves the table's partitions from `before` to `after`, recording in
    /// `applied` what it changed.
    async fn sync_partitions(
        &self,
        db: &str,
        table: &str,
        before: &[PartitionInput],
        after: &[PartitionInput],
        applied: &mut Applied,
    ) -> Result<()> {
        let old: HashMap<&Vec<String>, &PartitionInput> =
            before.iter().map(|p| (&p.values, p)).collect();
        let new: HashMap<&Vec<String>, &PartitionInput> =
            after.iter().map(|p| (&p.values, p)).collect();
        let create: Vec<&PartitionInput> = after
            .iter()
            .filter(|p| !old.contains_key(&p.values))
            .collect();
        let mut update: Vec<&PartitionInput> = after
            .iter()
            .filter(|p| old.get(&p.values).is_some_and(|o| *o != *p))
            .collect();
        let delete: Vec<&Vec<String>> = before
            .iter()
            .filter(|p| !new.contains_key(&p.values))
            .map(|p| &p.values)
            .collect();
        // A partition that already exists (registered since the run started, or
        // applied by a call that then timed out) is updated to this run's location.
        update.extend(self.create_partitions(db, table, &create, applied).await?);
        let missing = self
            .update_partitions(db, table, &update, &old, applied)
            .await?;
        if !missing.is_empty() {
            let again = self.create_partitions(db, table, &missing, applied).await?;
            if !again.is_empty() {
                return Err(Error::Catalog(format!(
                    "{db}.{table}: {} partitions kept appearing and disappearing while they were registered",
                    again.len()
                )));
            }
        }
        self.delete_partitions(db, table, &delete, &old, applied)
            .await?;
        if !(create.is_empty() && update.is_empty() && delete.is_empty()) {
            info!(
                table,
                created = create.len(),
                updated = update.len(),
                dropped = delete.len(),
                "Glue partitions registered"
            );
        }
        Ok(())
    }

    /// `BatchCreatePartition`; returns the partitions that already existed, to be
    /// updated. Every partition sent is recorded as (possibly) created before the
    /// call: a call that fails or times out may still have been applied. One that
    /// already existed with another location is someone else's: its definition is
    /// recorded as the one to put back instead.
    async fn create_partitions<'a>(
        &self,
        db: &str,
        table: &str,
        parts: &[&'a PartitionInput],
        applied: &mut Applied,
    ) -> Result<Vec<&'a PartitionInput>> {
        let failed = batched(
            "BatchCreatePartition",
            table,
            parts,
            CREATE_BATCH,
            |batch| {
                applied
                    .created
                    .extend(batch.iter().map(|p| p.values.clone()))
            },
            |batch| async move {
                let out = self
                    .client
                    .batch_create_partition()
                    .database_name(db)
                    .table_name(table)
                    .set_partition_input_list(Some(
                        batch
                            .iter()
                            .map(|p| to_sdk_partition(p))
                            .collect::<Result<Vec<_>>>()?,
                    ))
                    .send()
                    .await
                    .map_err(|e| api_error("BatchCreatePartition", table, e))?;
                Ok(out
                    .errors()
                    .iter()
                    .map(|e| ItemError::new(e.partition_values(), e.error_detail()))
                    .collect())
            },
        )
        .await?;
        let already = accept_only(
            "BatchCreatePartition",
            table,
            failed,
            "AlreadyExistsException",
        )?;
        if !already.is_empty() {
            let found = self.get_partitions(db, table, &already).await?;
            for p in &already {
                match found.get(&p.values) {
                    // This run's own earlier attempt, applied before it timed out.
                    Some(f) if f.storage_descriptor.location == p.storage_descriptor.location => {}
                    Some(f) => {
                        applied.created.retain(|v| v != &p.values);
                        applied.updated.push(f.clone());
                    }
                    None => {}
                }
            }
        }
        Ok(already)
    }

    /// The current definitions of these partitions (`BatchGetPartition`).
    async fn get_partitions(
        &self,
        db: &str,
        table: &str,
        parts: &[&PartitionInput],
    ) -> Result<HashMap<Vec<String>, PartitionInput>> {
        let mut found = HashMap::new();
        for chunk in parts.chunks(CREATE_BATCH) {
            let wanted = chunk
                .iter()
                .map(|p| value_list(&p.values))
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .batch_get_partition()
                .database_name(db)
                .table_name(table)
                .set_partitions_to_get(Some(wanted))
                .send()
                .await
                .map_err(|e| api_error("BatchGetPartition", table, e))?;
            for p in out.partitions() {
                found.insert(p.values().to_vec(), from_sdk_partition(p));
            }
        }
        Ok(found)
    }

    /// `BatchUpdatePartition`; returns the partitions that did not exist. The
    /// definitions in `previous` of the partitions sent are recorded before each
    /// call (it may be applied even when it fails).
    async fn update_partitions<'a>(
        &self,
        db: &str,
        table: &str,
        parts: &[&'a PartitionInput],
        previous: &HashMap<&Vec<String>, &PartitionInput>,
        applied: &mut Applied,
    ) -> Result<Vec<&'a PartitionInput>> {
        let failed = batched(
            "BatchUpdatePartition",
            table,
            parts,
            UPDATE_BATCH,
            |batch| {
                applied.updated.extend(
                    batch
                        .iter()
                        .filter_map(|p| previous.get(&p.values).map(|old| (*old).clone())),
                )
            },
            |batch| async move {
                let entries = batch
                    .iter()
                    .map(|p| {
                        g::BatchUpdatePartitionRequestEntry::builder()
                            .set_partition_value_list(Some(p.values.clone()))
                            .partition_input(to_sdk_partition(p)?)
                            .build()
                            .map_err(build_error)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let out = self
                    .client
                    .batch_update_partition()
                    .database_name(db)
                    .table_name(table)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| api_error("BatchUpdatePartition", table, e))?;
                Ok(out
                    .errors()
                    .iter()
                    .map(|e| ItemError::new(e.partition_value_list(), e.error_detail()))
                    .collect())
            },
        )
        .await?;
        accept_only(
            "BatchUpdatePartition",
            table,
            failed,
            "EntityNotFoundException",
        )
    }

    /// `BatchDeletePartition`; a partition already gone is fine. The definitions
    /// in `previous` of the partitions sent are recorded before each call (it may
    /// be applied even when it fails, or be retried by the SDK).
    async fn delete_partitions(
        &self,
        db: &str,
        table: &str,
        values: &[&Vec<String>],
        previous: &HashMap<&Vec<String>, &PartitionInput>,
        applied: &mut Applied,
    ) -> Result<()> {
        let failed = batched(
            "BatchDeletePartition",
            table,
            values,
            DELETE_BATCH,
            |batch| {
                applied.deleted.extend(
                    batch
                        .iter()
                        .filter_map(|v| previous.get(*v).map(|old| (*old).clone())),
                )
            },
            |batch| async move {
                let list = batch
                    .iter()
                    .map(|v| value_list(v))
                    .collect::<Result<Vec<_>>>()?;
                let out = self
                    .client
                    .batch_delete_partition()
                    .database_name(db)
                    .table_name(table)
                    .set_partitions_to_delete(Some(list))
                    .send()
                    .await
                    .map_err(|e| api_error("BatchDeletePartition", table, e))?;
                Ok(out
                    .errors()
                    .iter()
                    .map(|e| ItemError::new(e.partition_values(), e.error_detail()))
                    .collect())
            },
        )
        .await?;
        accept_only(
            "BatchDeletePartition",
            table,
            failed,
            "EntityNotFoundException",
        )?;
        Ok(())
    }
}

/// What a commit changed in Glue for one table, so that a failure can undo
/// exactly that (and nothing someone else did).
#[derive(Debug, Default)]
struct Applied {
    table: TableAction,
    /// Partitions this run created (or re-pointed without knowing them before).
    created: Vec<Vec<String>>,
    /// The previous definitions of partitions this run re-pointed.
    updated: Vec<PartitionInput>,
    /// Partitions this run dropped.
    deleted: Vec<PartitionInput>,
}

/// What a commit did to the table itself. A call is recorded before it is sent,
/// as "maybe": Glue may apply a call and still answer with an error (a timeout,
/// a 5xx after the write). Whether it was applied is then told by the table's
/// run id ([`RUN_PARAMETER`]), which every change of this run sets.
#[derive(Debug, Default)]
enum TableAction {
    #[default]
    Unchanged,
    /// `CreateTable` was sent, but Glue did not confirm it.
    MaybeCreated,
    /// Created, as Glue confirmed.
    Created,
    /// `UpdateTable` replacing this definition was sent, but Glue did not
    /// confirm it.
    MaybeUpdated(Box<TableInput>),
    /// Updated from this definition, as Glue confirmed.
    Updated(Box<TableInput>),
}

impl TableAction {
    /// Whether Glue answered that it applied the change.
    fn confirmed(&self) -> bool {
        match self {
            TableAction::Created | TableAction::Updated(_) => true,
            TableAction::Unchanged | TableAction::MaybeCreated | TableAction::MaybeUpdated(_) => {
                false
            }
        }
    }
}

/// One definition per partition, the first recorded (the oldest) winning.
fn dedup_by_values(parts: &[PartitionInput]) -> Vec<&PartitionInput> {
    let mut seen = HashSet::new();
    parts.iter().filter(|p| seen.insert(&p.values)).collect()
}

/// The table parameter naming the run that last changed a table.
pub const RUN_PARAMETER: &str = "naslake.run_id";

fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("EntityNotFoundException")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_follow_athena() {
        assert!(check_database_name("lake_01").is_ok());
        assert!(check_database_name("Lake").is_err());
        assert!(check_database_name("a-b").is_err());
        assert!(check_database_name("").is_err());
    }
}
