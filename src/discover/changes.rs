//! What changed since the last committed run: each listed object is compared with
//! the state by fingerprint (size, ETag, last-modified all equal, or it changed),
//! never by a time watermark, so a file copied with its old modification time kept
//! but another size or ETag is read again. Objects of the state the listing no
//! longer has are deleted.
//!
//! Decisions only; the listing ([`super::ItemSink`]) asks [`Baseline::classify`]
//! about each object and [`Baseline::outcome`] sums up after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::base::sync::lock;
use crate::model::Fingerprint;
use crate::model::ObjectState;

/// How a listed object relates to the last committed run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Not read before: read it.
    New,
    /// Read before with another fingerprint: read it, replace its rows.
    Changed,
    /// Same fingerprint: not opened, its rows stay.
    Unchanged,
}

/// The objects of the last committed run, by source and key, and what this run's
/// listing has seen of them.
#[derive(Debug, Default)]
pub struct Baseline {
    before: HashMap<String, HashMap<String, Fingerprint>>,
    seen: Mutex<HashMap<String, Vec<(String, Change)>>>,
}

impl Baseline {
    pub fn new(sources: &BTreeMap<String, BTreeMap<String, ObjectState>>) -> Self {
        let before = sources
            .iter()
            .map(|(source, objects)| {
                let objects = objects
                    .iter()
                    .map(|(k, o)| (k.clone(), o.fingerprint.clone()))
                    .collect();
                (source.clone(), objects)
            })
            .collect();
        Baseline {
            before,
            seen: Mutex::default(),
        }
    }

    /// Classifies one listed object (and remembers that it was listed). An object
    /// deleted earlier but kept (`deletes = "keep"`) that comes back unchanged is
    /// unchanged: its rows are still there.
    pub fn classify(&self, source: &str, key: &str, fingerprint: &Fingerprint) -> Change {
        let change = match self.before.get(source).and_then(|s| s.get(key)) {
            None => Change::New,
            Some(before) if same(before, fingerprint) => Change::Unchanged,
            Some(_) => Change::Changed,
        };
        lock(&self.seen)
            .entry(source.to_string())
            .or_default()
            .push((key.to_string(), change));
        change
    }

    /// What one source's listing found, once it is over.
    pub fn outcome(&self, source: &str) -> SourceChanges {
        let seen = lock(&self.seen).remove(source).unwrap_or_default();
        let mut out = SourceChanges::default();
        let mut listed = BTreeSet::new();
        for (key, change) in seen {
            listed.insert(key.clone());
            match change {
                Change::New => out.new.insert(key),
                Change::Changed => out.changed.insert(key),
                Change::Unchanged => out.unchanged.insert(key),
            };
        }
        if let Some(before) = self.before.get(source) {
            out.deleted = before
                .keys()
                .filter(|k| !listed.contains(*k))
                .cloned()
                .collect();
        }
        out
    }
}

/// Equal when every part the store gives for both is equal; an ETag or time that
/// one side lacks is not compared (a store that gives none has only the size).
fn same(a: &Fingerprint, b: &Fingerprint) -> bool {
    let agree = |x: &Option<String>, y: &Option<String>| match (x, y) {
        (Some(x), Some(y)) => x == y,
        (None, None) => true,
        _ => false,
    };
    a.size == b.size && agree(&a.etag, &b.etag) && agree(&a.last_modified, &b.last_modified)
}

/// One source's objects, by how they changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceChanges {
    pub new: BTreeSet<String>,
    pub changed: BTreeSet<String>,
    pub unchanged: BTreeSet<String>,
    pub deleted: BTreeSet<String>,
}

/// Counts of objects by change, for the run report (and a sharded run's plan).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    pub new: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub deleted: u64,
}

impl SourceChanges {
    pub fn counts(&self) -> ChangeCounts {
        ChangeCounts {
            new: self.new.len() as u64,
            changed: self.changed.len() as u64,
            unchanged: self.unchanged.len() as u64,
            deleted: self.deleted.len() as u64,
        }
    }

    /// Nothing to read and nothing to remove.
    pub fn is_quiet(&self) -> bool {
        self.new.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(size: u64, etag: &str, modified: &str) -> Fingerprint {
        Fingerprint {
            size,
            etag: Some(etag.into()),
            last_modified: Some(modified.into()),
        }
    }

    fn state(objects: &[(&str, Fingerprint)]) -> BTreeMap<String, BTreeMap<String, ObjectState>> {
        let objects = objects
            .iter()
            .map(|(k, f)| {
                let o = ObjectState {
                    fingerprint: f.clone(),
                    deleted: false,
                    rows: Default::default(),
                };
                (k.to_string(), o)
            })
            .collect();
        BTreeMap::from([("s".to_string(), objects)])
    }

    #[test]
    fn every_fingerprint_part_counts_and_unlisted_objects_are_deleted() {
        let t = "2020-01-01T00:00:00+00:00";
        let b = Baseline::new(&state(&[
            ("same", fp(1, "e", t)),
            ("grown", fp(1, "e", t)),
            ("retagged", fp(1, "e", t)),
            ("touched", fp(1, "e", t)),
            ("gone", fp(1, "e", t)),
        ]));
        assert_eq!(b.classify("s", "same", &fp(1, "e", t)), Change::Unchanged);
        // A NAS copy that kept the old modification time: size or ETag differ.
        assert_eq!(b.classify("s", "grown", &fp(2, "e", t)), Change::Changed);
        assert_eq!(b.classify("s", "retagged", &fp(1, "f", t)), Change::Changed);
        let later = "2020-01-02T00:00:00+00:00";
        assert_eq!(
            b.classify("s", "touched", &fp(1, "e", later)),
            Change::Changed
        );
        assert_eq!(b.classify("s", "fresh", &fp(1, "e", t)), Change::New);
        // Another source's object of the same key is new to that source.
        assert_eq!(b.classify("other", "same", &fp(1, "e", t)), Change::New);
        let out = b.outcome("s");
        assert_eq!(
            out.counts(),
            ChangeCounts {
                new: 1,
                changed: 3,
                unchanged: 1,
                deleted: 1
            }
        );
        assert!(out.deleted.contains("gone"));
        assert!(!out.is_quiet());
    }

    #[test]
    fn a_store_without_etags_compares_what_it_has() {
        let none = Fingerprint {
            size: 5,
            etag: None,
            last_modified: None,
        };
        let b = Baseline::new(&state(&[("k", none.clone())]));
        assert_eq!(b.classify("s", "k", &none), Change::Unchanged);
        let tagged = Fingerprint {
            etag: Some("x".into()),
            ..none
        };
        // One side with an ETag and one without is not the same version.
        assert_eq!(b.classify("s", "k", &tagged), Change::Changed);
    }
}
