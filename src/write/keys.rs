//! Which objects' rows went to which partitions: a table kept per object
//! (`model::TableKind::Objects`) tallies its rows by `source_key` and
//! partition as they are written, so a later run that replaces or removes one
//! object's rows knows the partitions to rewrite, and how many rows it must find
//! there, without reading the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};

use crate::base::error::{Error, Result};
use crate::base::sync::lock;
use crate::model::KEY_COLUMN;

/// Rows per object key and partition values, shared by a table's writers.
#[derive(Debug, Default)]
pub struct KeyTally(Mutex<HashMap<String, BTreeMap<Vec<String>, u64>>>);

impl KeyTally {
    /// Counts the rows of `batch` (one partition's file columns) by their key in
    /// column `column`. Rows of one object come in runs, so the map is touched
    /// once a run, not once a row.
    pub fn count(
        &self,
        table: &str,
        values: &[String],
        batch: &RecordBatch,
        column: usize,
    ) -> Result<()> {
        let keys = batch.column(column);
        let keys = keys.as_string_opt::<i32>().ok_or_else(|| {
            Error::Accounting(format!(
                "table {table}: {KEY_COLUMN} is not a string column"
            ))
        })?;
        if keys.null_count() > 0 {
            return Err(Error::Accounting(format!(
                "table {table}: {} rows have no {KEY_COLUMN}, so an incremental run could not tell which object they came from",
                keys.null_count()
            )));
        }
        let mut runs: Vec<(&str, u64)> = Vec::new();
        for key in keys.iter().flatten() {
            match runs.last_mut() {
                Some((k, n)) if *k == key => *n += 1,
                _ => runs.push((key, 1)),
            }
        }
        let mut map = lock(&self.0);
        for (key, n) in runs {
            *map.entry(key.to_string())
                .or_default()
                .entry(values.to_vec())
                .or_default() += n;
        }
        Ok(())
    }

    pub fn take(&self) -> HashMap<String, BTreeMap<Vec<String>, u64>> {
        std::mem::take(&mut *lock(&self.0))
    }
}
