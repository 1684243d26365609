//! `docs/tables.md` below its marker line is rendered from `schemas/` and the
//! shipped jobs (`naslake::catalog::reference`); this test renders it again and
//! fails when the checked-in page differs, so the DDL and the column docs cannot
//! drift from the tables a run writes. `scripts/docs-tables` rewrites the page
//! (it runs this test with `NASLAKE_BLESS=1`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use naslake::catalog::reference::table_section;
use naslake::job::Job;
use naslake::model::schema::TableSchema;
use naslake::sources::Registry;

const PAGE: &str = "docs/tables.md";
const MARKER: &str = "<!-- Everything below is generated from schemas/ by scripts/docs-tables: edit the schema files, not this page. -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sorted_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// The generated part: every shipped job's tables in the job's order, then the
/// schema files no shipped job uses that have a `[docs]` section.
fn render() -> String {
    let root = root();
    let registry = Registry::builtin();
    let mut out = String::new();
    let mut shown = BTreeSet::new();
    for spec in sorted_files(&root.join("jobs"), "toml") {
        let job = Job::load(&spec, &[], &registry).unwrap();
        let file = format!("`jobs/{}`", spec.file_name().unwrap().to_string_lossy());
        out.push_str(&format!("\n## The `{}` job ({file})\n", job.spec.name));
        for t in &job.tables {
            let by = match &t.spec.sql {
                Some(sql) => format!("{file} with `jobs/{sql}`"),
                None => file.clone(),
            };
            let section = table_section(&t.schema, "naslake", &by).unwrap();
            out.push_str(&format!("\n{section}"));
            shown.insert(t.name.clone());
        }
    }
    let mut others = String::new();
    for path in sorted_files(&root.join("schemas"), "toml") {
        let schema = TableSchema::load(&path).unwrap();
        if shown.contains(&schema.name) || schema.docs.is_none() {
            continue;
        }
        others.push_str(&format!(
            "\n{}",
            table_section(&schema, "naslake", "").unwrap()
        ));
    }
    if !others.is_empty() {
        out.push_str("\n## Tables a job may add\n");
        out.push_str(&others);
    }
    out
}

#[test]
fn the_table_reference_is_what_the_schema_files_say() {
    let path = root().join(PAGE);
    let page = std::fs::read_to_string(&path).unwrap_or_default();
    let Some((intro, checked_in)) = page.split_once(MARKER) else {
        panic!("{PAGE} has no line {MARKER}");
    };
    let want = render();
    if std::env::var_os("NASLAKE_BLESS").is_some() {
        std::fs::write(&path, format!("{intro}{MARKER}\n{want}")).unwrap();
        return;
    }
    let got = checked_in.strip_prefix('\n').unwrap_or(checked_in);
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{PAGE} is stale from its generated line {} on (run scripts/docs-tables):\n  page:   {:?}\n  schema: {:?}",
            line + 1,
            got.lines().nth(line),
            want.lines().nth(line)
        );
    }
}

/// Every table a shipped job writes is documented: a schema without `[docs]`
/// fails the rendering above, and this names the one that does.
#[test]
fn every_shipped_table_has_docs() {
    let registry = Registry::builtin();
    for spec in sorted_files(&root().join("jobs"), "toml") {
        let job = Job::load(&spec, &[], &registry).unwrap();
        for t in &job.tables {
            assert!(
                t.schema.docs.is_some(),
                "table {} of {} has no [docs] in its schema file",
                t.name,
                spec.display()
            );
        }
    }
}
