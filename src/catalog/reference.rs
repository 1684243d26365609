//! The table reference (`docs/tables.md`), rendered from the schema files: the
//! heading, the column list and the Athena DDL come from the same [`TableSchema`]
//! the writers and the catalog use, and the prose and the example query from its
//! `[docs]` section, so none of them can drift from the tables a run writes.
//! `tests/docs_tables.rs` renders the page and fails when the checked-in one differs.

use crate::base::error::{Error, Result};
use crate::model::Compression;
use crate::model::schema::TableSchema;

use super::table_input::{athena_ddl, table_input};

/// Where the DDL says a table lives: a placeholder bucket, and for a table without
/// partitions the version directory of the run that wrote it.
fn placeholder_location(schema: &TableSchema) -> String {
    if schema.partition_keys.is_empty() {
        format!("s3://LAKE/{}/v-RUNID/", schema.name)
    } else {
        format!("s3://LAKE/{}/", schema.name)
    }
}

/// One table's section of the reference. `written_by` says which shipped job
/// files write it (Markdown), if any.
pub fn table_section(schema: &TableSchema, database: &str, written_by: &str) -> Result<String> {
    let docs = schema.docs.as_ref().ok_or_else(|| {
        Error::config(format!(
            "schema file of table {} has no [docs] section (row, about, example)",
            schema.name
        ))
    })?;
    let code = |s: &str| format!("`{s}`");
    let mut out = format!("### `{}` — {}", schema.name, docs.row);
    if !schema.partition_keys.is_empty() {
        let keys: Vec<String> = schema
            .partition_keys
            .iter()
            .map(|k| code(&k.name))
            .collect();
        out.push_str(&format!(", partitioned by {}", and_list(&keys)));
    }
    out.push_str("\n\n");
    out.push_str(&format!("{}\n\n", schema.description));
    if !docs.about.trim().is_empty() {
        out.push_str(&format!("{}\n\n", docs.about.trim()));
    }
    let mut facts = Vec::new();
    if !written_by.is_empty() {
        facts.push(format!("Written by {written_by}."));
    }
    if schema.partition_keys.is_empty() {
        facts.push(
            "Unpartitioned; its location is the version directory of the run that wrote it.".into(),
        );
    }
    if !facts.is_empty() {
        out.push_str(&format!("{}\n\n", facts.join(" ")));
    }
    out.push_str("| column | type | NULL | what it holds |\n|---|---|---|---|\n");
    for (c, partition) in schema
        .columns
        .iter()
        .map(|c| (c, false))
        .chain(schema.partition_keys.iter().map(|k| (k, true)))
    {
        let null = if c.nullable { "" } else { "never" };
        let mut what = cell(&c.comment);
        if partition {
            what = format!("Partition key. {what}");
        }
        if c.derived {
            what = format!("{what} (computed by the job's SQL)");
        }
        out.push_str(&format!(
            "| {} | {} | {null} | {what} |\n",
            code(&c.name),
            code(&c.type_name)
        ));
    }
    let never_null: Vec<String> = schema
        .columns
        .iter()
        .filter(|c| !c.nullable)
        .map(|c| code(&c.name))
        .collect();
    if !never_null.is_empty() {
        out.push_str(&format!("\nNever NULL: {}.\n", never_null.join(", ")));
    }
    let location = docs
        .location
        .clone()
        .unwrap_or_else(|| placeholder_location(schema));
    let database = docs.database.as_deref().unwrap_or(database);
    let table = table_input(schema, &location, Compression::default())?;
    out.push_str(&format!(
        "\nThe Athena DDL (`naslake catalog show {} --ddl` prints it for a real lake):\n\n```sql\n{}```\n",
        schema.name,
        athena_ddl(database, &table)
    ));
    out.push_str(&format!(
        "\nExample:\n\n```sql\n{}\n```\n",
        docs.example.trim_end()
    ));
    Ok(out)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A comment as a Markdown table cell: a `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(keys: &str) -> TableSchema {
        TableSchema::parse(
            &format!(
                r#"
                name = "t"
                description = "Rows."
                columns = [
                  {{ name = "k", type = "string", nullable = false, comment = "a |key|" }},
                  {{ name = "v", type = "double", comment = "value", derived = true }},
                ]
                {keys}
                [docs]
                row = "one row per thing"
                example = "SELECT 1"
                "#
            ),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn a_section_says_what_the_schema_says() {
        let s = table_section(&schema(""), "db", "`jobs/t.toml`").unwrap();
        assert!(
            s.starts_with("### `t` — one row per thing\n\nRows.\n"),
            "{s}"
        );
        assert!(s.contains("Written by `jobs/t.toml`. Unpartitioned;"));
        assert!(s.contains("| `k` | `string` | never | a \\|key\\| |"));
        assert!(s.contains("| `v` | `double` |  | value (computed by the job's SQL) |"));
        assert!(s.contains("Never NULL: `k`."));
        assert!(s.contains("LOCATION 's3://LAKE/t/v-RUNID/'"));
        assert!(s.ends_with("```sql\nSELECT 1\n```\n"));
    }

    #[test]
    fn partition_keys_are_named_in_the_heading_and_the_location_is_the_table() {
        let keys = r#"partition_keys = [
            { name = "a", type = "string", comment = "A." },
            { name = "b", type = "string", comment = "B." },
        ]"#;
        let s = table_section(&schema(keys), "db", "").unwrap();
        assert!(s.starts_with("### `t` — one row per thing, partitioned by `a` and `b`\n"));
        assert!(s.contains("| `b` | `string` |  | Partition key. B. |"));
        assert!(s.contains("LOCATION 's3://LAKE/t/'"));
        assert!(!s.contains("Written by"));
    }

    #[test]
    fn a_schema_without_docs_is_named() {
        let mut s = schema("");
        s.docs = None;
        let e = table_section(&s, "db", "").unwrap_err().to_string();
        assert!(e.contains("table t has no [docs]"), "{e}");
    }
}
