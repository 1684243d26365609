//! The roles of a job's tables in a run, decided once from the job and its SQL's
//! lineage: how an incremental run keeps each table (per object or recomputed),
//! which tables are written per item (so a shard can write them), and which
//! sources other tables read whole (so a shard stages its rows of them).

use std::collections::{BTreeSet, HashMap};

use crate::base::error::{Error, Result};
use crate::job::Job;
use crate::model::KEY_COLUMN;
use crate::model::TableKind;
use crate::transform::lineage::Lineage;

/// What the decision needs of one table.
#[derive(Debug, Clone)]
pub struct TableFacts {
    pub name: String,
    /// The table has a `source_key` column.
    pub has_key: bool,
    /// The table uses Athena partition projection.
    pub projected: bool,
}

/// The roles of a job's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableRoles {
    /// How an incremental run keeps each table.
    pub kinds: HashMap<String, TableKind>,
    /// Tables kept per object and computed row by row over the sources alone,
    /// with the rejects table: written where the items are read (a shard).
    pub per_item: BTreeSet<String>,
    /// Sources that the other tables read: a shard stages its rows of them for
    /// the tables computed over every shard.
    pub whole_sources: BTreeSet<String>,
    /// Why the job cannot be split into shards, if it cannot.
    pub not_shardable: Option<String>,
}

impl TableRoles {
    /// The roles of `job`'s tables.
    pub fn of(job: &Job, lineage: &HashMap<String, Lineage>) -> TableRoles {
        let facts: Vec<TableFacts> = job
            .tables
            .iter()
            .map(|t| TableFacts {
                name: t.name.clone(),
                has_key: t.schema.columns.iter().any(|c| c.name == KEY_COLUMN),
                projected: !t.spec.projection.is_empty(),
            })
            .collect();
        let mut roles = TableRoles::decide(&facts, lineage, &job.rejects_table().name);
        if let Some(s) = job.sources.iter().find(|s| s.objects().is_none()) {
            roles.not_shardable = Some(format!(
                "source `{}` finds its items itself (a snapshot of a filer, not listed objects), so the job cannot be split into shards; use `naslake run`",
                s.name()
            ));
        }
        roles
    }

    /// The decision itself, over plain values. A table without lineage (the
    /// rejects table, written from what sources reject) is kept per object when
    /// it has a `source_key`.
    pub fn decide(
        tables: &[TableFacts],
        lineage: &HashMap<String, Lineage>,
        rejects: &str,
    ) -> TableRoles {
        let mut roles = TableRoles {
            per_item: BTreeSet::from([rejects.to_string()]),
            ..Default::default()
        };
        for t in tables {
            let kind = match lineage.get(&t.name) {
                Some(l) => l.kind,
                None if t.has_key => TableKind::Objects,
                None => TableKind::Derived,
            };
            roles.kinds.insert(t.name.clone(), kind);
            let Some(l) = lineage.get(&t.name) else {
                continue;
            };
            if kind == TableKind::Objects && l.tables.is_empty() {
                roles.per_item.insert(t.name.clone());
            } else {
                roles.whole_sources.extend(l.sources.iter().cloned());
            }
        }
        roles.not_shardable = roles.shard_conflict(tables, lineage);
        roles
    }

    /// A table written per item that a shard could not write apart from the rest.
    fn shard_conflict(
        &self,
        tables: &[TableFacts],
        lineage: &HashMap<String, Lineage>,
    ) -> Option<String> {
        if let Some(t) = tables
            .iter()
            .find(|t| self.per_item.contains(&t.name) && t.projected)
        {
            return Some(format!(
                "table {} uses partition projection, so Athena reads its directories without the catalog and would see each shard's files before the commit; use `naslake run`",
                t.name
            ));
        }
        for t in &self.per_item {
            if let Some(s) = lineage
                .get(t)
                .and_then(|l| l.sources.iter().find(|s| self.whole_sources.contains(*s)))
            {
                return Some(format!(
                    "source `{s}` is read by table {t}, which each shard writes, and by a table computed over all shards; a shard reads a source once, so give the second table the first one's rows (`FROM {t}`), or use `naslake run`"
                ));
            }
        }
        None
    }

    /// Fails when the job cannot be split into shards.
    pub fn check_shardable(&self, job: &str) -> Result<()> {
        match &self.not_shardable {
            Some(why) => Err(Error::config(format!("job {job}: {why}"))),
            None => Ok(()),
        }
    }

    /// How an incremental run keeps `table` (derived when unknown).
    pub fn kind(&self, table: &str) -> TableKind {
        self.kinds.get(table).copied().unwrap_or(TableKind::Derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str, has_key: bool) -> TableFacts {
        TableFacts {
            name: name.into(),
            has_key,
            projected: false,
        }
    }

    fn lineage(kind: TableKind, sources: &[&str], tables: &[&str]) -> Lineage {
        Lineage {
            kind,
            sources: sources.iter().map(|s| s.to_string()).collect(),
            tables: tables.iter().map(|s| s.to_string()).collect(),
            preserves: None,
            passed_through: BTreeSet::new(),
        }
    }

    #[test]
    fn per_object_tables_over_sources_are_written_per_item() {
        let tables = [
            facts("readings", true),
            facts("anomalies", false),
            facts("rejects", true),
        ];
        let l = HashMap::from([
            (
                "readings".into(),
                lineage(TableKind::Objects, &["csv"], &[]),
            ),
            (
                "anomalies".into(),
                lineage(TableKind::Derived, &[], &["readings"]),
            ),
        ]);
        let r = TableRoles::decide(&tables, &l, "rejects");
        assert_eq!(
            r.per_item,
            BTreeSet::from(["readings".to_string(), "rejects".to_string()])
        );
        assert!(r.whole_sources.is_empty());
        assert_eq!(r.kind("anomalies"), TableKind::Derived);
        assert_eq!(r.kind("rejects"), TableKind::Objects);
        assert_eq!(r.not_shardable, None);
    }

    #[test]
    fn a_table_reading_a_source_whole_stages_it() {
        let tables = [facts("inspections", true), facts("rejects", false)];
        let l = HashMap::from([(
            "inspections".into(),
            lineage(TableKind::Derived, &["images"], &[]),
        )]);
        let r = TableRoles::decide(&tables, &l, "rejects");
        assert_eq!(r.per_item, BTreeSet::from(["rejects".to_string()]));
        assert_eq!(r.whole_sources, BTreeSet::from(["images".to_string()]));
        assert_eq!(r.kind("rejects"), TableKind::Derived);
    }

    #[test]
    fn a_source_read_per_item_and_whole_cannot_be_sharded() {
        let tables = [facts("a", true), facts("b", false)];
        let l = HashMap::from([
            ("a".into(), lineage(TableKind::Objects, &["csv"], &[])),
            ("b".into(), lineage(TableKind::Derived, &["csv"], &[])),
        ]);
        let r = TableRoles::decide(&tables, &l, "rejects");
        assert!(r.not_shardable.unwrap().contains("source `csv`"));
    }

    #[test]
    fn a_projected_table_written_per_item_cannot_be_sharded() {
        let mut a = facts("a", true);
        a.projected = true;
        let l = HashMap::from([("a".into(), lineage(TableKind::Objects, &["csv"], &[]))]);
        let r = TableRoles::decide(&[a], &l, "rejects");
        assert!(
            r.not_shardable
                .as_deref()
                .unwrap()
                .contains("partition projection")
        );
        assert!(r.check_shardable("j").is_err());
    }
}
