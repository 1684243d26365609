//! Which tables an incremental run can keep per object: a table whose SQL maps
//! each row of its sources to rows of its own, one at a time (projections,
//! filters, unions, joins with constant relations), and that carries the
//! `source_key` of the object each row came from. Its rows for an object depend on
//! that object alone, so the rows of unchanged objects can stay where they are.
//!
//! Anything that looks at several rows together (aggregates, windows, sorts,
//! limits, distinct, subqueries, joins of two inputs) or reads another table makes
//! a derived table, which is recomputed from whole tables.

use std::collections::{BTreeSet, HashSet};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::model::TableKind;

/// A table's SQL as an incremental run sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    pub kind: TableKind,
    /// The sources and the tables its SQL scans.
    pub sources: BTreeSet<String>,
    pub tables: BTreeSet<String>,
    /// The one source whose every row gives exactly one row of the table (only
    /// projections and window functions over it): the table's old rows then hold
    /// the source's old rows, so an incremental run need not read it again.
    pub preserves: Option<String>,
    /// The output columns that are the scanned source's columns of that name,
    /// passed through unchanged (for a plan that preserves its source's rows).
    pub passed_through: BTreeSet<String>,
}

/// How an incremental run keeps a table with this plan up to date. `sources`
/// names the job's sources; every other scan is of a table. `has_key`: the table
/// has a `source_key` column.
pub fn analyse(plan: &LogicalPlan, sources: &HashSet<String>, has_key: bool) -> Lineage {
    let mut read = (BTreeSet::new(), BTreeSet::new());
    let _walk_cannot_fail = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = scan.table_name.table().to_string();
            if sources.contains(&name) {
                read.0.insert(name);
            } else {
                read.1.insert(name);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let kind = if has_key && row_local(plan, sources) && scans(plan) > 0 {
        TableKind::Objects
    } else {
        TableKind::Derived
    };
    let preserves =
        (read.0.len() == 1 && read.1.is_empty() && scans(plan) == 1 && row_preserving(plan))
            .then(|| read.0.iter().next().cloned())
            .flatten();
    let passed_through = match preserves {
        Some(_) => plan
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|name| passes_through(plan, name))
            .collect(),
        None => BTreeSet::new(),
    };
    Lineage {
        kind,
        sources: read.0,
        tables: read.1,
        preserves,
        passed_through,
    }
}

/// True when output column `name` is the scan's column `name`, unchanged through
/// every projection (a bare column, perhaps aliased to its own name), window
/// (which keeps its input's columns) and alias above it.
fn passes_through(plan: &LogicalPlan, name: &str) -> bool {
    match plan {
        LogicalPlan::TableScan(scan) => scan
            .projected_schema
            .field_with_unqualified_name(name)
            .is_ok(),
        LogicalPlan::Projection(p) => {
            let position = p.schema.fields().iter().position(|f| f.name() == name);
            match position.map(|i| p.expr[i].clone().unalias()) {
                Some(Expr::Column(c)) if c.name == name => passes_through(&p.input, name),
                _ => false,
            }
        }
        LogicalPlan::Window(w) => {
            w.input.schema().field_with_unqualified_name(name).is_ok()
                && passes_through(&w.input, name)
        }
        LogicalPlan::SubqueryAlias(a) => passes_through(&a.input, name),
        LogicalPlan::Repartition(r) => passes_through(&r.input, name),
        _ => false,
    }
}

/// True when the plan keeps its one input's rows one for one: projections and
/// window functions only (no filter, aggregate, join, limit or distinct).
fn row_preserving(plan: &LogicalPlan) -> bool {
    let mut keeps = true;
    let _walk_cannot_fail = plan.apply(|node| {
        let ok = matches!(
            node,
            LogicalPlan::TableScan(_)
                | LogicalPlan::Projection(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::SubqueryAlias(_)
                | LogicalPlan::Repartition(_)
        ) && !node.expressions().iter().any(|e| {
            e.exists(|x| {
                Ok(matches!(
                    x,
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                ))
            })
            .unwrap_or(true)
        });
        if !ok || matches!(node, LogicalPlan::TableScan(s) if !s.filters.is_empty() || s.fetch.is_some()) {
            keeps = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    keeps
}

/// True when every output row comes from one input row of one source.
fn row_local(plan: &LogicalPlan, sources: &HashSet<String>) -> bool {
    let mut local = true;
    let walked = plan.apply(|node| {
        let ok = match node {
            LogicalPlan::TableScan(scan) => sources.contains(scan.table_name.table()),
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::Union(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Values(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Repartition(_) => true,
            // A join keeps rows one-to-one only against constant relations.
            LogicalPlan::Join(_) => node.inputs().iter().filter(|i| scans(i) > 0).count() <= 1,
            _ => false,
        };
        let subquery = node.expressions().iter().any(|e| {
            e.exists(|x| {
                Ok(matches!(
                    x,
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                ))
            })
            .unwrap_or(true)
        });
        if !ok || subquery {
            local = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    walked.is_ok() && local
}

/// The table scans in a plan.
fn scans(plan: &LogicalPlan) -> usize {
    let mut n = 0;
    let _walk_cannot_fail = plan.apply(|node| {
        if matches!(node, LogicalPlan::TableScan(_)) {
            n += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    n
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn lineage(sql: &str) -> Lineage {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("source_key", DataType::Utf8, false),
            Field::new("v", DataType::Float64, true),
        ]));
        for name in ["src", "other_src", "earlier_table"] {
            let t = MemTable::try_new(schema.clone(), vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(t)).unwrap();
        }
        let plan = ctx.sql(sql).await.unwrap().logical_plan().clone();
        let sources = HashSet::from(["src".to_string(), "other_src".to_string()]);
        analyse(&plan, &sources, true)
    }

    async fn kind(sql: &str) -> TableKind {
        lineage(sql).await.kind
    }

    #[tokio::test]
    async fn only_projections_and_windows_over_one_source_preserve_its_rows() {
        let keeps = |sql: &'static str| async move { lineage(sql).await.preserves };
        let src = Some("src".to_string());
        assert_eq!(
            keeps("SELECT source_key, v - avg(v) OVER () AS v FROM src").await,
            src
        );
        assert_eq!(
            keeps("WITH a AS (SELECT *, rank() OVER (ORDER BY v) AS r FROM src) SELECT source_key, r FROM a").await,
            src
        );
        assert_eq!(keeps("SELECT * FROM src WHERE v > 0").await, None);
        assert_eq!(
            keeps("SELECT source_key, count(*) FROM src GROUP BY source_key").await,
            None
        );
        assert_eq!(
            keeps("SELECT * FROM src UNION ALL SELECT * FROM other_src").await,
            None
        );
        assert_eq!(keeps("SELECT * FROM src LIMIT 3").await, None);
        assert_eq!(keeps("SELECT * FROM earlier_table").await, None);
        // A column of the source's name but another value is not the source's.
        let l = lineage("SELECT source_key, v * 2 AS v FROM src").await;
        assert!(l.passed_through.contains("source_key") && !l.passed_through.contains("v"));
        let l = lineage(
            "WITH a AS (SELECT *, avg(v) OVER () AS m FROM src) SELECT source_key, v, m FROM a",
        )
        .await;
        assert!(l.passed_through.contains("v") && !l.passed_through.contains("m"));
    }

    #[tokio::test]
    async fn row_by_row_sql_over_sources_is_kept_per_object() {
        use TableKind::*;
        assert_eq!(
            kind("SELECT source_key, v * 2 AS v FROM src WHERE v > 0").await,
            Objects
        );
        assert_eq!(
            kind("SELECT * FROM src UNION ALL SELECT * FROM other_src").await,
            Objects
        );
        assert_eq!(
            kind("SELECT s.source_key, m.x FROM (VALUES (1), (2)) AS m(x) CROSS JOIN src s").await,
            Objects
        );
    }

    #[tokio::test]
    async fn sql_over_several_rows_or_tables_is_derived() {
        use TableKind::*;
        assert_eq!(
            kind("SELECT source_key, avg(v) AS v FROM src GROUP BY source_key").await,
            Derived
        );
        assert_eq!(
            kind("SELECT source_key, v - avg(v) OVER () AS v FROM src").await,
            Derived
        );
        assert_eq!(kind("SELECT * FROM earlier_table").await, Derived);
        assert_eq!(kind("SELECT * FROM src ORDER BY v LIMIT 3").await, Derived);
        assert_eq!(kind("SELECT DISTINCT * FROM src").await, Derived);
        assert_eq!(
            kind("SELECT * FROM src WHERE v > (SELECT avg(v) FROM src)").await,
            Derived
        );
        assert_eq!(
            kind("SELECT a.* FROM src a JOIN other_src b ON a.source_key = b.source_key").await,
            Derived
        );
    }
}
