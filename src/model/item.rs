//! Work items and what became of them: what discovery hands extraction (an item
//! and its fingerprint), what discovery saw per source, what extraction counted
//! per item, and what the state keeps of each object a committed run read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One unit of input: an object under the job's input, or whatever a source's own
/// discovery yields (a path on a filer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Source (in the job spec) the item belongs to.
    pub source: String,
    /// The item's identity: its key relative to the job's input location, which
    /// rows carry as their `source_key` lineage; or, for a source that disguises
    /// keys (they may name patients), that key's disguised name. Either way it is
    /// what rows, reports, logs and the state call the item.
    pub key: String,
    /// The real key, sealed by the source (encrypted), when `key` is a disguised
    /// name: only the source's readers open it, to read the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
}

/// What identifies one version of an item, as far as the store says. Reads are
/// pinned to it: an item is read up to its listed size, and its ETag is compared
/// where the store returns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// RFC 3339, where the store gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// What discovering one source found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceListing {
    pub source: String,
    /// Where it looked (a key prefix under the input, or the source's own words).
    pub prefix: String,
    /// Everything discovery saw, read or not.
    pub listed: u64,
    /// Items the source reads.
    pub items: u64,
    /// Items left unread because they did not change since the last committed run.
    #[serde(default)]
    pub unchanged: u64,
}

impl SourceListing {
    /// Seen but not read (other suffixes, hidden names).
    pub fn skipped(&self) -> u64 {
        self.listed - self.items - self.unchanged
    }
}

/// What extracting one item counted: a snapshot of the live counters discovery
/// hands the source (`discover::ItemStats`), for the run report and a sharded
/// run's results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    pub bytes_read: u64,
    pub records: u64,
    pub loaded: u64,
    pub rejected: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_error: Option<String>,
    #[serde(flatten)]
    pub notes: BTreeMap<String, u64>,
}

/// One object the job has read, as the incremental state keeps it: the version
/// read, and where its rows went. Discovery compares a listing with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectState {
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Gone from the share, its rows kept (`deletes = "keep"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Table → the object's rows in each partition of that table that holds some.
    #[serde(default, skip_serializing_if = "TableRows::is_empty")]
    pub rows: TableRows,
}

/// Table → an object's rows in each partition of that table: a map kept as a
/// list sorted by table, with the JSON of a map. An object has rows in one or two
/// tables; a `BTreeMap` gave each object a node of eleven slots (half a kilobyte
/// of fresh memory), and at tens of thousands of objects the page faults were
/// a large part of the state's build at a run's end (about half its samples).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableRows(Vec<(String, Vec<PartitionRows>)>);

impl TableRows {
    pub fn get(&self, table: &str) -> Option<&Vec<PartitionRows>> {
        let i = self
            .0
            .binary_search_by(|(t, _)| t.as_str().cmp(table))
            .ok()?;
        Some(&self.0[i].1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many tables hold rows of the object.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The tables in order, each with its rows.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<PartitionRows>)> {
        self.0.iter().map(|(t, rows)| (t, rows))
    }
}

impl FromIterator<(String, Vec<PartitionRows>)> for TableRows {
    /// As a map collects: sorted by table, the last of a table's entries kept.
    fn from_iter<I: IntoIterator<Item = (String, Vec<PartitionRows>)>>(iter: I) -> Self {
        let mut v: Vec<_> = iter.into_iter().collect();
        // Stable, so the entries of one table stay in the order given.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        // `dedup_by` keeps the first of a run: it takes each later entry's rows.
        v.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(&mut later.1, &mut kept.1);
            }
            same
        });
        TableRows(v)
    }
}

impl Serialize for TableRows {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for TableRows {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Vec<PartitionRows>>::deserialize(deserializer)?;
        Ok(TableRows(map.into_iter().collect()))
    }
}

/// An object's rows in one partition of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRows {
    /// The index into that table's partitions in the same state (sorted by
    /// partition values), which names each partition once.
    pub partition: u32,
    pub rows: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_listings_round_trip_through_json() {
        let items = vec![
            WorkItem {
                source: "long".into(),
                key: "long/a.csv".into(),
                sealed: None,
                fingerprint: Fingerprint {
                    size: 10,
                    etag: Some("\"e1\"".into()),
                    last_modified: Some("2024-05-01T00:00:00+00:00".into()),
                },
            },
            WorkItem {
                source: "acl".into(),
                key: "vol/dir".into(),
                sealed: None,
                fingerprint: Fingerprint {
                    size: 0,
                    etag: None,
                    last_modified: None,
                },
            },
        ];
        let text = serde_json::to_string(&items).unwrap();
        assert!(text.contains("\"size\":10") && !text.contains("\"etag\":null"));
        assert_eq!(serde_json::from_str::<Vec<WorkItem>>(&text).unwrap(), items);
        let listing = SourceListing {
            source: "long".into(),
            prefix: "long/".into(),
            listed: 3,
            items: 1,
            unchanged: 0,
        };
        let text = serde_json::to_string(&listing).unwrap();
        assert_eq!(
            serde_json::from_str::<SourceListing>(&text).unwrap(),
            listing
        );
        assert_eq!(listing.skipped(), 2);
    }

    #[test]
    fn an_object_state_names_its_partition_rows() {
        let object = ObjectState {
            fingerprint: Fingerprint {
                size: 5,
                etag: Some("e".into()),
                last_modified: None,
            },
            deleted: false,
            rows: TableRows::from_iter([(
                "t".to_string(),
                vec![PartitionRows {
                    partition: 1,
                    rows: 7,
                }],
            )]),
        };
        let text = serde_json::to_string(&object).unwrap();
        assert_eq!(
            text,
            r#"{"size":5,"etag":"e","rows":{"t":[{"partition":1,"rows":7}]}}"#
        );
        assert_eq!(serde_json::from_str::<ObjectState>(&text).unwrap(), object);
        // serde's derived structs also read a sequence, so the format-1 shape
        // (`[index, rows]` pairs) parses too: the state's format field, checked
        // before the rest is read, is what tells the two apart.
        let old = r#"{"size":5,"etag":"e","rows":{"t":[[1,7]]}}"#;
        assert_eq!(serde_json::from_str::<ObjectState>(old).unwrap(), object);
    }

    proptest::proptest! {
        /// The list is the map it replaced: the same lookups, the same JSON both
        /// ways, whatever order and repetitions the tables come in.
        #[test]
        fn table_rows_are_the_map_they_replaced(
            entries in proptest::collection::vec(
                ("[a-d]{1,2}", proptest::collection::vec((0u32..4, 0u64..9), 0..3)),
                0..6,
            )
        ) {
            let entries: Vec<(String, Vec<PartitionRows>)> = entries
                .into_iter()
                .map(|(t, rows)| {
                    let rows = rows.into_iter().map(|(partition, rows)| PartitionRows { partition, rows });
                    (t, rows.collect())
                })
                .collect();
            let ours = TableRows::from_iter(entries.clone());
            let map = BTreeMap::from_iter(entries);
            proptest::prop_assert_eq!(ours.is_empty(), map.is_empty());
            for table in ["a", "b", "c", "d", "ab", "ba", "dd", "e"] {
                proptest::prop_assert_eq!(ours.get(table), map.get(table));
            }
            proptest::prop_assert!(ours.iter().eq(map.iter()));
            let text = serde_json::to_string(&ours).unwrap();
            proptest::prop_assert_eq!(&text, &serde_json::to_string(&map).unwrap());
            proptest::prop_assert_eq!(serde_json::from_str::<TableRows>(&text).unwrap(), ours);
        }
    }
}
