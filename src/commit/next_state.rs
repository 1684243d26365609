//! The state a run commits: its tables' partitions as the catalog will have them,
//! and every object it knows of with the rows each table holds of it. Objects
//! this run read come with their new tallies; unchanged ones keep theirs, their
//! partition indexes renumbered against the tables' new partition lists.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rayon::prelude::*;

use super::state::{JobState, PartitionState, STATE_FORMAT, TableState};
use super::{KeyRows, TableFiles};
use crate::base::error::{Error, Result};
use crate::catalog::TableEntry;
use crate::model::{ObjectState, PartitionRows, TableKind, TableRows, WorkItem};

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
    /// The items this run read, sorted by source and key.
    pub items: &'a [&'a WorkItem],
}

/// One of the run's tables as the commit leaves it.
pub struct TableAfter<'a> {
    pub name: &'a str,
    /// The table after the switch; `None`: it stays as the previous state has it.
    pub state: Option<TableState>,
    /// Rows by object key and partition, for a table kept per object.
    pub tally: Option<&'a KeyRows>,
}

impl<'a> TableAfter<'a> {
    /// A table's files with its catalog entry after the commit (`None`: the
    /// table stays as it was), kept as `kinds` says.
    pub fn of(
        t: &'a TableFiles,
        entry: Option<&TableEntry>,
        kinds: &HashMap<String, TableKind>,
    ) -> TableAfter<'a> {
        let kind = kinds
            .get(&t.table.name)
            .copied()
            .unwrap_or(TableKind::Derived);
        TableAfter {
            name: &t.table.name,
            state: entry.map(|e| TableState {
                kind,
                updated_by_run: e.updated_by_run.clone(),
                partitions: partitions_of(e),
            }),
            tally: t.tally.as_ref(),
        }
    }
}

/// Builds the state from the run's tables.
pub fn build<'t>(
    n: &NextState<'_>,
    tables: impl Iterator<Item = TableAfter<'t>>,
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
    for t in tables {
        let table_state = match t.state {
            Some(s) => s,
            None => n
                .previous
                .and_then(|p| p.tables.get(t.name).cloned())
                .ok_or_else(|| Error::Accounting(format!("table {} is in no state", t.name)))?,
        };
        state.tables.insert(t.name.to_string(), table_state);
        if let Some(tally) = t.tally {
            tallies.push((t.name, tally));
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
    // The objects the run did not read keep their rows, renumbered (first: a
    // state that cannot be carried over is the error to report).
    let mut unread: Vec<(&str, &str, ObjectState)> = Vec::new();
    if let Some(previous) = n.previous {
        for (source, objects) in &previous.sources {
            let kept_deleted = n.kept_deleted.get(source);
            for (key, object) in objects {
                if n.removed.contains(key) {
                    continue;
                }
                unread.push((
                    source,
                    key,
                    ObjectState {
                        fingerprint: object.fingerprint.clone(),
                        deleted: kept_deleted.is_some_and(|d| d.contains(key)),
                        rows: renumber(&object.rows, previous, &index, key)?,
                    },
                ));
            }
        }
    }
    // The objects read, one source at a time. This is the serial end of a run
    // and it grows with the files (its lookups miss the cache), so every core
    // builds them; the first error in item order is the one reported. The items
    // come sorted by source and key, so each source's map is then built in one
    // sorted pass rather than one insert each.
    let mut sources: BTreeMap<String, BTreeMap<String, ObjectState>> = BTreeMap::new();
    // How many tally entries the items found, and over how many runs of one
    // source's items.
    let (mut found, mut source_runs) = (0, 0);
    for group in n.items.chunk_by(|a, b| a.source == b.source) {
        let objects: BTreeMap<_, _> = group
            .par_iter()
            .map(|item| Ok((item.key.clone(), object_read(item, &tallies, &index)?)))
            .collect::<Vec<Result<_>>>()
            .into_iter()
            .collect::<Result<_>>()?;
        found += objects.values().map(|o| o.rows.len()).sum::<usize>();
        source_runs += 1;
        // Items out of order (no caller passes them) would still land right.
        match sources.entry(group[0].source.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(objects);
            }
            Entry::Occupied(mut slot) => slot.get_mut().extend(objects),
        }
    }
    // Every tallied key must be an object this run read (checked after the
    // objects, whose errors come first). Each source run's objects are a map by
    // key, where a key counts once, so with one run that holds when the items
    // found as many entries as the tallies have; with several (a key in two
    // sources is found twice) the keys are looked up one by one. The stray
    // named is the least, whatever the tally's hash order.
    let tallied: usize = tallies.iter().map(|(_, t)| t.len()).sum();
    if tallied > 0 && (found != tallied || source_runs > 1) {
        let read: HashSet<&str> = n.items.iter().map(|i| i.key.as_str()).collect();
        for (table, tally) in &tallies {
            if let Some(stray) = tally.keys().filter(|k| !read.contains(k.as_str())).min() {
                return Err(Error::Accounting(format!(
                    "table {table} has rows whose source_key is `{stray}`, which is not an object this run read: its SQL must pass the source's source_key through unchanged for an incremental run to keep its rows per object"
                )));
            }
        }
    }
    // An object read again keeps what this run read of it.
    for (source, key, object) in unread {
        sources
            .entry(source.to_string())
            .or_default()
            .entry(key.to_string())
            .or_insert(object);
    }
    state.sources = sources;
    Ok(state)
}

/// An object this run read, with its rows in each table kept per object.
fn object_read(
    item: &WorkItem,
    tallies: &[(&str, &KeyRows)],
    index: &HashMap<&str, HashMap<&Vec<String>, u32>>,
) -> Result<ObjectState> {
    let mut rows = Vec::with_capacity(tallies.len());
    for (table, tally) in tallies {
        let Some(by_partition) = tally.get(&item.key) else {
            continue;
        };
        let positions = &index[table];
        let mut list = Vec::with_capacity(by_partition.len());
        for (values, count) in by_partition.iter() {
            let i = positions.get(values).ok_or_else(|| {
                Error::Accounting(format!(
                    "table {table}: rows of {} went to partition {values:?}, which the commit does not register",
                    item.key
                ))
            })?;
            list.push(PartitionRows {
                partition: *i,
                rows: count,
            });
        }
        rows.push((table.to_string(), list));
    }
    Ok(ObjectState {
        fingerprint: item.fingerprint.clone(),
        deleted: false,
        rows: rows.into_iter().collect(),
    })
}

/// An unchanged object's rows, with partition indexes of the new partition lists.
fn renumber(
    rows: &TableRows,
    previous: &JobState,
    index: &HashMap<&str, HashMap<&Vec<String>, u32>>,
    key: &str,
) -> Result<TableRows> {
    let mut out = Vec::new();
    for (table, list) in rows.iter() {
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
        out.push((table.clone(), renumbered));
    }
    Ok(out.into_iter().collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Fingerprint;

    fn item(key: &str, size: u64) -> WorkItem {
        WorkItem {
            source: "csv".into(),
            key: key.into(),
            sealed: None,
            fingerprint: Fingerprint {
                size,
                etag: None,
                last_modified: None,
            },
        }
    }

    fn values(v: &str) -> Vec<String> {
        vec![v.to_string()]
    }

    fn table(run: &str, parts: &[&str]) -> TableState {
        TableState {
            kind: TableKind::Objects,
            updated_by_run: run.into(),
            partitions: parts
                .iter()
                .map(|p| PartitionState {
                    values: values(p),
                    location: format!("t/dt={p}/v-{run}/"),
                })
                .collect(),
        }
    }

    fn tally(rows: &[(&str, &str, u64)]) -> KeyRows {
        let mut out = KeyRows::new();
        for (key, part, n) in rows {
            out.entry(key.to_string())
                .or_default()
                .add(&values(part), *n);
        }
        out
    }

    fn next<'a>(
        previous: Option<&'a JobState>,
        removed: &'a HashSet<String>,
        kept: &'a BTreeMap<String, BTreeSet<String>>,
        items: &'a [&'a WorkItem],
    ) -> NextState<'a> {
        NextState {
            job: "j",
            run_id: "r2",
            spec_digest: "d".into(),
            previous,
            removed,
            kept_deleted: kept,
            items,
        }
    }

    fn rows_of(state: &JobState, key: &str) -> Vec<(Vec<String>, u64)> {
        let t = &state.tables["t"];
        state.sources["csv"][key]
            .rows
            .get("t")
            .unwrap()
            .iter()
            .map(|r| (t.partitions[r.partition as usize].values.clone(), r.rows))
            .collect()
    }

    #[test]
    fn a_full_run_records_every_object_read_with_its_rows_by_partition() {
        let items = [&item("a", 10), &item("b", 20)];
        let rows = tally(&[
            ("a", "2024-01-01", 3),
            ("a", "2024-01-02", 1),
            ("b", "2024-01-02", 2),
        ]);
        let (removed, kept) = (HashSet::new(), BTreeMap::new());
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-01", "2024-01-02"])),
            tally: Some(&rows),
        };
        let s = build(&next(None, &removed, &kept, &items), [after].into_iter()).unwrap();
        assert_eq!(s.run_id, "r2");
        assert_eq!(s.sources["csv"].len(), 2);
        assert_eq!(
            rows_of(&s, "a"),
            vec![(values("2024-01-01"), 3), (values("2024-01-02"), 1)]
        );
        assert_eq!(rows_of(&s, "b"), vec![(values("2024-01-02"), 2)]);
        assert_eq!(s.sources["csv"]["b"].fingerprint.size, 20);
    }

    /// The state after run r1: `a` and `b` read, table `t` in two partitions.
    fn previous() -> JobState {
        let items = [&item("a", 10), &item("b", 20)];
        let rows = tally(&[("a", "2024-01-01", 3), ("b", "2024-01-02", 2)]);
        let (removed, kept) = (HashSet::new(), BTreeMap::new());
        let after = TableAfter {
            name: "t",
            state: Some(table("r1", &["2024-01-01", "2024-01-02"])),
            tally: Some(&rows),
        };
        let mut n = next(None, &removed, &kept, &items);
        n.run_id = "r1";
        build(&n, [after].into_iter()).unwrap()
    }

    #[test]
    fn unchanged_objects_keep_their_rows_renumbered_and_removed_ones_go() {
        let before = previous();
        // b changed: read again, its rows now in a new first partition; a unchanged.
        let items = [&item("b", 21)];
        let rows = tally(&[("b", "2023-12-31", 4)]);
        let removed = HashSet::from(["b".to_string()]);
        let kept = BTreeMap::new();
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2023-12-31", "2024-01-01"])),
            tally: Some(&rows),
        };
        let s = build(
            &next(Some(&before), &removed, &kept, &items),
            [after].into_iter(),
        )
        .unwrap();
        assert_eq!(rows_of(&s, "a"), vec![(values("2024-01-01"), 3)]);
        assert_eq!(
            s.sources["csv"]["a"].rows.get("t").unwrap()[0].partition,
            1,
            "renumbered"
        );
        assert_eq!(rows_of(&s, "b"), vec![(values("2023-12-31"), 4)]);
        assert_eq!(s.sources["csv"]["b"].fingerprint.size, 21);
    }

    #[test]
    fn objects_of_several_sources_land_whatever_their_order_and_the_read_ones_win() {
        let before = previous();
        let mut img = item("p.jpg", 7);
        img.source = "img".into();
        let mut other = item("q.jpg", 8);
        other.source = "img".into();
        // Out of source order; `a` read again without being removed first, and
        // `b` removed (changed) with nothing of it read.
        let items = [&img, &item("a", 11), &other];
        let rows = tally(&[("a", "2024-01-02", 5), ("p.jpg", "2024-01-01", 1)]);
        let removed = HashSet::from(["b".to_string()]);
        let kept = BTreeMap::new();
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-01", "2024-01-02"])),
            tally: Some(&rows),
        };
        let s = build(
            &next(Some(&before), &removed, &kept, &items),
            [after].into_iter(),
        )
        .unwrap();
        let keys = |source: &str| s.sources[source].keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys("csv"), ["a"]);
        assert_eq!(keys("img"), ["p.jpg", "q.jpg"]);
        assert_eq!(s.sources["csv"]["a"].fingerprint.size, 11);
        assert_eq!(rows_of(&s, "a"), vec![(values("2024-01-02"), 5)]);
        assert!(s.sources["img"]["q.jpg"].rows.is_empty());

        // A source all of whose objects went is not left in the state empty.
        let everything = HashSet::from(["a".to_string(), "b".to_string()]);
        let rows = tally(&[("p.jpg", "2024-01-01", 1)]);
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-01"])),
            tally: Some(&rows),
        };
        let s = build(
            &next(Some(&before), &everything, &kept, &[&img]),
            [after].into_iter(),
        )
        .unwrap();
        assert_eq!(s.sources.keys().collect::<Vec<_>>(), ["img"]);
    }

    #[test]
    fn errors_are_reported_in_one_order_whatever_the_threads_do() {
        let before = previous();
        let (removed, kept) = (HashSet::from(["b".to_string()]), BTreeMap::new());
        // The items from k03001 on went to a partition the commit does not
        // register (and so did unchanged `a`'s rows), the ones before to one it
        // does: a thread that steals the second half fails at once, long before
        // the one that starts at the first item gets to k03001.
        let owned: Vec<WorkItem> = (0..10_000).map(|i| item(&format!("k{i:05}"), 1)).collect();
        let items: Vec<&WorkItem> = owned.iter().collect();
        let rows = tally(
            &owned
                .iter()
                .enumerate()
                .map(|(i, it)| {
                    let part = if i < 3_001 {
                        "2024-01-02"
                    } else {
                        "2030-01-01"
                    };
                    (it.key.as_str(), part, 1)
                })
                .collect::<Vec<_>>(),
        );
        let after = || TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-02"])),
            tally: Some(&rows),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        pool.install(|| {
            // The state that cannot be carried over first.
            let e = build(
                &next(Some(&before), &removed, &kept, &items),
                [after()].into_iter(),
            )
            .unwrap_err();
            assert!(e.to_string().contains("still holds rows of a"), "{e}");
            // Then the first failing item by key, every time.
            for _ in 0..20 {
                let e =
                    build(&next(None, &removed, &kept, &items), [after()].into_iter()).unwrap_err();
                assert!(e.to_string().contains("rows of k03001 went to"), "{e}");
            }
        });
    }

    #[test]
    fn an_unchanged_objects_partition_must_stay_registered() {
        let before = previous();
        let (removed, kept) = (HashSet::from(["b".to_string()]), BTreeMap::new());
        // a's partition 2024-01-01 is gone from the table: its rows would be lost.
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-02"])),
            tally: None,
        };
        let e = build(
            &next(Some(&before), &removed, &kept, &[]),
            [after].into_iter(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("still holds rows of a"), "{e}");
    }

    #[test]
    fn a_table_left_as_it_was_keeps_its_state_and_deleted_objects_can_stay() {
        let before = previous();
        let removed = HashSet::new();
        let kept = BTreeMap::from([("csv".to_string(), BTreeSet::from(["b".to_string()]))]);
        let after = TableAfter {
            name: "t",
            state: None,
            tally: None,
        };
        let s = build(
            &next(Some(&before), &removed, &kept, &[]),
            [after].into_iter(),
        )
        .unwrap();
        assert_eq!(s.tables["t"], before.tables["t"]);
        assert!(s.sources["csv"]["b"].deleted && !s.sources["csv"]["a"].deleted);
        assert_eq!(rows_of(&s, "b"), vec![(values("2024-01-02"), 2)]);
    }

    #[test]
    fn rows_of_an_object_not_read_are_refused() {
        let rows = tally(&[("elsewhere", "2024-01-01", 1)]);
        let (removed, kept) = (HashSet::new(), BTreeMap::new());
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-01"])),
            tally: Some(&rows),
        };
        let items = [&item("a", 1)];
        let e = build(&next(None, &removed, &kept, &items), [after].into_iter()).unwrap_err();
        assert!(e.to_string().contains("`elsewhere`"), "{e}");

        // Several strays: the least is named, whatever the tally's hash order.
        let strays: Vec<String> = (0..50).map(|i| format!("z{i:02}")).collect();
        let rows = tally(
            &strays
                .iter()
                .map(|k| (k.as_str(), "2024-01-01", 1))
                .collect::<Vec<_>>(),
        );
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-01"])),
            tally: Some(&rows),
        };
        let e = build(&next(None, &removed, &kept, &items), [after].into_iter()).unwrap_err();
        assert!(e.to_string().contains("`z00`"), "{e}");
    }

    #[test]
    fn a_key_read_in_two_sources_does_not_hide_a_stray_one() {
        // `a` read by two sources finds its tally entry twice: as many finds as
        // entries, and still `elsewhere` was not read.
        let rows = tally(&[("a", "2024-01-01", 1), ("elsewhere", "2024-01-01", 1)]);
        let (removed, kept) = (HashSet::new(), BTreeMap::new());
        let after = TableAfter {
            name: "t",
            state: Some(table("r2", &["2024-01-01"])),
            tally: Some(&rows),
        };
        let mut again = item("a", 1);
        again.source = "img".into();
        let items = [&item("a", 1), &again];
        let e = build(&next(None, &removed, &kept, &items), [after].into_iter()).unwrap_err();
        assert!(e.to_string().contains("`elsewhere`"), "{e}");
    }

    #[test]
    fn rows_by_partition_counts_the_keys_asked_for() {
        let s = previous();
        assert_eq!(
            rows_by_partition(&s, "t", None),
            BTreeMap::from([(values("2024-01-01"), 3), (values("2024-01-02"), 2)])
        );
        let only_b = HashSet::from(["b".to_string()]);
        assert_eq!(
            rows_by_partition(&s, "t", Some(&only_b)),
            BTreeMap::from([(values("2024-01-02"), 2)])
        );
    }
}
