//! The state a run commits: its tables' partitions as the catalog will have them,
//! and every object it knows of with the rows each table holds of it. Objects
//! this run read come with their new tallies; unchanged ones keep theirs, their
//! partition indexes renumbered against the tables' new partition lists.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::state::{JobState, PartitionState, STATE_FORMAT, TableState};
use super::{KeyRows, TableFiles};
use crate::base::error::{Error, Result};
use crate::catalog::TableEntry;
use crate::model::{ObjectState, PartitionRows, TableKind, WorkItem};

/// What the new state is made of, besides the tables.
pub struct NextState<'a> {
    pub job: &'a str,
    pub run_id: &'a str,
    pub spec_digest: String,
    /// The state an incremental run started from (`None` for a full run).
    pub previous: Option<&'a JobState>,
    /// Keys whose old rows this run removed.
    pub removed: &'a HashSet<String>,
    /// Objects gone from the share whose rows are kept (`deletes = "keep"`).
    pub kept_deleted: &'a BTreeMap<String, BTreeSet<String>>,
    /// The items this run read.
    pub items: &'a [WorkItem],
    /// How each table is kept.
    pub kinds: &'a HashMap<String, TableKind>,
}

/// Builds the state from the run's tables: each with its entry after the commit,
/// or `None` when it stays as the previous state has it.
pub fn build<'t>(
    n: &NextState<'_>,
    tables: impl Iterator<Item = (&'t TableFiles, Option<&'t TableEntry>)>,
) -> Result<JobState> {
    let mut state = JobState {
        format: STATE_FORMAT,
        job: n.job.to_string(),
        run_id: n.run_id.to_string(),
        committed_at: chrono::Utc::now().to_rfc3339(),
        spec_digest: n.spec_digest.clone(),
        ..Default::default()
    };
    let mut tallies: Vec<(&str, &KeyRows)> = Vec::new();
    for (t, after) in tables {
        let name = t.table.name.clone();
        let kind = n.kinds.get(&name).copied().unwrap_or(TableKind::Derived);
        let table_state = match after {
            Some(entry) => TableState {
                kind,
                updated_by_run: entry.updated_by_run.clone(),
                partitions: partitions_of(entry),
            },
            None => n
                .previous
                .and_then(|p| p.tables.get(&name).cloned())
                .ok_or_else(|| Error::Accounting(format!("table {name} is in no state")))?,
        };
        state.tables.insert(name, table_state);
        if let Some(tally) = &t.tally {
            tallies.push((t.table.name.as_str(), tally));
        }
    }
    if let Some(previous) = n.previous {
        for (name, t) in &previous.tables {
            state
                .tables
                .entry(name.clone())
                .or_insert_with(|| t.clone());
        }
    }
    let index: HashMap<&str, HashMap<&Vec<String>, u32>> = state
        .tables
        .iter()
        .map(|(name, t)| {
            let by_values = t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| (&p.values, i as u32))
                .collect();
            (name.as_str(), by_values)
        })
        .collect();
    let mut sources: BTreeMap<String, BTreeMap<String, ObjectState>> = BTreeMap::new();

    if let Some(previous) = n.previous {
        for (source, objects) in &previous.sources {
            let kept_deleted = n.kept_deleted.get(source);
            for (key, object) in objects {
                if n.removed.contains(key) {
                    continue;
                }
                let mut object = object.clone();
                object.rows = renumber(&object.rows, previous, &index, key)?;
                object.deleted = kept_deleted.is_some_and(|d| d.contains(key));
                sources
                    .entry(source.clone())
                    .or_default()
                    .insert(key.clone(), object);
            }
        }
    }
    let read: HashSet<&str> = n.items.iter().map(|i| i.key.as_str()).collect();
    for (table, tally) in &tallies {
        if let Some(stray) = tally.keys().find(|k| !read.contains(k.as_str())) {
            return Err(Error::Accounting(format!(
                "table {table} has rows whose source_key is `{stray}`, which is not an object this run read: its SQL must pass the source's source_key through unchanged for an incremental run to keep its rows per object"
            )));
        }
    }
    for item in n.items {
        let mut rows = BTreeMap::new();
        for (table, tally) in &tallies {
            let Some(by_partition) = tally.get(&item.key) else {
                continue;
            };
            let positions = &index[table];
            let mut list = Vec::new();
            for (values, count) in by_partition {
                let i = positions.get(values).ok_or_else(|| {
                    Error::Accounting(format!(
                        "table {table}: rows of {} went to partition {values:?}, which the commit does not register",
                        item.key
                    ))
                })?;
                list.push(PartitionRows {
                    partition: *i,
                    rows: *count,
                });
            }
            rows.insert(table.to_string(), list);
        }
        sources.entry(item.source.clone()).or_default().insert(
            item.key.clone(),
            ObjectState {
                fingerprint: item.fingerprint.clone(),
                deleted: false,
                rows,
            },
        );
    }
    state.sources = sources;
    Ok(state)
}

/// An unchanged object's rows, with partition indexes of the new partition lists.
fn renumber(
    rows: &BTreeMap<String, Vec<PartitionRows>>,
    previous: &JobState,
    index: &HashMap<&str, HashMap<&Vec<String>, u32>>,
    key: &str,
) -> Result<BTreeMap<String, Vec<PartitionRows>>> {
    let mut out = BTreeMap::new();
    for (table, list) in rows {
        let (Some(old), Some(new)) = (previous.tables.get(table), index.get(table.as_str())) else {
            continue;
        };
        let mut renumbered = Vec::with_capacity(list.len());
        for r in list {
            let i = r.partition;
            let values = old
                .partitions
                .get(i as usize)
                .map(|p| &p.values)
                .ok_or_else(|| {
                    Error::State(format!(
                        "{key}: partition {i} of table {table} is not in the state"
                    ))
                })?;
            let j = new.get(values).ok_or_else(|| {
                Error::Accounting(format!(
                    "table {table}: partition {values:?} still holds rows of {key}, but the commit does not register it"
                ))
            })?;
            renumbered.push(PartitionRows {
                partition: *j,
                rows: r.rows,
            });
        }
        out.insert(table.clone(), renumbered);
    }
    Ok(out)
}

/// A catalog entry's partitions as the state keeps them (one with no values for
/// a table without partition keys).
pub fn partitions_of(entry: &TableEntry) -> Vec<PartitionState> {
    if entry.table_input.partition_keys.is_empty() {
        return vec![PartitionState {
            values: Vec::new(),
            location: entry.table_input.storage_descriptor.location.clone(),
        }];
    }
    let mut parts: Vec<PartitionState> = entry
        .partitions
        .iter()
        .map(|p| PartitionState {
            values: p.values.clone(),
            location: p.storage_descriptor.location.clone(),
        })
        .collect();
    parts.sort();
    parts
}

/// Per partition values, the rows a state says `keys` (all keys when `None`)
/// hold in `table`.
pub fn rows_by_partition(
    state: &JobState,
    table: &str,
    keys: Option<&HashSet<String>>,
) -> BTreeMap<Vec<String>, u64> {
    let mut out: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    let Some(t) = state.tables.get(table) else {
        return out;
    };
    let mut counted: HashSet<&str> = HashSet::new();
    for objects in state.sources.values() {
        for (key, object) in objects {
            if keys.is_some_and(|k| !k.contains(key)) || !counted.insert(key.as_str()) {
                continue;
            }
            for r in object.rows.get(table).into_iter().flatten() {
                if let Some(p) = t.partitions.get(r.partition as usize) {
                    *out.entry(p.values.clone()).or_default() += r.rows;
                }
            }
        }
    }
    out
}
