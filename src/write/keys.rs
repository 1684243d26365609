//! Which objects' rows went to which partitions: a table kept per object
//! (`model::TableKind::Objects`) tallies its rows by `source_key` and
//! partition as they are written, so a later run that replaces or removes one
//! object's rows knows the partitions to rewrite, and how many rows it must find
//! there, without reading the table.

use std::collections::HashMap;
use std::sync::Mutex;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};

use crate::base::error::{Error, Result};
use crate::base::sync::lock;
use crate::model::KEY_COLUMN;

/// Rows by object key, then partition values.
pub type KeyRows = HashMap<String, PartitionCounts>;

/// One object's rows in one table by partition values, in the values' order (as
/// a `BTreeMap` keeps them). A short sorted list: an object's rows nearly always
/// go to one partition, and a tree node per object was half a kilobyte of fresh
/// memory, whose page faults were most of the tally's cost on small files. (An
/// insert shifts the partitions after it: an object whose rows spread over many
/// partitions, out of order, can cost their square, which a tree would not.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionCounts(Vec<(Vec<String>, u64)>);

impl PartitionCounts {
    /// Adds `rows` to the partition `values`.
    pub fn add(&mut self, values: &[String], rows: u64) {
        match self.0.binary_search_by(|(v, _)| v.as_slice().cmp(values)) {
            Ok(i) => self.0[i].1 += rows,
            Err(i) => self.0.insert(i, (values.to_vec(), rows)),
        }
    }

    /// The rows in partition `values`, if any.
    pub fn get(&self, values: &[String]) -> Option<u64> {
        self.0
            .binary_search_by(|(v, _)| v.as_slice().cmp(values))
            .ok()
            .map(|i| self.0[i].1)
    }

    /// The partitions and their rows, in the values' order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<String>, u64)> {
        self.0.iter().map(|(values, rows)| (values, *rows))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for PartitionCounts {
    type Item = (Vec<String>, u64);
    type IntoIter = std::vec::IntoIter<(Vec<String>, u64)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Rows of the same partition add up.
impl FromIterator<(Vec<String>, u64)> for PartitionCounts {
    fn from_iter<I: IntoIterator<Item = (Vec<String>, u64)>>(iter: I) -> Self {
        let mut counts = PartitionCounts::default();
        for (values, rows) in iter {
            counts.add(&values, rows);
        }
        counts
    }
}

/// Rows per object key and partition values, shared by a table's writers.
#[derive(Debug, Default)]
pub struct KeyTally(Mutex<KeyRows>);

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
            // The key is copied only when it is new.
            match map.get_mut(key) {
                Some(counts) => counts.add(values, n),
                None => {
                    let mut counts = PartitionCounts::default();
                    counts.add(values, n);
                    map.insert(key.to_string(), counts);
                }
            }
        }
        Ok(())
    }

    pub fn take(&self) -> KeyRows {
        std::mem::take(&mut *lock(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    proptest::proptest! {
        /// Counts add up, look up and come out as a `BTreeMap` of the same
        /// additions has them.
        #[test]
        fn partition_counts_are_a_sorted_map(
            adds in proptest::collection::vec(
                (proptest::collection::vec("[ab]{0,2}", 0..3), 0u64..5),
                0..24,
            ),
        ) {
            let mut ours = PartitionCounts::default();
            let mut map: BTreeMap<Vec<String>, u64> = BTreeMap::new();
            for (values, rows) in &adds {
                ours.add(values, *rows);
                *map.entry(values.clone()).or_default() += rows;
            }
            let listed: Vec<(Vec<String>, u64)> =
                ours.iter().map(|(v, n)| (v.clone(), n)).collect();
            proptest::prop_assert_eq!(&listed, &map.clone().into_iter().collect::<Vec<_>>());
            for (values, _) in &adds {
                proptest::prop_assert_eq!(ours.get(values), map.get(values).copied());
            }
            proptest::prop_assert_eq!(ours.get(&["zz".to_string()]), None);
            proptest::prop_assert_eq!(ours.len(), map.len());
            let again: PartitionCounts = adds.iter().cloned().collect();
            proptest::prop_assert_eq!(again, ours);
        }
    }
}
